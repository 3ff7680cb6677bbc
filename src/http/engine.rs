//! The HTTP engine's runtime state: the current HTTP plan with, per route, the upstreams'
//! health, idle connection pools and counters, which outlive a reload when the upstream
//! stays; the sticky-cookie key; connection counters; the active health-check tasks. The
//! health-check tasks do IO; the rest is state.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::{Rc, Weak};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::conn::BufStream;
use super::health::{self, Transition, UpstreamHealth};
use super::select::{self, Availability};
use super::sticky::StickyKey;
use super::upstream_io::UpstreamIo;
use crate::edge::EdgeStream;
use crate::plan::{Builtin, HealthCheck, HttpBalance, HttpPlan, HttpRoute, Target, Upstream};
use crate::state::{self, Common, Count, Shared, add};
use crate::timer::Timer;
use crate::tls::client::UpstreamTls;
use crate::tls::server::{Resumption, TlsServer};

/// Idle keep-alive connections kept per upstream: enough for a few hundred busy clients to
/// find warm connections (fewer made the pool close and reopen connections under 64
/// parallel clients), bounded so an idle proxy holds few descriptors. An idle connection
/// holds no read buffer, and closes after `UPSTREAM_IDLE_KEEP`.
pub const MAX_IDLE_PER_UPSTREAM: usize = 128;
/// An idle upstream connection older than this is closed instead of reused (backends close
/// idle connections after 5 s (Node.js) to 75 s (nginx); reuse racing their close is the
/// classic keep-alive failure, so stay on the short side).
pub const UPSTREAM_IDLE_KEEP: Duration = Duration::from_secs(4);

/// Counters of the whole HTTP engine, shared by the workers; they survive reloads.
#[derive(Default)]
pub struct HttpStats {
    pub connections_active: Count,
    pub connections_total: Count,
    pub connections_refused: Count,
    pub requests: Count,
    /// Responses by class: 1xx (101 only), 2xx, 3xx, 4xx, 5xx.
    pub responses: [Count; 5],
    pub bytes_in: Count,
    pub bytes_out: Count,
    /// Open connections per client address, for `max_clients_per_ip`.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

impl HttpStats {
    pub fn count_response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        if let Some(c) = self.responses.get(class) {
            c.add(1);
        }
    }

    fn per_ip(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.per_ip.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One open client connection, counted until dropped; `None` when a limit refuses it.
pub struct ClientSlot {
    stats: Arc<HttpStats>,
    ip: IpAddr,
}

impl ClientSlot {
    pub fn open(stats: &Arc<HttpStats>, plan: &HttpPlan, ip: IpAddr) -> Option<ClientSlot> {
        let mut per_ip = stats.per_ip();
        let mine = per_ip.get(&ip).copied().unwrap_or(0);
        if plan.max_clients_per_ip.is_some_and(|max| mine >= max)
            || !stats.connections_active.take_below(plan.max_clients as u64)
        {
            stats.connections_refused.add(1);
            return None;
        }
        per_ip.insert(ip, mine + 1);
        stats.connections_total.add(1);
        Some(ClientSlot {
            stats: stats.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let s = &self.stats;
        s.connections_active.give(1);
        let mut per_ip = s.per_ip();
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// A connection to an upstream with its read buffer (kept with it in the pool, so a reused
/// connection allocates nothing).
pub type UpstreamConn = BufStream<UpstreamIo>;

/// An idle keep-alive connection to an upstream.
struct IdleConn {
    stream: UpstreamConn,
    since: Instant,
}

/// One upstream (location + tls) with what outlives a request: health, pool, counters.
pub struct UpstreamState {
    pub target: Target,
    pub tls: bool,
    /// TLS server name to ask for and verify (the `server_name` option, else the host).
    pub tls_name: String,
    /// Extra CA trusted for this upstream (`ca_cert_path`).
    pub tls_ca: Option<std::path::PathBuf>,
    /// Host (and port unless the scheme's default) as sent in Host by `set_upstream_host`.
    pub authority: String,
    pub health: RefCell<UpstreamHealth>,
    pool: RefCell<Vec<IdleConn>>,
    pub active: Cell<usize>,
    pub requests: Cell<u64>,
    pub failures: Cell<u64>,
}

impl UpstreamState {
    fn new(u: &Upstream) -> Self {
        let (target, tls) = (u.target.clone(), u.tls);
        let default_port = if tls { 443 } else { 80 };
        let host = match target.ip {
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => target.host.clone(),
        };
        let authority = if target.port == default_port {
            host
        } else {
            format!("{host}:{}", target.port)
        };
        UpstreamState {
            tls_name: u.server_name.clone().unwrap_or_else(|| target.host.clone()),
            tls_ca: u.ca_cert_path.clone(),
            target,
            tls,
            authority,
            health: RefCell::new(UpstreamHealth::new()),
            pool: RefCell::default(),
            active: Cell::new(0),
            requests: Cell::new(0),
            failures: Cell::new(0),
        }
    }

    /// A live idle connection, newest first; stale and dead ones are closed on the way.
    /// `retry_safe`: the request may be sent again on a fresh connection if this one turns
    /// out closed (no body, idempotent), so a plain connection the set has reported nothing
    /// on since its last response is taken without asking the socket (a FIN that arrived
    /// after the thread's last wait in the set is then found by the request, which is sent
    /// again). Any other request asks the socket (a peek) first.
    pub async fn checkout(&self, retry_safe: bool) -> Option<UpstreamConn> {
        loop {
            let idle = self.pool.borrow_mut().pop()?;
            if idle.since.elapsed() >= UPSTREAM_IDLE_KEEP {
                continue;
            }
            let mut stream = idle.stream;
            let usable = match &mut stream.io {
                UpstreamIo::Plain(tcp) => (retry_safe && tcp.quiet()) || is_quiet(tcp.get_ref()),
                // TLS 1.3 servers send session tickets after the handshake: a TCP peek would
                // always see bytes; read them through TLS instead.
                UpstreamIo::Tls(tls) => {
                    // A real read, whatever the socket's last readiness said.
                    tls.get_ref().0.recheck();
                    crate::tls::client::idle_usable(tls.as_mut()).await
                }
            };
            if usable {
                return Some(stream);
            }
        }
    }

    /// Keep `stream` for the next request to this upstream (or close it when the pool is
    /// full).
    /// (The caller checks that nothing is left in its read buffer.)
    pub fn checkin(&self, mut stream: UpstreamConn) {
        stream.release_buffer();
        let mut pool = self.pool.borrow_mut();
        // Oldest first (checkout takes the newest): only the front can have gone stale.
        let now = Instant::now();
        let stale = pool
            .iter()
            .take_while(|c| now.duration_since(c.since) >= UPSTREAM_IDLE_KEEP)
            .count();
        pool.drain(..stale);
        if pool.len() >= MAX_IDLE_PER_UPSTREAM {
            pool.remove(0);
        }
        pool.push(IdleConn { stream, since: now });
    }

    pub fn idle(&self) -> usize {
        self.pool.borrow().len()
    }

    pub fn availability(&self) -> Availability {
        self.health.borrow().availability(Instant::now())
    }

    /// A connection attempt or a reused connection failed before any response byte.
    pub fn passive_failure(&self, why: &str) {
        add(&self.failures, 1);
        let mut h = self.health.borrow_mut();
        h.set_last_error(why.to_owned());
        if let Some(eject) = h.on_failure(Instant::now()) {
            log::warn!(
                "upstream {}{}: ejected for {eject:?} after a failure: {why}",
                self.target,
                state::worker_tag()
            );
        }
    }

    pub fn passive_success(&self) {
        self.health.borrow_mut().on_success();
    }
}

/// An idle connection the upstream has not closed and sent nothing on: a read would block.
fn is_quiet(s: &std::net::TcpStream) -> bool {
    let mut probe = [0u8; 1];
    matches!(s.peek(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// A route's live state.
pub struct RouteState {
    /// `app/path`: the sticky cookie's associated data and the status page's label.
    pub id: String,
    pub upstreams: Vec<Rc<UpstreamState>>,
    pub builtin: Option<Builtin>,
    round: Cell<usize>,
}

impl RouteState {
    /// The next upstream to try, per the route's policy; `tried` are excluded.
    pub fn pick(&self, route: &HttpRoute, sticky: Option<usize>, tried: &[usize]) -> Option<usize> {
        let avail: Vec<Availability> = self.upstreams.iter().map(|u| u.availability()).collect();
        let round = match route.balance {
            HttpBalance::RoundRobin | HttpBalance::Sticky => {
                let r = self.round.get();
                self.round.set(r.wrapping_add(1));
                r
            }
            _ => 0,
        };
        let random = fastrand::usize(..);
        select::pick(route.balance, &avail, round, random, sticky, tried)
    }

    /// Index of the upstream a sticky cookie names.
    pub fn find(&self, id: &str) -> Option<usize> {
        self.upstreams.iter().position(|u| upstream_id(u) == id)
    }
}

/// What makes two upstream entries the same upstream (sharing pool and health).
fn upstream_key(target: &Target, tls: bool, name: &str, ca: Option<&std::path::Path>) -> String {
    match (tls, ca) {
        (false, _) => target.to_string(),
        (true, None) => format!("{target} tls {name}"),
        (true, Some(ca)) => format!("{target} tls {name} ca {}", ca.display()),
    }
}

/// How a sticky cookie names an upstream (sealed, so clients never see it).
pub fn upstream_id(u: &UpstreamState) -> String {
    format!("{}{}", u.target, if u.tls { "+tls" } else { "" })
}

/// The HTTP engine as the current plan defines it.
pub struct Engine {
    pub plan: Rc<HttpPlan>,
    /// `[app][route]`, parallel to `plan.apps[a].routes[r]`.
    pub routes: Vec<Vec<RouteState>>,
    pub sticky: Rc<StickyKey>,
    pub stats: Arc<HttpStats>,
    /// Client configs for `tls = true` upstreams (system roots loaded once).
    /// Rebuilt on every reload and whenever an upstream `ca_cert_path` file changes, so
    /// system bundle and CA edits are picked up.
    upstream_tls: RefCell<Rc<UpstreamTls>>,
    /// Certificates and TLS settings of the apps with `tls` (`None`: no such app). Replaced
    /// when a certificate file changes, without a reload.
    pub tls: RefCell<Option<Rc<TlsServer>>>,
    common: Arc<Common>,
    /// Active health checks; cancelled when a reload replaces the engine (an old engine
    /// may live on a while in the requests it serves).
    checks: RefCell<Vec<smol::Task<()>>>,
}

impl Engine {
    /// The engine for `plan`, keeping the upstream state, counters and sticky key of `old`
    /// where they still apply.
    pub fn new(plan: HttpPlan, old: Option<&Engine>, shared: &Rc<Shared>) -> Engine {
        let mut known: HashMap<String, Rc<UpstreamState>> = HashMap::new();
        if let Some(old) = old {
            for u in old.routes.iter().flatten().flat_map(|r| &r.upstreams) {
                known.insert(
                    upstream_key(&u.target, u.tls, &u.tls_name, u.tls_ca.as_deref()),
                    u.clone(),
                );
            }
        }
        let sticky = match (plan.sticky_cookie_secret, old) {
            (Some(secret), _) => Rc::new(StickyKey::new(&secret.0)),
            (None, Some(old)) if old.plan.sticky_cookie_secret.is_none() => old.sticky.clone(),
            (None, _) => Rc::new(StickyKey::random()),
        };
        let mut checks = Vec::new();
        let mut checked: Vec<Rc<UpstreamState>> = Vec::new();
        let mut routes = Vec::new();
        let mut fresh: HashMap<String, Rc<UpstreamState>> = HashMap::new();
        for app in &plan.apps {
            let mut app_routes = Vec::new();
            for route in &app.routes {
                let upstreams: Vec<Rc<UpstreamState>> = route
                    .upstreams
                    .iter()
                    .map(|u| {
                        let name = u
                            .server_name
                            .clone()
                            .unwrap_or_else(|| u.target.host.clone());
                        let key = upstream_key(&u.target, u.tls, &name, u.ca_cert_path.as_deref());
                        let state = fresh
                            .get(&key)
                            .or_else(|| known.get(&key))
                            .cloned()
                            .unwrap_or_else(|| Rc::new(UpstreamState::new(u)));
                        fresh.insert(key, state.clone());
                        state
                    })
                    .collect();
                if let Some(check) = &route.health_check {
                    for u in &upstreams {
                        // One check loop per upstream, however many routes share it.
                        if !checked.iter().any(|c: &Rc<UpstreamState>| Rc::ptr_eq(c, u)) {
                            checked.push(u.clone());
                            checks.push(state::spawn(check_loop(
                                u.clone(),
                                check.clone(),
                                Rc::downgrade(shared),
                            )));
                        }
                    }
                }
                app_routes.push(RouteState {
                    id: format!("{}{}", app.name, route.path.as_deref().unwrap_or("/")),
                    upstreams,
                    builtin: route.builtin,
                    round: Cell::new(0),
                });
            }
            routes.push(app_routes);
        }
        for u in fresh.values() {
            if !checked.iter().any(|c| Rc::ptr_eq(c, u)) {
                u.health.borrow_mut().forget_checks();
            }
        }
        let tls = old.and_then(|o| o.tls.borrow().clone());
        let tls = build_tls(&plan, tls.as_deref(), &shared.common);
        Engine {
            common: shared.common.clone(),
            tls: RefCell::new(tls),
            plan: Rc::new(plan),
            routes,
            sticky,
            stats: shared.common.http.clone(),
            upstream_tls: RefCell::new(Rc::new(UpstreamTls::new())),
            checks: RefCell::new(checks),
        }
    }

    /// Stop this engine's health checks (a newer engine runs its own).
    pub fn stop_checks(&self) {
        self.checks.borrow_mut().clear();
    }

    /// The client side for `tls = true` upstreams.
    pub fn upstream_tls(&self) -> Rc<UpstreamTls> {
        self.upstream_tls.borrow().clone()
    }

    /// Load the certificate files again (one changed); a file that fails keeps its app's
    /// previous certificate. Upstream CA files are read again on next use.
    pub fn reload_tls(&self) {
        *self.upstream_tls.borrow_mut() = Rc::new(UpstreamTls::new());
        let old = self.tls.borrow().clone();
        let new = build_tls(&self.plan, old.as_deref(), &self.common);
        *self.tls.borrow_mut() = new;
    }

    /// Certificate, key and CA files to watch (apps' and upstreams').
    pub fn tls_files(&self) -> Vec<std::path::PathBuf> {
        let mut files = self
            .tls
            .borrow()
            .as_ref()
            .map_or_else(Vec::new, |t| t.watched_files());
        for u in self.routes.iter().flatten().flat_map(|r| &r.upstreams) {
            if let Some(ca) = &u.tls_ca
                && !files.contains(ca)
            {
                files.push(ca.clone());
            }
        }
        files
    }

    pub fn route(&self, app: usize, route: usize) -> Option<(&HttpRoute, &RouteState)> {
        let plan_route = self.plan.apps.get(app)?.routes.get(route)?;
        let state = self.routes.get(app)?.get(route)?;
        Some((plan_route, state))
    }
}

/// The TLS side of `plan`, logging what failed to load.
/// The TLS side of `plan`, logging what failed to load (worker 0 only: the others load
/// the same files).
fn build_tls(plan: &HttpPlan, old: Option<&TlsServer>, common: &Common) -> Option<Rc<TlsServer>> {
    if !plan.apps.iter().any(|a| a.tls.is_some()) {
        return None;
    }
    let first = common.tls_resumption.get_or_init(Resumption::for_all_apps);
    let (server, warnings) = TlsServer::resuming(plan, old, first.clone());
    for w in warnings {
        log::log!(state::leader_level(log::Level::Warn), "{w}");
    }
    Some(Rc::new(server))
}

/// Probe one upstream every `interval` and move it down or up per the thresholds.
async fn check_loop(up: Rc<UpstreamState>, check: HealthCheck, shared: Weak<Shared>) {
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let resolved = shared.resolver.resolve(&up.target).await;
        let tls = match (up.tls, shared.http_engine()) {
            (true, Some(engine)) => Some(engine.upstream_tls().config(up.tls_ca.as_deref())),
            _ => None,
        };
        drop(shared);
        let result = match (resolved, tls) {
            (_, Some(Err(e))) => Err(e),
            (Ok(addrs), tls) => match addrs.first() {
                Some(addr) => {
                    let tls = tls.and_then(Result::ok).map(|c| (c, up.tls_name.as_str()));
                    health::probe(*addr, &up.authority, &check.kind, check.timeout, tls).await
                }
                None => Err("no address".to_owned()),
            },
            (Err(e), _) => Err(format!("cannot resolve: {e}")),
        };
        let transition = {
            let mut h = up.health.borrow_mut();
            if let Err(e) = &result {
                h.set_last_error(e.clone());
            }
            h.on_check(result.is_ok(), &check)
        };
        match (transition, &result) {
            (Some(Transition::WentDown), Err(e)) => {
                let w = state::worker_tag();
                log::warn!(
                    "upstream {}{w}: health check failed, now down: {e}",
                    up.target
                );
            }
            (Some(Transition::WentDown), Ok(())) => {
                log::warn!("upstream {}{}: now down", up.target, state::worker_tag());
            }
            (Some(Transition::CameUp), _) => {
                let w = state::worker_tag();
                log::info!("upstream {}{w}: health check passed, now up", up.target);
            }
            (None, _) => {}
        }
        Timer::after(check.interval).await;
    }
}

/// Connect to one of `addrs` within `timeout` each, in order.
///
/// # Errors
/// The last connect error (or a timeout) when none accepted.
pub async fn connect(addrs: &[SocketAddr], timeout: Duration) -> Result<EdgeStream, String> {
    let mut last = "no address".to_owned();
    for addr in addrs {
        let attempt = futures_lite::future::or(
            async { EdgeStream::connect(*addr).await.map(Some) },
            async {
                Timer::after(timeout).await;
                Ok(None)
            },
        )
        .await;
        match attempt {
            Ok(Some(s)) => return Ok(s),
            Ok(None) => last = format!("{addr}: connect timed out after {timeout:?}"),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}
