//! The TCP side of the multiplexer: read a PROXY header from trusted peers, then read the
//! client's first bytes until a probe decides (or the probe deadline passes, or the buffer
//! cap is reached) and pick the route. The bytes read are handed on unchanged. Does IO.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, future};

use crate::edge::EdgeStream;
use crate::l4::proxy_protocol::{self, Parse, ProxiedAddrs};
use crate::plan::{L4Service, Protocol, Route};
use crate::probe::{self, Detected, MAX_PROBE_BYTES, Probe};
use crate::route;
use crate::timer::Timer;

/// A trusted proxy must deliver its whole PROXY header within this time.
pub const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a connection was routed where it was.
#[derive(Debug)]
pub enum Decision<'a> {
    /// A probe matched; `route` is its rule's route, or the default when no rule claims it.
    Detected {
        detected: Detected,
        route: Option<&'a Route>,
    },
    /// No probe matched, or the client stayed undecided too long, or the buffer filled up.
    Unmatched {
        route: Option<&'a Route>,
        why: &'static str,
    },
    /// The client sent nothing within `probe_timeout`.
    Silent { route: Option<&'a Route> },
    /// The client closed before sending anything.
    Gone,
}

impl Decision<'_> {
    pub fn route(&self) -> Option<&Route> {
        match self {
            Decision::Detected { route, .. }
            | Decision::Unmatched { route, .. }
            | Decision::Silent { route } => *route,
            Decision::Gone => None,
        }
    }

    /// The `proto=` field of the access line.
    pub fn label(&self) -> String {
        match self {
            Decision::Detected { detected, .. } => detected.label(),
            Decision::Unmatched { why, .. } => format!("unknown({why})"),
            Decision::Silent { .. } => "silent".to_owned(),
            Decision::Gone => "none".to_owned(),
        }
    }
}

/// Whether this service needs to look at TCP bytes before routing.
pub fn probes_tcp(svc: &L4Service) -> bool {
    svc.protocols.iter().any(|p| !p.protocol.is_udp())
}

/// Read until a probe decides; `buf` holds every byte read (handed on unchanged).
///
/// # Errors
/// Reading from the client failed.
/// `also`: protocols to probe for even without a rule (the listener is also the HTTP
/// engine's port, which takes plain HTTP or TLS that no rule claims).
pub async fn decide<'a>(
    client: &EdgeStream,
    svc: &'a L4Service,
    buf: &mut Vec<u8>,
    also: &[Protocol],
) -> io::Result<Decision<'a>> {
    let default = svc.tcp_default.as_ref();
    let wanted = |p: Protocol| also.contains(&p) || svc.protocols.iter().any(|r| r.protocol == p);
    let deadline = Instant::now() + svc.probe_timeout;
    let mut chunk = [0u8; 2048];
    loop {
        if !buf.is_empty() {
            match probe::probe_tcp(buf, wanted) {
                Probe::Match(detected) => {
                    let route = route::select(&svc.protocols, &detected)
                        .map(|r| &r.route)
                        .or(default);
                    return Ok(Decision::Detected { detected, route });
                }
                Probe::NoMatch => {
                    return Ok(Decision::Unmatched {
                        route: default,
                        why: "no_probe_matched",
                    });
                }
                Probe::NeedMore => {}
            }
            if buf.len() >= MAX_PROBE_BYTES {
                return Ok(Decision::Unmatched {
                    route: default,
                    why: "probe_buffer_full",
                });
            }
        }
        let room = (MAX_PROBE_BYTES - buf.len()).min(chunk.len());
        let read = async {
            Some(
                (&*client)
                    .read(chunk.get_mut(..room).unwrap_or_default())
                    .await,
            )
        };
        let timeout = async {
            Timer::at(deadline).await;
            None
        };
        match future::or(read, timeout).await {
            Some(Ok(0)) if buf.is_empty() => return Ok(Decision::Gone),
            Some(Ok(0)) => {
                return Ok(Decision::Unmatched {
                    route: default,
                    why: "eof_while_probing",
                });
            }
            Some(Ok(n)) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Some(Err(e)) => return Err(e),
            None if buf.is_empty() => {
                let on_timeout = svc
                    .on_timeout
                    .as_ref()
                    .and_then(|name| svc.protocols.iter().find(|p| &p.route.name == name))
                    .map(|p| &p.route);
                return Ok(Decision::Silent {
                    route: on_timeout.or(default),
                });
            }
            None => {
                return Ok(Decision::Unmatched {
                    route: default,
                    why: "probe_timeout",
                });
            }
        }
    }
}

/// Read and strip a PROXY header; `buf` keeps whatever followed it.
///
/// # Errors
/// A message saying why the header was refused (missing, malformed, too slow, read error).
pub async fn read_proxy_header(
    client: &EdgeStream,
    buf: &mut Vec<u8>,
) -> Result<ProxiedAddrs, String> {
    let deadline = Instant::now() + PROXY_HEADER_TIMEOUT;
    let mut chunk = [0u8; proxy_protocol::MAX_HEADER];
    loop {
        match proxy_protocol::parse(buf) {
            Parse::Done(h) => {
                buf.drain(..h.len.min(buf.len()));
                return Ok(h.addrs);
            }
            Parse::Invalid(why) => return Err(format!("bad PROXY header: {why}")),
            Parse::NeedMore => {}
        }
        let read = async { Some((&*client).read(&mut chunk).await) };
        let timeout = async {
            Timer::at(deadline).await;
            None
        };
        match future::or(read, timeout).await {
            Some(Ok(0)) => return Err("closed before a complete PROXY header".to_owned()),
            Some(Ok(n)) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Some(Err(e)) => return Err(format!("read error before the PROXY header: {e}")),
            None => {
                return Err(format!(
                    "no complete PROXY header within {PROXY_HEADER_TIMEOUT:?}"
                ));
            }
        }
    }
}

/// Whether `peer` may send a PROXY header.
pub fn trusted(svc: &L4Service, peer: SocketAddr) -> bool {
    svc.tcp
        .trusted_proxies
        .iter()
        .any(|c| c.contains(peer.ip()))
}
