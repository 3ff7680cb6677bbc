//! Upstream handling of the HTTP engine: keep-alive reuse of backend connections, fail-over
//! from a refused or unreachable upstream (connect timeout), 502 when none is left or the
//! upstream hangs up, 504 when it never answers, and the active HTTP health check ejecting
//! and restoring an upstream.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use common::http_backend::HttpBackend;
use common::http_client::*;
use common::*;

/// An address on 127.0.0.1 where nothing listens (connecting is refused).
fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

#[test]
fn sequential_requests_on_one_client_connection_reuse_the_upstream_connection() {
    const N: usize = 50;
    let b = HttpBackend::start("A");
    let port = free_port();
    let _sluice = Sluice::start(&app1_config(port, &[b.addr()], "none", ""));

    let mut conn = HttpConn::connect(local(port));
    for i in 0..N {
        let r = conn.get(&format!("/ka/{i}"));
        assert_eq!(r.status(), 200, "request {i}: {r:?}");
    }
    assert_eq!(b.request_count(), N);
    assert!(
        b.accepted() <= 2,
        "{N} requests opened {} backend connections",
        b.accepted()
    );
}

#[test]
fn requests_from_many_client_connections_share_pooled_upstream_connections() {
    const N: usize = 30;
    let b = HttpBackend::start("A");
    let port = free_port();
    let _sluice = Sluice::start(&app1_config(port, &[b.addr()], "none", ""));

    for i in 0..N {
        // A fresh client connection each time, closed after its response.
        let r = get(local(port), APP1, &format!("/pool/{i}"));
        assert_eq!(r.status(), 200, "request {i}: {r:?}");
    }
    assert_eq!(b.request_count(), N);
    assert!(
        b.accepted() <= 3,
        "{N} client connections opened {} backend connections (no pooling?)",
        b.accepted()
    );
    let conns: std::collections::HashSet<usize> = b.requests().iter().map(|r| r.conn).collect();
    assert!(
        conns.len() <= 3,
        "requests spread over connections {conns:?}"
    );
}

/// Read one request (head and `Content-Length` body) from a backend-side socket; returns
/// the head and the body.
fn read_request(s: &mut std::net::TcpStream) -> (String, Vec<u8>) {
    use std::io::Read;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before a request head: {got:?}");
        got.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while got.len() < head_end + len {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed inside a request body");
        got.extend_from_slice(&chunk[..n]);
    }
    (head, got[head_end..head_end + len].to_vec())
}

#[test]
fn a_pooled_connection_the_upstream_closed_is_not_used_for_the_next_request() {
    use std::io::Write;
    use std::sync::mpsc;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, closed_rx) = mpsc::channel();
    let backend = std::thread::spawn(move || {
        // First connection: one keep-alive response, then the upstream closes it while it
        // waits in sluice's pool (as a backend's keep-alive timeout does).
        let (mut s, _) = listener.accept().unwrap();
        let (head, _) = read_request(&mut s);
        assert!(head.starts_with("GET /first "), "{head}");
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
            .unwrap();
        drop(s);
        closed_tx.send(()).unwrap();
        // A POST is not retried once sent: it must arrive on a fresh connection.
        let (mut s, _) = listener.accept().unwrap();
        let (head, body) = read_request(&mut s);
        assert!(head.starts_with("POST /second "), "{head}");
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
            .unwrap();
        body
    });
    let port = free_port();
    let _sluice = Sluice::start(&app1_config(port, &[addr], "none", ""));

    let mut conn = HttpConn::connect(local(port));
    let r = conn.get("/first");
    assert_eq!((r.status(), r.text().as_str()), (200, "first"), "{r:?}");
    closed_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the backend closed its first connection");
    let r = conn.request("POST", "/second", APP1, &[], b"payload");
    assert_eq!((r.status(), r.text().as_str()), (200, "second"), "{r:?}");
    assert_eq!(backend.join().unwrap(), b"payload");
}

#[test]
fn refused_upstream_fails_over_to_the_next() {
    let b = HttpBackend::start("B");
    let dead = refused_addr();
    let port = free_port();
    let _sluice = Sluice::start(&app1_config(port, &[dead, b.addr()], "none", ""));

    let mut conn = HttpConn::connect(local(port));
    for i in 0..5 {
        let r = conn.get(&format!("/failover/{i}"));
        assert_eq!(r.status(), 200, "request {i}: {r:?}");
        assert_eq!(r.backend(), "B");
    }
}

#[test]
fn all_upstreams_refused_is_502() {
    let port = free_port();
    let (d1, d2) = (refused_addr(), refused_addr());
    let mut sluice = Sluice::start(&app1_config(port, &[d1, d2], "round_robin", ""));

    let mut conn = HttpConn::connect(local(port));
    let r = conn.get("/nobody-home");
    assert_sluice_error(&r, 502, "every upstream refused");
    let line = wait_http_access(&mut sluice, conn.local_addr());
    assert_eq!(field(&line, "status"), Some("502"), "{line}");
}

#[test]
fn upstream_that_hangs_up_without_answering_is_502() {
    let b = HttpBackend::close_immediately("X");
    let port = free_port();
    let _sluice = Sluice::start(&app1_config(port, &[b.addr()], "none", ""));

    let r = get(local(port), APP1, "/hangup");
    assert_sluice_error(&r, 502, "upstream closed without a response");
    assert!(b.accepted() >= 1, "sluice did connect");
}

#[test]
fn upstream_that_never_answers_is_504_after_the_response_timeout() {
    let b = HttpBackend::never_respond("SILENT");
    let port = free_port();
    let top = "upstream_response_timeout = \"1s\"";
    let _sluice = Sluice::start(&app1_config(port, &[b.addr()], "none", top));

    let mut conn = HttpConn::connect(local(port));
    let started = Instant::now();
    let r = conn.get("/silence");
    let waited = started.elapsed();
    assert_sluice_error(&r, 504, "no response head in time");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "504 after about 1s, took {waited:?}"
    );
    assert!(b.bytes_received() > 0, "the request was forwarded");
}

/// A listener whose accept queue is full, so the kernel drops further SYNs and a connect to
/// it hangs until the connector gives up (connection refused would fail at once).
struct Blackhole {
    addr: SocketAddr,
    _listener: TcpListener,
    _held: Vec<std::net::TcpStream>,
}

impl Blackhole {
    fn new() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        // std listens with a backlog of 128; never accepting, the queue fills up.
        for _ in 0..2000 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => held.push(s),
                Err(_) => {
                    return Blackhole {
                        addr,
                        _listener: listener,
                        _held: held,
                    };
                }
            }
        }
        panic!("the accept queue of {addr} never filled");
    }
}

#[test]
fn upstream_connect_timeout_moves_on_to_the_next_upstream_or_502() {
    let hole = Blackhole::new();
    let b = HttpBackend::start("B");
    let top = "upstream_connect_timeout = \"500ms\"";

    let port = free_port();
    let _sluice = Sluice::start(&app1_config(port, &[hole.addr, b.addr()], "none", top));
    let started = Instant::now();
    let r = get(local(port), APP1, "/slow-connect");
    let waited = started.elapsed();
    assert_eq!(r.status(), 200, "{r:?}");
    assert_eq!(
        r.backend(),
        "B",
        "after the first upstream's connect timed out"
    );
    assert!(waited < Duration::from_secs(4), "took {waited:?}");

    let port = free_port();
    let _only = Sluice::start(&app1_config(port, &[hole.addr], "none", top));
    let started = Instant::now();
    let r = get(local(port), APP1, "/slow-connect");
    let waited = started.elapsed();
    assert_sluice_error(&r, 502, "the only upstream never accepts");
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(4),
        "502 after about 500ms, took {waited:?}"
    );
}

/// app1 with one route over `addrs`, balanced by `balance`, checked over HTTP every 200 ms.
fn health_config(port: u16, addrs: &[SocketAddr], balance: &str) -> String {
    let check = "health_check = { type = \"http\", path = \"/health\", interval = \"200ms\", \
                 timeout = \"100ms\", unhealthy_threshold = 1, healthy_threshold = 1 }";
    let route = route_toml(
        None,
        addrs,
        &format!("load_balance = \"{balance}\", {check}"),
    );
    http_config(port, "", &app_toml("app1", APP1, &[route]))
}

/// The backend names of `n` sequential requests on one connection.
fn names(conn: &mut HttpConn, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let r = conn.get(&format!("/hc/{i}"));
            assert_eq!(r.status(), 200, "{r:?}");
            r.backend()
        })
        .collect()
}

#[test]
fn http_health_check_ejects_a_failing_upstream_and_restores_it() {
    let (a, b) = (HttpBackend::start("A"), HttpBackend::start("B"));
    let port = free_port();
    let _sluice = Sluice::start(&health_config(port, &[a.addr(), b.addr()], "round_robin"));
    a.wait_health_checks(1, LOG_TIMEOUT);
    b.wait_health_checks(1, LOG_TIMEOUT);

    let mut conn = HttpConn::connect(local(port));
    let both = names(&mut conn, 10);
    assert!(
        both.contains(&"A".to_owned()) && both.contains(&"B".to_owned()),
        "{both:?}"
    );

    b.set_health(500);
    // Two checks after the flip: the second one certainly saw 500.
    let seen = b.health_checks();
    b.wait_health_checks(seen + 2, LOG_TIMEOUT);
    eventually("B ejected: 10 requests in a row to A", LOG_TIMEOUT, || {
        names(&mut conn, 10).iter().all(|n| n == "A").then_some(())
    });
    let after = names(&mut conn, 20);
    assert!(after.iter().all(|n| n == "A"), "B is ejected: {after:?}");

    b.set_health(200);
    let seen = b.health_checks();
    b.wait_health_checks(seen + 2, LOG_TIMEOUT);
    eventually("B back in rotation", LOG_TIMEOUT, || {
        names(&mut conn, 4).contains(&"B".to_owned()).then_some(())
    });
    assert!(
        a.health_checks() > 0 && b.request_count() > 0,
        "both were checked and B served again"
    );
}
