//! The far side of a join: the identity fedmesh uses in a cluster it reaches
//! (a ServiceAccount bound to a ClusterRole), and a token for it. `fedmesh
//! join` makes the read-only reader; `fedmesh federation join` the member
//! identity that propagates Services.

use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

use super::JoinOptions;
use crate::cli::apply::{Applier, Kind, Report};
use crate::cli::connect::Cluster;

/// Name of the ServiceAccount, ClusterRole and ClusterRoleBinding.
pub(crate) const READER: &str = "fedmesh-remote-reader";

/// A ServiceAccount fedmesh creates in a cluster it reaches, bound to a
/// ClusterRole of the same name with these rules.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// Name of the ServiceAccount, ClusterRole and ClusterRoleBinding.
    pub(crate) name: &'static str,
    /// The ClusterRole's rules.
    pub(crate) rules: Value,
}

impl Identity {
    /// The read-only identity of `fedmesh join`.
    pub(crate) fn reader() -> Self {
        Identity {
            name: READER,
            rules: reader_rules(),
        }
    }

    /// Name of the legacy token Secret, on clusters without TokenRequest.
    fn legacy_token_secret(&self) -> String {
        format!("{}-token", self.name)
    }
}

/// A cluster fedmesh reaches, and how lines name it ("remote cluster west").
pub(crate) struct Target<'a> {
    /// The cluster.
    pub(crate) cluster: &'a Cluster,
    /// How report lines name it.
    pub(crate) place: String,
}

/// How long a requested token lives (a year; clusters may cap it lower).
const TOKEN_SECONDS: i64 = 365 * 24 * 3600;

/// A token already in use is kept while it has at least this long to live.
const TOKEN_REUSE_MARGIN: i64 = 30 * 24 * 3600;

/// What the remote's access kubeconfig authenticates with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    /// A bearer token of the reader ServiceAccount.
    Token(String),
    /// Nothing: the remote authenticates nobody (an embedded server without
    /// authentication), so there is no token to get.
    Anonymous,
}

/// What the reader may do: read what federation and endpoint identity need,
/// and nothing else.
pub(crate) fn reader_rules() -> Value {
    let read = json!(["get", "list", "watch"]);
    json!([
        {"apiGroups": [""], "resources": ["services", "endpoints", "pods", "nodes", "namespaces", "serviceaccounts"], "verbs": read},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
        {"apiGroups": ["crd.projectcalico.org"], "resources": ["hostendpoints"], "verbs": read},
        {"apiGroups": ["projectcalico.org"], "resources": ["hostendpoints"], "verbs": read},
    ])
}

/// Creates or updates the namespace, ServiceAccount, ClusterRole and binding.
pub(crate) async fn ensure_identity(
    target: &Target<'_>,
    identity: &Identity,
    namespace: &str,
    report: Report<'_>,
) -> anyhow::Result<()> {
    let applier = Applier::new(target.cluster.client.clone(), target.place.clone(), report);
    let name = identity.name;
    let labels = json!({"app.kubernetes.io/managed-by": "fedmesh-join"});
    applier
        .ensure(
            &Kind::cluster::<Namespace>(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        )
        .await?;
    applier
        .ensure(
            &Kind::namespaced::<ServiceAccount>(),
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": name, "namespace": namespace, "labels": labels}}),
        )
        .await?;
    applier
        .ensure(
            &Kind::cluster::<ClusterRole>(),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                   "metadata": {"name": name, "labels": labels},
                   "rules": identity.rules}),
        )
        .await?;
    applier
        .ensure(
            &Kind::cluster::<ClusterRoleBinding>(),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                   "metadata": {"name": name, "labels": labels},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                   "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]}),
        )
        .await?;
    Ok(())
}

/// The credential for the access kubeconfig: the one `existing` holds while
/// it still works and lives long enough (so a second join changes nothing),
/// else a new token from TokenRequest, else from a legacy token Secret.
pub(crate) async fn credential(
    target: &Target<'_>,
    identity: &Identity,
    namespace: &str,
    existing: Option<&str>,
    options: &JoinOptions,
    report: Report<'_>,
) -> anyhow::Result<Credential> {
    let (remote, place) = (target.cluster, &target.place);
    let account = format!("{namespace}/{}", identity.name);
    if let Some(existing) = existing
        && let Some(credential) = reusable(remote, namespace, existing).await
    {
        report(&match credential {
            Credential::Token(_) => format!(
                "unchanged token of ServiceAccount {account} in {place} (the access Secret's token still works)"
            ),
            Credential::Anonymous => {
                format!("unchanged credentials for {place}: none (it still authenticates nobody)")
            }
        });
        return Ok(credential);
    }
    let accounts = Api::<ServiceAccount>::namespaced(remote.client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(TOKEN_SECONDS),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    match accounts
        .create_token_request(identity.name, &PostParams::default(), &request)
        .await
    {
        Ok(issued) => {
            let token = issued
                .status
                .map(|s| s.token)
                .filter(|t| !t.is_empty())
                .context("the remote answered the TokenRequest without a token")?;
            let until = expiry(&token).map_or_else(String::new, |e| format!(" (expires {e})"));
            report(&format!(
                "created token for ServiceAccount {account} in {place}{until}"
            ));
            Ok(Credential::Token(token))
        }
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 405 => {
            if !remote.has_credentials {
                report(&format!(
                    "warning: {place} serves no TokenRequest and answers requests without credentials \
                     (an embedded server without authentication): its access kubeconfig carries no token \
                     and is only as restricted as the server makes it"
                ));
                return Ok(Credential::Anonymous);
            }
            legacy_token(target, identity, namespace, options.token_timeout, report).await
        }
        Err(error) => Err(error).with_context(|| {
            format!("cannot request a token for ServiceAccount {account} in {place}")
        }),
    }
}

/// Clusters without TokenRequest fill in a `kubernetes.io/service-account-token`
/// Secret instead.
async fn legacy_token(
    target: &Target<'_>,
    identity: &Identity,
    namespace: &str,
    timeout: Duration,
    report: Report<'_>,
) -> anyhow::Result<Credential> {
    let (remote, place) = (target.cluster, &target.place);
    let applier = Applier::new(remote.client.clone(), place.clone(), report);
    let secret_name = identity.legacy_token_secret();
    applier
        .ensure(
            &Kind::namespaced::<Secret>(),
            json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
                   "metadata": {"name": secret_name, "namespace": namespace,
                                "annotations": {"kubernetes.io/service-account.name": identity.name}}}),
        )
        .await?;
    let secrets = Api::<Secret>::namespaced(remote.client.clone(), namespace);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let secret = secrets
            .get(&secret_name)
            .await
            .with_context(|| format!("cannot read Secret {namespace}/{secret_name} in {place}"))?;
        if let Some(token) = secret
            .data
            .as_ref()
            .and_then(|d| d.get("token"))
            .and_then(|t| String::from_utf8(t.0.clone()).ok())
            .filter(|t| !t.is_empty())
        {
            return Ok(Credential::Token(token));
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{place} serves no TokenRequest and did not fill in token Secret {namespace}/{secret_name} within {}s",
            timeout.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The credential of an existing access kubeconfig, if it reaches `remote`'s
/// server, can still list services there, and does not expire soon.
async fn reusable(remote: &Cluster, namespace: &str, kubeconfig: &str) -> Option<Credential> {
    let parsed = kube::config::Kubeconfig::from_yaml(kubeconfig).ok()?;
    let context = parsed.current_context.clone()?;
    // Read as plain data: kube keeps tokens behind a secrecy wrapper.
    let raw: Value = serde_saphyr::from_str(kubeconfig).ok()?;
    let token = raw["users"][0]["user"]["token"].as_str().map(str::to_owned);
    let server = raw["clusters"][0]["cluster"]["server"].as_str()?;
    if server != remote.endpoint.server {
        return None;
    }
    let credential = match token {
        Some(token) => {
            let exp = expiry_seconds(&token);
            let now = k8s_openapi::jiff::Timestamp::now().as_second();
            if exp.is_some_and(|exp| exp - now < TOKEN_REUSE_MARGIN) {
                return None;
            }
            Credential::Token(token)
        }
        // A tokenless kubeconfig stays right only while the remote still
        // authenticates nobody.
        None if !remote.has_credentials => Credential::Anonymous,
        None => return None,
    };
    let cluster = Cluster::from_kubeconfig(parsed, None, Some(&context))
        .await
        .ok()?;
    let works = tokio::time::timeout(
        Duration::from_secs(10),
        Api::<Service>::namespaced(cluster.client, namespace).list(&ListParams::default().limit(1)),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    works.then_some(credential)
}

/// A JWT's `exp` claim, in seconds since the epoch.
fn expiry_seconds(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["exp"].as_i64()
}

/// A JWT's expiry as a timestamp, for messages.
fn expiry(token: &str) -> Option<String> {
    let seconds = expiry_seconds(token)?;
    k8s_openapi::jiff::Timestamp::from_second(seconds)
        .ok()
        .map(|t| t.to_string())
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    #[test]
    fn expiry_is_read_from_the_jwt_payload() {
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":1893456000}"#);
        let token = format!("header.{payload}.signature");
        assert_eq!(expiry_seconds(&token), Some(1_893_456_000));
        assert_eq!(expiry(&token).as_deref(), Some("2030-01-01T00:00:00Z"));
        assert_eq!(expiry_seconds("not-a-jwt"), None);
    }

    #[test]
    fn the_reader_role_matches_the_manifest_for_joining_by_hand() {
        let docs: Vec<Value> = serde_saphyr::from_multiple(include_str!(
            "../../../../../deploy/rbac/remote-reader.yaml"
        ))
        .unwrap();
        let role = docs.iter().find(|d| d["kind"] == "ClusterRole").unwrap();
        assert_eq!(role["metadata"]["name"], READER);
        assert_eq!(role["rules"], reader_rules());
    }

    #[test]
    fn the_reader_role_only_reads() {
        let rules = reader_rules();
        for rule in rules.as_array().unwrap() {
            assert_eq!(rule["verbs"], json!(["get", "list", "watch"]));
        }
    }
}
