//! etcd 3.4 (Debian's `etcd-server`) on loopback, spoken to over its native
//! gRPC API with a handful of hand-encoded protobuf messages.
//!
//! Why not the `etcd-client` crate: its build script runs `tonic-build`, which
//! needs `protoc`, and CI compiles benches. Why not etcd's gRPC-JSON gateway:
//! it adds a JSON/base64 transcoding hop and a second internal gRPC call inside
//! etcd, which would slow etcd down and flatter us. The messages needed here
//! (Txn with one compare and one put, Range, Status) are small enough to encode
//! by hand; field numbers are those of etcd's `etcdserverpb/rpc.proto`.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::client::H2;

const ETCD: &str = "etcd";

/// A running etcd, killed when dropped, however the bench ends.
pub struct Etcd {
    child: Child,
    /// The client address (gRPC).
    pub addr: SocketAddr,
    /// What `etcd --version` printed first.
    pub version: String,
}

impl Etcd {
    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Whether an `etcd` binary can be run at all.
pub fn installed() -> Option<String> {
    let out = Command::new(ETCD).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.lines().next().unwrap_or_default().to_owned())
}

/// Starts etcd with its defaults (fsync of the WAL on every commit) on
/// loopback with a data directory in `dir`, and waits until it answers.
pub async fn start(dir: &Path, version: String) -> Etcd {
    let (client_port, peer_port) = (free_port(), free_port());
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let child = Command::new(ETCD)
        .arg("--data-dir")
        .arg(dir)
        .args(["--listen-client-urls", &client_url])
        .args(["--advertise-client-urls", &client_url])
        .args(["--listen-peer-urls", &peer_url])
        .args(["--initial-advertise-peer-urls", &peer_url])
        .args(["--initial-cluster", &format!("default={peer_url}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start etcd");
    let etcd = Etcd {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], client_port)),
        version,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut c) = H2::connect(&super::client::Target::plain(etcd.addr)).await
            && let Ok((_, Some(status))) = c.grpc("/etcdserverpb.Maintenance/Status", &[]).await
            && status == "0"
        {
            return etcd;
        }
        assert!(Instant::now() < deadline, "etcd did not answer within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, value: &[u8]) {
    varint(out, field << 3 | 2);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// `TxnRequest{compare: [mod_revision(key) == 0], success: [put(key, value)]}`:
/// a create, exactly as kube-apiserver's etcd3 store sends it.
pub fn create_txn(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut compare = Vec::with_capacity(key.len() + 8);
    varint(&mut compare, 2 << 3); // target
    varint(&mut compare, 2); // MOD
    bytes_field(&mut compare, 3, key);
    // mod_revision sits in a oneof, so its zero is sent explicitly.
    varint(&mut compare, 6 << 3);
    varint(&mut compare, 0);
    let mut put = Vec::with_capacity(key.len() + value.len() + 8);
    bytes_field(&mut put, 1, key);
    bytes_field(&mut put, 2, value);
    let mut op = Vec::with_capacity(put.len() + 4);
    bytes_field(&mut op, 2, &put); // request_put
    let mut txn = Vec::with_capacity(compare.len() + op.len() + 8);
    bytes_field(&mut txn, 1, &compare);
    bytes_field(&mut txn, 2, &op);
    txn
}

/// `RangeRequest{key: prefix, range_end: prefix + 1}`: every key under a prefix.
pub fn range_prefix(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let mut out = Vec::new();
    bytes_field(&mut out, 1, prefix);
    bytes_field(&mut out, 2, &end);
    out
}

fn read_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// The top-level fields of a protobuf message: (field, varint value or
/// length of a length-delimited field).
fn fields(buf: &[u8]) -> Option<Vec<(u64, u64)>> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < buf.len() {
        let tag = read_varint(buf, &mut at)?;
        let value = match tag & 7 {
            0 => read_varint(buf, &mut at)?,
            1 => {
                at += 8;
                8
            }
            2 => {
                let len = read_varint(buf, &mut at)?;
                at += usize::try_from(len).ok()?;
                len
            }
            5 => {
                at += 4;
                4
            }
            _ => return None,
        };
        out.push((tag >> 3, value));
    }
    (at == buf.len()).then_some(out)
}

/// `TxnResponse.succeeded` (field 2).
pub fn txn_succeeded(msg: &Bytes) -> bool {
    fields(msg).is_some_and(|f| f.iter().any(|&(n, v)| n == 2 && v == 1))
}

/// How many `kvs` (field 2) a `RangeResponse` holds.
pub fn range_count(msg: &Bytes) -> usize {
    fields(msg).map_or(0, |f| f.iter().filter(|&&(n, _)| n == 2).count())
}
