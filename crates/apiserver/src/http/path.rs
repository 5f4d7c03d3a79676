//! What a request path names.

use crate::registry::Subresource;

/// A resource path, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// API group (empty for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Object name.
    pub name: Option<String>,
    /// Subresource segment (may be unknown; checked against the registry later).
    pub sub: Option<String>,
    /// Legacy `/watch/` path.
    pub legacy_watch: bool,
}

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz` (and their `/...` checks).
    Health,
    /// `/metrics`.
    Metrics,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    GroupList,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1` or `/apis/<g>/<v>`.
    ResourceList(String, String),
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3` (`None`) or `/openapi/v3/<path>`.
    OpenApiV3(Option<String>),
    /// A resource, collection or subresource.
    Resource(ResourcePath),
    /// Nothing served here.
    Unknown,
}

fn resource(group: &str, version: &str, segs: &[&str]) -> Target {
    let (legacy_watch, segs) = match segs {
        ["watch", rest @ ..] => (true, rest),
        other => (false, other),
    };
    let mk = |namespace: Option<&str>, plural: &str, name: Option<&str>, sub: Option<&str>| {
        Target::Resource(ResourcePath {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            sub: sub.map(str::to_owned),
            legacy_watch,
        })
    };
    if segs.iter().any(|s| s.is_empty()) {
        return Target::Unknown;
    }
    match segs {
        [plural] => mk(None, plural, None, None),
        [plural, name] => mk(None, plural, Some(name), None),
        ["namespaces", name, sub] if Subresource::parse(sub).is_some() => {
            mk(None, "namespaces", Some(name), Some(sub))
        }
        ["namespaces", ns, plural] => mk(Some(ns), plural, None, None),
        [plural, name, sub] => mk(None, plural, Some(name), Some(sub)),
        ["namespaces", ns, plural, name] => mk(Some(ns), plural, Some(name), None),
        ["namespaces", ns, plural, name, sub] => mk(Some(ns), plural, Some(name), Some(sub)),
        // `services/<name>/proxy/<path...>`: the path after `proxy` is the target's.
        ["namespaces", ns, plural, name, "proxy", ..] => {
            mk(Some(ns), plural, Some(name), Some("proxy"))
        }
        _ => Target::Unknown,
    }
}

/// Parses a (percent-decoded) path.
pub fn parse(path: &str) -> Target {
    let trimmed = path.trim_end_matches('/');
    let segs: Vec<&str> = trimmed.split('/').skip(1).collect();
    match segs.as_slice() {
        ["version"] => Target::Version,
        ["healthz" | "livez" | "readyz", ..] => Target::Health,
        ["metrics"] => Target::Metrics,
        ["api"] => Target::CoreVersions,
        ["api", "v1"] => Target::ResourceList(String::new(), "v1".into()),
        ["api", "v1", rest @ ..] => resource("", "v1", rest),
        ["apis"] => Target::GroupList,
        ["apis", g] => Target::Group((*g).to_owned()),
        ["apis", g, v] => Target::ResourceList((*g).to_owned(), (*v).to_owned()),
        ["apis", g, v, rest @ ..] => resource(g, v, rest),
        ["openapi", "v2"] => Target::OpenApiV2,
        ["openapi", "v3"] => Target::OpenApiV3(None),
        ["openapi", "v3", rest @ ..] => Target::OpenApiV3(Some(rest.join("/"))),
        _ => Target::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse(path) {
            Target::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_and_cluster_paths() {
        let r = res("/api/v1/namespaces/default/services/web");
        assert_eq!((r.group.as_str(), r.plural.as_str()), ("", "services"));
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.name.as_deref(), Some("web"));
        let r = res("/api/v1/namespaces/default");
        assert_eq!(r.plural, "namespaces");
        assert_eq!(r.name.as_deref(), Some("default"));
        let r = res("/api/v1/namespaces/default/status");
        assert_eq!(r.sub.as_deref(), Some("status"));
        assert_eq!(r.namespace, None);
        let r = res("/apis/coordination.k8s.io/v1/namespaces/ns/leases");
        assert_eq!(r.group, "coordination.k8s.io");
        assert!(r.name.is_none());
        let r = res("/api/v1/namespaces/d/pods/p/status");
        assert_eq!(r.sub.as_deref(), Some("status"));
        let r = res("/api/v1/nodes/n1/status");
        assert_eq!(
            (r.name.as_deref(), r.sub.as_deref()),
            (Some("n1"), Some("status"))
        );
    }

    #[test]
    fn legacy_watch_and_discovery_paths() {
        let r = res("/api/v1/watch/namespaces/d/pods");
        assert!(r.legacy_watch);
        assert_eq!(r.namespace.as_deref(), Some("d"));
        assert_eq!(parse("/apis"), Target::GroupList);
        assert_eq!(parse("/apis/"), Target::GroupList);
        assert_eq!(
            parse("/apis/rbac.authorization.k8s.io/v1"),
            Target::ResourceList("rbac.authorization.k8s.io".into(), "v1".into())
        );
        assert_eq!(parse("/livez/ping"), Target::Health);
        assert_eq!(
            parse("/openapi/v3/apis/apps/v1"),
            Target::OpenApiV3(Some("apis/apps/v1".into()))
        );
        assert_eq!(parse("/nope"), Target::Unknown);
        assert_eq!(parse("/api/v1/a/b/c/d"), Target::Unknown);
        assert_eq!(parse("/api/v1/namespaces//pods"), Target::Unknown);
    }
}
