//! A BIND 9 secondary (Debian `bind9`) on loopback takes the zone from
//! fedmesh by a TSIG-signed transfer after NOTIFY, and follows a change.

mod common;

use std::fs;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use fedmesh_dns::TsigKey;

fn soa_serial(addr: SocketAddr) -> Option<u32> {
    short(addr, &["example.com", "SOA"])
        .first()?
        .split(' ')
        .nth(2)?
        .parse()
        .ok()
}

#[test]
fn bind_secondary_follows_the_zone() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let bind_addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let key = TsigKey::hmac_sha256("xfer-key", SECRET).unwrap();
    let (server, mut index) = seed_server(
        config()
            .allow_transfer("127.0.0.1".parse().unwrap())
            .tsig_key(key, true)
            .notify(bind_addr),
    );
    let primary = server.local_addr();
    let d = dir.path().display();
    let conf = format!(
        r#"
key "xfer-key" {{ algorithm hmac-sha256; secret "{SECRET}"; }};
controls {{ }};
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    notify no;
    dnssec-validation no;
}};
zone "example.com" {{
    type secondary;
    file "{d}/example.com.db";
    primaries port {pport} {{ 127.0.0.1 key "xfer-key"; }};
    allow-notify {{ 127.0.0.1; }};
}};
"#,
        pport = primary.port()
    );
    let conf_path = dir.path().join("named.conf");
    fs::write(&conf_path, conf).unwrap();
    let log = fs::File::create(dir.path().join("named.log")).unwrap();
    let _named = Process(
        Command::new("named")
            .args(["-g", "-n", "1", "-c"])
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("named runs (Debian package bind9)"),
    );
    let read_log = || fs::read_to_string(dir.path().join("named.log")).unwrap_or_default();

    // The first transfer (named asks for it on start).
    let serial = server.serial(&name("example.com")).unwrap();
    let loaded = wait_until(Duration::from_secs(15), || {
        soa_serial(bind_addr) == Some(serial)
    });
    assert!(loaded, "BIND never loaded serial {serial}:\n{}", read_log());
    let zone = format!("{NGINX}.us-central1-f.example.com");
    assert_eq!(
        short(bind_addr, &["+norec", &zone, "CNAME"]),
        [format!("{NGINX}.us-central1.example.com.")]
    );

    // A change: fedmesh NOTIFYs, BIND transfers again and answers the new records.
    let mut shards = seed_shards();
    shards[3].health = Health::Healthy;
    server.update(&index.upsert(&service("nginx", shards), None).unwrap());
    let followed = wait_until(Duration::from_secs(15), || {
        short(bind_addr, &["+norec", &zone, "A"]) == ["104.197.240.1"]
    });
    assert!(followed, "BIND did not follow the change:\n{}", read_log());
    assert_eq!(soa_serial(bind_addr), Some(serial + 1));
    let log = read_log();
    assert!(log.contains("notify from 127.0.0.1"), "{log}");
    assert!(log.contains("TSIG xfer-key"), "{log}");
}
