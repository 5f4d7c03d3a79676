//! The endpoint index: every pod and HostEndpoint of every cluster, with the
//! labels Calico gives it, found by label.
//!
//! ```text
//!  IdentityIndex
//!   ├─ ids / slots ──── every endpoint in a u32 slot (its own and effective labels, IPs)
//!   ├─ by_label ─────── label key -> value -> endpoints: a selector's candidates
//!   ├─ by_origin ────── cluster -> endpoints: listings, cluster removal, local-only queries
//!   ├─ hosts ────────── the host endpoints (`global()` namespace selectors)
//!   ├─ profiles ─────── namespace and service account labels (Calico's profiles)
//!   └─ members ──────── profile -> the pods inheriting its labels
//! ```
//!
//! A change re-labels only the endpoints it touches: a pod event touches its
//! pod, a namespace's labels the pods in that namespace.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use fedmesh_selector::{InternedLabels, InternedLabelsBuilder, Selector};
use foldhash::{HashMap, HashSet};
use k8s_openapi::api::core::v1::Pod;

use super::endpoint::{
    EndpointError, EndpointKey, EndpointKind, EndpointView, NAMESPACE_LABEL,
    NAMESPACE_LABEL_PREFIX, NamespaceKey, ORCHESTRATOR_K8S, ORCHESTRATOR_LABEL, PROFILE_NAME_LABEL,
    ProfileKey, ProfileView, SERVICE_ACCOUNT_LABEL, SERVICE_ACCOUNT_LABEL_PREFIX,
    ServiceAccountKey,
};
use super::query::{EndpointQuery, NamespaceScope, Reach, ServiceAccountMatch};
use crate::names::Origin;
use crate::service::REMOTE_CLUSTER_LABEL;

/// A slot of the index: a word to hash and store where a key is three strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct EndpointId(u32);

/// An endpoint as the index holds it.
#[derive(Debug)]
pub struct Endpoint {
    key: EndpointKey,
    own: InternedLabels,
    labels: InternedLabels,
    ips: Box<[IpAddr]>,
    node: Option<Arc<str>>,
    service_account: Option<Arc<str>>,
}

impl Endpoint {
    /// Which endpoint.
    pub fn key(&self) -> &EndpointKey {
        &self.key
    }

    /// The labels selectors see: the object's own, Calico's
    /// (`projectcalico.org/namespace`, `…/orchestrator`, `…/serviceaccount`),
    /// the inherited profile labels (`pcns.*`, `pcsa.*`) and, for remote
    /// endpoints, `federation.tigera.io/remoteClusterName`.
    pub fn labels(&self) -> &InternedLabels {
        &self.labels
    }

    /// The labels as a sorted map, for output.
    pub fn label_map(&self) -> BTreeMap<&str, &str> {
        self.labels.iter().collect()
    }

    /// Its IPs, sorted (may be empty: a pending pod).
    pub fn ips(&self) -> &[IpAddr] {
        &self.ips
    }

    /// The node it runs on.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// The pod's service account.
    pub fn service_account(&self) -> Option<&str> {
        self.service_account.as_deref()
    }
}

/// The endpoints whose labels or IPs an event changed, or that appeared or
/// went: exactly what mirroring must rewrite.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IdentityChanges {
    /// Sorted, without duplicates.
    pub endpoints: Vec<EndpointKey>,
}

impl IdentityChanges {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Adds `other`'s changes to these.
    pub fn merge(&mut self, other: IdentityChanges) {
        self.endpoints.extend(other.endpoints);
        self.endpoints.sort_unstable();
        self.endpoints.dedup();
    }

    fn finish(mut endpoints: Vec<EndpointKey>) -> Self {
        endpoints.sort_unstable();
        endpoints.dedup();
        Self { endpoints }
    }
}

/// Which profiles a listing covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileKind {
    /// Namespaces.
    Namespace,
    /// Service accounts.
    ServiceAccount,
}

/// A namespace's or service account's labels.
#[derive(Debug)]
struct Profile {
    /// As the object has them, plus `projectcalico.org/name`: what a
    /// namespace or service account selector is evaluated against.
    own: InternedLabels,
    /// With the profile's prefix, as its endpoints inherit them.
    inherited: Vec<(String, String)>,
}

/// Every endpoint of the mesh, with Calico's labels, found by label.
#[derive(Debug, Default)]
pub struct IdentityIndex {
    ids: HashMap<EndpointKey, EndpointId>,
    slots: Vec<Option<Endpoint>>,
    free: Vec<EndpointId>,
    by_label: HashMap<Arc<str>, HashMap<Arc<str>, HashSet<EndpointId>>>,
    by_origin: HashMap<Origin, HashSet<EndpointId>>,
    hosts: HashSet<EndpointId>,
    profiles: HashMap<ProfileKey, Profile>,
    members: HashMap<ProfileKey, HashSet<EndpointId>>,
}

impl IdentityIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// A pod or HostEndpoint was created or changed.
    pub fn upsert(&mut self, view: EndpointView) -> IdentityChanges {
        let mut changed = Vec::new();
        self.upsert_endpoint(view, &mut changed);
        IdentityChanges::finish(changed)
    }

    /// A pod was created or changed: upserted when it is a Calico workload
    /// endpoint, deleted when it stopped being one (host-networked or
    /// finished; see [`EndpointView::from_pod`]).
    pub fn apply_pod(
        &mut self,
        origin: Origin,
        pod: Pod,
    ) -> Result<IdentityChanges, EndpointError> {
        let key = EndpointKey::of_pod(origin.clone(), &pod)?;
        Ok(match EndpointView::from_pod(origin, pod)? {
            Some(view) => self.upsert(view),
            None => self.delete(&key),
        })
    }

    /// A pod or HostEndpoint was deleted (or stopped being an endpoint).
    pub fn delete(&mut self, key: &EndpointKey) -> IdentityChanges {
        let mut changed = Vec::new();
        self.remove_endpoint(key, &mut changed);
        IdentityChanges::finish(changed)
    }

    /// Replaces the endpoints of `kind` known in `origin` with a complete
    /// listing of them (a watch's initial list or relist): those not in the
    /// listing are deleted. One change set for the whole listing.
    pub fn reset_endpoints(
        &mut self,
        origin: &Origin,
        kind: EndpointKind,
        views: Vec<EndpointView>,
    ) -> IdentityChanges {
        let mut changed = Vec::new();
        let live: HashSet<&EndpointKey> = views.iter().map(|v| &v.key).collect();
        let gone: Vec<EndpointKey> = self
            .by_origin
            .get(origin)
            .into_iter()
            .flatten()
            .filter_map(|&id| self.slot(id))
            .map(|e| &e.key)
            .filter(|k| k.kind() == kind && !live.contains(k))
            .cloned()
            .collect();
        drop(live);
        for key in gone {
            self.remove_endpoint(&key, &mut changed);
        }
        for view in views {
            self.upsert_endpoint(view, &mut changed);
        }
        IdentityChanges::finish(changed)
    }

    /// A namespace or service account was created or its labels changed: the
    /// pods in it are re-labelled.
    pub fn upsert_profile(&mut self, view: ProfileView) -> IdentityChanges {
        let mut changed = Vec::new();
        self.set_profile(view.key, Some(view.labels), &mut changed);
        IdentityChanges::finish(changed)
    }

    /// A namespace or service account was deleted.
    pub fn delete_profile(&mut self, key: &ProfileKey) -> IdentityChanges {
        let mut changed = Vec::new();
        self.set_profile(key.clone(), None, &mut changed);
        IdentityChanges::finish(changed)
    }

    /// Replaces the profiles of `kind` known in `origin` with a complete listing.
    pub fn reset_profiles(
        &mut self,
        origin: &Origin,
        kind: ProfileKind,
        views: Vec<ProfileView>,
    ) -> IdentityChanges {
        let mut changed = Vec::new();
        let live: HashSet<&ProfileKey> = views.iter().map(|v| &v.key).collect();
        let gone: Vec<ProfileKey> = self
            .profiles
            .keys()
            .filter(|k| k.origin() == origin && profile_kind(k) == kind && !live.contains(k))
            .cloned()
            .collect();
        drop(live);
        for key in gone {
            self.set_profile(key, None, &mut changed);
        }
        for view in views {
            self.set_profile(view.key, Some(view.labels), &mut changed);
        }
        IdentityChanges::finish(changed)
    }

    /// Forgets everything of `origin` (its RemoteClusterConfiguration went).
    pub fn remove_cluster(&mut self, origin: &Origin) -> IdentityChanges {
        let mut changed = Vec::new();
        let keys: Vec<EndpointKey> = self
            .by_origin
            .get(origin)
            .into_iter()
            .flatten()
            .filter_map(|&id| self.slot(id))
            .map(|e| e.key.clone())
            .collect();
        for key in keys {
            self.remove_endpoint(&key, &mut changed);
        }
        self.profiles.retain(|k, _| k.origin() != origin);
        IdentityChanges::finish(changed)
    }

    /// The endpoint `key`, if known.
    pub fn get(&self, key: &EndpointKey) -> Option<&Endpoint> {
        self.slot(*self.ids.get(key)?)
    }

    /// Every endpoint, in no particular order.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> + '_ {
        self.slots.iter().flatten()
    }

    /// How many endpoints the index holds.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the index holds no endpoint.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The endpoints `query` selects, in key order (local first). Only the
    /// candidates found through the query's label restrictions (or its
    /// namespace or service accounts) are evaluated.
    pub fn select(&self, query: &EndpointQuery) -> Vec<&Endpoint> {
        let mut found: Vec<&Endpoint> = match self.candidates(query) {
            Some(sets) => sets
                .into_iter()
                .flatten()
                .filter_map(|&id| self.slot(id))
                .filter(|e| self.selects(query, e))
                .collect(),
            None => self
                .endpoints()
                .filter(|e| self.selects(query, e))
                .collect(),
        };
        found.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        found
    }

    /// Whether `query` selects `endpoint`.
    fn selects(&self, query: &EndpointQuery, endpoint: &Endpoint) -> bool {
        let key = &endpoint.key;
        if query.reach == Reach::Local && *key.origin() != Origin::Local {
            return false;
        }
        let in_scope = match (&query.namespace, key) {
            (NamespaceScope::Any, _) => true,
            (NamespaceScope::In(ns), _) => key.namespace() == Some(ns),
            (
                NamespaceScope::Matching(sel),
                EndpointKey::Workload {
                    origin, namespace, ..
                },
            ) => self.namespace_matches(sel, origin, namespace),
            (NamespaceScope::Matching(_), EndpointKey::Host { .. }) => false,
            (NamespaceScope::NonNamespaced, _) => key.kind() == EndpointKind::Host,
        };
        in_scope
            && query
                .service_accounts
                .as_ref()
                .is_none_or(|sa| self.service_account_matches(sa, endpoint))
            && query.selector.matches_interned(&endpoint.labels)
    }

    fn namespace_matches(
        &self,
        selector: &Selector,
        origin: &Origin,
        namespace: &Arc<str>,
    ) -> bool {
        let key = ProfileKey::Namespace(NamespaceKey {
            origin: origin.clone(),
            name: namespace.clone(),
        });
        match self.profiles.get(&key) {
            Some(profile) => selector.matches_interned(&profile.own),
            None => selector.matches(&[(PROFILE_NAME_LABEL, &**namespace)]),
        }
    }

    fn service_account_matches(&self, wanted: &ServiceAccountMatch, endpoint: &Endpoint) -> bool {
        let (
            EndpointKey::Workload {
                origin, namespace, ..
            },
            Some(account),
        ) = (&endpoint.key, &endpoint.service_account)
        else {
            return false;
        };
        if !wanted.names.is_empty() && !wanted.names.iter().any(|n| **n == **account) {
            return false;
        }
        let Some(selector) = &wanted.selector else {
            return true;
        };
        let key = ProfileKey::ServiceAccount(ServiceAccountKey {
            origin: origin.clone(),
            namespace: namespace.clone(),
            name: account.clone(),
        });
        match self.profiles.get(&key) {
            Some(profile) => selector.matches_interned(&profile.own),
            None => selector.matches(&[(PROFILE_NAME_LABEL, &**account)]),
        }
    }

    /// The smallest family of disjoint endpoint sets that holds every
    /// endpoint `query` may select, or `None` when nothing narrows it down.
    fn candidates(&self, query: &EndpointQuery) -> Option<Vec<&HashSet<EndpointId>>> {
        let mut options: Vec<Vec<&HashSet<EndpointId>>> = Vec::new();
        let restrictions = query.selector.label_restrictions();
        if restrictions.is_impossible() {
            return Some(Vec::new());
        }
        for (label, restriction) in restrictions.iter() {
            let values = self.by_label.get(label);
            match (&restriction.allowed_values, values) {
                (_, None) if restriction.must_be_present => return Some(Vec::new()),
                (Some(allowed), Some(values)) => {
                    options.push(
                        allowed
                            .iter()
                            .filter_map(|v| values.get(v.as_str()))
                            .collect(),
                    );
                }
                (None, Some(values)) if restriction.must_be_present => {
                    options.push(values.values().collect());
                }
                _ => {}
            }
        }
        match &query.namespace {
            NamespaceScope::In(ns) => {
                options.push(self.labelled(NAMESPACE_LABEL, ns).into_iter().collect());
            }
            NamespaceScope::NonNamespaced => options.push(vec![&self.hosts]),
            NamespaceScope::Matching(sel) => options.push(
                self.members
                    .iter()
                    .filter(|(k, _)| match k {
                        ProfileKey::Namespace(ns) => {
                            self.namespace_matches(sel, &ns.origin, &ns.name)
                        }
                        ProfileKey::ServiceAccount(_) => false,
                    })
                    .map(|(_, ids)| ids)
                    .collect(),
            ),
            NamespaceScope::Any => {}
        }
        if let Some(sa) = &query.service_accounts
            && !sa.names.is_empty()
        {
            let mut names: Vec<&str> = sa.names.iter().map(|n| &**n).collect();
            names.sort_unstable();
            names.dedup();
            options.push(
                names
                    .into_iter()
                    .filter_map(|n| self.labelled(SERVICE_ACCOUNT_LABEL, n))
                    .collect(),
            );
        }
        if query.reach == Reach::Local {
            options.push(self.by_origin.get(&Origin::Local).into_iter().collect());
        }
        options
            .into_iter()
            .min_by_key(|sets| sets.iter().map(|s| s.len()).sum::<usize>())
    }

    fn labelled(&self, key: &str, value: &str) -> Option<&HashSet<EndpointId>> {
        self.by_label.get(key)?.get(value)
    }

    fn slot(&self, id: EndpointId) -> Option<&Endpoint> {
        self.slots.get(id.0 as usize)?.as_ref()
    }

    /// The labels selectors see for an endpoint (see [`Endpoint::labels`]).
    /// Later entries win: the object's own labels override inherited ones,
    /// and Calico's own labels override both.
    fn effective_labels(
        &self,
        key: &EndpointKey,
        own: &InternedLabels,
        service_account: Option<&Arc<str>>,
    ) -> InternedLabels {
        let mut labels = InternedLabelsBuilder::new();
        let mut calico: Vec<(&str, &str)> = Vec::new();
        if let EndpointKey::Workload {
            origin, namespace, ..
        } = key
        {
            let ns_key = ProfileKey::Namespace(NamespaceKey {
                origin: origin.clone(),
                name: namespace.clone(),
            });
            if let Some(profile) = self.profiles.get(&ns_key) {
                labels.extend(profile.inherited.iter().map(|(k, v)| (k, v)));
            }
            // After the profile's labels: the name label is Calico's, not the user's.
            let ns_name = format!("{NAMESPACE_LABEL_PREFIX}{PROFILE_NAME_LABEL}");
            labels.insert(&ns_name, namespace);
            if let Some(account) = service_account {
                let sa_key = ProfileKey::ServiceAccount(ServiceAccountKey {
                    origin: origin.clone(),
                    namespace: namespace.clone(),
                    name: account.clone(),
                });
                if let Some(profile) = self.profiles.get(&sa_key) {
                    labels.extend(profile.inherited.iter().map(|(k, v)| (k, v)));
                }
                let sa_name = format!("{SERVICE_ACCOUNT_LABEL_PREFIX}{PROFILE_NAME_LABEL}");
                labels.insert(&sa_name, account);
                calico.push((SERVICE_ACCOUNT_LABEL, account));
            }
            calico.push((NAMESPACE_LABEL, namespace));
            calico.push((ORCHESTRATOR_LABEL, ORCHESTRATOR_K8S));
        }
        if let Some(cluster) = key.cluster() {
            calico.push((REMOTE_CLUSTER_LABEL, cluster.as_str()));
        }
        labels.extend(own.iter());
        labels.extend(calico);
        labels.build()
    }

    fn upsert_endpoint(&mut self, view: EndpointView, changed: &mut Vec<EndpointKey>) {
        let own = InternedLabels::new(&view.labels);
        let ips: Box<[IpAddr]> = view.ips.into_boxed_slice();
        let service_account = view.service_account;
        if let Some(&id) = self.ids.get(&view.key)
            && let Some(Some(old)) = self.slots.get(id.0 as usize)
        {
            if old.own == own
                && old.ips == ips
                && old.node == view.node
                && old.service_account == service_account
            {
                return;
            }
            let labels = self.effective_labels(&view.key, &own, service_account.as_ref());
            let relabelled = labels != old.labels;
            let announce = relabelled || old.ips != ips;
            let old_account = old.service_account.clone();
            if old_account != service_account
                && let EndpointKey::Workload {
                    origin, namespace, ..
                } = &view.key
            {
                if let Some(sa) = &old_account {
                    self.leave(&account_profile(origin, namespace, sa), id);
                }
                if let Some(sa) = &service_account {
                    self.join(account_profile(origin, namespace, sa), id);
                }
            }
            if relabelled {
                self.unindex(id);
            }
            if let Some(Some(entry)) = self.slots.get_mut(id.0 as usize) {
                entry.own = own;
                entry.labels = labels;
                entry.ips = ips;
                entry.node = view.node;
                entry.service_account = service_account;
            }
            if relabelled {
                self.index(id);
            }
            if announce {
                changed.push(view.key);
            }
            return;
        }
        let labels = self.effective_labels(&view.key, &own, service_account.as_ref());
        let key = view.key;
        let endpoint = Endpoint {
            key: key.clone(),
            own,
            labels,
            ips,
            node: view.node,
            service_account,
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.slots.get_mut(id.0 as usize) {
                    *slot = Some(endpoint);
                }
                id
            }
            None => {
                // Four billion endpoints do not fit in memory; ids cannot run out first.
                let id = EndpointId(u32::try_from(self.slots.len()).unwrap_or(u32::MAX));
                self.slots.push(Some(endpoint));
                id
            }
        };
        self.ids.insert(key.clone(), id);
        self.by_origin
            .entry(key.origin().clone())
            .or_default()
            .insert(id);
        match &key {
            EndpointKey::Host { .. } => {
                self.hosts.insert(id);
            }
            EndpointKey::Workload {
                origin, namespace, ..
            } => {
                let ns = ProfileKey::Namespace(NamespaceKey {
                    origin: origin.clone(),
                    name: namespace.clone(),
                });
                self.join(ns, id);
                if let Some(sa) = self.slot(id).and_then(|e| e.service_account.clone()) {
                    self.join(account_profile(origin, namespace, &sa), id);
                }
            }
        }
        self.index(id);
        changed.push(key);
    }

    fn remove_endpoint(&mut self, key: &EndpointKey, changed: &mut Vec<EndpointKey>) {
        let Some(id) = self.ids.remove(key) else {
            return;
        };
        self.unindex(id);
        let Some(endpoint) = self.slots.get_mut(id.0 as usize).and_then(Option::take) else {
            return;
        };
        self.free.push(id);
        if let Some(ids) = self.by_origin.get_mut(key.origin()) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_origin.remove(key.origin());
            }
        }
        match key {
            EndpointKey::Host { .. } => {
                self.hosts.remove(&id);
            }
            EndpointKey::Workload {
                origin, namespace, ..
            } => {
                let ns = ProfileKey::Namespace(NamespaceKey {
                    origin: origin.clone(),
                    name: namespace.clone(),
                });
                self.leave(&ns, id);
                if let Some(sa) = &endpoint.service_account {
                    self.leave(&account_profile(origin, namespace, sa), id);
                }
            }
        }
        changed.push(endpoint.key);
    }

    fn join(&mut self, profile: ProfileKey, id: EndpointId) {
        self.members.entry(profile).or_default().insert(id);
    }

    fn leave(&mut self, profile: &ProfileKey, id: EndpointId) {
        if let Some(ids) = self.members.get_mut(profile) {
            ids.remove(&id);
            if ids.is_empty() {
                self.members.remove(profile);
            }
        }
    }

    /// Files endpoint `id` under each of its labels.
    fn index(&mut self, id: EndpointId) {
        let Some(endpoint) = self.slots.get(id.0 as usize).and_then(Option::as_ref) else {
            return;
        };
        for (k, v) in endpoint.labels.iter() {
            let values = match self.by_label.get_mut(k) {
                Some(values) => values,
                None => self.by_label.entry(Arc::from(k)).or_default(),
            };
            match values.get_mut(v) {
                Some(ids) => {
                    ids.insert(id);
                }
                None => {
                    values.entry(Arc::from(v)).or_default().insert(id);
                }
            }
        }
    }

    /// Takes endpoint `id` out of the label index.
    fn unindex(&mut self, id: EndpointId) {
        let Some(endpoint) = self.slots.get(id.0 as usize).and_then(Option::as_ref) else {
            return;
        };
        for (k, v) in endpoint.labels.iter() {
            let Some(values) = self.by_label.get_mut(k) else {
                continue;
            };
            if let Some(ids) = values.get_mut(v) {
                ids.remove(&id);
                if ids.is_empty() {
                    values.remove(v);
                }
            }
            if values.is_empty() {
                self.by_label.remove(k);
            }
        }
    }

    fn set_profile(
        &mut self,
        key: ProfileKey,
        labels: Option<BTreeMap<String, String>>,
        changed: &mut Vec<EndpointKey>,
    ) {
        match labels {
            Some(labels) => {
                let (prefix, name) = match &key {
                    ProfileKey::Namespace(k) => (NAMESPACE_LABEL_PREFIX, &k.name),
                    ProfileKey::ServiceAccount(k) => (SERVICE_ACCOUNT_LABEL_PREFIX, &k.name),
                };
                let own = InternedLabels::new(
                    labels
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .chain([(PROFILE_NAME_LABEL, &**name)]),
                );
                if self.profiles.get(&key).is_some_and(|p| p.own == own) {
                    return;
                }
                let inherited = labels
                    .iter()
                    .map(|(k, v)| (format!("{prefix}{k}"), v.clone()))
                    .collect();
                self.profiles
                    .insert(key.clone(), Profile { own, inherited });
            }
            None => {
                if self.profiles.remove(&key).is_none() {
                    return;
                }
            }
        }
        let members: Vec<EndpointId> = self
            .members
            .get(&key)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        for id in members {
            self.relabel(id, changed);
        }
    }

    /// Recomputes the effective labels of `id` after a profile changed.
    fn relabel(&mut self, id: EndpointId, changed: &mut Vec<EndpointKey>) {
        let Some(endpoint) = self.slot(id) else {
            return;
        };
        let labels = self.effective_labels(
            &endpoint.key,
            &endpoint.own,
            endpoint.service_account.as_ref(),
        );
        if labels == endpoint.labels {
            return;
        }
        let key = endpoint.key.clone();
        self.unindex(id);
        if let Some(Some(entry)) = self.slots.get_mut(id.0 as usize) {
            entry.labels = labels;
        }
        self.index(id);
        changed.push(key);
    }
}

fn account_profile(origin: &Origin, namespace: &Arc<str>, account: &Arc<str>) -> ProfileKey {
    ProfileKey::ServiceAccount(ServiceAccountKey {
        origin: origin.clone(),
        namespace: namespace.clone(),
        name: account.clone(),
    })
}

fn profile_kind(key: &ProfileKey) -> ProfileKind {
    match key {
        ProfileKey::Namespace(_) => ProfileKind::Namespace,
        ProfileKey::ServiceAccount(_) => ProfileKind::ServiceAccount,
    }
}
