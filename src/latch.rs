//! A one-way latch of one thread: tasks wait for it to be raised, raising wakes them all and
//! every later wait resolves at once. No IO.
//!
//! Why: an HTTP keep-alive connection waits for "the server is draining" beside every read
//! of a request head, and a connection for "the drain deadline passed" all its life. As a
//! closed channel (async-channel) each wait cost a listener allocated and linked under a
//! lock, and unlinked again, per request; here it is a slot in a vector.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
pub struct Latch {
    raised: Cell<bool>,
    waiting: RefCell<Waiting>,
}

/// Wakers of the waiting tasks, by slot; freed slots are reused.
#[derive(Default)]
struct Waiting {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl Latch {
    pub fn is_raised(&self) -> bool {
        self.raised.get()
    }

    /// Raise the latch: every waiting task is woken.
    pub fn raise(&self) {
        self.raised.set(true);
        let woken: Vec<Waker> = {
            let mut w = self.waiting.borrow_mut();
            w.free.clear();
            w.slots.drain(..).flatten().collect()
        };
        // Outside the borrow: a woken waker may run code that waits again.
        woken.into_iter().for_each(Waker::wake);
    }

    /// Resolves once the latch is raised (at once if it is).
    pub fn wait(self: &Rc<Self>) -> Wait {
        Wait {
            latch: self.clone(),
            slot: None,
        }
    }
}

/// The future of [`Latch::wait`].
pub struct Wait {
    latch: Rc<Latch>,
    slot: Option<usize>,
}

impl Future for Wait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.latch.is_raised() {
            // `raise` emptied the slots.
            self.slot = None;
            return Poll::Ready(());
        }
        let this = &mut *self;
        let mut w = this.latch.waiting.borrow_mut();
        match this.slot.and_then(|i| w.slots.get_mut(i)) {
            Some(Some(waker)) => waker.clone_from(cx.waker()),
            _ => {
                let waker = Some(cx.waker().clone());
                let i = match w.free.pop() {
                    Some(i) => i,
                    None => {
                        w.slots.push(None);
                        w.slots.len() - 1
                    }
                };
                if let Some(slot) = w.slots.get_mut(i) {
                    *slot = waker;
                }
                this.slot = Some(i);
            }
        }
        Poll::Pending
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        let Some(i) = self.slot else { return };
        if self.latch.is_raised() {
            return;
        }
        let mut w = self.latch.waiting.borrow_mut();
        if let Some(slot) = w.slots.get_mut(i) {
            *slot = None;
            w.free.push(i);
        }
    }
}

#[cfg(test)]
#[path = "latch_tests.rs"]
pub(crate) mod tests;
