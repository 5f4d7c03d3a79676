//! ClusterIP and NodePort allocation, as kube-apiserver's `ipallocator`
//! and `portallocator` do it.
//!
//! The service CIDR (default `10.96.0.0/12`) gives every address but the
//! network address (and, for IPv4, the broadcast address); the first one
//! (`10.96.0.1`) is the `kubernetes` Service's. Node ports come from
//! `30000-32767`. Both ranges are split in a lower "static" band and an
//! upper "dynamic" band: random allocation takes from the upper band
//! first and only then from the lower one, so that user-chosen values in
//! the lower band rarely collide. The band offset is `clamp(size/16, 16,
//! 256)` addresses for IPs and `clamp(size/32, 16, 128)` ports.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use k8s_openapi::api::core::v1::Service;
use rand::Rng;

/// The default service CIDR.
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
/// The default node port range.
pub const DEFAULT_NODE_PORT_RANGE: (u16, u16) = (30000, 32767);

/// An allocation failure. Field errors render as kube-apiserver's
/// `field.Invalid` (`<field>: Invalid value: <value>: <detail>`), the rest
/// are internal errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    /// The service CIDR does not parse or is too small.
    #[error("invalid service CIDR {0:?}")]
    ParseCidr(String),
    /// A requested cluster IP is not an IP address.
    #[error("{field}: Invalid value: {value}: must be a valid IP address")]
    ParseIp {
        /// `spec.clusterIPs`
        field: String,
        /// The rendered value.
        value: String,
    },
    /// A requested cluster IP is taken.
    #[error(
        "{field}: Invalid value: {value}: failed to allocate IP {ip}: provided IP is already allocated"
    )]
    IpAllocated {
        /// `spec.clusterIPs`
        field: String,
        /// The rendered value (`[]string{"10.96.0.10"}`).
        value: String,
        /// The IP.
        ip: IpAddr,
    },
    /// A requested cluster IP is outside the service CIDR.
    #[error(
        "{field}: Invalid value: {value}: failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {range}"
    )]
    IpNotInRange {
        /// `spec.clusterIPs`
        field: String,
        /// The rendered value.
        value: String,
        /// The IP.
        ip: IpAddr,
        /// The CIDR.
        range: String,
    },
    /// No free cluster IP left.
    #[error("failed to allocate a serviceIP: range is full")]
    IpRangeFull,
    /// A requested node port is taken.
    #[error("{field}: Invalid value: {port}: provided port is already allocated")]
    PortAllocated {
        /// `spec.ports[i].nodePort`
        field: String,
        /// The port.
        port: i32,
    },
    /// A requested node port is outside the range.
    #[error(
        "{field}: Invalid value: {port}: provided port is not in the valid range. The range of valid ports is {range}"
    )]
    PortNotInRange {
        /// `spec.ports[i].nodePort`
        field: String,
        /// The port.
        port: i32,
        /// `30000-32767`
        range: String,
    },
    /// No free node port left.
    #[error("failed to allocate a nodePort: range is full")]
    PortRangeFull,
}

impl AllocError {
    /// Whether kube-apiserver answers 422 Invalid (field errors) rather
    /// than 500.
    pub fn is_invalid(&self) -> bool {
        !matches!(
            self,
            Self::IpRangeFull | Self::PortRangeFull | Self::ParseCidr(_)
        )
    }

    /// The field of a field error.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::ParseIp { field, .. }
            | Self::IpAllocated { field, .. }
            | Self::IpNotInRange { field, .. }
            | Self::PortAllocated { field, .. }
            | Self::PortNotInRange { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Random offsets in a band; tests use a seeded generator.
fn scan_free(used: &BTreeSet<u128>, size: u128, offset: u128, rng: &mut impl Rng) -> Option<u128> {
    let bands = [(offset, size), (0, offset)];
    for (lo, hi) in bands {
        if hi <= lo {
            continue;
        }
        let width = hi - lo;
        let free_in_band = width - used.range(lo..hi).count() as u128;
        if free_in_band == 0 {
            continue;
        }
        // Random start, then the first free slot going up (with wrap).
        let start = lo + rng.random_range(0..width);
        let mut candidate = start;
        for taken in used.range(start..hi) {
            if *taken != candidate {
                break;
            }
            candidate += 1;
        }
        if candidate < hi {
            return Some(candidate);
        }
        let mut candidate = lo;
        for taken in used.range(lo..start) {
            if *taken != candidate {
                break;
            }
            candidate += 1;
        }
        if candidate < start {
            return Some(candidate);
        }
    }
    None
}

/// The cluster IP allocator over one service CIDR.
#[derive(Debug, Clone)]
pub struct ClusterIpAllocator {
    cidr: String,
    v6: bool,
    /// First allocatable address as an integer.
    base: u128,
    size: u128,
    offset: u128,
    used: BTreeSet<u128>,
}

fn range_offset(size: u128, step: u128, max: u128) -> u128 {
    const MIN: u128 = 16;
    if size < MIN {
        return 0;
    }
    (size / step).clamp(MIN, max)
}

impl ClusterIpAllocator {
    /// An allocator over `cidr` (`a.b.c.d/n` or an IPv6 CIDR; like
    /// kube-apiserver, only the first 2^64 addresses of a larger IPv6 range
    /// are used).
    pub fn new(cidr: &str) -> Result<Self, AllocError> {
        let err = || AllocError::ParseCidr(cidr.to_string());
        let (addr, prefix) = cidr.split_once('/').ok_or_else(err)?;
        let prefix: u32 = prefix.parse().map_err(|_| err())?;
        let ip: IpAddr = addr.parse().map_err(|_| err())?;
        let (v6, bits, value) = match ip {
            IpAddr::V4(v4) => (false, 32u32, u128::from(u32::from(v4))),
            IpAddr::V6(v6) => (true, 128u32, u128::from(v6)),
        };
        if prefix > bits {
            return Err(err());
        }
        let host_bits = bits - prefix;
        let mask = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let network = value & !mask;
        let total = if host_bits >= 64 {
            1u128 << 64
        } else {
            1u128 << host_bits
        };
        // Network address, and the broadcast address for IPv4, are unusable.
        let reserved = if v6 { 1 } else { 2 };
        if total <= reserved {
            return Err(err());
        }
        let size = total - reserved;
        Ok(Self {
            cidr: format!("{}/{prefix}", to_ip(network, v6)),
            v6,
            base: network + 1,
            size,
            offset: range_offset(size, 16, 256),
            used: BTreeSet::new(),
        })
    }

    /// The allocator over [`DEFAULT_SERVICE_CIDR`].
    pub fn default_range() -> Self {
        Self {
            cidr: DEFAULT_SERVICE_CIDR.to_string(),
            v6: false,
            base: u128::from(u32::from(Ipv4Addr::new(10, 96, 0, 1))),
            size: (1 << 20) - 2,
            offset: 256,
            used: BTreeSet::new(),
        }
    }

    /// The CIDR, normalised.
    pub fn cidr(&self) -> &str {
        &self.cidr
    }

    /// `IPv4` or `IPv6`.
    pub fn family(&self) -> &'static str {
        if self.v6 { "IPv6" } else { "IPv4" }
    }

    /// The `kubernetes` Service's address: the first of the range.
    pub fn kubernetes_service_ip(&self) -> IpAddr {
        to_ip(self.base, self.v6)
    }

    fn index(&self, ip: IpAddr) -> Option<u128> {
        let value = match (ip, self.v6) {
            (IpAddr::V4(v4), false) => u128::from(u32::from(v4)),
            (IpAddr::V6(v6), true) => u128::from(v6),
            _ => return None,
        };
        value.checked_sub(self.base).filter(|i| *i < self.size)
    }

    /// Whether the address is in the allocatable range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.index(ip).is_some()
    }

    /// Whether the address is taken.
    pub fn is_allocated(&self, ip: IpAddr) -> bool {
        self.index(ip).is_some_and(|i| self.used.contains(&i))
    }

    /// Number of allocated addresses.
    pub fn used(&self) -> usize {
        self.used.len()
    }

    /// Takes a specific address (a user-chosen clusterIP); `field` and
    /// `value` name it in errors.
    pub fn allocate(&mut self, ip: IpAddr, field: &str, value: &str) -> Result<(), AllocError> {
        let Some(i) = self.index(ip) else {
            return Err(AllocError::IpNotInRange {
                field: field.to_string(),
                value: value.to_string(),
                ip,
                range: self.cidr.clone(),
            });
        };
        if !self.used.insert(i) {
            return Err(AllocError::IpAllocated {
                field: field.to_string(),
                value: value.to_string(),
                ip,
            });
        }
        Ok(())
    }

    /// Takes a free address at random (upper band first).
    pub fn allocate_next(&mut self, rng: &mut impl Rng) -> Result<IpAddr, AllocError> {
        let i =
            scan_free(&self.used, self.size, self.offset, rng).ok_or(AllocError::IpRangeFull)?;
        self.used.insert(i);
        Ok(to_ip(self.base + i, self.v6))
    }

    /// Gives an address back; unknown or free addresses are ignored.
    pub fn release(&mut self, ip: IpAddr) {
        if let Some(i) = self.index(ip) {
            self.used.remove(&i);
        }
    }
}

fn to_ip(value: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(value))
    } else {
        IpAddr::V4(Ipv4Addr::from(
            u32::try_from(value & u128::from(u32::MAX)).unwrap_or(0),
        ))
    }
}

/// The node port allocator.
#[derive(Debug, Clone)]
pub struct NodePortAllocator {
    first: u16,
    last: u16,
    offset: u128,
    used: BTreeSet<u128>,
}

impl Default for NodePortAllocator {
    fn default() -> Self {
        Self::new(DEFAULT_NODE_PORT_RANGE.0, DEFAULT_NODE_PORT_RANGE.1)
    }
}

impl NodePortAllocator {
    /// An allocator over `first..=last` (swapped if given backwards).
    pub fn new(first: u16, last: u16) -> Self {
        let (first, last) = if first <= last {
            (first, last)
        } else {
            (last, first)
        };
        let size = u128::from(last - first) + 1;
        Self {
            first,
            last,
            offset: range_offset(size, 32, 128),
            used: BTreeSet::new(),
        }
    }

    /// `first-last`, as error messages print it.
    pub fn range(&self) -> String {
        format!("{}-{}", self.first, self.last)
    }

    fn size(&self) -> u128 {
        u128::from(self.last - self.first) + 1
    }

    fn index(&self, port: i32) -> Option<u128> {
        let p = u16::try_from(port).ok()?;
        (self.first..=self.last)
            .contains(&p)
            .then(|| u128::from(p - self.first))
    }

    /// Whether the port is taken.
    pub fn is_allocated(&self, port: i32) -> bool {
        self.index(port).is_some_and(|i| self.used.contains(&i))
    }

    /// Number of allocated ports.
    pub fn used(&self) -> usize {
        self.used.len()
    }

    /// Takes a specific port; `field` names it in errors.
    pub fn allocate(&mut self, port: i32, field: &str) -> Result<(), AllocError> {
        let Some(i) = self.index(port) else {
            return Err(AllocError::PortNotInRange {
                field: field.to_string(),
                port,
                range: self.range(),
            });
        };
        if !self.used.insert(i) {
            return Err(AllocError::PortAllocated {
                field: field.to_string(),
                port,
            });
        }
        Ok(())
    }

    /// Takes a free port at random (upper band first).
    pub fn allocate_next(&mut self, rng: &mut impl Rng) -> Result<i32, AllocError> {
        let i = scan_free(&self.used, self.size(), self.offset, rng)
            .ok_or(AllocError::PortRangeFull)?;
        self.used.insert(i);
        Ok(i32::from(self.first) + i32::try_from(i).unwrap_or(0))
    }

    /// Gives a port back.
    pub fn release(&mut self, port: i32) {
        if let Some(i) = self.index(port) {
            self.used.remove(&i);
        }
    }
}

/// Both allocators, driven by whole Services.
#[derive(Debug, Clone)]
pub struct ServiceAllocator {
    /// Cluster IPs.
    pub ips: ClusterIpAllocator,
    /// Node ports.
    pub ports: NodePortAllocator,
}

impl Default for ServiceAllocator {
    fn default() -> Self {
        Self {
            ips: ClusterIpAllocator::default_range(),
            ports: NodePortAllocator::default(),
        }
    }
}

fn service_type(service: &Service) -> &str {
    service
        .spec
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("ClusterIP")
}

fn wants_node_ports(service: &Service) -> bool {
    match service_type(service) {
        "NodePort" => true,
        "LoadBalancer" => service
            .spec
            .as_ref()
            .and_then(|s| s.allocate_load_balancer_node_ports)
            .unwrap_or(true),
        _ => false,
    }
}

fn wants_health_check_port(service: &Service) -> bool {
    service_type(service) == "LoadBalancer"
        && service
            .spec
            .as_ref()
            .and_then(|s| s.external_traffic_policy.as_deref())
            == Some("Local")
}

fn go_string_slice(values: &[String]) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[]string{{{}}}", items.join(", "))
}

/// What one service holds; used for rollback and release.
#[derive(Debug, Default)]
struct Held {
    ips: Vec<IpAddr>,
    ports: Vec<i32>,
}

impl ServiceAllocator {
    /// An allocator with the given ranges.
    pub fn new(cidr: &str, node_ports: (u16, u16)) -> Result<Self, AllocError> {
        Ok(Self {
            ips: ClusterIpAllocator::new(cidr)?,
            ports: NodePortAllocator::new(node_ports.0, node_ports.1),
        })
    }

    /// Rebuilds the state from the stored Services at startup. Addresses
    /// and ports outside the ranges or claimed twice are skipped (the
    /// first claim wins), as kube-apiserver's repair loop leaves them.
    pub fn rebuild<'a>(&mut self, services: impl IntoIterator<Item = &'a Service>) {
        for service in services {
            let held = held_by(service, self.ips.v6);
            for ip in held.ips {
                if let Some(i) = self.ips.index(ip) {
                    self.ips.used.insert(i);
                }
            }
            for port in held.ports {
                if let Some(i) = self.ports.index(port) {
                    self.ports.used.insert(i);
                }
            }
        }
    }

    fn rollback(&mut self, held: &Held) {
        for ip in &held.ips {
            self.ips.release(*ip);
        }
        for port in &held.ports {
            self.ports.release(*port);
        }
    }

    /// Allocates what a Service being created needs, filling `clusterIP`,
    /// `clusterIPs`, `ipFamilies`, `ipFamilyPolicy` and `nodePort`s. On
    /// error nothing stays allocated.
    pub fn allocate_service(
        &mut self,
        service: &mut Service,
        rng: &mut impl Rng,
    ) -> Result<(), AllocError> {
        let mut held = Held::default();
        match self.allocate_inner(service, rng, &mut held, None) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.rollback(&held);
                Err(e)
            }
        }
    }

    /// Adjusts allocations for an update from `old` to `new`: node ports
    /// are kept, allocated or released as the type and ports change
    /// (cluster IPs are immutable and carried over when `new` omits them).
    pub fn update_service(
        &mut self,
        old: &Service,
        new: &mut Service,
        rng: &mut impl Rng,
    ) -> Result<(), AllocError> {
        let before = held_by(old, self.ips.v6);
        drop_cluster_ips_for_external_name(old, new);
        let mut held = Held::default();
        match self.allocate_inner(new, rng, &mut held, Some(old)) {
            Ok(()) => {
                let after = held_by(new, self.ips.v6);
                for port in before.ports.iter().filter(|p| !after.ports.contains(p)) {
                    self.ports.release(*port);
                }
                for ip in before.ips.iter().filter(|ip| !after.ips.contains(ip)) {
                    self.ips.release(*ip);
                }
                Ok(())
            }
            Err(e) => {
                self.rollback(&held);
                Err(e)
            }
        }
    }

    /// Releases everything a deleted Service held.
    pub fn release_service(&mut self, service: &Service) {
        let held = held_by(service, self.ips.v6);
        self.rollback(&held);
    }

    fn allocate_inner(
        &mut self,
        service: &mut Service,
        rng: &mut impl Rng,
        held: &mut Held,
        old: Option<&Service>,
    ) -> Result<(), AllocError> {
        let is_external_name = service_type(service) == "ExternalName";
        let family = self.ips.family();
        let old_held = old.map(|o| held_by(o, self.ips.v6)).unwrap_or_default();
        let spec = service.spec.get_or_insert_with(Default::default);
        if !is_external_name {
            let mut requested = spec.cluster_ip.clone().unwrap_or_default();
            if requested.is_empty() {
                requested = spec
                    .cluster_ips
                    .as_ref()
                    .and_then(|v| v.first().cloned())
                    .unwrap_or_default();
            }
            if requested.is_empty()
                && let Some(prev) = old
                    .and_then(|o| o.spec.as_ref())
                    .and_then(|s| s.cluster_ip.clone())
            {
                requested = prev;
            }
            let ip_text = if requested == "None" {
                requested
            } else if requested.is_empty() {
                let ip = self.ips.allocate_next(rng)?;
                held.ips.push(ip);
                ip.to_string()
            } else {
                let value = go_string_slice(std::slice::from_ref(&requested));
                let ip: IpAddr = requested.parse().map_err(|_| AllocError::ParseIp {
                    field: "spec.clusterIPs".to_string(),
                    value: value.clone(),
                })?;
                if !old_held.ips.contains(&ip) {
                    self.ips.allocate(ip, "spec.clusterIPs", &value)?;
                    held.ips.push(ip);
                }
                ip.to_string()
            };
            spec.cluster_ip = Some(ip_text.clone());
            spec.cluster_ips = Some(vec![ip_text]);
            if spec.ip_families.as_ref().is_none_or(Vec::is_empty) {
                spec.ip_families = Some(vec![family.to_string()]);
            }
            if spec.ip_family_policy.is_none() {
                spec.ip_family_policy = Some("SingleStack".to_string());
            }
        }
        let node_ports = wants_node_ports(service);
        let health = wants_health_check_port(service);
        let spec = service.spec.get_or_insert_with(Default::default);
        // Ports a service already holds (same number on two protocols
        // shares one allocation).
        let mut mine: Vec<i32> = old_held.ports.clone();
        for (i, port) in spec.ports.iter_mut().flatten().enumerate() {
            if !node_ports {
                port.node_port = None;
                continue;
            }
            match port.node_port.filter(|p| *p != 0) {
                Some(p) => {
                    if !mine.contains(&p) {
                        self.ports
                            .allocate(p, &format!("spec.ports[{i}].nodePort"))?;
                        held.ports.push(p);
                        mine.push(p);
                    }
                }
                None => {
                    let p = self.ports.allocate_next(rng)?;
                    held.ports.push(p);
                    mine.push(p);
                    port.node_port = Some(p);
                }
            }
        }
        if health {
            match spec.health_check_node_port.filter(|p| *p != 0) {
                Some(p) => {
                    if !mine.contains(&p) {
                        self.ports.allocate(p, "spec.healthCheckNodePort")?;
                        held.ports.push(p);
                    }
                }
                None => {
                    let p = self.ports.allocate_next(rng)?;
                    held.ports.push(p);
                    spec.health_check_node_port = Some(p);
                }
            }
        } else {
            spec.health_check_node_port = None;
        }
        Ok(())
    }
}

/// kube-apiserver's `dropTypeDependentFields` for cluster IPs: a Service
/// turned into ExternalName loses the IPs, families and family policy it
/// still carries unchanged from before.
fn drop_cluster_ips_for_external_name(old: &Service, new: &mut Service) {
    if service_type(old) == "ExternalName" || service_type(new) != "ExternalName" {
        return;
    }
    let (Some(o), Some(n)) = (old.spec.as_ref(), new.spec.as_mut()) else {
        return;
    };
    if o.cluster_ip == n.cluster_ip && o.cluster_ips == n.cluster_ips {
        n.cluster_ip = None;
        n.cluster_ips = None;
    }
    if o.ip_families == n.ip_families {
        n.ip_families = None;
    }
    if o.ip_family_policy == n.ip_family_policy {
        n.ip_family_policy = None;
    }
}

fn held_by(service: &Service, v6: bool) -> Held {
    let Some(spec) = service.spec.as_ref() else {
        return Held::default();
    };
    let mut ips: Vec<IpAddr> = spec
        .cluster_ips
        .iter()
        .flatten()
        .chain(spec.cluster_ip.iter())
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .filter(|ip| ip.is_ipv6() == v6)
        .collect();
    ips.sort();
    ips.dedup();
    let mut ports: Vec<i32> = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| p.node_port)
        .chain(spec.health_check_node_port)
        .filter(|p| *p != 0)
        .collect();
    ports.sort();
    ports.dedup();
    Held { ips, ports }
}
