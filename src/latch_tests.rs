use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Wake;

use super::*;

/// A waker that counts its wakes (and, through its `Arc`, who holds it); the timer tests use
/// it too.
pub(crate) struct Count(pub(crate) AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

pub(crate) fn counter() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count(AtomicUsize::new(0)));
    (count.clone(), Waker::from(count))
}

fn poll(wait: &mut Wait, waker: &Waker) -> Poll<()> {
    Pin::new(wait).poll(&mut Context::from_waker(waker))
}

#[test]
fn raising_wakes_every_waiting_task_once_and_later_waits_resolve_at_once() {
    let latch = Rc::new(Latch::default());
    let (a, wa) = counter();
    let (b, wb) = counter();
    let mut first = latch.wait();
    let mut second = latch.wait();
    assert!(poll(&mut first, &wa).is_pending());
    assert!(poll(&mut second, &wb).is_pending());
    // Polled again (woken by something else): still one slot, the same waker.
    assert!(poll(&mut first, &wa).is_pending());
    assert_eq!(latch.waiting.borrow().slots.len(), 2);
    latch.raise();
    assert_eq!(
        (a.0.load(Ordering::SeqCst), b.0.load(Ordering::SeqCst)),
        (1, 1)
    );
    assert!(poll(&mut first, &wa).is_ready());
    assert!(poll(&mut second, &wb).is_ready());
    assert!(poll(&mut latch.wait(), &wa).is_ready());
    assert!(latch.waiting.borrow().slots.is_empty());
}

#[test]
fn a_dropped_wait_frees_its_slot_and_is_not_woken() {
    let latch = Rc::new(Latch::default());
    let (a, wa) = counter();
    let (b, wb) = counter();
    for _ in 0..1000 {
        let mut gone = latch.wait();
        assert!(poll(&mut gone, &wa).is_pending());
    }
    // A thousand waits one after another (a keep-alive connection's requests) used one slot.
    assert_eq!(latch.waiting.borrow().slots.len(), 1);
    let mut kept = latch.wait();
    assert!(poll(&mut kept, &wb).is_pending());
    latch.raise();
    assert_eq!(a.0.load(Ordering::SeqCst), 0);
    assert_eq!(b.0.load(Ordering::SeqCst), 1);
}

#[test]
fn the_latest_waker_is_the_one_woken() {
    let latch = Rc::new(Latch::default());
    let (a, wa) = counter();
    let (b, wb) = counter();
    let mut wait = latch.wait();
    assert!(poll(&mut wait, &wa).is_pending());
    // The task moved (another executor's waker): the new waker replaces the old.
    assert!(poll(&mut wait, &wb).is_pending());
    latch.raise();
    assert_eq!(a.0.load(Ordering::SeqCst), 0);
    assert_eq!(b.0.load(Ordering::SeqCst), 1);
}
