//! Complete listings (`reset_*`, what the controller hands over after each
//! list) give the same index as the same objects applied one event at a time.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proptest::prelude::*;

use super::*;
use crate::Changes;

/// Everything the index wants written: per federated Service, its Endpoints
/// and its EndpointSlices by name.
type Snapshot = BTreeMap<FederatedKey, (Endpoints, BTreeMap<String, EndpointSlice>)>;

fn snapshot(index: &MeshIndex) -> Snapshot {
    index
        .federated_keys()
        .into_iter()
        .map(|key| {
            let view = index.federation(&key).expect("listed keys are federated");
            let slices = view
                .slices()
                .into_iter()
                .map(|s| (s.metadata.name.clone().unwrap_or_default(), s))
                .collect();
            (key, (view.endpoints(), slices))
        })
        .collect()
}

/// Fails unless `changes` names every difference between `before` and `after`.
fn assert_changes_cover(before: &Snapshot, after: &Snapshot, changes: &Changes) {
    let keys: BTreeSet<&FederatedKey> = before.keys().chain(after.keys()).collect();
    for key in keys {
        let (old, new) = (before.get(key), after.get(key));
        if old == new {
            continue;
        }
        let dirty = changes
            .dirty
            .get(key)
            .unwrap_or_else(|| panic!("{key} changed but is not in the changes"));
        if dirty.all {
            continue;
        }
        let (Some((old_endpoints, old_slices)), Some((new_endpoints, new_slices))) = (old, new)
        else {
            panic!("{key} started or stopped being federated without `all`");
        };
        assert!(
            old_endpoints == new_endpoints || dirty.endpoints,
            "{key}: Endpoints changed but not marked"
        );
        let names: BTreeSet<&String> = old_slices.keys().chain(new_slices.keys()).collect();
        for name in names {
            if old_slices.get(name) != new_slices.get(name) {
                assert!(
                    dirty.slices.contains(name.as_str()),
                    "{key}: slice {name} changed but not marked"
                );
            }
        }
    }
}

const CLUSTERS: [&str; 3] = ["local", "east", "west"];
const NAMESPACES: [&str; 2] = ["a", "b"];
const NAMES: [&str; 4] = ["s0", "s1", "s2", "s3"];
const SELECTORS: [&str; 8] = [
    r#"app == "x""#,
    "has(tier)",
    "all()",
    r#"app in {"x", "y"} && tier == "y""#,
    r#"federation.tigera.io/remoteClusterName == "east""#,
    "!has(app)",
    r#"app == "x" || tier == "z""#,
    "app ==",
];

fn origin_of(cluster: usize) -> Origin {
    match cluster {
        0 => Origin::Local,
        n => remote(CLUSTERS[n % CLUSTERS.len()]),
    }
}

/// What one generated Service is: its labels, and whether it is federated.
#[derive(Debug, Clone)]
struct SvcSpec {
    ns: usize,
    name: usize,
    app: Option<usize>,
    tier: Option<usize>,
    selector: Option<usize>,
    pod_selector: bool,
    udp: bool,
}

impl SvcSpec {
    fn build(&self) -> Svc {
        let values = ["x", "y", "z"];
        let mut svc = svc(NAMESPACES[self.ns], NAMES[self.name]).port("http", "TCP", 80);
        if self.udp {
            svc = svc.port("dns", "UDP", 53);
        }
        if let Some(v) = self.app {
            svc = svc.label("app", values[v]);
        }
        if let Some(v) = self.tier {
            svc = svc.label("tier", values[v]);
        }
        if let Some(s) = self.selector {
            svc = svc.federate(SELECTORS[s]);
        }
        if self.pod_selector {
            svc = svc.pod_selector("app", "x");
        }
        svc
    }
}

/// What one generated EndpointSlice is.
#[derive(Debug, Clone)]
struct SlcSpec {
    ns: usize,
    name: usize,
    service: usize,
    endpoints: usize,
    udp: bool,
    seed: u8,
}

impl SlcSpec {
    fn build(&self, cluster: usize) -> Slc {
        let service = NAMES[self.service];
        let mut slice = slc(
            NAMESPACES[self.ns],
            &format!("{}-{}", NAMES[self.name], self.name),
            service,
        )
        .port("http", "TCP", 8080);
        if self.udp {
            slice = slice.port("dns", "UDP", 5353);
        }
        for e in 0..self.endpoints {
            let ip = format!("10.{cluster}.{}.{}", self.seed, e % 250);
            slice = slice.endpoint_with(&ip, &format!("{service}-{e}"), "node", e % 3 != 1);
        }
        slice
    }
}

fn svc_spec() -> impl Strategy<Value = SvcSpec> {
    (
        0..NAMESPACES.len(),
        0..NAMES.len(),
        proptest::option::of(0..3usize),
        proptest::option::of(0..3usize),
        proptest::option::weighted(0.3, 0..SELECTORS.len()),
        proptest::bool::weighted(0.1),
        any::<bool>(),
    )
        .prop_map(
            |(ns, name, app, tier, selector, pod_selector, udp)| SvcSpec {
                ns,
                name,
                app,
                tier,
                selector,
                pod_selector,
                udp,
            },
        )
}

fn slc_spec() -> impl Strategy<Value = SlcSpec> {
    (
        0..NAMESPACES.len(),
        0..3usize,
        0..NAMES.len(),
        // Mostly small slices; now and then one the index splits in chunks of 100.
        prop_oneof![4 => 0..4usize, 1 => 99..205usize],
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(|(ns, name, service, endpoints, udp, seed)| SlcSpec {
            ns,
            name,
            service,
            endpoints,
            udp,
            seed,
        })
}

/// One cluster's objects, unique by namespace and name (a listing has each once).
#[derive(Debug, Clone)]
struct ClusterSpec {
    services: Vec<SvcSpec>,
    slices: Vec<SlcSpec>,
}

fn cluster_spec() -> impl Strategy<Value = ClusterSpec> {
    (
        proptest::collection::vec(svc_spec(), 0..8),
        proptest::collection::vec(slc_spec(), 0..8),
    )
        .prop_map(|(services, slices)| {
            let mut seen = BTreeSet::new();
            let services = services
                .into_iter()
                .filter(|s| seen.insert((s.ns, s.name)))
                .collect();
            let mut seen = BTreeSet::new();
            let slices = slices
                .into_iter()
                .filter(|s| seen.insert((s.ns, s.name)))
                .collect();
            ClusterSpec { services, slices }
        })
}

/// A relisting of `spec`: some objects gone, a few new or changed ones.
#[derive(Debug, Clone)]
struct Edit {
    keep: Vec<bool>,
    services: Vec<SvcSpec>,
    slices: Vec<SlcSpec>,
}

fn edit() -> impl Strategy<Value = Edit> {
    (
        proptest::collection::vec(proptest::bool::weighted(0.8), 16),
        proptest::collection::vec(svc_spec(), 0..3),
        proptest::collection::vec(slc_spec(), 0..3),
    )
        .prop_map(|(keep, services, slices)| Edit {
            keep,
            services,
            slices,
        })
}

impl Edit {
    fn apply(&self, spec: &ClusterSpec) -> ClusterSpec {
        let kept = |i: usize| self.keep.get(i).copied().unwrap_or(true);
        let mut services: BTreeMap<(usize, usize), SvcSpec> = spec
            .services
            .iter()
            .enumerate()
            .filter(|(i, _)| kept(*i))
            .map(|(_, s)| ((s.ns, s.name), s.clone()))
            .collect();
        services.extend(self.services.iter().map(|s| ((s.ns, s.name), s.clone())));
        let mut slices: BTreeMap<(usize, usize), SlcSpec> = spec
            .slices
            .iter()
            .enumerate()
            .filter(|(i, _)| kept(i + 8))
            .map(|(_, s)| ((s.ns, s.name), s.clone()))
            .collect();
        slices.extend(self.slices.iter().map(|s| ((s.ns, s.name), s.clone())));
        ClusterSpec {
            services: services.into_values().collect(),
            slices: slices.into_values().collect(),
        }
    }
}

fn views(cluster: usize, spec: &ClusterSpec) -> Vec<ServiceView> {
    let origin = origin_of(cluster);
    spec.services
        .iter()
        .map(|s| s.build().view(&origin))
        .collect()
}

fn sources(cluster: usize, spec: &ClusterSpec) -> Vec<SourceSlice> {
    let origin = origin_of(cluster);
    spec.slices
        .iter()
        .map(|s| s.build(cluster).source(&origin))
        .collect()
}

/// Each cluster's listings as resets, services first or slices first.
fn by_listings(index: &mut MeshIndex, mesh: &[ClusterSpec], slices_first: bool) -> Changes {
    let mut changes = Changes::default();
    for (cluster, spec) in mesh.iter().enumerate() {
        let origin = origin_of(cluster);
        if slices_first {
            changes.merge(index.reset_slices(&origin, sources(cluster, spec)));
            changes.merge(index.reset_services(&origin, views(cluster, spec)));
        } else {
            changes.merge(index.reset_services(&origin, views(cluster, spec)));
            changes.merge(index.reset_slices(&origin, sources(cluster, spec)));
        }
    }
    changes
}

/// The same objects as single events: deletions of what a listing lacks, then
/// one apply per object, in the listing's order.
fn by_events(index: &mut MeshIndex, mesh: &[ClusterSpec], slices_first: bool) -> Changes {
    let mut changes = Changes::default();
    for (cluster, spec) in mesh.iter().enumerate() {
        let origin = origin_of(cluster);
        let views = views(cluster, spec);
        let sources = sources(cluster, spec);
        let apply_services = |index: &mut MeshIndex, changes: &mut Changes| {
            let live: BTreeSet<&ServiceKey> = views.iter().map(|v| &v.key).collect();
            for ns in NAMESPACES {
                for name in NAMES {
                    let key = ServiceKey::new(origin.clone(), ns, name);
                    if !live.contains(&key) {
                        changes.merge(index.delete_service(&key));
                    }
                }
            }
            for view in views.clone() {
                changes.merge(index.apply_service(view));
            }
        };
        let apply_slices = |index: &mut MeshIndex, changes: &mut Changes| {
            let live: BTreeSet<&SliceKey> = sources.iter().map(|s| &s.key).collect();
            for ns in NAMESPACES {
                for (i, name) in NAMES.iter().enumerate().take(3) {
                    let key = SliceKey::new(origin.clone(), ns, &format!("{name}-{i}"));
                    if !live.contains(&key) {
                        changes.merge(index.delete_slice(&key));
                    }
                }
            }
            for source in sources.clone() {
                changes.merge(index.apply_slice(source));
            }
        };
        if slices_first {
            apply_slices(index, &mut changes);
            apply_services(index, &mut changes);
        } else {
            apply_services(index, &mut changes);
            apply_slices(index, &mut changes);
        }
    }
    changes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn listings_build_the_same_index_as_single_events(
        first in proptest::collection::vec(cluster_spec(), CLUSTERS.len()),
        edits in proptest::collection::vec(edit(), CLUSTERS.len()),
        slices_first in any::<bool>(),
    ) {
        // The first listings into an empty index, as when the controller starts.
        let mut listed = MeshIndex::new();
        let mut evented = MeshIndex::new();
        let listed_changes = by_listings(&mut listed, &first, slices_first);
        let evented_changes = by_events(&mut evented, &first, slices_first);
        prop_assert_eq!(&listed_changes, &evented_changes);
        let before = snapshot(&listed);
        prop_assert_eq!(&before, &snapshot(&evented));
        assert_changes_cover(&Snapshot::new(), &before, &listed_changes);

        // Relists with different contents: removals, changes and additions.
        let second: Vec<ClusterSpec> =
            first.iter().zip(&edits).map(|(spec, edit)| edit.apply(spec)).collect();
        let listed_changes = by_listings(&mut listed, &second, !slices_first);
        by_events(&mut evented, &second, !slices_first);
        let after = snapshot(&listed);
        prop_assert_eq!(&after, &snapshot(&evented));
        assert_changes_cover(&before, &after, &listed_changes);

        // And a relist of the same contents changes nothing.
        let again = by_listings(&mut listed, &second, slices_first);
        prop_assert!(again.is_empty(), "unchanged listings changed {:?}", again);
        prop_assert_eq!(&after, &snapshot(&listed));

        // Removing every cluster leaves nothing behind.
        for cluster in 0..CLUSTERS.len() {
            listed.remove_cluster(&origin_of(cluster));
        }
        prop_assert!(listed.federated_keys().is_empty());
        prop_assert_eq!(listed.service_count(), 0);
    }
}
