//! The simulated data plane's decisions, as kwok (Kubernetes WithOut Kubelet)
//! makes them: the Nodes a cluster starts with, where a pod is scheduled, the
//! IP it gets from its node's pod CIDR, and the status a kubelet would report
//! for it. Pure: the `controllers::kubelet` task feeds it and writes what it
//! returns.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::{Value, json};

/// Annotation on the Nodes the simulated kubelet runs: only their pods are
/// started, made ready and deleted by it.
pub const SIMULATED_NODE_ANNOTATION: &str = "fedmesh.io/simulated-node";
/// Annotation a user sets (`kubectl annotate pod|node NAME
/// fedmesh.io/simulate-unready=true`) to make a pod, or a node and every pod
/// on it, not Ready; removing it makes them Ready again.
pub const UNREADY_ANNOTATION: &str = "fedmesh.io/simulate-unready";
/// The zone label of Nodes.
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
/// The region label of Nodes.
pub const LABEL_REGION: &str = "topology.kubernetes.io/region";
/// The kubelet version simulated Nodes report.
const KUBELET_VERSION: &str = "v1.33.0-fedmesh";

/// What the simulated data plane of one cluster looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPlaneOptions {
    /// How many Nodes (`<prefix>-0` ... `<prefix>-N-1`); 0 turns the
    /// simulated scheduler and kubelet off.
    pub nodes: u32,
    /// Node names' prefix.
    pub node_prefix: String,
    /// `topology.kubernetes.io/zone` of every Node (none when empty).
    pub zone: String,
    /// `topology.kubernetes.io/region` of every Node (none when empty).
    pub region: String,
    /// The cluster's pod network; Node `i` gets its `i`th /24.
    pub cluster_cidr: Ipv4Addr,
    /// How long a bound pod takes to be Running and Ready, and a deleted
    /// pod's containers to stop (capped by its grace period).
    pub start_delay: Duration,
    /// How often each Node's Lease in `kube-node-lease` is renewed.
    pub heartbeat: Duration,
    /// Pods per Node (the kubelet's `maxPods`).
    pub max_pods: u32,
}

impl Default for DataPlaneOptions {
    fn default() -> Self {
        DataPlaneOptions {
            nodes: 0,
            node_prefix: "node".into(),
            zone: String::new(),
            region: String::new(),
            cluster_cidr: Ipv4Addr::new(10, 244, 0, 0),
            start_delay: Duration::from_millis(500),
            heartbeat: Duration::from_secs(10),
            max_pods: 110,
        }
    }
}

/// Why data plane options are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataPlaneError {
    /// More Nodes than /24 networks in the /16 pod network.
    #[error("at most 256 simulated nodes fit the /16 pod network, not {0}")]
    TooManyNodes(u32),
    /// A node can hold at most 253 pod IPs in its /24.
    #[error("max pods per node must be between 1 and 253 (a node's /24 pod network), not {0}")]
    MaxPods(u32),
}

impl DataPlaneOptions {
    /// Checks the options.
    pub fn validate(&self) -> Result<(), DataPlaneError> {
        if self.nodes > 256 {
            return Err(DataPlaneError::TooManyNodes(self.nodes));
        }
        if !(1..=253).contains(&self.max_pods) {
            return Err(DataPlaneError::MaxPods(self.max_pods));
        }
        Ok(())
    }

    /// Name of Node `i`.
    pub fn node_name(&self, i: u32) -> String {
        format!("{}-{i}", self.node_prefix)
    }

    /// The /24 of Node `i`.
    pub fn node_cidr(&self, i: u32) -> Ipv4Addr {
        let base = u32::from(self.cluster_cidr) & 0xffff_0000;
        Ipv4Addr::from(base + ((i & 0xff) << 8))
    }

    /// The Node objects the cluster starts with.
    pub fn node_objects(&self) -> Vec<Value> {
        (0..self.nodes).map(|i| self.node_object(i)).collect()
    }

    fn node_object(&self, i: u32) -> Value {
        let name = self.node_name(i);
        let mut labels = BTreeMap::from([
            ("kubernetes.io/hostname".to_owned(), name.clone()),
            ("kubernetes.io/os".to_owned(), "linux".to_owned()),
            ("kubernetes.io/arch".to_owned(), "amd64".to_owned()),
            ("beta.kubernetes.io/os".to_owned(), "linux".to_owned()),
            ("beta.kubernetes.io/arch".to_owned(), "amd64".to_owned()),
            ("type".to_owned(), "simulated".to_owned()),
        ]);
        if !self.zone.is_empty() {
            labels.insert(LABEL_ZONE.into(), self.zone.clone());
        }
        if !self.region.is_empty() {
            labels.insert(LABEL_REGION.into(), self.region.clone());
        }
        let cidr = format!("{}/24", self.node_cidr(i));
        let internal = Ipv4Addr::new(172, 18, (i / 250) as u8, (i % 250 + 2) as u8);
        let capacity = json!({"cpu": "4", "memory": "16Gi", "pods": self.max_pods.to_string(),
            "ephemeral-storage": "100Gi"});
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": labels,
                "annotations": {SIMULATED_NODE_ANNOTATION: "true",
                    "node.alpha.kubernetes.io/ttl": "0"}},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "addresses": [{"type": "InternalIP", "address": internal.to_string()},
                              {"type": "Hostname", "address": name}],
                "nodeInfo": {"kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                    "osImage": "fedmesh simulated node", "kernelVersion": "simulated",
                    "containerRuntimeVersion": "simulated://1.0", "operatingSystem": "linux",
                    "architecture": "amd64", "machineID": "", "systemUUID": "", "bootID": ""},
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            },
        })
    }
}

/// The status `Ready` condition (and `not-ready` taint) a simulated Node should
/// have; `None` when the stored Node already has it.
pub fn node_status(node: &Value, ready: bool, now: &str) -> Option<Value> {
    let current = condition_status(&node["status"], "Ready");
    let want = if ready { "True" } else { "False" };
    if current == Some(want) {
        return None;
    }
    let mut status = node["status"].clone();
    let (reason, message) = if ready {
        (
            "KubeletReady",
            "kubelet is posting ready status (simulated)",
        )
    } else {
        (
            "KubeletNotReady",
            "the node is marked unready with the fedmesh.io/simulate-unready annotation",
        )
    };
    let pressure = |t: &str, r: &str| {
        json!({"type": t, "status": "False", "reason": r, "lastHeartbeatTime": now, "lastTransitionTime": now,
            "message": "kubelet is simulated"})
    };
    status["conditions"] = json!([
        pressure("MemoryPressure", "KubeletHasSufficientMemory"),
        pressure("DiskPressure", "KubeletHasNoDiskPressure"),
        pressure("PIDPressure", "KubeletHasSufficientPID"),
        {"type": "Ready", "status": want, "reason": reason, "message": message,
         "lastHeartbeatTime": now, "lastTransitionTime": now},
    ]);
    Some(status)
}

fn condition_status<'a>(status: &'a Value, type_: &str) -> Option<&'a str> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?["status"]
        .as_str()
}

/// Whether an object carries the unready annotation with a true value.
pub fn marked_unready(obj: &Value) -> bool {
    obj["metadata"]["annotations"][UNREADY_ANNOTATION]
        .as_str()
        .is_some_and(|v| !matches!(v, "false" | "False" | "0" | ""))
}

/// What the scheduler knows of one Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFit {
    /// Name.
    pub name: String,
    /// Labels (for `nodeSelector`).
    pub labels: BTreeMap<String, String>,
    /// Ready and not cordoned.
    pub schedulable: bool,
    /// Pods bound to it.
    pub pods: u32,
    /// Pods it can hold.
    pub max_pods: u32,
}

/// Where the scheduler puts a pod: the schedulable Node matching its
/// `nodeSelector` with room and the fewest pods (ties by name); or why none.
pub fn schedule<'a>(
    pod_spec: &Value,
    nodes: impl IntoIterator<Item = &'a NodeFit>,
) -> Result<String, String> {
    let selector = pod_spec["nodeSelector"].as_object();
    let mut total = 0;
    let (mut not_ready, mut mismatched, mut full) = (0, 0, 0);
    let mut best: Option<&NodeFit> = None;
    for n in nodes {
        total += 1;
        if !n.schedulable {
            not_ready += 1;
            continue;
        }
        if selector.is_some_and(|sel| {
            sel.iter()
                .any(|(k, v)| n.labels.get(k).map(String::as_str) != v.as_str())
        }) {
            mismatched += 1;
            continue;
        }
        if n.pods >= n.max_pods {
            full += 1;
            continue;
        }
        if best.is_none_or(|b| n.pods < b.pods) {
            best = Some(n);
        }
    }
    if let Some(b) = best {
        return Ok(b.name.clone());
    }
    let mut reasons = Vec::new();
    if mismatched > 0 {
        reasons.push(format!(
            "{mismatched} node(s) didn't match Pod's node affinity/selector"
        ));
    }
    if not_ready > 0 {
        reasons.push(format!(
            "{not_ready} node(s) had untolerated taint {{node.kubernetes.io/not-ready: }}"
        ));
    }
    if full > 0 {
        reasons.push(format!("{full} Too many pods"));
    }
    Err(format!(
        "0/{total} nodes are available: {}.",
        if reasons.is_empty() {
            "no nodes registered".to_owned()
        } else {
            reasons.join(", ")
        }
    ))
}

/// The `PodScheduled=False` condition of an unschedulable pod; `None` when
/// the pod already says so.
pub fn unschedulable_status(pod: &Value, message: &str, now: &str) -> Option<Value> {
    let existing = pod["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled"));
    if existing.is_some_and(|c| c["status"] == "False" && c["message"] == message) {
        return None;
    }
    let mut status = pod["status"].clone();
    status["phase"] = json!("Pending");
    status["conditions"] = json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": message, "lastProbeTime": null, "lastTransitionTime": now}]);
    Some(status)
}

/// The IP at `offset` in a node's /24 (`.2` to `.254`: `.0` is the network,
/// `.1` the node's bridge, `.255` broadcast).
pub fn pod_ip(node_cidr: Ipv4Addr, offset: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(node_cidr) + u32::from(offset))
}

/// The first free offset of a node's /24 (see [`pod_ip`]).
pub fn free_offset(used: &std::collections::BTreeSet<u8>) -> Option<u8> {
    (2..=254).find(|o| !used.contains(o))
}

/// The offset of `ip` in the /24 `node_cidr`, when it is a pod address there.
pub fn offset_in(node_cidr: Ipv4Addr, ip: &str) -> Option<u8> {
    let ip: Ipv4Addr = ip.parse().ok()?;
    let diff = u32::from(ip).checked_sub(u32::from(node_cidr))?;
    u8::try_from(diff).ok().filter(|o| (2..=254).contains(o))
}

/// The status of a started pod as a kubelet reports it: `Running`, its IP,
/// every container running since `started` (ready as `ready` says), and the
/// five conditions `kubectl get`/`wait`/`describe` read. Keeps `startTime`,
/// `podIP` and container start times of an earlier report.
pub fn running_status(pod: &Value, host_ip: &str, pod_ip: &str, ready: bool, now: &str) -> Value {
    let old = &pod["status"];
    let started = old["startTime"].as_str().unwrap_or(now).to_owned();
    let flag = if ready { "True" } else { "False" };
    let transition = |t: &str, s: &str| {
        old["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == t && c["status"] == s))
            .and_then(|c| c["lastTransitionTime"].as_str())
            .unwrap_or(now)
            .to_owned()
    };
    let mut conditions = vec![
        json!({"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": null,
            "lastTransitionTime": transition("PodReadyToStartContainers", "True")}),
        json!({"type": "Initialized", "status": "True", "lastProbeTime": null,
            "lastTransitionTime": transition("Initialized", "True")}),
    ];
    for t in ["Ready", "ContainersReady"] {
        let mut c = json!({"type": t, "status": flag, "lastProbeTime": null,
            "lastTransitionTime": transition(t, flag)});
        if !ready {
            c["reason"] = json!("ContainersNotReady");
            c["message"] =
                json!("marked unready (fedmesh.io/simulate-unready on the pod or its node)");
        }
        conditions.push(c);
    }
    conditions.push(
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
        "lastTransitionTime": transition("PodScheduled", "True")}),
    );
    let container_statuses = |key: &str, init: bool| -> Vec<Value> {
        pod["spec"][key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let name = c["name"].as_str().unwrap_or_default();
                let image = c["image"].as_str().unwrap_or_default();
                let image_ref = if image.contains('/') {
                    image.to_owned()
                } else {
                    format!("docker.io/library/{image}")
                };
                let id = container_id(pod, name);
                if init {
                    json!({"name": name, "image": image_ref, "imageID": format!("{image_ref}@sha256:simulated"),
                        "containerID": id, "ready": true, "restartCount": 0, "started": false,
                        "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                            "startedAt": started, "finishedAt": started, "containerID": id}}})
                } else {
                    json!({"name": name, "image": image_ref, "imageID": format!("{image_ref}@sha256:simulated"),
                        "containerID": id, "ready": ready, "restartCount": 0, "started": true,
                        "state": {"running": {"startedAt": started}}})
                }
            })
            .collect()
    };
    let mut status = json!({
        "phase": "Running",
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": started,
        "containerStatuses": container_statuses("containers", false),
    });
    let init = container_statuses("initContainers", true);
    if !init.is_empty() {
        status["initContainerStatuses"] = Value::Array(init);
    }
    if let Some(q) = old.get("qosClass") {
        status["qosClass"] = q.clone();
    }
    status
}

/// A stable, container-ID-looking name for a pod's container.
fn container_id(pod: &Value, container: &str) -> String {
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let digest = crate::cluster::gohash::md5(format!("{uid}/{container}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("containerd://{hex}{hex}")
}

/// Whether the stored status already is what [`running_status`] gives (so a
/// sync writes nothing).
pub fn status_matches(pod: &Value, want: &Value) -> bool {
    let old = &pod["status"];
    old["phase"] == want["phase"]
        && old["podIP"] == want["podIP"]
        && old["hostIP"] == want["hostIP"]
        && condition_status(old, "Ready") == condition_status(want, "Ready")
        && old["containerStatuses"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
            == want["containerStatuses"]
                .as_array()
                .map(Vec::len)
                .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn fit(name: &str, pods: u32, schedulable: bool) -> NodeFit {
        NodeFit {
            name: name.into(),
            labels: BTreeMap::from([("zone".to_owned(), name.to_owned())]),
            schedulable,
            pods,
            max_pods: 3,
        }
    }

    #[test]
    fn nodes_get_names_zones_and_a_slash_24_each() {
        let opts = DataPlaneOptions {
            nodes: 3,
            zone: "us-central1-a".into(),
            region: "us-central1".into(),
            ..DataPlaneOptions::default()
        };
        let nodes = opts.node_objects();
        assert_eq!(nodes.len(), 3);
        assert_eq!(nodes[2]["metadata"]["name"], "node-2");
        assert_eq!(nodes[2]["spec"]["podCIDR"], "10.244.2.0/24");
        assert_eq!(nodes[0]["metadata"]["labels"][LABEL_ZONE], "us-central1-a");
        assert_eq!(nodes[0]["metadata"]["labels"][LABEL_REGION], "us-central1");
        assert!(
            DataPlaneOptions {
                nodes: 300,
                ..opts.clone()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn the_scheduler_spreads_and_says_why_it_cannot() {
        let nodes = [fit("a", 2, true), fit("b", 1, true), fit("c", 0, false)];
        assert_eq!(schedule(&json!({}), &nodes), Ok("b".into()));
        assert_eq!(
            schedule(&json!({"nodeSelector": {"zone": "a"}}), &nodes),
            Ok("a".into())
        );
        let full = [fit("a", 3, true), fit("c", 0, false)];
        assert_eq!(
            schedule(&json!({}), &full),
            Err("0/2 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 Too many pods.".into())
        );
        assert!(schedule(&json!({}), &[]).is_err());
    }

    #[test]
    fn pod_ips_come_from_the_node_cidr_and_are_reused() {
        let cidr = Ipv4Addr::new(10, 244, 1, 0);
        let mut used = BTreeSet::new();
        let first = free_offset(&used).unwrap();
        assert_eq!(pod_ip(cidr, first).to_string(), "10.244.1.2");
        used.insert(first);
        assert_eq!(free_offset(&used), Some(3));
        assert_eq!(offset_in(cidr, "10.244.1.2"), Some(2));
        assert_eq!(offset_in(cidr, "10.244.2.2"), None);
        let all: BTreeSet<u8> = (2..=254).collect();
        assert_eq!(free_offset(&all), None);
    }

    #[test]
    fn running_status_is_what_kubectl_reads() {
        let pod = json!({"metadata": {"uid": "u1"}, "spec": {"containers": [{"name": "nginx", "image": "nginx:1.11.1-alpine"}]},
            "status": {"phase": "Pending", "qosClass": "BestEffort"}});
        let s = running_status(
            &pod,
            "172.18.0.2",
            "10.244.0.2",
            true,
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.244.0.2");
        assert_eq!(s["containerStatuses"][0]["ready"], true);
        assert!(s["containerStatuses"][0]["state"]["running"].is_object());
        assert_eq!(condition_status(&s, "Ready"), Some("True"));
        assert_eq!(s["qosClass"], "BestEffort");
        let mut stored = pod.clone();
        stored["status"] = s.clone();
        assert!(status_matches(&stored, &s));
        let unready = running_status(&stored, "172.18.0.2", "10.244.0.2", false, "later");
        assert!(!status_matches(&stored, &unready));
        assert_eq!(unready["startTime"], "2026-01-01T00:00:00Z");
        assert!(marked_unready(
            &json!({"metadata": {"annotations": {UNREADY_ANNOTATION: "true"}}})
        ));
        assert!(!marked_unready(
            &json!({"metadata": {"annotations": {UNREADY_ANNOTATION: "false"}}})
        ));
    }
}
