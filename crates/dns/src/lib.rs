//! fedmesh's authoritative DNS server for federated service records.
//!
//! ```text
//!  fedmesh_core::dns::DnsIndex ──DnsChange──▶ Server::update ──▶ Master (records, ENTs, CNAME referrers)
//!                                                                   │ rebuilds changed names' answers
//!                                                                   ▼
//!      UDP threads (SO_REUSEPORT, one per core) ◀── Arc<Snapshot> ──▶ TCP (queries, AXFR/IXFR)
//!                                                                   └─▶ NOTIFY to secondaries
//! ```
//!
//! Answers are precomputed per name and kind of question; a query copies the
//! request's header and question and the node's bytes into a reused buffer.
//! See docs/dns.md.

mod handler;
pub mod providers;
mod responder;
mod server;
mod transfer;
mod tsig;
mod udp;
mod wire;
mod zone;

pub use handler::Transport;
pub use responder::Responder;
pub use server::{AddrRange, AddrRangeError, Server, ServerConfig, StartError};
pub use transfer::TransferError;
pub use tsig::{AnswerTsigError, TsigKey, TsigKeyError};
pub use zone::{UpdateReport, ZoneConfig};
