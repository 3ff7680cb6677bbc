//! TCP relay through the real binary: echo and half-close, 100 MiB compared byte for byte,
//! idle timeout, connect failure, fail-over to the next target, and the connection limit.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const END_REASONS: &[&str] = &[
    "client_closed",
    "upstream_closed",
    "idle_timeout",
    "connect_failed",
    "refused_limit",
    "error",
    "shutdown",
];

#[test]
fn tcp_echo_carries_half_close_in_both_directions() {
    let a = TcpBackend::echo("A");
    let port = free_port();
    let mut sluice = Sluice::start(&tcp_config(port, &[a.addr()], "none", ""));

    let mut c = connect(local(port));
    let client = c.local_addr().unwrap();
    c.write_all(b"first\n").unwrap();
    assert_eq!(read_line(&mut c).unwrap(), "A", "greeting of the backend");
    assert_eq!(read_line(&mut c).unwrap(), "first");

    // Half-close our side: the backend must see EOF (it then writes `A eof`), and what it
    // sends after our FIN must still reach us, followed by EOF.
    c.write_all(b"tail without newline").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest)
        .expect("read until EOF after half-close");
    assert_eq!(
        String::from_utf8_lossy(&rest),
        "tail without newlineA eof\n",
        "echo of the tail, then the backend's EOF notice, then EOF"
    );
    drop(c);

    let line = sluice.wait_tcp_access(client);
    assert!(
        line.contains(&format!("tcp {client} -> {} ", local(port))),
        "client and listener in access line: {line}"
    );
    assert_eq!(field(&line, "route"), Some("default"), "{line}");
    let target = a.addr().to_string();
    assert_eq!(field(&line, "target"), Some(target.as_str()), "{line}");
    let sent = "first\n".len() + "tail without newline".len();
    let received = "A\n".len() + sent + "A eof\n".len();
    assert_eq!(up_down(&line), (sent as u64, received as u64), "{line}");
    let dur = field(&line, "dur").unwrap_or_else(|| panic!("no dur= in {line}"));
    assert!(
        dur.strip_suffix('s')
            .is_some_and(|n| n.parse::<f64>().is_ok()),
        "dur is seconds: {line}"
    );
    let end = field(&line, "end").unwrap_or_else(|| panic!("no end= in {line}"));
    assert!(END_REASONS.contains(&end), "known end reason: {line}");
}

/// Deterministic pseudo-random bytes (xorshift64*), the same on both ends of a transfer.
struct PseudoRandom {
    state: u64,
    word: [u8; 8],
    used: usize,
}

impl PseudoRandom {
    fn new(seed: u64) -> PseudoRandom {
        PseudoRandom {
            state: seed | 1,
            word: [0; 8],
            used: 8,
        }
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            if self.used == 8 {
                self.state ^= self.state >> 12;
                self.state ^= self.state << 25;
                self.state ^= self.state >> 27;
                self.word = self.state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
                self.used = 0;
            }
            *b = self.word[self.used];
            self.used += 1;
        }
    }
}

#[test]
fn tcp_relays_100_mib_exactly_both_ways() {
    const TOTAL: usize = 100 * 1024 * 1024;
    const SEED: u64 = 0x5eed_f00d_0051_1ce0;
    let a = TcpBackend::echo("A");
    let port = free_port();
    let mut sluice = Sluice::start(&tcp_config(port, &[a.addr()], "none", ""));

    let mut c = connect(local(port));
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let client = c.local_addr().unwrap();
    let started = Instant::now();
    let mut writer = c.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let mut source = PseudoRandom::new(SEED);
        let mut chunk = vec![0u8; 64 * 1024];
        let mut sent = 0;
        while sent < TOTAL {
            let n = chunk.len().min(TOTAL - sent);
            source.fill(&mut chunk[..n]);
            writer.write_all(&chunk[..n]).expect("send stream");
            sent += n;
        }
        writer
            .shutdown(Shutdown::Write)
            .expect("half-close after stream");
    });

    assert_eq!(read_line(&mut c).unwrap(), "A");
    let mut expected_gen = PseudoRandom::new(SEED);
    let mut buf = vec![0u8; 256 * 1024];
    let mut expected = vec![0u8; buf.len()];
    let mut got = 0usize;
    while got < TOTAL {
        let want = buf.len().min(TOTAL - got);
        let n = match c.read(&mut buf[..want]) {
            Ok(0) => panic!("EOF after {got} of {TOTAL} bytes"),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("read after {got} of {TOTAL} bytes: {e}"),
        };
        expected_gen.fill(&mut expected[..n]);
        if buf[..n] != expected[..n] {
            let i = (0..n).find(|&i| buf[i] != expected[i]).unwrap();
            panic!(
                "byte {} differs: got {:#04x}, sent {:#04x}",
                got + i,
                buf[i],
                expected[i]
            );
        }
        got += n;
    }
    let mut rest = Vec::new();
    c.read_to_end(&mut rest)
        .expect("read to EOF after the stream");
    assert_eq!(
        String::from_utf8_lossy(&rest),
        "A eof\n",
        "after the stream"
    );
    sender.join().expect("sender thread");
    let elapsed = started.elapsed();
    eprintln!(
        "relayed {TOTAL} bytes each way in {elapsed:?} ({:.0} MiB/s)",
        (TOTAL as f64 / 1048576.0) / elapsed.as_secs_f64()
    );
    drop(c);
    let line = sluice.wait_tcp_access(client);
    let down = TOTAL + "A\n".len() + "A eof\n".len();
    assert_eq!(up_down(&line), (TOTAL as u64, down as u64), "{line}");
}

#[test]
fn tcp_idle_timeout_closes_only_silent_connections() {
    let a = TcpBackend::echo("A");
    let port = free_port();
    let mut sluice = Sluice::start(&tcp_config(
        port,
        &[a.addr()],
        "none",
        "tcp_idle_timeout = \"1s\"\n",
    ));

    let (mut silent, _) = hello(local(port));
    let silent_client = silent.local_addr().unwrap();
    let (mut chatty, _) = hello(local(port));
    let chatty_client = chatty.local_addr().unwrap();
    let idle_since = Instant::now();

    // The chatty connection talks every 300 ms for 2.5 s: it must outlive the silent one.
    let talker = thread::spawn(move || {
        for i in 0..8 {
            thread::sleep(Duration::from_millis(300));
            echo_roundtrip(&mut chatty, &format!("ping {i}"));
        }
        chatty
    });

    assert_closed_without_data(&mut silent, "silent connection after tcp_idle_timeout");
    let closed_after = idle_since.elapsed();
    assert!(
        closed_after >= Duration::from_millis(900),
        "closed after {closed_after:?}, before the 1 s idle timeout"
    );
    assert!(
        closed_after < Duration::from_secs(5),
        "closed only after {closed_after:?} with a 1 s idle timeout"
    );
    let line = sluice.wait_tcp_access(silent_client);
    assert_eq!(field(&line, "end"), Some("idle_timeout"), "{line}");

    let mut chatty = talker.join().expect("chatty connection kept working");
    echo_roundtrip(&mut chatty, "still here");
    assert!(
        !sluice
            .lines()
            .iter()
            .any(|l| is_access_line(l, "tcp", chatty_client)),
        "the active connection must not have ended"
    );
}

#[test]
fn tcp_connect_failed_closes_client_and_is_logged() {
    let dead = local(free_port());
    let port = free_port();
    let mut sluice = Sluice::start(&tcp_config(
        port,
        &[dead],
        "none",
        "tcp_connect_timeout = \"2s\"\n",
    ));

    let mut c = connect(local(port));
    let client = c.local_addr().unwrap();
    let _ = c.write_all(b"hello\n");
    assert_closed_without_data(&mut c, "connection whose only target refuses");
    let line = sluice.wait_tcp_access(client);
    assert_eq!(field(&line, "end"), Some("connect_failed"), "{line}");
}

#[test]
fn tcp_fails_over_to_next_target_when_first_refuses() {
    let dead = local(free_port());
    let live = TcpBackend::echo("LIVE");
    let port = free_port();
    let mut sluice = Sluice::start(&tcp_config(
        port,
        &[dead, live.addr()],
        "none",
        "tcp_connect_timeout = \"2s\"\n",
    ));

    for i in 0..3 {
        let (c, name) = hello(local(port));
        assert_eq!(name, "LIVE", "connection {i}");
        let client = c.local_addr().unwrap();
        drop(c);
        let line = sluice.wait_tcp_access(client);
        let target = live.addr().to_string();
        assert_eq!(field(&line, "target"), Some(target.as_str()), "{line}");
    }
    assert_eq!(live.accepted(), 3);
}

#[test]
fn tcp_max_connections_refuses_the_third_until_one_closes() {
    let a = TcpBackend::echo("A");
    let port = free_port();
    let mut sluice = Sluice::start(&tcp_config(
        port,
        &[a.addr()],
        "none",
        "tcp_max_connections = 2\n",
    ));

    let (c1, _) = hello(local(port));
    let (mut c2, _) = hello(local(port));
    let mut c3 = connect(local(port));
    let third = c3.local_addr().unwrap();
    let _ = c3.write_all(b"hello\n");
    assert_closed_without_data(&mut c3, "third connection over tcp_max_connections = 2");
    let line = sluice.wait_tcp_access(third);
    assert_eq!(field(&line, "end"), Some("refused_limit"), "{line}");
    assert_eq!(
        a.accepted(),
        2,
        "the refused connection must not reach the backend"
    );

    let first = c1.local_addr().unwrap();
    drop(c1);
    sluice.wait_tcp_access(first);
    // The slot is released when the connection's task ends, which may be just after its
    // access line: allow a short grace period, but a refusal that persists fails.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut c4 = loop {
        let mut s = connect(local(port));
        let _ = s.write_all(b"hello\n");
        match read_line(&mut s) {
            Ok(name) => {
                assert_eq!(name, "A");
                assert_eq!(read_line(&mut s).unwrap(), "hello");
                break s;
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("connection after closing one was refused ({e}); retrying");
                thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("a new connection after closing one still fails: {e}"),
        }
    };
    echo_roundtrip(&mut c2, "c2 alive");
    echo_roundtrip(&mut c4, "c4 alive");
}

#[test]
fn unresolvable_target_name_fails_over_and_never_stops_the_process() {
    let a = TcpBackend::echo("A");
    let port = free_port();
    // `.invalid` never resolves (RFC 6761); the name is tried first, then the live target.
    let config = format!(
        "listen_port = {port}\nlisten_address_v4 = \"127.0.0.1\"\n\
         tcp_target = [\"backend.invalid:9\", \"{}\"]\n",
        a.addr()
    );
    let mut sluice = Sluice::start(&config);
    let (_c, name) = hello(local(port));
    assert_eq!(name, "A", "fail-over past the unresolvable name");
    sluice.wait_for("cannot resolve target backend.invalid:9", LOG_TIMEOUT);

    // Only the bad name left: that connection fails, the process keeps serving.
    let only_bad = format!(
        "listen_port = {port}\nlisten_address_v4 = \"127.0.0.1\"\n\
         tcp_target = [\"backend.invalid:9\"]\nstatus_listen = \"127.0.0.1:{}\"\n",
        free_port()
    );
    sluice.rewrite(&only_bad);
    sluice.wait_for("config applied (generation 2)", LOG_TIMEOUT);
    let mut c = connect(local(port));
    let client = c.local_addr().unwrap();
    assert_closed_without_data(&mut c, "connection to an unresolvable target");
    let line = sluice.wait_tcp_access(client);
    assert_eq!(field(&line, "end"), Some("connect_failed"), "{line}");
    sluice.rewrite(&config);
    sluice.wait_for("config applied (generation 3)", LOG_TIMEOUT);
    let (_c, name) = hello(local(port));
    assert_eq!(name, "A", "still alive and serving after the failures");
}

#[test]
fn ipv6_and_ipv4_listeners_on_one_port() {
    let a = TcpBackend::echo("A");
    let port = free_port();
    let extra = "listen_address_v6 = \"[::1]\"\n";
    let _sluice = Sluice::start(&tcp_config(port, &[a.addr()], "none", extra));
    let v6: std::net::SocketAddr = format!("[::1]:{port}").parse().unwrap();
    let (_c6, name6) = hello(v6);
    let (_c4, name4) = hello(local(port));
    assert_eq!((name6.as_str(), name4.as_str()), ("A", "A"));
}

#[test]
fn accept_backs_off_when_out_of_descriptors_and_recovers() {
    let a = TcpBackend::echo("A");
    let port = free_port();
    let mut sluice = Sluice::start(&tcp_config(port, &[a.addr()], "none", ""));
    let pid = sluice.pid();
    // Room for exactly one relayed connection (client + upstream socket; no pipes for splice,
    // so that connection also exercises the buffer-copy fallback). RLIMIT_NOFILE bounds
    // descriptor numbers, not their count (an inherited descriptor may sit far above the
    // others), so the limit is set just above the second free number.
    let open: Vec<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let limit = (0..).filter(|n| !open.contains(n)).nth(1).unwrap() + 1;
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success());

    let (mut first, name) = hello(local(port));
    assert_eq!(name, "A");
    echo_roundtrip(&mut first, "copied, not spliced");
    // The kernel completes these handshakes, but sluice cannot accept them yet.
    let waiting: Vec<_> = (0..3).map(|_| connect(local(port))).collect();
    sluice.wait_for("accept failed", LOG_TIMEOUT);
    // A measurement window, not synchronisation: a spinning accept loop would log
    // thousands of failures here; the back-off (10 ms doubling to 1 s) logs a handful.
    thread::sleep(Duration::from_millis(1500));
    let failures = sluice
        .lines()
        .iter()
        .filter(|l| l.contains("accept failed"))
        .count();
    assert!(
        (1..=12).contains(&failures),
        "{failures} accept failures logged in 1.5 s"
    );

    // Each closed connection frees two descriptors: exactly enough for the next client in
    // the queue. Accepting two clients then (one descriptor each) would leave both waiting
    // for an upstream socket until their connect timeouts.
    drop(first);
    for (i, mut w) in waiting.into_iter().enumerate() {
        w.write_all(b"later\n").unwrap();
        assert_eq!(
            read_line(&mut w).unwrap(),
            "A",
            "waiting client {i} is served once descriptors free up"
        );
        assert_eq!(read_line(&mut w).unwrap(), "later");
    }
}
