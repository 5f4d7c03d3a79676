//! The OpenAPI documents kubectl reads: `/openapi/v2` (Swagger 2.0) and `/openapi/v3`
//! (a root listing one document per group-version).
//!
//! What kubectl 1.27..1.33 depends on:
//! - `apply`/`create`/`edit` decide between server-side field validation and
//!   client-side validation by looking, in the group-version's v3 document, for a
//!   PATCH operation whose `x-kubernetes-group-version-kind` is the object's GVK and
//!   whose inline parameters include `fieldValidation` (for a CRD whose document is
//!   missing it checks `Namespace` instead);
//! - `explain` fetches the group-version's v3 document, finds the schema whose
//!   `x-kubernetes-group-version-kind` lists the GVK, and follows
//!   `#/components/schemas/...` references (kube-apiserver writes a referenced field
//!   with a description as `allOf: [{$ref}]`, and so do we);
//! - client-side `apply` reads `x-kubernetes-patch-strategy`/`-merge-key` from the
//!   definitions to build strategic merge patches.
//!
//! Differences from kube-apiserver: no watch paths, no `proxy`/`connect` paths.
//! `/openapi/v2` is served as JSON and, to a protobuf `Accept`, as gnostic's
//! protobuf message (`openapi_pb`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};

use super::builtin::{BuiltinKind, builtin_definition};
use super::{Schema, SchemaType, parse};

/// The served Kubernetes version written into `info.version`.
const KUBE_VERSION: &str = "v1.33.0";

/// One served version of a CRD, as the OpenAPI documents need it.
#[derive(Debug, Clone)]
pub struct CrdVersionSchema {
    /// API group (`stable.example.com`).
    pub group: String,
    /// Version (`v1`).
    pub version: String,
    /// Kind (`CronTab`).
    pub kind: String,
    /// List kind (`CronTabList`).
    pub list_kind: String,
    /// Plural resource name (`crontabs`).
    pub plural: String,
    /// Whether the resource is namespaced.
    pub namespaced: bool,
    /// Whether the `status` subresource is enabled.
    pub status_subresource: bool,
    /// The version's structural schema (from [`super::parse_crd_schema`]).
    pub schema: Arc<Schema>,
}

impl CrdVersionSchema {
    /// The definition name kube-apiserver uses: the group reversed, then version and
    /// kind (`com.example.stable.v1.CronTab`).
    pub fn definition_name(&self) -> String {
        let reversed: Vec<&str> = self.group.split('.').rev().collect();
        format!("{}.{}.{}", reversed.join("."), self.version, self.kind)
    }
}

/// One resource as the path generator needs it.
struct Resource {
    group: String,
    version: String,
    kind: String,
    plural: String,
    namespaced: bool,
    status: bool,
    definition: String,
    list_definition: String,
    strategic: bool,
    /// Create-only kinds (reviews, TokenRequest) get a POST path only.
    create_only: bool,
}

impl Resource {
    /// The document (and URL prefix) the resource lives in; TokenRequest is the
    /// `serviceaccounts/token` subresource, served under the core group.
    fn gv_path(&self) -> String {
        if self.group.is_empty() || self.kind == "TokenRequest" {
            "api/v1".to_owned()
        } else {
            format!("apis/{}/{}", self.group, self.version)
        }
    }
}

fn builtin_resources() -> Vec<Resource> {
    BuiltinKind::ALL
        .into_iter()
        .map(|k| Resource {
            group: k.group().to_owned(),
            version: k.version().to_owned(),
            kind: k.kind().to_owned(),
            plural: k.plural().to_owned(),
            namespaced: k.namespaced(),
            status: matches!(
                k,
                BuiltinKind::Service
                    | BuiltinKind::Pod
                    | BuiltinKind::Node
                    | BuiltinKind::Namespace
                    | BuiltinKind::CustomResourceDefinition
            ),
            definition: k.definition_name().to_owned(),
            list_definition: format!("{}List", k.definition_name()),
            strategic: true,
            create_only: !k.is_stored(),
        })
        .collect()
}

/// Definitions of CRD versions: the version's schema with `apiVersion`, `kind` and
/// `metadata` filled in as kube-apiserver publishes them, and its list.
fn crd_definitions(crd: &CrdVersionSchema) -> (Resource, Schema, Schema) {
    let name = crd.definition_name();
    let mut s = (*crd.schema).clone();
    s.type_ = Some(SchemaType::Object);
    let api_version = builtin_definition("io.k8s.api.core.v1.Service")
        .and_then(|svc| svc.properties.get("apiVersion").cloned());
    let kind = builtin_definition("io.k8s.api.core.v1.Service")
        .and_then(|svc| svc.properties.get("kind").cloned());
    if let Some(a) = api_version.clone() {
        s.properties.insert("apiVersion".into(), a);
    }
    if let Some(k) = kind.clone() {
        s.properties.insert("kind".into(), k);
    }
    if let Some(meta) = builtin_definition("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta") {
        let described = Schema {
            description: Some("Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata".into()),
            ..(*meta).clone()
        };
        s.properties.insert("metadata".into(), Arc::new(described));
    }
    s.definition = Some(name.clone().into());
    let item = Arc::new(s.clone());
    let mut list = Schema::of_type(SchemaType::Object);
    list.description = Some(format!("{} is a list of {}", crd.list_kind, crd.kind));
    list.required = vec!["items".into()];
    if let Some(a) = api_version {
        list.properties.insert("apiVersion".into(), a);
    }
    if let Some(k) = kind {
        list.properties.insert("kind".into(), k);
    }
    list.properties.insert(
        "items".into(),
        Arc::new(Schema {
            description: Some(format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", crd.plural)),
            items: Some(item),
            ..Schema::of_type(SchemaType::Array)
        }),
    );
    if let Some(lm) = builtin_definition("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta") {
        list.properties.insert("metadata".into(), lm);
    }
    let list_name = format!("{name}List");
    list.definition = Some(list_name.clone().into());
    let r = Resource {
        group: crd.group.clone(),
        version: crd.version.clone(),
        kind: crd.kind.clone(),
        plural: crd.plural.clone(),
        namespaced: crd.namespaced,
        status: crd.status_subresource,
        definition: name,
        list_definition: list_name,
        strategic: false,
        create_only: false,
    };
    (r, s, list)
}

/// A resource with, for CRDs, its item and list definitions.
type Served = (Resource, Option<(Schema, Schema)>);

/// Which flavour of OpenAPI is written.
#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    V2,
    V3,
}

/// Collects definitions (by name) while rendering, so that every `$ref` resolves.
struct Definitions {
    flavor: Flavor,
    rendered: BTreeMap<String, Value>,
    in_progress: BTreeSet<String>,
    gvk: BTreeMap<String, Value>,
}

impl Definitions {
    fn new(flavor: Flavor) -> Self {
        Self {
            flavor,
            rendered: BTreeMap::new(),
            in_progress: BTreeSet::new(),
            gvk: BTreeMap::new(),
        }
    }

    fn prefix(&self) -> &'static str {
        match self.flavor {
            Flavor::V2 => "#/definitions/",
            Flavor::V3 => "#/components/schemas/",
        }
    }

    /// Renders a named definition (once) and returns a reference to it.
    fn add(&mut self, s: &Schema) -> Option<Value> {
        let name = s.definition.as_deref()?.to_owned();
        if !self.rendered.contains_key(&name) && self.in_progress.insert(name.clone()) {
            // The definition's own text, not the description a referencing field gave it.
            let own = builtin_definition(&name).unwrap_or_else(|| Arc::new(s.clone()));
            let mut body = self.body(&own);
            if let Some(g) = self.gvk.get(&name)
                && let Some(o) = body.as_object_mut()
            {
                o.insert("x-kubernetes-group-version-kind".into(), g.clone());
            }
            self.rendered.insert(name.clone(), body);
        }
        let reference = json!({"$ref": format!("{}{name}", self.prefix())});
        let own_description = builtin_definition(&name).and_then(|b| b.description.clone());
        match &s.description {
            Some(d) if Some(d) != own_description.as_ref() => Some(match self.flavor {
                Flavor::V3 => json!({"allOf": [reference], "description": d}),
                Flavor::V2 => json!({"$ref": format!("{}{name}", self.prefix()), "description": d}),
            }),
            _ => Some(reference),
        }
    }

    /// Renders a schema body, turning named children into references.
    fn body(&mut self, s: &Schema) -> Value {
        let mut v = parse::to_json(s, &mut |child| {
            if child.definition.is_some() {
                self.add(child)
            } else {
                None
            }
        });
        if self.flavor == Flavor::V2 {
            v2_downgrade(&mut v);
        }
        v
    }
}

/// Swagger 2.0 has no `nullable`, `anyOf`, `oneOf`, `not`; kube-apiserver drops them
/// (and the type of int-or-string fields) when it publishes v2.
fn v2_downgrade(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        for k in [
            "nullable",
            "anyOf",
            "oneOf",
            "not",
            "x-kubernetes-validations",
        ] {
            o.remove(k);
        }
        if o.get("x-kubernetes-int-or-string") == Some(&json!(true)) {
            o.remove("type");
            o.remove("allOf");
        }
        for (_, child) in o.iter_mut() {
            v2_downgrade(child);
        }
    } else if let Some(a) = v.as_array_mut() {
        for child in a {
            v2_downgrade(child);
        }
    }
}

fn gvk_value(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "kind": kind, "version": version}])
}

fn query(name: &str, description: &str, flavor: Flavor, type_: &str) -> Value {
    match flavor {
        Flavor::V2 => {
            json!({"name": name, "in": "query", "description": description, "type": type_, "uniqueItems": true})
        }
        Flavor::V3 => {
            json!({"name": name, "in": "query", "description": description, "schema": {"type": type_, "uniqueItems": true}})
        }
    }
}

fn path_param(name: &str, description: &str, flavor: Flavor) -> Value {
    match flavor {
        Flavor::V2 => {
            json!({"name": name, "in": "path", "required": true, "description": description, "type": "string", "uniqueItems": true})
        }
        Flavor::V3 => {
            json!({"name": name, "in": "path", "required": true, "description": description, "schema": {"type": "string", "uniqueItems": true}})
        }
    }
}

const FIELD_VALIDATION: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.";

/// `patchCoreV1NamespacedService`-style operation ids.
fn operation_id(verb: &str, r: &Resource, namespaced_path: bool, suffix: &str) -> String {
    let group: String = if r.group.is_empty() {
        "Core".into()
    } else {
        r.group
            .trim_end_matches(".k8s.io")
            .split(['.', '-'])
            .map(|p| {
                let mut c = p.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect()
    };
    let mut version = r.version.clone();
    if let Some(f) = version.get(..1) {
        version = f.to_ascii_uppercase() + &version[1..];
    }
    let ns = if namespaced_path { "Namespaced" } else { "" };
    format!("{verb}{group}{version}{ns}{}{suffix}", r.kind)
}

#[allow(clippy::too_many_arguments)]
fn operation(
    flavor: Flavor,
    verb: &str,
    action: &str,
    r: &Resource,
    namespaced_path: bool,
    suffix: &str,
    body_def: Option<&str>,
    response_def: &str,
    extra: &[Value],
    patch: bool,
) -> Value {
    let prefix = match flavor {
        Flavor::V2 => "#/definitions/",
        Flavor::V3 => "#/components/schemas/",
    };
    let mut params: Vec<Value> = Vec::new();
    if action != "list" && action != "deletecollection" && action != "post" {
        params.push(path_param(
            "name",
            &format!("name of the {}", r.kind),
            flavor,
        ));
    }
    if namespaced_path {
        params.push(path_param(
            "namespace",
            "object name and auth scope, such as for teams and projects",
            flavor,
        ));
    }
    params.push(query(
        "pretty",
        "If 'true', then the output is pretty printed.",
        flavor,
        "string",
    ));
    params.extend(extra.iter().cloned());
    let response = json!({"$ref": format!("{prefix}{response_def}")});
    let mut op = Map::new();
    op.insert("description".into(), json!(format!("{verb} {}", r.kind)));
    op.insert(
        "operationId".into(),
        json!(operation_id(verb, r, namespaced_path, suffix)),
    );
    op.insert("tags".into(), json!([r.gv_path().replace('/', "_")]));
    let content_types: Vec<&str> = if patch {
        let mut t = vec![
            "application/json-patch+json",
            "application/merge-patch+json",
        ];
        if r.strategic {
            t.push("application/strategic-merge-patch+json");
        }
        t.push("application/apply-patch+yaml");
        t
    } else {
        vec!["*/*"]
    };
    match flavor {
        Flavor::V2 => {
            if let Some(b) = body_def {
                params.push(json!({"name": "body", "in": "body", "required": true, "schema": {"$ref": format!("{prefix}{b}")}}));
            }
            op.insert("consumes".into(), json!(content_types));
            op.insert(
                "produces".into(),
                json!([
                    "application/json",
                    "application/yaml",
                    "application/vnd.kubernetes.protobuf"
                ]),
            );
            op.insert("schemes".into(), json!(["https"]));
            op.insert("responses".into(), json!({"200": {"description": "OK", "schema": response}, "401": {"description": "Unauthorized"}}));
        }
        Flavor::V3 => {
            if let Some(b) = body_def {
                let content: Map<String, Value> = content_types
                    .iter()
                    .map(|t| {
                        (
                            (*t).to_owned(),
                            json!({"schema": {"$ref": format!("{prefix}{b}")}}),
                        )
                    })
                    .collect();
                op.insert(
                    "requestBody".into(),
                    json!({"content": content, "required": true}),
                );
            }
            op.insert(
                "responses".into(),
                json!({"200": {"description": "OK", "content": {
                    "application/json": {"schema": response},
                    "application/yaml": {"schema": response}
                }}, "401": {"description": "Unauthorized"}}),
            );
        }
    }
    op.insert("parameters".into(), Value::Array(params));
    op.insert("x-kubernetes-action".into(), json!(action));
    op.insert(
        "x-kubernetes-group-version-kind".into(),
        json!({"group": r.group, "version": r.version, "kind": r.kind}),
    );
    Value::Object(op)
}

/// The paths of one resource.
fn resource_paths(flavor: Flavor, r: &Resource, paths: &mut Map<String, Value>) {
    const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";
    let base = format!("/{}", r.gv_path());
    let write = |f: Flavor| {
        vec![
            query(
                "dryRun",
                "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed",
                f,
                "string",
            ),
            query(
                "fieldManager",
                "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
                f,
                "string",
            ),
            query("fieldValidation", FIELD_VALIDATION, f, "string"),
        ]
    };
    let mut patch_params = write(flavor);
    patch_params.push(query("force", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.", flavor, "boolean"));
    let list_params: Vec<Value> = [
        ("allowWatchBookmarks", "boolean"),
        ("continue", "string"),
        ("fieldSelector", "string"),
        ("labelSelector", "string"),
        ("limit", "integer"),
        ("resourceVersion", "string"),
        ("resourceVersionMatch", "string"),
        ("sendInitialEvents", "boolean"),
        ("timeoutSeconds", "integer"),
        ("watch", "boolean"),
    ]
    .iter()
    .map(|(n, t)| query(n, n, flavor, t))
    .collect();
    let delete_params: Vec<Value> = vec![
        query(
            "dryRun",
            "When present, indicates that modifications should not be persisted.",
            flavor,
            "string",
        ),
        query(
            "gracePeriodSeconds",
            "The duration in seconds before the object should be deleted.",
            flavor,
            "integer",
        ),
        query(
            "propagationPolicy",
            "Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'.",
            flavor,
            "string",
        ),
    ];
    let status_def = format!("{META}Status");
    let collection = if r.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{base}/{}", r.plural)
    };
    if r.create_only {
        let path = if r.kind == "TokenRequest" {
            format!("{base}/namespaces/{{namespace}}/serviceaccounts/{{name}}/token")
        } else {
            collection
        };
        let mut post = operation(
            flavor,
            "create",
            "post",
            r,
            r.namespaced,
            "",
            Some(&r.definition),
            &r.definition,
            &write(flavor),
            false,
        );
        if r.kind == "TokenRequest"
            && let Some(ps) = post.get_mut("parameters").and_then(Value::as_array_mut)
        {
            ps.insert(0, path_param("name", "name of the TokenRequest", flavor));
        }
        paths.insert(path, json!({"post": post}));
        return;
    }
    let ns = r.namespaced;
    paths.insert(
        collection.clone(),
        json!({
            "get": operation(flavor, "list", "list", r, ns, "", None, &r.list_definition, &list_params, false),
            "post": operation(flavor, "create", "post", r, ns, "", Some(&r.definition), &r.definition, &write(flavor), false),
            "delete": operation(flavor, "deletecollection", "deletecollection", r, ns, "", Some(&format!("{META}DeleteOptions")), &status_def, &delete_params, false),
        }),
    );
    let item = format!("{collection}/{{name}}");
    paths.insert(
        item.clone(),
        json!({
            "get": operation(flavor, "read", "get", r, ns, "", None, &r.definition, &[], false),
            "put": operation(flavor, "replace", "put", r, ns, "", Some(&r.definition), &r.definition, &write(flavor), false),
            "patch": operation(flavor, "patch", "patch", r, ns, "", Some(&format!("{META}Patch")), &r.definition, &patch_params, true),
            "delete": operation(flavor, "delete", "delete", r, ns, "", Some(&format!("{META}DeleteOptions")), &status_def, &delete_params, false),
        }),
    );
    if r.status {
        paths.insert(
            format!("{item}/status"),
            json!({
                "get": operation(flavor, "read", "get", r, ns, "Status", None, &r.definition, &[], false),
                "put": operation(flavor, "replace", "put", r, ns, "Status", Some(&r.definition), &r.definition, &write(flavor), false),
                "patch": operation(flavor, "patch", "patch", r, ns, "Status", Some(&format!("{META}Patch")), &r.definition, &patch_params, true),
            }),
        );
    }
    if ns {
        paths.insert(
            format!("{base}/{}", r.plural),
            json!({"get": operation(flavor, "list", "list", r, false, "ForAllNamespaces", None, &r.list_definition, &list_params, false)}),
        );
    }
}

/// Renders the definitions and paths of `resources` (plus the meta types operations
/// refer to) into `(paths, definitions)`.
fn render(flavor: Flavor, resources: &[Served]) -> (Map<String, Value>, BTreeMap<String, Value>) {
    let mut defs = Definitions::new(flavor);
    for (r, _) in resources {
        defs.gvk.insert(
            r.definition.clone(),
            gvk_value(&r.group, &r.version, &r.kind),
        );
        defs.gvk.insert(
            r.list_definition.clone(),
            gvk_value(&r.group, &r.version, &format!("{}List", r.kind)),
        );
    }
    let mut groups: BTreeSet<(String, String)> = resources
        .iter()
        .map(|(r, _)| (r.group.clone(), r.version.clone()))
        .collect();
    groups.insert((String::new(), "v1".into()));
    let meta_gvks = |kind: &str| -> Value {
        Value::Array(
            groups
                .iter()
                .map(|(g, v)| json!({"group": g, "kind": kind, "version": v}))
                .collect(),
        )
    };
    defs.gvk.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions".into(),
        meta_gvks("DeleteOptions"),
    );
    defs.gvk.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent".into(),
        meta_gvks("WatchEvent"),
    );
    defs.gvk.insert(
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status".into(),
        gvk_value("", "v1", "Status"),
    );
    let mut paths = Map::new();
    for (r, crd) in resources {
        match crd {
            Some((item, list)) => {
                defs.add(item);
                defs.add(list);
            }
            None => {
                for name in [&r.definition, &r.list_definition] {
                    if let Some(s) = builtin_definition(name) {
                        defs.add(&s);
                    }
                }
            }
        }
        resource_paths(flavor, r, &mut paths);
    }
    for name in ["Status", "DeleteOptions", "Patch", "WatchEvent"] {
        if let Some(s) = builtin_definition(&format!("io.k8s.apimachinery.pkg.apis.meta.v1.{name}"))
        {
            defs.add(&s);
        }
    }
    (paths, defs.rendered)
}

fn all_resources(crds: &[CrdVersionSchema]) -> Vec<Served> {
    let mut out: Vec<Served> = builtin_resources().into_iter().map(|r| (r, None)).collect();
    for crd in crds {
        let (r, item, list) = crd_definitions(crd);
        out.push((r, Some((item, list))));
    }
    out
}

/// The Swagger 2.0 document served at `/openapi/v2`, for the built-in kinds and the
/// given CRD versions.
pub fn openapi_v2(crds: &[CrdVersionSchema]) -> Value {
    let (paths, definitions) = render(Flavor::V2, &all_resources(crds));
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION},
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {"BearerToken": {"description": "Bearer Token authentication", "type": "apiKey", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}]
    })
}

/// One group-version document of `/openapi/v3`, serialized, with the hash the root
/// document advertises (clients cache by it).
#[derive(Debug, Clone)]
pub struct OpenApiV3Document {
    /// The JSON bytes to serve.
    pub json: Vec<u8>,
    /// Upper-case hex SHA-512 of `json`, used in `serverRelativeURL`'s `hash=` and as
    /// an ETag.
    pub hash: String,
}

impl OpenApiV3Document {
    fn of(doc: &Value) -> Self {
        let json = serde_json::to_vec(doc).unwrap_or_default();
        let hash = Sha512::digest(&json)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        OpenApiV3Document { json, hash }
    }
}

/// The documents kube-apiserver lists beside the group-versions: `api`
/// (`GET /api/`), `apis` (`GET /apis/`) and `version` (`GET /version/`).
fn discovery_documents() -> Vec<(String, OpenApiV3Document)> {
    let doc = |path: &str, id: &str, tag: &str, schema: &str, properties: Value| {
        let reference = format!("#/components/schemas/{schema}");
        let content = |ct: &str| (ct.to_owned(), json!({"schema": {"$ref": reference}}));
        let media: Map<String, Value> = [
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf",
        ]
        .into_iter()
        .map(content)
        .collect();
        json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": KUBE_VERSION},
            "paths": {path: {"get": {
                "tags": [tag],
                "description": format!("get {}", tag.replace('_', " ")),
                "operationId": id,
                "responses": {
                    "200": {"description": "OK", "content": media},
                    "401": {"description": "Unauthorized"}
                }
            }}},
            "components": {
                "schemas": {schema: {"type": "object", "properties": properties}},
                "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}}
            }
        })
    };
    let strings = json!({"type": "array", "items": {"type": "string", "default": ""}});
    let text = json!({"type": "string", "default": ""});
    vec![
        (
            "api".to_owned(),
            OpenApiV3Document::of(&doc(
                "/api/",
                "getCoreAPIVersions",
                "core",
                "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions",
                json!({"apiVersion": text, "kind": text, "versions": strings,
                       "serverAddressByClientCIDRs": {"type": "array", "items": {"type": "object"}}}),
            )),
        ),
        (
            "apis".to_owned(),
            OpenApiV3Document::of(&doc(
                "/apis/",
                "getAPIVersions",
                "apis",
                "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList",
                json!({"apiVersion": text, "kind": text,
                       "groups": {"type": "array", "items": {"type": "object"}}}),
            )),
        ),
        (
            "version".to_owned(),
            OpenApiV3Document::of(&doc(
                "/version/",
                "getCodeVersion",
                "version",
                "io.k8s.apimachinery.pkg.version.Info",
                json!({"major": text, "minor": text, "gitVersion": text, "gitCommit": text,
                       "gitTreeState": text, "buildDate": text, "goVersion": text,
                       "compiler": text, "platform": text}),
            )),
        ),
    ]
}

/// The OpenAPI v3 documents: one per group-version path (`api/v1`,
/// `apis/discovery.k8s.io/v1`, ...).
#[derive(Debug, Clone, Default)]
pub struct OpenApiV3 {
    documents: BTreeMap<String, OpenApiV3Document>,
}

impl OpenApiV3 {
    /// Builds the documents for the built-in kinds and the given CRD versions.
    pub fn build(crds: &[CrdVersionSchema]) -> Self {
        let mut by_gv: BTreeMap<String, Vec<Served>> = BTreeMap::new();
        for (r, crd) in all_resources(crds) {
            by_gv.entry(r.gv_path()).or_default().push((r, crd));
        }
        let documents = by_gv
            .into_iter()
            .map(|(gv, resources)| {
                let (paths, schemas) = render(Flavor::V3, &resources);
                let doc = json!({
                    "openapi": "3.0.0",
                    "info": {"title": "Kubernetes", "version": KUBE_VERSION},
                    "paths": paths,
                    "components": {
                        "schemas": schemas,
                        "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}}
                    }
                });
                (gv, OpenApiV3Document::of(&doc))
            })
            .chain(discovery_documents())
            .collect();
        Self { documents }
    }

    /// The root document served at `/openapi/v3`.
    pub fn root(&self) -> Value {
        let paths: Map<String, Value> = self
            .documents
            .iter()
            .map(|(gv, d)| {
                (
                    gv.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={}", d.hash)}),
                )
            })
            .collect();
        json!({"paths": paths})
    }

    /// The document of a group-version path (`api/v1`, `apis/rbac.authorization.k8s.io/v1`).
    pub fn document(&self, gv_path: &str) -> Option<&OpenApiV3Document> {
        self.documents.get(gv_path.trim_matches('/'))
    }

    /// The group-version paths that have a document.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.documents.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{FieldPath, parse_crd_schema};

    fn crontab() -> CrdVersionSchema {
        let schema = parse_crd_schema(
            &json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
                "cronSpec": {"type": "string", "description": "the schedule"},
                "replicas": {"type": "integer", "minimum": 1, "nullable": true}
            }}}}),
            &FieldPath::root(),
        )
        .unwrap();
        CrdVersionSchema {
            group: "stable.example.com".into(),
            version: "v1".into(),
            kind: "CronTab".into(),
            list_kind: "CronTabList".into(),
            plural: "crontabs".into(),
            namespaced: true,
            status_subresource: false,
            schema: Arc::new(schema),
        }
    }

    fn doc(v3: &OpenApiV3, gv: &str) -> Value {
        serde_json::from_slice(&v3.document(gv).unwrap().json).unwrap()
    }

    /// kubectl's check: a PATCH operation for the GVK with a `fieldValidation` parameter.
    fn supports_field_validation(doc: &Value, group: &str, version: &str, kind: &str) -> bool {
        doc["paths"].as_object().unwrap().values().any(|p| {
            p.get("patch").is_some_and(|op| {
                op["x-kubernetes-group-version-kind"]
                    == json!({"group": group, "version": version, "kind": kind})
                    && op["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|param| param["name"] == "fieldValidation")
            })
        })
    }

    /// Every `$ref` in `v` names a key of `defs`.
    fn refs_resolve(v: &Value, defs: &Value, prefix: &str) {
        match v {
            Value::Object(o) => {
                if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                    let name = r.strip_prefix(prefix).unwrap();
                    assert!(defs.get(name).is_some(), "dangling {r}");
                }
                o.values().for_each(|c| refs_resolve(c, defs, prefix));
            }
            Value::Array(a) => a.iter().for_each(|c| refs_resolve(c, defs, prefix)),
            _ => {}
        }
    }

    #[test]
    fn v3_root_lists_every_group_version_with_a_hash() {
        let v3 = OpenApiV3::build(&[crontab()]);
        let root = v3.root();
        let paths = root["paths"].as_object().unwrap();
        for gv in [
            "api/v1",
            "apis/discovery.k8s.io/v1",
            "apis/rbac.authorization.k8s.io/v1",
            "apis/stable.example.com/v1",
        ] {
            let url = paths[gv]["serverRelativeURL"].as_str().unwrap();
            assert!(url.starts_with(&format!("/openapi/v3/{gv}?hash=")), "{url}");
            assert_eq!(url.split("hash=").nth(1).unwrap().len(), 128);
        }
    }

    #[test]
    fn v3_documents_support_field_validation_and_explain() {
        let v3 = OpenApiV3::build(&[crontab()]);
        let core = doc(&v3, "api/v1");
        for kind in [
            "Service",
            "Pod",
            "Namespace",
            "ConfigMap",
            "Secret",
            "Endpoints",
            "Node",
            "ServiceAccount",
            "Event",
        ] {
            assert!(supports_field_validation(&core, "", "v1", kind), "{kind}");
        }
        let schemas = &core["components"]["schemas"];
        let svc = &schemas["io.k8s.api.core.v1.Service"];
        assert_eq!(
            svc["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "Service", "version": "v1"}])
        );
        assert_eq!(
            svc["properties"]["spec"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.ServiceSpec"
        );
        let ports = &schemas["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"];
        assert_eq!(ports["x-kubernetes-patch-merge-key"], "port");
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["port", "protocol"])
        );
        refs_resolve(&core, schemas, "#/components/schemas/");
        let token =
            &core["paths"]["/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"]["post"];
        assert_eq!(
            token["x-kubernetes-group-version-kind"]["group"],
            "authentication.k8s.io"
        );
        assert!(v3.document("apis/authentication.k8s.io/v1").is_none());
        // What `kubectl explain services` looks up first: a GVK on the all-namespaces path.
        assert_eq!(
            core["paths"]["/api/v1/services"]["get"]["x-kubernetes-group-version-kind"]["kind"],
            "Service"
        );

        let crd = doc(&v3, "apis/stable.example.com/v1");
        assert!(supports_field_validation(
            &crd,
            "stable.example.com",
            "v1",
            "CronTab"
        ));
        let schemas = &crd["components"]["schemas"];
        let ct = &schemas["com.example.stable.v1.CronTab"];
        assert_eq!(
            ct["x-kubernetes-group-version-kind"],
            json!([{"group": "stable.example.com", "kind": "CronTab", "version": "v1"}])
        );
        assert_eq!(
            ct["properties"]["spec"]["properties"]["cronSpec"]["description"],
            "the schedule"
        );
        assert!(
            ct["properties"]["metadata"]["allOf"][0]["$ref"]
                .as_str()
                .unwrap()
                .ends_with("ObjectMeta")
        );
        assert!(schemas.get("com.example.stable.v1.CronTabList").is_some());
        refs_resolve(&crd, schemas, "#/components/schemas/");
        let patch = &crd["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]
            ["patch"];
        assert!(
            patch["requestBody"]["content"]
                .get("application/strategic-merge-patch+json")
                .is_none()
        );
    }

    #[test]
    fn v2_document_has_definitions_and_paths() {
        let v2 = openapi_v2(&[crontab()]);
        assert_eq!(v2["swagger"], "2.0");
        let defs = &v2["definitions"];
        assert_eq!(
            defs["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );
        assert_eq!(
            defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]["x-kubernetes-patch-merge-key"],
            "name"
        );
        assert!(
            defs["com.example.stable.v1.CronTab"]["properties"]["spec"]["properties"]["replicas"]
                .get("nullable")
                .is_none()
        );
        refs_resolve(&v2, defs, "#/definitions/");
        let patch = &v2["paths"]["/api/v1/namespaces/{namespace}/services/{name}"]["patch"];
        assert_eq!(patch["operationId"], "patchCoreV1NamespacedService");
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(
            v2["paths"]
                .get("/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}")
                .is_some()
        );
    }

    /// Follows a field path the way `kubectl explain` and kubectl's strategic merge
    /// patch lookups do: find the schema whose GVK list holds the kind, then walk
    /// properties through `$ref`, single-element `allOf` and array `items`.
    fn explain<'a>(doc: &'a Value, kind: &Value, fields: &[&str]) -> &'a Value {
        let schemas = &doc["components"]["schemas"];
        let resolve = |mut s: &'a Value| -> &'a Value {
            loop {
                if let Some(first) = s.get("allOf").and_then(|a| a.get(0)) {
                    s = first;
                } else if let Some(r) = s.get("$ref").and_then(Value::as_str) {
                    s = &schemas[r.trim_start_matches("#/components/schemas/")];
                } else if let Some(items) = s.get("items") {
                    s = items;
                } else {
                    return s;
                }
            }
        };
        let mut s = schemas
            .as_object()
            .unwrap()
            .values()
            .find(|d| {
                d["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|l| l.contains(kind))
            })
            .unwrap();
        for f in fields {
            s = &resolve(s)["properties"][*f];
            assert!(!s.is_null(), "no field {f}");
        }
        s
    }

    #[test]
    fn explain_and_patch_lookups_walk_the_documents() {
        let v3 = OpenApiV3::build(&[crontab()]);
        let core = doc(&v3, "api/v1");
        let svc = json!({"group": "", "kind": "Service", "version": "v1"});
        let target = explain(&core, &svc, &["spec", "ports", "targetPort"]);
        assert!(
            target["description"]
                .as_str()
                .unwrap()
                .contains("Number or name of the port")
        );
        let ports = explain(&core, &svc, &["spec", "ports"]);
        assert_eq!(ports["x-kubernetes-patch-strategy"], "merge");
        let pod = json!({"group": "", "kind": "Pod", "version": "v1"});
        let env = explain(&core, &pod, &["spec", "containers", "env"]);
        assert_eq!(env["x-kubernetes-patch-merge-key"], "name");
        let finalizers = explain(&core, &pod, &["metadata", "finalizers"]);
        assert_eq!(finalizers["x-kubernetes-list-type"], "set");
        let crd = doc(&v3, "apis/stable.example.com/v1");
        let ct = json!({"group": "stable.example.com", "kind": "CronTab", "version": "v1"});
        assert_eq!(
            explain(&crd, &ct, &["spec", "cronSpec"])["description"],
            "the schedule"
        );
        assert_eq!(explain(&crd, &ct, &["metadata", "name"])["type"], "string");
    }

    #[test]
    fn definition_names_reverse_the_group() {
        assert_eq!(crontab().definition_name(), "com.example.stable.v1.CronTab");
    }
}
