//! Authenticated identities and the well-known user and group names of Kubernetes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The user name of the administrator whose token goes into the generated kubeconfig.
pub const ADMIN_USER: &str = "fedmesh:admin";
/// Members of this group bypass RBAC, as kube-apiserver's privileged group does.
pub const SYSTEM_MASTERS: &str = "system:masters";
/// Every authenticated request carries this group.
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// Every anonymous request carries this group.
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The user name of a request without credentials.
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// Every service account belongs to this group.
pub const ALL_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// Prefix of service account user names: `system:serviceaccount:<namespace>:<name>`.
pub const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";

/// Who a request runs as, after authentication (and impersonation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user name RBAC `User` subjects match.
    pub username: String,
    /// A unique id of the identity (the ServiceAccount's uid for service accounts).
    pub uid: String,
    /// Groups RBAC `Group` subjects match.
    pub groups: Vec<String>,
    /// Additional attributes (`authentication.kubernetes.io/*` for service accounts).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The identity of a request that carried no credentials.
    pub fn anonymous() -> Self {
        Self {
            username: ANONYMOUS_USER.to_owned(),
            groups: vec![ALL_UNAUTHENTICATED.to_owned()],
            ..Self::default()
        }
    }

    /// A user with the given name and groups; `system:authenticated` is added when missing.
    pub fn authenticated(username: impl Into<String>, groups: &[&str]) -> Self {
        let mut groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        if !groups.iter().any(|g| g == ALL_AUTHENTICATED) {
            groups.push(ALL_AUTHENTICATED.to_owned());
        }
        Self {
            username: username.into(),
            groups,
            ..Self::default()
        }
    }

    /// The administrator: a member of `system:masters`, like the admin of a kubeadm cluster.
    pub fn admin() -> Self {
        Self::authenticated(ADMIN_USER, &[SYSTEM_MASTERS])
    }

    /// The identity of a service account, with the groups kube-apiserver gives it.
    pub fn service_account(account: &ServiceAccountName, uid: impl Into<String>) -> Self {
        let mut groups = account.groups().to_vec();
        groups.push(ALL_AUTHENTICATED.to_owned());
        Self {
            username: account.username(),
            uid: uid.into(),
            groups,
            extra: BTreeMap::new(),
        }
    }

    /// Whether the user is a member of `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// The service account this user is, if the user name has the service account form.
    pub fn as_service_account(&self) -> Option<ServiceAccountName> {
        ServiceAccountName::from_username(&self.username)
    }

    /// The `authentication.k8s.io/v1` form, as SelfSubjectReview and TokenReview return it.
    pub fn to_k8s(&self) -> k8s_openapi::api::authentication::v1::UserInfo {
        k8s_openapi::api::authentication::v1::UserInfo {
            username: Some(self.username.clone()),
            uid: (!self.uid.is_empty()).then(|| self.uid.clone()),
            groups: (!self.groups.is_empty()).then(|| self.groups.clone()),
            extra: (!self.extra.is_empty()).then(|| self.extra.clone()),
        }
    }
}

/// A service account's namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServiceAccountName {
    /// The namespace of the ServiceAccount.
    pub namespace: String,
    /// The name of the ServiceAccount.
    pub name: String,
}

impl ServiceAccountName {
    /// A service account reference.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// `system:serviceaccount:<namespace>:<name>`.
    pub fn username(&self) -> String {
        format!(
            "{SERVICE_ACCOUNT_USER_PREFIX}{}:{}",
            self.namespace, self.name
        )
    }

    /// The groups every service account of this namespace has.
    pub fn groups(&self) -> [String; 2] {
        [
            ALL_SERVICE_ACCOUNTS.to_owned(),
            namespace_service_accounts_group(&self.namespace),
        ]
    }

    /// Parses `system:serviceaccount:<namespace>:<name>`; `None` for other user names.
    pub fn from_username(username: &str) -> Option<Self> {
        let rest = username.strip_prefix(SERVICE_ACCOUNT_USER_PREFIX)?;
        let (namespace, name) = rest.split_once(':')?;
        if namespace.is_empty() || name.is_empty() || name.contains(':') {
            return None;
        }
        Some(Self::new(namespace, name))
    }
}

impl fmt::Display for ServiceAccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// `system:serviceaccounts:<namespace>`.
pub fn namespace_service_accounts_group(namespace: &str) -> String {
    format!("{ALL_SERVICE_ACCOUNTS}:{namespace}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_user_names_round_trip() {
        let sa = ServiceAccountName::new("kube-system", "default");
        assert_eq!(sa.username(), "system:serviceaccount:kube-system:default");
        assert_eq!(ServiceAccountName::from_username(&sa.username()), Some(sa));
        assert_eq!(ServiceAccountName::from_username("alice"), None);
        assert_eq!(
            ServiceAccountName::from_username("system:serviceaccount:ns"),
            None
        );
        assert_eq!(
            ServiceAccountName::from_username("system:serviceaccount::x"),
            None
        );
    }

    #[test]
    fn service_account_users_get_their_groups() {
        let user = UserInfo::service_account(&ServiceAccountName::new("ns1", "bot"), "u-1");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ns1",
                "system:authenticated"
            ]
        );
        assert_eq!(user.uid, "u-1");
        assert!(UserInfo::admin().in_group(SYSTEM_MASTERS));
        assert!(UserInfo::anonymous().in_group(ALL_UNAUTHENTICATED));
        assert!(!UserInfo::anonymous().in_group(ALL_AUTHENTICATED));
    }
}
