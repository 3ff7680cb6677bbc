//! Protocol probes: pure functions over the bytes a client sent first, each answering
//! `Match`, `NeedMore` or `NoMatch` (sslh's MATCH/AGAIN/NEXT), registered in one table per
//! transport. No IO, no clock: the L4 driver feeds bytes and owns the deadline.

use crate::plan::Protocol;

pub mod dns;
pub mod http;
pub mod openvpn;
pub mod postgres;
pub mod quic;
pub mod rdp;
pub mod socks;
pub mod ssh;
pub mod tls;
pub mod wireguard;
pub mod xmpp;

/// Bytes a TCP probe may hold before giving up on a client (a post-quantum ClientHello is
/// about 2 KiB; 16 KiB is one full TLS record).
pub const MAX_PROBE_BYTES: usize = 16 * 1024;
/// Datagrams of one UDP flow held while probing (a QUIC ClientHello may span several).
pub const MAX_PROBE_DATAGRAMS: usize = 8;

/// What a probe found out about the bytes so far.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// This is the protocol; here is what routing may look at.
    Match(Detected),
    /// Could still be this protocol: read more (or give up at the deadline).
    NeedMore,
    /// Cannot be this protocol, whatever follows.
    NoMatch,
}

/// What routing may look at, as found by a probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detected {
    pub protocol: Protocol,
    /// TLS/QUIC server name, lower-cased, without a trailing dot.
    pub sni: Option<String>,
    /// TLS/QUIC ALPN protocols offered, in client order.
    pub alpn: Vec<String>,
    /// The ClientHello carries an encrypted_client_hello extension.
    pub ech: bool,
}

impl Detected {
    /// A match with nothing but the protocol.
    pub fn bare(protocol: Protocol) -> Self {
        Detected {
            protocol,
            sni: None,
            alpn: Vec::new(),
            ech: false,
        }
    }

    /// How access lines name it: `tls sni=a.example.com`, `ssh`.
    pub fn label(&self) -> String {
        match &self.sni {
            Some(sni) => format!("{} sni={sni}", self.protocol.name()),
            None => self.protocol.name().to_owned(),
        }
    }
}

/// A TCP probe: the whole prefix the client has sent so far.
pub type TcpProbe = fn(&[u8]) -> Probe;
/// A UDP probe: the datagrams of one new flow so far, in arrival order.
pub type UdpProbe = fn(&[&[u8]]) -> Probe;

/// TCP probes in the order they are tried: specific signatures first, weak ones last
/// (OpenVPN's is only a length and an opcode).
pub const TCP_PROBES: &[(Protocol, TcpProbe)] = &[
    (Protocol::Tls, tls::probe),
    (Protocol::Http, http::probe),
    (Protocol::Ssh, ssh::probe),
    (Protocol::Postgres, postgres::probe),
    (Protocol::Rdp, rdp::probe),
    (Protocol::Xmpp, xmpp::probe),
    (Protocol::Socks5, socks::probe_v5),
    (Protocol::Socks4, socks::probe_v4),
    (Protocol::OpenVpn, openvpn::probe_tcp),
];

/// UDP probes in the order they are tried.
pub const UDP_PROBES: &[(Protocol, UdpProbe)] = &[
    (Protocol::Quic, quic::probe),
    (Protocol::Wireguard, wireguard::probe),
    (Protocol::Dns, dns::probe),
    (Protocol::OpenVpnUdp, openvpn::probe_udp),
];

/// Run the TCP probes for `wanted` protocols over `prefix`: the first `Match` in table order
/// wins; `NeedMore` while any wanted probe still might match; else `NoMatch`.
pub fn probe_tcp(prefix: &[u8], wanted: impl Fn(Protocol) -> bool) -> Probe {
    let mut undecided = false;
    for (protocol, probe) in TCP_PROBES {
        if !wanted(*protocol) {
            continue;
        }
        match probe(prefix) {
            Probe::Match(d) => return Probe::Match(d),
            Probe::NeedMore => undecided = true,
            Probe::NoMatch => {}
        }
    }
    if undecided {
        Probe::NeedMore
    } else {
        Probe::NoMatch
    }
}

/// Run the UDP probes for `wanted` protocols over a new flow's datagrams (see [`probe_tcp`]).
pub fn probe_udp(datagrams: &[&[u8]], wanted: impl Fn(Protocol) -> bool) -> Probe {
    let mut undecided = false;
    for (protocol, probe) in UDP_PROBES {
        if !wanted(*protocol) {
            continue;
        }
        match probe(datagrams) {
            Probe::Match(d) => return Probe::Match(d),
            Probe::NeedMore => undecided = true,
            Probe::NoMatch => {}
        }
    }
    if undecided {
        Probe::NeedMore
    } else {
        Probe::NoMatch
    }
}

#[cfg(test)]
mod corpus_tests;

/// Split a fuzz or corpus input into datagrams: a sequence of (u16 big-endian length,
/// bytes); a short tail becomes the last datagram.
pub fn split_datagrams(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !data.is_empty() && out.len() < MAX_PROBE_DATAGRAMS {
        let mut r = crate::wire::Reader::new(data);
        let Ok(len) = r.u16() else {
            out.push(data);
            break;
        };
        let take = usize::from(len).min(r.len());
        let Ok(d) = r.take(take) else { break };
        out.push(d);
        data = r.rest();
    }
    out
}

/// The invariants every TCP probe keeps, checked by its fuzz target and by the corpus replay
/// in `cargo test`: no panic; a match names the probe's own protocol; and a decision on a
/// prefix is final (more bytes never turn `Match`/`NoMatch` back into `NeedMore`, nor one
/// into the other).
#[doc(hidden)]
pub fn check_tcp_probe(protocol: Protocol, probe: TcpProbe, data: &[u8]) {
    let full = probe(data);
    if let Probe::Match(d) = &full {
        assert_eq!(d.protocol, protocol, "match names another protocol");
    }
    for cut in [1, 2, 3, 5, 8, 16, 64, 512] {
        let Some(prefix) = data.get(..data.len().saturating_sub(cut)) else {
            continue;
        };
        match (probe(prefix), &full) {
            (Probe::NeedMore, _) => {}
            (Probe::Match(_), Probe::Match(_)) | (Probe::NoMatch, Probe::NoMatch) => {}
            (early, late) => panic!("decided {early:?} on a prefix, then {late:?}"),
        }
    }
}

/// The invariants every UDP probe keeps (see [`check_tcp_probe`]); `data` is split with
/// [`split_datagrams`].
#[doc(hidden)]
pub fn check_udp_probe(protocol: Protocol, probe: UdpProbe, data: &[u8]) {
    let datagrams = split_datagrams(data);
    if let Probe::Match(d) = probe(&datagrams) {
        assert_eq!(d.protocol, protocol, "match names another protocol");
    }
}
