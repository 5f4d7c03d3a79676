//! EndpointSlices of backing services, as the index keeps them.

use std::sync::Arc;

use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

use crate::names::{Origin, SliceKey};

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A port of a backing EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlicePort {
    /// The port's name (empty when unnamed).
    pub name: String,
    /// The port's protocol (`TCP` when left out).
    pub protocol: String,
    /// The port number on the endpoints.
    pub port: i32,
    /// The application protocol, carried as it is.
    pub app_protocol: Option<String>,
}

/// A backing EndpointSlice: whose it is, what it serves and its endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSlice {
    /// Where the slice is.
    pub key: SliceKey,
    /// The Service it belongs to (its `kubernetes.io/service-name` label).
    pub service: Arc<str>,
    /// `IPv4`, `IPv6` or `FQDN`.
    pub address_type: String,
    /// Its ports. A port without a number (meaning "all ports") is dropped:
    /// federation matches ports by name and protocol and needs a number to use.
    pub ports: Vec<SlicePort>,
    /// Its endpoints, as they are.
    pub endpoints: Vec<Endpoint>,
}

/// Why an EndpointSlice could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SliceError {
    /// The slice has no `metadata.name`.
    #[error("endpoint slice has no metadata.name")]
    MissingName,
    /// The slice has no `metadata.namespace`.
    #[error("endpoint slice {name:?} has no metadata.namespace")]
    MissingNamespace {
        /// The slice's name.
        name: String,
    },
    /// The slice names no Service, so it backs nothing.
    #[error("endpoint slice {name:?} has no {SERVICE_NAME_LABEL} label")]
    NoService {
        /// The slice's name.
        name: String,
    },
}

impl SourceSlice {
    /// Reads `slice` found in `origin`, taking its endpoints (watchers hand
    /// over owned objects; a mesh holds a million endpoints, and copying them
    /// would double the cost of building the index).
    pub fn new(origin: Origin, mut slice: EndpointSlice) -> Result<Self, SliceError> {
        let meta = &slice.metadata;
        let name = meta.name.as_deref().ok_or(SliceError::MissingName)?;
        let namespace = meta
            .namespace
            .as_deref()
            .ok_or_else(|| SliceError::MissingNamespace { name: name.into() })?;
        let service = meta
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .ok_or_else(|| SliceError::NoService { name: name.into() })?;
        Ok(Self {
            key: SliceKey::new(origin, namespace, name),
            service: service.as_str().into(),
            address_type: slice.address_type,
            ports: slice
                .ports
                .take()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    Some(SlicePort {
                        port: p.port?,
                        name: p.name.unwrap_or_default(),
                        protocol: p.protocol.unwrap_or_else(|| "TCP".to_owned()),
                        app_protocol: p.app_protocol,
                    })
                })
                .collect(),
            endpoints: slice.endpoints,
        })
    }
}
