//! The difference between the records fedmesh wants in a zone and what the
//! provider holds, as the smallest change set that only touches names fedmesh
//! made. Pure: the runner reads, calls [`plan`] and applies.
//!
//! Ownership is recorded as ExternalDNS does with its TXT registry (with a
//! TXT prefix): a name fedmesh writes gets a TXT record at
//! `_fedmesh-owner.<name>` holding `heritage=fedmesh,fedmesh/owner=<federation>`.
//! The TXT sits at its own name because a CNAME may not share its name with
//! any other record. A name is fedmesh's when that TXT holds this owner's
//! value; a name with records and no such TXT belongs to someone else and is
//! never touched.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use fedmesh_core::dns::{DomainName, NameRecords, RecordData};

use super::{Change, ChangeSet, RecordSet, RecordType};

/// The first label of every ownership record's name.
pub const OWNER_LABEL: &str = "_fedmesh-owner";

/// The ownership TXT value for `owner` (the federation's name).
pub fn owner_value(owner: &str) -> String {
    format!("heritage=fedmesh,fedmesh/owner={owner}")
}

/// Where the ownership record of `name` lives, or `None` when the longer name
/// would exceed what DNS allows.
pub fn owner_name(name: &DomainName) -> Option<DomainName> {
    DomainName::new("ownership record name", &format!("{OWNER_LABEL}.{name}")).ok()
}

/// The record sets of one name's records.
pub fn record_sets(records: &NameRecords) -> Vec<RecordSet> {
    let set = |rtype, values| RecordSet::new(records.name.clone(), rtype, records.ttl, values);
    match &records.data {
        RecordData::Addresses { v4, v6 } => {
            let mut sets = Vec::with_capacity(2);
            if !v4.is_empty() {
                sets.push(set(
                    RecordType::A,
                    v4.iter().map(ToString::to_string).collect(),
                ));
            }
            if !v6.is_empty() {
                sets.push(set(
                    RecordType::Aaaa,
                    v6.iter().map(ToString::to_string).collect(),
                ));
            }
            sets
        }
        RecordData::Cname(target) => vec![set(RecordType::Cname, vec![target.to_string()])],
    }
}

/// Why a wanted name was left alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The name has records and no ownership record: someone else made them.
    NotOwned,
    /// The ownership record names another owner (another federation).
    OwnedByOther(String),
    /// The ownership record's name would be longer than DNS allows.
    NameTooLong,
    /// The name is not inside the zone being synchronised.
    OutsideZone,
}

/// A wanted name fedmesh did not write, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The name.
    pub name: DomainName,
    /// Why.
    pub reason: SkipReason,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.name;
        match &self.reason {
            SkipReason::NotOwned => write!(
                f,
                "{name}: has records fedmesh did not make (no {OWNER_LABEL}.{name} TXT); left alone, remove them to let fedmesh write it"
            ),
            SkipReason::OwnedByOther(value) => write!(
                f,
                "{name}: owned by someone else ({OWNER_LABEL}.{name} TXT says {value:?}); left alone"
            ),
            SkipReason::NameTooLong => write!(
                f,
                "{name}: {OWNER_LABEL}.{name} would be longer than 253 characters, so fedmesh cannot record its ownership; not written"
            ),
            SkipReason::OutsideZone => write!(f, "{name}: not inside the zone; not written"),
        }
    }
}

/// What a sync round will do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The changes to apply.
    pub changes: ChangeSet,
    /// Wanted names that are not written, with the reason.
    pub skipped: Vec<Skipped>,
}

/// Who owns each name that has an ownership record in `current`.
fn owners(current: &[RecordSet]) -> BTreeMap<DomainName, &RecordSet> {
    current
        .iter()
        .filter(|s| s.rtype == RecordType::Txt)
        .filter_map(|s| {
            let (first, _) = s.name.as_str().split_once('.')?;
            (first == OWNER_LABEL).then(|| Some((s.name.parent()?, s)))?
        })
        .collect()
}

/// The changes that make `zone` hold `desired` (records of the federation
/// `owner`), given the record sets `current` read from the provider.
///
/// - A wanted name nobody has written gets its sets and the ownership TXT.
/// - A name fedmesh owns gets upserts for changed sets, removals for types it
///   no longer has (an A turning into a CNAME), nothing for equal sets.
/// - A name fedmesh owns that is no longer wanted loses its sets and its TXT.
/// - Anything else in the zone is left alone; wanted names held by someone
///   else are reported in [`Plan::skipped`].
pub fn plan(
    zone: &DomainName,
    owner: &str,
    desired: &[NameRecords],
    current: &[RecordSet],
) -> Plan {
    let ours = owner_value(owner);
    let owners = owners(current);
    let is_ours = |name: &DomainName| {
        owners
            .get(name)
            .is_some_and(|txt| txt.values().contains(&ours))
    };
    let mut by_name: BTreeMap<&DomainName, Vec<&RecordSet>> = BTreeMap::new();
    for set in current.iter().filter(|s| s.rtype != RecordType::Txt) {
        by_name.entry(&set.name).or_default().push(set);
    }
    let mut changes = Vec::new();
    let mut skipped = Vec::new();
    let mut wanted = BTreeSet::new();
    for records in desired {
        let name = &records.name;
        let skip = |reason| Skipped {
            name: name.clone(),
            reason,
        };
        if !name.is_within(zone) {
            skipped.push(skip(SkipReason::OutsideZone));
            continue;
        }
        let Some(owner_at) = owner_name(name) else {
            skipped.push(skip(SkipReason::NameTooLong));
            continue;
        };
        let want = record_sets(records);
        let have = by_name.get(name).map(Vec::as_slice).unwrap_or_default();
        if is_ours(name) {
            wanted.insert(name.clone());
            for set in &want {
                match have.iter().find(|h| h.rtype == set.rtype) {
                    Some(h) if *h == set => {}
                    Some(_) => changes.push(Change::Upsert(set.clone())),
                    None => changes.push(Change::Add(set.clone())),
                }
            }
            for h in have {
                if !want.iter().any(|w| w.rtype == h.rtype) {
                    changes.push(Change::Remove((*h).clone()));
                }
            }
        } else if let Some(txt) = owners.get(name) {
            let value = txt.values().join(" ");
            skipped.push(skip(SkipReason::OwnedByOther(value)));
        } else if !have.is_empty() {
            skipped.push(skip(SkipReason::NotOwned));
        } else {
            wanted.insert(name.clone());
            changes.extend(want.into_iter().map(Change::Add));
            changes.push(Change::Add(RecordSet::new(
                owner_at,
                RecordType::Txt,
                records.ttl,
                vec![ours.clone()],
            )));
        }
    }
    for (name, txt) in &owners {
        if wanted.contains(name) || !is_ours(name) || !name.is_within(zone) {
            continue;
        }
        let have = by_name.get(name).map(Vec::as_slice).unwrap_or_default();
        changes.extend(have.iter().map(|h| Change::Remove((*h).clone())));
        changes.push(Change::Remove((*txt).clone()));
    }
    Plan {
        changes: ChangeSet::new(changes),
        skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> DomainName {
        DomainName::new("test name", s).unwrap()
    }

    fn set(name: &str, rtype: RecordType, ttl: u32, values: &[&str]) -> RecordSet {
        RecordSet::new(
            n(name),
            rtype,
            ttl,
            values.iter().map(|v| v.to_string()).collect(),
        )
    }

    fn a(name: &str, ips: &[&str]) -> RecordSet {
        set(name, RecordType::A, 180, ips)
    }

    fn owned_by(name: &str, owner: &str) -> RecordSet {
        set(
            &format!("{OWNER_LABEL}.{name}"),
            RecordType::Txt,
            180,
            &[&owner_value(owner)],
        )
    }

    fn ours(name: &str) -> RecordSet {
        owned_by(name, "fed")
    }

    fn addresses(name: &str, v4: &[&str], v6: &[&str]) -> NameRecords {
        NameRecords {
            name: n(name),
            ttl: 180,
            data: RecordData::Addresses {
                v4: v4.iter().map(|i| i.parse().unwrap()).collect(),
                v6: v6.iter().map(|i| i.parse().unwrap()).collect(),
            },
        }
    }

    fn cname(name: &str, target: &str) -> NameRecords {
        NameRecords {
            name: n(name),
            ttl: 180,
            data: RecordData::Cname(n(target)),
        }
    }

    const G: &str = "s.ns.fed.svc.example.com";
    const R: &str = "s.ns.fed.svc.europe.example.com";

    #[test]
    fn plans_table() {
        use Change::{Add, Remove, Upsert};
        type Case = (
            &'static str,
            Vec<NameRecords>,
            Vec<RecordSet>,
            Vec<Change>,
            Vec<(&'static str, SkipReason)>,
        );
        let cases: Vec<Case> = vec![
            (
                "a new name gets its sets and the ownership TXT",
                vec![addresses(G, &["10.0.0.2", "10.0.0.1"], &["fd00::1"])],
                vec![],
                vec![
                    Add(a(G, &["10.0.0.1", "10.0.0.2"])),
                    Add(set(G, RecordType::Aaaa, 180, &["fd00::1"])),
                    Add(ours(G)),
                ],
                vec![],
            ),
            (
                "records in the provider as wanted: nothing to do",
                vec![addresses(G, &["10.0.0.1"], &[]), cname(R, G)],
                vec![
                    a(G, &["10.0.0.1"]),
                    ours(G),
                    set(R, RecordType::Cname, 180, &[G]),
                    ours(R),
                ],
                vec![],
                vec![],
            ),
            (
                "changed addresses and TTL are upserted",
                vec![addresses(G, &["10.0.0.3"], &[])],
                vec![set(G, RecordType::A, 60, &["10.0.0.1"]), ours(G)],
                vec![Upsert(a(G, &["10.0.0.3"]))],
                vec![],
            ),
            (
                "an A turning into a CNAME: the A goes first",
                vec![cname(R, G)],
                vec![a(R, &["10.0.0.1"]), ours(R)],
                vec![
                    Remove(a(R, &["10.0.0.1"])),
                    Add(set(R, RecordType::Cname, 180, &[G])),
                ],
                vec![],
            ),
            (
                "a type no longer wanted is removed",
                vec![addresses(G, &["10.0.0.1"], &[])],
                vec![
                    a(G, &["10.0.0.1"]),
                    set(G, RecordType::Aaaa, 180, &["fd00::1"]),
                    ours(G),
                ],
                vec![Remove(set(G, RecordType::Aaaa, 180, &["fd00::1"]))],
                vec![],
            ),
            (
                "an owned name no longer wanted loses its sets and its TXT",
                vec![],
                vec![a(G, &["10.0.0.1"]), ours(G)],
                vec![Remove(a(G, &["10.0.0.1"])), Remove(ours(G))],
                vec![],
            ),
            (
                "records fedmesh did not make are never touched",
                vec![addresses(G, &["10.0.0.1"], &[])],
                vec![
                    a(G, &["192.0.2.1"]),
                    a("www.example.com", &["192.0.2.2"]),
                    set("example.com", RecordType::Txt, 300, &["v=spf1 -all"]),
                ],
                vec![],
                vec![(G, SkipReason::NotOwned)],
            ),
            (
                "a name owned by another federation is left alone, wanted or not",
                vec![addresses(G, &["10.0.0.1"], &[])],
                vec![
                    a(G, &["192.0.2.1"]),
                    owned_by(G, "other"),
                    a(R, &["192.0.2.9"]),
                    owned_by(R, "other"),
                ],
                vec![],
                vec![(G, SkipReason::OwnedByOther(owner_value("other")))],
            ),
            (
                "a name outside the zone is not written",
                vec![addresses("s.ns.fed.svc.example.org", &["10.0.0.1"], &[])],
                vec![],
                vec![],
                vec![("s.ns.fed.svc.example.org", SkipReason::OutsideZone)],
            ),
        ];
        let zone = n("example.com");
        for (what, desired, current, want, want_skipped) in cases {
            let plan = plan(&zone, "fed", &desired, &current);
            assert_eq!(plan.changes, ChangeSet::new(want), "{what}");
            let skipped: Vec<_> = want_skipped
                .into_iter()
                .map(|(name, reason)| Skipped {
                    name: n(name),
                    reason,
                })
                .collect();
            assert_eq!(plan.skipped, skipped, "{what}");
        }
    }

    #[test]
    fn applying_a_plan_reaches_the_fixpoint() {
        // Applying the plan to the records gives records whose plan is empty.
        let zone = n("example.com");
        let desired = vec![addresses(G, &["10.0.0.1"], &["fd00::1"]), cname(R, G)];
        let mut current = vec![
            a(R, &["10.0.0.9"]),
            ours(R),
            a("x.example.com", &["192.0.2.1"]),
        ];
        let first = plan(&zone, "fed", &desired, &current);
        assert!(!first.changes.is_empty());
        for change in first.changes.changes() {
            let s = change.set();
            current.retain(|c| !(c.name == s.name && c.rtype == s.rtype));
            if !matches!(change, Change::Remove(_)) {
                current.push(s.clone());
            }
        }
        assert_eq!(plan(&zone, "fed", &desired, &current), Plan::default());
        assert!(current.contains(&a("x.example.com", &["192.0.2.1"])));
    }

    #[test]
    fn a_name_too_long_for_its_ownership_record_is_skipped() {
        // 245 characters: a valid name, but not with `_fedmesh-owner.` before it.
        let label = "a".repeat(60);
        let long = format!("{label}.{label}.{label}.{}.example.com", "b".repeat(50));
        let plan = plan(
            &n("example.com"),
            "fed",
            &[addresses(&long, &["10.0.0.1"], &[])],
            &[],
        );
        assert!(plan.changes.is_empty());
        assert_eq!(plan.skipped[0].reason, SkipReason::NameTooLong);
    }
}
