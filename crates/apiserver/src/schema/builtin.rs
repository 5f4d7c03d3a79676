//! Schemas of the built-in kinds we serve, made once from k8s-openapi's `schemars`
//! output and enriched with the list/map/patch extensions that output lacks (see
//! `merge_info`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use k8s_openapi::api::{
    admissionregistration, apps, authentication, authorization, autoscaling, batch, coordination,
    core, discovery, events, networking, policy, rbac, scheduling, storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use super::{AdditionalProperties, Schema, SchemaType, merge_info, parse_schema};

/// A built-in kind this server serves, with its group, version, resource name and scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BuiltinKind {
    /// core/v1 Namespace
    Namespace,
    /// core/v1 Service
    Service,
    /// core/v1 Endpoints
    Endpoints,
    /// core/v1 Pod
    Pod,
    /// core/v1 Node
    Node,
    /// core/v1 Secret
    Secret,
    /// core/v1 ConfigMap
    ConfigMap,
    /// core/v1 ServiceAccount
    ServiceAccount,
    /// core/v1 Event
    Event,
    /// events.k8s.io/v1 Event
    EventsEvent,
    /// discovery.k8s.io/v1 EndpointSlice
    EndpointSlice,
    /// coordination.k8s.io/v1 Lease
    Lease,
    /// rbac.authorization.k8s.io/v1 Role
    Role,
    /// rbac.authorization.k8s.io/v1 ClusterRole
    ClusterRole,
    /// rbac.authorization.k8s.io/v1 RoleBinding
    RoleBinding,
    /// rbac.authorization.k8s.io/v1 ClusterRoleBinding
    ClusterRoleBinding,
    /// apiextensions.k8s.io/v1 CustomResourceDefinition
    CustomResourceDefinition,
    /// authentication.k8s.io/v1 TokenRequest (the `serviceaccounts/token` subresource)
    TokenRequest,
    /// authorization.k8s.io/v1 SubjectAccessReview
    SubjectAccessReview,
    /// authorization.k8s.io/v1 SelfSubjectAccessReview
    SelfSubjectAccessReview,
    /// apps/v1 Deployment
    Deployment,
    /// apps/v1 ReplicaSet
    ReplicaSet,
    /// apps/v1 StatefulSet
    StatefulSet,
    /// apps/v1 DaemonSet
    DaemonSet,
    /// batch/v1 Job
    Job,
    /// batch/v1 CronJob
    CronJob,
    /// networking.k8s.io/v1 NetworkPolicy
    NetworkPolicy,
    /// networking.k8s.io/v1 Ingress
    Ingress,
    /// networking.k8s.io/v1 IngressClass
    IngressClass,
    /// policy/v1 PodDisruptionBudget
    PodDisruptionBudget,
    /// autoscaling/v2 HorizontalPodAutoscaler
    HorizontalPodAutoscaler,
    /// core/v1 PersistentVolume
    PersistentVolume,
    /// core/v1 PersistentVolumeClaim
    PersistentVolumeClaim,
    /// storage.k8s.io/v1 StorageClass
    StorageClass,
    /// core/v1 ResourceQuota
    ResourceQuota,
    /// core/v1 LimitRange
    LimitRange,
    /// scheduling.k8s.io/v1 PriorityClass
    PriorityClass,
    /// core/v1 ReplicationController
    ReplicationController,
    /// admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration
    ValidatingWebhookConfiguration,
    /// admissionregistration.k8s.io/v1 MutatingWebhookConfiguration
    MutatingWebhookConfiguration,
}

impl BuiltinKind {
    /// Every built-in kind.
    pub const ALL: [BuiltinKind; 40] = [
        Self::Namespace,
        Self::Service,
        Self::Endpoints,
        Self::Pod,
        Self::Node,
        Self::Secret,
        Self::ConfigMap,
        Self::ServiceAccount,
        Self::Event,
        Self::EventsEvent,
        Self::EndpointSlice,
        Self::Lease,
        Self::Role,
        Self::ClusterRole,
        Self::RoleBinding,
        Self::ClusterRoleBinding,
        Self::CustomResourceDefinition,
        Self::TokenRequest,
        Self::SubjectAccessReview,
        Self::SelfSubjectAccessReview,
        Self::Deployment,
        Self::ReplicaSet,
        Self::StatefulSet,
        Self::DaemonSet,
        Self::Job,
        Self::CronJob,
        Self::NetworkPolicy,
        Self::Ingress,
        Self::IngressClass,
        Self::PodDisruptionBudget,
        Self::HorizontalPodAutoscaler,
        Self::PersistentVolume,
        Self::PersistentVolumeClaim,
        Self::StorageClass,
        Self::ResourceQuota,
        Self::LimitRange,
        Self::PriorityClass,
        Self::ReplicationController,
        Self::ValidatingWebhookConfiguration,
        Self::MutatingWebhookConfiguration,
    ];

    /// (group, version, kind, plural, namespaced, OpenAPI definition name)
    fn info(
        self,
    ) -> (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        bool,
        &'static str,
    ) {
        match self {
            Self::Namespace => (
                "",
                "v1",
                "Namespace",
                "namespaces",
                false,
                "io.k8s.api.core.v1.Namespace",
            ),
            Self::Service => (
                "",
                "v1",
                "Service",
                "services",
                true,
                "io.k8s.api.core.v1.Service",
            ),
            Self::Endpoints => (
                "",
                "v1",
                "Endpoints",
                "endpoints",
                true,
                "io.k8s.api.core.v1.Endpoints",
            ),
            Self::Pod => ("", "v1", "Pod", "pods", true, "io.k8s.api.core.v1.Pod"),
            Self::Node => ("", "v1", "Node", "nodes", false, "io.k8s.api.core.v1.Node"),
            Self::Secret => (
                "",
                "v1",
                "Secret",
                "secrets",
                true,
                "io.k8s.api.core.v1.Secret",
            ),
            Self::ConfigMap => (
                "",
                "v1",
                "ConfigMap",
                "configmaps",
                true,
                "io.k8s.api.core.v1.ConfigMap",
            ),
            Self::ServiceAccount => (
                "",
                "v1",
                "ServiceAccount",
                "serviceaccounts",
                true,
                "io.k8s.api.core.v1.ServiceAccount",
            ),
            Self::Event => (
                "",
                "v1",
                "Event",
                "events",
                true,
                "io.k8s.api.core.v1.Event",
            ),
            Self::EventsEvent => (
                "events.k8s.io",
                "v1",
                "Event",
                "events",
                true,
                "io.k8s.api.events.v1.Event",
            ),
            Self::EndpointSlice => (
                "discovery.k8s.io",
                "v1",
                "EndpointSlice",
                "endpointslices",
                true,
                "io.k8s.api.discovery.v1.EndpointSlice",
            ),
            Self::Lease => (
                "coordination.k8s.io",
                "v1",
                "Lease",
                "leases",
                true,
                "io.k8s.api.coordination.v1.Lease",
            ),
            Self::Role => (
                "rbac.authorization.k8s.io",
                "v1",
                "Role",
                "roles",
                true,
                "io.k8s.api.rbac.v1.Role",
            ),
            Self::ClusterRole => (
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRole",
                "clusterroles",
                false,
                "io.k8s.api.rbac.v1.ClusterRole",
            ),
            Self::RoleBinding => (
                "rbac.authorization.k8s.io",
                "v1",
                "RoleBinding",
                "rolebindings",
                true,
                "io.k8s.api.rbac.v1.RoleBinding",
            ),
            Self::ClusterRoleBinding => (
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRoleBinding",
                "clusterrolebindings",
                false,
                "io.k8s.api.rbac.v1.ClusterRoleBinding",
            ),
            Self::CustomResourceDefinition => (
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                false,
                "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
            ),
            Self::TokenRequest => (
                "authentication.k8s.io",
                "v1",
                "TokenRequest",
                "token",
                true,
                "io.k8s.api.authentication.v1.TokenRequest",
            ),
            Self::SubjectAccessReview => (
                "authorization.k8s.io",
                "v1",
                "SubjectAccessReview",
                "subjectaccessreviews",
                false,
                "io.k8s.api.authorization.v1.SubjectAccessReview",
            ),
            Self::SelfSubjectAccessReview => (
                "authorization.k8s.io",
                "v1",
                "SelfSubjectAccessReview",
                "selfsubjectaccessreviews",
                false,
                "io.k8s.api.authorization.v1.SelfSubjectAccessReview",
            ),
            Self::Deployment => (
                "apps",
                "v1",
                "Deployment",
                "deployments",
                true,
                "io.k8s.api.apps.v1.Deployment",
            ),
            Self::ReplicaSet => (
                "apps",
                "v1",
                "ReplicaSet",
                "replicasets",
                true,
                "io.k8s.api.apps.v1.ReplicaSet",
            ),
            Self::StatefulSet => (
                "apps",
                "v1",
                "StatefulSet",
                "statefulsets",
                true,
                "io.k8s.api.apps.v1.StatefulSet",
            ),
            Self::DaemonSet => (
                "apps",
                "v1",
                "DaemonSet",
                "daemonsets",
                true,
                "io.k8s.api.apps.v1.DaemonSet",
            ),
            Self::Job => (
                "batch",
                "v1",
                "Job",
                "jobs",
                true,
                "io.k8s.api.batch.v1.Job",
            ),
            Self::CronJob => (
                "batch",
                "v1",
                "CronJob",
                "cronjobs",
                true,
                "io.k8s.api.batch.v1.CronJob",
            ),
            Self::NetworkPolicy => (
                "networking.k8s.io",
                "v1",
                "NetworkPolicy",
                "networkpolicies",
                true,
                "io.k8s.api.networking.v1.NetworkPolicy",
            ),
            Self::Ingress => (
                "networking.k8s.io",
                "v1",
                "Ingress",
                "ingresses",
                true,
                "io.k8s.api.networking.v1.Ingress",
            ),
            Self::IngressClass => (
                "networking.k8s.io",
                "v1",
                "IngressClass",
                "ingressclasses",
                false,
                "io.k8s.api.networking.v1.IngressClass",
            ),
            Self::PodDisruptionBudget => (
                "policy",
                "v1",
                "PodDisruptionBudget",
                "poddisruptionbudgets",
                true,
                "io.k8s.api.policy.v1.PodDisruptionBudget",
            ),
            Self::HorizontalPodAutoscaler => (
                "autoscaling",
                "v2",
                "HorizontalPodAutoscaler",
                "horizontalpodautoscalers",
                true,
                "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
            ),
            Self::PersistentVolume => (
                "",
                "v1",
                "PersistentVolume",
                "persistentvolumes",
                false,
                "io.k8s.api.core.v1.PersistentVolume",
            ),
            Self::PersistentVolumeClaim => (
                "",
                "v1",
                "PersistentVolumeClaim",
                "persistentvolumeclaims",
                true,
                "io.k8s.api.core.v1.PersistentVolumeClaim",
            ),
            Self::StorageClass => (
                "storage.k8s.io",
                "v1",
                "StorageClass",
                "storageclasses",
                false,
                "io.k8s.api.storage.v1.StorageClass",
            ),
            Self::ResourceQuota => (
                "",
                "v1",
                "ResourceQuota",
                "resourcequotas",
                true,
                "io.k8s.api.core.v1.ResourceQuota",
            ),
            Self::LimitRange => (
                "",
                "v1",
                "LimitRange",
                "limitranges",
                true,
                "io.k8s.api.core.v1.LimitRange",
            ),
            Self::PriorityClass => (
                "scheduling.k8s.io",
                "v1",
                "PriorityClass",
                "priorityclasses",
                false,
                "io.k8s.api.scheduling.v1.PriorityClass",
            ),
            Self::ReplicationController => (
                "",
                "v1",
                "ReplicationController",
                "replicationcontrollers",
                true,
                "io.k8s.api.core.v1.ReplicationController",
            ),
            Self::ValidatingWebhookConfiguration => (
                "admissionregistration.k8s.io",
                "v1",
                "ValidatingWebhookConfiguration",
                "validatingwebhookconfigurations",
                false,
                "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
            ),
            Self::MutatingWebhookConfiguration => (
                "admissionregistration.k8s.io",
                "v1",
                "MutatingWebhookConfiguration",
                "mutatingwebhookconfigurations",
                false,
                "io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration",
            ),
        }
    }

    /// API group (`""` for the core group).
    pub fn group(self) -> &'static str {
        self.info().0
    }

    /// API version (`v1`).
    pub fn version(self) -> &'static str {
        self.info().1
    }

    /// Kind (`Service`).
    pub fn kind(self) -> &'static str {
        self.info().2
    }

    /// `apiVersion` as written in objects (`v1`, `discovery.k8s.io/v1`).
    pub fn api_version(self) -> String {
        match self.group() {
            "" => self.version().to_owned(),
            g => format!("{g}/{}", self.version()),
        }
    }

    /// Plural resource name (`services`; `token` for the TokenRequest subresource).
    pub fn plural(self) -> &'static str {
        self.info().3
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        self.info().4
    }

    /// The OpenAPI definition name (`io.k8s.api.core.v1.Service`).
    pub fn definition_name(self) -> &'static str {
        self.info().5
    }

    /// Whether the kind is stored and listed (false for the review and token kinds,
    /// which are create-only).
    pub fn is_stored(self) -> bool {
        !matches!(
            self,
            Self::TokenRequest | Self::SubjectAccessReview | Self::SelfSubjectAccessReview
        )
    }

    /// The kind for an `apiVersion` and `kind` as written in an object.
    pub fn from_api_version_kind(api_version: &str, kind: &str) -> Option<Self> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        Self::from_gvk(group, version, kind)
    }

    /// The kind for a group, version and kind.
    pub fn from_gvk(group: &str, version: &str, kind: &str) -> Option<Self> {
        Self::from_group_kind(group, kind).filter(|k| k.version() == version)
    }

    /// The kind for a group and kind (each is served in one version).
    pub fn from_group_kind(group: &str, kind: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.group() == group && k.kind() == kind)
    }

    /// The schema of this kind (shared, made on first use).
    pub fn schema(self) -> Arc<Schema> {
        builtin_schema(self)
    }
}

/// The schema of a built-in kind.
pub fn builtin_schema(kind: BuiltinKind) -> Arc<Schema> {
    match registry().defs.get(kind.definition_name()) {
        Some(s) => s.clone(),
        // Every kind's definition is generated in `generate`; this arm only guards
        // against a k8s-openapi rename, by accepting anything.
        None => Arc::new(Schema {
            preserve_unknown_fields: true,
            ..Schema::of_type(SchemaType::Object)
        }),
    }
}

/// The schema of any definition that the built-in kinds use, by its OpenAPI name
/// (`io.k8s.api.core.v1.PodSpec`, `io.k8s.apimachinery.pkg.apis.meta.v1.Status`, ...).
pub fn builtin_definition(name: &str) -> Option<Arc<Schema>> {
    registry().defs.get(name).cloned()
}

/// The schema of `ObjectMeta` (pruning uses it for the `metadata` of every object).
pub fn object_meta_schema() -> &'static Schema {
    &registry().object_meta
}

struct Registry {
    defs: BTreeMap<String, Arc<Schema>>,
    object_meta: Schema,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let raw = generate();
        let mut conv = Converter {
            raw: &raw,
            done: HashMap::new(),
            stack: Vec::new(),
        };
        let mut defs = BTreeMap::new();
        for name in raw.keys() {
            let s = conv.resolve(name);
            defs.insert(name.clone(), s);
        }
        for kind in BuiltinKind::ALL.into_iter().filter(|k| k.is_stored()) {
            let (name, list) = list_definition(kind);
            if let Ok(s) = conv.convert(&list) {
                defs.insert(
                    name.clone(),
                    Arc::new(Schema {
                        definition: Some(name.into()),
                        ..s
                    }),
                );
            }
        }
        let object_meta = defs
            .get("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
            .map(|s| (**s).clone())
            .unwrap_or_else(|| Schema {
                preserve_unknown_fields: true,
                ..Schema::of_type(SchemaType::Object)
            });
        Registry { defs, object_meta }
    })
}

/// Runs schemars over every type we serve (and the meta types clients read) and
/// returns the raw definitions.
fn generate() -> Map<String, Value> {
    let mut g = SchemaGenerator::new(SchemaSettings::draft2020_12());
    fn add<T: JsonSchema>(g: &mut SchemaGenerator) {
        g.subschema_for::<T>();
    }
    add::<core::v1::Namespace>(&mut g);
    add::<core::v1::Service>(&mut g);
    add::<core::v1::Endpoints>(&mut g);
    add::<core::v1::Pod>(&mut g);
    add::<core::v1::Node>(&mut g);
    add::<core::v1::Secret>(&mut g);
    add::<core::v1::ConfigMap>(&mut g);
    add::<core::v1::ServiceAccount>(&mut g);
    add::<core::v1::Event>(&mut g);
    add::<events::v1::Event>(&mut g);
    add::<discovery::v1::EndpointSlice>(&mut g);
    add::<coordination::v1::Lease>(&mut g);
    add::<rbac::v1::Role>(&mut g);
    add::<rbac::v1::ClusterRole>(&mut g);
    add::<rbac::v1::RoleBinding>(&mut g);
    add::<rbac::v1::ClusterRoleBinding>(&mut g);
    add::<apiextensions::CustomResourceDefinition>(&mut g);
    add::<authentication::v1::TokenRequest>(&mut g);
    add::<authorization::v1::SubjectAccessReview>(&mut g);
    add::<authorization::v1::SelfSubjectAccessReview>(&mut g);
    add::<apps::v1::Deployment>(&mut g);
    add::<apps::v1::ReplicaSet>(&mut g);
    add::<apps::v1::StatefulSet>(&mut g);
    add::<apps::v1::DaemonSet>(&mut g);
    add::<batch::v1::Job>(&mut g);
    add::<batch::v1::CronJob>(&mut g);
    add::<networking::v1::NetworkPolicy>(&mut g);
    add::<networking::v1::Ingress>(&mut g);
    add::<networking::v1::IngressClass>(&mut g);
    add::<policy::v1::PodDisruptionBudget>(&mut g);
    add::<autoscaling::v2::HorizontalPodAutoscaler>(&mut g);
    add::<core::v1::PersistentVolume>(&mut g);
    add::<core::v1::PersistentVolumeClaim>(&mut g);
    add::<storage::v1::StorageClass>(&mut g);
    add::<core::v1::ResourceQuota>(&mut g);
    add::<core::v1::LimitRange>(&mut g);
    add::<scheduling::v1::PriorityClass>(&mut g);
    add::<core::v1::ReplicationController>(&mut g);
    add::<admissionregistration::v1::ValidatingWebhookConfiguration>(&mut g);
    add::<admissionregistration::v1::MutatingWebhookConfiguration>(&mut g);
    add::<meta::Status>(&mut g);
    add::<meta::DeleteOptions>(&mut g);
    add::<meta::WatchEvent<core::v1::Pod>>(&mut g);
    add::<meta::APIResourceList>(&mut g);
    add::<meta::APIGroupList>(&mut g);
    add::<meta::APIVersions>(&mut g);
    add::<meta::ListMeta>(&mut g);
    add::<meta::Patch>(&mut g);
    g.take_definitions(false)
}

/// `<Kind>List` definitions, which k8s-openapi models as a generic type without a
/// schema.
fn list_definition(kind: BuiltinKind) -> (String, Value) {
    let name = format!("{}List", kind.definition_name());
    let v = json!({
        "description": format!("{}List is a list of {} objects.", kind.kind(), kind.kind()),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values."},
            "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase."},
            "items": {"type": "array", "description": format!("List of {}.", kind.plural()), "items": {"$ref": format!("#/$defs/{}", kind.definition_name())}},
            "metadata": {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta", "description": "Standard list metadata."}
        }
    });
    (name, v)
}

/// Definitions whose schemars output says `type: object` but whose values are free
/// JSON (Go's `runtime.RawExtension`, `FieldsV1`, apiextensions' `JSON`).
fn is_free_form(name: &str) -> bool {
    matches!(
        name,
        "io.k8s.apimachinery.pkg.runtime.RawExtension"
            | "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1"
            | "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
            | "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON"
    )
}

struct Converter<'a> {
    raw: &'a Map<String, Value>,
    done: HashMap<String, Arc<Schema>>,
    stack: Vec<String>,
}

impl Converter<'_> {
    fn resolve(&mut self, name: &str) -> Arc<Schema> {
        if let Some(s) = self.done.get(name) {
            return s.clone();
        }
        let definition: Arc<str> = Arc::from(name);
        if self.stack.iter().any(|n| n == name) {
            // A recursive definition (JSONSchemaProps): the inner occurrence accepts any
            // object, so the expanded tree stays finite.
            return Arc::new(Schema {
                preserve_unknown_fields: true,
                definition: Some(definition),
                ..Schema::of_type(SchemaType::Object)
            });
        }
        let Some(raw) = self.raw.get(name) else {
            return Arc::new(Schema {
                preserve_unknown_fields: true,
                definition: Some(definition),
                ..Schema::default()
            });
        };
        self.stack.push(name.to_owned());
        let mut s = self.convert(raw).unwrap_or_default();
        self.stack.pop();
        if is_free_form(name) {
            s.preserve_unknown_fields = true;
            if name.ends_with(".JSON") {
                s.type_ = None;
            }
        }
        s.required.retain(|r| r != "metadata");
        merge_info::enrich(name, &mut s);
        s.definition = Some(definition);
        let s = Arc::new(s);
        self.done.insert(name.to_owned(), s.clone());
        s
    }

    /// Converts one raw schemars node, resolving `$ref`s into shared definitions.
    fn convert(&mut self, raw: &Value) -> Result<Schema, super::SchemaError> {
        let Some(obj) = raw.as_object() else {
            return Ok(Schema::default());
        };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or(r);
            let target = self.resolve(name);
            return Ok(match obj.get("description").and_then(Value::as_str) {
                Some(d) if target.description.as_deref() != Some(d) => Schema {
                    description: Some(d.to_owned()),
                    ..(*target).clone()
                },
                _ => (*target).clone(),
            });
        }
        let mut scalars = obj.clone();
        let children = [
            "properties",
            "items",
            "additionalProperties",
            "allOf",
            "anyOf",
            "oneOf",
            "not",
        ];
        for c in children {
            scalars.remove(c);
        }
        scalars.remove("$schema");
        let mut s = parse_schema(&Value::Object(scalars))?;
        if let Some(Value::Object(props)) = obj.get("properties") {
            for (k, v) in props {
                let p = self.child(v)?;
                s.properties.insert(k.clone(), p);
            }
        }
        if let Some(items) = obj.get("items") {
            s.items = Some(self.child(items)?);
        }
        match obj.get("additionalProperties") {
            Some(Value::Bool(b)) => s.additional_properties = Some(AdditionalProperties::Bool(*b)),
            Some(v @ Value::Object(_)) => {
                s.additional_properties = Some(AdditionalProperties::Schema(self.child(v)?));
            }
            _ => {}
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(Value::Array(list)) = obj.get(key) {
                let mut out = Vec::new();
                for v in list {
                    out.push(self.child(v)?);
                }
                match key {
                    "allOf" => s.all_of = out,
                    "anyOf" => s.any_of = out,
                    _ => s.one_of = out,
                }
            }
        }
        if let Some(n) = obj.get("not") {
            s.not = Some(self.child(n)?);
        }
        Ok(s)
    }

    /// Converts a child node; a bare `$ref` shares the definition's `Arc`.
    fn child(&mut self, raw: &Value) -> Result<Arc<Schema>, super::SchemaError> {
        if let Some(obj) = raw.as_object()
            && let Some(r) = obj.get("$ref").and_then(Value::as_str)
        {
            let name = r.rsplit('/').next().unwrap_or(r);
            let target = self.resolve(name);
            return Ok(match obj.get("description").and_then(Value::as_str) {
                Some(d) if target.description.as_deref() != Some(d) => Arc::new(Schema {
                    description: Some(d.to_owned()),
                    ..(*target).clone()
                }),
                _ => target,
            });
        }
        self.convert(raw).map(Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ListType, MapType};

    #[test]
    fn every_kind_has_a_schema_with_type_meta() {
        for kind in BuiltinKind::ALL {
            let s = kind.schema();
            assert_eq!(s.type_, Some(SchemaType::Object), "{kind:?}");
            assert!(s.property("apiVersion").is_some(), "{kind:?}");
            assert!(s.property("metadata").is_some(), "{kind:?}");
            assert_eq!(s.definition.as_deref(), Some(kind.definition_name()));
            assert!(!s.required.contains(&"metadata".to_owned()));
        }
    }

    #[test]
    fn kinds_round_trip_through_gvk() {
        for kind in BuiltinKind::ALL {
            assert_eq!(
                BuiltinKind::from_api_version_kind(&kind.api_version(), kind.kind()),
                Some(kind)
            );
        }
        assert_eq!(
            BuiltinKind::from_api_version_kind("events.k8s.io/v1", "Event"),
            Some(BuiltinKind::EventsEvent)
        );
        assert_eq!(
            BuiltinKind::from_api_version_kind("v1", "Event"),
            Some(BuiltinKind::Event)
        );
        assert_eq!(
            BuiltinKind::from_api_version_kind("apps/v1", "Deployment"),
            Some(BuiltinKind::Deployment)
        );
        assert_eq!(
            BuiltinKind::from_api_version_kind("apps/v2", "Deployment"),
            None
        );
    }

    #[test]
    fn service_schema_has_merge_extensions() {
        let svc = builtin_schema(BuiltinKind::Service);
        let ports = svc
            .property("spec")
            .and_then(|s| s.property("ports"))
            .unwrap();
        assert_eq!(ports.list_type, Some(ListType::Map));
        assert_eq!(
            ports.list_map_keys,
            vec!["port".to_owned(), "protocol".to_owned()]
        );
        assert_eq!(ports.patch_merge_key.as_deref(), Some("port"));
        assert!(ports.patch_merges());
        let port = ports
            .items
            .as_ref()
            .and_then(|i| i.property("targetPort"))
            .unwrap();
        assert!(port.int_or_string);
        let selector = svc
            .property("spec")
            .and_then(|s| s.property("selector"))
            .unwrap();
        assert_eq!(selector.map_type, Some(MapType::Atomic));
    }

    #[test]
    fn object_meta_lists() {
        let m = object_meta_schema();
        let owners = m.property("ownerReferences").unwrap();
        assert_eq!(owners.list_map_keys, vec!["uid".to_owned()]);
        assert_eq!(owners.patch_merge_key.as_deref(), Some("uid"));
        assert_eq!(
            m.property("finalizers").unwrap().list_type,
            Some(ListType::Set)
        );
        assert_eq!(
            m.property("managedFields").unwrap().list_type,
            Some(ListType::Atomic)
        );
        assert!(
            m.property("managedFields")
                .unwrap()
                .items
                .as_ref()
                .unwrap()
                .property("fieldsV1")
                .unwrap()
                .preserve_unknown_fields
        );
    }

    #[test]
    fn pod_containers_merge_by_name() {
        let pod = builtin_schema(BuiltinKind::Pod);
        let spec = pod.property("spec").unwrap();
        let containers = spec.property("containers").unwrap();
        assert_eq!(containers.patch_merge_key.as_deref(), Some("name"));
        assert_eq!(containers.list_map_keys, vec!["name".to_owned()]);
        let c = containers.items.as_ref().unwrap();
        let ports = c.property("ports").unwrap();
        assert_eq!(ports.patch_merge_key.as_deref(), Some("containerPort"));
        assert_eq!(
            ports.list_map_keys,
            vec!["containerPort".to_owned(), "protocol".to_owned()]
        );
        assert_eq!(
            c.property("env").unwrap().patch_merge_key.as_deref(),
            Some("name")
        );
        let volumes = spec.property("volumes").unwrap();
        assert!(volumes.patch_retains_keys() && volumes.patch_merges());
        let conditions = pod
            .property("status")
            .and_then(|s| s.property("conditions"))
            .unwrap();
        assert_eq!(conditions.patch_merge_key.as_deref(), Some("type"));
    }

    #[test]
    fn crd_schema_is_finite_and_free_form_where_go_is() {
        let crd = builtin_schema(BuiltinKind::CustomResourceDefinition);
        let version = crd
            .property("spec")
            .and_then(|s| s.property("versions"))
            .and_then(|v| v.items.clone())
            .unwrap();
        let props = version
            .property("schema")
            .and_then(|s| s.property("openAPIV3Schema"))
            .unwrap();
        assert!(props.property("properties").is_some());
        assert!(props.property("default").unwrap().preserve_unknown_fields);
    }
}
