//! UDP in batches: one `recvmmsg` takes up to [`BATCH`] queries and one
//! `sendmmsg` sends their answers (as NSD does), so a system call's fixed
//! cost, about a microsecond on a virtual machine, is paid per batch and not
//! per query. Under light load a batch is one query: `MSG_WAITFORONE`
//! returns as soon as one has come.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{self, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage};

/// Queries taken per system call at most.
const BATCH: usize = 32;
/// Room for the largest UDP datagram.
const MAX_DATAGRAM: usize = 65_535;

/// One thread's buffers, allocated once: nothing is allocated per query.
pub(crate) struct Batch {
    /// `BATCH` receive buffers of `MAX_DATAGRAM` bytes, back to back.
    queries: Vec<u8>,
    /// Each received query's length and sender.
    received: [(usize, Option<SockaddrStorage>); BATCH],
    /// The answers to send, first `replies` of them, and where to.
    answers: Vec<Vec<u8>>,
    to: [Option<SockaddrStorage>; BATCH],
    replies: usize,
    recv_headers: MultiHeaders<SockaddrStorage>,
    send_headers: MultiHeaders<SockaddrStorage>,
}

impl Batch {
    pub(crate) fn new() -> Self {
        Self {
            // Pages are only touched as datagrams fill them.
            queries: vec![0; BATCH * MAX_DATAGRAM],
            received: [(0, None); BATCH],
            answers: (0..BATCH)
                .map(|_| Vec::with_capacity(MAX_DATAGRAM))
                .collect(),
            to: [None; BATCH],
            replies: 0,
            recv_headers: MultiHeaders::preallocate(BATCH, None),
            send_headers: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Waits for queries (at most the socket's read timeout) and takes all
    /// that have come, up to [`BATCH`]; returns how many.
    pub(crate) fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let mut buffers = self.queries.chunks_exact_mut(MAX_DATAGRAM);
        let mut slices: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(buffers.next().unwrap_or_default())]);
        let results = socket::recvmmsg(
            socket.as_raw_fd(),
            &mut self.recv_headers,
            slices.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        )?;
        let mut count = 0;
        for (message, slot) in results.zip(self.received.iter_mut()) {
            *slot = (message.bytes, message.address);
            count += 1;
        }
        Ok(count)
    }

    /// Calls `answer` with each of the first `count` queries received, its
    /// sender's address and a cleared buffer of 64 KiB capacity; the buffer
    /// is sent back when `answer` returns true.
    pub(crate) fn answer(
        &mut self,
        count: usize,
        mut answer: impl FnMut(&[u8], IpAddr, &mut Vec<u8>) -> bool,
    ) {
        self.replies = 0;
        let queries = self.queries.chunks_exact(MAX_DATAGRAM);
        for (query, (len, from)) in queries.zip(&self.received).take(count) {
            let Some((from, peer)) = from.and_then(|f| Some((f, ip_of(&f)?))) else {
                continue;
            };
            let Some(out) = self.answers.get_mut(self.replies) else {
                break;
            };
            out.clear();
            if answer(&query[..(*len).min(MAX_DATAGRAM)], peer, out) {
                self.to[self.replies] = Some(from);
                self.replies += 1;
            }
        }
    }

    /// Sends the answers. A send the kernel refuses (an unreachable
    /// sender) drops that answer, and since `sendmmsg` stops at an error
    /// after a first success without saying where, the rest of the batch
    /// too: the clients ask again, as after any lost datagram.
    pub(crate) fn send(&mut self, socket: &UdpSocket) {
        let mut at = 0;
        while at < self.replies {
            let answers = &self.answers[at..self.replies];
            let slices: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|i| {
                [IoSlice::new(answers.get(i).map_or(&[][..], Vec::as_slice))]
            });
            let sent = socket::sendmmsg(
                socket.as_raw_fd(),
                &mut self.send_headers,
                &slices[..answers.len()],
                &self.to[at..self.replies],
                [] as [ControlMessage<'_>; 0],
                MsgFlags::empty(),
            );
            match sent {
                Ok(_) => return,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    // The first answer could not be sent: skip it.
                    tracing::debug!(error = %e, "DNS UDP answer not sent");
                    at += 1;
                }
            }
        }
    }
}

fn ip_of(address: &SockaddrStorage) -> Option<IpAddr> {
    address
        .as_sockaddr_in()
        .map(|a| IpAddr::V4(a.ip()))
        .or_else(|| address.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())))
}
