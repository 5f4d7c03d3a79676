//! The review APIs: SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectAccessReview,
//! SelfSubjectRulesReview (`authorization.k8s.io/v1`), SelfSubjectReview and TokenReview
//! (`authentication.k8s.io/v1`). Each takes the spec and returns the status to echo back.

use k8s_openapi::api::authentication::v1::{
    SelfSubjectReviewStatus, TokenReviewSpec, TokenReviewStatus,
};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes as K8sNonResourceAttributes, NonResourceRule,
    ResourceAttributes as K8sResourceAttributes, ResourceRule, SelfSubjectAccessReviewSpec,
    SelfSubjectRulesReviewSpec, SubjectAccessReviewSpec, SubjectAccessReviewStatus,
    SubjectRulesReviewStatus,
};

use super::authn::Authenticator;
use super::rbac::{Attributes, NonResourceAttributes, RbacIndex, ResourceAttributes};
use super::sa_token::{ObjectLookup, ServiceAccountTokens};
use super::user::UserInfo;

const EXACTLY_ONE: &str =
    "exactly one of nonResourceAttributes or resourceAttributes must be specified";

/// A review spec kube-apiserver would reject with 422 Invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: Invalid value: {message}")]
pub struct ReviewError {
    /// The field path.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn invalid(field: &'static str, message: &str) -> ReviewError {
    ReviewError {
        field,
        message: message.to_owned(),
    }
}

fn attributes(
    resource: Option<&K8sResourceAttributes>,
    non_resource: Option<&K8sNonResourceAttributes>,
) -> Result<Attributes, ReviewError> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    match (resource, non_resource) {
        (Some(r), None) => Ok(Attributes::Resource(ResourceAttributes {
            verb: text(&r.verb),
            api_group: text(&r.group),
            api_version: text(&r.version),
            resource: text(&r.resource),
            subresource: text(&r.subresource),
            name: text(&r.name),
            namespace: text(&r.namespace),
        })),
        (None, Some(n)) => Ok(Attributes::NonResource(NonResourceAttributes {
            verb: text(&n.verb),
            path: text(&n.path),
        })),
        (None, None) => Err(invalid("spec.resourceAttributes", EXACTLY_ONE)),
        (Some(_), Some(_)) => Err(invalid("spec.nonResourceAttributes", EXACTLY_ONE)),
    }
}

fn status(rbac: &RbacIndex, user: &UserInfo, attributes: &Attributes) -> SubjectAccessReviewStatus {
    let decision = rbac.authorize(user, attributes);
    let reason = decision.reason();
    SubjectAccessReviewStatus {
        allowed: decision.is_allowed(),
        // RBAC never denies explicitly; it only fails to allow.
        denied: None,
        evaluation_error: None,
        reason: (!reason.is_empty()).then(|| reason.to_owned()),
    }
}

fn spec_user(spec: &SubjectAccessReviewSpec) -> Result<UserInfo, ReviewError> {
    let username = spec.user.clone().unwrap_or_default();
    let groups = spec.groups.clone().unwrap_or_default();
    if username.is_empty() && groups.is_empty() {
        return Err(invalid(
            "spec.user",
            "at least one of user or group must be specified",
        ));
    }
    // The reviewed identity is exactly what the spec says: no implicit groups are added.
    Ok(UserInfo {
        username,
        uid: spec.uid.clone().unwrap_or_default(),
        groups,
        extra: spec.extra.clone().unwrap_or_default(),
    })
}

/// SubjectAccessReview: may the user in the spec do what it describes?
pub fn subject_access_review(
    rbac: &RbacIndex,
    spec: &SubjectAccessReviewSpec,
) -> Result<SubjectAccessReviewStatus, ReviewError> {
    let attributes = attributes(
        spec.resource_attributes.as_ref(),
        spec.non_resource_attributes.as_ref(),
    )?;
    let user = spec_user(spec)?;
    Ok(status(rbac, &user, &attributes))
}

/// LocalSubjectAccessReview in `namespace`: like SubjectAccessReview, limited to resource
/// requests in that namespace.
pub fn local_subject_access_review(
    rbac: &RbacIndex,
    namespace: &str,
    spec: &SubjectAccessReviewSpec,
) -> Result<SubjectAccessReviewStatus, ReviewError> {
    if spec.non_resource_attributes.is_some() {
        return Err(invalid(
            "spec.nonResourceAttributes",
            "disallowed on this kind of request",
        ));
    }
    let requested = spec
        .resource_attributes
        .as_ref()
        .and_then(|r| r.namespace.as_deref())
        .unwrap_or_default();
    if requested != namespace {
        return Err(invalid(
            "spec.resourceAttributes.namespace",
            "must match metadata.namespace",
        ));
    }
    subject_access_review(rbac, spec)
}

/// SelfSubjectAccessReview: may the requesting `user` do what the spec describes?
pub fn self_subject_access_review(
    rbac: &RbacIndex,
    user: &UserInfo,
    spec: &SelfSubjectAccessReviewSpec,
) -> Result<SubjectAccessReviewStatus, ReviewError> {
    let attributes = attributes(
        spec.resource_attributes.as_ref(),
        spec.non_resource_attributes.as_ref(),
    )?;
    Ok(status(rbac, user, &attributes))
}

/// SelfSubjectRulesReview: everything `user` may do in the spec's namespace (what
/// `kubectl auth can-i --list` prints).
pub fn self_subject_rules_review(
    rbac: &RbacIndex,
    user: &UserInfo,
    spec: &SelfSubjectRulesReviewSpec,
) -> SubjectRulesReviewStatus {
    let namespace = spec.namespace.as_deref().unwrap_or_default();
    let found = rbac.rules_for(user, namespace);
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in found.rules {
        if rule.resources.as_ref().is_some_and(|r| !r.is_empty()) {
            resource_rules.push(ResourceRule {
                verbs: rule.verbs.clone(),
                api_groups: rule.api_groups.clone(),
                resources: rule.resources.clone(),
                resource_names: rule.resource_names.clone(),
            });
        }
        if rule
            .non_resource_urls
            .as_ref()
            .is_some_and(|u| !u.is_empty())
        {
            non_resource_rules.push(NonResourceRule {
                verbs: rule.verbs,
                non_resource_urls: rule.non_resource_urls,
            });
        }
    }
    SubjectRulesReviewStatus {
        incomplete: !found.errors.is_empty(),
        evaluation_error: (!found.errors.is_empty()).then(|| found.errors.join(", ")),
        resource_rules,
        non_resource_rules,
    }
}

/// SelfSubjectReview: who the requester is (`kubectl auth whoami`).
pub fn self_subject_review(user: &UserInfo) -> SelfSubjectReviewStatus {
    SelfSubjectReviewStatus {
        user_info: Some(user.to_k8s()),
    }
}

/// TokenReview: authenticates the token in the spec. A token that does not authenticate is
/// a status with `authenticated: false`, never an error.
pub fn token_review(
    authenticator: &Authenticator,
    lookup: &dyn ObjectLookup,
    spec: &TokenReviewSpec,
    now: jiff::Timestamp,
) -> TokenReviewStatus {
    let token = spec.token.as_deref().unwrap_or_default();
    let api_audiences = authenticator.service_accounts().api_audiences();
    let requested = spec
        .audiences
        .clone()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| api_audiences.to_vec());
    let failed = |error: String| TokenReviewStatus {
        authenticated: Some(false),
        error: Some(error),
        ..TokenReviewStatus::default()
    };
    let result = if ServiceAccountTokens::looks_like_jwt(token) {
        // Service account tokens carry audiences; they must name one of the requested.
        authenticator
            .service_accounts()
            .verify_claims_for(token, now, &requested)
            .and_then(|pending| {
                let audiences = pending.audiences().to_vec();
                pending.complete(lookup).map(|user| (user, audiences))
            })
            .map_err(|err| err.to_string())
    } else {
        // Other tokens are valid for the API audiences only.
        let audiences: Vec<String> = requested
            .iter()
            .filter(|a| api_audiences.contains(a))
            .cloned()
            .collect();
        if audiences.is_empty() {
            Err("token audiences are invalid for the requested audiences".to_owned())
        } else {
            authenticator
                .authenticate_token(token, lookup, now)
                .map(|user| (user, audiences))
                .map_err(|err| err.to_string())
        }
    };
    match result {
        Ok((user, audiences)) => TokenReviewStatus {
            authenticated: Some(true),
            user: Some(user.to_k8s()),
            audiences: Some(audiences),
            error: None,
        },
        Err(error) => failed(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::authn::BearerToken;
    use crate::auth::sa_token::tests::FakeObjects;
    use serde_json::json;

    fn index() -> RbacIndex {
        let mut index = RbacIndex::with_bootstrap_policy();
        index
            .apply_json(&json!({
                "kind": "RoleBinding",
                "metadata": {"name": "ro", "namespace": "team"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [{"kind": "User", "name": "reader"}],
            }))
            .unwrap();
        index
    }

    fn pods(verb: &str, ns: &str) -> K8sResourceAttributes {
        K8sResourceAttributes {
            verb: Some(verb.to_owned()),
            resource: Some("pods".to_owned()),
            namespace: Some(ns.to_owned()),
            ..K8sResourceAttributes::default()
        }
    }

    #[test]
    fn subject_access_review_allows_and_denies() {
        let index = index();
        let spec = |verb: &str| SubjectAccessReviewSpec {
            user: Some("reader".to_owned()),
            resource_attributes: Some(pods(verb, "team")),
            ..SubjectAccessReviewSpec::default()
        };
        let yes = subject_access_review(&index, &spec("list")).unwrap();
        assert!(yes.allowed);
        assert_eq!(
            yes.reason.as_deref(),
            Some(
                "RBAC: allowed by RoleBinding \"ro/team\" of ClusterRole \"view\" to User \"reader\""
            )
        );
        let no = subject_access_review(&index, &spec("delete")).unwrap();
        assert!(!no.allowed);
        assert_eq!(no.denied, None);
        assert_eq!(no.reason, None);
        // Groups only, as `kubectl auth can-i --as-group` style reviews send.
        let masters = SubjectAccessReviewSpec {
            groups: Some(vec!["system:masters".to_owned()]),
            resource_attributes: Some(pods("delete", "x")),
            ..SubjectAccessReviewSpec::default()
        };
        assert!(subject_access_review(&index, &masters).unwrap().allowed);
    }

    #[test]
    fn review_validation_matches_kube() {
        let index = index();
        let neither = SubjectAccessReviewSpec {
            user: Some("a".to_owned()),
            ..SubjectAccessReviewSpec::default()
        };
        assert_eq!(
            subject_access_review(&index, &neither).unwrap_err().field,
            "spec.resourceAttributes"
        );
        let both = SubjectAccessReviewSpec {
            user: Some("a".to_owned()),
            resource_attributes: Some(pods("get", "a")),
            non_resource_attributes: Some(K8sNonResourceAttributes::default()),
            ..SubjectAccessReviewSpec::default()
        };
        assert_eq!(
            subject_access_review(&index, &both).unwrap_err().field,
            "spec.nonResourceAttributes"
        );
        let nobody = SubjectAccessReviewSpec {
            resource_attributes: Some(pods("get", "a")),
            ..SubjectAccessReviewSpec::default()
        };
        assert_eq!(
            subject_access_review(&index, &nobody)
                .unwrap_err()
                .to_string(),
            "spec.user: Invalid value: at least one of user or group must be specified"
        );
        let other_ns = SubjectAccessReviewSpec {
            user: Some("reader".to_owned()),
            resource_attributes: Some(pods("get", "other")),
            ..SubjectAccessReviewSpec::default()
        };
        assert_eq!(
            local_subject_access_review(&index, "team", &other_ns)
                .unwrap_err()
                .field,
            "spec.resourceAttributes.namespace"
        );
        let same_ns = SubjectAccessReviewSpec {
            resource_attributes: Some(pods("get", "team")),
            ..other_ns
        };
        assert!(
            local_subject_access_review(&index, "team", &same_ns)
                .unwrap()
                .allowed
        );
    }

    #[test]
    fn self_reviews_use_the_requester() {
        let index = index();
        let reader = UserInfo::authenticated("reader", &[]);
        let spec = SelfSubjectAccessReviewSpec {
            resource_attributes: Some(pods("get", "team")),
            non_resource_attributes: None,
        };
        assert!(
            self_subject_access_review(&index, &reader, &spec)
                .unwrap()
                .allowed
        );
        let healthz = SelfSubjectAccessReviewSpec {
            resource_attributes: None,
            non_resource_attributes: Some(K8sNonResourceAttributes {
                path: Some("/healthz".to_owned()),
                verb: Some("get".to_owned()),
            }),
        };
        let anon = UserInfo::anonymous();
        assert!(
            self_subject_access_review(&index, &anon, &healthz)
                .unwrap()
                .allowed
        );

        let rules = self_subject_rules_review(
            &index,
            &reader,
            &SelfSubjectRulesReviewSpec {
                namespace: Some("team".to_owned()),
            },
        );
        assert!(!rules.incomplete);
        assert!(rules.resource_rules.iter().any(|r| {
            r.resources.as_ref().unwrap().contains(&"pods".to_owned())
                && r.verbs.contains(&"list".to_owned())
        }));
        assert!(rules.non_resource_rules.iter().any(|r| {
            r.non_resource_urls
                .as_ref()
                .unwrap()
                .contains(&"/api".to_owned())
        }));
        assert!(
            rules
                .resource_rules
                .iter()
                .all(|r| !r.verbs.contains(&"delete".to_owned()))
        );

        let me = self_subject_review(&reader).user_info.unwrap();
        assert_eq!(me.username.as_deref(), Some("reader"));
        assert_eq!(me.groups, Some(vec!["system:authenticated".to_owned()]));
    }

    #[test]
    fn rules_review_reports_missing_roles_as_incomplete() {
        let mut index = RbacIndex::new();
        index
            .apply_json(&json!({
                "kind": "RoleBinding",
                "metadata": {"name": "dangling", "namespace": "team"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "gone"},
                "subjects": [{"kind": "User", "name": "u"}],
            }))
            .unwrap();
        let status = self_subject_rules_review(
            &index,
            &UserInfo::authenticated("u", &[]),
            &SelfSubjectRulesReviewSpec {
                namespace: Some("team".to_owned()),
            },
        );
        assert!(status.incomplete);
        assert_eq!(
            status.evaluation_error.as_deref(),
            Some("role.rbac.authorization.k8s.io \"gone\" not found")
        );
    }

    #[test]
    fn token_review_reports_identity_or_failure() {
        let admin = BearerToken::new("admin-secret");
        let authn = Authenticator::new(&admin, ServiceAccountTokens::in_memory().unwrap());
        let objects = FakeObjects::default();
        let now = jiff::Timestamp::now();
        let ok = token_review(
            &authn,
            &objects,
            &TokenReviewSpec {
                token: Some("admin-secret".to_owned()),
                audiences: None,
            },
            now,
        );
        assert_eq!(ok.authenticated, Some(true));
        assert_eq!(ok.user.unwrap().username.as_deref(), Some("fedmesh:admin"));
        let bad = token_review(
            &authn,
            &objects,
            &TokenReviewSpec {
                token: Some("nope".to_owned()),
                audiences: None,
            },
            now,
        );
        assert_eq!(bad.authenticated, Some(false));
        assert!(bad.user.is_none());
        let wrong_audience = token_review(
            &authn,
            &objects,
            &TokenReviewSpec {
                token: Some("admin-secret".to_owned()),
                audiences: Some(vec!["vault".to_owned()]),
            },
            now,
        );
        assert_eq!(wrong_audience.authenticated, Some(false));

        // A token minted for another audience passes a review for that audience only, as
        // Vault's Kubernetes auth relies on.
        let objects = FakeObjects::default().with(
            crate::auth::sa_token::ObjectKind::ServiceAccount,
            "apps",
            "bot",
            "sa-uid-1",
        );
        let vault_token = authn
            .service_accounts()
            .mint_token_request(
                &crate::auth::sa_token::tests::bot(),
                &k8s_openapi::api::authentication::v1::TokenRequestSpec {
                    audiences: vec!["vault".to_owned()],
                    ..Default::default()
                },
                &objects,
                now,
            )
            .unwrap()
            .status
            .token;
        let review = |audiences: Option<Vec<String>>| {
            token_review(
                &authn,
                &objects,
                &TokenReviewSpec {
                    token: Some(vault_token.clone()),
                    audiences,
                },
                now,
            )
        };
        let for_vault = review(Some(vec!["vault".to_owned(), "other".to_owned()]));
        assert_eq!(for_vault.authenticated, Some(true));
        assert_eq!(for_vault.audiences, Some(vec!["vault".to_owned()]));
        assert_eq!(
            for_vault.user.unwrap().username.as_deref(),
            Some("system:serviceaccount:apps:bot")
        );
        assert_eq!(review(None).authenticated, Some(false));
    }
}
