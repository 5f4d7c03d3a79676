//! What DNS serves from a federation API: each federated Service with the
//! shards the federation controller published on it ([`SHARDS_ANNOTATION`],
//! TTL from [`TTL_ANNOTATION`]), checked against the federation's Clusters.
//!
//! Every DNS replica computes this from the API alone, so none holds state
//! that could be lost. The Clusters are read as well so that a member that
//! left (its Cluster deleted) or is Offline stops counting at once, even
//! before the controller rewrites the shards annotation of every Service.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Service;

use super::index::{DnsChange, DnsIndex};
use super::input::{DnsConfig, TTL_ANNOTATION};
use super::records::RecordsError;
use crate::federation::{Health, SHARDS_ANNOTATION, ServiceShards, ShardsAnnotationError};
use crate::names::{ClusterName, FederatedKey};

/// Why a federated Service's published state cannot be served; its previous
/// records (if any) stay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// The shards annotation is unreadable.
    #[error("{0}")]
    Shards(ShardsAnnotationError),
    /// The TTL annotation is not a number of seconds.
    #[error(
        "annotation {TTL_ANNOTATION} is {0:?}: give the TTL in seconds, a whole number from 0 to 2147483647"
    )]
    Ttl(String),
    /// The records cannot be made (a name is not a DNS name or too long).
    #[error("{0}")]
    Records(RecordsError),
}

/// What one change of the federation API did to the records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedChange {
    /// The names upserted and removed.
    pub records: DnsChange,
    /// The federated Services whose records changed.
    pub services: Vec<FederatedKey>,
    /// Federated Services that cannot be served as published, and why.
    pub problems: Vec<(FederatedKey, FeedError)>,
}

impl FeedChange {
    fn add(&mut self, key: &FederatedKey, change: DnsChange) {
        if change.is_empty() {
            return;
        }
        self.services.push(key.clone());
        self.records.upserted.extend(change.upserted);
        self.records.removed.extend(change.removed);
    }
}

/// A Service's published shards and TTL.
#[derive(Debug, Clone)]
struct Published {
    shards: ServiceShards,
    ttl: Option<u32>,
}

/// The records of a federation, as its API shows it.
#[derive(Debug, Clone)]
pub struct DnsFeed {
    index: DnsIndex,
    published: BTreeMap<FederatedKey, Published>,
    /// Member clusters: whether each is Offline. `None` until the Clusters
    /// are listed; until then the annotation's word is taken.
    clusters: Option<HashMap<ClusterName, bool>>,
}

fn key_of(service: &Service) -> Option<FederatedKey> {
    Some(FederatedKey::new(
        service.metadata.namespace.as_deref()?,
        service.metadata.name.as_deref()?,
    ))
}

/// A Service's published state: `None` when it has none (not federated,
/// not yet published, or being deleted: a deleted Service loses its names).
fn read(key: &FederatedKey, service: &Service) -> Option<Result<Published, FeedError>> {
    if service.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let annotations = service.metadata.annotations.as_ref()?;
    let shards = annotations.get(SHARDS_ANNOTATION)?;
    Some((|| {
        let ttl = annotations
            .get(TTL_ANNOTATION)
            .map(|t| {
                t.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|t| i32::try_from(*t).is_ok())
                    .ok_or_else(|| FeedError::Ttl(t.clone()))
            })
            .transpose()?;
        let shards =
            ServiceShards::from_annotation(key.clone(), shards).map_err(FeedError::Shards)?;
        Ok(Published { shards, ttl })
    })())
}

/// A Cluster object's name, and whether its `Offline` condition is true.
fn read_cluster(object: &serde_json::Value) -> Option<(ClusterName, bool)> {
    let name = object.pointer("/metadata/name")?.as_str()?;
    let name = ClusterName::new(name).ok()?;
    let offline = object
        .pointer("/status/conditions")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("type").and_then(serde_json::Value::as_str) == Some("Offline")
                && c.get("status").and_then(serde_json::Value::as_str) == Some("True")
        });
    Some((name, offline))
}

impl DnsFeed {
    /// A feed with no Services and the Clusters not yet listed.
    pub fn new(config: DnsConfig) -> Self {
        Self {
            index: DnsIndex::new(config),
            published: BTreeMap::new(),
            clusters: None,
        }
    }

    /// The records.
    pub fn index(&self) -> &DnsIndex {
        &self.index
    }

    /// A Service was created or changed.
    pub fn apply_service(&mut self, service: &Service) -> FeedChange {
        let mut change = FeedChange::default();
        if let Some(key) = key_of(service) {
            self.set_service(&key, service, &mut change);
        }
        change
    }

    /// A Service was deleted.
    pub fn delete_service(&mut self, service: &Service) -> FeedChange {
        let mut change = FeedChange::default();
        if let Some(key) = key_of(service) {
            self.forget(&key, &mut change);
        }
        change
    }

    /// Every Service there is (a listing).
    pub fn reset_services(&mut self, services: &[Service]) -> FeedChange {
        let mut change = FeedChange::default();
        let listed: BTreeMap<FederatedKey, &Service> = services
            .iter()
            .filter_map(|s| Some((key_of(s)?, s)))
            .collect();
        let gone: Vec<FederatedKey> = self
            .published
            .keys()
            .filter(|k| !listed.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            self.forget(&key, &mut change);
        }
        for (key, service) in listed {
            self.set_service(&key, service, &mut change);
        }
        change
    }

    /// A Cluster (as JSON) was created or changed.
    pub fn apply_cluster(&mut self, object: &serde_json::Value) -> FeedChange {
        let Some((name, offline)) = read_cluster(object) else {
            return FeedChange::default();
        };
        let clusters = self.clusters.get_or_insert_with(HashMap::new);
        if clusters.insert(name.clone(), offline) == Some(offline) {
            return FeedChange::default();
        }
        self.reserve(|p| p.shards.shards.iter().any(|s| s.cluster == name))
    }

    /// A Cluster was deleted: its shards no longer count.
    pub fn delete_cluster(&mut self, object: &serde_json::Value) -> FeedChange {
        let Some((name, _)) = read_cluster(object) else {
            return FeedChange::default();
        };
        let clusters = self.clusters.get_or_insert_with(HashMap::new);
        if clusters.remove(&name).is_none() {
            return FeedChange::default();
        }
        self.reserve(|p| p.shards.shards.iter().any(|s| s.cluster == name))
    }

    /// Every Cluster there is (a listing).
    pub fn reset_clusters(&mut self, objects: &[serde_json::Value]) -> FeedChange {
        let clusters: HashMap<ClusterName, bool> =
            objects.iter().filter_map(read_cluster).collect();
        if self.clusters.as_ref() == Some(&clusters) {
            return FeedChange::default();
        }
        self.clusters = Some(clusters);
        self.reserve(|_| true)
    }

    fn set_service(&mut self, key: &FederatedKey, service: &Service, change: &mut FeedChange) {
        match read(key, service) {
            None => self.forget(key, change),
            Some(Err(error)) => change.problems.push((key.clone(), error)),
            Some(Ok(published)) => {
                self.published.insert(key.clone(), published);
                self.serve(key, change);
            }
        }
    }

    fn forget(&mut self, key: &FederatedKey, change: &mut FeedChange) {
        if self.published.remove(key).is_some() {
            let removed = self.index.remove(key);
            change.add(key, removed);
        }
    }

    /// Serves again every Service `which` picks (the Clusters changed).
    fn reserve(&mut self, which: impl Fn(&Published) -> bool) -> FeedChange {
        let mut change = FeedChange::default();
        let keys: Vec<FederatedKey> = self
            .published
            .iter()
            .filter(|(_, p)| which(p))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.serve(&key, &mut change);
        }
        change
    }

    /// Makes `key`'s records from its published shards, as the Clusters allow.
    fn serve(&mut self, key: &FederatedKey, change: &mut FeedChange) {
        let Some(published) = self.published.get(key) else {
            return;
        };
        let mut shards = published.shards.clone();
        if let Some(clusters) = &self.clusters {
            shards.shards.retain(|s| clusters.contains_key(&s.cluster));
            for shard in &mut shards.shards {
                if clusters.get(&shard.cluster) == Some(&true) {
                    shard.health = Health::ClusterNotReady;
                }
            }
        }
        match self.index.upsert(&shards, published.ttl) {
            Ok(records) => change.add(key, records),
            Err(error) => change
                .problems
                .push((key.clone(), FeedError::Records(error))),
        }
    }
}
