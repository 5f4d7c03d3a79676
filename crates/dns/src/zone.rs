//! The zones fedmesh serves: the records (the master copy, changed by
//! updates) and the answers precomputed from them (the snapshot the answer
//! path reads).
//!
//! Every name's answers are encoded once, per kind of question, when the name
//! or a name its CNAME chain passes through changes. A query then copies
//! bytes: the header and question come from the request, the answer records
//! from the name's node, and for NODATA and NXDOMAIN the zone's SOA is
//! appended (so a serial bump touches one record, not every name).

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use fedmesh_core::dns::{DnsChange, DomainName, NameRecords, RecordData};

use crate::wire::{
    self, QNAME_POINTER, RCODE_NXDOMAIN, TYPE_A, TYPE_AAAA, TYPE_ANY, TYPE_CNAME, TYPE_NS,
    TYPE_SOA, push_rr,
};

/// How long an in-zone CNAME chain may be before the answer stops following it.
const MAX_CHAIN: usize = 16;

/// One zone's settings: its apex and what its SOA and NS records say.
#[derive(Debug, Clone)]
pub struct ZoneConfig {
    /// The zone's apex (`example.com`).
    pub apex: DomainName,
    /// The zone's nameservers (NS records; the first is the SOA's primary).
    pub nameservers: Vec<DomainName>,
    /// The SOA's responsible mailbox, as a name (`hostmaster.example.com`).
    pub hostmaster: DomainName,
    /// TTL of the SOA and NS records.
    pub ttl: u32,
    /// SOA refresh, retry and expire, in seconds.
    pub refresh: u32,
    /// SOA retry.
    pub retry: u32,
    /// SOA expire.
    pub expire: u32,
    /// SOA minimum: the TTL of negative answers (RFC 2308).
    pub minimum: u32,
}

impl ZoneConfig {
    /// A zone with BIND-like SOA timers and one nameserver.
    pub fn new(apex: DomainName, nameserver: DomainName, hostmaster: DomainName) -> Self {
        Self {
            apex,
            nameservers: vec![nameserver],
            hostmaster,
            ttl: 3600,
            refresh: 3600,
            retry: 600,
            expire: 604_800,
            minimum: 60,
        }
    }
}

/// The kinds of question a node has an answer for.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    A = 0,
    Aaaa,
    Cname,
    Soa,
    Ns,
    Any,
    Other,
}
const KINDS: usize = 7;

impl Kind {
    pub(crate) fn of(qtype: u16) -> Kind {
        match qtype {
            TYPE_A => Kind::A,
            TYPE_AAAA => Kind::Aaaa,
            TYPE_CNAME => Kind::Cname,
            TYPE_SOA => Kind::Soa,
            TYPE_NS => Kind::Ns,
            TYPE_ANY => Kind::Any,
            _ => Kind::Other,
        }
    }
}

/// One answer in a node's bytes.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Answer {
    start: u32,
    len: u32,
    /// Records in the answer section.
    pub(crate) count: u16,
    pub(crate) rcode: u8,
    /// Whether the zone's SOA goes in the authority section (NODATA, NXDOMAIN).
    pub(crate) soa: bool,
}

impl Answer {
    /// The answer for a name that does not exist in its zone.
    pub(crate) const fn nxdomain() -> Self {
        Self {
            start: 0,
            len: 0,
            count: 0,
            rcode: RCODE_NXDOMAIN,
            soa: true,
        }
    }
}

/// Bytes of one [`Answer`] in a node: start, len, count, rcode, soa.
const ANSWER_LEN: usize = 12;

/// A name's precomputed answers, in one block of memory so that a lookup
/// touches one place (in a zone of 200,000 names nearly every lookup misses
/// the caches, and each separate allocation was another miss):
/// `[name length][name][zone: u16][one Answer per Kind][answer bytes]`.
/// The name is the key of the map ([`Names`]).
#[derive(Clone)]
pub(crate) struct Node(Arc<[u8]>);

impl Node {
    fn new(name: &[u8], zone: u16, answers: &[Answer; KINDS], bytes: &[u8]) -> Self {
        let mut block = Vec::with_capacity(3 + name.len() + KINDS * ANSWER_LEN + bytes.len());
        // A wire name is at most 255 bytes.
        block.push(name.len() as u8);
        block.extend_from_slice(name);
        block.extend_from_slice(&zone.to_le_bytes());
        for a in answers {
            block.extend_from_slice(&a.start.to_le_bytes());
            block.extend_from_slice(&a.len.to_le_bytes());
            block.extend_from_slice(&a.count.to_le_bytes());
            block.extend_from_slice(&[a.rcode, u8::from(a.soa)]);
        }
        block.extend_from_slice(bytes);
        Self(block.into())
    }

    /// The name, in lower-case wire form.
    pub(crate) fn name(&self) -> &[u8] {
        &self.0[1..1 + usize::from(self.0[0])]
    }

    /// Where the zone number starts; the answers follow it.
    fn fields(&self) -> usize {
        1 + usize::from(self.0[0])
    }

    pub(crate) fn zone(&self) -> u16 {
        let at = self.fields();
        u16::from_le_bytes([self.0[at], self.0[at + 1]])
    }

    pub(crate) fn answer(&self, kind: Kind) -> (Answer, &[u8]) {
        let table = self.fields() + 2;
        let e = &self.0[table + kind as usize * ANSWER_LEN..][..ANSWER_LEN];
        let a = Answer {
            start: u32::from_le_bytes([e[0], e[1], e[2], e[3]]),
            len: u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            count: u16::from_le_bytes([e[8], e[9]]),
            rcode: e[10],
            soa: e[11] != 0,
        };
        let start = table + KINDS * ANSWER_LEN + a.start as usize;
        (a, &self.0[start..start + a.len as usize])
    }
}

impl Borrow<[u8]> for Node {
    fn borrow(&self) -> &[u8] {
        self.name()
    }
}

// Equality and hash of the name alone, as `Borrow<[u8]>` requires.
impl Hash for Node {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Node {}

/// A zone as the answer path sees it.
pub(crate) struct ZoneView {
    pub(crate) apex: Arc<[u8]>,
    /// The SOA record for the authority section of negative answers.
    pub(crate) soa_authority: Box<[u8]>,
}

/// What the answer path reads: swapped whole when the zones change.
pub(crate) struct Snapshot {
    pub(crate) zones: Vec<ZoneView>,
    pub(crate) names: Names,
}

/// Buckets of a name's answers in the map.
const BUCKETS: usize = 512;
type Bucket = HashSet<Node, foldhash::fast::FixedState>;

/// Every name's node, split into buckets so that an update copies only the
/// buckets it touches (copy on write), not the whole map: a change is served
/// in well under a millisecond however large the zone.
#[derive(Clone)]
pub(crate) struct Names {
    buckets: Vec<Arc<Bucket>>,
}

impl Names {
    fn new() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| Arc::new(Bucket::default())).collect(),
        }
    }

    fn bucket(name: &[u8]) -> usize {
        use std::hash::BuildHasher;
        // A hash other than the buckets' own, so names spread within a bucket too.
        (foldhash::fast::FixedState::with_seed(0x9e37_79b9).hash_one(name) as usize) % BUCKETS
    }

    pub(crate) fn get(&self, name: &[u8]) -> Option<&Node> {
        self.buckets[Self::bucket(name)].get(name)
    }

    /// Adds `node`, or replaces the node of the same name.
    fn insert(&mut self, node: Node) {
        Arc::make_mut(&mut self.buckets[Self::bucket(node.name())]).replace(node);
    }

    fn remove(&mut self, name: &[u8]) {
        let bucket = &mut self.buckets[Self::bucket(name)];
        if bucket.contains(name) {
            Arc::make_mut(bucket).remove(name);
        }
    }
}

impl Snapshot {
    /// The zone `qname` falls in (its longest apex), if any.
    pub(crate) fn zone_of(&self, qname: &wire::NameBuf) -> Option<u16> {
        qname.suffixes().find_map(|suffix| {
            self.zones
                .iter()
                .position(|z| &*z.apex == suffix)
                .map(|i| i as u16)
        })
    }
}

/// One zone's master state.
struct ZoneState {
    config: ZoneConfig,
    apex: Arc<[u8]>,
    serial: u32,
}

/// The records of every zone, and the snapshot built from them.
pub(crate) struct Master {
    zones: Vec<ZoneState>,
    /// Every name with records, with its zone.
    records: BTreeMap<DomainName, (u16, NameRecords)>,
    /// For names strictly between an apex and a record's name: how many
    /// record names lie below (an empty non-terminal: NODATA, not NXDOMAIN).
    below: HashMap<DomainName, u32>,
    /// In-zone CNAME targets -> the names pointing at them.
    referrers: HashMap<DomainName, HashSet<DomainName>>,
    snapshot: Arc<Snapshot>,
}

/// What an update did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateReport {
    /// Names whose answers were rebuilt (changed names and the CNAMEs into them).
    pub rebuilt: usize,
    /// Names not inside any served zone, ignored.
    pub outside: Vec<DomainName>,
}

fn initial_serial() -> u32 {
    // Seconds since the epoch, so a restarted server's serial moves forward
    // (until 2106, after which serial arithmetic still orders it).
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(1)
}

impl Master {
    pub(crate) fn new(configs: Vec<ZoneConfig>) -> Self {
        let serial = initial_serial();
        let zones: Vec<ZoneState> = configs
            .into_iter()
            .map(|config| ZoneState {
                apex: wire::wire_name(&config.apex).into(),
                config,
                serial,
            })
            .collect();
        let mut master = Self {
            zones,
            records: BTreeMap::new(),
            below: HashMap::new(),
            referrers: HashMap::new(),
            snapshot: Arc::new(Snapshot {
                zones: Vec::new(),
                names: Names::new(),
            }),
        };
        let all = (0..master.zones.len() as u16).collect();
        master.publish(Names::new(), &all, HashSet::new(), false);
        master
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.clone()
    }

    pub(crate) fn serial(&self, zone: u16) -> u32 {
        self.zones[usize::from(zone)].serial
    }

    /// The zone whose apex is `apex`.
    pub(crate) fn zone_named(&self, apex: &DomainName) -> Option<u16> {
        self.zones
            .iter()
            .position(|z| z.config.apex == *apex)
            .map(|i| i as u16)
    }

    pub(crate) fn zone_config(&self, zone: u16) -> &ZoneConfig {
        &self.zones[usize::from(zone)].config
    }

    fn zone_for(&self, name: &DomainName) -> Option<u16> {
        self.zones
            .iter()
            .enumerate()
            .filter(|(_, z)| name.is_within(&z.config.apex))
            .max_by_key(|(_, z)| z.config.apex.as_str().len())
            .map(|(i, _)| i as u16)
    }

    /// Every record of a zone, for a transfer.
    pub(crate) fn zone_records(&self, zone: u16) -> Vec<NameRecords> {
        self.records
            .values()
            .filter(|(z, _)| *z == zone)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Replaces every record with `records`.
    pub(crate) fn replace(&mut self, records: Vec<NameRecords>) -> (UpdateReport, Vec<u16>) {
        let keep: HashSet<&DomainName> = records.iter().map(|r| &r.name).collect();
        let removed = self
            .records
            .keys()
            .filter(|n| !keep.contains(n))
            .cloned()
            .collect();
        self.apply(&DnsChange {
            upserted: records,
            removed,
        })
    }

    /// Applies a change, publishes a new snapshot, and returns the zones
    /// whose serial moved.
    pub(crate) fn apply(&mut self, change: &DnsChange) -> (UpdateReport, Vec<u16>) {
        let mut report = UpdateReport::default();
        let mut dirty: HashSet<DomainName> = HashSet::new();
        let mut touched: HashSet<u16> = HashSet::new();
        for name in &change.removed {
            if let Some((zone, old)) = self.records.remove(name) {
                self.unlink(zone, &old, &mut dirty);
                touched.insert(zone);
                dirty.insert(name.clone());
            }
        }
        for record in &change.upserted {
            let Some(zone) = self.zone_for(&record.name) else {
                report.outside.push(record.name.clone());
                continue;
            };
            if let Some((old_zone, old)) = self.records.get(&record.name) {
                if *old == *record {
                    continue;
                }
                let (old_zone, old) = (*old_zone, old.clone());
                self.unlink(old_zone, &old, &mut dirty);
            }
            self.link(zone, record, &mut dirty);
            self.records
                .insert(record.name.clone(), (zone, record.clone()));
            touched.insert(zone);
            dirty.insert(record.name.clone());
        }
        // Names whose CNAME chains pass through a changed name change too.
        let mut queue: Vec<DomainName> = dirty.iter().cloned().collect();
        while let Some(name) = queue.pop() {
            if let Some(sources) = self.referrers.get(&name) {
                for source in sources {
                    if dirty.insert(source.clone()) {
                        queue.push(source.clone());
                    }
                }
            }
        }
        report.rebuilt = dirty.len();
        if touched.is_empty() {
            return (report, Vec::new());
        }
        let names = self.snapshot.names.clone();
        self.publish(names, &touched, dirty, true);
        let mut zones: Vec<u16> = touched.into_iter().collect();
        zones.sort_unstable();
        (report, zones)
    }

    /// Removes what `old` contributed to the ENT counts and referrers.
    fn unlink(&mut self, zone: u16, old: &NameRecords, dirty: &mut HashSet<DomainName>) {
        let apex = &self.zones[usize::from(zone)].config.apex;
        let mut up = old.name.parent();
        while let Some(name) = up.filter(|n| n != apex && n.is_within(apex)) {
            if let Some(count) = self.below.get_mut(&name) {
                *count -= 1;
                if *count == 0 {
                    self.below.remove(&name);
                    dirty.insert(name.clone());
                }
            }
            up = name.parent();
        }
        if let RecordData::Cname(target) = &old.data
            && let Some(set) = self.referrers.get_mut(target)
        {
            set.remove(&old.name);
            if set.is_empty() {
                self.referrers.remove(target);
            }
        }
    }

    fn link(&mut self, zone: u16, new: &NameRecords, dirty: &mut HashSet<DomainName>) {
        let apex = self.zones[usize::from(zone)].config.apex.clone();
        let mut up = new.name.parent();
        while let Some(name) = up.filter(|n| *n != apex && n.is_within(&apex)) {
            let count = self.below.entry(name.clone()).or_insert(0);
            *count += 1;
            if *count == 1 {
                dirty.insert(name.clone());
            }
            up = name.parent();
        }
        if let RecordData::Cname(target) = &new.data
            && target.is_within(&apex)
        {
            self.referrers
                .entry(target.clone())
                .or_default()
                .insert(new.name.clone());
        }
    }

    /// Builds the snapshot from `names` with `dirty` names rebuilt and the
    /// serials of `touched` zones bumped, and makes it current.
    fn publish(
        &mut self,
        mut names: Names,
        touched: &HashSet<u16>,
        dirty: HashSet<DomainName>,
        bump: bool,
    ) {
        for &zone in touched {
            let state = &mut self.zones[usize::from(zone)];
            if bump {
                state.serial = state.serial.wrapping_add(1);
            }
        }
        for name in &dirty {
            let key = wire::wire_name(name);
            match self.records.get(name) {
                Some((zone, _)) => names.insert(self.build(*zone, name, &key)),
                None if self.below.contains_key(name) => {
                    let zone = self.zone_for(name).unwrap_or(0);
                    names.insert(empty_node(&key, zone));
                }
                None => names.remove(&key),
            }
        }
        let mut views = Vec::with_capacity(self.zones.len());
        for (i, state) in self.zones.iter().enumerate() {
            let zone = i as u16;
            if touched.contains(&zone) {
                names.insert(self.build_apex(zone));
            }
            views.push(ZoneView {
                apex: state.apex.clone(),
                soa_authority: self.soa_authority(zone).into(),
            });
        }
        self.snapshot = Arc::new(Snapshot {
            zones: views,
            names,
        });
    }

    /// The SOA record's data.
    pub(crate) fn soa_rdata(&self, zone: u16) -> Vec<u8> {
        let state = &self.zones[usize::from(zone)];
        let c = &state.config;
        let mut rdata = Vec::with_capacity(64);
        match c.nameservers.first() {
            Some(ns) => rdata.extend_from_slice(&wire::wire_name(ns)),
            None => rdata.extend_from_slice(&state.apex),
        }
        rdata.extend_from_slice(&wire::wire_name(&c.hostmaster));
        for v in [state.serial, c.refresh, c.retry, c.expire, c.minimum] {
            rdata.extend_from_slice(&v.to_be_bytes());
        }
        rdata
    }

    fn soa_authority(&self, zone: u16) -> Vec<u8> {
        let state = &self.zones[usize::from(zone)];
        let ttl = state.config.ttl.min(state.config.minimum);
        let mut out = Vec::with_capacity(96);
        push_rr(&mut out, &state.apex, TYPE_SOA, ttl, &self.soa_rdata(zone));
        out
    }

    fn build_apex(&self, zone: u16) -> Node {
        let state = &self.zones[usize::from(zone)];
        let mut b = NodeBuilder::new(zone, &state.apex);
        let soa = |out: &mut Vec<u8>| {
            push_rr(
                out,
                &QNAME_POINTER,
                TYPE_SOA,
                state.config.ttl,
                &self.soa_rdata(zone),
            );
            1
        };
        let ns = |out: &mut Vec<u8>| {
            for ns in &state.config.nameservers {
                push_rr(
                    out,
                    &QNAME_POINTER,
                    TYPE_NS,
                    state.config.ttl,
                    &wire::wire_name(ns),
                );
            }
            state.config.nameservers.len() as u16
        };
        b.set(Kind::Soa, 0, false, soa);
        b.set(Kind::Ns, 0, false, ns);
        b.set(Kind::Any, 0, false, |out| soa(out) + ns(out));
        for kind in [Kind::A, Kind::Aaaa, Kind::Cname, Kind::Other] {
            b.set(kind, 0, true, |_| 0);
        }
        b.finish()
    }

    /// A record name's answers, CNAME chains followed within the zone
    /// (`key`: the name in wire form).
    fn build(&self, zone: u16, name: &DomainName, key: &[u8]) -> Node {
        let mut b = NodeBuilder::new(zone, key);
        for kind in [
            Kind::A,
            Kind::Aaaa,
            Kind::Cname,
            Kind::Soa,
            Kind::Ns,
            Kind::Any,
            Kind::Other,
        ] {
            let (count, rcode, soa) = self.chain(zone, name, kind, &mut b.scratch);
            b.commit(kind, count, rcode, soa);
        }
        b.finish()
    }

    /// Writes the answer records for `kind` at `name` into `out`: (records, rcode, SOA wanted).
    fn chain(
        &self,
        zone: u16,
        name: &DomainName,
        kind: Kind,
        out: &mut Vec<u8>,
    ) -> (u16, u8, bool) {
        let apex = &self.zones[usize::from(zone)].config.apex;
        let mut count = 0u16;
        let mut here = name.clone();
        for hop in 0..MAX_CHAIN {
            let owner_buf;
            let owner: &[u8] = if hop == 0 {
                &QNAME_POINTER
            } else {
                owner_buf = wire::wire_name(&here);
                &owner_buf
            };
            let Some((_, records)) = self.records.get(&here) else {
                // A dangling in-zone target: NXDOMAIN, unless something lies below it.
                let rcode = if self.below.contains_key(&here) {
                    0
                } else {
                    RCODE_NXDOMAIN
                };
                return (count, rcode, true);
            };
            match &records.data {
                RecordData::Addresses { v4, v6 } => {
                    let before = count;
                    let a = |out: &mut Vec<u8>, c: &mut u16| {
                        for ip in v4 {
                            push_rr(out, owner, TYPE_A, records.ttl, &ip.octets());
                            *c += 1;
                        }
                    };
                    let aaaa = |out: &mut Vec<u8>, c: &mut u16| {
                        for ip in v6 {
                            push_rr(out, owner, TYPE_AAAA, records.ttl, &ip.octets());
                            *c += 1;
                        }
                    };
                    match kind {
                        Kind::A => a(out, &mut count),
                        Kind::Aaaa => aaaa(out, &mut count),
                        Kind::Any => {
                            a(out, &mut count);
                            aaaa(out, &mut count);
                        }
                        _ => {}
                    }
                    return (count, 0, count == before);
                }
                RecordData::Cname(target) => {
                    push_rr(
                        out,
                        owner,
                        TYPE_CNAME,
                        records.ttl,
                        &wire::wire_name(target),
                    );
                    count += 1;
                    // A CNAME question, or ANY, ends at the first alias; an
                    // alias out of the zone is for the resolver to follow.
                    if matches!(kind, Kind::Cname | Kind::Any) || !target.is_within(apex) {
                        return (count, 0, false);
                    }
                    here = target.clone();
                }
            }
        }
        // A loop or an overlong chain: answer what was followed.
        (count, 0, false)
    }
}

/// The node of an empty non-terminal: NODATA for every question.
fn empty_node(name: &[u8], zone: u16) -> Node {
    let nodata = Answer {
        soa: true,
        ..Answer::default()
    };
    Node::new(name, zone, &[nodata; KINDS], &[])
}

/// Encodes a node's answers, sharing bytes between kinds that answer alike.
struct NodeBuilder<'a> {
    name: &'a [u8],
    zone: u16,
    bytes: Vec<u8>,
    answers: [Answer; KINDS],
    scratch: Vec<u8>,
}

impl<'a> NodeBuilder<'a> {
    fn new(zone: u16, name: &'a [u8]) -> Self {
        Self {
            name,
            zone,
            bytes: Vec::new(),
            answers: [Answer::default(); KINDS],
            scratch: Vec::new(),
        }
    }

    fn set(&mut self, kind: Kind, rcode: u8, soa: bool, write: impl FnOnce(&mut Vec<u8>) -> u16) {
        let mut out = std::mem::take(&mut self.scratch);
        let count = write(&mut out);
        self.scratch = out;
        self.commit(kind, count, rcode, soa);
    }

    /// Stores the scratch bytes as `kind`'s answer, reusing an equal one.
    fn commit(&mut self, kind: Kind, count: u16, rcode: u8, soa: bool) {
        let same = self.answers.iter().find(|a| {
            let s = a.start as usize;
            a.len as usize == self.scratch.len()
                && (a.len == 0 || self.bytes[s..s + a.len as usize] == self.scratch[..])
        });
        let (start, len) = match same {
            Some(a) if !self.scratch.is_empty() => (a.start, a.len),
            _ => {
                let start = self.bytes.len() as u32;
                self.bytes.extend_from_slice(&self.scratch);
                (start, self.scratch.len() as u32)
            }
        };
        self.answers[kind as usize] = Answer {
            start,
            len,
            count,
            rcode,
            soa,
        };
        self.scratch.clear();
    }

    fn finish(self) -> Node {
        Node::new(self.name, self.zone, &self.answers, &self.bytes)
    }
}
