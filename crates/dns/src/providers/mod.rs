//! External DNS providers (Federation v1's `dnsprovider`): the zones of a DNS
//! service, their record sets, and change sets applied as one unit where the
//! provider allows it.
//!
//! ```text
//!  DnsIndex::records() ──▶ sync::plan(desired, current, owner) ──▶ ChangeSet ──▶ Provider::apply
//!                                     ▲                                             │
//!                          Provider::records(zone) ◀──────────── runner (retries, backoff)
//! ```
//!
//! One file per provider: [`rfc2136`] (dynamic update with TSIG, e.g. BIND 9),
//! [`route53`] (AWS Route 53's REST API, SigV4) and [`etcd`] (CoreDNS's etcd
//! backend, SkyDNS records, through etcd's v3 JSON gateway). See docs/dns.md,
//! "External DNS providers".

pub mod etcd;
mod http;
pub mod rfc2136;
pub mod route53;
pub mod runner;
mod sigv4;
pub mod sync;
mod xml;

use std::fmt;
use std::future::Future;

use fedmesh_core::dns::DomainName;

/// The record types fedmesh writes (and reads back) in a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// One alias.
    Cname,
    /// Text: fedmesh's ownership records.
    Txt,
}

impl RecordType {
    /// The type's mnemonic (`A`, `AAAA`, `CNAME`, `TXT`).
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Txt => "TXT",
        }
    }

    /// The type for a mnemonic, or `None` for a type fedmesh does not manage
    /// (a provider lists those too, and sync never touches them).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "A" => RecordType::A,
            "AAAA" => RecordType::Aaaa,
            "CNAME" => RecordType::Cname,
            "TXT" => RecordType::Txt,
            _ => return None,
        })
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// All records of one type at one name, as Route 53 and Federation v1 see
/// them: the unit a change adds, removes or replaces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordSet {
    /// The owner name.
    pub name: DomainName,
    /// The type.
    pub rtype: RecordType,
    /// The TTL, in seconds.
    pub ttl: u32,
    /// The values in presentation form (an address, a name without the
    /// trailing dot, a TXT string without quotes), sorted and de-duplicated,
    /// so that two sets with the same records compare equal.
    values: Vec<String>,
}

impl RecordSet {
    /// A record set; `values` are sorted and de-duplicated.
    pub fn new(name: DomainName, rtype: RecordType, ttl: u32, mut values: Vec<String>) -> Self {
        values.sort();
        values.dedup();
        Self {
            name,
            rtype,
            ttl,
            values,
        }
    }

    /// The values, sorted.
    pub fn values(&self) -> &[String] {
        &self.values
    }
}

impl fmt::Display for RecordSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} [{}]",
            self.name,
            self.ttl,
            self.rtype,
            self.values.join(", ")
        )
    }
}

/// One zone of a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// The provider's identifier (Route 53's hosted zone ID; the name elsewhere).
    pub id: String,
    /// The zone's apex.
    pub name: DomainName,
}

/// One change to a record set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A set that must not exist yet.
    Add(RecordSet),
    /// A set as it was read (Route 53 deletes only an exact match).
    Remove(RecordSet),
    /// A set that replaces whatever is at its name and type.
    Upsert(RecordSet),
}

impl Change {
    /// The record set the change is about.
    pub fn set(&self) -> &RecordSet {
        match self {
            Change::Add(s) | Change::Remove(s) | Change::Upsert(s) => s,
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Add(s) => write!(f, "add {s}"),
            Change::Remove(s) => write!(f, "remove {s}"),
            Change::Upsert(s) => write!(f, "upsert {s}"),
        }
    }
}

/// Changes to one zone, in the order they are applied: removals first (a
/// name's A records must go before a CNAME can take their place), then
/// upserts, then additions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    changes: Vec<Change>,
}

impl ChangeSet {
    /// A change set of `changes`, put in the order they are applied in.
    pub fn new(mut changes: Vec<Change>) -> Self {
        changes.sort_by(|a, b| {
            let rank = |c: &Change| match c {
                Change::Remove(_) => 0,
                Change::Upsert(_) => 1,
                Change::Add(_) => 2,
            };
            (rank(a), a.set()).cmp(&(rank(b), b.set()))
        });
        Self { changes }
    }

    /// The changes, removals first.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// How many changes.
    pub fn len(&self) -> usize {
        self.changes.len()
    }
}

/// Why a provider call failed. Every message says which provider and what to check.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No connection to the provider's server (down, wrong address, timeout).
    #[error(
        "{provider}: cannot reach {endpoint}: {reason}; check that the server runs and the address is right"
    )]
    Unreachable {
        /// The provider.
        provider: &'static str,
        /// The address or URL tried.
        endpoint: String,
        /// What failed.
        reason: String,
    },
    /// The provider refused the credentials (TSIG key, AWS keys, etcd auth).
    #[error("{provider}: credentials rejected: {reason}; check the key name and secret")]
    AuthRejected {
        /// The provider.
        provider: &'static str,
        /// What the server said.
        reason: String,
    },
    /// The zone does not exist in the provider (or is not served by it).
    #[error(
        "{provider}: zone {zone} does not exist there; create it first (fedmesh only manages records inside it)"
    )]
    ZoneMissing {
        /// The provider.
        provider: &'static str,
        /// The zone's name.
        zone: String,
    },
    /// The records changed under us (a prerequisite or comparison failed);
    /// the next round reads them again.
    #[error(
        "{provider}: the change was not applied because the records changed meanwhile: {reason}"
    )]
    Conflict {
        /// The provider.
        provider: &'static str,
        /// What the server said.
        reason: String,
    },
    /// The server refused the request for another reason.
    #[error("{provider}: request refused: {reason}")]
    Refused {
        /// The provider.
        provider: &'static str,
        /// What the server said.
        reason: String,
    },
    /// The server's answer could not be read.
    #[error("{provider}: unreadable answer: {reason}")]
    BadAnswer {
        /// The provider.
        provider: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

/// A provider's settings are not usable.
#[derive(Debug, thiserror::Error)]
#[error("{provider}: {reason}")]
pub struct ConfigError {
    /// The provider.
    pub provider: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl ProviderError {
    /// Whether trying again later may succeed without anyone changing the
    /// configuration: the server was down or the records moved. Credentials,
    /// a missing zone and refusals need a person (they are still retried by the
    /// loop, at its longest backoff).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProviderError::Unreachable { .. } | ProviderError::Conflict { .. }
        )
    }
}

/// A DNS service fedmesh writes records to.
pub trait Provider {
    /// The provider's name in messages (`rfc2136`, `route53`, `etcd`).
    fn name(&self) -> &'static str;

    /// The zones the provider has (and these credentials may see).
    fn zones(&self) -> impl Future<Output = Result<Vec<Zone>, ProviderError>> + Send;

    /// Every record set in `zone`, of every type (types fedmesh does not
    /// manage are left out).
    fn records(
        &self,
        zone: &Zone,
    ) -> impl Future<Output = Result<Vec<RecordSet>, ProviderError>> + Send;

    /// Applies `changes` to `zone`: all or nothing where the provider allows
    /// it (see each provider's module).
    fn apply(
        &self,
        zone: &Zone,
        changes: &ChangeSet,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send;
}
