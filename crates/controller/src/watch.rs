//! One watch stack for every kind: kube-runtime's watcher with backoff, its
//! Init…InitDone listing turned into one complete reset (as kubert does), and
//! progress reported for status and readiness.

use std::collections::HashMap;
use std::fmt::Debug;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::engine::IndexEvent;

/// What a watch saw, with listings made whole.
#[derive(Debug)]
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
    /// A complete listing arrived, weighing this much (objects, or endpoints).
    Listed(usize),
    /// The watch failed; it retries with backoff.
    Failed(String),
    /// The watch works again after failing.
    Recovered,
    /// A watch event changed the total weight to this.
    Counted(usize),
}

/// Watches `api` until the index is gone, turning updates into index events
/// with `to_event` and reporting progress to `progress`, with each listing
/// weighed by `weight`.
pub async fn pump<K>(
    api: Api<K>,
    config: watcher::Config,
    events: mpsc::Sender<IndexEvent>,
    to_event: impl Fn(Update<K>) -> Option<IndexEvent>,
    weight: impl Fn(&K) -> usize,
    mut progress: impl FnMut(Progress),
) where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut stream = watcher(api, config).default_backoff().boxed();
    let mut listing: Vec<K> = Vec::new();
    let mut failing = false;
    // The weight of every object, to keep the total current between listings.
    let mut weights: HashMap<(Option<String>, Option<String>), usize> = HashMap::new();
    let mut total = 0;
    while let Some(item) = stream.next().await {
        if item.is_ok() && failing {
            failing = false;
            progress(Progress::Recovered);
        }
        let update = match item {
            Ok(watcher::Event::Init) => {
                listing.clear();
                continue;
            }
            Ok(watcher::Event::InitApply(object)) => {
                listing.push(object);
                continue;
            }
            Ok(watcher::Event::InitDone) => {
                weights = listing.iter().map(|o| (object_key(o), weight(o))).collect();
                total = weights.values().sum();
                progress(Progress::Listed(total));
                Update::Reset(std::mem::take(&mut listing))
            }
            Ok(watcher::Event::Apply(object)) => {
                let old = weights
                    .insert(object_key(&object), weight(&object))
                    .unwrap_or(0);
                let new = total + weight(&object) - old;
                if new != total {
                    total = new;
                    progress(Progress::Counted(total));
                }
                Update::Apply(object)
            }
            Ok(watcher::Event::Delete(object)) => {
                if let Some(old) = weights.remove(&object_key(&object)) {
                    total -= old;
                    progress(Progress::Counted(total));
                }
                Update::Delete(object)
            }
            Err(error) => {
                failing = true;
                progress(Progress::Failed(error_message(&error)));
                continue;
            }
        };
        if let Some(event) = to_event(update)
            && events.send(event).await.is_err()
        {
            return;
        }
    }
}

fn object_key<K: kube::Resource>(object: &K) -> (Option<String>, Option<String>) {
    (object.meta().namespace.clone(), object.meta().name.clone())
}

/// The most useful message in a watcher error: the API server's own when it gave one.
fn error_message(error: &watcher::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}
