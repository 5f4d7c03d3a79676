//! In-cluster lookups (the KubeDNS part of seed 003, "Discovering a
//! federated service"): inside a member cluster, `svc.ns.fed.svc.<cluster
//! domain>` is
//! - when the member's copy of the federated Service has ready endpoints and
//!   a ClusterIP: a CNAME to `svc.ns.svc.<cluster domain>`, whose A/AAAA
//!   records (the ClusterIPs) come in the same answer, so a pod talks to its
//!   own cluster's shard, as KubeDNS answered;
//! - otherwise: a CNAME to the federation's name for the zone the cluster is
//!   in (`svc.ns.fed.svc.<zone>.<suffix>`; the region's name when the nodes
//!   name no zone, the global name when they name neither), and the resolver
//!   walks the public chain (zone → region → global) to the nearest healthy
//!   shard.
//!
//! Only Services carrying the federation label (the copies the federation
//! control plane writes into members) have names, under the federation the
//! label names; the records are a zone's worth for the cluster domain, kept
//! per Service so that an event gives the [`DnsChange`] of what it touched.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::index::{DnsChange, diff};
use super::input::DnsConfig;
use super::name::{DnsLabel, DomainName, NameError};
use super::records::{NameRecords, Names, RecordData, RecordsError};
use crate::federation::{FEDERATION_LABEL, NodeTopology, ready_endpoints};
use crate::names::FederatedKey;
use crate::slice::SERVICE_NAME_LABEL;

/// The TTL of in-cluster answers unless configured: CoreDNS's `kubernetes`
/// plugin's default, so a pod sees its shard fail over within seconds.
pub const DEFAULT_IN_CLUSTER_TTL: u32 = 5;

/// What the in-cluster server answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InClusterConfig {
    /// The cluster's DNS domain (`cluster.local`): the zone served.
    pub cluster_domain: DomainName,
    /// The federations the cluster is a member of: name, DNS suffix, zone form.
    pub federations: Vec<DnsConfig>,
    /// The TTL of every in-cluster record.
    pub ttl: u32,
}

impl InClusterConfig {
    /// Settings with the default TTL.
    pub fn new(cluster_domain: DomainName, federations: Vec<DnsConfig>) -> Self {
        Self {
            cluster_domain,
            federations,
            ttl: DEFAULT_IN_CLUSTER_TTL,
        }
    }

    fn federation(&self, name: &DnsLabel) -> Option<&DnsConfig> {
        self.federations.iter().find(|f| f.federation == *name)
    }
}

/// Where the cluster is, from its nodes' labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// The cluster's zone (the first in sorted order when nodes span several).
    pub zone: Option<DnsLabel>,
    /// The cluster's region.
    pub region: Option<DnsLabel>,
}

/// A member's copy of a federated Service, as the in-cluster records need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalService {
    /// The federation it belongs to (its federation label).
    pub federation: DnsLabel,
    /// Its namespace.
    pub namespace: DnsLabel,
    /// Its name.
    pub name: DnsLabel,
    /// Its ClusterIPs; empty for a headless Service (or none allocated yet).
    pub cluster_ips: Vec<IpAddr>,
}

/// Why a member Service has no in-cluster records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InClusterError {
    /// Its namespace or name is not a DNS label, or a record name would be
    /// longer than DNS allows.
    #[error("Service {key} has no federation DNS names in the cluster: {source}")]
    ServiceName {
        /// The Service.
        key: FederatedKey,
        /// What is wrong with the name.
        source: NameError,
    },
}

impl LocalService {
    /// Reads a member Service: `None` when it carries no federation label
    /// (not a federated copy) or a value that is not a DNS label.
    pub fn read(service: &Service) -> Result<Option<Self>, InClusterError> {
        let meta = &service.metadata;
        let Some(federation) = meta
            .labels
            .as_ref()
            .and_then(|l| l.get(FEDERATION_LABEL))
            .and_then(|v| DnsLabel::new("federation", v).ok())
        else {
            return Ok(None);
        };
        let (namespace, name) = (
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
        );
        let err = |source| InClusterError::ServiceName {
            key: FederatedKey::new(namespace, name),
            source,
        };
        let namespace_label = DnsLabel::new("namespace", namespace).map_err(err)?;
        let name_label = DnsLabel::new("Service name", name).map_err(err)?;
        let spec = service.spec.as_ref();
        let mut cluster_ips: Vec<IpAddr> = spec
            .and_then(|s| s.cluster_ips.clone())
            .or_else(|| spec.and_then(|s| s.cluster_ip.clone()).map(|ip| vec![ip]))
            .unwrap_or_default()
            .iter()
            // "None" (headless) and "" (not allocated) are not addresses.
            .filter_map(|ip| ip.parse().ok())
            .collect();
        cluster_ips.sort_unstable();
        cluster_ips.dedup();
        Ok(Some(Self {
            federation,
            namespace: namespace_label,
            name: name_label,
            cluster_ips,
        }))
    }
}

/// The in-cluster records of one member Service, sorted by name: the
/// federation name's CNAME, and with a healthy local shard the local name's
/// addresses. A Service of a federation not configured has none.
pub fn in_cluster_records(
    config: &InClusterConfig,
    place: &Place,
    service: &LocalService,
    ready: bool,
) -> Result<Vec<NameRecords>, RecordsError> {
    let Some(federation) = config.federation(&service.federation) else {
        return Ok(Vec::new());
    };
    let id = service;
    let svc = DnsLabel::literal("svc");
    let record_name = |labels: &[&DnsLabel]| {
        config
            .cluster_domain
            .prepend(labels)
            .map_err(|source| RecordsError::RecordName {
                namespace: id.namespace.clone(),
                name: id.name.clone(),
                source,
            })
    };
    let query = record_name(&[&id.name, &id.namespace, &federation.federation, &svc])?;
    let record = |name, data| NameRecords {
        name,
        ttl: config.ttl,
        data,
    };
    let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) =
        service.cluster_ips.iter().partition(|ip| ip.is_ipv4());
    let mut records = if ready && !service.cluster_ips.is_empty() {
        let local = record_name(&[&id.name, &id.namespace, &svc])?;
        let addresses = RecordData::Addresses {
            v4: v4.iter().filter_map(as_v4).collect(),
            v6: v6.iter().filter_map(as_v6).collect(),
        };
        vec![
            record(query, RecordData::Cname(local.clone())),
            record(local, addresses),
        ]
    } else {
        let names = Names::new(federation, id.namespace.clone(), id.name.clone());
        let target = match (&place.zone, &place.region) {
            (Some(zone), Some(region)) => names.zone(zone, region)?,
            // Without a region only the zone-only form can name the zone.
            (Some(zone), None) if federation.zone_form == super::ZoneForm::ZoneOnly => {
                names.make(&[zone])?
            }
            (_, Some(region)) => names.make(&[region])?,
            (_, None) => names.make(&[])?,
        };
        vec![record(query, RecordData::Cname(target))]
    };
    records.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(records)
}

fn as_v4(ip: &IpAddr) -> Option<std::net::Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(*v4),
        IpAddr::V6(_) => None,
    }
}

fn as_v6(ip: &IpAddr) -> Option<std::net::Ipv6Addr> {
    match ip {
        IpAddr::V6(v6) => Some(*v6),
        IpAddr::V4(_) => None,
    }
}

/// What an event changed: the records to serve, and the Services left out
/// (to be logged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InClusterChange {
    /// The names upserted and removed.
    pub records: DnsChange,
    /// Services that have no records, and why.
    pub skipped: Vec<InClusterError>,
}

/// The in-cluster records of one member cluster, kept as its Services,
/// EndpointSlices and Nodes change: an event recomputes only the Services it
/// touches (a change of the cluster's zone or region, all of them).
#[derive(Debug, Clone)]
pub struct InClusterIndex {
    config: InClusterConfig,
    topology: NodeTopology,
    place: Place,
    services: BTreeMap<FederatedKey, LocalService>,
    /// Each EndpointSlice (namespace, slice name): its Service and ready endpoints.
    slices: HashMap<(String, String), (FederatedKey, usize)>,
    /// Ready endpoints per Service, summed over its slices.
    ready: HashMap<FederatedKey, usize>,
    records: BTreeMap<FederatedKey, Vec<NameRecords>>,
}

fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> FederatedKey {
    FederatedKey::new(
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

impl InClusterIndex {
    /// An index with nothing seen yet.
    pub fn new(config: InClusterConfig) -> Self {
        Self {
            config,
            topology: NodeTopology::default(),
            place: Place::default(),
            services: BTreeMap::new(),
            slices: HashMap::new(),
            ready: HashMap::new(),
            records: BTreeMap::new(),
        }
    }

    /// Every record, sorted by name within each Service.
    pub fn records(&self) -> impl Iterator<Item = &NameRecords> {
        self.records.values().flatten()
    }

    /// Where the cluster is now.
    pub fn place(&self) -> &Place {
        &self.place
    }

    /// Replaces every member Service with a fresh listing.
    pub fn reset_services(&mut self, services: &[Service]) -> InClusterChange {
        let mut touched: Vec<FederatedKey> = self.services.keys().cloned().collect();
        self.services.clear();
        let mut skipped = Vec::new();
        for service in services {
            let key = key_of(&service.metadata);
            match LocalService::read(service) {
                Ok(Some(local)) => _ = self.services.insert(key.clone(), local),
                Ok(None) => {}
                Err(error) => skipped.push(error),
            }
            touched.push(key);
        }
        let mut change = self.refresh(touched);
        change.skipped.extend(skipped);
        change
    }

    /// A member Service created or changed.
    pub fn apply_service(&mut self, service: &Service) -> InClusterChange {
        let key = key_of(&service.metadata);
        let mut skipped = Vec::new();
        match LocalService::read(service) {
            Ok(Some(local)) => _ = self.services.insert(key.clone(), local),
            Ok(None) => _ = self.services.remove(&key),
            Err(error) => {
                self.services.remove(&key);
                skipped.push(error);
            }
        }
        let mut change = self.refresh(vec![key]);
        change.skipped.extend(skipped);
        change
    }

    /// A member Service deleted.
    pub fn delete_service(&mut self, service: &Service) -> InClusterChange {
        let key = key_of(&service.metadata);
        self.services.remove(&key);
        self.refresh(vec![key])
    }

    /// Replaces every EndpointSlice with a fresh listing.
    pub fn reset_slices(&mut self, slices: &[EndpointSlice]) -> InClusterChange {
        let mut touched: Vec<FederatedKey> = self.ready.keys().cloned().collect();
        self.slices.clear();
        self.ready.clear();
        for slice in slices {
            touched.extend(self.set_slice(slice, true));
        }
        self.refresh(touched)
    }

    /// An EndpointSlice created or changed.
    pub fn apply_slice(&mut self, slice: &EndpointSlice) -> InClusterChange {
        let touched = self.set_slice(slice, true);
        self.refresh(touched)
    }

    /// An EndpointSlice deleted.
    pub fn delete_slice(&mut self, slice: &EndpointSlice) -> InClusterChange {
        let touched = self.set_slice(slice, false);
        self.refresh(touched)
    }

    /// Records a slice (or its absence); returns the Services whose ready
    /// count it moved.
    fn set_slice(&mut self, slice: &EndpointSlice, present: bool) -> Vec<FederatedKey> {
        let meta = &slice.metadata;
        let slot = (
            meta.namespace.clone().unwrap_or_default(),
            meta.name.clone().unwrap_or_default(),
        );
        let new = present
            .then(|| meta.labels.as_ref()?.get(SERVICE_NAME_LABEL))
            .flatten()
            .map(|service| (FederatedKey::new(&slot.0, service), ready_endpoints(slice)));
        let old = match &new {
            Some(entry) => self.slices.insert(slot, entry.clone()),
            None => self.slices.remove(&slot),
        };
        if old == new {
            return Vec::new();
        }
        let mut touched = Vec::with_capacity(2);
        if let Some((key, count)) = old {
            if let Some(total) = self.ready.get_mut(&key) {
                *total = total.saturating_sub(count);
                if *total == 0 {
                    self.ready.remove(&key);
                }
            }
            touched.push(key);
        }
        if let Some((key, count)) = new {
            if count > 0 {
                *self.ready.entry(key.clone()).or_default() += count;
            }
            touched.push(key);
        }
        touched
    }

    /// Replaces every Node with a fresh listing.
    pub fn reset_nodes(&mut self, nodes: &[Node]) -> InClusterChange {
        self.topology.reset(
            nodes
                .iter()
                .filter_map(|n| Some((n.metadata.name.as_deref()?, n.metadata.labels.as_ref()?))),
        );
        self.replace_place()
    }

    /// A Node created or changed.
    pub fn apply_node(&mut self, node: &Node) -> InClusterChange {
        let Some(name) = node.metadata.name.as_deref() else {
            return InClusterChange::default();
        };
        let labels = node.metadata.labels.clone().unwrap_or_default();
        if !self.topology.apply(name, Some(&labels)) {
            return InClusterChange::default();
        }
        self.replace_place()
    }

    /// A Node deleted.
    pub fn delete_node(&mut self, node: &Node) -> InClusterChange {
        let Some(name) = node.metadata.name.as_deref() else {
            return InClusterChange::default();
        };
        if !self.topology.apply(name, None) {
            return InClusterChange::default();
        }
        self.replace_place()
    }

    /// Takes the cluster's place from the nodes; when it moved, every
    /// Service's records are recomputed.
    fn replace_place(&mut self) -> InClusterChange {
        let topology = self.topology.topology();
        // A zone or region that is not a DNS label cannot be in a name: the
        // next wider scope is used, as when the nodes say nothing.
        let label = |what, value: Option<&String>| value.and_then(|v| DnsLabel::new(what, v).ok());
        let place = Place {
            zone: label("zone", topology.zones.first()),
            region: label("region", topology.region.as_ref()),
        };
        if place == self.place {
            return InClusterChange::default();
        }
        self.place = place;
        let all = self.services.keys().cloned().collect();
        self.refresh(all)
    }

    /// Recomputes the records of `keys` and says what changed.
    fn refresh(&mut self, mut keys: Vec<FederatedKey>) -> InClusterChange {
        keys.sort_unstable();
        keys.dedup();
        let mut change = InClusterChange::default();
        for key in keys {
            let new = match self.services.get(&key) {
                Some(service) => {
                    let ready = self.ready.get(&key).is_some_and(|n| *n > 0);
                    match in_cluster_records(&self.config, &self.place, service, ready) {
                        Ok(records) => records,
                        // Only a record name can fail here (the labels were
                        // checked when the Service was read), but every
                        // variant names what is wrong.
                        Err(
                            RecordsError::RecordName { source, .. }
                            | RecordsError::ServiceName { source, .. }
                            | RecordsError::ShardName { source, .. },
                        ) => {
                            change.skipped.push(InClusterError::ServiceName {
                                key: key.clone(),
                                source,
                            });
                            Vec::new()
                        }
                    }
                }
                None => Vec::new(),
            };
            let old = self.records.remove(&key).unwrap_or_default();
            let step = diff(&old, &new);
            change.records.upserted.extend(step.upserted);
            change.records.removed.extend(step.removed);
            if !new.is_empty() {
                self.records.insert(key, new);
            }
        }
        change
    }
}

#[cfg(test)]
mod tests;
