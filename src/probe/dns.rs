//! DNS probe: a new flow's first datagram is a standard query (RFC 1035 §4.1): QR 0, opcode
//! QUERY, one question whose name and type/class parse, no answers. Pure; no IO.
//!
//! The question must be the only one (RFC 9619), and its name uncompressed (there is
//! nothing before it to point to). Records after the question (EDNS OPT, TSIG, an IXFR
//! query's SOA) are not looked at.
#![deny(clippy::indexing_slicing)]

use super::{Detected, Probe};
use crate::plan::Protocol;
use crate::wire::{Reader, WireError};

/// Header flag bits a query has clear: QR (it is not a response), the four opcode bits
/// (QUERY is 0), Z (reserved) and RCODE. AA, TC, RD, RA, AD and CD are not checked.
const NOT_IN_QUERY: u16 = 0x8000 | 0x7800 | 0x0040 | 0x000f;
/// Label length bytes with either top bit set are compression pointers (11) or the
/// obsolete extended label types (01, 10).
const LABEL_TYPE_BITS: u8 = 0xc0;
/// A name's wire form, length bytes and root included, is at most 255 bytes.
const MAX_NAME_LEN: usize = 255;
/// QCLASS values: IN, CH, HS, NONE, ANY.
const QCLASSES: &[u16] = &[1, 3, 4, 254, 255];

/// Probe a new UDP flow's first datagram for a DNS query.
pub fn probe(datagrams: &[&[u8]]) -> Probe {
    let Some(first) = datagrams.first() else {
        return Probe::NeedMore;
    };
    match query(first) {
        Ok(()) => Probe::Match(Detected::bare(Protocol::Dns)),
        // A datagram is whole: a short one will not grow.
        Err(_) => Probe::NoMatch,
    }
}

fn query(datagram: &[u8]) -> Result<(), WireError> {
    let mut r = Reader::new(datagram);
    let _id = r.u16()?;
    if r.u16()? & NOT_IN_QUERY != 0 {
        return Err(WireError::Invalid("not a standard query"));
    }
    let (questions, answers, _authority, _additional) = (r.u16()?, r.u16()?, r.u16()?, r.u16()?);
    if questions != 1 || answers != 0 {
        return Err(WireError::Invalid("counts"));
    }
    name(&mut r)?;
    let (qtype, qclass) = (r.u16()?, r.u16()?);
    if qtype == 0 || !QCLASSES.contains(&qclass) {
        return Err(WireError::Invalid("question type or class"));
    }
    Ok(())
}

/// An uncompressed domain name: labels of 1–63 bytes up to the root's empty one.
fn name(r: &mut Reader<'_>) -> Result<(), WireError> {
    let mut wire_len = 0usize;
    loop {
        let len = r.u8()?;
        wire_len += 1 + usize::from(len);
        if len & LABEL_TYPE_BITS != 0 || wire_len > MAX_NAME_LEN {
            return Err(WireError::Invalid("question name"));
        }
        if len == 0 {
            return Ok(());
        }
        r.take(usize::from(len))?;
    }
}

#[cfg(test)]
#[path = "dns_tests.rs"]
mod tests;
