//! Sets of field paths, as structured-merge-diff (the library behind server-side apply)
//! models ownership, and their `FieldsV1` encoding in `metadata.managedFields`.
//!
//! A path is a list of elements: a field name (`f:name`), a list-map item by its keys
//! (`k:{"name":"x"}`), a set item by value (`v:"x"`) or a list index (`i:0`). In
//! `FieldsV1`, a node that is itself a member of the set and also has members below it
//! carries a `".": {}` entry.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A field of an object (`f:`).
    Field(String),
    /// An item of a list-map, by its key fields sorted by name (`k:`); values are kept as
    /// compact JSON text.
    Key(Vec<(String, String)>),
    /// An item of a set, by its value as compact JSON text (`v:`).
    Value(String),
    /// An item of a list by position (`i:`).
    Index(usize),
}

impl PathElement {
    /// The `FieldsV1` key of this element.
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            Self::Field(name) => format!("f:{name}"),
            Self::Key(fields) => format!("k:{}", key_json(fields)),
            Self::Value(json) => format!("v:{json}"),
            Self::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key (anything but `.`).
    pub fn from_fields_v1_key(key: &str) -> Result<Self, FieldSetError> {
        let bad = || FieldSetError::BadKey(key.to_owned());
        let (prefix, rest) = key.split_once(':').ok_or_else(bad)?;
        match prefix {
            "f" => Ok(Self::Field(rest.to_owned())),
            "v" => {
                let value: Value = serde_json::from_str(rest).map_err(|_| bad())?;
                Ok(Self::Value(value.to_string()))
            }
            "i" => rest.parse().map(Self::Index).map_err(|_| bad()),
            "k" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(fields)) => {
                    let mut pairs: Vec<(String, String)> = fields
                        .into_iter()
                        .map(|(k, v)| (k, v.to_string()))
                        .collect();
                    pairs.sort();
                    Ok(Self::Key(pairs))
                }
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

fn key_json(fields: &[(String, String)]) -> String {
    let mut out = String::from("{");
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(name.clone()).to_string());
        out.push(':');
        out.push_str(value);
    }
    out.push('}');
    out
}

impl fmt::Display for PathElement {
    /// structured-merge-diff's path syntax: `.name`, `[name="x"]`, `[="x"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(name) => write!(f, ".{name}"),
            Self::Key(fields) => {
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "[{}]", parts.join(","))
            }
            Self::Value(json) => write!(f, "[={json}]"),
            Self::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Path(pub Vec<PathElement>);

impl Path {
    /// The path of field names `names`.
    pub fn fields(names: &[&str]) -> Self {
        Self(
            names
                .iter()
                .map(|n| PathElement::Field((*n).to_owned()))
                .collect(),
        )
    }

    /// This path with `element` appended.
    pub fn child(&self, element: PathElement) -> Self {
        let mut elements = self.0.clone();
        elements.push(element);
        Self(elements)
    }

    /// Whether `self` starts with `prefix` (a path is its own prefix).
    pub fn starts_with(&self, prefix: &Path) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for element in &self.0 {
            write!(f, "{element}")?;
        }
        Ok(())
    }
}

/// Why a `FieldsV1` document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldSetError {
    /// A key that is not `.`, `f:`, `k:`, `v:` or `i:` with a valid payload.
    #[error("invalid fieldsV1 key {0:?}")]
    BadKey(String),
    /// A value that is not an object.
    #[error("fieldsV1 entries must be objects, found {0}")]
    NotAnObject(String),
}

/// A set of field paths.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSet(BTreeSet<Path>);

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a path.
    pub fn insert(&mut self, path: Path) {
        self.0.insert(path);
    }

    /// Whether `path` is a member.
    pub fn contains(&self, path: &Path) -> bool {
        self.0.contains(path)
    }

    /// Whether the set has no member.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Members in order.
    pub fn iter(&self) -> impl Iterator<Item = &Path> {
        self.0.iter()
    }

    /// Members of either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.union(&other.0).cloned().collect())
    }

    /// Members of `self` not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.difference(&other.0).cloned().collect())
    }

    /// Members of both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.intersection(&other.0).cloned().collect())
    }

    /// Whether some member lies strictly below `path`.
    pub fn has_descendant(&self, path: &Path) -> bool {
        self.0
            .range(path.clone()..)
            .skip_while(|p| *p == path)
            .take_while(|p| p.starts_with(path))
            .next()
            .is_some()
    }

    /// Keeps the members `keep` accepts.
    pub fn retain(&mut self, keep: impl FnMut(&Path) -> bool) {
        let mut keep = keep;
        self.0.retain(|p| keep(p));
    }

    /// The `FieldsV1` document of this set.
    pub fn to_fields_v1(&self) -> Value {
        let mut root = Node::default();
        for path in &self.0 {
            let mut node = &mut root;
            for element in &path.0 {
                node = node.children.entry(element.clone()).or_default();
            }
            node.member = true;
        }
        root.to_json()
    }

    /// Reads a `FieldsV1` document.
    pub fn from_fields_v1(doc: &Value) -> Result<FieldSet, FieldSetError> {
        let mut set = FieldSet::new();
        read_node(doc, &Path::default(), &mut set)?;
        Ok(set)
    }
}

impl FromIterator<Path> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Path>>(iter: I) -> Self {
        FieldSet(iter.into_iter().collect())
    }
}

#[derive(Default)]
struct Node {
    member: bool,
    children: BTreeMap<PathElement, Node>,
}

impl Node {
    fn to_json(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".to_owned(), Value::Object(Map::new()));
        }
        for (element, child) in &self.children {
            map.insert(element.to_fields_v1_key(), child.to_json());
        }
        Value::Object(map)
    }
}

fn read_node(doc: &Value, path: &Path, set: &mut FieldSet) -> Result<(), FieldSetError> {
    let Value::Object(map) = doc else {
        return Err(FieldSetError::NotAnObject(doc.to_string()));
    };
    if map.is_empty() && !path.0.is_empty() {
        set.insert(path.clone());
    }
    for (key, child) in map {
        if key == "." {
            if !path.0.is_empty() {
                set.insert(path.clone());
            }
            continue;
        }
        let element = PathElement::from_fields_v1_key(key)?;
        read_node(child, &path.child(element), set)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(pairs: &[(&str, &str)]) -> PathElement {
        PathElement::Key(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn fields_v1_round_trip() {
        let doc = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}, "f:finalizers": {".": {}, "v:\"a.io/x\"": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}
                }}}
            }
        });
        let set = FieldSet::from_fields_v1(&doc).unwrap();
        assert!(set.contains(&Path::fields(&["spec", "replicas"])));
        assert!(set.contains(&Path::fields(&["metadata", "labels"])));
        assert!(!set.contains(&Path::fields(&["spec"])));
        let container = Path::fields(&["spec", "template", "spec", "containers"])
            .child(key(&[("name", "\"nginx\"")]));
        assert!(set.contains(&container));
        assert!(set.contains(&container.child(PathElement::Field("image".into()))));
        assert_eq!(set.len(), 10);
        assert_eq!(set.to_fields_v1(), doc);
    }

    #[test]
    fn encoding_is_kubernetes_text() {
        let mut set = FieldSet::new();
        let port =
            Path::fields(&["spec", "ports"]).child(key(&[("port", "80"), ("protocol", "\"TCP\"")]));
        set.insert(port.clone());
        set.insert(port.child(PathElement::Field("port".into())));
        set.insert(
            Path::fields(&["metadata", "finalizers"]).child(PathElement::Value("\"x\"".into())),
        );
        let text = serde_json::to_string(&set.to_fields_v1()).unwrap();
        assert_eq!(
            text,
            r#"{"f:metadata":{"f:finalizers":{"v:\"x\"":{}}},"f:spec":{"f:ports":{"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{}}}}}"#
        );
    }

    #[test]
    fn path_strings_match_structured_merge_diff() {
        let cases: Vec<(Path, &str)> = vec![
            (Path::fields(&["spec", "replicas"]), ".spec.replicas"),
            (
                Path::fields(&["spec", "containers"])
                    .child(key(&[("name", "\"nginx\"")]))
                    .child(PathElement::Field("image".into())),
                ".spec.containers[name=\"nginx\"].image",
            ),
            (
                Path::fields(&["spec", "ports"])
                    .child(key(&[("port", "80"), ("protocol", "\"TCP\"")])),
                ".spec.ports[port=80,protocol=\"TCP\"]",
            ),
            (
                Path::fields(&["metadata", "finalizers"]).child(PathElement::Value("\"a\"".into())),
                ".metadata.finalizers[=\"a\"]",
            ),
            (Path::fields(&["x"]).child(PathElement::Index(2)), ".x[2]"),
        ];
        for (path, text) in cases {
            assert_eq!(path.to_string(), text);
        }
    }

    #[test]
    fn bad_documents() {
        let cases = vec![
            json!({"x:foo": {}}),
            json!({"f:a": 1}),
            json!({"k:notjson": {}}),
            json!({"i:abc": {}}),
            json!({"v:{bad": {}}),
            json!("text"),
        ];
        for doc in cases {
            assert!(FieldSet::from_fields_v1(&doc).is_err(), "{doc}");
        }
    }

    #[test]
    fn set_algebra() {
        let a: FieldSet = [
            Path::fields(&["a"]),
            Path::fields(&["a", "b"]),
            Path::fields(&["c"]),
        ]
        .into_iter()
        .collect();
        let b: FieldSet = [Path::fields(&["c"]), Path::fields(&["d"])]
            .into_iter()
            .collect();
        assert_eq!(a.union(&b).len(), 4);
        assert_eq!(
            a.intersection(&b).iter().collect::<Vec<_>>(),
            vec![&Path::fields(&["c"])]
        );
        assert_eq!(a.difference(&b).len(), 2);
        assert!(a.has_descendant(&Path::fields(&["a"])));
        assert!(!a.has_descendant(&Path::fields(&["a", "b"])));
        assert!(!a.has_descendant(&Path::fields(&["c"])));
    }
}
