//! Reading schemas from JSON (`openAPIV3Schema` of a CRD, or schemars output), the
//! structural-schema checks apiextensions runs when a CRD is created, and writing a
//! schema back to JSON.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::field::{FieldError, FieldPath};
use super::{
    AdditionalProperties, ListType, MapType, Pattern, Schema, SchemaError, SchemaType,
    ValidationRule,
};

const TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];

/// Reads a schema without the structural checks (for trusted sources such as the
/// built-in types); only shape errors (wrong JSON types, bad patterns) fail.
pub fn parse_schema(value: &Value) -> Result<Schema, SchemaError> {
    let mut errors = Vec::new();
    let schema = read(value, &FieldPath::root(), &mut errors);
    if errors.is_empty() {
        Ok(schema)
    } else {
        Err(SchemaError::Parse(errors))
    }
}

/// Reads a CRD version's `openAPIV3Schema` and runs the checks apiextensions runs at
/// CRD creation (structural schema rules, extension rules, defaults valid against
/// their schema). Errors are reported under `path`, e.g.
/// `spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: ...`.
pub fn parse_crd_schema(value: &Value, path: &FieldPath) -> Result<Schema, Vec<FieldError>> {
    let mut errors = Vec::new();
    let schema = read(value, path, &mut errors);
    if errors.is_empty() {
        openapi_checks(&schema, path, &mut errors);
        errors.extend(structural_errors(&schema, path));
    }
    if errors.is_empty() {
        check_defaults(&schema, path, &FieldPath::root(), &mut errors);
    }
    if errors.is_empty() {
        Ok(schema)
    } else {
        Err(errors)
    }
}

fn read(value: &Value, path: &FieldPath, errors: &mut Vec<FieldError>) -> Schema {
    let Some(obj) = value.as_object() else {
        errors.push(FieldError::type_invalid(
            path.clone(),
            value.clone(),
            "must be an object",
        ));
        return Schema::default();
    };
    let mut s = Schema::default();
    let string = |key: &str, errors: &mut Vec<FieldError>| -> Option<String> {
        match obj.get(key)? {
            Value::String(v) => Some(v.clone()),
            other => {
                errors.push(FieldError::type_invalid(
                    path.child(key),
                    other.clone(),
                    "must be a string",
                ));
                None
            }
        }
    };
    let boolean = |key: &str, errors: &mut Vec<FieldError>| -> Option<bool> {
        match obj.get(key)? {
            Value::Bool(v) => Some(*v),
            other => {
                errors.push(FieldError::type_invalid(
                    path.child(key),
                    other.clone(),
                    "must be a boolean",
                ));
                None
            }
        }
    };
    let number = |key: &str, errors: &mut Vec<FieldError>| -> Option<f64> {
        match obj.get(key)? {
            Value::Number(n) => n.as_f64(),
            other => {
                errors.push(FieldError::type_invalid(
                    path.child(key),
                    other.clone(),
                    "must be a number",
                ));
                None
            }
        }
    };
    let count = |key: &str, errors: &mut Vec<FieldError>| -> Option<u64> {
        match obj.get(key)? {
            Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
            other => {
                errors.push(FieldError::invalid(
                    path.child(key),
                    other.clone(),
                    "must be a non-negative integer",
                ));
                None
            }
        }
    };
    let strings = |key: &str, errors: &mut Vec<FieldError>| -> Vec<String> {
        match obj.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| match v {
                    Value::String(s) => Some(s.clone()),
                    other => {
                        errors.push(FieldError::type_invalid(
                            path.child(key).index(i),
                            other.clone(),
                            "must be a string",
                        ));
                        None
                    }
                })
                .collect(),
            Some(other) => {
                errors.push(FieldError::type_invalid(
                    path.child(key),
                    other.clone(),
                    "must be an array of strings",
                ));
                Vec::new()
            }
        }
    };

    if obj.contains_key("$ref") {
        errors.push(FieldError::forbidden(
            path.child("$ref"),
            "$ref is not supported",
        ));
    }
    if let Some(t) = string("type", errors) {
        match SchemaType::parse(&t) {
            Some(t) => s.type_ = Some(t),
            None => errors.push(FieldError::not_supported(path.child("type"), t, &TYPES)),
        }
    }
    s.format = string("format", errors);
    s.description = string("description", errors);
    s.title = string("title", errors);
    match obj.get("properties") {
        None => {}
        Some(Value::Object(props)) => {
            let pp = path.child("properties");
            s.properties = props
                .iter()
                .map(|(k, v)| (k.clone(), Arc::new(read(v, &pp.key(k), errors))))
                .collect();
        }
        Some(other) => errors.push(FieldError::type_invalid(
            path.child("properties"),
            other.clone(),
            "must be an object",
        )),
    }
    s.required = strings("required", errors);
    match obj.get("items") {
        None => {}
        Some(Value::Array(_)) => errors.push(FieldError::forbidden(
            path.child("items"),
            "items must be a schema object and not an array",
        )),
        Some(v) => s.items = Some(Arc::new(read(v, &path.child("items"), errors))),
    }
    match obj.get("additionalProperties") {
        None => {}
        Some(Value::Bool(b)) => s.additional_properties = Some(AdditionalProperties::Bool(*b)),
        Some(v) => {
            s.additional_properties = Some(AdditionalProperties::Schema(Arc::new(read(
                v,
                &path.child("additionalProperties"),
                errors,
            ))))
        }
    }
    match obj.get("enum") {
        None => {}
        Some(Value::Array(values)) => s.enum_values = Some(values.clone()),
        Some(other) => errors.push(FieldError::type_invalid(
            path.child("enum"),
            other.clone(),
            "must be an array",
        )),
    }
    s.default = obj.get("default").cloned();
    s.example = obj.get("example").cloned();
    s.nullable = boolean("nullable", errors).unwrap_or(false);
    s.minimum = number("minimum", errors);
    s.maximum = number("maximum", errors);
    s.exclusive_minimum = boolean("exclusiveMinimum", errors).unwrap_or(false);
    s.exclusive_maximum = boolean("exclusiveMaximum", errors).unwrap_or(false);
    s.multiple_of = number("multipleOf", errors);
    s.min_length = count("minLength", errors);
    s.max_length = count("maxLength", errors);
    if let Some(p) = string("pattern", errors) {
        match Pattern::new(&p) {
            Ok(p) => s.pattern = Some(p),
            Err(e) => errors.push(FieldError::invalid(
                path.child("pattern"),
                p,
                format!("must be a valid regular expression, but isn't: {e}"),
            )),
        }
    }
    s.min_items = count("minItems", errors);
    s.max_items = count("maxItems", errors);
    s.unique_items = boolean("uniqueItems", errors).unwrap_or(false);
    s.min_properties = count("minProperties", errors);
    s.max_properties = count("maxProperties", errors);
    let many = |key: &str, errors: &mut Vec<FieldError>| -> Vec<Arc<Schema>> {
        match obj.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| Arc::new(read(v, &path.child(key).index(i), errors)))
                .collect(),
            Some(other) => {
                errors.push(FieldError::type_invalid(
                    path.child(key),
                    other.clone(),
                    "must be an array",
                ));
                Vec::new()
            }
        }
    };
    s.all_of = many("allOf", errors);
    s.any_of = many("anyOf", errors);
    s.one_of = many("oneOf", errors);
    if let Some(v) = obj.get("not") {
        s.not = Some(Arc::new(read(v, &path.child("not"), errors)));
    }
    if let Some(b) = boolean("x-kubernetes-preserve-unknown-fields", errors) {
        if !b {
            errors.push(FieldError::invalid(
                path.child("x-kubernetes-preserve-unknown-fields"),
                false,
                "must be true or undefined",
            ));
        }
        s.preserve_unknown_fields = b;
    }
    s.int_or_string = boolean("x-kubernetes-int-or-string", errors).unwrap_or(false);
    s.embedded_resource = boolean("x-kubernetes-embedded-resource", errors).unwrap_or(false);
    if let Some(t) = string("x-kubernetes-list-type", errors) {
        s.list_type = match t.as_str() {
            "atomic" => Some(ListType::Atomic),
            "set" => Some(ListType::Set),
            "map" => Some(ListType::Map),
            _ => {
                errors.push(FieldError::not_supported(
                    path.child("x-kubernetes-list-type"),
                    t,
                    &["atomic", "set", "map"],
                ));
                None
            }
        };
    }
    s.list_map_keys = strings("x-kubernetes-list-map-keys", errors);
    if let Some(t) = string("x-kubernetes-map-type", errors) {
        s.map_type = match t.as_str() {
            "atomic" => Some(MapType::Atomic),
            "granular" => Some(MapType::Granular),
            _ => {
                errors.push(FieldError::not_supported(
                    path.child("x-kubernetes-map-type"),
                    t,
                    &["granular", "atomic"],
                ));
                None
            }
        };
    }
    s.patch_strategy = string("x-kubernetes-patch-strategy", errors);
    s.patch_merge_key = string("x-kubernetes-patch-merge-key", errors);
    match obj.get("x-kubernetes-validations") {
        None => {}
        Some(Value::Array(rules)) => {
            for (i, r) in rules.iter().enumerate() {
                let rp = path.child("x-kubernetes-validations").index(i);
                let Some(ro) = r.as_object() else {
                    errors.push(FieldError::type_invalid(rp, r.clone(), "must be an object"));
                    continue;
                };
                let text = |k: &str| ro.get(k).and_then(Value::as_str).map(str::to_owned);
                let Some(rule) = text("rule") else {
                    errors.push(FieldError::required(rp.child("rule"), ""));
                    continue;
                };
                s.validations.push(ValidationRule {
                    rule,
                    message: text("message"),
                    message_expression: text("messageExpression"),
                    reason: text("reason"),
                    field_path: text("fieldPath"),
                    optional_old_self: ro.get("optionalOldSelf").and_then(Value::as_bool),
                });
            }
        }
        Some(other) => errors.push(FieldError::type_invalid(
            path.child("x-kubernetes-validations"),
            other.clone(),
            "must be an array",
        )),
    }
    s
}

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Item,
    Field,
}

/// apiextensions' checks of a version schema that are not about structure: maps
/// beside properties, `uniqueItems`, and the list/map extension rules, everywhere in
/// the tree (value validations included).
fn openapi_checks(s: &Schema, path: &FieldPath, errors: &mut Vec<FieldError>) {
    // `additionalProperties: true` next to properties is tolerated, as there.
    if !s.properties.is_empty()
        && matches!(
            s.additional_properties,
            Some(AdditionalProperties::Schema(_) | AdditionalProperties::Bool(false))
        )
    {
        errors.push(FieldError::forbidden(
            path.child("additionalProperties"),
            "additionalProperties and properties are mutual exclusive",
        ));
    }
    if s.unique_items {
        errors.push(FieldError::forbidden(
            path.child("uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    extensions(s, path, errors);
    if let Some(items) = &s.items {
        openapi_checks(items, &path.child("items"), errors);
    }
    for (k, v) in &s.properties {
        openapi_checks(v, &path.child("properties").key(k), errors);
    }
    if let Some(AdditionalProperties::Schema(a)) = &s.additional_properties {
        openapi_checks(a, &path.child("additionalProperties"), errors);
    }
    for (key, list) in [
        ("allOf", &s.all_of),
        ("anyOf", &s.any_of),
        ("oneOf", &s.one_of),
    ] {
        for (i, v) in list.iter().enumerate() {
            openapi_checks(v, &path.child(key).index(i), errors);
        }
    }
    if let Some(n) = &s.not {
        openapi_checks(n, &path.child("not"), errors);
    }
}

/// The structural-schema rules (`ValidateStructural`): invariants of every
/// structural node plus completeness of the root's value validations. Like
/// apiextensions, the messages come sorted.
fn structural_errors(s: &Schema, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    invariants(s, Level::Root, path, &mut errors);
    completeness(s, path, &mut errors);
    errors.sort_by_cached_key(ToString::to_string);
    errors
}

fn type_name(s: &Schema) -> &'static str {
    s.type_.map(SchemaType::as_str).unwrap_or_default()
}

fn invariants(s: &Schema, lvl: Level, path: &FieldPath, errors: &mut Vec<FieldError>) {
    if s.type_ == Some(SchemaType::Array) && s.items.is_none() {
        errors.push(FieldError::required(
            path.child("items"),
            "must be specified",
        ));
    }
    if let Some(items) = &s.items {
        invariants(items, Level::Item, &path.child("items"), errors);
    }
    for (k, v) in &s.properties {
        invariants(v, Level::Field, &path.child("properties").key(k), errors);
    }
    if let Some(ap) = &s.additional_properties {
        if lvl == Level::Root {
            errors.push(FieldError::forbidden(
                path.child("additionalProperties"),
                "must not be used at the root",
            ));
        }
        if let AdditionalProperties::Schema(a) = ap {
            invariants(a, Level::Field, &path.child("additionalProperties"), errors);
        }
    }
    if s.int_or_string && s.preserve_unknown_fields {
        errors.push(FieldError::invalid(
            path.child("x-kubernetes-preserve-unknown-fields"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if s.int_or_string && s.embedded_resource {
        errors.push(FieldError::invalid(
            path.child("x-kubernetes-embedded-resource"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let skip_any_of = is_int_or_string_pattern(&s.any_of);
    let skip_first_all_of_any_of = s
        .all_of
        .first()
        .is_some_and(|a| is_int_or_string_pattern(&a.any_of));
    value_validation(s, skip_any_of, skip_first_all_of_any_of, path, errors);

    let check_metadata = lvl == Level::Root || s.embedded_resource;
    if s.embedded_resource && s.type_ != Some(SchemaType::Object) {
        match s.type_ {
            None => errors.push(FieldError::required(
                path.child("type"),
                "must be object if x-kubernetes-embedded-resource is true",
            )),
            Some(t) => errors.push(FieldError::invalid(
                path.child("type"),
                t.as_str(),
                "must be object if x-kubernetes-embedded-resource is true",
            )),
        }
    } else if s.type_.is_none() && !s.int_or_string && !s.preserve_unknown_fields {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errors.push(FieldError::required(path.child("type"), detail));
    }
    if s.embedded_resource && s.additional_properties.is_some() {
        errors.push(FieldError::forbidden(
            path.child("additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root
        && let Some(t) = s.type_
        && t != SchemaType::Object
    {
        errors.push(FieldError::invalid(
            path.child("type"),
            t.as_str(),
            "must be object at the root",
        ));
    }
    if check_metadata {
        for key in ["kind", "apiVersion"] {
            if let Some(p) = s.property(key)
                && p.type_ != Some(SchemaType::String)
            {
                errors.push(FieldError::invalid(
                    path.child("properties").key(key).child("type"),
                    type_name(p),
                    "must be string",
                ));
            }
        }
        if let Some(m) = s.property("metadata")
            && m.type_ != Some(SchemaType::Object)
        {
            errors.push(FieldError::invalid(
                path.child("properties").key("metadata").child("type"),
                type_name(m),
                "must be object",
            ));
        }
    }
    if lvl == Level::Root
        && let Some(m) = s.property("metadata")
        && metadata_specifies_too_much(m)
    {
        errors.push(FieldError::forbidden(
            path.child("properties").key("metadata"),
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
    if s.embedded_resource && !s.preserve_unknown_fields && s.properties.is_empty() {
        errors.push(FieldError::required(
            path.child("properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// The two int-or-string shapes apiextensions accepts with types inside `anyOf`.
fn is_int_or_string_pattern(any_of: &[Arc<Schema>]) -> bool {
    let only_type = |s: &Schema, t: SchemaType| *s == Schema::of_type(t);
    any_of.len() == 2
        && only_type(&any_of[0], SchemaType::Integer)
        && only_type(&any_of[1], SchemaType::String)
}

fn metadata_specifies_too_much(m: &Schema) -> bool {
    let only_names = m
        .properties
        .keys()
        .all(|k| k == "name" || k == "generateName");
    let others = m.items.is_some()
        || m.additional_properties.is_some()
        || !m.required.is_empty()
        || m.preserve_unknown_fields
        || m.embedded_resource
        || m.int_or_string
        || m.list_type.is_some()
        || m.map_type.is_some()
        || m.nullable
        || m.description.is_some()
        || m.title.is_some()
        || m.format.is_some()
        || m.enum_values.is_some()
        || !m.all_of.is_empty()
        || !m.any_of.is_empty()
        || !m.one_of.is_empty()
        || m.not.is_some()
        || !m.validations.is_empty();
    !only_names || others
}

fn extensions(s: &Schema, path: &FieldPath, errors: &mut Vec<FieldError>) {
    let keys_path = path.child("x-kubernetes-list-map-keys");
    match s.list_type {
        Some(ListType::Map) => {
            if s.list_map_keys.is_empty() {
                errors.push(FieldError::required(
                    keys_path,
                    "must not be empty if x-kubernetes-list-type is map",
                ));
            }
            if let Some(items) = &s.items {
                if items.type_ != Some(SchemaType::Object) {
                    errors.push(FieldError::invalid(
                        path.child("items").child("type"),
                        items.type_.map(SchemaType::as_str).unwrap_or_default(),
                        "must be object when x-kubernetes-list-type is map",
                    ));
                } else {
                    for (i, k) in s.list_map_keys.iter().enumerate() {
                        match items.property(k) {
                            None => errors.push(FieldError::invalid(
                                path.child("x-kubernetes-list-map-keys").index(i),
                                k.as_str(),
                                "entries must all be names of item properties",
                            )),
                            Some(p) if !items.required.contains(k) && p.default.is_none() => {
                                errors.push(FieldError::required(
                                    path.child("items").child("properties").key(k),
                                    "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                                ))
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
        }
        Some(ListType::Set) => {
            if let Some(items) = &s.items
                && items.type_ == Some(SchemaType::Object)
                && items.map_type != Some(MapType::Atomic)
            {
                errors.push(FieldError::invalid(
                    path.child("items").child("x-kubernetes-map-type"),
                    items.map_type.map(MapType::as_str).unwrap_or_default(),
                    "must be atomic as item of a list with x-kubernetes-list-type=set",
                ));
            }
        }
        _ => {
            if !s.list_map_keys.is_empty() {
                errors.push(FieldError::forbidden(
                    keys_path,
                    "may only be set if x-kubernetes-list-type is map",
                ));
            }
        }
    }
    if s.list_type.is_some() && s.type_ != Some(SchemaType::Array) {
        errors.push(FieldError::invalid(
            path.child("type"),
            s.type_.map(SchemaType::as_str).unwrap_or_default(),
            "must be array if x-kubernetes-list-type is specified",
        ));
    }
    if s.map_type.is_some() && s.type_ != Some(SchemaType::Object) {
        errors.push(FieldError::invalid(
            path.child("type"),
            s.type_.map(SchemaType::as_str).unwrap_or_default(),
            "must be object if x-kubernetes-map-type is specified",
        ));
    }
}

/// The junctors (allOf/anyOf/oneOf/not) of a node; `skip_any_of` and
/// `skip_first_all_of_any_of` exempt the int-or-string shapes.
fn value_validation(
    v: &Schema,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    path: &FieldPath,
    errors: &mut Vec<FieldError>,
) {
    if !skip_any_of {
        for (i, n) in v.any_of.iter().enumerate() {
            nested(n, false, &path.child("anyOf").index(i), errors);
        }
    }
    for (i, n) in v.all_of.iter().enumerate() {
        nested(
            n,
            skip_first_all_of_any_of && i == 0,
            &path.child("allOf").index(i),
            errors,
        );
    }
    for (i, n) in v.one_of.iter().enumerate() {
        nested(n, false, &path.child("oneOf").index(i), errors);
    }
    if let Some(n) = &v.not {
        nested(n, false, &path.child("not"), errors);
    }
}

/// A schema under a junctor may only restrict values, never declare structure.
fn nested(v: &Schema, skip_any_of: bool, path: &FieldPath, errors: &mut Vec<FieldError>) {
    value_validation(v, skip_any_of, false, path, errors);
    if let Some(items) = &v.items {
        nested(items, false, &path.child("items"), errors);
    }
    for (k, p) in &v.properties {
        nested(p, false, &path.child("properties").key(k), errors);
    }
    let mut forbid = |cond: bool, key: &str, detail: &str| {
        if cond {
            errors.push(FieldError::forbidden(path.child(key), detail));
        }
    };
    forbid(v.type_.is_some(), "type", "must be empty to be structural");
    forbid(
        v.additional_properties.is_some(),
        "additionalProperties",
        "must be undefined to be structural",
    );
    forbid(
        v.default.is_some(),
        "default",
        "must be undefined to be structural",
    );
    forbid(v.title.is_some(), "title", "must be empty to be structural");
    forbid(
        v.description.is_some(),
        "description",
        "must be empty to be structural",
    );
    forbid(v.nullable, "nullable", "must be false to be structural");
    forbid(
        v.preserve_unknown_fields,
        "x-kubernetes-preserve-unknown-fields",
        "must be false to be structural",
    );
    forbid(
        v.embedded_resource,
        "x-kubernetes-embedded-resource",
        "must be false to be structural",
    );
    forbid(
        v.int_or_string,
        "x-kubernetes-int-or-string",
        "must be false to be structural",
    );
    forbid(
        !v.list_map_keys.is_empty(),
        "x-kubernetes-list-map-keys",
        "must be empty to be structural",
    );
    forbid(
        v.list_type.is_some(),
        "x-kubernetes-list-type",
        "must be undefined to be structural",
    );
    if v.properties.contains_key("metadata") {
        errors.push(FieldError::forbidden(
            path.child("properties").key("metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// Every property or items a root junctor mentions must exist in the structural
/// part (apiextensions checks this for the root's junctors).
fn completeness(s: &Schema, path: &FieldPath, errors: &mut Vec<FieldError>) {
    fn junctors(
        v: &Schema,
        s: &Schema,
        s_path: &FieldPath,
        v_path: &FieldPath,
        errors: &mut Vec<FieldError>,
    ) {
        if let Some(n) = &v.not {
            nested_complete(n, Some(s), s_path, &v_path.child("not"), errors);
        }
        for (key, list) in [
            ("allOf", &v.all_of),
            ("anyOf", &v.any_of),
            ("oneOf", &v.one_of),
        ] {
            for (i, n) in list.iter().enumerate() {
                nested_complete(n, Some(s), s_path, &v_path.child(key).index(i), errors);
            }
        }
    }
    fn nested_complete(
        v: &Schema,
        s: Option<&Schema>,
        s_path: &FieldPath,
        v_path: &FieldPath,
        errors: &mut Vec<FieldError>,
    ) {
        let Some(s) = s else {
            errors.push(FieldError::required(
                s_path.clone(),
                format!("because it is defined in {v_path}"),
            ));
            return;
        };
        junctors(v, s, s_path, v_path, errors);
        if let Some(items) = &v.items {
            nested_complete(
                items,
                s.items.as_deref(),
                &s_path.child("items"),
                &v_path.child("items"),
                errors,
            );
        }
        for (k, p) in &v.properties {
            let sp = s_path.child("properties").key(k);
            let vp = v_path.child("properties").key(k);
            match s.property(k) {
                Some(sf) => nested_complete(p, Some(sf), &sp, &vp, errors),
                None => errors.push(FieldError::required(
                    sp,
                    format!("because it is defined in {vp}"),
                )),
            }
        }
    }
    junctors(s, s, path, path, errors);
}

/// Defaults must themselves be valid against their schema (apiextensions rejects the
/// CRD otherwise). `value_path` is the data path the default would live at.
fn check_defaults(
    s: &Schema,
    path: &FieldPath,
    value_path: &FieldPath,
    errors: &mut Vec<FieldError>,
) {
    if let Some(d) = &s.default {
        let mut pruned = d.clone();
        let unknown = super::prune(&mut pruned, s);
        if !unknown.is_empty() {
            errors.push(FieldError::invalid(
                path.child("default"),
                d.clone(),
                "must not have unknown fields",
            ));
        }
        for mut e in super::validate::validate_at(d, s, value_path) {
            e.field = path.child("default");
            errors.push(e);
        }
    }
    for (k, v) in &s.properties {
        check_defaults(
            v,
            &path.child("properties").key(k),
            &value_path.child(k),
            errors,
        );
    }
    if let Some(items) = &s.items {
        check_defaults(items, &path.child("items"), &value_path.index(0), errors);
    }
    if let Some(a) = s.additional_schema() {
        check_defaults(
            a,
            &path.child("additionalProperties"),
            &value_path.key("*"),
            errors,
        );
    }
}

/// Writes `s` as OpenAPI v3 JSON. `reference` is asked for every child first; when it
/// returns a value (a `$ref` object) that value is written instead of the child.
pub(crate) fn to_json(s: &Schema, reference: &mut dyn FnMut(&Schema) -> Option<Value>) -> Value {
    let mut m = Map::new();
    let child = |c: &Schema, reference: &mut dyn FnMut(&Schema) -> Option<Value>| -> Value {
        reference(c).unwrap_or_else(|| to_json(c, reference))
    };
    if let Some(t) = s.type_ {
        m.insert("type".into(), json!(t.as_str()));
    }
    if let Some(f) = &s.format {
        m.insert("format".into(), json!(f));
    }
    if let Some(d) = &s.description {
        m.insert("description".into(), json!(d));
    }
    if let Some(t) = &s.title {
        m.insert("title".into(), json!(t));
    }
    if !s.properties.is_empty() {
        let props: Map<String, Value> = s
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), child(v, reference)))
            .collect();
        m.insert("properties".into(), Value::Object(props));
    }
    if !s.required.is_empty() {
        m.insert("required".into(), json!(s.required));
    }
    if let Some(items) = &s.items {
        let v = child(items, reference);
        m.insert("items".into(), v);
    }
    match &s.additional_properties {
        Some(AdditionalProperties::Bool(b)) => {
            m.insert("additionalProperties".into(), json!(b));
        }
        Some(AdditionalProperties::Schema(a)) => {
            let v = child(a, reference);
            m.insert("additionalProperties".into(), v);
        }
        None => {}
    }
    if let Some(e) = &s.enum_values {
        m.insert("enum".into(), Value::Array(e.clone()));
    }
    if let Some(d) = &s.default {
        m.insert("default".into(), d.clone());
    }
    if let Some(e) = &s.example {
        m.insert("example".into(), e.clone());
    }
    if s.nullable {
        m.insert("nullable".into(), json!(true));
    }
    for (k, v) in [
        ("minimum", s.minimum),
        ("maximum", s.maximum),
        ("multipleOf", s.multiple_of),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), number(v));
        }
    }
    if s.exclusive_minimum {
        m.insert("exclusiveMinimum".into(), json!(true));
    }
    if s.exclusive_maximum {
        m.insert("exclusiveMaximum".into(), json!(true));
    }
    for (k, v) in [
        ("minLength", s.min_length),
        ("maxLength", s.max_length),
        ("minItems", s.min_items),
        ("maxItems", s.max_items),
        ("minProperties", s.min_properties),
        ("maxProperties", s.max_properties),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(p) = &s.pattern {
        m.insert("pattern".into(), json!(p.as_str()));
    }
    if s.unique_items {
        m.insert("uniqueItems".into(), json!(true));
    }
    for (k, list) in [
        ("allOf", &s.all_of),
        ("anyOf", &s.any_of),
        ("oneOf", &s.one_of),
    ] {
        if !list.is_empty() {
            let vs: Vec<Value> = list.iter().map(|c| child(c, reference)).collect();
            m.insert(k.into(), Value::Array(vs));
        }
    }
    if let Some(n) = &s.not {
        let v = child(n, reference);
        m.insert("not".into(), v);
    }
    if s.preserve_unknown_fields {
        m.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
    }
    if s.int_or_string {
        m.insert("x-kubernetes-int-or-string".into(), json!(true));
    }
    if s.embedded_resource {
        m.insert("x-kubernetes-embedded-resource".into(), json!(true));
    }
    if let Some(t) = s.list_type {
        m.insert("x-kubernetes-list-type".into(), json!(t.as_str()));
    }
    if !s.list_map_keys.is_empty() {
        m.insert("x-kubernetes-list-map-keys".into(), json!(s.list_map_keys));
    }
    if let Some(t) = s.map_type {
        m.insert("x-kubernetes-map-type".into(), json!(t.as_str()));
    }
    if let Some(p) = &s.patch_strategy {
        m.insert("x-kubernetes-patch-strategy".into(), json!(p));
    }
    if let Some(p) = &s.patch_merge_key {
        m.insert("x-kubernetes-patch-merge-key".into(), json!(p));
    }
    if !s.validations.is_empty() {
        let rules: Vec<Value> = s
            .validations
            .iter()
            .map(|r| {
                let mut o = BTreeMap::new();
                o.insert("rule", json!(r.rule));
                for (k, v) in [
                    ("message", &r.message),
                    ("messageExpression", &r.message_expression),
                    ("reason", &r.reason),
                    ("fieldPath", &r.field_path),
                ] {
                    if let Some(v) = v {
                        o.insert(k, json!(v));
                    }
                }
                if let Some(b) = r.optional_old_self {
                    o.insert("optionalOldSelf", json!(b));
                }
                json!(o)
            })
            .collect();
        m.insert("x-kubernetes-validations".into(), Value::Array(rules));
    }
    Value::Object(m)
}

/// Whole numbers print without a fraction, as Go's JSON encoder prints them.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd_path() -> FieldPath {
        FieldPath::new("spec.versions[0].schema.openAPIV3Schema")
    }

    fn messages(r: Result<Schema, Vec<FieldError>>) -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn parses_every_keyword() {
        let v = json!({
            "type": "object",
            "required": ["spec"],
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "replicas": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 10, "default": 1},
                        "mode": {"type": "string", "enum": ["a", "b"], "pattern": "^[ab]$", "maxLength": 1},
                        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set", "maxItems": 3},
                        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                                  "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}, "x-kubernetes-map-type": "atomic"},
                        "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                        "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "tmpl": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}
                    },
                    "x-kubernetes-validations": [{"rule": "self.replicas <= 10", "message": "too many"}]
                }
            }
        });
        let s = parse_crd_schema(&v, &crd_path()).unwrap();
        let spec = s.property("spec").unwrap();
        assert_eq!(spec.property("replicas").unwrap().default, Some(json!(1)));
        assert_eq!(
            spec.property("tags").unwrap().list_type,
            Some(ListType::Set)
        );
        assert_eq!(
            spec.property("ports").unwrap().list_map_keys,
            vec!["name".to_owned()]
        );
        assert_eq!(
            spec.property("labels").unwrap().map_type,
            Some(MapType::Atomic)
        );
        assert!(spec.property("port").unwrap().int_or_string);
        assert_eq!(spec.validations[0].message.as_deref(), Some("too many"));
        assert_eq!(s.to_json(), v);
    }

    #[test]
    fn missing_types_are_reported_like_apiextensions() {
        let v = json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}});
        assert_eq!(
            messages(parse_crd_schema(&v, &crd_path())),
            vec![
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"
            ]
        );
        let v = json!({"properties": {}});
        assert_eq!(
            messages(parse_crd_schema(&v, &crd_path())),
            vec![
                "spec.versions[0].schema.openAPIV3Schema.type: Required value: must not be empty at the root"
            ]
        );
        let v = json!({"type": "object", "properties": {"l": {"type": "array"}}});
        assert_eq!(
            messages(parse_crd_schema(&v, &crd_path())),
            vec![
                "spec.versions[0].schema.openAPIV3Schema.properties[l].items: Required value: must be specified"
            ]
        );
    }

    #[test]
    fn non_structural_constructs_are_rejected() {
        let v = json!({"type": "object", "properties": {
            "a": {"type": "string", "anyOf": [{"type": "string"}]},
            "b": {"type": "object", "properties": {"x": {"type": "string"}}, "additionalProperties": {"type": "string"}},
            "c": {"type": "string", "x-kubernetes-preserve-unknown-fields": false},
            "d": {"type": "foo"},
            "e": {"type": "string", "pattern": "("},
            "f": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "map"},
            "g": {"type": "object", "x-kubernetes-embedded-resource": true}
        }});
        let got = messages(parse_crd_schema(&v, &FieldPath::root()));
        assert!(got.contains(&"properties[c].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined".to_owned()), "{got:?}");
        assert!(got.contains(&"properties[d].type: Unsupported value: \"foo\": supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\"".to_owned()), "{got:?}");
        assert!(
            got.iter().any(|m| m.starts_with(
                "properties[e].pattern: Invalid value: \"(\": must be a valid regular expression"
            )),
            "{got:?}"
        );
        let v = json!({"type": "object", "properties": {
            "a": {"type": "string", "anyOf": [{"type": "string"}]},
            "b": {"type": "object", "properties": {"x": {"type": "string"}}, "additionalProperties": {"type": "string"}},
            "f": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "map"},
            "g": {"type": "object", "x-kubernetes-embedded-resource": true}
        }});
        let got = messages(parse_crd_schema(&v, &FieldPath::root()));
        assert_eq!(
            got,
            vec![
                "properties[b].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
                "properties[f].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map",
                "properties[f].items.type: Invalid value: \"string\": must be object when x-kubernetes-list-type is map",
                "properties[a].anyOf[0].type: Forbidden: must be empty to be structural",
                "properties[g].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
            ]
        );
    }

    #[test]
    fn metadata_may_only_restrict_names() {
        let ok = json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}}}});
        assert!(parse_crd_schema(&ok, &FieldPath::root()).is_ok());
        let bad = json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}});
        assert_eq!(
            messages(parse_crd_schema(&bad, &FieldPath::root())),
            vec![
                "properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
            ]
        );
    }

    #[test]
    fn invalid_defaults_are_rejected() {
        let v = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "replicas": {"type": "integer", "default": "one"}
        }}}});
        assert_eq!(
            messages(parse_crd_schema(&v, &FieldPath::root())),
            vec![
                "properties[spec].properties[replicas].default: Invalid value: \"one\": spec.replicas in body must be of type integer: \"string\""
            ]
        );
    }

    #[test]
    fn apiextensions_extra_rules() {
        let v = json!({"type": "object", "properties": {
            "a": {"type": "object", "properties": {"x": {"type": "string"}}, "additionalProperties": true},
            "b": {"type": "array", "items": {"type": "string"}, "uniqueItems": true}
        }});
        assert_eq!(
            messages(parse_crd_schema(&v, &FieldPath::root())),
            vec![
                "properties[b].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
            ]
        );
        assert!(parse_schema(&json!({"type": "object", "$ref": "#/x"})).is_err());
        assert!(parse_schema(&json!("object")).is_err());
    }

    #[test]
    fn root_junctors_must_be_complete_and_metadata_stays_out_of_them() {
        let v = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}},
            "anyOf": [{"properties": {"spec": {"properties": {"b": {"pattern": "x"}}}}},
                      {"properties": {"metadata": {"properties": {"name": {"maxLength": 3}}}}}]});
        assert_eq!(
            messages(parse_crd_schema(&v, &FieldPath::root())),
            vec![
                "anyOf[1].properties[metadata]: Forbidden: must not be specified in a nested context",
                "properties[metadata]: Required value: because it is defined in anyOf[1].properties[metadata]",
                "properties[spec].properties[b]: Required value: because it is defined in anyOf[0].properties[spec].properties[b]",
            ]
        );
        let root_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
        assert_eq!(
            messages(parse_crd_schema(&root_map, &FieldPath::root())),
            vec!["additionalProperties: Forbidden: must not be used at the root"]
        );
        let all_of = json!({"type": "object", "properties": {"p": {"x-kubernetes-int-or-string": true,
            "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"pattern": "^[0-9a-z]+$"}]}}});
        assert!(parse_crd_schema(&all_of, &FieldPath::root()).is_ok());
    }

    #[test]
    fn int_or_string_patterns_are_structural() {
        let v = json!({"type": "object", "properties": {"p": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}}});
        assert!(parse_crd_schema(&v, &FieldPath::root()).is_ok());
    }
}
