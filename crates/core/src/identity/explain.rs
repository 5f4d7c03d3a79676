//! `fedmesh policy explain`: for a policy's own selector and for each rule's
//! source and destination, the endpoints they select, with cluster,
//! namespace, name and IPs: the check to run before trusting a
//! cross-cluster rule.

use std::fmt::Write as _;

use fedmesh_selector::Selector;
use serde_json::{Value, json};

use super::index::IdentityIndex;
use super::listing::{EndpointSummary, table};
use super::policy::{Peer, Policy, PolicyRef, RuleId};
use super::query::{EndpointQuery, NamespaceScope, Reach};

/// The endpoints one selection picks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// What was asked, in words (selector, namespace scope, clusters).
    pub description: String,
    /// What it selects.
    pub endpoints: Vec<EndpointSummary>,
    /// What its `notSelector` takes back out.
    pub excluded: Vec<EndpointSummary>,
}

/// One side of a rule, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerExplanation {
    /// True when nothing restricts the side: it matches any traffic.
    pub any: bool,
    /// The endpoints it selects by identity, when it does.
    pub selection: Option<Selection>,
    /// CIDRs it matches.
    pub nets: Vec<String>,
    /// CIDRs it excludes.
    pub not_nets: Vec<String>,
}

/// One rule, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleExplanation {
    /// Which rule.
    pub id: RuleId,
    /// Its action.
    pub action: String,
    /// Its source side.
    pub source: PeerExplanation,
    /// Its destination side.
    pub destination: PeerExplanation,
}

/// A whole policy, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Which policy.
    pub policy: PolicyRef,
    /// The local endpoints it applies to.
    pub applies_to: Selection,
    /// Its rules.
    pub rules: Vec<RuleExplanation>,
}

/// Explains `policy` against the endpoints in `index`.
pub fn explain(index: &IdentityIndex, policy: &Policy) -> Explanation {
    Explanation {
        policy: policy.reference.clone(),
        applies_to: select(index, &policy.applies_to, None),
        rules: policy
            .rules
            .iter()
            .map(|rule| RuleExplanation {
                id: rule.id,
                action: rule.action.clone(),
                source: peer(index, &rule.source),
                destination: peer(index, &rule.destination),
            })
            .collect(),
    }
}

fn peer(index: &IdentityIndex, side: &Peer) -> PeerExplanation {
    PeerExplanation {
        any: side.is_any(),
        selection: side
            .selection
            .as_ref()
            .map(|q| select(index, q, side.not_selector.as_ref())),
        nets: side.nets.clone(),
        not_nets: side.not_nets.clone(),
    }
}

fn select(index: &IdentityIndex, query: &EndpointQuery, not: Option<&Selector>) -> Selection {
    let mut endpoints = Vec::new();
    let mut excluded = Vec::new();
    for endpoint in index.select(query) {
        if not.is_some_and(|n| n.matches_interned(endpoint.labels())) {
            excluded.push(EndpointSummary::of(endpoint));
        } else {
            endpoints.push(EndpointSummary::of(endpoint));
        }
    }
    Selection {
        description: describe(query, not),
        endpoints,
        excluded,
    }
}

fn describe(query: &EndpointQuery, not: Option<&Selector>) -> String {
    let mut text = query.selector.canonical().to_owned();
    if let Some(not) = not {
        let _ = write!(text, " and not {}", not.canonical());
    }
    match &query.namespace {
        NamespaceScope::Any => {}
        NamespaceScope::In(ns) => {
            let _ = write!(text, " in namespace {ns}");
        }
        NamespaceScope::Matching(sel) => {
            let _ = write!(text, " in namespaces matching {}", sel.canonical());
        }
        NamespaceScope::NonNamespaced => text.push_str(" among host endpoints"),
    }
    if let Some(sa) = &query.service_accounts {
        if !sa.names.is_empty() {
            let names: Vec<&str> = sa.names.iter().map(|n| &**n).collect();
            let _ = write!(text, " running as {}", names.join(", "));
        }
        if let Some(sel) = &sa.selector {
            let _ = write!(text, " with service accounts matching {}", sel.canonical());
        }
    }
    text.push_str(match query.reach {
        Reach::Local => " (local cluster only)",
        Reach::Everywhere => " (local and remote clusters)",
    });
    text
}

impl Selection {
    fn to_json(&self) -> Value {
        json!({
            "description": self.description,
            "endpoints": self.endpoints.iter().map(EndpointSummary::to_json).collect::<Vec<_>>(),
            "excluded": self.excluded.iter().map(EndpointSummary::to_json).collect::<Vec<_>>(),
        })
    }

    fn render(&self, title: &str, out: &mut String) {
        let _ = writeln!(out, "{title}: {}", self.description);
        if self.endpoints.is_empty() {
            out.push_str("  (no endpoints)\n");
        } else {
            let rows: Vec<[String; 5]> =
                self.endpoints.iter().map(EndpointSummary::cells).collect();
            indent(
                &table(&["CLUSTER", "KIND", "NAMESPACE", "NAME", "IPS"], &rows),
                out,
            );
        }
        if !self.excluded.is_empty() {
            out.push_str("  excluded by notSelector:\n");
            let rows: Vec<[String; 5]> = self.excluded.iter().map(EndpointSummary::cells).collect();
            indent(
                &table(&["CLUSTER", "KIND", "NAMESPACE", "NAME", "IPS"], &rows),
                out,
            );
        }
    }
}

impl PeerExplanation {
    fn to_json(&self) -> Value {
        json!({
            "any": self.any,
            "selection": self.selection.as_ref().map(Selection::to_json),
            "nets": self.nets,
            "notNets": self.not_nets,
        })
    }

    fn render(&self, side: &str, out: &mut String) {
        if self.any {
            let _ = writeln!(out, "  {side}: any");
            return;
        }
        if let Some(selection) = &self.selection {
            let mut inner = String::new();
            selection.render(side, &mut inner);
            indent(&inner, out);
        }
        if !self.nets.is_empty() {
            let _ = writeln!(out, "  {side} nets: {}", self.nets.join(", "));
        }
        if !self.not_nets.is_empty() {
            let _ = writeln!(out, "  {side} notNets: {}", self.not_nets.join(", "));
        }
    }
}

impl Explanation {
    /// The explanation as text for a terminal.
    pub fn render_text(&self) -> String {
        let mut out = format!("{}\n", self.policy);
        self.applies_to.render("applies to", &mut out);
        for rule in &self.rules {
            let _ = writeln!(out, "{} ({}):", rule.id, rule.action);
            rule.source.render("source", &mut out);
            rule.destination.render("destination", &mut out);
        }
        out
    }

    /// The explanation as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "policy": {
                "kind": self.policy.kind.to_string(),
                "namespace": self.policy.namespace.as_deref(),
                "name": self.policy.name,
            },
            "appliesTo": self.applies_to.to_json(),
            "rules": self.rules.iter().map(|r| json!({
                "rule": r.id.to_string(),
                "action": r.action,
                "source": r.source.to_json(),
                "destination": r.destination.to_json(),
            })).collect::<Vec<_>>(),
        })
    }
}

fn indent(text: &str, out: &mut String) {
    for line in text.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
}
