//! Create-or-update of objects that `join` and `demo` own, reporting what
//! changed, so that running them twice changes nothing and says so.

use std::fmt;

use anyhow::Context as _;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::NamespaceResourceScope;
use serde_json::Value;

/// What [`Applier::ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The object did not exist.
    Created,
    /// The object existed with other content and was brought in line.
    Updated,
    /// The object already held everything asked for.
    Unchanged,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
        })
    }
}

/// Where a progress line goes.
pub(crate) type Report<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// Writes objects into one cluster and reports each outcome as
/// `created ServiceAccount fedmesh/fedmesh-remote-reader in remote east`.
pub(crate) struct Applier<'a> {
    client: kube::Client,
    /// How lines name the cluster ("remote east").
    place: String,
    report: Report<'a>,
}

/// A kind `ensure` can write: its API resource and whether it is namespaced.
pub(crate) struct Kind {
    resource: ApiResource,
    namespaced: bool,
}

impl Kind {
    /// A namespaced built-in kind.
    pub(crate) fn namespaced<K>() -> Self
    where
        K: kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>,
    {
        Kind {
            resource: ApiResource::erase::<K>(&()),
            namespaced: true,
        }
    }

    /// A cluster-scoped built-in kind.
    pub(crate) fn cluster<K>() -> Self
    where
        K: kube::Resource<DynamicType = ()>,
    {
        Kind {
            resource: ApiResource::erase::<K>(&()),
            namespaced: false,
        }
    }

    /// A cluster-scoped kind known by its API resource (a CRD's kind).
    pub(crate) fn cluster_dynamic(resource: ApiResource) -> Self {
        Kind {
            resource,
            namespaced: false,
        }
    }
}

impl<'a> Applier<'a> {
    /// An applier writing through `client`, whose lines say `place`.
    pub(crate) fn new(client: kube::Client, place: impl Into<String>, report: Report<'a>) -> Self {
        Applier {
            client,
            place: place.into(),
            report,
        }
    }

    /// The client this applier writes through.
    pub(crate) fn client(&self) -> &kube::Client {
        &self.client
    }

    /// Reports a free-form line.
    pub(crate) fn say(&self, line: &str) {
        (self.report)(line);
    }

    fn api(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        match (kind.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &kind.resource),
            _ => Api::all_with(self.client.clone(), &kind.resource),
        }
    }

    /// Makes the object hold at least `desired`'s content: creates it when
    /// missing, merge-patches it when some field differs, and leaves fields
    /// others set (status, defaults, a user's extra spec) alone.
    pub(crate) async fn ensure(&self, kind: &Kind, desired: Value) -> anyhow::Result<Outcome> {
        let outcome = self.ensure_quietly(kind, desired.clone()).await?;
        self.say(&format!(
            "{outcome} {} {} in {}",
            kind.resource.kind,
            display_name(&desired),
            self.place
        ));
        Ok(outcome)
    }

    /// Creates the object when missing and otherwise leaves it as it is.
    pub(crate) async fn ensure_exists(
        &self,
        kind: &Kind,
        desired: Value,
    ) -> anyhow::Result<Outcome> {
        let (api, name) = self.target(kind, &desired)?;
        let outcome = if api
            .get_opt(&name)
            .await
            .with_context(|| self.failed("read", kind, &desired))?
            .is_some()
        {
            Outcome::Unchanged
        } else {
            self.create(&api, kind, &desired).await?
        };
        self.say(&format!(
            "{outcome} {} {} in {}",
            kind.resource.kind,
            display_name(&desired),
            self.place
        ));
        Ok(outcome)
    }

    /// [`ensure`](Self::ensure) without a report line.
    pub(crate) async fn ensure_quietly(
        &self,
        kind: &Kind,
        desired: Value,
    ) -> anyhow::Result<Outcome> {
        let (api, name) = self.target(kind, &desired)?;
        let existing = api
            .get_opt(&name)
            .await
            .with_context(|| self.failed("read", kind, &desired))?;
        let Some(existing) = existing else {
            return self.create(&api, kind, &desired).await;
        };
        let existing =
            serde_json::to_value(&existing).context("cannot re-encode an object read back")?;
        if contains(&existing, &desired) {
            return Ok(Outcome::Unchanged);
        }
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&desired))
            .await
            .with_context(|| self.failed("update", kind, &desired))?;
        Ok(Outcome::Updated)
    }

    async fn create(
        &self,
        api: &Api<DynamicObject>,
        kind: &Kind,
        desired: &Value,
    ) -> anyhow::Result<Outcome> {
        let object: DynamicObject = serde_json::from_value(desired.clone())
            .context("an object fedmesh built is invalid")?;
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => Ok(Outcome::Created),
            // Someone created it between our read and our create: ensure again.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                Box::pin(self.ensure_quietly(kind, desired.clone())).await
            }
            Err(error) => Err(error).with_context(|| self.failed("create", kind, desired)),
        }
    }

    fn target(&self, kind: &Kind, desired: &Value) -> anyhow::Result<(Api<DynamicObject>, String)> {
        let name = desired["metadata"]["name"]
            .as_str()
            .context("an object fedmesh built has no name")?
            .to_owned();
        let namespace = desired["metadata"]["namespace"].as_str();
        Ok((self.api(kind, namespace), name))
    }

    fn failed(&self, verb: &str, kind: &Kind, desired: &Value) -> String {
        format!(
            "cannot {verb} {} {} in {}",
            kind.resource.kind,
            display_name(desired),
            self.place
        )
    }
}

/// `namespace/name`, or `name` for cluster-scoped objects.
fn display_name(object: &Value) -> String {
    let name = object["metadata"]["name"].as_str().unwrap_or("?");
    match object["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    }
}

/// Whether `have` holds everything in `want`: maps may have more keys, lists
/// must match item by item, scalars must be equal.
pub(crate) fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(have), Value::Object(want)) => want
            .iter()
            .all(|(k, w)| have.get(k).is_some_and(|h| contains(h, w))),
        (Value::Array(have), Value::Array(want)) => {
            have.len() == want.len() && have.iter().zip(want).all(|(h, w)| contains(h, w))
        }
        (have, want) => have == want,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::contains;

    #[test]
    fn containment_allows_extra_keys_but_not_extra_list_items() {
        let have = json!({"a": 1, "b": {"c": [1, {"d": 2, "e": 3}]}, "z": true});
        assert!(contains(&have, &json!({"b": {"c": [1, {"d": 2}]}})));
        assert!(!contains(&have, &json!({"b": {"c": [1]}})));
        assert!(!contains(&have, &json!({"a": 2})));
        assert!(!contains(&have, &json!({"missing": null})));
    }
}
