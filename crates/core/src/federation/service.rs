//! Services as a propagated kind: what a member's copy keeps of its own.
//!
//! A member allocates a Service's cluster IPs, IP families, node ports and
//! health-check node port, and writes its status (load-balancer ingress).
//! Those stay the member's: an update keeps them and a create leaves them
//! out, because the federated Service's values were allocated by the
//! federation's API server and mean nothing in a member. A headless Service
//! (`clusterIP: None`) is the user's choice, not an allocation, and is kept.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};

use super::propagate::Propagated;

/// The cluster IP that makes a Service headless.
const HEADLESS: &str = "None";

impl Propagated for Service {
    fn member_content(federated: &Self, current: Option<&Self>) -> Self {
        let spec = federated.spec.as_ref().map(|spec| {
            let mine = current.and_then(|c| c.spec.as_ref());
            member_spec(spec, mine)
        });
        Service {
            metadata: Default::default(),
            spec,
            status: current.and_then(|c| c.status.clone()),
        }
    }

    fn is_system(namespace: &str, name: &str) -> bool {
        namespace == "default" && name == "kubernetes"
    }
}

fn member_spec(federated: &ServiceSpec, mine: Option<&ServiceSpec>) -> ServiceSpec {
    let headless = federated.cluster_ip.as_deref() == Some(HEADLESS);
    let mut spec = federated.clone();
    if !headless {
        spec.cluster_ip = mine.and_then(|m| m.cluster_ip.clone());
        spec.cluster_ips = mine.and_then(|m| m.cluster_ips.clone());
    }
    spec.ip_families = mine.and_then(|m| m.ip_families.clone());
    spec.health_check_node_port = mine.and_then(|m| m.health_check_node_port);
    let my_ports = mine.and_then(|m| m.ports.as_deref()).unwrap_or_default();
    for port in spec.ports.iter_mut().flatten() {
        port.node_port = my_ports
            .iter()
            .find(|p| same_port(p, port))
            .and_then(|p| p.node_port);
    }
    spec
}

/// Whether two ports are the same port: the same number and protocol.
fn same_port(a: &ServicePort, b: &ServicePort) -> bool {
    a.port == b.port
        && a.protocol.as_deref().unwrap_or("TCP") == b.protocol.as_deref().unwrap_or("TCP")
}
