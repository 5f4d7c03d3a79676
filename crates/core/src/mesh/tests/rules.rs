//! Each federation rule of seed 000, one test at a time.

use super::*;

fn web(ns: &str, name: &str) -> Svc {
    svc(ns, name)
        .label("app", "web")
        .pod_selector("app", "web")
        .port("http", "TCP", 80)
}

fn web_slice(ns: &str, name: &str, service: &str, ip: &str) -> Slc {
    slc(ns, name, service)
        .port("http", "TCP", 80)
        .endpoint(ip, &format!("{service}-pod"), "node")
}

fn federated(ns: &str, name: &str, selector: &str) -> Svc {
    svc(ns, name).federate(selector).port("http", "TCP", 8080)
}

/// An index with `web` in the local cluster and in `east`, each with one endpoint.
fn mesh() -> MeshIndex {
    let mut index = MeshIndex::new();
    let east = remote("east");
    index.apply_service(web("ns", "web").view(&Origin::Local));
    index.apply_slice(web_slice("ns", "web-1", "web", "10.0.0.1").source(&Origin::Local));
    index.apply_service(web("ns", "web").view(&east));
    index.apply_slice(web_slice("ns", "web-1", "web", "10.9.0.1").source(&east));
    index
}

#[test]
fn selector_matches_local_and_remote_services_in_the_same_namespace() {
    let mut index = mesh();
    index.apply_service(federated("ns", "fed", r#"app == "web""#).view(&Origin::Local));
    assert_eq!(
        slice_ips(&index, &fed_key("ns", "fed")),
        ["10.0.0.1", "10.9.0.1"]
    );
}

#[test]
fn remote_cluster_label_restricts_to_one_cluster_and_never_matches_local() {
    let mut index = mesh();
    let west = remote("west");
    index.apply_service(web("ns", "web").view(&west));
    index.apply_slice(web_slice("ns", "web-1", "web", "10.8.0.1").source(&west));
    index.apply_service(
        federated(
            "ns",
            "east-only",
            r#"app == "web" && federation.tigera.io/remoteClusterName == "east""#,
        )
        .view(&Origin::Local),
    );
    index.apply_service(
        federated(
            "ns",
            "remote-only",
            "has(federation.tigera.io/remoteClusterName)",
        )
        .view(&Origin::Local),
    );
    index.apply_service(
        federated(
            "ns",
            "local-only",
            r#"app == "web" && !has(federation.tigera.io/remoteClusterName)"#,
        )
        .view(&Origin::Local),
    );
    assert_eq!(slice_ips(&index, &fed_key("ns", "east-only")), ["10.9.0.1"]);
    assert_eq!(
        slice_ips(&index, &fed_key("ns", "remote-only")),
        ["10.8.0.1", "10.9.0.1"]
    );
    assert_eq!(
        slice_ips(&index, &fed_key("ns", "local-only")),
        ["10.0.0.1"]
    );
}

#[test]
fn the_implicit_label_never_appears_on_local_services() {
    let view = web("ns", "web").view(&Origin::Local);
    assert!(!view.labels.contains_key(crate::REMOTE_CLUSTER_LABEL));
    let view = web("ns", "web").view(&remote("east"));
    assert_eq!(&*view.labels[crate::REMOTE_CLUSTER_LABEL], "east");
}

#[test]
fn other_namespaces_are_ignored() {
    let mut index = mesh();
    index.apply_service(web("other", "web").view(&Origin::Local));
    index.apply_slice(web_slice("other", "web-1", "web", "10.7.0.1").source(&Origin::Local));
    index.apply_service(federated("ns", "fed", r#"app == "web""#).view(&Origin::Local));
    index.apply_service(federated("other", "fed", r#"app == "web""#).view(&Origin::Local));
    assert_eq!(
        slice_ips(&index, &fed_key("ns", "fed")),
        ["10.0.0.1", "10.9.0.1"]
    );
    assert_eq!(slice_ips(&index, &fed_key("other", "fed")), ["10.7.0.1"]);
}

#[test]
fn a_federated_service_never_backs_another_nor_itself() {
    let mut index = mesh();
    // `inner` matches `app == "web"` and is federated itself.
    let inner = federated("ns", "inner", r#"app == "web""#).label("app", "web");
    index.apply_service(inner.view(&Origin::Local));
    index.apply_slice(web_slice("ns", "inner-x", "inner", "10.5.0.1").source(&Origin::Local));
    let outer = federated("ns", "outer", r#"app == "web""#).label("app", "web");
    index.apply_service(outer.view(&Origin::Local));
    for name in ["inner", "outer"] {
        assert_eq!(
            slice_ips(&index, &fed_key("ns", name)),
            ["10.0.0.1", "10.9.0.1"]
        );
    }
    // A remote service with the annotation backs nothing either.
    let east = remote("east");
    index.apply_service(
        federated("ns", "remote-fed", r#"app == "web""#)
            .label("app", "web")
            .view(&east),
    );
    index.apply_slice(web_slice("ns", "rf", "remote-fed", "10.6.0.1").source(&east));
    assert_eq!(
        slice_ips(&index, &fed_key("ns", "outer")),
        ["10.0.0.1", "10.9.0.1"]
    );
    assert!(index.federation(&fed_key("ns", "remote-fed")).is_none());
}

#[test]
fn annotation_with_spec_selector_is_neither_federated_nor_backing() {
    let mut index = mesh();
    let both = federated("ns", "both", r#"app == "web""#)
        .label("app", "web")
        .pod_selector("app", "web");
    let changes = index.apply_service(both.view(&Origin::Local));
    assert!(changes.is_empty(), "{changes:?}");
    index.apply_slice(web_slice("ns", "both-x", "both", "10.4.0.1").source(&Origin::Local));
    assert!(index.federation(&fed_key("ns", "both")).is_none());
    index.apply_service(federated("ns", "fed", r#"app == "web""#).view(&Origin::Local));
    assert_eq!(
        slice_ips(&index, &fed_key("ns", "fed")),
        ["10.0.0.1", "10.9.0.1"]
    );
}

#[test]
fn ports_match_by_name_and_protocol_keeping_backing_numbers() {
    let mut index = MeshIndex::new();
    index.apply_service(
        svc("ns", "dns")
            .label("app", "dns")
            .port("dns", "UDP", 53)
            .port("dns-tcp", "TCP", 53)
            .view(&Origin::Local),
    );
    index.apply_slice(
        slc("ns", "dns-1", "dns")
            .port("dns", "UDP", 5353)
            .port("dns-tcp", "TCP", 5353)
            .endpoint("10.0.0.53", "dns-pod", "n")
            .source(&Origin::Local),
    );
    // `dns` over TCP matches nothing: the backing `dns` port is UDP.
    index.apply_service(
        svc("ns", "fed-dns")
            .federate(r#"app == "dns""#)
            .port("dns", "TCP", 53)
            .port("dns-tcp", "TCP", 1053)
            .view(&Origin::Local),
    );
    let slices = index
        .federation(&fed_key("ns", "fed-dns"))
        .unwrap()
        .slices();
    let ports: Vec<(Option<String>, Option<String>, Option<i32>)> = slices[0]
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone(), p.protocol.clone(), p.port))
        .collect();
    assert_eq!(
        ports,
        [(Some("dns-tcp".into()), Some("TCP".into()), Some(5353))]
    );

    // No port matching at all: no slices, and Endpoints without subsets.
    index.apply_service(
        svc("ns", "fed-none")
            .federate(r#"app == "dns""#)
            .port("metrics", "TCP", 9090)
            .view(&Origin::Local),
    );
    let view = index.federation(&fed_key("ns", "fed-none")).unwrap();
    assert!(view.slices().is_empty());
    assert_eq!(view.endpoints().subsets, None);
}

#[test]
fn invalid_selector_warns_and_removes_federation() {
    let mut index = mesh();
    let key = fed_key("ns", "fed");
    index.apply_service(federated("ns", "fed", r#"app == "web""#).view(&Origin::Local));
    assert!(index.federation(&key).is_some());

    let changes =
        index.apply_service(federated("ns", "fed", r#"app == "web" &&"#).view(&Origin::Local));
    assert!(
        changes.dirty[&key].all,
        "the writer must remove what it wrote"
    );
    assert!(index.federation(&key).is_none());
    assert_eq!(changes.warnings.len(), 1);
    let warning = &changes.warnings[0];
    assert_eq!(warning.service, key);
    assert_eq!(warning.reason, "InvalidServiceSelector");
    assert!(
        warning.message.contains("byte"),
        "the message says where: {}",
        warning.message
    );

    // Fixing the selector federates it again.
    index.apply_service(federated("ns", "fed", r#"app == "web""#).view(&Origin::Local));
    assert_eq!(slice_ips(&index, &key), ["10.0.0.1", "10.9.0.1"]);
}

#[test]
fn removing_the_annotation_or_the_service_stops_federation() {
    let mut index = mesh();
    let key = fed_key("ns", "fed");
    index.apply_service(federated("ns", "fed", r#"app == "web""#).view(&Origin::Local));
    let plain = svc("ns", "fed").port("http", "TCP", 8080);
    let changes = index.apply_service(plain.view(&Origin::Local));
    assert!(changes.dirty[&key].all);
    assert!(index.federation(&key).is_none());

    index.apply_service(federated("ns", "fed", r#"app == "web""#).view(&Origin::Local));
    let changes = index.delete_service(&plain.key(&Origin::Local));
    assert!(changes.dirty[&key].all);
    assert!(index.federation(&key).is_none());
}

#[test]
fn not_ready_endpoints_stay_not_ready() {
    let mut index = MeshIndex::new();
    index.apply_service(web("ns", "web").view(&Origin::Local));
    index.apply_slice(
        slc("ns", "web-1", "web")
            .port("http", "TCP", 80)
            .endpoint("10.0.0.1", "a", "n")
            .endpoint_with("10.0.0.2", "b", "n", false)
            .source(&Origin::Local),
    );
    index.apply_service(federated("ns", "fed", r#"app == "web""#).view(&Origin::Local));
    let subsets = subsets(&index, &fed_key("ns", "fed"));
    assert_eq!(
        subsets,
        [(
            vec!["10.0.0.1".to_string()],
            vec!["10.0.0.2".to_string()],
            vec!["http:80".to_string()]
        )]
    );
    let slices = index.federation(&fed_key("ns", "fed")).unwrap().slices();
    let ready: Vec<Option<bool>> = slices[0]
        .endpoints
        .iter()
        .map(|e| e.conditions.as_ref().and_then(|c| c.ready))
        .collect();
    assert_eq!(ready, [Some(true), Some(false)]);
}

#[test]
fn selectors_without_restrictions_and_impossible_ones() {
    let mut index = mesh();
    index.apply_service(
        svc("ns", "db")
            .label("app", "db")
            .port("http", "TCP", 1)
            .view(&Origin::Local),
    );
    index.apply_service(federated("ns", "all", "all()").view(&Origin::Local));
    index.apply_service(federated("ns", "not-db", r#"app != "db""#).view(&Origin::Local));
    index.apply_service(
        federated("ns", "never", r#"app == "web" && app == "db""#).view(&Origin::Local),
    );
    let backing = |index: &MeshIndex, name: &str| -> Vec<String> {
        index
            .federation(&fed_key("ns", name))
            .unwrap()
            .backing()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(backing(&index, "all"), ["ns/db", "ns/web", "east:ns/web"]);
    assert_eq!(backing(&index, "not-db"), ["ns/web", "east:ns/web"]);
    assert!(backing(&index, "never").is_empty());

    // A service arriving later is found by the unrestricted selectors too.
    index.apply_service(svc("ns", "cache").label("tier", "x").view(&Origin::Local));
    assert_eq!(
        backing(&index, "all"),
        ["ns/cache", "ns/db", "ns/web", "east:ns/web"]
    );
    assert_eq!(
        backing(&index, "not-db"),
        ["ns/cache", "ns/web", "east:ns/web"]
    );
}

#[test]
fn a_backing_service_whose_labels_change_moves_between_federations() {
    let mut index = mesh();
    index.apply_service(federated("ns", "web-fed", r#"app == "web""#).view(&Origin::Local));
    index.apply_service(federated("ns", "api-fed", r#"app in {"api"}"#).view(&Origin::Local));
    let moved = svc("ns", "web").label("app", "api").port("http", "TCP", 80);
    let changes = index.apply_service(moved.view(&Origin::Local));
    assert_eq!(slice_ips(&index, &fed_key("ns", "web-fed")), ["10.9.0.1"]);
    assert_eq!(slice_ips(&index, &fed_key("ns", "api-fed")), ["10.0.0.1"]);
    assert_eq!(changes.dirty.len(), 2);
    assert!(
        changes
            .dirty
            .values()
            .all(|d| !d.all && d.endpoints && d.slices.len() == 1)
    );
}

#[test]
fn slices_arriving_before_their_service_are_used_once_it_comes() {
    let mut index = MeshIndex::new();
    let east = remote("east");
    index.apply_slice(web_slice("ns", "web-1", "web", "10.9.0.1").source(&east));
    index.apply_service(federated("ns", "fed", r#"app == "web""#).view(&Origin::Local));
    assert!(slice_ips(&index, &fed_key("ns", "fed")).is_empty());
    index.apply_service(web("ns", "web").view(&east));
    assert_eq!(slice_ips(&index, &fed_key("ns", "fed")), ["10.9.0.1"]);
}

#[test]
fn reset_and_remove_cluster_drop_what_is_gone() {
    let mut index = mesh();
    let east = remote("east");
    let key = fed_key("ns", "fed");
    index.apply_service(federated("ns", "fed", r#"app == "web""#).view(&Origin::Local));

    // east relisted: its `web` slice changed name and address.
    let changes = index.reset_cluster(
        &east,
        vec![web("ns", "web").view(&east)],
        vec![web_slice("ns", "web-2", "web", "10.9.0.2").source(&east)],
    );
    assert_eq!(
        changes.dirty[&key].slices.len(),
        2,
        "one slice gone, one new"
    );
    assert_eq!(slice_ips(&index, &key), ["10.0.0.1", "10.9.0.2"]);

    let changes = index.remove_cluster(&east);
    assert!(changes.dirty[&key].endpoints);
    assert_eq!(slice_ips(&index, &key), ["10.0.0.1"]);
    assert_eq!(index.service_count(), 2, "local web and fed remain");
}

#[test]
fn large_backing_slices_split_into_slices_of_at_most_100() {
    let mut index = MeshIndex::new();
    index.apply_service(web("ns", "web").view(&Origin::Local));
    let mut big = slc("ns", "web-big", "web").port("http", "TCP", 80);
    for i in 0..250 {
        big = big.endpoint(
            &format!("10.1.{}.{}", i / 200, i % 200),
            &format!("p{i}"),
            "n",
        );
    }
    index.apply_slice(big.source(&Origin::Local));
    index.apply_service(federated("ns", "fed", r#"app == "web""#).view(&Origin::Local));
    let sizes: Vec<usize> = index
        .federation(&fed_key("ns", "fed"))
        .unwrap()
        .slices()
        .iter()
        .map(|s| s.endpoints.len())
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 250);
    assert!(sizes.iter().all(|n| *n <= 100), "{sizes:?}");

    // Shrinking the backing slice removes the chunks it no longer needs.
    let small = slc("ns", "web-big", "web")
        .port("http", "TCP", 80)
        .endpoint("10.2.0.1", "q", "n");
    let changes = index.apply_slice(small.source(&Origin::Local));
    assert_eq!(changes.dirty[&fed_key("ns", "fed")].slices.len(), 3);
    assert_eq!(slice_ips(&index, &fed_key("ns", "fed")), ["10.2.0.1"]);
}

#[test]
fn endpoints_are_capped_at_1000_addresses_and_say_so() {
    let mut index = MeshIndex::new();
    for cluster in 0..3 {
        let origin = remote(&format!("c{cluster}"));
        index.apply_service(web("ns", "web").view(&origin));
        let mut slice = slc("ns", "web-1", "web").port("http", "TCP", 80);
        for i in 0..400 {
            slice = slice.endpoint(&format!("10.{cluster}.{}.{}", i / 200, i % 200), "p", "n");
        }
        index.apply_slice(slice.source(&origin));
    }
    index.apply_service(federated("ns", "fed", r#"app == "web""#).view(&Origin::Local));
    let endpoints = index.federation(&fed_key("ns", "fed")).unwrap().endpoints();
    let total: usize = endpoints
        .subsets
        .iter()
        .flatten()
        .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
        .sum();
    assert_eq!(total, 1000);
    assert_eq!(
        endpoints.metadata.annotations.unwrap()["endpoints.kubernetes.io/over-capacity"],
        "truncated"
    );
}
