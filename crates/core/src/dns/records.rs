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
//! every time); a healthy shard with no ingress at all counts as not healthy.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::input::{DnsConfig, Ingress, ServiceId, ServiceShards, ZoneForm};
use super::name::{DnsLabel, DomainName, NameError};

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

    fn add(&mut self, ingress: &[Ingress]) {
        for point in ingress {
            match point {
                Ingress::Ip(IpAddr::V4(ip)) => _ = self.v4.insert(*ip),
                Ingress::Ip(IpAddr::V6(ip)) => _ = self.v6.insert(*ip),
                Ingress::Hostname(host) => _ = self.hostnames.insert(host.clone()),
            }
        }
    }
}

/// The names of one Service.
pub(super) struct Names<'a> {
    config: &'a DnsConfig,
    id: &'a ServiceId,
    svc: DnsLabel,
}

impl<'a> Names<'a> {
    /// The names of Service `id` in the federation `config` describes.
    pub(super) fn new(config: &'a DnsConfig, id: &'a ServiceId) -> Self {
        Self {
            config,
            id,
            svc: DnsLabel::literal("svc"),
        }
    }

    /// `svc.ns.fed.svc.<scope...>.<suffix>`: the global name for no scope.
    pub(super) fn make(&self, scope: &[&DnsLabel]) -> Result<DomainName, RecordsError> {
        let mut labels = vec![
            &self.id.name,
            &self.id.namespace,
            &self.config.federation,
            &self.svc,
        ];
        labels.extend_from_slice(scope);
        self.config
            .suffix
            .prepend(&labels)
            .map_err(|source| RecordsError::RecordName {
                namespace: self.id.namespace.clone(),
                name: self.id.name.clone(),
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

/// The records of one federated Service, sorted by name. Deterministic: the
/// same shards in any order give the same records.
pub fn service_records(
    config: &DnsConfig,
    service: &ServiceShards,
) -> Result<Vec<NameRecords>, RecordsError> {
    let names = Names::new(config, &service.id);
    let global = names.make(&[])?;
    let mut scopes: BTreeMap<DomainName, Scope> = BTreeMap::new();
    scopes.insert(global.clone(), Scope::new(Fallback::None));
    // Regions first, so that a zone named like a region (possible only in the
    // zone-only form) cannot take the region's name.
    for shard in &service.shards {
        let region = names.make(&[&shard.region])?;
        scopes
            .entry(region)
            .or_insert_with(|| Scope::new(Fallback::Global));
    }
    for shard in &service.shards {
        let region = names.make(&[&shard.region])?;
        for zone in &shard.zones {
            let name = names.zone(zone, &shard.region)?;
            let scope = scopes
                .entry(name)
                .or_insert_with(|| Scope::new(Fallback::Region(region.clone())));
            if matches!(&scope.fallback, Fallback::Region(r) if *r > region) {
                scope.fallback = Fallback::Region(region.clone());
            }
        }
    }
    for shard in service.shards.iter().filter(|s| s.healthy) {
        let mut add = |name: DomainName| {
            if let Some(scope) = scopes.get_mut(&name) {
                scope.add(&shard.ingress);
            }
        };
        add(global.clone());
        let region = names.make(&[&shard.region])?;
        for zone in &shard.zones {
            let name = names.zone(zone, &shard.region)?;
            // A zone named like its region already counts there.
            if name != region {
                add(name);
            }
        }
        add(region);
    }
    let ttl = service.ttl.unwrap_or(config.ttl);
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
