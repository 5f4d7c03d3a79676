//! RFC 2136 dynamic update, signed with TSIG (HMAC-SHA256), for BIND 9, Knot,
//! PowerDNS or any primary that takes updates. Records are read back by a
//! (signed) AXFR, so the server must allow the key to transfer the zone.
//!
//! Atomic: a change set is one UPDATE message (RFC 2136 applies it all or
//! nothing), with prerequisites that make it fail whole when the records
//! moved since they were read: an added set must not exist, a removed set must
//! exist exactly as read (`NXRRSET`/`YXRRSET`, reported as
//! [`ProviderError::Conflict`]). A change set of more than
//! [`CHANGES_PER_UPDATE`] changes is sent as several UPDATE messages, each
//! atomic.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use fedmesh_core::dns::DomainName;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::{Change, ChangeSet, Provider, ProviderError, RecordSet, RecordType, Zone};
use crate::tsig::{self, AnswerCheck, AnswerTsigError, TsigKey};

const NAME: &str = "rfc2136";
/// Changes per UPDATE message: keeps a message well under 64 KiB.
pub const CHANGES_PER_UPDATE: usize = 100;
/// How long one exchange (connection, request, whole answer) may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on the messages of one zone transfer.
const MAX_TRANSFER_MESSAGES: usize = 100_000;

const RCODE_REFUSED: u8 = 5;
const RCODE_YXRRSET: u8 = 7;
const RCODE_NXRRSET: u8 = 8;
const RCODE_NOTAUTH: u8 = 9;
const RCODE_NOTZONE: u8 = 10;

/// Settings of the RFC 2136 provider.
#[derive(Clone)]
pub struct Rfc2136Config {
    /// The primary server (TCP).
    pub server: SocketAddr,
    /// The zones to manage.
    pub zones: Vec<DomainName>,
    /// The TSIG key updates and transfers are signed with (`None`: unsigned).
    pub key: Option<TsigKey>,
}

/// The RFC 2136 provider.
pub struct Rfc2136 {
    config: Rfc2136Config,
}

fn bad(reason: impl Into<String>) -> ProviderError {
    ProviderError::BadAnswer {
        provider: NAME,
        reason: reason.into(),
    }
}

fn name(n: &DomainName) -> Result<Name, ProviderError> {
    Name::from_str(&format!("{n}.")).map_err(|e| bad(format!("name {n}: {e}")))
}

fn rdata(rtype: RecordType, value: &str) -> Result<RData, ProviderError> {
    let wrong = |e: &dyn std::fmt::Display| bad(format!("{rtype} value {value:?}: {e}"));
    Ok(match rtype {
        RecordType::A => RData::A(A(value.parse().map_err(|e| wrong(&e))?)),
        RecordType::Aaaa => RData::AAAA(AAAA(value.parse().map_err(|e| wrong(&e))?)),
        RecordType::Cname => RData::CNAME(CNAME(
            Name::from_str(&format!("{value}.")).map_err(|e| wrong(&e))?,
        )),
        RecordType::Txt => RData::TXT(TXT::new(vec![value.to_string()])),
    })
}

fn hickory_type(rtype: RecordType) -> hickory_proto::rr::RecordType {
    use hickory_proto::rr::RecordType as H;
    match rtype {
        RecordType::A => H::A,
        RecordType::Aaaa => H::AAAA,
        RecordType::Cname => H::CNAME,
        RecordType::Txt => H::TXT,
    }
}

/// A record set's records, with `ttl` (0 in prerequisites).
fn records(set: &RecordSet, ttl: u32) -> Result<Vec<Record>, ProviderError> {
    let owner = name(&set.name)?;
    set.values()
        .iter()
        .map(|v| Ok(Record::from_rdata(owner.clone(), ttl, rdata(set.rtype, v)?)))
        .collect()
}

/// An empty record of `class` (RFC 2136's "RRset does not exist" with NONE,
/// "delete an RRset" with ANY).
fn empty(set: &RecordSet, class: DNSClass) -> Result<Record, ProviderError> {
    let mut record = Record::update0(name(&set.name)?, 0, hickory_type(set.rtype));
    record.dns_class = class;
    Ok(record)
}

/// The UPDATE message for `changes` to `zone`.
fn update(zone: &DomainName, changes: &[Change]) -> Result<Message, ProviderError> {
    let mut message = Message::new(rand_id(), MessageType::Query, OpCode::Update);
    message.add_query(Query::query(
        name(zone)?,
        hickory_proto::rr::RecordType::SOA,
    ));
    for change in changes {
        match change {
            Change::Add(set) => {
                message.add_answer(empty(set, DNSClass::NONE)?);
                message.add_authorities(records(set, set.ttl)?);
            }
            Change::Remove(set) => {
                message.add_answers(records(set, 0)?);
                message.add_authority(empty(set, DNSClass::ANY)?);
            }
            Change::Upsert(set) => {
                message.add_authority(empty(set, DNSClass::ANY)?);
                message.add_authorities(records(set, set.ttl)?);
            }
        }
    }
    Ok(message)
}

/// A message ID that differs between requests (ids only pair answers with
/// requests on one TCP connection here, so no cryptographic randomness).
fn rand_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ (nanos >> 16)) as u16
}

fn rcode(msg: &[u8]) -> u8 {
    msg.get(3).map_or(0, |b| b & 0x0F)
}

impl Rfc2136 {
    /// A provider for `config`.
    pub fn new(config: Rfc2136Config) -> Self {
        Self { config }
    }

    fn unreachable(&self, reason: String) -> ProviderError {
        ProviderError::Unreachable {
            provider: NAME,
            endpoint: self.config.server.to_string(),
            reason,
        }
    }

    /// Sends `message` over TCP (signed when a key is set) and reads answers
    /// until `done` says the last one came; returns them checked and without TSIG.
    async fn exchange(
        &self,
        message: &Message,
        mut done: impl FnMut(&[u8]) -> bool,
    ) -> Result<Vec<Vec<u8>>, ProviderError> {
        let mut bytes = message
            .to_vec()
            .map_err(|e| bad(format!("encoding the request: {e}")))?;
        let mut check: Option<AnswerCheck> = self
            .config
            .key
            .as_ref()
            .map(|key| tsig::sign_request(key, &mut bytes));
        let io = async {
            let mut stream = TcpStream::connect(self.config.server)
                .await
                .map_err(|e| format!("connecting: {e}"))?;
            let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&bytes);
            stream
                .write_all(&framed)
                .await
                .map_err(|e| format!("sending: {e}"))?;
            let mut answers = Vec::new();
            for _ in 0..MAX_TRANSFER_MESSAGES {
                let mut len = [0u8; 2];
                stream
                    .read_exact(&mut len)
                    .await
                    .map_err(|e| format!("reading the answer: {e}"))?;
                let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
                stream
                    .read_exact(&mut msg)
                    .await
                    .map_err(|e| format!("reading the answer: {e}"))?;
                let last = rcode(&msg) != 0 || done(&msg);
                answers.push(msg);
                if last {
                    return Ok(answers);
                }
            }
            Err("the transfer did not end".to_string())
        };
        let answers = match tokio::time::timeout(TIMEOUT, io).await {
            Ok(Ok(answers)) => answers,
            Ok(Err(reason)) => return Err(self.unreachable(reason)),
            Err(_) => return Err(self.unreachable(format!("no answer within {TIMEOUT:?}"))),
        };
        let Some(check) = &mut check else {
            return Ok(answers);
        };
        let mut checked = Vec::with_capacity(answers.len());
        for msg in &answers {
            match check.check(msg) {
                Ok(bare) => checked.push(bare),
                Err(AnswerTsigError::Rejected(code)) => {
                    return Err(ProviderError::AuthRejected {
                        provider: NAME,
                        reason: AnswerTsigError::Rejected(code).to_string(),
                    });
                }
                // An error answer may come unsigned (REFUSED before TSIG was
                // looked at): its rcode says more than the missing signature.
                Err(AnswerTsigError::Unsigned) if rcode(msg) != 0 => checked.push(msg.clone()),
                Err(e) => {
                    return Err(ProviderError::AuthRejected {
                        provider: NAME,
                        reason: e.to_string(),
                    });
                }
            }
        }
        Ok(checked)
    }

    /// The error for a failed answer to a request about `zone`.
    fn rcode_error(&self, zone: &DomainName, what: &str, code: u8) -> ProviderError {
        match code {
            RCODE_NOTAUTH | RCODE_NOTZONE => ProviderError::ZoneMissing {
                provider: NAME,
                zone: format!(
                    "{zone} (the server at {} is not its primary)",
                    self.config.server
                ),
            },
            RCODE_YXRRSET | RCODE_NXRRSET => ProviderError::Conflict {
                provider: NAME,
                reason: format!("{what} {zone}: prerequisite failed (rcode {code})"),
            },
            RCODE_REFUSED => ProviderError::Refused {
                provider: NAME,
                reason: format!(
                    "{what} {zone}: REFUSED; the server must serve the zone and allow the key (allow-transfer, update-policy)"
                ),
            },
            _ => ProviderError::Refused {
                provider: NAME,
                reason: format!("{what} {zone}: rcode {code}"),
            },
        }
    }

    /// Whether the server is authoritative for `zone` (answers its SOA with AA).
    async fn serves(&self, zone: &DomainName) -> Result<bool, ProviderError> {
        let mut message = Message::new(rand_id(), MessageType::Query, OpCode::Query);
        message.add_query(Query::query(
            name(zone)?,
            hickory_proto::rr::RecordType::SOA,
        ));
        let answers = self.exchange(&message, |_| true).await?;
        let first = answers.first().ok_or_else(|| bad("no answer"))?;
        let answer = Message::from_vec(first).map_err(|e| bad(format!("SOA answer: {e}")))?;
        Ok(rcode(first) == 0 && answer.metadata.authoritative && !answer.answers.is_empty())
    }
}

/// Reads one transferred record, or `None` for a type or name fedmesh does not manage.
fn read_record(record: &Record) -> Option<(DomainName, RecordType, u32, String)> {
    let owner = DomainName::new("record name", &record.name.to_ascii()).ok()?;
    let (rtype, value) = match &record.data {
        RData::A(a) => (RecordType::A, a.0.to_string()),
        RData::AAAA(a) => (RecordType::Aaaa, a.0.to_string()),
        RData::CNAME(c) => (
            RecordType::Cname,
            c.0.to_ascii().trim_end_matches('.').to_ascii_lowercase(),
        ),
        RData::TXT(t) => (
            RecordType::Txt,
            t.txt_data
                .iter()
                .map(|s| String::from_utf8_lossy(s))
                .collect::<String>(),
        ),
        _ => return None,
    };
    Some((owner, rtype, record.ttl, value))
}

impl Provider for Rfc2136 {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn zones(&self) -> Result<Vec<Zone>, ProviderError> {
        let mut zones = Vec::new();
        for zone in &self.config.zones {
            if self.serves(zone).await? {
                zones.push(Zone {
                    id: zone.to_string(),
                    name: zone.clone(),
                });
            }
        }
        Ok(zones)
    }

    async fn records(&self, zone: &Zone) -> Result<Vec<RecordSet>, ProviderError> {
        let mut message = Message::new(rand_id(), MessageType::Query, OpCode::Query);
        message.add_query(Query::query(
            name(&zone.name)?,
            hickory_proto::rr::RecordType::AXFR,
        ));
        // A transfer ends with the second SOA.
        let mut soas = 0;
        let answers = self
            .exchange(&message, |msg| {
                let Ok(m) = Message::from_vec(msg) else {
                    return true;
                };
                soas += m
                    .answers
                    .iter()
                    .filter(|r| matches!(r.data, RData::SOA(_)))
                    .count();
                soas >= 2
            })
            .await?;
        let mut sets: BTreeMap<(DomainName, RecordType), (u32, Vec<String>)> = BTreeMap::new();
        for bytes in &answers {
            let code = rcode(bytes);
            if code != 0 {
                return Err(self.rcode_error(&zone.name, "transfer of", code));
            }
            let message =
                Message::from_vec(bytes).map_err(|e| bad(format!("transfer message: {e}")))?;
            for (owner, rtype, ttl, value) in message.answers.iter().filter_map(read_record) {
                let entry = sets.entry((owner, rtype)).or_insert((ttl, Vec::new()));
                entry.1.push(value);
            }
        }
        Ok(sets
            .into_iter()
            .map(|((owner, rtype), (ttl, values))| RecordSet::new(owner, rtype, ttl, values))
            .collect())
    }

    async fn apply(&self, zone: &Zone, changes: &ChangeSet) -> Result<(), ProviderError> {
        for chunk in changes.changes().chunks(CHANGES_PER_UPDATE) {
            let message = update(&zone.name, chunk)?;
            let answers = self.exchange(&message, |_| true).await?;
            let first = answers.first().ok_or_else(|| bad("no answer"))?;
            let code = rcode(first);
            if code != 0 {
                return Err(self.rcode_error(&zone.name, "update of", code));
            }
        }
        Ok(())
    }
}
