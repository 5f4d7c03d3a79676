//! The Endpoints controller: the `v1` Endpoints object of each Service with
//! a selector, as kube-controller-manager's endpoints controller writes it.
//!
//! Every pod the selector matches in the Service's namespace that is not
//! terminal and has an IP of the Service's family contributes one address
//! per Service port it can resolve (a named `targetPort` must name a
//! container port of the same protocol). Ready pods (or all of them with
//! `publishNotReadyAddresses`) go to `addresses`, the others to
//! `notReadyAddresses`; terminating pods are left out unless
//! `publishNotReadyAddresses` is set. The per-pod subsets are then packed
//! as `RepackSubsets` does: one subset per distinct set of addresses, with
//! all the ports that set serves. Over 1000 addresses the object is
//! truncated and annotated `endpoints.kubernetes.io/over-capacity:
//! truncated`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::pods::{self, IpFamily};
use super::repack::repack_subsets;
use super::write::{ObjectKey, Write};

/// Most addresses an Endpoints object holds before it is truncated.
pub const MAX_ENDPOINTS_CAPACITY: usize = 1000;
/// Annotation set when addresses were dropped to respect the capacity.
pub const ANNOTATION_OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// Value of [`ANNOTATION_OVER_CAPACITY`].
pub const OVER_CAPACITY_TRUNCATED: &str = "truncated";
/// Annotation with the time of the pod or service change that triggered
/// the write.
pub const ANNOTATION_LAST_CHANGE_TRIGGER_TIME: &str =
    "endpoints.kubernetes.io/last-change-trigger-time";
/// Label the controller puts on the Endpoints of a headless Service.
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// Label marking Endpoints written by this controller (Kubernetes 1.33+).
pub const LABEL_ENDPOINTS_MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
/// The value of [`LABEL_ENDPOINTS_MANAGED_BY`].
pub const ENDPOINTS_CONTROLLER_NAME: &str = "endpoint-controller";

fn address_for(service: &Service, pod: &Pod) -> Option<EndpointAddress> {
    let family = pods::endpoints_family(service, pod);
    let ip = pods::pod_ips(pod)
        .into_iter()
        .find(|ip| IpFamily::of(ip).unwrap_or(IpFamily::V4) == family)?;
    let spec = pod.spec.as_ref();
    Some(EndpointAddress {
        ip: ip.to_string(),
        // kube's controller points nodeName at the pod's spec.nodeName even
        // when empty, which validation then rejects; that never happens there
        // (a pod with an IP is scheduled), but pods here are objects only, so
        // an unscheduled pod gets no nodeName instead of failing the write.
        node_name: spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty()),
        hostname: if pods::should_set_hostname(pod, service) {
            spec.and_then(|s| s.hostname.clone())
        } else {
            None
        },
        target_ref: Some(ObjectReference {
            kind: Some("Pod".to_string()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
    })
}

fn one_address_subset(
    address: EndpointAddress,
    port: Option<EndpointPort>,
    ready: bool,
) -> EndpointSubset {
    let ports = port.map(|p| vec![p]);
    if ready {
        EndpointSubset {
            addresses: Some(vec![address]),
            not_ready_addresses: None,
            ports,
        }
    } else {
        EndpointSubset {
            addresses: None,
            not_ready_addresses: Some(vec![address]),
            ports,
        }
    }
}

/// The packed subsets the controller computes for a Service from the pods
/// (all pods; those outside the namespace or selector are ignored). Empty
/// for a Service the controller does not manage.
pub fn desired_subsets(service: &Service, pods: &[Pod]) -> Vec<EndpointSubset> {
    if pods::managed_selector(service).is_none() {
        return Vec::new();
    }
    let spec = service.spec.as_ref();
    let publish_not_ready = spec
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let service_ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or(&[]);
    let mut subsets = Vec::new();
    for pod in pods::selected_pods(service, pods) {
        if !pods::should_pod_be_in_endpoints(pod, publish_not_ready) {
            continue;
        }
        let Some(address) = address_for(service, pod) else {
            continue;
        };
        let ready = publish_not_ready || pods::is_pod_ready(pod);
        if service_ports.is_empty() {
            // Only a `clusterIP: None` Service may go without ports.
            if pods::is_headless_none(service) {
                subsets.push(one_address_subset(address, None, ready));
            }
            continue;
        }
        for service_port in service_ports {
            let Some(number) = pods::find_port(pod, service_port) else {
                continue;
            };
            let port = EndpointPort {
                name: service_port.name.clone().filter(|n| !n.is_empty()),
                port: number,
                protocol: Some(pods::port_protocol(service_port).to_string()),
                app_protocol: service_port.app_protocol.clone(),
            };
            subsets.push(one_address_subset(address.clone(), Some(port), ready));
        }
    }
    repack_subsets(subsets)
}

/// Truncates subsets to [`MAX_ENDPOINTS_CAPACITY`] addresses the way the
/// controller does (each subset keeps its proportional share, rounded up;
/// not-ready addresses go first). Returns whether anything was dropped.
pub fn truncate_subsets(subsets: &mut [EndpointSubset]) -> bool {
    let count = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
    let total_ready: usize = subsets.iter().map(|s| count(&s.addresses)).sum();
    let total_not_ready: usize = subsets.iter().map(|s| count(&s.not_ready_addresses)).sum();
    if total_ready + total_not_ready <= MAX_ENDPOINTS_CAPACITY {
        return false;
    }
    let truncate_ready = total_ready > MAX_ENDPOINTS_CAPACITY;
    let (max, num_total) = if truncate_ready {
        (MAX_ENDPOINTS_CAPACITY, total_ready)
    } else {
        (MAX_ENDPOINTS_CAPACITY - total_ready, total_not_ready)
    };
    let mut can_be_added = max;
    for subset in subsets.iter_mut() {
        let in_subset = if truncate_ready {
            count(&subset.addresses)
        } else {
            count(&subset.not_ready_addresses)
        };
        // Integer form of ceil(in_subset / num_total * max).
        let share = (in_subset * max).div_ceil(num_total.max(1));
        let to_be_added = share.min(can_be_added);
        if truncate_ready {
            if let Some(a) = subset.addresses.as_mut() {
                a.truncate(to_be_added);
            }
            subset.not_ready_addresses = None;
            can_be_added -= count(&subset.addresses);
        } else {
            if let Some(a) = subset.not_ready_addresses.as_mut() {
                a.truncate(to_be_added);
            }
            can_be_added -= count(&subset.not_ready_addresses);
        }
    }
    true
}

/// `labelsCorrectForEndpoints`: the stored labels are the Service's plus
/// the manager label (the headless marker aside).
fn labels_correct(
    stored: Option<&BTreeMap<String, String>>,
    service: Option<&BTreeMap<String, String>>,
) -> bool {
    let empty = BTreeMap::new();
    let stored = stored.unwrap_or(&empty);
    let service = service.unwrap_or(&empty);
    if stored.get(LABEL_ENDPOINTS_MANAGED_BY).map(String::as_str) != Some(ENDPOINTS_CONTROLLER_NAME)
    {
        return false;
    }
    let mut skipped = 0;
    for (k, v) in stored {
        if k == LABEL_HEADLESS || k == LABEL_ENDPOINTS_MANAGED_BY {
            skipped += 1;
        } else if service.get(k) != Some(v) {
            return false;
        }
    }
    stored.len() == service.len() + skipped
}

/// Whether stored Endpoints carry this controller's manager label.
pub fn is_controller_managed(endpoints: &Endpoints) -> bool {
    endpoints
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL_ENDPOINTS_MANAGED_BY))
        .is_some_and(|v| v == ENDPOINTS_CONTROLLER_NAME)
}

fn strip_target_ref_versions(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    let strip = |v: &Option<Vec<EndpointAddress>>| {
        v.as_ref().filter(|v| !v.is_empty()).map(|v| {
            v.iter()
                .map(|a| {
                    let mut a = a.clone();
                    if let Some(r) = a.target_ref.as_mut() {
                        r.resource_version = None;
                    }
                    a
                })
                .collect::<Vec<_>>()
        })
    };
    subsets
        .iter()
        .map(|s| EndpointSubset {
            addresses: strip(&s.addresses),
            not_ready_addresses: strip(&s.not_ready_addresses),
            ports: s.ports.clone().filter(|p| !p.is_empty()),
        })
        .collect()
}

fn capacity_annotation_correct(endpoints: &Endpoints) -> bool {
    let subsets = endpoints.subsets.as_deref().unwrap_or(&[]);
    let n: usize = subsets
        .iter()
        .map(|s| {
            s.addresses.as_ref().map_or(0, Vec::len)
                + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
        })
        .sum();
    if n > MAX_ENDPOINTS_CAPACITY {
        return false;
    }
    let annotated = endpoints
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANNOTATION_OVER_CAPACITY));
    (annotated && n == MAX_ENDPOINTS_CAPACITY) || (!annotated && n < MAX_ENDPOINTS_CAPACITY)
}

/// What the Endpoints controller writes for one Service key.
///
/// `service` is the Service at `key` (`None` once it is deleted), `pods`
/// the pods to consider (any namespace; others are ignored), `current` the
/// stored Endpoints named like the Service, and `trigger_time` the time of
/// the change that caused this sync, written to
/// `endpoints.kubernetes.io/last-change-trigger-time` when given (the
/// annotation is removed otherwise, as the controller does).
///
/// Returns `None` when nothing needs writing: the Service has no selector
/// (its Endpoints are the user's), is of type ExternalName, or the stored
/// object already matches.
pub fn sync_endpoints(
    key: &ObjectKey,
    service: Option<&Service>,
    pods: &[Pod],
    current: Option<&Endpoints>,
    trigger_time: Option<jiff::Timestamp>,
) -> Option<Write<Endpoints>> {
    let Some(service) = service else {
        return current.map(|_| Write::Delete(key.clone()));
    };
    pods::managed_selector(service)?;
    let mut subsets = desired_subsets(service, pods);
    let truncated = truncate_subsets(&mut subsets);

    if let Some(current) = current {
        let stored = current.subsets.as_deref().unwrap_or(&[]);
        if strip_target_ref_versions(stored) == strip_target_ref_versions(&subsets)
            && labels_correct(
                current.metadata.labels.as_ref(),
                service.metadata.labels.as_ref(),
            )
            && capacity_annotation_correct(current)
        {
            return None;
        }
    }

    let mut next = current.cloned().unwrap_or_else(|| Endpoints {
        metadata: ObjectMeta {
            name: Some(key.name.clone()),
            namespace: Some(key.namespace.clone()),
            ..Default::default()
        },
        subsets: None,
    });
    next.subsets = if subsets.is_empty() {
        None
    } else {
        Some(subsets)
    };
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if pods::is_service_ip_set(service) {
        labels.remove(LABEL_HEADLESS);
    } else {
        labels.insert(LABEL_HEADLESS.to_string(), String::new());
    }
    labels.insert(
        LABEL_ENDPOINTS_MANAGED_BY.to_string(),
        ENDPOINTS_CONTROLLER_NAME.to_string(),
    );
    next.metadata.labels = Some(labels);
    let mut annotations = next.metadata.annotations.take().unwrap_or_default();
    match trigger_time {
        Some(t) => {
            annotations.insert(
                ANNOTATION_LAST_CHANGE_TRIGGER_TIME.to_string(),
                t.to_string(),
            );
        }
        None => {
            annotations.remove(ANNOTATION_LAST_CHANGE_TRIGGER_TIME);
        }
    }
    if truncated {
        annotations.insert(
            ANNOTATION_OVER_CAPACITY.to_string(),
            OVER_CAPACITY_TRUNCATED.to_string(),
        );
    } else {
        annotations.remove(ANNOTATION_OVER_CAPACITY);
    }
    next.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    Some(if current.is_some() {
        Write::Update(next)
    } else {
        Write::Create(next)
    })
}

/// Keys of the Services whose Endpoints a pod change may affect: those in
/// the pod's namespace whose selector matches the pod's old or new labels.
pub fn services_for_pod(
    services: &[Service],
    old: Option<&Pod>,
    new: Option<&Pod>,
) -> BTreeSet<ObjectKey> {
    let mut out = BTreeSet::new();
    for pod in old.into_iter().chain(new) {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        for service in services {
            if service.metadata.namespace.as_deref().unwrap_or("default") != namespace {
                continue;
            }
            let Some(selector) = pods::managed_selector(service) else {
                continue;
            };
            if pods::selector_matches(selector, pod.metadata.labels.as_ref()) {
                out.insert(ObjectKey::new(
                    namespace,
                    service.metadata.name.clone().unwrap_or_default(),
                ));
            }
        }
    }
    out
}
