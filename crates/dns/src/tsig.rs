//! TSIG (RFC 8945) with HMAC-SHA256: verifying signed requests and signing
//! the answers, including every message of a zone transfer.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use fedmesh_core::dns::DomainName;
use ring::hmac;

use crate::wire::{self, CLASS_ANY, HEADER_LEN, TYPE_TSIG, TsigRecord};

/// Seconds of clock difference a signature is accepted with.
const FUDGE: u16 = 300;
const BADSIG: u16 = 16;
const BADKEY: u16 = 17;
const BADTIME: u16 = 18;

/// A shared TSIG key.
#[derive(Clone)]
pub struct TsigKey {
    name: Vec<u8>,
    key: hmac::Key,
}

/// Why a TSIG key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TsigKeyError {
    /// The key's name is not a DNS name.
    #[error("TSIG key name: {0}")]
    Name(#[from] fedmesh_core::dns::NameError),
    /// The secret is not base64.
    #[error("TSIG key {name}: the secret is not base64 ({source})")]
    Secret {
        /// The key's name.
        name: String,
        /// What the decoder said.
        source: base64::DecodeError,
    },
}

impl TsigKey {
    /// An HMAC-SHA256 key named `name` (as in BIND's `key "name" { ... }`)
    /// with the base64 `secret`.
    pub fn hmac_sha256(name: &str, secret: &str) -> Result<Self, TsigKeyError> {
        let domain = DomainName::new("TSIG key name", name)?;
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .map_err(|source| TsigKeyError::Secret {
                name: name.into(),
                source,
            })?;
        Ok(Self {
            name: wire::wire_name(&domain),
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        })
    }
}

/// The only algorithm fedmesh signs with, `hmac-sha256.` in wire form.
fn algorithm_wire() -> &'static [u8] {
    b"\x0bhmac-sha256\x00"
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The outcome of checking a request's TSIG.
pub(crate) enum Verified {
    /// Signed with a known key: answers are signed with it, chained to `mac`.
    Good(Signer),
    /// Signed, but not acceptably: the answer is NOTAUTH with this TSIG error
    /// (signed when the key is known, as RFC 8945 asks for BADTIME).
    Bad {
        /// The TSIG error code.
        error: u16,
        /// A signer when the MAC was good (BADTIME), else `None`.
        signer: Option<Signer>,
        /// The key name to put in an unsigned TSIG.
        key: Vec<u8>,
    },
}

/// Signs answers to one signed request.
pub(crate) struct Signer {
    key: TsigKey,
    /// The MAC the next message's digest starts with: the request's, then each
    /// previous message's.
    prior_mac: Vec<u8>,
    time: u64,
    error: u16,
    /// Whether the next message is the first answer (full variables) or a later one.
    first: bool,
}

/// Checks `tsig` (the last record of `msg`) against `keys`.
pub(crate) fn verify(msg: &[u8], tsig: &TsigRecord<'_>, keys: &[TsigKey]) -> Verified {
    let Some(key) = keys.iter().find(|k| k.name == tsig.key.as_bytes()) else {
        return Verified::Bad {
            error: BADKEY,
            signer: None,
            key: tsig.key.as_bytes().to_vec(),
        };
    };
    if tsig.algorithm.as_bytes() != algorithm_wire() {
        return Verified::Bad {
            error: BADKEY,
            signer: None,
            key: key.name.clone(),
        };
    }
    let mut ctx = hmac::Context::with_key(&key.key);
    // The message as signed: before the TSIG, with its original ID and one
    // additional record fewer.
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&msg[..HEADER_LEN]);
    header[..2].copy_from_slice(&tsig.original_id.to_be_bytes());
    let ar = u16::from_be_bytes([header[10], header[11]]).saturating_sub(1);
    header[10..12].copy_from_slice(&ar.to_be_bytes());
    ctx.update(&header);
    ctx.update(&msg[HEADER_LEN..tsig.start]);
    // The TSIG variables, as they are in the request's record.
    variables(
        &mut ctx, &key.name, tsig.time, tsig.fudge, tsig.error, tsig.other,
    );
    let expected = ctx.sign();
    if !same_mac(expected.as_ref(), tsig.mac) {
        return Verified::Bad {
            error: BADSIG,
            signer: None,
            key: key.name.clone(),
        };
    }
    let mut signer = Signer {
        key: key.clone(),
        prior_mac: tsig.mac.to_vec(),
        time: now(),
        error: 0,
        first: true,
    };
    if signer.time.abs_diff(tsig.time) > u64::from(tsig.fudge) {
        signer.error = BADTIME;
        return Verified::Bad {
            error: BADTIME,
            signer: Some(signer),
            key: key.name.clone(),
        };
    }
    Verified::Good(signer)
}

/// The TSIG variables a digest ends with (RFC 8945 4.3.3).
fn variables(ctx: &mut hmac::Context, key: &[u8], time: u64, fudge: u16, error: u16, other: &[u8]) {
    ctx.update(key);
    ctx.update(&CLASS_ANY.to_be_bytes());
    ctx.update(&[0, 0, 0, 0]);
    ctx.update(algorithm_wire());
    ctx.update(&time_bytes(time));
    ctx.update(&fudge.to_be_bytes());
    ctx.update(&error.to_be_bytes());
    ctx.update(&(other.len() as u16).to_be_bytes());
    ctx.update(other);
}

/// Signs a request fedmesh sends (a dynamic update, a transfer request):
/// appends the TSIG record and returns the checker of the answers.
pub(crate) fn sign_request(key: &TsigKey, msg: &mut Vec<u8>) -> AnswerCheck {
    let time = now();
    let mut ctx = hmac::Context::with_key(&key.key);
    ctx.update(msg);
    variables(&mut ctx, &key.name, time, FUDGE, 0, &[]);
    let mac = ctx.sign();
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    push_tsig(msg, &key.name, time, mac.as_ref(), id, 0, &[]);
    AnswerCheck {
        key: key.clone(),
        prior_mac: mac.as_ref().to_vec(),
        first: true,
    }
}

/// Why an answer to a signed request is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerTsigError {
    /// The answer carries no TSIG record.
    #[error("the answer is not signed")]
    Unsigned,
    /// The server reports a TSIG error (it did not accept the request's signature).
    #[error("the server rejected the request's signature ({})", tsig_error_name(*.0))]
    Rejected(u16),
    /// The answer's MAC does not match: not from a server holding the key.
    #[error("the answer's signature does not match the key")]
    BadSignature,
}

fn tsig_error_name(code: u16) -> &'static str {
    match code {
        BADSIG => "BADSIG: wrong secret",
        BADKEY => "BADKEY: unknown key name or algorithm",
        BADTIME => "BADTIME: clocks differ by more than 5 minutes",
        _ => "other TSIG error",
    }
}

/// Checks the answers to one signed request, message after message (every
/// message of a zone transfer is signed, chained to the previous MAC).
pub(crate) struct AnswerCheck {
    key: TsigKey,
    prior_mac: Vec<u8>,
    first: bool,
}

impl AnswerCheck {
    /// Checks `msg` and returns it without its TSIG record (ARCOUNT lowered).
    pub(crate) fn check(&mut self, msg: &[u8]) -> Result<Vec<u8>, AnswerTsigError> {
        let tsig = wire::find_tsig(msg).ok_or(AnswerTsigError::Unsigned)?;
        if tsig.error != 0 {
            return Err(AnswerTsigError::Rejected(tsig.error));
        }
        if tsig.key.as_bytes() != self.key.name || tsig.algorithm.as_bytes() != algorithm_wire() {
            return Err(AnswerTsigError::BadSignature);
        }
        let mut bare = msg[..tsig.start].to_vec();
        bare[..2].copy_from_slice(&tsig.original_id.to_be_bytes());
        let ar = u16::from_be_bytes([bare[10], bare[11]]).saturating_sub(1);
        bare[10..12].copy_from_slice(&ar.to_be_bytes());
        let mut ctx = hmac::Context::with_key(&self.key.key);
        ctx.update(&(self.prior_mac.len() as u16).to_be_bytes());
        ctx.update(&self.prior_mac);
        ctx.update(&bare);
        if self.first {
            variables(
                &mut ctx,
                &self.key.name,
                tsig.time,
                tsig.fudge,
                tsig.error,
                tsig.other,
            );
        } else {
            ctx.update(&time_bytes(tsig.time));
            ctx.update(&tsig.fudge.to_be_bytes());
        }
        if !same_mac(ctx.sign().as_ref(), tsig.mac) {
            return Err(AnswerTsigError::BadSignature);
        }
        self.prior_mac = tsig.mac.to_vec();
        self.first = false;
        // The message as the server sent it, minus the TSIG record.
        bare[..2].copy_from_slice(&msg[..2]);
        Ok(bare)
    }
}

/// Compares MACs in time independent of where they differ.
fn same_mac(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn time_bytes(time: u64) -> [u8; 6] {
    let b = time.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

impl Signer {
    /// Signs `msg` (a whole answer without TSIG) in place: appends the TSIG
    /// record and counts it. The first answer's digest covers all TSIG
    /// variables; later messages of a transfer only the timers (RFC 8945 5.3.1).
    pub(crate) fn sign(&mut self, msg: &mut Vec<u8>) {
        let mut ctx = hmac::Context::with_key(&self.key.key);
        ctx.update(&(self.prior_mac.len() as u16).to_be_bytes());
        ctx.update(&self.prior_mac);
        ctx.update(msg);
        let other: &[u8] = if self.error == BADTIME {
            &time_bytes(self.time)
        } else {
            &[]
        };
        if self.first {
            variables(
                &mut ctx,
                &self.key.name,
                self.time,
                FUDGE,
                self.error,
                other,
            );
        } else {
            ctx.update(&time_bytes(self.time));
            ctx.update(&FUDGE.to_be_bytes());
        }
        let mac = ctx.sign();
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        push_tsig(
            msg,
            &self.key.name,
            self.time,
            mac.as_ref(),
            id,
            self.error,
            other,
        );
        self.prior_mac = mac.as_ref().to_vec();
        self.first = false;
    }
}

/// An unsigned TSIG record carrying `error`, for a request whose key or
/// signature is not accepted (RFC 8945 5.3.2).
pub(crate) fn push_unsigned(msg: &mut Vec<u8>, key: &[u8], error: u16) {
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    push_tsig(msg, key, now(), &[], id, error, &[]);
}

fn push_tsig(
    msg: &mut Vec<u8>,
    key: &[u8],
    time: u64,
    mac: &[u8],
    id: u16,
    error: u16,
    other: &[u8],
) {
    msg.extend_from_slice(key);
    msg.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    msg.extend_from_slice(&CLASS_ANY.to_be_bytes());
    msg.extend_from_slice(&[0, 0, 0, 0]);
    let rdlen = algorithm_wire().len() + 6 + 2 + 2 + mac.len() + 2 + 2 + 2 + other.len();
    msg.extend_from_slice(&(rdlen as u16).to_be_bytes());
    msg.extend_from_slice(algorithm_wire());
    msg.extend_from_slice(&time_bytes(time));
    msg.extend_from_slice(&FUDGE.to_be_bytes());
    msg.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    msg.extend_from_slice(mac);
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&error.to_be_bytes());
    msg.extend_from_slice(&(other.len() as u16).to_be_bytes());
    msg.extend_from_slice(other);
    let ar = u16::from_be_bytes([msg[10], msg[11]]).wrapping_add(1);
    msg[10..12].copy_from_slice(&ar.to_be_bytes());
}
