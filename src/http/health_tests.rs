use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;

use super::*;
use crate::http::select::Availability::{Down, Ejected, Up};

fn check(unhealthy: u32, healthy: u32) -> HealthCheck {
    HealthCheck {
        kind: HealthCheckKind::Tcp,
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(2),
        unhealthy_threshold: unhealthy,
        healthy_threshold: healthy,
    }
}

#[test]
fn starts_up() {
    let h = UpstreamHealth::new();
    assert_eq!(h.availability(Instant::now()), Up);
    assert!(!h.is_down());
    assert_eq!(h.last_error(), None);
}

#[test]
fn goes_down_after_unhealthy_threshold_failures_in_a_row() {
    let c = check(3, 2);
    let mut h = UpstreamHealth::new();
    assert_eq!(h.on_check(false, &c), None);
    assert_eq!(h.on_check(false, &c), None);
    assert_eq!(h.checks_failed(), 2);
    assert_eq!(h.on_check(false, &c), Some(Transition::WentDown));
    assert_eq!(h.availability(Instant::now()), Down);
    // Further failures report nothing new.
    assert_eq!(h.on_check(false, &c), None);
    assert_eq!(h.checks_failed(), 4);
}

#[test]
fn a_success_restarts_the_failure_count() {
    let c = check(2, 1);
    let mut h = UpstreamHealth::new();
    assert_eq!(h.on_check(false, &c), None);
    assert_eq!(h.on_check(true, &c), None);
    assert_eq!(h.on_check(false, &c), None);
    assert_eq!(h.availability(Instant::now()), Up);
    assert_eq!(h.on_check(false, &c), Some(Transition::WentDown));
}

#[test]
fn comes_up_after_healthy_threshold_successes_in_a_row() {
    let c = check(1, 3);
    let mut h = UpstreamHealth::new();
    assert_eq!(h.on_check(false, &c), Some(Transition::WentDown));
    assert_eq!(h.on_check(true, &c), None);
    assert_eq!(h.on_check(true, &c), None);
    assert_eq!(h.on_check(false, &c), None); // breaks the streak
    assert_eq!(h.on_check(true, &c), None);
    assert_eq!(h.on_check(true, &c), None);
    assert_eq!(h.checks_passed(), 2);
    assert_eq!(h.on_check(true, &c), Some(Transition::CameUp));
    assert_eq!(h.availability(Instant::now()), Up);
    assert_eq!(h.on_check(true, &c), None);
}

#[test]
fn zero_thresholds_act_as_one() {
    let c = check(0, 0);
    let mut h = UpstreamHealth::new();
    assert_eq!(h.on_check(true, &c), None);
    assert_eq!(h.on_check(false, &c), Some(Transition::WentDown));
    assert_eq!(h.on_check(true, &c), Some(Transition::CameUp));
}

#[test]
fn a_passive_failure_ejects_for_the_base_time() {
    let t0 = Instant::now();
    let mut h = UpstreamHealth::new();
    assert_eq!(h.on_failure(t0), Some(EJECT_BASE));
    assert_eq!(h.availability(t0), Ejected);
    assert_eq!(
        h.availability(t0 + EJECT_BASE - Duration::from_millis(1)),
        Ejected
    );
    assert_eq!(h.availability(t0 + EJECT_BASE), Up);
    assert_eq!(h.ejected_until(), Some(t0 + EJECT_BASE));
}

#[test]
fn failures_while_ejected_do_not_extend_it() {
    let t0 = Instant::now();
    let mut h = UpstreamHealth::new();
    assert_eq!(h.on_failure(t0), Some(EJECT_BASE));
    for ms in [0, 10, 9_999] {
        assert_eq!(h.on_failure(t0 + Duration::from_millis(ms)), None);
    }
    assert_eq!(h.ejections(), 1);
    assert_eq!(h.availability(t0 + EJECT_BASE), Up);
}

#[test]
fn ejections_in_a_row_double_up_to_the_maximum() {
    let mut now = Instant::now();
    let mut h = UpstreamHealth::new();
    let mut got = Vec::new();
    for _ in 0..8 {
        let d = h.on_failure(now).unwrap();
        got.push(d.as_secs());
        now += d; // the ejection ends, the next try fails again
        assert_eq!(h.availability(now), Up);
    }
    assert_eq!(got, [10, 20, 40, 80, 160, 300, 300, 300]);
}

#[test]
fn back_off_survives_hundreds_of_ejections() {
    let mut now = Instant::now();
    let mut h = UpstreamHealth::new();
    for _ in 0..200 {
        let d = h.on_failure(now).unwrap();
        assert!(d <= EJECT_MAX);
        now += d;
    }
    assert_eq!(h.on_failure(now), Some(EJECT_MAX));
}

#[test]
fn a_success_resets_the_back_off_and_ends_the_ejection() {
    let t0 = Instant::now();
    let mut h = UpstreamHealth::new();
    assert_eq!(h.on_failure(t0), Some(EJECT_BASE));
    let t1 = t0 + EJECT_BASE;
    assert_eq!(h.on_failure(t1), Some(EJECT_BASE * 2));
    h.on_success();
    assert_eq!(h.availability(t1), Up);
    assert_eq!(h.ejections(), 0);
    assert_eq!(h.ejected_until(), None);
    assert_eq!(h.on_failure(t1), Some(EJECT_BASE));
}

#[test]
fn down_wins_over_ejected_and_coming_up_clears_the_ejection() {
    let t0 = Instant::now();
    let c = check(1, 1);
    let mut h = UpstreamHealth::new();
    h.on_failure(t0);
    assert_eq!(h.on_check(false, &c), Some(Transition::WentDown));
    assert_eq!(h.availability(t0), Down);
    assert_eq!(h.on_check(true, &c), Some(Transition::CameUp));
    assert_eq!(h.availability(t0), Up);
    assert_eq!(h.ejections(), 0);
}

#[test]
fn last_error_is_kept() {
    let mut h = UpstreamHealth::new();
    h.set_last_error("status 500, expected 200".to_owned());
    assert_eq!(h.last_error(), Some("status 500, expected 200"));
}

#[test]
fn durations_show_in_whole_seconds_or_milliseconds() {
    assert_eq!(show(Duration::from_secs(2)), "2s");
    assert_eq!(show(Duration::from_millis(1500)), "1500ms");
    assert_eq!(show(Duration::from_millis(50)), "50ms");
}

// --- probe, against a loopback server on a thread ---

const SHORT: Duration = Duration::from_secs(5);

fn http(path: &str, status: u16) -> HealthCheckKind {
    HealthCheckKind::Http {
        path: path.to_owned(),
        expected_status: status,
    }
}

/// A one-connection server: reads the request head, then answers with `reply` (or, with
/// `None`, never answers and waits for the client to go away). Returns the request it read.
fn serve(reply: Option<&'static [u8]>) -> (SocketAddr, thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut req = Vec::new();
        let mut byte = [0u8; 1];
        while !req.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
            req.push(byte[0]);
        }
        match reply {
            Some(r) => {
                let _ = s.write_all(r);
            }
            None => {
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }
        }
        String::from_utf8_lossy(&req).into_owned()
    });
    (addr, handle)
}

fn run(addr: SocketAddr, kind: &HealthCheckKind, timeout: Duration) -> Result<(), String> {
    async_io::block_on(probe(addr, "app.example", kind, timeout, None))
}

#[test]
fn http_probe_passes_on_the_expected_status() {
    let (addr, server) = serve(Some(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    assert_eq!(run(addr, &http("/healthz", 200), SHORT), Ok(()));
    assert_eq!(
        server.join().unwrap(),
        "GET /healthz HTTP/1.1\r\nHost: app.example\r\nUser-Agent: sluice-health-check\r\n\
         Connection: close\r\n\r\n"
    );
}

#[test]
fn http_probe_fails_on_another_status() {
    let (addr, server) = serve(Some(b"HTTP/1.1 500 Internal Server Error\r\n\r\n"));
    assert_eq!(
        run(addr, &http("/", 200), SHORT),
        Err("status 500, expected 200".to_owned())
    );
    server.join().unwrap();
}

#[test]
fn http_probe_expecting_204_passes_on_204() {
    let (addr, server) = serve(Some(b"HTTP/1.1 204 No Content\r\n\r\n"));
    assert_eq!(run(addr, &http("/", 204), SHORT), Ok(()));
    server.join().unwrap();
}

#[test]
fn http_probe_skips_interim_responses() {
    let (addr, server) = serve(Some(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    ));
    assert_eq!(run(addr, &http("/", 200), SHORT), Ok(()));
    server.join().unwrap();
}

#[test]
fn http_probe_fails_when_the_server_closes() {
    let (addr, server) = serve(Some(b""));
    assert_eq!(
        run(addr, &http("/", 200), SHORT),
        Err("closed without a response".to_owned())
    );
    server.join().unwrap();
    let (addr, server) = serve(Some(b"HTTP/1.1 200 OK\r\nX: y\r\n"));
    assert_eq!(
        run(addr, &http("/", 200), SHORT),
        Err("closed in the response head".to_owned())
    );
    server.join().unwrap();
}

#[test]
fn http_probe_fails_on_garbage() {
    let (addr, server) = serve(Some(b"SSH-2.0-OpenSSH_9.6\r\n"));
    let err = run(addr, &http("/", 200), SHORT).unwrap_err();
    assert!(err.starts_with("bad response: "), "{err}");
    server.join().unwrap();
}

#[test]
fn http_probe_fails_on_an_endless_head() {
    static HUGE: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
        let mut v = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..2000 {
            v.extend_from_slice(format!("X-{i}: aaaaaaaa\r\n").as_bytes());
        }
        v
    });
    let (addr, server) = serve(Some(HUGE.as_slice()));
    let err = run(addr, &http("/", 200), SHORT).unwrap_err();
    // Either our 8 KiB limit or the codec's header-count limit stops it first.
    assert!(
        err == "response head over 8 KiB" || err.starts_with("bad response"),
        "{err}"
    );
    server.join().unwrap();
}

#[test]
fn http_probe_times_out_when_the_server_never_answers() {
    let (addr, server) = serve(None);
    assert_eq!(
        run(addr, &http("/", 200), Duration::from_millis(100)),
        Err("timeout after 100ms".to_owned())
    );
    server.join().unwrap();
}

#[test]
fn http_probe_refuses_to_send_a_split_request() {
    let (addr, server) = serve(Some(b"HTTP/1.1 200 OK\r\n\r\n"));
    let err =
        async_io::block_on(probe(addr, "a\r\nX: y", &http("/", 200), SHORT, None)).unwrap_err();
    assert_eq!(err, "invalid host or path for the check request");
    server.join().unwrap(); // it saw EOF: nothing was sent
}

#[test]
fn tcp_probe_passes_when_connect_succeeds() {
    let (addr, server) = serve(Some(b""));
    assert_eq!(run(addr, &HealthCheckKind::Tcp, SHORT), Ok(()));
    server.join().unwrap();
}

#[test]
fn tcp_probe_reports_a_refused_connect() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    assert_eq!(
        run(addr, &HealthCheckKind::Tcp, SHORT),
        Err("connect refused".to_owned())
    );
}
