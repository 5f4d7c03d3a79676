//! Where a member cluster is: the zones and region of its Nodes.
//!
//! Federation v1 kept only the first zone it saw; fedmesh lists every zone
//! (sorted), so DNS can name a shard under each zone its nodes are in.

use std::collections::{BTreeMap, HashMap};

/// The zone label of a Node.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// The region label of a Node.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
/// The zone label older clusters set.
pub const LEGACY_ZONE_LABEL: &str = "failure-domain.beta.kubernetes.io/zone";
/// The region label older clusters set.
pub const LEGACY_REGION_LABEL: &str = "failure-domain.beta.kubernetes.io/region";

/// A member's zones and region.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Topology {
    /// Every zone a node is in, sorted, without repeats.
    pub zones: Vec<String>,
    /// The region of most nodes (the first by name on a tie); `None` when no
    /// node says.
    pub region: Option<String>,
}

/// A Node's zone: `topology.kubernetes.io/zone`, else the legacy label.
pub fn node_zone(labels: &BTreeMap<String, String>) -> Option<&str> {
    label(labels, ZONE_LABEL, LEGACY_ZONE_LABEL)
}

/// A Node's region: `topology.kubernetes.io/region`, else the legacy label.
pub fn node_region(labels: &BTreeMap<String, String>) -> Option<&str> {
    label(labels, REGION_LABEL, LEGACY_REGION_LABEL)
}

fn label<'a>(labels: &'a BTreeMap<String, String>, key: &str, legacy: &str) -> Option<&'a str> {
    labels
        .get(key)
        .or_else(|| labels.get(legacy))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// The zones and regions of one member's Nodes, kept as nodes come and go:
/// a Node update costs a map lookup, not a pass over every node.
#[derive(Debug, Clone, Default)]
pub struct NodeTopology {
    /// Each node's zone and region.
    nodes: HashMap<String, (Option<String>, Option<String>)>,
    /// How many nodes are in each zone.
    zones: BTreeMap<String, usize>,
    /// How many nodes are in each region.
    regions: BTreeMap<String, usize>,
}

impl NodeTopology {
    /// Applies a Node upserted (`Some(labels)`) or deleted (`None`); says
    /// whether the member's [`Topology`] may have changed.
    pub fn apply(&mut self, node: &str, labels: Option<&BTreeMap<String, String>>) -> bool {
        let new = labels.map(|l| {
            (
                node_zone(l).map(str::to_owned),
                node_region(l).map(str::to_owned),
            )
        });
        let old = match &new {
            Some(place) => {
                if self.nodes.get(node) == Some(place) {
                    return false;
                }
                self.nodes.insert(node.to_owned(), place.clone())
            }
            None => self.nodes.remove(node),
        };
        if let Some((zone, region)) = &old {
            uncount(&mut self.zones, zone.as_deref());
            uncount(&mut self.regions, region.as_deref());
        }
        if let Some((zone, region)) = &new {
            count(&mut self.zones, zone.as_deref());
            count(&mut self.regions, region.as_deref());
        }
        old.is_some() || new.is_some()
    }

    /// Replaces every node with a fresh listing.
    pub fn reset<'a>(
        &mut self,
        nodes: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, String>)>,
    ) {
        *self = Self::default();
        for (name, labels) in nodes {
            self.apply(name, Some(labels));
        }
    }

    /// The member's zones and region now.
    pub fn topology(&self) -> Topology {
        let region = self
            .regions
            .iter()
            // The most nodes wins; among equals the first by name, as
            // `max_by_key` keeps the last maximum and `rev` makes that the first.
            .rev()
            .max_by_key(|(_, n)| **n)
            .map(|(r, _)| r.clone());
        Topology {
            zones: self.zones.keys().cloned().collect(),
            region,
        }
    }
}

fn count(counts: &mut BTreeMap<String, usize>, key: Option<&str>) {
    if let Some(key) = key {
        *counts.entry(key.to_owned()).or_default() += 1;
    }
}

fn uncount(counts: &mut BTreeMap<String, usize>, key: Option<&str>) {
    if let Some(key) = key
        && let Some(n) = counts.get_mut(key)
    {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}
