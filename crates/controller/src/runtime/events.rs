//! Warning Events, so `kubectl describe` shows what is wrong with an object
//! fedmesh reads (a federation annotation, a RemoteClusterConfiguration),
//! and the Normal Event that says a reported problem is over.

use fedmesh_core::FederatedKey;
use k8s_openapi::api::core::v1::ObjectReference;
pub use kube::runtime::events::EventType;
use kube::runtime::events::{Event, Recorder, Reporter};
use tokio::sync::mpsc;

use super::claim::Claim;
use super::errors::chain;

/// A problem to publish as a Warning Event (or, [`Warning::normal`], its
/// end as a Normal one).
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// Warning for a problem, Normal for the end of one.
    pub type_: EventType,
    /// The object concerned.
    pub regarding: ObjectReference,
    /// CamelCase reason.
    pub reason: String,
    /// What is wrong and what to do, as a sentence.
    pub note: String,
}

impl Warning {
    /// A warning about a Service.
    pub fn on_service(service: &FederatedKey, reason: &str, note: &str) -> Self {
        Self {
            type_: EventType::Warning,
            regarding: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Service".into()),
                namespace: Some(service.namespace.to_string()),
                name: Some(service.name.to_string()),
                ..ObjectReference::default()
            },
            reason: reason.into(),
            note: note.into(),
        }
    }

    /// A warning about the coordination Lease `namespace/name` (the object
    /// that stands for a leader-only writer such as the DNS provider's).
    pub fn on_lease(namespace: &str, name: &str, reason: &str, note: &str) -> Self {
        Self {
            type_: EventType::Warning,
            regarding: ObjectReference {
                api_version: Some("coordination.k8s.io/v1".into()),
                kind: Some("Lease".into()),
                namespace: Some(namespace.into()),
                name: Some(name.into()),
                ..ObjectReference::default()
            },
            reason: reason.into(),
            note: note.into(),
        }
    }

    /// As a Normal Event: the end of a problem told before.
    pub fn normal(self) -> Self {
        Self {
            type_: EventType::Normal,
            ..self
        }
    }
}

/// Publishes each warning as an Event while the claim is current (a
/// replica that does not lead stays silent, so each problem is told once).
pub async fn run(
    client: kube::Client,
    controller: &'static str,
    identity: String,
    mut warnings: mpsc::Receiver<Warning>,
    claim: Claim,
) {
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: controller.into(),
            instance: Some(identity),
        },
    );
    while let Some(warning) = warnings.recv().await {
        if !claim.is_current() {
            continue;
        }
        let event = Event {
            type_: warning.type_,
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
}
