//! Regressions of the HTTP engine found in review, each named after what it regresses and
//! run against the real binary: a request body that failed upstream must not turn into a
//! request, a removed health check must not leave its verdict or keep probing, a client that
//! never reads must not hold its slot forever, request trailers must not reach the upstream.
//! Does IO (sluice, a backend and clients on 127.0.0.1).
//!
//! Two tests need a backend the common [`HttpBackend`] cannot play (one that answers before
//! the body and closes, one whose raw bytes are kept); [`RawBackend`] below is that.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::http_backend::HttpBackend;
use common::http_client::*;
use common::*;

/// Body bytes the client sends with the head of the refused upload in
/// [`failed_upload_never_turns_the_rest_of_the_body_into_a_request`].
const EARLY_BODY: usize = 10;
/// Filler the client sends after the early answer, before the smuggled request: forwarded
/// upstream "successfully" (the first write after the peer's close is accepted locally).
const FILLER: usize = 100;
/// The request hidden at the end of the refused body.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: app1.example.com\r\n\r\n";
/// How long the client waits for sluice to answer between the parts of the upload: a bound,
/// not a delay sluice needs (it answers only once a body write fails).
const PART_WAIT: Duration = Duration::from_millis(400);

/// What a [`RawBackend`] does with a request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RawMode {
    /// `POST /upload`: after the head and [`EARLY_BODY`] bytes, answer 413 and close (the way
    /// servers refuse an upload they will not read). Anything else: as `Answer`.
    RefuseUploadsEarly,
    /// Read the whole request (Content-Length or chunked), answer `200 ok` and close.
    Answer,
}

/// A one-request-per-connection origin on `127.0.0.1:0` that keeps every raw byte it
/// received and the target of every request head. Stops with the test process.
struct RawBackend {
    addr: SocketAddr,
    raw: Arc<Mutex<Vec<u8>>>,
    targets: Arc<Mutex<Vec<String>>>,
}

impl RawBackend {
    fn start(mode: RawMode) -> RawBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind raw backend");
        let addr = listener.local_addr().unwrap();
        let raw = Arc::new(Mutex::new(Vec::new()));
        let targets = Arc::new(Mutex::new(Vec::new()));
        let (r, t) = (raw.clone(), targets.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, t) = (r.clone(), t.clone());
                thread::spawn(move || raw_serve(stream, mode, &r, &t));
            }
        });
        RawBackend { addr, raw, targets }
    }

    /// Every byte received so far, all connections in arrival order.
    fn raw(&self) -> Vec<u8> {
        self.raw.lock().unwrap().clone()
    }

    fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

/// Serve one request on `stream`; errors just end the connection.
fn raw_serve(
    mut stream: TcpStream,
    mode: RawMode,
    raw: &Mutex<Vec<u8>>,
    targets: &Mutex<Vec<String>>,
) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let mut buf = Vec::new();
    // Read until `done(buf)` says the request (or the part of it wanted) is in.
    let mut read_until = |buf: &mut Vec<u8>, done: &dyn Fn(&[u8]) -> bool| -> bool {
        let mut chunk = [0u8; 16 * 1024];
        while !done(buf) {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    raw.lock().unwrap().extend_from_slice(&chunk[..n]);
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
        true
    };
    if !read_until(&mut buf, &|b| head_end(b).is_some()) {
        return;
    }
    let end = head_end(&buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let target = head.split(' ').nth(1).unwrap_or_default().to_owned();
    targets.lock().unwrap().push(target.clone());
    let answer: &[u8] = if mode == RawMode::RefuseUploadsEarly && target == "/upload" {
        // All of what came so far is read, so the close below is a FIN, not a reset: the
        // proxy's next body write is accepted locally and only the one after it fails.
        if !read_until(&mut buf, &|b| b.len() >= end + EARLY_BODY) {
            return;
        }
        b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    } else {
        let chunked = head.contains("\r\ntransfer-encoding: chunked\r\n");
        let length: usize = head
            .split("\r\n")
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let complete = |b: &[u8]| {
            let body = &b[end..];
            if chunked {
                chunked_end(body).is_some()
            } else {
                body.len() >= length
            }
        };
        if !read_until(&mut buf, &complete) {
            return;
        }
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    };
    let _ = stream.write_all(answer);
}

/// Length of the head (through its blank line), once complete.
fn head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Length of a complete chunked body (trailers and final CRLF included) at the start of `b`.
fn chunked_end(b: &[u8]) -> Option<usize> {
    // The next CRLF-terminated line from `at`: (its text, where the one after starts).
    let line = |at: usize| {
        let len = b.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
        Some((&b[at..at + len], at + len + 2))
    };
    let mut at = 0;
    loop {
        let (size_line, next) = line(at)?;
        let size_text = std::str::from_utf8(size_line).ok()?.split(';').next()?;
        let size = usize::from_str_radix(size_text.trim(), 16).ok()?;
        at = next;
        if size == 0 {
            // Trailer lines until an empty one.
            loop {
                let (trailer, next) = line(at)?;
                at = next;
                if trailer.is_empty() {
                    return Some(at);
                }
            }
        }
        at += size + 2;
        if at > b.len() {
            return None;
        }
    }
}

/// app1 with one route to `upstream`, checked over HTTP every 200 ms when `checked`, plus
/// the top-level lines `top`.
fn config(port: u16, upstream: SocketAddr, checked: bool, top: &str) -> String {
    let check = if checked {
        ", health_check = { type = \"http\", path = \"/health\", interval = \"200ms\", \
         timeout = \"100ms\", unhealthy_threshold = 1, healthy_threshold = 1 }"
    } else {
        ""
    };
    let route = route_toml(
        None,
        &[upstream],
        &format!("load_balance = \"none\"{check}"),
    );
    http_config(port, top, &app_toml("app1", APP1, &[route]))
}

/// Bytes as text for a failure message.
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn failed_upload_never_turns_the_rest_of_the_body_into_a_request() {
    let b = RawBackend::start(RawMode::RefuseUploadsEarly);
    let port = free_port();
    let _sluice = Sluice::start(&config(port, b.addr, false, ""));

    // One body: EARLY_BODY bytes with the head, then FILLER bytes (forwarded to the closed
    // upstream without an error), then a request (its write fails). Before the fix the
    // failed write left those last bytes unread on the client connection, which stayed
    // open after the 413 and took them for a request.
    let total = EARLY_BODY + FILLER + SMUGGLED.len();
    let mut conn = HttpConn::connect(local(port));
    let mut start =
        format!("POST /upload HTTP/1.1\r\nHost: {APP1}\r\nContent-Length: {total}\r\n\r\n")
            .into_bytes();
    start.extend_from_slice(&[b'a'; EARLY_BODY]);
    conn.send(&start);
    // Sluice relays the 413 only once a body write fails; these waits only bound each part
    // (an answer that arrives early stays buffered for the read below).
    let _ = conn.ending(PART_WAIT);
    let _ = conn.stream().write_all(&[b'b'; FILLER]);
    let _ = conn.ending(PART_WAIT);
    let _ = conn.stream().write_all(SMUGGLED.as_bytes());

    let r = conn
        .read_response_to("POST")
        .unwrap_or_else(|e| panic!("expected the upstream's 413: {e}"));
    assert_eq!(r.status(), 413, "{r:?}");
    match conn.ending(IO_TIMEOUT) {
        Ending::Closed(_) => {}
        Ending::Data(d) => panic!(
            "a second response after the 413: the rest of the body was taken for a request: {}",
            lossy(&d)
        ),
        Ending::Open => panic!("the connection stayed open after a body that failed upstream"),
    }
    assert!(
        !b.targets().iter().any(|t| t == "/smuggled"),
        "the request inside the body reached the backend: {:?}",
        b.targets()
    );
}

#[test]
fn removing_a_health_check_clears_its_down_verdict() {
    let b = HttpBackend::start("A");
    b.set_health(500);
    let port = free_port();
    let mut sluice = Sluice::start(&config(port, b.addr(), true, ""));

    let r = eventually("the failing check takes A out", LOG_TIMEOUT, || {
        let r = get(local(port), APP1, "/while-down");
        (r.status() == 503).then_some(r)
    });
    assert_sluice_error(&r, 503, "the only upstream is down");
    assert!(r.text().contains("no healthy upstream"), "{:?}", r.text());

    // Nothing checks A any more, so nothing could ever bring it back: the old verdict must go
    // with the check (before the fix A stayed down, and every request got this 503).
    sluice.rewrite(&config(port, b.addr(), false, ""));
    sluice.wait_for("config applied (generation 2)", LOG_TIMEOUT);
    let r = get(local(port), APP1, "/after-reload");
    assert_eq!(r.status(), 200, "A serves again once unchecked: {r:?}");
    assert_eq!(r.backend(), "A");
}

#[test]
fn an_idle_keep_alive_connection_does_not_keep_old_health_checks_running() {
    let b = HttpBackend::start("A");
    let port = free_port();
    let mut sluice = Sluice::start(&config(port, b.addr(), true, ""));
    b.wait_health_checks(1, LOG_TIMEOUT);

    // Before the fix, a connection waiting for its next request held the engine it was
    // accepted under, and with it that engine's health checks.
    let mut idle = HttpConn::connect(local(port));
    assert_eq!(idle.get("/before").status(), 200);
    sluice.rewrite(&config(port, b.addr(), false, ""));
    sluice.wait_for("config applied (generation 2)", LOG_TIMEOUT);

    let before = b.health_checks();
    // A measurement window, not a wait for an event: five check intervals in which no check
    // may start (one already under way when the reload landed may still be answered).
    thread::sleep(Duration::from_secs(1));
    let grew = b.health_checks() - before;
    assert!(
        grew <= 1,
        "{grew} health checks in 1s after the check was removed"
    );
    assert_eq!(
        idle.get("/after").status(),
        200,
        "the keep-alive connection was open through the window"
    );
}

/// Padding header of each request of a never-reading client: the backend echoes it, so every
/// answer is about 3.4 KB, small enough to leave sluice with its head in one write (the write
/// that had no timeout before the fix), large enough that the socket buffers fill quickly.
const PAD: usize = 3000;
/// Pipelined requests per never-reading client: about 13 MB of answers, several times what
/// the socket buffers on both ends hold.
const STUCK_REQUESTS: usize = 4000;

/// A client that pipelines [`STUCK_REQUESTS`] requests for `/stuck/{tag}` (from a thread that
/// stops at the first write error) and never reads. Keep the returned socket to keep it open.
fn never_reading_client(port: u16, tag: u32) -> TcpStream {
    let stream = connect(local(port));
    let mut writer = stream.try_clone().expect("clone the client socket");
    let pad = "p".repeat(PAD);
    let one = request_bytes(
        "GET",
        &format!("/stuck/{tag}"),
        APP1,
        &[("X-Pad", &pad)],
        b"",
    );
    thread::spawn(move || {
        for _ in 0..STUCK_REQUESTS {
            if writer.write_all(&one).is_err() {
                break;
            }
        }
    });
    stream
}

#[test]
fn a_client_that_never_reads_does_not_hold_its_slot_forever() {
    let b = HttpBackend::start("A");
    let port = free_port();
    // A proxied answer that the client takes none of for upstream_response_timeout ends its
    // connection. (A local answer, say a 404 for an unknown host, waits SEND_TIMEOUT, 60 s in
    // src/http/local.rs: too long for a test, which is why the clients here ask app1.)
    let top = "max_clients = 2\nupstream_response_timeout = \"1s\"";
    let _sluice = Sluice::start(&config(port, b.addr(), false, top));

    let _one = never_reading_client(port, 1);
    let _two = never_reading_client(port, 2);
    eventually("both never-reading clients admitted", LOG_TIMEOUT, || {
        let heads = b.heads();
        let seen = |t: &str| heads.iter().any(|h| h == t);
        (seen("/stuck/1") && seen("/stuck/2")).then_some(())
    });

    // While they hold both slots, max_clients holds.
    let out = send_raw(
        local(port),
        &request_bytes("GET", "/third", APP1, &[], b""),
        IO_TIMEOUT,
    );
    match &out.response {
        Some(r) => assert_sluice_error(r, 503, "a third client while two are stuck"),
        None => assert!(
            matches!(out.ending, Ending::Closed(_)),
            "third client: neither a 503 nor a close: {out:?}"
        ),
    }

    // Their answers stop moving once the socket buffers are full; a second later sluice gives
    // up on one (before the fix it waited forever, and no new client was ever served).
    let r = eventually("a stuck client's slot is freed", LOG_TIMEOUT, || {
        let out = send_raw(
            local(port),
            &request_bytes("GET", "/fourth", APP1, &[], b""),
            Duration::ZERO,
        );
        out.response.filter(|r| r.status() == 200)
    });
    assert_eq!(r.backend(), "A");
}

#[test]
fn trailing_request_trailers_are_not_forwarded() {
    let b = RawBackend::start(RawMode::Answer);
    let port = free_port();
    let _sluice = Sluice::start(&config(port, b.addr, false, ""));

    // Trailers would reach the upstream without the sanitizing header fields get (a spoofed
    // client address, a second Host); sluice drops them, as nginx does.
    let mut conn = HttpConn::connect(local(port));
    conn.send(
        format!(
            "POST /trailers HTTP/1.1\r\nHost: {APP1}\r\nTransfer-Encoding: chunked\r\n\r\n\
             5\r\nhello\r\n0\r\nX-Forwarded-For: 6.6.6.6\r\nHost: evil\r\n\r\n"
        )
        .as_bytes(),
    );
    let r = conn.response();
    assert_eq!(r.status(), 200, "{r:?}");
    let raw = lossy(&b.raw()).to_ascii_lowercase();
    assert!(raw.contains("hello"), "the body went upstream: {raw:?}");
    assert!(
        !raw.contains("6.6.6.6") && !raw.contains("evil"),
        "a request trailer reached the backend: {raw:?}"
    );
}
