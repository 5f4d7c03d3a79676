//! Columns of custom resources, from a CRD version's
//! `additionalPrinterColumns`, evaluated as apiextensions-apiserver's
//! table convertor does.

use jiff::Timestamp;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition,
};
use serde_json::{Value, json};

use super::columns::{ColumnDefinition, custom_default_age_description, custom_name_column};
use super::duration::{human_duration, since};
use super::jsonpath::{JsonPath, ParsePathError};

/// The printer columns of one served CRD version.
#[derive(Debug, Clone)]
pub struct CustomColumns {
    columns: Vec<ColumnDefinition>,
    paths: Vec<JsonPath>,
}

impl CustomColumns {
    /// Columns from `additionalPrinterColumns`; with none, the CRD is
    /// served with a single `Age` column (`.metadata.creationTimestamp`).
    pub fn new(defs: &[CustomResourceColumnDefinition]) -> Result<Self, ParsePathError> {
        let defaults;
        let defs = if defs.is_empty() {
            defaults = [CustomResourceColumnDefinition {
                name: "Age".to_string(),
                type_: "date".to_string(),
                description: Some(custom_default_age_description()),
                json_path: ".metadata.creationTimestamp".to_string(),
                format: None,
                priority: None,
            }];
            &defaults[..]
        } else {
            defs
        };
        let mut columns = vec![custom_name_column()];
        let mut paths = Vec::new();
        for d in defs {
            paths.push(JsonPath::parse(&d.json_path)?);
            columns.push(ColumnDefinition {
                name: d.name.clone(),
                type_: d.type_.clone(),
                format: d.format.clone().unwrap_or_default(),
                description: d
                    .description
                    .clone()
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| {
                        format!(
                            "Custom resource definition column (in JSONPath format): {}",
                            d.json_path
                        )
                    }),
                priority: d.priority.unwrap_or(0),
            });
        }
        Ok(Self { columns, paths })
    }

    /// The columns of the version named `version` of a CRD (`None` if the
    /// CRD does not define it).
    pub fn for_crd(
        crd: &CustomResourceDefinition,
        version: &str,
    ) -> Option<Result<Self, ParsePathError>> {
        let v = crd.spec.versions.iter().find(|v| v.name == version)?;
        Some(Self::new(
            v.additional_printer_columns.as_deref().unwrap_or(&[]),
        ))
    }

    /// The column definitions, Name first.
    pub fn columns(&self) -> &[ColumnDefinition] {
        &self.columns
    }

    /// The cells of one object.
    pub fn cells(&self, object: &Value, now: Timestamp) -> Vec<Value> {
        let mut cells = vec![json!(
            object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
        )];
        for (path, column) in self.paths.iter().zip(&self.columns[1..]) {
            let cell = match path.find(object).first() {
                None => Value::Null,
                Some(v) if column.type_ == "string" => json!(go_text(v)),
                Some(v) => typed_cell(&column.type_, v, now),
            };
            cells.push(cell);
        }
        cells
    }
}

/// How kubectl's jsonpath prints a value in text: strings raw, composite
/// values as JSON, null as `<no value>`, numbers as Go's `%v`.
fn go_text(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".to_string(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => format_go_float(f),
            _ => n.to_string(),
        },
        Value::Array(_) | Value::Object(_) => v.to_string(),
    }
}

/// Go's `%v` of a float64: shortest digits, exponent form when the
/// exponent is below -4 or at least 6.
pub fn format_go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let sci = format!("{f:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if f != 0.0 && !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

fn typed_cell(type_: &str, v: &Value, now: Timestamp) -> Value {
    match (type_, v) {
        ("integer", Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => json!(i),
            // Go converts with int64(f): truncation, saturating here.
            (None, Some(f)) => json!(f.trunc() as i64),
            _ => Value::Null,
        },
        ("number", Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => json!(i),
            // Go's encoder writes integral floats without a fraction.
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => {
                json!(f as i64)
            }
            (None, Some(f)) => json!(f),
            _ => Value::Null,
        },
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(s)) => {
            if s.is_empty() || s == "null" {
                return json!("<unknown>");
            }
            match s.parse::<Timestamp>() {
                Ok(t) => json!(human_duration(since(t, now))),
                Err(_) => json!("<invalid>"),
            }
        }
        _ => Value::Null,
    }
}
