//! What the records are computed from: the federation's DNS settings and, per
//! federated Service, its shards as the control plane sees them.

use std::net::IpAddr;

use super::name::{DnsLabel, DomainName};
use crate::names::ClusterName;

/// The TTL Federation v1 gave its records (seed 002: "180 seconds, by default").
pub const DEFAULT_TTL: u32 = 180;

/// Where a zone's name sits, below the federation's DNS suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZoneForm {
    /// `svc.ns.fed.svc.<zone>.<suffix>`, as the seed lists them.
    #[default]
    ZoneOnly,
    /// `svc.ns.fed.svc.<zone>.<region>.<suffix>`, the later Federation v1 form.
    ZoneInRegion,
}

/// A federation's DNS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// The federation's name: the third label of every record name.
    pub federation: DnsLabel,
    /// The DNS zone the records live in (`example.com`).
    pub suffix: DomainName,
    /// The TTL of every record, unless a Service overrides it.
    pub ttl: u32,
    /// How zone names are formed.
    pub zone_form: ZoneForm,
}

impl DnsConfig {
    /// Settings with the default TTL and the seed's zone-name form.
    pub fn new(federation: DnsLabel, suffix: DomainName) -> Self {
        Self {
            federation,
            suffix,
            ttl: DEFAULT_TTL,
            zone_form: ZoneForm::default(),
        }
    }
}

/// A federated Service: the key of its records.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId {
    /// The Service's namespace.
    pub namespace: DnsLabel,
    /// The Service's name.
    pub name: DnsLabel,
}

/// One federated Service and its shards, one per member cluster it runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceShards {
    /// Which Service.
    pub id: ServiceId,
    /// A TTL for this Service's records (from its annotation), instead of the federation's.
    pub ttl: Option<u32>,
    /// Its shards; a cluster appears at most once (a later entry for the same
    /// cluster is one more shard all the same, so callers keep them unique).
    pub shards: Vec<Shard>,
}

/// The Service in one member cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// The member cluster.
    pub cluster: ClusterName,
    /// The cluster's region.
    pub region: DnsLabel,
    /// The cluster's zones: a multi-zone cluster serves each of them.
    pub zones: Vec<DnsLabel>,
    /// The shard's load-balancer ingress (`status.loadBalancer.ingress`).
    pub ingress: Vec<Ingress>,
    /// Whether the shard has healthy endpoints.
    pub healthy: bool,
}

/// One load-balancer ingress point.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ingress {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A hostname, as AWS load balancers give.
    Hostname(DomainName),
}
