//! Names of the objects fedmesh writes for remote endpoints.
//!
//! A name must be unique per cluster even though every remote cluster has
//! its own pods: two clusters' pods never share one. The readable form
//! `<cluster>.<name>` is injective when the cluster name has no dot (the
//! first dot then splits it), so that form is used whenever it is valid;
//! otherwise (a dotted cluster name, or a name over 253 characters) the
//! name is a readable prefix and a 128-bit digest of the endpoint's identity.
//! Hashed names have no dot and readable ones always have one, so the two
//! forms never meet.

use sha2::{Digest, Sha256};

use super::endpoint::EndpointKey;
use crate::names::ClusterName;

/// The longest object name Kubernetes accepts (a DNS-1123 subdomain).
const MAX_NAME_LEN: usize = 253;
/// Hex digits of the digest in a hashed name: 128 bits.
const DIGEST_HEX: usize = 32;

/// Which object family a name is for: names only need to be unique within
/// one kind, and the Cilium kind is cluster-scoped for pods and hosts alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NameSpace {
    /// Calico NetworkSets (pods; the object sits in the pod's namespace) and
    /// GlobalNetworkSets (host endpoints).
    Calico,
    /// CiliumCIDRGroups: cluster-scoped, so the pod's namespace is part of
    /// the name, and a marker keeps pods and hosts apart.
    Cilium,
}

/// The name of the object mirroring the remote endpoint `key` of `cluster`.
pub(super) fn object_name(space: NameSpace, cluster: &ClusterName, key: &EndpointKey) -> String {
    let readable = match (space, key) {
        (NameSpace::Calico, _) => format!("{cluster}.{}", key.name()),
        (
            NameSpace::Cilium,
            EndpointKey::Workload {
                namespace, name, ..
            },
        ) => {
            format!("{cluster}.pod.{namespace}.{name}")
        }
        (NameSpace::Cilium, EndpointKey::Host { name, .. }) => format!("{cluster}.host.{name}"),
    };
    if !cluster.as_str().contains('.') && is_subdomain(&readable) {
        return readable;
    }
    hashed(space, cluster, key, &readable)
}

fn hashed(space: NameSpace, cluster: &ClusterName, key: &EndpointKey, readable: &str) -> String {
    let mut digest = Sha256::new();
    let tag = match (space, key.kind()) {
        (NameSpace::Calico, super::EndpointKind::Workload) => "calico-pod",
        (NameSpace::Calico, super::EndpointKind::Host) => "calico-host",
        (NameSpace::Cilium, super::EndpointKind::Workload) => "cilium-pod",
        (NameSpace::Cilium, super::EndpointKind::Host) => "cilium-host",
    };
    // '/' appears in none of the parts, so the input is unambiguous.
    for part in [
        tag,
        cluster.as_str(),
        key.namespace().map_or("", |n| n),
        key.name(),
    ] {
        digest.update(part.as_bytes());
        digest.update(b"/");
    }
    let hex: String = digest
        .finalize()
        .iter()
        .take(DIGEST_HEX / 2)
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut prefix: String = readable
        .chars()
        .map(|c| {
            if c == '.' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
        .take(MAX_NAME_LEN - DIGEST_HEX - 1)
        .collect();
    // A name starts with an alphanumeric; the digest ends it with one.
    let start = prefix
        .find(|c: char| c.is_ascii_alphanumeric())
        .unwrap_or(prefix.len());
    prefix.drain(..start);
    if prefix.is_empty() {
        prefix.push_str("fedmesh");
    }
    format!("{prefix}-{hex}")
}

/// Whether `name` is a DNS-1123 subdomain, the rule for object names (the
/// same rule a cluster name follows).
pub(super) fn is_subdomain(name: &str) -> bool {
    ClusterName::new(name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Origin;

    fn cluster(name: &str) -> ClusterName {
        ClusterName::new(name).unwrap()
    }

    fn pod(c: &str, ns: &str, name: &str) -> EndpointKey {
        EndpointKey::workload(Origin::Remote(cluster(c)), ns, name)
    }

    #[test]
    fn plain_cluster_names_give_readable_names() {
        let key = pod("east", "myapp", "postgres-0");
        assert_eq!(
            object_name(NameSpace::Calico, &cluster("east"), &key),
            "east.postgres-0"
        );
        assert_eq!(
            object_name(NameSpace::Cilium, &cluster("east"), &key),
            "east.pod.myapp.postgres-0"
        );
        let host = EndpointKey::host(Origin::Remote(cluster("east")), "node1.eth0");
        assert_eq!(
            object_name(NameSpace::Cilium, &cluster("east"), &host),
            "east.host.node1.eth0"
        );
    }

    #[test]
    fn names_that_would_collide_across_clusters_do_not() {
        // Readable, both would be "a.b.c".
        let one = object_name(NameSpace::Calico, &cluster("a"), &pod("a", "ns", "b.c"));
        let two = object_name(NameSpace::Calico, &cluster("a.b"), &pod("a.b", "ns", "c"));
        assert_eq!(one, "a.b.c");
        assert_ne!(one, two);
        assert!(!two.contains('.'), "{two}");
        assert!(is_subdomain(&two));
    }

    #[test]
    fn long_names_are_hashed_within_the_limit() {
        let long = "p".repeat(250);
        let a = object_name(
            NameSpace::Calico,
            &cluster("east"),
            &pod("east", "ns", &long),
        );
        let b = object_name(
            NameSpace::Calico,
            &cluster("west"),
            &pod("west", "ns", &long),
        );
        for name in [&a, &b] {
            assert!(name.len() <= MAX_NAME_LEN, "{}", name.len());
            assert!(is_subdomain(name), "{name}");
        }
        assert_ne!(a, b);
        let cilium = object_name(
            NameSpace::Cilium,
            &cluster("east"),
            &pod("east", "n", &long),
        );
        assert!(is_subdomain(&cilium));
    }
}
