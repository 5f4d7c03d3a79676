//! What the patch algorithms need to know about a type: the merge metadata of the
//! OpenAPI extensions (`x-kubernetes-patch-*` for strategic merge patch,
//! `x-kubernetes-list-*` and `x-kubernetes-map-type` for server-side apply).
//!
//! The algorithms walk a [`MergeInfo`] tree alongside the object. A `None` where a node
//! is expected means "no schema here" (an unknown field, or a type without a schema):
//! maps then merge key by key and lists are replaced as a whole, as Kubernetes does for
//! untyped ("deduced") values.

use std::collections::BTreeMap;

use serde_json::Value;

/// `x-kubernetes-list-type`: how server-side apply merges and owns a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListType {
    /// Replaced and owned as a whole (Kubernetes' default for lists).
    #[default]
    Atomic,
    /// Scalar items, each owned on its own (`v:` in `fieldsV1`).
    Set,
    /// Object items identified by [`MergeInfo::list_map_keys`] (`k:` in `fieldsV1`).
    Map,
}

/// `x-kubernetes-map-type`: whether the entries of an object are owned one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MapType {
    /// Each entry separately (the default).
    #[default]
    Granular,
    /// Replaced and owned as a whole.
    Atomic,
}

/// The strategic-merge-patch strategy of a field (`x-kubernetes-patch-strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PatchStrategy {
    /// `merge`: lists merge by [`MergeInfo::patch_merge_key`] (or as sets of scalars).
    pub merge: bool,
    /// `replace`: a map is replaced instead of merged.
    pub replace: bool,
    /// `retainKeys`: the client builds `$retainKeys` directives for this field.
    pub retain_keys: bool,
}

impl PatchStrategy {
    /// Parses the extension's comma-separated value (`merge`, `merge,retainKeys`, ...).
    pub fn parse(value: &str) -> Self {
        let mut strategy = Self::default();
        for part in value.split(',').map(str::trim) {
            match part {
                "merge" => strategy.merge = true,
                "replace" => strategy.replace = true,
                "retainKeys" => strategy.retain_keys = true,
                _ => {}
            }
        }
        strategy
    }
}

/// Merge metadata of one schema node, walked by strategic merge patch and server-side
/// apply. Implemented by [`SchemaNode`] (tests, hand-built types) and by the structural
/// schema of `crate::schema`.
pub trait MergeInfo {
    /// The node of a declared property of an object (a "named field").
    fn property(&self, name: &str) -> Option<&dyn MergeInfo>;
    /// The node of every value of a map with arbitrary keys (`additionalProperties`).
    fn map_values(&self) -> Option<&dyn MergeInfo>;
    /// The node of the items of a list.
    fn items(&self) -> Option<&dyn MergeInfo>;
    /// `x-kubernetes-list-type` of a list node.
    fn list_type(&self) -> ListType;
    /// `x-kubernetes-list-map-keys` of a list node whose type is [`ListType::Map`].
    fn list_map_keys(&self) -> &[String];
    /// `x-kubernetes-map-type` of an object node.
    fn map_type(&self) -> MapType;
    /// `x-kubernetes-patch-strategy` of this field.
    fn patch_strategy(&self) -> PatchStrategy;
    /// `x-kubernetes-patch-merge-key` of a list field.
    fn patch_merge_key(&self) -> Option<&str>;
    /// The default value of this node, used for list-map keys an item omits (such as a
    /// port's `protocol`).
    fn default_value(&self) -> Option<&Value> {
        None
    }
}

/// The node for the value under `key` of an object node: the declared property if
/// there is one, else the map's value node.
pub(crate) fn child_info<'a>(
    info: Option<&'a dyn MergeInfo>,
    key: &str,
) -> Option<&'a dyn MergeInfo> {
    let info = info?;
    info.property(key).or_else(|| info.map_values())
}

/// An owned [`MergeInfo`] tree, built by hand for tests and for types without an
/// OpenAPI schema.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchemaNode {
    /// Declared properties of an object.
    pub properties: BTreeMap<String, SchemaNode>,
    /// Node of every value of a map with arbitrary keys.
    pub map_values: Option<Box<SchemaNode>>,
    /// Node of list items.
    pub items: Option<Box<SchemaNode>>,
    /// `x-kubernetes-list-type`.
    pub list_type: ListType,
    /// `x-kubernetes-list-map-keys`.
    pub list_map_keys: Vec<String>,
    /// `x-kubernetes-map-type`.
    pub map_type: MapType,
    /// `x-kubernetes-patch-strategy`.
    pub patch_strategy: PatchStrategy,
    /// `x-kubernetes-patch-merge-key`.
    pub patch_merge_key: Option<String>,
    /// `default`.
    pub default: Option<Value>,
}

impl SchemaNode {
    /// An object node with the given declared properties.
    pub fn object<I, K>(properties: I) -> Self
    where
        I: IntoIterator<Item = (K, SchemaNode)>,
        K: Into<String>,
    {
        Self {
            properties: properties.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            ..Self::default()
        }
    }

    /// A scalar (or any untyped) node.
    pub fn scalar() -> Self {
        Self::default()
    }

    /// A map with arbitrary keys whose values follow `values`.
    pub fn map_of(values: SchemaNode) -> Self {
        Self {
            map_values: Some(Box::new(values)),
            ..Self::default()
        }
    }

    /// An atomic list (replaced as a whole by both patch kinds).
    pub fn atomic_list(items: SchemaNode) -> Self {
        Self {
            items: Some(Box::new(items)),
            ..Self::default()
        }
    }

    /// A list of scalars merged as a set by both strategic merge patch
    /// (`patchStrategy: merge`) and server-side apply (`listType: set`).
    pub fn set_list() -> Self {
        Self {
            items: Some(Box::new(Self::scalar())),
            list_type: ListType::Set,
            patch_strategy: PatchStrategy {
                merge: true,
                ..PatchStrategy::default()
            },
            ..Self::default()
        }
    }

    /// A list of objects merged by `merge_key` in strategic merge patch and identified by
    /// `keys` in server-side apply.
    pub fn keyed_list(items: SchemaNode, merge_key: &str, keys: &[&str]) -> Self {
        Self {
            items: Some(Box::new(items)),
            list_type: ListType::Map,
            list_map_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            patch_strategy: PatchStrategy {
                merge: true,
                ..PatchStrategy::default()
            },
            patch_merge_key: Some(merge_key.to_owned()),
            ..Self::default()
        }
    }

    /// Sets the strategic-merge-patch strategy.
    pub fn with_patch_strategy(mut self, strategy: &str) -> Self {
        self.patch_strategy = PatchStrategy::parse(strategy);
        self
    }

    /// Sets the default value.
    pub fn with_default(mut self, default: Value) -> Self {
        self.default = Some(default);
        self
    }

    /// Marks an object node as atomic.
    pub fn atomic_map(mut self) -> Self {
        self.map_type = MapType::Atomic;
        self
    }
}

impl MergeInfo for SchemaNode {
    fn property(&self, name: &str) -> Option<&dyn MergeInfo> {
        self.properties.get(name).map(|n| n as &dyn MergeInfo)
    }

    fn map_values(&self) -> Option<&dyn MergeInfo> {
        self.map_values.as_deref().map(|n| n as &dyn MergeInfo)
    }

    fn items(&self) -> Option<&dyn MergeInfo> {
        self.items.as_deref().map(|n| n as &dyn MergeInfo)
    }

    fn list_type(&self) -> ListType {
        self.list_type
    }

    fn list_map_keys(&self) -> &[String] {
        &self.list_map_keys
    }

    fn map_type(&self) -> MapType {
        self.map_type
    }

    fn patch_strategy(&self) -> PatchStrategy {
        self.patch_strategy
    }

    fn patch_merge_key(&self) -> Option<&str> {
        self.patch_merge_key.as_deref()
    }

    fn default_value(&self) -> Option<&Value> {
        self.default.as_ref()
    }
}
