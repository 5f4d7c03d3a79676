//! Smaller core/v1 kinds and the other non-RBAC kinds: Secret, ConfigMap, Namespace,
//! Node, ServiceAccount, Endpoints, Event (core/v1 and events.k8s.io/v1), Lease.

use base64::Engine as _;
use serde_json::{Value, json};

use super::meta::{at, check_field, immutable, str_at};
use super::names::{dns1123_label, dns1123_subdomain, ip, port_num, qualified_name};
use super::service::PROTOCOLS;
use crate::schema::{FieldError, FieldPath};

/// The annotation naming a service-account token Secret's account.
const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";

/// Largest total size of a Secret's or ConfigMap's data.
pub const MAX_DATA_SIZE: usize = 1024 * 1024;

fn data_keys(obj: &Value, field: &str, errs: &mut Vec<FieldError>) -> usize {
    let mut size = 0;
    if let Some(Value::Object(map)) = obj.get(field) {
        for (k, v) in map {
            for m in super::names::config_map_key(k) {
                errs.push(FieldError::invalid(
                    FieldPath::new(field).key(k),
                    k.as_str(),
                    m,
                ));
            }
            size += v.as_str().map_or(0, str::len);
        }
    }
    size
}

fn immutable_data(obj: &Value, old: &Value, fields: &[&str], errs: &mut Vec<FieldError>) {
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    if obj.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(FieldError::forbidden(
            FieldPath::new("immutable"),
            "field is immutable when `immutable` is set",
        ));
    }
    for f in fields {
        let norm = |v: Option<&Value>| {
            v.filter(|v| !v.is_null() && v.as_object().is_none_or(|m| !m.is_empty()))
                .cloned()
        };
        if norm(obj.get(*f)) != norm(old.get(*f)) {
            errs.push(FieldError::forbidden(
                FieldPath::new(f),
                "field is immutable when `immutable` is set",
            ));
        }
    }
}

/// Secret defaults: `type: Opaque`; `stringData` is merged into `data` (base64), as
/// kube-apiserver does when it decodes a Secret.
pub fn default_secret(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    if m.get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        m.insert("type".into(), json!("Opaque"));
    }
    if let Some(Value::Object(string_data)) = m.remove("stringData") {
        let data = m.entry("data").or_insert_with(|| json!({}));
        if data.is_null() {
            *data = json!({});
        }
        if let Some(d) = data.as_object_mut() {
            for (k, v) in string_data {
                let text = v.as_str().unwrap_or("").to_owned();
                d.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(text)),
                );
            }
        }
    }
}

/// Byte fields that are not base64 (Secret `data`, ConfigMap `binaryData`): Go's
/// decoder rejects them before validation.
pub fn base64_errors(obj: &Value, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(Value::Object(map)) = obj.get(field) {
        for (k, v) in map {
            if let Some(s) = v.as_str()
                && let Err(e) = base64::engine::general_purpose::STANDARD.decode(s)
            {
                errs.push(FieldError::invalid(
                    FieldPath::new(field).key(k),
                    "<redacted>",
                    format!("illegal base64 data: {e}"),
                ));
            }
        }
    }
    errs
}

/// `ValidateSecret`/`ValidateSecretUpdate`.
pub fn validate_secret(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let size = data_keys(obj, "data", &mut errs);
    if size > MAX_DATA_SIZE {
        errs.push(FieldError::too_long(FieldPath::new("data"), MAX_DATA_SIZE));
    }
    let type_ = str_at(obj, &["type"]).unwrap_or("Opaque");
    let data = |k: &str| at(obj, &["data", k]).is_some();
    let required_key = |k: &str, errs: &mut Vec<FieldError>| {
        if !data(k) {
            errs.push(FieldError::required(FieldPath::new("data").key(k), ""));
        }
    };
    match type_ {
        "kubernetes.io/service-account-token"
            if str_at(obj, &["metadata", "annotations", SA_NAME_ANNOTATION])
                .unwrap_or("")
                .is_empty() =>
        {
            errs.push(FieldError::required(
                FieldPath::new("metadata.annotations").key(SA_NAME_ANNOTATION),
                "",
            ));
        }
        "kubernetes.io/dockercfg" => required_key(".dockercfg", &mut errs),
        "kubernetes.io/dockerconfigjson" => required_key(".dockerconfigjson", &mut errs),
        "kubernetes.io/basic-auth" if !data("username") && !data("password") => {
            errs.push(FieldError::required(
                FieldPath::new("data").key("username"),
                "",
            ));
            errs.push(FieldError::required(
                FieldPath::new("data").key("password"),
                "",
            ));
        }
        "kubernetes.io/ssh-auth" => required_key("ssh-privatekey", &mut errs),
        "kubernetes.io/tls" => {
            required_key("tls.crt", &mut errs);
            required_key("tls.key", &mut errs);
        }
        _ => {}
    }
    if let Some(old) = old {
        errs.extend(immutable(
            obj.get("type").or(Some(&json!("Opaque"))),
            old.get("type"),
            FieldPath::new("type"),
        ));
        immutable_data(obj, old, &["data"], &mut errs);
    }
    errs
}

/// `ValidateConfigMap`/`ValidateConfigMapUpdate`.
pub fn validate_config_map(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut size = data_keys(obj, "data", &mut errs) + data_keys(obj, "binaryData", &mut errs);
    if let (Some(Value::Object(d)), Some(Value::Object(b))) =
        (obj.get("data"), obj.get("binaryData"))
    {
        for k in b.keys().filter(|k| d.contains_key(*k)) {
            errs.push(FieldError::invalid(
                FieldPath::new("data").key(k),
                k.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
    }
    if let Some(Value::Object(b)) = obj.get("binaryData") {
        size = size.saturating_sub(
            b.values()
                .filter_map(Value::as_str)
                .map(str::len)
                .sum::<usize>(),
        ) + b
            .values()
            .filter_map(Value::as_str)
            .map(|s| s.len() / 4 * 3)
            .sum::<usize>();
    }
    if size > MAX_DATA_SIZE {
        errs.push(FieldError::too_long(FieldPath::root(), MAX_DATA_SIZE));
    }
    if let Some(old) = old {
        immutable_data(obj, old, &["data", "binaryData"], &mut errs);
    }
    errs
}

/// Namespace defaults: the `kubernetes.io/metadata.name` label, the `kubernetes`
/// finalizer, and `status.phase: Active` when no status is set.
pub fn default_namespace(obj: &mut Value) {
    let name = str_at(obj, &["metadata", "name"]).unwrap_or("").to_owned();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        && !name.is_empty()
    {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if labels.is_null() {
            *labels = json!({});
        }
        if let Some(l) = labels.as_object_mut() {
            l.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    let Some(m) = obj.as_object_mut() else { return };
    let spec = m.entry("spec").or_insert_with(|| json!({}));
    if let Some(s) = spec.as_object_mut()
        && s.get("finalizers").is_none()
    {
        s.insert("finalizers".into(), json!(["kubernetes"]));
    }
    let status = m.entry("status").or_insert_with(|| json!({}));
    if let Some(s) = status.as_object_mut()
        && s.get("phase").is_none()
    {
        s.insert("phase".into(), json!("Active"));
    }
}

/// `ValidateNamespace`: finalizers are qualified names, the metadata label matches.
pub fn validate_namespace(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(Value::Array(fs)) = at(obj, &["spec", "finalizers"]) {
        for (i, f) in fs.iter().enumerate() {
            let f = f.as_str().unwrap_or("");
            for m in qualified_name(f) {
                errs.push(FieldError::invalid(
                    FieldPath::new("spec.finalizers").index(i),
                    f,
                    m,
                ));
            }
        }
    }
    if let Some(phase) = str_at(obj, &["status", "phase"])
        && !["Active", "Terminating"].contains(&phase)
    {
        errs.push(FieldError::not_supported(
            FieldPath::new("status.phase"),
            phase,
            &["Active", "Terminating"],
        ));
    }
    errs
}

/// `ValidateNode` essentials: taint effects and keys, podCIDRs.
pub fn validate_node(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let effects = ["NoExecute", "NoSchedule", "PreferNoSchedule"];
    if let Some(Value::Array(taints)) = at(obj, &["spec", "taints"]) {
        for (i, t) in taints.iter().enumerate() {
            let tp = FieldPath::new("spec.taints").index(i);
            let key = str_at(t, &["key"]).unwrap_or("");
            for m in qualified_name(key) {
                errs.push(FieldError::invalid(tp.child("key"), key, m));
            }
            let effect = str_at(t, &["effect"]).unwrap_or("");
            if effect.is_empty() {
                errs.push(FieldError::required(tp.child("effect"), ""));
            } else if !effects.contains(&effect) {
                errs.push(FieldError::not_supported(
                    tp.child("effect"),
                    effect,
                    &effects,
                ));
            }
        }
    }
    if let Some(Value::Array(cidrs)) = at(obj, &["spec", "podCIDRs"]) {
        for (i, c) in cidrs.iter().enumerate() {
            let c = c.as_str().unwrap_or("");
            let ok = c
                .split_once('/')
                .is_some_and(|(a, b)| ip(a).is_empty() && b.parse::<u8>().is_ok_and(|n| n <= 128));
            if !ok {
                errs.push(FieldError::invalid(
                    FieldPath::new("spec.podCIDRs").index(i),
                    c,
                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                ));
            }
        }
    }
    errs
}

/// `ValidateServiceAccount`: referenced secrets need names.
pub fn validate_service_account(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for key in ["secrets", "imagePullSecrets"] {
        if let Some(Value::Array(list)) = obj.get(key) {
            for (i, s) in list.iter().enumerate() {
                if str_at(s, &["name"]).unwrap_or("").is_empty() && key == "imagePullSecrets" {
                    errs.push(FieldError::required(
                        FieldPath::new(key).index(i).child("name"),
                        "",
                    ));
                }
            }
        }
    }
    errs
}

/// Endpoints defaults: port protocol `TCP`.
pub fn default_endpoints(obj: &mut Value) {
    if let Some(Value::Array(subsets)) = obj.get_mut("subsets") {
        for s in subsets.iter_mut() {
            if let Some(Value::Array(ports)) = s.get_mut("ports") {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    if p.get("protocol")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .is_empty()
                    {
                        p.insert("protocol".into(), json!("TCP"));
                    }
                }
            }
        }
    }
}

/// `ValidateEndpoints`: addresses are IPs, ports valid, named when more than one.
pub fn validate_endpoints(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let subsets = obj
        .get("subsets")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, s) in subsets.iter().enumerate() {
        let sp = FieldPath::new("subsets").index(i);
        let addresses = s
            .get("addresses")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let not_ready = s
            .get("notReadyAddresses")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if addresses.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                sp.clone(),
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (key, list) in [("addresses", addresses), ("notReadyAddresses", not_ready)] {
            for (j, a) in list.iter().enumerate() {
                let ap = sp.child(key).index(j);
                let addr = str_at(a, &["ip"]).unwrap_or("");
                for m in ip(addr) {
                    errs.push(FieldError::invalid(ap.child("ip"), addr, m));
                }
                check_field(&mut errs, a, &ap, "hostname", dns1123_label);
                check_field(&mut errs, a, &ap, "nodeName", dns1123_subdomain);
            }
        }
        let ports = s
            .get("ports")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (j, p) in ports.iter().enumerate() {
            errs.extend(endpoint_port(
                p,
                ports.len() > 1,
                false,
                &sp.child("ports").index(j),
            ));
        }
    }
    errs
}

/// One Endpoints or EndpointSlice port. EndpointSlice ports may omit the number.
pub(crate) fn endpoint_port(
    p: &Value,
    require_name: bool,
    optional_port: bool,
    pp: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = str_at(p, &["name"]).unwrap_or("");
    if name.is_empty() {
        if require_name {
            errs.push(FieldError::required(pp.child("name"), ""));
        }
    } else {
        for m in dns1123_label(name) {
            errs.push(FieldError::invalid(pp.child("name"), name, m));
        }
    }
    match p.get("port").and_then(Value::as_i64) {
        Some(port) => {
            for m in port_num(port) {
                errs.push(FieldError::invalid(pp.child("port"), port, m));
            }
        }
        None if !optional_port => {
            for m in port_num(0) {
                errs.push(FieldError::invalid(pp.child("port"), 0, m));
            }
        }
        None => {}
    }
    let proto = str_at(p, &["protocol"]).unwrap_or("");
    if proto.is_empty() {
        errs.push(FieldError::required(pp.child("protocol"), ""));
    } else if !PROTOCOLS.contains(&proto) {
        errs.push(FieldError::not_supported(
            pp.child("protocol"),
            proto,
            &PROTOCOLS,
        ));
    }
    errs
}

/// core/v1 Event: the involved object's namespace must match the event's.
pub fn validate_core_event(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ns = str_at(obj, &["metadata", "namespace"]).unwrap_or("");
    if let Some(ins) = str_at(obj, &["involvedObject", "namespace"])
        && !ins.is_empty()
        && ins != ns
    {
        errs.push(FieldError::invalid(
            FieldPath::new("involvedObject.namespace"),
            ins,
            "does not match event.namespace",
        ));
    }
    if let Some(t) = str_at(obj, &["type"])
        && str_at(obj, &["reportingComponent"]).is_some_and(|c| !c.is_empty())
        && !["Normal", "Warning"].contains(&t)
    {
        errs.push(FieldError::not_supported(
            FieldPath::new("type"),
            t,
            &["Normal", "Warning"],
        ));
    }
    errs
}

/// events.k8s.io/v1 Event: the fields the new Events API requires.
pub fn validate_events_event(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let p = FieldPath::root;
    if obj.get("eventTime").is_none_or(Value::is_null) {
        errs.push(FieldError::required(p().child("eventTime"), ""));
    }
    let controller = str_at(obj, &["reportingController"]).unwrap_or("");
    if controller.is_empty() {
        errs.push(FieldError::required(p().child("reportingController"), ""));
    } else {
        for m in qualified_name(controller) {
            errs.push(FieldError::invalid(
                p().child("reportingController"),
                controller,
                m,
            ));
        }
    }
    let instance = str_at(obj, &["reportingInstance"]).unwrap_or("");
    if instance.is_empty() {
        errs.push(FieldError::required(p().child("reportingInstance"), ""));
    } else if instance.len() > 128 {
        errs.push(FieldError::invalid(
            p().child("reportingInstance"),
            "",
            "can have at most 128 characters",
        ));
    }
    for key in ["action", "reason"] {
        let v = str_at(obj, &[key]).unwrap_or("");
        if v.is_empty() {
            errs.push(FieldError::required(p().child(key), ""));
        } else if v.len() > 128 {
            errs.push(FieldError::invalid(
                p().child(key),
                "",
                "can have at most 128 characters",
            ));
        }
    }
    let t = str_at(obj, &["type"]).unwrap_or("");
    if !["Normal", "Warning"].contains(&t) {
        errs.push(FieldError::not_supported(
            p().child("type"),
            t,
            &["Normal", "Warning"],
        ));
    }
    if str_at(obj, &["note"]).is_some_and(|n| n.len() > 1024) {
        errs.push(FieldError::invalid(
            p().child("note"),
            "",
            "can have at most 1024 characters",
        ));
    }
    let ns = str_at(obj, &["metadata", "namespace"]).unwrap_or("");
    if let Some(rns) = str_at(obj, &["regarding", "namespace"])
        && !rns.is_empty()
        && rns != ns
    {
        errs.push(FieldError::invalid(
            p().child("regarding").child("namespace"),
            rns,
            "does not match event.namespace",
        ));
    }
    errs
}

/// `ValidateLease`: durations and counters.
pub fn validate_lease(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let sp = FieldPath::new("spec");
    if let Some(d) = at(obj, &["spec", "leaseDurationSeconds"]).and_then(Value::as_i64)
        && d <= 0
    {
        errs.push(FieldError::invalid(
            sp.child("leaseDurationSeconds"),
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = at(obj, &["spec", "leaseTransitions"]).and_then(Value::as_i64)
        && t < 0
    {
        errs.push(FieldError::invalid(
            sp.child("leaseTransitions"),
            t,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(s) = str_at(obj, &["spec", "strategy"])
        && !["OldestEmulationVersion"].contains(&s)
    {
        errs.push(FieldError::not_supported(
            sp.child("strategy"),
            s,
            &["OldestEmulationVersion"],
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
    fn secrets() {
        let mut s = json!({"stringData": {"password": "hunter2"}});
        default_secret(&mut s);
        assert_eq!(
            s,
            json!({"type": "Opaque", "data": {"password": "aHVudGVyMg=="}})
        );
        let bad =
            json!({"type": "kubernetes.io/tls", "data": {"bad key": "YQ==", "tls.crt": "YQ=="}});
        assert_eq!(
            msgs(validate_secret(&bad, None)),
            vec![
                "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                "data[tls.key]: Required value",
            ]
        );
        let old = json!({"type": "Opaque", "immutable": true, "data": {"a": "YQ=="}});
        let new = json!({"type": "Opaque", "immutable": true, "data": {"a": "Yg=="}});
        assert_eq!(
            msgs(validate_secret(&new, Some(&old))),
            vec!["data: Forbidden: field is immutable when `immutable` is set"]
        );
        let retyped = json!({"type": "kubernetes.io/basic-auth", "data": {"username": "YQ=="}});
        assert_eq!(
            msgs(validate_secret(&retyped, Some(&json!({"type": "Opaque"})))),
            vec!["type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable"]
        );
    }

    #[test]
    fn config_maps() {
        let cm = json!({"data": {"a": "x"}, "binaryData": {"a": "eA=="}});
        assert_eq!(
            msgs(validate_config_map(&cm, None)),
            vec!["data[a]: Invalid value: \"a\": duplicate of key present in binaryData"]
        );
        assert!(validate_config_map(&json!({"data": {"app.properties": "x=1"}}), None).is_empty());
    }

    #[test]
    fn namespaces() {
        let mut ns = json!({"metadata": {"name": "team-a"}});
        default_namespace(&mut ns);
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team-a"
        );
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
        assert!(validate_namespace(&ns, None).is_empty());
    }

    #[test]
    fn endpoints() {
        let mut ep = json!({"subsets": [{"addresses": [{"ip": "10.1.0.5"}, {"ip": "nope"}], "ports": [{"port": 80}, {"port": 0, "name": "b"}]}]});
        default_endpoints(&mut ep);
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(
            msgs(validate_endpoints(&ep, None)),
            vec![
                "subsets[0].addresses[1].ip: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "subsets[0].ports[0].name: Required value",
                "subsets[0].ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
            ]
        );
    }

    #[test]
    fn events_and_leases() {
        let ev = json!({"metadata": {"namespace": "a"}, "type": "Info", "regarding": {"namespace": "b"}});
        assert_eq!(
            msgs(validate_events_event(&ev, None)),
            vec![
                "eventTime: Required value",
                "reportingController: Required value",
                "reportingInstance: Required value",
                "action: Required value",
                "reason: Required value",
                "type: Unsupported value: \"Info\": supported values: \"Normal\", \"Warning\"",
                "regarding.namespace: Invalid value: \"b\": does not match event.namespace",
            ]
        );
        let core_ev = json!({"metadata": {"namespace": "a"}, "involvedObject": {"namespace": "b"}});
        assert_eq!(
            msgs(validate_core_event(&core_ev, None)),
            vec!["involvedObject.namespace: Invalid value: \"b\": does not match event.namespace"]
        );
        let lease = json!({"spec": {"leaseDurationSeconds": 0, "holderIdentity": "x"}});
        assert_eq!(
            msgs(validate_lease(&lease, None)),
            vec!["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]
        );
    }
}
