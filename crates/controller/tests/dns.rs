//! Federated service DNS in process: an embedded federation API server
//! holding federated Services with the shards the federation controller
//! publishes, the DNS feed and a provider's writer running as `fedmesh dns
//! serve` runs them, and a provider in memory that can be taken down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fedmesh_controller::dns::provider::{self, ProviderSettings};
use fedmesh_controller::{ControllerConfig, Metrics};
use fedmesh_core::dns::{DnsConfig, DnsLabel, DomainName};
use fedmesh_dns::providers::runner::Backoff;
use fedmesh_dns::providers::{Change, ChangeSet, Provider, ProviderError, RecordSet, Zone};
use k8s_openapi::api::core::v1::{Event, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

mod support;

use support::{add_cluster, create, eventually, federation_server};

/// A provider holding `example.com` in memory; while `down`, every call
/// fails as an unreachable server does.
#[derive(Default)]
struct Memory {
    down: AtomicBool,
    sets: Mutex<Vec<RecordSet>>,
}

#[derive(Clone, Default)]
struct Shared(Arc<Memory>);

impl Shared {
    fn check(&self) -> Result<(), ProviderError> {
        if self.0.down.load(Ordering::SeqCst) {
            return Err(ProviderError::Unreachable {
                provider: "memory",
                endpoint: "memory://test".into(),
                reason: "connection refused".into(),
            });
        }
        Ok(())
    }

    fn names(&self) -> Vec<String> {
        let sets = self.0.sets.lock().unwrap();
        sets.iter().map(|s| s.name.to_string()).collect()
    }
}

impl Provider for Shared {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn zones(&self) -> Result<Vec<Zone>, ProviderError> {
        self.check()?;
        Ok(vec![Zone {
            id: "example.com".into(),
            name: zone(),
        }])
    }

    async fn records(&self, _: &Zone) -> Result<Vec<RecordSet>, ProviderError> {
        self.check()?;
        Ok(self.0.sets.lock().unwrap().clone())
    }

    async fn apply(&self, _: &Zone, changes: &ChangeSet) -> Result<(), ProviderError> {
        self.check()?;
        let mut sets = self.0.sets.lock().unwrap();
        for change in changes.changes() {
            let set = change.set();
            sets.retain(|s| !(s.name == set.name && s.rtype == set.rtype));
            if !matches!(change, Change::Remove(_)) {
                sets.push(set.clone());
            }
        }
        Ok(())
    }
}

fn zone() -> DomainName {
    DomainName::new("zone", "example.com").unwrap()
}

/// A federated Service as the federation controller publishes it: one
/// healthy shard in cluster `east`, zone `zone` of region us-east1.
fn published(name: &str, zone: &str) -> serde_json::Value {
    let shards = json!([{
        "cluster": "east", "healthy": true, "health": "Healthy",
        "zones": [zone], "region": "us-east1", "addresses": ["10.0.0.1"],
    }]);
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {
            "name": name, "namespace": "default",
            "annotations": {"federation.fedmesh.io/shards": shards.to_string()},
        },
        "spec": {"ports": [{"port": 80}]},
    })
}

/// Events in `namespace` with `reason`.
async fn events(client: &kube::Client, namespace: &str, reason: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

/// The conditions on the status of Service `default/name`.
async fn conditions(client: &kube::Client, name: &str) -> Vec<Condition> {
    Api::<Service>::namespaced(client.clone(), "default")
        .get_status(name)
        .await
        .ok()
        .and_then(|s| s.status?.conditions)
        .unwrap_or_default()
}

fn dns_written(conditions: &[Condition]) -> Option<&str> {
    conditions
        .iter()
        .find(|c| c.type_ == provider::CONDITION)
        .map(|c| c.status.as_str())
}

#[tokio::test]
async fn provider_outages_and_bad_records_are_told_without_losing_others_conditions() {
    let (_server, client) = federation_server().await;
    // The member the shards are in (nothing connects to it: DNS reads the
    // Clusters only to drop members that left or are Offline).
    add_cluster(&client, "east", "https://127.0.0.1:1", "east", json!({})).await;
    let services = Api::<Service>::namespaced(client.clone(), "default");
    create(services.clone(), published("good", "us-east1-b")).await;
    // Someone else's condition on the federated Service: the DNS writer's
    // own condition goes beside it.
    let theirs = json!({
        "type": "example.com/Audited", "status": "True", "reason": "Checked",
        "message": "set by another controller", "lastTransitionTime": "2026-01-02T03:04:05Z",
    });
    services
        .patch_status(
            "good",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [theirs]}})),
        )
        .await
        .expect("their condition");
    let theirs: Condition = serde_json::from_value(theirs).unwrap();
    // A zone label that is not a DNS label: no records can be made.
    create(services.clone(), published("bad", "US East")).await;

    let memory = Shared::default();
    memory.0.down.store(true, Ordering::SeqCst);
    let mut config = ControllerConfig::new("fedmesh", "test-replica");
    config.lease_name = "fedmesh-dns".into();
    config.renew_interval = Duration::from_millis(200);
    config.lease_duration = Duration::from_secs(2);
    config.renew_deadline = Duration::from_millis(1500);
    let dns = DnsConfig::new(DnsLabel::new("federation", "myfederation").unwrap(), zone());
    let settings = ProviderSettings {
        zone: zone(),
        owner: "myfederation".into(),
        backoff: Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(200),
            attempts: 1,
        },
        resync: Duration::from_millis(200),
    };
    let writer = memory.clone();
    let run = tokio::spawn(fedmesh_controller::run_feature(
        client.clone(),
        config,
        Metrics::new(),
        std::future::pending(),
        "fedmesh-dns",
        move |tasks, client, config, claim, metrics, warnings| {
            let (health, records) = fedmesh_controller::dns::start(
                tasks,
                client.clone(),
                dns,
                None,
                metrics.clone(),
                warnings.clone(),
            );
            provider::start(
                tasks, client, config, writer, records, settings, claim, metrics, warnings,
            );
            health
        },
    ));

    // The Service whose records cannot be made: a Warning Event on it that
    // says what to fix.
    let invalid = eventually("an InvalidDNSRecords Event on bad", || async {
        events(&client, "default", "InvalidDNSRecords").await.pop()
    })
    .await;
    assert_eq!(invalid.type_.as_deref(), Some("Warning"));
    assert_eq!(invalid.involved_object.name.as_deref(), Some("bad"));
    let message = invalid.message.unwrap_or_default();
    for says in [
        "default/bad",
        "cluster east",
        "fix the member's node labels",
    ] {
        assert!(message.contains(says), "{says:?} in {message:?}");
    }

    // The provider is down: the writer's Lease tells the outage, the
    // Service waiting for its records tells it too (Event and condition),
    // and the other controller's condition stays as it was.
    let failed = eventually("a DNSProviderFailed Event on the Lease", || async {
        events(&client, "fedmesh", "DNSProviderFailed").await.pop()
    })
    .await;
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    assert_eq!(failed.involved_object.kind.as_deref(), Some("Lease"));
    assert_eq!(failed.involved_object.name.as_deref(), Some("fedmesh-dns"));
    let message = failed.message.unwrap_or_default();
    assert!(message.contains("connection refused"), "{message}");
    eventually("a DNSProviderFailed Event on good", || async {
        events(&client, "default", "DNSProviderFailed")
            .await
            .into_iter()
            .find(|e| e.involved_object.name.as_deref() == Some("good"))
    })
    .await;
    let during = eventually("DNSRecordsWritten=False on good", || async {
        let all = conditions(&client, "good").await;
        (dns_written(&all) == Some("False")).then_some(all)
    })
    .await;
    assert!(during.contains(&theirs), "{during:?}");
    // Rounds keep failing: the outage is told once.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let told = events(&client, "fedmesh", "DNSProviderFailed").await;
    let count = |e: &Event| {
        e.series
            .as_ref()
            .and_then(|s| s.count)
            .or(e.count)
            .unwrap_or(1)
    };
    assert_eq!(told.iter().map(count).sum::<i32>(), 1, "{told:?}");

    // Back: the good Service's records are written, the bad one's are not,
    // the recovery is told, and the condition turns True beside theirs.
    memory.0.down.store(false, Ordering::SeqCst);
    let global = "good.default.myfederation.svc.example.com";
    eventually("good's records at the provider", || async {
        memory.names().iter().any(|n| n == global).then_some(())
    })
    .await;
    assert!(
        !memory.names().iter().any(|n| n.starts_with("bad.")),
        "{:?}",
        memory.names()
    );
    let recovered = eventually("a DNSProviderRecovered Event on the Lease", || async {
        events(&client, "fedmesh", "DNSProviderRecovered")
            .await
            .pop()
    })
    .await;
    assert_eq!(recovered.type_.as_deref(), Some("Normal"));
    assert_eq!(recovered.involved_object.kind.as_deref(), Some("Lease"));
    let after = eventually("DNSRecordsWritten=True on good", || async {
        let all = conditions(&client, "good").await;
        (dns_written(&all) == Some("True")).then_some(all)
    })
    .await;
    assert!(after.contains(&theirs), "{after:?}");
    assert_eq!(after.len(), 2, "{after:?}");

    // The bad Service fixed: a Normal Event says its records are made again.
    let fixed = published("bad", "us-east1-c");
    services
        .patch(
            "bad",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": fixed["metadata"]})),
        )
        .await
        .expect("fix bad");
    let valid = eventually("a DNSRecordsValid Event on bad", || async {
        events(&client, "default", "DNSRecordsValid").await.pop()
    })
    .await;
    assert_eq!(valid.type_.as_deref(), Some("Normal"));
    assert_eq!(valid.involved_object.name.as_deref(), Some("bad"));

    run.abort();
}
