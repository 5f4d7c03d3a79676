//! What kube-controller-manager's deployment and replicaset controllers
//! decide, as pure functions over JSON objects: the ReplicaSet of a
//! Deployment's template (named by its `pod-template-hash`), how far a
//! rolling update may scale the new and old ReplicaSets (maxSurge,
//! maxUnavailable), which pods a ReplicaSet makes or deletes, and the
//! status fields `kubectl get` and `kubectl rollout status` read.

use serde_json::{Value, json};

/// The label naming a ReplicaSet's template hash.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The Deployment revision of a ReplicaSet (and of its Deployment).
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// Most pods a ReplicaSet sync creates or deletes (kube's burstReplicas).
pub const BURST: usize = 500;

/// `rand.SafeEncodeString` of the FNV-1a hash of the template: the
/// `pod-template-hash` (letters without vowels and digits, as kube's).
pub fn template_hash(template: &Value) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in template.to_string().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    h.to_string()
        .bytes()
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

/// The controller owner reference of an object (`kind`, `name`, `uid`).
pub fn controller_of(obj: &Value) -> Option<(&str, &str, &str)> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .map(|r| {
            (
                r["kind"].as_str().unwrap_or_default(),
                r["name"].as_str().unwrap_or_default(),
                r["uid"].as_str().unwrap_or_default(),
            )
        })
}

/// Whether `obj` is controlled by the object with `uid`.
pub fn controlled_by(obj: &Value, uid: &str) -> bool {
    controller_of(obj).is_some_and(|(_, _, u)| u == uid)
}

/// A controller owner reference to `owner`.
pub fn owner_ref(owner: &Value) -> Value {
    json!({"apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": true})
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// `spec.replicas` (1 when unset, as defaulted).
pub fn spec_replicas(obj: &Value) -> i64 {
    obj["spec"]["replicas"].as_i64().unwrap_or(1)
}

/// The ReplicaSet a Deployment's current template runs in.
pub fn new_replica_set(deployment: &Value, hash: &str, replicas: i64, revision: i64) -> Value {
    let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
    let mut template = deployment["spec"]["template"].clone();
    template["metadata"]["labels"][POD_TEMPLATE_HASH] = json!(hash);
    let mut selector = deployment["spec"]["selector"].clone();
    selector["matchLabels"][POD_TEMPLATE_HASH] = json!(hash);
    let mut labels = template["metadata"]["labels"].clone();
    labels[POD_TEMPLATE_HASH] = json!(hash);
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{name}-{hash}"),
            "namespace": deployment["metadata"]["namespace"],
            "labels": labels,
            "annotations": {
                REVISION_ANNOTATION: revision.to_string(),
                "deployment.kubernetes.io/desired-replicas": spec_replicas(deployment).to_string(),
            },
            "ownerReferences": [owner_ref(deployment)],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": deployment["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
            "selector": selector,
            "template": template,
        },
    })
}

/// The revision of a ReplicaSet (0 when it has none).
pub fn revision(rs: &Value) -> i64 {
    rs["metadata"]["annotations"][REVISION_ANNOTATION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// An int-or-percent of `total`, rounded up or down.
fn resolve(v: &Value, total: i64, round_up: bool) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) if round_up => (p * total + 99) / 100,
            Some(p) => p * total / 100,
            None => s.parse().unwrap_or(0),
        },
        _ => 0,
    }
}

/// What a Deployment sync sets the `spec.replicas` of its ReplicaSets to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaling {
    /// The new ReplicaSet's replicas.
    pub new: i64,
    /// Each old ReplicaSet's replicas, in the order given.
    pub old: Vec<i64>,
}

/// maxSurge and maxUnavailable of a RollingUpdate Deployment, resolved.
fn surge_and_unavailable(deployment: &Value) -> (i64, i64) {
    let replicas = spec_replicas(deployment);
    let ru = &deployment["spec"]["strategy"]["rollingUpdate"];
    let surge = resolve(&ru["maxSurge"], replicas, true);
    let unavailable = resolve(&ru["maxUnavailable"], replicas, false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// One step of a Deployment's rollout (`new` and `old` ReplicaSets as stored,
/// olds oldest first), as `rolloutRolling` and `rolloutRecreate` take it.
pub fn scale(deployment: &Value, new: &Value, old: &[Value]) -> Scaling {
    let replicas = spec_replicas(deployment);
    let olds: Vec<i64> = old.iter().map(spec_replicas).collect();
    if olds.iter().all(|r| *r == 0) {
        return Scaling {
            new: replicas,
            old: olds,
        };
    }
    if deployment["spec"]["strategy"]["type"] == "Recreate" {
        let old_pods: i64 = old.iter().map(|r| int(&r["status"]["replicas"])).sum();
        return Scaling {
            new: if old_pods == 0 { replicas } else { 0 },
            old: vec![0; old.len()],
        };
    }
    let (surge, unavailable) = surge_and_unavailable(deployment);
    let new_spec = spec_replicas(new);
    let total: i64 = new_spec + olds.iter().sum::<i64>();
    let new_count = if new_spec > replicas {
        replicas
    } else if total >= replicas + surge {
        new_spec
    } else {
        new_spec + (replicas + surge - total).min(replicas - new_spec)
    };
    // Old ReplicaSets go down only as far as availability allows.
    let min_available = replicas - unavailable;
    let new_unavailable = new_spec - int(&new["status"]["availableReplicas"]);
    let mut budget = total - min_available - new_unavailable;
    let mut next = olds.clone();
    for (i, rs) in old.iter().enumerate() {
        if budget <= 0 {
            break;
        }
        let unhealthy = (next[i] - int(&rs["status"]["availableReplicas"])).max(0);
        let cut = unhealthy.min(budget);
        next[i] -= cut;
        budget -= cut;
    }
    let available: i64 = int(&new["status"]["availableReplicas"])
        + old
            .iter()
            .zip(&next)
            .map(|(rs, n)| int(&rs["status"]["availableReplicas"]).min(*n))
            .sum::<i64>();
    let mut budget = available - min_available;
    for n in next.iter_mut() {
        if budget <= 0 {
            break;
        }
        let cut = (*n).min(budget);
        *n -= cut;
        budget -= cut;
    }
    Scaling {
        new: new_count,
        old: next,
    }
}

fn condition(
    old: &Value,
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: &str,
) -> Value {
    let previous = old["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_));
    match previous {
        Some(p)
            if p["status"] == status
                && p["reason"] == reason
                && p["message"] == message.as_str() =>
        {
            p.clone()
        }
        Some(p) if p["status"] == status => {
            let mut c = p.clone();
            c["reason"] = json!(reason);
            c["message"] = json!(message);
            c["lastUpdateTime"] = json!(now);
            c
        }
        _ => json!({"type": type_, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": now, "lastTransitionTime": now}),
    }
}

/// A Deployment's status from its ReplicaSets (`new` among `all`).
pub fn deployment_status(
    deployment: &Value,
    new: Option<&Value>,
    all: &[Value],
    now: &str,
) -> Value {
    let replicas = spec_replicas(deployment);
    let sum = |f: &str| all.iter().map(|r| int(&r["status"][f])).sum::<i64>();
    let total = sum("replicas");
    let available = sum("availableReplicas");
    let ready = sum("readyReplicas");
    let updated = new.map_or(0, |n| int(&n["status"]["replicas"]));
    let (_, unavailable) = if deployment["spec"]["strategy"]["type"] == "Recreate" {
        (0, 0)
    } else {
        surge_and_unavailable(deployment)
    };
    let new_name = new
        .and_then(|n| n["metadata"]["name"].as_str())
        .unwrap_or_default();
    let available_c = if available >= replicas - unavailable {
        condition(
            deployment,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            now,
        )
    } else {
        condition(
            deployment,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    let complete = updated == replicas && available == replicas && total == replicas;
    let progressing = if complete {
        condition(
            deployment,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{new_name}\" has successfully progressed."),
            now,
        )
    } else {
        condition(
            deployment,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{new_name}\" is progressing."),
            now,
        )
    };
    let mut status = json!({
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "conditions": [available_c, progressing],
    });
    let unavailable_now = (replicas - available).max(0);
    if unavailable_now > 0 {
        status["unavailableReplicas"] = json!(unavailable_now);
    }
    for k in [
        "readyReplicas",
        "availableReplicas",
        "updatedReplicas",
        "replicas",
    ] {
        if status[k] == 0 {
            status.as_object_mut().map(|m| m.remove(k));
        }
    }
    if let Some(c) = deployment["status"].get("collisionCount") {
        status["collisionCount"] = c.clone();
    }
    status
}

/// Whether a pod counts toward its ReplicaSet: not terminating, not finished.
pub fn is_active(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && !matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        )
}

/// Whether a pod is Ready.
pub fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// A pod of `owner` (a ReplicaSet) from its template.
pub fn pod_for(owner: &Value) -> Value {
    let template = &owner["spec"]["template"];
    let name = owner["metadata"]["name"].as_str().unwrap_or_default();
    let mut meta = template["metadata"].clone();
    if !meta.is_object() {
        meta = json!({});
    }
    meta["generateName"] = json!(format!("{name}-"));
    meta["namespace"] = owner["metadata"]["namespace"].clone();
    meta["ownerReferences"] = json!([owner_ref(owner)]);
    if let Some(m) = meta.as_object_mut() {
        m.remove("name");
        m.remove("creationTimestamp");
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]})
}

/// Which of `pods` to delete to remove `n`: unscheduled first, then pending,
/// then not ready, then the newest (as kube's ActivePods ordering).
pub fn pods_to_delete(pods: &[Value], n: usize) -> Vec<&Value> {
    let mut ranked: Vec<&Value> = pods.iter().collect();
    ranked.sort_by_key(|p| {
        let unscheduled = p["spec"]["nodeName"].as_str().is_none_or(str::is_empty);
        let pending = p["status"]["phase"] != "Running";
        let not_ready = !is_ready(p);
        let created = p["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (
            !unscheduled,
            !pending,
            !not_ready,
            std::cmp::Reverse(created),
        )
    });
    ranked.truncate(n);
    ranked
}

/// A ReplicaSet's status from its active pods.
pub fn replica_set_status(rs: &Value, pods: &[Value]) -> Value {
    let ready = pods.iter().filter(|p| is_ready(p)).count();
    let mut status = json!({
        "replicas": pods.len(),
        "fullyLabeledReplicas": pods.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "observedGeneration": rs["metadata"]["generation"],
    });
    for k in ["readyReplicas", "availableReplicas", "fullyLabeledReplicas"] {
        if status[k] == 0 {
            status.as_object_mut().map(|m| m.remove(k));
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(replicas: i64, surge: Value, unavailable: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "uid": "d1", "generation": 2},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}})
    }

    fn rs(replicas: i64, available: i64) -> Value {
        json!({"spec": {"replicas": replicas}, "status": {"replicas": replicas, "availableReplicas": available}})
    }

    #[test]
    fn hashes_are_stable_safe_and_template_dependent() {
        let d = deployment(3, json!("25%"), json!("25%"));
        let h = template_hash(&d["spec"]["template"]);
        assert_eq!(h, template_hash(&d["spec"]["template"]));
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        let mut other = d["spec"]["template"].clone();
        other["spec"]["containers"][0]["image"] = json!("nginx:3");
        assert_ne!(h, template_hash(&other));
        let made = new_replica_set(&d, &h, 1, 2);
        assert_eq!(made["metadata"]["name"], format!("web-{h}"));
        assert_eq!(
            made["spec"]["selector"]["matchLabels"][POD_TEMPLATE_HASH],
            h.as_str()
        );
        assert_eq!(made["metadata"]["ownerReferences"][0]["uid"], "d1");
        assert_eq!(revision(&made), 2);
    }

    #[test]
    fn a_rolling_update_surges_then_scales_old_down_as_new_pods_become_available() {
        // 4 replicas, maxSurge 1, maxUnavailable 0.
        let d = deployment(4, json!(1), json!(0));
        let step = scale(&d, &rs(0, 0), &[rs(4, 4)]);
        assert_eq!(
            step,
            Scaling {
                new: 1,
                old: vec![4]
            }
        );
        // The new pod is not available yet: nothing old may go.
        let step = scale(&d, &rs(1, 0), &[rs(4, 4)]);
        assert_eq!(
            step,
            Scaling {
                new: 1,
                old: vec![4]
            }
        );
        // Available: one old pod goes.
        let step = scale(&d, &rs(1, 1), &[rs(4, 4)]);
        assert_eq!(
            step,
            Scaling {
                new: 1,
                old: vec![3]
            }
        );
        let step = scale(&d, &rs(4, 4), &[rs(0, 0)]);
        assert_eq!(
            step,
            Scaling {
                new: 4,
                old: vec![0]
            }
        );
    }

    #[test]
    fn max_unavailable_lets_old_pods_go_before_new_ones_are_ready() {
        let d = deployment(4, json!(0), json!(2));
        let step = scale(&d, &rs(0, 0), &[rs(4, 4)]);
        assert_eq!(
            step,
            Scaling {
                new: 0,
                old: vec![2]
            }
        );
        let both_zero = deployment(2, json!(0), json!(0));
        assert_eq!(surge_and_unavailable(&both_zero), (0, 1));
        assert_eq!(resolve(&json!("25%"), 10, true), 3);
        assert_eq!(resolve(&json!("25%"), 10, false), 2);
    }

    #[test]
    fn status_says_what_rollout_status_reads() {
        let d = deployment(2, json!("25%"), json!("25%"));
        let mut new = rs(2, 2);
        new["status"]["readyReplicas"] = json!(2);
        new["metadata"] = json!({"name": "web-abc"});
        let s = deployment_status(&d, Some(&new), std::slice::from_ref(&new), "now");
        assert_eq!(s["observedGeneration"], 2);
        assert_eq!(s["updatedReplicas"], 2);
        assert_eq!(s["availableReplicas"], 2);
        assert_eq!(s["conditions"][1]["reason"], "NewReplicaSetAvailable");
        assert!(s.get("unavailableReplicas").is_none());
    }

    #[test]
    fn scale_down_deletes_unscheduled_and_unready_pods_first() {
        let pods = vec![
            json!({"metadata": {"name": "a", "creationTimestamp": "1"}, "spec": {"nodeName": "n"},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
            json!({"metadata": {"name": "b", "creationTimestamp": "2"}, "spec": {}, "status": {"phase": "Pending"}}),
            json!({"metadata": {"name": "c", "creationTimestamp": "3"}, "spec": {"nodeName": "n"},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}}),
        ];
        let names: Vec<&str> = pods_to_delete(&pods, 2)
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["b", "c"]);
        let owner = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web-abc", "namespace": "ns", "uid": "r1"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}}});
        let pod = pod_for(&owner);
        assert_eq!(pod["metadata"]["generateName"], "web-abc-");
        assert!(controlled_by(&pod, "r1"));
    }
}
