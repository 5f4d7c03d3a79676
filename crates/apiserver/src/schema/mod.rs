//! Structural schemas: the OpenAPI v3 subset Kubernetes uses for CRDs
//! (apiextensions `JSONSchemaProps`) and for built-in types, with the `x-kubernetes-*`
//! extensions; validation with Kubernetes field paths, pruning of unknown fields,
//! defaulting, and the OpenAPI v2/v3 documents kubectl reads.
//!
//! Everything here is synchronous and works on `serde_json::Value`. CEL rules
//! (`x-kubernetes-validations`) are parsed and kept, never evaluated.

mod builtin;
mod defaults;
pub(crate) mod field;
mod merge_info;
mod openapi;
mod openapi_pb;
mod parse;
mod prune;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

pub use builtin::{BuiltinKind, builtin_definition, builtin_schema, object_meta_schema};
pub use defaults::default;
pub use field::{ErrorKind, FieldError, FieldPath, causes, invalid_message};
pub use openapi::{CrdVersionSchema, OpenApiV3, OpenApiV3Document, openapi_v2};
pub use openapi_pb::{OPENAPI_V2_PROTOBUF, encode_v2};
pub use parse::{parse_crd_schema, parse_schema};
pub use prune::prune;
pub use validate::validate;

/// Errors of this module that are not field errors of a user's object.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A schema could not be read (shape errors or non-structural schema).
    #[error("schema is invalid: {}", list(.0))]
    Parse(Vec<FieldError>),
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The JSON type of a schema (`type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaType {
    /// `object`
    Object,
    /// `array`
    Array,
    /// `string`
    String,
    /// `integer`
    Integer,
    /// `number`
    Number,
    /// `boolean`
    Boolean,
}

impl SchemaType {
    /// The name used in OpenAPI documents and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Object => "object",
            Self::Array => "array",
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
        }
    }

    /// Parses a `type` value; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "object" => Self::Object,
            "array" => Self::Array,
            "string" => Self::String,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "boolean" => Self::Boolean,
            _ => return None,
        })
    }
}

/// `x-kubernetes-list-type`: how a list merges (server-side apply) and whether its items
/// must be unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListType {
    /// Replaced as a whole (the default for lists).
    Atomic,
    /// Scalar items, unique, merged as a set.
    Set,
    /// Object items identified by `x-kubernetes-list-map-keys`.
    Map,
}

impl ListType {
    /// The extension's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Atomic => "atomic",
            Self::Set => "set",
            Self::Map => "map",
        }
    }
}

/// `x-kubernetes-map-type`: whether a map's entries are owned separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapType {
    /// Replaced as a whole.
    Atomic,
    /// Each entry separately (the default).
    Granular,
}

impl MapType {
    /// The extension's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Atomic => "atomic",
            Self::Granular => "granular",
        }
    }
}

/// `additionalProperties`: either a boolean or a schema for every value of a map.
#[derive(Debug, Clone, PartialEq)]
pub enum AdditionalProperties {
    /// `true` allows (and keeps) any value; `false` is rejected by structural checks.
    Bool(bool),
    /// Every value of the map follows this schema.
    Schema(Arc<Schema>),
}

/// A compiled `pattern` (Go's RE2 syntax; Rust's `regex` accepts the same language).
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: regex::Regex,
}

impl Pattern {
    /// Compiles a pattern.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        Ok(Self {
            source: source.to_owned(),
            regex: regex::Regex::new(source)?,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `s` contains a match (JSON Schema patterns are not anchored).
    pub fn is_match(&self, s: &str) -> bool {
        self.regex.is_match(s)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// One `x-kubernetes-validations` rule. Stored and published, not evaluated: CEL is out
/// of scope for this server.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ValidationRule {
    /// The CEL expression.
    pub rule: String,
    /// `message`, if given.
    pub message: Option<String>,
    /// `messageExpression`, if given.
    pub message_expression: Option<String>,
    /// `reason`, if given.
    pub reason: Option<String>,
    /// `fieldPath`, if given.
    pub field_path: Option<String>,
    /// `optionalOldSelf`, if given.
    pub optional_old_self: Option<bool>,
}

/// A structural schema node. Children are shared (`Arc`) so that the schemas of
/// built-in types reuse one copy of common definitions such as `ObjectMeta`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schema {
    /// `type`; `None` means any type (allowed with int-or-string or preserve-unknown-fields).
    pub type_: Option<SchemaType>,
    /// `format` (`int32`, `date-time`, `byte`, ...).
    pub format: Option<String>,
    /// `description`, shown by `kubectl explain`.
    pub description: Option<String>,
    /// `title`.
    pub title: Option<String>,
    /// `properties` of an object.
    pub properties: BTreeMap<String, Arc<Schema>>,
    /// `required` property names.
    pub required: Vec<String>,
    /// `items` of an array.
    pub items: Option<Arc<Schema>>,
    /// `additionalProperties` of an object (a map).
    pub additional_properties: Option<AdditionalProperties>,
    /// `enum`: the allowed values.
    pub enum_values: Option<Vec<Value>>,
    /// `default`, applied by [`default()`] when the field is absent.
    pub default: Option<Value>,
    /// `example`.
    pub example: Option<Value>,
    /// `nullable`: `null` is accepted (and kept) as the value.
    pub nullable: bool,
    /// `minimum`.
    pub minimum: Option<f64>,
    /// `maximum`.
    pub maximum: Option<f64>,
    /// `exclusiveMinimum`.
    pub exclusive_minimum: bool,
    /// `exclusiveMaximum`.
    pub exclusive_maximum: bool,
    /// `multipleOf`.
    pub multiple_of: Option<f64>,
    /// `minLength` (in characters).
    pub min_length: Option<u64>,
    /// `maxLength` (in characters).
    pub max_length: Option<u64>,
    /// `pattern`.
    pub pattern: Option<Pattern>,
    /// `minItems`.
    pub min_items: Option<u64>,
    /// `maxItems`.
    pub max_items: Option<u64>,
    /// `uniqueItems`.
    pub unique_items: bool,
    /// `minProperties`.
    pub min_properties: Option<u64>,
    /// `maxProperties`.
    pub max_properties: Option<u64>,
    /// `allOf` (validation only: never used for pruning or defaulting).
    pub all_of: Vec<Arc<Schema>>,
    /// `anyOf` (validation only).
    pub any_of: Vec<Arc<Schema>>,
    /// `oneOf` (validation only).
    pub one_of: Vec<Arc<Schema>>,
    /// `not` (validation only).
    pub not: Option<Arc<Schema>>,
    /// `x-kubernetes-preserve-unknown-fields`.
    pub preserve_unknown_fields: bool,
    /// `x-kubernetes-int-or-string`.
    pub int_or_string: bool,
    /// `x-kubernetes-embedded-resource`: the value is a whole object with `apiVersion`,
    /// `kind` and `metadata`.
    pub embedded_resource: bool,
    /// `x-kubernetes-list-type`.
    pub list_type: Option<ListType>,
    /// `x-kubernetes-list-map-keys`.
    pub list_map_keys: Vec<String>,
    /// `x-kubernetes-map-type`.
    pub map_type: Option<MapType>,
    /// `x-kubernetes-patch-strategy` (`merge`, `retainKeys`, `merge,retainKeys`, `replace`).
    pub patch_strategy: Option<String>,
    /// `x-kubernetes-patch-merge-key`.
    pub patch_merge_key: Option<String>,
    /// `x-kubernetes-validations` (stored only; CEL is not evaluated).
    pub validations: Vec<ValidationRule>,
    /// The definition this node was made from (`io.k8s.api.core.v1.Service`), for
    /// built-in types; OpenAPI documents print such nodes as `$ref`s.
    pub definition: Option<Arc<str>>,
}

impl Schema {
    /// A schema of the given type and nothing else.
    pub fn of_type(type_: SchemaType) -> Self {
        Self {
            type_: Some(type_),
            ..Self::default()
        }
    }

    /// The schema of property `name`, if the object declares it.
    pub fn property(&self, name: &str) -> Option<&Schema> {
        self.properties.get(name).map(|s| &**s)
    }

    /// The schema of a map's values (`additionalProperties` as a schema), if any.
    pub fn additional_schema(&self) -> Option<&Schema> {
        match &self.additional_properties {
            Some(AdditionalProperties::Schema(s)) => Some(s),
            _ => None,
        }
    }

    /// The schema of the value found under key `name` of an object: the declared
    /// property, else the map's value schema.
    pub fn field(&self, name: &str) -> Option<&Schema> {
        self.property(name).or_else(|| self.additional_schema())
    }

    /// Whether strategic merge patch merges this list (`x-kubernetes-patch-strategy`
    /// contains `merge`).
    pub fn patch_merges(&self) -> bool {
        self.patch_strategy
            .as_deref()
            .is_some_and(|s| s.split(',').any(|p| p == "merge"))
    }

    /// Whether strategic merge patch keeps only the keys present in the patch
    /// (`retainKeys`).
    pub fn patch_retains_keys(&self) -> bool {
        self.patch_strategy
            .as_deref()
            .is_some_and(|s| s.split(',').any(|p| p == "retainKeys"))
    }

    /// The list type for server-side apply: the explicit extension, else `Map` when a
    /// merge key is known, else `Atomic` (Kubernetes' default for lists).
    pub fn effective_list_type(&self) -> ListType {
        match self.list_type {
            Some(t) => t,
            None if !self.list_map_keys.is_empty() => ListType::Map,
            None => ListType::Atomic,
        }
    }

    /// Serializes the schema back to OpenAPI v3 JSON (`JSONSchemaProps` shape), with
    /// children fully inlined.
    pub fn to_json(&self) -> Value {
        parse::to_json(self, &mut |_| None)
    }
}
