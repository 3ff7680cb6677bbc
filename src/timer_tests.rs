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
        assert!(matches!(t.0, Kind::Local { at: None, .. }));
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
