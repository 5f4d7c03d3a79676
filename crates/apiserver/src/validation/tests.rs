//! Round trips of kubectl-style manifests through defaulting, pruning and validation.

use serde_json::{Value, json};

use super::*;
use crate::schema::{self, BuiltinKind, invalid_message};

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Service
metadata:
  name: my-app
  namespace: shop
  labels:
    app.kubernetes.io/name: my-app
  annotations:
    federation.tigera.io/serviceSelector: run == "my-app"
spec:
  selector:
    run: my-app
  ports:
  - name: my-app-ui
    port: 80
    targetPort: 9000
  - name: my-app-console
    port: 81
    protocol: TCP
    targetPort: console
---
apiVersion: v1
kind: Pod
metadata:
  name: my-app-1
  namespace: shop
  labels:
    run: my-app
spec:
  containers:
  - name: app
    image: nginx:1.27
    ports:
    - containerPort: 9000
      name: console
    env:
    - name: POD_IP
      valueFrom:
        fieldRef:
          fieldPath: status.podIP
    resources:
      requests:
        cpu: 100m
        memory: 64Mi
      limits:
        cpu: 1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  app.properties: |
    color=blue
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: shop
stringData:
  password: s3cr3t
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: reader
  namespace: shop
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: fedmesh-remote-reader
rules:
- apiGroups: [""]
  resources: ["services", "endpoints", "pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: fedmesh-remote-reader
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: fedmesh-remote-reader
subjects:
- kind: ServiceAccount
  name: reader
  namespace: shop
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: my-app-abc12
  namespace: shop
  labels:
    kubernetes.io/service-name: my-app
addressType: IPv4
endpoints:
- addresses: ["10.1.0.5"]
  conditions:
    ready: true
  nodeName: node-1
  zone: zone-a
  targetRef:
    kind: Pod
    name: my-app-1
    namespace: shop
ports:
- name: my-app-ui
  port: 9000
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: fedmesh-controller
  namespace: shop
spec:
  holderIdentity: replica-a
  leaseDurationSeconds: 15
  renewTime: "2026-11-23T16:00:00.000000Z"
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: remoteclusterconfigurations.projectcalico.org
spec:
  group: projectcalico.org
  scope: Cluster
  names:
    plural: remoteclusterconfigurations
    kind: RemoteClusterConfiguration
  versions:
  - name: v3
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - name: Status
      type: string
      jsonPath: .status.conditions[0].type
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              clusterAccessSecret:
                type: object
                properties:
                  name: {type: string}
                  namespace: {type: string}
                  kind: {type: string, default: Secret}
              syncOptions:
                type: object
                properties:
                  overlayRoutingMode:
                    type: string
                    enum: [Enabled, Disabled]
                    default: Disabled
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#;

fn manifests() -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(MANIFESTS).unwrap()
}

fn kind_of(obj: &Value) -> BuiltinKind {
    BuiltinKind::from_api_version_kind(
        obj["apiVersion"].as_str().unwrap(),
        obj["kind"].as_str().unwrap(),
    )
    .unwrap()
}

fn msgs(errs: Vec<FieldError>) -> Vec<String> {
    errs.iter().map(ToString::to_string).collect()
}

#[test]
fn manifests_default_prune_and_validate_cleanly() {
    let docs = manifests();
    assert_eq!(docs.len(), 11);
    for mut obj in docs {
        let kind = kind_of(&obj);
        default(kind, &mut obj);
        let once = obj.clone();
        default(kind, &mut obj);
        assert_eq!(obj, once, "{kind:?}: defaulting is idempotent");
        let pruned = schema::prune(&mut obj, &kind.schema());
        assert!(pruned.is_empty(), "{kind:?}: pruned {pruned:?}");
        assert_eq!(
            msgs(schema::validate(&obj, &kind.schema())),
            Vec::<String>::new(),
            "{kind:?}"
        );
        assert_eq!(
            msgs(validate(kind, &obj, None)),
            Vec::<String>::new(),
            "{kind:?}"
        );
        assert_eq!(
            msgs(validate(kind, &obj, Some(&obj))),
            Vec::<String>::new(),
            "{kind:?} update to itself"
        );
    }
}

#[test]
fn defaulted_objects_decode_as_typed_k8s_objects() {
    use k8s_openapi::api::core::v1::{Pod, Secret, Service};
    for mut obj in manifests() {
        let kind = kind_of(&obj);
        default(kind, &mut obj);
        let back = match kind {
            BuiltinKind::Service => {
                serde_json::to_value(serde_json::from_value::<Service>(obj.clone()).unwrap())
                    .unwrap()
            }
            BuiltinKind::Pod => {
                serde_json::to_value(serde_json::from_value::<Pod>(obj.clone()).unwrap()).unwrap()
            }
            BuiltinKind::Secret => {
                serde_json::to_value(serde_json::from_value::<Secret>(obj.clone()).unwrap())
                    .unwrap()
            }
            _ => continue,
        };
        assert_eq!(back, obj, "{kind:?}");
    }
}

#[test]
fn unknown_fields_are_reported_for_strict_validation() {
    let mut svc = manifests()
        .into_iter()
        .find(|d| d["kind"] == "Service")
        .unwrap();
    svc["spec"]["portz"] = json!([]);
    svc["spec"]["ports"][0]["nodeport"] = json!(1);
    let pruned = schema::prune(&mut svc, &BuiltinKind::Service.schema());
    assert_eq!(pruned, vec!["spec.ports[0].nodeport", "spec.portz"]);
    assert!(svc["spec"].get("portz").is_none());
}

#[test]
fn invalid_service_gives_kube_apiserver_status_message() {
    let mut svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "default"},
                         "spec": {"ports": [{"port": 0, "targetPort": 8080}]}});
    default(BuiltinKind::Service, &mut svc);
    let errs = validate(BuiltinKind::Service, &svc, None);
    assert_eq!(
        invalid_message(&BuiltinKind::Service.qualified_kind(), "x", &errs),
        "Service \"x\" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"
    );
    assert_eq!(
        schema::causes(&errs),
        json!([{"reason": "FieldValueInvalid", "message": "Invalid value: 0: must be between 1 and 65535, inclusive", "field": "spec.ports[0].port"}])
    );
}

#[test]
fn names_follow_each_kinds_rule() {
    let cases = [
        (BuiltinKind::Service, "1abc", true),
        (BuiltinKind::Service, "my.svc", true),
        (BuiltinKind::Pod, "my.pod", false),
        (BuiltinKind::Namespace, "my.ns", true),
        (BuiltinKind::ConfigMap, "app.config", false),
        (BuiltinKind::ClusterRole, "system:controller:x", false),
        (BuiltinKind::ClusterRole, "a/b", true),
        (BuiltinKind::Node, "Node-1", true),
    ];
    for (kind, name, bad) in cases {
        let ns = if kind.namespaced() {
            json!("default")
        } else {
            Value::Null
        };
        let mut obj = json!({"metadata": {"name": name}});
        if !ns.is_null() {
            obj["metadata"]["namespace"] = ns;
        }
        let errs: Vec<FieldError> = validate_object_meta(&obj, kind.namespaced(), kind.name_rule())
            .into_iter()
            .filter(|e| e.field.as_str() == "metadata.name")
            .collect();
        assert_eq!(!errs.is_empty(), bad, "{kind:?} {name}: {errs:?}");
    }
    let svc = json!({"metadata": {"name": "1abc", "namespace": "default"}, "spec": {"ports": [{"port": 80, "protocol": "TCP"}]}});
    assert_eq!(
        msgs(validate(BuiltinKind::Service, &svc, None)),
        vec![
            "metadata.name: Invalid value: \"1abc\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        ]
    );
}

#[test]
fn custom_resources_are_pruned_defaulted_and_validated_by_their_crd() {
    let mut crd = manifests()
        .into_iter()
        .find(|d| d["kind"] == "CustomResourceDefinition")
        .unwrap();
    default(BuiltinKind::CustomResourceDefinition, &mut crd);
    let (_, schema) = crd_version_schemas(&crd).unwrap().remove(0);
    let mut rcc = json!({"apiVersion": "projectcalico.org/v3", "kind": "RemoteClusterConfiguration",
        "metadata": {"name": "remotecluster"},
        "spec": {"clusterAccessSecret": {"name": "remote-secret", "namespace": "calico-system"}, "bogus": true},
        "status": {"conditions": [{"type": "InSync"}]}});
    assert_eq!(schema::prune(&mut rcc, &schema), vec!["spec.bogus"]);
    schema::default(&mut rcc, &schema);
    assert_eq!(rcc["spec"]["clusterAccessSecret"]["kind"], "Secret");
    assert!(rcc["spec"].get("syncOptions").is_none());
    assert!(validate_custom_resource(&rcc, None, &schema, false).is_empty());
    rcc["spec"]["syncOptions"] = json!({"overlayRoutingMode": "Sometimes"});
    assert_eq!(
        msgs(validate_custom_resource(&rcc, None, &schema, false)),
        vec![
            "spec.syncOptions.overlayRoutingMode: Unsupported value: \"Sometimes\": supported values: \"Enabled\", \"Disabled\""
        ]
    );
    assert_eq!(
        invalid_message(
            "RemoteClusterConfiguration.projectcalico.org",
            "remotecluster",
            &validate_custom_resource(&rcc, None, &schema, false)
        ),
        "RemoteClusterConfiguration.projectcalico.org \"remotecluster\" is invalid: spec.syncOptions.overlayRoutingMode: Unsupported value: \"Sometimes\": supported values: \"Enabled\", \"Disabled\""
    );
}

#[test]
fn qualified_kinds() {
    assert_eq!(BuiltinKind::Service.qualified_kind(), "Service");
    assert_eq!(
        BuiltinKind::EndpointSlice.qualified_kind(),
        "EndpointSlice.discovery.k8s.io"
    );
    assert_eq!(
        BuiltinKind::CustomResourceDefinition.qualified_kind(),
        "CustomResourceDefinition.apiextensions.k8s.io"
    );
}

#[test]
fn decode_errors_catch_wrong_types_and_bad_quantities() {
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x", "namespace": "default"},
                     "spec": {"ports": [{"port": "80"}]}});
    assert_eq!(
        msgs(decode_errors(BuiltinKind::Service, &svc)),
        vec![
            "spec.ports[0].port: Invalid value: \"80\": spec.ports[0].port in body must be of type integer: \"string\""
        ]
    );
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "a", "image": "x", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"cpu": "lots"}}}]}});
    assert_eq!(
        msgs(decode_errors(BuiltinKind::Pod, &pod)),
        vec![
            "spec.containers[0].resources.limits.cpu: Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        ]
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
        "data": {"ok": "aGk=", "bad": "not base64!"}});
    let errs = msgs(decode_errors(BuiltinKind::Secret, &secret));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("data[bad]: Invalid value: \"<redacted>\": illegal base64 data"),
        "{errs:?}"
    );
    let dry_run = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default", "creationTimestamp": null}});
    assert!(decode_errors(BuiltinKind::ConfigMap, &dry_run).is_empty());
    for doc in manifests() {
        assert!(decode_errors(kind_of(&doc), &doc).is_empty(), "{doc}");
    }
}

/// Every JSON pointer to a node of `v` (objects and arrays included).
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(c, p, out);
            }
        }
        _ => {}
    }
}

#[test]
fn wrong_shapes_anywhere_never_panic() {
    let junk = [
        json!(null),
        json!("x"),
        json!(-1),
        json!(1.5),
        json!([1, "a"]),
        json!({"k": []}),
        json!(true),
    ];
    for doc in manifests() {
        let kind = kind_of(&doc);
        let mut ptrs = Vec::new();
        pointers(&doc, String::new(), &mut ptrs);
        for p in &ptrs {
            for j in &junk {
                let mut obj = doc.clone();
                if let Some(slot) = obj.pointer_mut(p) {
                    *slot = j.clone();
                }
                let _ = decode_errors(kind, &obj);
                let mut pruned = obj.clone();
                let _ = schema::prune(&mut pruned, &kind.schema());
                let mut defaulted = obj.clone();
                prepare_create(kind, &mut defaulted);
                prepare_update(kind, &mut defaulted, &doc);
                default(kind, &mut defaulted);
                let _ = schema::validate(&defaulted, &kind.schema());
                let _ = validate(kind, &defaulted, None);
                let _ = validate(kind, &defaulted, Some(&doc));
                let _ = validate(kind, &doc, Some(&defaulted));
            }
        }
    }
}
