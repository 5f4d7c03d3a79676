//! Consistent reads a sync makes straight from the store: one key, or every
//! key under a prefix in pages at one revision.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;

use super::decode;
use crate::objects::ApiError;
use crate::store::{KeyValue, ListRequest, Revision, Store};

/// Keys per page of a list read.
pub(super) const PAGE: usize = 500;

fn failed(e: crate::store::Error) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// The stored key-value at `key`.
pub(super) async fn get(store: &Store, key: &str) -> Result<Option<KeyValue>, ApiError> {
    store.get(key).await.map_err(failed)
}

/// The object at `key` as `T` (`None` when absent or not a `T`).
pub(super) async fn get_typed<T>(store: &Store, key: &str) -> Result<Option<T>, ApiError>
where
    T: DeserializeOwned + k8s_openapi::Metadata<Ty = ObjectMeta>,
{
    Ok(get(store, key).await?.as_ref().and_then(decode::typed))
}

/// Calls `f` on every key-value under `prefix`, as of one revision.
pub(super) async fn for_each(
    store: &Store,
    prefix: &str,
    f: impl FnMut(&KeyValue),
) -> Result<(), ApiError> {
    pages(store, prefix, f).await.map(|_| ()).map_err(failed)
}

/// Calls `f` on every key-value under `prefix`, reading pages of [`PAGE`] at
/// one revision, and returns that revision.
pub(super) async fn pages(
    store: &Store,
    prefix: &str,
    mut f: impl FnMut(&KeyValue),
) -> Result<Revision, crate::store::Error> {
    let mut req = ListRequest::prefix(prefix).limit(PAGE);
    loop {
        let page = store.list(req).await?;
        page.items.iter().for_each(&mut f);
        match page.items.last() {
            Some(last) if page.more => {
                req = ListRequest::prefix(prefix)
                    .limit(PAGE)
                    .at(page.revision)
                    .start_after(last.key.clone());
            }
            _ => return Ok(page.revision),
        }
    }
}
