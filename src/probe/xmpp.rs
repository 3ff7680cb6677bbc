//! XMPP probe: a client-to-server stream opening (RFC 6120 §4.2), an optional XML
//! declaration then `<stream:stream` carrying the `jabber:client` namespace. Pure; no IO.
//!
//! Matches as soon as `jabber:client` appears inside the stream tag; no match when the tag
//! closes without it, when something other than the declaration or the stream tag comes
//! first, or when [`MAX_HEADER_WAIT`] bytes have not decided. Only the conventional
//! `stream` prefix is recognised: XML would allow any, but XMPP servers have always
//! required this one, so no client sends another. Server-to-server (`jabber:server`)
//! streams are not for a multiplexed client port.
#![deny(clippy::indexing_slicing)]

use super::{Detected, Probe};
use crate::plan::Protocol;
use crate::wire::{Reader, WireError};

/// A stream header longer than this (the declaration and the opening tag, ~140 bytes from
/// real clients) is not waited for: it would hold back the other probes' verdicts.
pub const MAX_HEADER_WAIT: usize = 256;

const CLIENT_NAMESPACE: &[u8] = b"jabber:client";

/// Probe the start of a TCP stream for an XMPP client stream header.
pub fn probe(prefix: &[u8]) -> Probe {
    let head = prefix.get(..MAX_HEADER_WAIT).unwrap_or(prefix);
    match stream_header(head) {
        Probe::NeedMore if prefix.len() >= MAX_HEADER_WAIT => Probe::NoMatch,
        decided => decided,
    }
}

fn stream_header(head: &[u8]) -> Probe {
    let mut r = Reader::new(head);
    match r.expect(b"<?xml", "no declaration") {
        // `<`, `<?` … could still be either the declaration or the stream tag.
        Err(WireError::Truncated) => return Probe::NeedMore,
        Err(WireError::Invalid(_)) => {}
        Ok(()) => {
            // `<?xml version…`, not a processing instruction named `xml-something`.
            if let Some(verdict) = expect_space(&mut r) {
                return verdict;
            }
            let Ok(declaration) = r.take_until(b'>') else {
                return Probe::NeedMore;
            };
            if !declaration.ends_with(b"?") {
                return Probe::NoMatch;
            }
            r.take_while(is_xml_space);
        }
    }
    match r.expect(b"<stream:stream", "no stream tag") {
        Ok(()) => {}
        Err(WireError::Truncated) => return Probe::NeedMore,
        Err(WireError::Invalid(_)) => return Probe::NoMatch,
    }
    if let Some(verdict) = expect_space(&mut r) {
        return verdict;
    }
    let (attributes, closed) = match r.take_until(b'>') {
        Ok(attributes) => (attributes, true),
        Err(_) => (r.rest(), false),
    };
    if attributes
        .windows(CLIENT_NAMESPACE.len())
        .any(|w| w == CLIENT_NAMESPACE)
    {
        Probe::Match(Detected::bare(Protocol::Xmpp))
    } else if closed {
        Probe::NoMatch
    } else {
        Probe::NeedMore
    }
}

/// The whitespace that must follow a tag or declaration name; the verdict if it is not
/// there (yet).
fn expect_space(r: &mut Reader<'_>) -> Option<Probe> {
    match r.u8() {
        Ok(b) if is_xml_space(b) => None,
        Ok(_) => Some(Probe::NoMatch),
        Err(_) => Some(Probe::NeedMore),
    }
}

/// XML's S production.
fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

#[cfg(test)]
#[path = "xmpp_tests.rs"]
mod tests;
