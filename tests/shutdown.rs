//! SIGTERM on the real binary: stop accepting, drain open connections, exit 0 — as soon as
//! they close, or at `drain_timeout` when they do not.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn sigterm_drains_and_exits_as_soon_as_the_last_connection_closes() {
    let a = TcpBackend::echo("A");
    let port = free_port();
    let mut sluice = Sluice::start(&tcp_config(
        port,
        &[a.addr()],
        "none",
        "drain_timeout = \"10s\"\n",
    ));
    let (mut open, _) = hello(local(port));

    sluice.term();
    sluice.wait_for("draining", LOG_TIMEOUT);
    echo_roundtrip(&mut open, "during drain");
    assert_refuses_new_connections(local(port));
    echo_roundtrip(&mut open, "still during drain");
    assert_eq!(
        a.accepted(),
        1,
        "nothing new reached the backend while draining"
    );

    let closed = Instant::now();
    drop(open);
    let status = sluice.wait_exit(Duration::from_secs(9));
    let took = closed.elapsed();
    assert_eq!(status.code(), Some(0), "exit status after drain: {status}");
    assert!(
        took < Duration::from_secs(3),
        "exit took {took:?} after the last connection closed (drain_timeout is 10 s)"
    );
}

#[test]
fn sigterm_closes_lingering_connections_at_drain_timeout() {
    let a = TcpBackend::echo("A");
    let port = free_port();
    let mut sluice = Sluice::start(&tcp_config(
        port,
        &[a.addr()],
        "none",
        "drain_timeout = \"1s\"\n",
    ));
    let (mut open, _) = hello(local(port));
    let client = open.local_addr().unwrap();

    let sent = Instant::now();
    sluice.term();
    sluice.wait_for("draining", LOG_TIMEOUT);
    let status = sluice.wait_exit(Duration::from_secs(10));
    let took = sent.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after drain timeout: {status}"
    );
    assert!(
        took >= Duration::from_millis(900),
        "exited after {took:?}, before drain_timeout (1 s) with a connection open"
    );
    assert!(
        took < Duration::from_secs(5),
        "exit took {took:?} with drain_timeout = 1s"
    );
    assert_closed_without_data(&mut open, "lingering connection after exit");
    let line = sluice.wait_tcp_access(client);
    assert_eq!(field(&line, "end"), Some("shutdown"), "{line}");
}
