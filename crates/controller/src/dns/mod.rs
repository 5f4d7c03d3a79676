//! Federated service DNS from live federation state: the federation API's
//! Services (with the shards the federation controller publishes on them)
//! and Clusters, watched through the runtime's one watch adapter, feed
//! core's `DnsFeed`; each change patches fedmesh's authoritative server at
//! once and wakes the external provider's writer.
//!
//! ```text
//!  federation API: Services ─┐ watch  ┌─ DnsFeed (core) ─ DnsChange ─▶ Server::update
//!                  Clusters ─┴────────┘      │ Services whose records changed
//!                                            ▼
//!                               provider::run (leader only): plan, apply the
//!                               difference, backoff, Events + metrics
//! ```
//!
//! Nothing is kept but what the API says: any number of replicas serve the
//! same answers, and a restarted one lists again.

pub mod provider;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use fedmesh_core::FederatedKey;
use fedmesh_core::dns::{DnsConfig, DnsFeed, FeedChange, NameRecords};
use fedmesh_dns::Server;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use tokio::sync::{mpsc, watch};

use crate::Metrics;
use crate::runtime::events::Warning;
use crate::runtime::watch::{self as watches, Progress, Signal, Update};
use crate::runtime::{FeatureHealth, Tasks};

/// The reason of the Warning on a Service whose records cannot be made.
const INVALID: &str = "InvalidDNSRecords";

/// The records as last computed, and the federated Services whose records
/// changed since the provider's writer last wrote them.
struct State {
    feed: DnsFeed,
    pending: BTreeSet<FederatedKey>,
}

/// The live records, shared by the feed and the provider's writer.
#[derive(Clone)]
pub struct Records {
    state: Arc<Mutex<State>>,
    /// Moves on every change of the records.
    changed: watch::Receiver<u64>,
}

impl Records {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every record now, and the Services changed since the last
    /// [`written`](Self::written).
    pub fn snapshot(&self) -> (Vec<NameRecords>, BTreeSet<FederatedKey>) {
        let state = self.lock();
        (
            state.feed.index().records().cloned().collect(),
            state.pending.clone(),
        )
    }

    /// The records of `services` (taken with [`snapshot`](Self::snapshot))
    /// are written. A Service that changed again meanwhile leaves the set
    /// too: the change that moved it also wakes the writer for another round.
    pub fn written(&self, services: &BTreeSet<FederatedKey>) {
        self.lock().pending.retain(|k| !services.contains(k));
    }

    /// A receiver that moves on every change of the records.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.clone()
    }
}

/// Starts the feed: watches of the federation API's Services and Clusters
/// (through `federation`), applied to a `DnsFeed` for `config`; every change
/// goes to `server` (when one runs here) and to the returned [`Records`].
/// Problems with a Service's published state are Warning Events on it,
/// told once, and a Normal Event when its records are made again (so that
/// a replica that does not lead yet forgets a problem over, see
/// [`crate::runtime::events`]).
pub fn start(
    tasks: &mut Tasks,
    federation: kube::Client,
    config: DnsConfig,
    server: Option<Arc<Server>>,
    metrics: Metrics,
    warnings: mpsc::Sender<Warning>,
) -> (FeatureHealth, Records) {
    let (changed_tx, changed) = watch::channel(0);
    let records = Records {
        state: Arc::new(Mutex::new(State {
            feed: DnsFeed::new(config),
            pending: BTreeSet::new(),
        })),
        changed,
    };
    let (listed_tx, local_listed) = watch::channel(false);
    let feed = Feed {
        records: records.clone(),
        changed: changed_tx,
        server,
        metrics,
        warnings,
        problems: HashMap::new(),
        listed: listed_tx,
        services_listed: false,
        clusters_listed: false,
    };
    tasks.spawn("dns feed", feed.run(federation));
    (
        FeatureHealth {
            local_listed,
            writers: Vec::new(),
        },
        records,
    )
}

/// One item from either watch (boxed: a Service is large).
enum Input {
    Services(Box<Signal<Service>>),
    Clusters(Box<Signal<DynamicObject>>),
}

struct Feed {
    records: Records,
    changed: watch::Sender<u64>,
    server: Option<Arc<Server>>,
    metrics: Metrics,
    warnings: mpsc::Sender<Warning>,
    /// The problem each Service has now, told once.
    problems: HashMap<FederatedKey, String>,
    listed: watch::Sender<bool>,
    services_listed: bool,
    clusters_listed: bool,
}

impl Feed {
    async fn run(mut self, federation: kube::Client) {
        let services = watches::watch(
            Api::<Service>::all(federation.clone()),
            watcher::Config::default(),
        )
        .map(|s| Input::Services(Box::new(s)));
        let clusters = watches::watch(
            Api::<DynamicObject>::all_with(federation, &crate::federation::api_resource()),
            watcher::Config::default(),
        )
        .map(|s| Input::Clusters(Box::new(s)));
        let mut inputs = std::pin::pin!(futures::stream::select(services, clusters));
        while let Some(input) = inputs.next().await {
            self.apply(input);
        }
    }

    fn apply(&mut self, input: Input) {
        if let Input::Services(signal) = &input
            && let Signal::Update(Update::Delete(service)) = signal.as_ref()
        {
            self.forget(service);
        }
        let change = {
            let mut state = self.records.lock();
            let feed = &mut state.feed;
            let signal = match input {
                Input::Services(signal) => match *signal {
                    Signal::Update(update) => Ok(Ok(update)),
                    Signal::Progress(progress) => Err(progress),
                },
                Input::Clusters(signal) => match *signal {
                    Signal::Update(update) => Ok(Err(update)),
                    Signal::Progress(progress) => Err(progress),
                },
            };
            let change = match signal {
                Ok(Ok(update)) => match update {
                    Update::Reset(all) => {
                        self.services_listed = true;
                        feed.reset_services(&all)
                    }
                    Update::Apply(service) => feed.apply_service(&service),
                    Update::Delete(service) => feed.delete_service(&service),
                },
                Ok(Err(update)) => {
                    let json = |o: &DynamicObject| serde_json::to_value(o).unwrap_or_default();
                    match update {
                        Update::Reset(all) => {
                            self.clusters_listed = true;
                            let all: Vec<serde_json::Value> = all.iter().map(json).collect();
                            feed.reset_clusters(&all)
                        }
                        Update::Apply(object) => feed.apply_cluster(&json(&object)),
                        Update::Delete(object) => feed.delete_cluster(&json(&object)),
                    }
                }
                Err(progress) => {
                    if let Progress::Failed(failure) = progress {
                        // The last records known keep being served: a
                        // federation API that is down says nothing new.
                        tracing::warn!(
                            "watching the federation API failed; serving the last records known meanwhile: {}",
                            failure.detail
                        );
                    }
                    FeedChange::default()
                }
            };
            state.pending.extend(change.services.iter().cloned());
            self.metrics
                .set_dns_names(state.feed.index().records().count());
            change
        };
        if self.services_listed && self.clusters_listed {
            // Stays true while the watches fail: the answers are the last
            // known, which beats none.
            self.listed.send_replace(true);
        }
        self.report(&change);
        if change.records.is_empty() {
            return;
        }
        if let Some(server) = &self.server {
            let report = server.update(&change.records);
            if !report.outside.is_empty() {
                tracing::warn!(
                    names = report.outside.len(),
                    "records outside the served zone left out: is the DNS suffix inside --zone?"
                );
            }
        }
        self.changed.send_modify(|g| *g += 1);
    }

    /// A Service deleted: its problem, if any, goes without an Event.
    fn forget(&mut self, service: &Service) {
        let meta = &service.metadata;
        let (Some(namespace), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref())
        else {
            return;
        };
        let key = FederatedKey::new(namespace, name);
        if self.problems.remove(&key).is_some() {
            let gone = Warning::on_service(&key, INVALID, "").gone();
            let _ = self.warnings.try_send(gone);
        }
    }

    /// Warns once per Service and problem; says when a Service warned
    /// about has its records made again.
    fn report(&mut self, change: &FeedChange) {
        let troubled: BTreeSet<&FederatedKey> = change.problems.iter().map(|(k, _)| k).collect();
        for key in &change.services {
            if self.problems.remove(key).is_some() && !troubled.contains(key) {
                let over = Warning::on_service(key, INVALID, "").over(
                    "DNSRecordsValid",
                    "its DNS records are made from what is published again",
                );
                let _ = self.warnings.try_send(over);
            }
        }
        for (key, error) in &change.problems {
            let note = format!("{error}; its DNS records stay as they were");
            if self.problems.get(key) == Some(&note) {
                continue;
            }
            tracing::warn!(service = %key, "{note}");
            let _ = self
                .warnings
                .try_send(Warning::on_service(key, INVALID, &note));
            self.problems.insert(key.clone(), note);
        }
    }
}
