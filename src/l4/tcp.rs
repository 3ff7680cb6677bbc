//! TCP listeners of L4 services: accept with back-off on resource errors, enforce
//! `tcp_max_connections`, pick a target (fail-over on connect errors), relay, log. Does IO.

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::future;

use crate::balance::{self, Pick};
use crate::l4::relay;
use crate::plan::{L4Service, Route, Target};
use crate::state::{self, ServiceSlot, Shared};

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
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => {
                backoff = ACCEPT_BACKOFF_MIN;
                conn
            }
            Err(e) if is_transient(&e) => continue,
            Err(e) => {
                // Out of descriptors or memory: the pending connection stays queued; pause
                // instead of spinning on the same error.
                log::error!("tcp {addr}: accept failed: {e}; pausing {backoff:?}");
                Timer::after(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let slot = slot.borrow().clone();
        let svc = slot.current();
        let stats = &slot.stats;
        if stats.tcp_active.get() >= svc.tcp.max_connections {
            state::add(&stats.tcp_refused, 1);
            log::warn!(
                "tcp {peer} -> {addr}: refused, tcp_max_connections ({}) reached",
                svc.tcp.max_connections
            );
            access(peer, addr, "-", "-", 0, 0, Duration::ZERO, "refused_limit");
            drop(stream);
            continue;
        }
        // Counted here, not in the task, so a burst of accepts cannot overshoot the cap.
        stats.tcp_active.set(stats.tcp_active.get() + 1);
        let active = Active(slot.clone());
        state::spawn(handle(stream, peer, addr, active, svc, shared.clone())).detach();
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// One access line per connection; the format is documented in README.md.
#[allow(clippy::too_many_arguments)]
fn access(
    peer: SocketAddr,
    listener: SocketAddr,
    route: &str,
    target: &str,
    up: u64,
    down: u64,
    dur: Duration,
    end: &str,
) {
    log::info!(
        target: crate::logging::ACCESS,
        "tcp {peer} -> {listener} route={route} target={target} up={up} down={down} dur={:.3}s end={end}",
        dur.as_secs_f64()
    );
}

/// One open connection of a service, counted until dropped.
struct Active(Rc<ServiceSlot>);

impl Drop for Active {
    fn drop(&mut self) {
        let a = &self.0.stats.tcp_active;
        a.set(a.get().saturating_sub(1));
    }
}

async fn handle(
    client: Async<TcpStream>,
    peer: SocketAddr,
    listener: SocketAddr,
    active: Active,
    svc: Rc<L4Service>,
    shared: Rc<Shared>,
) {
    let started = Instant::now();
    let _drain = shared.drain.guard();
    let slot = active.0.clone();
    state::add(&slot.stats.tcp_total, 1);

    // Protocol routing arrives with the multiplexer; until then every connection takes the
    // default route.
    let Some(route) = svc.tcp_default.as_ref() else {
        log::info!("tcp {peer} -> {listener}: no tcp_target; closing");
        access(
            peer,
            listener,
            "-",
            "-",
            0,
            0,
            started.elapsed(),
            "no_route",
        );
        return;
    };
    let Some((upstream, target)) = connect(route, peer, &svc, &slot, &shared).await else {
        state::add(&slot.stats.tcp_failed, 1);
        access(
            peer,
            listener,
            &route.name,
            "-",
            0,
            0,
            started.elapsed(),
            "connect_failed",
        );
        return;
    };
    let _hold = shared.hold_target(&target);
    let _ = client.get_ref().set_nodelay(true);
    let _ = upstream.get_ref().set_nodelay(true);
    let stats = slot.stats.clone();
    let on_bytes = move |is_up: bool, n: usize| {
        state::add(
            if is_up {
                &stats.bytes_up
            } else {
                &stats.bytes_down
            },
            n as u64,
        );
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
        log::debug!("tcp {peer} -> {listener}: relay error: {e}");
    }
    access(
        peer,
        listener,
        &route.name,
        &target.to_string(),
        out.up,
        out.down,
        started.elapsed(),
        out.end.as_str(),
    );
}

/// Try the route's targets in balance order (each address of a name in turn) until one
/// accepts within the connect timeout.
async fn connect(
    route: &Route,
    peer: SocketAddr,
    svc: &L4Service,
    slot: &ServiceSlot,
    shared: &Rc<Shared>,
) -> Option<(Async<TcpStream>, Target)> {
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
        let addrs = match shared.resolver.resolve(target).await {
            Ok(a) => a,
            Err(e) => {
                log::warn!("tcp {peer}: cannot resolve target {target}: {e}; trying the next one");
                continue;
            }
        };
        for addr in addrs {
            let attempt = Async::<TcpStream>::connect(addr);
            let timeout = async {
                Timer::after(svc.tcp.connect_timeout).await;
                Err(io::Error::new(io::ErrorKind::TimedOut, "connect timeout"))
            };
            match future::or(attempt, timeout).await {
                Ok(s) => return Some((s, target.clone())),
                Err(e) => log::warn!(
                    "tcp {peer}: connect to {target} ({addr}) failed: {e}; trying the next one"
                ),
            }
        }
    }
    log::error!(
        "tcp {peer}: no target of route {} accepted the connection",
        route.name
    );
    None
}
