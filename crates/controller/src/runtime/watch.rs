//! The one watch adapter every feature uses: kube-runtime's watcher, started
//! afresh (with a full listing) after every error, its Init…InitDone listing
//! turned into one complete reset (as kubert does), and how the watch is
//! doing reported beside the updates.
//!
//! [`signals`] is a plain stream combinator, so its bookkeeping is tested by
//! feeding it events, without an API server.

use std::fmt::Debug;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::watcher;
use serde::de::DeserializeOwned;

use super::errors::Failure;

/// What a watch saw, with listings made whole.
#[derive(Debug, Clone, PartialEq)]
pub enum Update<K> {
    /// Every object there is (after a list or relist).
    Reset(Vec<K>),
    /// An object was created or changed.
    Apply(K),
    /// An object was deleted.
    Delete(K),
}

/// How a watch is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A complete listing arrived (the `Reset` just before says what).
    Listed,
    /// The watch failed; kube-runtime retries with backoff.
    Failed(Failure),
    /// The watch delivered again after failing.
    Recovered,
}

/// One item of a watch: an update, or news of the watch itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal<K> {
    /// The objects changed.
    Update(Update<K>),
    /// The watch's health changed.
    Progress(Progress),
}

/// What one of a member cluster's three watches saw (see [`member`]);
/// boxed, as a Node is far larger than the rest.
pub enum MemberSeen {
    /// The Services watch.
    Service(Box<Signal<Service>>),
    /// The EndpointSlices watch.
    Slice(Box<Signal<EndpointSlice>>),
    /// The Nodes watch.
    Node(Box<Signal<Node>>),
}

/// The names of a member's three watches, in [`member`]'s order (0, 1, 2),
/// for logs and per-watch state.
pub const MEMBER_WATCHES: [&str; 3] = ["Services", "EndpointSlices", "Nodes"];

/// A member cluster's Services (those `services` selects), EndpointSlices
/// and Nodes, watched together: what both the federation control plane and
/// the in-cluster DNS read of a member (shards, their health and zones).
pub fn member(
    client: kube::Client,
    services: watcher::Config,
) -> impl Stream<Item = MemberSeen> + Send {
    let services = watch(Api::<Service>::all(client.clone()), services)
        .map(|s| MemberSeen::Service(Box::new(s)));
    let slices = watch(
        Api::<EndpointSlice>::all(client.clone()),
        watcher::Config::default(),
    )
    .map(|s| MemberSeen::Slice(Box::new(s)));
    let nodes = watch(Api::<Node>::all(client), watcher::Config::default())
        .map(|s| MemberSeen::Node(Box::new(s)));
    futures::stream::select(futures::stream::select(services, slices), nodes)
}

/// The first wait before a failed watch starts again; it doubles per
/// failure up to [`RESTART_MAX`] and is back to this after a listing.
const RESTART_FIRST: Duration = Duration::from_millis(200);
/// The longest wait between two starts of a failing watch. A cluster that
/// stays down is the ClusterSet's to notice (its probe ends the session and
/// these watches with it), so this only paces transient failures.
const RESTART_MAX: Duration = Duration::from_secs(5);

/// Watches `api` with `config`, as signals.
pub fn watch<K>(api: Api<K>, config: watcher::Config) -> impl Stream<Item = Signal<K>> + Send
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    signals(restarting(api, config))
}

/// kube-runtime's watcher, but after an error a new one (which lists
/// everything again) replaces it after a backoff. kube-runtime's own retry
/// resumes the watch from its resourceVersion, and a resumed watch on a quiet
/// cluster delivers nothing, so nothing would say that it works again: a
/// remote restarted on the same data would stay failed in the status. A
/// fresh listing both proves the watch healthy and replaces whatever was
/// missed.
fn restarting<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    struct Restarts<K: Clone + Send + 'static> {
        api: Api<K>,
        config: watcher::Config,
        current:
            Option<futures::stream::BoxStream<'static, Result<watcher::Event<K>, watcher::Error>>>,
        wait: Option<Duration>,
        backoff: Duration,
    }
    let start = Restarts {
        api,
        config,
        current: None,
        wait: None,
        backoff: RESTART_FIRST,
    };
    futures::stream::unfold(start, |mut state| async move {
        loop {
            if let Some(wait) = state.wait.take() {
                tokio::time::sleep(wait).await;
            }
            let current = state
                .current
                .get_or_insert_with(|| watcher(state.api.clone(), state.config.clone()).boxed());
            match current.next().await {
                Some(Ok(event)) => {
                    if matches!(event, watcher::Event::InitDone) {
                        state.backoff = RESTART_FIRST;
                    }
                    return Some((Ok(event), state));
                }
                Some(Err(error)) => {
                    state.current = None;
                    state.wait = Some(state.backoff);
                    state.backoff = (state.backoff * 2).min(RESTART_MAX);
                    return Some((Err(error), state));
                }
                // A watcher does not end; should one, start another.
                None => state.current = None,
            }
        }
    })
}

/// Turns a watcher's events into signals: the listing's objects are held
/// back until `InitDone` and then given as one `Reset`, followed by
/// `Progress::Listed`; an error gives `Progress::Failed`, and the first
/// delivery after it (a completed listing or a change, not the start of a
/// listing, which may fail again) `Progress::Recovered`.
pub fn signals<K, S>(events: S) -> impl Stream<Item = Signal<K>> + Send
where
    K: Send,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
{
    struct State<K> {
        listing: Vec<K>,
        failing: bool,
    }
    events
        .scan(
            State {
                listing: Vec::new(),
                failing: false,
            },
            |state, item| {
                let mut out = Vec::with_capacity(2);
                let delivered = matches!(
                    item,
                    Ok(watcher::Event::InitDone
                        | watcher::Event::Apply(_)
                        | watcher::Event::Delete(_))
                );
                if delivered && state.failing {
                    state.failing = false;
                    out.push(Signal::Progress(Progress::Recovered));
                }
                match item {
                    Ok(watcher::Event::Init) => state.listing.clear(),
                    Ok(watcher::Event::InitApply(object)) => state.listing.push(object),
                    Ok(watcher::Event::InitDone) => {
                        out.push(Signal::Update(Update::Reset(std::mem::take(
                            &mut state.listing,
                        ))));
                        out.push(Signal::Progress(Progress::Listed));
                    }
                    Ok(watcher::Event::Apply(object)) => {
                        out.push(Signal::Update(Update::Apply(object)))
                    }
                    Ok(watcher::Event::Delete(object)) => {
                        out.push(Signal::Update(Update::Delete(object)));
                    }
                    // The watch starts again with a listing; until that
                    // fails, the cluster is as healthy as before.
                    Err(error) if Failure::is_expiry(&error) => {
                        tracing::debug!("watch expired (410 Gone); listing again");
                    }
                    Err(error) => {
                        state.failing = true;
                        out.push(Signal::Progress(Progress::Failed(Failure::of_watch(
                            &error,
                        ))));
                    }
                }
                futures::future::ready(Some(futures::stream::iter(out)))
            },
        )
        .flatten()
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::runtime::watcher::{Error, Event};

    use super::*;

    fn cm(name: &str) -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm
    }

    async fn run(events: Vec<Result<Event<ConfigMap>, Error>>) -> Vec<Signal<ConfigMap>> {
        signals(futures::stream::iter(events)).collect().await
    }

    #[tokio::test]
    async fn a_listing_is_one_reset_then_listed() {
        let out = run(vec![
            Ok(Event::Init),
            Ok(Event::InitApply(cm("a"))),
            Ok(Event::InitApply(cm("b"))),
            Ok(Event::InitDone),
            Ok(Event::Apply(cm("c"))),
            Ok(Event::Delete(cm("a"))),
        ])
        .await;
        assert_eq!(
            out,
            vec![
                Signal::Update(Update::Reset(vec![cm("a"), cm("b")])),
                Signal::Progress(Progress::Listed),
                Signal::Update(Update::Apply(cm("c"))),
                Signal::Update(Update::Delete(cm("a"))),
            ]
        );
    }

    #[tokio::test]
    async fn a_relist_replaces_everything_and_a_broken_listing_is_dropped() {
        let out = run(vec![
            Ok(Event::Init),
            Ok(Event::InitApply(cm("old"))),
            // The listing broke off: a fresh one starts.
            Ok(Event::Init),
            Ok(Event::InitApply(cm("new"))),
            Ok(Event::InitDone),
        ])
        .await;
        assert_eq!(out[0], Signal::Update(Update::Reset(vec![cm("new")])));
    }

    #[tokio::test]
    async fn an_expired_watch_is_no_failure() {
        let expired =
            kube::core::Status::failure("too old resource version", "Expired").with_code(410);
        let out = run(vec![
            Ok(Event::Init),
            Ok(Event::InitDone),
            Err(Error::WatchError(Box::new(expired))),
            Ok(Event::Init),
            Ok(Event::InitApply(cm("a"))),
            Ok(Event::InitDone),
        ])
        .await;
        assert_eq!(
            out,
            vec![
                Signal::Update(Update::Reset(vec![])),
                Signal::Progress(Progress::Listed),
                Signal::Update(Update::Reset(vec![cm("a")])),
                Signal::Progress(Progress::Listed),
            ]
        );
    }

    #[tokio::test]
    async fn failures_are_reported_once_recovered() {
        let gone = || Err(Error::NoResourceVersion);
        let out = run(vec![
            gone(),
            // A listing that starts and fails again is no recovery.
            Ok(Event::Init),
            gone(),
            Ok(Event::Init),
            Ok(Event::InitDone),
        ])
        .await;
        assert!(matches!(out[0], Signal::Progress(Progress::Failed(_))));
        assert!(matches!(out[1], Signal::Progress(Progress::Failed(_))));
        assert_eq!(out[2], Signal::Progress(Progress::Recovered));
        assert_eq!(out[3], Signal::Update(Update::Reset(vec![])));
        assert_eq!(out[4], Signal::Progress(Progress::Listed));
        assert_eq!(out.len(), 5);
    }
}
