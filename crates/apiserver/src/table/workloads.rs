//! Columns and cells of the workload printers (apps/v1 Deployment,
//! ReplicaSet, StatefulSet, DaemonSet; batch/v1 Job, CronJob), as
//! kube-apiserver 1.33's `printers.go` gives them.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{
    DaemonSetStatus, DeploymentStatus, ReplicaSetSpec, ReplicaSetStatus,
};
use k8s_openapi::api::batch::v1::{CronJobSpec, JobSpec};
use serde_json::{Value, json};

use super::cells::{arr, created, format_labels, get, int, name, s};
use super::columns::{ColumnDefinition, age_col, col, name_col, wide};
use super::docs::doc;
use super::duration::{human_duration, since};
use crate::schema::BuiltinKind;

/// A workload printer's columns, in order (`None`: not a workload kind).
pub(super) fn columns(kind: BuiltinKind) -> Option<Vec<ColumnDefinition>> {
    let containers = || {
        wide(col(
            "Containers",
            "string",
            "Names of each container in the template.".into(),
        ))
    };
    let images = || {
        wide(col(
            "Images",
            "string",
            "Images referenced by each container in the template.".into(),
        ))
    };
    let selector = |description: String| wide(col("Selector", "string", description));
    let ready = || {
        col(
            "Ready",
            "string",
            "Number of the pod with ready state".into(),
        )
    };
    Some(match kind {
        BuiltinKind::Deployment => vec![
            name_col(),
            ready(),
            col(
                "Up-to-date",
                "string",
                doc::<DeploymentStatus>("updatedReplicas"),
            ),
            col(
                "Available",
                "string",
                doc::<DeploymentStatus>("availableReplicas"),
            ),
            age_col(),
            containers(),
            images(),
            selector(doc::<k8s_openapi::api::apps::v1::DeploymentSpec>(
                "selector",
            )),
        ],
        BuiltinKind::ReplicaSet => vec![
            name_col(),
            col("Desired", "integer", doc::<ReplicaSetSpec>("replicas")),
            col("Current", "integer", doc::<ReplicaSetStatus>("replicas")),
            col("Ready", "integer", doc::<ReplicaSetStatus>("readyReplicas")),
            age_col(),
            containers(),
            images(),
            selector(doc::<ReplicaSetSpec>("selector")),
        ],
        BuiltinKind::StatefulSet => vec![name_col(), ready(), age_col(), containers(), images()],
        BuiltinKind::DaemonSet => vec![
            name_col(),
            col(
                "Desired",
                "integer",
                doc::<DaemonSetStatus>("desiredNumberScheduled"),
            ),
            col(
                "Current",
                "integer",
                doc::<DaemonSetStatus>("currentNumberScheduled"),
            ),
            col("Ready", "integer", doc::<DaemonSetStatus>("numberReady")),
            col(
                "Up-to-date",
                "integer",
                doc::<DaemonSetStatus>("updatedNumberScheduled"),
            ),
            col(
                "Available",
                "integer",
                doc::<DaemonSetStatus>("numberAvailable"),
            ),
            col(
                "Node Selector",
                "string",
                doc::<k8s_openapi::api::core::v1::PodSpec>("nodeSelector"),
            ),
            age_col(),
            containers(),
            images(),
            selector(doc::<k8s_openapi::api::apps::v1::DaemonSetSpec>("selector")),
        ],
        BuiltinKind::Job => vec![
            name_col(),
            col("Status", "string", "Status of the job.".into()),
            col(
                "Completions",
                "string",
                "The completion status of the job.".into(),
            ),
            col(
                "Duration",
                "string",
                "Time required to complete the job.".into(),
            ),
            age_col(),
            containers(),
            images(),
            selector(doc::<JobSpec>("selector")),
        ],
        BuiltinKind::CronJob => vec![
            name_col(),
            col("Schedule", "string", doc::<CronJobSpec>("schedule")),
            col("Timezone", "string", doc::<CronJobSpec>("timeZone")),
            col("Suspend", "boolean", doc::<CronJobSpec>("suspend")),
            col("Active", "integer", "Number of active jobs.".into()),
            col(
                "Last Schedule",
                "string",
                "Time since the last job was scheduled.".into(),
            ),
            age_col(),
            containers(),
            images(),
            selector(doc::<JobSpec>("selector")),
        ],
        _ => return None,
    })
}

/// The cells of one workload object (`None`: not a workload kind).
pub(super) fn cells(kind: BuiltinKind, v: &Value, now: Timestamp) -> Option<Vec<Value>> {
    let template = |path: &[&str]| -> (String, String) {
        let containers = arr(v, path);
        let field = |key: &str| {
            containers
                .iter()
                .map(|c| c.get(key).and_then(Value::as_str).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(",")
        };
        (field("name"), field("image"))
    };
    let pod_containers = ["spec", "template", "spec", "containers"];
    Some(match kind {
        BuiltinKind::Deployment => {
            let (containers, images) = template(&pod_containers);
            vec![
                json!(name(v)),
                json!(format!(
                    "{}/{}",
                    int(v, &["status", "readyReplicas"]),
                    replicas(v, &["spec", "replicas"])
                )),
                json!(int(v, &["status", "updatedReplicas"])),
                json!(int(v, &["status", "availableReplicas"])),
                json!(created(v, now)),
                json!(containers),
                json!(images),
                json!(format_label_selector(get(v, &["spec", "selector"]))),
            ]
        }
        BuiltinKind::ReplicaSet => {
            let (containers, images) = template(&pod_containers);
            vec![
                json!(name(v)),
                json!(replicas(v, &["spec", "replicas"])),
                json!(int(v, &["status", "replicas"])),
                json!(int(v, &["status", "readyReplicas"])),
                json!(created(v, now)),
                json!(containers),
                json!(images),
                json!(format_label_selector(get(v, &["spec", "selector"]))),
            ]
        }
        BuiltinKind::StatefulSet => {
            let (containers, images) = template(&pod_containers);
            vec![
                json!(name(v)),
                json!(format!(
                    "{}/{}",
                    int(v, &["status", "readyReplicas"]),
                    replicas(v, &["spec", "replicas"])
                )),
                json!(created(v, now)),
                json!(containers),
                json!(images),
            ]
        }
        BuiltinKind::DaemonSet => {
            let (containers, images) = template(&pod_containers);
            vec![
                json!(name(v)),
                json!(int(v, &["status", "desiredNumberScheduled"])),
                json!(int(v, &["status", "currentNumberScheduled"])),
                json!(int(v, &["status", "numberReady"])),
                json!(int(v, &["status", "updatedNumberScheduled"])),
                json!(int(v, &["status", "numberAvailable"])),
                json!(format_labels(get(
                    v,
                    &["spec", "template", "spec", "nodeSelector"]
                ))),
                json!(created(v, now)),
                json!(containers),
                json!(images),
                json!(format_label_selector(get(v, &["spec", "selector"]))),
            ]
        }
        BuiltinKind::Job => {
            let (containers, images) = template(&pod_containers);
            vec![
                json!(name(v)),
                json!(job_status(v)),
                json!(job_completions(v)),
                json!(job_duration(v, now)),
                json!(created(v, now)),
                json!(containers),
                json!(images),
                json!(format_label_selector(get(v, &["spec", "selector"]))),
            ]
        }
        BuiltinKind::CronJob => {
            let (containers, images) = template(&[
                "spec",
                "jobTemplate",
                "spec",
                "template",
                "spec",
                "containers",
            ]);
            let last = s(v, &["status", "lastScheduleTime"])
                .and_then(|t| t.parse::<Timestamp>().ok())
                .map_or_else(|| "<none>".to_string(), |t| human_duration(since(t, now)));
            vec![
                json!(name(v)),
                json!(s(v, &["spec", "schedule"]).unwrap_or_default()),
                json!(s(v, &["spec", "timeZone"]).unwrap_or("<none>")),
                json!(
                    match get(v, &["spec", "suspend"]).and_then(Value::as_bool) {
                        Some(true) => "True",
                        Some(false) => "False",
                        None => "<unset>",
                    }
                ),
                json!(arr(v, &["status", "active"]).len()),
                json!(last),
                json!(created(v, now)),
                json!(containers),
                json!(images),
                json!(format_label_selector(get(
                    v,
                    &["spec", "jobTemplate", "spec", "selector"]
                ))),
            ]
        }
        _ => return None,
    })
}

/// `spec.replicas`, which defaults to 1.
fn replicas(v: &Value, path: &[&str]) -> i64 {
    get(v, path).and_then(Value::as_i64).unwrap_or(1)
}

/// `metav1.FormatLabelSelector`: the selector's requirements sorted by key,
/// `k=v`, `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, joined with commas;
/// `<none>` for an empty or absent selector.
pub(crate) fn format_label_selector(selector: Option<&Value>) -> String {
    let mut requirements: Vec<(String, String)> = Vec::new();
    if let Some(labels) = selector
        .and_then(|s| s.get("matchLabels"))
        .and_then(Value::as_object)
    {
        for (k, v) in labels {
            requirements.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or_default())));
        }
    }
    for e in selector
        .and_then(|s| s.get("matchExpressions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let mut values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        values.dedup();
        let text = match e
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return "<error>".to_string(),
        };
        requirements.push((key.to_string(), text));
    }
    if requirements.is_empty() {
        return "<none>".to_string();
    }
    // A stable sort by key, as labels.Requirements sorts them.
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    requirements
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(",")
}

fn job_condition(v: &Value, type_: &str) -> bool {
    arr(v, &["status", "conditions"]).iter().any(|c| {
        c.get("type").and_then(Value::as_str) == Some(type_)
            && c.get("status").and_then(Value::as_str) == Some("True")
    })
}

fn job_status(v: &Value) -> &'static str {
    if job_condition(v, "Complete") {
        "Complete"
    } else if job_condition(v, "Failed") {
        "Failed"
    } else if get(v, &["metadata", "deletionTimestamp"]).is_some() {
        "Terminating"
    } else if job_condition(v, "Suspended") {
        "Suspended"
    } else if job_condition(v, "FailureTarget") {
        "FailureTarget"
    } else if job_condition(v, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    }
}

fn job_completions(v: &Value) -> String {
    let succeeded = int(v, &["status", "succeeded"]);
    match get(v, &["spec", "completions"]).and_then(Value::as_i64) {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => match get(v, &["spec", "parallelism"]).and_then(Value::as_i64) {
            Some(parallelism) if parallelism > 1 => format!("{succeeded}/1 of {parallelism}"),
            _ => format!("{succeeded}/1"),
        },
    }
}

fn job_duration(v: &Value, now: Timestamp) -> String {
    let time = |key: &str| s(v, &["status", key]).and_then(|t| t.parse::<Timestamp>().ok());
    match (time("startTime"), time("completionTime")) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(since(start, now)),
        (Some(start), Some(end)) => human_duration(since(start, end)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_print_as_kubectl_shows_them() {
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
        assert_eq!(
            format_label_selector(Some(&json!({
                "matchLabels": {"tier": "web", "app": "shop"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                    {"key": "zz", "operator": "DoesNotExist"},
                    {"key": "canary", "operator": "Exists"},
                    {"key": "arch", "operator": "NotIn", "values": ["arm"]}
                ]
            }))),
            "app=shop,arch notin (arm),canary,env in (dev,prod),tier=web,!zz"
        );
    }

    #[test]
    fn a_deployment_row_has_ready_of_desired_and_its_template() {
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        let d = json!({
            "metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [
                         {"name": "nginx", "image": "nginx:1.25"},
                         {"name": "sidecar", "image": "envoy"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
        });
        assert_eq!(
            cells(BuiltinKind::Deployment, &d, now).unwrap(),
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("10m"),
                json!("nginx,sidecar"),
                json!("nginx:1.25,envoy"),
                json!("app=web"),
            ]
        );
        assert_eq!(columns(BuiltinKind::Deployment).unwrap().len(), 8);
    }

    #[test]
    fn job_rows_say_status_completions_and_duration() {
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        let running = json!({
            "metadata": {"name": "pi", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"parallelism": 3},
            "status": {"startTime": "2026-01-01T00:09:30Z", "succeeded": 1}
        });
        let row = cells(BuiltinKind::Job, &running, now).unwrap();
        assert_eq!(row[1], json!("Running"));
        assert_eq!(row[2], json!("1/1 of 3"));
        assert_eq!(row[3], json!("30s"));
        let done = json!({
            "metadata": {"name": "pi"},
            "spec": {"completions": 2},
            "status": {"startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:01:05Z",
                       "succeeded": 2, "conditions": [{"type": "Complete", "status": "True"}]}
        });
        let row = cells(BuiltinKind::Job, &done, now).unwrap();
        assert_eq!(row[1], json!("Complete"));
        assert_eq!(row[2], json!("2/2"));
        assert_eq!(row[3], json!("65s"));
    }

    #[test]
    fn a_daemon_set_row_counts_per_node_pods_and_shows_its_node_selector() {
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        let ds = json!({
            "metadata": {"name": "agent"},
            "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                           "containers": [{"name": "a", "image": "busybox"}]}}},
            "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                       "updatedNumberScheduled": 3, "numberAvailable": 2}
        });
        let row = cells(BuiltinKind::DaemonSet, &ds, now).unwrap();
        assert_eq!(
            &row[1..7],
            &[
                json!(3),
                json!(3),
                json!(2),
                json!(3),
                json!(2),
                json!("kubernetes.io/os=linux")
            ]
        );
    }
}
