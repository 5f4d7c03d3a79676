//! Changes name exactly what to rewrite, and unchanged input changes nothing.

use super::*;

fn setup() -> MeshIndex {
    let mut index = MeshIndex::new();
    for cluster in ["east", "west"] {
        let origin = remote(cluster);
        for app in ["a", "b"] {
            index.apply_service(
                svc("ns", app)
                    .label("app", app)
                    .port("http", "TCP", 80)
                    .view(&origin),
            );
            index.apply_slice(
                slc("ns", &format!("{app}-1"), app)
                    .port("http", "TCP", 80)
                    .endpoint("10.0.0.1", "p", "n")
                    .source(&origin),
            );
        }
    }
    for app in ["a", "b"] {
        index.apply_service(
            svc("ns", &format!("fed-{app}"))
                .federate(&format!("app == {app:?}"))
                .port("http", "TCP", 80)
                .view(&Origin::Local),
        );
    }
    index
}

#[test]
fn an_endpoint_change_dirties_one_slice_of_the_services_it_backs() {
    let mut index = setup();
    let east = remote("east");
    let changed = slc("ns", "a-1", "a")
        .port("http", "TCP", 80)
        .endpoint("10.0.0.2", "p", "n")
        .source(&east);
    let changes = index.apply_slice(changed);
    assert_eq!(changes.dirty.len(), 1);
    let dirty = &changes.dirty[&fed_key("ns", "fed-a")];
    assert!(!dirty.all);
    assert!(dirty.endpoints);
    assert_eq!(dirty.slices.len(), 1);
    let name = dirty.slices.first().unwrap();
    let slice = index
        .federation(&fed_key("ns", "fed-a"))
        .unwrap()
        .slice(name)
        .unwrap();
    assert_eq!(slice.endpoints[0].addresses, ["10.0.0.2"]);
}

#[test]
fn reapplying_the_same_objects_changes_nothing() {
    let mut index = setup();
    let east = remote("east");
    let service = svc("ns", "a").label("app", "a").port("http", "TCP", 80);
    assert!(index.apply_service(service.view(&east)).is_empty());
    let slice = slc("ns", "a-1", "a")
        .port("http", "TCP", 80)
        .endpoint("10.0.0.1", "p", "n");
    assert!(index.apply_slice(slice.source(&east)).is_empty());
    let fed = svc("ns", "fed-a")
        .federate(r#"app == "a""#)
        .port("http", "TCP", 80);
    assert!(index.apply_service(fed.view(&Origin::Local)).is_empty());
}

#[test]
fn deleting_a_backing_slice_asks_for_its_federated_slice_to_go() {
    let mut index = setup();
    let east = remote("east");
    let key = slc("ns", "b-1", "b").key(&east);
    let changes = index.delete_slice(&key);
    let dirty = &changes.dirty[&fed_key("ns", "fed-b")];
    let name = dirty.slices.first().unwrap();
    assert!(
        index
            .federation(&fed_key("ns", "fed-b"))
            .unwrap()
            .slice(name)
            .is_none()
    );
    assert_eq!(
        index
            .federation(&fed_key("ns", "fed-b"))
            .unwrap()
            .slices()
            .len(),
        1,
        "west's slice remains"
    );
}

#[test]
fn deleting_unknown_objects_is_harmless() {
    let mut index = setup();
    assert!(
        index
            .delete_service(&ServiceKey::new(Origin::Local, "nope", "nope"))
            .is_empty()
    );
    assert!(
        index
            .delete_slice(&SliceKey::new(Origin::Local, "ns", "nope"))
            .is_empty()
    );
}
