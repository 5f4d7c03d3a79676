//! kube-rs typed and dynamic clients: CRUD, conflicts, finalizers, status, selectors, paging.

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::{client, namespace};

fn api_error(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn service(name: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}], "selector": {"app": name}}
    }))
    .unwrap()
}

#[tokio::test]
async fn typed_service_crud_and_stale_update_conflict() {
    let ns = namespace("crud").await;
    let api: Api<Service> = Api::namespaced(client(), &ns);
    let created = api
        .create(&PostParams::default(), &service("web"))
        .await
        .unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    // As kube-apiserver: a Service keeps no generation.
    assert_eq!(created.metadata.generation, None);
    assert!(created.metadata.creation_timestamp.is_some());
    let rv1 = created.metadata.resource_version.clone().unwrap();

    let err = api_error(
        api.create(&PostParams::default(), &service("web"))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(err.message, "services \"web\" already exists");

    let mut changed = created.clone();
    changed
        .metadata
        .labels
        .get_or_insert_default()
        .insert("tier".into(), "fe".into());
    let updated = api
        .replace("web", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_ne!(
        updated.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );
    assert_eq!(updated.metadata.uid.as_deref(), Some(uid.as_str()));
    assert_eq!(updated.metadata.generation, None);

    // The stale copy still carries rv1.
    let err = api_error(
        api.replace("web", &PostParams::default(), &changed)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on services \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );

    let mut spec_change = updated.clone();
    spec_change.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 8080;
    let bumped = api
        .replace("web", &PostParams::default(), &spec_change)
        .await
        .unwrap();
    assert_eq!(
        bumped.metadata.generation, None,
        "Services keep no generation"
    );

    api.delete("web", &DeleteParams::default()).await.unwrap();
    let err = api_error(api.get("web").await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.message, "services \"web\" not found");
}

#[tokio::test]
async fn generate_name_and_invalid_names() {
    let ns = namespace("names").await;
    let api: Api<ConfigMap> = Api::namespaced(client(), &ns);
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "cfg-"}})).unwrap();
    let created = api.create(&PostParams::default(), &cm).await.unwrap();
    let name = created.metadata.name.unwrap();
    assert!(name.starts_with("cfg-") && name.len() == 9, "{name}");

    let bad: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "Bad_Name"}})).unwrap();
    let err = api_error(api.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message.starts_with(
            "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""
        ),
        "{}",
        err.message
    );

    let missing: Api<ConfigMap> = Api::namespaced(client(), "no-such-namespace");
    let err = api_error(
        missing
            .create(&PostParams::default(), &bad)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.message, "namespaces \"no-such-namespace\" not found");
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let ns = namespace("fin").await;
    let api: Api<ConfigMap> = Api::namespaced(client(), &ns);
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let held = api.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());

    let add = json!({"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}});
    let err = api_error(
        api.patch("held", &PatchParams::default(), &Patch::Merge(&add))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);

    let clear = json!({"metadata": {"finalizers": null}});
    api.patch("held", &PatchParams::default(), &Patch::Merge(&clear))
        .await
        .unwrap();
    let err = api_error(api.get("held").await.unwrap_err());
    assert_eq!(err.code, 404);
}

#[tokio::test]
async fn status_subresource_splits_spec_and_status() {
    let ns = namespace("status").await;
    let api: Api<Pod> = Api::namespaced(client(), &ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": "Running"}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &pod).await.unwrap();
    let on_create = created.status.clone().unwrap();
    assert_eq!(
        (on_create.phase.as_deref(), on_create.qos_class.as_deref()),
        (Some("Pending"), Some("BestEffort")),
        "a create cannot set a pod's status"
    );
    let mut lb = serde_json::to_value(service("lb")).unwrap();
    lb["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}});
    let lb: Service = serde_json::from_value(lb).unwrap();
    let svc = Api::<Service>::namespaced(client(), &ns)
        .create(&PostParams::default(), &lb)
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(svc.status).unwrap(),
        json!({"loadBalancer": {}}),
        "a create cannot set a service's status"
    );
    let status = json!({"status": {"phase": "Running", "podIP": "10.0.0.5"}, "spec": {"nodeName": "ignored"}});
    let after = api
        .patch_status("p", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    assert_eq!(after.status.unwrap().pod_ip.as_deref(), Some("10.0.0.5"));
    assert_eq!(
        after.spec.unwrap().node_name,
        None,
        "status writes ignore spec"
    );
    assert_eq!(after.metadata.generation, created.metadata.generation);

    let main = json!({"status": {"phase": "Failed"}, "metadata": {"labels": {"x": "y"}}});
    let after = api
        .patch("p", &PatchParams::default(), &Patch::Merge(&main))
        .await
        .unwrap();
    assert_eq!(
        after.status.unwrap().phase.as_deref(),
        Some("Running"),
        "main writes ignore status"
    );
    assert_eq!(after.metadata.labels.unwrap()["x"], "y");
}

#[tokio::test]
async fn label_and_field_selectors_and_paging() {
    let ns = namespace("sel").await;
    let api: Api<Pod> = Api::namespaced(client(), &ns);
    for i in 0..7 {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("p{i}"), "labels": {"parity": if i % 2 == 0 {"even"} else {"odd"}}},
            "spec": {"nodeName": format!("n{}", i % 3), "containers": [{"name": "c", "image": "i"}]}
        }))
        .unwrap();
        api.create(&PostParams::default(), &pod).await.unwrap();
    }
    let names = |l: kube::api::ObjectList<Pod>| -> Vec<String> {
        l.items
            .into_iter()
            .map(|p| p.metadata.name.unwrap())
            .collect()
    };
    let even = api
        .list(&ListParams::default().labels("parity=even"))
        .await
        .unwrap();
    assert_eq!(names(even), ["p0", "p2", "p4", "p6"]);
    let set = api
        .list(&ListParams::default().labels("parity in (odd),parity!=even"))
        .await
        .unwrap();
    assert_eq!(names(set), ["p1", "p3", "p5"]);
    let on_n1 = api
        .list(&ListParams::default().fields("spec.nodeName=n1"))
        .await
        .unwrap();
    assert_eq!(names(on_n1), ["p1", "p4"]);
    let err = api_error(
        api.list(&ListParams::default().fields("spec.bogus=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.message.as_str()),
        (400, "field label not supported: spec.bogus")
    );

    let first = api.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(first.metadata.remaining_item_count, Some(4));
    let token = first.metadata.continue_.clone().unwrap();
    let second = api
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .unwrap();
    let third = api
        .list(
            &ListParams::default()
                .limit(3)
                .continue_token(second.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    assert!(third.metadata.continue_.is_none());
    let all: Vec<String> = [names(first), names(second), names(third)].concat();
    assert_eq!(all, ["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
}

#[tokio::test]
async fn dynamic_client_and_dry_run() {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let ns = namespace("dyn").await;
    let gvk = GroupVersionKind::gvk("coordination.k8s.io", "v1", "Lease");
    let ar = ApiResource::from_gvk(&gvk);
    let api: Api<DynamicObject> = Api::namespaced_with(client(), &ns, &ar);
    let lease: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "l"}, "spec": {"holderIdentity": "a"}
    }))
    .unwrap();
    let dry = api
        .create(
            &PostParams {
                dry_run: true,
                field_manager: None,
            },
            &lease,
        )
        .await
        .unwrap();
    assert_eq!(dry.data["spec"]["holderIdentity"], "a");
    assert_eq!(
        api_error(api.get("l").await.unwrap_err()).code,
        404,
        "dry run stored nothing"
    );
    api.create(&PostParams::default(), &lease).await.unwrap();
    let got = api.get("l").await.unwrap();
    assert_eq!(got.types.unwrap().kind, "Lease");
    let err = api_error(api.get("missing").await.unwrap_err());
    assert_eq!(
        err.message,
        "leases.coordination.k8s.io \"missing\" not found"
    );
}
