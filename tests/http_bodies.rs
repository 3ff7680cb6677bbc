//! Message bodies through the HTTP engine: Content-Length and chunked requests (judged by the
//! bytes the backend decoded, not the framing), Content-Length, chunked and close-delimited
//! responses, `Expect: 100-continue`, pipelining, and 1 GiB each way with sluice's resident
//! memory sampled during the transfer.

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::http_backend::{HttpBackend, Pattern, sha256_hex};
use common::http_client::*;
use common::*;

/// Pseudo-random test bytes (xorshift), different for each seed.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

fn start(b: &HttpBackend, top: &str) -> (Sluice, u16) {
    let port = free_port();
    let sluice = Sluice::start(&app1_config(port, &[b.addr()], "none", top));
    (sluice, port)
}

#[test]
fn content_length_request_body_arrives_intact() {
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b, "");
    let body = noise(300 * 1024, 7);

    let mut conn = HttpConn::connect(local(port));
    let r = conn.request(
        "POST",
        "/upload",
        APP1,
        &[("Content-Type", "application/octet-stream")],
        &body,
    );
    assert_eq!(r.status(), 200, "{r:?}");
    let echo = r.echo();
    assert_eq!(echo.body_len, body.len() as u64);
    assert_eq!(echo.body_sha256, sha256_hex(&body));
    // And an empty-bodied request right after, on the same connection.
    let r = conn.request("POST", "/empty", APP1, &[("Content-Length", "0")], b"");
    assert_eq!(r.echo().body_len, 0);
}

#[test]
fn chunked_request_body_is_decoded_the_same_by_the_backend() {
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b, "");
    let body = noise(100_000, 11);

    // Uneven chunks, a chunk extension, upper-case hex, and a trailer.
    let mut wire =
        format!("POST /chunked HTTP/1.1\r\nHost: {APP1}\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes();
    let mut rest = &body[..];
    for (i, size) in [1usize, 0x1F, 4096, 65_536].iter().cycle().enumerate() {
        if rest.is_empty() {
            break;
        }
        let n = (*size).min(rest.len());
        let ext = if i == 1 { ";name=value" } else { "" };
        wire.extend_from_slice(format!("{n:X}{ext}\r\n").as_bytes());
        wire.extend_from_slice(&rest[..n]);
        wire.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    wire.extend_from_slice(b"0\r\nX-Checksum: whatever\r\n\r\n");

    let mut conn = HttpConn::connect(local(port));
    // Written in small pieces: sluice must not depend on getting a chunk in one read.
    for piece in wire.chunks(777) {
        conn.send(piece);
    }
    let r = conn.response();
    assert_eq!(r.status(), 200, "{r:?}");
    let echo = r.echo();
    assert_eq!(echo.body_len, body.len() as u64, "decoded length");
    assert_eq!(echo.body_sha256, sha256_hex(&body), "decoded bytes");
    let seen = b.last_request();
    assert!(
        seen.header("content-length").is_some() != seen.chunked,
        "exactly one framing upstream: {seen:?}"
    );
}

#[test]
fn content_length_chunked_and_close_delimited_responses_are_relayed() {
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b, "");

    let mut conn = HttpConn::connect(local(port));
    let plain = conn.get("/r?respond=length");
    assert_eq!(plain.status(), 200, "{plain:?}");
    assert_eq!(plain.echo().target, "/r?respond=length");

    let chunked = conn.get("/r?respond=chunked");
    assert_eq!(chunked.status(), 200, "{chunked:?}");
    assert_eq!(
        chunked.echo().target,
        "/r?respond=chunked",
        "body decoded whole"
    );
    // The connection is still in sync after the chunked body.
    assert_eq!(conn.get("/after-chunked").echo().target, "/after-chunked");

    // The backend delimits by closing; sluice may re-frame (keeping our connection) or close.
    let closed = conn.get("/r?respond=close");
    assert_eq!(closed.status(), 200, "{closed:?}");
    let echo = closed.echo();
    assert_eq!(
        echo.target, "/r?respond=close",
        "whole close-delimited body"
    );
    if closed.header("content-length").is_some() || closed.header("transfer-encoding").is_some() {
        assert_eq!(conn.get("/after-close").echo().target, "/after-close");
    } else {
        conn.assert_closed(IO_TIMEOUT, "a close-delimited response ends with EOF");
    }
}

#[test]
fn head_response_has_no_body_and_keeps_the_connection_in_sync() {
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b, "");

    let mut conn = HttpConn::connect(local(port));
    let r = conn.request("HEAD", "/head", APP1, &[], b"");
    assert_eq!(r.status(), 200, "{r:?}");
    assert!(r.body.is_empty());
    assert_eq!(b.last_request().method, "HEAD");
    assert_eq!(conn.get("/next").echo().target, "/next");
}

#[test]
fn expect_100_continue_gets_100_before_the_body_is_sent() {
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b, "");
    let body = noise(64 * 1024, 3);

    let mut conn = HttpConn::connect(local(port));
    conn.send(
        format!(
            "PUT /expect HTTP/1.1\r\nHost: {APP1}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let interim = conn
        .read_head()
        .expect("a 100 Continue before we send the body");
    assert_eq!(interim.status, 100, "{interim:?}");
    assert_eq!(interim.version, "HTTP/1.1");
    conn.send(&body);
    let r = conn.response();
    assert_eq!(r.status(), 200, "{r:?}");
    assert_eq!(r.echo().body_sha256, sha256_hex(&body));
}

#[test]
fn three_pipelined_requests_get_three_responses_in_order() {
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b, "");

    let mut wire = Vec::new();
    wire.extend(request_bytes("GET", "/one", APP1, &[], b""));
    wire.extend(request_bytes("POST", "/two", APP1, &[], b"second body"));
    wire.extend(request_bytes("GET", "/three", APP1, &[], b""));
    let mut conn = HttpConn::connect(local(port));
    conn.send(&wire);
    let targets: Vec<String> = (0..3).map(|_| conn.response().echo().target).collect();
    assert_eq!(targets, ["/one", "/two", "/three"]);
    assert_eq!(b.requests()[1].body_sha256, sha256_hex(b"second body"));
}

/// How much sluice's resident memory may grow over its baseline while streaming.
const RSS_GROWTH_LIMIT_KIB: u64 = 16 * 1024;
/// Bytes moved by each of the two big-transfer tests.
const BIG: u64 = 1 << 30;
/// Each big transfer must finish within this (debug builds included).
const BIG_DEADLINE: Duration = Duration::from_secs(55);

/// Samples a process's VmRSS every 20 ms until stopped; returns the peak.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    handle: thread::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(vm_rss_kib(pid)));
        let (halt, top) = (stop.clone(), peak.clone());
        let handle = thread::spawn(move || {
            while !halt.load(Ordering::SeqCst) {
                top.fetch_max(vm_rss_kib(pid), Ordering::SeqCst);
                thread::sleep(Duration::from_millis(20));
            }
        });
        RssSampler { stop, peak, handle }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap();
        self.peak.load(Ordering::SeqCst)
    }
}

/// Warm sluice up (first request allocates its pools) and return its settled VmRSS.
fn baseline_rss(sluice: &Sluice, port: u16) -> u64 {
    let mut conn = HttpConn::connect(local(port));
    for _ in 0..3 {
        let r = conn.request("POST", "/warm", APP1, &[], &noise(256 * 1024, 1));
        assert_eq!(r.status(), 200, "{r:?}");
    }
    vm_rss_kib(sluice.pid())
}

#[test]
fn one_gib_upload_streams_with_bounded_memory() {
    let b = HttpBackend::start("A");
    let (sluice, port) = start(&b, "request_max_body_size = \"unlimited\"");
    let baseline = baseline_rss(&sluice, port);
    let sampler = RssSampler::start(sluice.pid());
    let started = Instant::now();

    let mut conn = HttpConn::connect(local(port));
    conn.stream()
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn.send(
        format!("POST /big HTTP/1.1\r\nHost: {APP1}\r\nContent-Length: {BIG}\r\n\r\n").as_bytes(),
    );
    let mut writer = conn.stream().try_clone().unwrap();
    let sender = thread::spawn(move || {
        let pattern = Pattern::new();
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut sent = 0u64;
        while sent < BIG {
            let n = (pattern.max_slice() as u64).min(BIG - sent) as usize;
            let piece = pattern.slice(sent, n);
            ctx.update(piece);
            writer.write_all(piece).expect("upload");
            sent += n as u64;
        }
        common::http_backend::hex(ctx.finish().as_ref())
    });
    conn.stream().set_read_timeout(Some(BIG_DEADLINE)).unwrap();
    let r = conn.response();
    let digest = sender.join().expect("sender thread");
    let elapsed = started.elapsed();
    let peak = sampler.finish();

    assert_eq!(r.status(), 200, "{r:?}");
    let echo = r.echo();
    assert_eq!(echo.body_len, BIG, "every byte arrived");
    assert_eq!(echo.body_sha256, digest, "intact");
    eprintln!("1 GiB upload: {elapsed:?}, VmRSS {baseline} KiB -> peak {peak} KiB");
    assert!(elapsed < BIG_DEADLINE, "upload took {elapsed:?}");
    assert!(
        peak.saturating_sub(baseline) < RSS_GROWTH_LIMIT_KIB,
        "sluice buffered the upload: VmRSS grew from {baseline} KiB to {peak} KiB"
    );
}

#[test]
fn one_gib_download_streams_with_bounded_memory() {
    let b = HttpBackend::start("A");
    let (sluice, port) = start(&b, "");
    let baseline = baseline_rss(&sluice, port);
    let sampler = RssSampler::start(sluice.pid());
    let started = Instant::now();

    let mut conn = HttpConn::connect(local(port));
    conn.stream()
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn.send(&request_bytes(
        "GET",
        &format!("/download?bytes={BIG}"),
        APP1,
        &[],
        b"",
    ));
    let head = conn.read_head().expect("download head");
    assert_eq!(head.status, 200, "{head:?}");
    let pattern = Pattern::new();
    let mut got = 0u64;
    let mut first_bad = None;
    conn.read_body(&head, "GET", &mut |data: &[u8]| {
        if first_bad.is_none() && !pattern.matches(got, data) {
            first_bad = Some(got);
        }
        got += data.len() as u64;
    })
    .unwrap_or_else(|e| panic!("download after {got} bytes: {e}"));
    let elapsed = started.elapsed();
    let peak = sampler.finish();
    let _ = conn.stream().shutdown(Shutdown::Both);

    assert_eq!(got, BIG, "every byte arrived");
    assert_eq!(first_bad, None, "the bytes are the backend's pattern");
    eprintln!("1 GiB download: {elapsed:?}, VmRSS {baseline} KiB -> peak {peak} KiB");
    assert!(elapsed < BIG_DEADLINE, "download took {elapsed:?}");
    assert!(
        peak.saturating_sub(baseline) < RSS_GROWTH_LIMIT_KIB,
        "sluice buffered the download: VmRSS grew from {baseline} KiB to {peak} KiB"
    );
}
