//! `fedmesh endpoints`: the endpoints a selector matches, with their labels,
//! as a table or as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use fedmesh_selector::Selector;
use serde_json::{Value, json};

use super::endpoint::EndpointKind;
use super::index::{Endpoint, IdentityIndex};
use super::query::EndpointQuery;
use crate::names::ClusterName;

/// An endpoint as reports show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSummary {
    /// Its remote cluster, or `None` for the local cluster.
    pub cluster: Option<ClusterName>,
    /// Pod or host endpoint.
    pub kind: EndpointKind,
    /// The pod's namespace.
    pub namespace: Option<Arc<str>>,
    /// Its name.
    pub name: Arc<str>,
    /// Its IPs.
    pub ips: Vec<IpAddr>,
}

impl EndpointSummary {
    /// The summary of an indexed endpoint.
    pub fn of(endpoint: &Endpoint) -> Self {
        let key = endpoint.key();
        Self {
            cluster: key.cluster().cloned(),
            kind: key.kind(),
            namespace: key.namespace().cloned(),
            name: key.name().clone(),
            ips: endpoint.ips().to_vec(),
        }
    }

    /// As JSON: `cluster` (null when local), `kind`, `namespace`, `name`, `ips`.
    pub fn to_json(&self) -> Value {
        json!({
            "cluster": self.cluster.as_ref().map(ClusterName::as_str),
            "kind": self.kind.to_string(),
            "namespace": self.namespace.as_deref(),
            "name": &*self.name,
            "ips": self.ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })
    }

    /// The cells of a table row: cluster, kind, namespace, name, IPs.
    pub(super) fn cells(&self) -> [String; 5] {
        [
            self.cluster
                .as_ref()
                .map_or_else(|| "(local)".to_owned(), ToString::to_string),
            self.kind.to_string(),
            self.namespace.as_deref().unwrap_or("-").to_owned(),
            self.name.to_string(),
            if self.ips.is_empty() {
                "<none>".to_owned()
            } else {
                self.ips
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            },
        ]
    }
}

/// One listed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedEndpoint {
    /// Where it is, its name and IPs.
    pub summary: EndpointSummary,
    /// The labels selectors see (Calico's included).
    pub labels: BTreeMap<String, String>,
}

/// The endpoints, local and remote, that a selector matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointListing {
    /// The selector.
    pub selector: Selector,
    /// The endpoints, local first, then by cluster, namespace and name.
    pub endpoints: Vec<ListedEndpoint>,
}

impl EndpointListing {
    /// Lists what `selector` matches in every cluster.
    pub fn new(index: &IdentityIndex, selector: Selector) -> Self {
        let endpoints = index
            .select(&EndpointQuery::everywhere(selector.clone()))
            .into_iter()
            .map(|e| ListedEndpoint {
                summary: EndpointSummary::of(e),
                labels: e
                    .label_map()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            })
            .collect();
        Self {
            selector,
            endpoints,
        }
    }

    /// A table, one endpoint a line, labels as `k=v` joined by commas.
    pub fn render_table(&self) -> String {
        let rows: Vec<[String; 6]> = self
            .endpoints
            .iter()
            .map(|e| {
                let [c, k, n, name, ips] = e.summary.cells();
                let labels = e
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",");
                [c, k, n, name, ips, labels]
            })
            .collect();
        table(
            &["CLUSTER", "KIND", "NAMESPACE", "NAME", "IPS", "LABELS"],
            &rows,
        )
    }

    /// As JSON: `{"selector": ..., "endpoints": [{..summary, "labels": {..}}]}`.
    pub fn to_json(&self) -> Value {
        let endpoints: Vec<Value> = self
            .endpoints
            .iter()
            .map(|e| {
                let mut v = e.summary.to_json();
                if let Some(o) = v.as_object_mut() {
                    o.insert("labels".into(), json!(e.labels));
                }
                v
            })
            .collect();
        json!({ "selector": self.selector.canonical(), "endpoints": endpoints })
    }
}

/// Left-aligned columns separated by three spaces, as kubectl prints them.
pub(super) fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let header = header.map(str::to_owned);
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:w$}   ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
