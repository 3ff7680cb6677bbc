//! RDP probe: the client's first PDU, an X.224 Connection Request in a TPKT packet
//! (RFC 1006; MS-RDPBCGR 2.2.1.1). Pure; no IO.
//!
//! Decides once the TPKT header and the CR TPDU's fixed part are in (11 bytes): TPKT
//! version 3, a length the one-byte X.224 length indicator can describe, LI equal to the
//! rest of the packet, CR code 0xE0, DST-REF zero and class 0. The cookie / routing token
//! and RDP_NEG_REQ that follow are optional and not looked at.
#![deny(clippy::indexing_slicing)]

use std::ops::RangeInclusive;

use super::{Detected, Probe};
use crate::plan::Protocol;
use crate::wire::{Reader, WireError};

/// TPKT version 3, reserved 0.
const TPKT_VERSION: &[u8] = &[0x03, 0x00];
/// TPKT packet length: its 4-byte header, the LI byte, and the LI bytes it counts: at least
/// the CR TPDU's fixed part (6), at most 254 (LI 255 is reserved for extension).
const TPKT_LEN: RangeInclusive<u64> = 11..=259;
/// TPKT header and the LI byte, not counted by LI.
const NOT_IN_LI: u64 = 5;
/// CR TPDU code 1110 with credit 0000 (class 0 has no flow control), then DST-REF 0.
const CR_CODE_AND_DST_REF: &[u8] = &[0xe0, 0x00, 0x00];

/// Probe the start of a TCP stream for an RDP X.224 Connection Request.
pub fn probe(prefix: &[u8]) -> Probe {
    match connection_request(prefix) {
        Ok(()) => Probe::Match(Detected::bare(Protocol::Rdp)),
        Err(WireError::Truncated) => Probe::NeedMore,
        Err(WireError::Invalid(_)) => Probe::NoMatch,
    }
}

fn connection_request(prefix: &[u8]) -> Result<(), WireError> {
    let mut r = Reader::new(prefix);
    r.expect(TPKT_VERSION, "not TPKT version 3")?;
    let len = r.uint_prefix::<2>();
    if !len.may_be_in(TPKT_LEN) {
        return Err(WireError::Invalid("TPKT length"));
    }
    let len = len.exact().ok_or(WireError::Truncated)?;
    // Class 0 carries no user data after the TPDU header, so LI covers the whole rest.
    if u64::from(r.u8()?) != len - NOT_IN_LI {
        return Err(WireError::Invalid("X.224 LI"));
    }
    r.expect(CR_CODE_AND_DST_REF, "not an X.224 CR")?;
    let _src_ref = r.u16()?;
    let class_options = r.u8()?;
    if class_options >> 4 != 0 {
        return Err(WireError::Invalid("X.224 class"));
    }
    Ok(())
}

#[cfg(test)]
#[path = "rdp_tests.rs"]
mod tests;
