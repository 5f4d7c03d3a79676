//! Server-side apply and the managed-fields bookkeeping of every other write, after
//! structured-merge-diff's `Updater` and k8s.io/apiserver's field manager.
//!
//! Ownership: an applier owns exactly the fields of its last applied configuration; an
//! updater (any create, update or patch) owns the fields it added or changed. Applying
//! a value that differs from the live one in a field another manager owns is a
//! conflict, unless forced, which moves the field to the applier. A field the applier
//! owned before, no longer applies, and nobody else owns is removed.

use serde_json::{Map, Value};

use super::fieldset::{FieldSet, Path, PathElement};
use super::info::MergeInfo;
use super::managed::{self, ManagedFieldsEntry, Operation};
use super::typed::{self, Comparison};
use super::{Reason, json};

/// The annotation client-side `kubectl apply` keeps its last configuration in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manager Kubernetes credits with the fields of an object that had no managed
/// fields when first applied to.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// At most this many `Update` entries are kept; older ones merge into
/// [`ANCIENT_CHANGES`] (kube-apiserver's `DefaultMaxUpdateManagers`).
const MAX_UPDATE_MANAGERS: usize = 10;

/// The manager older updaters are merged into, one entry per `apiVersion`.
const ANCIENT_CHANGES: &str = "ancient-changes";

/// Who writes, and how the endpoint scopes ownership.
#[derive(Debug, Clone, Copy)]
pub struct Manager<'a> {
    /// The field manager (`fieldManager` query parameter, or the user agent's program
    /// name for non-apply writes).
    pub name: &'a str,
    /// The `group/version` (or `v1`) of the endpoint written to.
    pub api_version: &'a str,
    /// The subresource written to (`status`, `scale`), if any.
    pub subresource: Option<&'a str>,
    /// The time of the write, RFC 3339 in UTC with seconds (`2024-05-01T10:00:00Z`).
    pub now: &'a str,
    /// Fields this endpoint resets and never records ownership of, each with
    /// everything below it: `.status` for a main resource with a status subresource,
    /// `.spec` (and `.metadata`) for its status subresource.
    pub ignored_fields: &'a [Path],
}

/// One field another manager owns that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager as Kubernetes prints it: `"kubectl"`, or
    /// `"kubectl-client-side-apply" using apps/v1` for updaters.
    pub manager: String,
    /// The conflicting field.
    pub path: Path,
}

impl Conflict {
    /// The `message` of this conflict's `StatusCause` (type `FieldManagerConflict`).
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.manager)
    }

    /// The `field` of this conflict's `StatusCause`.
    pub fn cause_field(&self) -> String {
        self.path.to_string()
    }
}

/// Why a server-side apply failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The body is not a YAML or JSON object.
    #[error("error decoding YAML: {0}")]
    Decode(String),
    /// The body's `apiVersion` is not the endpoint's.
    #[error(
        "Incorrect version specified in apply patch. Specified patch version: {got}, expected: {expected}"
    )]
    WrongVersion {
        /// The body's `apiVersion`.
        got: String,
        /// The endpoint's.
        expected: String,
    },
    /// The body's `kind` is not the live object's.
    #[error(
        "Incorrect kind specified in apply patch. Specified patch kind: {got}, expected: {expected}"
    )]
    WrongKind {
        /// The body's `kind`.
        got: String,
        /// The live object's.
        expected: String,
    },
    /// The body sets `metadata.managedFields`.
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsInPatch,
    /// The configuration does not fit the type (a list-map item without its keys,
    /// duplicate keys).
    #[error("failed to create typed patch object: {0}")]
    InvalidConfig(String),
    /// The live object does not fit the type, or its managed fields are unreadable.
    #[error("failed to merge the live object: {0}")]
    InvalidLive(String),
    /// Fields the apply changes are owned by other managers; `force` takes them.
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
}

impl ApplyError {
    /// The status kube-apiserver answers with.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Decode(_)
            | Self::WrongVersion { .. }
            | Self::WrongKind { .. }
            | Self::ManagedFieldsInPatch => Reason::BadRequest,
            Self::InvalidConfig(_) | Self::InvalidLive(_) => Reason::Unknown,
            Self::Conflicts(_) => Reason::Conflict,
        }
    }

    /// The conflicts, for the `Status`'s `details.causes`.
    pub fn conflicts(&self) -> &[Conflict] {
        match self {
            Self::Conflicts(c) => c,
            _ => &[],
        }
    }
}

fn conflict_message(conflicts: &[Conflict]) -> String {
    match conflicts {
        [one] => format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            one.manager, one.path
        ),
        _ => {
            let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
            managers.sort_unstable();
            managers.dedup();
            let mut lines = Vec::new();
            for manager in managers {
                lines.push(format!("conflicts with {manager}:"));
                lines.extend(
                    conflicts
                        .iter()
                        .filter(|c| c.manager == manager)
                        .map(|c| format!("- {}", c.path)),
                );
            }
            format!(
                "Apply failed with {} conflicts: {}",
                conflicts.len(),
                lines.join("\n")
            )
        }
    }
}

/// Fields no manager ever owns (structured-merge-diff's `stripMeta`).
fn is_stripped(path: &Path) -> bool {
    let names: Vec<&str> = path
        .0
        .iter()
        .map(|e| match e {
            PathElement::Field(n) => n.as_str(),
            _ => "",
        })
        .collect();
    matches!(
        names.as_slice(),
        ["apiVersion"]
            | ["kind"]
            | ["metadata"]
            | [
                "metadata",
                "name"
                    | "namespace"
                    | "creationTimestamp"
                    | "selfLink"
                    | "uid"
                    | "clusterName"
                    | "generation"
                    | "resourceVersion"
            ]
    ) || names.starts_with(&["metadata", "managedFields"])
}

fn filter(set: &FieldSet, manager: &Manager<'_>) -> FieldSet {
    let mut set = set.clone();
    set.retain(|p| !is_stripped(p) && !manager.ignored_fields.iter().any(|i| p.starts_with(i)));
    set
}

fn filter_comparison(c: Comparison, manager: &Manager<'_>) -> Comparison {
    Comparison {
        added: filter(&c.added, manager),
        modified: filter(&c.modified, manager),
        removed: filter(&c.removed, manager),
    }
}

fn entry_for(manager: &Manager<'_>, operation: Operation) -> ManagedFieldsEntry {
    ManagedFieldsEntry {
        manager: manager.name.to_owned(),
        operation,
        api_version: manager.api_version.to_owned(),
        time: None,
        subresource: manager.subresource.map(str::to_owned),
        fields: FieldSet::new(),
    }
}

fn without_managed_fields(object: &Value) -> Value {
    let mut object = object.clone();
    managed::strip(&mut object);
    object
}

/// Records a non-apply write (create, update, JSON/merge/strategic patch) by
/// `manager`: returns `new` with `metadata.managedFields` updated. `old` is the stored
/// object (`None` on create).
///
/// As in Kubernetes: a write that sets managed fields itself keeps them (`[{}]` clears
/// them), otherwise they come from `old`; fields the write adds or changes move to the
/// manager (operation `Update`), fields it removes leave every manager. Writes through a
/// subresource cannot set managed fields. Objects the bookkeeping cannot read (a list
/// item without its key fields) lose their managed fields instead of failing the write.
pub fn track_update(
    old: Option<&Value>,
    new: &Value,
    manager: &Manager<'_>,
    info: Option<&dyn MergeInfo>,
) -> Value {
    let from_old = || {
        old.map(managed::decode)
            .transpose()
            .ok()
            .flatten()
            .unwrap_or_default()
    };
    let entries = if manager.subresource.is_some() {
        from_old()
    } else if managed::is_reset(new) {
        Vec::new()
    } else {
        match managed::decode(new) {
            Ok(entries) if !entries.is_empty() => entries,
            _ => from_old(),
        }
    };
    let old_clean = old
        .map(without_managed_fields)
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut out = without_managed_fields(new);
    if let Ok(mut entries) = record_update(&old_clean, &out, entries, manager, info) {
        cap_update_managers(&mut entries);
        managed::encode(&mut out, entries);
    }
    out
}

/// Merges the oldest `Update` entries into `ancient-changes` entries until at most
/// [`MAX_UPDATE_MANAGERS`] remain, so that many one-off writers cannot grow an object
/// without bound.
fn cap_update_managers(entries: &mut Vec<ManagedFieldsEntry>) {
    let updaters = |entries: &[ManagedFieldsEntry]| {
        entries
            .iter()
            .filter(|e| e.operation == Operation::Update)
            .count()
    };
    while updaters(entries) > MAX_UPDATE_MANAGERS {
        let Some(oldest) = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.operation == Operation::Update && e.manager != ANCIENT_CHANGES)
            .min_by(|(_, a), (_, b)| a.time.cmp(&b.time))
            .map(|(i, _)| i)
        else {
            return;
        };
        let merged = entries.remove(oldest);
        let bucket = ManagedFieldsEntry {
            manager: ANCIENT_CHANGES.to_owned(),
            subresource: None,
            fields: FieldSet::new(),
            time: None,
            ..merged.clone()
        };
        match entries.iter_mut().find(|e| e.same_manager(&bucket)) {
            Some(existing) => {
                existing.fields = existing.fields.union(&merged.fields);
                existing.time = merged.time;
            }
            None => entries.push(ManagedFieldsEntry {
                fields: merged.fields,
                time: merged.time,
                ..bucket
            }),
        }
    }
}

fn record_update(
    old: &Value,
    new: &Value,
    mut entries: Vec<ManagedFieldsEntry>,
    manager: &Manager<'_>,
    info: Option<&dyn MergeInfo>,
) -> Result<Vec<ManagedFieldsEntry>, String> {
    let changes = filter_comparison(typed::compare(old, new, info)?, manager);
    let taken = changes.modified.union(&changes.added);
    for entry in &mut entries {
        entry.fields = entry.fields.difference(&taken).difference(&changes.removed);
    }
    if !taken.is_empty() {
        let me = entry_for(manager, Operation::Update);
        match entries.iter_mut().find(|e| e.same_manager(&me)) {
            Some(existing) => {
                existing.fields = existing.fields.union(&taken);
                existing.time = Some(manager.now.to_owned());
            }
            None => entries.push(ManagedFieldsEntry {
                fields: taken,
                time: Some(manager.now.to_owned()),
                ..me
            }),
        }
    }
    entries.retain(|e| !e.fields.is_empty());
    Ok(entries)
}

/// Server-side apply of `body` (YAML or JSON) by `manager` to `live` (`None` when the
/// object does not exist yet: the apply creates it). Returns the new object with
/// `metadata.managedFields`; the caller still sets server fields (uid, timestamps,
/// resourceVersion) and validates it.
///
/// `null` values in the configuration are dropped before merging. When the manager is
/// `kubectl`, conflicts on fields of the client-side `last-applied-configuration` are
/// taken over and that annotation is kept in step, as kube-apiserver does to let users
/// move from client-side to server-side apply.
pub fn server_side_apply(
    live: Option<&Value>,
    body: &[u8],
    manager: &Manager<'_>,
    force: bool,
    info: Option<&dyn MergeInfo>,
) -> Result<Value, ApplyError> {
    let config = decode_config(body)?;
    let got_version = config
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if got_version != manager.api_version {
        return Err(ApplyError::WrongVersion {
            got: got_version.to_owned(),
            expected: manager.api_version.to_owned(),
        });
    }
    if let (Some(expected), got) = (
        live.and_then(|l| l.get("kind")).and_then(Value::as_str),
        config.get("kind").and_then(Value::as_str),
    ) && got != Some(expected)
    {
        return Err(ApplyError::WrongKind {
            got: got.unwrap_or_default().to_owned(),
            expected: expected.to_owned(),
        });
    }
    if config
        .pointer("/metadata/managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApplyError::ManagedFieldsInPatch);
    }

    let mut entries = match live {
        Some(l) => managed::decode(l).map_err(|e| ApplyError::InvalidLive(e.to_string()))?,
        None => Vec::new(),
    };
    let live_clean = live
        .map(without_managed_fields)
        .unwrap_or_else(|| Value::Object(Map::new()));
    if live.is_some() && entries.is_empty() {
        let before = Manager {
            name: BEFORE_FIRST_APPLY,
            subresource: None,
            ..*manager
        };
        entries = record_update(
            &Value::Object(Map::new()),
            &live_clean,
            entries,
            &before,
            info,
        )
        .map_err(ApplyError::InvalidLive)?;
    }

    let outcome = match apply_once(&live_clean, &config, entries.clone(), manager, force, info) {
        Err(ApplyError::Conflicts(conflicts)) if manager.name == "kubectl" && !force => {
            match allowed_by_last_applied(&live_clean, manager, info) {
                Some(allowed) => {
                    let remaining: Vec<Conflict> = conflicts
                        .into_iter()
                        .filter(|c| !allowed.contains(&c.path))
                        .collect();
                    if remaining.is_empty() {
                        apply_once(&live_clean, &config, entries, manager, true, info)
                    } else {
                        Err(ApplyError::Conflicts(remaining))
                    }
                }
                None => Err(ApplyError::Conflicts(conflicts)),
            }
        }
        other => other,
    };
    let (mut object, entries) = outcome?;
    if manager.name == "kubectl" && last_applied(&live_clean).is_some() {
        set_last_applied(&mut object, &config);
    }
    managed::encode(&mut object, entries);
    Ok(object)
}

fn decode_config(body: &[u8]) -> Result<Value, ApplyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let value: Value =
        serde_saphyr::from_slice(body).map_err(|e| ApplyError::Decode(e.to_string()))?;
    match value {
        Value::Object(_) => Ok(drop_nulls(value)),
        Value::Null => Ok(Value::Object(Map::new())),
        other => Err(ApplyError::Decode(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type \
             map[string]interface {{}}",
            json::go_type_name(&other)
        ))),
    }
}

fn drop_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, drop_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(drop_nulls).collect()),
        other => other,
    }
}

type Applied = (Value, Vec<ManagedFieldsEntry>);

fn apply_once(
    live: &Value,
    config: &Value,
    mut entries: Vec<ManagedFieldsEntry>,
    manager: &Manager<'_>,
    force: bool,
    info: Option<&dyn MergeInfo>,
) -> Result<Applied, ApplyError> {
    let applied = filter(
        &typed::to_field_set(config, info).map_err(ApplyError::InvalidConfig)?,
        manager,
    );
    let mut merged = typed::merge(live, config, info).map_err(ApplyError::InvalidLive)?;

    let me = entry_for(manager, Operation::Apply);
    let previous = entries
        .iter()
        .position(|e| e.same_manager(&me))
        .map(|i| entries.remove(i));

    if let Some(previous) = &previous {
        let mut owned = applied.clone();
        for entry in &entries {
            owned = owned.union(&entry.fields);
        }
        let owned = typed::with_named_parents(&owned, info);
        let stale = typed::with_named_parents(&previous.fields, info).difference(&owned);
        typed::remove_paths(&mut merged, info, &Path::default(), &stale);
    }

    let changes = filter_comparison(
        typed::compare(live, &merged, info).map_err(ApplyError::InvalidLive)?,
        manager,
    );
    let changed = changes.modified.union(&changes.added);
    let mut conflicts = Vec::new();
    for entry in &entries {
        for path in entry.fields.intersection(&changed).iter() {
            conflicts.push(Conflict {
                manager: entry.display_name(),
                path: path.clone(),
            });
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort_by(|a, b| (&a.manager, &a.path).cmp(&(&b.manager, &b.path)));
        return Err(ApplyError::Conflicts(conflicts));
    }
    for entry in &mut entries {
        entry.fields = entry
            .fields
            .difference(&changed)
            .difference(&changes.removed);
    }
    let object_changed = merged != *live;
    let time = match &previous {
        Some(p) if !object_changed => p.time.clone(),
        _ => Some(manager.now.to_owned()),
    };
    entries.push(ManagedFieldsEntry {
        fields: applied,
        time,
        ..me
    });
    entries.retain(|e| !e.fields.is_empty());
    Ok((merged, entries))
}

fn last_applied(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/annotations")?
        .get(LAST_APPLIED)?
        .as_str()
}

/// The fields of the client-side `last-applied-configuration` that still have their
/// applied values: kubectl owned them before moving to server-side apply, so
/// conflicts on them are not reported (kube-apiserver's `lastAppliedManager`).
fn allowed_by_last_applied(
    live: &Value,
    manager: &Manager<'_>,
    info: Option<&dyn MergeInfo>,
) -> Option<FieldSet> {
    let config: Value = serde_json::from_str(last_applied(live)?).ok()?;
    if config.get("apiVersion").and_then(Value::as_str) != Some(manager.api_version) {
        return None;
    }
    let fields = typed::to_field_set(&config, info).ok()?;
    let changes = typed::compare(&config, live, info).ok()?;
    Some(
        fields
            .difference(&changes.modified)
            .difference(&changes.added)
            .difference(&changes.removed),
    )
}

fn set_last_applied(object: &mut Value, config: &Value) {
    let mut recorded = config.clone();
    if let Some(annotations) = recorded
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        super::strategic::remove_key(annotations, LAST_APPLIED);
    }
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.insert(LAST_APPLIED.to_owned(), Value::String(recorded.to_string()));
    }
}
