//! The federation index: Services and EndpointSlices of every cluster go in,
//! the federated Services they touch come out.
//!
//! ```text
//!  MeshIndex
//!   └─ NamespaceIndex (per namespace: federation never crosses namespaces)
//!       ├─ labels ───────────── label keys and values, interned to ids
//!       ├─ slots ────────────── every Service of every cluster (and the
//!       │                       EndpointSlices naming it), by ServiceId
//!       ├─ by_label / by_key ── backing Services by label id, to find a selector's candidates
//!       ├─ federated ────────── local federated Services, each with its backing set
//!       ├─ fed_by_* ─────────── federated Services by the label any match needs,
//!       │                       to find which selectors a changed Service may satisfy
//!       ├─ slot.backs ───────── backing Service -> the federated Services it feeds
//!       └─ slice_owner ──────── EndpointSlice -> the slot holding it
//! ```
//!
//! Selectors are evaluated only against candidates found through their label
//! restrictions, so a change costs in proportion to what it touches, not to the
//! size of the mesh. Each backing EndpointSlice becomes one federated
//! EndpointSlice, so an endpoint change rewrites one slice.
//!
//! A complete listing (`reset_*`) goes through the same steps as single
//! events, with one `Changes` for the whole listing, so a listing and the same
//! events applied one by one give the same index and the same changes.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use fedmesh_selector::Selector;
// The index hashes millions of keys it builds itself; SipHash's protection
// against crafted keys buys nothing here and costs a tenth of the build time.
use foldhash::{HashMap, HashMapExt, HashSet};

use super::changes::{ChangeLog, Changes};
use super::labels::{LabelId, LabelIds, LabelTable};
use super::render::{self, MAX_SLICE_ENDPOINTS, SliceSuffix};
use super::view::FederatedView;
use crate::names::{FederatedKey, Origin, ServiceKey, SliceKey};
use crate::service::{Federation, Role, ServiceView};
use crate::slice::SourceSlice;

/// Every Service and EndpointSlice of the mesh that federation needs, indexed.
#[derive(Debug, Default)]
pub struct MeshIndex {
    namespaces: HashMap<Arc<str>, NamespaceIndex>,
}

/// A slot of [`NamespaceIndex::slots`]: the indexes refer to Services by it,
/// which costs a word to hash and to store where a [`ServiceKey`] costs three
/// strings. Ids are reused once a slot is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct ServiceId(u32);

impl ServiceId {
    fn index(self) -> usize {
        self.0 as usize
    }
}

/// A label and one of its values.
type LabelPair = (LabelId, LabelId);

#[derive(Debug, Default)]
pub(super) struct NamespaceIndex {
    labels: LabelTable,
    ids: HashMap<ServiceKey, ServiceId>,
    slots: Vec<Option<ServiceSlot>>,
    free: Vec<ServiceId>,
    /// Services and slices per origin, so that a listing of a cluster the
    /// namespace holds nothing of skips looking for what it removed.
    origins: HashMap<Origin, OriginCount>,
    by_label: HashMap<LabelPair, HashSet<ServiceId>>,
    by_key: HashMap<LabelId, HashSet<ServiceId>>,
    backing: HashSet<ServiceId>,
    federated: HashMap<Arc<str>, FederatedEntry>,
    fed_by_label: HashMap<LabelPair, HashSet<Arc<str>>>,
    fed_by_key: HashMap<LabelId, HashSet<Arc<str>>>,
    fed_unrestricted: HashSet<Arc<str>>,
    slice_owner: HashMap<SliceKey, ServiceId>,
}

/// A Service, or EndpointSlices naming a Service not (yet) seen, or both.
#[derive(Debug)]
struct ServiceSlot {
    key: ServiceKey,
    service: Option<StoredService>,
    /// Sorted by key: federated Endpoints list subsets in this order.
    slices: Vec<SliceEntry>,
    /// The federated Services this one backs.
    backs: HashSet<Arc<str>>,
}

#[derive(Debug)]
struct StoredService {
    labels: LabelIds,
    role: Role,
}

#[derive(Debug, Default, Clone, Copy)]
struct OriginCount {
    services: usize,
    slices: usize,
}

#[derive(Debug)]
pub(super) struct SliceEntry {
    pub(super) slice: SourceSlice,
    pub(super) suffix: SliceSuffix,
}

impl SliceEntry {
    /// How many federated slices mirror this one: Kubernetes caps a slice at
    /// 100 endpoints, and a backing slice may hold up to 1000.
    fn chunks(&self) -> usize {
        self.slice
            .endpoints
            .len()
            .div_ceil(MAX_SLICE_ENDPOINTS)
            .max(1)
    }
}

#[derive(Debug)]
pub(super) struct FederatedEntry {
    pub(super) federation: Federation,
    registration: Registration,
    /// The backing Services, in key order (local first).
    pub(super) backing: BTreeMap<ServiceKey, ServiceId>,
    /// Name of each federated EndpointSlice -> the backing slice it mirrors,
    /// and which chunk of it.
    pub(super) outputs: HashMap<Arc<str>, (SliceKey, usize)>,
}

/// The one label restriction a federated Service is filed under: every Service
/// it matches satisfies it. It holds its label ids in the namespace's table.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Registration {
    Values(LabelId, Vec<LabelId>),
    Key(LabelId),
    Unrestricted,
    Impossible,
}

impl MeshIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// A Service was created or changed.
    pub fn apply_service(&mut self, view: ServiceView) -> Changes {
        let mut changes = ChangeLog::default();
        self.namespace(&view.key.namespace)
            .upsert_service(view, &mut changes);
        changes.finish()
    }

    /// A Service was deleted.
    pub fn delete_service(&mut self, key: &ServiceKey) -> Changes {
        let mut changes = ChangeLog::default();
        self.remove_service(key, &mut changes);
        changes.finish()
    }

    /// An EndpointSlice was created or changed.
    pub fn apply_slice(&mut self, slice: SourceSlice) -> Changes {
        let mut changes = ChangeLog::default();
        self.namespace(&slice.key.namespace)
            .upsert_slice(slice, &mut changes);
        changes.finish()
    }

    /// An EndpointSlice was deleted.
    pub fn delete_slice(&mut self, key: &SliceKey) -> Changes {
        let mut changes = ChangeLog::default();
        self.remove_slice(key, &mut changes);
        changes.finish()
    }

    /// Replaces the Services known in `origin` with a complete listing of them,
    /// as after a (re)list: Services not in the listing are deleted.
    ///
    /// The same as deleting the missing ones and applying the others one by
    /// one, with the changes merged, but without a `Changes` per object: a
    /// controller's first listing of a cluster is the whole cluster.
    pub fn reset_services(&mut self, origin: &Origin, services: Vec<ServiceView>) -> Changes {
        let mut changes = ChangeLog::default();
        let known = self.service_keys_of(origin);
        if !known.is_empty() {
            let live: HashSet<&ServiceKey> = services.iter().map(|s| &s.key).collect();
            let gone: Vec<ServiceKey> = known.into_iter().filter(|k| !live.contains(k)).collect();
            for key in gone {
                self.remove_service(&key, &mut changes);
            }
        }
        for view in services {
            self.namespace(&view.key.namespace)
                .upsert_service(view, &mut changes);
        }
        changes.finish()
    }

    /// Replaces the EndpointSlices known in `origin` with a complete listing of
    /// them, as after a (re)list: slices not in the listing are deleted. Like
    /// [`MeshIndex::reset_services`], one `Changes` for the listing.
    pub fn reset_slices(&mut self, origin: &Origin, slices: Vec<SourceSlice>) -> Changes {
        let mut changes = ChangeLog::default();
        let known = self.slice_keys_of(origin);
        if !known.is_empty() {
            let live: HashSet<&SliceKey> = slices.iter().map(|s| &s.key).collect();
            let gone: Vec<SliceKey> = known.into_iter().filter(|k| !live.contains(k)).collect();
            for key in gone {
                self.remove_slice(&key, &mut changes);
            }
        }
        for slice in slices {
            self.namespace(&slice.key.namespace)
                .upsert_slice(slice, &mut changes);
        }
        changes.finish()
    }

    /// Replaces everything known about `origin` with a complete listing of it.
    pub fn reset_cluster(
        &mut self,
        origin: &Origin,
        services: Vec<ServiceView>,
        slices: Vec<SourceSlice>,
    ) -> Changes {
        let mut changes = self.reset_slices(origin, slices);
        changes.merge(self.reset_services(origin, services));
        changes
    }

    /// Forgets every Service and EndpointSlice of `origin` (its
    /// RemoteClusterConfiguration was deleted, or its endpoints withdrawn).
    pub fn remove_cluster(&mut self, origin: &Origin) -> Changes {
        self.reset_cluster(origin, Vec::new(), Vec::new())
    }

    /// The desired state of the federated Service `key`, or `None` when it is not
    /// (or no longer) federated: then everything fedmesh wrote for it goes.
    pub fn federation(&self, key: &FederatedKey) -> Option<FederatedView<'_>> {
        let ns = self.namespaces.get(&key.namespace)?;
        let entry = ns.federated.get(&key.name)?;
        Some(FederatedView::new(key.clone(), ns, entry))
    }

    /// Every federated Service, in order.
    pub fn federated_keys(&self) -> Vec<FederatedKey> {
        let mut keys: Vec<FederatedKey> = self
            .namespaces
            .iter()
            .flat_map(|(ns, index)| {
                index.federated.keys().map(|name| FederatedKey {
                    namespace: ns.clone(),
                    name: name.clone(),
                })
            })
            .collect();
        keys.sort();
        keys
    }

    /// How many Services (of all clusters) the index holds.
    pub fn service_count(&self) -> usize {
        self.namespaces
            .values()
            .map(|ns| ns.origins.values().map(|c| c.services).sum::<usize>())
            .sum()
    }

    fn namespace(&mut self, namespace: &Arc<str>) -> &mut NamespaceIndex {
        self.namespaces.entry(namespace.clone()).or_default()
    }

    fn remove_service(&mut self, key: &ServiceKey, changes: &mut ChangeLog) {
        if let Some(ns) = self.namespaces.get_mut(&key.namespace) {
            ns.remove_service(key, changes);
        }
        self.forget_if_empty(&key.namespace);
    }

    fn remove_slice(&mut self, key: &SliceKey, changes: &mut ChangeLog) {
        if let Some(ns) = self.namespaces.get_mut(&key.namespace) {
            ns.remove_slice(key, changes);
        }
        self.forget_if_empty(&key.namespace);
    }

    fn forget_if_empty(&mut self, namespace: &str) {
        if self
            .namespaces
            .get(namespace)
            .is_some_and(|ns| ns.ids.is_empty())
        {
            self.namespaces.remove(namespace);
        }
    }

    fn service_keys_of(&self, origin: &Origin) -> Vec<ServiceKey> {
        self.namespaces
            .values()
            .filter(|ns| ns.origins.get(origin).is_some_and(|c| c.services > 0))
            .flat_map(|ns| {
                ns.slots
                    .iter()
                    .flatten()
                    .filter(|slot| slot.service.is_some() && slot.key.origin == *origin)
                    .map(|slot| slot.key.clone())
            })
            .collect()
    }

    fn slice_keys_of(&self, origin: &Origin) -> Vec<SliceKey> {
        self.namespaces
            .values()
            .filter(|ns| ns.origins.get(origin).is_some_and(|c| c.slices > 0))
            .flat_map(|ns| ns.slice_owner.keys().filter(|k| k.origin == *origin))
            .cloned()
            .collect()
    }
}

// === impl NamespaceIndex ===

impl NamespaceIndex {
    /// The EndpointSlices of the backing Service `id`, in key order.
    pub(super) fn slices_of(&self, id: ServiceId) -> impl Iterator<Item = &SliceEntry> {
        self.slot(id).into_iter().flat_map(|s| s.slices.iter())
    }

    pub(super) fn slice_entry(&self, key: &SliceKey) -> Option<&SliceEntry> {
        let slot = self.slot(*self.slice_owner.get(key)?)?;
        let at = slot
            .slices
            .binary_search_by(|e| e.slice.key.cmp(key))
            .ok()?;
        slot.slices.get(at)
    }

    fn slot(&self, id: ServiceId) -> Option<&ServiceSlot> {
        self.slots.get(id.index())?.as_ref()
    }

    fn slot_mut(&mut self, id: ServiceId) -> Option<&mut ServiceSlot> {
        self.slots.get_mut(id.index())?.as_mut()
    }

    /// The slot of `key`, made when there is none.
    fn slot_id(&mut self, key: &ServiceKey) -> ServiceId {
        // One hash for both the lookup and the insertion: in a listing, most
        // keys are new.
        let vacant = match self.ids.entry(key.clone()) {
            Entry::Occupied(found) => return *found.get(),
            Entry::Vacant(vacant) => vacant,
        };
        let slot = ServiceSlot {
            key: key.clone(),
            service: None,
            slices: Vec::new(),
            backs: HashSet::default(),
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(free) = self.slots.get_mut(id.index()) {
                    *free = Some(slot);
                }
                id
            }
            None => {
                // Four billion Services do not fit in memory; the id space
                // cannot run out first.
                let id = ServiceId(u32::try_from(self.slots.len()).unwrap_or(u32::MAX));
                self.slots.push(Some(slot));
                id
            }
        };
        vacant.insert(id);
        id
    }

    /// Frees the slot `id` once it holds neither a Service nor slices.
    fn release_slot_if_empty(&mut self, id: ServiceId) {
        let Some(cell) = self.slots.get_mut(id.index()) else {
            return;
        };
        if cell
            .as_ref()
            .is_some_and(|s| s.service.is_none() && s.slices.is_empty())
            && let Some(slot) = cell.take()
        {
            self.ids.remove(&slot.key);
            self.free.push(id);
        }
    }

    fn count(&mut self, origin: &Origin, services: isize, slices: isize) {
        if let Some(count) = self.origins.get_mut(origin) {
            count.services = count.services.saturating_add_signed(services);
            count.slices = count.slices.saturating_add_signed(slices);
            if count.services == 0 && count.slices == 0 {
                self.origins.remove(origin);
            }
        } else {
            self.origins.insert(
                origin.clone(),
                OriginCount {
                    services: services.max(0).unsigned_abs(),
                    slices: slices.max(0).unsigned_abs(),
                },
            );
        }
    }

    fn upsert_service(&mut self, view: ServiceView, changes: &mut ChangeLog) {
        let id = self.slot_id(&view.key);
        if let Some(old) = self.slot(id).and_then(|s| s.service.as_ref())
            && old.role == view.role
            && self.labels.same(&old.labels, &view.labels)
        {
            return;
        }
        self.unindex_service(id, changes);
        self.index_service(id, view, changes);
    }

    fn remove_service(&mut self, key: &ServiceKey, changes: &mut ChangeLog) {
        let Some(&id) = self.ids.get(key) else {
            return;
        };
        self.unindex_service(id, changes);
        self.release_slot_if_empty(id);
    }

    fn index_service(&mut self, id: ServiceId, view: ServiceView, changes: &mut ChangeLog) {
        let labels = self.labels.acquire_all(&view.labels);
        let key = view.key;
        match &view.role {
            Role::Backing => {
                for &(k, v) in &labels {
                    self.by_label.entry((k, v)).or_default().insert(id);
                    self.by_key.entry(k).or_default().insert(id);
                }
                self.backing.insert(id);
                for fed in self.candidate_federations(&labels) {
                    let matches = self.federated.get(&fed).is_some_and(|entry| {
                        entry
                            .federation
                            .selector
                            .matches(&self.labels.view(&labels))
                    });
                    if matches {
                        self.link(&fed, id, changes);
                    }
                }
            }
            Role::Federated(federation) => {
                let name = key.name.clone();
                let registration = registration(&federation.selector, &mut self.labels);
                self.register(&name, &registration);
                let backing: Vec<ServiceId> = self
                    .candidate_services(&registration)
                    .into_iter()
                    .filter(|&candidate| {
                        self.slot(candidate)
                            .and_then(|s| s.service.as_ref())
                            .is_some_and(|s| {
                                federation.selector.matches(&self.labels.view(&s.labels))
                            })
                    })
                    .collect();
                self.federated.insert(
                    name.clone(),
                    FederatedEntry {
                        federation: federation.clone(),
                        registration,
                        backing: BTreeMap::new(),
                        outputs: HashMap::new(),
                    },
                );
                for backing_id in backing {
                    self.link(&name, backing_id, changes);
                }
                changes.all(federated_key(&key));
            }
            Role::InvalidSelector(error) => {
                changes.warn(super::Warning {
                    service: federated_key(&key),
                    reason: "InvalidServiceSelector",
                    message: format!(
                        "annotation {}: {error}; the service is not federated and the endpoints \
                         fedmesh wrote for it are removed",
                        crate::service::SERVICE_SELECTOR_ANNOTATION
                    ),
                });
                changes.all(federated_key(&key));
            }
            Role::Excluded => {}
        }
        self.count(&key.origin, 1, 0);
        if let Some(slot) = self.slot_mut(id) {
            slot.service = Some(StoredService {
                labels,
                role: view.role,
            });
        }
    }

    /// Takes the Service out of slot `id` and out of every index (the slot stays).
    fn unindex_service(&mut self, id: ServiceId, changes: &mut ChangeLog) {
        let Some(slot) = self.slot_mut(id) else {
            return;
        };
        let Some(stored) = slot.service.take() else {
            return;
        };
        let backs = std::mem::take(&mut slot.backs);
        let key = slot.key.clone();
        match &stored.role {
            Role::Backing => {
                for &(k, v) in &stored.labels {
                    remove_from(&mut self.by_label, &(k, v), &id);
                    remove_from(&mut self.by_key, &k, &id);
                }
                self.backing.remove(&id);
                for fed in backs {
                    self.unlink(&fed, id, changes);
                }
            }
            Role::Federated(_) => {
                if let Some(entry) = self.federated.remove(&key.name) {
                    self.unregister(&key.name, &entry.registration);
                    for &backing in entry.backing.values() {
                        if let Some(slot) = self.slot_mut(backing) {
                            slot.backs.remove(&key.name);
                        }
                    }
                }
                changes.all(federated_key(&key));
            }
            // Nothing was indexed for these; a local one had everything fedmesh
            // wrote for it removed when it got that role.
            Role::InvalidSelector(_) | Role::Excluded => {}
        }
        self.labels.release_all(&stored.labels);
        self.count(&key.origin, -1, 0);
    }

    fn upsert_slice(&mut self, slice: SourceSlice, changes: &mut ChangeLog) {
        let owner_key = ServiceKey {
            origin: slice.key.origin.clone(),
            namespace: slice.key.namespace.clone(),
            name: slice.service.clone(),
        };
        let mut old_chunks = 0;
        let mut known = false;
        if let Some(&current) = self.slice_owner.get(&slice.key) {
            match self.slot(current) {
                Some(slot) if slot.key == owner_key => {
                    if let Ok(at) = slot
                        .slices
                        .binary_search_by(|e| e.slice.key.cmp(&slice.key))
                        && let Some(old) = slot.slices.get(at)
                    {
                        if old.slice == slice {
                            return;
                        }
                        old_chunks = old.chunks();
                        known = true;
                    }
                }
                _ => self.remove_slice(&slice.key.clone(), changes),
            }
        }
        let owner = self.slot_id(&owner_key);
        let key = slice.key.clone();
        let entry = SliceEntry {
            suffix: SliceSuffix::of(&key),
            slice,
        };
        let new_chunks = entry.chunks();
        if let Some(slot) = self.slot_mut(owner) {
            match slot.slices.binary_search_by(|e| e.slice.key.cmp(&key)) {
                Ok(at) => {
                    if let Some(old) = slot.slices.get_mut(at) {
                        *old = entry;
                    }
                }
                Err(at) => slot.slices.insert(at, entry),
            }
        }
        if !known {
            self.slice_owner.insert(key.clone(), owner);
            self.count(&key.origin, 0, 1);
        }
        self.announce_slice(owner, &key, old_chunks, new_chunks, changes);
    }

    fn remove_slice(&mut self, key: &SliceKey, changes: &mut ChangeLog) {
        let Some(&owner) = self.slice_owner.get(key) else {
            return;
        };
        // Announce first: the announcement needs the entry to name the outputs.
        let old_chunks = self.slice_entry(key).map_or(0, SliceEntry::chunks);
        self.announce_slice(owner, key, old_chunks, 0, changes);
        self.slice_owner.remove(key);
        if let Some(slot) = self.slot_mut(owner)
            && let Ok(at) = slot.slices.binary_search_by(|e| e.slice.key.cmp(key))
        {
            slot.slices.remove(at);
        }
        self.count(&key.origin, 0, -1);
        self.release_slot_if_empty(owner);
    }

    /// Tells every federated Service fed by `owner` that its slice `key` changed
    /// from `old_chunks` federated slices to `new_chunks` (0: it went).
    fn announce_slice(
        &mut self,
        owner: ServiceId,
        key: &SliceKey,
        old_chunks: usize,
        new_chunks: usize,
        changes: &mut ChangeLog,
    ) {
        let chunks = old_chunks.max(new_chunks);
        let Some(slot) = self.slots.get(owner.index()).and_then(Option::as_ref) else {
            return;
        };
        if slot.backs.is_empty() || chunks == 0 {
            return;
        }
        let Some(suffix) = slot
            .slices
            .binary_search_by(|e| e.slice.key.cmp(key))
            .ok()
            .and_then(|at| slot.slices.get(at))
            .map(|e| &e.suffix)
        else {
            return;
        };
        for fed in &slot.backs {
            let Some(entry) = self.federated.get_mut(fed) else {
                continue;
            };
            let dirty = changes.dirty(&slot.key.namespace, fed);
            dirty.endpoints = true;
            for chunk in 0..chunks {
                let output = render::slice_name(fed, suffix, chunk);
                if chunk < new_chunks {
                    entry.outputs.insert(output.clone(), (key.clone(), chunk));
                } else {
                    entry.outputs.remove(&output);
                }
                dirty.slices.insert(output);
            }
        }
    }

    fn link(&mut self, fed: &Arc<str>, backing: ServiceId, changes: &mut ChangeLog) {
        self.relink(fed, backing, true, changes);
    }

    fn unlink(&mut self, fed: &Arc<str>, backing: ServiceId, changes: &mut ChangeLog) {
        self.relink(fed, backing, false, changes);
    }

    fn relink(
        &mut self,
        fed: &Arc<str>,
        backing: ServiceId,
        linked: bool,
        changes: &mut ChangeLog,
    ) {
        let Some(entry) = self.federated.get_mut(fed) else {
            return;
        };
        let Some(slot) = self.slots.get_mut(backing.index()).and_then(Option::as_mut) else {
            return;
        };
        if linked {
            entry.backing.insert(slot.key.clone(), backing);
            slot.backs.insert(fed.clone());
        } else {
            entry.backing.remove(&slot.key);
            slot.backs.remove(fed);
        }
        // An empty federated Service still gets its (empty) Endpoints written.
        let dirty = changes.dirty(&slot.key.namespace, fed);
        dirty.endpoints = true;
        for slice in &slot.slices {
            for chunk in 0..slice.chunks() {
                let output = render::slice_name(fed, &slice.suffix, chunk);
                if linked {
                    entry
                        .outputs
                        .insert(output.clone(), (slice.slice.key.clone(), chunk));
                } else {
                    entry.outputs.remove(&output);
                }
                dirty.slices.insert(output);
            }
        }
    }

    /// Federated Services whose restriction `labels` satisfy: the only ones they may match.
    fn candidate_federations(&self, labels: &[(LabelId, LabelId)]) -> BTreeSet<Arc<str>> {
        let mut feds: BTreeSet<Arc<str>> = self.fed_unrestricted.iter().cloned().collect();
        for &(k, v) in labels {
            if let Some(found) = self.fed_by_label.get(&(k, v)) {
                feds.extend(found.iter().cloned());
            }
            if let Some(found) = self.fed_by_key.get(&k) {
                feds.extend(found.iter().cloned());
            }
        }
        feds
    }

    /// Backing Services that may match a selector filed under `registration`.
    fn candidate_services(&self, registration: &Registration) -> Vec<ServiceId> {
        match registration {
            Registration::Values(label, values) => values
                .iter()
                .filter_map(|&v| self.by_label.get(&(*label, v)))
                .flatten()
                .copied()
                .collect(),
            Registration::Key(label) => self
                .by_key
                .get(label)
                .into_iter()
                .flatten()
                .copied()
                .collect(),
            Registration::Unrestricted => self.backing.iter().copied().collect(),
            Registration::Impossible => Vec::new(),
        }
    }

    fn register(&mut self, fed: &Arc<str>, registration: &Registration) {
        match registration {
            Registration::Values(label, values) => {
                for &v in values {
                    self.fed_by_label
                        .entry((*label, v))
                        .or_default()
                        .insert(fed.clone());
                }
            }
            Registration::Key(label) => {
                self.fed_by_key
                    .entry(*label)
                    .or_default()
                    .insert(fed.clone());
            }
            Registration::Unrestricted => {
                self.fed_unrestricted.insert(fed.clone());
            }
            Registration::Impossible => {}
        }
    }

    /// Files `fed` out of the indexes and lets go of the registration's label ids.
    fn unregister(&mut self, fed: &Arc<str>, registration: &Registration) {
        match registration {
            Registration::Values(label, values) => {
                for &v in values {
                    remove_from(&mut self.fed_by_label, &(*label, v), fed);
                    self.labels.release(v);
                }
                self.labels.release(*label);
            }
            Registration::Key(label) => {
                remove_from(&mut self.fed_by_key, label, fed);
                self.labels.release(*label);
            }
            Registration::Unrestricted => {
                self.fed_unrestricted.remove(fed);
            }
            Registration::Impossible => {}
        }
    }
}

fn federated_key(key: &ServiceKey) -> FederatedKey {
    FederatedKey {
        namespace: key.namespace.clone(),
        name: key.name.clone(),
    }
}

fn remove_from<K, V>(map: &mut HashMap<K, HashSet<V>>, key: &K, value: &V)
where
    K: std::hash::Hash + Eq,
    V: std::hash::Hash + Eq,
{
    if let Some(set) = map.get_mut(key) {
        set.remove(value);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

/// Files a selector under its most selective restriction: a label with the
/// fewest allowed values, else a label that must be present, else nothing.
/// The label ids it names are acquired in `labels`.
fn registration(selector: &Selector, labels: &mut LabelTable) -> Registration {
    let restrictions = selector.label_restrictions();
    if restrictions.is_impossible() {
        return Registration::Impossible;
    }
    let mut best_values: Option<(&str, Vec<&str>)> = None;
    let mut best_key: Option<&str> = None;
    for (label, restriction) in restrictions.iter() {
        if let Some(values) = &restriction.allowed_values {
            let fewer = best_values
                .as_ref()
                .is_none_or(|(_, best)| values.len() < best.len());
            if fewer {
                best_values = Some((label, values.iter().map(String::as_str).collect()));
            }
        } else if restriction.must_be_present && best_key.is_none() {
            best_key = Some(label);
        }
    }
    match (best_values, best_key) {
        (Some((label, values)), _) => Registration::Values(
            labels.acquire(label),
            values.into_iter().map(|v| labels.acquire(v)).collect(),
        ),
        (None, Some(label)) => Registration::Key(labels.acquire(label)),
        (None, None) => Registration::Unrestricted,
    }
}
