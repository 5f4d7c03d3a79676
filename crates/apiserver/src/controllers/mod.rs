//! What kube-controller-manager would run, as tasks inside the server. They use
//! the same object layer as HTTP clients, so every write follows the same rules.
//!
//! Each controller is incremental, as kube-controller-manager's are: watches
//! of the prefixes it reads (`feed`) update a compact index and queue the
//! keys a change affects (`queue`); workers sync one key at a time from a
//! fresh read of what that key needs (`runner`). Work is proportional to
//! what changed, and the indexes keep only what routing events needs.

mod decode;
mod endpoints;
mod feed;
mod gc;
mod kubelet;
mod loadbalancer;
mod namespaces;
mod queue;
mod reads;
mod runner;
#[cfg(test)]
mod testing;
mod workloads;
mod writes;

use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::kubernetes_service;
use crate::cluster::simulation::DataPlaneOptions;
use crate::objects::{ApiError, Objects, WriteOptions};

/// The namespaces every cluster has.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates what a new cluster has before anyone asks: the system namespaces and
/// the `default/kubernetes` Service with its Endpoints and EndpointSlice
/// pointing at `addr`.
pub async fn bootstrap(objects: &Objects, addr: std::net::SocketAddr) -> Result<(), ApiError> {
    let Some(ns) = objects.registry().resolve("", "v1", "namespaces") else {
        return Ok(());
    };
    for name in SYSTEM_NAMESPACES {
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        match objects
            .create(&ns, None, body, &WriteOptions::default())
            .await
        {
            Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let ip = objects.service_allocator().ips.kubernetes_service_ip();
    let port = addr.port();
    let mut svc = serde_json::to_value(kubernetes_service::kubernetes_service(ip, port))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    svc["metadata"]["namespace"] = json!("default");
    let eps = serde_json::to_value(kubernetes_service::kubernetes_endpoints(addr.ip(), port))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let slice = serde_json::to_value(kubernetes_service::kubernetes_endpoint_slice(
        addr.ip(),
        port,
    ))
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    for (group, plural, mut obj) in [
        ("", "services", svc),
        ("", "endpoints", eps),
        ("discovery.k8s.io", "endpointslices", slice),
    ] {
        let Some(r) = objects.registry().resolve(group, "v1", plural) else {
            continue;
        };
        obj["metadata"]["namespace"] = json!("default");
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or("kubernetes")
            .to_owned();
        let opts = WriteOptions {
            field_manager: Some("kube-apiserver".into()),
            ..WriteOptions::default()
        };
        match objects.get(&r, Some("default"), &name).await {
            Err(ApiError::NotFound(_)) => {
                objects.create(&r, Some("default"), obj, &opts).await?;
            }
            // After a restart on another port, the endpoints follow.
            Ok(current) if plural != "services" => {
                obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
                objects
                    .update(&r, Some("default"), &name, obj, &opts, None)
                    .await?;
            }
            Ok(_) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What the optional controllers do: the simulated data plane and the
/// load-balancer address pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControllerOptions {
    /// Simulated Nodes, scheduler and kubelet (off with 0 nodes).
    pub data_plane: DataPlaneOptions,
    /// The CIDR LoadBalancer Services get their ingress addresses from
    /// (none: they stay pending).
    pub load_balancer_pool: Option<String>,
}

/// Starts every controller; they stop when `shutdown` turns true.
pub fn spawn(
    objects: Objects,
    options: ControllerOptions,
    shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut set = tokio::task::JoinSet::new();
        let store = objects.store().raw().clone();
        if options.data_plane.nodes > 0 {
            if let Err(e) = kubelet::register_nodes(&objects, &options.data_plane).await {
                tracing::error!(error = %e, "registering the simulated nodes failed");
            }
            runner::start(
                &mut set,
                &store,
                kubelet::KubeletController::new(objects.clone(), options.data_plane.clone()),
                "kubelet",
                &kubelet::SOURCES,
                2,
                &shutdown,
            );
        }
        runner::start(
            &mut set,
            &store,
            namespaces::NamespaceController::new(objects.clone()),
            "namespace",
            &namespaces::SOURCES,
            1,
            &shutdown,
        );
        runner::start(
            &mut set,
            &store,
            endpoints::EndpointsController::new(objects.clone()),
            "endpoints",
            &endpoints::SOURCES,
            2,
            &shutdown,
        );
        runner::start(
            &mut set,
            &store,
            gc::GcController::new(objects.clone()),
            "garbage-collector",
            &[(gc::PREFIX, ())],
            2,
            &shutdown,
        );
        match options
            .load_balancer_pool
            .as_deref()
            .map(crate::cluster::alloc::ClusterIpAllocator::new)
        {
            Some(Ok(pool)) => runner::start(
                &mut set,
                &store,
                loadbalancer::LoadBalancerController::new(objects.clone(), pool),
                "service-lb",
                &loadbalancer::SOURCES,
                1,
                &shutdown,
            ),
            Some(Err(e)) => tracing::error!(error = %e, "no load-balancer pool"),
            None => {}
        }
        runner::start(
            &mut set,
            &store,
            workloads::WorkloadController::new(objects.clone()),
            "deployment-replicaset",
            &workloads::SOURCES,
            2,
            &shutdown,
        );
        while let Some(done) = set.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "a controller stopped");
            }
        }
    })
}
