"""fedmesh's own end-to-end tests of the official Python client's typed APIs
against the embedded API server named by $KUBECONFIG (which runs the
simulated data plane): the calls an application or operator written with the
client makes, beside the upstream dynamic-client tests run.py also runs.
Nothing here needs a container to really run (exec, attach and port-forward
are out of reach: the embedded server's pods are simulated)."""
import os
import time
import uuid

import pytest
from kubernetes import client, config, utils, watch
from kubernetes.client.rest import ApiException


@pytest.fixture(scope="module")
def api():
    return config.new_client_from_config(config_file=os.environ["KUBECONFIG"])


@pytest.fixture()
def namespace(api):
    core = client.CoreV1Api(api)
    name = "py-" + uuid.uuid4().hex[:8]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def until(what, check, timeout=30.0):
    """Calls check() until it is truthy, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_version_and_nodes(api):
    version = client.VersionApi(api).get_code()
    assert version.major == "1" and version.minor == "33"
    nodes = client.CoreV1Api(api).list_node().items
    assert nodes, "the simulated nodes are listed"
    node = client.CoreV1Api(api).read_node(nodes[0].metadata.name)
    assert node.metadata.labels["kubernetes.io/hostname"] == node.metadata.name
    assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)


def test_a_pod_runs_and_is_deleted(api, namespace):
    core = client.CoreV1Api(api)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="web", labels={"app": "web"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="nginx", image="nginx:1.25")]),
    )
    core.create_namespaced_pod(namespace, pod)
    running = until(
        "the pod to run",
        lambda: (p := core.read_namespaced_pod("web", namespace)).status.phase == "Running" and p,
    )
    assert running.status.pod_ip and running.spec.node_name
    with pytest.raises(ApiException) as err:
        core.read_namespaced_pod_log("web", namespace)
    assert err.value.status == 400, "nothing really runs, so no logs"
    core.delete_namespaced_pod("web", namespace, grace_period_seconds=0)
    until(
        "the pod to go",
        lambda: not core.list_namespaced_pod(namespace, label_selector="app=web").items,
    )


def test_configmaps_create_patch_list_delete(api, namespace):
    core = client.CoreV1Api(api)
    for i in range(3):
        core.create_namespaced_config_map(
            namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=f"cm-{i}", labels={"e2e": "true"}),
                data={"i": str(i)},
            ),
        )
    core.patch_namespaced_config_map("cm-1", namespace, {"data": {"extra": "yes"}})
    assert core.read_namespaced_config_map("cm-1", namespace).data == {"i": "1", "extra": "yes"}
    listed = core.list_namespaced_config_map(namespace, label_selector="e2e=true", limit=2)
    assert len(listed.items) == 2 and listed.metadata._continue
    rest = core.list_namespaced_config_map(
        namespace, label_selector="e2e=true", limit=2, _continue=listed.metadata._continue
    )
    assert [c.metadata.name for c in listed.items + rest.items] == ["cm-0", "cm-1", "cm-2"]
    core.delete_collection_namespaced_config_map(namespace, label_selector="e2e=true")
    assert core.list_namespaced_config_map(namespace, label_selector="e2e=true").items == []
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("cm-0", namespace)
    assert err.value.status == 404


def test_services_get_cluster_ips_and_endpoints(api, namespace):
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    labels = {"app": "shop"}
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="shop"),
            spec=client.V1DeploymentSpec(
                replicas=2,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name="shop", image="shop:1")]
                    ),
                ),
            ),
        ),
    )
    service = core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="shop"),
            spec=client.V1ServiceSpec(
                selector=labels, ports=[client.V1ServicePort(port=80, target_port=8080)]
            ),
        ),
    )
    assert service.spec.cluster_ip
    def ready_addresses():
        try:
            endpoints = core.read_namespaced_endpoints("shop", namespace)
        except ApiException as err:
            if err.status == 404:  # the endpoints controller has not made it yet
                return 0
            raise
        return sum(len(s.addresses or []) for s in endpoints.subsets or [])

    until("two ready endpoints", lambda: ready_addresses() == 2)
    patched = core.patch_namespaced_service("shop", namespace, {"metadata": {"labels": {"tier": "web"}}})
    assert patched.metadata.labels == {"tier": "web"}
    assert patched.spec.cluster_ip == service.spec.cluster_ip


def test_a_deployment_rolls_out_scales_and_cascades(api, namespace):
    apps = client.AppsV1Api(api)
    core = client.CoreV1Api(api)
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
            },
        },
    }
    apps.create_namespaced_deployment(namespace, body)
    until(
        "three available replicas",
        lambda: (apps.read_namespaced_deployment_status("web", namespace).status.available_replicas or 0)
        == 3,
    )
    apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 1}})
    until(
        "one pod left",
        lambda: len(core.list_namespaced_pod(namespace, label_selector="app=web").items) == 1,
    )
    apps.delete_namespaced_deployment("web", namespace, propagation_policy="Foreground")
    until(
        "the pods to be deleted with it",
        lambda: not core.list_namespaced_pod(namespace, label_selector="app=web").items,
    )


def test_jobs_and_cronjobs_are_served(api, namespace):
    batch = client.BatchV1Api(api)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "pi", "image": "perl", "command": ["perl", "-e", "1"]}],
                }
            }
        },
    }
    created = batch.create_namespaced_job(namespace, job)
    assert created.spec.backoff_limit == 6, "defaulted as kube-apiserver does"
    assert batch.read_namespaced_job("pi", namespace).metadata.name == "pi"
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "tick"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": job["spec"]}},
    }
    batch.create_namespaced_cron_job(namespace, cron)
    assert [c.metadata.name for c in batch.list_namespaced_cron_job(namespace).items] == ["tick"]
    batch.delete_namespaced_job("pi", namespace)


def test_watch_sees_added_modified_deleted(api, namespace):
    core = client.CoreV1Api(api)
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w"), data={"a": "1"})
    )
    core.patch_namespaced_config_map("w", namespace, {"data": {"a": "2"}})
    core.delete_namespaced_config_map("w", namespace)
    seen = []
    w = watch.Watch()
    for event in w.stream(
        core.list_namespaced_config_map,
        namespace,
        resource_version=start,
        timeout_seconds=10,
    ):
        if event["object"].metadata.name == "w":
            seen.append((event["type"], (event["object"].data or {}).get("a")))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]


def test_create_from_yaml_applies_a_multi_document_manifest(api, namespace, tmp_path):
    manifest = tmp_path / "app.yaml"
    manifest.write_text(
        """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {mode: fast}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: "api:1"}]}
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{port: 80}]
"""
    )
    created = utils.create_from_yaml(api, str(manifest), namespace=namespace)
    kinds = sorted(o.kind for group in created for o in group)
    assert kinds == ["ConfigMap", "Deployment", "Service"]
    with pytest.raises(utils.FailToCreateError):
        utils.create_from_yaml(api, str(manifest), namespace=namespace)


def test_server_side_apply_with_the_typed_client(api, namespace):
    core = client.CoreV1Api(api)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "v"}}
    applied = core.patch_namespaced_config_map(
        "applied",
        namespace,
        body,
        field_manager="py-e2e",
        _content_type="application/apply-patch+yaml",
    )
    assert [m.manager for m in applied.metadata.managed_fields] == ["py-e2e"]
    assert applied.metadata.managed_fields[0].operation == "Apply"
