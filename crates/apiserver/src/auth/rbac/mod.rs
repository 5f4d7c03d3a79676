//! RBAC authorization as kube-apiserver evaluates it, over an index of the current Roles,
//! ClusterRoles, RoleBindings and ClusterRoleBindings that the HTTP layer keeps up to date.

pub mod attributes;
pub mod bootstrap;
pub mod escalation;
pub mod selector;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use serde_json::Value;

pub use attributes::{
    Attributes, Forbidden, NonResourceAttributes, ResourceAttributes, forbidden, forbidden_reason,
    non_resource_verb, resource_verb, rule_allows,
};

use crate::auth::user::{SERVICE_ACCOUNT_USER_PREFIX, SYSTEM_MASTERS, UserInfo};

/// The API group of the RBAC resources.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The four RBAC kinds the index holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RbacKind {
    /// `roles` (namespaced).
    Role,
    /// `clusterroles`.
    ClusterRole,
    /// `rolebindings` (namespaced).
    RoleBinding,
    /// `clusterrolebindings`.
    ClusterRoleBinding,
}

impl RbacKind {
    /// From a `kind` value.
    pub fn from_kind(kind: &str) -> Option<Self> {
        match kind {
            "Role" => Some(Self::Role),
            "ClusterRole" => Some(Self::ClusterRole),
            "RoleBinding" => Some(Self::RoleBinding),
            "ClusterRoleBinding" => Some(Self::ClusterRoleBinding),
            _ => None,
        }
    }

    /// From an API group and plural resource name; `None` for anything else.
    pub fn from_resource(group: &str, resource: &str) -> Option<Self> {
        if group != RBAC_GROUP {
            return None;
        }
        match resource {
            "roles" => Some(Self::Role),
            "clusterroles" => Some(Self::ClusterRole),
            "rolebindings" => Some(Self::RoleBinding),
            "clusterrolebindings" => Some(Self::ClusterRoleBinding),
            _ => None,
        }
    }
}

/// Failures while feeding objects into the index.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    /// The object's `kind` is not one of the four RBAC kinds.
    #[error("{0:?} is not an RBAC kind")]
    NotRbac(String),
    /// The object does not deserialize as its kind.
    #[error("decoding {kind:?}: {source}")]
    Decode {
        /// The kind.
        kind: RbacKind,
        /// The cause.
        source: serde_json::Error,
    },
    /// The object has no `metadata.name` (or a namespaced one no namespace).
    #[error("{kind:?} without {field}")]
    MissingField {
        /// The kind.
        kind: RbacKind,
        /// The missing field.
        field: &'static str,
    },
}

/// The outcome of an authorization check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; the reason names the binding and role, as kube-apiserver's RBAC reports it
    /// (empty for `system:masters`).
    Allow {
        /// Why.
        reason: String,
    },
    /// Not allowed (kube-apiserver's RBAC "no opinion"); the reason lists evaluation errors
    /// such as missing roles, and is usually empty.
    Deny {
        /// Why.
        reason: String,
    },
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow { .. })
    }

    /// The reason text.
    pub fn reason(&self) -> &str {
        match self {
            Self::Allow { reason } | Self::Deny { reason } => reason,
        }
    }
}

/// The rules that apply to a user in a namespace, for SelfSubjectRulesReview.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RulesFor {
    /// Every rule granted (cluster-wide bindings first, then the namespace's).
    pub rules: Vec<PolicyRule>,
    /// Problems met, such as bindings to roles that do not exist.
    pub errors: Vec<String>,
}

/// The current RBAC objects and the effective rules of every ClusterRole (aggregation
/// applied). Cheap to clone for copy-on-write sharing behind a lock or `ArcSwap`.
#[derive(Clone, Debug, Default)]
pub struct RbacIndex {
    roles: BTreeMap<(String, String), Role>,
    cluster_roles: BTreeMap<String, ClusterRole>,
    role_bindings: BTreeMap<String, BTreeMap<String, RoleBinding>>,
    cluster_role_bindings: BTreeMap<String, ClusterRoleBinding>,
    effective_cluster_rules: BTreeMap<String, Vec<PolicyRule>>,
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<&str> {
    meta.name.as_deref().filter(|n| !n.is_empty())
}

fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<&str> {
    meta.namespace.as_deref().filter(|n| !n.is_empty())
}

impl RbacIndex {
    /// An empty index (everyone but `system:masters` is denied everything).
    pub fn new() -> Self {
        Self::default()
    }

    /// An index holding kube-apiserver's default ClusterRoles and ClusterRoleBindings.
    pub fn with_bootstrap_policy() -> Self {
        let mut index = Self::new();
        for role in bootstrap::cluster_roles() {
            index.insert_cluster_role(role);
        }
        for binding in bootstrap::cluster_role_bindings() {
            index.insert_cluster_role_binding(binding);
        }
        index.recompute_aggregation();
        index
    }

    /// Adds or replaces an object given as JSON (as stored); its `kind` says which.
    pub fn apply_json(&mut self, object: &Value) -> Result<RbacKind, RbacError> {
        let kind_name = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = RbacKind::from_kind(kind_name)
            .ok_or_else(|| RbacError::NotRbac(kind_name.to_owned()))?;
        let decode = |source| RbacError::Decode { kind, source };
        match kind {
            RbacKind::Role => {
                self.apply_role(serde_json::from_value(object.clone()).map_err(decode)?)
            }
            RbacKind::ClusterRole => {
                self.apply_cluster_role(serde_json::from_value(object.clone()).map_err(decode)?)
            }
            RbacKind::RoleBinding => {
                self.apply_role_binding(serde_json::from_value(object.clone()).map_err(decode)?)
            }
            RbacKind::ClusterRoleBinding => self.apply_cluster_role_binding(
                serde_json::from_value(object.clone()).map_err(decode)?,
            ),
        }?;
        Ok(kind)
    }

    /// Removes the object a JSON value (as stored, or as a watch DELETED event carries it)
    /// describes. Returns its kind and whether it was present.
    pub fn delete_json(&mut self, object: &Value) -> Result<(RbacKind, bool), RbacError> {
        let kind_name = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = RbacKind::from_kind(kind_name)
            .ok_or_else(|| RbacError::NotRbac(kind_name.to_owned()))?;
        let meta = object.get("metadata");
        let field = |name: &str| {
            meta.and_then(|m| m.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let name = field("name");
        if name.is_empty() {
            return Err(RbacError::MissingField {
                kind,
                field: "metadata.name",
            });
        }
        Ok((kind, self.delete(kind, field("namespace"), name)))
    }

    /// Removes an object; `namespace` is ignored for cluster-scoped kinds. Returns whether it
    /// was present.
    pub fn delete(&mut self, kind: RbacKind, namespace: &str, name: &str) -> bool {
        match kind {
            RbacKind::Role => self
                .roles
                .remove(&(namespace.to_owned(), name.to_owned()))
                .is_some(),
            RbacKind::ClusterRole => {
                let removed = self.cluster_roles.remove(name).is_some();
                if removed {
                    self.recompute_aggregation();
                }
                removed
            }
            RbacKind::RoleBinding => {
                let Some(in_ns) = self.role_bindings.get_mut(namespace) else {
                    return false;
                };
                let removed = in_ns.remove(name).is_some();
                if in_ns.is_empty() {
                    self.role_bindings.remove(namespace);
                }
                removed
            }
            RbacKind::ClusterRoleBinding => self.cluster_role_bindings.remove(name).is_some(),
        }
    }

    /// Adds or replaces a Role.
    pub fn apply_role(&mut self, role: Role) -> Result<(), RbacError> {
        let kind = RbacKind::Role;
        let name = name_of(&role.metadata).ok_or(RbacError::MissingField {
            kind,
            field: "metadata.name",
        })?;
        let ns = namespace_of(&role.metadata).ok_or(RbacError::MissingField {
            kind,
            field: "metadata.namespace",
        })?;
        self.roles.insert((ns.to_owned(), name.to_owned()), role);
        Ok(())
    }

    /// Adds or replaces a ClusterRole and recomputes aggregated rules.
    pub fn apply_cluster_role(&mut self, role: ClusterRole) -> Result<(), RbacError> {
        if name_of(&role.metadata).is_none() {
            return Err(RbacError::MissingField {
                kind: RbacKind::ClusterRole,
                field: "metadata.name",
            });
        }
        self.insert_cluster_role(role);
        self.recompute_aggregation();
        Ok(())
    }

    /// Adds or replaces a RoleBinding.
    pub fn apply_role_binding(&mut self, binding: RoleBinding) -> Result<(), RbacError> {
        let kind = RbacKind::RoleBinding;
        let name = name_of(&binding.metadata)
            .ok_or(RbacError::MissingField {
                kind,
                field: "metadata.name",
            })?
            .to_owned();
        let ns = namespace_of(&binding.metadata)
            .ok_or(RbacError::MissingField {
                kind,
                field: "metadata.namespace",
            })?
            .to_owned();
        self.role_bindings
            .entry(ns)
            .or_default()
            .insert(name, binding);
        Ok(())
    }

    /// Adds or replaces a ClusterRoleBinding.
    pub fn apply_cluster_role_binding(
        &mut self,
        binding: ClusterRoleBinding,
    ) -> Result<(), RbacError> {
        if name_of(&binding.metadata).is_none() {
            return Err(RbacError::MissingField {
                kind: RbacKind::ClusterRoleBinding,
                field: "metadata.name",
            });
        }
        self.insert_cluster_role_binding(binding);
        Ok(())
    }

    fn insert_cluster_role(&mut self, role: ClusterRole) {
        if let Some(name) = name_of(&role.metadata) {
            self.cluster_roles.insert(name.to_owned(), role);
        }
    }

    fn insert_cluster_role_binding(&mut self, binding: ClusterRoleBinding) {
        if let Some(name) = name_of(&binding.metadata) {
            self.cluster_role_bindings.insert(name.to_owned(), binding);
        }
    }

    /// The ClusterRoles whose stored `rules` differ from what their aggregationRule selects,
    /// with `rules` replaced: what kube-controller-manager's aggregation controller would
    /// write. The spine stores them; the index already authorizes with the aggregated rules.
    pub fn aggregation_updates(&self) -> Vec<ClusterRole> {
        self.cluster_roles
            .iter()
            .filter(|(_, role)| role.aggregation_rule.is_some())
            .filter_map(|(name, role)| {
                let effective = self.effective_cluster_rules.get(name)?;
                let stored = role.rules.as_deref().unwrap_or_default();
                (stored != effective.as_slice()).then(|| {
                    let mut updated = role.clone();
                    updated.rules = Some(effective.clone());
                    updated
                })
            })
            .collect()
    }

    /// A stored ClusterRole.
    pub fn cluster_role(&self, name: &str) -> Option<&ClusterRole> {
        self.cluster_roles.get(name)
    }

    /// The rules a ClusterRole grants, aggregation applied.
    pub fn cluster_role_rules(&self, name: &str) -> Option<&[PolicyRule]> {
        self.effective_cluster_rules.get(name).map(Vec::as_slice)
    }

    fn recompute_aggregation(&mut self) {
        let mut effective = BTreeMap::new();
        for name in self.cluster_roles.keys() {
            let mut visiting = BTreeSet::new();
            let rules = self.aggregate(name, &mut visiting);
            effective.insert(name.clone(), rules);
        }
        self.effective_cluster_rules = effective;
    }

    /// The aggregation controller's result for `name`, following aggregated roles that are
    /// themselves aggregated (a cycle contributes what was reached before it closed).
    fn aggregate(&self, name: &str, visiting: &mut BTreeSet<String>) -> Vec<PolicyRule> {
        let Some(role) = self.cluster_roles.get(name) else {
            return Vec::new();
        };
        let Some(aggregation) = &role.aggregation_rule else {
            return role.rules.clone().unwrap_or_default();
        };
        if !visiting.insert(name.to_owned()) {
            return role.rules.clone().unwrap_or_default();
        }
        let mut rules: Vec<PolicyRule> = Vec::new();
        let empty = BTreeMap::new();
        for selector in aggregation.cluster_role_selectors.iter().flatten() {
            // BTreeMap iteration is by name, the order the controller sorts matches in.
            for (other_name, other) in &self.cluster_roles {
                if other_name == name {
                    continue;
                }
                let labels = other.metadata.labels.as_ref().unwrap_or(&empty);
                if !selector::selects(selector, labels) {
                    continue;
                }
                for rule in self.aggregate(other_name, visiting) {
                    if !rules.contains(&rule) {
                        rules.push(rule);
                    }
                }
            }
        }
        visiting.remove(name);
        rules
    }

    /// Authorizes `attributes` for `user`: members of `system:masters` always, others when a
    /// rule of a role bound to them allows it.
    pub fn authorize(&self, user: &UserInfo, attributes: &Attributes) -> Decision {
        if user.in_group(SYSTEM_MASTERS) {
            return Decision::Allow {
                reason: String::new(),
            };
        }
        let mut errors = Vec::new();
        let mut allowed_by = None;
        self.visit_rules(
            user,
            attributes.namespace(),
            &mut errors,
            &mut |source, rule| {
                if rule_allows(rule, attributes) {
                    allowed_by = Some(source.describe());
                    return false;
                }
                true
            },
        );
        match allowed_by {
            Some(source) => Decision::Allow {
                reason: format!("RBAC: allowed by {source}"),
            },
            // Worded as kube-apiserver's RBAC authorizer words evaluation errors.
            None => Decision::Deny {
                reason: match errors.as_slice() {
                    [] => String::new(),
                    [one] => format!("RBAC: {one}"),
                    many => format!("RBAC: [{}]", many.join(", ")),
                },
            },
        }
    }

    /// Every rule that applies to `user` in `namespace` (cluster-wide only when empty), for
    /// SelfSubjectRulesReview. `system:masters` gets the wildcard rules.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> RulesFor {
        let mut result = RulesFor::default();
        if user.in_group(SYSTEM_MASTERS) {
            let all = vec![attributes::WILDCARD.to_owned()];
            result.rules.push(PolicyRule {
                verbs: all.clone(),
                api_groups: Some(all.clone()),
                resources: Some(all.clone()),
                ..PolicyRule::default()
            });
            result.rules.push(PolicyRule {
                verbs: all.clone(),
                non_resource_urls: Some(all),
                ..PolicyRule::default()
            });
        }
        let mut rules = Vec::new();
        self.visit_rules(user, namespace, &mut result.errors, &mut |_, rule| {
            rules.push(rule.clone());
            true
        });
        result.rules.extend(rules);
        result
    }

    /// Calls `visit` with every rule bound to `user` (ClusterRoleBindings, then the
    /// RoleBindings of `namespace`) until it returns false.
    fn visit_rules<'a>(
        &'a self,
        user: &UserInfo,
        namespace: &str,
        errors: &mut Vec<String>,
        visit: &mut dyn FnMut(&RuleSource<'a>, &PolicyRule) -> bool,
    ) {
        for (name, binding) in &self.cluster_role_bindings {
            let Some(subject) = matching_subject(binding.subjects.as_deref(), user, "") else {
                continue;
            };
            let Some(rules) = self.role_ref_rules(&binding.role_ref, "", errors) else {
                continue;
            };
            let source = RuleSource {
                binding_kind: "ClusterRoleBinding",
                binding: name.clone(),
                role_ref: &binding.role_ref,
                subject,
            };
            for rule in rules {
                if !visit(&source, rule) {
                    return;
                }
            }
        }
        if namespace.is_empty() {
            return;
        }
        let Some(bindings) = self.role_bindings.get(namespace) else {
            return;
        };
        for (name, binding) in bindings {
            let Some(subject) = matching_subject(binding.subjects.as_deref(), user, namespace)
            else {
                continue;
            };
            let Some(rules) = self.role_ref_rules(&binding.role_ref, namespace, errors) else {
                continue;
            };
            let source = RuleSource {
                binding_kind: "RoleBinding",
                binding: format!("{name}/{namespace}"),
                role_ref: &binding.role_ref,
                subject,
            };
            for rule in rules {
                if !visit(&source, rule) {
                    return;
                }
            }
        }
    }

    fn role_ref_rules(
        &self,
        role_ref: &RoleRef,
        namespace: &str,
        errors: &mut Vec<String>,
    ) -> Option<&[PolicyRule]> {
        match role_ref.kind.as_str() {
            "ClusterRole" => {
                let found = self.effective_cluster_rules.get(&role_ref.name);
                if found.is_none() {
                    errors.push(format!(
                        "clusterrole.rbac.authorization.k8s.io {:?} not found",
                        role_ref.name
                    ));
                }
                found.map(Vec::as_slice)
            }
            "Role" if !namespace.is_empty() => {
                let found = self
                    .roles
                    .get(&(namespace.to_owned(), role_ref.name.clone()));
                if found.is_none() {
                    errors.push(format!(
                        "role.rbac.authorization.k8s.io {:?} not found",
                        role_ref.name
                    ));
                }
                found.map(|r| r.rules.as_deref().unwrap_or_default())
            }
            other => {
                errors.push(format!("unsupported role reference kind: {other:?}"));
                None
            }
        }
    }
}

/// Where a rule came from, for the "allowed by" reason.
struct RuleSource<'a> {
    binding_kind: &'static str,
    binding: String,
    role_ref: &'a RoleRef,
    subject: &'a Subject,
}

impl RuleSource<'_> {
    fn describe(&self) -> String {
        let subject = match self.subject.kind.as_str() {
            "ServiceAccount" => format!(
                "ServiceAccount {:?}",
                format!(
                    "{}/{}",
                    self.subject.name,
                    self.subject.namespace.as_deref().unwrap_or_default()
                )
            ),
            kind => format!("{kind} {:?}", self.subject.name),
        };
        format!(
            "{} {:?} of {} {:?} to {subject}",
            self.binding_kind, self.binding, self.role_ref.kind, self.role_ref.name
        )
    }
}

/// The first subject of a binding that names `user`, with kube-apiserver's rules:
/// ServiceAccount subjects without a namespace take the binding's namespace.
fn matching_subject<'a>(
    subjects: Option<&'a [Subject]>,
    user: &UserInfo,
    binding_namespace: &str,
) -> Option<&'a Subject> {
    subjects?
        .iter()
        .find(|subject| match subject.kind.as_str() {
            "User" => subject.name == user.username,
            "Group" => user.in_group(&subject.name),
            "ServiceAccount" => {
                let ns = subject
                    .namespace
                    .as_deref()
                    .filter(|ns| !ns.is_empty())
                    .unwrap_or(binding_namespace);
                !ns.is_empty()
                    && user
                        .username
                        .strip_prefix(SERVICE_ACCOUNT_USER_PREFIX)
                        .and_then(|rest| rest.split_once(':'))
                        == Some((ns, subject.name.as_str()))
            }
            _ => false,
        })
}

#[cfg(test)]
mod tests;
