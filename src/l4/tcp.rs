//! TCP listeners of L4 services: accept with back-off on resource errors, enforce
//! `tcp_max_connections`, pick a target (fail-over on connect errors), relay, log. Does IO.

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_io::Async;
use futures_lite::{AsyncWriteExt, future};

use crate::balance::{self, Pick};
use crate::edge::{EdgeListener, EdgeStream};
use crate::fds::{Reserve, out_of_descriptors};
use crate::l4::proxy_protocol::{self, ProxiedAddrs};
use crate::l4::{mux, relay};
use crate::plan::{L4Service, Protocol, ProxyVersion, Route, Target};
use crate::state::{self, ServiceSlot, Shared};
use crate::timer::Timer;
use crate::{http, route};

/// First pause after an accept error such as EMFILE; doubles up to [`ACCEPT_BACKOFF_MAX`].
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Accept connections for whichever service `slot` points at (it may change on reload).
pub async fn accept_loop(
    listener: Rc<Async<TcpListener>>,
    addr: SocketAddr,
    slot: Rc<RefCell<Rc<ServiceSlot>>>,
    shared: Rc<Shared>,
) {
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut edge = EdgeListener::new(listener.clone());
    let pause = async |e: io::Error, backoff: &mut Duration| {
        // Out of descriptors or memory: the pending connection stays queued; pause instead
        // of spinning on the same error (the loop drops its kept pipes while short).
        if out_of_descriptors(&e) {
            shared.common.fds.ran_out();
        }
        log::error!("tcp {addr}: accept failed: {e}; pausing {backoff:?}");
        Timer::after(*backoff).await;
        *backoff = (*backoff * 2).min(ACCEPT_BACKOFF_MAX);
    };
    loop {
        // While descriptors are short, the new connection's upstream socket is provided for
        // before it is accepted (see src/fds.rs).
        let mut reserve = Reserve::none();
        if shared.common.fds.short() {
            // This thread's kept splice pipes are descriptors the sockets need more.
            relay::drop_spare_pipes();
            shared.common.fds.admit().await;
            match Reserve::take(listener.get_ref()) {
                Ok(r) => reserve = r,
                Err(e) => {
                    pause(e, &mut backoff).await;
                    continue;
                }
            }
        }
        let (stream, peer) = match edge.accept().await {
            Ok(conn) => {
                backoff = ACCEPT_BACKOFF_MIN;
                conn
            }
            Err(e) if is_transient(&e) => continue,
            Err(e) => {
                pause(e, &mut backoff).await;
                continue;
            }
        };
        let slot = slot.borrow().clone();
        let svc = slot.current();
        let stats = &slot.stats;
        // Taken here, not in the task, so a burst of accepts cannot overshoot the cap.
        if !stats.tcp_active.take_below(svc.tcp.max_connections as u64) {
            stats.tcp_refused.add(1);
            log::warn!(
                "tcp {peer} -> {addr}: refused, tcp_max_connections ({}) reached",
                svc.tcp.max_connections
            );
            access_refused(peer, addr);
            drop(stream);
            continue;
        }
        let active = Active(slot.clone());
        let conn = handle(stream, peer, addr, active, svc, reserve, shared.clone());
        state::spawn(conn).detach();
    }
}

/// How long a connection waits for a file descriptor before trying again.
const FD_RETRY: Duration = Duration::from_millis(50);

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// What one access line says; the format is documented in README.md.
struct Access {
    peer: SocketAddr,
    listener: SocketAddr,
    started: Instant,
    route: String,
    proto: String,
    target: String,
}

impl Access {
    /// Nothing known yet but who connected where.
    fn new(peer: SocketAddr, listener: SocketAddr) -> Self {
        let dash = || "-".to_owned();
        Access {
            peer,
            listener,
            started: Instant::now(),
            route: dash(),
            proto: dash(),
            target: dash(),
        }
    }

    fn log(&self, up: u64, down: u64, end: &str) {
        log::info!(
            target: crate::logging::ACCESS,
            "tcp {} -> {} route={} proto={} target={} up={up} down={down} dur={:.3}s end={end}",
            self.peer,
            self.listener,
            self.route,
            self.proto,
            self.target,
            self.started.elapsed().as_secs_f64()
        );
    }
}

fn access_refused(peer: SocketAddr, listener: SocketAddr) {
    let a = Access::new(peer, listener);
    a.log(0, 0, "refused_limit");
}

/// One open connection of a service, counted until dropped.
struct Active(Rc<ServiceSlot>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.stats.tcp_active.give(1);
    }
}

async fn handle(
    client: EdgeStream,
    peer: SocketAddr,
    listener: SocketAddr,
    active: Active,
    svc: Rc<L4Service>,
    mut reserve: Reserve,
    shared: Rc<Shared>,
) {
    let _drain = shared.drain.guard();
    let slot = active.0.clone();
    slot.stats.tcp_total.add(1);
    let mut log = Access::new(peer, listener);
    // Where the client really is and what it connected to (a PROXY header may say otherwise).
    let mut src = peer;
    // (The socket's own address is asked only when a PROXY header is to be sent.)
    let mut dst: Option<SocketAddr> = None;
    let mut buf = Vec::new();

    if svc.tcp.recv_proxy {
        if !mux::trusted(&svc, peer) {
            log::warn!("tcp {peer} -> {listener}: not in tcp_trusted_proxies; closing");
            return log.log(0, 0, "untrusted_proxy");
        }
        match Box::pin(mux::read_proxy_header(&client, &mut buf)).await {
            Ok(ProxiedAddrs::Tcp { src: s, dst: d }) => {
                (src, dst) = (s, Some(d));
                log.peer = s;
            }
            Ok(ProxiedAddrs::Unknown) => {}
            Err(why) => {
                log::warn!("tcp {peer} -> {listener}: {why}; closing");
                return log.log(buf.len() as u64, 0, "bad_proxy_header");
            }
        }
    }

    // Combined shape: this port is also the HTTP engine's, which takes plain HTTP (or TLS,
    // on its HTTPS port) that no rule claims.
    let mut engine_takes = Vec::new();
    if let Some(h) = shared.plan.borrow().http.as_ref() {
        let (plain, tls) = h.sockets();
        if plain.contains(&listener) {
            engine_takes.push(Protocol::Http);
        }
        if tls.contains(&listener) {
            engine_takes.push(Protocol::Tls);
        }
    }
    let decision = if mux::probes_tcp(&svc) || !engine_takes.is_empty() {
        match Box::pin(mux::decide(&client, &svc, &mut buf, &engine_takes)).await {
            Ok(d) => d,
            Err(e) => {
                log::debug!("tcp {src} -> {listener}: read error while probing: {e}");
                return log.log(buf.len() as u64, 0, "error");
            }
        }
    } else {
        mux::Decision::Unmatched {
            route: svc.tcp_default.as_ref(),
            why: "no_rules",
        }
    };
    if !matches!(
        decision,
        mux::Decision::Unmatched {
            why: "no_rules",
            ..
        }
    ) {
        log.proto = decision.label();
    }
    if let mux::Decision::Detected { detected, .. } = &decision
        && engine_takes.contains(&detected.protocol)
        && route::select(&svc.protocols, detected).is_none()
        && (detected.protocol == Protocol::Http
            || svc.tcp_default.is_none()
            || engine_serves_name(&shared, detected.sni.as_deref()))
    {
        reserve.release();
        log::debug!(
            "tcp {src} -> {listener}: {}, handed to the HTTP engine",
            detected.label()
        );
        let cx = http::server::ConnInfo {
            peer: src,
            local: listener,
            https: detected.protocol == Protocol::Tls,
            sni: None,
        };
        // Boxed, like the probing below: an awaited future is laid out inside this one, and
        // every relayed connection would carry the HTTP engine's state (9 KiB) while idle.
        return if cx.https {
            Box::pin(http::server::serve_tls(client, buf, cx, shared.clone())).await
        } else {
            Box::pin(http::server::serve(client, buf, cx, shared.clone())).await
        };
    }
    let Some(route) = decision.route() else {
        if !matches!(decision, mux::Decision::Gone) {
            log::info!(
                "tcp {src} -> {listener}: {} matches no rule and there is no tcp_target; closing",
                log.proto
            );
        }
        let end = if matches!(decision, mux::Decision::Gone) {
            "client_closed"
        } else {
            "no_route"
        };
        return log.log(buf.len() as u64, 0, end);
    };
    log.route = route.name.clone();
    let Some((upstream, target)) = connect(route, src, &svc, &slot, reserve, &shared).await else {
        slot.stats.tcp_failed.add(1);
        return log.log(buf.len() as u64, 0, "connect_failed");
    };
    log.target = target.to_string();
    let _hold = shared.hold_target(&target);
    // (Both sockets have TCP_NODELAY: the client's from its listener, sys::bind_tcp; the
    // upstream's from sys::connect_nonblocking.)

    // The PROXY header (if any), then the probed bytes exactly as the client sent them.
    let dst = || dst.unwrap_or_else(|| client.get_ref().local_addr().unwrap_or(listener));
    let mut head = match route.send_proxy.unwrap_or(svc.tcp.send_proxy) {
        ProxyVersion::None => Vec::new(),
        ProxyVersion::V1 => proxy_protocol::encode_v1(src, dst()),
        ProxyVersion::V2 => proxy_protocol::encode_v2(src, dst()),
    };
    head.extend_from_slice(&buf);
    if let Err(e) = (&upstream).write_all(&head).await {
        log::debug!(
            "tcp {src} -> {}: write of the first bytes failed: {e}",
            log.target
        );
        return log.log(0, 0, "error");
    }
    let stats = slot.stats.clone();
    stats.bytes_up.add(buf.len() as u64);
    let on_bytes = move |is_up: bool, n: usize| {
        let count = if is_up {
            &stats.bytes_up
        } else {
            &stats.bytes_down
        };
        count.add(n as u64);
    };
    let out = relay::relay(
        &client,
        &upstream,
        svc.tcp.idle_timeout,
        shared.drain.cut_off(),
        &on_bytes,
    )
    .await;
    if let Some(e) = &out.error {
        log::debug!("tcp {src} -> {listener}: relay error: {e}");
    }
    log.log(out.up + buf.len() as u64, out.down, out.end.as_str());
}

/// Whether an HTTPS app of the engine answers TLS for `sni`.
fn engine_serves_name(shared: &Shared, sni: Option<&str>) -> bool {
    let (Some(engine), Some(sni)) = (shared.http_engine(), sni) else {
        return false;
    };
    engine
        .tls
        .borrow()
        .as_ref()
        .is_some_and(|t| t.app_for(sni).is_some())
}

/// Try the route's targets in balance order (each address of a name in turn) until one
/// accepts within the connect timeout.
async fn connect(
    route: &Route,
    peer: SocketAddr,
    svc: &L4Service,
    slot: &ServiceSlot,
    mut reserve: Reserve,
    shared: &Rc<Shared>,
) -> Option<(EdgeStream, Target)> {
    let pick = Pick {
        client: peer,
        round: slot.next_round(&route.name),
        random: fastrand::u64(..),
        load: &|i| route.targets.get(i).map_or(0, |t| shared.load_of(t)),
    };
    for i in balance::order(route.balance, &route.targets, &pick) {
        let Some(target) = route.targets.get(i) else {
            continue;
        };
        if target.ip.is_none() {
            // A lookup may run getaddrinfo, which needs descriptors of its own.
            reserve.release();
        }
        let addrs = match shared.resolver.resolve(target).await {
            Ok(a) => a,
            Err(e) => {
                log::warn!("tcp {peer}: cannot resolve target {target}: {e}; trying the next one");
                continue;
            }
        };
        for addr in addrs {
            let deadline = Instant::now() + svc.tcp.connect_timeout;
            let mut waiting = None;
            loop {
                // The socket is created in this poll, before the task yields: it takes the
                // number the reserve held.
                reserve.release();
                let attempt = EdgeStream::connect(addr);
                let timeout = async {
                    Timer::at(deadline).await;
                    Err(io::Error::new(io::ErrorKind::TimedOut, "connect timeout"))
                };
                match future::or(attempt, timeout).await {
                    Ok(s) => return Some((s, target.clone())),
                    // Out of descriptors is the proxy's problem, not the target's: keep the
                    // client waiting (up to the connect timeout) until some are released;
                    // listeners accept no one new meanwhile.
                    Err(e) if out_of_descriptors(&e) && Instant::now() + FD_RETRY < deadline => {
                        if waiting.is_none() {
                            log::warn!(
                                "tcp {peer}: no descriptor for the connection to {target}: {e}; waiting"
                            );
                            relay::drop_spare_pipes();
                            waiting = Some(shared.common.fds.wait());
                        }
                        shared.common.fds.ran_out();
                        Timer::after(FD_RETRY).await;
                    }
                    Err(e) => {
                        log::warn!(
                            "tcp {peer}: connect to {target} ({addr}) failed: {e}; trying the next one"
                        );
                        break;
                    }
                }
            }
        }
    }
    log::error!(
        "tcp {peer}: no target of route {} accepted the connection",
        route.name
    );
    None
}
