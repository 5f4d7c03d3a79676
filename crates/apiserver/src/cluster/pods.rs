//! Pod and Service facts shared by the endpoint controllers, with the
//! semantics of kube-controller-manager's `endpointslice/util` and
//! `api/v1/pod` helpers.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The IP family of an address, as Kubernetes names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IpFamily {
    /// `IPv4`
    V4,
    /// `IPv6`
    V6,
}

impl IpFamily {
    /// The family of a textual address; `None` when it is not an IP. An
    /// IPv4-mapped IPv6 address counts as IPv4, as Go's `net.IP.To4` says.
    pub fn of(address: &str) -> Option<Self> {
        match address.parse::<IpAddr>().ok()? {
            IpAddr::V4(_) => Some(Self::V4),
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => Some(Self::V4),
            IpAddr::V6(_) => Some(Self::V6),
        }
    }

    /// The EndpointSlice `addressType` for this family.
    pub fn address_type(self) -> &'static str {
        match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        }
    }
}

/// Whether an equality selector matches a label set. An empty selector
/// matches everything (callers decide first whether a selector is set).
pub fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The Service's selector when the endpoint controllers manage it: a
/// non-empty `spec.selector` and a type other than ExternalName. An empty
/// map counts as no selector because kube-apiserver's storage does not keep
/// an empty map apart from an absent one.
pub fn managed_selector(service: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|s| !s.is_empty())
}

/// Pods of the Service's namespace that its selector matches.
pub fn selected_pods<'a>(service: &Service, pods: &'a [Pod]) -> Vec<&'a Pod> {
    let Some(selector) = managed_selector(service) else {
        return Vec::new();
    };
    let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
    pods.iter()
        .filter(|p| p.metadata.namespace.as_deref().unwrap_or("default") == namespace)
        .filter(|p| selector_matches(selector, p.metadata.labels.as_ref()))
        .collect()
}

/// `Ready` condition is `True`.
pub fn is_pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Phase is Succeeded or Failed.
pub fn is_pod_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The pod's addresses: `status.podIPs`, or `status.podIP` alone when the
/// list is empty (kube-apiserver's conversion fills one from the other, so
/// a stored pod always has both).
pub fn pod_ips(pod: &Pod) -> Vec<&str> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let listed: Vec<&str> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .filter(|ip| !ip.is_empty())
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    status
        .pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
        .into_iter()
        .collect()
}

/// Whether a pod belongs in a Service's endpoints at all: not terminal, has
/// an IP, and (unless terminating pods are included) not being deleted.
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if is_pod_terminal(pod) || pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// Whether the endpoint carries the pod's hostname: the pod sets a
/// hostname, its subdomain is the Service's name, and both share a namespace.
pub fn should_set_hostname(pod: &Pod, service: &Service) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    let hostname_set = spec.hostname.as_deref().is_some_and(|h| !h.is_empty());
    hostname_set
        && spec.subdomain.as_deref() == service.metadata.name.as_deref()
        && pod.metadata.namespace == service.metadata.namespace
}

/// The protocol of a Service port after defaulting.
pub fn port_protocol(port: &ServicePort) -> &str {
    port.protocol.as_deref().unwrap_or("TCP")
}

/// The container port a Service port targets on a pod: a numeric
/// `targetPort` as is (the Service's `port` when unset), a named one looked
/// up among the containers' ports (then restartable init containers) with
/// the same protocol. `None` when the name is not found.
pub fn find_port(pod: &Pod, service_port: &ServicePort) -> Option<i32> {
    let name = match &service_port.target_port {
        None => return Some(service_port.port),
        Some(IntOrString::Int(n)) => return Some(*n),
        Some(IntOrString::String(s)) => s.as_str(),
    };
    let protocol = port_protocol(service_port);
    let spec = pod.spec.as_ref()?;
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| {
            p.name.as_deref() == Some(name) && p.protocol.as_deref().unwrap_or("TCP") == protocol
        })
        .map(|p| p.container_port)
}

/// Whether the Service has a cluster IP (is not headless).
pub fn is_service_ip_set(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .is_some_and(|ip| !ip.is_empty() && ip != "None")
}

/// Whether the Service is headless with `clusterIP: None`.
pub fn is_headless_none(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// The address family the Endpoints controller picks for a Service: the
/// first of `spec.ipFamilies`; failing that the family of the cluster IP;
/// for a headless Service the family of the pod's `podIP`.
pub fn endpoints_family(service: &Service, pod: &Pod) -> IpFamily {
    let spec = service.spec.as_ref();
    if let Some(first) = spec
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
    {
        return if first == "IPv6" {
            IpFamily::V6
        } else {
            IpFamily::V4
        };
    }
    if is_service_ip_set(service) {
        let ip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
        return IpFamily::of(ip).unwrap_or(IpFamily::V4);
    }
    pod_ips(pod)
        .first()
        .and_then(|ip| IpFamily::of(ip))
        .unwrap_or(IpFamily::V4)
}

/// Address families the EndpointSlice controller keeps slices for:
/// `spec.ipFamilies`; failing that the cluster IP's family; for a headless
/// Service without families, both.
pub fn slice_families(service: &Service) -> Vec<IpFamily> {
    let spec = service.spec.as_ref();
    let mut out: Vec<IpFamily> = spec
        .and_then(|s| s.ip_families.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|f| match f.as_str() {
            "IPv4" => Some(IpFamily::V4),
            "IPv6" => Some(IpFamily::V6),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    if !out.is_empty() {
        return out;
    }
    if is_service_ip_set(service) {
        let ip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
        return vec![IpFamily::of(ip).unwrap_or(IpFamily::V4)];
    }
    vec![IpFamily::V4, IpFamily::V6]
}
