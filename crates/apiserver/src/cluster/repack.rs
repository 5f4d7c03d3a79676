//! `RepackSubsets`: Endpoints subsets regrouped so that each subset holds
//! one distinct set of addresses with every port that set serves.
//!
//! Addresses are identified by IP and target UID; an address that is not
//! ready on one port of a group stays not ready ("not ready trumps
//! ready"). Addresses are sorted by IP bytes then target UID; ports and
//! then subsets by the MD5 of their go-spew rendering, exactly as
//! Kubernetes sorts them (see [`super::gohash`]).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset};

use super::gohash::{hash_key, spew_endpoint_port, spew_endpoint_subset};

type AddrKey = (String, Option<String>);
type PortKey = (i32, Option<String>, Option<String>, Option<String>);
type PortAddresses = (Option<EndpointPort>, BTreeMap<AddrKey, bool>);

fn addr_key(a: &EndpointAddress) -> AddrKey {
    (
        a.ip.clone(),
        a.target_ref.as_ref().and_then(|r| r.uid.clone()),
    )
}

fn port_key(p: &EndpointPort) -> PortKey {
    (
        p.port,
        p.name.clone(),
        p.protocol.clone(),
        p.app_protocol.clone(),
    )
}

/// Kubernetes' `LessEndpointAddress`: IP bytes, then target UID, with a
/// missing target first.
pub fn compare_addresses(a: &EndpointAddress, b: &EndpointAddress) -> Ordering {
    a.ip.as_bytes().cmp(b.ip.as_bytes()).then_with(|| {
        let ua = a
            .target_ref
            .as_ref()
            .map(|r| r.uid.clone().unwrap_or_default());
        let ub = b
            .target_ref
            .as_ref()
            .map(|r| r.uid.clone().unwrap_or_default());
        ua.cmp(&ub)
    })
}

/// Repacks subsets (see the module documentation).
pub fn repack_subsets(subsets: Vec<EndpointSubset>) -> Vec<EndpointSubset> {
    // First address seen under each key, kept whole for its targetRef.
    let mut all_addrs: BTreeMap<AddrKey, EndpointAddress> = BTreeMap::new();
    // Port (None: the sentinel for port-less subsets) -> address -> ready.
    let mut by_port: BTreeMap<Option<PortKey>, PortAddresses> = BTreeMap::new();
    for subset in subsets {
        let ports: Vec<Option<EndpointPort>> = match subset.ports {
            Some(p) if !p.is_empty() => p.into_iter().map(Some).collect(),
            _ => vec![None],
        };
        let ready = subset.addresses.into_iter().flatten().map(|a| (a, true));
        let not_ready = subset
            .not_ready_addresses
            .into_iter()
            .flatten()
            .map(|a| (a, false));
        let addrs: Vec<(EndpointAddress, bool)> = ready.chain(not_ready).collect();
        for port in ports {
            let entry = by_port
                .entry(port.as_ref().map(port_key))
                .or_insert_with(|| (port.clone(), BTreeMap::new()));
            for (addr, is_ready) in &addrs {
                let key = addr_key(addr);
                all_addrs.entry(key.clone()).or_insert_with(|| addr.clone());
                let slot = entry.1.entry(key).or_insert(*is_ready);
                *slot = *slot && *is_ready;
            }
        }
    }

    // Group ports by the exact set of (address, readiness) they map to.
    let mut groups: BTreeMap<Vec<(AddrKey, bool)>, Vec<EndpointPort>> = BTreeMap::new();
    for (_, (port, addrs)) in by_port {
        let set: Vec<(AddrKey, bool)> = addrs.into_iter().collect();
        let ports = groups.entry(set).or_default();
        if let Some(p) = port {
            ports.push(p);
        }
    }

    let mut out: Vec<EndpointSubset> = groups
        .into_iter()
        .map(|(set, mut ports)| {
            let mut ready = Vec::new();
            let mut not_ready = Vec::new();
            for (key, is_ready) in set {
                if let Some(a) = all_addrs.get(&key) {
                    if is_ready {
                        ready.push(a.clone());
                    } else {
                        not_ready.push(a.clone());
                    }
                }
            }
            ready.sort_by(compare_addresses);
            not_ready.sort_by(compare_addresses);
            ports.sort_by_cached_key(|p| hash_key(&spew_endpoint_port(p)));
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect();
    out.sort_by_cached_key(|s| hash_key(&spew_endpoint_subset(s)));
    out
}
