//! The one task that owns the mesh index: watch events go in; the objects
//! to write (by key, to the keyed writers) and warnings come out.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use fedmesh_core::{
    Changes, FederatedKey, MeshIndex, Origin, Role, ServiceKey, ServiceView, SliceKey, SourceSlice,
};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use tokio::sync::{mpsc, watch};

use crate::runtime::events::Warning;
use crate::runtime::writer::{ObjectKey, WriterHandle};

/// What a watcher saw, in the cluster it watches.
#[derive(Debug)]
pub enum IndexEvent {
    /// A Service was created or changed.
    Service(Origin, Box<Service>),
    /// A Service was deleted.
    ServiceDeleted(ServiceKey),
    /// An EndpointSlice was created or changed.
    Slice(Origin, Box<EndpointSlice>),
    /// An EndpointSlice was deleted.
    SliceDeleted(SliceKey),
    /// A complete listing of a cluster's Services.
    ResetServices(Origin, Vec<Service>),
    /// A complete listing of a cluster's EndpointSlices.
    ResetSlices(Origin, Vec<EndpointSlice>),
    /// Forget a cluster (its configuration went, or its endpoints are withdrawn).
    RemoveCluster(Origin),
}

/// Where the engine's output goes.
pub struct Outputs {
    /// The federated Services' Endpoints.
    pub endpoints: WriterHandle<Endpoints>,
    /// Their EndpointSlices.
    pub slices: WriterHandle<EndpointSlice>,
    /// Warnings about Services.
    pub warnings: mpsc::Sender<Warning>,
}

/// Applies events until every sender is gone. The writers are told the view
/// is complete once the local cluster is listed (`local_listed`) and every
/// remote cluster has had its first outcome (`settled`).
pub async fn run(
    mut events: mpsc::Receiver<IndexEvent>,
    outputs: Outputs,
    mut local_listed: watch::Receiver<bool>,
    mut settled: watch::Receiver<bool>,
) {
    let mut engine = Engine::default();
    let mut synced = false;
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                let seen = engine.seen(&event);
                let changes = apply(&mut engine.index, event);
                for warning in &changes.warnings {
                    tracing::warn!(service = %warning.service, reason = warning.reason, "{}", warning.message);
                    let _ = outputs.warnings.try_send(Warning::on_service(&warning.service, warning.reason, &warning.message));
                }
                for ended in engine.problems_ended(seen, &changes) {
                    let _ = outputs.warnings.try_send(ended);
                }
                let (endpoints, slices) = engine.render(&changes);
                outputs.endpoints.want(endpoints);
                outputs.slices.want(slices);
            }
            Ok(()) = local_listed.changed() => {}
            Ok(()) = settled.changed() => {}
        }
        if !synced && *local_listed.borrow() && *settled.borrow() {
            synced = true;
            tracing::info!(
                "every cluster has been listed or has failed; writing federated endpoints"
            );
            outputs.endpoints.synced();
            outputs.slices.synced();
        }
    }
}

/// Applies one event to the index, converting objects at the edge: an
/// object fedmesh cannot read is logged and skipped.
pub fn apply(index: &mut MeshIndex, event: IndexEvent) -> Changes {
    match event {
        IndexEvent::Service(origin, service) => match ServiceView::new(origin, *service) {
            Ok(view) => index.apply_service(view),
            Err(error) => skip("service", &error),
        },
        IndexEvent::ServiceDeleted(key) => index.delete_service(&key),
        IndexEvent::Slice(origin, slice) => match SourceSlice::new(origin, *slice) {
            Ok(slice) => index.apply_slice(slice),
            Err(error) => skip("endpoint slice", &error),
        },
        IndexEvent::SliceDeleted(key) => index.delete_slice(&key),
        IndexEvent::ResetServices(origin, services) => {
            let views = services
                .into_iter()
                .filter_map(|s| {
                    ServiceView::new(origin.clone(), s)
                        .inspect_err(|e| {
                            skip("service", e);
                        })
                        .ok()
                })
                .collect();
            index.reset_services(&origin, views)
        }
        IndexEvent::ResetSlices(origin, slices) => {
            let sources = slices
                .into_iter()
                .filter_map(|s| {
                    SourceSlice::new(origin.clone(), s)
                        .inspect_err(|e| {
                            skip("endpoint slice", e);
                        })
                        .ok()
                })
                .collect();
            index.reset_slices(&origin, sources)
        }
        IndexEvent::RemoveCluster(origin) => index.remove_cluster(&origin),
    }
}

fn skip(what: &str, error: &dyn std::error::Error) -> Changes {
    tracing::warn!("skipping an unreadable {what}: {error}");
    Changes::default()
}

/// What an event shows of the Services warned about: those whose problem
/// is over, and those gone.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    over: Vec<FederatedKey>,
    gone: Vec<FederatedKey>,
}

/// The index, the names of the slices it last wanted per federated
/// Service (to unwant those a rewrite of everything leaves out), and the
/// Services warned about.
#[derive(Default)]
pub struct Engine {
    /// The mesh index.
    pub index: MeshIndex,
    slice_names: HashMap<FederatedKey, BTreeSet<Arc<str>>>,
    /// The reason each Service was last warned with, while its problem lasts.
    warned: HashMap<FederatedKey, &'static str>,
}

/// Objects to want or unwant, by key.
type Wants<K> = Vec<(ObjectKey, Option<K>)>;

impl Engine {
    /// What `event` shows of the Services warned about (only local ones
    /// are federated, so only they are), looked at before it is applied.
    fn seen(&self, event: &IndexEvent) -> Seen {
        let mut seen = Seen::default();
        if self.warned.is_empty() {
            return seen;
        }
        let key = |service: &Service| {
            let meta = &service.metadata;
            Some(FederatedKey::new(
                meta.namespace.as_deref()?,
                meta.name.as_deref()?,
            ))
        };
        let fine = |service: &Service| {
            !matches!(Role::of(&Origin::Local, service), Role::InvalidSelector(_))
        };
        match event {
            IndexEvent::Service(Origin::Local, service) => {
                if let Some(key) = key(service)
                    && self.warned.contains_key(&key)
                    && fine(service)
                {
                    seen.over.push(key);
                }
            }
            IndexEvent::ResetServices(Origin::Local, services) => {
                let mut listed = BTreeSet::new();
                for service in services {
                    if let Some(key) = key(service)
                        && self.warned.contains_key(&key)
                    {
                        if fine(service) {
                            seen.over.push(key.clone());
                        }
                        listed.insert(key);
                    }
                }
                seen.gone = self
                    .warned
                    .keys()
                    .filter(|key| !listed.contains(*key))
                    .cloned()
                    .collect();
            }
            IndexEvent::ServiceDeleted(key) if key.origin == Origin::Local => {
                seen.gone.push(FederatedKey::new(&key.namespace, &key.name));
            }
            _ => {}
        }
        seen
    }

    /// The ends of the problems of the Services warned about (`seen` before
    /// the event was applied; `changes` has its warnings): a Normal Event
    /// for a problem over, a word without an Event for a Service gone. A
    /// replica not leading yet must hear them to forget the problem.
    fn problems_ended(&mut self, seen: Seen, changes: &Changes) -> Vec<Warning> {
        let mut ended = Vec::new();
        for key in &seen.gone {
            if let Some(reason) = self.warned.remove(key) {
                ended.push(Warning::on_service(key, reason, "").gone());
            }
        }
        for key in &seen.over {
            if let Some(reason) = self.warned.remove(key) {
                ended.push(Warning::on_service(key, reason, "").over(
                    "ServiceSelectorValid",
                    "the service selector annotation no longer has an error",
                ));
            }
        }
        for warning in &changes.warnings {
            self.warned.insert(warning.service.clone(), warning.reason);
        }
        ended
    }

    /// Renders what `changes` says changed: exactly the objects to rewrite.
    pub fn render(&mut self, changes: &Changes) -> (Wants<Endpoints>, Wants<EndpointSlice>) {
        let mut endpoints = Vec::new();
        let mut slices = Vec::new();
        for (key, dirty) in &changes.dirty {
            let slice_key = |name: &str| ObjectKey::namespaced(&key.namespace, name);
            let Some(view) = self.index.federation(key) else {
                endpoints.push((slice_key(&key.name), None));
                for name in self.slice_names.remove(key).unwrap_or_default() {
                    slices.push((slice_key(&name), None));
                }
                continue;
            };
            if dirty.endpoints || dirty.all {
                endpoints.push((slice_key(&key.name), Some(view.endpoints())));
            }
            let known = self.slice_names.entry(key.clone()).or_default();
            if dirty.all {
                let fresh: Vec<EndpointSlice> = view.slices();
                let names: BTreeSet<Arc<str>> = fresh
                    .iter()
                    .filter_map(|s| s.metadata.name.as_deref().map(Into::into))
                    .collect();
                for gone in known.difference(&names) {
                    slices.push((slice_key(gone), None));
                }
                for slice in fresh {
                    if let Some(name) = slice.metadata.name.clone() {
                        slices.push((slice_key(&name), Some(slice)));
                    }
                }
                *known = names;
            } else {
                for name in &dirty.slices {
                    let slice = view.slice(name);
                    if slice.is_some() {
                        known.insert(name.clone());
                    } else {
                        known.remove(name);
                    }
                    slices.push((slice_key(name), slice));
                }
            }
        }
        (endpoints, slices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn federated(selector: &str) -> Box<Service> {
        Box::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {
                    "name": "web", "namespace": "default",
                    "annotations": {"federation.tigera.io/serviceSelector": selector},
                },
                "spec": {"ports": [{"name": "http", "port": 80}]},
            }))
            .unwrap(),
        )
    }

    /// Applies `event`; the warnings' reasons, and the ends of problems.
    fn step(engine: &mut Engine, event: IndexEvent) -> (Vec<&'static str>, Vec<Warning>) {
        let seen = engine.seen(&event);
        let changes = apply(&mut engine.index, event);
        let over = engine.problems_ended(seen, &changes);
        (changes.warnings.iter().map(|w| w.reason).collect(), over)
    }

    #[test]
    fn a_service_warned_about_says_when_its_selector_reads_again() {
        let mut engine = Engine::default();
        let invalid = || IndexEvent::Service(Origin::Local, federated("run == "));
        assert_eq!(
            step(&mut engine, invalid()),
            (vec!["InvalidServiceSelector"], vec![])
        );
        assert_eq!(step(&mut engine, invalid()).1, vec![], "still invalid");
        let valid = IndexEvent::Service(Origin::Local, federated(r#"run == "web""#));
        let (warned, over) = step(&mut engine, valid);
        assert!(warned.is_empty());
        assert_eq!(
            over,
            vec![
                Warning::on_service(
                    &FederatedKey::new("default", "web"),
                    "InvalidServiceSelector",
                    ""
                )
                .over(
                    "ServiceSelectorValid",
                    "the service selector annotation no longer has an error"
                )
            ]
        );
        let valid = IndexEvent::Service(Origin::Local, federated(r#"run == "web""#));
        assert_eq!(step(&mut engine, valid).1, vec![], "told once");

        // Gone from a listing: forgotten, said without an Event.
        step(&mut engine, invalid());
        assert_eq!(
            step(
                &mut engine,
                IndexEvent::ResetServices(Origin::Local, Vec::new())
            )
            .1,
            vec![
                Warning::on_service(
                    &FederatedKey::new("default", "web"),
                    "InvalidServiceSelector",
                    ""
                )
                .gone()
            ]
        );
        assert!(engine.warned.is_empty());
    }
}
