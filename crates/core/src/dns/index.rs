//! The records of every federated Service, kept incrementally: a change to
//! one Service's shards gives exactly the names whose records changed, so a
//! server can patch its zone and a provider can send a diff.

use std::collections::BTreeMap;

use super::input::DnsConfig;
use super::name::DomainName;
use super::records::{NameRecords, RecordsError, service_records};
use crate::federation::ServiceShards;
use crate::names::FederatedKey;

/// What changed in the federation's records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsChange {
    /// Names that are new or whose records changed, with their records.
    pub upserted: Vec<NameRecords>,
    /// Names that no longer have records.
    pub removed: Vec<DomainName>,
}

impl DnsChange {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.upserted.is_empty() && self.removed.is_empty()
    }
}

/// The records of every federated Service of one federation.
#[derive(Debug, Clone)]
pub struct DnsIndex {
    config: DnsConfig,
    services: BTreeMap<FederatedKey, Vec<NameRecords>>,
}

impl DnsIndex {
    /// An index with no Services.
    pub fn new(config: DnsConfig) -> Self {
        Self {
            config,
            services: BTreeMap::new(),
        }
    }

    /// The federation's DNS settings.
    pub fn config(&self) -> &DnsConfig {
        &self.config
    }

    /// Sets a Service's shards (new Service or changed shards) and its TTL
    /// (`None`: the federation's). On error the Service's previous records stay.
    pub fn upsert(
        &mut self,
        service: &ServiceShards,
        ttl: Option<u32>,
    ) -> Result<DnsChange, RecordsError> {
        let new = service_records(&self.config, service, ttl)?;
        let old = self.services.remove(&service.service).unwrap_or_default();
        let change = diff(&old, &new);
        self.services.insert(service.service.clone(), new);
        Ok(change)
    }

    /// Removes a Service (deleted, or no longer federated): all its names go.
    pub fn remove(&mut self, id: &FederatedKey) -> DnsChange {
        let old = self.services.remove(id).unwrap_or_default();
        DnsChange {
            upserted: Vec::new(),
            removed: old.into_iter().map(|r| r.name).collect(),
        }
    }

    /// One Service's records, sorted by name.
    pub fn service(&self, id: &FederatedKey) -> &[NameRecords] {
        self.services.get(id).map(Vec::as_slice).unwrap_or_default()
    }

    /// Every record, Service by Service (names of different Services never collide).
    pub fn records(&self) -> impl Iterator<Item = &NameRecords> {
        self.services.values().flatten()
    }
}

/// The change from `old` to `new`, both sorted by name.
pub(super) fn diff(old: &[NameRecords], new: &[NameRecords]) -> DnsChange {
    let mut change = DnsChange::default();
    let (mut i, mut j) = (0, 0);
    loop {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a.name == b.name => {
                if a != b {
                    change.upserted.push(b.clone());
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.name < b.name => {
                change.removed.push(a.name.clone());
                i += 1;
            }
            (Some(a), None) => {
                change.removed.push(a.name.clone());
                i += 1;
            }
            (_, Some(b)) => {
                change.upserted.push(b.clone());
                j += 1;
            }
            (None, None) => return change,
        }
    }
}
