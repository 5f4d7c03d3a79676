//! The records of one federated Service, as a pure function of its shards.
//!
//! Every Service has three kinds of names (seed 002, "Verifying public DNS
//! records"): one global name, one per region and one per zone its clusters
//! are in. A name whose scope has healthy shards holds their addresses; a zone
//! without any is a CNAME to its region's name, a region without any a CNAME to
//! the global name, and a global scope without any has no record, so resolvers
//! walk zone -> region -> global to the nearest healthy shards.
//!
//! Load-balancer hostnames (AWS) cannot sit in an A record and fedmesh does
//! not resolve them: a scope whose healthy shards give addresses holds only
//! those addresses (its hostnames are left out); a scope whose healthy shards
//! give only hostnames is a CNAME to the first hostname in sorted order (a
//! CNAME has one target, so with several hostnames one is chosen, the same one
//! every time); a healthy shard with no address at all serves nothing. A
//! shard whose cluster has no region (its nodes carry no region label) counts
//! for the global name only: its zones have no region to fall back to.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::input::{DnsConfig, ZoneForm};
use super::name::{DnsLabel, DomainName, NameError};
use crate::federation::{ServiceShards, Shard};
use crate::names::{ClusterName, FederatedKey};

/// The records at one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRecords {
    /// The owner name.
    pub name: DomainName,
    /// The TTL of every record at the name.
    pub ttl: u32,
    /// What the name holds.
    pub data: RecordData,
}

/// What a name holds: addresses, or one alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    /// A and AAAA records, each list sorted and without duplicates; at least
    /// one of them is not empty.
    Addresses {
        /// The A records.
        v4: Vec<Ipv4Addr>,
        /// The AAAA records.
        v6: Vec<Ipv6Addr>,
    },
    /// A CNAME record.
    Cname(DomainName),
}

/// Why a Service's records cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    /// The Service's namespace or name is not a DNS label.
    #[error("federated Service {service}: {source}")]
    ServiceName {
        /// The Service.
        service: FederatedKey,
        /// What is wrong with its name.
        source: NameError,
    },
    /// A shard's region, zone or load-balancer hostname is not a DNS name.
    #[error(
        "federated Service {service}: the shard in cluster {cluster}: {source}; fix the member's node labels or load balancer"
    )]
    ShardName {
        /// The Service.
        service: FederatedKey,
        /// The member cluster.
        cluster: ClusterName,
        /// What is wrong.
        source: NameError,
    },
    /// A record name would be longer than DNS allows (long names and a long suffix).
    #[error("federated Service {namespace}/{name}: {source}")]
    RecordName {
        /// The Service's namespace.
        namespace: DnsLabel,
        /// The Service's name.
        name: DnsLabel,
        /// The name that is too long.
        source: NameError,
    },
}

/// Which scope a name stands for, and where it falls back to.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fallback {
    /// A zone: falls back to this region name (the smallest, if a zone name is
    /// shared by clusters of several regions).
    Region(DomainName),
    /// A region: falls back to the global name.
    Global,
    /// The global name: nothing wider.
    None,
}

#[derive(Debug)]
struct Scope {
    fallback: Fallback,
    v4: BTreeSet<Ipv4Addr>,
    v6: BTreeSet<Ipv6Addr>,
    hostnames: BTreeSet<DomainName>,
}

impl Scope {
    fn new(fallback: Fallback) -> Self {
        Self {
            fallback,
            v4: BTreeSet::new(),
            v6: BTreeSet::new(),
            hostnames: BTreeSet::new(),
        }
    }

    fn add(&mut self, shard: &Checked<'_>) {
        self.v4.extend(shard.shard.addresses.ipv4.iter().copied());
        self.v6.extend(shard.shard.addresses.ipv6.iter().copied());
        self.hostnames.extend(shard.hostnames.iter().cloned());
    }
}

/// A shard with its names checked as DNS names.
struct Checked<'a> {
    shard: &'a Shard,
    region: Option<DnsLabel>,
    zones: Vec<DnsLabel>,
    hostnames: Vec<DomainName>,
}

impl<'a> Checked<'a> {
    fn new(service: &FederatedKey, shard: &'a Shard) -> Result<Self, RecordsError> {
        let wrap = |source| RecordsError::ShardName {
            service: service.clone(),
            cluster: shard.cluster.clone(),
            source,
        };
        let region = shard
            .region
            .as_deref()
            .map(|r| DnsLabel::new("region", r))
            .transpose()
            .map_err(wrap)?;
        let zones = shard
            .zones
            .iter()
            .map(|z| DnsLabel::new("zone", z))
            .collect::<Result<_, _>>()
            .map_err(wrap)?;
        let hostnames = shard
            .addresses
            .hostnames
            .iter()
            .map(|h| DomainName::new("load-balancer hostname", h))
            .collect::<Result<_, _>>()
            .map_err(wrap)?;
        Ok(Self {
            shard,
            region,
            zones,
            hostnames,
        })
    }
}

/// The names of one Service.
pub(super) struct Names<'a> {
    config: &'a DnsConfig,
    namespace: DnsLabel,
    name: DnsLabel,
    svc: DnsLabel,
}

impl<'a> Names<'a> {
    /// The names of Service `namespace/name` in the federation `config`
    /// describes.
    pub(super) fn new(config: &'a DnsConfig, namespace: DnsLabel, name: DnsLabel) -> Self {
        Self {
            config,
            namespace,
            name,
            svc: DnsLabel::literal("svc"),
        }
    }

    /// `svc.ns.fed.svc.<scope...>.<suffix>`: the global name for no scope.
    pub(super) fn make(&self, scope: &[&DnsLabel]) -> Result<DomainName, RecordsError> {
        let mut labels = vec![
            &self.name,
            &self.namespace,
            &self.config.federation,
            &self.svc,
        ];
        labels.extend_from_slice(scope);
        self.config
            .suffix
            .prepend(&labels)
            .map_err(|source| RecordsError::RecordName {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                source,
            })
    }

    /// A zone's name, in the federation's zone form.
    pub(super) fn zone(
        &self,
        zone: &DnsLabel,
        region: &DnsLabel,
    ) -> Result<DomainName, RecordsError> {
        match self.config.zone_form {
            ZoneForm::ZoneOnly => self.make(&[zone]),
            ZoneForm::ZoneInRegion => self.make(&[zone, region]),
        }
    }
}

/// The records of one federated Service, sorted by name, with `ttl` (its
/// annotation's) or the federation's. Deterministic: the same shards in any
/// order give the same records.
pub fn service_records(
    config: &DnsConfig,
    service: &ServiceShards,
    ttl: Option<u32>,
) -> Result<Vec<NameRecords>, RecordsError> {
    let key = &service.service;
    let label = |what, value: &str| {
        DnsLabel::new(what, value).map_err(|source| RecordsError::ServiceName {
            service: key.clone(),
            source,
        })
    };
    let names = Names::new(
        config,
        label("namespace", &key.namespace)?,
        label("Service name", &key.name)?,
    );
    let shards: Vec<Checked<'_>> = service
        .shards
        .iter()
        .map(|s| Checked::new(key, s))
        .collect::<Result<_, _>>()?;
    let global = names.make(&[])?;
    let mut scopes: BTreeMap<DomainName, Scope> = BTreeMap::new();
    scopes.insert(global.clone(), Scope::new(Fallback::None));
    // Regions first, so that a zone named like a region (possible only in the
    // zone-only form) cannot take the region's name.
    for region in shards.iter().filter_map(|s| s.region.as_ref()) {
        scopes
            .entry(names.make(&[region])?)
            .or_insert_with(|| Scope::new(Fallback::Global));
    }
    for shard in &shards {
        let Some(region_label) = &shard.region else {
            continue;
        };
        let region = names.make(&[region_label])?;
        for zone in &shard.zones {
            let name = names.zone(zone, region_label)?;
            let scope = scopes
                .entry(name)
                .or_insert_with(|| Scope::new(Fallback::Region(region.clone())));
            if matches!(&scope.fallback, Fallback::Region(r) if *r > region) {
                scope.fallback = Fallback::Region(region.clone());
            }
        }
    }
    for shard in shards.iter().filter(|s| s.shard.healthy()) {
        let mut add = |name: &DomainName| {
            if let Some(scope) = scopes.get_mut(name) {
                scope.add(shard);
            }
        };
        add(&global);
        let Some(region_label) = &shard.region else {
            continue;
        };
        let region = names.make(&[region_label])?;
        for zone in &shard.zones {
            let name = names.zone(zone, region_label)?;
            // A zone named like its region already counts there.
            if name != region {
                add(&name);
            }
        }
        add(&region);
    }
    let ttl = ttl.unwrap_or(config.ttl);
    Ok(scopes
        .into_iter()
        .filter_map(|(name, scope)| {
            let data = if !scope.v4.is_empty() || !scope.v6.is_empty() {
                RecordData::Addresses {
                    v4: scope.v4.into_iter().collect(),
                    v6: scope.v6.into_iter().collect(),
                }
            } else if let Some(host) = scope.hostnames.into_iter().next() {
                RecordData::Cname(host)
            } else {
                match scope.fallback {
                    Fallback::Region(region) => RecordData::Cname(region),
                    Fallback::Global => RecordData::Cname(global.clone()),
                    Fallback::None => return None,
                }
            };
            Some(NameRecords { name, ttl, data })
        })
        .collect())
}
