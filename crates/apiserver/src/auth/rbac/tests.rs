use serde_json::json;

use super::*;
use crate::auth::user::{ServiceAccountName, UserInfo};

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo::authenticated(name, groups)
}

fn sa(ns: &str, name: &str) -> UserInfo {
    UserInfo::service_account(&ServiceAccountName::new(ns, name), "uid")
}

fn res(verb: &str, group: &str, resource: &str, ns: &str) -> Attributes {
    ResourceAttributes::new(verb, group, resource)
        .in_namespace(ns)
        .into()
}

fn allowed(index: &RbacIndex, user: &UserInfo, attrs: &Attributes) -> bool {
    index.authorize(user, attrs).is_allowed()
}

fn role_binding(
    ns: &str,
    name: &str,
    role_kind: &str,
    role: &str,
    subjects: serde_json::Value,
) -> serde_json::Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": subjects,
    })
}

fn cluster_role_binding(name: &str, role: &str, subjects: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

fn user_subject(name: &str) -> serde_json::Value {
    json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}])
}

/// Bootstrap policy plus: viewer=view in ns "team", editor=edit in "team", owner=admin in
/// "team", auditor=view cluster-wide.
fn index() -> RbacIndex {
    let mut index = RbacIndex::with_bootstrap_policy();
    for (who, role) in [("viewer", "view"), ("editor", "edit"), ("owner", "admin")] {
        index
            .apply_json(&role_binding(
                "team",
                who,
                "ClusterRole",
                role,
                user_subject(who),
            ))
            .unwrap();
    }
    index
        .apply_json(&cluster_role_binding(
            "auditor",
            "view",
            user_subject("auditor"),
        ))
        .unwrap();
    index
}

#[test]
fn view_reads_but_never_writes() {
    let index = index();
    let viewer = user("viewer", &[]);
    for resource in [
        "pods",
        "services",
        "configmaps",
        "endpoints",
        "serviceaccounts",
    ] {
        for verb in ["get", "list", "watch"] {
            assert!(
                allowed(&index, &viewer, &res(verb, "", resource, "team")),
                "{verb} {resource}"
            );
        }
        for verb in ["create", "update", "patch", "delete", "deletecollection"] {
            assert!(
                !allowed(&index, &viewer, &res(verb, "", resource, "team")),
                "{verb} {resource}"
            );
        }
    }
    assert!(allowed(
        &index,
        &viewer,
        &res("list", "discovery.k8s.io", "endpointslices", "team")
    ));
    assert!(!allowed(
        &index,
        &viewer,
        &res("get", "", "secrets", "team")
    ));
    assert!(!allowed(&index, &viewer, &res("get", "", "pods", "other")));
    assert!(!allowed(&index, &viewer, &res("list", "", "pods", "")));
}

#[test]
fn edit_writes_workloads_but_not_rbac_and_admin_manages_rbac() {
    let index = index();
    let editor = user("editor", &[]);
    let owner = user("owner", &[]);
    for (verb, group, resource) in [
        ("create", "", "pods"),
        ("delete", "", "services"),
        ("patch", "", "configmaps"),
        ("get", "", "secrets"),
        ("create", "", "secrets"),
        ("update", "coordination.k8s.io", "leases"),
        ("get", "coordination.k8s.io", "leases"),
        ("create", "apps", "deployments"),
    ] {
        assert!(
            allowed(&index, &editor, &res(verb, group, resource, "team")),
            "edit {verb} {resource}"
        );
        assert!(
            allowed(&index, &owner, &res(verb, group, resource, "team")),
            "admin {verb} {resource}"
        );
    }
    let scale = ResourceAttributes::new("update", "apps", "deployments")
        .subresource("scale")
        .named("web")
        .in_namespace("team");
    assert!(allowed(&index, &editor, &scale.into()));
    let token = ResourceAttributes::new("create", "", "serviceaccounts")
        .subresource("token")
        .named("bot")
        .in_namespace("team");
    assert!(allowed(&index, &editor, &token.into()));
    assert!(!allowed(
        &index,
        &editor,
        &res("create", RBAC_GROUP, "rolebindings", "team")
    ));
    assert!(allowed(
        &index,
        &owner,
        &res("create", RBAC_GROUP, "rolebindings", "team")
    ));
    assert!(!allowed(
        &index,
        &owner,
        &res("create", RBAC_GROUP, "clusterroles", "")
    ));
    assert!(!allowed(
        &index,
        &owner,
        &res("delete", "", "namespaces", "")
    ));
    // Not in the edit role: the status subresource of pods is read-only for editors.
    let status = ResourceAttributes::new("update", "", "pods")
        .subresource("status")
        .in_namespace("team");
    assert!(!allowed(&index, &editor, &status.into()));
}

#[test]
fn cluster_role_binding_grants_every_namespace_and_cluster_scope() {
    let index = index();
    let auditor = user("auditor", &[]);
    assert!(allowed(&index, &auditor, &res("list", "", "pods", "")));
    assert!(allowed(
        &index,
        &auditor,
        &res("get", "", "pods", "anywhere")
    ));
    assert!(allowed(
        &index,
        &auditor,
        &res("list", "", "namespaces", "")
    ));
    assert!(!allowed(
        &index,
        &auditor,
        &res("create", "", "pods", "anywhere")
    ));
}

#[test]
fn namespaced_role_applies_only_in_its_namespace() {
    let mut index = RbacIndex::new();
    index
        .apply_json(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "cm-reader", "namespace": "a"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "resourceNames": ["settings"]}],
        }))
        .unwrap();
    index
        .apply_json(&role_binding(
            "a",
            "rb",
            "Role",
            "cm-reader",
            user_subject("jo"),
        ))
        .unwrap();
    // A RoleBinding in b cannot reference a's Role.
    index
        .apply_json(&role_binding(
            "b",
            "rb",
            "Role",
            "cm-reader",
            user_subject("jo"),
        ))
        .unwrap();
    let jo = user("jo", &[]);
    let get = |ns: &str, name: &str| -> Attributes {
        ResourceAttributes::new("get", "", "configmaps")
            .in_namespace(ns)
            .named(name)
            .into()
    };
    assert!(allowed(&index, &jo, &get("a", "settings")));
    assert!(!allowed(&index, &jo, &get("a", "other")));
    assert!(!allowed(&index, &jo, &res("list", "", "configmaps", "a")));
    assert!(!allowed(&index, &jo, &get("b", "settings")));
    assert!(!allowed(&index, &jo, &get("", "settings")));
    let decision = index.authorize(&jo, &get("b", "settings"));
    assert_eq!(
        decision.reason(),
        "RBAC: role.rbac.authorization.k8s.io \"cm-reader\" not found"
    );
}

#[test]
fn wildcards_and_subresource_wildcards() {
    let mut index = RbacIndex::new();
    index
        .apply_json(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "scaler"},
            "rules": [
                {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["get", "update"]},
                {"apiGroups": ["example.com"], "resources": ["*"], "verbs": ["*"]},
            ],
        }))
        .unwrap();
    index
        .apply_json(&cluster_role_binding("scaler", "scaler", user_subject("s")))
        .unwrap();
    let s = user("s", &[]);
    let scale = |group: &str, resource: &str| -> Attributes {
        ResourceAttributes::new("update", group, resource)
            .subresource("scale")
            .in_namespace("x")
            .into()
    };
    assert!(allowed(&index, &s, &scale("apps", "deployments")));
    assert!(allowed(&index, &s, &scale("", "replicationcontrollers")));
    assert!(!allowed(
        &index,
        &s,
        &res("update", "apps", "deployments", "x")
    ));
    assert!(allowed(
        &index,
        &s,
        &res("deletecollection", "example.com", "widgets", "x")
    ));
    let widget_status =
        ResourceAttributes::new("patch", "example.com", "widgets").subresource("status");
    assert!(allowed(&index, &s, &widget_status.into()));
    assert!(!allowed(
        &index,
        &s,
        &res("get", "example.org", "widgets", "x")
    ));
}

#[test]
fn non_resource_urls_for_anonymous_and_authenticated() {
    let index = index();
    let anon = UserInfo::anonymous();
    let jane = user("jane", &[]);
    for path in ["/healthz", "/livez", "/readyz", "/version"] {
        assert!(
            allowed(&index, &anon, &Attributes::non_resource("get", path)),
            "{path}"
        );
    }
    assert!(!allowed(
        &index,
        &anon,
        &Attributes::non_resource("get", "/api")
    ));
    assert!(!allowed(
        &index,
        &anon,
        &Attributes::non_resource("get", "/apis/apps/v1")
    ));
    for path in [
        "/api",
        "/api/v1",
        "/apis",
        "/apis/apps/v1",
        "/openapi/v2",
        "/openapi/v3/apis/apps/v1",
    ] {
        assert!(
            allowed(&index, &jane, &Attributes::non_resource("get", path)),
            "{path}"
        );
    }
    assert!(!allowed(
        &index,
        &jane,
        &Attributes::non_resource("get", "/metrics")
    ));
    assert!(!allowed(
        &index,
        &jane,
        &Attributes::non_resource("post", "/api")
    ));
    assert!(!allowed(&index, &anon, &res("get", "", "pods", "default")));
    let ssar =
        ResourceAttributes::new("create", "authorization.k8s.io", "selfsubjectaccessreviews");
    assert!(allowed(&index, &jane, &ssar.clone().into()));
    assert!(!allowed(&index, &anon, &ssar.into()));
}

#[test]
fn system_masters_is_allowed_everything() {
    let index = RbacIndex::new();
    let admin = UserInfo::admin();
    assert_eq!(
        index.authorize(&admin, &res("delete", "", "namespaces", "")),
        Decision::Allow {
            reason: String::new()
        }
    );
    assert!(allowed(
        &index,
        &admin,
        &Attributes::non_resource("get", "/anything")
    ));
    // Without the group, the same user gets nothing beyond the bootstrap policy.
    let index = RbacIndex::with_bootstrap_policy();
    let decision = index.authorize(&user("x", &["other"]), &res("get", "", "pods", "a"));
    assert!(!decision.is_allowed());
}

#[test]
fn allow_reason_names_binding_role_and_subject() {
    let index = index();
    let decision = index.authorize(&user("viewer", &[]), &res("get", "", "pods", "team"));
    assert_eq!(
        decision.reason(),
        "RBAC: allowed by RoleBinding \"viewer/team\" of ClusterRole \"view\" to User \"viewer\""
    );
    let decision = index.authorize(&user("jane", &[]), &Attributes::non_resource("get", "/api"));
    assert_eq!(
        decision.reason(),
        "RBAC: allowed by ClusterRoleBinding \"system:discovery\" of ClusterRole \"system:discovery\" to Group \"system:authenticated\""
    );
}

#[test]
fn service_account_subjects() {
    let mut index = RbacIndex::with_bootstrap_policy();
    // No namespace on the subject: it means the binding's namespace.
    index
        .apply_json(&role_binding(
            "apps",
            "bot-edit",
            "ClusterRole",
            "edit",
            json!([{"kind": "ServiceAccount", "name": "bot"}]),
        ))
        .unwrap();
    index
        .apply_json(&cluster_role_binding(
            "reader",
            "view",
            json!([{"kind": "ServiceAccount", "name": "reader", "namespace": "ops"}]),
        ))
        .unwrap();
    // A ClusterRoleBinding subject without namespace matches nothing.
    index
        .apply_json(&cluster_role_binding(
            "broken",
            "cluster-admin",
            json!([{"kind": "ServiceAccount", "name": "bot"}]),
        ))
        .unwrap();
    assert!(allowed(
        &index,
        &sa("apps", "bot"),
        &res("create", "", "pods", "apps")
    ));
    assert!(!allowed(
        &index,
        &sa("apps", "bot"),
        &res("create", "", "pods", "other")
    ));
    assert!(!allowed(
        &index,
        &sa("other", "bot"),
        &res("create", "", "pods", "apps")
    ));
    assert!(!allowed(
        &index,
        &sa("apps", "bot"),
        &res("delete", "", "nodes", "")
    ));
    assert!(allowed(
        &index,
        &sa("ops", "reader"),
        &res("list", "", "services", "")
    ));
    assert!(!allowed(
        &index,
        &sa("ops", "reader"),
        &res("create", "", "services", "x")
    ));
    let decision = index.authorize(&sa("ops", "reader"), &res("list", "", "services", ""));
    assert_eq!(
        decision.reason(),
        "RBAC: allowed by ClusterRoleBinding \"reader\" of ClusterRole \"view\" to ServiceAccount \"reader/ops\""
    );
    // Group subjects for all service accounts of a namespace.
    index
        .apply_json(&cluster_role_binding(
            "ops-sas",
            "edit",
            json!([{"kind": "Group", "name": "system:serviceaccounts:ops"}]),
        ))
        .unwrap();
    assert!(allowed(
        &index,
        &sa("ops", "anyone"),
        &res("create", "", "configmaps", "x")
    ));
}

#[test]
fn aggregation_follows_labels_through_view_edit_admin() {
    let mut index = index();
    let widgets = |verb: &str| res(verb, "example.com", "widgets", "team");
    assert!(!allowed(&index, &user("viewer", &[]), &widgets("list")));
    index
        .apply_json(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "widgets-view", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list", "watch"]}],
        }))
        .unwrap();
    for who in ["viewer", "editor", "owner"] {
        assert!(allowed(&index, &user(who, &[]), &widgets("list")), "{who}");
        assert!(
            !allowed(&index, &user(who, &[]), &widgets("create")),
            "{who}"
        );
    }
    let updates = index.aggregation_updates();
    let names: Vec<_> = updates
        .iter()
        .map(|r| r.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["admin", "edit", "view"]);
    for role in updates {
        index.apply_cluster_role(role).unwrap();
    }
    assert!(index.aggregation_updates().is_empty());

    assert!(index.delete(RbacKind::ClusterRole, "", "widgets-view"));
    assert!(!allowed(&index, &user("viewer", &[]), &widgets("list")));
    assert!(!allowed(&index, &user("owner", &[]), &widgets("list")));
}

#[test]
fn bootstrap_roles_arrive_aggregated() {
    let roles = bootstrap::cluster_roles();
    let by_name = |n: &str| {
        roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(n))
            .unwrap()
    };
    let view = by_name("view").rules.clone().unwrap();
    let edit = by_name("edit").rules.clone().unwrap();
    let admin = by_name("admin").rules.clone().unwrap();
    assert!(!view.is_empty());
    assert!(view.iter().all(|r| edit.contains(r)));
    assert!(edit.iter().all(|r| admin.contains(r)));
    assert!(admin.len() > edit.len() && edit.len() > view.len());
    let index = RbacIndex::with_bootstrap_policy();
    assert!(index.aggregation_updates().is_empty());
    let objects = bootstrap::objects_json().unwrap();
    assert!(
        objects
            .iter()
            .all(|o| o["apiVersion"] == "rbac.authorization.k8s.io/v1")
    );
    let crb = objects
        .iter()
        .find(|o| o["kind"] == "ClusterRoleBinding" && o["metadata"]["name"] == "cluster-admin")
        .unwrap();
    assert_eq!(crb["subjects"][0]["name"], "system:masters");
    assert_eq!(
        crb["metadata"]["labels"]["kubernetes.io/bootstrapping"],
        "rbac-defaults"
    );
}

#[test]
fn apply_and_delete_bindings() {
    let mut index = index();
    let viewer = user("viewer", &[]);
    assert!(allowed(&index, &viewer, &res("get", "", "pods", "team")));
    assert!(index.delete(RbacKind::RoleBinding, "team", "viewer"));
    assert!(!index.delete(RbacKind::RoleBinding, "team", "viewer"));
    let editor_binding = role_binding(
        "team",
        "editor",
        "ClusterRole",
        "edit",
        user_subject("editor"),
    );
    assert_eq!(
        index.delete_json(&editor_binding).unwrap(),
        (RbacKind::RoleBinding, true)
    );
    assert!(!allowed(
        &index,
        &user("editor", &[]),
        &res("create", "", "pods", "team")
    ));
    assert!(matches!(
        index.delete_json(&json!({"kind": "Role", "metadata": {}})),
        Err(RbacError::MissingField { .. })
    ));
    assert!(!allowed(&index, &viewer, &res("get", "", "pods", "team")));
    assert!(matches!(
        index.apply_json(&json!({"kind": "ConfigMap"})),
        Err(RbacError::NotRbac(_))
    ));
    assert!(matches!(
        index.apply_json(&json!({"kind": "RoleBinding", "metadata": {"name": "x"}, "roleRef": {"apiGroup": "", "kind": "Role", "name": "r"}})),
        Err(RbacError::MissingField { field: "metadata.namespace", .. })
    ));
    assert!(matches!(
        index.apply_json(&json!({"kind": "Role", "metadata": {"name": 5}})),
        Err(RbacError::Decode { .. })
    ));
    assert_eq!(
        RbacKind::from_resource(RBAC_GROUP, "clusterrolebindings"),
        Some(RbacKind::ClusterRoleBinding)
    );
    assert_eq!(RbacKind::from_resource("", "roles"), None);
}

#[test]
fn rules_for_lists_cluster_and_namespace_rules() {
    let index = index();
    let viewer = user("viewer", &[]);
    let in_team = index.rules_for(&viewer, "team");
    let elsewhere = index.rules_for(&viewer, "other");
    assert!(in_team.rules.len() > elsewhere.rules.len());
    assert!(
        elsewhere
            .rules
            .iter()
            .any(|r| r.non_resource_urls.is_some())
    );
    assert!(in_team.errors.is_empty());
    let masters = index.rules_for(&UserInfo::admin(), "");
    assert_eq!(masters.rules[0].verbs, ["*"]);
}
