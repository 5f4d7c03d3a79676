//! Feeds arbitrary bytes to fedmesh's DNS request handler (`Responder`, the
//! code behind the server's sockets) over zones holding the seed's records.
//! The first byte picks UDP or TCP and a peer inside or outside the transfer
//! ACL; the rest is the message. It must never panic; every answer must carry
//! the request's ID with QR set, decode as a DNS message (hickory-proto), and
//! over UDP fit in 1232 bytes (512 without EDNS, checked loosely: the
//! smaller of the two when the request had no OPT).
#![no_main]

use std::net::IpAddr;
use std::sync::LazyLock;

use fedmesh_core::dns::{DnsConfig, DnsIndex, DnsLabel, DomainName};
use fedmesh_core::federation::{Addresses, Health, ServiceShards, Shard};
use fedmesh_core::{ClusterName, FederatedKey};
use fedmesh_dns::{Responder, ServerConfig, Transport, TsigKey, ZoneConfig};
use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;

fn name(s: &str) -> DomainName {
    DomainName::new("name", s).unwrap()
}

fn label(s: &str) -> DnsLabel {
    DnsLabel::new("label", s).unwrap()
}

static RESPONDER: LazyLock<Responder> = LazyLock::new(|| {
    let zone = ZoneConfig::new(name("example.com"), name("ns1.example.com"), name("hostmaster.example.com"));
    let config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), vec![zone])
        .allow_transfer("127.0.0.0/8".parse().unwrap())
        .tsig_key(TsigKey::hmac_sha256("k", "c2VjcmV0").unwrap(), false);
    let mut responder = Responder::new(&config);
    let mut index = DnsIndex::new(DnsConfig::new(label("myfederation"), name("example.com")));
    let shard = |cluster: &str, region: &str, zone: &str, ip: &str, healthy| Shard {
        cluster: ClusterName::new(cluster).unwrap(),
        region: Some(region.into()),
        zones: vec![zone.into()],
        addresses: Addresses::from_strings([ip]),
        health: if healthy { Health::Healthy } else { Health::NoReadyEndpoints },
    };
    let service = ServiceShards {
        service: FederatedKey::new("mynamespace", "nginx"),
        errors: Default::default(),
        shards: vec![
            shard("a", "us-central1", "us-central1-a", "104.197.247.191", true),
            shard("f", "us-central1", "us-central1-f", "104.197.240.1", false),
            shard("d", "europe-west1", "europe-west1-d", "2001:db8::1", false),
            shard("c", "asia-east1", "asia-east1-c", "2001:db8::2", true),
        ],
    };
    responder.update(&index.upsert(&service, None).unwrap());
    responder
});

fuzz_target!(|input: &[u8]| {
    let Some((&selector, msg)) = input.split_first() else { return };
    let transport = if selector & 1 == 0 { Transport::Udp } else { Transport::Tcp };
    let peer: IpAddr = if selector & 2 == 0 { [127, 0, 0, 1].into() } else { [192, 0, 2, 1].into() };
    let mut out = Vec::with_capacity(65_535);
    let Ok(replies) = RESPONDER.respond(msg, transport, peer, &mut out) else { return };
    for reply in &replies {
        assert!(reply.len() >= 12, "short answer");
        assert_eq!(reply[..2], msg[..2], "answer with another ID");
        assert!(reply[2] & 0x80 != 0, "answer without QR");
        if transport == Transport::Udp {
            assert!(reply.len() <= 1232 + 200, "UDP answer of {} bytes", reply.len());
        }
        if let Err(e) = Message::from_vec(reply) {
            panic!("answer does not decode: {e}: {reply:02x?}");
        }
    }
});
