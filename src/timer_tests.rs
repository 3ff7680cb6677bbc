//! Unit tests of the run loop's timers: order, cancellation, far deadlines, and timers made
//! on threads without a run loop.

use std::cell::RefCell;
use std::rc::Rc;

use futures_lite::future::poll_once;

use super::*;

/// How many timers wait in this thread's map.
fn waiting() -> usize {
    TIMERS.with(|t| t.borrow().waiting.len())
}

#[test]
fn timers_fire_in_deadline_order_and_not_before_their_deadlines() {
    let order = crate::state::run_as_task(async {
        let start = Instant::now();
        let order = Rc::new(RefCell::new(Vec::new()));
        let tasks: Vec<_> = [30u64, 10, 20]
            .into_iter()
            .map(|ms| {
                let order = order.clone();
                crate::state::spawn(async move {
                    let at = Timer::after(Duration::from_millis(ms)).await;
                    assert!(Instant::now() >= at, "resolved before its deadline");
                    assert!(at >= start + Duration::from_millis(ms));
                    order.borrow_mut().push(ms);
                })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        order.take()
    });
    assert_eq!(order, [10, 20, 30]);
}

#[test]
fn a_dropped_timer_leaves_the_map() {
    crate::state::run_as_task(async {
        let before = waiting();
        let mut t = Timer::after(Duration::from_secs(60));
        assert!(poll_once(&mut t).await.is_none());
        assert_eq!(waiting(), before + 1, "a waiting timer is in the map");
        assert!(poll_once(&mut t).await.is_none());
        assert_eq!(waiting(), before + 1, "polled again, still one entry");
        drop(t);
        assert_eq!(waiting(), before);
    });
}

#[test]
fn a_deadline_past_what_instant_holds_never_fires() {
    crate::state::run_as_task(async {
        let mut t = Timer::after(Duration::MAX);
        assert!(matches!(t.0, Kind::Local { due: None, .. }));
        assert!(poll_once(&mut t).await.is_none());
    });
}

#[test]
fn a_timer_made_without_a_run_loop_is_async_ios_and_fires() {
    let t = Timer::after(Duration::from_millis(5));
    assert!(matches!(t.0, Kind::Io(_)));
    let at = async_io::block_on(t);
    assert!(Instant::now() >= at);
}

#[test]
fn a_due_timer_resolves_when_polled_even_before_the_loop_fires_it() {
    crate::state::run_as_task(async {
        let mut t = Timer::at(Instant::now());
        assert!(poll_once(&mut t).await.is_some());
    });
}

/// Where `t` waits in this thread's map (checked to be there), if it does.
fn place(t: &Timer) -> Option<Instant> {
    let Kind::Local { entry, .. } = &t.0 else {
        panic!("not a run-loop timer");
    };
    let e = entry.as_ref()?;
    TIMERS.with(|m| assert!(m.borrow().waiting.contains_key(&(e.at, e.id)), "entry gone"));
    Some(e.at)
}

#[test]
fn a_timer_set_later_keeps_its_place_and_resolves_at_the_new_deadline() {
    crate::state::run_as_task(async {
        let mut t = Timer::after(Duration::from_millis(20));
        assert!(poll_once(&mut t).await.is_none());
        let first = place(&t).expect("waits");
        let before = waiting();
        // Read after read: the deadline moves, the place in the map does not.
        t.set_after(Duration::from_millis(60));
        assert!(poll_once(&mut t).await.is_none());
        assert_eq!(place(&t), Some(first));
        assert_eq!(waiting(), before);
        let start = Instant::now();
        let at = (&mut t).await;
        assert!(Instant::now() >= at, "resolved before its deadline");
        assert!(
            at >= start + Duration::from_millis(40),
            "resolved at the old place"
        );
        assert_eq!(place(&t), None);
    });
}

#[test]
fn a_timer_set_earlier_moves_to_the_earlier_deadline() {
    crate::state::run_as_task(async {
        let mut t = Timer::after(Duration::from_secs(60));
        assert!(poll_once(&mut t).await.is_none());
        let far = place(&t).expect("waits");
        t.set_after(Duration::from_millis(5));
        assert_eq!(place(&t), None, "the later place is given up");
        assert!(poll_once(&mut t).await.is_none());
        assert!(place(&t).expect("waits again") < far);
        let at = (&mut t).await;
        assert!(Instant::now() >= at);
        assert_eq!(place(&t), None);
    });
}

#[test]
fn a_resolved_timer_set_again_resolves_again() {
    crate::state::run_as_task(async {
        let mut t = Timer::after(Duration::from_millis(1));
        let first = (&mut t).await;
        t.set_after(Duration::from_millis(5));
        assert!(
            poll_once(&mut t).await.is_none(),
            "resolved at once after being set"
        );
        let second = (&mut t).await;
        assert!(second >= first + Duration::from_millis(5));
        assert_eq!(place(&t), None);
    });
}

#[test]
fn a_forgotten_waker_is_let_go_and_the_timer_keeps_its_place() {
    crate::state::run_as_task(async {
        let (task, waker) = crate::latch::tests::counter();
        let mut t = Timer::after(Duration::from_millis(5));
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut t).poll(&mut cx).is_pending());
        let at = place(&t).expect("waits");
        assert_eq!(
            std::sync::Arc::strong_count(&task),
            4,
            "ours, the waker, the map, the timer"
        );
        t.forget_waker();
        assert_eq!(
            std::sync::Arc::strong_count(&task),
            2,
            "ours and the waker only"
        );
        assert_eq!(place(&t), Some(at));
        // Its place comes due and wakes no one; the next waiter is woken in time.
        let resolved = (&mut t).await;
        assert!(resolved >= at);
        assert_eq!(task.0.load(std::sync::atomic::Ordering::SeqCst), 0);
    });
}
