//! CoreDNS's etcd backend: SkyDNS records in etcd, written through etcd's v3
//! JSON gateway (`/v3/kv/range`, `/v3/kv/txn`; keys and values base64).
//!
//! Layout (as ExternalDNS's CoreDNS provider): the records of
//! `www.example.com` are keys `/skydns/com/example/www/<leaf>`, one per value,
//! each holding SkyDNS JSON: `{"host":"10.0.0.1","ttl":180}` (an address, or
//! a name for a CNAME) or `{"text":"...","ttl":180}` for TXT. CoreDNS answers
//! a name with every key below its path. fedmesh names its leaves
//! `<type>-<index>` (`a-0`, `aaaa-1`, `cname-0`, `txt-0`); when reading, the
//! last segment of any key is taken as a leaf, so keys written by others are
//! read as records of the name above them.
//!
//! etcd has no zones: a zone is the key prefix of its name, and
//! [`Provider::zones`] lists the zones this provider was configured with.
//!
//! Atomic: a change set is one transaction that also compares every key it
//! read for the change (mod revision unchanged, new keys still absent), so a
//! concurrent writer makes it fail whole ([`ProviderError::Conflict`]). etcd
//! limits a transaction to 128 operations by default (`--max-txn-ops`); a
//! larger change set is sent as several transactions, each atomic.

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use fedmesh_core::dns::DomainName;
use http::Method;
use serde_json::{Value, json};

use super::http::Endpoint;
use super::{Change, ChangeSet, ConfigError, Provider, ProviderError, RecordSet, RecordType, Zone};

const NAME: &str = "etcd";
/// Operations per transaction: etcd's default `--max-txn-ops`.
const MAX_TXN_OPS: usize = 128;

/// Settings of the etcd provider.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// etcd's client URL (`http://127.0.0.1:2379`).
    pub endpoint: String,
    /// The key prefix CoreDNS's `etcd` plugin reads (`path`, default `/skydns`).
    pub prefix: String,
    /// The zones to manage (CoreDNS's `etcd ZONES...`).
    pub zones: Vec<DomainName>,
    /// User name and password, when etcd has authentication enabled.
    pub user: Option<(String, String)>,
}

/// The CoreDNS-etcd provider.
pub struct Etcd {
    endpoint: Endpoint,
    config: EtcdConfig,
}

fn bad(reason: impl Into<String>) -> ProviderError {
    ProviderError::BadAnswer {
        provider: NAME,
        reason: reason.into(),
    }
}

/// The smallest key after every key starting with `prefix`.
fn range_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// One key read from etcd.
struct Kv {
    key: String,
    value: Vec<u8>,
    mod_revision: String,
}

impl Etcd {
    /// A provider for `config`.
    pub fn new(mut config: EtcdConfig) -> Result<Self, ConfigError> {
        let endpoint = Endpoint::parse(NAME, &config.endpoint).map_err(|reason| ConfigError {
            provider: NAME,
            reason,
        })?;
        if !config.prefix.starts_with('/') {
            return Err(ConfigError {
                provider: NAME,
                reason: format!("key prefix {:?} must start with '/'", config.prefix),
            });
        }
        config.prefix = config.prefix.trim_end_matches('/').to_string();
        Ok(Self { endpoint, config })
    }

    /// The key path of `name`: `/skydns/com/example/www`.
    fn path(&self, name: &DomainName) -> String {
        let mut path = self.config.prefix.clone();
        for label in name.labels().rev() {
            path.push('/');
            path.push_str(label);
        }
        path
    }

    /// Headers with a fresh token when authentication is configured.
    async fn auth(&self) -> Result<Vec<(String, String)>, ProviderError> {
        let Some((user, password)) = &self.config.user else {
            return Ok(Vec::new());
        };
        let answer = self
            .post(
                "/v3/auth/authenticate",
                &json!({"name": user, "password": password}),
                &[],
            )
            .await?;
        let token = answer["token"]
            .as_str()
            .ok_or_else(|| bad("authenticate: no token"))?;
        Ok(vec![("authorization".into(), token.to_string())])
    }

    async fn post(
        &self,
        path: &str,
        body: &Value,
        headers: &[(String, String)],
    ) -> Result<Value, ProviderError> {
        let mut headers = headers.to_vec();
        headers.push(("content-type".into(), "application/json".into()));
        let response = self
            .endpoint
            .send(Method::POST, path, &headers, body.to_string().into_bytes())
            .await?;
        let value: Value = serde_json::from_slice(&response.body)
            .map_err(|e| bad(format!("{path}: status {}: not JSON: {e}", response.status)))?;
        if (200..300).contains(&response.status) && value.get("error").is_none() {
            return Ok(value);
        }
        let message = value["error"]
            .as_str()
            .or(value["message"].as_str())
            .unwrap_or("no message")
            .to_string();
        let reason = format!("{path}: status {}: {message}", response.status);
        Err(
            if message.contains("authentication failed")
                || message.contains("permission denied")
                || message.contains("user name is empty")
                || message.contains("invalid auth token")
            {
                ProviderError::AuthRejected {
                    provider: NAME,
                    reason,
                }
            } else {
                ProviderError::Refused {
                    provider: NAME,
                    reason,
                }
            },
        )
    }

    /// Every key starting with `prefix`.
    async fn range(
        &self,
        prefix: &str,
        headers: &[(String, String)],
    ) -> Result<Vec<Kv>, ProviderError> {
        let answer = self
            .post(
                "/v3/kv/range",
                &json!({"key": B64.encode(prefix), "range_end": B64.encode(range_end(prefix))}),
                headers,
            )
            .await?;
        let Some(kvs) = answer["kvs"].as_array() else {
            return Ok(Vec::new());
        };
        kvs.iter()
            .map(|kv| {
                let field = |f: &str| {
                    B64.decode(kv[f].as_str().unwrap_or(""))
                        .map_err(|e| bad(format!("range: {f} is not base64: {e}")))
                };
                Ok(Kv {
                    key: String::from_utf8_lossy(&field("key")?).into_owned(),
                    value: field("value")?,
                    mod_revision: kv["mod_revision"].as_str().unwrap_or("0").to_string(),
                })
            })
            .collect()
    }

    /// The record a key holds, with its name, or `None` for a key that is not
    /// a SkyDNS record fedmesh can read.
    fn read(&self, kv: &Kv) -> Option<(DomainName, RecordType, u32, String)> {
        let rest = kv
            .key
            .strip_prefix(&self.config.prefix)?
            .strip_prefix('/')?;
        let (path, _leaf) = rest.rsplit_once('/')?;
        let name: Vec<&str> = path.split('/').rev().collect();
        let name = DomainName::new("etcd record name", &name.join(".")).ok()?;
        let value: Value = serde_json::from_slice(&kv.value).ok()?;
        let ttl = value["ttl"]
            .as_u64()
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(0);
        let host = value["host"].as_str().unwrap_or("");
        let text = value["text"].as_str().unwrap_or("");
        let (rtype, data) = match host.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => (RecordType::A, ip.to_string()),
            Ok(IpAddr::V6(ip)) => (RecordType::Aaaa, ip.to_string()),
            Err(_) if !host.is_empty() => (
                RecordType::Cname,
                host.trim_end_matches('.').to_ascii_lowercase(),
            ),
            Err(_) if !text.is_empty() => (RecordType::Txt, text.to_string()),
            Err(_) => return None,
        };
        Some((name, rtype, ttl, data))
    }

    fn leaf_prefix(&self, set: &RecordSet) -> String {
        format!(
            "{}/{}-",
            self.path(&set.name),
            set.rtype.as_str().to_ascii_lowercase()
        )
    }
}

/// One record set's part of a transaction.
#[derive(Default)]
struct Txn {
    compare: Vec<Value>,
    success: Vec<Value>,
}

fn skydns_value(rtype: RecordType, ttl: u32, value: &str) -> Value {
    match rtype {
        RecordType::Txt => json!({"text": value, "ttl": ttl}),
        RecordType::A | RecordType::Aaaa | RecordType::Cname => json!({"host": value, "ttl": ttl}),
    }
}

impl Provider for Etcd {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn zones(&self) -> Result<Vec<Zone>, ProviderError> {
        // Reading the prefix checks that etcd answers and the credentials work.
        let headers = self.auth().await?;
        self.post(
            "/v3/kv/range",
            &json!({"key": B64.encode(&self.config.prefix), "count_only": true}),
            &headers,
        )
        .await?;
        Ok(self
            .config
            .zones
            .iter()
            .map(|name| Zone {
                id: name.to_string(),
                name: name.clone(),
            })
            .collect())
    }

    async fn records(&self, zone: &Zone) -> Result<Vec<RecordSet>, ProviderError> {
        let headers = self.auth().await?;
        let kvs = self
            .range(&format!("{}/", self.path(&zone.name)), &headers)
            .await?;
        let mut sets: std::collections::BTreeMap<(DomainName, RecordType), (u32, Vec<String>)> =
            Default::default();
        for kv in &kvs {
            if let Some((name, rtype, ttl, value)) = self.read(kv) {
                let entry = sets.entry((name, rtype)).or_insert((ttl, Vec::new()));
                entry.0 = entry.0.min(ttl);
                entry.1.push(value);
            }
        }
        Ok(sets
            .into_iter()
            .map(|((name, rtype), (ttl, values))| RecordSet::new(name, rtype, ttl, values))
            .collect())
    }

    async fn apply(&self, _zone: &Zone, changes: &ChangeSet) -> Result<(), ProviderError> {
        let headers = self.auth().await?;
        let mut parts = Vec::with_capacity(changes.len());
        for change in changes.changes() {
            let set = change.set();
            let leaf = self.leaf_prefix(set);
            let existing = self.range(&leaf, &headers).await?;
            let mut part = Txn::default();
            for kv in &existing {
                part.compare.push(json!({
                    "key": B64.encode(&kv.key), "target": "MOD",
                    "result": "EQUAL", "mod_revision": kv.mod_revision,
                }));
            }
            let mut written = Vec::new();
            if !matches!(change, Change::Remove(_)) {
                for (i, value) in set.values().iter().enumerate() {
                    let key = format!("{leaf}{i}");
                    if !existing.iter().any(|kv| kv.key == key) {
                        part.compare.push(json!({
                            "key": B64.encode(&key), "target": "CREATE",
                            "result": "EQUAL", "create_revision": "0",
                        }));
                    }
                    let value = skydns_value(set.rtype, set.ttl, value).to_string();
                    part.success.push(json!({"request_put": {
                        "key": B64.encode(&key), "value": B64.encode(value),
                    }}));
                    written.push(key);
                }
            }
            for kv in existing.iter().filter(|kv| !written.contains(&kv.key)) {
                part.success
                    .push(json!({"request_delete_range": {"key": B64.encode(&kv.key)}}));
            }
            parts.push(part);
        }
        // Whole record sets per transaction, as many as fit.
        let mut txn = Txn::default();
        for part in parts {
            let full = txn.compare.len() + part.compare.len() > MAX_TXN_OPS
                || txn.success.len() + part.success.len() > MAX_TXN_OPS;
            if full && !txn.success.is_empty() {
                self.commit(std::mem::take(&mut txn), &headers).await?;
            }
            txn.compare.extend(part.compare);
            txn.success.extend(part.success);
        }
        if !txn.success.is_empty() {
            self.commit(txn, &headers).await?;
        }
        Ok(())
    }
}

impl Etcd {
    async fn commit(&self, txn: Txn, headers: &[(String, String)]) -> Result<(), ProviderError> {
        let answer = self
            .post(
                "/v3/kv/txn",
                &json!({"compare": txn.compare, "success": txn.success}),
                headers,
            )
            .await?;
        if answer["succeeded"].as_bool() == Some(true) {
            Ok(())
        } else {
            Err(ProviderError::Conflict {
                provider: NAME,
                reason: "keys changed since they were read (transaction compare failed)".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_read_as_records() {
        let etcd = Etcd::new(EtcdConfig {
            endpoint: "http://127.0.0.1:2379".into(),
            prefix: "/skydns/".into(),
            zones: vec![],
            user: None,
        })
        .unwrap();
        let www = DomainName::new("n", "www.example.com").unwrap();
        assert_eq!(etcd.path(&www), "/skydns/com/example/www");
        let kv = |key: &str, value: &str| Kv {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            mod_revision: "1".into(),
        };
        let read = |key, value| {
            etcd.read(&kv(key, value))
                .map(|(n, t, ttl, v)| (n.to_string(), t, ttl, v))
        };
        assert_eq!(
            read(
                "/skydns/com/example/www/a-0",
                r#"{"host":"10.0.0.1","ttl":60}"#
            ),
            Some((
                "www.example.com".into(),
                RecordType::A,
                60,
                "10.0.0.1".into()
            ))
        );
        assert_eq!(
            read(
                "/skydns/com/example/www/x1",
                r#"{"host":"Target.example.com."}"#
            ),
            Some((
                "www.example.com".into(),
                RecordType::Cname,
                0,
                "target.example.com".into()
            ))
        );
        assert_eq!(
            read(
                "/skydns/com/example/_o/txt-0",
                r#"{"text":"heritage=fedmesh"}"#
            )
            .map(|r| r.1),
            Some(RecordType::Txt)
        );
        assert_eq!(read("/skydns/com/example/www/a-0", "not json"), None);
        assert_eq!(
            read("/other/com/example/a-0", r#"{"host":"10.0.0.1"}"#),
            None
        );
        assert_eq!(range_end("/a/"), b"/a0".to_vec());
    }
}
