//! The walks of structured-merge-diff over a value and its [`MergeInfo`]: the set of
//! fields a value sets, the comparison of two values, the apply merge, and the removal
//! of fields.
//!
//! Leaves are scalars, atomic lists and maps, and lists or maps empty on both sides of a
//! comparison (so that `[]` and `{}` stay distinct from absent). Lists of type `set` and
//! `map` are walked item by item, identified by value or by their key fields; maps
//! entry by entry. Untyped values (no [`MergeInfo`]) have granular maps and atomic lists.

use std::collections::BTreeMap;

use serde_json::Value;

use super::fieldset::{FieldSet, Path, PathElement};
use super::info::{ListType, MapType, MergeInfo, child_info};
use super::strategic::remove_key;

type Map = serde_json::Map<String, Value>;

fn list_type(info: Option<&dyn MergeInfo>) -> ListType {
    match info {
        Some(i) if i.list_type() == ListType::Map && i.list_map_keys().is_empty() => {
            ListType::Atomic
        }
        Some(i) => i.list_type(),
        None => ListType::Atomic,
    }
}

fn is_atomic_map(info: Option<&dyn MergeInfo>) -> bool {
    info.is_some_and(|i| i.map_type() == MapType::Atomic)
}

fn items_info(info: Option<&dyn MergeInfo>) -> Option<&dyn MergeInfo> {
    info.and_then(|i| i.items())
}

/// The path element identifying `item` in a `set` or `map` list.
pub(crate) fn item_element(
    item: &Value,
    list: Option<&dyn MergeInfo>,
) -> Result<PathElement, String> {
    match list_type(list) {
        ListType::Map => {
            let Value::Object(fields) = item else {
                return Err(format!(
                    "expected an object in an associative list, found {item}"
                ));
            };
            let item_info = items_info(list);
            let keys = list.map(|l| l.list_map_keys()).unwrap_or_default();
            let mut pairs = Vec::with_capacity(keys.len());
            for key in keys {
                let value = fields
                    .get(key)
                    .or_else(|| item_info.and_then(|i| i.property(key)).and_then(|p| p.default_value()))
                    .or_else(|| known_key_default(key))
                    .ok_or_else(|| {
                        format!(
                            "associative list with keys has an element that omits key field {key:?} \
                             (and doesn't have default value)"
                        )
                    })?;
                pairs.push((key.clone(), value.to_string()));
            }
            pairs.sort();
            Ok(PathElement::Key(pairs))
        }
        _ => Ok(PathElement::Value(item.to_string())),
    }
}

/// Kubernetes publishes `default: TCP` for the `protocol` key of every built-in
/// list-map keyed by it (container, service and endpoint ports); schemas generated
/// without defaults still get it, or applying a port without a protocol would fail.
fn known_key_default(key: &str) -> Option<&'static Value> {
    static TCP: std::sync::LazyLock<Value> =
        std::sync::LazyLock::new(|| Value::String("TCP".to_owned()));
    (key == "protocol").then(|| &*TCP)
}

/// Items of a walked list by element; the first of duplicates wins.
fn index_items<'a>(
    items: &'a [Value],
    list: Option<&dyn MergeInfo>,
) -> Result<(Vec<PathElement>, BTreeMap<PathElement, &'a Value>), String> {
    let mut order = Vec::with_capacity(items.len());
    let mut by_element = BTreeMap::new();
    for item in items {
        let element = item_element(item, list)?;
        if !by_element.contains_key(&element) {
            by_element.insert(element.clone(), item);
            order.push(element);
        }
    }
    Ok((order, by_element))
}

/// The fields `value` sets, as structured-merge-diff's `ToFieldSet`: leaves, list
/// items, and entries of maps that are not declared properties.
pub(crate) fn to_field_set(
    value: &Value,
    info: Option<&dyn MergeInfo>,
) -> Result<FieldSet, String> {
    let mut set = FieldSet::new();
    walk_set(value, info, &Path::default(), &mut set)?;
    Ok(set)
}

fn walk_set(
    value: &Value,
    info: Option<&dyn MergeInfo>,
    path: &Path,
    set: &mut FieldSet,
) -> Result<(), String> {
    match value {
        Value::Object(map) if !is_atomic_map(info) => {
            for (key, child) in map {
                let child_path = path.child(PathElement::Field(key.clone()));
                walk_set(child, child_info(info, key), &child_path, set)?;
                if info.is_none_or(|i| i.property(key).is_none()) {
                    set.insert(child_path);
                }
            }
        }
        Value::Array(items) if list_type(info) != ListType::Atomic => {
            let mut seen = std::collections::BTreeSet::new();
            for item in items {
                let element = item_element(item, info)?;
                if !seen.insert(element.clone()) {
                    return Err(format!("{path}: duplicate entries for key {element}"));
                }
                let item_path = path.child(element);
                walk_set(item, items_info(info), &item_path, set)?;
                set.insert(item_path);
            }
        }
        _ if path.0.is_empty() => {}
        _ => set.insert(path.clone()),
    }
    Ok(())
}

/// What changed between two values.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Comparison {
    /// Present only in the new value.
    pub added: FieldSet,
    /// Present in both, with different values.
    pub modified: FieldSet,
    /// Present only in the old value.
    pub removed: FieldSet,
}

/// Compares `old` with `new`.
pub(crate) fn compare(
    old: &Value,
    new: &Value,
    info: Option<&dyn MergeInfo>,
) -> Result<Comparison, String> {
    let mut comparison = Comparison::default();
    walk_compare(
        Some(old),
        Some(new),
        info,
        &Path::default(),
        &mut comparison,
    )?;
    Ok(comparison)
}

fn is_empty_container(value: Option<&Value>) -> bool {
    match value {
        None => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

fn walk_compare(
    old: Option<&Value>,
    new: Option<&Value>,
    info: Option<&dyn MergeInfo>,
    path: &Path,
    out: &mut Comparison,
) -> Result<(), String> {
    let both_empty = is_empty_container(old) && is_empty_container(new);
    let maps = matches!(
        (old, new),
        (Some(Value::Object(_)) | None, Some(Value::Object(_)) | None)
    );
    let lists = matches!(
        (old, new),
        (Some(Value::Array(_)) | None, Some(Value::Array(_)) | None)
    );
    if maps && !both_empty && !is_atomic_map(info) {
        let empty = Map::new();
        let (o, n) = (
            old.and_then(Value::as_object).unwrap_or(&empty),
            new.and_then(Value::as_object).unwrap_or(&empty),
        );
        for (key, value) in o {
            let child_path = path.child(PathElement::Field(key.clone()));
            walk_compare(
                Some(value),
                n.get(key),
                child_info(info, key),
                &child_path,
                out,
            )?;
        }
        for (key, value) in n.iter().filter(|(k, _)| !o.contains_key(*k)) {
            let child_path = path.child(PathElement::Field(key.clone()));
            walk_compare(None, Some(value), child_info(info, key), &child_path, out)?;
        }
    } else if lists && !both_empty && list_type(info) != ListType::Atomic {
        let empty = Vec::new();
        let o = old.and_then(Value::as_array).unwrap_or(&empty);
        let n = new.and_then(Value::as_array).unwrap_or(&empty);
        let (o_order, o_items) = index_items(o, info)?;
        let (n_order, n_items) = index_items(n, info)?;
        for element in &o_order {
            walk_compare(
                o_items.get(element).copied(),
                n_items.get(element).copied(),
                items_info(info),
                &path.child(element.clone()),
                out,
            )?;
        }
        for element in n_order.iter().filter(|e| !o_items.contains_key(*e)) {
            walk_compare(
                None,
                n_items.get(element).copied(),
                items_info(info),
                &path.child(element.clone()),
                out,
            )?;
        }
    } else {
        match (old, new) {
            (None, Some(_)) => out.added.insert(path.clone()),
            (Some(_), None) => out.removed.insert(path.clone()),
            (Some(a), Some(b)) if a != b => out.modified.insert(path.clone()),
            _ => {}
        }
        return Ok(());
    }
    if !path.0.is_empty() {
        match (old, new) {
            (None, Some(_)) => out.added.insert(path.clone()),
            (Some(_), None) => out.removed.insert(path.clone()),
            _ => {}
        }
    }
    Ok(())
}

/// Merges an applied configuration into the live value: maps entry by entry, `set` and
/// `map` lists item by item, everything else replaced by the configuration.
pub(crate) fn merge(
    live: &Value,
    config: &Value,
    info: Option<&dyn MergeInfo>,
) -> Result<Value, String> {
    match (live, config) {
        (Value::Object(l), Value::Object(c))
            if !is_atomic_map(info) && (!l.is_empty() || !c.is_empty()) =>
        {
            let mut out = l.clone();
            for (key, value) in c {
                let merged = match l.get(key) {
                    Some(current) => merge(current, value, child_info(info, key))?,
                    None => value.clone(),
                };
                out.insert(key.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        (Value::Array(l), Value::Array(c))
            if list_type(info) != ListType::Atomic && (!l.is_empty() || !c.is_empty()) =>
        {
            merge_lists(l, c, info).map(Value::Array)
        }
        _ => Ok(config.clone()),
    }
}

/// Merges list items: items only the live list has keep their places (duplicates the
/// configuration does not touch included, as live objects may hold them), the
/// configuration's items follow the configuration's order.
fn merge_lists(
    live: &[Value],
    config: &[Value],
    info: Option<&dyn MergeInfo>,
) -> Result<Vec<Value>, String> {
    let (_, l_items) = index_items(live, info)?;
    let l_order = live
        .iter()
        .map(|item| item_element(item, info))
        .collect::<Result<Vec<_>, _>>()?;
    let (c_order, c_items) = index_items(config, info)?;
    let item_info = items_info(info);
    let merge_item = |element: &PathElement| -> Result<Option<Value>, String> {
        match (l_items.get(element), c_items.get(element)) {
            (Some(l), Some(c)) => merge(l, c, item_info).map(Some),
            (None, Some(c)) => Ok(Some((*c).clone())),
            (Some(l), None) => Ok(Some((*l).clone())),
            (None, None) => Ok(None),
        }
    };
    let mut shared = c_order.iter().filter(|e| l_items.contains_key(*e));
    let mut next_shared = shared.next();
    let mut emitted = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(l_order.len() + c_order.len());
    let (mut li, mut ci) = (0, 0);
    while li < l_order.len() || ci < c_order.len() {
        if li < l_order.len() && ci < c_order.len() {
            let element = &l_order[li];
            if *element == c_order[ci] {
                out.extend(merge_item(element)?);
                emitted.insert(element.clone());
                li += 1;
                ci += 1;
                next_shared = shared.next();
                continue;
            }
            if c_items.contains_key(element) && next_shared.is_some_and(|n| n != element) {
                li += 1;
                continue;
            }
        }
        if li < l_order.len() {
            let element = &l_order[li];
            if !c_items.contains_key(element) {
                out.push(live[li].clone());
                li += 1;
                continue;
            }
            if emitted.contains(element) {
                li += 1;
                continue;
            }
        }
        if ci < c_order.len() {
            let element = &c_order[ci];
            out.extend(merge_item(element)?);
            emitted.insert(element.clone());
            ci += 1;
            if next_shared == Some(element) {
                next_shared = shared.next();
            }
        }
    }
    Ok(out)
}

/// The node of `info` at `path`.
fn info_at<'a>(info: Option<&'a dyn MergeInfo>, path: &[PathElement]) -> Option<&'a dyn MergeInfo> {
    path.iter().try_fold(info, |node, element| match element {
        PathElement::Field(name) => Some(child_info(node, name)),
        _ => Some(items_info(node)),
    })?
}

/// `set` plus the declared properties on the way to its members, which
/// structured-merge-diff treats as owned when pruning (`EnsureNamedFieldsAreMembers`).
pub(crate) fn with_named_parents(set: &FieldSet, info: Option<&dyn MergeInfo>) -> FieldSet {
    let mut out = set.clone();
    for path in set.iter() {
        for end in 1..path.0.len() {
            if let PathElement::Field(name) = &path.0[end - 1] {
                let parent = info_at(info, &path.0[..end - 1]);
                if parent.is_some_and(|p| p.property(name).is_some()) {
                    out.insert(Path(path.0[..end].to_vec()));
                }
            }
        }
    }
    out
}

/// Removes the members of `remove` (with everything below them) from `value`.
pub(crate) fn remove_paths(
    value: &mut Value,
    info: Option<&dyn MergeInfo>,
    path: &Path,
    remove: &FieldSet,
) {
    match value {
        Value::Object(map) if !is_atomic_map(info) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child_path = path.child(PathElement::Field(key.clone()));
                if remove.contains(&child_path) {
                    remove_key(map, &key);
                } else if remove.has_descendant(&child_path)
                    && let Some(child) = map.get_mut(&key)
                {
                    remove_paths(child, child_info(info, &key), &child_path, remove);
                }
            }
        }
        Value::Array(items) if list_type(info) != ListType::Atomic => {
            let item_info = items_info(info);
            let mut kept = Vec::with_capacity(items.len());
            for mut item in std::mem::take(items) {
                let Ok(element) = item_element(&item, info) else {
                    kept.push(item);
                    continue;
                };
                let item_path = path.child(element);
                if remove.contains(&item_path) {
                    continue;
                }
                if remove.has_descendant(&item_path) {
                    remove_paths(&mut item, item_info, &item_path, remove);
                }
                kept.push(item);
            }
            *items = kept;
        }
        _ => {}
    }
}
