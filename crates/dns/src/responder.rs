//! The server's answering logic without sockets: zones, transfer policy and
//! `respond`. The [`Server`](crate::Server) runs one behind its sockets; the
//! fuzz target and the benchmark drive one directly.

use std::net::IpAddr;

use fedmesh_core::dns::DnsChange;

use crate::handler::{self, Handled, Policy, Transport};
use crate::server::ServerConfig;
use crate::transfer;
use crate::zone::{Master, UpdateReport};

/// Answers DNS messages from zones held in memory.
pub struct Responder {
    master: Master,
    policy: Policy,
}

impl Responder {
    /// Empty zones (SOA and NS only) and the transfer policy of `config`
    /// (its listen address and NOTIFY targets are not used).
    pub fn new(config: &ServerConfig) -> Self {
        Self {
            master: Master::new(config.zones.clone()),
            policy: Policy::new(config),
        }
    }

    /// Applies a change of records, as [`Server::update`](crate::Server::update).
    pub fn update(&mut self, change: &DnsChange) -> UpdateReport {
        self.master.apply(change).0
    }

    /// Answers `msg` from `peer`: the messages to send back, in order (none
    /// for a message that gets no answer; several for a zone transfer).
    pub fn respond(
        &self,
        msg: &[u8],
        transport: Transport,
        peer: IpAddr,
        out: &mut Vec<u8>,
    ) -> Result<Vec<Vec<u8>>, transfer::TransferError> {
        let snapshot = self.master.snapshot();
        match handler::handle(&snapshot, &self.policy, msg, transport, peer, out) {
            Handled::Reply => Ok(vec![out.clone()]),
            Handled::Drop => Ok(Vec::new()),
            Handled::Transfer(mut request) => transfer::messages(&self.master, &mut request),
        }
    }
}
