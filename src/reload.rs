//! The supervisor: applies a plan as a diff of listening sockets, polls the config file's
//! (mtime, size, inode) about once a second and on SIGHUP, keeps the running config when a
//! new one fails, reopens logs on SIGUSR1 and drains on SIGTERM/SIGINT. Does IO.

use std::cell::RefCell;
use std::io;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use async_io::Async;
use async_signal::{Signal, Signals};
use futures_lite::{StreamExt, future};
use smol::channel::Sender;

use crate::edge::Watched;
use crate::http::engine::Engine;
use crate::l4::udp::UdpControl;
use crate::plan::{ListenerKey, Plan, Role, Transport, diff_listeners};
use crate::state::{self, ServiceSlot, Shared};
use crate::timer::Timer;
use crate::{config, http, l4, logging, status, sys};

mod workers;
use workers::{Follower, Order};

/// How often the config file is checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// After the drain deadline, how long cut connections get to write their access lines.
const SHUTDOWN_LOG_GRACE: Duration = Duration::from_millis(200);

/// What identifies one version of a file on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    mtime: Option<SystemTime>,
    size: u64,
    inode: u64,
}

impl FileStamp {
    pub fn of(path: &Path) -> io::Result<Self> {
        let m = std::fs::metadata(path)?;
        Ok(FileStamp {
            mtime: m.modified().ok(),
            size: m.len(),
            inode: m.ino(),
        })
    }
}

/// A running listening socket and what feeds it.
/// The service a socket feeds, repointed by reloads.
type SlotCell = Rc<RefCell<Rc<ServiceSlot>>>;

struct Running {
    key: ListenerKey,
    /// Which service this socket feeds (none for the status page); repointed when a reload
    /// moves the address to another service.
    slot: Option<SlotCell>,
    tcp: Option<Rc<Async<TcpListener>>>,
    udp_control: Option<Sender<UdpControl>>,
    /// The accept loop, status server or UDP loop; dropping it cancels it.
    task: Option<smol::Task<()>>,
}

/// A socket bound for a plan that is not applied yet.
enum Bound {
    Tcp(Async<TcpListener>),
    Udp(Watched<UdpSocket>),
    /// A UDP socket still draining from an earlier removal, to be resumed.
    Revive(usize),
}

pub struct Supervisor {
    shared: Rc<Shared>,
    path: PathBuf,
    running: Vec<Running>,
    /// Removed UDP listeners whose flows still live.
    draining_udp: Vec<Running>,
    stamp: Option<FileStamp>,
    missing_reported: bool,
    /// Certificate, key and CA files of the running HTTPS apps, as last seen.
    cert_stamps: Vec<(PathBuf, Option<FileStamp>)>,
    /// Installed by [`Supervisor::start`] before any socket is bound, so a signal sent as soon
    /// as "ready" is logged already gets its graceful meaning instead of the default action.
    signals: Option<Signals>,
    /// The other worker threads (`workers` > 1), told what this one decides.
    followers: Vec<Follower>,
    /// A follower failed to apply the running plan: offer it again at the next poll.
    followers_behind: bool,
}

/// Take over the signals the supervisor handles.
fn install_signals() -> io::Result<Signals> {
    Signals::new([Signal::Hup, Signal::Usr1, Signal::Term, Signal::Int])
}

impl Supervisor {
    pub fn new(shared: Rc<Shared>, path: PathBuf) -> Self {
        let stamp = FileStamp::of(&path).ok();
        Supervisor {
            shared,
            path,
            running: Vec::new(),
            draining_udp: Vec::new(),
            stamp,
            missing_reported: false,
            cert_stamps: Vec::new(),
            signals: None,
            followers: Vec::new(),
            followers_behind: false,
        }
    }

    /// Bind and start everything of the initial plan.
    ///
    /// # Errors
    /// The signal handlers could not be installed, or a socket could not be bound; nothing is
    /// left running.
    pub fn start(&mut self) -> Result<(), String> {
        self.signals = Some(install_signals().map_err(|e| format!("signal handlers: {e}"))?);
        let plan = self.shared.plan.borrow().clone();
        self.apply(&plan)?;
        self.shared.generation.set(1);
        let workers = self.shared.common.workers;
        for worker in 1..workers {
            let f = Follower::spawn(worker, &plan, &self.shared, &self.path)?;
            self.followers.push(f);
        }
        let threads = if workers > 1 {
            format!(" ({workers} workers)")
        } else {
            String::new()
        };
        log::info!("ready: {}{threads}", self.describe_listeners());
        Ok(())
    }

    fn describe_listeners(&self) -> String {
        let parts: Vec<String> = self
            .running
            .iter()
            .map(|r| {
                let t = match r.key.transport {
                    Transport::Tcp => "tcp",
                    Transport::Udp => "udp",
                };
                let _ = t;
                format!("{} {}", r.key.describe(), r.key.addr)
            })
            .collect();
        if parts.is_empty() {
            "no listeners".to_owned()
        } else {
            parts.join(", ")
        }
    }

    /// Make the running sockets match `plan`. All new sockets are bound before anything
    /// changes, so a bind failure leaves the old configuration untouched.
    fn apply(&mut self, plan: &Rc<Plan>) -> Result<(), String> {
        let old_keys: Vec<ListenerKey> = self.running.iter().map(|r| r.key).collect();
        let mut wanted = plan.listeners();
        // UDP listeners stay with worker 0 (one flow table).
        wanted.retain(|k| state::worker() == 0 || k.transport == Transport::Tcp);
        let diff = diff_listeners(&old_keys, &wanted);
        if !wanted.is_empty() {
            // Before the first connection: the set's descriptors are then part of the
            // process's base, not taken from a connection when descriptors are short.
            crate::edge::prepare()
                .map_err(|e| format!("cannot make this worker's epoll set: {e}"))?;
        }

        // Draining UDP listeners whose loop has ended are gone for good (their socket is
        // closed): never revive one of those.
        self.draining_udp.retain(|r| {
            r.udp_control
                .as_ref()
                .is_some_and(|tx| tx.receiver_count() > 0)
        });
        let mut bound = Vec::new();
        for key in &diff.add {
            let revive = (key.transport == Transport::Udp)
                .then(|| {
                    self.draining_udp
                        .iter()
                        .position(|r| r.key.addr == key.addr)
                })
                .flatten();
            let b = match (revive, key.transport) {
                (Some(i), _) => Ok(Bound::Revive(i)),
                (None, Transport::Tcp) => sys::bind_tcp(key.addr, backlog_of(plan, key))
                    .and_then(Async::new)
                    .map(Bound::Tcp),
                (None, Transport::Udp) => sys::bind_udp(key.addr)
                    .and_then(Watched::new)
                    .map(Bound::Udp),
            };
            match b {
                Ok(b) => bound.push((*key, b)),
                Err(e) => {
                    let t = if key.transport == Transport::Tcp {
                        "tcp"
                    } else {
                        "udp"
                    };
                    return Err(format!("cannot listen on {t} {}: {e}", key.addr));
                }
            }
        }

        // Commit: nothing below can fail.
        *self.shared.plan.borrow_mut() = plan.clone();
        let old_engine = self.shared.http.borrow_mut().take();
        if let Some(old) = &old_engine {
            old.stop_checks();
        }
        let engine = plan
            .http
            .clone()
            .map(|h| Rc::new(Engine::new(h, old_engine.as_deref(), &self.shared)));
        *self.shared.http.borrow_mut() = engine;
        self.cert_stamps = self.cert_files();
        self.shared.resolver.set_settings(plan.dns);
        let slots = self.update_slots(plan);

        for (old, new) in &diff.keep {
            let Some(r) = self.running.iter_mut().find(|r| r.key == *old) else {
                continue;
            };
            r.key = *new;
            // The address stays but its job changes (status page, HTTP engine, L4 service):
            // keep the socket, replace the task that serves it.
            if let (Some(l), true) = (r.tcp.clone(), job(old.role) != job(new.role)) {
                let (slot, task) = Self::serve_tcp(&self.shared, l, *new, &slots);
                r.slot = slot;
                r.task = Some(task);
                log::log!(
                    state::leader_level(log::Level::Info),
                    "tcp {}: socket kept, now serving {}",
                    new.addr,
                    job(new.role)
                );
                continue;
            }
            if let (Role::L4(i), Some(cell)) = (new.role, &r.slot)
                && let Some(slot) = slots.get(i)
            {
                *cell.borrow_mut() = slot.clone();
            }
            if let Some(l) = &r.tcp
                && job(old.role) != "the status page"
                && let Err(e) = sys::set_backlog(l.get_ref(), backlog_of(plan, new))
            {
                log::warn!("tcp {}: cannot change backlog: {e}", new.addr);
            }
        }
        for key in &diff.remove {
            let Some(i) = self.running.iter().position(|r| r.key == *key) else {
                continue;
            };
            let r = self.running.swap_remove(i);
            match key.transport {
                Transport::Tcp => {
                    stop(&r);
                    log::log!(
                        state::leader_level(log::Level::Info),
                        "tcp {}: listener removed; open connections continue",
                        key.addr
                    );
                }
                Transport::Udp => {
                    log::info!("udp {}: listener removed; draining its flows", key.addr);
                    if let Some(tx) = &r.udp_control {
                        let _ = tx.try_send(UdpControl::Drain);
                    }
                    self.draining_udp.push(r);
                }
            }
        }
        // Revive indices refer to draining_udp as it was; take them out highest first.
        let mut revive: Vec<(ListenerKey, usize)> = bound
            .iter()
            .filter_map(|(k, b)| {
                if let Bound::Revive(i) = b {
                    Some((*k, *i))
                } else {
                    None
                }
            })
            .collect();
        revive.sort_by_key(|r| std::cmp::Reverse(r.1));
        for (key, i) in revive {
            let mut r = self.draining_udp.swap_remove(i);
            if let Some(tx) = &r.udp_control {
                let _ = tx.try_send(UdpControl::Resume);
            }
            if let (Role::L4(s), Some(cell)) = (key.role, &r.slot)
                && let Some(slot) = slots.get(s)
            {
                *cell.borrow_mut() = slot.clone();
            }
            r.key = key;
            self.running.push(r);
        }
        for (key, b) in bound {
            let slot = match key.role {
                Role::L4(i) => slots.get(i).map(|s| Rc::new(RefCell::new(s.clone()))),
                Role::Status | Role::Http | Role::Https => None,
            };
            match (b, &slot) {
                (Bound::Revive(_), _) => {}
                (Bound::Tcp(l), _) => {
                    let l = Rc::new(l);
                    let (slot, task) = Self::serve_tcp(&self.shared, l.clone(), key, &slots);
                    self.running.push(Running {
                        key,
                        slot,
                        tcp: Some(l),
                        udp_control: None,
                        task: Some(task),
                    });
                }
                (Bound::Udp(u), Some(cell)) => {
                    let (tx, rx) = smol::channel::unbounded();
                    // The loop ends by itself when its control channel closes or, draining,
                    // when its last flow expires.
                    let task = state::spawn(l4::udp::serve(
                        Rc::new(u),
                        key.addr,
                        cell.clone(),
                        rx,
                        self.shared.clone(),
                    ));
                    self.running.push(Running {
                        key,
                        slot,
                        tcp: None,
                        udp_control: Some(tx),
                        task: Some(task),
                    });
                }
                (Bound::Udp(_), None) => {}
            }
        }
        // Draining UDP listeners whose loop has ended are gone for good.
        self.draining_udp.retain(|r| {
            r.udp_control
                .as_ref()
                .is_some_and(|tx| tx.receiver_count() > 0)
        });
        Ok(())
    }

    /// One slot per service of `plan` (by name, so counters survive reloads), in plan order.
    /// Start the task that serves TCP listener `l` in its role; L4 services also get the
    /// slot cell a reload updates.
    fn serve_tcp(
        shared: &Rc<Shared>,
        l: Rc<Async<TcpListener>>,
        key: ListenerKey,
        slots: &[Rc<ServiceSlot>],
    ) -> (Option<SlotCell>, smol::Task<()>) {
        let shared = shared.clone();
        match key.role {
            Role::Status => (None, state::spawn(status::serve(l, shared))),
            Role::Http => (
                None,
                state::spawn(http::server::accept_loop(l, key.addr, false, shared)),
            ),
            Role::Https => (
                None,
                state::spawn(http::server::accept_loop(l, key.addr, true, shared)),
            ),
            Role::L4(i) => {
                // listeners() only names existing services, so the slot is always there.
                let Some(slot) = slots.get(i).cloned() else {
                    return (None, state::spawn(async {}));
                };
                let cell = Rc::new(RefCell::new(slot));
                let task = state::spawn(l4::tcp::accept_loop(l, key.addr, cell.clone(), shared));
                (Some(cell), task)
            }
        }
    }

    fn update_slots(&self, plan: &Plan) -> Vec<Rc<ServiceSlot>> {
        let mut slots = self.shared.slots.borrow_mut();
        let mut out = Vec::new();
        for svc in &plan.l4 {
            let slot = match slots.get(&svc.name) {
                Some(s) => {
                    *s.svc.borrow_mut() = Rc::new(svc.clone());
                    s.clone()
                }
                None => {
                    let stats = self.shared.common.service(&svc.name);
                    let s = Rc::new(ServiceSlot::new(svc.clone(), stats));
                    slots.insert(svc.name.clone(), s.clone());
                    s
                }
            };
            out.push(slot);
        }
        slots.retain(|name, _| plan.l4.iter().any(|s| &s.name == name));
        out
    }

    /// Check the config file; reload when it changed (or always, when `force`).
    /// The running HTTPS apps' certificate files and their stamps now.
    fn cert_files(&self) -> Vec<(PathBuf, Option<FileStamp>)> {
        self.shared.http_engine().map_or_else(Vec::new, |e| {
            e.tls_files()
                .into_iter()
                .map(|p| {
                    let stamp = FileStamp::of(&p).ok();
                    (p, stamp)
                })
                .collect()
        })
    }

    /// A changed certificate or key file reloads the certificates only: new handshakes use
    /// the new ones, open connections are untouched, a broken file keeps its old one. Returns
    /// whether any had changed.
    fn check_certs(&mut self) -> bool {
        let now = self.cert_files();
        if now == self.cert_stamps {
            return false;
        }
        if let Some(engine) = self.shared.http_engine() {
            let changed: Vec<String> = now
                .iter()
                .filter(|f| !self.cert_stamps.contains(f))
                .map(|(p, _)| p.display().to_string())
                .collect();
            log::log!(
                state::leader_level(log::Level::Info),
                "certificate files changed ({}); reloading them",
                changed.join(", ")
            );
            engine.reload_tls();
        }
        self.cert_stamps = self.cert_files();
        true
    }

    async fn check(&mut self, force: bool) {
        if self.check_certs() {
            for f in &self.followers {
                let _ = f.orders.try_send(Order::Certs);
            }
        }
        let stamp = match FileStamp::of(&self.path) {
            Ok(s) => s,
            Err(e) => {
                if !self.missing_reported {
                    log::warn!(
                        "config {}: {e}; keeping the running config",
                        self.path.display()
                    );
                    self.missing_reported = true;
                }
                return;
            }
        };
        self.missing_reported = false;
        if !force && Some(stamp) == self.stamp {
            return;
        }
        self.stamp = Some(stamp);
        let started = Instant::now();
        let generation = self.shared.generation.get();
        let loaded = match config::load(&self.path) {
            Ok(l) => l,
            Err(e) => {
                log::error!("config rejected, still running generation {generation}:\n{e}");
                return;
            }
        };
        for w in &loaded.warnings {
            log::warn!(
                "{}:{}:{}: {}",
                self.path.display(),
                w.line,
                w.col,
                w.message
            );
        }
        let unsupported = loaded.plan.unsupported();
        if !unsupported.is_empty() {
            log::error!(
                "config rejected, still running generation {generation}: {}",
                unsupported.join("; ")
            );
            return;
        }
        for l in loaded.plan.limitations() {
            log::warn!("{l}");
        }
        let plan = Rc::new(loaded.plan);
        if **self.shared.plan.borrow() == *plan && !force {
            log::debug!("config {}: touched but unchanged", self.path.display());
            if self.followers_behind {
                self.catch_up(&plan, generation).await;
            }
            return;
        }
        if plan.workers.threads() != self.shared.common.workers {
            log::warn!(
                "config {}: `workers` = {} takes effect at the next start (running {})",
                self.path.display(),
                plan.workers.threads(),
                self.shared.common.workers
            );
        }
        match self.apply(&plan) {
            Ok(()) => {
                self.shared.generation.set(generation + 1);
                self.catch_up(&plan, generation + 1).await;
                log::info!(
                    "config applied (generation {}) in {:.1} ms: {}",
                    generation + 1,
                    started.elapsed().as_secs_f64() * 1e3,
                    self.describe_listeners()
                );
            }
            Err(e) => {
                // A socket could not be bound (often a port briefly in use): try again at the
                // next poll rather than waiting for the file to change.
                self.stamp = None;
                log::error!(
                    "config rejected, still running generation {generation}: {e}; retrying in {POLL_INTERVAL:?}"
                );
            }
        }
    }

    /// Poll and handle signals until SIGTERM/SIGINT, then drain and return.
    pub async fn run(mut self) -> io::Result<()> {
        let mut signals = match self.signals.take() {
            Some(s) => s,
            None => install_signals()?,
        };
        loop {
            let next = future::or(async { signals.next().await.and_then(Result::ok) }, async {
                Timer::after(POLL_INTERVAL).await;
                None
            })
            .await;
            match next {
                None => self.check(false).await,
                Some(Signal::Hup) => {
                    log::info!("SIGHUP: reloading {}", self.path.display());
                    self.check(true).await;
                }
                Some(Signal::Usr1) => logging::reopen(),
                Some(sig) => {
                    log::info!("{sig:?}: stopping");
                    break;
                }
            }
        }
        self.shutdown(None).await;
        Ok(())
    }

    /// Stop every listener (this worker's, then the others'), drain, return. For a follower,
    /// `told` holds who hears when its listeners are closed and worker 0's drain deadline.
    async fn shutdown(mut self, told: Option<(Sender<()>, Instant)>) {
        let followers = std::mem::take(&mut self.followers);
        let followers_done = || async {
            for f in &followers {
                let _ = f.done.recv().await;
            }
        };
        let open = self
            .shared
            .slots
            .borrow()
            .values()
            .map(|s| s.stats.tcp_active.get())
            .sum::<u64>();
        let deadline = self.shared.plan.borrow().drain_timeout;
        let until = told
            .as_ref()
            .map_or_else(|| Instant::now() + deadline, |t| t.1);
        // Dropping the accept tasks and closing the UDP control channels stops all listeners.
        // UDP loops log their flows' access lines as they end: keep their tasks to await.
        self.running.iter().for_each(stop);
        if let Some((tx, _)) = &told {
            let _ = tx.try_send(());
        }
        for f in &followers {
            let (tx, rx) = smol::channel::bounded(1);
            if f.orders.try_send(Order::Stop(tx, until)).is_ok() {
                let _ = rx.recv().await;
            }
        }
        let mut udp_loops = Vec::new();
        for mut r in self.running.into_iter().chain(self.draining_udp) {
            if r.key.transport == Transport::Udp
                && let Some(t) = r.task.take()
            {
                udp_loops.push(t);
            }
        }
        let flows_logged = async {
            for t in udp_loops {
                t.await;
            }
        };
        future::or(flows_logged, async {
            Timer::after(SHUTDOWN_LOG_GRACE).await;
        })
        .await;
        log::log!(
            state::leader_level(log::Level::Info),
            "draining {open} open connection(s), up to {deadline:?}"
        );
        let drained = future::or(
            async {
                self.shared.drain.wait_idle().await;
                followers_done().await;
                true
            },
            async {
                Timer::at(until).await;
                false
            },
        )
        .await;
        if drained {
            let level = state::leader_level(log::Level::Info);
            log::log!(level, "all connections closed; exiting");
        } else {
            let left = self
                .shared
                .slots
                .borrow()
                .values()
                .map(|s| s.stats.tcp_active.get())
                .sum::<u64>();
            log::log!(
                state::leader_level(log::Level::Warn),
                "drain timeout: closing {left} connection(s); exiting"
            );
            // Let the cut connections write their access lines before the process ends.
            self.shared.drain.cut();
            let grace = async {
                Timer::after(SHUTDOWN_LOG_GRACE).await;
            };
            let idle = async {
                self.shared.drain.wait_idle().await;
                followers_done().await;
            };
            future::or(idle, grace).await;
        }
        for f in followers {
            let _ = f.thread.join();
        }
    }
}

/// What a TCP socket of `role` serves, for logs and for noticing a change of job.
fn job(role: Role) -> &'static str {
    match role {
        Role::L4(_) => "an L4 service",
        Role::Status => "the status page",
        Role::Http => "the HTTP engine",
        Role::Https => "the HTTPS engine",
    }
}

/// Refuse new connections on a TCP listener at once. Its accept task is cancelled when the
/// `Running` is dropped, but the task's future (and its reference to the socket) only goes
/// away when the executor next runs it; without this a connection could slip in after the
/// "removed" log line.
fn stop(r: &Running) {
    if let Some(l) = &r.tcp
        && let Err(e) = sys::stop_listening(l.get_ref())
    {
        log::warn!("tcp {}: cannot stop listening: {e}", r.key.addr);
    }
}

fn backlog_of(plan: &Plan, key: &ListenerKey) -> u32 {
    match key.role {
        Role::L4(i) => plan.l4.get(i).map_or(1024, |s| s.tcp.backlog),
        Role::Status => 64,
        Role::Http | Role::Https => plan.http.as_ref().map_or(1024, |h| h.tcp_listen_backlog),
    }
}
