//! `Impersonate-*` headers: parsing, authorization of each impersonated attribute, and the
//! identity the request then runs as (what `kubectl --as`/`--as-group` send).

use std::collections::BTreeMap;

use http::HeaderMap;

use super::rbac::{Attributes, Forbidden, RbacIndex, ResourceAttributes, forbidden};
use super::user::{
    ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS_USER, ServiceAccountName, UserInfo,
};

/// The header naming the user to act as.
pub const USER_HEADER: &str = "impersonate-user";
/// The header naming the uid to act as.
pub const UID_HEADER: &str = "impersonate-uid";
/// The header (repeatable) naming groups to act as.
pub const GROUP_HEADER: &str = "impersonate-group";
/// Prefix of headers carrying extra attributes (`Impersonate-Extra-<key>`).
pub const EXTRA_HEADER_PREFIX: &str = "impersonate-extra-";

const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";

/// What the headers ask to impersonate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImpersonationRequest {
    /// The user name.
    pub user: String,
    /// The uid, when given.
    pub uid: Option<String>,
    /// The groups, in header order.
    pub groups: Vec<String>,
    /// Extra attributes by (lower-case, unescaped) key.
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Why impersonation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImpersonationError {
    /// Malformed headers (400 BadRequest).
    #[error("{0}")]
    BadRequest(String),
    /// The requester may not impersonate something (403 Forbidden with this content).
    #[error("{}", .0.message)]
    Forbidden(Forbidden),
}

/// Reads the impersonation headers; `None` when there are none.
pub fn parse_headers(
    headers: &HeaderMap,
) -> Result<Option<ImpersonationRequest>, ImpersonationError> {
    let text = |value: &http::HeaderValue, name: &str| {
        value
            .to_str()
            .map(str::to_owned)
            .map_err(|_| ImpersonationError::BadRequest(format!("header {name} is not valid text")))
    };
    let mut request = ImpersonationRequest::default();
    let mut has_other = false;
    if let Some(value) = headers.get(USER_HEADER) {
        request.user = text(value, "Impersonate-User")?;
    }
    for value in headers.get_all(GROUP_HEADER) {
        request.groups.push(text(value, "Impersonate-Group")?);
        has_other = true;
    }
    if let Some(value) = headers.get(UID_HEADER) {
        request.uid = Some(text(value, "Impersonate-Uid")?);
        has_other = true;
    }
    for (name, value) in headers {
        // HeaderMap names are lower case already, which is also how kube-apiserver keys extras.
        let Some(raw_key) = name.as_str().strip_prefix(EXTRA_HEADER_PREFIX) else {
            continue;
        };
        let key = percent_decode(raw_key).unwrap_or_else(|| raw_key.to_owned());
        request
            .extra
            .entry(key)
            .or_default()
            .push(text(value, name.as_str())?);
        has_other = true;
    }
    if request.user.is_empty() {
        if has_other {
            return Err(ImpersonationError::BadRequest(
                "requested impersonation of groups, uid or extra fields without impersonating a user"
                    .to_owned(),
            ));
        }
        return Ok(None);
    }
    Ok(Some(request))
}

/// Decodes `%XX` escapes; `None` when an escape is malformed or the result is not UTF-8.
fn percent_decode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = input.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Checks that `requester` may impersonate everything `request` names (verb `impersonate`
/// on users or serviceaccounts, groups, userextras and uids) and returns the identity the
/// request continues as.
pub fn impersonate(
    rbac: &RbacIndex,
    requester: &UserInfo,
    request: &ImpersonationRequest,
) -> Result<UserInfo, ImpersonationError> {
    let check = |attributes: ResourceAttributes| {
        let attributes = Attributes::Resource(attributes);
        let decision = rbac.authorize(requester, &attributes);
        if decision.is_allowed() {
            Ok(())
        } else {
            Err(ImpersonationError::Forbidden(forbidden(
                requester,
                &attributes,
                decision.reason(),
            )))
        }
    };
    let mut groups = request.groups.clone();
    match ServiceAccountName::from_username(&request.user) {
        Some(account) => {
            check(
                ResourceAttributes::new("impersonate", "", "serviceaccounts")
                    .in_namespace(&account.namespace)
                    .named(&account.name),
            )?;
            // A service account's groups follow from its name.
            if request.groups.is_empty() {
                groups = account.groups().to_vec();
            }
        }
        None => check(ResourceAttributes::new("impersonate", "", "users").named(&request.user))?,
    }
    for group in &request.groups {
        check(ResourceAttributes::new("impersonate", "", "groups").named(group))?;
    }
    for (key, values) in &request.extra {
        for value in values {
            check(
                ResourceAttributes::new("impersonate", AUTHENTICATION_GROUP, "userextras")
                    .subresource(key)
                    .named(value),
            )?;
        }
    }
    if let Some(uid) = &request.uid {
        check(ResourceAttributes::new("impersonate", AUTHENTICATION_GROUP, "uids").named(uid))?;
    }
    if request.user == ANONYMOUS_USER {
        if !groups.iter().any(|g| g == ALL_UNAUTHENTICATED) {
            groups.push(ALL_UNAUTHENTICATED.to_owned());
        }
    } else if !groups
        .iter()
        .any(|g| g == ALL_AUTHENTICATED || g == ALL_UNAUTHENTICATED)
    {
        groups.push(ALL_AUTHENTICATED.to_owned());
    }
    Ok(UserInfo {
        username: request.user.clone(),
        uid: request.uid.clone().unwrap_or_default(),
        groups,
        extra: request.extra.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    /// `alice` may impersonate user `bob`, group `devs`, service accounts in `apps`, the
    /// `scopes` extra with value `view`, and uid `1234`.
    fn index() -> RbacIndex {
        let mut index = RbacIndex::with_bootstrap_policy();
        index
            .apply_json(&json!({
                "kind": "ClusterRole",
                "metadata": {"name": "limited-impersonator"},
                "rules": [
                    {"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"], "resourceNames": ["bob"]},
                    {"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"], "resourceNames": ["devs"]},
                    {"apiGroups": ["authentication.k8s.io"], "resources": ["userextras/scopes"], "verbs": ["impersonate"], "resourceNames": ["view"]},
                    {"apiGroups": ["authentication.k8s.io"], "resources": ["uids"], "verbs": ["impersonate"], "resourceNames": ["1234"]},
                ],
            }))
            .unwrap();
        for (kind, ns, role) in [
            ("ClusterRoleBinding", None, "limited-impersonator"),
            ("RoleBinding", Some("apps"), "edit"),
        ] {
            let mut metadata = json!({"name": format!("alice-{role}")});
            if let Some(ns) = ns {
                metadata["namespace"] = json!(ns);
            }
            index
                .apply_json(&json!({
                    "kind": kind,
                    "metadata": metadata,
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                    "subjects": [{"kind": "User", "name": "alice"}],
                }))
                .unwrap();
        }
        index
    }

    fn alice() -> UserInfo {
        UserInfo::authenticated("alice", &[])
    }

    #[test]
    fn parses_all_header_kinds() {
        let h = headers(&[
            ("Impersonate-User", "bob"),
            ("Impersonate-Group", "devs"),
            ("Impersonate-Group", "ops"),
            ("Impersonate-Uid", "1234"),
            ("Impersonate-Extra-Scopes", "view"),
            ("Impersonate-Extra-Scopes", "edit"),
            ("Impersonate-Extra-example.com%2fteam", "blue"),
        ]);
        let request = parse_headers(&h).unwrap().unwrap();
        assert_eq!(request.user, "bob");
        assert_eq!(request.groups, ["devs", "ops"]);
        assert_eq!(request.uid.as_deref(), Some("1234"));
        assert_eq!(request.extra["scopes"], ["view", "edit"]);
        assert_eq!(request.extra["example.com/team"], ["blue"]);
        assert_eq!(parse_headers(&headers(&[("Accept", "x")])).unwrap(), None);
        assert!(matches!(
            parse_headers(&headers(&[("Impersonate-Group", "devs")])),
            Err(ImpersonationError::BadRequest(_))
        ));
    }

    #[test]
    fn allowed_impersonation_yields_the_requested_identity() {
        let index = index();
        let request = parse_headers(&headers(&[
            ("Impersonate-User", "bob"),
            ("Impersonate-Group", "devs"),
            ("Impersonate-Extra-Scopes", "view"),
            ("Impersonate-Uid", "1234"),
        ]))
        .unwrap()
        .unwrap();
        let user = impersonate(&index, &alice(), &request).unwrap();
        assert_eq!(user.username, "bob");
        assert_eq!(user.groups, ["devs", "system:authenticated"]);
        assert_eq!(user.uid, "1234");
        assert_eq!(user.extra["scopes"], ["view"]);
    }

    #[test]
    fn each_impersonated_attribute_is_authorized() {
        let index = index();
        let denied = [
            (
                vec![("Impersonate-User", "carol")],
                "users \"carol\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
            ),
            (
                vec![
                    ("Impersonate-User", "bob"),
                    ("Impersonate-Group", "system:masters"),
                ],
                "groups \"system:masters\" is forbidden: User \"alice\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope",
            ),
            (
                vec![
                    ("Impersonate-User", "bob"),
                    ("Impersonate-Extra-Scopes", "admin"),
                ],
                "userextras.authentication.k8s.io \"admin\" is forbidden: User \"alice\" cannot impersonate resource \"userextras/scopes\" in API group \"authentication.k8s.io\" at the cluster scope",
            ),
            (
                vec![("Impersonate-User", "bob"), ("Impersonate-Uid", "9")],
                "uids.authentication.k8s.io \"9\" is forbidden: User \"alice\" cannot impersonate resource \"uids\" in API group \"authentication.k8s.io\" at the cluster scope",
            ),
            (
                vec![("Impersonate-User", "system:serviceaccount:other:bot")],
                "serviceaccounts \"bot\" is forbidden: User \"alice\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"other\"",
            ),
        ];
        for (pairs, message) in denied {
            let request = parse_headers(&headers(&pairs)).unwrap().unwrap();
            let err = impersonate(&index, &alice(), &request).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn service_accounts_and_anonymous_get_their_implicit_groups() {
        let index = index();
        // The edit role in "apps" allows impersonating its service accounts.
        let request = parse_headers(&headers(&[(
            "Impersonate-User",
            "system:serviceaccount:apps:bot",
        )]))
        .unwrap()
        .unwrap();
        let user = impersonate(&index, &alice(), &request).unwrap();
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:apps",
                "system:authenticated"
            ]
        );
        let admin = UserInfo::admin();
        let anon = ImpersonationRequest {
            user: "system:anonymous".to_owned(),
            ..ImpersonationRequest::default()
        };
        let user = impersonate(&index, &admin, &anon).unwrap();
        assert_eq!(user.groups, ["system:unauthenticated"]);
        let unauth_group = ImpersonationRequest {
            user: "eve".to_owned(),
            groups: vec!["system:unauthenticated".to_owned()],
            ..ImpersonationRequest::default()
        };
        let user = impersonate(&index, &admin, &unauth_group).unwrap();
        assert_eq!(user.groups, ["system:unauthenticated"]);
    }

    #[test]
    fn impersonated_identity_is_what_rbac_then_sees() {
        // `kubectl auth can-i create pods --as bob` as the admin: bob has nothing.
        let index = index();
        let request = ImpersonationRequest {
            user: "bob".to_owned(),
            ..ImpersonationRequest::default()
        };
        let bob = impersonate(&index, &UserInfo::admin(), &request).unwrap();
        let create_pods: Attributes = ResourceAttributes::new("create", "", "pods")
            .in_namespace("default")
            .into();
        assert!(!index.authorize(&bob, &create_pods).is_allowed());
        assert!(
            index
                .authorize(&bob, &Attributes::non_resource("get", "/api"))
                .is_allowed()
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("cut%2"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
