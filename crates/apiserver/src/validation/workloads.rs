//! Workloads (apps/v1 Deployment, ReplicaSet, StatefulSet, DaemonSet; core/v1
//! ReplicationController; batch/v1 Job and CronJob) and the kinds served as
//! plain objects (networking, policy, autoscaling, storage, scheduling,
//! admission webhooks): kube-apiserver's defaults and the essentials of its
//! validation. Pod templates get the pod's defaults and checks, under
//! `spec.template` (`spec.jobTemplate.spec.template` for CronJobs).

use serde_json::{Map, Value, json};

use super::meta::{at, immutable, str_at};
use super::pod;
use crate::schema::{BuiltinKind, FieldError, FieldPath};

fn set_if_absent(m: &mut Map<String, Value>, key: &str, v: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_owned(), v);
    }
}

fn object_at<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Map<String, Value>> {
    path.iter()
        .try_fold(v, |v, k| v.get_mut(*k))
        .and_then(Value::as_object_mut)
}

/// Where a kind keeps its pod template.
fn template_path(kind: BuiltinKind) -> Option<&'static [&'static str]> {
    match kind {
        BuiltinKind::Deployment
        | BuiltinKind::ReplicaSet
        | BuiltinKind::StatefulSet
        | BuiltinKind::DaemonSet
        | BuiltinKind::ReplicationController
        | BuiltinKind::Job => Some(&["spec", "template"]),
        BuiltinKind::CronJob => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

/// `PrepareForCreate` of the workload kinds: status is the server's.
pub fn prepare_create(kind: BuiltinKind, obj: &mut Value) {
    let status = match kind {
        BuiltinKind::Deployment
        | BuiltinKind::ReplicaSet
        | BuiltinKind::StatefulSet
        | BuiltinKind::ReplicationController => json!({"replicas": 0}),
        BuiltinKind::DaemonSet => json!({"currentNumberScheduled": 0, "numberMisscheduled": 0,
            "desiredNumberScheduled": 0, "numberReady": 0}),
        BuiltinKind::Job
        | BuiltinKind::CronJob
        | BuiltinKind::Ingress
        | BuiltinKind::HorizontalPodAutoscaler
        | BuiltinKind::ResourceQuota => json!({}),
        BuiltinKind::PersistentVolumeClaim => json!({"phase": "Pending"}),
        BuiltinKind::PersistentVolume => json!({"phase": "Pending"}),
        BuiltinKind::PodDisruptionBudget => json!({"disruptionsAllowed": 0, "currentHealthy": 0,
            "desiredHealthy": 0, "expectedPods": 0}),
        _ => return,
    };
    if let Some(m) = obj.as_object_mut() {
        m.insert("status".into(), status);
    }
}

/// Defaults of the kinds this module covers (idempotent).
pub fn default(kind: BuiltinKind, obj: &mut Value) {
    if let Some(path) = template_path(kind)
        && let Some(template) = path.iter().try_fold(&mut *obj, |v, k| v.get_mut(*k))
    {
        pod::default(template);
    }
    let Some(spec) = object_at(obj, &["spec"]) else {
        return default_specless(kind, obj);
    };
    match kind {
        BuiltinKind::Deployment => {
            set_if_absent(spec, "replicas", json!(1));
            set_if_absent(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
            );
            if let Some(s) = spec.get_mut("strategy").and_then(Value::as_object_mut)
                && s.get("type").and_then(Value::as_str) == Some("RollingUpdate")
            {
                let ru = s
                    .entry("rollingUpdate")
                    .or_insert_with(|| json!({}))
                    .as_object_mut();
                if let Some(ru) = ru {
                    set_if_absent(ru, "maxUnavailable", json!("25%"));
                    set_if_absent(ru, "maxSurge", json!("25%"));
                }
            }
            set_if_absent(spec, "revisionHistoryLimit", json!(10));
            set_if_absent(spec, "progressDeadlineSeconds", json!(600));
        }
        BuiltinKind::ReplicaSet => set_if_absent(spec, "replicas", json!(1)),
        BuiltinKind::ReplicationController => {
            set_if_absent(spec, "replicas", json!(1));
            let labels = spec
                .get("template")
                .and_then(|t| at(t, &["metadata", "labels"]))
                .cloned();
            if let Some(labels) = labels {
                set_if_absent(spec, "selector", labels);
            }
        }
        BuiltinKind::StatefulSet => {
            set_if_absent(spec, "replicas", json!(1));
            set_if_absent(spec, "podManagementPolicy", json!("OrderedReady"));
            set_if_absent(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            set_if_absent(spec, "revisionHistoryLimit", json!(10));
            set_if_absent(
                spec,
                "persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
        }
        BuiltinKind::DaemonSet => {
            set_if_absent(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
            set_if_absent(spec, "revisionHistoryLimit", json!(10));
        }
        BuiltinKind::Job => default_job_spec(spec),
        BuiltinKind::CronJob => {
            set_if_absent(spec, "concurrencyPolicy", json!("Allow"));
            set_if_absent(spec, "suspend", json!(false));
            set_if_absent(spec, "successfulJobsHistoryLimit", json!(3));
            set_if_absent(spec, "failedJobsHistoryLimit", json!(1));
            if let Some(js) = object_at(
                spec.get_mut("jobTemplate").unwrap_or(&mut Value::Null),
                &["spec"],
            ) {
                default_job_spec(js);
            }
        }
        BuiltinKind::NetworkPolicy if spec.get("policyTypes").is_none() => {
            let mut types = vec![json!("Ingress")];
            if spec.get("egress").is_some() {
                types.push(json!("Egress"));
            }
            spec.insert("policyTypes".into(), Value::Array(types));
        }
        BuiltinKind::HorizontalPodAutoscaler => set_if_absent(spec, "minReplicas", json!(1)),
        BuiltinKind::PersistentVolumeClaim => {
            set_if_absent(spec, "volumeMode", json!("Filesystem"))
        }
        BuiltinKind::PersistentVolume => {
            set_if_absent(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
            set_if_absent(spec, "volumeMode", json!("Filesystem"));
        }
        _ => {}
    }
}

fn default_job_spec(spec: &mut Map<String, Value>) {
    if spec.get("parallelism").is_none() {
        spec.insert("parallelism".into(), json!(1));
    }
    if spec.get("completions").is_none() && spec.get("parallelism") == Some(&json!(1)) {
        spec.insert("completions".into(), json!(1));
    }
    set_if_absent(spec, "backoffLimit", json!(6));
    set_if_absent(spec, "completionMode", json!("NonIndexed"));
    set_if_absent(spec, "suspend", json!(false));
    set_if_absent(spec, "manualSelector", json!(false));
    set_if_absent(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
}

/// Kinds whose fields sit at the top level rather than under `spec`.
fn default_specless(kind: BuiltinKind, obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    match kind {
        BuiltinKind::StorageClass => {
            set_if_absent(m, "reclaimPolicy", json!("Delete"));
            set_if_absent(m, "volumeBindingMode", json!("Immediate"));
        }
        BuiltinKind::PriorityClass => {
            set_if_absent(m, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
        BuiltinKind::ValidatingWebhookConfiguration | BuiltinKind::MutatingWebhookConfiguration => {
            let mutating = kind == BuiltinKind::MutatingWebhookConfiguration;
            for w in m
                .get_mut("webhooks")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object_mut)
            {
                set_if_absent(w, "failurePolicy", json!("Fail"));
                set_if_absent(w, "matchPolicy", json!("Equivalent"));
                set_if_absent(w, "namespaceSelector", json!({}));
                set_if_absent(w, "objectSelector", json!({}));
                set_if_absent(w, "timeoutSeconds", json!(10));
                if mutating {
                    set_if_absent(w, "reinvocationPolicy", json!("Never"));
                }
                for r in w
                    .get_mut("rules")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object_mut)
                {
                    set_if_absent(r, "scope", json!("*"));
                }
            }
        }
        _ => {}
    }
}

/// Whether a LabelSelector (`matchLabels`, `matchExpressions`) selects `labels`.
pub fn selector_selects(selector: &Value, labels: &Map<String, Value>) -> bool {
    let ml_ok = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|ml| ml.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let me_ok = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .is_none_or(|exprs| {
            exprs.iter().all(|e| {
                let key = str_at(e, &["key"]).unwrap_or("");
                let values: Vec<&str> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|vs| vs.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let have = labels.get(key).and_then(Value::as_str);
                match str_at(e, &["operator"]) {
                    Some("In") => have.is_some_and(|h| values.contains(&h)),
                    Some("NotIn") => have.is_none_or(|h| !values.contains(&h)),
                    Some("Exists") => have.is_some(),
                    Some("DoesNotExist") => have.is_none(),
                    _ => false,
                }
            })
        });
    ml_ok && me_ok
}

fn is_empty_selector(selector: &Value) -> bool {
    let empty = |k: &str| {
        selector.get(k).is_none_or(|v| {
            v.is_null()
                || v.as_object().is_some_and(Map::is_empty)
                || v.as_array().is_some_and(Vec::is_empty)
        })
    };
    empty("matchLabels") && empty("matchExpressions")
}

fn non_negative(spec: &Value, field: &str, path: &FieldPath, errs: &mut Vec<FieldError>) {
    if let Some(n) = spec.get(field).and_then(Value::as_i64)
        && n < 0
    {
        errs.push(FieldError::invalid(
            path.child(field),
            n,
            "must be greater than or equal to 0",
        ));
    }
}

/// The pod template checks: labels selected by the selector (when `selector` is
/// a LabelSelector), the allowed restart policies, and the pod's own rules.
fn validate_template(
    spec: &Value,
    template_at: &[&str],
    selector: Option<&Value>,
    restart_policies: &[&str],
    errs: &mut Vec<FieldError>,
) {
    let mut tp = FieldPath::new("spec");
    for k in template_at {
        tp = tp.child(k);
    }
    let Some(template) = at(spec, template_at) else {
        errs.push(FieldError::required(tp, ""));
        return;
    };
    let labels = at(template, &["metadata", "labels"])
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(sel) = selector
        && !selector_selects(sel, &labels)
    {
        errs.push(FieldError::invalid(
            tp.child("metadata").child("labels"),
            Value::Object(labels.clone()),
            "`selector` does not match template `labels`",
        ));
    }
    let policy = str_at(template, &["spec", "restartPolicy"]).unwrap_or("Always");
    if !restart_policies.contains(&policy) {
        errs.push(FieldError::not_supported(
            tp.child("spec").child("restartPolicy"),
            policy,
            restart_policies,
        ));
    }
    errs.extend(
        pod::validate(template, None)
            .into_iter()
            .map(|e| e.prefixed(&tp)),
    );
}

fn validate_selector_required(spec: &Value, errs: &mut Vec<FieldError>) -> Option<Value> {
    let sp = FieldPath::new("spec");
    match spec.get("selector") {
        None | Some(Value::Null) => {
            errs.push(FieldError::required(sp.child("selector"), ""));
            None
        }
        Some(sel) if is_empty_selector(sel) => {
            errs.push(FieldError::invalid(
                sp.child("selector"),
                sel.clone(),
                "empty selector is invalid for deployment",
            ));
            None
        }
        Some(sel) => Some(sel.clone()),
    }
}

/// Validates `obj` of one of this module's kinds.
pub fn validate(kind: BuiltinKind, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let null = Value::Null;
    let spec = obj.get("spec").unwrap_or(&null);
    let sp = FieldPath::new("spec");
    match kind {
        BuiltinKind::Deployment
        | BuiltinKind::ReplicaSet
        | BuiltinKind::StatefulSet
        | BuiltinKind::DaemonSet => {
            let selector = validate_selector_required(spec, &mut errs);
            if kind != BuiltinKind::DaemonSet {
                non_negative(spec, "replicas", &sp, &mut errs);
            }
            validate_template(
                spec,
                &["template"],
                selector.as_ref(),
                &["Always"],
                &mut errs,
            );
            if kind == BuiltinKind::Deployment {
                validate_strategy(spec, &mut errs);
            }
            if let Some(old) = old
                && let Some(e) = immutable(
                    spec.get("selector"),
                    at(old, &["spec", "selector"]),
                    sp.child("selector"),
                )
            {
                errs.push(e);
            }
        }
        BuiltinKind::ReplicationController => {
            non_negative(spec, "replicas", &sp, &mut errs);
            let selector = spec
                .get("selector")
                .map(|ml| json!({"matchLabels": ml.clone()}));
            validate_template(
                spec,
                &["template"],
                selector.as_ref(),
                &["Always"],
                &mut errs,
            );
        }
        BuiltinKind::Job => {
            for f in ["parallelism", "completions", "backoffLimit"] {
                non_negative(spec, f, &sp, &mut errs);
            }
            validate_template(
                spec,
                &["template"],
                None,
                &["OnFailure", "Never"],
                &mut errs,
            );
        }
        BuiltinKind::CronJob => {
            match str_at(spec, &["schedule"]) {
                None | Some("") => errs.push(FieldError::required(sp.child("schedule"), "")),
                Some(s) if !is_cron_schedule(s) => errs.push(FieldError::invalid(
                    sp.child("schedule"),
                    s,
                    "unparseable cron expression",
                )),
                Some(_) => {}
            }
            validate_template(
                spec,
                &["jobTemplate", "spec", "template"],
                None,
                &["OnFailure", "Never"],
                &mut errs,
            );
        }
        BuiltinKind::HorizontalPodAutoscaler => {
            let target = sp.child("scaleTargetRef");
            for f in ["kind", "name"] {
                if str_at(spec, &["scaleTargetRef", f]).is_none_or(str::is_empty) {
                    errs.push(FieldError::required(target.child(f), ""));
                }
            }
            let max = spec.get("maxReplicas").and_then(Value::as_i64).unwrap_or(0);
            let min = spec.get("minReplicas").and_then(Value::as_i64).unwrap_or(1);
            if max < 1 {
                errs.push(FieldError::invalid(
                    sp.child("maxReplicas"),
                    max,
                    "must be greater than or equal to 1",
                ));
            }
            if min < 1 {
                errs.push(FieldError::invalid(
                    sp.child("minReplicas"),
                    min,
                    "must be greater than or equal to 1",
                ));
            } else if max >= 1 && min > max {
                errs.push(FieldError::invalid(
                    sp.child("maxReplicas"),
                    max,
                    "must be greater than or equal to `minReplicas`",
                ));
            }
        }
        BuiltinKind::PodDisruptionBudget
            if spec.get("minAvailable").is_some() && spec.get("maxUnavailable").is_some() =>
        {
            errs.push(FieldError::invalid(
                sp.clone(),
                spec.clone(),
                "minAvailable and maxUnavailable cannot be both set",
            ));
        }
        BuiltinKind::PersistentVolumeClaim => {
            if spec
                .get("accessModes")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                errs.push(FieldError::required(
                    sp.child("accessModes"),
                    "at least 1 access mode is required",
                ));
            }
            if at(spec, &["resources", "requests", "storage"]).is_none() {
                errs.push(FieldError::required(
                    sp.child("resources").child("requests").key("storage"),
                    "",
                ));
            }
        }
        BuiltinKind::PersistentVolume => {
            if at(spec, &["capacity", "storage"]).is_none() {
                errs.push(FieldError::required(
                    sp.child("capacity").key("storage"),
                    "",
                ));
            }
            if spec
                .get("accessModes")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                errs.push(FieldError::required(sp.child("accessModes"), ""));
            }
        }
        BuiltinKind::StorageClass => {
            if str_at(obj, &["provisioner"]).is_none_or(str::is_empty) {
                errs.push(FieldError::required(FieldPath::new("provisioner"), ""));
            }
            if let Some(old) = old {
                for f in ["provisioner", "parameters", "reclaimPolicy"] {
                    errs.extend(immutable(obj.get(f), old.get(f), FieldPath::new(f)));
                }
            }
        }
        BuiltinKind::PriorityClass => match obj.get("value").and_then(Value::as_i64) {
            None => errs.push(FieldError::required(FieldPath::new("value"), "")),
            Some(v) if v > 1_000_000_000 => errs.push(FieldError::forbidden(
                FieldPath::new("value"),
                "maximum allowed value of a user defined priority is 1000000000",
            )),
            Some(_) => {}
        },
        BuiltinKind::Ingress => validate_ingress(spec, &mut errs),
        BuiltinKind::ValidatingWebhookConfiguration | BuiltinKind::MutatingWebhookConfiguration => {
            validate_webhooks(obj, &mut errs);
        }
        _ => {}
    }
    errs
}

fn validate_strategy(spec: &Value, errs: &mut Vec<FieldError>) {
    let path = FieldPath::new("spec.strategy");
    match str_at(spec, &["strategy", "type"]) {
        Some("RollingUpdate") => {
            let ru = at(spec, &["strategy", "rollingUpdate"]).unwrap_or(&Value::Null);
            let zero = |f: &str| {
                ru.get(f)
                    .is_some_and(|v| v.as_i64() == Some(0) || v.as_str() == Some("0%"))
            };
            if zero("maxSurge") && zero("maxUnavailable") {
                errs.push(FieldError::invalid(
                    path.child("rollingUpdate").child("maxUnavailable"),
                    ru.get("maxUnavailable").cloned().unwrap_or_default(),
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
        }
        Some("Recreate")
            if at(spec, &["strategy", "rollingUpdate"]).is_some_and(|v| !v.is_null()) =>
        {
            errs.push(FieldError::forbidden(
                path.child("rollingUpdate"),
                "may not be specified when strategy `type` is 'Recreate'",
            ));
        }
        Some("Recreate") => {}
        Some(other) => errs.push(FieldError::not_supported(
            path.child("type"),
            other,
            &["Recreate", "RollingUpdate"],
        )),
        None => {}
    }
}

/// Five fields (or a `@every`/`@daily`-style macro), each of digits, `*`,
/// names, ranges, lists and steps.
fn is_cron_schedule(s: &str) -> bool {
    let s = s
        .strip_prefix("TZ=")
        .or_else(|| s.strip_prefix("CRON_TZ="))
        .and_then(|rest| rest.split_once(' ').map(|(_, r)| r))
        .unwrap_or(s);
    if let Some(m) = s.strip_prefix('@') {
        return matches!(
            m,
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly"
        ) || m.starts_with("every ");
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    fields.len() == 5
        && fields.iter().all(|f| {
            f.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '/' | '-' | ',' | '?'))
        })
}

fn validate_ingress(spec: &Value, errs: &mut Vec<FieldError>) {
    let rules = FieldPath::new("spec.rules");
    for (i, rule) in spec
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let paths = rules.index(i).child("http").child("paths");
        for (j, p) in at(rule, &["http", "paths"])
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let pp = paths.index(j);
            match str_at(p, &["pathType"]) {
                None => errs.push(FieldError::required(
                    pp.child("pathType"),
                    "pathType must be specified",
                )),
                Some(t) if !["Exact", "Prefix", "ImplementationSpecific"].contains(&t) => {
                    errs.push(FieldError::not_supported(
                        pp.child("pathType"),
                        t,
                        &["Exact", "ImplementationSpecific", "Prefix"],
                    ));
                }
                Some(_) => {}
            }
            let backend = p.get("backend").unwrap_or(&Value::Null);
            if backend.get("service").is_none() && backend.get("resource").is_none() {
                errs.push(FieldError::invalid(
                    pp.child("backend"),
                    backend.clone(),
                    "one backend must be specified",
                ));
            }
        }
    }
}

fn validate_webhooks(obj: &Value, errs: &mut Vec<FieldError>) {
    let wp = FieldPath::new("webhooks");
    for (i, w) in obj
        .get("webhooks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let p = wp.index(i);
        let name = str_at(w, &["name"]).unwrap_or("");
        if name.split('.').filter(|s| !s.is_empty()).count() < 3 {
            errs.push(FieldError::invalid(
                p.child("name"),
                name,
                "should be a domain with at least three segments separated by dots",
            ));
        }
        match str_at(w, &["sideEffects"]) {
            None => errs.push(FieldError::required(
                p.child("sideEffects"),
                "must specify one of None, NoneOnDryRun",
            )),
            Some(s) if s != "None" && s != "NoneOnDryRun" => errs.push(FieldError::not_supported(
                p.child("sideEffects"),
                s,
                &["None", "NoneOnDryRun"],
            )),
            Some(_) => {}
        }
        if w.get("admissionReviewVersions")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            errs.push(FieldError::required(
                p.child("admissionReviewVersions"),
                "must specify one of v1, v1beta1",
            ));
        }
        let cc = w.get("clientConfig").unwrap_or(&Value::Null);
        if cc.get("url").is_some() == cc.get("service").is_some() {
            errs.push(FieldError::required(
                p.child("clientConfig"),
                "exactly one of url or service is required",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(labels: Value, selector: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": selector, "template": {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    }

    #[test]
    fn deployment_defaults_and_template_defaults() {
        let mut d = deployment(
            json!({"app": "web"}),
            json!({"matchLabels": {"app": "web"}}),
        );
        default(BuiltinKind::Deployment, &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Always"
        );
        assert!(validate(BuiltinKind::Deployment, &d, None).is_empty());
    }

    #[test]
    fn selector_must_select_the_template_and_is_immutable() {
        let d = deployment(json!({"app": "web"}), json!({"matchLabels": {"app": "db"}}));
        let errs = validate(BuiltinKind::Deployment, &d, None);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].field.as_str(), "spec.template.metadata.labels");
        let old = deployment(
            json!({"app": "web"}),
            json!({"matchLabels": {"app": "web"}}),
        );
        let new = deployment(
            json!({"app": "web", "v": "2"}),
            json!({"matchLabels": {"app": "web", "v": "2"}}),
        );
        let errs = validate(BuiltinKind::Deployment, &new, Some(&old));
        assert!(errs.iter().any(|e| e.field.as_str() == "spec.selector"));
        let no_selector = json!({"spec": {"template": {}}});
        let errs = validate(BuiltinKind::ReplicaSet, &no_selector, None);
        assert!(errs.iter().any(|e| e.field.as_str() == "spec.selector"));
    }

    #[test]
    fn template_pod_errors_carry_the_template_path() {
        let mut d = deployment(
            json!({"app": "web"}),
            json!({"matchLabels": {"app": "web"}}),
        );
        d["spec"]["template"]["spec"]["containers"] = json!([]);
        let errs = validate(BuiltinKind::Deployment, &d, None);
        assert!(
            errs.iter()
                .any(|e| e.field.as_str() == "spec.template.spec.containers"),
            "{errs:?}"
        );
    }

    #[test]
    fn jobs_need_a_non_always_restart_policy_and_cronjobs_a_schedule() {
        let job = json!({"spec": {"template": {"spec": {"restartPolicy": "Always",
            "containers": [{"name": "c", "image": "busybox"}]}}}});
        let errs = validate(BuiltinKind::Job, &job, None);
        assert_eq!(
            errs[0].field.as_str(),
            "spec.template.spec.restartPolicy",
            "{errs:?}"
        );
        let cj = json!({"spec": {"schedule": "not a schedule", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
        let errs = validate(BuiltinKind::CronJob, &cj, None);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(is_cron_schedule("*/5 * * * *") && is_cron_schedule("@hourly"));
    }

    #[test]
    fn plain_objects_get_their_essential_checks() {
        let hpa = json!({"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 5, "maxReplicas": 2}});
        assert_eq!(
            validate(BuiltinKind::HorizontalPodAutoscaler, &hpa, None)[0]
                .field
                .as_str(),
            "spec.maxReplicas"
        );
        let pdb = json!({"spec": {"minAvailable": 1, "maxUnavailable": 1}});
        assert_eq!(
            validate(BuiltinKind::PodDisruptionBudget, &pdb, None).len(),
            1
        );
        let ing = json!({"spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}});
        assert_eq!(
            validate(BuiltinKind::Ingress, &ing, None)[0].field.as_str(),
            "spec.rules[0].http.paths[0].pathType"
        );
        let vwc = json!({"webhooks": [{"name": "short", "clientConfig": {"url": "https://x"}}]});
        assert_eq!(
            validate(BuiltinKind::ValidatingWebhookConfiguration, &vwc, None).len(),
            3
        );
        let mut sc = json!({"provisioner": "x"});
        default(BuiltinKind::StorageClass, &mut sc);
        assert_eq!(sc["reclaimPolicy"], "Delete");
    }
}
