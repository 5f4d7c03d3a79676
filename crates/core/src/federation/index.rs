//! The federation index: Services and EndpointSlices of every cluster go in,
//! the federated Services they touch come out.
//!
//! ```text
//!  FederationIndex
//!   └─ NamespaceIndex (per namespace: federation never crosses namespaces)
//!       ├─ services ─────────── every Service of every cluster, as a ServiceView
//!       ├─ by_label / by_key ── backing Services by label, to find a selector's candidates
//!       ├─ federated ────────── local federated Services, each with its backing set
//!       ├─ fed_by_* ─────────── federated Services by the label any match needs,
//!       │                       to find which selectors a changed Service may satisfy
//!       ├─ backs ────────────── backing Service -> the federated Services it feeds
//!       └─ slices ───────────── EndpointSlices by their Service
//! ```
//!
//! Selectors are evaluated only against candidates found through their label
//! restrictions, so a change costs in proportion to what it touches, not to the
//! size of the mesh. Each backing EndpointSlice becomes one federated
//! EndpointSlice, so an endpoint change rewrites one slice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use fedmesh_selector::Selector;
// The index hashes millions of keys it builds itself; SipHash's protection
// against crafted keys buys nothing here and costs a tenth of the build time.
use foldhash::{HashMap, HashMapExt, HashSet};

use super::changes::Changes;
use super::render::{self, MAX_SLICE_ENDPOINTS, SliceSuffix};
use super::view::FederatedView;
use crate::names::{FederatedKey, Origin, ServiceKey, SliceKey};
use crate::service::{Federation, Role, ServiceView};
use crate::slice::SourceSlice;

/// Every Service and EndpointSlice of the mesh that federation needs, indexed.
#[derive(Debug, Default)]
pub struct FederationIndex {
    namespaces: HashMap<Arc<str>, NamespaceIndex>,
}

/// A label and one of its values.
type LabelPair = (Arc<str>, Arc<str>);

#[derive(Debug, Default)]
pub(super) struct NamespaceIndex {
    services: HashMap<ServiceKey, ServiceView>,
    by_label: HashMap<LabelPair, HashSet<ServiceKey>>,
    by_key: HashMap<Arc<str>, HashSet<ServiceKey>>,
    backing: HashSet<ServiceKey>,
    federated: HashMap<Arc<str>, FederatedEntry>,
    fed_by_label: HashMap<LabelPair, HashSet<Arc<str>>>,
    fed_by_key: HashMap<Arc<str>, HashSet<Arc<str>>>,
    fed_unrestricted: HashSet<Arc<str>>,
    backs: HashMap<ServiceKey, HashSet<Arc<str>>>,
    slices: HashMap<ServiceKey, BTreeMap<SliceKey, SliceEntry>>,
    slice_owner: HashMap<SliceKey, ServiceKey>,
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
    pub(super) backing: BTreeSet<ServiceKey>,
    /// Name of each federated EndpointSlice -> the backing slice it mirrors,
    /// and which chunk of it.
    pub(super) outputs: HashMap<Arc<str>, (SliceKey, usize)>,
}

/// The one label restriction a federated Service is filed under: every Service
/// it matches satisfies it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Registration {
    Values(Arc<str>, Vec<Arc<str>>),
    Key(Arc<str>),
    Unrestricted,
    Impossible,
}

impl FederationIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// A Service was created or changed.
    pub fn apply_service(&mut self, view: ServiceView) -> Changes {
        let mut changes = Changes::default();
        self.namespace(&view.key.namespace)
            .upsert_service(view, &mut changes);
        changes
    }

    /// A Service was deleted.
    pub fn delete_service(&mut self, key: &ServiceKey) -> Changes {
        let mut changes = Changes::default();
        if let Some(ns) = self.namespaces.get_mut(&key.namespace) {
            ns.remove_service(key, &mut changes);
        }
        self.forget_if_empty(&key.namespace);
        changes
    }

    /// An EndpointSlice was created or changed.
    pub fn apply_slice(&mut self, slice: SourceSlice) -> Changes {
        let mut changes = Changes::default();
        self.namespace(&slice.key.namespace)
            .upsert_slice(slice, &mut changes);
        changes
    }

    /// An EndpointSlice was deleted.
    pub fn delete_slice(&mut self, key: &SliceKey) -> Changes {
        let mut changes = Changes::default();
        if let Some(ns) = self.namespaces.get_mut(&key.namespace) {
            ns.remove_slice(key, &mut changes);
        }
        self.forget_if_empty(&key.namespace);
        changes
    }

    /// Replaces the Services known in `origin` with a complete listing of them,
    /// as after a (re)list: Services not in the listing are deleted.
    pub fn reset_services(&mut self, origin: &Origin, services: Vec<ServiceView>) -> Changes {
        let live: HashSet<ServiceKey> = services.iter().map(|s| s.key.clone()).collect();
        let mut changes = Changes::default();
        for key in self.service_keys_of(origin) {
            if !live.contains(&key) {
                changes.merge(self.delete_service(&key));
            }
        }
        for view in services {
            changes.merge(self.apply_service(view));
        }
        changes
    }

    /// Replaces the EndpointSlices known in `origin` with a complete listing of
    /// them, as after a (re)list: slices not in the listing are deleted.
    pub fn reset_slices(&mut self, origin: &Origin, slices: Vec<SourceSlice>) -> Changes {
        let live: HashSet<SliceKey> = slices.iter().map(|s| s.key.clone()).collect();
        let mut changes = Changes::default();
        for key in self.slice_keys_of(origin) {
            if !live.contains(&key) {
                changes.merge(self.delete_slice(&key));
            }
        }
        for slice in slices {
            changes.merge(self.apply_slice(slice));
        }
        changes
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
        self.namespaces.values().map(|ns| ns.services.len()).sum()
    }

    fn namespace(&mut self, namespace: &Arc<str>) -> &mut NamespaceIndex {
        self.namespaces.entry(namespace.clone()).or_default()
    }

    fn forget_if_empty(&mut self, namespace: &str) {
        if self
            .namespaces
            .get(namespace)
            .is_some_and(|ns| ns.services.is_empty() && ns.slice_owner.is_empty())
        {
            self.namespaces.remove(namespace);
        }
    }

    fn service_keys_of(&self, origin: &Origin) -> Vec<ServiceKey> {
        self.namespaces
            .values()
            .flat_map(|ns| ns.services.keys().filter(|k| k.origin == *origin))
            .cloned()
            .collect()
    }

    fn slice_keys_of(&self, origin: &Origin) -> Vec<SliceKey> {
        self.namespaces
            .values()
            .flat_map(|ns| ns.slice_owner.keys().filter(|k| k.origin == *origin))
            .cloned()
            .collect()
    }
}

// === impl NamespaceIndex ===

impl NamespaceIndex {
    pub(super) fn slices_of(&self, service: &ServiceKey) -> impl Iterator<Item = &SliceEntry> {
        self.slices
            .get(service)
            .into_iter()
            .flat_map(|s| s.values())
    }

    pub(super) fn slice_entry(&self, key: &SliceKey) -> Option<&SliceEntry> {
        let owner = self.slice_owner.get(key)?;
        self.slices.get(owner)?.get(key)
    }

    fn upsert_service(&mut self, view: ServiceView, changes: &mut Changes) {
        if let Some(old) = self.services.get(&view.key)
            && old.labels == view.labels
            && old.role == view.role
        {
            return;
        }
        self.remove_service(&view.key.clone(), changes);
        self.insert_service(view, changes);
    }

    fn insert_service(&mut self, view: ServiceView, changes: &mut Changes) {
        let key = view.key.clone();
        match &view.role {
            Role::Backing => {
                for (k, v) in &view.labels {
                    self.by_label
                        .entry((k.clone(), v.clone()))
                        .or_default()
                        .insert(key.clone());
                    self.by_key
                        .entry(k.clone())
                        .or_default()
                        .insert(key.clone());
                }
                self.backing.insert(key.clone());
                for fed in self.candidate_federations(&view) {
                    let matches = self.federated[&fed]
                        .federation
                        .selector
                        .matches_interned(&view.interned);
                    if matches {
                        self.link(&fed, &key, changes);
                    }
                }
            }
            Role::Federated(federation) => {
                let name = key.name.clone();
                let registration = registration(&federation.selector);
                self.register(&name, &registration);
                let candidates = self.candidate_services(&registration);
                let backing: Vec<ServiceKey> = candidates
                    .into_iter()
                    .filter(|candidate| {
                        federation
                            .selector
                            .matches_interned(&self.services[candidate].interned)
                    })
                    .collect();
                self.federated.insert(
                    name.clone(),
                    FederatedEntry {
                        federation: federation.clone(),
                        registration,
                        backing: BTreeSet::new(),
                        outputs: HashMap::new(),
                    },
                );
                for backing_key in &backing {
                    self.link(&name, backing_key, changes);
                }
                changes.all(federated_key(&key));
            }
            Role::InvalidSelector(error) => {
                changes.warnings.push(super::Warning {
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
        self.services.insert(key, view);
    }

    fn remove_service(&mut self, key: &ServiceKey, changes: &mut Changes) {
        let Some(view) = self.services.remove(key) else {
            return;
        };
        match &view.role {
            Role::Backing => {
                for (k, v) in &view.labels {
                    remove_from(&mut self.by_label, &(k.clone(), v.clone()), key);
                    remove_from(&mut self.by_key, k, key);
                }
                self.backing.remove(key);
                for fed in self.backs.remove(key).unwrap_or_default() {
                    self.unlink(&fed, key, changes);
                }
            }
            Role::Federated(_) => {
                if let Some(entry) = self.federated.remove(&key.name) {
                    self.unregister(&key.name, &entry.registration);
                    for backing in &entry.backing {
                        remove_from(&mut self.backs, backing, &key.name);
                    }
                }
                changes.all(federated_key(key));
            }
            // Nothing was indexed for these; a local one had everything fedmesh
            // wrote for it removed when it got that role.
            Role::InvalidSelector(_) | Role::Excluded => {}
        }
    }

    fn upsert_slice(&mut self, slice: SourceSlice, changes: &mut Changes) {
        let owner = ServiceKey {
            origin: slice.key.origin.clone(),
            namespace: slice.key.namespace.clone(),
            name: slice.service.clone(),
        };
        let mut old_chunks = 0;
        match self.slice_owner.get(&slice.key) {
            Some(current) if *current == owner => {
                let old = &self.slices[&owner][&slice.key];
                if old.slice == slice {
                    return;
                }
                old_chunks = old.chunks();
            }
            Some(_) => self.remove_slice(&slice.key.clone(), changes),
            None => {}
        }
        let key = slice.key.clone();
        let suffix = SliceSuffix::of(&key);
        self.slice_owner.insert(key.clone(), owner.clone());
        let entry = SliceEntry { slice, suffix };
        let new_chunks = entry.chunks();
        self.slices
            .entry(owner.clone())
            .or_default()
            .insert(key.clone(), entry);
        self.announce_slice(&owner, &key, old_chunks, new_chunks, changes);
    }

    fn remove_slice(&mut self, key: &SliceKey, changes: &mut Changes) {
        let Some(owner) = self.slice_owner.get(key).cloned() else {
            return;
        };
        // Announce first: the announcement needs the entry to name the outputs.
        let old_chunks = self.slice_entry(key).map_or(0, SliceEntry::chunks);
        self.announce_slice(&owner, key, old_chunks, 0, changes);
        self.slice_owner.remove(key);
        if let Some(slices) = self.slices.get_mut(&owner) {
            slices.remove(key);
            if slices.is_empty() {
                self.slices.remove(&owner);
            }
        }
    }

    /// Tells every federated Service fed by `owner` that its slice `key` changed
    /// from `old_chunks` federated slices to `new_chunks` (0: it went).
    fn announce_slice(
        &mut self,
        owner: &ServiceKey,
        key: &SliceKey,
        old_chunks: usize,
        new_chunks: usize,
        changes: &mut Changes,
    ) {
        let Some(feds) = self.backs.get(owner) else {
            return;
        };
        let Some(suffix) = self.slice_entry(key).map(|e| e.suffix.clone()) else {
            return;
        };
        for fed in feds {
            let Some(entry) = self.federated.get_mut(fed) else {
                continue;
            };
            let federated = FederatedKey {
                namespace: owner.namespace.clone(),
                name: fed.clone(),
            };
            for chunk in 0..old_chunks.max(new_chunks) {
                let output = render::slice_name(fed, &suffix, chunk);
                if chunk < new_chunks {
                    entry.outputs.insert(output.clone(), (key.clone(), chunk));
                } else {
                    entry.outputs.remove(&output);
                }
                changes.slice(federated.clone(), output);
            }
        }
    }

    fn link(&mut self, fed: &Arc<str>, backing: &ServiceKey, changes: &mut Changes) {
        self.relink(fed, backing, true, changes);
    }

    fn unlink(&mut self, fed: &Arc<str>, backing: &ServiceKey, changes: &mut Changes) {
        self.relink(fed, backing, false, changes);
    }

    fn relink(
        &mut self,
        fed: &Arc<str>,
        backing: &ServiceKey,
        linked: bool,
        changes: &mut Changes,
    ) {
        let Some(entry) = self.federated.get_mut(fed) else {
            return;
        };
        if linked {
            entry.backing.insert(backing.clone());
            self.backs
                .entry(backing.clone())
                .or_default()
                .insert(fed.clone());
        } else {
            entry.backing.remove(backing);
            remove_from(&mut self.backs, backing, fed);
        }
        let key = FederatedKey {
            namespace: backing.namespace.clone(),
            name: fed.clone(),
        };
        // An empty federated Service still gets its (empty) Endpoints written.
        changes.dirty.entry(key.clone()).or_default().endpoints = true;
        for (slice_key, slice) in self.slices.get(backing).into_iter().flatten() {
            for chunk in 0..slice.chunks() {
                let output = render::slice_name(fed, &slice.suffix, chunk);
                if linked {
                    entry
                        .outputs
                        .insert(output.clone(), (slice_key.clone(), chunk));
                } else {
                    entry.outputs.remove(&output);
                }
                changes.slice(key.clone(), output);
            }
        }
    }

    /// Federated Services whose restriction `view` satisfies: the only ones it may match.
    fn candidate_federations(&self, view: &ServiceView) -> BTreeSet<Arc<str>> {
        let mut feds: BTreeSet<Arc<str>> = self.fed_unrestricted.iter().cloned().collect();
        for (k, v) in &view.labels {
            if let Some(found) = self.fed_by_label.get(&(k.clone(), v.clone())) {
                feds.extend(found.iter().cloned());
            }
            if let Some(found) = self.fed_by_key.get(k) {
                feds.extend(found.iter().cloned());
            }
        }
        feds
    }

    /// Backing Services that may match a selector filed under `registration`.
    fn candidate_services(&self, registration: &Registration) -> Vec<ServiceKey> {
        match registration {
            Registration::Values(label, values) => values
                .iter()
                .filter_map(|v| self.by_label.get(&(label.clone(), v.clone())))
                .flatten()
                .cloned()
                .collect(),
            Registration::Key(label) => self
                .by_key
                .get(label)
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            Registration::Unrestricted => self.backing.iter().cloned().collect(),
            Registration::Impossible => Vec::new(),
        }
    }

    fn register(&mut self, fed: &Arc<str>, registration: &Registration) {
        match registration {
            Registration::Values(label, values) => {
                for v in values {
                    self.fed_by_label
                        .entry((label.clone(), v.clone()))
                        .or_default()
                        .insert(fed.clone());
                }
            }
            Registration::Key(label) => {
                self.fed_by_key
                    .entry(label.clone())
                    .or_default()
                    .insert(fed.clone());
            }
            Registration::Unrestricted => {
                self.fed_unrestricted.insert(fed.clone());
            }
            Registration::Impossible => {}
        }
    }

    fn unregister(&mut self, fed: &Arc<str>, registration: &Registration) {
        match registration {
            Registration::Values(label, values) => {
                for v in values {
                    remove_from(&mut self.fed_by_label, &(label.clone(), v.clone()), fed);
                }
            }
            Registration::Key(label) => remove_from(&mut self.fed_by_key, label, fed),
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
fn registration(selector: &Selector) -> Registration {
    let restrictions = selector.label_restrictions();
    if restrictions.is_impossible() {
        return Registration::Impossible;
    }
    let mut best_values: Option<(&str, Vec<Arc<str>>)> = None;
    let mut best_key: Option<&str> = None;
    for (label, restriction) in restrictions.iter() {
        if let Some(values) = &restriction.allowed_values {
            let fewer = best_values
                .as_ref()
                .is_none_or(|(_, best)| values.len() < best.len());
            if fewer {
                best_values = Some((
                    label,
                    values.iter().map(|v| Arc::from(v.as_str())).collect(),
                ));
            }
        } else if restriction.must_be_present && best_key.is_none() {
            best_key = Some(label);
        }
    }
    match (best_values, best_key) {
        (Some((label, values)), _) => Registration::Values(label.into(), values),
        (None, Some(label)) => Registration::Key(label.into()),
        (None, None) => Registration::Unrestricted,
    }
}
