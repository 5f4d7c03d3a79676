//! What kube-controller-manager's statefulset and daemonset controllers
//! decide, as pure functions over JSON objects: which pod to create or
//! delete next, and the status fields `kubectl get` and `kubectl rollout
//! status` read.
//!
//! A StatefulSet's pods are `<set>-0` … `<set>-N-1`. Under the default
//! `OrderedReady` policy they are created one at a time in order, each
//! waiting for the one before to be Running and Ready, and removed from the
//! highest ordinal down; `Parallel` does all at once. A rolling update
//! replaces the highest out-of-date pod at or above `partition`, one at a
//! time, once every pod is Ready.
//!
//! A DaemonSet runs one pod on every node its pod template's `nodeSelector`
//! matches (cordoned nodes included, as kube's tolerations make it), bound
//! to the node directly; a rolling update replaces out-of-date pods while
//! no more than `maxUnavailable` (default 1) are unavailable.
//!
//! Out of reach: volumeClaimTemplates' PersistentVolumeClaims, node
//! affinity and taints beyond the `nodeSelector`, ControllerRevision
//! objects (so `kubectl rollout history` and `undo` do not work for sets).

use serde_json::{Value, json};

use super::workloads::{is_active, is_ready, owner_ref, spec_replicas, template_hash};

/// The label holding the revision a set's pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// A StatefulSet pod's name, as a label (so a Service can select one pod).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// A StatefulSet pod's ordinal, as a label.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// The DaemonSet generation a pod was made from.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// One write a set's sync asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Create this pod.
    Create(Value),
    /// Delete the pod of this name.
    Delete(String),
}

/// The revision a set's current template makes: `<set>-<hash>`.
pub fn update_revision(set: &Value) -> String {
    format!(
        "{}-{}",
        set["metadata"]["name"].as_str().unwrap_or_default(),
        template_hash(&set["spec"]["template"])
    )
}

fn revision_of(pod: &Value) -> &str {
    pod["metadata"]["labels"][REVISION_LABEL]
        .as_str()
        .unwrap_or_default()
}

fn is_terminating(pod: &Value) -> bool {
    !pod["metadata"]["deletionTimestamp"].is_null()
}

fn running_and_ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running" && is_ready(pod)
}

fn name_of(pod: &Value) -> String {
    pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// How a set's pod is named.
enum PodName {
    /// Exactly this (a StatefulSet's `<set>-<ordinal>`).
    Fixed(String),
    /// This prefix and a random suffix (`generateName`).
    Generated(String),
}

/// A pod of `set` from its template, with `labels` added and the fields of
/// `spec` set in its spec.
fn pod_from_template(set: &Value, labels: &[(&str, String)], name: PodName, spec: Value) -> Value {
    let template = &set["spec"]["template"];
    let mut meta = template["metadata"].clone();
    if !meta.is_object() {
        meta = json!({});
    }
    if let Some(m) = meta.as_object_mut() {
        m.remove("creationTimestamp");
        m.remove("name");
        m.remove("generateName");
    }
    match name {
        PodName::Fixed(n) => meta["name"] = json!(n),
        PodName::Generated(prefix) => meta["generateName"] = json!(prefix),
    }
    meta["namespace"] = set["metadata"]["namespace"].clone();
    meta["ownerReferences"] = json!([owner_ref(set)]);
    if !meta["labels"].is_object() {
        meta["labels"] = json!({});
    }
    for (k, v) in labels {
        meta["labels"][*k] = json!(v);
    }
    let mut pod_spec = template["spec"].clone();
    if let (Some(target), Some(extra)) = (pod_spec.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            target.insert(k.clone(), v.clone());
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec})
}

/// The ordinal of a StatefulSet pod from its name, if it is one of `set`'s.
pub fn ordinal(set_name: &str, pod: &Value) -> Option<usize> {
    pod["metadata"]["name"]
        .as_str()?
        .strip_prefix(set_name)?
        .strip_prefix('-')?
        .parse()
        .ok()
}

/// The pod `<set>-<ordinal>` at `revision`.
pub fn stateful_pod(set: &Value, ordinal: usize, revision: &str) -> Value {
    let set_name = set["metadata"]["name"].as_str().unwrap_or_default();
    let name = format!("{set_name}-{ordinal}");
    let mut spec = json!({"hostname": name});
    if let Some(service) = set["spec"]["serviceName"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        spec["subdomain"] = json!(service);
    }
    pod_from_template(
        set,
        &[
            (REVISION_LABEL, revision.to_owned()),
            (POD_NAME_LABEL, name.clone()),
            (POD_INDEX_LABEL, ordinal.to_string()),
        ],
        PodName::Fixed(name.clone()),
        spec,
    )
}

/// The next writes of a StatefulSet whose controlled pods are `pods`.
pub fn stateful_steps(set: &Value, pods: &[Value]) -> Vec<Step> {
    let set_name = set["metadata"]["name"].as_str().unwrap_or_default();
    let replicas = usize::try_from(spec_replicas(set).max(0)).unwrap_or(0);
    let parallel = set["spec"]["podManagementPolicy"] == "Parallel";
    let revision = update_revision(set);
    let mut by_ordinal: Vec<Option<&Value>> = vec![None; replicas];
    let mut condemned: Vec<(usize, &Value)> = Vec::new();
    for pod in pods {
        match ordinal(set_name, pod) {
            Some(i) if i < replicas => by_ordinal[i] = Some(pod),
            Some(i) => condemned.push((i, pod)),
            None => {}
        }
    }
    let mut steps = Vec::new();
    // Pods on their way out finish first, as kube waits for them.
    if !parallel && pods.iter().any(is_terminating) {
        return steps;
    }
    for (i, slot) in by_ordinal.iter().enumerate() {
        match slot {
            None => {
                steps.push(Step::Create(stateful_pod(set, i, &revision)));
                if !parallel {
                    return steps;
                }
            }
            Some(pod) if !parallel && !running_and_ready(pod) => return steps,
            Some(_) => {}
        }
    }
    condemned.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
    for (_, pod) in &condemned {
        if !is_terminating(pod) {
            steps.push(Step::Delete(name_of(pod)));
            if !parallel {
                return steps;
            }
        }
    }
    if !steps.is_empty() || set["spec"]["updateStrategy"]["type"] == "OnDelete" {
        return steps;
    }
    // A rolling update: one pod at a time, once all are ready.
    let partition = set["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
        .as_u64()
        .and_then(|p| usize::try_from(p).ok())
        .unwrap_or(0);
    if by_ordinal.iter().flatten().all(|p| running_and_ready(p)) {
        let outdated = by_ordinal
            .iter()
            .enumerate()
            .rev()
            .filter(|(i, _)| *i >= partition)
            .find_map(|(_, p)| p.filter(|p| revision_of(p) != revision));
        if let Some(pod) = outdated {
            steps.push(Step::Delete(name_of(pod)));
        }
    }
    steps
}

/// A StatefulSet's status from its controlled pods.
pub fn stateful_status(set: &Value, pods: &[Value]) -> Value {
    let revision = update_revision(set);
    let active: Vec<&Value> = pods.iter().filter(|p| is_active(p)).collect();
    let ready = active.iter().filter(|p| is_ready(p)).count();
    let updated = active.iter().filter(|p| revision_of(p) == revision).count();
    let replicas = usize::try_from(spec_replicas(set).max(0)).unwrap_or(0);
    let previous = set["status"]["currentRevision"]
        .as_str()
        .unwrap_or_default();
    let current_revision = if updated >= replicas || previous.is_empty() {
        revision.clone()
    } else {
        previous.to_owned()
    };
    let current = active
        .iter()
        .filter(|p| revision_of(p) == current_revision)
        .count();
    json!({
        "observedGeneration": set["metadata"]["generation"],
        "replicas": active.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": current,
        "updatedReplicas": updated,
        "currentRevision": current_revision,
        "updateRevision": revision,
        "collisionCount": 0,
    })
}

/// A node as a DaemonSet sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetNode {
    /// The node's name.
    pub name: String,
    /// Whether the pod template's `nodeSelector` matches its labels.
    pub eligible: bool,
}

impl SetNode {
    /// `node` as `daemon_set` sees it.
    pub fn of(daemon_set: &Value, node: &Value) -> Self {
        let selector = daemon_set["spec"]["template"]["spec"]["nodeSelector"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let labels = &node["metadata"]["labels"];
        SetNode {
            name: name_of(node),
            eligible: selector.iter().all(|(k, v)| labels[k] == *v),
        }
    }
}

/// The DaemonSet's revision label value (the template hash alone, as kube
/// puts on the pods).
fn daemon_revision(ds: &Value) -> String {
    template_hash(&ds["spec"]["template"])
}

/// The DaemonSet's pod for `node`.
pub fn daemon_pod(ds: &Value, node: &str) -> Value {
    let name = ds["metadata"]["name"].as_str().unwrap_or_default();
    pod_from_template(
        ds,
        &[
            (REVISION_LABEL, daemon_revision(ds)),
            (
                TEMPLATE_GENERATION_LABEL,
                ds["metadata"]["generation"]
                    .as_i64()
                    .unwrap_or(1)
                    .to_string(),
            ),
        ],
        PodName::Generated(format!("{name}-")),
        json!({"nodeName": node}),
    )
}

fn node_of(pod: &Value) -> &str {
    pod["spec"]["nodeName"].as_str().unwrap_or_default()
}

/// The next writes of a DaemonSet over `nodes`, with its controlled `pods`.
pub fn daemon_steps(ds: &Value, nodes: &[SetNode], pods: &[Value]) -> Vec<Step> {
    let mut steps = Vec::new();
    let active: Vec<&Value> = pods.iter().filter(|p| is_active(p)).collect();
    for node in nodes.iter().filter(|n| n.eligible) {
        let mut here: Vec<&&Value> = active.iter().filter(|p| node_of(p) == node.name).collect();
        if here.is_empty() {
            steps.push(Step::Create(daemon_pod(ds, &node.name)));
            continue;
        }
        // Keep the oldest; a second pod on one node is a mistake.
        here.sort_by_key(|p| {
            p["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        });
        steps.extend(here[1..].iter().map(|p| Step::Delete(name_of(p))));
    }
    for pod in &active {
        let node = node_of(pod);
        if !nodes.iter().any(|n| n.eligible && n.name == node) {
            steps.push(Step::Delete(name_of(pod)));
        }
    }
    if !steps.is_empty() || ds["spec"]["updateStrategy"]["type"] == "OnDelete" {
        return steps;
    }
    let max_unavailable = ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(1)
        .max(1);
    let unavailable = active.iter().filter(|p| !is_ready(p)).count()
        + pods.iter().filter(|p| is_terminating(p)).count();
    let revision = daemon_revision(ds);
    let outdated = active
        .iter()
        .filter(|p| revision_of(p) != revision)
        .take(max_unavailable.saturating_sub(unavailable));
    steps.extend(outdated.map(|p| Step::Delete(name_of(p))));
    steps
}

/// A DaemonSet's status over `nodes`, with its controlled `pods`.
pub fn daemon_status(ds: &Value, nodes: &[SetNode], pods: &[Value]) -> Value {
    let revision = daemon_revision(ds);
    let active: Vec<&Value> = pods.iter().filter(|p| is_active(p)).collect();
    let on_eligible = |p: &&&Value| nodes.iter().any(|n| n.eligible && n.name == node_of(p));
    let desired = nodes.iter().filter(|n| n.eligible).count();
    let scheduled: std::collections::BTreeSet<&str> = active
        .iter()
        .filter(on_eligible)
        .map(|p| node_of(p))
        .collect();
    let ready = active
        .iter()
        .filter(on_eligible)
        .filter(|p| is_ready(p))
        .count();
    let updated = active
        .iter()
        .filter(on_eligible)
        .filter(|p| revision_of(p) == revision)
        .count();
    let misscheduled = active.len() - active.iter().filter(on_eligible).count();
    let mut status = json!({
        "observedGeneration": ds["metadata"]["generation"],
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": scheduled.len(),
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "numberAvailable": ready,
        "updatedNumberScheduled": updated,
    });
    if desired > ready {
        status["numberUnavailable"] = json!(desired - ready);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(replicas: i64, policy: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "ns", "uid": "s1", "generation": 1},
            "spec": {"replicas": replicas, "serviceName": "db", "podManagementPolicy": policy,
                "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}},
                             "spec": {"containers": [{"name": "c", "image": "postgres:16"}]}}}})
    }

    fn running(mut pod: Value, ready: bool) -> Value {
        pod["status"] = json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]});
        pod
    }

    fn created(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Create(p) => Some(name_of(p)),
                Step::Delete(_) => None,
            })
            .collect()
    }

    #[test]
    fn ordered_pods_come_one_at_a_time_each_after_the_last_is_ready() {
        let s = set(3, "OrderedReady");
        let steps = stateful_steps(&s, &[]);
        assert_eq!(created(&steps), vec!["db-0"]);
        let Step::Create(pod0) = &steps[0] else {
            unreachable!()
        };
        assert_eq!(pod0["spec"]["hostname"], "db-0");
        assert_eq!(pod0["spec"]["subdomain"], "db");
        assert_eq!(pod0["metadata"]["labels"][POD_NAME_LABEL], "db-0");
        assert_eq!(pod0["metadata"]["labels"]["app"], "db");
        assert_eq!(pod0["metadata"]["ownerReferences"][0]["uid"], "s1");
        assert!(
            stateful_steps(&s, &[running(pod0.clone(), false)]).is_empty(),
            "waits for db-0"
        );
        let steps = stateful_steps(&s, &[running(pod0.clone(), true)]);
        assert_eq!(created(&steps), vec!["db-1"]);
    }

    #[test]
    fn parallel_pods_come_at_once_and_scale_down_removes_the_highest_first() {
        let s = set(3, "Parallel");
        assert_eq!(
            created(&stateful_steps(&s, &[])),
            vec!["db-0", "db-1", "db-2"]
        );
        let rev = update_revision(&s);
        let pods: Vec<Value> = (0..3)
            .map(|i| running(stateful_pod(&s, i, &rev), true))
            .collect();
        let ordered = set(1, "OrderedReady");
        assert_eq!(
            stateful_steps(&ordered, &pods),
            vec![Step::Delete("db-2".into())],
            "one at a time, highest ordinal first"
        );
    }

    #[test]
    fn a_rolling_update_replaces_the_highest_outdated_pod_above_the_partition() {
        let old = set(3, "OrderedReady");
        let rev = update_revision(&old);
        let pods: Vec<Value> = (0..3)
            .map(|i| running(stateful_pod(&old, i, &rev), true))
            .collect();
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("postgres:17");
        assert_eq!(
            stateful_steps(&new, &pods),
            vec![Step::Delete("db-2".into())]
        );
        new["spec"]["updateStrategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 3}});
        assert!(
            stateful_steps(&new, &pods).is_empty(),
            "the partition holds them all"
        );
        let status = stateful_status(&new, &pods);
        assert_eq!(status["updatedReplicas"], 0);
        assert_eq!(status["readyReplicas"], 3);
        assert_ne!(status["updateRevision"], json!(rev));
    }

    fn ds() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "ns", "uid": "d1", "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                "template": {"metadata": {"labels": {"app": "agent"}},
                             "spec": {"nodeSelector": {"pool": "edge"},
                                      "containers": [{"name": "c", "image": "busybox"}]}}}})
    }

    fn node(name: &str, pool: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"pool": pool}}})
    }

    #[test]
    fn a_daemon_set_runs_one_pod_per_matching_node_and_leaves_the_others() {
        let d = ds();
        let nodes: Vec<SetNode> = [node("a", "edge"), node("b", "core"), node("c", "edge")]
            .iter()
            .map(|n| SetNode::of(&d, n))
            .collect();
        let steps = daemon_steps(&d, &nodes, &[]);
        let Step::Create(first) = &steps[0] else {
            unreachable!()
        };
        assert_eq!(first["metadata"]["generateName"], "agent-");
        assert!(first["metadata"]["name"].is_null());
        let bound: Vec<&str> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Create(p) => p["spec"]["nodeName"].as_str(),
                Step::Delete(_) => None,
            })
            .collect();
        assert_eq!(bound, vec!["a", "c"]);
        let mut pods: Vec<Value> = ["a", "c"]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut p = running(daemon_pod(&d, n), true);
                p["metadata"]["name"] = json!(format!("agent-{i}"));
                p
            })
            .collect();
        assert!(daemon_steps(&d, &nodes, &pods).is_empty());
        let status = daemon_status(&d, &nodes, &pods);
        assert_eq!(status["desiredNumberScheduled"], 2);
        assert_eq!(status["numberReady"], 2);
        assert_eq!(status["updatedNumberScheduled"], 2);
        // Node c leaves the pool: its pod goes.
        let nodes: Vec<SetNode> = [node("a", "edge"), node("c", "core")]
            .iter()
            .map(|n| SetNode::of(&d, n))
            .collect();
        assert_eq!(
            daemon_steps(&d, &nodes, &pods),
            vec![Step::Delete("agent-1".into())]
        );
        // A new template replaces one pod at a time.
        let mut newer = d.clone();
        newer["spec"]["template"]["spec"]["containers"][0]["image"] = json!("busybox:2");
        let nodes: Vec<SetNode> = [node("a", "edge"), node("c", "edge")]
            .iter()
            .map(|n| SetNode::of(&newer, n))
            .collect();
        assert_eq!(daemon_steps(&newer, &nodes, &pods).len(), 1);
        pods[0]["status"]["conditions"][0]["status"] = json!("False");
        assert!(
            daemon_steps(&newer, &nodes, &pods).is_empty(),
            "one already unavailable"
        );
    }
}
