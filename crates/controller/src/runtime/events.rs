//! Warning Events, so `kubectl describe` shows what is wrong with an object
//! fedmesh reads (a federation annotation, a RemoteClusterConfiguration),
//! and the Normal Event that says a reported problem is over.
//!
//! Only the leader publishes, so that each problem is told by one replica.
//! Every replica runs the features, and a feature tells a problem when it
//! sees it, usually once: a problem seen before this replica leads (listed
//! at start before the Lease is taken, or on a standby before a failover)
//! would never be told if it were dropped. So the rule is:
//!
//! - While this replica does not lead, the latest Warning per object and
//!   reason waits (at most [`PENDING_MAX`]; when full the oldest goes, and
//!   that is logged once per spell without the Lease).
//! - The end of a problem (a Normal Event made by [`Warning::over`]) takes
//!   the Warning it ends (same object and reason) out of what waits instead
//!   of being published: a problem that ended while this replica did not
//!   lead is not told at all, neither begun nor ended. So does a word that
//!   the object is gone ([`Warning::gone`], never published).
//! - When the claim becomes current, what waits is published, oldest first;
//!   from then on each Warning and Normal is published as it comes.
//!
//! So whoever leads tells each problem still there, a new leader again the
//! ones the old one told (better twice than never), and nothing about a
//! problem that ended first. That holds for the features that say when a
//! problem they told ends or its object goes: the mesh, federation and DNS
//! features do. The remote-cluster refusals and endpoint identity's missing
//! resource are told only while the claim is current, by their own check.

use std::collections::{BTreeMap, HashMap};

use fedmesh_core::FederatedKey;
use k8s_openapi::api::core::v1::ObjectReference;
pub use kube::runtime::events::EventType;
use kube::runtime::events::{Event, Recorder, Reporter};
use tokio::sync::mpsc;

use super::claim::Claim;
use super::errors::chain;

/// How many Warnings wait at most while this replica does not lead: enough
/// for every problem of a large cluster, small enough to bound the memory
/// and the burst of Events published when it starts leading.
pub const PENDING_MAX: usize = 1_000;

/// A problem to publish as a Warning Event (or, made by [`Warning::over`],
/// its end as a Normal one).
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// The object concerned.
    pub regarding: ObjectReference,
    /// CamelCase reason.
    pub reason: String,
    /// What is wrong and what to do, as a sentence.
    pub note: String,
    /// For the end of a problem, how it ends (and the Warning it ends).
    ends: Option<End>,
}

/// How a message ends a problem told before: by the reason of its Warning.
#[derive(Debug, Clone, PartialEq)]
enum End {
    /// The problem is over, which a Normal Event says.
    Over(String),
    /// The object is gone: nothing to publish about it.
    Gone(String),
}

impl Warning {
    /// A warning about `regarding`.
    pub fn new(regarding: ObjectReference, reason: &str, note: impl Into<String>) -> Self {
        Self {
            regarding,
            reason: reason.into(),
            note: note.into(),
            ends: None,
        }
    }

    /// A warning about a Service.
    pub fn on_service(service: &FederatedKey, reason: &str, note: &str) -> Self {
        Self::new(
            ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Service".into()),
                namespace: Some(service.namespace.to_string()),
                name: Some(service.name.to_string()),
                ..ObjectReference::default()
            },
            reason,
            note,
        )
    }

    /// A warning about the coordination Lease `namespace/name` (the object
    /// that stands for a leader-only writer such as the DNS provider's).
    pub fn on_lease(namespace: &str, name: &str, reason: &str, note: &str) -> Self {
        Self::new(
            ObjectReference {
                api_version: Some("coordination.k8s.io/v1".into()),
                kind: Some("Lease".into()),
                namespace: Some(namespace.into()),
                name: Some(name.into()),
                ..ObjectReference::default()
            },
            reason,
            note,
        )
    }

    /// The Normal Event `reason` that says this warning's problem is over
    /// (`note` says how); it ends this warning's reason on the same object.
    pub fn over(self, reason: &str, note: &str) -> Self {
        Self {
            regarding: self.regarding,
            reason: reason.into(),
            note: note.into(),
            ends: Some(End::Over(self.reason)),
        }
    }

    /// Says that this warning's object is gone: published as nothing, it
    /// only keeps a replica that does not lead from telling the problem
    /// later (an Event about a deleted object helps nobody).
    pub fn gone(self) -> Self {
        Self {
            ends: Some(End::Gone(self.reason.clone())),
            ..self
        }
    }

    /// Warning for a problem, Normal for the end of one, nothing for an
    /// object gone.
    fn published_as(&self) -> Option<EventType> {
        match self.ends {
            None => Some(EventType::Warning),
            Some(End::Over(_)) => Some(EventType::Normal),
            Some(End::Gone(_)) => None,
        }
    }
}

/// An object as Events regard it, comparable (`ObjectReference` is not).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Object {
    api_version: Option<String>,
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
}

impl Object {
    fn of(regarding: &ObjectReference) -> Self {
        Self {
            api_version: regarding.api_version.clone(),
            kind: regarding.kind.clone(),
            namespace: regarding.namespace.clone(),
            name: regarding.name.clone(),
        }
    }
}

/// The Warnings that wait for this replica to lead: the latest per object
/// and reason, in the order they came, at most `max`.
#[derive(Debug)]
struct Pending {
    max: usize,
    /// Where each (object, reason) is in `order`.
    at: HashMap<(Object, String), u64>,
    /// The waiting Warnings by arrival.
    order: BTreeMap<u64, Warning>,
    next: u64,
    /// Whether the oldest were dropped since what waits was last emptied.
    overflowed: bool,
}

impl Pending {
    fn new(max: usize) -> Self {
        Self {
            max,
            at: HashMap::new(),
            order: BTreeMap::new(),
            next: 0,
            overflowed: false,
        }
    }

    /// Keeps a Warning (replacing an older one of its object and reason),
    /// or, for the end of a problem, drops the Warning it ends.
    fn keep(&mut self, warning: Warning) {
        let object = Object::of(&warning.regarding);
        if let Some(End::Over(ends) | End::Gone(ends)) = &warning.ends {
            if let Some(at) = self.at.remove(&(object, ends.clone())) {
                self.order.remove(&at);
            }
            return;
        }
        let key = (object, warning.reason.clone());
        if let Some(at) = self.at.remove(&key) {
            self.order.remove(&at);
        }
        if self.order.len() >= self.max
            && let Some((_, oldest)) = self.order.pop_first()
        {
            self.at
                .remove(&(Object::of(&oldest.regarding), oldest.reason));
            if !self.overflowed {
                self.overflowed = true;
                tracing::warn!(
                    max = self.max,
                    "more problems wait for this replica to lead than are kept; the oldest are not told"
                );
            }
        }
        self.at.insert(key, self.next);
        self.order.insert(self.next, warning);
        self.next += 1;
    }

    /// The oldest waiting Warning, taken out.
    fn take(&mut self) -> Option<Warning> {
        let (_, warning) = self.order.pop_first()?;
        self.at
            .remove(&(Object::of(&warning.regarding), warning.reason.clone()));
        if self.order.is_empty() {
            self.overflowed = false;
        }
        Some(warning)
    }
}

/// Publishes each warning as an Event while the claim is current, and keeps
/// the ones told meanwhile to publish when it becomes current (the module's
/// rule).
pub async fn run(
    client: kube::Client,
    controller: &'static str,
    identity: String,
    warnings: mpsc::Receiver<Warning>,
    claim: Claim,
) {
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: controller.into(),
            instance: Some(identity),
        },
    );
    relay(warnings, claim, PENDING_MAX, |warning| {
        let recorder = &recorder;
        async move { publish(recorder, &warning).await }
    })
    .await;
}

/// [`run`]'s rule, with `publish` for the Event API: until every sender of
/// `warnings` is gone.
async fn relay<F, Fut>(
    mut warnings: mpsc::Receiver<Warning>,
    mut claim: Claim,
    max: usize,
    mut publish: F,
) where
    F: FnMut(Warning) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut pending = Pending::new(max);
    loop {
        // What waits goes first, also when a warning comes in before the
        // claim's change is seen.
        while claim.is_current()
            && let Some(warning) = pending.take()
        {
            publish(warning).await;
        }
        tokio::select! {
            warning = warnings.recv() => {
                let Some(warning) = warning else { return };
                if claim.is_current() {
                    if warning.published_as().is_some() {
                        publish(warning).await;
                    }
                } else {
                    pending.keep(warning);
                }
            }
            () = claim.changed() => {}
        }
    }
}

async fn publish(recorder: &Recorder, warning: &Warning) {
    let Some(type_) = warning.published_as() else {
        return;
    };
    let event = Event {
        type_,
        reason: warning.reason.clone(),
        // Kubernetes caps an Event's note at 1 kB.
        note: Some(warning.note.chars().take(1000).collect()),
        action: "Federate".into(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, &warning.regarding).await {
        tracing::warn!(object = ?warning.regarding.name, "publishing a warning event failed: {}", chain(&error));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::watch;
    use tokio::time::Instant;

    use super::*;

    fn service(name: &str) -> FederatedKey {
        FederatedKey {
            namespace: "default".into(),
            name: name.into(),
        }
    }

    fn warning(name: &str, reason: &str, note: &str) -> Warning {
        Warning::on_service(&service(name), reason, note)
    }

    fn reasons(pending: &mut Pending) -> Vec<(String, String)> {
        std::iter::from_fn(|| pending.take())
            .map(|w| (w.regarding.name.unwrap_or_default(), w.note))
            .collect()
    }

    #[test]
    fn the_latest_warning_per_object_and_reason_waits_in_order() {
        let mut pending = Pending::new(10);
        pending.keep(warning("a", "InvalidServiceSelector", "first"));
        pending.keep(warning("b", "InvalidServiceSelector", "b"));
        pending.keep(warning("a", "InvalidDNSRecords", "dns"));
        pending.keep(warning("a", "InvalidServiceSelector", "second"));
        assert_eq!(
            reasons(&mut pending),
            [("b", "b"), ("a", "dns"), ("a", "second")].map(|(o, n)| (o.into(), n.into()))
        );
    }

    #[test]
    fn the_end_of_a_problem_drops_only_the_warning_it_ends() {
        let mut pending = Pending::new(10);
        pending.keep(warning("a", "InvalidServiceSelector", "selector"));
        pending.keep(warning("a", "InvalidDNSRecords", "dns"));
        pending.keep(warning("b", "InvalidDNSRecords", "other"));
        pending.keep(warning("a", "InvalidDNSRecords", "").over("DNSRecordsValid", "fixed"));
        assert_eq!(
            reasons(&mut pending),
            [("a", "selector"), ("b", "other")].map(|(o, n)| (o.into(), n.into())),
            "the Normal itself is not kept either"
        );
    }

    #[test]
    fn when_full_the_oldest_goes() {
        let mut pending = Pending::new(2);
        for name in ["a", "b", "c"] {
            pending.keep(warning(name, "InvalidServiceSelector", name));
        }
        assert!(pending.overflowed);
        assert_eq!(
            reasons(&mut pending),
            [("b", "b"), ("c", "c")].map(|(o, n)| (o.into(), n.into()))
        );
        assert!(!pending.overflowed, "logged again next time");
    }

    /// Runs `relay` with a claim not current; returns the warnings' sender,
    /// the claim's, and what is published.
    fn relay_not_leading() -> (
        mpsc::Sender<Warning>,
        watch::Sender<Option<Instant>>,
        mpsc::UnboundedReceiver<Warning>,
    ) {
        let (tx, rx) = mpsc::channel(16);
        let (claim_tx, claim_rx) = watch::channel(None);
        let (published_tx, published) = mpsc::unbounded_channel();
        tokio::spawn(relay(rx, Claim::new(claim_rx), 10, move |w| {
            let _ = published_tx.send(w);
            std::future::ready(())
        }));
        (tx, claim_tx, published)
    }

    /// The next Warning published, failing after a while (paused time).
    async fn next(published: &mut mpsc::UnboundedReceiver<Warning>) -> Warning {
        tokio::time::timeout(Duration::from_secs(5), published.recv())
            .await
            .expect("a warning published within 5 s")
            .expect("the relay runs")
    }

    #[tokio::test(start_paused = true)]
    async fn what_was_told_before_leading_is_published_on_taking_the_lease() {
        let (tx, claim, mut published) = relay_not_leading();
        tx.send(warning("bad", "InvalidServiceSelector", "run == "))
            .await
            .unwrap();
        tx.send(warning("gone", "InvalidDNSRecords", "no zone"))
            .await
            .unwrap();
        tx.send(warning("gone", "InvalidDNSRecords", "").over("DNSRecordsValid", "served"))
            .await
            .unwrap();
        tx.send(warning("deleted", "InvalidServiceSelector", "run == "))
            .await
            .unwrap();
        tx.send(warning("deleted", "InvalidServiceSelector", "").gone())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            published.try_recv().is_err(),
            "a replica that does not lead is silent"
        );

        claim.send_replace(Some(Instant::now() + Duration::from_secs(10)));
        let told = next(&mut published).await;
        assert_eq!(told.regarding.name.as_deref(), Some("bad"));
        assert_eq!(told.published_as(), Some(EventType::Warning));
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            published.try_recv().is_err(),
            "a problem that ended meanwhile, or whose object went, is not told"
        );

        // Leading: each is published as it comes, Normal ones too, and an
        // object gone is not.
        tx.send(warning("deleted", "InvalidServiceSelector", "").gone())
            .await
            .unwrap();
        tx.send(warning("gone", "InvalidDNSRecords", "no zone"))
            .await
            .unwrap();
        tx.send(warning("gone", "InvalidDNSRecords", "").over("DNSRecordsValid", "served"))
            .await
            .unwrap();
        assert_eq!(next(&mut published).await.note, "no zone");
        assert_eq!(
            next(&mut published).await.published_as(),
            Some(EventType::Normal)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn what_is_told_after_the_claim_ran_out_waits_for_the_next() {
        let (tx, claim, mut published) = relay_not_leading();
        claim.send_replace(Some(Instant::now() + Duration::from_secs(10)));
        tokio::time::sleep(Duration::from_secs(11)).await;
        tx.send(warning("late", "InvalidServiceSelector", "x"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(published.try_recv().is_err(), "the claim ran out");
        claim.send_replace(Some(Instant::now() + Duration::from_secs(10)));
        assert_eq!(
            next(&mut published).await.regarding.name.as_deref(),
            Some("late")
        );
    }
}
