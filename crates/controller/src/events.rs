//! Warning Events on Services, so `kubectl describe service` shows what is
//! wrong with a federation annotation.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::mpsc;

use crate::engine::ServiceWarning;

/// Publishes each warning as an Event on its Service, while `leading` says so.
pub async fn run(
    client: kube::Client,
    identity: String,
    mut warnings: mpsc::Receiver<ServiceWarning>,
    leading: tokio::sync::watch::Receiver<bool>,
) {
    let recorder = Recorder::new(
        client,
        Reporter {
            controller: "fedmesh-controller".into(),
            instance: Some(identity),
        },
    );
    while let Some(warning) = warnings.recv().await {
        if !*leading.borrow() {
            continue;
        }
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Service".into()),
            namespace: Some(warning.service.namespace.to_string()),
            name: Some(warning.service.name.to_string()),
            ..ObjectReference::default()
        };
        let event = Event {
            type_: EventType::Warning,
            reason: warning.reason.into(),
            note: Some(warning.message.chars().take(1000).collect()),
            action: "Federate".into(),
            secondary: None,
        };
        if let Err(error) = recorder.publish(&event, &reference).await {
            tracing::warn!(%error, service = %warning.service, "publishing a warning event failed");
        }
    }
}
