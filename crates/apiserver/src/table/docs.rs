//! Field descriptions for column definitions, read from the OpenAPI
//! schemas k8s-openapi carries (they are the same texts as Go's
//! `SwaggerDoc()`).

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use schemars::JsonSchema;

type Cache = Mutex<BTreeMap<(String, String), String>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// The description of `field` of type `T` (empty if the schema has none).
pub fn doc<T: JsonSchema>(field: &str) -> String {
    let key = (T::schema_name().into_owned(), field.to_string());
    if let Ok(guard) = cache().lock()
        && let Some(hit) = guard.get(&key)
    {
        return hit.clone();
    }
    let schema = schemars::SchemaGenerator::default().root_schema_for::<T>();
    let text = schema
        .as_value()
        .pointer(&format!("/properties/{field}/description"))
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    if let Ok(mut guard) = cache().lock() {
        guard.insert(key, text.clone());
    }
    text
}
