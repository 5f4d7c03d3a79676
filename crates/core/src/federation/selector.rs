//! Federation v1's `federation.alpha.kubernetes.io/cluster-selector`
//! annotation: which member clusters get a federated object.
//!
//! The value is a JSON list of requirements over the Cluster objects' labels,
//! all of which must hold:
//!
//! ```json
//! [{"key": "environment", "operator": "In", "values": ["prod", "staging"]},
//!  {"key": "pci", "operator": "DoesNotExist"}]
//! ```
//!
//! Operators are Kubernetes label-selector operators: `In`, `NotIn`,
//! `Exists`, `DoesNotExist`, `Gt`, `Lt`, matched without regard to case, and
//! v1's spellings `=`, `==` (In with one value), `!=` (NotIn with one value)
//! and `!` (DoesNotExist). A missing annotation, an empty one and `[]` select
//! every member.

use std::collections::BTreeMap;

/// The annotation on a federated object that limits its members.
pub const CLUSTER_SELECTOR_ANNOTATION: &str = "federation.alpha.kubernetes.io/cluster-selector";

/// The operators a requirement may use.
const OPERATORS: &str = "In, NotIn, Exists, DoesNotExist, Gt, Lt";

/// One requirement on a Cluster's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// The label is present with one of the values.
    In(String, Vec<String>),
    /// The label is absent or has none of the values.
    NotIn(String, Vec<String>),
    /// The label is present.
    Exists(String),
    /// The label is absent.
    DoesNotExist(String),
    /// The label is present and an integer greater than this.
    Gt(String, i64),
    /// The label is present and an integer less than this.
    Lt(String, i64),
}

impl Requirement {
    /// Whether `labels` meet the requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(key, values) => !labels.get(key).is_some_and(|v| values.contains(v)),
            Requirement::Exists(key) => labels.contains_key(key),
            Requirement::DoesNotExist(key) => !labels.contains_key(key),
            Requirement::Gt(key, n) => integer(labels, key).is_some_and(|v| v > *n),
            Requirement::Lt(key, n) => integer(labels, key).is_some_and(|v| v < *n),
        }
    }
}

fn integer(labels: &BTreeMap<String, String>, key: &str) -> Option<i64> {
    labels.get(key).and_then(|v| v.parse().ok())
}

/// A parsed cluster selector: every requirement must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterSelector {
    /// The requirements, in the annotation's order.
    pub requirements: Vec<Requirement>,
}

/// Why a cluster-selector annotation cannot be used. The message names the
/// annotation and the requirement at fault, for a Warning Event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterSelectorError {
    /// The value is not a JSON list of objects.
    #[error(
        "{CLUSTER_SELECTOR_ANNOTATION}: not a JSON list of {{\"key\", \"operator\", \"values\"}} \
         requirements: {message}"
    )]
    Json {
        /// What the JSON parser said.
        message: String,
    },
    /// A requirement has no key, or one that is not a label key.
    #[error(
        "{CLUSTER_SELECTOR_ANNOTATION}: requirement {index}: key {key:?} is not a label key \
         (an optional DNS subdomain prefix and '/', then 1-63 alphanumerics, '-', '_' or '.')"
    )]
    Key {
        /// The requirement's position, from 1.
        index: usize,
        /// The key given.
        key: String,
    },
    /// An operator that is not one of the six.
    #[error(
        "{CLUSTER_SELECTOR_ANNOTATION}: requirement {index}: operator {operator:?} is not one of \
         {OPERATORS}"
    )]
    Operator {
        /// The requirement's position, from 1.
        index: usize,
        /// The operator given.
        operator: String,
    },
    /// The values do not suit the operator.
    #[error("{CLUSTER_SELECTOR_ANNOTATION}: requirement {index} ({operator}): {expected}")]
    Values {
        /// The requirement's position, from 1.
        index: usize,
        /// The operator.
        operator: &'static str,
        /// What the operator needs.
        expected: &'static str,
    },
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    #[serde(default)]
    key: String,
    #[serde(default)]
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

impl ClusterSelector {
    /// Reads the annotation's value.
    pub fn parse(value: &str) -> Result<Self, ClusterSelectorError> {
        if value.trim().is_empty() {
            return Ok(Self::default());
        }
        let raw: Vec<RawRequirement> =
            serde_json::from_str(value).map_err(|e| ClusterSelectorError::Json {
                message: e.to_string(),
            })?;
        let requirements = raw
            .into_iter()
            .enumerate()
            .map(|(i, r)| requirement(i + 1, r))
            .collect::<Result<_, _>>()?;
        Ok(Self { requirements })
    }

    /// Reads the selector of an object with these annotations: every member
    /// when it has none.
    pub fn of(
        annotations: Option<&BTreeMap<String, String>>,
    ) -> Result<Self, ClusterSelectorError> {
        annotations
            .and_then(|a| a.get(CLUSTER_SELECTOR_ANNOTATION))
            .map_or_else(|| Ok(Self::default()), |v| Self::parse(v))
    }

    /// Whether a Cluster with these labels is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }
}

fn requirement(index: usize, raw: RawRequirement) -> Result<Requirement, ClusterSelectorError> {
    if !is_label_key(&raw.key) {
        return Err(ClusterSelectorError::Key {
            index,
            key: raw.key,
        });
    }
    let values_error = |operator, expected| ClusterSelectorError::Values {
        index,
        operator,
        expected,
    };
    let one_integer = |operator| match raw.values.as_slice() {
        [v] => v
            .parse::<i64>()
            .map_err(|_| values_error(operator, "needs exactly one value, an integer")),
        _ => Err(values_error(
            operator,
            "needs exactly one value, an integer",
        )),
    };
    let key = raw.key.clone();
    match raw.operator.to_ascii_lowercase().as_str() {
        "in" | "=" | "==" => {
            let (name, single) = if raw.operator.starts_with('=') {
                ("=", true)
            } else {
                ("In", false)
            };
            check_values(&raw.values, single).map_err(|expected| values_error(name, expected))?;
            Ok(Requirement::In(key, raw.values))
        }
        "notin" | "!=" => {
            let (name, single) = if raw.operator == "!=" {
                ("!=", true)
            } else {
                ("NotIn", false)
            };
            check_values(&raw.values, single).map_err(|expected| values_error(name, expected))?;
            Ok(Requirement::NotIn(key, raw.values))
        }
        "exists" => no_values(&raw.values)
            .map(|()| Requirement::Exists(key))
            .map_err(|e| values_error("Exists", e)),
        "doesnotexist" | "!" => no_values(&raw.values)
            .map(|()| Requirement::DoesNotExist(key))
            .map_err(|e| values_error("DoesNotExist", e)),
        "gt" => Ok(Requirement::Gt(key, one_integer("Gt")?)),
        "lt" => Ok(Requirement::Lt(key, one_integer("Lt")?)),
        _ => Err(ClusterSelectorError::Operator {
            index,
            operator: raw.operator,
        }),
    }
}

fn check_values(values: &[String], single: bool) -> Result<(), &'static str> {
    match (single, values.len()) {
        (true, 1) => Ok(()),
        (true, _) => Err("needs exactly one value"),
        (false, 0) => Err("needs at least one value"),
        (false, _) => Ok(()),
    }
}

fn no_values(values: &[String]) -> Result<(), &'static str> {
    if values.is_empty() {
        Ok(())
    } else {
        Err("takes no values")
    }
}

/// A Kubernetes label key: `[prefix/]name`, the prefix a DNS subdomain of at
/// most 253 characters, the name 1-63 alphanumerics, '-', '_', '.', starting
/// and ending with an alphanumeric.
fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let name_ok = {
        let b = name.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    };
    // The prefix is a DNS-1123 subdomain, which is exactly what a cluster name is.
    let prefix_ok = prefix.is_none_or(|p| crate::names::ClusterName::new(p).is_ok());
    name_ok && prefix_ok
}
