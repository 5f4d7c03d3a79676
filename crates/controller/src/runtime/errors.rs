//! Errors from a cluster's API server, sorted into the reasons a status can
//! show and told as sentences a user can act on.

use std::error::Error as StdError;

use fedmesh_core::remote::Reason;

/// The chain of an error's causes as one line ("a: b: c"), leaving out a
/// cause whose text the line already holds (kube repeats its sources).
pub fn chain(error: &dyn StdError) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = cause.source();
    }
    message
}

/// A failed request to a cluster, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What kind of failure.
    pub reason: Reason,
    /// What happened, as the API server or the network said it.
    pub detail: String,
}

impl Failure {
    /// Sorts a kube client error.
    pub fn of(error: &kube::Error) -> Failure {
        // kube's own text for an API error embeds a debug dump of the Status;
        // the Status's message and reason are what a person reads.
        let detail = match error {
            kube::Error::Api(status) => format!(
                "{} {}: {}",
                status.code,
                if status.reason.is_empty() {
                    "Error"
                } else {
                    &status.reason
                },
                status.message
            ),
            _ => chain(error),
        };
        let reason = match error {
            kube::Error::Api(status) => match status.code {
                401 => Reason::Unauthorized,
                403 => Reason::Forbidden,
                500..=599 => Reason::ServerError,
                _ => Reason::Unreachable,
            },
            _ if is_certificate(&detail) => Reason::CertificateChanged,
            _ if detail.contains("timed out") || detail.contains("deadline has elapsed") => {
                Reason::Timeout
            }
            _ => Reason::Unreachable,
        };
        Failure { reason, detail }
    }

    /// Sorts a watcher error (its kube error inside, when there is one).
    pub fn of_watch(error: &kube::runtime::watcher::Error) -> Failure {
        use kube::runtime::watcher::Error as W;
        match error {
            W::InitialListFailed(e) | W::WatchStartFailed(e) | W::WatchFailed(e) => Failure::of(e),
            W::WatchError(status) => Failure::of(&kube::Error::Api(status.clone())),
            W::NoResourceVersion => Failure {
                reason: Reason::ServerError,
                detail: chain(error),
            },
        }
    }

    /// Whether a watch error only says that its resourceVersion is too old
    /// (410 Gone, `Expired`): the normal end of a watch on a compacted
    /// history, answered by listing again, not a fault of the cluster.
    pub fn is_expiry(error: &kube::runtime::watcher::Error) -> bool {
        use kube::runtime::watcher::Error as W;
        match error {
            W::InitialListFailed(e) | W::WatchStartFailed(e) | W::WatchFailed(e) => {
                matches!(e, kube::Error::Api(status) if status.code == 410)
            }
            W::WatchError(status) => status.code == 410,
            W::NoResourceVersion => false,
        }
    }

    /// A request that got no answer within `after`.
    pub fn timeout(after: std::time::Duration) -> Failure {
        Failure {
            reason: Reason::Timeout,
            detail: format!("no answer within {} ms", after.as_millis()),
        }
    }

    /// Whether the failure will not go away by retrying with the same
    /// credentials (so one is enough to act on).
    pub fn is_definite(&self) -> bool {
        matches!(
            self.reason,
            Reason::Unauthorized | Reason::Forbidden | Reason::CertificateChanged
        )
    }

    /// The failure as a status message about the cluster reached through the
    /// Secret `secret`: what happened, and what to do about it.
    pub fn sentence(&self, secret: &str) -> String {
        let detail = &self.detail;
        match self.reason {
            Reason::Unauthorized => format!(
                "The remote cluster rejected the credentials in secret {secret} (401 Unauthorized): \
                 its token was revoked or has expired. Run `fedmesh join` again to issue new ones. \
                 ({detail})"
            ),
            Reason::Forbidden => format!(
                "The credentials in secret {secret} may not read what fedmesh needs in the remote \
                 cluster (403 Forbidden). Run `fedmesh join` again to restore its read-only role. \
                 ({detail})"
            ),
            Reason::CertificateChanged => format!(
                "The remote API server's certificate is not signed by the CA in secret {secret}: \
                 the remote cluster was rebuilt or its CA rotated. Run `fedmesh join` again to \
                 refresh the secret. ({detail})"
            ),
            Reason::Timeout => format!(
                "The remote API server accepted the connection but did not answer in time; it \
                 may be overloaded or hung. fedmesh keeps retrying. ({detail})"
            ),
            Reason::ServerError => format!(
                "The remote API server answered with an error; fedmesh keeps retrying. ({detail})"
            ),
            _ => format!(
                "The remote API server cannot be reached; fedmesh keeps retrying. ({detail})"
            ),
        }
    }
}

fn is_certificate(detail: &str) -> bool {
    [
        "invalid peer certificate",
        "UnknownIssuer",
        "BadSignature",
        "certificate verify",
    ]
    .iter()
    .any(|needle| detail.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: "nope".into(),
            reason: "Whatever".into(),
            ..Default::default()
        }))
    }

    #[test]
    fn status_codes_become_reasons() {
        assert_eq!(Failure::of(&api(401)).reason, Reason::Unauthorized);
        assert_eq!(Failure::of(&api(403)).reason, Reason::Forbidden);
        assert_eq!(Failure::of(&api(500)).reason, Reason::ServerError);
        assert_eq!(Failure::of(&api(503)).reason, Reason::ServerError);
        assert!(Failure::of(&api(401)).is_definite());
        assert!(!Failure::of(&api(500)).is_definite());
    }

    #[test]
    fn sentences_say_what_to_do_without_debug_dumps() {
        let failure = Failure::of(&api(401));
        let text = failure.sentence("fedmesh/remote-a");
        assert!(text.contains("secret fedmesh/remote-a"), "{text}");
        assert!(text.contains("Run `fedmesh join` again"), "{text}");
        assert!(!text.contains("Status {"), "{text}");
        assert!(!text.contains("Api("), "{text}");
    }

    #[test]
    fn certificate_failures_are_recognised_in_the_cause_chain() {
        assert!(is_certificate(
            "client error (Connect): invalid peer certificate: BadSignature"
        ));
        assert!(!is_certificate("connection refused"));
    }
}
