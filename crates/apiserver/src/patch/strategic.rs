//! Strategic merge patch, the apply half of Kubernetes' apimachinery `strategicpatch`
//! package, over `serde_json::Value`.
//!
//! Maps merge recursively and `null` deletes. A list merges only when its field has
//! `patchStrategy: merge`: lists of objects by `patchMergeKey`, lists of scalars as sets;
//! every other list is replaced. Directives: `$patch: replace|delete` in maps,
//! `$patch: replace|delete` as list items, `$deleteFromPrimitiveList/<field>`,
//! `$setElementOrder/<field>` and `$retainKeys`. The order of merged lists follows the
//! patch (or its `$setElementOrder` list), with items only the server has kept at their
//! relative places, as apimachinery does.

use std::fmt::Write as _;

use serde_json::Value;

use super::Reason;
use super::info::{MergeInfo, child_info};

type Map = serde_json::Map<String, Value>;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// Why a strategic merge patch could not be applied. The texts are apimachinery's.
#[derive(Debug, thiserror::Error)]
pub enum StrategicError {
    /// The live object is not a JSON object.
    #[error("invalid JSON document")]
    BadJsonDoc,
    /// A `$deleteFromPrimitiveList` key without `/<field>`.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveListFormat,
    /// `$retainKeys` is not a list, or the patch sets a key the list does not retain.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeysFormat,
    /// A `$setElementOrder` key without `/<field>`.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrderFormat,
    /// A list whose items are lists.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// A list item (or `$setElementOrder` entry) lacks the list's merge key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey {
        /// The item, printed as Go prints maps.
        map: String,
        /// The merge key.
        key: String,
    },
    /// A `$patch` directive with an unknown value.
    #[error("unknown patch type: {directive} in map: {map}")]
    BadPatchType {
        /// The directive's value.
        directive: String,
        /// The map holding it.
        map: String,
    },
    /// `$patch: merge` as a list item.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// A list of objects declared `merge` without a merge key.
    #[error("cannot merge lists without merge key for {field}")]
    NoMergeKeyDeclared {
        /// The list field.
        field: String,
    },
    /// Items of different JSON types in one merged list.
    #[error("list element types are not identical: {0}")]
    MixedElementTypes(String),
    /// A value of the wrong JSON type where a directive or merge needs a list or map.
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        /// Go's name of the expected type.
        expected: &'static str,
        /// Go's name of the type found.
        actual: &'static str,
    },
    /// The patch list's items are not in the relative order of its `$setElementOrder` list.
    #[error("the order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}")]
    OrderMismatch {
        /// The patch list.
        patch: String,
        /// The `$setElementOrder` list.
        order: String,
    },
    /// A `$setElementOrder` list for a field that is empty in both the object and patch.
    #[error("no elements in any of the given slices")]
    NoElements,
}

impl StrategicError {
    /// The status kube-apiserver answers with (its `interpretStrategicMergePatchError`;
    /// errors it does not classify become a 500 with the error text).
    pub fn reason(&self) -> Reason {
        match self {
            Self::BadJsonDoc
            | Self::BadPrimitiveListFormat
            | Self::BadRetainKeysFormat
            | Self::BadSetElementOrderFormat => Reason::BadRequest,
            Self::ListOfLists => Reason::Invalid,
            _ => Reason::Unknown,
        }
    }
}

/// Applies `patch` (a JSON object) to `live` (a JSON object).
pub(crate) fn strategic_merge_patch(
    live: &Value,
    patch: &Value,
    info: Option<&dyn MergeInfo>,
) -> Result<Value, StrategicError> {
    let (Value::Object(original), Value::Object(patch)) = (live, patch) else {
        return Err(StrategicError::BadJsonDoc);
    };
    merge_map(original.clone(), patch.clone(), info).map(Value::Object)
}

fn merge_map(
    mut original: Map,
    mut patch: Map,
    info: Option<&dyn MergeInfo>,
) -> Result<Map, StrategicError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return directive_in_map(directive, &patch);
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_set_element_order(&mut original, &mut patch, info)?;

    for (key, patch_value) in patch {
        let (key, is_delete_list) = match key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            Some(rest) => (
                rest.strip_prefix('/')
                    .ok_or(StrategicError::BadPrimitiveListFormat)?
                    .to_owned(),
                true,
            ),
            None => (key, false),
        };
        if patch_value.is_null() {
            remove_key(&mut original, &key);
            continue;
        }
        let child = child_info(info, &key);
        match original.get_mut(&key) {
            Some(slot) if same_kind(slot, &patch_value) => {
                let current = std::mem::take(slot);
                *slot = merge_same_kind(current, patch_value, child, is_delete_list)?;
            }
            // A new key, or a value of another type: the patch's value, cleaned.
            _ if is_delete_list => {}
            _ => match clean(patch_value) {
                Some(value) => {
                    original.insert(key, value);
                }
                None => {
                    remove_key(&mut original, &key);
                }
            },
        }
    }
    Ok(original)
}

fn merge_same_kind(
    current: Value,
    patch: Value,
    info: Option<&dyn MergeInfo>,
    is_delete_list: bool,
) -> Result<Value, StrategicError> {
    let strategy = info.map(|i| i.patch_strategy()).unwrap_or_default();
    Ok(match (current, patch) {
        (Value::Object(_), Value::Object(patch)) if strategy.replace => {
            clean(Value::Object(patch)).unwrap_or_else(|| Value::Object(Map::new()))
        }
        (Value::Object(current), Value::Object(patch)) => {
            Value::Object(merge_map(current, patch, info)?)
        }
        (Value::Array(current), Value::Array(patch)) => {
            Value::Array(merge_list(current, patch, info, is_delete_list)?)
        }
        (_, patch) => patch,
    })
}

fn directive_in_map(directive: &Value, patch: &Map) -> Result<Map, StrategicError> {
    match directive.as_str() {
        Some("replace") => {
            let mut replaced = patch.clone();
            remove_key(&mut replaced, DIRECTIVE);
            match clean(Value::Object(replaced)) {
                Some(Value::Object(map)) => Ok(map),
                _ => Ok(Map::new()),
            }
        }
        Some("delete") => Ok(Map::new()),
        _ => Err(StrategicError::BadPatchType {
            directive: go_fmt(directive),
            map: go_fmt(&Value::Object(patch.clone())),
        }),
    }
}

fn apply_retain_keys(original: &mut Map, patch: &mut Map) -> Result<(), StrategicError> {
    let Some(retain) = remove_key(patch, RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(StrategicError::BadRetainKeysFormat);
    };
    let retained = |key: &str| retain.iter().any(|r| r.as_str() == Some(key));
    for (key, value) in patch.iter() {
        if value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || key.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !retained(key) {
            return Err(StrategicError::BadRetainKeysFormat);
        }
    }
    original.retain(|key, _| retained(key));
    Ok(())
}

fn merge_set_element_order(
    original: &mut Map,
    patch: &mut Map,
    info: Option<&dyn MergeInfo>,
) -> Result<(), StrategicError> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in keys {
        let Some(order) = remove_key(patch, &key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(StrategicError::BadArgType {
                expected: "[]interface {}",
                actual: go_type(&order),
            });
        };
        let field = key
            .strip_prefix(SET_ELEMENT_ORDER)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or(StrategicError::BadSetElementOrderFormat)?
            .to_owned();
        let original_list = list_field(original, &field)?;
        let patch_list = list_field(patch, &field)?;
        let child = child_info(info, &field);
        let merge_key = child
            .and_then(|c| c.patch_merge_key())
            .unwrap_or_default()
            .to_owned();
        validate_against_order(
            patch_list.as_deref().unwrap_or_default(),
            &order,
            &merge_key,
        )?;

        let merged = match (&original_list, &patch_list) {
            (Some(current), None) => current.clone(),
            (None, Some(added)) => match clean(Value::Array(added.clone())) {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            },
            (Some(current), Some(added)) => {
                merge_list(current.clone(), added.clone(), child, false)?
            }
            (None, None) => continue,
        };
        let server_order = original_list.unwrap_or_default();
        let kind = element_kind(&[&server_order, patch_list.as_deref().unwrap_or_default()])?
            .ok_or(StrategicError::NoElements)?;
        let (in_order, server_only) = partition(merged, &order, &merge_key, kind)?;
        let sorted = normalize_element_order(
            in_order,
            server_only,
            &order,
            &server_order,
            &merge_key,
            kind,
        )?;
        original.insert(field.clone(), Value::Array(sorted));
        remove_key(patch, &field);
    }
    Ok(())
}

fn list_field(map: &Map, field: &str) -> Result<Option<Vec<Value>>, StrategicError> {
    match map.get(field) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.clone())),
        Some(other) => Err(StrategicError::BadArgType {
            expected: "[]interface {}",
            actual: go_type(other),
        }),
    }
}

/// Checks that the non-directive items of `patch` appear in `order` in the same relative
/// order.
fn validate_against_order(
    patch: &[Value],
    order: &[Value],
    merge_key: &str,
) -> Result<(), StrategicError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let items: Vec<&Value> = if merge_key.is_empty() {
        patch.iter().collect()
    } else {
        let mut kept = Vec::new();
        for item in patch {
            let Value::Object(map) = item else {
                return Err(StrategicError::BadArgType {
                    expected: "map[string]interface {}",
                    actual: go_type(item),
                });
            };
            if map.get(DIRECTIVE).and_then(Value::as_str) != Some("delete") {
                kept.push(item);
            }
        }
        kept
    };
    let (mut p, mut o) = (0, 0);
    while p < items.len() && o < order.len() {
        if has_directive(items[p]) {
            p += 1;
            continue;
        }
        if merge_key_equal(items[p], &order[o], merge_key)? {
            p += 1;
        }
        o += 1;
    }
    if p < items.len() && o >= order.len() {
        return Err(StrategicError::OrderMismatch {
            patch: go_fmt(&Value::Array(patch.to_vec())),
            order: go_fmt(&Value::Array(order.to_vec())),
        });
    }
    Ok(())
}

fn merge_key_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool, StrategicError> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    Ok(merge_key_value(left, merge_key)? == merge_key_value(right, merge_key)?)
}

fn merge_key_value<'a>(item: &'a Value, merge_key: &str) -> Result<&'a Value, StrategicError> {
    let Value::Object(map) = item else {
        return Err(StrategicError::BadArgType {
            expected: "map[string]interface {}",
            actual: go_type(item),
        });
    };
    map.get(merge_key)
        .ok_or_else(|| StrategicError::NoMergeKey {
            map: go_fmt(item),
            key: merge_key.to_owned(),
        })
}

fn has_directive(item: &Value) -> bool {
    item.as_object().is_some_and(|m| m.contains_key(DIRECTIVE))
}

/// Merges two lists of one field according to its patch strategy.
fn merge_list(
    current: Vec<Value>,
    patch: Vec<Value>,
    info: Option<&dyn MergeInfo>,
    is_delete_list: bool,
) -> Result<Vec<Value>, StrategicError> {
    let strategy = info.map(|i| i.patch_strategy()).unwrap_or_default();
    // Deletion lists apply whatever the field's strategy.
    if !strategy.merge && !is_delete_list {
        return Ok(match clean(Value::Array(patch)) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        });
    }
    let merge_key = info.and_then(|i| i.patch_merge_key()).unwrap_or_default();
    let items = info.and_then(|i| i.items());
    if current.is_empty() && patch.is_empty() {
        return Ok(current);
    }
    let Some(kind) = element_kind(&[&current, &patch])? else {
        return Ok(current);
    };
    let (merged, patch_order, server_order) = if kind != ElementKind::Map {
        if is_delete_list {
            return Ok(current.into_iter().filter(|v| !patch.contains(v)).collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(current.len() + patch.len());
        for item in current.iter().chain(patch.iter()) {
            if !merged.contains(item) {
                merged.push(item.clone());
            }
        }
        (merged, patch, current)
    } else {
        if merge_key.is_empty() {
            return Err(StrategicError::NoMergeKeyDeclared {
                field: "list of maps".to_owned(),
            });
        }
        let (server, patch) = apply_list_directives(current, patch, merge_key)?;
        let merged = merge_by_key(server.clone(), &patch, merge_key, items)?;
        (merged, patch, server)
    };
    let (in_patch, server_only) = partition(merged, &patch_order, merge_key, kind)?;
    normalize_element_order(
        in_patch,
        server_only,
        &patch_order,
        &server_order,
        merge_key,
        kind,
    )
}

/// Handles `$patch: delete|replace` items: deletions remove matching server items,
/// `replace` makes the patch's other items the whole list. Returns the server list and
/// the patch items left to merge.
fn apply_list_directives(
    mut server: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), StrategicError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let key = merge_key_value(&item, merge_key)?.clone();
                server.retain(|s| s.get(merge_key) != Some(&key));
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(StrategicError::MergeDirectiveInList),
            _ => {
                return Err(StrategicError::BadPatchType {
                    directive: go_fmt(directive),
                    map: go_fmt(&item),
                });
            }
        }
    }
    if replace {
        let items = plain.into_iter().filter_map(clean).collect();
        return Ok((items, Vec::new()));
    }
    Ok((server, plain))
}

fn merge_by_key(
    mut server: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    items: Option<&dyn MergeInfo>,
) -> Result<Vec<Value>, StrategicError> {
    for item in patch {
        let key = merge_key_value(item, merge_key)?;
        let mut found = None;
        for (i, s) in server.iter().enumerate() {
            let Value::Object(map) = s else {
                return Err(StrategicError::BadArgType {
                    expected: "map[string]interface {}",
                    actual: go_type(s),
                });
            };
            if map.get(merge_key) == Some(key) {
                found = Some(i);
                break;
            }
        }
        match (found, item) {
            (Some(i), Value::Object(patch_map)) => {
                let current = match std::mem::take(&mut server[i]) {
                    Value::Object(map) => map,
                    _ => Map::new(),
                };
                server[i] = Value::Object(merge_map(current, patch_map.clone(), items)?);
            }
            _ => {
                if let Some(value) = clean(item.clone()) {
                    server.push(value);
                }
            }
        }
    }
    Ok(server)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Map,
    String,
    Integer,
    Float,
    Bool,
    Null,
}

/// The common item type of the lists (Go compares reflect types, so integers and floats
/// differ); `None` when they are all empty.
fn element_kind(lists: &[&[Value]]) -> Result<Option<ElementKind>, StrategicError> {
    let mut kind = None;
    for item in lists.iter().flat_map(|l| l.iter()) {
        let this = match item {
            Value::Array(_) if kind.is_none() => return Err(StrategicError::ListOfLists),
            Value::Array(_) => None,
            Value::Object(_) => Some(ElementKind::Map),
            Value::String(_) => Some(ElementKind::String),
            Value::Number(n) if n.is_f64() => Some(ElementKind::Float),
            Value::Number(_) => Some(ElementKind::Integer),
            Value::Bool(_) => Some(ElementKind::Bool),
            Value::Null => Some(ElementKind::Null),
        };
        match (kind, this) {
            (None, Some(t)) => kind = Some(t),
            (Some(k), Some(t)) if k == t => {}
            _ => {
                let all: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                return Err(StrategicError::MixedElementTypes(go_fmt(&Value::Array(
                    all,
                ))));
            }
        }
    }
    Ok(kind)
}

/// Splits `merged` into the items present in `by` and the others, keeping their order.
fn partition(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Result<(Vec<Value>, Vec<Value>), StrategicError> {
    let mut present = Vec::new();
    let mut others = Vec::new();
    for item in merged {
        let found = if kind == ElementKind::Map && !merge_key.is_empty() {
            let key = merge_key_value(&item, merge_key)?;
            by.iter().any(|b| b.get(merge_key) == Some(key))
        } else {
            by.contains(&item)
        };
        if found {
            present.push(item)
        } else {
            others.push(item)
        }
    }
    Ok((present, others))
}

/// Position of `item` in `list`, comparing maps by merge key.
fn position(list: &[Value], item: &Value, merge_key: &str, kind: ElementKind) -> Option<usize> {
    if kind == ElementKind::Map {
        let key = item.get(merge_key);
        list.iter().position(|v| v.get(merge_key) == key)
    } else {
        list.iter().position(|v| v == item)
    }
}

/// Orders patch items by `patch_order` and server-only items by `server_order`, then
/// interleaves them: a server-only item goes before a patch item when the server had it
/// first.
fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Result<Vec<Value>, StrategicError> {
    let right = sort_by_order(patch_items, patch_order, merge_key, kind)?;
    let left = sort_by_order(server_only, server_order, merge_key, kind)?;
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut left, mut right) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (position(server_order, l, merge_key, kind), position(server_order, r, merge_key, kind)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    Ok(out)
}

fn sort_by_order(
    items: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: ElementKind,
) -> Result<Vec<Value>, StrategicError> {
    if kind == ElementKind::Map {
        for item in items.iter().chain(order.iter()) {
            merge_key_value(item, merge_key)?;
        }
    }
    let (mut keep, deletions): (Vec<Value>, Vec<Value>) = items
        .into_iter()
        .partition(|i| i.get(DIRECTIVE).and_then(Value::as_str) != Some("delete"));
    keep.sort_by_key(|item| position(order, item, merge_key, kind).unwrap_or(usize::MAX));
    keep.extend(deletions);
    Ok(keep)
}

fn same_kind(a: &Value, b: &Value) -> bool {
    matches!(
        (a, b),
        (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_))
    ) || (!a.is_object() && !a.is_array() && !b.is_object() && !b.is_array())
}

/// Makes a patch value fit to store: drops `null` map values, maps carrying a `$patch`
/// directive and directive keys, as apimachinery and the typed decoding after it do.
/// `None` when the value itself is a directive.
fn clean(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) => {
            if map.contains_key(DIRECTIVE) {
                return None;
            }
            let cleaned = map
                .into_iter()
                .filter(|(k, v)| !v.is_null() && !is_directive_key(k))
                .filter_map(|(k, v)| clean(v).map(|v| (k, v)))
                .collect();
            Some(Value::Object(cleaned))
        }
        Value::Array(items) => Some(Value::Array(items.into_iter().filter_map(clean).collect())),
        other => Some(other),
    }
}

fn is_directive_key(key: &str) -> bool {
    key == DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
        || key.starts_with(SET_ELEMENT_ORDER)
}

/// Go's `reflect.TypeOf` name of a decoded JSON value.
fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Prints a value as Go's `%v` prints decoded JSON (`map[k:v]`, `[a b]`).
fn go_fmt(value: &Value) -> String {
    let mut out = String::new();
    write_go(value, &mut out);
    out
}

fn write_go(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_go(v, out);
                }
            }
            out.push(']');
        }
    }
}

/// Removes `key`, keeping the order of the other keys whichever map representation
/// serde_json was built with.
pub(crate) fn remove_key(map: &mut Map, key: &str) -> Option<Value> {
    let value = map.get_mut(key).map(std::mem::take)?;
    map.retain(|k, _| k != key);
    Some(value)
}
