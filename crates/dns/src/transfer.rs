//! Zone transfers out (AXFR, and IXFR answered as AXFR or "up to date") and
//! NOTIFY to secondaries. Built with hickory-proto's message encoder, which
//! compresses names; each message is TSIG-signed when the request was.

use std::io::{self, Write};
use std::net::{SocketAddr, UdpSocket};
use std::str::FromStr;
use std::time::Duration;

use fedmesh_core::dns::{DomainName, NameRecords, RecordData};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::handler::Transfer;
use crate::zone::{Master, ZoneConfig};

/// Records per transfer message: small enough that 100 of the largest records
/// (a CNAME to a 255-byte name) stay under the 64 KiB TCP message limit.
const RECORDS_PER_MESSAGE: usize = 100;
/// How often a NOTIFY is sent before giving up on a secondary.
const NOTIFY_TRIES: u32 = 3;

/// Why a transfer or NOTIFY failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A name could not be put in hickory's form (cannot happen for checked names).
    #[error("zone transfer: name {name}: {source}")]
    Name {
        /// The name.
        name: String,
        /// hickory's error.
        source: hickory_proto::ProtoError,
    },
    /// A message could not be encoded.
    #[error("zone transfer: encoding a message: {0}")]
    Encode(hickory_proto::ProtoError),
    /// Writing to the peer failed.
    #[error("zone transfer: writing to the peer: {0}")]
    Write(#[from] io::Error),
}

fn name(n: &DomainName) -> Result<Name, TransferError> {
    Name::from_str(&format!("{n}.")).map_err(|source| TransferError::Name {
        name: n.to_string(),
        source,
    })
}

/// The zone's SOA as a hickory record.
fn soa_record(master: &Master, zone: u16) -> Result<Record, TransferError> {
    let c: &ZoneConfig = master.zone_config(zone);
    let mname = match c.nameservers.first() {
        Some(ns) => name(ns)?,
        None => name(&c.apex)?,
    };
    let soa = SOA::new(
        mname,
        name(&c.hostmaster)?,
        master.serial(zone),
        c.refresh as i32,
        c.retry as i32,
        c.expire as i32,
        c.minimum,
    );
    Ok(Record::from_rdata(name(&c.apex)?, c.ttl, RData::SOA(soa)))
}

fn records(r: &NameRecords) -> Result<Vec<Record>, TransferError> {
    let owner = name(&r.name)?;
    Ok(match &r.data {
        RecordData::Addresses { v4, v6 } => v4
            .iter()
            .map(|ip| RData::A(A(*ip)))
            .chain(v6.iter().map(|ip| RData::AAAA(AAAA(*ip))))
            .map(|data| Record::from_rdata(owner.clone(), r.ttl, data))
            .collect(),
        RecordData::Cname(target) => vec![Record::from_rdata(
            owner,
            r.ttl,
            RData::CNAME(CNAME(name(target)?)),
        )],
    })
}

/// The messages answering `transfer`, taken from the master under its lock
/// (so serial and records agree), encoded and signed.
pub(crate) fn messages(
    master: &Master,
    transfer: &mut Transfer,
) -> Result<Vec<Vec<u8>>, TransferError> {
    let zone = transfer.zone;
    let c = master.zone_config(zone);
    let soa = soa_record(master, zone)?;
    let apex = name(&c.apex)?;
    let qtype = if transfer.ixfr_serial.is_some() {
        RecordType::IXFR
    } else {
        RecordType::AXFR
    };
    let up_to_date = transfer
        .ixfr_serial
        .is_some_and(|serial| serial == master.serial(zone));
    let mut all = vec![soa.clone()];
    if !up_to_date {
        for ns in &c.nameservers {
            all.push(Record::from_rdata(
                apex.clone(),
                c.ttl,
                RData::NS(NS(name(ns)?)),
            ));
        }
        for r in master.zone_records(zone) {
            all.extend(records(&r)?);
        }
        all.push(soa);
    }
    let mut out = Vec::new();
    for (i, chunk) in all.chunks(RECORDS_PER_MESSAGE).enumerate() {
        let mut message = Message::new(transfer.id, MessageType::Response, OpCode::Query);
        message.metadata.authoritative = true;
        if i == 0 {
            message.add_query(Query::query(apex.clone(), qtype));
        }
        message.add_answers(chunk.iter().cloned());
        let mut bytes = message.to_vec().map_err(TransferError::Encode)?;
        if let Some(signer) = &mut transfer.signer {
            signer.sign(&mut bytes);
        }
        out.push(bytes);
    }
    Ok(out)
}

/// Writes `messages` to a TCP stream, each with its length prefix.
pub(crate) fn write_all(
    stream: &mut impl Write,
    messages: &[Vec<u8>],
) -> Result<(), TransferError> {
    for m in messages {
        stream.write_all(&(m.len() as u16).to_be_bytes())?;
        stream.write_all(m)?;
    }
    stream.flush()?;
    Ok(())
}

/// Sends a NOTIFY for the zone to `secondary` and waits for its answer,
/// retrying a few times. Returns whether the secondary answered.
pub(crate) fn notify(
    apex: &DomainName,
    serial: u32,
    secondary: SocketAddr,
) -> Result<bool, TransferError> {
    let bind: SocketAddr = if secondary.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = UdpSocket::bind(bind)?;
    socket.set_read_timeout(Some(Duration::from_secs(1)))?;
    let id = (serial as u16) ^ 0x5a5a;
    let mut message = Message::new(id, MessageType::Query, OpCode::Notify);
    message.metadata.authoritative = true;
    message.add_query(Query::query(name(apex)?, RecordType::SOA));
    let bytes = message.to_vec().map_err(TransferError::Encode)?;
    let mut buf = [0u8; 512];
    for _ in 0..NOTIFY_TRIES {
        socket.send_to(&bytes, secondary)?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) if from == secondary && n >= 4 && buf[..2] == id.to_be_bytes() => {
                return Ok(true);
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}
