//! Endpoints and EndpointSlices of Services, from their pods (`cluster::endpoints`,
//! `cluster::endpointslice`), and EndpointSlices mirrored from selector-less
//! Services' Endpoints (`cluster::mirroring`).

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::writes::{apply, list_typed};
use crate::cluster::endpointslice::SliceOptions;
use crate::cluster::{ObjectKey, endpoints, endpointslice, mirroring};
use crate::objects::{ApiError, Objects};

/// Field manager of the Endpoints this controller writes (also how it tells
/// them from user-written ones).
pub const ENDPOINTS_MANAGER: &str = "endpoint-controller";
/// Field manager of the EndpointSlices.
const SLICE_MANAGER: &str = "endpointslice-controller";
const MIRROR_MANAGER: &str = "endpointslicemirroring-controller";

pub(super) fn reconcile(objects: &Objects) -> BoxFuture<'_, Result<(), ApiError>> {
    Box::pin(reconcile_all(objects))
}

fn key_of<T: kube_like::Named>(o: &T) -> ObjectKey {
    let (ns, name) = o.ns_name();
    ObjectKey::new(ns, name)
}

/// Just enough of metadata access for the typed objects here.
mod kube_like {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    pub trait Named {
        fn meta(&self) -> &ObjectMeta;
        fn ns_name(&self) -> (String, String) {
            let m = self.meta();
            (
                m.namespace.clone().unwrap_or_default(),
                m.name.clone().unwrap_or_default(),
            )
        }
    }

    macro_rules! named {
        ($($t:ty),*) => {$(
            impl Named for $t {
                fn meta(&self) -> &ObjectMeta {
                    &self.metadata
                }
            }
        )*};
    }
    named!(
        k8s_openapi::api::core::v1::Service,
        k8s_openapi::api::core::v1::Endpoints,
        k8s_openapi::api::discovery::v1::EndpointSlice
    );
}

fn by_key<T: kube_like::Named + Clone>(items: &[T]) -> BTreeMap<ObjectKey, T> {
    items.iter().map(|o| (key_of(o), o.clone())).collect()
}

fn written_by(endpoints: &Endpoints, manager: &str) -> bool {
    endpoints
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .any(|m| m.manager.as_deref() == Some(manager))
}

async fn reconcile_all(objects: &Objects) -> Result<(), ApiError> {
    let services: Vec<Service> = list_typed(objects, "", "services").await?;
    let pods: Vec<Pod> = list_typed(objects, "", "pods").await?;
    let nodes: Vec<Node> = list_typed(objects, "", "nodes").await?;
    let stored_endpoints: Vec<Endpoints> = list_typed(objects, "", "endpoints").await?;
    let slices: Vec<EndpointSlice> =
        list_typed(objects, "discovery.k8s.io", "endpointslices").await?;
    let endpoints_by_key = by_key(&stored_endpoints);
    let services_by_key = by_key(&services);
    let options = SliceOptions {
        // Nothing registers Nodes in an embedded cluster; pods still count.
        skip_pods_without_node: !nodes.is_empty(),
        ..SliceOptions::default()
    };
    for svc in &services {
        let key = key_of(svc);
        if let Some(w) =
            endpoints::sync_endpoints(&key, Some(svc), &pods, endpoints_by_key.get(&key), None)
        {
            apply_one(objects, "", "endpoints", w, ENDPOINTS_MANAGER).await;
        }
        let plan = endpointslice::sync_endpoint_slices(
            &key,
            Some(svc),
            &pods,
            &nodes,
            &slices,
            None,
            &options,
        );
        for w in plan.into_writes() {
            apply_one(
                objects,
                "discovery.k8s.io",
                "endpointslices",
                w,
                SLICE_MANAGER,
            )
            .await;
        }
    }
    for (key, ep) in &endpoints_by_key {
        if !services_by_key.contains_key(key) && written_by(ep, ENDPOINTS_MANAGER) {
            let w = endpoints::sync_endpoints(key, None, &pods, Some(ep), None);
            if let Some(w) = w {
                apply_one(objects, "", "endpoints", w, ENDPOINTS_MANAGER).await;
            }
        }
    }
    let mut mirror_keys: Vec<ObjectKey> = endpoints_by_key.keys().cloned().collect();
    for s in &slices {
        if s.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(endpointslice::LABEL_MANAGED_BY))
            .is_some_and(|m| m == mirroring::MIRRORING_CONTROLLER_NAME)
            && let Some(svc) = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"))
        {
            mirror_keys.push(ObjectKey::new(
                s.metadata.namespace.clone().unwrap_or_default(),
                svc.clone(),
            ));
        }
    }
    mirror_keys.sort();
    mirror_keys.dedup();
    for key in mirror_keys {
        let plan = mirroring::sync_mirrored_slices(
            &key,
            services_by_key.get(&key),
            endpoints_by_key.get(&key),
            &slices,
        );
        for w in plan.into_writes() {
            apply_one(
                objects,
                "discovery.k8s.io",
                "endpointslices",
                w,
                MIRROR_MANAGER,
            )
            .await;
        }
    }
    Ok(())
}

/// Writes one planned change; a lost race is fine (the next pass redoes it).
async fn apply_one<T: Serialize + DeserializeOwned>(
    objects: &Objects,
    group: &str,
    plural: &str,
    w: crate::cluster::Write<T>,
    manager: &str,
) {
    if let Err(e) = apply(objects, group, plural, w, manager).await {
        tracing::debug!(%plural, error = %e, "controller write failed; retrying on the next pass");
    }
}
