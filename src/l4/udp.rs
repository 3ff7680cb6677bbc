//! UDP listeners of L4 services: datagrams are grouped into flows by (client, local address);
//! each flow gets its own connected upstream socket, and replies leave from the address the
//! client sent to. Idle flows expire through the flow table's deadline heap. Does IO.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future;
use smol::channel::{Receiver, Sender};

use crate::balance::{self, Pick};
use crate::edge::Watched;
use crate::l4::flows::{Expired, FlowKey, FlowTable};
use crate::plan::{Protocol, Route, Target};
use crate::probe::{self, MAX_PROBE_DATAGRAMS, Probe};
use crate::route;
use crate::state::{self, ServiceSlot, ServiceStats, Shared};
use crate::sys;
use crate::timer::Timer;

/// Largest datagram we relay (the IPv4/IPv6 UDP payload maximum).
const MAX_DATAGRAM: usize = 65_535;
/// Datagrams read per wake-up before expiry and other tasks get a turn.
const RECV_BATCH: usize = 64;
/// Datagrams held for a flow whose upstream socket is still being set up (name lookup).
const PENDING_DATAGRAMS: usize = 16;

/// Messages from the supervisor to a UDP listener. Closing the channel stops it at once.
pub enum UdpControl {
    /// The listener was removed: admit no new flows, exit when the last flow expires.
    Drain,
    /// The listener was re-added before it finished draining.
    Resume,
}

enum FlowState {
    /// The first datagrams of a flow on a service with UDP protocol rules, until a probe
    /// decides or [`L4Service::probe_timeout`] passes (the timer task reports it).
    Probing {
        datagrams: Vec<Vec<u8>>,
        _timer: smol::Task<()>,
    },
    /// Waiting for the target's name and upstream socket; datagrams queue here.
    Pending {
        queue: Vec<Vec<u8>>,
        _setup: Option<smol::Task<()>>,
    },
    Ready {
        upstream: Rc<Watched<UdpSocket>>,
        _replies: smol::Task<()>,
    },
}

struct UdpFlow {
    route: RefCell<String>,
    /// The `proto=` field of the access line.
    proto: RefCell<String>,
    target: RefCell<Option<Target>>,
    state: RefCell<FlowState>,
    up: Cell<u64>,
    down: Rc<Cell<u64>>,
    last_reply: Rc<Cell<Instant>>,
}

type Table = Rc<RefCell<FlowTable<Rc<UdpFlow>>>>;

struct Listener {
    sock: Rc<Watched<UdpSocket>>,
    addr: SocketAddr,
    slot: Rc<RefCell<Rc<ServiceSlot>>>,
    shared: Rc<Shared>,
    table: Table,
    /// Probe deadlines that passed, reported by each probing flow's timer task.
    probe_timeouts: Sender<FlowKey>,
    probing: RefCell<ProbingCount>,
}

/// Flows still being probed, which hold datagrams in memory: capped globally and per
/// source IP so that a flood of junk cannot exhaust memory.
#[derive(Default)]
struct ProbingCount {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Flows being probed at once, per listener.
const MAX_PROBING_FLOWS: usize = 1024;
/// Flows being probed at once from one source IP.
const MAX_PROBING_PER_IP: usize = 32;

/// Serve one UDP socket until the control channel closes (or, draining, no flow is left).
pub async fn serve(
    sock: Rc<Watched<UdpSocket>>,
    addr: SocketAddr,
    slot: Rc<RefCell<Rc<ServiceSlot>>>,
    control: Receiver<UdpControl>,
    shared: Rc<Shared>,
) {
    let svc = slot.borrow().current();
    let table = Rc::new(RefCell::new(FlowTable::new(
        svc.udp.max_flows,
        svc.udp.max_flows_per_ip,
    )));
    let (probe_timeouts, timed_out) = smol::channel::unbounded();
    let me = Listener {
        sock,
        addr,
        slot,
        shared,
        table,
        probe_timeouts,
        probing: RefCell::default(),
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut draining = false;
    // Flows of this listener included in the service's `udp_flows` counter.
    let mut counted = 0usize;
    enum Wake {
        Readable,
        Deadline,
        Control(Option<UdpControl>),
        ProbeTimeout(FlowKey),
    }
    loop {
        let next = me.table.borrow().next_deadline();
        let wake = future::or(
            future::or(async { Wake::Control(control.recv().await.ok()) }, async {
                match timed_out.recv().await {
                    Ok(key) => Wake::ProbeTimeout(key),
                    Err(_) => future::pending().await,
                }
            }),
            future::or(
                async {
                    me.sock.readable().await;
                    Wake::Readable
                },
                async {
                    match next {
                        Some(at) => Timer::at(at).await,
                        None => future::pending().await,
                    };
                    Wake::Deadline
                },
            ),
        )
        .await;
        let expired = me
            .table
            .borrow_mut()
            .expire(Instant::now(), |f| Some(f.last_reply.get()));
        for e in expired {
            me.finish(e, "idle_timeout");
        }
        match wake {
            Wake::Control(None) => {
                me.slot.borrow().stats.udp_flows.give(counted as u64);
                let all = me.table.borrow_mut().drain();
                for e in all {
                    me.finish(e, "shutdown");
                }
                return;
            }
            Wake::Control(Some(UdpControl::Drain)) => draining = true,
            Wake::Control(Some(UdpControl::Resume)) => draining = false,
            Wake::Deadline => {}
            Wake::ProbeTimeout(key) => {
                let flow = me.table.borrow_mut().touch(&key, Instant::now()).cloned();
                if let Some(flow) = flow {
                    me.decide(key, &flow, true);
                }
            }
            Wake::Readable => {
                for _ in 0..RECV_BATCH {
                    match sys::recv_with_dst(me.sock.get_ref(), &mut buf) {
                        Ok((n, from, dst)) => {
                            me.datagram(buf.get(..n).unwrap_or_default(), from, dst, draining)
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            me.sock.drained();
                            break;
                        }
                        Err(e) => {
                            log::debug!("udp {}: receive error: {e}", me.addr);
                            break;
                        }
                    }
                }
            }
        }
        // Several listeners may feed one service: add this one's change, not its total.
        let len = me.table.borrow().len();
        let flows = &me.slot.borrow().stats.udp_flows;
        if len >= counted {
            flows.add((len - counted) as u64);
        } else {
            flows.give((counted - len) as u64);
        }
        counted = len;
        if draining && me.table.borrow().is_empty() {
            log::info!("udp {}: drained, socket closed", me.addr);
            return;
        }
    }
}

impl Listener {
    fn stats(&self) -> Arc<ServiceStats> {
        self.slot.borrow().stats.clone()
    }

    fn datagram(&self, data: &[u8], client: SocketAddr, dst: Option<IpAddr>, draining: bool) {
        let local = SocketAddr::new(dst.unwrap_or(self.addr.ip()), self.addr.port());
        let key = FlowKey { client, local };
        let now = Instant::now();
        let existing = self.table.borrow_mut().touch(&key, now).cloned();
        if let Some(flow) = existing {
            self.forward(key, &flow, data);
            return;
        }
        let stats = self.stats();
        if draining {
            stats.udp_dropped.add(1);
            return;
        }
        let svc = self.slot.borrow().current();
        let probes = svc.protocols.iter().any(|p| p.protocol.is_udp());
        if !probes && svc.udp_default.is_none() {
            stats.udp_dropped.add(1);
            log::debug!("udp {client} -> {local}: no udp_target; dropped");
            return;
        }
        if probes && !self.probing.borrow().admits(client.ip()) {
            stats.udp_dropped.add(1);
            log::debug!("udp {client} -> {local}: too many flows being probed; dropped");
            return;
        }
        let flow = Rc::new(UdpFlow {
            route: RefCell::new("-".to_owned()),
            proto: RefCell::new("-".to_owned()),
            target: RefCell::new(None),
            state: RefCell::new(FlowState::Pending {
                queue: Vec::new(),
                _setup: None,
            }),
            up: Cell::new(data.len() as u64),
            down: Rc::default(),
            last_reply: Rc::new(Cell::new(now)),
        });
        let mut table = self.table.borrow_mut();
        table.set_limits(svc.udp.max_flows, svc.udp.max_flows_per_ip);
        if let Err((why, _)) = table.insert(key, flow.clone(), now, svc.udp.idle_lifetime) {
            stats.udp_dropped.add(1);
            log::debug!("udp {client} -> {local}: new flow refused: {why:?}");
            return;
        }
        drop(table);
        stats.udp_total.add(1);
        stats.bytes_up.add(data.len() as u64);
        if probes {
            self.probing.borrow_mut().add(client.ip());
            let tx = self.probe_timeouts.clone();
            let wait = svc.probe_timeout;
            let timer = state::spawn(async move {
                Timer::after(wait).await;
                let _ = tx.send(key).await;
            });
            *flow.state.borrow_mut() = FlowState::Probing {
                datagrams: vec![data.to_vec()],
                _timer: timer,
            };
        } else if let FlowState::Pending { queue, .. } = &mut *flow.state.borrow_mut() {
            queue.push(data.to_vec());
        }
        self.decide(key, &flow, false);
    }

    /// Route a flow: at once when the service has no UDP rules, else when its probe decides
    /// (or `timed_out`). Then start setting up its upstream socket.
    fn decide(&self, key: FlowKey, flow: &Rc<UdpFlow>, timed_out: bool) {
        let slot = self.slot.borrow().clone();
        let svc = slot.current();
        let default = svc.udp_default.as_ref();
        let mut state = flow.state.borrow_mut();
        let (route, proto, queue) = match &mut *state {
            FlowState::Probing { datagrams, .. } => {
                let refs: Vec<&[u8]> = datagrams.iter().map(Vec::as_slice).collect();
                let wanted = |p: Protocol| svc.protocols.iter().any(|r| r.protocol == p);
                let (route, proto) = match probe::probe_udp(&refs, wanted) {
                    Probe::Match(d) => {
                        let rule = route::select(&svc.protocols, &d).map(|r| &r.route);
                        (rule.or(default), d.label())
                    }
                    Probe::NeedMore if !timed_out && datagrams.len() < MAX_PROBE_DATAGRAMS => {
                        return;
                    }
                    Probe::NeedMore if timed_out => (default, "unknown(probe_timeout)".to_owned()),
                    Probe::NeedMore => (default, "unknown(probe_buffer_full)".to_owned()),
                    Probe::NoMatch => (default, "unknown(no_probe_matched)".to_owned()),
                };
                self.probing.borrow_mut().remove(key.client.ip());
                (route, proto, std::mem::take(datagrams))
            }
            FlowState::Pending {
                queue,
                _setup: None,
            } => (default, "-".to_owned(), std::mem::take(queue)),
            _ => return,
        };
        *flow.proto.borrow_mut() = proto;
        let Some(route) = route.cloned() else {
            drop(state);
            if let Some(flow) = self.table.borrow_mut().remove(&key) {
                let up = flow.up.get();
                log::info!(
                    target: crate::logging::ACCESS,
                    "udp {} -> {} route=- proto={} target=- up={up} down=0 dur=0.000s end=no_route",
                    key.client,
                    key.local,
                    flow.proto.borrow()
                );
            }
            return;
        };
        *flow.route.borrow_mut() = route.name.clone();
        if let Some(lifetime) = route.idle_lifetime {
            self.table.borrow_mut().set_lifetime(&key, lifetime);
        }
        let setup = setup_flow(
            Rc::downgrade(flow),
            Rc::downgrade(&self.table),
            key,
            route,
            slot,
            self.sock.clone(),
            self.shared.clone(),
        );
        *state = FlowState::Pending {
            queue,
            _setup: Some(state::spawn(setup)),
        };
    }

    fn forward(&self, key: FlowKey, flow: &Rc<UdpFlow>, data: &[u8]) {
        flow.up.set(flow.up.get() + data.len() as u64);
        self.stats().bytes_up.add(data.len() as u64);
        let mut probing = false;
        match &mut *flow.state.borrow_mut() {
            FlowState::Ready { upstream, .. } => {
                // A full socket buffer drops the datagram, as the network would.
                if let Err(e) = upstream.get_ref().send(data) {
                    self.stats().udp_dropped.add(1);
                    log::debug!("udp: send upstream failed: {e}");
                }
            }
            FlowState::Pending { queue, .. } => {
                if queue.len() < PENDING_DATAGRAMS {
                    queue.push(data.to_vec());
                } else {
                    self.stats().udp_dropped.add(1);
                }
            }
            FlowState::Probing { datagrams, .. } => {
                datagrams.push(data.to_vec());
                probing = true;
            }
        }
        if probing {
            self.decide(key, flow, false);
        }
    }

    fn finish(&self, e: Expired<Rc<UdpFlow>>, end: &str) {
        let f = &e.value;
        if matches!(&*f.state.borrow(), FlowState::Probing { .. }) {
            self.probing.borrow_mut().remove(e.key.client.ip());
        }
        let target = f
            .target
            .borrow()
            .as_ref()
            .map_or_else(|| "-".to_owned(), Target::to_string);
        log::info!(
            target: crate::logging::ACCESS,
            "udp {} -> {} route={} proto={} target={target} up={} down={} dur={:.3}s end={end}",
            e.key.client,
            e.key.local,
            f.route.borrow(),
            f.proto.borrow(),
            f.up.get(),
            f.down.get(),
            e.created.elapsed().as_secs_f64()
        );
    }
}

/// Resolve the target, open the connected upstream socket, flush queued datagrams and start
/// relaying replies. Holds only weak references, so an expired flow cancels it.
async fn setup_flow(
    flow: Weak<UdpFlow>,
    table: Weak<RefCell<FlowTable<Rc<UdpFlow>>>>,
    key: FlowKey,
    route: Route,
    slot: Rc<ServiceSlot>,
    listener: Rc<Watched<UdpSocket>>,
    shared: Rc<Shared>,
) {
    let pick = Pick {
        client: key.client,
        round: slot.next_round(&route.name),
        random: fastrand::u64(..),
        load: &|i| route.targets.get(i).map_or(0, |t| shared.load_of(t)),
    };
    let mut opened = None;
    for i in balance::order(route.balance, &route.targets, &pick) {
        let Some(target) = route.targets.get(i) else {
            continue;
        };
        match shared.resolver.resolve(target).await {
            Ok(addrs) => match prefer_family(&addrs, key.local).map(connect_upstream) {
                Some(Ok(sock)) => {
                    opened = Some((sock, target.clone()));
                    break;
                }
                Some(Err(e)) => {
                    log::warn!("udp {}: cannot open socket to {target}: {e}", key.client)
                }
                None => {}
            },
            Err(e) => log::warn!(
                "udp {}: cannot resolve target {target}: {e}; trying the next one",
                key.client
            ),
        }
    }
    let Some(flow) = flow.upgrade() else { return };
    let Some((upstream, target)) = opened else {
        if let Some(table) = table.upgrade() {
            table.borrow_mut().remove(&key);
        }
        log::info!(
            target: crate::logging::ACCESS,
            "udp {} -> {} route={} proto={} target=- up={} down=0 dur=0.000s end=connect_failed",
            key.client,
            key.local,
            route.name,
            flow.proto.borrow(),
            flow.up.get()
        );
        return;
    };
    let upstream = Rc::new(upstream);
    *flow.target.borrow_mut() = Some(target.clone());
    let replies = state::spawn(relay_replies(
        upstream.clone(),
        listener,
        key,
        flow.down.clone(),
        flow.last_reply.clone(),
        slot.stats.clone(),
        shared.hold_target(&target),
    ));
    let old = std::mem::replace(
        &mut *flow.state.borrow_mut(),
        FlowState::Ready {
            upstream: upstream.clone(),
            _replies: replies,
        },
    );
    if let FlowState::Pending { queue, _setup } = old {
        for d in queue {
            let _ = upstream.get_ref().send(&d);
        }
        // `_setup` is this very task: detach it rather than cancel it while it runs.
        if let Some(t) = _setup {
            t.detach();
        }
    }
}

fn connect_upstream(addr: SocketAddr) -> io::Result<Watched<UdpSocket>> {
    let any: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(any)?;
    sock.connect(addr)?;
    Watched::new(sock)
}

async fn relay_replies(
    upstream: Rc<Watched<UdpSocket>>,
    listener: Rc<Watched<UdpSocket>>,
    key: FlowKey,
    down: Rc<Cell<u64>>,
    last_reply: Rc<Cell<Instant>>,
    stats: Arc<ServiceStats>,
    _hold: state::TargetHold,
) {
    let from = (key.local.ip() != listener_ip(&listener)).then_some(key.local.ip());
    loop {
        upstream.readable().await;
        // Drain what is queued through the thread's one reply buffer: nothing awaits while
        // it is borrowed, so thousands of flows share 64 KiB instead of holding one each.
        let result = REPLY_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            for _ in 0..RECV_BATCH {
                let n = match upstream.get_ref().recv(&mut buf) {
                    Ok(n) => n,
                    Err(e) => return e,
                };
                let data = buf.get(..n).unwrap_or_default();
                match sys::send_from(listener.get_ref(), data, key.client, from) {
                    Ok(_) => {
                        down.set(down.get() + n as u64);
                        stats.bytes_down.add(n as u64);
                        last_reply.set(Instant::now());
                    }
                    Err(e) => {
                        stats.udp_dropped.add(1);
                        log::debug!("udp {}: reply dropped: {e}", key.client);
                    }
                }
            }
            // A busy upstream yields after a batch so other flows get their turn.
            io::Error::from(io::ErrorKind::Interrupted)
        });
        match result.kind() {
            io::ErrorKind::WouldBlock => upstream.drained(),
            io::ErrorKind::Interrupted => future::yield_now().await,
            // ICMP port unreachable from the target surfaces here; the flow lives on.
            io::ErrorKind::ConnectionRefused => {}
            _ => {
                // Unexpected: back off a little rather than spin on a persistent error.
                log::debug!("udp {}: upstream receive error: {result}", key.client);
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

thread_local! {
    /// The receive buffer every flow's reply relay on this thread uses in turn.
    static REPLY_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; MAX_DATAGRAM]);
}

/// The first address of the client's own family (a name resolving to both ::1 and
/// 127.0.0.1 reaches an IPv4-only backend from an IPv4 listener), else the first.
fn prefer_family(addrs: &[SocketAddr], local: SocketAddr) -> Option<SocketAddr> {
    addrs
        .iter()
        .find(|a| a.is_ipv4() == local.is_ipv4())
        .or(addrs.first())
        .copied()
}

fn listener_ip(sock: &Watched<UdpSocket>) -> IpAddr {
    sock.get_ref()
        .local_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip())
}

impl ProbingCount {
    fn admits(&self, ip: IpAddr) -> bool {
        self.total < MAX_PROBING_FLOWS
            && self.per_ip.get(&ip).copied().unwrap_or(0) < MAX_PROBING_PER_IP
    }

    fn add(&mut self, ip: IpAddr) {
        self.total += 1;
        *self.per_ip.entry(ip).or_insert(0) += 1;
    }

    fn remove(&mut self, ip: IpAddr) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}
