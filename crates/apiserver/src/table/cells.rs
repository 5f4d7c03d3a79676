//! Cells of the built-in printers, computed from objects in JSON form the
//! way kube-apiserver's `printers.go` computes them.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde_json::{Value, json};

use super::duration::{age, human_duration, since};
use crate::schema::BuiltinKind;

/// A row's cells and its conditions.
pub(crate) struct Printed {
    pub cells: Vec<Value>,
    pub conditions: Option<Value>,
}

pub(super) fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

pub(super) fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

pub(super) fn arr<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(super) fn int(v: &Value, path: &[&str]) -> i64 {
    get(v, path).and_then(Value::as_i64).unwrap_or(0)
}

fn count_keys(v: &Value, path: &[&str]) -> i64 {
    get(v, path)
        .and_then(Value::as_object)
        .map_or(0, |m| i64::try_from(m.len()).unwrap_or(i64::MAX))
}

pub(super) fn name(v: &Value) -> String {
    s(v, &["metadata", "name"]).unwrap_or_default().to_string()
}

pub(super) fn created(v: &Value, now: Timestamp) -> String {
    age(s(v, &["metadata", "creationTimestamp"]), now)
}

fn timestamp(v: &Value, path: &[&str]) -> Option<Timestamp> {
    s(v, path).and_then(|t| t.parse().ok())
}

/// `labels.FormatLabels`: sorted `k=v` joined with commas, `<none>` when
/// empty.
pub(crate) fn format_labels(v: Option<&Value>) -> String {
    let mut pairs: Vec<String> = v
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.sort();
    pairs.join(",")
}

fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let joined = list.join(",");
    if more {
        return format!("{joined} + {} more...", count - max);
    }
    if joined.is_empty() {
        return "<unset>".to_string();
    }
    joined
}

const MAX_LISTED: usize = 3;

/// `formatEndpoints`: up to three `ip:port` (or bare IPs for port-less
/// subsets), then ` + N more...`; `<none>` without subsets.
pub(crate) fn format_endpoints(endpoints: &Value) -> String {
    let subsets = arr(endpoints, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr(ss, &["addresses"]);
        let ports = arr(ss, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX_LISTED {
                    more = true;
                    break;
                }
                list.push(s(a, &["ip"]).unwrap_or_default().to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX_LISTED {
                    more = true;
                    break;
                }
                list.push(join_host_port(
                    s(a, &["ip"]).unwrap_or_default(),
                    int(port, &["port"]),
                ));
            }
        }
    }
    let joined = list.join(",");
    if more {
        return format!("{joined} + {} more...", count - MAX_LISTED);
    }
    joined
}

fn format_discovery_ports(ports: &[Value]) -> String {
    let mut list = Vec::new();
    let mut more = false;
    for port in ports {
        if list.len() < MAX_LISTED {
            let text = match (
                get(port, &["port"]).and_then(Value::as_i64),
                s(port, &["name"]),
            ) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            };
            list.push(text);
        } else if list.len() == MAX_LISTED {
            more = true;
        }
    }
    list_with_more(&list, more, ports.len(), MAX_LISTED)
}

fn format_discovery_endpoints(endpoints: &[Value]) -> String {
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    for e in endpoints {
        for a in arr(e, &["addresses"]) {
            if list.len() < MAX_LISTED {
                list.push(a.as_str().unwrap_or_default().to_string());
            } else if list.len() == MAX_LISTED {
                more = true;
            }
            count += 1;
        }
    }
    list_with_more(&list, more, count, MAX_LISTED)
}

/// Load-balancer ingress IPs or hostnames, sorted and de-duplicated. The
/// server prints tables wide, so the 16-character clipping of narrow output
/// never applies.
fn load_balancer_status(service: &Value) -> String {
    let mut set = BTreeSet::new();
    for ingress in arr(service, &["status", "loadBalancer", "ingress"]) {
        match (s(ingress, &["ip"]), s(ingress, &["hostname"])) {
            (Some(ip), _) if !ip.is_empty() => {
                set.insert(ip.to_string());
            }
            (_, Some(h)) if !h.is_empty() => {
                set.insert(h.to_string());
            }
            _ => {}
        }
    }
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn service_external_ip(service: &Value, service_type: &str) -> String {
    let external: Vec<String> = arr(service, &["spec", "externalIPs"])
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    match service_type {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_string()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_status(service);
            if !external.is_empty() {
                let mut results: Vec<String> = Vec::new();
                if !lb.is_empty() {
                    results.extend(lb.split(',').map(str::to_string));
                }
                results.extend(external);
                return results.join(",");
            }
            if lb.is_empty() {
                "<pending>".to_string()
            } else {
                lb
            }
        }
        "ExternalName" => s(service, &["spec", "externalName"])
            .unwrap_or_default()
            .to_string(),
        _ => "<unknown>".to_string(),
    }
}

fn service_ports(service: &Value) -> String {
    let pieces: Vec<String> = arr(service, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = int(p, &["port"]);
            let protocol = s(p, &["protocol"]).unwrap_or("TCP");
            let node_port = int(p, &["nodePort"]);
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    if pieces.is_empty() {
        "<none>".to_string()
    } else {
        pieces.join(",")
    }
}

fn print_service(v: &Value, now: Timestamp) -> Vec<Value> {
    let service_type = s(v, &["spec", "type"]).unwrap_or("ClusterIP");
    let cluster_ip = arr(v, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .or_else(|| s(v, &["spec", "clusterIP"]).filter(|ip| !ip.is_empty()))
        .unwrap_or("<none>");
    vec![
        json!(name(v)),
        json!(service_type),
        json!(cluster_ip),
        json!(service_external_ip(v, service_type)),
        json!(service_ports(v)),
        json!(created(v, now)),
        json!(format_labels(get(v, &["spec", "selector"]))),
    ]
}

fn condition_true(v: &Value, path: &[&str], type_: &str) -> bool {
    arr(v, path)
        .iter()
        .any(|c| s(c, &["type"]) == Some(type_) && s(c, &["status"]) == Some("True"))
}

fn max_time(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn terminated_reason(t: &Value, prefix: &str) -> String {
    match s(t, &["reason"]).filter(|r| !r.is_empty()) {
        Some(r) => format!("{prefix}{r}"),
        None => {
            let signal = int(t, &["signal"]);
            if signal != 0 {
                format!("{prefix}Signal:{signal}")
            } else {
                format!("{prefix}ExitCode:{}", int(t, &["exitCode"]))
            }
        }
    }
}

fn print_pod(pod: &Value, now: Timestamp) -> Printed {
    let init_specs = arr(pod, &["spec", "initContainers"]);
    let is_restartable = |name: &str| {
        init_specs
            .iter()
            .any(|c| s(c, &["name"]) == Some(name) && s(c, &["restartPolicy"]) == Some("Always"))
    };
    let mut total = arr(pod, &["spec", "containers"]).len();
    total += init_specs
        .iter()
        .filter(|c| s(c, &["restartPolicy"]) == Some("Always"))
        .count();
    let phase = s(pod, &["status", "phase"]).unwrap_or_default();
    let mut reason = s(pod, &["status", "reason"])
        .filter(|r| !r.is_empty())
        .unwrap_or(phase)
        .to_string();
    for c in arr(pod, &["status", "conditions"]) {
        if s(c, &["type"]) == Some("PodScheduled") && s(c, &["reason"]) == Some("SchedulingGated") {
            reason = "SchedulingGated".to_string();
        }
    }
    let conditions = match phase {
        "Succeeded" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}]),
        ),
        "Failed" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]),
        ),
        _ => None,
    };

    let mut restarts: i64 = 0;
    let mut restartable_restarts: i64 = 0;
    let mut ready = 0usize;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_restart: Option<Timestamp> = None;
    let init_statuses = arr(pod, &["status", "initContainerStatuses"]);
    let mut initializing = false;
    for (i, c) in init_statuses.iter().enumerate() {
        restarts += int(c, &["restartCount"]);
        let finished = timestamp(c, &["lastState", "terminated", "finishedAt"]);
        last_restart = max_time(last_restart, finished);
        let restartable = is_restartable(s(c, &["name"]).unwrap_or_default());
        if restartable {
            restartable_restarts += int(c, &["restartCount"]);
            last_restartable_restart = max_time(last_restartable_restart, finished);
        }
        let terminated = get(c, &["state", "terminated"]);
        let waiting_reason = s(c, &["state", "waiting", "reason"]).filter(|r| !r.is_empty());
        if terminated.is_some_and(|t| int(t, &["exitCode"]) == 0) {
            continue;
        }
        if restartable && get(c, &["started"]).and_then(Value::as_bool) == Some(true) {
            if get(c, &["ready"]).and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = terminated_reason(t, "Init:");
        } else if let Some(w) = waiting_reason.filter(|w| *w != "PodInitializing") {
            reason = format!("Init:{w}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, &["status", "conditions"], "Initialized") {
        restarts = restartable_restarts;
        last_restart = last_restartable_restart;
        let mut has_running = false;
        for c in arr(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += int(c, &["restartCount"]);
            last_restart = max_time(
                last_restart,
                timestamp(c, &["lastState", "terminated", "finishedAt"]),
            );
            let waiting = s(c, &["state", "waiting", "reason"]).filter(|r| !r.is_empty());
            let terminated = get(c, &["state", "terminated"]);
            if let Some(w) = waiting {
                reason = w.to_string();
            } else if let Some(t) = terminated {
                reason = terminated_reason(t, "");
            } else if get(c, &["ready"]).and_then(Value::as_bool) == Some(true)
                && get(c, &["state", "running"]).is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, &["status", "conditions"], "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    let deleting = get(pod, &["metadata", "deletionTimestamp"]).is_some_and(|t| !t.is_null());
    if deleting && s(pod, &["status", "reason"]) == Some("NodeLost") {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(since(t, now))),
        _ => restarts.to_string(),
    };

    let none = |x: Option<&str>| x.filter(|x| !x.is_empty()).unwrap_or("<none>").to_string();
    let pod_ip = arr(pod, &["status", "podIPs"])
        .first()
        .and_then(|p| s(p, &["ip"]))
        .or_else(|| s(pod, &["status", "podIP"]));
    let gates = arr(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = arr(pod, &["status", "conditions"]);
        let true_count = gates
            .iter()
            .filter(|g| {
                let t = s(g, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| s(c, &["type"]) == t)
                    .is_some_and(|c| s(c, &["status"]) == Some("True"))
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };
    Printed {
        cells: vec![
            json!(name(pod)),
            json!(format!("{ready}/{total}")),
            json!(reason),
            json!(restarts_text),
            json!(created(pod, now)),
            json!(none(pod_ip)),
            json!(none(s(pod, &["spec", "nodeName"]))),
            json!(none(s(pod, &["status", "nominatedNodeName"]))),
            json!(readiness_gates),
        ],
        conditions,
    }
}

fn print_node(node: &Value, now: Timestamp) -> Vec<Value> {
    let mut status: Vec<String> = Vec::new();
    // The last condition of a type wins, as in the Go map.
    if let Some(c) = arr(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| s(c, &["type"]) == Some("Ready"))
    {
        if s(c, &["status"]) == Some("True") {
            status.push("Ready".to_string());
        } else {
            status.push("NotReady".to_string());
        }
    }
    if status.is_empty() {
        status.push("Unknown".to_string());
    }
    if get(node, &["spec", "unschedulable"]).and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled".to_string());
    }
    let mut roles = BTreeSet::new();
    for (k, v) in get(node, &["metadata", "labels"])
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == "kubernetes.io/role"
            && let Some(v) = v.as_str().filter(|v| !v.is_empty())
        {
            roles.insert(v.to_string());
        }
    }
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    };
    let address = |t: &str| {
        arr(node, &["status", "addresses"])
            .iter()
            .find(|a| s(a, &["type"]) == Some(t))
            .and_then(|a| s(a, &["address"]))
            .unwrap_or("<none>")
            .to_string()
    };
    let info = |k: &str| {
        s(node, &["status", "nodeInfo", k])
            .filter(|x| !x.is_empty())
            .unwrap_or("<unknown>")
            .to_string()
    };
    vec![
        json!(name(node)),
        json!(status.join(",")),
        json!(roles),
        json!(created(node, now)),
        json!(s(node, &["status", "nodeInfo", "kubeletVersion"]).unwrap_or_default()),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

/// An Event in core/v1 terms, whichever API group it was read from.
struct EventView<'a> {
    v: &'a Value,
    core: bool,
}

impl<'a> EventView<'a> {
    fn field(&self, core: &str, events: &str) -> Option<&'a Value> {
        self.v.get(if self.core { core } else { events })
    }
    fn text(&self, core: &str, events: &str) -> &'a str {
        self.field(core, events)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

fn print_event(v: &Value, now: Timestamp) -> Vec<Value> {
    // A list's items carry no apiVersion: their fields then say which API.
    let core = match s(v, &["apiVersion"]) {
        Some(api_version) => !api_version.starts_with("events.k8s.io/"),
        None => v.get("involvedObject").is_some() || v.get("regarding").is_none(),
    };
    let e = EventView { v, core };
    let ts = |core: &str, events: &str| {
        e.field(core, events)
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<Timestamp>().ok())
    };
    let since_text = |t: Option<Timestamp>| match t {
        Some(t) => human_duration(since(t, now)),
        None => "<unknown>".to_string(),
    };
    let first_seen = match ts("firstTimestamp", "deprecatedFirstTimestamp") {
        Some(t) => since_text(Some(t)),
        None => since_text(ts("eventTime", "eventTime")),
    };
    let mut last_seen = match ts("lastTimestamp", "deprecatedLastTimestamp") {
        Some(t) => since_text(Some(t)),
        None => first_seen.clone(),
    };
    let mut count = e
        .field("count", "deprecatedCount")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if let Some(series) = e.field("series", "series").filter(|x| !x.is_null()) {
        last_seen = since_text(s(series, &["lastObservedTime"]).and_then(|t| t.parse().ok()));
        count = int(series, &["count"]);
    } else if count == 0 {
        count = 1;
    }
    let involved = e
        .field("involvedObject", "regarding")
        .cloned()
        .unwrap_or(Value::Null);
    let kind = s(&involved, &["kind"]).unwrap_or_default().to_lowercase();
    let target = match s(&involved, &["name"]).filter(|n| !n.is_empty()) {
        Some(n) => format!("{kind}/{n}"),
        None => kind,
    };
    let source = e
        .field("source", "deprecatedSource")
        .cloned()
        .unwrap_or(Value::Null);
    let first_non_empty =
        |a: Option<&str>, b: &str| a.filter(|x| !x.is_empty()).unwrap_or(b).to_string();
    let component = first_non_empty(
        s(&source, &["component"]),
        e.text("reportingComponent", "reportingController"),
    );
    let instance = first_non_empty(
        s(&source, &["host"]),
        e.text("reportingInstance", "reportingInstance"),
    );
    let source_text = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last_seen),
        json!(e.text("type", "type")),
        json!(e.text("reason", "reason")),
        json!(target),
        json!(s(&involved, &["fieldPath"]).unwrap_or_default()),
        json!(source_text),
        json!(e.text("message", "note").trim()),
        json!(first_seen),
        json!(count),
        json!(name(v)),
    ]
}

fn print_binding(v: &Value, now: Timestamp) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        s(v, &["roleRef", "kind"]).unwrap_or_default(),
        s(v, &["roleRef", "name"]).unwrap_or_default()
    );
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for subject in arr(v, &["subjects"]) {
        let subject_name = s(subject, &["name"]).unwrap_or_default();
        match s(subject, &["kind"]).unwrap_or_default() {
            "ServiceAccount" => service_accounts.push(format!(
                "{}/{subject_name}",
                s(subject, &["namespace"]).unwrap_or_default()
            )),
            "User" => users.push(subject_name.to_string()),
            "Group" => groups.push(subject_name.to_string()),
            _ => {}
        }
    }
    vec![
        json!(name(v)),
        json!(role),
        json!(created(v, now)),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(service_accounts.join(", ")),
    ]
}

/// The cells (and row conditions) a built-in printer gives one object
/// (`None`: the kind has no dedicated printer).
pub(crate) fn print(kind: BuiltinKind, v: &Value, now: Timestamp) -> Option<Printed> {
    let cells = match kind {
        BuiltinKind::Pod => return Some(print_pod(v, now)),
        BuiltinKind::Service => print_service(v, now),
        BuiltinKind::Endpoints => vec![
            json!(name(v)),
            json!(format_endpoints(v)),
            json!(created(v, now)),
        ],
        BuiltinKind::EndpointSlice => vec![
            json!(name(v)),
            json!(s(v, &["addressType"]).unwrap_or_default()),
            json!(format_discovery_ports(arr(v, &["ports"]))),
            json!(format_discovery_endpoints(arr(v, &["endpoints"]))),
            json!(created(v, now)),
        ],
        BuiltinKind::Node => print_node(v, now),
        BuiltinKind::Namespace => vec![
            json!(name(v)),
            json!(s(v, &["status", "phase"]).unwrap_or_default()),
            json!(created(v, now)),
        ],
        BuiltinKind::Secret => vec![
            json!(name(v)),
            json!(s(v, &["type"]).unwrap_or_default()),
            json!(count_keys(v, &["data"])),
            json!(created(v, now)),
        ],
        BuiltinKind::ConfigMap => vec![
            json!(name(v)),
            json!(count_keys(v, &["data"]) + count_keys(v, &["binaryData"])),
            json!(created(v, now)),
        ],
        BuiltinKind::ServiceAccount => vec![
            json!(name(v)),
            json!(i64::try_from(arr(v, &["secrets"]).len()).unwrap_or(i64::MAX)),
            json!(created(v, now)),
        ],
        BuiltinKind::Event | BuiltinKind::EventsEvent => print_event(v, now),
        BuiltinKind::Lease => vec![
            json!(name(v)),
            json!(s(v, &["spec", "holderIdentity"]).unwrap_or_default()),
            json!(created(v, now)),
        ],
        BuiltinKind::RoleBinding | BuiltinKind::ClusterRoleBinding => print_binding(v, now),
        other => super::workloads::cells(other, v, now)?,
    };
    Some(Printed {
        cells,
        conditions: None,
    })
}
