//! A bare-metal load-balancer controller (as MetalLB's): a LoadBalancer
//! Service without a `loadBalancerClass` gets an address of the configured
//! pool in `status.loadBalancer.ingress` (its `spec.loadBalancerIP` when that
//! is in the pool and free); the address is released when the Service is
//! deleted or stops being a LoadBalancer. Without a pool the controller does
//! not run, and such Services stay pending as on a cluster without one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;

use super::decode::namespaced_key;
use super::feed::Sink;
use super::queue::WorkQueue;
use super::runner::{Outcome, Reconciler};
use crate::cluster::ObjectKey;
use crate::cluster::alloc::ClusterIpAllocator;
use crate::objects::{ApiError, Objects, WriteOptions};
use crate::registry::Subresource;
use crate::store::{Event, KeyValue};

const SERVICES: &str = "/registry/core/services/";

/// What the controller watches.
pub(super) const SOURCES: [(&str, ()); 1] = [(SERVICES, ())];

#[derive(Debug, Default, Deserialize)]
struct ServiceView {
    #[serde(default)]
    status: StatusView,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusView {
    #[serde(default)]
    load_balancer: LbView,
}

#[derive(Debug, Default, Deserialize)]
struct LbView {
    #[serde(default)]
    ingress: Vec<IngressView>,
}

#[derive(Debug, Default, Deserialize)]
struct IngressView {
    #[serde(default)]
    ip: Option<String>,
}

/// The pool's addresses and who holds them.
#[derive(Debug)]
struct Pool {
    free: ClusterIpAllocator,
    held: HashMap<ObjectKey, IpAddr>,
}

impl Pool {
    fn release(&mut self, key: &ObjectKey) {
        if let Some(ip) = self.held.remove(key) {
            self.free.release(ip);
        }
    }

    /// Records what the stored Service holds (an address of the pool).
    fn record(&mut self, key: &ObjectKey, value: &[u8]) {
        let view: ServiceView = serde_json::from_slice(value).unwrap_or_default();
        let ip = view
            .status
            .load_balancer
            .ingress
            .iter()
            .filter_map(|i| i.ip.as_deref()?.parse::<IpAddr>().ok())
            .find(|ip| self.free.contains(*ip));
        if self.held.get(key).copied() == ip {
            return;
        }
        self.release(key);
        if let Some(ip) = ip
            && self
                .free
                .allocate(ip, "status.loadBalancer.ingress", "")
                .is_ok()
        {
            self.held.insert(key.clone(), ip);
        }
    }
}

/// The controller.
pub(super) struct LoadBalancerController {
    objects: Objects,
    pool: Mutex<Pool>,
    empty: ClusterIpAllocator,
    queue: WorkQueue<ObjectKey>,
}

impl LoadBalancerController {
    pub fn new(objects: Objects, pool: ClusterIpAllocator) -> Arc<Self> {
        Arc::new(LoadBalancerController {
            objects,
            empty: pool.clone(),
            pool: Mutex::new(Pool {
                free: pool,
                held: HashMap::new(),
            }),
            queue: WorkQueue::new(),
        })
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        // Every pool method leaves it consistent before it can panic.
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn sync_key(&self, key: &ObjectKey) -> Result<Outcome, ApiError> {
        let services = self
            .objects
            .registry()
            .resolve("", "v1", "services")
            .ok_or(ApiError::NoRoute)?;
        let svc = match self
            .objects
            .get(&services, Some(&key.namespace), &key.name)
            .await
        {
            Ok(s) => s,
            Err(ApiError::NotFound(_)) => {
                self.pool().release(key);
                return Ok(Outcome::Done);
            }
            Err(e) => return Err(e),
        };
        let wanted = svc["spec"]["type"] == "LoadBalancer"
            && svc["spec"]["loadBalancerClass"].is_null()
            && svc["metadata"]["deletionTimestamp"].is_null();
        let held = self.pool().held.get(key).copied();
        let status = match (wanted, held) {
            (true, Some(_)) | (false, None) => return Ok(Outcome::Done),
            (true, None) => {
                let ip = {
                    let mut pool = self.pool();
                    let asked = svc["spec"]["loadBalancerIP"]
                        .as_str()
                        .and_then(|ip| ip.parse::<IpAddr>().ok())
                        .filter(|ip| pool.free.allocate(*ip, "spec.loadBalancerIP", "").is_ok());
                    let ip = match asked {
                        Some(ip) => ip,
                        None => pool.free.allocate_next(&mut rand::rng()).map_err(|_| {
                            ApiError::Internal(format!(
                                "the load-balancer pool {} has no free address for service {}/{}",
                                self.empty.cidr(),
                                key.namespace,
                                key.name
                            ))
                        })?,
                    };
                    pool.held.insert(key.clone(), ip);
                    ip
                };
                json!({"loadBalancer": {"ingress": [{"ip": ip.to_string(), "ipMode": "VIP"}]}})
            }
            (false, Some(_)) => {
                self.pool().release(key);
                json!({"loadBalancer": {}})
            }
        };
        let mut next = svc;
        next["status"] = status;
        let opts = WriteOptions {
            field_manager: Some("service-lb-controller".into()),
            ..WriteOptions::default()
        };
        match self
            .objects
            .update(
                &services,
                Some(&key.namespace),
                &key.name,
                next,
                &opts,
                Some(Subresource::Status),
            )
            .await
        {
            Ok(_) => Ok(Outcome::Done),
            Err(ApiError::NotFound(_)) => {
                self.pool().release(key);
                Ok(Outcome::Done)
            }
            Err(e) => {
                // The write's event did not come: the next sync starts over.
                self.pool().release(key);
                Err(e)
            }
        }
    }
}

impl Sink<()> for LoadBalancerController {
    fn begin_list(&self, (): ()) {
        let mut pool = self.pool();
        pool.free = self.empty.clone();
        pool.held.clear();
    }

    fn listed(&self, (): (), kv: &KeyValue) {
        if let Some(key) = namespaced_key(SERVICES, &kv.key) {
            self.pool().record(&key, &kv.value);
            self.queue.add(key);
        }
    }

    fn end_list(&self, (): ()) {}

    fn changed(&self, (): (), event: &Event) {
        let Some(key) = namespaced_key(SERVICES, event.key()) else {
            return;
        };
        match event {
            Event::Put { kv, .. } => self.pool().record(&key, &kv.value),
            Event::Delete { .. } => {
                self.pool().release(&key);
                return;
            }
        }
        self.queue.add(key);
    }
}

impl Reconciler for LoadBalancerController {
    type Key = ObjectKey;

    fn queue(&self) -> &WorkQueue<ObjectKey> {
        &self.queue
    }

    fn sync<'a>(&'a self, key: &'a ObjectKey) -> BoxFuture<'a, Result<Outcome, ApiError>> {
        Box::pin(self.sync_key(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::testing::{eventually, objects_with_namespace};

    #[tokio::test]
    async fn load_balancers_get_pool_addresses_released_on_delete() {
        let objects = objects_with_namespace("lb").await;
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut set = tokio::task::JoinSet::new();
        let pool = ClusterIpAllocator::new("192.168.50.0/30").unwrap();
        crate::controllers::runner::start(
            &mut set,
            objects.store().raw(),
            LoadBalancerController::new(objects.clone(), pool),
            "service-lb",
            &SOURCES,
            1,
            &rx,
        );
        let services = objects.registry().resolve("", "v1", "services").unwrap();
        let opts = WriteOptions::default();
        let lb = |name: &str| {
            json!({"metadata": {"name": name},
                "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}})
        };
        let ingress = async |name: &str| {
            let s = objects.get(&services, Some("lb"), name).await.ok()?;
            s["status"]["loadBalancer"]["ingress"][0]["ip"]
                .as_str()
                .map(str::to_owned)
        };
        for name in ["a", "b"] {
            objects
                .create(&services, Some("lb"), lb(name), &opts)
                .await
                .unwrap();
        }
        assert!(
            eventually(async || ingress("a").await.is_some() && ingress("b").await.is_some()).await
        );
        let (a, b) = (ingress("a").await.unwrap(), ingress("b").await.unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with("192.168.50.") && b.starts_with("192.168.50."));
        // The /30 has two addresses: a third Service waits until one is freed.
        objects
            .create(&services, Some("lb"), lb("c"), &opts)
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(ingress("c").await, None);
        objects
            .delete(&services, Some("lb"), "a", &Default::default())
            .await
            .unwrap();
        // A ClusterIP Service gets nothing.
        objects
            .create(
                &services,
                Some("lb"),
                json!({"metadata": {"name": "plain"}, "spec": {"ports": [{"port": 80}]}}),
                &opts,
            )
            .await
            .unwrap();
        assert!(eventually(async || ingress("c").await.as_deref() == Some(a.as_str())).await);
        assert_eq!(ingress("plain").await, None);
        tx.send(true).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), set.join_all())
            .await
            .expect("the controller stops on shutdown");
    }
}
