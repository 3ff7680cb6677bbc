//! Errors and limits of the HTTP engine: the shape of sluice's own error responses, 413 for
//! bodies over `request_max_body_size` (refused before forwarding when Content-Length says
//! so), 414 and 431 for oversized heads, the slowloris `request_header_timeout`, the idle
//! `keepalive_timeout`, and `max_clients`.

mod common;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use common::http_backend::HttpBackend;
use common::http_client::*;
use common::*;

fn start(b: &HttpBackend, top: &str) -> (Sluice, u16) {
    let port = free_port();
    let sluice = Sluice::start(&app1_config(port, &[b.addr()], "none", top));
    (sluice, port)
}

#[test]
fn malformed_request_gets_a_plain_400_and_the_connection_closes() {
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b, "");

    let mut conn = HttpConn::connect(local(port));
    conn.send(format!("GET /x HTTP/1.1\r\nHost: {APP1}\r\nBad Header: 1\r\n\r\n").as_bytes());
    let r = conn.response();
    assert_sluice_error(&r, 400, "field name with a space");
    assert!(r.text().starts_with("400 Bad Request"), "{:?}", r.text());
    assert!(r.head.has_token("connection", "close"), "{r:?}");
    conn.assert_closed(IO_TIMEOUT, "after a 400");
    assert_eq!(b.accepted(), 0);
}

#[test]
fn body_over_the_limit_with_content_length_is_413_before_forwarding() {
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b, "request_max_body_size = \"1k\"");

    // Exactly at the limit is fine.
    let r = HttpConn::connect(local(port)).request("POST", "/ok", APP1, &[], &[b'x'; 1024]);
    assert_eq!(r.status(), 200, "{r:?}");
    let (accepted, bytes) = (b.accepted(), b.bytes_received());

    // Only the head is sent: the answer must come without waiting for the body.
    let mut conn = HttpConn::connect(local(port));
    conn.send(
        format!("POST /big HTTP/1.1\r\nHost: {APP1}\r\nContent-Length: 1025\r\n\r\n").as_bytes(),
    );
    let r = conn.response();
    assert_sluice_error(&r, 413, "Content-Length over request_max_body_size");
    assert_eq!(
        (b.accepted(), b.bytes_received()),
        (accepted, bytes),
        "not a byte of the refused request reached the backend"
    );
}

#[test]
fn chunked_body_over_the_limit_is_413_and_never_completes_upstream() {
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b, "request_max_body_size = \"1k\"");

    let mut conn = HttpConn::connect(local(port));
    let mut wire =
        format!("POST /big-chunked HTTP/1.1\r\nHost: {APP1}\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes();
    for _ in 0..3 {
        wire.extend_from_slice(b"200\r\n");
        wire.extend_from_slice(&[b'y'; 0x200]);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    let _ = conn.stream().try_clone().unwrap().write_all(&wire);
    match conn.read_response_to("POST") {
        Ok(r) => assert_sluice_error(&r, 413, "chunked body over request_max_body_size"),
        Err(e) => panic!("expected a 413, got {e}"),
    }
    // The head may have been forwarded before the body grew too big; the request must never
    // be complete upstream.
    assert_eq!(b.request_count(), 0, "{:?}", b.requests());
}

#[test]
fn request_line_over_8_kib_is_414() {
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b, "");

    let target = format!("/{}", "a".repeat(9 * 1024));
    let out = send_raw(
        local(port),
        &request_bytes("GET", &target, APP1, &[], b""),
        IO_TIMEOUT,
    );
    let r = out
        .response
        .unwrap_or_else(|| panic!("no response: {:?}", out.error));
    assert_sluice_error(&r, 414, "long request line");
    assert_eq!(b.accepted(), 0);

    // Just under the limit is served.
    let target = format!("/{}", "a".repeat(7 * 1024));
    assert_eq!(get(local(port), APP1, &target).status(), 200);
}

#[test]
fn header_section_over_32_kib_or_100_fields_is_431() {
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b, "");

    let big = "v".repeat(33 * 1024);
    let out = send_raw(
        local(port),
        &request_bytes("GET", "/", APP1, &[("X-Big", &big)], b""),
        IO_TIMEOUT,
    );
    let r = out
        .response
        .unwrap_or_else(|| panic!("no response: {:?}", out.error));
    assert_sluice_error(&r, 431, "33 KiB header field");

    let names: Vec<String> = (0..101).map(|i| format!("X-Field-{i}")).collect();
    let fields: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let out = send_raw(
        local(port),
        &request_bytes("GET", "/", APP1, &fields, b""),
        IO_TIMEOUT,
    );
    let r = out
        .response
        .unwrap_or_else(|| panic!("no response: {:?}", out.error));
    assert_sluice_error(&r, 431, "102 header fields (Host + 101)");
    assert_eq!(b.accepted(), 0, "nothing forwarded");

    // 90 fields of 300 bytes (27 KiB) is within both limits.
    let value = "w".repeat(300);
    let fields: Vec<(&str, &str)> = names[..90]
        .iter()
        .map(|n| (n.as_str(), value.as_str()))
        .collect();
    let r = HttpConn::connect(local(port)).request("GET", "/", APP1, &fields, b"");
    assert_eq!(r.status(), 200, "{r:?}");
}

#[test]
fn slowloris_partial_head_is_closed_after_request_header_timeout() {
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b, "request_header_timeout = \"1s\"");

    // A head that stops halfway.
    let mut stalled = HttpConn::connect(local(port));
    let started = Instant::now();
    stalled.send(format!("GET /slow HTTP/1.1\r\nHost: {APP1}\r\nX-A: ").as_bytes());
    match stalled.ending(Duration::from_secs(5)) {
        Ending::Closed(_) => {}
        other => panic!("a stalled head must be closed (without a response), got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "closed after about 1s, took {waited:?}"
    );

    // A head trickled one byte every 100 ms is still cut at about 1s in total.
    let mut trickle = HttpConn::connect(local(port));
    let writer = trickle.stream().try_clone().unwrap();
    let started = Instant::now();
    let feeder = thread::spawn(move || {
        let mut writer = writer;
        let head = format!(
            "GET /trickle HTTP/1.1\r\nHost: {APP1}\r\nX-Padding: {}",
            "p".repeat(200)
        );
        for byte in head.bytes() {
            // Pacing the attacker, not waiting for sluice.
            thread::sleep(Duration::from_millis(100));
            if writer.write_all(&[byte]).is_err() {
                return;
            }
        }
    });
    match trickle.ending(Duration::from_secs(5)) {
        Ending::Closed(_) => {}
        other => panic!("a trickled head must be closed, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(4),
        "trickle cut after {waited:?}"
    );
    feeder.join().unwrap();
    assert_eq!(b.accepted(), 0, "no partial head was forwarded");
}

#[test]
fn idle_keep_alive_connection_is_closed_after_keepalive_timeout() {
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b, "keepalive_timeout = \"1s\"");

    let mut conn = HttpConn::connect(local(port));
    assert_eq!(conn.get("/once").status(), 200);
    let started = Instant::now();
    match conn.ending(Duration::from_secs(5)) {
        Ending::Closed(_) => {}
        other => panic!("an idle keep-alive connection must be closed, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
        "closed after about 1s idle, took {waited:?}"
    );

    // A connection that keeps talking is not cut at 1s.
    let mut busy = HttpConn::connect(local(port));
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        assert_eq!(busy.get("/busy").status(), 200);
        thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn max_clients_refuses_the_third_connection_and_recovers() {
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b, "max_clients = 2");

    // Two clients hold connections open (each has completed a request).
    let mut one = HttpConn::connect(local(port));
    let mut two = HttpConn::connect(local(port));
    assert_eq!(one.get("/1").status(), 200);
    assert_eq!(two.get("/2").status(), 200);

    let out = send_raw(
        local(port),
        &request_bytes("GET", "/3", APP1, &[], b""),
        IO_TIMEOUT,
    );
    match &out.response {
        Some(r) => assert_sluice_error(r, 503, "third concurrent client"),
        None => assert!(
            matches!(out.ending, Ending::Closed(_)),
            "third client: neither a 503 nor a close: {out:?}"
        ),
    }
    assert_eq!(b.request_count(), 2, "the third request was not forwarded");

    drop(one);
    let r = eventually("a freed slot serves a new client", LOG_TIMEOUT, || {
        let out = send_raw(
            local(port),
            &request_bytes("GET", "/4", APP1, &[], b""),
            Duration::ZERO,
        );
        out.response.filter(|r| r.status() == 200)
    });
    assert_eq!(r.backend(), "A");
    assert_eq!(
        two.get("/still-open").status(),
        200,
        "the held connection still works"
    );
}
