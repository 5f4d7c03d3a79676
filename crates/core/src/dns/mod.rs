//! Federated service DNS (Federation v1, seeds 002/003): the record sets that
//! let clients anywhere find the nearest healthy shard of a federated Service.
//!
//! ```text
//!  ServiceShards (per Service: clusters, regions, zones, ingress, health)
//!      │ DnsIndex::upsert / remove
//!      ▼
//!  DnsChange (names upserted with their records, names removed) ──▶ DNS server / provider
//! ```
//!
//! Pure and deterministic: the control plane that knows shard health feeds
//! [`ServiceShards`] in; nothing here does I/O.
//!
//! Inside a member cluster, [`InClusterIndex`] answers the federation's
//! names under the cluster domain (`svc.ns.fed.svc.cluster.local`) from the
//! member's own Services, EndpointSlices and Nodes.

mod in_cluster;
mod index;
mod input;
mod name;
mod records;

pub use in_cluster::{
    DEFAULT_IN_CLUSTER_TTL, InClusterChange, InClusterConfig, InClusterError, InClusterIndex,
    LocalService, Place, in_cluster_records,
};
pub use index::{DnsChange, DnsIndex};
pub use input::{DEFAULT_TTL, DnsConfig, Ingress, ServiceId, ServiceShards, Shard, ZoneForm};
pub use name::{DnsLabel, DomainName, NameError};
pub use records::{NameRecords, RecordData, RecordsError, service_records};

#[cfg(test)]
mod tests;
