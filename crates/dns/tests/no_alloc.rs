//! The answer path allocates nothing: a counting global allocator watches the
//! whole process while a running server answers UDP queries of every kind
//! (addresses, CNAME chains, NODATA, NXDOMAIN, REFUSED, EDNS, truncation,
//! malformed). The test is alone in its binary so that no other test's
//! threads allocate during the count.

// A global allocator must be an `unsafe impl`; it only forwards to `System`
// and counts.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments; the
// counter is a static atomic, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A query for `name` of `qtype`, with an EDNS OPT record advertising
/// `payload` when given.
fn query(id: u16, name: &str, qtype: u16, payload: Option<u16>) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    let additional = u8::from(payload.is_some());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, additional]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    if let Some(payload) = payload {
        q.extend_from_slice(&[0, 0, 41]);
        q.extend_from_slice(&payload.to_be_bytes());
        q.extend_from_slice(&[0, 0, 0x80, 0, 0, 0]);
    }
    q
}

#[test]
fn answering_a_query_allocates_nothing() {
    let (server, mut index) = seed_server(config());
    // A service of 40 addresses: its answer is bigger than 512 bytes.
    let ips: Vec<String> = (1..=40).map(|i| format!("10.0.0.{i}")).collect();
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    let big = shard("big", "us-east1", "us-east1-b", &ips, true);
    server.update(&index.upsert(&service("big", vec![big]), None).unwrap());
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server.local_addr()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let (a, aaaa, cname, any) = (1, 28, 5, 255);
    let global = format!("{NGINX}.example.com");
    let mut queries = vec![
        // Addresses; a CNAME chain followed to the global name's A records.
        query(1, &format!("{NGINX}.us-central1-a.example.com"), a, None),
        query(
            2,
            &format!("{NGINX}.Europe-West1-D.example.com"),
            a,
            Some(1232),
        ),
        query(
            3,
            &format!("{NGINX}.us-central1-f.example.com"),
            cname,
            None,
        ),
        query(4, &format!("{NGINX}.asia-east1.example.com"), aaaa, None),
        query(5, &global, any, Some(4096)),
        // NODATA (an empty non-terminal too), NXDOMAIN, the apex, REFUSED.
        query(6, &format!("{NGINX}.us-central1-a.example.com"), aaaa, None),
        query(7, "myfederation.svc.example.com", a, None),
        query(8, &format!("nothing.{NGINX}.example.com"), a, Some(1232)),
        query(9, "example.com", 6, None),
        query(10, "example.org", a, None),
        // Answers bigger than 512 bytes: truncated without EDNS, whole with.
        query(11, "big.mynamespace.myfederation.svc.example.com", a, None),
        query(
            13,
            "big.mynamespace.myfederation.svc.example.com",
            a,
            Some(1232),
        ),
    ];
    // Malformed: a name running past the end of the message (FORMERR).
    let mut bad = query(12, &global, a, None);
    bad.truncate(20);
    queries.push(bad);

    let mut buf = [0u8; 2048];
    let mut ask = |q: &[u8]| {
        socket.send(q).unwrap();
        let len = socket.recv(&mut buf).unwrap();
        assert_eq!(buf[..2], q[..2], "the answer to query {:?}", &q[..2]);
        len
    };
    // Warm up: every server thread takes its snapshot and buffers, and this
    // thread its socket state, before counting starts.
    for _ in 0..50 {
        for q in &queries {
            ask(q);
        }
    }
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let mut answered = 0;
    for _ in 0..200 {
        for q in &queries {
            answered += usize::from(ask(q) >= 12);
        }
    }
    let allocated = ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert_eq!(answered, 200 * queries.len());
    assert_eq!(
        allocated, 0,
        "{allocated} allocations while answering {answered} queries"
    );
    drop(server);
}
