//! Pods: defaulting (`SetDefaults_Pod`, `_PodSpec`, `_Container` and what the default
//! admission plugins add) and the parts of `ValidatePodCreate` / `ValidatePodUpdate`
//! that clients meet.

use serde_json::{Map, Value, json};

use super::meta::str_at;
use super::names::{dns1123_label, port_name, port_num};
use super::service::PROTOCOLS;
use crate::schema::{FieldError, FieldPath};

const RESTART_POLICIES: [&str; 3] = ["Always", "Never", "OnFailure"];
const DNS_POLICIES: [&str; 4] = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"];
const PULL_POLICIES: [&str; 3] = ["Always", "IfNotPresent", "Never"];

fn set_if_absent(m: &mut Map<String, Value>, key: &str, v: Value) {
    if m.get(key)
        .is_none_or(|x| x.is_null() || x.as_str() == Some(""))
    {
        m.insert(key.into(), v);
    }
}

/// `Always` for `:latest` or untagged images, else `IfNotPresent`.
fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_container(c: &mut Map<String, Value>) {
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    set_if_absent(c, "imagePullPolicy", json!(pull_policy(&image)));
    set_if_absent(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_if_absent(c, "terminationMessagePolicy", json!("File"));
    if c.get("resources").is_none() {
        c.insert("resources".into(), json!({}));
    }
    if let Some(Value::Array(ports)) = c.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_if_absent(p, "protocol", json!("TCP"));
        }
    }
    if let Some(Value::Array(env)) = c.get_mut("env") {
        for e in env.iter_mut() {
            if let Some(fr) = e
                .get_mut("valueFrom")
                .and_then(|v| v.get_mut("fieldRef"))
                .and_then(Value::as_object_mut)
            {
                set_if_absent(fr, "apiVersion", json!("v1"));
            }
        }
    }
}

/// A quantity's value as a number (`100m` is 0.1, `1Ki` is 1024); `None` when it
/// does not parse.
fn quantity_value(q: &Value) -> Option<f64> {
    if let Some(n) = q.as_f64() {
        return Some(n);
    }
    let s = q.as_str()?;
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e => 10f64.powi(e.strip_prefix(['e', 'E'])?.parse().ok()?),
    };
    Some(n * factor)
}

/// The pod's QoS class (`Guaranteed`, `Burstable` or `BestEffort`) from its
/// containers' cpu and memory requests and limits, as kube-apiserver computes it.
pub fn qos_class(obj: &Value) -> &'static str {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in containers {
        let res = |kind: &str, name: &str| {
            c.get("resources")
                .and_then(|r| r.get(kind))
                .and_then(|m| m.get(name))
        };
        for name in ["cpu", "memory"] {
            let limit = res("limits", name).and_then(quantity_value);
            // A missing request defaults to the limit.
            let request = res("requests", name).and_then(quantity_value).or(limit);
            if request.is_some_and(|r| r != 0.0) || limit.is_some_and(|l| l != 0.0) {
                any = true;
            }
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// `PrepareForCreate`: a new pod's status is whatever the server says, not the
/// client: phase `Pending` and its QoS class.
pub fn prepare_create(obj: &mut Value) {
    let qos = qos_class(obj);
    if let Some(m) = obj.as_object_mut() {
        m.insert(
            "status".into(),
            json!({"phase": "Pending", "qosClass": qos}),
        );
    }
}

/// Pod defaults, including what the ServiceAccount, DefaultTolerationSeconds and
/// Priority admission plugins add on a default cluster (but not the projected
/// service-account token volume).
pub fn default(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    set_if_absent(spec, "restartPolicy", json!("Always"));
    set_if_absent(spec, "dnsPolicy", json!("ClusterFirst"));
    set_if_absent(spec, "terminationGracePeriodSeconds", json!(30));
    set_if_absent(spec, "schedulerName", json!("default-scheduler"));
    if spec.get("securityContext").is_none() {
        spec.insert("securityContext".into(), json!({}));
    }
    set_if_absent(spec, "enableServiceLinks", json!(true));
    let sa = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            spec.get("serviceAccount")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or("default")
        .to_owned();
    spec.insert("serviceAccountName".into(), json!(sa));
    spec.insert("serviceAccount".into(), json!(sa));
    if spec.get("priority").is_none() {
        spec.insert("priority".into(), json!(0));
    }
    set_if_absent(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if let Some(list) = tolerations.as_array_mut() {
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            let present = list.iter().any(|t| {
                let k = t.get("key").and_then(Value::as_str);
                let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
                (k == Some(key)
                    || (k.is_none() && t.get("operator").and_then(Value::as_str) == Some("Exists")))
                    && (effect.is_empty() || effect == "NoExecute")
            });
            if !present {
                list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
            }
        }
    }
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(Value::Array(cs)) = spec.get_mut(key) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                default_container(c);
            }
        }
    }
}

/// `ValidateVolumes` essentials: named (DNS labels), unique. Returns the names.
fn validate_volumes(spec: &Value, sp: &FieldPath, errs: &mut Vec<FieldError>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let volumes = spec
        .get("volumes")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, v) in volumes.iter().enumerate() {
        let np = sp.child("volumes").index(i).child("name");
        let name = str_at(v, &["name"]).unwrap_or("");
        if name.is_empty() {
            errs.push(FieldError::required(np, ""));
            continue;
        }
        for m in dns1123_label(name) {
            errs.push(FieldError::invalid(np.clone(), name, m));
        }
        if names.iter().any(|n| n == name) {
            errs.push(FieldError::duplicate(np, name));
        }
        names.push(name.to_owned());
    }
    names
}

/// A container's volume mounts name existing volumes at unique paths.
fn validate_mounts(c: &Value, cp: &FieldPath, volumes: &[String], errs: &mut Vec<FieldError>) {
    let mounts = c
        .get("volumeMounts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut paths: Vec<&str> = Vec::new();
    for (j, m) in mounts.iter().enumerate() {
        let mp = cp.child("volumeMounts").index(j);
        let name = str_at(m, &["name"]).unwrap_or("");
        if name.is_empty() {
            errs.push(FieldError::required(mp.child("name"), ""));
        } else if !volumes.iter().any(|v| v == name) {
            errs.push(FieldError::not_found(mp.child("name"), name));
        }
        let path = str_at(m, &["mountPath"]).unwrap_or("");
        if path.is_empty() {
            errs.push(FieldError::required(mp.child("mountPath"), ""));
        } else if paths.contains(&path) {
            errs.push(FieldError::invalid(
                mp.child("mountPath"),
                path,
                "must be unique",
            ));
        }
        paths.push(path);
    }
}

fn validate_containers(
    list: &[Value],
    path: &FieldPath,
    names: &mut Vec<String>,
    volumes: &[String],
    errs: &mut Vec<FieldError>,
) {
    for (i, c) in list.iter().enumerate() {
        let cp = path.index(i);
        let name = str_at(c, &["name"]).unwrap_or("");
        if name.is_empty() {
            errs.push(FieldError::required(cp.child("name"), ""));
        } else {
            for m in dns1123_label(name) {
                errs.push(FieldError::invalid(cp.child("name"), name, m));
            }
            if names.iter().any(|n| n == name) {
                errs.push(FieldError::duplicate(cp.child("name"), name));
            }
            names.push(name.to_owned());
        }
        if str_at(c, &["image"]).unwrap_or("").trim().is_empty() {
            errs.push(FieldError::required(cp.child("image"), ""));
        }
        if let Some(p) = str_at(c, &["imagePullPolicy"])
            && !PULL_POLICIES.contains(&p)
        {
            errs.push(FieldError::not_supported(
                cp.child("imagePullPolicy"),
                p,
                &PULL_POLICIES,
            ));
        }
        let mut port_names: Vec<&str> = Vec::new();
        for (j, p) in c
            .get("ports")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let pp = cp.child("ports").index(j);
            if let Some(n) = str_at(p, &["name"])
                && !n.is_empty()
            {
                for m in port_name(n) {
                    errs.push(FieldError::invalid(pp.child("name"), n, m));
                }
                if port_names.contains(&n) {
                    errs.push(FieldError::duplicate(pp.child("name"), n));
                }
                port_names.push(n);
            }
            let port = p.get("containerPort").and_then(Value::as_i64).unwrap_or(0);
            if port == 0 {
                errs.push(FieldError::required(pp.child("containerPort"), ""));
            } else {
                for m in port_num(port) {
                    errs.push(FieldError::invalid(pp.child("containerPort"), port, m));
                }
            }
            if let Some(h) = p.get("hostPort").and_then(Value::as_i64)
                && h != 0
            {
                for m in port_num(h) {
                    errs.push(FieldError::invalid(pp.child("hostPort"), h, m));
                }
            }
            let proto = str_at(p, &["protocol"]).unwrap_or("TCP");
            if !PROTOCOLS.contains(&proto) {
                errs.push(FieldError::not_supported(
                    pp.child("protocol"),
                    proto,
                    &PROTOCOLS,
                ));
            }
        }
        validate_mounts(c, &cp, volumes, errs);
        for (j, e) in c
            .get("env")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if str_at(e, &["name"]).unwrap_or("").is_empty() {
                errs.push(FieldError::required(
                    cp.child("env").index(j).child("name"),
                    "",
                ));
            }
        }
    }
}

/// `ValidatePodCreate`/`ValidatePodUpdate` essentials: containers with unique DNS-label
/// names and images, enumerations, ports, and the spec fields an update may change.
pub fn validate(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let sp = FieldPath::new("spec");
    let mut errs = Vec::new();
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if containers.is_empty() {
        errs.push(FieldError::required(sp.child("containers"), ""));
    }
    let volumes = validate_volumes(spec, &sp, &mut errs);
    let mut names = Vec::new();
    validate_containers(
        &containers,
        &sp.child("containers"),
        &mut names,
        &volumes,
        &mut errs,
    );
    if let Some(Value::Array(init)) = spec.get("initContainers") {
        validate_containers(
            init,
            &sp.child("initContainers"),
            &mut names,
            &volumes,
            &mut errs,
        );
    }
    for (key, allowed) in [
        ("restartPolicy", &RESTART_POLICIES[..]),
        ("dnsPolicy", &DNS_POLICIES[..]),
    ] {
        if let Some(v) = str_at(spec, &[key])
            && !allowed.contains(&v)
        {
            errs.push(FieldError::not_supported(sp.child(key), v, allowed));
        }
    }
    if let Some(g) = spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        && g < 0
        && old.is_none()
    {
        errs.push(FieldError::invalid(
            sp.child("terminationGracePeriodSeconds"),
            g,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(d) = spec.get("activeDeadlineSeconds").and_then(Value::as_i64)
        && d <= 0
    {
        errs.push(FieldError::invalid(
            sp.child("activeDeadlineSeconds"),
            d,
            "must be greater than or equal to 1",
        ));
    }
    if let Some(old) = old {
        errs.extend(validate_spec_update(spec, old.get("spec").unwrap_or(&null)));
    }
    errs
}

/// Pod updates may only change container images, `activeDeadlineSeconds`, additions to
/// `tolerations` and `terminationGracePeriodSeconds`.
fn validate_spec_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mask = |spec: &Value, tolerations_from: &Value| -> Value {
        let mut s = spec.clone();
        if let Some(m) = s.as_object_mut() {
            m.remove("activeDeadlineSeconds");
            m.remove("terminationGracePeriodSeconds");
            m.insert(
                "tolerations".into(),
                tolerations_from
                    .get("tolerations")
                    .cloned()
                    .unwrap_or(Value::Null),
            );
            for key in ["containers", "initContainers"] {
                if let Some(Value::Array(cs)) = m.get_mut(key) {
                    for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                        c.remove("image");
                    }
                }
            }
        }
        s
    };
    let mut errs = Vec::new();
    if mask(new, old) != mask(old, old) {
        errs.push(FieldError::forbidden(
            FieldPath::new("spec"),
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        ));
    }
    let old_tol = old
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let new_tol = new
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if old_tol.iter().any(|t| !new_tol.contains(t)) {
        errs.push(FieldError::forbidden(
            FieldPath::new("spec.tolerations"),
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn defaults() {
        let mut pod = json!({"spec": {"containers": [{"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
                                                      {"name": "b", "image": "busybox:1.36"}]}});
        default(&mut pod);
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["serviceAccountName"], "default");
        assert_eq!(spec["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(spec["containers"][1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(spec["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(
            spec["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
        let once = pod.clone();
        default(&mut pod);
        assert_eq!(pod, once, "defaulting is idempotent");
    }

    #[test]
    fn qos_and_initial_status() {
        let best = json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
        assert_eq!(qos_class(&best), "BestEffort");
        let guaranteed = json!({"spec": {"containers": [{"name": "a", "image": "x",
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1024Mi"}}}]}});
        assert_eq!(qos_class(&guaranteed), "Guaranteed");
        let limits_only = json!({"spec": {"containers": [{"name": "a", "image": "x",
            "resources": {"limits": {"cpu": 2, "memory": "512Mi"}}}]}});
        assert_eq!(qos_class(&limits_only), "Guaranteed");
        let burstable = json!({"spec": {"containers": [{"name": "a", "image": "x",
            "resources": {"requests": {"cpu": "100m"}}}]}});
        assert_eq!(qos_class(&burstable), "Burstable");
        let mut pod = burstable.clone();
        pod["status"] = json!({"phase": "Running", "podIP": "10.0.0.1"});
        prepare_create(&mut pod);
        assert_eq!(
            pod["status"],
            json!({"phase": "Pending", "qosClass": "Burstable"})
        );
    }

    #[test]
    fn container_errors() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "a", "image": "x", "ports": [{"containerPort": 70000}]}],
                                  "restartPolicy": "Sometimes"}});
        assert_eq!(
            msgs(validate(&pod, None)),
            vec![
                "spec.containers[0].image: Required value",
                "spec.containers[1].name: Duplicate value: \"a\"",
                "spec.containers[1].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\", \"OnFailure\"",
            ]
        );
        assert_eq!(
            msgs(validate(&json!({"spec": {}}), None)),
            vec!["spec.containers: Required value"]
        );
    }

    #[test]
    fn volumes_and_mounts() {
        let pod = json!({"spec": {
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "data"}, {"name": "Bad_Name"}],
            "containers": [{"name": "a", "image": "x", "volumeMounts": [
                {"name": "data", "mountPath": "/data"}, {"name": "cache", "mountPath": "/data"}]}]}});
        let got = msgs(validate(&pod, None));
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[0], "spec.volumes[1].name: Duplicate value: \"data\"");
        assert!(got[1].starts_with(
            "spec.volumes[2].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label"
        ));
        assert_eq!(
            got[2],
            "spec.containers[0].volumeMounts[1].name: Not found: \"cache\""
        );
        assert_eq!(
            got[3],
            "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/data\": must be unique"
        );
    }

    #[test]
    fn updates_may_change_images_only() {
        let mut old = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}]}});
        default(&mut old);
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("x:2");
        assert!(validate(&new, Some(&old)).is_empty());
        new["spec"]["restartPolicy"] = json!("Never");
        assert_eq!(validate(&new, Some(&old)).len(), 1);
        assert!(
            validate(&new, Some(&old))[0]
                .to_string()
                .starts_with("spec: Forbidden: pod updates may not change fields")
        );
    }
}
