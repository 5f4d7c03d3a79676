//! discovery.k8s.io/v1 EndpointSlice: `ValidateEndpointSlice` and its defaults.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::{Value, json};

use super::core::endpoint_port;
use super::meta::{check_field, immutable, str_at};
use super::names::{dns1123_label, dns1123_subdomain, label_value};
use crate::schema::{FieldError, FieldPath};

const ADDRESS_TYPES: [&str; 3] = ["FQDN", "IPv4", "IPv6"];
/// Most endpoints in one slice.
pub const MAX_ENDPOINTS: usize = 1000;
/// Most ports in one slice.
pub const MAX_PORTS: usize = 20000;
/// Most addresses of one endpoint.
pub const MAX_ADDRESSES: usize = 100;

/// EndpointSlice defaults: port protocol `TCP` and name `""`.
pub fn default(obj: &mut Value) {
    if let Some(Value::Array(ports)) = obj.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            if p.get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                p.insert("protocol".into(), json!("TCP"));
            }
            if p.get("name").is_none_or(Value::is_null) {
                p.insert("name".into(), json!(""));
            }
        }
    }
}

/// `ValidateEndpointSlice` (with `old`: addressType is immutable).
pub fn validate(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let at_path = FieldPath::new("addressType");
    let address_type = str_at(obj, &["addressType"]).unwrap_or("");
    if address_type.is_empty() {
        errs.push(FieldError::required(at_path.clone(), ""));
    } else if !ADDRESS_TYPES.contains(&address_type) {
        errs.push(FieldError::not_supported(
            at_path.clone(),
            address_type,
            &ADDRESS_TYPES,
        ));
    }
    let endpoints = obj
        .get("endpoints")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if endpoints.len() > MAX_ENDPOINTS {
        errs.push(FieldError::too_many(
            FieldPath::new("endpoints"),
            endpoints.len(),
            MAX_ENDPOINTS,
        ));
    }
    for (i, e) in endpoints.iter().enumerate() {
        let ep = FieldPath::new("endpoints").index(i);
        let addresses = e
            .get("addresses")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if addresses.is_empty() {
            errs.push(FieldError::required(
                ep.child("addresses"),
                "must contain at least 1 address",
            ));
        } else if addresses.len() > MAX_ADDRESSES {
            errs.push(FieldError::too_many(
                ep.child("addresses"),
                addresses.len(),
                MAX_ADDRESSES,
            ));
        }
        for (j, a) in addresses.iter().enumerate() {
            let ap = ep.child("addresses").index(j);
            let a = a.as_str().unwrap_or("");
            let msg = match address_type {
                "IPv4" if a.parse::<Ipv4Addr>().is_err() => {
                    Some("must be a valid IPv4 address".to_owned())
                }
                "IPv6" if a.parse::<Ipv6Addr>().is_err() => {
                    Some("must be a valid IPv6 address".to_owned())
                }
                "FQDN" => dns1123_subdomain(a).into_iter().next(),
                _ => None,
            };
            if let Some(m) = msg {
                errs.push(FieldError::invalid(ap, a, m));
            }
        }
        check_field(&mut errs, e, &ep, "hostname", dns1123_label);
        check_field(&mut errs, e, &ep, "nodeName", dns1123_subdomain);
        check_field(&mut errs, e, &ep, "zone", label_value);
    }
    let ports = obj
        .get("ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if ports.len() > MAX_PORTS {
        errs.push(FieldError::too_many(
            FieldPath::new("ports"),
            ports.len(),
            MAX_PORTS,
        ));
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = FieldPath::new("ports").index(i);
        errs.extend(endpoint_port(p, false, true, &pp));
        let name = str_at(p, &["name"]).unwrap_or("");
        if names.contains(&name) {
            errs.push(FieldError::duplicate(pp.child("name"), name));
        }
        names.push(name);
    }
    if let Some(old) = old {
        errs.extend(immutable(
            obj.get("addressType"),
            old.get("addressType"),
            at_path,
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
    fn slices() {
        let mut s = json!({"addressType": "IPv4",
            "endpoints": [{"addresses": ["10.1.0.1"], "conditions": {"ready": true}, "nodeName": "node-1", "zone": "z1"}],
            "ports": [{"port": 80}]});
        default(&mut s);
        assert_eq!(
            s["ports"][0],
            json!({"port": 80, "protocol": "TCP", "name": ""})
        );
        assert!(validate(&s, None).is_empty());
        let bad = json!({"addressType": "IPv5", "endpoints": [{"addresses": []}, {"addresses": ["x"]}],
                         "ports": [{"name": "a", "protocol": "TCP"}, {"name": "a", "protocol": "TCP", "port": 0}]});
        assert_eq!(
            msgs(validate(&bad, None)),
            vec![
                "addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"",
                "endpoints[0].addresses: Required value: must contain at least 1 address",
                "ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "ports[1].name: Duplicate value: \"a\"",
            ]
        );
        let mut v6 = s.clone();
        v6["addressType"] = json!("IPv6");
        assert_eq!(
            msgs(validate(&v6, Some(&s))),
            vec![
                "endpoints[0].addresses[0]: Invalid value: \"10.1.0.1\": must be a valid IPv6 address",
                "addressType: Invalid value: \"IPv6\": field is immutable",
            ]
        );
    }
}
