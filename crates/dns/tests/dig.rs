//! The server as dig sees it: answers, CNAME chains, negative answers,
//! refusal, truncation, TCP, changes, bad input and transfers.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::*;
use fedmesh_dns::{AddrRange, Server, TsigKey};

#[test]
fn answers_follow_the_seed_records() {
    let (server, _) = seed_server(config());
    let addr = server.local_addr();

    // A zone with healthy shards: an A record, authoritative, no recursion.
    let out = dig(addr, &[&format!("{NGINX}.us-central1-a.example.com"), "A"]);
    assert_eq!(status(&out), "NOERROR");
    assert_eq!(flags(&out), "qr aa rd");
    assert!(
        out.contains(&format!(
            "{NGINX}.us-central1-a.example.com. 180 IN A 104.197.247.191"
        )),
        "{out}"
    );

    // europe-west1-d: CNAME to the region, which is a CNAME to the global
    // name, followed in the answer as BIND does.
    let got = short(addr, &[&format!("{NGINX}.europe-west1-d.example.com"), "A"]);
    assert_eq!(
        got,
        [
            format!("{NGINX}.europe-west1.example.com."),
            format!("{NGINX}.example.com."),
            "104.197.244.180".into(),
            "104.197.245.170".into(),
            "104.197.247.191".into(),
            "130.211.56.221".into(),
            "130.211.57.243".into(),
        ]
    );
    // A CNAME question stops at the first alias.
    let got = short(
        addr,
        &[&format!("{NGINX}.us-central1-f.example.com"), "CNAME"],
    );
    assert_eq!(got, [format!("{NGINX}.us-central1.example.com.")]);
    // asia-east1: an A of two shards, and the AAAA of one.
    let got = short(addr, &[&format!("{NGINX}.asia-east1.example.com"), "A"]);
    assert_eq!(got, ["130.211.56.221", "130.211.57.243"]);
    let got = short(addr, &[&format!("{NGINX}.asia-east1.example.com"), "AAAA"]);
    assert_eq!(got, ["2001:db8::1"]);

    // NODATA: the name exists, the type does not; SOA in authority.
    let out = dig(
        addr,
        &[&format!("{NGINX}.us-central1-a.example.com"), "AAAA"],
    );
    assert_eq!(status(&out), "NOERROR");
    assert!(out.contains("ANSWER: 0, AUTHORITY: 1"), "{out}");
    assert!(
        out.contains("example.com.\t\t60\tIN\tSOA\tns1.example.com. hostmaster.example.com."),
        "{out}"
    );
    // An unknown type and an empty non-terminal are NODATA too.
    let out = dig(addr, &[&format!("{NGINX}.example.com"), "TYPE65000"]);
    assert_eq!(
        (status(&out), out.contains("ANSWER: 0, AUTHORITY: 1")),
        ("NOERROR", true),
        "{out}"
    );
    let out = dig(addr, &["myfederation.svc.example.com", "A"]);
    assert_eq!(
        (status(&out), out.contains("ANSWER: 0, AUTHORITY: 1")),
        ("NOERROR", true),
        "{out}"
    );

    // NXDOMAIN with the SOA, REFUSED outside the zone.
    let out = dig(
        addr,
        &["nothere.mynamespace.myfederation.svc.example.com", "A"],
    );
    assert_eq!(
        (status(&out), out.contains("AUTHORITY: 1")),
        ("NXDOMAIN", true),
        "{out}"
    );
    let out = dig(addr, &["www.example.org", "A"]);
    assert_eq!((status(&out), flags(&out)), ("REFUSED", "qr rd"), "{out}");

    // The apex: SOA and NS; ANY at a name gives its records.
    assert_eq!(short(addr, &["example.com", "NS"]), ["ns1.example.com."]);
    let soa = short(addr, &["example.com", "SOA"]);
    assert!(
        soa[0].starts_with("ns1.example.com. hostmaster.example.com. "),
        "{soa:?}"
    );
    let any = short(addr, &[&format!("{NGINX}.asia-east1.example.com"), "ANY"]);
    assert_eq!(any, ["130.211.56.221", "130.211.57.243", "2001:db8::1"]);

    // The question comes back as asked (case kept), over UDP and TCP alike.
    let asked = "NGINX.MyNamespace.myfederation.svc.US-central1-a.example.com.";
    for transport in ["+notcp", "+tcp"] {
        let out = dig(addr, &[transport, asked, "A"]);
        assert!(out.contains(&format!(";{asked}")), "{out}");
        assert!(out.contains("104.197.247.191"), "{out}");
    }
    // Without EDNS the answer has no OPT; with it, an OPT comes back.
    assert!(!dig(addr, &["+noedns", "example.com", "SOA"]).contains("OPT PSEUDOSECTION"));
    assert!(dig(addr, &["+edns=0", "example.com", "SOA"]).contains("OPT PSEUDOSECTION"));
    let out = dig(
        addr,
        &["+edns=1", "+noednsnegotiation", "example.com", "SOA"],
    );
    assert_eq!(status(&out), "BADVERS", "{out}");
}

#[test]
fn large_answers_truncate_over_udp_and_go_whole_over_tcp() {
    let (server, mut index) = seed_server(config());
    let addr = server.local_addr();
    let ips: Vec<String> = (0..200)
        .map(|i| format!("10.1.{}.{}", i / 250, i % 250 + 1))
        .collect();
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    server.update(
        &index
            .upsert(
                &service("big", vec![shard("c1", "r1", "z1", &ips, true)]),
                None,
            )
            .unwrap(),
    );
    let name = "big.mynamespace.myfederation.svc.example.com";
    for edns in ["+noedns", "+bufsize=1232", "+bufsize=4096"] {
        let out = dig(addr, &["+ignore", edns, name, "A"]);
        assert!(flags(&out).contains("tc"), "{edns}: {out}");
        assert!(out.contains("ANSWER: 0"), "{edns}: {out}");
    }
    // dig retries a truncated answer over TCP by itself.
    assert_eq!(short(addr, &[name, "A"]).len(), 200);
    assert_eq!(short(addr, &["+tcp", name, "A"]).len(), 200);
}

#[test]
fn changes_are_served_and_bump_the_serial() {
    let (server, mut index) = seed_server(config());
    let addr = server.local_addr();
    let serial = server.serial(&name("example.com")).unwrap();
    let zone = format!("{NGINX}.us-central1-f.example.com");
    assert_eq!(
        short(addr, &[&zone, "A"])[0],
        format!("{NGINX}.us-central1.example.com.")
    );

    let mut shards = seed_shards();
    shards[3].health = Health::Healthy;
    let report = server.update(
        &index
            .upsert(&service("nginx", shards.clone()), None)
            .unwrap(),
    );
    // Three names changed; their CNAME referrers were rebuilt with them.
    assert!(report.rebuilt >= 3, "{report:?}");
    assert_eq!(short(addr, &[&zone, "A"]), ["104.197.240.1"]);
    let soa = short(addr, &["example.com", "SOA"]);
    assert!(
        soa[0].contains(&format!(" {} ", serial + 1)),
        "{soa:?} after {serial}"
    );

    // The whole region goes unhealthy: its zones alias to it, it to the global name.
    for s in shards
        .iter_mut()
        .filter(|s| s.region.as_deref() == Some("us-central1"))
    {
        s.health = Health::NoReadyEndpoints;
    }
    server.update(&index.upsert(&service("nginx", shards), None).unwrap());
    let got = short(addr, &[&zone, "A"]);
    assert_eq!(
        &got[..2],
        [
            format!("{NGINX}.us-central1.example.com."),
            format!("{NGINX}.example.com.")
        ]
    );
    assert_eq!(&got[2..], ["130.211.56.221", "130.211.57.243"]);

    // Deleting the Service removes every name, and the empty non-terminals above them.
    let id = service("nginx", vec![]).service;
    server.update(&index.remove(&id));
    for name in [zone.as_str(), "myfederation.svc.example.com"] {
        assert_eq!(status(&dig(addr, &[name, "A"])), "NXDOMAIN", "{name}");
    }
}

#[test]
fn malformed_requests_get_formerr_or_nothing_and_the_server_goes_on() {
    let (server, _) = seed_server(config());
    let addr = server.local_addr();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 512];
    let mut ask = |packet: &[u8]| {
        socket.send_to(packet, addr).unwrap();
        socket.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
    };
    // Too short for a header: dropped.
    assert_eq!(ask(&[1, 2, 3]), None);
    // A header claiming a question that is not there: FORMERR, same ID.
    let reply = ask(&[0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
    assert_eq!((reply[0], reply[1], reply[3] & 0xF), (0xAB, 0xCD, 1));
    // Two questions: FORMERR. An UPDATE (opcode 5): NOTIMP.
    let reply = ask(&[
        0, 1, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1,
    ])
    .unwrap();
    assert_eq!(reply[3] & 0xF, 1);
    let reply = ask(&[0, 2, 0x28, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1]).unwrap();
    assert_eq!(reply[3] & 0xF, 4);
    // A response is never answered (no loops between servers).
    assert_eq!(ask(&[0, 3, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]), None);
    // Still serving.
    assert_eq!(short(addr, &["example.com", "NS"]), ["ns1.example.com."]);
}

#[test]
fn transfers_follow_the_acl_and_tsig() {
    // Allowed from loopback: the whole zone, SOA first and last.
    let (open, _) = seed_server(config().allow_transfer("127.0.0.0/8".parse().unwrap()));
    let out = dig(open.local_addr(), &["example.com", "AXFR"]);
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with(';') && !l.is_empty())
        .collect();
    assert!(lines.first().unwrap().contains("\tSOA\t"), "{out}");
    assert!(lines.last().unwrap().contains("\tSOA\t"), "{out}");
    assert!(
        out.contains(&format!(
            "{NGINX}.europe-west1-d.example.com. 180 IN CNAME {NGINX}.europe-west1.example.com."
        )),
        "{out}"
    );
    assert_eq!(
        lines.len(),
        1 + 1 + 22 + 1,
        "SOA, NS, 22 records, SOA: {out}"
    );
    // IXFR from the current serial: just the SOA (up to date).
    let serial = open.serial(&name("example.com")).unwrap();
    let out = dig(
        open.local_addr(),
        &["+tcp", "example.com", &format!("IXFR={serial}")],
    );
    assert_eq!(
        out.lines().filter(|l| l.contains("\tSOA\t")).count(),
        1,
        "{out}"
    );

    // A peer not in the ACL: REFUSED.
    let (closed, _) = seed_server(config().allow_transfer("10.0.0.0/8".parse().unwrap()));
    let out = dig(closed.local_addr(), &["example.com", "AXFR"]);
    assert!(out.contains("Transfer failed"), "{out}");
    let out = dig(closed.local_addr(), &["+tcp", "example.com", "IXFR=1"]);
    assert!(
        out.contains("Transfer failed") || status(&out) == "REFUSED",
        "{out}"
    );

    // TSIG required: unsigned and wrongly signed transfers fail, signed ones
    // pass and every message's signature checks out in dig.
    let key = TsigKey::hmac_sha256("transfer-key", SECRET).unwrap();
    let range: AddrRange = "127.0.0.1".parse().unwrap();
    let (signed, mut index) = seed_server(config().allow_transfer(range).tsig_key(key, true));
    // Enough names for several messages (100 records each).
    for i in 0..30 {
        let shards = vec![shard("c1", "r1", "z1", &["10.0.0.1", "10.0.0.2"], true)];
        signed.update(
            &index
                .upsert(&service(&format!("s{i}"), shards), None)
                .unwrap(),
        );
    }
    let addr = signed.local_addr();
    assert!(dig(addr, &["example.com", "AXFR"]).contains("Transfer failed"));
    let wrong = "hmac-sha256:transfer-key:d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZw==";
    let out = dig(addr, &["-y", wrong, "example.com", "AXFR"]);
    assert!(!out.contains("XFR size"), "{out}");
    let right = format!("hmac-sha256:transfer-key:{SECRET}");
    let out = dig(addr, &["-y", &right, "example.com", "AXFR"]);
    assert!(out.contains("XFR size: "), "{out}");
    assert!(
        !out.contains("tsig verify failure") && !out.contains("failed"),
        "{out}"
    );
    assert!(
        out.contains("messages 2") || out.contains("messages 3"),
        "{out}"
    );
    // A signed query is answered signed.
    let out = dig(addr, &["-y", &right, "example.com", "SOA"]);
    assert!(
        out.contains("TSIG PSEUDOSECTION") && !out.contains("failure"),
        "{out}"
    );
    drop(Server::start(config()).unwrap());
}
