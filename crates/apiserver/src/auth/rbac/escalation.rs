//! RBAC's privilege escalation prevention: a user may only write a Role or ClusterRole whose
//! rules they already hold (or with the `escalate` verb on it), and may only bind a role whose
//! rules they hold (or with the `bind` verb on it), as kube-apiserver's RBAC storage enforces.

use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef};
use serde_json::Value;

use super::attributes::{Attributes, Forbidden, ResourceAttributes, WILDCARD};
use super::{RBAC_GROUP, RbacIndex, RbacKind};
use crate::auth::user::{SYSTEM_MASTERS, UserInfo};

/// Splits a rule into rules of one group, resource, verb and resource name (or one URL and
/// verb), so that each piece is covered by a single owner rule or not at all.
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| Some(vec![s.clone()]);
    let mut pieces = Vec::new();
    for group in rule.api_groups.iter().flatten() {
        for resource in rule.resources.iter().flatten() {
            for verb in &rule.verbs {
                let base = PolicyRule {
                    api_groups: one(group),
                    resources: one(resource),
                    verbs: vec![verb.clone()],
                    ..PolicyRule::default()
                };
                match rule.resource_names.as_deref() {
                    Some(names) if !names.is_empty() => {
                        for name in names {
                            pieces.push(PolicyRule {
                                resource_names: one(name),
                                ..base.clone()
                            });
                        }
                    }
                    _ => pieces.push(base),
                }
            }
        }
    }
    for url in rule.non_resource_urls.iter().flatten() {
        for verb in &rule.verbs {
            pieces.push(PolicyRule {
                non_resource_urls: one(url),
                verbs: vec![verb.clone()],
                ..PolicyRule::default()
            });
        }
    }
    pieces
}

fn list(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or_default()
}

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == item)
}

fn has_all(set: &[String], items: &[String]) -> bool {
    items.iter().all(|i| has(set, i))
}

fn resources_cover(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, WILDCARD) {
        return true;
    }
    wanted.iter().all(|path| {
        has(owner, path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

fn urls_cover(owner: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|path| {
        owner.iter().any(|o| {
            o == path
                || o.strip_suffix('*')
                    .is_some_and(|prefix| path.starts_with(prefix.trim_end_matches('*')))
        })
    })
}

/// Whether `owner` covers the atomic rule `piece` (one verb, resource and name, or one URL).
fn rule_covers(owner: &PolicyRule, piece: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, WILDCARD) || has_all(&owner.verbs, &piece.verbs);
    let owner_groups = list(&owner.api_groups);
    let groups = has(owner_groups, WILDCARD) || has_all(owner_groups, list(&piece.api_groups));
    let resources = resources_cover(list(&owner.resources), list(&piece.resources));
    let urls = urls_cover(
        list(&owner.non_resource_urls),
        list(&piece.non_resource_urls),
    );
    let owner_names = list(&owner.resource_names);
    let piece_names = list(&piece.resource_names);
    let names =
        owner_names.is_empty() || (!piece_names.is_empty() && has_all(owner_names, piece_names));
    verbs && groups && resources && urls && names
}

/// Whether `owner` rules grant everything `wanted` rules grant; the second value lists the
/// atomic rules that are not covered.
pub fn covers(owner: &[PolicyRule], wanted: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let missing: Vec<PolicyRule> = wanted
        .iter()
        .flat_map(breakdown)
        .filter(|piece| !owner.iter().any(|o| rule_covers(o, piece)))
        .collect();
    (missing.is_empty(), missing)
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_quoted(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", inner.join(" "))
}

/// kube's compact one-line form of a rule.
fn compact_string(rule: &PolicyRule) -> String {
    let mut parts = Vec::new();
    for (label, values) in [
        ("APIGroups", list(&rule.api_groups)),
        ("Resources", list(&rule.resources)),
        ("NonResourceURLs", list(&rule.non_resource_urls)),
        ("ResourceNames", list(&rule.resource_names)),
        ("Verbs", rule.verbs.as_slice()),
    ] {
        if !values.is_empty() {
            parts.push(format!("{label}:{}", go_quoted(values)));
        }
    }
    format!("{{{}}}", parts.join(", "))
}

/// Merges atomic rules that differ only in their verb, as kube does before reporting them.
fn compact(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut merged: Vec<PolicyRule> = Vec::new();
    for rule in rules {
        let same = merged.iter_mut().find(|m| {
            m.api_groups == rule.api_groups
                && m.resources == rule.resources
                && m.resource_names == rule.resource_names
                && m.non_resource_urls == rule.non_resource_urls
        });
        match same {
            Some(existing) => {
                for verb in rule.verbs {
                    if !existing.verbs.contains(&verb) {
                        existing.verbs.push(verb);
                    }
                }
            }
            None => merged.push(rule),
        }
    }
    merged
}

fn forbidden(kind: RbacKind, name: &str, cause: String) -> Forbidden {
    let resource = match kind {
        RbacKind::Role => "roles",
        RbacKind::ClusterRole => "clusterroles",
        RbacKind::RoleBinding => "rolebindings",
        RbacKind::ClusterRoleBinding => "clusterrolebindings",
    };
    Forbidden {
        message: format!("{resource}.{RBAC_GROUP} {name:?} is forbidden: {cause}"),
        name: name.to_owned(),
        group: RBAC_GROUP.to_owned(),
        kind: resource.to_owned(),
    }
}

impl RbacIndex {
    /// Whether `user` may perform `verb` (`escalate` or `bind`) on the named role.
    fn role_verb_allowed(
        &self,
        user: &UserInfo,
        verb: &str,
        role_kind: &str,
        role_name: &str,
        namespace: &str,
    ) -> bool {
        let resource = if role_kind == "Role" {
            "roles"
        } else {
            "clusterroles"
        };
        let attributes = Attributes::Resource(
            ResourceAttributes::new(verb, RBAC_GROUP, resource)
                .in_namespace(namespace)
                .named(role_name),
        );
        self.authorize(user, &attributes).is_allowed()
    }

    fn confirm_no_escalation(
        &self,
        user: &UserInfo,
        namespace: &str,
        rules: &[PolicyRule],
    ) -> Result<(), String> {
        let owner = self.rules_for(user, namespace);
        let (covered, missing) = covers(&owner.rules, rules);
        if covered {
            return Ok(());
        }
        let mut descriptions: Vec<String> = compact(missing).iter().map(compact_string).collect();
        descriptions.sort();
        descriptions.dedup();
        let mut message = format!(
            "user {:?} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            user.username,
            go_quoted(&user.groups),
            descriptions.join("\n")
        );
        if !owner.errors.is_empty() {
            message.push_str(&format!(
                "; resolution errors: [{}]",
                owner.errors.join(" ")
            ));
        }
        Err(message)
    }

    /// Checks that `user` may create or update a Role (in `namespace`) or ClusterRole (empty
    /// namespace) with these rules and aggregation rule.
    pub fn check_role_write(
        &self,
        user: &UserInfo,
        kind: RbacKind,
        namespace: &str,
        name: &str,
        rules: &[PolicyRule],
        has_aggregation_rule: bool,
    ) -> Result<(), Forbidden> {
        if user.in_group(SYSTEM_MASTERS) {
            return Ok(());
        }
        let role_kind = if kind == RbacKind::Role {
            "Role"
        } else {
            "ClusterRole"
        };
        if self.role_verb_allowed(user, "escalate", role_kind, name, namespace) {
            return Ok(());
        }
        if has_aggregation_rule {
            // An aggregation rule can gather anything, so it needs full authority.
            let everything = vec![WILDCARD.to_owned()];
            let full = [
                PolicyRule {
                    api_groups: Some(everything.clone()),
                    resources: Some(everything.clone()),
                    verbs: everything.clone(),
                    ..PolicyRule::default()
                },
                PolicyRule {
                    non_resource_urls: Some(everything.clone()),
                    verbs: everything,
                    ..PolicyRule::default()
                },
            ];
            if self.confirm_no_escalation(user, namespace, &full).is_err() {
                return Err(forbidden(
                    kind,
                    name,
                    "must have cluster-admin privileges to use the aggregationRule".to_owned(),
                ));
            }
        }
        self.confirm_no_escalation(user, namespace, rules)
            .map_err(|cause| forbidden(kind, name, cause))
    }

    /// Checks that `user` may create or update a RoleBinding (in `namespace`) or
    /// ClusterRoleBinding (empty namespace) named `name` that references `role_ref`.
    pub fn check_binding_write(
        &self,
        user: &UserInfo,
        kind: RbacKind,
        namespace: &str,
        name: &str,
        role_ref: &RoleRef,
    ) -> Result<(), Forbidden> {
        if user.in_group(SYSTEM_MASTERS) {
            return Ok(());
        }
        if self.role_verb_allowed(user, "bind", &role_ref.kind, &role_ref.name, namespace) {
            return Ok(());
        }
        let mut errors = Vec::new();
        let rules = self
            .role_ref_rules(role_ref, namespace, &mut errors)
            .ok_or_else(|| forbidden(kind, name, errors.join(", ")))?;
        self.confirm_no_escalation(user, namespace, rules)
            .map_err(|cause| forbidden(kind, name, cause))
    }

    /// [`Self::check_role_write`] or [`Self::check_binding_write`] for an RBAC object given
    /// as JSON (what a create or update request carries). Non-RBAC objects pass.
    pub fn check_write_json(&self, user: &UserInfo, object: &Value) -> Result<(), Forbidden> {
        let kind_name = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(kind) = RbacKind::from_kind(kind_name) else {
            return Ok(());
        };
        let meta = object.get("metadata");
        let field = |f: &str| {
            meta.and_then(|m| m.get(f))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let name = field("name");
        let namespace = match kind {
            RbacKind::Role | RbacKind::RoleBinding => field("namespace"),
            RbacKind::ClusterRole | RbacKind::ClusterRoleBinding => "",
        };
        let undecodable = |what: &str| {
            forbidden(
                kind,
                name,
                format!("cannot check the {what} of this object for privilege escalation"),
            )
        };
        match kind {
            RbacKind::Role | RbacKind::ClusterRole => {
                let rules: Vec<PolicyRule> = match object.get("rules") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(rules) => {
                        serde_json::from_value(rules.clone()).map_err(|_| undecodable("rules"))?
                    }
                };
                let aggregation = object.get("aggregationRule").is_some_and(|a| !a.is_null());
                self.check_role_write(user, kind, namespace, name, &rules, aggregation)
            }
            RbacKind::RoleBinding | RbacKind::ClusterRoleBinding => {
                let role_ref: RoleRef = object
                    .get("roleRef")
                    .and_then(|r| serde_json::from_value(r.clone()).ok())
                    .ok_or_else(|| undecodable("roleRef"))?;
                self.check_binding_write(user, kind, namespace, name, &role_ref)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        PolicyRule {
            verbs: v(verbs),
            api_groups: Some(v(groups)),
            resources: Some(v(resources)),
            resource_names: (!names.is_empty()).then(|| v(names)),
            non_resource_urls: None,
        }
    }

    fn url_rule(verbs: &[&str], urls: &[&str]) -> PolicyRule {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        PolicyRule {
            verbs: v(verbs),
            non_resource_urls: Some(v(urls)),
            ..PolicyRule::default()
        }
    }

    #[test]
    fn covers_table() {
        let pods_rw = rule(&["get", "list", "create"], &[""], &["pods"], &[]);
        let all = rule(&["*"], &["*"], &["*"], &[]);
        let scale = rule(&["update"], &["apps"], &["*/scale"], &[]);
        let named = rule(&["get"], &[""], &["configmaps"], &["a", "b"]);
        let cases: Vec<(Vec<PolicyRule>, PolicyRule, bool)> = vec![
            (
                vec![pods_rw.clone()],
                rule(&["get", "list"], &[""], &["pods"], &[]),
                true,
            ),
            (
                vec![pods_rw.clone()],
                rule(&["delete"], &[""], &["pods"], &[]),
                false,
            ),
            (
                vec![pods_rw.clone()],
                rule(&["get"], &[""], &["pods", "secrets"], &[]),
                false,
            ),
            (
                vec![pods_rw.clone()],
                rule(&["*"], &[""], &["pods"], &[]),
                false,
            ),
            (vec![all.clone()], rule(&["*"], &["*"], &["*"], &[]), true),
            (
                vec![scale.clone()],
                rule(&["update"], &["apps"], &["deployments/scale"], &[]),
                true,
            ),
            (
                vec![scale],
                rule(&["update"], &["apps"], &["deployments"], &[]),
                false,
            ),
            (
                vec![named.clone()],
                rule(&["get"], &[""], &["configmaps"], &["a"]),
                true,
            ),
            (
                vec![named.clone()],
                rule(&["get"], &[""], &["configmaps"], &["c"]),
                false,
            ),
            (
                vec![named],
                rule(&["get"], &[""], &["configmaps"], &[]),
                false,
            ),
            (
                vec![pods_rw.clone()],
                rule(&["get"], &[""], &["pods"], &["x"]),
                true,
            ),
            (
                vec![url_rule(&["get"], &["/apis/*"])],
                url_rule(&["get"], &["/apis/apps"]),
                true,
            ),
            (
                vec![url_rule(&["get"], &["/apis/*"])],
                url_rule(&["get"], &["/api"]),
                false,
            ),
            (
                vec![pods_rw.clone(), url_rule(&["get"], &["/healthz"])],
                url_rule(&["get"], &["/healthz"]),
                true,
            ),
        ];
        for (i, (owner, wanted, expected)) in cases.into_iter().enumerate() {
            assert_eq!(covers(&owner, &[wanted]).0, expected, "case {i}");
        }
    }

    fn index() -> RbacIndex {
        let mut index = RbacIndex::with_bootstrap_policy();
        for (ns, who, role) in [("team", "owner", "admin"), ("team", "editor", "edit")] {
            index
                .apply_json(&json!({
                    "kind": "RoleBinding",
                    "metadata": {"name": who, "namespace": ns},
                    "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
                    "subjects": [{"kind": "User", "name": who}],
                }))
                .unwrap();
        }
        index
    }

    fn binding(kind: &str, ns: Option<&str>, role_kind: &str, role: &str) -> Value {
        let mut metadata = json!({"name": "b"});
        if let Some(ns) = ns {
            metadata["namespace"] = json!(ns);
        }
        json!({
            "kind": kind,
            "metadata": metadata,
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": role},
            "subjects": [{"kind": "User", "name": "friend"}],
        })
    }

    #[test]
    fn namespace_admin_may_bind_edit_but_not_cluster_admin() {
        let index = index();
        let owner = UserInfo::authenticated("owner", &[]);
        assert!(
            index
                .check_write_json(
                    &owner,
                    &binding("RoleBinding", Some("team"), "ClusterRole", "edit")
                )
                .is_ok()
        );
        assert!(
            index
                .check_write_json(
                    &owner,
                    &binding("RoleBinding", Some("team"), "ClusterRole", "view")
                )
                .is_ok()
        );
        let err = index
            .check_write_json(
                &owner,
                &binding("RoleBinding", Some("team"), "ClusterRole", "cluster-admin"),
            )
            .unwrap_err();
        assert!(err.message.starts_with(
            "rolebindings.rbac.authorization.k8s.io \"b\" is forbidden: user \"owner\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n"
        ), "{}", err.message);
        assert!(
            err.message
                .contains("{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}"),
            "{}",
            err.message
        );
        // Outside the namespace the admin holds nothing to grant.
        assert!(
            index
                .check_write_json(
                    &owner,
                    &binding("RoleBinding", Some("elsewhere"), "ClusterRole", "view")
                )
                .is_err()
        );
        assert!(
            index
                .check_write_json(
                    &owner,
                    &binding("ClusterRoleBinding", None, "ClusterRole", "view")
                )
                .is_err()
        );
        assert!(
            index
                .check_write_json(
                    &UserInfo::admin(),
                    &binding("ClusterRoleBinding", None, "ClusterRole", "cluster-admin")
                )
                .is_ok()
        );
    }

    #[test]
    fn roles_may_only_hold_rules_the_writer_holds() {
        let index = index();
        let owner = UserInfo::authenticated("owner", &[]);
        let editor = UserInfo::authenticated("editor", &[]);
        let role = |rules: Value| json!({"kind": "Role", "metadata": {"name": "r", "namespace": "team"}, "rules": rules});
        let pods =
            role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "create"]}]));
        assert!(index.check_write_json(&owner, &pods).is_ok());
        let nodes = role(
            json!([{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": ["get", "list"]}]),
        );
        let err = index.check_write_json(&owner, &nodes).unwrap_err();
        assert!(
            err.message.ends_with("not currently held:\n{APIGroups:[\"\"], Resources:[\"nodes\"], Verbs:[\"get\" \"list\"]}"),
            "{}",
            err.message
        );
        let aggregated = json!({
            "kind": "ClusterRole",
            "metadata": {"name": "agg"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]},
        });
        assert_eq!(
            index
                .check_write_json(&owner, &aggregated)
                .unwrap_err()
                .message,
            "clusterroles.rbac.authorization.k8s.io \"agg\" is forbidden: must have cluster-admin privileges to use the aggregationRule"
        );
        // Editors cannot write RBAC at all; that is the authorizer's job, but their rules
        // would not escalate beyond edit either.
        assert!(index.check_write_json(&editor, &pods).is_ok());
    }

    #[test]
    fn escalate_and_bind_verbs_bypass_the_rule_check() {
        let mut index = index();
        index
            .apply_json(&json!({
                "kind": "ClusterRole",
                "metadata": {"name": "delegate"},
                "rules": [
                    {"apiGroups": [RBAC_GROUP], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["cluster-admin"]},
                    {"apiGroups": [RBAC_GROUP], "resources": ["roles"], "verbs": ["escalate"]},
                ],
            }))
            .unwrap();
        index
            .apply_json(&json!({
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "delegate"},
                "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "delegate"},
                "subjects": [{"kind": "User", "name": "delegate"}],
            }))
            .unwrap();
        let delegate = UserInfo::authenticated("delegate", &[]);
        assert!(
            index
                .check_write_json(
                    &delegate,
                    &binding("ClusterRoleBinding", None, "ClusterRole", "cluster-admin")
                )
                .is_ok()
        );
        assert!(
            index
                .check_write_json(
                    &delegate,
                    &binding("ClusterRoleBinding", None, "ClusterRole", "admin")
                )
                .is_err()
        );
        let wide = json!({"kind": "Role", "metadata": {"name": "r", "namespace": "x"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
        assert!(index.check_write_json(&delegate, &wide).is_ok());
        assert!(
            index
                .check_write_json(&delegate, &json!({"kind": "ConfigMap"}))
                .is_ok()
        );
        let missing_role = binding("RoleBinding", Some("team"), "Role", "absent");
        let err = index
            .check_write_json(&UserInfo::authenticated("owner", &[]), &missing_role)
            .unwrap_err();
        assert!(
            err.message
                .contains("role.rbac.authorization.k8s.io \"absent\" not found"),
            "{}",
            err.message
        );
    }
}
