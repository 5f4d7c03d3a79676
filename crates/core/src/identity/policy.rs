//! Policies read for `policy explain`: a Calico NetworkPolicy or
//! GlobalNetworkPolicy (`projectcalico.org/v3`, or its
//! `crd.projectcalico.org/v1` storage form), or a Kubernetes NetworkPolicy,
//! turned into the selections Calico makes of them.
//!
//! The policy's own selector selects only LOCAL endpoints (a policy applies
//! where it is written); rule selectors select local and remote endpoints
//! (federated endpoint identity). In a namespaced policy a rule selector
//! without a `namespaceSelector` is confined to the policy's namespace.
//! A Kubernetes NetworkPolicy is read as Calico converts it: its label
//! selectors become Calico selectors on pods (`projectcalico.org/orchestrator
//! == "k8s"`), each `from`/`to` peer a rule of its own.

use std::fmt;
use std::sync::Arc;

use fedmesh_selector::{ParseError, Selector};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

use super::endpoint::{ORCHESTRATOR_K8S, ORCHESTRATOR_LABEL};
use super::query::{EndpointQuery, NamespaceScope, Reach, ServiceAccountMatch};

/// What kind of policy was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// A Calico NetworkPolicy (namespaced).
    CalicoNetworkPolicy,
    /// A Calico GlobalNetworkPolicy.
    CalicoGlobalNetworkPolicy,
    /// A Kubernetes NetworkPolicy.
    KubernetesNetworkPolicy,
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyKind::CalicoNetworkPolicy => "NetworkPolicy (projectcalico.org)",
            PolicyKind::CalicoGlobalNetworkPolicy => "GlobalNetworkPolicy (projectcalico.org)",
            PolicyKind::KubernetesNetworkPolicy => "NetworkPolicy (networking.k8s.io)",
        })
    }
}

/// Which policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRef {
    /// Its kind.
    pub kind: PolicyKind,
    /// Its namespace (`None` for a GlobalNetworkPolicy).
    pub namespace: Option<Arc<str>>,
    /// Its name.
    pub name: String,
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Ingress or egress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Traffic to the policy's endpoints.
    Ingress,
    /// Traffic from the policy's endpoints.
    Egress,
}

/// Where a rule sits in its policy, counted from 1 as a user reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleId {
    /// Ingress or egress.
    pub direction: Direction,
    /// The rule's position (1-based).
    pub rule: usize,
    /// For a Kubernetes NetworkPolicy, the `from`/`to` peer's position
    /// (1-based): Calico makes one rule per peer.
    pub peer: Option<usize>,
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let direction = match self.direction {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        };
        write!(f, "{direction} rule {}", self.rule)?;
        if let Some(peer) = self.peer {
            write!(f, " peer {peer}")?;
        }
        Ok(())
    }
}

/// One side (source or destination) of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Peer {
    /// The endpoints it selects by identity, if it selects by identity.
    pub selection: Option<EndpointQuery>,
    /// Endpoints excluded by `notSelector` (in the same scope).
    pub not_selector: Option<Selector>,
    /// CIDRs it matches (`nets`, a Kubernetes `ipBlock.cidr`).
    pub nets: Vec<String>,
    /// CIDRs it excludes (`notNets`, `ipBlock.except`).
    pub not_nets: Vec<String>,
}

impl Peer {
    /// Whether the side matches any traffic: nothing restricts it.
    pub fn is_any(&self) -> bool {
        self.selection.is_none()
            && self.not_selector.is_none()
            && self.nets.is_empty()
            && self.not_nets.is_empty()
    }
}

/// A rule: its action and both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Where it is.
    pub id: RuleId,
    /// `Allow`, `Deny`, `Pass` or `Log`.
    pub action: String,
    /// Where traffic comes from.
    pub source: Peer,
    /// Where traffic goes to.
    pub destination: Peer,
}

/// A policy as selections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Which policy.
    pub reference: PolicyRef,
    /// The endpoints it applies to (local only).
    pub applies_to: EndpointQuery,
    /// Its rules, ingress first.
    pub rules: Vec<Rule>,
}

/// Why a policy could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not a policy fedmesh can explain.
    #[error(
        "{api_version}/{kind} is not a policy fedmesh can explain (projectcalico.org/v3 \
         NetworkPolicy or GlobalNetworkPolicy, or networking.k8s.io/v1 NetworkPolicy)"
    )]
    UnknownKind {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
    /// The policy has no name.
    #[error("the policy has no metadata.name")]
    MissingName,
    /// A namespaced policy without a namespace.
    #[error("{kind} {name:?} has no metadata.namespace")]
    MissingNamespace {
        /// The policy's kind.
        kind: PolicyKind,
        /// Its name.
        name: String,
    },
    /// A selector that does not parse.
    #[error("{at}: invalid selector {selector:?}: {error}")]
    InvalidSelector {
        /// Where: the policy's selector or a rule's side and field.
        at: String,
        /// The selector as written (or as converted from a label selector).
        selector: String,
        /// What is wrong with it.
        error: ParseError,
    },
    /// A field of the wrong shape.
    #[error("{at}: {problem}")]
    InvalidField {
        /// Where.
        at: String,
        /// What is wrong.
        problem: String,
    },
}

impl Policy {
    /// Reads a policy object, Calico or Kubernetes, from its JSON.
    pub fn from_json(object: &Value) -> Result<Self, PolicyError> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let group = api_version.split('/').next().unwrap_or("");
        match (group, kind) {
            ("projectcalico.org" | "crd.projectcalico.org", "NetworkPolicy") => {
                calico(object, PolicyKind::CalicoNetworkPolicy)
            }
            ("projectcalico.org" | "crd.projectcalico.org", "GlobalNetworkPolicy") => {
                calico(object, PolicyKind::CalicoGlobalNetworkPolicy)
            }
            ("networking.k8s.io", "NetworkPolicy") => {
                let policy: NetworkPolicy =
                    serde_json::from_value(object.clone()).map_err(|e| {
                        PolicyError::InvalidField {
                            at: "NetworkPolicy".into(),
                            problem: e.to_string(),
                        }
                    })?;
                Policy::from_kubernetes(&policy)
            }
            _ => Err(PolicyError::UnknownKind {
                api_version: api_version.into(),
                kind: kind.into(),
            }),
        }
    }

    /// Reads a Kubernetes NetworkPolicy as Calico converts it.
    pub fn from_kubernetes(policy: &NetworkPolicy) -> Result<Self, PolicyError> {
        let kind = PolicyKind::KubernetesNetworkPolicy;
        let name = policy
            .metadata
            .name
            .clone()
            .ok_or(PolicyError::MissingName)?;
        let namespace: Arc<str> = policy
            .metadata
            .namespace
            .as_deref()
            .ok_or_else(|| PolicyError::MissingNamespace {
                kind,
                name: name.clone(),
            })?
            .into();
        let spec = policy.spec.clone().unwrap_or_default();
        let pods = pod_selector(spec.pod_selector.as_ref(), "spec.podSelector")?;
        let applies_to = EndpointQuery {
            selector: pods,
            namespace: NamespaceScope::In(namespace.clone()),
            service_accounts: None,
            reach: Reach::Local,
        };
        let mut rules = Vec::new();
        let ingress = spec
            .ingress
            .iter()
            .flatten()
            .map(|r| (Direction::Ingress, r.from.as_deref()));
        let egress = spec
            .egress
            .iter()
            .flatten()
            .map(|r| (Direction::Egress, r.to.as_deref()));
        let numbered = ingress
            .enumerate()
            .chain(egress.enumerate())
            .map(|(i, (direction, peers))| (direction, i + 1, peers.unwrap_or_default()));
        for (direction, rule, peers) in numbered {
            if peers.is_empty() {
                // No peers: every source (ingress) or destination (egress).
                rules.push(kubernetes_rule(direction, rule, None, Peer::default()));
                continue;
            }
            for (i, peer) in peers.iter().enumerate() {
                let id = RuleId {
                    direction,
                    rule,
                    peer: Some(i + 1),
                };
                let side = kubernetes_peer(peer, &namespace, &id)?;
                rules.push(kubernetes_rule(direction, rule, Some(i + 1), side));
            }
        }
        Ok(Policy {
            reference: PolicyRef {
                kind,
                namespace: Some(namespace),
                name,
            },
            applies_to,
            rules,
        })
    }
}

fn kubernetes_rule(direction: Direction, rule: usize, peer: Option<usize>, side: Peer) -> Rule {
    let (source, destination) = match direction {
        Direction::Ingress => (side, Peer::default()),
        Direction::Egress => (Peer::default(), side),
    };
    Rule {
        id: RuleId {
            direction,
            rule,
            peer,
        },
        action: "Allow".into(),
        source,
        destination,
    }
}

fn kubernetes_peer(
    peer: &NetworkPolicyPeer,
    namespace: &Arc<str>,
    id: &RuleId,
) -> Result<Peer, PolicyError> {
    if let Some(block) = &peer.ip_block {
        return Ok(Peer {
            nets: vec![block.cidr.clone()],
            not_nets: block.except.clone().unwrap_or_default(),
            ..Peer::default()
        });
    }
    let selector = pod_selector(peer.pod_selector.as_ref(), &format!("{id} podSelector"))?;
    let scope = match &peer.namespace_selector {
        None => NamespaceScope::In(namespace.clone()),
        Some(ns) => NamespaceScope::Matching(parse(
            &label_selector(ns, &format!("{id} namespaceSelector"))?,
            &format!("{id} namespaceSelector"),
        )?),
    };
    Ok(Peer {
        selection: Some(EndpointQuery {
            selector,
            namespace: scope,
            service_accounts: None,
            reach: Reach::Everywhere,
        }),
        ..Peer::default()
    })
}

/// A Kubernetes pod selector as Calico reads it: pods only.
fn pod_selector(selector: Option<&LabelSelector>, at: &str) -> Result<Selector, PolicyError> {
    let pods = format!("{ORCHESTRATOR_LABEL} == '{ORCHESTRATOR_K8S}'");
    let text = match selector {
        Some(s) => format!("{pods} && ({})", label_selector(s, at)?),
        None => pods,
    };
    parse(&text, at)
}

/// A Kubernetes label selector as a Calico selector (empty: `all()`).
fn label_selector(selector: &LabelSelector, at: &str) -> Result<String, PolicyError> {
    let mut parts = Vec::new();
    for (k, v) in selector.match_labels.iter().flatten() {
        parts.push(format!("{k} == {}", quote(v, at)?));
    }
    for expr in selector.match_expressions.iter().flatten() {
        let values = || -> Result<String, PolicyError> {
            let quoted: Result<Vec<String>, PolicyError> =
                expr.values.iter().flatten().map(|v| quote(v, at)).collect();
            Ok(quoted?.join(", "))
        };
        let key = &expr.key;
        parts.push(match expr.operator.as_str() {
            "In" => format!("{key} in {{{}}}", values()?),
            "NotIn" => format!("{key} not in {{{}}}", values()?),
            "Exists" => format!("has({key})"),
            "DoesNotExist" => format!("!has({key})"),
            other => {
                return Err(PolicyError::InvalidField {
                    at: at.into(),
                    problem: format!(
                        "matchExpressions operator {other:?} is not In, NotIn, Exists or DoesNotExist"
                    ),
                });
            }
        });
    }
    Ok(if parts.is_empty() {
        "all()".into()
    } else {
        parts.join(" && ")
    })
}

/// A string literal for a Calico selector (which has no escapes).
fn quote(value: &str, at: &str) -> Result<String, PolicyError> {
    match (value.contains('\''), value.contains('"')) {
        (false, _) => Ok(format!("'{value}'")),
        (true, false) => Ok(format!("\"{value}\"")),
        (true, true) => Err(PolicyError::InvalidField {
            at: at.into(),
            problem: format!("label value {value:?} holds both kinds of quote"),
        }),
    }
}

fn parse(text: &str, at: &str) -> Result<Selector, PolicyError> {
    Selector::parse(text).map_err(|error| PolicyError::InvalidSelector {
        at: at.into(),
        selector: text.into(),
        error,
    })
}

fn optional_selector(
    object: Option<&Value>,
    field: &str,
    at: &str,
) -> Result<Option<Selector>, PolicyError> {
    match object.and_then(|o| o.get(field)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => parse(text, &format!("{at}.{field}")).map(Some),
        Some(_) => Err(PolicyError::InvalidField {
            at: format!("{at}.{field}"),
            problem: "is not a string".into(),
        }),
    }
}

fn strings(object: Option<&Value>, field: &str, at: &str) -> Result<Vec<String>, PolicyError> {
    match object.and_then(|o| o.get(field)) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| PolicyError::InvalidField {
                        at: format!("{at}.{field}"),
                        problem: format!("{v} is not a string"),
                    })
            })
            .collect(),
        Some(_) => Err(PolicyError::InvalidField {
            at: format!("{at}.{field}"),
            problem: "is not a list".into(),
        }),
    }
}

/// `namespaceSelector` as a scope: `global()` means outside any namespace.
fn namespace_scope(selector: Selector) -> NamespaceScope {
    if selector.canonical() == "global()" {
        NamespaceScope::NonNamespaced
    } else {
        NamespaceScope::Matching(selector)
    }
}

fn calico(object: &Value, kind: PolicyKind) -> Result<Policy, PolicyError> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .ok_or(PolicyError::MissingName)?
        .to_owned();
    let namespace: Option<Arc<str>> = match kind {
        PolicyKind::CalicoNetworkPolicy => Some(
            object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .ok_or_else(|| PolicyError::MissingNamespace {
                    kind,
                    name: name.clone(),
                })?
                .into(),
        ),
        _ => None,
    };
    let spec = object.get("spec");
    let selector = optional_selector(spec, "selector", "spec")?.unwrap_or_else(Selector::all);
    let scope = match (
        &namespace,
        optional_selector(spec, "namespaceSelector", "spec")?,
    ) {
        (Some(ns), _) => NamespaceScope::In(ns.clone()),
        (None, Some(sel)) => namespace_scope(sel),
        (None, None) => NamespaceScope::Any,
    };
    let service_accounts =
        optional_selector(spec, "serviceAccountSelector", "spec")?.map(|s| ServiceAccountMatch {
            names: Vec::new(),
            selector: Some(s),
        });
    let applies_to = EndpointQuery {
        selector,
        namespace: scope,
        service_accounts,
        reach: Reach::Local,
    };
    let mut rules = Vec::new();
    for (direction, field) in [
        (Direction::Ingress, "ingress"),
        (Direction::Egress, "egress"),
    ] {
        let list = match spec.and_then(|s| s.get(field)) {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(list)) => list.as_slice(),
            Some(_) => {
                return Err(PolicyError::InvalidField {
                    at: format!("spec.{field}"),
                    problem: "is not a list".into(),
                });
            }
        };
        for (i, rule) in list.iter().enumerate() {
            let id = RuleId {
                direction,
                rule: i + 1,
                peer: None,
            };
            rules.push(Rule {
                id,
                action: rule
                    .get("action")
                    .and_then(Value::as_str)
                    .unwrap_or("Allow")
                    .to_owned(),
                source: calico_peer(rule.get("source"), &namespace, &format!("{id} source"))?,
                destination: calico_peer(
                    rule.get("destination"),
                    &namespace,
                    &format!("{id} destination"),
                )?,
            });
        }
    }
    Ok(Policy {
        reference: PolicyRef {
            kind,
            namespace,
            name,
        },
        applies_to,
        rules,
    })
}

/// A Calico EntityRule as a selection, with Calico's namespace scoping.
fn calico_peer(
    side: Option<&Value>,
    namespace: &Option<Arc<str>>,
    at: &str,
) -> Result<Peer, PolicyError> {
    let selector = optional_selector(side, "selector", at)?;
    let not_selector = optional_selector(side, "notSelector", at)?;
    let namespace_selector = optional_selector(side, "namespaceSelector", at)?;
    let accounts = side.and_then(|s| s.get("serviceAccounts"));
    let service_accounts = match accounts {
        None | Some(Value::Null) => None,
        Some(accounts) => Some(ServiceAccountMatch {
            names: strings(Some(accounts), "names", &format!("{at}.serviceAccounts"))?
                .into_iter()
                .map(Arc::from)
                .collect(),
            selector: optional_selector(
                Some(accounts),
                "selector",
                &format!("{at}.serviceAccounts"),
            )?,
        }),
    };
    let by_identity = selector.is_some()
        || not_selector.is_some()
        || namespace_selector.is_some()
        || service_accounts.is_some();
    let selection = by_identity.then(|| EndpointQuery {
        selector: selector.unwrap_or_else(Selector::all),
        namespace: match (namespace_selector, namespace) {
            (Some(sel), _) => namespace_scope(sel),
            (None, Some(ns)) => NamespaceScope::In(ns.clone()),
            (None, None) => NamespaceScope::Any,
        },
        service_accounts,
        reach: Reach::Everywhere,
    });
    Ok(Peer {
        selection,
        not_selector,
        nets: strings(side, "nets", at)?,
        not_nets: strings(side, "notNets", at)?,
    })
}
