//! Unit tests of the run loop: wakes from other threads reach it while it sleeps, and
//! wakes from its own thread cost no write to its eventfd.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use futures_lite::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::edge::EdgeStream;

#[test]
fn a_wake_from_another_thread_reaches_the_sleeping_loop() {
    let got = crate::state::run_as_task(async {
        let unpark = LoopSet::open().unwrap().unpark().clone();
        let (tx, rx) = smol::channel::bounded(1);
        let sender = std::thread::spawn(move || {
            // Send only once the loop sleeps in the set: the send's wake must then go
            // through the eventfd (the loop's only other way out is the timer below).
            while unpark.state.load(Ordering::Acquire) != PARKED {
                std::thread::yield_now();
            }
            tx.send_blocking(7u8).unwrap();
        });
        // The timer first: once it has fired, a message that came meanwhile does not count
        // (it may have been found only because the timer woke the loop).
        let got = futures_lite::future::or(
            async {
                crate::timer::Timer::after(Duration::from_secs(5)).await;
                None
            },
            async { rx.recv().await.ok() },
        )
        .await;
        sender.join().unwrap();
        got.expect("the wake never reached the loop")
    });
    assert_eq!(got, 7);
}

#[test]
fn wakes_by_the_sets_own_events_write_nothing_to_the_eventfd() {
    crate::state::run_as_task(async {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut theirs, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        let ours = EdgeStream::from_std(ours).unwrap();
        let echo = std::thread::spawn(move || {
            let mut buf = [0u8; 4];
            for _ in 0..20 {
                theirs.read_exact(&mut buf).unwrap();
                theirs.write_all(&buf).unwrap();
            }
        });
        let unpark = LoopSet::open().unwrap().unpark().clone();
        let mut buf = [0u8; 4];
        for i in 0..20u32 {
            (&ours).write_all(&i.to_be_bytes()).await.unwrap();
            // The loop sleeps here until the set reports the echo, and the reader's task
            // is woken on this thread.
            (&ours).read_exact(&mut buf).await.unwrap();
            assert_eq!(u32::from_be_bytes(buf), i);
        }
        echo.join().unwrap();
        let mut count = [0u8; 8];
        let read = rustix::io::read(unpark.fd(), &mut count);
        assert_eq!(
            read,
            Err(rustix::io::Errno::AGAIN),
            "a wake from the loop's own thread wrote the eventfd"
        );
    });
}

#[test]
fn the_loop_never_sleeps_longer_than_epoll_wait_can_take() {
    let now = Instant::now();
    let far = now + Duration::from_secs(30 * 24 * 3600);
    let ms = |d: Duration| d.as_millis();
    assert!(ms(sleep_for(Some(far), now)) <= i32::MAX as u128);
    assert!(ms(sleep_for(None, now)) <= i32::MAX as u128);
    assert_eq!(
        sleep_for(Some(now + Duration::from_millis(5)), now),
        Duration::from_millis(5)
    );
    assert_eq!(
        sleep_for(Some(now), now + Duration::from_secs(1)),
        Duration::ZERO
    );
}
