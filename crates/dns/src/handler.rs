//! Answering one request: the hot path.
//!
//! A query is read in place, its name looked up in the snapshot, and the
//! answer assembled in the caller's buffer from the request's header and
//! question and the node's precomputed bytes. Nothing is allocated unless the
//! request is TSIG-signed (then the signature is computed).

use std::net::IpAddr;

use crate::tsig::{self, TsigKey, Verified};
use crate::wire::{
    self, CLASS_ANY, CLASS_IN, RCODE_FORMERR, RCODE_NOTAUTH, RCODE_NOTIMP, RCODE_REFUSED, Reject,
    Request, TYPE_AXFR, TYPE_IXFR, TYPE_MAILA, TYPE_MAILB, TYPE_OPT, TYPE_TKEY, TYPE_TSIG,
};
use crate::zone::{Kind, Snapshot};

/// The UDP payload size fedmesh advertises and fills at most (the DNS Flag
/// Day 2020 value: no IP fragmentation).
pub(crate) const UDP_PAYLOAD: u16 = 1232;
/// Header flags: response, authoritative answer, truncated.
const QR: u16 = 0x8000;
const AA: u16 = 0x0400;
const TC: u16 = 0x0200;
/// Flags copied from the request: opcode, RD and CD.
const COPIED: u16 = 0x7800 | 0x0100 | 0x0010;

/// How the request came.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Transport {
    /// UDP: answers over the client's payload size are truncated.
    Udp,
    /// TCP: answers go whole, transfers are allowed.
    Tcp,
}

/// Who may transfer zones.
pub(crate) struct Policy {
    pub(crate) acl: Vec<crate::server::AddrRange>,
    pub(crate) keys: Vec<TsigKey>,
    pub(crate) require_tsig: bool,
}

impl Policy {
    pub(crate) fn new(config: &crate::server::ServerConfig) -> Self {
        Self {
            acl: config.transfer_acl.clone(),
            keys: config.tsig_keys.clone(),
            require_tsig: config.transfer_requires_tsig,
        }
    }

    fn allows(&self, peer: IpAddr, signed: bool) -> bool {
        (signed || !self.require_tsig) && self.acl.iter().any(|range| range.contains(peer))
    }
}

/// What to do after handling a request.
pub(crate) enum Handled {
    /// Send the buffer.
    Reply,
    /// Send nothing.
    Drop,
    /// An allowed zone transfer: stream the zone (TCP only).
    Transfer(Box<Transfer>),
}

/// An allowed transfer request.
pub(crate) struct Transfer {
    pub(crate) id: u16,
    pub(crate) zone: u16,
    pub(crate) signer: Option<tsig::Signer>,
    /// For IXFR: the client's serial; equal to the zone's means up to date.
    pub(crate) ixfr_serial: Option<u32>,
}

/// Answers `msg` from `peer` into `out` (cleared first; give it 64 KiB of
/// capacity so that nothing is allocated).
pub(crate) fn handle(
    snapshot: &Snapshot,
    policy: &Policy,
    msg: &[u8],
    transport: Transport,
    peer: IpAddr,
    out: &mut Vec<u8>,
) -> Handled {
    out.clear();
    let request = match wire::parse(msg) {
        Ok(request) => request,
        Err(Reject::Drop) => return Handled::Drop,
        Err(Reject::Error { id, flags, rcode }) => {
            header(out, id, flags, rcode, false, [0, 0, 0, 0]);
            return Handled::Reply;
        }
    };
    let mut signer = None;
    if let Some(record) = &request.tsig {
        match tsig::verify(msg, record, &policy.keys) {
            Verified::Good(s) => signer = Some(s),
            Verified::Bad { error, signer, key } => {
                start(out, &request, RCODE_NOTAUTH, false);
                match signer {
                    Some(mut s) => s.sign(out),
                    None => tsig::push_unsigned(out, &key, error),
                }
                return Handled::Reply;
            }
        }
    }
    let handled = answer(
        snapshot,
        policy,
        &request,
        transport,
        peer,
        signer.is_some(),
        out,
    );
    if let Handled::Transfer(mut transfer) = handled {
        transfer.signer = signer;
        return Handled::Transfer(transfer);
    }
    if let Some(mut s) = signer {
        s.sign(out);
    }
    handled
}

fn answer(
    snapshot: &Snapshot,
    policy: &Policy,
    request: &Request<'_>,
    transport: Transport,
    peer: IpAddr,
    signed: bool,
    out: &mut Vec<u8>,
) -> Handled {
    if let Some(edns) = request.edns
        && edns.version > 0
    {
        // BADVERS: extended rcode 16, carried as 1 in the OPT's upper bits.
        start(out, request, 0, false);
        push_opt(out, request, 1);
        return Handled::Reply;
    }
    let refuse = |out: &mut Vec<u8>| {
        start(out, request, RCODE_REFUSED, false);
        finish_opt(out, request);
        Handled::Reply
    };
    match request.qtype {
        TYPE_OPT | TYPE_TSIG | TYPE_TKEY => {
            start(out, request, RCODE_FORMERR, false);
            finish_opt(out, request);
            return Handled::Reply;
        }
        TYPE_MAILA | TYPE_MAILB => {
            start(out, request, RCODE_NOTIMP, false);
            finish_opt(out, request);
            return Handled::Reply;
        }
        _ => {}
    }
    if request.qclass != CLASS_IN && request.qclass != CLASS_ANY {
        return refuse(out);
    }
    if matches!(request.qtype, TYPE_AXFR | TYPE_IXFR) {
        let Some(zone) = snapshot
            .zone_of(&request.qname)
            .filter(|z| &*snapshot.zones[usize::from(*z)].apex == request.qname.as_bytes())
        else {
            return refuse(out);
        };
        if !policy.allows(peer, signed) {
            return refuse(out);
        }
        if transport == Transport::Udp {
            if request.qtype == TYPE_AXFR {
                start(out, request, RCODE_FORMERR, false);
                finish_opt(out, request);
                return Handled::Reply;
            }
            // IXFR over UDP: the current SOA tells the client to come over TCP
            // (or that it is up to date), RFC 1995 section 2.
            let Some(node) = snapshot.names.get(request.qname.as_bytes()) else {
                return refuse(out);
            };
            let (a, bytes) = node.answer(Kind::Soa);
            start(out, request, 0, true);
            out.extend_from_slice(bytes);
            set_counts(out, a.count, 0);
            finish_opt(out, request);
            return Handled::Reply;
        }
        return Handled::Transfer(Box::new(Transfer {
            id: request.id,
            zone,
            signer: None,
            ixfr_serial: request.ixfr_serial,
        }));
    }
    let (zone, answer, bytes) = match snapshot.names.get(request.qname.as_bytes()) {
        Some(node) => {
            let (answer, bytes) = node.answer(Kind::of(request.qtype));
            (node.zone(), answer, bytes)
        }
        None => match snapshot.zone_of(&request.qname) {
            Some(zone) => (zone, NXDOMAIN, &[][..]),
            None => return refuse(out),
        },
    };
    start(out, request, answer.rcode, true);
    out.extend_from_slice(bytes);
    let mut authority = 0;
    if answer.soa {
        out.extend_from_slice(&snapshot.zones[usize::from(zone)].soa_authority);
        authority = 1;
    }
    set_counts(out, answer.count, authority);
    let limit = match (transport, request.edns) {
        (Transport::Tcp, _) => usize::MAX,
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(edns)) => usize::from(edns.payload.min(UDP_PAYLOAD)),
    };
    // The OPT record (11 bytes) and a TSIG must fit too.
    let reserve = if request.edns.is_some() { 11 } else { 0 } + if signed { 120 } else { 0 };
    if out.len() + reserve > limit {
        out.truncate(request.question_end);
        set_counts(out, 0, 0);
        out[2] |= (TC >> 8) as u8;
    }
    finish_opt(out, request);
    Handled::Reply
}

const NXDOMAIN: crate::zone::Answer = crate::zone::Answer::nxdomain();

/// Writes a header and the request's question (as sent, case kept).
fn start(out: &mut Vec<u8>, request: &Request<'_>, rcode: u8, authoritative: bool) {
    header(
        out,
        request.id,
        request.flags,
        rcode,
        authoritative,
        [1, 0, 0, 0],
    );
    out.extend_from_slice(&request.msg[wire::question(request)]);
}

fn header(out: &mut Vec<u8>, id: u16, flags: u16, rcode: u8, aa: bool, counts: [u16; 4]) {
    let flags = QR | (flags & COPIED) | if aa { AA } else { 0 } | u16::from(rcode & 0xF);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        out.extend_from_slice(&c.to_be_bytes());
    }
}

fn set_counts(out: &mut [u8], answers: u16, authority: u16) {
    out[6..8].copy_from_slice(&answers.to_be_bytes());
    out[8..10].copy_from_slice(&authority.to_be_bytes());
}

/// Appends an OPT record when the request had one.
fn finish_opt(out: &mut Vec<u8>, request: &Request<'_>) {
    if request.edns.is_some() {
        push_opt(out, request, 0);
    }
}

fn push_opt(out: &mut Vec<u8>, request: &Request<'_>, extended_rcode: u8) {
    let dnssec_ok = request.edns.is_some_and(|e| e.dnssec_ok);
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&UDP_PAYLOAD.to_be_bytes());
    out.extend_from_slice(&[extended_rcode, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
    out.extend_from_slice(&[0, 0]);
    let ar = u16::from_be_bytes([out[10], out[11]]) + 1;
    out[10..12].copy_from_slice(&ar.to_be_bytes());
}
