//! A worker thread's run loop: runs the executor's tasks and, when none can run, sleeps in
//! one `epoll_wait` on the thread's edge-triggered set ([`crate::edge`]) until a socket
//! there is ready, the first of the thread's timers ([`crate::timer`]) is due, or another
//! thread wakes it. Does IO.
//!
//! Why: async-io's `block_on` sleeps in async-io's reactor, and one pass of that costs five
//! system calls (arming its timerfd, re-arming the timerfd and its wake-up eventfd in its
//! epoll set, the wait itself, reading the eventfd) before the two the nested edge set
//! cost, where one would do; a short relayed connection paid for 0.5-0.8 passes. And
//! while this thread was busy, async-io's own thread took the reactor and woke for the
//! set's events, and woke this thread, for nothing.
//!
//! async-io still serves what is not in the set (UDP sockets, the status page's listener,
//! the signal pipe, DNS): its own thread waits in its reactor, and the wakers it calls reach
//! this thread through the eventfd in the set.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use rustix::event::{EventfdFlags, eventfd};

use crate::edge::LoopSet;
use crate::timer;

/// The loop runs tasks (a wake needs no system call).
const RUNNING: u8 = 0;
/// The loop sleeps, or is about to, in the set (a wake writes the eventfd).
const PARKED: u8 = 1;
/// A wake came since the loop last looked for tasks: it does not sleep.
const NOTIFIED: u8 = 2;

/// The pause before the loop waits again after the set failed (out of memory).
const RETRY: Duration = Duration::from_millis(50);

/// The longest the loop sleeps at once, even when its first timer is further away (a
/// 30-day idle timeout): the plain epoll_wait(2) takes at most 2^31 ms, and a longer wait
/// would need epoll_pwait2(2), which kernels before 5.11 and some seccomp profiles refuse.
/// Waking early costs one pass.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// How long to sleep when the first timer is due at `next` (none: no timer).
fn sleep_for(next: Option<Instant>, now: Instant) -> Duration {
    next.map_or(MAX_SLEEP, |at| {
        at.saturating_duration_since(now).min(MAX_SLEEP)
    })
}

/// What wakes a run loop: the waker of the executor's run future. Called on the loop's
/// own thread (a socket's task woken by the set), it only notes the wake; called on another
/// thread while the loop sleeps, it writes the eventfd in the loop's set.
pub(crate) struct Unpark {
    state: AtomicU8,
    eventfd: OwnedFd,
}

impl Unpark {
    pub(crate) fn new() -> io::Result<Unpark> {
        Ok(Unpark {
            state: AtomicU8::new(RUNNING),
            eventfd: eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?,
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.eventfd.as_fd()
    }

    /// The loop is awake (it came out of the set, or is about to look for tasks): wakes
    /// need no system call until it sleeps again. A store, not a swap: a NOTIFIED it
    /// overwrites needs no record, as the loop polls the executor next, and a task woken
    /// from another thread is in the executor's queue before its waker runs.
    pub(crate) fn running(&self) {
        self.state.store(RUNNING, Ordering::Release);
    }
}

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.state.swap(NOTIFIED, Ordering::AcqRel) == PARKED {
            // Fails only when the counter is full, and then a wake is pending anyway.
            let _ = rustix::io::write(&self.eventfd, &1u64.to_ne_bytes());
        }
    }
}

/// Run `fut` on this thread until it completes, with `ex`'s tasks, sleeping in the
/// thread's set between them. Without a set (it could not be made: out of descriptors or
/// memory at start), async-io's `block_on` runs them, and sockets that need the set fail.
pub fn block_on<T>(ex: &smol::LocalExecutor<'_>, fut: impl Future<Output = T>) -> T {
    let set = match LoopSet::open() {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot make this worker's epoll set: {e}; TCP sockets will fail");
            return async_io::block_on(ex.run(fut));
        }
    };
    let unpark = set.unpark().clone();
    let waker = Waker::from(unpark.clone());
    let mut cx = Context::from_waker(&waker);
    let _timers = timer::Local::on();
    let mut run = pin!(ex.run(fut));
    let mut wake = Vec::new();
    let mut failing = false;
    loop {
        unpark.running();
        if let Poll::Ready(v) = run.as_mut().poll(&mut cx) {
            return v;
        }
        // No task can run: sleep until the first timer, unless a wake came meanwhile (or
        // the executor yielded after a long run of tasks), when the set is only looked at.
        let sleep = unpark
            .state
            .compare_exchange(RUNNING, PARKED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        let timeout = if sleep {
            sleep_for(timer::next(), Instant::now())
        } else {
            Duration::ZERO
        };
        match set.wait(timeout) {
            Ok(()) => failing = false,
            // Nothing else would wake this thread's sockets: keep trying, and say so once
            // per spell.
            Err(e) => {
                if !failing {
                    log::error!("waiting in the worker's epoll set failed: {e}; retrying");
                }
                failing = true;
                std::thread::sleep(RETRY);
            }
        }
        unpark.running();
        if let Some(at) = timer::next() {
            let now = Instant::now();
            if at <= now {
                timer::fire(now, &mut wake);
            }
        }
    }
}

#[cfg(test)]
#[path = "runloop_tests.rs"]
mod tests;
