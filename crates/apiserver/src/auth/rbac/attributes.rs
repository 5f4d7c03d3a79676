//! What a request asks to do, in the terms RBAC rules are written in, and how one rule is
//! matched against it.

use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::auth::user::UserInfo;

/// Wildcard that matches any verb, group, resource or URL in a rule.
pub const WILDCARD: &str = "*";

/// A request on an API resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceAttributes {
    /// The Kubernetes verb: get, list, watch, create, update, patch, delete,
    /// deletecollection, impersonate, ...
    pub verb: String,
    /// API group (`""` for core).
    pub api_group: String,
    /// API version (not used by RBAC, carried for reviews).
    pub api_version: String,
    /// Plural resource name.
    pub resource: String,
    /// Subresource (`status`, `scale`, `token`, ...), empty for none.
    pub subresource: String,
    /// Object name, empty for collections and creates without a name.
    pub name: String,
    /// Namespace, empty for cluster-scoped requests.
    pub namespace: String,
}

impl ResourceAttributes {
    /// A request with `verb` on `resource` in `api_group`, cluster-wide, for any name.
    pub fn new(verb: &str, api_group: &str, resource: &str) -> Self {
        Self {
            verb: verb.to_owned(),
            api_group: api_group.to_owned(),
            resource: resource.to_owned(),
            ..Self::default()
        }
    }

    /// Narrows to a namespace.
    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_owned();
        self
    }

    /// Narrows to an object name.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// Targets a subresource.
    pub fn subresource(mut self, subresource: &str) -> Self {
        self.subresource = subresource.to_owned();
        self
    }

    /// `resource` or `resource/subresource`, as rules name it.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// A request on a path outside the resource API (`/healthz`, `/version`, `/apis`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NonResourceAttributes {
    /// The verb (`get`, `post`, ... in lower case).
    pub verb: String,
    /// The URL path.
    pub path: String,
}

/// Either kind of request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attributes {
    /// An API resource request.
    Resource(ResourceAttributes),
    /// A non-resource URL request.
    NonResource(NonResourceAttributes),
}

impl Attributes {
    /// A non-resource request.
    pub fn non_resource(verb: &str, path: &str) -> Self {
        Self::NonResource(NonResourceAttributes {
            verb: verb.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The verb of either kind.
    pub fn verb(&self) -> &str {
        match self {
            Self::Resource(r) => &r.verb,
            Self::NonResource(n) => &n.verb,
        }
    }

    /// The namespace (empty for cluster-scoped and non-resource requests).
    pub fn namespace(&self) -> &str {
        match self {
            Self::Resource(r) => &r.namespace,
            Self::NonResource(_) => "",
        }
    }
}

impl From<ResourceAttributes> for Attributes {
    fn from(value: ResourceAttributes) -> Self {
        Self::Resource(value)
    }
}

/// The RBAC verb of a resource request, as kube-apiserver derives it: `GET` is `get` on an
/// object, `list` on a collection and `watch` when `watch` is set; `POST` is `create`, `PUT`
/// `update`, `PATCH` `patch`; `DELETE` is `delete` on an object and `deletecollection` on a
/// collection. `None` for other methods.
///
/// `watch` is true for `?watch=true` on a collection and for the legacy `/watch/` paths;
/// kube-apiserver treats `?watch=true` on a named object as `get`. A collection request
/// whose field selector pins `metadata.name` is authorized with that name.
pub fn resource_verb(
    method: &http::Method,
    names_object: bool,
    watch: bool,
) -> Option<&'static str> {
    use http::Method;
    Some(match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if names_object => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if names_object => "delete",
        Method::DELETE => "deletecollection",
        _ => return None,
    })
}

/// The RBAC verb of a non-resource request: the lower-case method.
pub fn non_resource_verb(method: &http::Method) -> String {
    method.as_str().to_ascii_lowercase()
}

fn contains_or_wildcard(list: &[String], value: &str) -> bool {
    list.iter().any(|item| item == WILDCARD || item == value)
}

fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    contains_or_wildcard(&rule.verbs, verb)
}

fn group_matches(rule: &PolicyRule, group: &str) -> bool {
    rule.api_groups
        .as_deref()
        .is_some_and(|groups| contains_or_wildcard(groups, group))
}

/// Whether `rule_resource` equals `resource` or `resource/subresource`, without building the
/// combined string (this runs for every rule of every request).
fn names_resource(rule_resource: &str, resource: &str, subresource: &str) -> bool {
    if subresource.is_empty() {
        return rule_resource == resource;
    }
    rule_resource
        .strip_prefix(resource)
        .and_then(|rest| rest.strip_prefix('/'))
        == Some(subresource)
}

fn resource_matches(rule: &PolicyRule, resource: &str, subresource: &str) -> bool {
    let Some(resources) = rule.resources.as_deref() else {
        return false;
    };
    resources.iter().any(|r| {
        r == WILDCARD
            || names_resource(r, resource, subresource)
            // `*/scale` grants the scale subresource of every resource.
            || (!subresource.is_empty() && r.strip_prefix("*/") == Some(subresource))
    })
}

fn name_matches(rule: &PolicyRule, name: &str) -> bool {
    match rule.resource_names.as_deref() {
        None | Some([]) => true,
        Some(names) => names.iter().any(|n| n == name),
    }
}

fn url_matches(rule: &PolicyRule, path: &str) -> bool {
    let Some(urls) = rule.non_resource_urls.as_deref() else {
        return false;
    };
    urls.iter().any(|url| {
        url == WILDCARD
            || url == path
            || url
                .strip_suffix('*')
                .is_some_and(|prefix| path.starts_with(prefix))
    })
}

/// Whether `rule` grants the request, with Kubernetes' matching rules.
pub fn rule_allows(rule: &PolicyRule, attributes: &Attributes) -> bool {
    match attributes {
        Attributes::Resource(r) => {
            verb_matches(rule, &r.verb)
                && group_matches(rule, &r.api_group)
                && resource_matches(rule, &r.resource, &r.subresource)
                && name_matches(rule, &r.name)
        }
        Attributes::NonResource(n) => verb_matches(rule, &n.verb) && url_matches(rule, &n.path),
    }
}

/// The message kube-apiserver puts after "is forbidden: " for a denied request.
pub fn forbidden_reason(user: &UserInfo, attributes: &Attributes) -> String {
    match attributes {
        Attributes::NonResource(n) => {
            format!(
                "User {:?} cannot {} path {:?}",
                user.username, n.verb, n.path
            )
        }
        Attributes::Resource(r) => {
            let resource = r.combined_resource();
            if r.namespace.is_empty() {
                format!(
                    "User {:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
                    user.username, r.verb, resource, r.api_group
                )
            } else {
                format!(
                    "User {:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
                    user.username, r.verb, resource, r.api_group, r.namespace
                )
            }
        }
    }
}

/// What the `Status` of a 403 response carries, as kube-apiserver fills it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forbidden {
    /// `Status.message`.
    pub message: String,
    /// `Status.details.name`.
    pub name: String,
    /// `Status.details.group`.
    pub group: String,
    /// `Status.details.kind` (the resource, as kube-apiserver reports it).
    pub kind: String,
}

/// Builds the 403 Status content for a denied request; `reason` is the authorizer's reason,
/// appended after a colon when non-empty.
pub fn forbidden(user: &UserInfo, attributes: &Attributes, reason: &str) -> Forbidden {
    let mut cause = forbidden_reason(user, attributes);
    if !reason.is_empty() {
        cause.push_str(": ");
        cause.push_str(reason);
    }
    match attributes {
        Attributes::NonResource(_) => Forbidden {
            message: format!("forbidden: {cause}"),
            name: String::new(),
            group: String::new(),
            kind: String::new(),
        },
        Attributes::Resource(r) => {
            let qualified = if r.api_group.is_empty() {
                r.resource.clone()
            } else {
                format!("{}.{}", r.resource, r.api_group)
            };
            let message = if r.name.is_empty() {
                format!("{qualified} is forbidden: {cause}")
            } else {
                format!("{qualified} {:?} is forbidden: {cause}", r.name)
            };
            Forbidden {
                message,
                name: r.name.clone(),
                group: r.api_group.clone(),
                kind: r.resource.clone(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        PolicyRule {
            verbs: v(verbs),
            api_groups: Some(v(groups)),
            resources: Some(v(resources)),
            resource_names: (!names.is_empty()).then(|| v(names)),
            non_resource_urls: None,
        }
    }

    fn url_rule(verbs: &[&str], urls: &[&str]) -> PolicyRule {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        PolicyRule {
            verbs: v(verbs),
            non_resource_urls: Some(v(urls)),
            ..PolicyRule::default()
        }
    }

    fn req(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        ResourceAttributes::new(verb, group, resource)
            .subresource(sub)
            .named(name)
            .in_namespace("ns")
            .into()
    }

    #[test]
    fn rule_matching_table() {
        let pods_get = rule(&["get"], &[""], &["pods"], &[]);
        let all = rule(&["*"], &["*"], &["*"], &[]);
        let scale_any = rule(&["update"], &["apps"], &["*/scale"], &[]);
        let named = rule(&["get", "update"], &[""], &["configmaps"], &["cfg-a"]);
        let status = rule(&["patch"], &[""], &["pods/status"], &[]);
        let cases: &[(&PolicyRule, Attributes, bool)] = &[
            (&pods_get, req("get", "", "pods", "", "p"), true),
            (&pods_get, req("list", "", "pods", "", ""), false),
            (&pods_get, req("get", "apps", "pods", "", "p"), false),
            (&pods_get, req("get", "", "pods", "log", "p"), false),
            (&pods_get, req("get", "", "services", "", "s"), false),
            (
                &all,
                req("deletecollection", "x.io", "widgets", "status", ""),
                true,
            ),
            (
                &scale_any,
                req("update", "apps", "deployments", "scale", "d"),
                true,
            ),
            (
                &scale_any,
                req("update", "apps", "deployments", "", "d"),
                false,
            ),
            (
                &scale_any,
                req("update", "", "replicationcontrollers", "scale", "r"),
                false,
            ),
            (&named, req("get", "", "configmaps", "", "cfg-a"), true),
            (&named, req("get", "", "configmaps", "", "cfg-b"), false),
            (&named, req("get", "", "configmaps", "", ""), false),
            (&status, req("patch", "", "pods", "status", "p"), true),
            (&status, req("patch", "", "pods", "", "p"), false),
            (
                &pods_get,
                Attributes::non_resource("get", "/healthz"),
                false,
            ),
        ];
        for (i, (rule, attrs, expected)) in cases.iter().enumerate() {
            assert_eq!(rule_allows(rule, attrs), *expected, "case {i}: {attrs:?}");
        }
    }

    #[test]
    fn non_resource_url_matching() {
        let r = url_rule(&["get"], &["/healthz", "/apis/*"]);
        assert!(rule_allows(
            &r,
            &Attributes::non_resource("get", "/healthz")
        ));
        assert!(!rule_allows(
            &r,
            &Attributes::non_resource("get", "/healthz/etcd")
        ));
        assert!(rule_allows(
            &r,
            &Attributes::non_resource("get", "/apis/apps/v1")
        ));
        assert!(rule_allows(&r, &Attributes::non_resource("get", "/apis/")));
        assert!(!rule_allows(&r, &Attributes::non_resource("get", "/apis")));
        assert!(!rule_allows(
            &r,
            &Attributes::non_resource("post", "/healthz")
        ));
        let any = url_rule(&["*"], &["*"]);
        assert!(rule_allows(&any, &Attributes::non_resource("delete", "/x")));
        assert!(!rule_allows(&any, &req("get", "", "pods", "", "")));
    }

    #[test]
    fn verbs_from_http_methods() {
        use http::Method;
        let cases = [
            (Method::GET, true, false, Some("get")),
            (Method::GET, false, false, Some("list")),
            (Method::GET, false, true, Some("watch")),
            (Method::GET, true, true, Some("watch")),
            (Method::POST, false, false, Some("create")),
            (Method::PUT, true, false, Some("update")),
            (Method::PATCH, true, false, Some("patch")),
            (Method::DELETE, true, false, Some("delete")),
            (Method::DELETE, false, false, Some("deletecollection")),
            (Method::OPTIONS, false, false, None),
        ];
        for (method, named, watch, expected) in cases {
            assert_eq!(
                resource_verb(&method, named, watch),
                expected,
                "{method} {named} {watch}"
            );
        }
        assert_eq!(non_resource_verb(&Method::POST), "post");
    }

    #[test]
    fn forbidden_messages_match_kube() {
        let user = UserInfo::authenticated("jane", &[]);
        let f = forbidden(&user, &req("get", "", "pods", "", "web"), "");
        assert_eq!(
            f.message,
            "pods \"web\" is forbidden: User \"jane\" cannot get resource \"pods\" in API group \"\" in the namespace \"ns\""
        );
        assert_eq!((f.kind.as_str(), f.name.as_str()), ("pods", "web"));
        let list = ResourceAttributes::new("list", "apps", "deployments");
        let f = forbidden(&user, &list.into(), "");
        assert_eq!(
            f.message,
            "deployments.apps is forbidden: User \"jane\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
        );
        let f = forbidden(&user, &Attributes::non_resource("get", "/metrics"), "");
        assert_eq!(
            f.message,
            "forbidden: User \"jane\" cannot get path \"/metrics\""
        );
    }
}
