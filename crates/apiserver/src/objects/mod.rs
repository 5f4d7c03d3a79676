//! Object semantics, independent of HTTP: the verbs with kube's metadata rules,
//! optimistic concurrency, finalizers, the status split, selectors and paging.
//! The HTTP layer and the in-server controllers both go through [`Objects`].
//!
//! ```text
//!   http ──┐                    ┌─> admission (names, CRDs, defaults)
//!          ├─> Objects (verbs) ─┼─> meta rules, patching
//!   ctrls ─┘                    └─> storage (revisioned KV) ──> watch
//! ```

mod admission;
pub mod error;
mod list;
pub mod meta;
mod namespaces;
pub mod options;
mod pods;
pub mod scale;
pub mod selector;
pub mod storage;
pub mod watch;

use std::sync::Arc;

use serde_json::{Value, json};

pub use crate::patch::PatchType;
pub use error::{ApiError, Cause, Subject};
pub use namespaces::NamespacePhase;
pub use options::{
    DeleteOptions, FieldValidation, ListOptions, Propagation, VersionMatch, WatchOptions,
    WriteOptions,
};
pub use storage::{ObjectStore, StorageError, Stored};

use crate::patch::{self, Manager, MergeInfo};
use crate::registry::{Registry, ResourceInfo, Subresource, conversion};
use crate::schema::Schema;

/// How many times an unconditional write re-reads and retries after losing a race.
const WRITE_RETRIES: usize = 16;

/// The result of a write.
#[derive(Debug, Clone)]
pub struct Written {
    /// The object as stored, with its new resourceVersion.
    pub object: Value,
    /// Warnings for the client (`Warning` headers).
    pub warnings: Vec<String>,
    /// Whether the write created the object.
    pub created: bool,
}

/// The object layer; cheap to clone.
#[derive(Debug, Clone)]
pub struct Objects {
    store: ObjectStore,
    registry: Registry,
    services: Arc<std::sync::Mutex<crate::cluster::alloc::ServiceAllocator>>,
}

fn storage_failed(e: StorageError) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn namespaces_subject(ns: &str) -> Subject {
    Subject {
        group: String::new(),
        plural: "namespaces".into(),
        kind: "Namespace".into(),
        name: ns.into(),
    }
}

/// A bad `resourceVersion` string.
fn parse_rv(rv: &str) -> Result<i64, ApiError> {
    rv.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid resource version: {rv}")))
}

impl Objects {
    /// The object layer over a store and a registry.
    pub fn new(store: ObjectStore, registry: Registry) -> Self {
        Objects {
            store,
            registry,
            services: Default::default(),
        }
    }

    /// The clusterIP and nodePort allocator.
    pub(crate) fn service_allocator(
        &self,
    ) -> std::sync::MutexGuard<'_, crate::cluster::alloc::ServiceAllocator> {
        self.services.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The store.
    pub fn store(&self) -> &ObjectStore {
        &self.store
    }

    /// Loads what the server keeps in memory from the store (at start-up): the
    /// CRDs to serve and the addresses and ports Services hold.
    pub async fn load_state(&self) -> Result<usize, ApiError> {
        let (services, _) = self
            .store
            .list("/registry/core/services/", None)
            .await
            .map_err(storage_failed)?;
        let typed: Vec<k8s_openapi::api::core::v1::Service> = services
            .into_iter()
            .filter_map(|(_, s)| serde_json::from_value(s.value).ok())
            .collect();
        self.service_allocator().rebuild(&typed);
        self.load_crds().await
    }

    /// Serves every CRD found in the store.
    async fn load_crds(&self) -> Result<usize, ApiError> {
        let Some(crds) =
            self.registry
                .resolve("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        else {
            return Ok(0);
        };
        let (items, _) = self
            .store
            .list(&crds.key_prefix(), None)
            .await
            .map_err(storage_failed)?;
        let mut served = 0;
        for (_, stored) in items {
            if self.registry.apply_crd(&stored.value).is_ok() {
                served += 1;
            }
        }
        Ok(served)
    }

    /// A stored object as clients see it: converted to the requested
    /// resource's form, apiVersion and kind of the requested version,
    /// resourceVersion from the store revision.
    pub fn present(r: &ResourceInfo, value: Value, revision: i64) -> Value {
        Self::finish(r, conversion::from_storage(r, value), revision)
    }

    /// An object already in the requested resource's form, as clients see it.
    fn finish(r: &ResourceInfo, mut value: Value, revision: i64) -> Value {
        if let Some(map) = value.as_object_mut() {
            map.insert("apiVersion".into(), json!(r.api_version()));
            map.insert("kind".into(), json!(r.kind));
        }
        if let Some(meta) = meta::meta_mut(&mut value) {
            meta.insert("resourceVersion".into(), json!(revision.to_string()));
        }
        value
    }

    async fn read(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Stored, ApiError> {
        self.store
            .get(&r.key(ns, name))
            .await
            .map_err(storage_failed)?
            .ok_or_else(|| ApiError::NotFound(Subject::of(r, name)))
    }

    /// get.
    pub async fn get(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let s = self.read(r, ns, name).await?;
        Ok(Self::present(r, s.value, s.mod_revision))
    }

    /// list; returns the `<Kind>List` object.
    pub async fn list(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<Value, ApiError> {
        list::list(self, r, ns, opts).await
    }

    /// list, already serialized: the same JSON as `list` gives, without
    /// holding every item decoded at once.
    pub async fn list_encoded(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<Vec<u8>, ApiError> {
        list::list_encoded(self, r, ns, opts).await
    }

    async fn check_namespace(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        let Some(ns) = ns.filter(|_| r.namespaced) else {
            return Ok(());
        };
        match self.store.namespace(ns).await.map_err(storage_failed)? {
            None => Err(ApiError::NotFound(namespaces_subject(ns))),
            Some(NamespacePhase::Terminating) => Err(ApiError::Forbidden(format!(
                "{} {name:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                r.qualified_plural()
            ))),
            Some(NamespacePhase::Active) => Ok(()),
        }
    }

    /// Checks apiVersion, kind and namespace of a request body.
    fn check_body(r: &ResourceInfo, ns: Option<&str>, body: &Value) -> Result<(), ApiError> {
        if !body.is_object() {
            return Err(ApiError::BadRequest(
                "the body of the request must be a JSON or YAML object".into(),
            ));
        }
        if let Some(av) = body.get("apiVersion").and_then(Value::as_str)
            && av != r.api_version()
            && !(r.crd.is_some() && crate::registry::split_api_version(av).0 == r.group)
        {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({av}) does not match the expected API version ({})",
                r.api_version()
            )));
        }
        if let Some(kind) = body.get("kind").and_then(Value::as_str)
            && kind != r.kind
        {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                r.kind
            )));
        }
        if r.namespaced
            && let (Some(url_ns), Some(body_ns)) = (ns, meta::meta_str(body, "namespace"))
            && !body_ns.is_empty()
            && body_ns != url_ns
        {
            return Err(ApiError::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request"
                    .into(),
            ));
        }
        Ok(())
    }

    /// create.
    pub async fn create(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        self.create_inner(r, ns, body, opts, Tracking::Update).await
    }

    async fn create_inner(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        mut body: Value,
        opts: &WriteOptions,
        tracking: Tracking,
    ) -> Result<Written, ApiError> {
        Self::check_body(r, ns, &body)?;
        if r.namespaced && ns.is_none() {
            return Err(ApiError::BadRequest(
                "the namespace of the object must be given in the request path".into(),
            ));
        }
        let given_name = meta::meta_str(&body, "name").unwrap_or("").to_owned();
        let generate = meta::meta_str(&body, "generateName")
            .unwrap_or("")
            .to_owned();
        if given_name.is_empty() && generate.is_empty() {
            return Err(ApiError::Invalid {
                subject: Subject::of(r, ""),
                causes: vec![Cause::required(
                    "metadata.name",
                    "name or generateName is required",
                )],
            });
        }
        self.check_namespace(r, ns, &given_name).await?;
        meta::init_on_create(&mut body, ns.filter(|_| r.namespaced), keeps_generation(r));
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Only a generated name is ever retried: a given name's attempt
            // is the last, and can take the body instead of copying it.
            let mut obj = if given_name.is_empty() {
                body.clone()
            } else {
                std::mem::take(&mut body)
            };
            let name = if given_name.is_empty() {
                meta::generate_name(&generate)
            } else {
                given_name.clone()
            };
            if let Some(m) = meta::meta_mut(&mut obj) {
                m.insert("name".into(), json!(name));
            }
            let warnings = admission::admit(self, r, &mut obj, None, opts)?;
            if tracking == Tracking::Update {
                obj = track(r, None, obj, opts, None);
            }
            strip_type_meta(&mut obj);
            if opts.dry_run {
                return Ok(Written {
                    object: Self::finish(r, obj, 0),
                    warnings,
                    created: true,
                });
            }
            let stored = conversion::to_storage(r, &obj);
            match self.store.create(&r.key(ns, &name), &stored).await {
                Ok(rev) => {
                    admission::after_write(self, r, &stored).await;
                    drop(stored);
                    return Ok(Written {
                        object: Self::finish(r, obj, rev),
                        warnings,
                        created: true,
                    });
                }
                Err(StorageError::AlreadyExists) if given_name.is_empty() && attempt < 8 => {
                    continue;
                }
                Err(StorageError::AlreadyExists) => {
                    return Err(ApiError::AlreadyExists(Subject::of(r, &name)));
                }
                Err(e) => return Err(storage_failed(e)),
            }
        }
    }

    /// update (PUT), of the object or of a subresource.
    pub async fn update(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        body: Value,
        opts: &WriteOptions,
        sub: Option<Subresource>,
    ) -> Result<Written, ApiError> {
        Self::check_body(r, ns, &body)?;
        if let Some(body_name) = meta::meta_str(&body, "name")
            && body_name != name
        {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let precondition = match meta::meta_str(&body, "resourceVersion") {
            Some(rv) if !rv.is_empty() => Some(parse_rv(rv)?),
            _ => None,
        };
        self.write_loop(
            r,
            ns,
            name,
            opts,
            sub,
            precondition,
            Tracking::Update,
            |_| Ok(body.clone()),
        )
        .await
    }

    /// patch, of the object or of a subresource. Server-side apply creates the
    /// object when it does not exist.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        kind: PatchType,
        body: &[u8],
        opts: &WriteOptions,
        sub: Option<Subresource>,
    ) -> Result<Written, ApiError> {
        let schema = admission::schema_of(r);
        // `&dyn MergeInfo` is not Sync, so it is made where it is used rather than
        // held across awaits.
        let info = || schema.as_deref().map(|s| s as &dyn MergeInfo);
        let subject = || Subject::of(r, name);
        if kind == PatchType::Apply {
            let api_version = r.api_version();
            let now = meta::now();
            let ignored = ignored_fields(r, sub);
            let manager = Manager {
                name: opts.field_manager.as_deref().unwrap_or_default(),
                api_version: &api_version,
                subresource: sub.map(Subresource::name),
                now: &now,
                ignored_fields: &ignored,
            };
            let exists = self
                .store
                .get(&r.key(ns, name))
                .await
                .map_err(storage_failed)?
                .is_some();
            if !exists && sub.is_none() {
                let mut obj = patch::server_side_apply(None, body, &manager, opts.force, info())
                    .map_err(|e| apply_failed(e, subject()))?;
                if let Some(m) = meta::meta_mut(&mut obj) {
                    m.entry("name").or_insert_with(|| json!(name));
                }
                if meta::meta_str(&obj, "name") != Some(name) {
                    return Err(ApiError::BadRequest(
                        "the name of the object does not match the name on the URL".into(),
                    ));
                }
                return self.create_inner(r, ns, obj, opts, Tracking::Done).await;
            }
            return self
                .write_loop(r, ns, name, opts, sub, None, Tracking::Done, |current| {
                    patch::server_side_apply(Some(current), body, &manager, opts.force, info())
                        .map_err(|e| apply_failed(e, subject()))
                })
                .await;
        }
        self.write_loop(r, ns, name, opts, sub, None, Tracking::Update, |current| {
            let patched = patch::apply_patch(kind, current, body, info())
                .map_err(|e| patch_failed(e, subject()))?;
            let before = meta::meta_str(current, "resourceVersion");
            let after = meta::meta_str(&patched, "resourceVersion");
            if after.is_some() && after != before {
                return Err(ApiError::modified(subject()));
            }
            Ok(patched)
        })
        .await
    }

    /// Reads, computes the new object with `make` from the presented current
    /// one, and writes it, retrying when a concurrent write wins and no
    /// precondition was given.
    #[allow(clippy::too_many_arguments)]
    async fn write_loop(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &WriteOptions,
        sub: Option<Subresource>,
        precondition: Option<i64>,
        tracking: Tracking,
        make: impl Fn(&Value) -> Result<Value, ApiError>,
    ) -> Result<Written, ApiError> {
        for _ in 0..WRITE_RETRIES {
            let current = self.read(r, ns, name).await?;
            if precondition.is_some_and(|p| p != current.mod_revision) {
                return Err(ApiError::modified(Subject::of(r, name)));
            }
            let presented = Self::present(r, current.value.clone(), current.mod_revision);
            let requested = make(&presented)?;
            match self
                .write_update(r, ns, name, &current, requested, opts, sub, tracking)
                .await
            {
                Err(WriteFailure::Lost) if precondition.is_none() => continue,
                Err(WriteFailure::Lost) => return Err(ApiError::modified(Subject::of(r, name))),
                Err(WriteFailure::Api(e)) => return Err(e),
                Ok(w) => return Ok(w),
            }
        }
        Err(ApiError::modified(Subject::of(r, name)))
    }

    /// One attempt at writing `requested` over `current`.
    #[allow(clippy::too_many_arguments)]
    async fn write_update(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        current: &Stored,
        requested: Value,
        opts: &WriteOptions,
        sub: Option<Subresource>,
        tracking: Tracking,
    ) -> Result<Written, WriteFailure> {
        let old_view = conversion::view(r, &current.value);
        let old = &*old_view;
        let mut new = match sub {
            Some(Subresource::Status) => {
                let mut n = old.clone();
                set_or_remove(&mut n, "status", requested.get("status").cloned());
                n
            }
            Some(Subresource::Finalize) => {
                let mut n = old.clone();
                let fins = requested["spec"].get("finalizers").cloned();
                if let Some(spec) = n
                    .as_object_mut()
                    .map(|m| m.entry("spec").or_insert_with(|| json!({})))
                    && let Some(spec) = spec.as_object_mut()
                {
                    match fins {
                        Some(f) => spec.insert("finalizers".into(), f),
                        None => spec.remove("finalizers"),
                    };
                }
                n
            }
            Some(other) => {
                return Err(WriteFailure::Api(ApiError::BadRequest(format!(
                    "the {} subresource cannot be written this way",
                    other.name()
                ))));
            }
            None => {
                let mut n = requested;
                if r.has_subresource(Subresource::Status) {
                    set_or_remove(&mut n, "status", old.get("status").cloned());
                }
                n
            }
        };
        meta::carry_on_update(old, &mut new, keeps_generation(r));
        if meta::is_terminating(old) {
            let added: Vec<String> = meta::finalizers(&new)
                .into_iter()
                .filter(|f| !meta::finalizers(old).contains(f))
                .collect();
            if !added.is_empty() {
                return Err(WriteFailure::Api(ApiError::Invalid {
                    subject: Subject::of(r, name),
                    causes: vec![Cause::forbidden(
                        "metadata.finalizers",
                        &format!(
                            "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                        ),
                    )],
                }));
            }
        }
        let warnings =
            admission::admit(self, r, &mut new, Some(old), opts).map_err(WriteFailure::Api)?;
        strip_type_meta(&mut new);
        // A write that changes nothing is not stored. An update's managedFields
        // are recorded below, so they are left out of the comparison; an apply
        // has recorded its own already, and a new owner of an unchanged value
        // (a second manager applying the same field) is a change to keep.
        let unchanged = match tracking {
            Tracking::Update => same_but_managed_fields(&new, old),
            Tracking::Done => same_but_managed_fields(&new, old) && same_managed_entries(&new, old),
        };
        if unchanged {
            return Ok(Written {
                object: Self::finish(r, old.clone(), current.mod_revision),
                warnings,
                created: false,
            });
        }
        if tracking == Tracking::Update {
            new = track(r, Some(old), new, opts, sub);
            strip_type_meta(&mut new);
        }
        if opts.dry_run {
            return Ok(Written {
                object: Self::finish(r, new, current.mod_revision),
                warnings,
                created: false,
            });
        }
        let key = r.key(ns, name);
        let stored = conversion::to_storage(r, &new);
        if meta::is_terminating(&new) && !has_pending_finalizers(r, &new) {
            return match self.store.delete(&key, current.mod_revision).await {
                Ok(rev) => {
                    admission::after_delete(self, r, &stored).await;
                    drop(stored);
                    Ok(Written {
                        object: Self::finish(r, new, rev),
                        warnings,
                        created: false,
                    })
                }
                Err(StorageError::Conflict | StorageError::NotFound) => Err(WriteFailure::Lost),
                Err(e) => Err(WriteFailure::Api(storage_failed(e))),
            };
        }
        match self.store.update(&key, &stored, current.mod_revision).await {
            Ok(rev) => {
                admission::after_write(self, r, &stored).await;
                drop(stored);
                Ok(Written {
                    object: Self::finish(r, new, rev),
                    warnings,
                    created: false,
                })
            }
            Err(StorageError::Conflict | StorageError::NotFound) => Err(WriteFailure::Lost),
            Err(e) => Err(WriteFailure::Api(storage_failed(e))),
        }
    }

    /// delete. Returns the object as it was deleted, or as it is now when
    /// finalizers hold it back.
    pub async fn delete(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        for _ in 0..WRITE_RETRIES {
            let current = self.read(r, ns, name).await?;
            let subject = || Subject::of(r, name);
            let uid = meta::meta_str(&current.value, "uid")
                .unwrap_or("")
                .to_owned();
            if let Some(want) = &opts.precondition_uid
                && *want != uid
            {
                return Err(ApiError::Conflict {
                    subject: subject(),
                    detail: format!(
                        "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                    ),
                });
            }
            if let Some(want) = &opts.precondition_resource_version
                && *want != current.mod_revision.to_string()
            {
                return Err(ApiError::Conflict {
                    subject: subject(),
                    detail: format!(
                        "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
                        current.mod_revision
                    ),
                });
            }
            if pods::is_pods(r)
                && let Some(graceful) = self.pod_grace(&current, opts.grace_period_seconds).await?
            {
                if graceful == current.value || opts.dry_run {
                    return Ok(Self::present(r, graceful, current.mod_revision));
                }
                match self
                    .store
                    .update(&r.key(ns, name), &graceful, current.mod_revision)
                    .await
                {
                    Ok(rev) => return Ok(Self::present(r, graceful, rev)),
                    Err(StorageError::Conflict | StorageError::NotFound) => continue,
                    Err(e) => return Err(storage_failed(e)),
                }
            }
            let mut obj = current.value.clone();
            let gc_opts = crate::cluster::gc::DeleteOptions {
                propagation: opts.propagation,
                orphan_dependents: None,
            };
            let fins =
                match crate::cluster::gc::deletion_decision(&meta::finalizers(&obj), &gc_opts)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?
                {
                    crate::cluster::gc::DeletionDecision::DeleteNow => Vec::new(),
                    crate::cluster::gc::DeletionDecision::MarkDeleting { finalizers } => finalizers,
                };
            let key = r.key(ns, name);
            if !fins.is_empty() || has_pending_finalizers(r, &obj) {
                if meta::is_terminating(&obj) && fins == meta::finalizers(&obj) {
                    return Ok(Self::present(r, obj, current.mod_revision));
                }
                if let Some(m) = meta::meta_mut(&mut obj) {
                    m.entry("deletionTimestamp")
                        .or_insert_with(|| json!(meta::now()));
                    m.entry("deletionGracePeriodSeconds")
                        .or_insert_with(|| json!(0));
                    if fins.is_empty() {
                        m.remove("finalizers");
                    } else {
                        m.insert("finalizers".into(), json!(fins));
                    }
                }
                if r.group.is_empty() && r.plural == "namespaces" {
                    obj["status"] = json!({"phase": "Terminating"});
                }
                if opts.dry_run {
                    return Ok(Self::present(r, obj, current.mod_revision));
                }
                match self.store.update(&key, &obj, current.mod_revision).await {
                    Ok(rev) => return Ok(Self::present(r, obj, rev)),
                    Err(StorageError::Conflict | StorageError::NotFound) => continue,
                    Err(e) => return Err(storage_failed(e)),
                }
            }
            if opts.dry_run {
                return Ok(Self::present(r, obj, current.mod_revision));
            }
            match self.store.delete(&key, current.mod_revision).await {
                Ok(rev) => {
                    admission::after_delete(self, r, &obj).await;
                    return Ok(Self::present(r, obj, rev));
                }
                Err(StorageError::Conflict | StorageError::NotFound) => continue,
                Err(e) => return Err(storage_failed(e)),
            }
        }
        Err(ApiError::modified(Subject::of(r, name)))
    }

    /// deletecollection: deletes what a list with `list_opts` selects; returns
    /// the list of deleted objects.
    pub async fn delete_collection(
        &self,
        r: &ResourceInfo,
        ns: Option<&str>,
        list_opts: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let mut list = self.list(r, ns, list_opts).await?;
        let items = match list.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let mut deleted = Vec::new();
        for item in items {
            let name = meta::meta_str(&item, "name").unwrap_or("").to_owned();
            let item_ns = meta::meta_str(&item, "namespace").map(str::to_owned);
            match self.delete(r, item_ns.as_deref(), &name, opts).await {
                Ok(obj) => deleted.push(obj),
                Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let rv = self
            .store
            .current_revision()
            .await
            .map_err(storage_failed)?;
        let mut list = serde_json::Map::new();
        list.insert("apiVersion".into(), Value::String(r.api_version()));
        list.insert("kind".into(), Value::String(r.list_kind.clone()));
        list.insert(
            "metadata".into(),
            json!({"resourceVersion": rv.to_string()}),
        );
        list.insert("items".into(), Value::Array(deleted));
        Ok(Value::Object(list))
    }

    /// watch; see [`watch::watch`].
    pub async fn watch(
        &self,
        r: Arc<ResourceInfo>,
        ns: Option<&str>,
        opts: WatchOptions,
        bookmark_every: std::time::Duration,
    ) -> Result<watch::WatchStream, ApiError> {
        watch::watch(self, r, ns, opts, bookmark_every).await
    }
}

fn keeps_generation(r: &ResourceInfo) -> bool {
    meta::has_generation(&r.group, &r.plural, r.crd.is_some())
}

/// Whether a write still needs its managedFields entry recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tracking {
    /// Record an `Update` by the write's field manager.
    Update,
    /// Server-side apply already did.
    Done,
}

/// Fields an endpoint resets and never records ownership of.
fn ignored_fields(r: &ResourceInfo, sub: Option<Subresource>) -> Vec<patch::Path> {
    match sub {
        Some(Subresource::Status) => vec![
            patch::Path::fields(&["spec"]),
            patch::Path::fields(&["metadata"]),
        ],
        None if r.has_subresource(Subresource::Status) => vec![patch::Path::fields(&["status"])],
        _ => Vec::new(),
    }
}

fn with_type_meta(r: &ResourceInfo, mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.insert("apiVersion".into(), json!(r.api_version()));
        m.insert("kind".into(), json!(r.kind));
    }
    v
}

/// `new` with its managedFields updated for a non-apply write.
fn track(
    r: &ResourceInfo,
    old: Option<&Value>,
    new: Value,
    opts: &WriteOptions,
    sub: Option<Subresource>,
) -> Value {
    let schema: Option<std::sync::Arc<Schema>> = admission::schema_of(r);
    let info = schema.as_deref().map(|s| s as &dyn MergeInfo);
    let api_version = r.api_version();
    let now = meta::now();
    let ignored = ignored_fields(r, sub);
    let manager = Manager {
        name: opts.field_manager.as_deref().unwrap_or(DEFAULT_MANAGER),
        api_version: &api_version,
        subresource: sub.map(Subresource::name),
        now: &now,
        ignored_fields: &ignored,
    };
    let old = old.map(|o| with_type_meta(r, o.clone()));
    patch::track_update(old.as_ref(), &with_type_meta(r, new), &manager, info)
}

/// The field manager of writes that name none (and of the server's own writes).
pub const DEFAULT_MANAGER: &str = "fedmesh-apiserver";

/// Whether `a` and `b` are equal once their managedFields are left out
/// (compared in place: copying both objects to drop them cost a patch more).
fn same_but_managed_fields(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let same_meta = |x: Option<&Value>, y: Option<&Value>| match (
        x.and_then(Value::as_object),
        y.and_then(Value::as_object),
    ) {
        (Some(x), Some(y)) => {
            let kept = |m: &serde_json::Map<String, Value>| {
                m.iter().filter(|(k, _)| *k != "managedFields").count()
            };
            kept(x) == kept(y)
                && x.iter()
                    .filter(|(k, _)| *k != "managedFields")
                    .all(|(k, v)| y.get(k) == Some(v))
        }
        _ => x == y,
    };
    a.len() == b.len()
        && same_meta(a.get("metadata"), b.get("metadata"))
        && a.iter()
            .filter(|(k, _)| *k != "metadata")
            .all(|(k, v)| b.get(k) == Some(v))
}

/// Whether `a` and `b` hold the same managedFields entries, in any order (an
/// apply moves its manager's entry last even when nothing changed).
fn same_managed_entries(a: &Value, b: &Value) -> bool {
    let entries = |v: &Value| {
        v.pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (a, b) = (entries(a), entries(b));
    a.len() == b.len() && a.iter().all(|e| b.contains(e))
}

fn patch_failed(e: patch::PatchError, subject: Subject) -> ApiError {
    let reason = e.reason();
    if reason == patch::Reason::UnsupportedMediaType {
        return ApiError::UnsupportedMediaType(e.to_string());
    }
    ApiError::Other(Box::new(error::OtherStatus {
        code: reason.code(),
        reason: reason.as_str(),
        message: e.to_string(),
        subject,
        causes: Vec::new(),
    }))
}

fn apply_failed(e: patch::ApplyError, subject: Subject) -> ApiError {
    let reason = e.reason();
    let causes = e
        .conflicts()
        .iter()
        .map(|c| Cause {
            reason: "FieldManagerConflict".into(),
            message: c.cause_message(),
            field: c.cause_field(),
        })
        .collect();
    ApiError::Other(Box::new(error::OtherStatus {
        code: reason.code(),
        reason: reason.as_str(),
        message: e.to_string(),
        subject,
        causes,
    }))
}

/// Why one write attempt failed.
enum WriteFailure {
    /// A concurrent write changed the object first.
    Lost,
    /// The request is wrong.
    Api(ApiError),
}

fn set_or_remove(obj: &mut Value, field: &str, value: Option<Value>) {
    if let Some(map) = obj.as_object_mut() {
        match value {
            Some(v) => map.insert(field.to_owned(), v),
            None => map.remove(field),
        };
    }
}

/// apiVersion and kind are a property of the request, not of storage.
fn strip_type_meta(obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
}

/// Finalizers beyond `metadata.finalizers`: a namespace's `spec.finalizers`.
fn has_pending_finalizers(r: &ResourceInfo, obj: &Value) -> bool {
    let ns_fins = r.group.is_empty()
        && r.plural == "namespaces"
        && obj["spec"]["finalizers"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
    ns_fins || !meta::finalizers(obj).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_fields_alone_do_not_make_objects_differ() {
        let a = json!({"metadata": {"name": "a", "managedFields": [{"manager": "x"}]}, "spec": {"n": 1}});
        let b = json!({"metadata": {"name": "a"}, "spec": {"n": 1}});
        let c = json!({"metadata": {"name": "a", "managedFields": []}, "spec": {"n": 2}});
        let d = json!({"metadata": {"name": "b", "managedFields": [{"manager": "x"}]}, "spec": {"n": 1}});
        let e = json!({"metadata": {"name": "a"}, "spec": {"n": 1}, "status": {}});
        assert!(same_but_managed_fields(&a, &b));
        assert!(same_but_managed_fields(&b, &a));
        assert!(!same_but_managed_fields(&a, &c));
        assert!(!same_but_managed_fields(&a, &d));
        assert!(!same_but_managed_fields(&b, &e));
        assert!(!same_but_managed_fields(&e, &b));
        let bare = json!({"spec": {"n": 1}});
        let only_managed = json!({"metadata": {"managedFields": []}, "spec": {"n": 1}});
        assert!(!same_but_managed_fields(&bare, &only_managed));
    }
}
