//! The federation's DNS settings. The records are computed from these and,
//! per federated Service, the shards the control plane keeps
//! ([`crate::federation::ServiceShards`]: one definition for the status, the
//! shards annotation and DNS).

use super::name::{DnsLabel, DomainName};

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

/// The annotation on a federated Service that sets its records' TTL in
/// seconds, instead of the federation's (`"60"`).
pub const TTL_ANNOTATION: &str = "federation.fedmesh.io/dns-ttl";
