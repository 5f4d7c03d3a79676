//! Column definitions of the built-in printers (kube-apiserver's
//! `pkg/printers/internalversion`), and of the default convertor.

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, NodeStatus, NodeSystemInfo, ObjectReference, PodSpec, PodStatus,
    Secret, ServiceAccount, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use super::docs::doc;
use crate::schema::BuiltinKind;

/// `meta.k8s.io/v1` TableColumnDefinition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ColumnDefinition {
    /// Column title as sent (kubectl upper-cases it).
    pub name: String,
    /// OpenAPI type: string, integer, number, boolean, date.
    #[serde(rename = "type")]
    pub type_: String,
    /// OpenAPI format (`name` for the name column).
    pub format: String,
    /// Human description.
    pub description: String,
    /// 0 for default columns, higher for `-o wide` ones.
    pub priority: i32,
}

pub(super) fn col(name: &str, type_: &str, description: String) -> ColumnDefinition {
    ColumnDefinition {
        name: name.to_string(),
        type_: type_.to_string(),
        format: String::new(),
        description,
        priority: 0,
    }
}

pub(super) fn wide(mut c: ColumnDefinition) -> ColumnDefinition {
    c.priority = 1;
    c
}

pub(super) fn name_col() -> ColumnDefinition {
    let mut c = col("Name", "string", doc::<ObjectMeta>("name"));
    c.format = "name".to_string();
    c
}

pub(super) fn age_col() -> ColumnDefinition {
    col("Age", "string", doc::<ObjectMeta>("creationTimestamp"))
}

/// The columns of a kind's dedicated printer, in order (`None`: the kind has
/// none and gets the default convertor's).
pub(super) fn builtin_columns(kind: BuiltinKind) -> Option<Vec<ColumnDefinition>> {
    Some(match kind {
            BuiltinKind::Pod => vec![
                name_col(),
                col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic.".into()),
                col("Status", "string", "The aggregate status of the containers in this pod.".into()),
                col(
                    "Restarts",
                    "string",
                    "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.".into(),
                ),
                age_col(),
                wide(col("IP", "string", doc::<PodStatus>("podIP"))),
                wide(col("Node", "string", doc::<PodSpec>("nodeName"))),
                wide(col("Nominated Node", "string", doc::<PodStatus>("nominatedNodeName"))),
                wide(col("Readiness Gates", "string", doc::<PodSpec>("readinessGates"))),
            ],
            BuiltinKind::Service => vec![
                name_col(),
                col("Type", "string", doc::<ServiceSpec>("type")),
                col("Cluster-IP", "string", doc::<ServiceSpec>("clusterIP")),
                col("External-IP", "string", doc::<ServiceSpec>("externalIPs")),
                col("Port(s)", "string", doc::<ServiceSpec>("ports")),
                age_col(),
                wide(col("Selector", "string", doc::<ServiceSpec>("selector"))),
            ],
            BuiltinKind::Endpoints => vec![
                name_col(),
                col("Endpoints", "string", doc::<Endpoints>("subsets")),
                age_col(),
            ],
            BuiltinKind::EndpointSlice => vec![
                name_col(),
                col("AddressType", "string", doc::<EndpointSlice>("addressType")),
                col("Ports", "string", doc::<EndpointSlice>("ports")),
                col("Endpoints", "string", doc::<EndpointSlice>("endpoints")),
                age_col(),
            ],
            BuiltinKind::Node => vec![
                name_col(),
                col("Status", "string", "The status of the node".into()),
                col("Roles", "string", "The roles of the node".into()),
                age_col(),
                col("Version", "string", doc::<NodeSystemInfo>("kubeletVersion")),
                wide(col("Internal-IP", "string", doc::<NodeStatus>("addresses"))),
                wide(col("External-IP", "string", doc::<NodeStatus>("addresses"))),
                wide(col("OS-Image", "string", doc::<NodeSystemInfo>("osImage"))),
                wide(col("Kernel-Version", "string", doc::<NodeSystemInfo>("kernelVersion"))),
                wide(col(
                    "Container-Runtime",
                    "string",
                    doc::<NodeSystemInfo>("containerRuntimeVersion"),
                )),
            ],
            BuiltinKind::Namespace => vec![
                name_col(),
                col("Status", "string", "The status of the namespace".into()),
                age_col(),
            ],
            BuiltinKind::Secret => vec![
                name_col(),
                col("Type", "string", doc::<Secret>("type")),
                col("Data", "string", doc::<Secret>("data")),
                age_col(),
            ],
            BuiltinKind::ConfigMap => vec![
                name_col(),
                col("Data", "string", doc::<ConfigMap>("data")),
                age_col(),
            ],
            BuiltinKind::ServiceAccount => vec![
                name_col(),
                col("Secrets", "string", doc::<ServiceAccount>("secrets")),
                age_col(),
            ],
            BuiltinKind::Event | BuiltinKind::EventsEvent => {
                let name = wide(name_col());
                vec![
                    col("Last Seen", "string", doc::<Event>("lastTimestamp")),
                    col("Type", "string", doc::<Event>("type")),
                    col("Reason", "string", doc::<Event>("reason")),
                    col("Object", "string", doc::<Event>("involvedObject")),
                    wide(col("Subobject", "string", doc::<ObjectReference>("fieldPath"))),
                    wide(col("Source", "string", doc::<Event>("source"))),
                    col("Message", "string", doc::<Event>("message")),
                    wide(col("First Seen", "string", doc::<Event>("firstTimestamp"))),
                    wide(col("Count", "string", doc::<Event>("count"))),
                    name,
                ]
            }
            BuiltinKind::Lease => vec![
                name_col(),
                col("Holder", "string", doc::<LeaseSpec>("holderIdentity")),
                age_col(),
            ],
            BuiltinKind::RoleBinding => vec![
                name_col(),
                col("Role", "string", doc::<RoleBinding>("roleRef")),
                age_col(),
                wide(col("Users", "string", "Users in the roleBinding".into())),
                wide(col("Groups", "string", "Groups in the roleBinding".into())),
                wide(col("ServiceAccounts", "string", "ServiceAccounts in the roleBinding".into())),
            ],
            BuiltinKind::ClusterRoleBinding => vec![
                name_col(),
                col("Role", "string", doc::<ClusterRoleBinding>("roleRef")),
                age_col(),
                wide(col("Users", "string", "Users in the clusterRoleBinding".into())),
                wide(col("Groups", "string", "Groups in the clusterRoleBinding".into())),
                wide(col(
                    "ServiceAccounts",
                    "string",
                    "ServiceAccounts in the clusterRoleBinding".into(),
                )),
            ],
            other => return super::workloads::columns(other),
        })
}

/// The default convertor's columns (kinds without a printer: Roles,
/// ClusterRoles, CustomResourceDefinitions, ...).
pub fn default_columns() -> Vec<ColumnDefinition> {
    vec![
        name_col(),
        col("Created At", "date", doc::<ObjectMeta>("creationTimestamp")),
    ]
}

/// The first column of a custom resource table.
pub fn custom_name_column() -> ColumnDefinition {
    name_col()
}

/// The Age column a CRD version without printer columns is served with.
pub fn custom_default_age_description() -> String {
    doc::<ObjectMeta>("creationTimestamp")
}
