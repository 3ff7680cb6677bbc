//! Timers of a worker thread's run loop ([`crate::runloop`]). No IO.
//!
//! Why: async-io keeps its timers in its reactor, and a timer made or dropped on a thread
//! that is not the one waiting in that reactor wakes it (a write to its eventfd, a pass of
//! its loop). Every proxied request and relayed connection sets a timeout or two. Here a
//! worker's timers are a sorted map of its own; the run loop sleeps in its epoll set until
//! the first one is due and then wakes the tasks whose timers are.
//!
//! A timer made on a thread that runs no run loop (helper threads, tests that use
//! async-io's `block_on`) is async-io's, so code that sleeps works on any thread.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

thread_local! {
    /// Whether a run loop on this thread fires [`TIMERS`].
    static LOCAL: Cell<bool> = const { Cell::new(false) };
    static TIMERS: RefCell<Timers> = const {
        RefCell::new(Timers { next: 0, waiting: BTreeMap::new() })
    };
}

/// The waiting timers of one thread, by deadline; the number tells apart timers due at the
/// same instant.
struct Timers {
    next: u64,
    waiting: BTreeMap<(Instant, u64), Waker>,
}

/// A future that resolves at a deadline (to the deadline).
pub struct Timer(Kind);

enum Kind {
    /// Fired by this thread's run loop. `at` none: never (a deadline past what `Instant`
    /// can hold); `id` set once the timer waits in [`TIMERS`].
    Local {
        at: Option<Instant>,
        id: Option<u64>,
        /// Only this thread's loop fires it, and only this thread may drop it.
        _thread: PhantomData<Rc<()>>,
    },
    Io(async_io::Timer),
}

impl Timer {
    /// Resolves `d` from now.
    pub fn after(d: Duration) -> Timer {
        match Instant::now().checked_add(d) {
            Some(at) => Timer::at(at),
            None if LOCAL.with(Cell::get) => Timer::local(None),
            None => Timer(Kind::Io(async_io::Timer::never())),
        }
    }

    /// Resolves at `at` (at once if that has passed).
    pub fn at(at: Instant) -> Timer {
        if LOCAL.with(Cell::get) {
            Timer::local(Some(at))
        } else {
            Timer(Kind::Io(async_io::Timer::at(at)))
        }
    }

    fn local(at: Option<Instant>) -> Timer {
        Timer(Kind::Local {
            at,
            id: None,
            _thread: PhantomData,
        })
    }
}

impl Future for Timer {
    type Output = Instant;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Instant> {
        let (at, id) = match &mut self.0 {
            Kind::Io(t) => return Pin::new(t).poll(cx),
            Kind::Local { at: None, .. } => return Poll::Pending,
            Kind::Local {
                at: Some(at), id, ..
            } => (*at, id),
        };
        if Instant::now() >= at {
            if let Some(id) = id.take() {
                TIMERS.with(|t| t.borrow_mut().waiting.remove(&(at, id)));
            }
            return Poll::Ready(at);
        }
        TIMERS.with(|t| {
            let mut t = t.borrow_mut();
            let key = match *id {
                Some(n) => (at, n),
                None => {
                    let n = t.next;
                    t.next = n.wrapping_add(1);
                    *id = Some(n);
                    (at, n)
                }
            };
            match t.waiting.get_mut(&key) {
                Some(w) if w.will_wake(cx.waker()) => {}
                Some(w) => w.clone_from(cx.waker()),
                None => {
                    t.waiting.insert(key, cx.waker().clone());
                }
            }
        });
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Kind::Local {
            at: Some(at),
            id: Some(id),
            ..
        } = self.0
        {
            // The thread's map may be gone already when the thread itself ends.
            let _ = TIMERS.try_with(|t| t.borrow_mut().waiting.remove(&(at, id)));
        }
    }
}

/// While it lives, timers made on this thread are the run loop's (see [`next`], [`fire`]).
pub(crate) struct Local {
    was: bool,
}

impl Local {
    pub(crate) fn on() -> Local {
        Local {
            was: LOCAL.with(|l| l.replace(true)),
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        LOCAL.with(|l| l.set(self.was));
    }
}

/// The first deadline of this thread's waiting timers.
pub(crate) fn next() -> Option<Instant> {
    TIMERS.with(|t| t.borrow().waiting.first_key_value().map(|(k, _)| k.0))
}

/// Wake the tasks whose timers are due at `now` (`wake`: room for their wakers, kept
/// between calls). The timers leave the map; each resolves when its task polls it.
pub(crate) fn fire(now: Instant, wake: &mut Vec<Waker>) {
    TIMERS.with(|t| {
        let mut t = t.borrow_mut();
        while let Some(entry) = t.waiting.first_entry() {
            if entry.key().0 > now {
                break;
            }
            wake.push(entry.remove());
        }
    });
    // Outside the borrow: a woken task may run code that makes timers.
    wake.drain(..).for_each(Waker::wake);
}

#[cfg(test)]
#[path = "timer_tests.rs"]
mod tests;
