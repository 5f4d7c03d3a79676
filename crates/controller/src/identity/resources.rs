//! The resources endpoint identity reads and writes whose API is only known
//! at run time (Calico's and Cilium's), and how to find out which one a
//! cluster serves.

use fedmesh_core::identity::{CalicoApi, ObjectKind};
use kube::api::ApiResource;

/// The `ApiResource` of a kind fedmesh mirrors into.
pub fn of_kind(kind: ObjectKind) -> ApiResource {
    resource(kind.api_version(), kind.kind(), kind.plural())
}

/// The `ApiResource` of Calico's HostEndpoint under `api`.
pub fn host_endpoints(api: CalicoApi) -> ApiResource {
    calico(api, "HostEndpoint", "hostendpoints")
}

/// The `ApiResource` of the Calico kind `kind` (plural `plural`) under `api`.
pub fn calico(api: CalicoApi, kind: &str, plural: &str) -> ApiResource {
    // Every Calico kind has the group and version of the network sets of that API.
    resource(ObjectKind::NetworkSet(api).api_version(), kind, plural)
}

fn resource(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

/// Whether the cluster behind `client` serves `resource` (its group version
/// lists the plural). A group version that is not served at all is `false`,
/// not an error.
pub async fn served(client: &kube::Client, resource: &ApiResource) -> Result<bool, kube::Error> {
    match client.list_api_group_resources(&resource.api_version).await {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == resource.plural)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(error) => Err(error),
    }
}

/// Which Calico API serves `plural` in the cluster: `projectcalico.org/v3`
/// (the Calico API server) first, then the `crd.projectcalico.org/v1` CRDs;
/// `None` when neither does.
pub async fn calico_api(
    client: &kube::Client,
    of: impl Fn(CalicoApi) -> ApiResource,
) -> Result<Option<CalicoApi>, kube::Error> {
    for api in [CalicoApi::V3, CalicoApi::Crd] {
        if served(client, &of(api)).await? {
            return Ok(Some(api));
        }
    }
    Ok(None)
}
