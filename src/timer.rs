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

/// A future that resolves at a deadline (to the deadline). It can be set again, resolved
/// or not ([`Timer::set_after`]), which is how a connection keeps one timer for all its
/// reads instead of making one per read.
pub struct Timer(Kind);

enum Kind {
    /// Fired by this thread's run loop.
    Local {
        /// When the timer resolves; none: never (a deadline past what `Instant` can hold).
        due: Option<Instant>,
        /// Its place in [`TIMERS`] while it waits there, at `due` or earlier: set again to a
        /// later deadline, the timer keeps its place, and when that comes (early) the next
        /// poll moves it to the new `due`. A connection that reads again and again moves its
        /// read timer in the map once per timeout, not once per read.
        entry: Option<Entry>,
        /// Only this thread's loop fires it, and only this thread may drop it.
        _thread: PhantomData<Rc<()>>,
    },
    Io(async_io::Timer),
}

/// A timer's key in [`TIMERS`] and the waker it put there.
struct Entry {
    at: Instant,
    id: u64,
    waker: Waker,
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

    /// Never resolves (until set).
    pub fn never() -> Timer {
        if LOCAL.with(Cell::get) {
            Timer::local(None)
        } else {
            Timer(Kind::Io(async_io::Timer::never()))
        }
    }

    fn local(due: Option<Instant>) -> Timer {
        Timer(Kind::Local {
            due,
            entry: None,
            _thread: PhantomData,
        })
    }

    /// Resolve `d` from now instead (again, if it had resolved).
    pub fn set_after(&mut self, d: Duration) {
        match &mut self.0 {
            Kind::Io(t) => {
                t.set_after(d);
            }
            Kind::Local { due, entry, .. } => {
                *due = Instant::now().checked_add(d);
                // A place later than the new deadline would fire too late: give it up.
                if let Some(e) = entry.take_if(|e| due.is_none_or(|d| e.at > d)) {
                    remove(&e);
                }
            }
        }
    }

    /// Let go of the waker of the task that last waited on this timer, keeping the timer's
    /// place (a pooled connection's read timer: the next task to read puts its own waker
    /// there). Until then, a place that comes due wakes no one.
    pub fn forget_waker(&mut self) {
        let Kind::Local { entry: Some(e), .. } = &mut self.0 else {
            return;
        };
        let noop = Waker::noop();
        if e.waker.will_wake(noop) {
            return;
        }
        e.waker.clone_from(noop);
        TIMERS.with(|t| {
            if let Some(w) = t.borrow_mut().waiting.get_mut(&(e.at, e.id)) {
                w.clone_from(noop);
            }
        });
    }
}

fn remove(e: &Entry) {
    // The thread's map may be gone already when the thread itself ends.
    let _ = TIMERS.try_with(|t| t.borrow_mut().waiting.remove(&(e.at, e.id)));
}

impl Future for Timer {
    type Output = Instant;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Instant> {
        let (due, entry) = match &mut self.0 {
            Kind::Io(t) => return Pin::new(t).poll(cx),
            Kind::Local { due: None, .. } => return Poll::Pending,
            Kind::Local {
                due: Some(due),
                entry,
                ..
            } => (*due, entry),
        };
        let now = Instant::now();
        if now >= due {
            if let Some(e) = entry.take() {
                remove(&e);
            }
            return Poll::Ready(due);
        }
        match entry {
            // Still waiting in the map (`fire` takes only entries due by its `now`, which
            // is not past this one).
            Some(e) if e.at > now => {
                if !e.waker.will_wake(cx.waker()) {
                    e.waker.clone_from(cx.waker());
                    TIMERS.with(|t| {
                        if let Some(w) = t.borrow_mut().waiting.get_mut(&(e.at, e.id)) {
                            w.clone_from(cx.waker());
                        }
                    });
                }
            }
            // None yet, or an early place whose time came (fired, or about to be).
            _ => {
                if let Some(e) = entry.take() {
                    remove(&e);
                }
                let id = TIMERS.with(|t| {
                    let mut t = t.borrow_mut();
                    let id = t.next;
                    t.next = id.wrapping_add(1);
                    t.waiting.insert((due, id), cx.waker().clone());
                    id
                });
                *entry = Some(Entry {
                    at: due,
                    id,
                    waker: cx.waker().clone(),
                });
            }
        }
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let Kind::Local { entry: Some(e), .. } = &self.0 {
            remove(e);
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
