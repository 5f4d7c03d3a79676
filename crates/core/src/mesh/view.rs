//! The desired state of one federated Service, rendered on demand.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::index::{FederatedEntry, NamespaceIndex};
use super::render;
use crate::names::{FederatedKey, ServiceKey};

/// What fedmesh should have written for a federated Service. Rendering is lazy:
/// a writer told that one slice changed renders only that slice.
#[derive(Debug)]
pub struct FederatedView<'a> {
    key: FederatedKey,
    ns: &'a NamespaceIndex,
    entry: &'a FederatedEntry,
}

impl<'a> FederatedView<'a> {
    pub(super) fn new(
        key: FederatedKey,
        ns: &'a NamespaceIndex,
        entry: &'a FederatedEntry,
    ) -> Self {
        Self { key, ns, entry }
    }

    /// The federated Service.
    pub fn key(&self) -> &FederatedKey {
        &self.key
    }

    /// The Services backing it, local first.
    pub fn backing(&self) -> impl Iterator<Item = &'a ServiceKey> + 'a {
        self.entry.backing.keys()
    }

    /// The desired EndpointSlice `name`, or `None` when it should not exist.
    pub fn slice(&self, name: &str) -> Option<EndpointSlice> {
        let (source, chunk) = self.entry.outputs.get(name)?;
        let entry = self.ns.slice_entry(source)?;
        render::slice(
            &self.key,
            &self.entry.federation,
            name,
            &entry.slice,
            *chunk,
        )
    }

    /// Every desired EndpointSlice, by name.
    pub fn slices(&self) -> Vec<EndpointSlice> {
        let mut names: Vec<&Arc<str>> = self.entry.outputs.keys().collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|name| self.slice(name))
            .collect()
    }

    /// The desired Endpoints object.
    pub fn endpoints(&self) -> Endpoints {
        let sources = self
            .entry
            .backing
            .values()
            .flat_map(|&backing| self.ns.slices_of(backing).map(|entry| &entry.slice));
        render::endpoints(
            &self.key,
            &self.entry.federation,
            &self.entry.federation.annotation,
            sources,
        )
    }
}
