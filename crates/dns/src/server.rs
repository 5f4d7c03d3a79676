//! The running server: UDP sockets (one per core, SO_REUSEPORT), a TCP
//! listener, a NOTIFY sender, and `update` that swaps in a new snapshot.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use fedmesh_core::dns::{DnsChange, DomainName, NameRecords};
use socket2::{Domain, Protocol, Socket, Type};

use crate::handler::{self, Handled, Policy, Transport};
use crate::transfer;
use crate::tsig::TsigKey;
use crate::zone::{Master, Snapshot, UpdateReport, ZoneConfig};

/// How often idle threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// A TCP client that sends nothing for this long is dropped.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Open TCP connections at most; more are closed at once.
const MAX_TCP: usize = 256;
/// Room for the largest DNS message.
const MAX_MESSAGE: usize = 65_535;

/// An address range for the transfer ACL (`10.0.0.0/8`, `::1/128`, `127.0.0.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRange {
    net: IpAddr,
    prefix: u8,
}

/// Why an address range does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an address or address/prefix (10.0.0.0/8, ::1/128)")]
pub struct AddrRangeError(String);

impl std::str::FromStr for AddrRange {
    type Err = AddrRangeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || AddrRangeError(s.into());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| err())?)),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| err())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(err());
        }
        Ok(Self { net, prefix })
    }
}

impl AddrRange {
    /// Whether `addr` is in the range.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(addr),
            v4 => v4,
        };
        let bits = |a: IpAddr| match a {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        let ((net, nmax), (a, amax)) = (bits(self.net), bits(addr));
        if nmax != amax {
            return false;
        }
        let mask = if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix))
        };
        net & mask == a & mask
    }
}

/// The server's settings.
#[derive(Clone)]
pub struct ServerConfig {
    /// Where to listen, UDP and TCP (port 0: any free port, see [`Server::local_addr`]).
    pub listen: SocketAddr,
    /// UDP sockets (and threads) sharing the port; defaults to the number of cores.
    pub udp_sockets: usize,
    /// The zones served.
    pub zones: Vec<ZoneConfig>,
    /// Who may transfer the zones (AXFR, IXFR). Empty: nobody.
    pub transfer_acl: Vec<AddrRange>,
    /// Keys accepted on signed requests (TSIG, HMAC-SHA256).
    pub tsig_keys: Vec<TsigKey>,
    /// Whether a transfer must also be signed with one of `tsig_keys`.
    pub transfer_requires_tsig: bool,
    /// Secondaries sent a NOTIFY whenever a zone's serial moves.
    pub notify: Vec<SocketAddr>,
}

impl ServerConfig {
    /// A server for `zones` on `listen`, transfers closed, no NOTIFY.
    pub fn new(listen: SocketAddr, zones: Vec<ZoneConfig>) -> Self {
        Self {
            listen,
            udp_sockets: thread::available_parallelism().map_or(1, |n| n.get()),
            zones,
            transfer_acl: Vec::new(),
            tsig_keys: Vec::new(),
            transfer_requires_tsig: false,
            notify: Vec::new(),
        }
    }

    /// Allows transfers from `range`.
    pub fn allow_transfer(mut self, range: AddrRange) -> Self {
        self.transfer_acl.push(range);
        self
    }

    /// Accepts `key` on signed requests; with `required`, transfers must be signed.
    pub fn tsig_key(mut self, key: TsigKey, required: bool) -> Self {
        self.tsig_keys.push(key);
        self.transfer_requires_tsig |= required;
        self
    }

    /// Sends NOTIFY to `secondary` on every change.
    pub fn notify(mut self, secondary: SocketAddr) -> Self {
        self.notify.push(secondary);
        self
    }
}

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration has no zone, or a zone twice.
    #[error("DNS server: {0}")]
    Config(String),
    /// A socket could not be opened or bound.
    #[error("DNS server: cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// A thread could not be started.
    #[error("DNS server: cannot start a thread: {0}")]
    Spawn(io::Error),
}

/// The snapshot the answer threads read, and a generation that tells them
/// when to take a new one (one atomic load per query).
struct Shared {
    current: RwLock<Arc<Snapshot>>,
    generation: AtomicU64,
    stop: AtomicBool,
    policy: Policy,
    tcp_open: AtomicUsize,
}

impl Shared {
    fn load(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A thread's view: its own handle on the snapshot, refreshed when the generation moves.
struct View {
    snapshot: Arc<Snapshot>,
    generation: u64,
}

impl View {
    fn new(shared: &Shared) -> Self {
        let generation = shared.generation.load(Ordering::Acquire);
        Self {
            snapshot: shared.load(),
            generation,
        }
    }

    fn get(&mut self, shared: &Shared) -> &Snapshot {
        let now = shared.generation.load(Ordering::Acquire);
        if now != self.generation {
            self.snapshot = shared.load();
            self.generation = now;
        }
        &self.snapshot
    }
}

/// fedmesh's authoritative DNS server.
///
/// ```no_run
/// # use fedmesh_dns::{Server, ServerConfig, ZoneConfig};
/// # use fedmesh_core::dns::DomainName;
/// let name = |s| DomainName::new("name", s).unwrap();
/// let zone = ZoneConfig::new(name("example.com"), name("ns1.example.com"), name("hostmaster.example.com"));
/// let server = Server::start(ServerConfig::new("127.0.0.1:5353".parse().unwrap(), vec![zone])).unwrap();
/// // server.update(&change) with each DnsChange from fedmesh_core::dns::DnsIndex.
/// ```
pub struct Server {
    shared: Arc<Shared>,
    master: Arc<Mutex<Master>>,
    local: SocketAddr,
    threads: Vec<JoinHandle<()>>,
    notify_tx: Option<mpsc::Sender<(DomainName, u32)>>,
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(POLL))?;
    Ok(socket)
}

/// Port 0 lets the kernel choose a UDP port, and TCP must then listen on
/// the same number; another process may hold that number for TCP, so an
/// ephemeral choice is retried (bounded) rather than failing the start.
const EPHEMERAL_ATTEMPTS: usize = 16;

fn bind_sockets(
    listen: SocketAddr,
    udp_sockets: usize,
) -> Result<(SocketAddr, Vec<UdpSocket>, TcpListener), StartError> {
    let listen_err = |addr| move |source| StartError::Listen { addr, source };
    let attempts = if listen.port() == 0 {
        EPHEMERAL_ATTEMPTS
    } else {
        1
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let first = bind_udp(listen).map_err(listen_err(listen))?;
        let local = first.local_addr().map_err(listen_err(listen))?;
        let mut udp = vec![first];
        for _ in 1..udp_sockets {
            udp.push(bind_udp(local).map_err(listen_err(local))?);
        }
        match TcpListener::bind(local) {
            Ok(tcp) => return Ok((local, udp, tcp)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempt < attempts => continue,
            Err(e) => return Err(listen_err(local)(e)),
        }
    }
}

impl Server {
    /// Binds the sockets and starts serving the zones, empty (SOA and NS only)
    /// until the first [`update`](Self::update).
    pub fn start(config: ServerConfig) -> Result<Self, StartError> {
        if config.zones.is_empty() {
            return Err(StartError::Config("no zone to serve".into()));
        }
        for (i, z) in config.zones.iter().enumerate() {
            if config.zones[..i].iter().any(|o| o.apex == z.apex) {
                return Err(StartError::Config(format!(
                    "zone {} is configured twice",
                    z.apex
                )));
            }
        }
        let (local, udp, tcp) = bind_sockets(config.listen, config.udp_sockets.max(1))?;
        let master = Master::new(config.zones.clone());
        let shared = Arc::new(Shared {
            current: RwLock::new(master.snapshot()),
            generation: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            policy: Policy::new(&config),
            tcp_open: AtomicUsize::new(0),
        });
        let master = Arc::new(Mutex::new(master));
        let mut server = Self {
            shared,
            master,
            local,
            threads: Vec::new(),
            notify_tx: None,
        };
        for (i, socket) in udp.into_iter().enumerate() {
            let shared = server.shared.clone();
            server.spawn(&format!("dns-udp-{i}"), move || serve_udp(&shared, &socket))?;
        }
        let (shared, master) = (server.shared.clone(), server.master.clone());
        server.spawn("dns-tcp", move || serve_tcp(&shared, &master, &tcp))?;
        if !config.notify.is_empty() {
            let (tx, rx) = mpsc::channel();
            let secondaries = config.notify;
            server.spawn("dns-notify", move || send_notifies(&rx, &secondaries))?;
            server.notify_tx = Some(tx);
        }
        Ok(server)
    }

    fn spawn(&mut self, name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), StartError> {
        let handle = thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map_err(StartError::Spawn)?;
        self.threads.push(handle);
        Ok(())
    }

    /// The address the server listens on (with the port it got for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Applies a change of records (from [`fedmesh_core::dns::DnsIndex`]):
    /// the answers of the changed names, and of names whose CNAME chains pass
    /// through them, are rebuilt, the zones' serials bumped, and the new
    /// snapshot served from the next query on. Secondaries get a NOTIFY.
    pub fn update(&self, change: &DnsChange) -> UpdateReport {
        self.with_master(|m| m.apply(change))
    }

    /// Replaces every record with `records` (a full resync).
    pub fn replace(&self, records: Vec<NameRecords>) -> UpdateReport {
        self.with_master(|m| m.replace(records))
    }

    /// The current SOA serial of the zone with apex `apex`.
    pub fn serial(&self, apex: &DomainName) -> Option<u32> {
        let master = self.master.lock().unwrap_or_else(PoisonError::into_inner);
        master.zone_named(apex).map(|z| master.serial(z))
    }

    fn with_master(&self, f: impl FnOnce(&mut Master) -> (UpdateReport, Vec<u16>)) -> UpdateReport {
        let mut master = self.master.lock().unwrap_or_else(PoisonError::into_inner);
        let (report, zones) = f(&mut master);
        if zones.is_empty() {
            return report;
        }
        *self
            .shared
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = master.snapshot();
        self.shared.generation.fetch_add(1, Ordering::Release);
        if let Some(tx) = &self.notify_tx {
            for zone in zones {
                let _ = tx.send((master.zone_config(zone).apex.clone(), master.serial(zone)));
            }
        }
        report
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.notify_tx = None;
        // Wake the TCP accept.
        let mut wake = self.local;
        if wake.ip().is_unspecified() {
            wake.set_ip(if wake.is_ipv4() {
                [127, 0, 0, 1].into()
            } else {
                IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
            });
        }
        let _ = TcpStream::connect_timeout(&wake, POLL);
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

fn serve_udp(shared: &Shared, socket: &UdpSocket) {
    let mut view = View::new(shared);
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut out = Vec::with_capacity(MAX_MESSAGE);
    while !shared.stop.load(Ordering::Relaxed) {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "DNS UDP receive failed");
                continue;
            }
        };
        let snapshot = view.get(shared);
        match handler::handle(
            snapshot,
            &shared.policy,
            &buf[..len],
            Transport::Udp,
            peer.ip(),
            &mut out,
        ) {
            Handled::Reply => {
                let _ = socket.send_to(&out, peer);
            }
            // A transfer never comes out of UDP; nothing to send otherwise.
            Handled::Drop | Handled::Transfer(_) => {}
        }
    }
}

fn serve_tcp(shared: &Arc<Shared>, master: &Arc<Mutex<Master>>, listener: &TcpListener) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let Ok(stream) = stream else { continue };
        if shared.tcp_open.fetch_add(1, Ordering::AcqRel) >= MAX_TCP {
            shared.tcp_open.fetch_sub(1, Ordering::AcqRel);
            continue;
        }
        let (shared, master) = (shared.clone(), master.clone());
        let spawned = thread::Builder::new()
            .name("dns-tcp-conn".into())
            .spawn(move || {
                if let Err(e) = serve_connection(&shared, &master, stream) {
                    tracing::debug!(error = %e, "DNS TCP connection ended");
                }
                shared.tcp_open.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "DNS TCP connection thread not started");
        }
    }
}

fn serve_connection(
    shared: &Shared,
    master: &Mutex<Master>,
    mut stream: TcpStream,
) -> Result<(), transfer::TransferError> {
    stream.set_read_timeout(Some(POLL))?;
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?.ip();
    let mut view = View::new(shared);
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut out = Vec::with_capacity(MAX_MESSAGE);
    loop {
        let mut len = [0u8; 2];
        if !read_exact_idle(shared, &mut stream, &mut len)? {
            return Ok(());
        }
        let len = usize::from(u16::from_be_bytes(len));
        if !read_exact_idle(shared, &mut stream, &mut buf[..len])? {
            return Ok(());
        }
        let snapshot = view.get(shared);
        match handler::handle(
            snapshot,
            &shared.policy,
            &buf[..len],
            Transport::Tcp,
            peer,
            &mut out,
        ) {
            Handled::Reply => transfer::write_all(&mut stream, std::slice::from_ref(&out))?,
            Handled::Drop => return Ok(()),
            Handled::Transfer(mut request) => {
                let messages = {
                    let master = master.lock().unwrap_or_else(PoisonError::into_inner);
                    transfer::messages(&master, &mut request)?
                };
                transfer::write_all(&mut stream, &messages)?;
            }
        }
    }
}

/// Reads exactly `buf`, giving up after [`TCP_IDLE`] of silence or on stop.
/// Returns `false` when the peer closed or went idle.
fn read_exact_idle(shared: &Shared, stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    let mut idle = Duration::ZERO;
    while filled < buf.len() {
        if shared.stop.load(Ordering::Relaxed) || idle >= TCP_IDLE {
            return Ok(false);
        }
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                filled += n;
                idle = Duration::ZERO;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                idle += POLL
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn send_notifies(rx: &mpsc::Receiver<(DomainName, u32)>, secondaries: &[SocketAddr]) {
    while let Ok(first) = rx.recv() {
        // Coalesce a burst of changes into one NOTIFY per zone, latest serial.
        let mut latest = vec![first];
        while let Ok((apex, serial)) = rx.try_recv() {
            match latest.iter_mut().find(|(a, _)| *a == apex) {
                Some(entry) => entry.1 = serial,
                None => latest.push((apex, serial)),
            }
        }
        for (apex, serial) in &latest {
            for secondary in secondaries {
                match transfer::notify(apex, *serial, *secondary) {
                    Ok(true) => tracing::debug!(%apex, serial, %secondary, "NOTIFY answered"),
                    Ok(false) => tracing::warn!(%apex, serial, %secondary, "NOTIFY not answered"),
                    Err(e) => tracing::warn!(%apex, %secondary, error = %e, "NOTIFY failed"),
                }
            }
        }
    }
}
