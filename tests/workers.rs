//! `workers = 2` through the real binary: a second event-loop thread on SO_REUSEPORT sockets
//! serves the same ports; connection limits are process-wide, a reload reaches every worker
//! before it is reported, TLS sessions resume whichever worker answers, and SIGTERM drains
//! the connections of every worker.

mod common;

use std::time::Duration;

use common::http_backend::HttpBackend;
use common::tls_pki::*;
use common::*;

/// Threads of `pid` named as sluice names its extra workers.
fn worker_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("sluice-worker-"))
        .count()
}

#[test]
fn two_workers_share_the_port_and_one_connection_limit() {
    let a = TcpBackend::echo("A");
    let port = free_port();
    let extra = "workers = 2\ntcp_max_connections = 4\n";
    let mut sluice = Sluice::start(&tcp_config(port, &[a.addr()], "none", extra));
    sluice.wait_for("(2 workers)", LOG_TIMEOUT);
    assert_eq!(
        worker_threads(sluice.pid()),
        1,
        "worker 1 beside the main thread"
    );

    // The kernel hands each new connection to one of the two sockets. Were the limit
    // counted per worker, the one holding fewer than four would let more in.
    let held: Vec<_> = (0..4).map(|_| hello(local(port)).0).collect();
    for i in 0..8 {
        let mut c = connect(local(port));
        let client = c.local_addr().unwrap();
        assert_closed_without_data(&mut c, &format!("connection {i} over the limit of 4"));
        let line = sluice.wait_tcp_access(client);
        assert_eq!(field(&line, "end"), Some("refused_limit"), "{line}");
    }
    assert_eq!(
        a.accepted(),
        4,
        "only the four held connections reached the backend"
    );
    drop(held);
}

#[test]
fn a_reload_is_reported_once_every_worker_has_applied_it() {
    let a = TcpBackend::echo("A");
    let b = TcpBackend::echo("B");
    let port = free_port();
    let mut sluice = Sluice::start(&tcp_config(port, &[a.addr()], "none", "workers = 2\n"));
    assert_eq!(hello(local(port)).1, "A");
    sluice.rewrite(&tcp_config(port, &[b.addr()], "none", "workers = 2\n"));
    sluice.wait_for("config applied (generation 2)", LOG_TIMEOUT);
    // Sixteen fresh connections land on both workers; each must route by the new config.
    for i in 0..16 {
        assert_eq!(hello(local(port)).1, "B", "connection {i} after the reload");
    }
    let applied = sluice
        .lines()
        .iter()
        .filter(|l| l.contains("config applied"))
        .count();
    assert_eq!(applied, 1, "one line per reload, not one per worker");
}

#[test]
fn tls_sessions_resume_on_whichever_worker_answers() {
    let dir = TempDir::new("workers-tls");
    let ca = Ca::root(dir.path(), "root");
    let leaf = ca.server(dir.path(), "a", &["a.test"]);
    let backend = HttpBackend::start("A");
    let port = free_port();
    let app = tls_app("a", "a.test", &leaf, "", backend.addr());
    let _sluice = Sluice::start(&tls_config(None, port, "workers = 2", &app));

    let mut config = (*client_config(&[&ca], None)).clone();
    config.resumption = rustls::client::Resumption::in_memory_sessions(16);
    let config = std::sync::Arc::new(config);
    let mut resumed = 0;
    for i in 0..12 {
        let mut conn = TlsConn::connect(local(port), config.clone(), "a.test")
            .unwrap_or_else(|e| panic!("handshake {i}: {e:?}"));
        // Reading the response also takes in the tickets the server sent after the
        // handshake, for the next connection to use.
        let response = conn.get("a.test", "/").expect("response");
        assert_eq!(response.status(), 200);
        if i > 0 {
            assert!(
                conn.resumed(),
                "connection {i} did not resume ({resumed} did)"
            );
            resumed += 1;
        }
    }
}

#[test]
fn sigterm_drains_the_connections_of_every_worker() {
    let a = TcpBackend::echo("A");
    let port = free_port();
    let extra = "workers = 2\ndrain_timeout = \"10s\"\n";
    let mut sluice = Sluice::start(&tcp_config(port, &[a.addr()], "none", extra));
    // Eight connections: both workers hold some (all on one would take 1 in 128).
    let mut open: Vec<_> = (0..8).map(|_| hello(local(port)).0).collect();

    sluice.term();
    sluice.wait_for("draining 8 open connection(s)", LOG_TIMEOUT);
    for (i, c) in open.iter_mut().enumerate() {
        echo_roundtrip(c, &format!("connection {i} during the drain"));
    }
    // No worker accepts anything new meanwhile.
    assert_refuses_new_connections(local(port));
    drop(open);
    let status = sluice.wait_exit(Duration::from_secs(9));
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after the drain: {status}"
    );
    let closed = sluice
        .lines()
        .iter()
        .filter(|l| l.contains("all connections closed; exiting"))
        .count();
    assert_eq!(closed, 1, "one closing line for the process");
}
