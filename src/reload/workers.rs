//! The other worker threads (`workers` > 1): each has its own executor, copy of the plan and
//! SO_REUSEPORT sockets; worker 0's supervisor tells them every plan it applies, certificate
//! reloads and when to stop. Does IO (through the supervisor it runs).

use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use smol::channel::{Receiver, Sender};

use super::{POLL_INTERVAL, Supervisor};
use crate::plan::Plan;
use crate::state::{self, Shared};

/// What worker 0's supervisor tells the other workers.
pub(super) enum Order {
    /// Apply this plan (its TCP listeners) as this generation; answer whether every new
    /// socket was bound.
    Apply(Box<Plan>, u64, Sender<Result<(), String>>),
    /// Certificate files changed: load them.
    Certs,
    /// Stop listening (say so on the sender), drain until the instant given (worker 0's
    /// drain deadline), end the thread.
    Stop(Sender<()>, Instant),
}

/// Another worker thread: its own executor, sockets (SO_REUSEPORT) and copy of the plan,
/// and the process-wide counters of [`state::Common`]. It reads no file and takes no
/// signal; UDP listeners stay with worker 0 (one flow table, exact per-source caps).
pub(super) struct Follower {
    pub(super) orders: Sender<Order>,
    /// Closed when the thread has drained and ends.
    pub(super) done: Receiver<()>,
    pub(super) thread: std::thread::JoinHandle<()>,
}

impl Follower {
    /// Start worker `worker` on `plan`; returns once its sockets are bound.
    pub(super) fn spawn(
        worker: usize,
        plan: &Plan,
        shared: &Shared,
        path: &Path,
    ) -> Result<Self, String> {
        let (orders, inbox) = smol::channel::unbounded();
        let (done_tx, done) = smol::channel::bounded::<()>(1);
        let (started_tx, started) = std::sync::mpsc::channel();
        let (plan, common) = (plan.clone(), shared.common.clone());
        let (file, path) = (shared.config_path.clone(), path.to_owned());
        let thread = std::thread::Builder::new()
            .name(format!("sluice-worker-{worker}"))
            .spawn(move || {
                let _done = done_tx;
                let mut me = Supervisor::new(Shared::new(plan, file, common, worker), path);
                let plan = me.shared.plan.borrow().clone();
                let started = me.apply(&plan);
                let ok = started.is_ok();
                let _ = started_tx.send(started);
                if ok {
                    me.shared.generation.set(1);
                    state::block_on(me.follow(inbox));
                }
            })
            .map_err(|e| format!("worker {worker}: cannot start its thread: {e}"))?;
        match started.recv() {
            Ok(Ok(())) => Ok(Follower {
                orders,
                done,
                thread,
            }),
            Ok(Err(e)) => Err(format!("worker {worker}: {e}")),
            Err(_) => Err(format!("worker {worker} ended while starting")),
        }
    }
}

impl Supervisor {
    /// A follower that fails (a socket it could not bind) keeps its previous config and is
    /// offered this one again at the next poll, like worker 0 after a failed bind.
    pub(super) async fn catch_up(&mut self, plan: &Plan, generation: u64) {
        let mut behind = false;
        for (i, f) in self.followers.iter().enumerate() {
            let (tx, rx) = smol::channel::bounded(1);
            let order = Order::Apply(Box::new(plan.clone()), generation, tx);
            if f.orders.try_send(order).is_err() {
                continue;
            }
            if let Ok(Err(e)) = rx.recv().await {
                behind = true;
                log::error!(
                    "worker {}: {e}; it keeps serving the previous config, retrying in {POLL_INTERVAL:?}",
                    i + 1
                );
            }
        }
        if behind {
            self.stamp = None;
        } else if self.followers_behind {
            log::info!("every worker now serves generation {generation}");
        }
        self.followers_behind = behind;
    }

    /// A worker other than 0: do as told until told to stop (or until worker 0 is gone).
    pub(super) async fn follow(mut self, inbox: Receiver<Order>) {
        while let Ok(order) = inbox.recv().await {
            match order {
                Order::Apply(plan, generation, done) => {
                    let result = self.apply(&Rc::new(*plan));
                    if result.is_ok() {
                        self.shared.generation.set(generation);
                    }
                    let _ = done.try_send(result);
                }
                Order::Certs => {
                    self.check_certs();
                }
                Order::Stop(stopped, until) => {
                    self.shutdown(Some((stopped, until))).await;
                    return;
                }
            }
        }
        self.shutdown(None).await;
    }
}
