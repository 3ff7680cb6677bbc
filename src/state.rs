//! Runtime state shared by the supervisor, the listeners and the status page on the one
//! event-loop thread: the running plan, per-service slots and counters, per-target load,
//! the DNS resolver and the drain tracker. No IO of its own.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use smol::channel::{Receiver, Sender};

use crate::dns::Resolver;
use crate::latch::Latch;
use crate::plan::{L4Service, Plan, Target};

thread_local! {
    static EXECUTOR: smol::LocalExecutor<'static> = const { smol::LocalExecutor::new() };
    /// Which worker this thread is (set by [`Shared::new`], which runs on it).
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Which worker thread this is: 0 reads the config and takes the signals.
pub fn worker() -> usize {
    WORKER.with(Cell::get)
}

/// `""` on worker 0, `" (worker N)"` on the others: for log lines that each worker writes
/// about its own view (health of upstreams it talks to).
pub fn worker_tag() -> String {
    match worker() {
        0 => String::new(),
        n => format!(" (worker {n})"),
    }
}

/// `level` on worker 0; debug on the others, for lines that would repeat worker 0's.
pub fn leader_level(level: log::Level) -> log::Level {
    if worker() == 0 {
        level
    } else {
        log::Level::Debug
    }
}

/// Spawn a task on the event-loop thread's executor.
pub fn spawn<T: 'static>(fut: impl Future<Output = T> + 'static) -> smol::Task<T> {
    EXECUTOR.with(|ex| ex.spawn(fut))
}

/// Run `fut` (and every task it spawns) on this thread until it completes.
pub fn block_on<T: 'static>(fut: impl Future<Output = T> + 'static) -> T {
    // A worker thread caches freed small blocks for its own next allocations while it runs.
    let _cache = crate::sys::alloc::ThreadCache::on();
    // `fut` runs as a task: the future `block_on` itself runs is polled at every wake of
    // the thread, which for the supervisor's would mean a read of its signal pipe each time
    // any connection's task is woken; a task is polled only when its own waker fires.
    EXECUTOR.with(|ex| crate::runloop::block_on(ex, ex.spawn(fut)))
}

/// Run `test` as a task of this thread's executor, as a worker runs its connections (a
/// task is polled only when woken, unlike the future `block_on` itself runs, which is
/// polled at every wake of the executor); a wait that is never woken fails the test after
/// ten seconds instead of hanging the suite.
#[cfg(test)]
pub fn run_as_task<T: 'static>(test: impl Future<Output = T> + 'static) -> T {
    block_on(futures_lite::future::or(spawn(test), async {
        crate::timer::Timer::after(std::time::Duration::from_secs(10)).await;
        panic!("a wait was never woken");
    }))
}

/// A counter every worker thread updates (relaxed: a statistic or a limit, never a lock).
#[derive(Default, Debug)]
pub struct Count(AtomicU64);

impl Count {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Take one more when fewer than `max` are taken; false (and nothing taken) otherwise.
    pub fn take_below(&self, max: u64) -> bool {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Give back `n` taken (never below zero).
    pub fn give(&self, n: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
    }
}

/// Live counters of one L4 service, shared by the workers; they survive reloads (keyed by
/// service name in [`Common`]).
#[derive(Default)]
pub struct ServiceStats {
    pub tcp_active: Count,
    pub tcp_total: Count,
    pub tcp_refused: Count,
    pub tcp_failed: Count,
    pub udp_flows: Count,
    pub udp_total: Count,
    pub udp_dropped: Count,
    pub bytes_up: Count,
    pub bytes_down: Count,
}

/// What the worker threads share: the counters that limits are enforced against and the
/// status page shows. Each worker has its own [`Shared`] (plan, executor, sockets).
#[derive(Default)]
pub struct Common {
    /// Worker threads running (set once at start).
    pub workers: usize,
    services: Mutex<HashMap<String, Arc<ServiceStats>>>,
    pub http: Arc<crate::http::engine::HttpStats>,
    /// Tickets and sessions of the HTTPS apps without mTLS, made by the first worker that
    /// needs them.
    pub tls_resumption: std::sync::OnceLock<crate::tls::server::Resumption>,
    /// The process's descriptor supply, as the listeners have found it.
    pub fds: crate::fds::Descriptors,
}

impl Common {
    pub fn new(workers: usize) -> Arc<Self> {
        Arc::new(Common {
            workers,
            ..Common::default()
        })
    }

    /// The counters of the L4 service `name` (made on first use).
    pub fn service(&self, name: &str) -> Arc<ServiceStats> {
        let mut all = self.services.lock().unwrap_or_else(PoisonError::into_inner);
        all.entry(name.to_owned()).or_default().clone()
    }
}

pub fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().saturating_add(n));
}

/// The current definition of one L4 service plus what outlives a reload of it.
pub struct ServiceSlot {
    pub svc: RefCell<Rc<L4Service>>,
    pub stats: Arc<ServiceStats>,
    /// Round-robin counters per route name.
    rounds: RefCell<HashMap<String, usize>>,
}

impl ServiceSlot {
    pub fn new(svc: L4Service, stats: Arc<ServiceStats>) -> Self {
        ServiceSlot {
            svc: RefCell::new(Rc::new(svc)),
            stats,
            rounds: RefCell::default(),
        }
    }

    pub fn current(&self) -> Rc<L4Service> {
        self.svc.borrow().clone()
    }

    /// The route's round-robin counter, post-incremented.
    pub fn next_round(&self, route: &str) -> usize {
        let mut rounds = self.rounds.borrow_mut();
        let r = rounds.entry(route.to_owned()).or_insert(0);
        let now = *r;
        *r = r.wrapping_add(1);
        now
    }
}

/// Counts open connections; shutdown waits until every [`DrainGuard`] is dropped, and when
/// the drain deadline passes, tells the remaining ones to close.
pub struct DrainTracker {
    tx: RefCell<Option<Sender<()>>>,
    rx: Receiver<()>,
    /// Raised at the drain deadline.
    cut: Rc<Latch>,
    /// Raised when draining starts.
    stop: Rc<Latch>,
}

/// Held by each open TCP connection.
pub struct DrainGuard {
    _tx: Option<Sender<()>>,
}

impl DrainTracker {
    fn new() -> Self {
        let (tx, rx) = smol::channel::bounded(1);
        DrainTracker {
            tx: RefCell::new(Some(tx)),
            rx,
            cut: Rc::default(),
            stop: Rc::default(),
        }
    }

    /// Resolves when the drain deadline has passed ([`DrainTracker::cut`]).
    pub fn cut_off(&self) -> impl Future<Output = ()> + 'static {
        self.cut.wait()
    }

    /// Resolves when draining starts: idle keep-alive connections close then.
    pub fn stopping(&self) -> impl Future<Output = ()> + 'static {
        self.stop.wait()
    }

    /// Draining has started: finish the request in hand, take no other.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_raised()
    }

    /// Tell every open connection to close now.
    pub fn cut(&self) {
        self.cut.raise();
    }

    pub fn guard(&self) -> DrainGuard {
        DrainGuard {
            _tx: self.tx.borrow().clone(),
        }
    }

    /// Resolves once every guard handed out so far is dropped.
    pub async fn wait_idle(&self) {
        self.tx.borrow_mut().take();
        self.stop.raise();
        // No one sends: recv() returns Err once the last sender is gone.
        let _ = self.rx.recv().await;
    }
}

/// Everything the event loop shares.
pub struct Shared {
    pub started: Instant,
    pub config_path: String,
    pub plan: RefCell<Rc<Plan>>,
    pub generation: Cell<u64>,
    pub slots: RefCell<HashMap<String, Rc<ServiceSlot>>>,
    pub target_load: RefCell<HashMap<Target, usize>>,
    pub resolver: Resolver,
    pub drain: DrainTracker,
    pub common: Arc<Common>,
    /// The HTTP engine of the running plan (`None` without HTTP listeners).
    pub http: RefCell<Option<Rc<crate::http::engine::Engine>>>,
}

impl Shared {
    pub fn new(plan: Plan, config_path: String, common: Arc<Common>, worker: usize) -> Rc<Self> {
        WORKER.with(|w| w.set(worker));
        Rc::new(Shared {
            started: Instant::now(),
            config_path,
            resolver: Resolver::new(plan.dns),
            plan: RefCell::new(Rc::new(plan)),
            generation: Cell::new(0),
            slots: RefCell::default(),
            target_load: RefCell::default(),
            drain: DrainTracker::new(),
            common,
            http: RefCell::default(),
        })
    }

    /// The HTTP engine requests are served with right now.
    pub fn http_engine(&self) -> Option<Rc<crate::http::engine::Engine>> {
        self.http.borrow().clone()
    }

    pub fn load_of(&self, target: &Target) -> usize {
        self.target_load.borrow().get(target).copied().unwrap_or(0)
    }

    /// Count one open connection to `target` until the returned guard drops.
    pub fn hold_target(self: &Rc<Self>, target: &Target) -> TargetHold {
        *self
            .target_load
            .borrow_mut()
            .entry(target.clone())
            .or_insert(0) += 1;
        TargetHold {
            shared: self.clone(),
            target: target.clone(),
        }
    }
}

pub struct TargetHold {
    shared: Rc<Shared>,
    target: Target,
}

impl Drop for TargetHold {
    fn drop(&mut self) {
        let mut load = self.shared.target_load.borrow_mut();
        if let Some(n) = load.get_mut(&self.target) {
            *n -= 1;
            if *n == 0 {
                load.remove(&self.target);
            }
        }
    }
}
