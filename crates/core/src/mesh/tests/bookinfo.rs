//! Seed 004's bookinfo example, seen from each of its two clusters.
//!
//! uc-aks-prod-01 runs `reviews-v1` and `ratings-1`; uc-aks-prod-03 runs
//! `reviews-23` (the v2 and v3 pods). Both clusters federate `ratings`;
//! prod-01 also federates `reviews`.

use super::*;

const NS: &str = "bookinfo";

struct Cluster {
    services: Vec<Svc>,
    slices: Vec<Slc>,
}

fn prod_01() -> Cluster {
    Cluster {
        services: vec![
            svc(NS, "reviews-v1")
                .label("app", "reviews")
                .pod_selector("app", "reviews")
                .port("http", "TCP", 9080),
            svc(NS, "ratings-1")
                .label("app", "ratings")
                .pod_selector("app", "ratings")
                .port("http", "TCP", 9080),
            // The federated services carry the app label too: they must not
            // back themselves.
            svc(NS, "reviews")
                .label("app", "reviews")
                .federate(r#"app == "reviews""#)
                .port("http", "TCP", 9080),
            svc(NS, "ratings")
                .label("app", "ratings")
                .federate(r#"app == "ratings""#)
                .port("http", "TCP", 9080),
        ],
        slices: vec![
            slc(NS, "reviews-v1-x1", "reviews-v1")
                .port("http", "TCP", 9080)
                .endpoint("10.1.0.11", "reviews-v1-a", "n1"),
            slc(NS, "ratings-1-x1", "ratings-1")
                .port("http", "TCP", 9080)
                .endpoint("10.1.0.21", "ratings-1-a", "n1"),
        ],
    }
}

fn prod_03() -> Cluster {
    Cluster {
        services: vec![
            svc(NS, "reviews-23")
                .label("app", "reviews")
                .pod_selector("app", "reviews")
                .port("http", "TCP", 9080),
            svc(NS, "ratings")
                .label("app", "ratings")
                .federate(r#"app == "ratings""#)
                .port("http", "TCP", 9080),
        ],
        slices: vec![
            slc(NS, "reviews-23-x1", "reviews-23")
                .port("http", "TCP", 9080)
                .endpoint("10.3.0.12", "reviews-v2-a", "n3")
                .endpoint("10.3.0.13", "reviews-v3-a", "n3"),
        ],
    }
}

fn load(index: &mut MeshIndex, origin: &Origin, cluster: &Cluster) {
    index.reset_cluster(
        origin,
        cluster.services.iter().map(|s| s.view(origin)).collect(),
        cluster.slices.iter().map(|s| s.source(origin)).collect(),
    );
}

fn endpoint_count(index: &MeshIndex, name: &str) -> usize {
    subsets(index, &fed_key(NS, name))
        .iter()
        .map(|(ready, not_ready, _)| ready.len() + not_ready.len())
        .sum()
}

#[test]
fn prod_01_sees_three_reviews_endpoints_and_one_ratings_endpoint() {
    let mut index = MeshIndex::new();
    load(&mut index, &Origin::Local, &prod_01());
    load(&mut index, &remote("uc-aks-prod-03"), &prod_03());

    assert_eq!(endpoint_count(&index, "reviews"), 3);
    assert_eq!(endpoint_count(&index, "ratings"), 1);
    assert_eq!(
        slice_ips(&index, &fed_key(NS, "reviews")),
        ["10.1.0.11", "10.3.0.12", "10.3.0.13"]
    );
    let backing: Vec<String> = index
        .federation(&fed_key(NS, "reviews"))
        .unwrap()
        .backing()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        backing,
        ["bookinfo/reviews-v1", "uc-aks-prod-03:bookinfo/reviews-23"]
    );
}

#[test]
fn prod_03_sees_the_remote_ratings_endpoint() {
    let mut index = MeshIndex::new();
    load(&mut index, &Origin::Local, &prod_03());
    load(&mut index, &remote("uc-aks-prod-01"), &prod_01());

    assert_eq!(endpoint_count(&index, "ratings"), 1);
    let endpoints = index
        .federation(&fed_key(NS, "ratings"))
        .unwrap()
        .endpoints();
    let subset = &endpoints.subsets.unwrap()[0];
    let pod = subset.addresses.as_ref().unwrap()[0]
        .target_ref
        .as_ref()
        .unwrap()
        .name
        .clone();
    assert_eq!(pod.as_deref(), Some("uc-aks-prod-01/ratings-1-a"));
    // The remote federated `reviews` and `ratings` services back nothing here.
    assert!(index.federation(&fed_key(NS, "reviews")).is_none());
    let backing: Vec<String> = index
        .federation(&fed_key(NS, "ratings"))
        .unwrap()
        .backing()
        .map(ToString::to_string)
        .collect();
    assert_eq!(backing, ["uc-aks-prod-01:bookinfo/ratings-1"]);
}
