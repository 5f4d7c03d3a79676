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
use super::workloads::Workload;

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

/// Kinds with a dedicated printer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BuiltinKind {
    /// core/v1 Pod
    Pod,
    /// core/v1 Service
    Service,
    /// core/v1 Endpoints
    Endpoints,
    /// discovery.k8s.io/v1 EndpointSlice
    EndpointSlice,
    /// core/v1 Node
    Node,
    /// core/v1 Namespace
    Namespace,
    /// core/v1 Secret
    Secret,
    /// core/v1 ConfigMap
    ConfigMap,
    /// core/v1 ServiceAccount
    ServiceAccount,
    /// core/v1 and events.k8s.io/v1 Event
    Event,
    /// coordination.k8s.io/v1 Lease
    Lease,
    /// rbac RoleBinding
    RoleBinding,
    /// rbac ClusterRoleBinding
    ClusterRoleBinding,
    /// apps/v1 and batch/v1 workloads
    Workload(Workload),
}

impl BuiltinKind {
    /// The printer for a group and kind, if kube-apiserver has one.
    pub fn lookup(group: &str, kind: &str) -> Option<Self> {
        Some(match (group, kind) {
            ("", "Pod") => Self::Pod,
            ("", "Service") => Self::Service,
            ("", "Endpoints") => Self::Endpoints,
            ("discovery.k8s.io", "EndpointSlice") => Self::EndpointSlice,
            ("", "Node") => Self::Node,
            ("", "Namespace") => Self::Namespace,
            ("", "Secret") => Self::Secret,
            ("", "ConfigMap") => Self::ConfigMap,
            ("", "ServiceAccount") => Self::ServiceAccount,
            ("" | "events.k8s.io", "Event") => Self::Event,
            ("coordination.k8s.io", "Lease") => Self::Lease,
            ("rbac.authorization.k8s.io", "RoleBinding") => Self::RoleBinding,
            ("rbac.authorization.k8s.io", "ClusterRoleBinding") => Self::ClusterRoleBinding,
            _ => return Workload::lookup(group, kind).map(Self::Workload),
        })
    }

    /// The printer's columns, in order.
    pub fn columns(self) -> Vec<ColumnDefinition> {
        match self {
            Self::Workload(workload) => workload.columns(),
            Self::Pod => vec![
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
            Self::Service => vec![
                name_col(),
                col("Type", "string", doc::<ServiceSpec>("type")),
                col("Cluster-IP", "string", doc::<ServiceSpec>("clusterIP")),
                col("External-IP", "string", doc::<ServiceSpec>("externalIPs")),
                col("Port(s)", "string", doc::<ServiceSpec>("ports")),
                age_col(),
                wide(col("Selector", "string", doc::<ServiceSpec>("selector"))),
            ],
            Self::Endpoints => vec![
                name_col(),
                col("Endpoints", "string", doc::<Endpoints>("subsets")),
                age_col(),
            ],
            Self::EndpointSlice => vec![
                name_col(),
                col("AddressType", "string", doc::<EndpointSlice>("addressType")),
                col("Ports", "string", doc::<EndpointSlice>("ports")),
                col("Endpoints", "string", doc::<EndpointSlice>("endpoints")),
                age_col(),
            ],
            Self::Node => vec![
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
            Self::Namespace => vec![
                name_col(),
                col("Status", "string", "The status of the namespace".into()),
                age_col(),
            ],
            Self::Secret => vec![
                name_col(),
                col("Type", "string", doc::<Secret>("type")),
                col("Data", "string", doc::<Secret>("data")),
                age_col(),
            ],
            Self::ConfigMap => vec![
                name_col(),
                col("Data", "string", doc::<ConfigMap>("data")),
                age_col(),
            ],
            Self::ServiceAccount => vec![
                name_col(),
                col("Secrets", "string", doc::<ServiceAccount>("secrets")),
                age_col(),
            ],
            Self::Event => {
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
            Self::Lease => vec![
                name_col(),
                col("Holder", "string", doc::<LeaseSpec>("holderIdentity")),
                age_col(),
            ],
            Self::RoleBinding => vec![
                name_col(),
                col("Role", "string", doc::<RoleBinding>("roleRef")),
                age_col(),
                wide(col("Users", "string", "Users in the roleBinding".into())),
                wide(col("Groups", "string", "Groups in the roleBinding".into())),
                wide(col("ServiceAccounts", "string", "ServiceAccounts in the roleBinding".into())),
            ],
            Self::ClusterRoleBinding => vec![
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
        }
    }
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
