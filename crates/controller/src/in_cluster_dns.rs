//! In-cluster federation DNS (KubeDNS's federation queries): a member
//! cluster's federated Service copies, EndpointSlices and Nodes, watched
//! with the runtime's one watch adapter into core's [`InClusterIndex`]; what
//! changes in the records goes out as [`DnsChange`]s for a DNS server
//! (`fedmesh dns serve --in-cluster` applies them to `fedmesh_dns::Server`).
//!
//! While the member's API cannot be read, the last records stay: a pod's
//! local shard is as healthy as it was last seen, and the federation's
//! public names (where an unhealthy shard's CNAME leads) are kept by the
//! control plane, which marks an unreachable member Offline.

use fedmesh_core::dns::{DnsChange, InClusterChange, InClusterConfig, InClusterIndex};
use fedmesh_core::federation::FEDERATION_LABEL;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher;
use tokio::sync::mpsc;

use crate::runtime::watch::{self, MEMBER_WATCHES, MemberSeen, Progress, Signal, Update};

/// Watches the member `client` reaches and sends every change of its
/// in-cluster records to `changes`, until the receiver is dropped.
///
/// Nothing is sent until all three watches have listed once; the first
/// change is then the whole zone (every record upserted), and each later
/// one only what an event changed. Only Services with the federation label
/// are watched (the copies the federation control plane writes).
pub async fn run(client: kube::Client, config: InClusterConfig, changes: mpsc::Sender<DnsChange>) {
    let mut seen = std::pin::pin!(watch::member(
        client,
        watcher::Config::default().labels(FEDERATION_LABEL),
    ));
    let mut index = InClusterIndex::new(config);
    let mut listed = [false; 3];
    let mut started = false;
    while let Some(item) = seen.next().await {
        let (which, outcome) = match item {
            MemberSeen::Service(signal) => match *signal {
                Signal::Update(u) => (0, Ok(apply_services(&mut index, u))),
                Signal::Progress(p) => (0, Err(p)),
            },
            MemberSeen::Slice(signal) => match *signal {
                Signal::Update(u) => (1, Ok(apply_slices(&mut index, u))),
                Signal::Progress(p) => (1, Err(p)),
            },
            MemberSeen::Node(signal) => match *signal {
                Signal::Update(u) => (2, Ok(apply_nodes(&mut index, u))),
                Signal::Progress(p) => (2, Err(p)),
            },
        };
        let change = match outcome {
            Ok(change) => change,
            Err(progress) => {
                report(which, &progress);
                if progress == Progress::Listed {
                    listed[which] = true;
                }
                if started || !listed.iter().all(|l| *l) {
                    continue;
                }
                // Every watch has listed: the whole zone, once.
                started = true;
                let whole = DnsChange {
                    upserted: index.records().cloned().collect(),
                    removed: Vec::new(),
                };
                if changes.send(whole).await.is_err() {
                    return;
                }
                continue;
            }
        };
        for skipped in &change.skipped {
            tracing::warn!("{skipped}");
        }
        if started && !change.records.is_empty() && changes.send(change.records).await.is_err() {
            return;
        }
    }
}

fn report(which: usize, progress: &Progress) {
    let watch = MEMBER_WATCHES[which];
    match progress {
        Progress::Listed => tracing::debug!(watch, "listed"),
        Progress::Failed(failure) => tracing::warn!(
            watch,
            reason = %failure.reason,
            "cannot read the member's {watch}: {}; serving the last records until it can",
            failure.detail
        ),
        Progress::Recovered => tracing::info!(watch, "reading the member's {watch} again"),
    }
}

fn apply_services(index: &mut InClusterIndex, update: Update<Service>) -> InClusterChange {
    match update {
        Update::Reset(all) => index.reset_services(&all),
        Update::Apply(service) => index.apply_service(&service),
        Update::Delete(service) => index.delete_service(&service),
    }
}

fn apply_slices(index: &mut InClusterIndex, update: Update<EndpointSlice>) -> InClusterChange {
    match update {
        Update::Reset(all) => index.reset_slices(&all),
        Update::Apply(slice) => index.apply_slice(&slice),
        Update::Delete(slice) => index.delete_slice(&slice),
    }
}

fn apply_nodes(index: &mut InClusterIndex, update: Update<Node>) -> InClusterChange {
    match update {
        Update::Reset(all) => index.reset_nodes(&all),
        Update::Apply(node) => index.apply_node(&node),
        Update::Delete(node) => index.delete_node(&node),
    }
}
