//! Per-kind validation and defaulting of built-in types, as kube-apiserver applies them,
//! as pure functions over `serde_json::Value`.
//!
//! The spine calls, for a create: [`decode_errors`] (a 400 when not empty),
//! [`prepare_create`], [`default`], then [`validate`] with `old = None`;
//! for an update: [`prepare_update`], [`default`], then [`validate`] with the stored
//! object. Errors carry Kubernetes field paths and messages; build the `Invalid`
//! `Status` with [`crate::schema::invalid_message`] (and
//! [`BuiltinKind::qualified_kind`] for its kind) and [`crate::schema::causes`].
//!
//! Not covered (kube-apiserver does these elsewhere): clusterIP/nodePort allocation (the `cluster` module), the
//! service-account token volume, and most of `PodSpec`'s deeper fields (volumes,
//! probes, security contexts are checked only by the schema's types).

mod core;
mod crd;
mod discovery;
mod meta;
mod names;
mod pod;
mod rbac;
mod service;
mod workloads;

use serde_json::Value;

pub use crd::{expected_name as crd_expected_name, version_schemas as crd_version_schemas};
pub use meta::{
    TOTAL_ANNOTATION_SIZE_LIMIT, validate_annotations, validate_labels, validate_object_meta,
    validate_object_meta_update,
};
pub use names::{
    NameRule, config_map_key, dns1035_label, dns1123_label, dns1123_subdomain, label_value,
    qualified_name,
};
pub use pod::qos_class;
pub use workloads::selector_selects;

use crate::schema::field::LazyPath;
use crate::schema::{BuiltinKind, FieldError, Schema};

impl BuiltinKind {
    /// How this kind's object names are checked.
    pub fn name_rule(self) -> NameRule {
        match self {
            Self::Namespace => NameRule::Dns1123Label,
            Self::Service => NameRule::Dns1035Label,
            Self::Role | Self::ClusterRole | Self::RoleBinding | Self::ClusterRoleBinding => {
                NameRule::PathSegment
            }
            _ => NameRule::Dns1123Subdomain,
        }
    }

    /// The kind as kube-apiserver names it in messages: `Service`,
    /// `EndpointSlice.discovery.k8s.io`.
    pub fn qualified_kind(self) -> String {
        match self.group() {
            "" => self.kind().to_owned(),
            g => format!("{}.{g}", self.kind()),
        }
    }
}

/// Applies kube-apiserver's defaults for `kind` to `obj` (idempotent), and writes
/// resource quantities given as JSON numbers as strings, as kube-apiserver's
/// round trip through its Go types does (`cpu: 1` is stored as `"1"`).
pub fn default(kind: BuiltinKind, obj: &mut Value) {
    quantities_as_strings(obj, &kind.schema());
    match kind {
        BuiltinKind::Service => service::default(obj),
        BuiltinKind::Pod => pod::default(obj),
        BuiltinKind::Secret => core::default_secret(obj),
        BuiltinKind::Namespace => core::default_namespace(obj),
        BuiltinKind::Endpoints => core::default_endpoints(obj),
        BuiltinKind::EndpointSlice => discovery::default(obj),
        BuiltinKind::RoleBinding | BuiltinKind::ClusterRoleBinding => rbac::default_binding(obj),
        BuiltinKind::CustomResourceDefinition => crd::default(obj),
        BuiltinKind::Node
        | BuiltinKind::ConfigMap
        | BuiltinKind::ServiceAccount
        | BuiltinKind::Event
        | BuiltinKind::EventsEvent
        | BuiltinKind::Lease
        | BuiltinKind::Role
        | BuiltinKind::ClusterRole
        | BuiltinKind::TokenRequest
        | BuiltinKind::SubjectAccessReview
        | BuiltinKind::SelfSubjectAccessReview => {}
        BuiltinKind::Deployment
        | BuiltinKind::ReplicaSet
        | BuiltinKind::StatefulSet
        | BuiltinKind::DaemonSet
        | BuiltinKind::Job
        | BuiltinKind::CronJob
        | BuiltinKind::NetworkPolicy
        | BuiltinKind::Ingress
        | BuiltinKind::IngressClass
        | BuiltinKind::PodDisruptionBudget
        | BuiltinKind::HorizontalPodAutoscaler
        | BuiltinKind::PersistentVolume
        | BuiltinKind::PersistentVolumeClaim
        | BuiltinKind::StorageClass
        | BuiltinKind::ResourceQuota
        | BuiltinKind::LimitRange
        | BuiltinKind::PriorityClass
        | BuiltinKind::ReplicationController
        | BuiltinKind::ValidatingWebhookConfiguration
        | BuiltinKind::MutatingWebhookConfiguration => workloads::default(kind, obj),
    }
}

const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

fn quantities_as_strings(v: &mut Value, s: &Schema) {
    if s.definition.as_deref() == Some(QUANTITY) {
        if let Value::Number(n) = v {
            *v = Value::String(n.to_string());
        }
        return;
    }
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if let Some(cs) = s.field(k) {
                    quantities_as_strings(child, cs);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = &s.items {
                for item in items {
                    quantities_as_strings(item, is);
                }
            }
        }
        _ => {}
    }
}

/// What kube-apiserver's decoder rejects (400 BadRequest, before any validation):
/// values of the wrong JSON type for the kind's Go types, resource quantities that
/// do not parse, and byte fields that are not base64. The messages are this server's (Go's decoder words them
/// differently: `json: cannot unmarshal string into Go struct field ...`).
pub fn decode_errors(kind: BuiltinKind, obj: &Value) -> Vec<FieldError> {
    let schema = kind.schema();
    let mut errs: Vec<FieldError> = crate::schema::validate(obj, &schema)
        .into_iter()
        // Go decodes `null` into any field as its zero value (`creationTimestamp: null`
        // is in every `kubectl create --dry-run -o yaml` output).
        .filter(|e| {
            e.kind == crate::schema::ErrorKind::TypeInvalid && e.bad_value != Some(Value::Null)
        })
        .collect();
    let root = crate::schema::FieldPath::root();
    quantity_errors(obj, &schema, &LazyPath::Root(&root), &mut errs);
    match kind {
        BuiltinKind::Secret => errs.extend(core::base64_errors(obj, "data")),
        BuiltinKind::ConfigMap => errs.extend(core::base64_errors(obj, "binaryData")),
        _ => {}
    }
    errs
}

/// `resource.ParseQuantity`'s shape: a signed decimal number and an optional
/// binary-SI, decimal-SI or exponent suffix.
fn is_quantity(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let number_ok = !number.is_empty() && number != "." && number.matches('.').count() <= 1;
    let suffix_ok = matches!(
        suffix,
        "" | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
            | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|e| e.strip_prefix(['+', '-']).unwrap_or(e))
        .is_some_and(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()));
    number_ok && suffix_ok
}

fn quantity_errors(v: &Value, s: &Schema, path: &LazyPath<'_>, errs: &mut Vec<FieldError>) {
    if s.definition.as_deref() == Some(QUANTITY) {
        if let Some(text) = v.as_str()
            && !is_quantity(text)
        {
            errs.push(FieldError::invalid(
                path.get(),
                text,
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            ));
        }
        return;
    }
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if let Some(cs) = s.field(k) {
                    quantity_errors(child, cs, &LazyPath::Field(path, k), errs);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = &s.items {
                for (i, item) in items.iter().enumerate() {
                    quantity_errors(item, is, &LazyPath::Index(path, i), errs);
                }
            }
        }
        _ => {}
    }
}

/// Before defaulting a create: what kube-apiserver's `PrepareForCreate` resets (a
/// Pod's status becomes `Pending` with its QoS class; a Service's status is emptied).
pub fn prepare_create(kind: BuiltinKind, obj: &mut Value) {
    match kind {
        BuiltinKind::Pod => pod::prepare_create(obj),
        BuiltinKind::Service => {
            if let Some(m) = obj.as_object_mut() {
                m.insert("status".into(), serde_json::json!({"loadBalancer": {}}));
            }
        }
        _ => workloads::prepare_create(kind, obj),
    }
}

/// Before defaulting an update: carries over server-allocated values that the client
/// may omit (today: a Service's clusterIPs, IP families and node ports).
pub fn prepare_update(kind: BuiltinKind, obj: &mut Value, old: &Value) {
    if kind == BuiltinKind::Service {
        service::prepare_update(obj, old);
    }
}

/// Validates `obj` of `kind` (a create when `old` is `None`, else an update):
/// metadata (name rule per kind, namespace by scope, labels, annotations, finalizers,
/// immutable fields on update), then the kind's own rules.
pub fn validate(kind: BuiltinKind, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = if kind == BuiltinKind::CustomResourceDefinition {
        let mut e = crd::name_errors(obj);
        let mut rest = validate_object_meta(obj, false, NameRule::Dns1123Subdomain);
        rest.retain(|x| x.field.as_str() != "metadata.name");
        e.extend(rest);
        e
    } else if kind.is_stored() {
        validate_object_meta(obj, kind.namespaced(), kind.name_rule())
    } else {
        Vec::new()
    };
    if let Some(old) = old {
        errs.extend(validate_object_meta_update(obj, old));
    }
    errs.extend(match kind {
        BuiltinKind::Service => service::validate(obj, old),
        BuiltinKind::Pod => pod::validate(obj, old),
        BuiltinKind::Secret => core::validate_secret(obj, old),
        BuiltinKind::ConfigMap => core::validate_config_map(obj, old),
        BuiltinKind::Namespace => core::validate_namespace(obj, old),
        BuiltinKind::Node => core::validate_node(obj, old),
        BuiltinKind::ServiceAccount => core::validate_service_account(obj, old),
        BuiltinKind::Endpoints => core::validate_endpoints(obj, old),
        BuiltinKind::Event => core::validate_core_event(obj, old),
        BuiltinKind::EventsEvent => core::validate_events_event(obj, old),
        BuiltinKind::Lease => core::validate_lease(obj, old),
        BuiltinKind::EndpointSlice => discovery::validate(obj, old),
        BuiltinKind::Role => rbac::validate_role(obj, true),
        BuiltinKind::ClusterRole => rbac::validate_role(obj, false),
        BuiltinKind::RoleBinding => rbac::validate_binding(obj, old, true),
        BuiltinKind::ClusterRoleBinding => rbac::validate_binding(obj, old, false),
        BuiltinKind::CustomResourceDefinition => crd::validate(obj, old),
        BuiltinKind::TokenRequest
        | BuiltinKind::SubjectAccessReview
        | BuiltinKind::SelfSubjectAccessReview => Vec::new(),
        BuiltinKind::Deployment
        | BuiltinKind::ReplicaSet
        | BuiltinKind::StatefulSet
        | BuiltinKind::DaemonSet
        | BuiltinKind::Job
        | BuiltinKind::CronJob
        | BuiltinKind::NetworkPolicy
        | BuiltinKind::Ingress
        | BuiltinKind::IngressClass
        | BuiltinKind::PodDisruptionBudget
        | BuiltinKind::HorizontalPodAutoscaler
        | BuiltinKind::PersistentVolume
        | BuiltinKind::PersistentVolumeClaim
        | BuiltinKind::StorageClass
        | BuiltinKind::ResourceQuota
        | BuiltinKind::LimitRange
        | BuiltinKind::PriorityClass
        | BuiltinKind::ReplicationController
        | BuiltinKind::ValidatingWebhookConfiguration
        | BuiltinKind::MutatingWebhookConfiguration => workloads::validate(kind, obj, old),
    });
    errs
}

/// Validates a custom resource: metadata (names are DNS subdomains), immutable
/// metadata on update, then the version's structural schema. Prune and default with
/// [`crate::schema::prune`] and [`crate::schema::default`] first.
pub fn validate_custom_resource(
    obj: &Value,
    old: Option<&Value>,
    schema: &Schema,
    namespaced: bool,
) -> Vec<FieldError> {
    let mut errs = validate_object_meta(obj, namespaced, NameRule::Dns1123Subdomain);
    if let Some(old) = old {
        errs.extend(validate_object_meta_update(obj, old));
    }
    errs.extend(crate::schema::validate(obj, schema));
    errs
}

#[cfg(test)]
mod tests;
