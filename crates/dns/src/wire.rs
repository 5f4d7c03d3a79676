//! The DNS wire format as the answer path needs it: reading a request without
//! allocating, and writing records.
//!
//! Names are handled in lower-case wire form (length-prefixed labels ending in
//! the root's zero), the form the zone's map is keyed by.

use std::ops::Range;

use fedmesh_core::dns::DomainName;

pub(crate) const TYPE_A: u16 = 1;
pub(crate) const TYPE_NS: u16 = 2;
pub(crate) const TYPE_CNAME: u16 = 5;
pub(crate) const TYPE_SOA: u16 = 6;
pub(crate) const TYPE_AAAA: u16 = 28;
pub(crate) const TYPE_OPT: u16 = 41;
pub(crate) const TYPE_TKEY: u16 = 249;
pub(crate) const TYPE_TSIG: u16 = 250;
pub(crate) const TYPE_IXFR: u16 = 251;
pub(crate) const TYPE_AXFR: u16 = 252;
pub(crate) const TYPE_MAILB: u16 = 253;
pub(crate) const TYPE_MAILA: u16 = 254;
pub(crate) const TYPE_ANY: u16 = 255;
pub(crate) const CLASS_IN: u16 = 1;
pub(crate) const CLASS_ANY: u16 = 255;

pub(crate) const RCODE_FORMERR: u8 = 1;
pub(crate) const RCODE_NXDOMAIN: u8 = 3;
pub(crate) const RCODE_NOTIMP: u8 = 4;
pub(crate) const RCODE_REFUSED: u8 = 5;
pub(crate) const RCODE_NOTAUTH: u8 = 9;

pub(crate) const OPCODE_QUERY: u8 = 0;
pub(crate) const HEADER_LEN: usize = 12;
/// The longest name on the wire (RFC 1035).
pub(crate) const MAX_NAME: usize = 255;
/// Pointer to the question's name, which always starts right after the header.
pub(crate) const QNAME_POINTER: [u8; 2] = [0xC0, 0x0C];

/// `name` in lower-case wire form.
pub(crate) fn wire_name(name: &DomainName) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.as_str().len() + 2);
    for label in name.labels() {
        // DomainName keeps labels of at most 63 bytes.
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// Appends one resource record of class IN.
pub(crate) fn push_rr(out: &mut Vec<u8>, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) {
    out.extend_from_slice(owner);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    // Record data here is at most a name (255) or an SOA (two names + 20).
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

pub(crate) fn u16_at(msg: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]))
}

fn u32_at(msg: &[u8], at: usize) -> Option<u32> {
    let b = msg.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A name read from a message, in lower-case wire form, on the stack.
#[derive(Clone, Copy)]
pub(crate) struct NameBuf {
    bytes: [u8; MAX_NAME],
    len: u8,
}

impl NameBuf {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Start offsets of each of the name's suffixes (the name itself first,
    /// the root last), for finding the zone a name falls in.
    pub(crate) fn suffixes(&self) -> impl Iterator<Item = &[u8]> {
        let bytes = self.as_bytes();
        let mut at = Some(0usize);
        std::iter::from_fn(move || {
            let here = at?;
            let len = usize::from(*bytes.get(here)?);
            at = if len == 0 { None } else { Some(here + 1 + len) };
            Some(&bytes[here..])
        })
    }
}

/// Reads a name at `at`, following compression pointers when `compressed`.
/// Returns the name and the offset just after it where it started.
fn read_name(msg: &[u8], mut at: usize, compressed: bool) -> Option<(NameBuf, usize)> {
    let mut name = NameBuf {
        bytes: [0; MAX_NAME],
        len: 0,
    };
    let mut len = 0usize;
    let mut end = None;
    let mut hops = 0;
    loop {
        let b = *msg.get(at)?;
        match b & 0xC0 {
            0x00 => {
                let l = usize::from(b);
                if len + 1 + l > MAX_NAME {
                    return None;
                }
                name.bytes[len] = b;
                let label = msg.get(at + 1..at + 1 + l)?;
                for (d, s) in name.bytes[len + 1..len + 1 + l].iter_mut().zip(label) {
                    *d = s.to_ascii_lowercase();
                }
                len += 1 + l;
                at += 1 + l;
                if l == 0 {
                    name.len = len as u8;
                    return Some((name, end.unwrap_or(at)));
                }
            }
            0xC0 if compressed => {
                let target = usize::from(u16_at(msg, at)? & 0x3FFF);
                // Pointers go backwards, which also bounds the walk.
                if target >= at || hops > 127 {
                    return None;
                }
                hops += 1;
                end.get_or_insert(at + 2);
                at = target;
            }
            _ => return None,
        }
    }
}

/// The request's EDNS(0) OPT record.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Edns {
    /// The UDP payload size the client accepts (at least 512).
    pub(crate) payload: u16,
    pub(crate) version: u8,
    pub(crate) dnssec_ok: bool,
}

/// The request's TSIG record (RFC 8945), borrowed from the message.
#[derive(Clone, Copy)]
pub(crate) struct TsigRecord<'a> {
    /// Where the TSIG record starts: the signed message is everything before.
    pub(crate) start: usize,
    pub(crate) key: NameBuf,
    pub(crate) algorithm: NameBuf,
    pub(crate) time: u64,
    pub(crate) fudge: u16,
    pub(crate) mac: &'a [u8],
    pub(crate) original_id: u16,
    pub(crate) error: u16,
    pub(crate) other: &'a [u8],
}

/// A request the server will answer.
pub(crate) struct Request<'a> {
    pub(crate) msg: &'a [u8],
    pub(crate) id: u16,
    /// Header flags (second 16 bits).
    pub(crate) flags: u16,
    /// The question section as sent (case kept), `HEADER_LEN..question_end`.
    pub(crate) question_end: usize,
    pub(crate) qname: NameBuf,
    pub(crate) qtype: u16,
    pub(crate) qclass: u16,
    pub(crate) edns: Option<Edns>,
    pub(crate) tsig: Option<TsigRecord<'a>>,
    /// For IXFR: the serial of the client's SOA in the authority section.
    pub(crate) ixfr_serial: Option<u32>,
}

/// Why a message gets no normal answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reject {
    /// Not a request (too short for a header, or a response): no answer.
    Drop,
    /// Answer with this rcode, the header and nothing else.
    Error {
        /// The request's ID.
        id: u16,
        /// The request's flags.
        flags: u16,
        /// The rcode.
        rcode: u8,
    },
}

/// Reads a request. Nothing is allocated.
pub(crate) fn parse(msg: &[u8]) -> Result<Request<'_>, Reject> {
    let (Some(id), Some(flags)) = (u16_at(msg, 0), u16_at(msg, 2)) else {
        return Err(Reject::Drop);
    };
    if msg.len() < HEADER_LEN || flags & 0x8000 != 0 {
        return Err(Reject::Drop);
    }
    let error = |rcode| Reject::Error { id, flags, rcode };
    let formerr = || error(RCODE_FORMERR);
    let opcode = ((flags >> 11) & 0xF) as u8;
    if opcode != OPCODE_QUERY {
        return Err(error(RCODE_NOTIMP));
    }
    let count = |at| u16_at(msg, at).unwrap_or(0);
    let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
    if qd != 1 || an != 0 {
        return Err(formerr());
    }
    let (qname, at) = read_name(msg, HEADER_LEN, false).ok_or_else(formerr)?;
    let (Some(qtype), Some(qclass)) = (u16_at(msg, at), u16_at(msg, at + 2)) else {
        return Err(formerr());
    };
    let question_end = at + 4;
    // Only an IXFR request carries an authority record: the client's SOA.
    if ns > 1 || (ns == 1 && qtype != TYPE_IXFR) {
        return Err(formerr());
    }
    let mut at = question_end;
    let mut ixfr_serial = None;
    let mut edns = None;
    let mut tsig = None;
    // Counted in u32: the two u16 counts may add up past u16::MAX (an IXFR
    // with 65,535 additional records, found by the fuzz target).
    let ns_count = u32::from(ns);
    let records = ns_count + u32::from(ar);
    for index in 0..records {
        let start = at;
        let (owner, after) = read_name(msg, at, true).ok_or_else(formerr)?;
        let rtype = u16_at(msg, after).ok_or_else(formerr)?;
        let class = u16_at(msg, after + 2).ok_or_else(formerr)?;
        let ttl = u32_at(msg, after + 4).ok_or_else(formerr)?;
        let rdlen = usize::from(u16_at(msg, after + 8).ok_or_else(formerr)?);
        let rdata_at = after + 10;
        if msg.len() < rdata_at + rdlen {
            return Err(formerr());
        }
        at = rdata_at + rdlen;
        if tsig.is_some() {
            // TSIG must be the last record.
            return Err(formerr());
        }
        if index < ns_count {
            if rtype != TYPE_SOA {
                return Err(formerr());
            }
            // The serial follows the two names of the SOA's data.
            let (_, after_mname) = read_name(msg, rdata_at, true).ok_or_else(formerr)?;
            let (_, after_rname) = read_name(msg, after_mname, true).ok_or_else(formerr)?;
            ixfr_serial = Some(u32_at(msg, after_rname).ok_or_else(formerr)?);
            continue;
        }
        match rtype {
            TYPE_OPT => {
                if edns.is_some() || owner.as_bytes() != [0] {
                    return Err(formerr());
                }
                edns = Some(Edns {
                    payload: class.max(512),
                    version: (ttl >> 16) as u8,
                    dnssec_ok: ttl & 0x8000 != 0,
                });
            }
            TYPE_TSIG => {
                if class != CLASS_ANY || index != records - 1 || at != msg.len() {
                    return Err(formerr());
                }
                tsig = Some(read_tsig(msg, start, owner, rdata_at, rdlen).ok_or_else(formerr)?);
            }
            _ => {}
        }
    }
    Ok(Request {
        msg,
        id,
        flags,
        question_end,
        qname,
        qtype,
        qclass,
        edns,
        tsig,
        ixfr_serial,
    })
}

fn read_tsig(
    msg: &[u8],
    start: usize,
    key: NameBuf,
    rdata_at: usize,
    rdlen: usize,
) -> Option<TsigRecord<'_>> {
    let end = rdata_at + rdlen;
    let (algorithm, at) = read_name(&msg[..end], rdata_at, false)?;
    let time = msg.get(at..at + 6)?;
    let time = time.iter().fold(0u64, |t, b| t << 8 | u64::from(*b));
    let fudge = u16_at(msg, at + 6)?;
    let mac_len = usize::from(u16_at(msg, at + 8)?);
    let mac = msg.get(at + 10..at + 10 + mac_len)?;
    let after = at + 10 + mac_len;
    let original_id = u16_at(msg, after)?;
    let error = u16_at(msg, after + 2)?;
    let other_len = usize::from(u16_at(msg, after + 4)?);
    let other = msg.get(after + 6..after + 6 + other_len)?;
    (after + 6 + other_len == end).then_some(TsigRecord {
        start,
        key,
        algorithm,
        time,
        fudge,
        mac,
        original_id,
        error,
        other,
    })
}

/// The TSIG record closing any message (a response too), if there is one.
pub(crate) fn find_tsig(msg: &[u8]) -> Option<TsigRecord<'_>> {
    let count = |at| u16_at(msg, at);
    let (qd, an, ns, ar) = (count(4)?, count(6)?, count(8)?, count(10)?);
    let mut at = HEADER_LEN;
    for _ in 0..qd {
        at = read_name(msg, at, true)?.1 + 4;
    }
    let records = usize::from(an) + usize::from(ns) + usize::from(ar);
    for index in 0..records {
        let start = at;
        let (owner, after) = read_name(msg, at, true)?;
        let rtype = u16_at(msg, after)?;
        let rdlen = usize::from(u16_at(msg, after + 8)?);
        at = after + 10 + rdlen;
        if index + 1 == records && rtype == TYPE_TSIG && at == msg.len() {
            return read_tsig(msg, start, owner, after + 10, rdlen);
        }
    }
    None
}

/// The question section's byte range in a request.
pub(crate) fn question(request: &Request<'_>) -> Range<usize> {
    HEADER_LEN..request.question_end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(name);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    #[test]
    fn requests_are_read_and_bad_ones_rejected() {
        let q = query(b"\x03WwW\x07Example\x03com\x00", TYPE_A);
        let r = parse(&q).unwrap();
        assert_eq!(r.qname.as_bytes(), b"\x03www\x07example\x03com\x00");
        assert_eq!((r.id, r.qtype, r.question_end), (0x1234, TYPE_A, q.len()));
        let suffixes: Vec<_> = r.qname.suffixes().map(<[u8]>::len).collect();
        assert_eq!(suffixes, [17, 13, 5, 1]);

        assert_eq!(parse(&q[..5]).err(), Some(Reject::Drop));
        let mut response = q.clone();
        response[2] |= 0x80;
        assert_eq!(parse(&response).err(), Some(Reject::Drop));
        let formerr = Some(Reject::Error {
            id: 0x1234,
            flags: 0x0100,
            rcode: RCODE_FORMERR,
        });
        assert_eq!(parse(&q[..q.len() - 1]).err(), formerr);
        // A compression pointer in the question, and a label running past the end.
        assert_eq!(parse(&query(b"\xC0\x0C", TYPE_A)).err(), formerr);
        assert_eq!(parse(&query(b"\x3Fab", TYPE_A)).err(), formerr);
        let mut notify = q.clone();
        notify[2] = 0x20;
        assert!(matches!(
            parse(&notify),
            Err(Reject::Error {
                rcode: RCODE_NOTIMP,
                ..
            })
        ));
        // EDNS with a small payload is raised to 512.
        let mut with_opt = q.clone();
        with_opt[11] = 1;
        with_opt.extend_from_slice(&[0, 0, 41, 0x01, 0x00, 0, 0, 0x80, 0, 0, 0]);
        let edns = parse(&with_opt).unwrap().edns.unwrap();
        assert_eq!((edns.payload, edns.version, edns.dnssec_ok), (512, 0, true));
    }

    /// The fuzz target's finding (`fuzz/artifacts/dns/crash-e198c43a...`): an
    /// IXFR request saying it has one authority and 65,535 additional
    /// records overflowed the record count; it is a FORMERR, as its records
    /// are not there.
    #[test]
    fn record_counts_that_add_up_past_u16_are_read() {
        let mut q = query(b"\x00", TYPE_IXFR);
        q[8..12].copy_from_slice(&[0, 1, 0xFF, 0xFF]);
        q.extend_from_slice(&[0, 0, 0x2F, 0, 0, 0, 0x3D, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert!(matches!(
            parse(&q),
            Err(Reject::Error {
                rcode: RCODE_FORMERR,
                ..
            })
        ));
    }
}
