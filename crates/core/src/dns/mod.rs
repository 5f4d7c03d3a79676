//! Federated service DNS (Federation v1, seeds 002/003): the record sets that
//! let clients anywhere find the nearest healthy shard of a federated Service.
//!
//! ```text
//!  federated Service (shards annotation, TTL) ─┐ DnsFeed (+ Clusters: gone,
//!  Cluster objects ────────────────────────────┘   Offline)
//!      │ federation::ServiceShards ─ DnsIndex::upsert / remove
//!      ▼
//!  DnsChange (names upserted with their records, names removed) ──▶ DNS server / provider
//! ```
//!
//! Pure and deterministic: the shards are the control plane's own
//! [`crate::federation::ServiceShards`]; nothing here does I/O.
//!
//! Inside a member cluster, [`InClusterIndex`] answers the federation's
//! names under the cluster domain (`svc.ns.fed.svc.cluster.local`) from the
//! member's own Services, EndpointSlices and Nodes.

mod feed;
mod in_cluster;
mod index;
mod input;
mod name;
mod records;

pub use feed::{DnsFeed, FeedChange, FeedError};
pub use in_cluster::{
    DEFAULT_IN_CLUSTER_TTL, InClusterChange, InClusterConfig, InClusterError, InClusterIndex,
    LocalService, Place, in_cluster_records,
};
pub use index::{DnsChange, DnsIndex};
pub use input::{DEFAULT_TTL, DnsConfig, TTL_ANNOTATION, ZoneForm};
pub use name::{DnsLabel, DomainName, NameError};
pub use records::{NameRecords, RecordData, RecordsError, service_records};

#[cfg(test)]
mod tests;
