//! Unit tests of the edge-triggered streams: readiness kept per stream (drained, ended,
//! urgent), wake-ups of waiting readers and writers, accept and connect into the set,
//! slots reused, and what closing a stream does to the set.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use async_io::Async;
use futures_lite::future::{self, poll_once};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// Our end in the edge set, and the peer's plain blocking end.
async fn pair() -> (EdgeStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (theirs, _) = listener.accept().unwrap();
    (EdgeStream::from_std(ours).unwrap(), theirs)
}

fn run(test: impl Future<Output = ()> + 'static) {
    crate::state::run_as_task(test);
}

#[test]
fn a_drained_socket_waits_for_the_set_and_reads_what_comes_next() {
    run(async {
        let (mut ours, mut theirs) = pair().await;
        let mut buf = [0u8; 64];
        theirs.write_all(b"first").unwrap();
        // Tried at once; five bytes of 64 is a short read, so the socket is drained.
        let n = ours.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"first");
        let mut next = ours.read(&mut buf);
        assert!(
            poll_once(&mut next).await.is_none(),
            "a drained socket waits"
        );
        theirs.write_all(b"second").unwrap();
        let n = next.await.unwrap();
        assert_eq!(&buf[..n], b"second");
    });
}

#[test]
fn bytes_and_the_end_of_the_stream_arriving_together_are_both_read() {
    run(async {
        let (mut ours, mut theirs) = pair().await;
        let mut first = [0u8; 1];
        let mut wait = ours.read_exact(&mut first);
        assert!(poll_once(&mut wait).await.is_none(), "nothing sent yet");
        theirs.write_all(b"xbody").unwrap();
        theirs.shutdown(Shutdown::Write).unwrap();
        wait.await.unwrap();
        // The set reported bytes and the end in one event; "body" is a short read with
        // the end queued behind it, which no new event announces.
        let mut rest = Vec::new();
        ours.read_to_end(&mut rest).await.unwrap();
        assert_eq!((&first[..], &rest[..]), (&b"x"[..], &b"body"[..]));
    });
}

#[test]
fn a_reset_wakes_the_waiting_reader_with_an_error() {
    run(async {
        let (mut ours, theirs) = pair().await;
        let mut buf = [0u8; 8];
        let mut wait = ours.read(&mut buf);
        assert!(poll_once(&mut wait).await.is_none(), "nothing sent yet");
        // Linger zero: closing sends a reset instead of a FIN.
        rustix::net::sockopt::set_socket_linger(&theirs, Some(Duration::ZERO)).unwrap();
        drop(theirs);
        let err = wait
            .await
            .expect_err("a reset is an error, not data or the end");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    });
}

#[test]
fn a_writer_blocked_on_a_full_socket_resumes_when_the_peer_reads() {
    run(async {
        let (mut ours, mut theirs) = pair().await;
        let total = 8 << 20;
        // A blocking reader on its own thread, so it drains while our writes wait.
        let reader = std::thread::spawn(move || {
            let mut got = 0;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match theirs.read(&mut buf).unwrap() {
                    0 => return got,
                    n => got += n,
                }
            }
        });
        let chunk = vec![7u8; 1 << 16];
        for _ in 0..total / chunk.len() {
            ours.write_all(&chunk).await.unwrap();
        }
        ours.shut_write().unwrap();
        assert_eq!(reader.join().unwrap(), total);
    });
}

#[test]
fn a_slot_freed_by_one_stream_serves_the_next() {
    run(async {
        let (first, _peer) = pair().await;
        let key = first.key;
        drop(first);
        let (mut second, mut theirs) = pair().await;
        assert_eq!(second.key, key);
        let mut buf = [0u8; 8];
        let mut wait = second.read(&mut buf);
        assert!(poll_once(&mut wait).await.is_none(), "nothing sent yet");
        theirs.write_all(b"hi").unwrap();
        let n = wait.await.unwrap();
        assert_eq!(&buf[..n], b"hi");
    });
}

#[test]
fn connect_and_accept_make_streams_of_the_set() {
    run(async {
        let listener = Async::new(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
        let addr = listener.get_ref().local_addr().unwrap();
        let mut listener = EdgeListener::new(Rc::new(listener));
        let (mut out, (mut inn, peer)) =
            future::try_zip(EdgeStream::connect(addr), listener.accept())
                .await
                .unwrap();
        assert_eq!(peer, out.get_ref().local_addr().unwrap());
        assert!(
            out.get_ref().nodelay().unwrap(),
            "connected with TCP_NODELAY"
        );
        out.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        inn.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        inn.write_all(b"pong").await.unwrap();
        out.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
    });
}

#[test]
fn a_refused_connection_is_an_error() {
    run(async {
        // A port nothing listens on: bound, then closed.
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = EdgeStream::connect(addr)
            .await
            .err()
            .expect("nothing listens there");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    });
}

#[test]
fn bytes_after_urgent_data_are_read_though_a_read_stopped_short_at_its_mark() {
    run(async {
        let (mut ours, theirs) = pair().await;
        let mut buf = [0u8; 64];
        assert!(
            poll_once(ours.read(&mut buf)).await.is_none(),
            "nothing sent yet"
        );
        // All three arrive before the set is next polled: one event for them.
        use rustix::net::{SendFlags, send};
        send(&theirs, b"abc", SendFlags::empty()).unwrap();
        send(&theirs, b"dX", SendFlags::OOB).unwrap();
        send(&theirs, b"efg", SendFlags::empty()).unwrap();
        // The first read stops at the urgent mark ("abcd"); "efg" waits behind it with no
        // new event to announce it. (The urgent byte itself is out of band.)
        let mut got = Vec::new();
        while got.len() < 7 {
            let n = ours.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"abcdefg");
    });
}

/// The descriptors in the set, from /proc (a line "tfd: N" per watched descriptor).
fn watched(r: &Reactor) -> Vec<i32> {
    use std::os::fd::AsRawFd;
    let info =
        std::fs::read_to_string(format!("/proc/self/fdinfo/{}", r.epoll.as_raw_fd())).unwrap();
    info.lines()
        .filter_map(|l| {
            l.strip_prefix("tfd:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

#[test]
fn a_dropped_stream_leaves_the_set_with_its_socket() {
    use std::os::fd::AsRawFd;
    run(async {
        let (ours, _theirs) = pair().await;
        let (fd, reactor) = (ours.get_ref().as_raw_fd(), ours.reactor.clone());
        assert!(watched(&reactor).contains(&fd));
        drop(ours);
        assert!(!watched(&reactor).contains(&fd), "closing took it out");
    });
}

#[test]
fn resumed_reads_report_bytes_that_arrived_while_paused() {
    run(async {
        let (mut ours, mut theirs) = pair().await;
        let mut buf = [0u8; 8];
        assert!(
            poll_once(ours.read(&mut buf)).await.is_none(),
            "nothing sent yet"
        );
        ours.watch_reads(false).unwrap();
        theirs.write_all(b"hi").unwrap();
        // The arrival was not reported; resuming reports what is there.
        ours.watch_reads(true).unwrap();
        let n = ours.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hi");
    });
}

#[test]
fn a_listener_joins_the_set_at_its_first_accept_and_leaves_it_when_dropped() {
    use std::os::fd::AsRawFd;
    run(async {
        let std_listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let shared = Rc::new(Async::new(std_listener).unwrap());
        let fd = shared.get_ref().as_raw_fd();
        let mut listener = EdgeListener::new(shared.clone());
        let reactor = Reactor::get().unwrap();
        assert!(!watched(&reactor).contains(&fd), "not before an accept");
        // Two clients queued at once: the burst is taken until WouldBlock, then the
        // listener waits for the set.
        let _a = std::net::TcpStream::connect(addr).unwrap();
        let _b = std::net::TcpStream::connect(addr).unwrap();
        listener.accept().await.unwrap();
        listener.accept().await.unwrap();
        assert!(watched(&reactor).contains(&fd));
        let mut third = Box::pin(listener.accept());
        assert!(poll_once(&mut third).await.is_none(), "no one else came");
        let c = std::net::TcpStream::connect(addr).unwrap();
        let (_, peer) = third.await.unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        drop(listener);
        // The socket lives on (the reload code holds it); the set no longer watches it.
        assert!(!watched(&reactor).contains(&fd), "dropping took it out");
        assert!(shared.get_ref().local_addr().is_ok());
    });
}

#[test]
fn a_watched_socket_waits_only_after_it_was_drained_and_leaves_the_set_when_dropped() {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    run(async {
        let sock = Watched::new(UdpSocket::bind("127.0.0.1:0").unwrap()).unwrap();
        let addr = sock.get_ref().local_addr().unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = [0u8; 16];
        // Readable at first: the caller asks the socket, which says WouldBlock.
        sock.readable().await;
        let e = sock.get_ref().recv(&mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock, "non-blocking");
        sock.drained();
        let mut wait = Box::pin(sock.readable());
        assert!(poll_once(&mut wait).await.is_none(), "drained: waits");
        peer.send_to(b"one", addr).unwrap();
        peer.send_to(b"two", addr).unwrap();
        wait.await;
        assert_eq!(sock.get_ref().recv(&mut buf).unwrap(), 3);
        // Not drained (a batch that stopped early): the next wait returns at once.
        assert!(poll_once(sock.readable()).await.is_some());
        let n = sock.get_ref().recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"two");
        let (fd, reactor) = (sock.get_ref().as_raw_fd(), Reactor::get().unwrap());
        assert!(watched(&reactor).contains(&fd));
        drop(sock);
        assert!(!watched(&reactor).contains(&fd));
    });
}

#[test]
fn a_newer_listener_of_a_socket_takes_its_events_over_and_the_older_ones_drop_leaves_them() {
    use std::os::fd::AsRawFd;
    run(async {
        let std_listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let shared = Rc::new(Async::new(std_listener).unwrap());
        let fd = shared.get_ref().as_raw_fd();
        let reactor = Reactor::get().unwrap();
        // A reload that changes the socket's role: the new accept loop starts while the
        // old one still holds the socket in the set.
        let mut older = EdgeListener::new(shared.clone());
        let _a = std::net::TcpStream::connect(addr).unwrap();
        older.accept().await.unwrap();
        let mut newer = EdgeListener::new(shared.clone());
        let _b = std::net::TcpStream::connect(addr).unwrap();
        newer
            .accept()
            .await
            .expect("the newer listener joins the set");
        drop(older);
        assert!(
            watched(&reactor).contains(&fd),
            "still watched for the newer"
        );
        let mut next = Box::pin(newer.accept());
        assert!(poll_once(&mut next).await.is_none(), "no one else came");
        let c = std::net::TcpStream::connect(addr).unwrap();
        let (_, peer) = next.await.unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        drop(newer);
        assert!(!watched(&reactor).contains(&fd));
    });
}

#[test]
fn a_drained_stream_is_quiet_until_the_set_reports_its_end() {
    run(async {
        let (mut ours, mut theirs) = pair().await;
        assert!(!ours.quiet(), "not read yet: unknown");
        theirs.write_all(b"response").unwrap();
        let mut buf = [0u8; 64];
        let n = ours.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"response");
        assert!(ours.quiet(), "a short read drained it");
        drop(theirs);
        ours.ready(false).await;
        assert!(!ours.quiet(), "the set reported the end");
    });
}
