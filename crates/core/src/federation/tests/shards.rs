use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use super::super::*;
use crate::names::{ClusterName, FederatedKey};

fn cluster(name: &str) -> ClusterName {
    ClusterName::new(name).unwrap()
}

fn key() -> FederatedKey {
    FederatedKey::new("mynamespace", "nginx")
}

fn service(ingress: serde_json::Value, external_ips: &[&str]) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "nginx", "namespace": "mynamespace"},
        "spec": {"type": "LoadBalancer", "externalIPs": external_ips},
        "status": {"loadBalancer": {"ingress": ingress}}
    }))
    .unwrap()
}

/// A slice of nginx with endpoints whose `ready` conditions are given
/// (`None`: no condition, which counts as ready).
fn slice(service: &str, ready: &[Option<bool>]) -> EndpointSlice {
    let endpoints: Vec<serde_json::Value> = ready
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut e = json!({"addresses": [format!("10.1.0.{i}")]});
            if let Some(r) = r {
                e["conditions"] = json!({"ready": r});
            }
            e
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": "s", "namespace": "mynamespace",
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": endpoints
    }))
    .unwrap()
}

fn zone(z: &str, r: &str) -> Topology {
    Topology {
        zones: vec![z.into()],
        region: Some(r.into()),
    }
}

fn health(index: &ShardIndex, c: &str) -> Health {
    index
        .shards(&key())
        .shards
        .iter()
        .find(|s| s.cluster.as_str() == c)
        .map(|s| s.health)
        .unwrap()
}

#[test]
fn a_shard_is_healthy_with_an_address_a_ready_endpoint_and_a_ready_cluster() {
    let a = cluster("us-central1-a");
    let mut index = ShardIndex::new();
    assert_eq!(
        index.apply_cluster(
            &a,
            ClusterState::Ready,
            &zone("us-central1-a", "us-central1")
        ),
        Vec::<FederatedKey>::new(),
        "no shard there yet"
    );
    // Created, no address yet: the load balancer has not answered.
    assert!(index.apply_service(&a, &key(), Some(&service(json!([]), &[]))));
    assert_eq!(health(&index, "us-central1-a"), Health::NoExternalAddress);
    // An address, but no ready endpoint.
    assert!(index.apply_service(
        &a,
        &key(),
        Some(&service(json!([{"ip": "104.197.247.191"}]), &[]))
    ));
    assert_eq!(health(&index, "us-central1-a"), Health::NoReadyEndpoints);
    // Endpoints, none ready: no change.
    assert_eq!(
        index.apply_slice(
            &a,
            "mynamespace",
            "s",
            Some(&slice("nginx", &[Some(false)]))
        ),
        Vec::<FederatedKey>::new()
    );
    // One ready: healthy, and only this Service is named.
    assert_eq!(
        index.apply_slice(
            &a,
            "mynamespace",
            "s",
            Some(&slice("nginx", &[Some(false), None]))
        ),
        vec![key()]
    );
    assert_eq!(health(&index, "us-central1-a"), Health::Healthy);
    // More ready endpoints change nothing the status shows.
    assert!(
        index
            .apply_slice(
                &a,
                "mynamespace",
                "s",
                Some(&slice("nginx", &[Some(true), None]))
            )
            .is_empty()
    );
    // The cluster goes Offline: every shard there is named.
    assert_eq!(
        index.apply_cluster(
            &a,
            ClusterState::Offline,
            &zone("us-central1-a", "us-central1")
        ),
        vec![key()]
    );
    assert_eq!(health(&index, "us-central1-a"), Health::ClusterNotReady);
    assert_eq!(
        index.apply_cluster(
            &a,
            ClusterState::Ready,
            &zone("us-central1-a", "us-central1")
        ),
        vec![key()]
    );
    assert_eq!(health(&index, "us-central1-a"), Health::Healthy);
    // The last ready endpoint goes.
    assert_eq!(index.apply_slice(&a, "mynamespace", "s", None), vec![key()]);
    assert_eq!(health(&index, "us-central1-a"), Health::NoReadyEndpoints);
    // The Service is deleted in the member: the shard is gone.
    assert!(index.apply_service(&a, &key(), None));
    assert!(index.shards(&key()).shards.is_empty());
    assert!(!index.apply_service(&a, &key(), None));
}

#[test]
fn external_ips_count_and_slices_may_come_before_their_service() {
    let a = cluster("a");
    let mut index = ShardIndex::new();
    index.apply_cluster(&a, ClusterState::Ready, &Topology::default());
    // Slices first (a relist's order is not guaranteed): nothing to report yet.
    assert!(
        index
            .apply_slice(&a, "mynamespace", "s", Some(&slice("nginx", &[Some(true)])))
            .is_empty()
    );
    index.apply_service(&a, &key(), Some(&service(json!(null), &["192.0.2.10"])));
    let shards = index.shards(&key());
    assert!(shards.shards[0].healthy());
    assert_eq!(shards.shards[0].region, None);
    // A slice moving to another Service takes its endpoints with it.
    assert_eq!(
        index.apply_slice(&a, "mynamespace", "s", Some(&slice("other", &[Some(true)]))),
        vec![key()]
    );
    assert_eq!(health(&index, "a"), Health::NoReadyEndpoints);
}

#[test]
fn status_lists_every_address_sorted_and_the_annotation_every_shard() {
    let mut index = ShardIndex::new();
    let members = [
        (
            "asia-east1-a",
            "asia-east1",
            json!([{"ip": "130.211.57.243"}]),
            true,
        ),
        (
            "us-central1-a",
            "us-central1",
            json!([{"ip": "104.197.247.191"}, {"ip": "2001:db8::1"}]),
            true,
        ),
        (
            "us-central1-f",
            "us-central1",
            json!([{"hostname": "lb.example.com"}, {"ip": "104.197.244.180"}]),
            false,
        ),
    ];
    for (name, region, ingress, ready) in members {
        let c = cluster(name);
        index.apply_cluster(&c, ClusterState::Ready, &zone(name, region));
        index.apply_service(&c, &key(), Some(&service(ingress, &[])));
        index.apply_slice(
            &c,
            "mynamespace",
            "s",
            Some(&slice("nginx", &[Some(ready)])),
        );
    }
    let shards = index.shards(&key());
    assert_eq!(shards.service, key());
    let ingress: Vec<(Option<String>, Option<String>)> = shards
        .ingress()
        .into_iter()
        .map(|i| (i.ip, i.hostname))
        .collect();
    assert_eq!(
        ingress,
        [
            (Some("104.197.244.180".into()), None),
            (Some("104.197.247.191".into()), None),
            (Some("130.211.57.243".into()), None),
            (Some("2001:db8::1".into()), None),
            (None, Some("lb.example.com".into())),
        ]
    );
    let annotation: serde_json::Value = serde_json::from_str(&shards.annotation()).unwrap();
    assert_eq!(
        annotation,
        json!([
            {"cluster": "asia-east1-a", "healthy": true, "health": "Healthy",
             "zones": ["asia-east1-a"], "region": "asia-east1", "addresses": ["130.211.57.243"]},
            {"cluster": "us-central1-a", "healthy": true, "health": "Healthy",
             "zones": ["us-central1-a"], "region": "us-central1",
             "addresses": ["104.197.247.191", "2001:db8::1"]},
            {"cluster": "us-central1-f", "healthy": false, "health": "NoReadyEndpoints",
             "zones": ["us-central1-f"], "region": "us-central1",
             "addresses": ["104.197.244.180", "lb.example.com"]},
        ])
    );
    // What DNS reads: typed addresses per shard.
    let f = &shards.shards[2];
    assert_eq!(f.addresses.ipv4.len(), 1);
    assert!(f.addresses.hostnames.contains("lb.example.com"));
    assert_eq!(
        shards.shards[1]
            .addresses
            .ipv6
            .iter()
            .next()
            .unwrap()
            .to_string(),
        "2001:db8::1"
    );

    // A member leaving the federation takes its shard.
    assert_eq!(index.remove_cluster(&cluster("asia-east1-a")), vec![key()]);
    assert_eq!(index.shards(&key()).shards.len(), 2);
}

#[test]
fn relists_replace_a_members_services_and_slices() {
    let a = cluster("a");
    let other = FederatedKey::new("mynamespace", "other");
    let mut index = ShardIndex::new();
    index.apply_cluster(&a, ClusterState::Ready, &Topology::default());
    let lb = service(json!([{"ip": "192.0.2.1"}]), &[]);
    index.apply_service(&a, &key(), Some(&lb));
    index.apply_slice(&a, "mynamespace", "s", Some(&slice("nginx", &[Some(true)])));
    assert!(index.shards(&key()).shards[0].healthy());

    // The relist has `other` instead of nginx, and no slices.
    let changed = index.reset_services(&a, [(other.clone(), &lb)]);
    assert_eq!(changed, vec![key(), other.clone()]);
    assert!(index.shards(&key()).shards.is_empty());
    assert_eq!(index.reset_slices(&a, []), Vec::<FederatedKey>::new());
    let s = slice("other", &[None]);
    assert_eq!(
        index.reset_slices(&a, [("mynamespace", "s", &s)]),
        vec![other.clone()]
    );
    assert!(index.shards(&other).shards[0].healthy());
}

#[test]
fn a_failed_write_in_one_member_shows_in_the_status_until_it_succeeds() {
    let (a, b) = (cluster("a"), cluster("b"));
    let mut index = ShardIndex::new();
    index.apply_cluster(&a, ClusterState::Ready, &Topology::default());
    index.apply_service(
        &a,
        &key(),
        Some(&service(json!([{"ip": "192.0.2.1"}]), &[])),
    );
    assert_eq!(index.shards(&key()).errors_annotation(), None);
    let quota = "services \"nginx\" is forbidden: exceeded quota: services=0";
    assert!(index.set_error(&b, &key(), Some(quota)));
    assert!(
        !index.set_error(&b, &key(), Some(quota)),
        "the same error again"
    );
    let shards = index.shards(&key());
    assert_eq!(
        shards.shards.len(),
        1,
        "the other member's shard is unaffected"
    );
    let errors: serde_json::Value =
        serde_json::from_str(&shards.errors_annotation().unwrap()).unwrap();
    assert_eq!(errors, json!({"b": quota}));
    assert!(index.set_error(&b, &key(), None));
    assert!(!index.set_error(&b, &key(), None));
    assert_eq!(index.shards(&key()).errors_annotation(), None);
    // A member removed from the federation takes its errors along.
    index.set_error(&b, &key(), Some(quota));
    assert_eq!(index.remove_cluster(&b), vec![key()]);
    assert!(index.shards(&key()).errors.is_empty());
}

#[test]
fn patches_for_the_federated_service() {
    let a = cluster("a");
    let mut index = ShardIndex::new();
    index.apply_cluster(&a, ClusterState::Ready, &Topology::default());
    index.apply_service(
        &a,
        &key(),
        Some(&service(json!([{"ip": "192.0.2.1"}]), &[])),
    );
    let shards = index.shards(&key());
    assert_eq!(
        shards.status_patch(),
        json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}})
    );
    let patch = shards.metadata_patch();
    let annotations = &patch["metadata"]["annotations"];
    assert_eq!(annotations[SHARDS_ANNOTATION], json!(shards.annotation()));
    assert_eq!(
        annotations[ERRORS_ANNOTATION],
        json!(null),
        "removed when none"
    );
    index.set_error(&a, &key(), Some("forbidden"));
    let patch = index.shards(&key()).metadata_patch();
    assert_eq!(
        patch["metadata"]["annotations"][ERRORS_ANNOTATION],
        json!(r#"{"a":"forbidden"}"#)
    );
}

mod incremental {
    //! Random sequences of member events: the index's shards equal shards
    //! computed from scratch from the latest objects, and every change of a
    //! Service's shards is reported.

    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    const CLUSTERS: [&str; 3] = ["a", "b", "c"];
    const SERVICES: [&str; 3] = ["s0", "s1", "s2"];

    #[derive(Debug, Clone)]
    enum Event {
        Cluster(usize, bool),
        Service(usize, usize, Option<u8>),
        Slice(usize, usize, Option<(usize, u8)>),
        Remove(usize),
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (0..3usize, any::<bool>()).prop_map(|(c, r)| Event::Cluster(c, r)),
            (0..3usize, 0..3usize, proptest::option::of(0..3u8))
                .prop_map(|(c, s, a)| Event::Service(c, s, a)),
            (
                0..3usize,
                0..4usize,
                proptest::option::of((0..3usize, 0..3u8))
            )
                .prop_map(|(c, n, s)| Event::Slice(c, n, s)),
            (0..3usize).prop_map(Event::Remove),
        ]
    }

    /// The latest objects, and shards computed from them alone.
    #[derive(Default)]
    struct Model {
        ready: BTreeMap<usize, bool>,
        /// (cluster, service) -> number of addresses (0: none yet).
        services: BTreeMap<(usize, usize), u8>,
        /// (cluster, slice) -> (service, ready endpoints).
        slices: BTreeMap<(usize, usize), (usize, u8)>,
    }

    fn ingress(n: u8) -> serde_json::Value {
        json!(
            (0..n)
                .map(|i| json!({"ip": format!("192.0.2.{i}")}))
                .collect::<Vec<_>>()
        )
    }

    fn key_of(s: usize) -> FederatedKey {
        FederatedKey::new("mynamespace", SERVICES[s])
    }

    impl Model {
        fn shards(&self, s: usize) -> Vec<(String, Health, usize)> {
            self.services
                .iter()
                .filter(|((_, svc), _)| *svc == s)
                .map(|(&(c, _), &addresses)| {
                    let ready: u8 = self
                        .slices
                        .iter()
                        .filter(|((sc, _), (svc, _))| *sc == c && *svc == s)
                        .map(|(_, (_, n))| *n)
                        .sum();
                    let health = if !self.ready.get(&c).copied().unwrap_or(false) {
                        Health::ClusterNotReady
                    } else if addresses == 0 {
                        Health::NoExternalAddress
                    } else if ready == 0 {
                        Health::NoReadyEndpoints
                    } else {
                        Health::Healthy
                    };
                    (CLUSTERS[c].to_owned(), health, usize::from(addresses))
                })
                .collect()
        }
    }

    fn observed(index: &ShardIndex, s: usize) -> Vec<(String, Health, usize)> {
        index
            .shards(&key_of(s))
            .shards
            .iter()
            .map(|sh| (sh.cluster.to_string(), sh.health, sh.addresses.ipv4.len()))
            .collect()
    }

    proptest! {
        #[test]
        fn the_index_matches_a_recomputation(events in proptest::collection::vec(event(), 1..60)) {
            let mut index = ShardIndex::new();
            let mut model = Model::default();
            for event in events {
                let before: Vec<_> = (0..3).map(|s| model.shards(s)).collect();
                let reported: BTreeSet<FederatedKey> = match &event {
                    Event::Cluster(c, ready) => {
                        model.ready.insert(*c, *ready);
                        let state = if *ready { ClusterState::Ready } else { ClusterState::Offline };
                        index.apply_cluster(&cluster(CLUSTERS[*c]), state, &Topology::default()).into_iter().collect()
                    }
                    Event::Service(c, s, addresses) => {
                        let changed = match addresses {
                            Some(n) => {
                                model.services.insert((*c, *s), *n);
                                index.apply_service(&cluster(CLUSTERS[*c]), &key_of(*s), Some(&service(ingress(*n), &[])))
                            }
                            None => {
                                model.services.remove(&(*c, *s));
                                index.apply_service(&cluster(CLUSTERS[*c]), &key_of(*s), None)
                            }
                        };
                        changed.then(|| key_of(*s)).into_iter().collect()
                    }
                    Event::Slice(c, n, content) => {
                        let name = format!("slice-{n}");
                        let object = content.map(|(s, ready)| {
                            model.slices.insert((*c, *n), (s, ready));
                            let flags: Vec<Option<bool>> = (0..3).map(|i| Some(i < ready)).collect();
                            slice(SERVICES[s], &flags)
                        });
                        if content.is_none() {
                            model.slices.remove(&(*c, *n));
                        }
                        index.apply_slice(&cluster(CLUSTERS[*c]), "mynamespace", &name, object.as_ref()).into_iter().collect()
                    }
                    Event::Remove(c) => {
                        model.ready.remove(c);
                        model.services.retain(|(mc, _), _| mc != c);
                        model.slices.retain(|(mc, _), _| mc != c);
                        index.remove_cluster(&cluster(CLUSTERS[*c])).into_iter().collect()
                    }
                };
                for (s, before) in before.iter().enumerate() {
                    let after = model.shards(s);
                    prop_assert_eq!(&observed(&index, s), &after, "after {:?}", event);
                    if *before != after {
                        prop_assert!(reported.contains(&key_of(s)), "{:?} changed {} unreported", event, s);
                    }
                }
            }
        }
    }
}
