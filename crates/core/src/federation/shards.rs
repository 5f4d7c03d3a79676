//! Shard health and the federated Service's status.
//!
//! A shard is one member's copy of a federated Service. It is healthy when
//! its cluster is Ready, it has an externally reachable address
//! (`status.loadBalancer.ingress` IPs or hostnames, or `spec.externalIPs`)
//! and its EndpointSlices have at least one ready endpoint. The federated
//! Service's `status.loadBalancer.ingress` lists every shard's addresses,
//! sorted, and the [`SHARDS_ANNOTATION`] records each shard's addresses,
//! zones, region and health.
//!
//! [`ShardIndex`] keeps the members' Services, endpoint counts and cluster
//! states; a change names the federated Services whose shards changed, so an
//! endpoint change costs one slice's count and rewrites one status.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use k8s_openapi::api::core::v1::{LoadBalancerIngress, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use super::health::ClusterState;
use super::topology::Topology;
use crate::names::{ClusterName, ClusterNameError, FederatedKey};
use crate::slice::SERVICE_NAME_LABEL;

/// The annotation on a federated Service listing its shards (JSON, see
/// [`ServiceShards::annotation`]).
pub const SHARDS_ANNOTATION: &str = "federation.fedmesh.io/shards";

/// The annotation on a federated object listing the members where writing
/// its copy failed (JSON, see [`ServiceShards::errors_annotation`]).
pub const ERRORS_ANNOTATION: &str = "federation.fedmesh.io/errors";

/// A shard's externally reachable addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Addresses {
    /// IPv4 addresses, sorted.
    pub ipv4: BTreeSet<Ipv4Addr>,
    /// IPv6 addresses, sorted.
    pub ipv6: BTreeSet<Ipv6Addr>,
    /// Host names (load balancers known by name), sorted.
    pub hostnames: BTreeSet<String>,
}

impl Addresses {
    /// A member Service's addresses: its load-balancer ingress and external IPs.
    pub fn of_service(service: &Service) -> Addresses {
        let mut addresses = Addresses::default();
        let ingress = service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref());
        for entry in ingress.into_iter().flatten() {
            if let Some(ip) = &entry.ip {
                addresses.add_ip(ip);
            }
            if let Some(host) = entry.hostname.as_ref().filter(|h| !h.is_empty()) {
                addresses.hostnames.insert(host.clone());
            }
        }
        let external = service.spec.as_ref().and_then(|s| s.external_ips.as_ref());
        for ip in external.into_iter().flatten() {
            addresses.add_ip(ip);
        }
        addresses
    }

    /// Addresses given as text, as the shards annotation lists them: IPs,
    /// and anything else as a host name.
    pub fn from_strings<'a>(entries: impl IntoIterator<Item = &'a str>) -> Addresses {
        let mut addresses = Addresses::default();
        for entry in entries {
            match entry.parse::<IpAddr>() {
                Ok(_) => addresses.add_ip(entry),
                Err(_) => _ = addresses.hostnames.insert(entry.to_owned()),
            }
        }
        addresses
    }

    /// Adds an IP given as text; anything else is not an address and is ignored.
    fn add_ip(&mut self, ip: &str) {
        match ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => {
                self.ipv4.insert(v4);
            }
            Ok(IpAddr::V6(v6)) => {
                self.ipv6.insert(v6);
            }
            Err(_) => {}
        }
    }

    /// Whether there is no address.
    pub fn is_empty(&self) -> bool {
        self.ipv4.is_empty() && self.ipv6.is_empty() && self.hostnames.is_empty()
    }

    /// Every address as text: IPv4, then IPv6, then host names, each sorted.
    pub fn to_strings(&self) -> Vec<String> {
        self.ipv4
            .iter()
            .map(ToString::to_string)
            .chain(self.ipv6.iter().map(ToString::to_string))
            .chain(self.hostnames.iter().cloned())
            .collect()
    }

    fn extend(&mut self, other: &Addresses) {
        self.ipv4.extend(other.ipv4.iter().copied());
        self.ipv6.extend(other.ipv6.iter().copied());
        self.hostnames.extend(other.hostnames.iter().cloned());
    }
}

/// Whether a shard serves, and if not the first reason why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// It serves.
    Healthy,
    /// Its cluster is not Ready.
    ClusterNotReady,
    /// It has no externally reachable address (yet).
    NoExternalAddress,
    /// None of its endpoints is ready.
    NoReadyEndpoints,
}

impl Health {
    /// The name the annotation shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "Healthy",
            Health::ClusterNotReady => "ClusterNotReady",
            Health::NoExternalAddress => "NoExternalAddress",
            Health::NoReadyEndpoints => "NoReadyEndpoints",
        }
    }

    /// The health [`as_str`](Self::as_str) names.
    pub fn parse(text: &str) -> Option<Health> {
        [
            Health::Healthy,
            Health::ClusterNotReady,
            Health::NoExternalAddress,
            Health::NoReadyEndpoints,
        ]
        .into_iter()
        .find(|h| h.as_str() == text)
    }
}

/// Why a shards annotation (or a list in its form) cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardsAnnotationError {
    /// Not a JSON list of shard objects.
    #[error("annotation {SHARDS_ANNOTATION} is not a JSON list of shards: {0}")]
    Json(String),
    /// A shard's cluster is not a cluster name.
    #[error("annotation {SHARDS_ANNOTATION}: cluster {name:?}: {source}")]
    Cluster {
        /// The value given.
        name: String,
        /// Why it is not a cluster name.
        source: ClusterNameError,
    },
    /// A shard's health is not one fedmesh writes.
    #[error(
        "annotation {SHARDS_ANNOTATION}: cluster {cluster}: health {value:?} is not Healthy, ClusterNotReady, NoExternalAddress or NoReadyEndpoints"
    )]
    Health {
        /// The member.
        cluster: ClusterName,
        /// The value given.
        value: String,
    },
}

/// One entry of the shards annotation, as written by
/// [`ServiceShards::annotation`]. `health` says why a shard does not serve;
/// a hand-written list may give only `healthy`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ShardEntry {
    cluster: String,
    #[serde(default)]
    healthy: bool,
    #[serde(default)]
    health: Option<String>,
    #[serde(default)]
    zones: Vec<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    addresses: Vec<String>,
}

/// One member's shard of a federated Service: what DNS and the status need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// The member cluster.
    pub cluster: ClusterName,
    /// The member's zones, sorted.
    pub zones: Vec<String>,
    /// The member's region.
    pub region: Option<String>,
    /// The shard's externally reachable addresses.
    pub addresses: Addresses,
    /// Whether it serves, or why not.
    pub health: Health,
}

impl Shard {
    /// Whether the shard serves.
    pub fn healthy(&self) -> bool {
        self.health == Health::Healthy
    }
}

/// A federated Service and its shards, sorted by cluster: the input of DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceShards {
    /// The federated Service.
    pub service: FederatedKey,
    /// Its shards: one per member holding a copy.
    pub shards: Vec<Shard>,
    /// Members where the last write of its copy failed, and why.
    pub errors: BTreeMap<ClusterName, String>,
}

impl ServiceShards {
    /// The federated Service's `status.loadBalancer.ingress`: every shard's
    /// addresses (healthy or not, as the seed's `kubectl describe` shows),
    /// without repeats, IPv4 then IPv6 then host names, each sorted.
    pub fn ingress(&self) -> Vec<LoadBalancerIngress> {
        let mut all = Addresses::default();
        for shard in &self.shards {
            all.extend(&shard.addresses);
        }
        let ips = all
            .ipv4
            .iter()
            .map(ToString::to_string)
            .chain(all.ipv6.iter().map(ToString::to_string))
            .map(|ip| LoadBalancerIngress {
                ip: Some(ip),
                ..LoadBalancerIngress::default()
            });
        let hosts = all.hostnames.into_iter().map(|h| LoadBalancerIngress {
            hostname: Some(h),
            ..LoadBalancerIngress::default()
        });
        ips.chain(hosts).collect()
    }

    /// The value of [`SHARDS_ANNOTATION`]: a JSON list, one entry per shard
    /// in cluster order:
    ///
    /// ```json
    /// [{"cluster": "us-central1-a", "healthy": true, "health": "Healthy",
    ///   "zones": ["us-central1-a"], "region": "us-central1",
    ///   "addresses": ["104.197.247.191"]}]
    /// ```
    ///
    /// `health` is `Healthy`, `ClusterNotReady`, `NoExternalAddress` or
    /// `NoReadyEndpoints`; `region` is null when the member's nodes do not say.
    pub fn annotation(&self) -> String {
        let shards: Vec<serde_json::Value> = self
            .shards
            .iter()
            .map(|s| {
                json!({
                    "cluster": s.cluster.as_str(),
                    "healthy": s.healthy(),
                    "health": s.health.as_str(),
                    "zones": s.zones,
                    "region": s.region,
                    "addresses": s.addresses.to_strings(),
                })
            })
            .collect();
        serde_json::Value::Array(shards).to_string()
    }

    /// Reads the shards of `service` back from its [`SHARDS_ANNOTATION`]
    /// (what DNS serves from); write errors are not part of it.
    pub fn from_annotation(
        service: FederatedKey,
        value: &str,
    ) -> Result<ServiceShards, ShardsAnnotationError> {
        let json: serde_json::Value =
            serde_json::from_str(value).map_err(|e| ShardsAnnotationError::Json(e.to_string()))?;
        Self::from_json(service, json)
    }

    /// [`from_annotation`](Self::from_annotation) from parsed JSON.
    pub fn from_json(
        service: FederatedKey,
        json: serde_json::Value,
    ) -> Result<ServiceShards, ShardsAnnotationError> {
        let entries: Vec<ShardEntry> =
            serde_json::from_value(json).map_err(|e| ShardsAnnotationError::Json(e.to_string()))?;
        let mut shards = entries
            .into_iter()
            .map(|entry| {
                let cluster = ClusterName::new(&entry.cluster).map_err(|source| {
                    ShardsAnnotationError::Cluster {
                        name: entry.cluster.clone(),
                        source,
                    }
                })?;
                let health = match &entry.health {
                    Some(text) => {
                        Health::parse(text).ok_or_else(|| ShardsAnnotationError::Health {
                            cluster: cluster.clone(),
                            value: text.clone(),
                        })?
                    }
                    None if entry.healthy => Health::Healthy,
                    None => Health::NoReadyEndpoints,
                };
                let mut zones = entry.zones;
                zones.sort();
                zones.dedup();
                Ok(Shard {
                    cluster,
                    zones,
                    region: entry.region,
                    addresses: Addresses::from_strings(entry.addresses.iter().map(String::as_str)),
                    health,
                })
            })
            .collect::<Result<Vec<Shard>, ShardsAnnotationError>>()?;
        shards.sort_by(|a, b| a.cluster.cmp(&b.cluster));
        Ok(ServiceShards {
            service,
            shards,
            errors: BTreeMap::new(),
        })
    }

    /// A JSON merge patch of the federated Service's annotations: the shards
    /// annotation, and the errors annotation (removed, as `null`, when there
    /// are none).
    pub fn metadata_patch(&self) -> serde_json::Value {
        json!({"metadata": {"annotations": {
            SHARDS_ANNOTATION: self.annotation(),
            ERRORS_ANNOTATION: self.errors_annotation(),
        }}})
    }

    /// A JSON merge patch of the federated Service's `status` subresource:
    /// its load-balancer ingress.
    pub fn status_patch(&self) -> serde_json::Value {
        json!({"status": {"loadBalancer": {"ingress": self.ingress()}}})
    }

    /// The value of [`ERRORS_ANNOTATION`], `None` when every write succeeded:
    /// a JSON object from member name to the error its API server returned,
    /// `{"west": "services \"nginx\" is forbidden: exceeded quota"}`.
    pub fn errors_annotation(&self) -> Option<String> {
        (!self.errors.is_empty()).then(|| {
            let errors: serde_json::Map<String, serde_json::Value> = self
                .errors
                .iter()
                .map(|(c, e)| (c.as_str().to_owned(), json!(e)))
                .collect();
            serde_json::Value::Object(errors).to_string()
        })
    }
}

/// A member cluster's state and place, as shards need them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    state: ClusterState,
    topology: Topology,
}

/// One member's Services and endpoint counts.
#[derive(Debug, Default)]
struct MemberShards {
    /// The member's copies of federated Services: their addresses.
    services: HashMap<FederatedKey, Addresses>,
    /// Each EndpointSlice (namespace, name): its Service and ready endpoints.
    slices: HashMap<(String, String), (FederatedKey, usize)>,
    /// Ready endpoints per Service, over its slices.
    ready: HashMap<FederatedKey, usize>,
}

/// The shards of every federated Service, kept as member objects change.
#[derive(Debug, Default)]
pub struct ShardIndex {
    places: HashMap<ClusterName, Place>,
    members: HashMap<ClusterName, MemberShards>,
    /// Which members hold a copy of each federated Service.
    holders: BTreeMap<FederatedKey, BTreeSet<ClusterName>>,
    /// Failed writes of copies, per federated Service and member.
    errors: BTreeMap<FederatedKey, BTreeMap<ClusterName, String>>,
}

/// Ready endpoints of a slice: endpoints with an address whose `ready`
/// condition is not false (unset means ready, as Kubernetes says).
pub fn ready_endpoints(slice: &EndpointSlice) -> usize {
    slice
        .endpoints
        .iter()
        .filter(|e| !e.addresses.is_empty())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        .count()
}

impl ShardIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a member's state and place (from its Cluster status); returns
    /// the federated Services with a shard there, whose health or place may
    /// have changed.
    pub fn apply_cluster(
        &mut self,
        cluster: &ClusterName,
        state: ClusterState,
        topology: &Topology,
    ) -> Vec<FederatedKey> {
        let place = Place {
            state,
            topology: topology.clone(),
        };
        if self.places.get(cluster) == Some(&place) {
            return Vec::new();
        }
        self.places.insert(cluster.clone(), place);
        self.held_by(cluster)
    }

    /// Forgets a member (its Cluster was deleted); returns the federated
    /// Services that lose a shard.
    pub fn remove_cluster(&mut self, cluster: &ClusterName) -> Vec<FederatedKey> {
        let held = self.held_by(cluster);
        self.places.remove(cluster);
        self.members.remove(cluster);
        for key in &held {
            self.unhold(key, cluster);
        }
        let mut changed: BTreeSet<FederatedKey> = held.into_iter().collect();
        let errored: Vec<FederatedKey> = self
            .errors
            .iter()
            .filter(|(_, e)| e.contains_key(cluster))
            .map(|(k, _)| k.clone())
            .collect();
        for key in errored {
            self.set_error(cluster, &key, None);
            changed.insert(key);
        }
        changed.into_iter().collect()
    }

    /// Applies a member's copy of the federated Service `key` upserted
    /// (`Some`) or deleted (`None`); says whether the shard changed.
    pub fn apply_service(
        &mut self,
        cluster: &ClusterName,
        key: &FederatedKey,
        service: Option<&Service>,
    ) -> bool {
        let member = self.members.entry(cluster.clone()).or_default();
        match service {
            Some(service) => {
                let addresses = Addresses::of_service(service);
                if member.services.get(key) == Some(&addresses) {
                    return false;
                }
                member.services.insert(key.clone(), addresses);
                self.holders
                    .entry(key.clone())
                    .or_default()
                    .insert(cluster.clone());
                true
            }
            None => {
                if member.services.remove(key).is_none() {
                    return false;
                }
                self.unhold(key, cluster);
                true
            }
        }
    }

    /// Applies a member's EndpointSlice upserted (`Some`) or deleted (`None`);
    /// returns the federated Services whose shard's health changed (the
    /// Service the slice belongs to, and the one it left if it moved).
    pub fn apply_slice(
        &mut self,
        cluster: &ClusterName,
        namespace: &str,
        name: &str,
        slice: Option<&EndpointSlice>,
    ) -> Vec<FederatedKey> {
        let member = self.members.entry(cluster.clone()).or_default();
        let slot = (namespace.to_owned(), name.to_owned());
        let new = slice.and_then(|s| {
            let service = s.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
            Some((FederatedKey::new(namespace, service), ready_endpoints(s)))
        });
        let old = match &new {
            Some(entry) => member.slices.insert(slot, entry.clone()),
            None => member.slices.remove(&slot),
        };
        if old == new {
            return Vec::new();
        }
        let mut changed = Vec::new();
        let mut adjust = |key: &FederatedKey, add: usize, remove: usize| {
            let count = member.ready.entry(key.clone()).or_default();
            let before = *count;
            *count = (*count + add).saturating_sub(remove);
            let after = *count;
            if after == 0 {
                member.ready.remove(key);
            }
            if (before == 0) != (after == 0) && member.services.contains_key(key) {
                changed.push(key.clone());
            }
        };
        match (&old, &new) {
            (Some((a, n)), Some((b, m))) if a == b => adjust(a, *m, *n),
            _ => {
                if let Some((key, n)) = &old {
                    adjust(key, 0, *n);
                }
                if let Some((key, m)) = &new {
                    adjust(key, *m, 0);
                }
            }
        }
        changed
    }

    /// The shards of the federated Service `key`, for its status and for DNS.
    pub fn shards(&self, key: &FederatedKey) -> ServiceShards {
        let shards = self
            .holders
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|cluster| {
                let member = self.members.get(cluster)?;
                let addresses = member.services.get(key)?.clone();
                let place = self.places.get(cluster);
                let ready = member.ready.get(key).copied().unwrap_or(0);
                let health = if place.is_none_or(|p| p.state != ClusterState::Ready) {
                    Health::ClusterNotReady
                } else if addresses.is_empty() {
                    Health::NoExternalAddress
                } else if ready == 0 {
                    Health::NoReadyEndpoints
                } else {
                    Health::Healthy
                };
                let topology = place.map(|p| p.topology.clone()).unwrap_or_default();
                Some(Shard {
                    cluster: cluster.clone(),
                    zones: topology.zones,
                    region: topology.region,
                    addresses,
                    health,
                })
            })
            .collect();
        ServiceShards {
            service: key.clone(),
            shards,
            errors: self.errors.get(key).cloned().unwrap_or_default(),
        }
    }

    /// Records the outcome of writing `key`'s copy in `cluster`: the error a
    /// member returned, or `None` once a write (or the plan's "nothing to
    /// do") succeeds. Says whether the federated Service's status changes.
    pub fn set_error(
        &mut self,
        cluster: &ClusterName,
        key: &FederatedKey,
        error: Option<&str>,
    ) -> bool {
        match error {
            Some(error) => {
                let errors = self.errors.entry(key.clone()).or_default();
                if errors.get(cluster).is_some_and(|e| e == error) {
                    return false;
                }
                errors.insert(cluster.clone(), error.to_owned());
                true
            }
            None => {
                let Some(errors) = self.errors.get_mut(key) else {
                    return false;
                };
                let removed = errors.remove(cluster).is_some();
                if errors.is_empty() {
                    self.errors.remove(key);
                }
                removed
            }
        }
    }

    fn held_by(&self, cluster: &ClusterName) -> Vec<FederatedKey> {
        let mut keys: Vec<FederatedKey> = self
            .members
            .get(cluster)
            .map(|m| m.services.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    fn unhold(&mut self, key: &FederatedKey, cluster: &ClusterName) {
        if let Some(holders) = self.holders.get_mut(key) {
            holders.remove(cluster);
            if holders.is_empty() {
                self.holders.remove(key);
            }
        }
    }
}

impl ShardIndex {
    /// Replaces a member's copies of federated Services with a fresh listing
    /// (a relist); returns the federated Services whose shard there changed.
    pub fn reset_services<'a>(
        &mut self,
        cluster: &ClusterName,
        services: impl IntoIterator<Item = (FederatedKey, &'a Service)>,
    ) -> Vec<FederatedKey> {
        let listed: HashMap<FederatedKey, &Service> = services.into_iter().collect();
        let mut changed: BTreeSet<FederatedKey> = BTreeSet::new();
        for key in self.held_by(cluster) {
            if !listed.contains_key(&key) && self.apply_service(cluster, &key, None) {
                changed.insert(key);
            }
        }
        for (key, service) in listed {
            if self.apply_service(cluster, &key, Some(service)) {
                changed.insert(key);
            }
        }
        changed.into_iter().collect()
    }

    /// Replaces a member's EndpointSlices with a fresh listing (a relist) of
    /// `(namespace, name, slice)`; returns the federated Services whose
    /// shard's health changed.
    pub fn reset_slices<'a>(
        &mut self,
        cluster: &ClusterName,
        slices: impl IntoIterator<Item = (&'a str, &'a str, &'a EndpointSlice)>,
    ) -> Vec<FederatedKey> {
        let listed: HashMap<(String, String), &EndpointSlice> = slices
            .into_iter()
            .map(|(ns, name, s)| ((ns.to_owned(), name.to_owned()), s))
            .collect();
        let gone: Vec<(String, String)> = self
            .members
            .get(cluster)
            .map(|m| {
                m.slices
                    .keys()
                    .filter(|k| !listed.contains_key(*k))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut changed: BTreeSet<FederatedKey> = BTreeSet::new();
        for (ns, name) in gone {
            changed.extend(self.apply_slice(cluster, &ns, &name, None));
        }
        for ((ns, name), slice) in &listed {
            changed.extend(self.apply_slice(cluster, ns, name, Some(slice)));
        }
        changed.into_iter().collect()
    }
}
