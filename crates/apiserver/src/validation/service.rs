//! Services: defaulting (`SetDefaults_Service` plus the fields kube-apiserver's
//! service REST fills in) and `ValidateService` / `ValidateServiceUpdate`.

use serde_json::{Map, Value, json};

use super::meta::{at, immutable, str_at, validate_labels};
use super::names::{dns1123_label, dns1123_subdomain, ip, port_name, port_num};
use crate::schema::{FieldError, FieldPath};

const TYPES: [&str; 4] = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
pub(crate) const PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];

/// Defaults of a Service as kube-apiserver stores it on a single-stack IPv4 cluster.
pub fn default(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let type_ = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let type_ = if type_.is_empty() {
        "ClusterIP".to_owned()
    } else {
        type_
    };
    spec.insert("type".into(), json!(type_));
    if spec
        .get("sessionAffinity")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        spec.insert("sessionAffinity".into(), json!("None"));
    }
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP")
        && at(
            &Value::Object(spec.clone()),
            &["sessionAffinityConfig", "clientIP", "timeoutSeconds"],
        )
        .is_none()
    {
        spec.insert(
            "sessionAffinityConfig".into(),
            json!({"clientIP": {"timeoutSeconds": 10800}}),
        );
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            if p.get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                p.insert("protocol".into(), json!("TCP"));
            }
            let target_unset = match p.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                Some(Value::String(s)) => s.is_empty(),
                Some(_) => false,
            };
            if target_unset && let Some(port) = p.get("port").cloned() {
                p.insert("targetPort".into(), port);
            }
        }
    }
    if type_ == "ExternalName" {
        return;
    }
    if spec.get("internalTrafficPolicy").is_none() {
        spec.insert("internalTrafficPolicy".into(), json!("Cluster"));
    }
    let external_facing = type_ == "NodePort"
        || type_ == "LoadBalancer"
        || spec
            .get("externalIPs")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
    if external_facing && spec.get("externalTrafficPolicy").is_none() {
        spec.insert("externalTrafficPolicy".into(), json!("Cluster"));
    }
    if type_ == "LoadBalancer" && spec.get("allocateLoadBalancerNodePorts").is_none() {
        spec.insert("allocateLoadBalancerNodePorts".into(), json!(true));
    }
    default_ip_families(spec);
}

/// Single-stack IPv4 cluster: `SingleStack`/`[IPv4]`, except headless services
/// without a selector, which kube-apiserver makes `RequireDualStack` with both
/// families; `clusterIPs` mirrors `clusterIP`.
fn default_ip_families(spec: &mut Map<String, Value>) {
    let cluster_ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let headless = cluster_ip == "None";
    let has_selector = spec
        .get("selector")
        .and_then(Value::as_object)
        .is_some_and(|s| !s.is_empty());
    if !cluster_ip.is_empty() && spec.get("clusterIPs").is_none() {
        spec.insert("clusterIPs".into(), json!([cluster_ip]));
    }
    let families_set = spec
        .get("ipFamilies")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if headless && !has_selector {
        if spec.get("ipFamilyPolicy").is_none() {
            spec.insert("ipFamilyPolicy".into(), json!("RequireDualStack"));
        }
        if !families_set {
            spec.insert("ipFamilies".into(), json!(["IPv4", "IPv6"]));
        }
        return;
    }
    if spec.get("ipFamilyPolicy").is_none() {
        spec.insert("ipFamilyPolicy".into(), json!("SingleStack"));
    }
    if !families_set {
        let family = if cluster_ip.contains(':') {
            "IPv6"
        } else {
            "IPv4"
        };
        spec.insert("ipFamilies".into(), json!([family]));
    }
}

/// On update, carries over what the server allocated and the client may omit (as the
/// service REST's `patchAllocatedValues` does): clusterIP(s), IP families and policy,
/// node ports and the health-check node port, when the type still uses them.
pub fn prepare_update(obj: &mut Value, old: &Value) {
    let Some(old_spec) = old.get("spec") else {
        return;
    };
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let new_type = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    if new_type == "ExternalName" {
        return;
    }
    for key in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        let unset = match spec.get(key) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(_) => false,
        };
        if unset && let Some(v) = old_spec.get(key) {
            spec.insert(key.into(), v.clone());
        }
    }
    if new_type == "NodePort" || new_type == "LoadBalancer" {
        let old_ports = old_spec
            .get("ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(Value::Array(ports)) = spec.get_mut("ports") {
            for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                    continue;
                }
                let same = old_ports.iter().find(|o| {
                    o.get("port") == p.get("port")
                        && o.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                            == p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                });
                if let Some(np) = same.and_then(|o| o.get("nodePort")) {
                    p.insert("nodePort".into(), np.clone());
                }
            }
        }
        if spec.get("healthCheckNodePort").is_none()
            && let Some(h) = old_spec.get("healthCheckNodePort")
        {
            spec.insert("healthCheckNodePort".into(), h.clone());
        }
    }
}

/// `ValidateService` (with `old` for `ValidateServiceUpdate`).
pub fn validate(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let sp = FieldPath::new("spec");
    let mut errs = Vec::new();
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let type_ = str_at(spec, &["type"]).unwrap_or("ClusterIP");
    if !TYPES.contains(&type_) {
        errs.push(FieldError::not_supported(sp.child("type"), type_, &TYPES));
    }
    let ports = spec
        .get("ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if ports.is_empty() && type_ != "ExternalName" {
        errs.push(FieldError::required(sp.child("ports"), ""));
    }
    if type_ == "ExternalName" {
        let ext = str_at(spec, &["externalName"]).unwrap_or("");
        if ext.is_empty() {
            errs.push(FieldError::required(sp.child("externalName"), ""));
        } else {
            for m in dns1123_subdomain(ext.trim_end_matches('.')) {
                errs.push(FieldError::invalid(sp.child("externalName"), ext, m));
            }
        }
        let cip = str_at(spec, &["clusterIP"]).unwrap_or("");
        if !cip.is_empty() {
            errs.push(FieldError::forbidden(
                sp.child("clusterIP"),
                "may not be set for ExternalName services",
            ));
        }
    }
    let mut names = Vec::new();
    let mut keys: Vec<(i64, String)> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = sp.child("ports").index(i);
        let name = str_at(p, &["name"]).unwrap_or("");
        if name.is_empty() {
            if ports.len() > 1 {
                errs.push(FieldError::required(pp.child("name"), ""));
            }
        } else {
            for m in dns1123_label(name) {
                errs.push(FieldError::invalid(pp.child("name"), name, m));
            }
            if names.contains(&name) {
                errs.push(FieldError::duplicate(pp.child("name"), name));
            }
            names.push(name);
        }
        let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
        for m in port_num(port) {
            errs.push(FieldError::invalid(pp.child("port"), port, m));
        }
        let protocol = str_at(p, &["protocol"]).unwrap_or("");
        if protocol.is_empty() {
            errs.push(FieldError::required(pp.child("protocol"), ""));
        } else if !PROTOCOLS.contains(&protocol) {
            errs.push(FieldError::not_supported(
                pp.child("protocol"),
                protocol,
                &PROTOCOLS,
            ));
        }
        match p.get("targetPort") {
            Some(Value::Number(n)) => {
                let t = n.as_i64().unwrap_or(0);
                for m in port_num(t) {
                    errs.push(FieldError::invalid(pp.child("targetPort"), t, m));
                }
            }
            Some(Value::String(s)) => {
                for m in port_name(s) {
                    errs.push(FieldError::invalid(pp.child("targetPort"), s.as_str(), m));
                }
            }
            _ => {}
        }
        let node_port = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
        if node_port != 0 {
            if type_ == "ClusterIP" {
                errs.push(FieldError::forbidden(
                    pp.child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            } else {
                for m in port_num(node_port) {
                    errs.push(FieldError::invalid(pp.child("nodePort"), node_port, m));
                }
            }
        }
        let key = (port, protocol.to_owned());
        if keys.contains(&key) {
            errs.push(FieldError::duplicate(
                pp,
                json!({"port": port, "protocol": protocol}),
            ));
        }
        keys.push(key);
    }
    if let Some(Value::Array(ips)) = spec.get("externalIPs") {
        for (i, v) in ips.iter().enumerate() {
            let text = v.as_str().unwrap_or("");
            for m in ip(text) {
                errs.push(FieldError::invalid(
                    sp.child("externalIPs").index(i),
                    text,
                    m,
                ));
            }
        }
    }
    if let Some(t) = at(
        spec,
        &["sessionAffinityConfig", "clientIP", "timeoutSeconds"],
    )
    .and_then(Value::as_i64)
        && !(1..=86400).contains(&t)
    {
        errs.push(FieldError::invalid(
            sp.child("sessionAffinityConfig")
                .child("clientIP")
                .child("timeoutSeconds"),
            t,
            "must be greater than 0 and less than 86400",
        ));
    }
    let affinity = str_at(spec, &["sessionAffinity"]).unwrap_or("None");
    if !["ClientIP", "None"].contains(&affinity) {
        errs.push(FieldError::not_supported(
            sp.child("sessionAffinity"),
            affinity,
            &["ClientIP", "None"],
        ));
    }
    if type_ != "ExternalName" {
        errs.extend(validate_labels(spec.get("selector"), &sp.child("selector")));
        if let Some(cip) = str_at(spec, &["clusterIP"])
            && !cip.is_empty()
            && cip != "None"
        {
            for m in ip(cip) {
                errs.push(FieldError::invalid(sp.child("clusterIPs").index(0), cip, m));
            }
        }
        if let (Some(cip), Some(first)) = (
            str_at(spec, &["clusterIP"]),
            spec.get("clusterIPs").and_then(|a| a.get(0)),
        ) && !cip.is_empty()
            && first.as_str() != Some(cip)
        {
            errs.push(FieldError::invalid(
                sp.child("clusterIPs"),
                spec.get("clusterIPs").cloned().unwrap_or(Value::Null),
                "first value must match `clusterIP`",
            ));
        }
    }
    for (key, allowed) in [
        ("externalTrafficPolicy", ["Cluster", "Local"]),
        ("internalTrafficPolicy", ["Cluster", "Local"]),
    ] {
        if let Some(v) = str_at(spec, &[key])
            && !allowed.contains(&v)
        {
            errs.push(FieldError::not_supported(sp.child(key), v, &allowed));
        }
    }
    if let Some(v) = str_at(spec, &["ipFamilyPolicy"]) {
        let allowed = ["PreferDualStack", "RequireDualStack", "SingleStack"];
        if !allowed.contains(&v) {
            errs.push(FieldError::not_supported(
                sp.child("ipFamilyPolicy"),
                v,
                &allowed,
            ));
        }
    }
    if let Some(Value::Array(fams)) = spec.get("ipFamilies") {
        for (i, f) in fams.iter().enumerate() {
            let f = f.as_str().unwrap_or("");
            if f != "IPv4" && f != "IPv6" {
                errs.push(FieldError::not_supported(
                    sp.child("ipFamilies").index(i),
                    f,
                    &["IPv4", "IPv6"],
                ));
            }
        }
    }
    if let Some(old) = old {
        let old_spec = old.get("spec").unwrap_or(&null);
        let old_type = str_at(old_spec, &["type"]).unwrap_or("ClusterIP");
        let old_ip = str_at(old_spec, &["clusterIP"]).unwrap_or("");
        if type_ != "ExternalName" && old_type != "ExternalName" && !old_ip.is_empty() {
            errs.extend(immutable(
                spec.get("clusterIP"),
                old_spec.get("clusterIP"),
                sp.child("clusterIP"),
            ));
        }
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
    fn defaults_like_kube_apiserver() {
        let mut svc = json!({"spec": {"selector": {"app": "a"}, "ports": [{"port": 80}, {"port": 443, "targetPort": "https", "name": "https"}]}});
        default(&mut svc);
        assert_eq!(
            svc["spec"],
            json!({
                "selector": {"app": "a"},
                "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80},
                          {"port": 443, "targetPort": "https", "name": "https", "protocol": "TCP"}],
                "type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
                "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]
            })
        );
        let mut lb = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}});
        default(&mut lb);
        assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
        let mut headless = json!({"spec": {"clusterIP": "None", "ports": [{"port": 80}]}});
        default(&mut headless);
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
    }

    #[test]
    fn port_errors() {
        let svc = json!({"spec": {"type": "ClusterIP", "ports": [
            {"port": 0, "protocol": "TCP", "name": "a"},
            {"port": 80, "protocol": "HTTP"},
            {"port": 81, "protocol": "TCP", "name": "a", "nodePort": 30000}
        ]}});
        assert_eq!(
            msgs(validate(&svc, None)),
            vec![
                "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[1].name: Required value",
                "spec.ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.ports[2].name: Duplicate value: \"a\"",
                "spec.ports[2].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
            ]
        );
        assert_eq!(
            msgs(validate(&json!({"spec": {}}), None)),
            vec!["spec.ports: Required value"]
        );
        assert_eq!(
            msgs(validate(
                &json!({"spec": {"type": "Foo", "ports": [{"port": 1, "protocol": "TCP"}]}}),
                None
            )),
            vec![
                "spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
            ]
        );
    }

    #[test]
    fn cluster_ip_rules() {
        let bad =
            json!({"spec": {"clusterIP": "10.0.0", "ports": [{"port": 1, "protocol": "TCP"}]}});
        assert_eq!(
            msgs(validate(&bad, None)),
            vec![
                "spec.clusterIPs[0]: Invalid value: \"10.0.0\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
            ]
        );
        let old =
            json!({"spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 1, "protocol": "TCP"}]}});
        let new = json!({"spec": {"clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11"], "ports": [{"port": 1, "protocol": "TCP"}]}});
        assert_eq!(
            msgs(validate(&new, Some(&old))),
            vec!["spec.clusterIP: Invalid value: \"10.96.0.11\": field is immutable"]
        );
    }

    #[test]
    fn external_ips_and_affinity_timeout() {
        let svc = json!({"spec": {"ports": [{"port": 1, "protocol": "TCP"}], "externalIPs": ["1.2.3.4", "nope"],
            "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}}});
        assert_eq!(
            msgs(validate(&svc, None)),
            vec![
                "spec.externalIPs[1]: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400",
            ]
        );
    }

    #[test]
    fn update_keeps_allocated_values() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}});
        let mut new =
            json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}});
        prepare_update(&mut new, &old);
        assert_eq!(new["spec"]["clusterIP"], "10.96.0.10");
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
        assert!(validate(&new, Some(&old)).is_empty());
    }
}
