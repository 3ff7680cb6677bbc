//! TCP load-balancing policies through the real binary, one test per policy, judged by which
//! tagged backend answers each connection.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;

/// Three echo backends named A, B, C.
fn three_backends() -> [TcpBackend; 3] {
    [
        TcpBackend::echo("A"),
        TcpBackend::echo("B"),
        TcpBackend::echo("C"),
    ]
}

fn addrs(backends: &[TcpBackend]) -> Vec<std::net::SocketAddr> {
    backends.iter().map(TcpBackend::addr).collect()
}

/// Open `n` connections one after the other (each closed before the next) and return the
/// backend name each reached.
fn names_of(n: usize, port: u16) -> Vec<String> {
    (0..n).map(|_| hello(local(port)).1).collect()
}

fn counts(names: &[String]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for n in names {
        *counts.entry(n.clone()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn balance_none_sends_everything_to_the_first_target() {
    let backends = three_backends();
    let port = free_port();
    let _sluice = Sluice::start(&tcp_config(port, &addrs(&backends), "none", ""));

    let names = names_of(10, port);
    assert!(names.iter().all(|n| n == "A"), "all to A: {names:?}");
    assert_eq!(backends[1].accepted(), 0, "B is only a fail-over target");
    assert_eq!(backends[2].accepted(), 0, "C is only a fail-over target");
}

#[test]
fn balance_round_robin_rotates_exactly() {
    let backends = three_backends();
    let port = free_port();
    let _sluice = Sluice::start(&tcp_config(port, &addrs(&backends), "round_robin", ""));

    let names = names_of(12, port);
    let mut first_three = names[..3].to_vec();
    first_three.sort();
    assert_eq!(
        first_three,
        ["A", "B", "C"],
        "one full turn first: {names:?}"
    );
    for (i, n) in names.iter().enumerate() {
        assert_eq!(
            n,
            &names[i % 3],
            "connection {i} breaks the rotation: {names:?}"
        );
    }
    let c = counts(&names);
    assert_eq!((c["A"], c["B"], c["C"]), (4, 4, 4), "{names:?}");
}

#[test]
fn balance_random_spreads_over_all_targets() {
    let backends = three_backends();
    let port = free_port();
    let _sluice = Sluice::start(&tcp_config(port, &addrs(&backends), "random", ""));

    let names = names_of(60, port);
    let c = counts(&names);
    for b in ["A", "B", "C"] {
        let hits = c.get(b).copied().unwrap_or(0);
        assert!(hits > 0, "{b} never chosen in 60 connections: {c:?}");
        assert!(hits <= 42, "{b} got {hits} of 60 (> 70%): {c:?}");
    }
}

#[test]
fn balance_source_ip_sticks_across_reload_and_restart() {
    // Five targets so that a hash seeded per process would pick another one 4 times in 5.
    let backends: Vec<TcpBackend> = ["A", "B", "C", "D", "E"]
        .iter()
        .map(|n| TcpBackend::echo(n))
        .collect();
    let port = free_port();
    let config = tcp_config(port, &addrs(&backends), "source_ip", "");
    let mut sluice = Sluice::start(&config);

    let names = names_of(15, port);
    let chosen = names[0].clone();
    assert!(
        names.iter().all(|n| *n == chosen),
        "one client IP, one target: {names:?}"
    );

    // Same targets after a reload (an unchanged plan is not re-applied, so change a setting
    // that does not touch balancing).
    sluice.rewrite(&format!("{config}tcp_connect_timeout = \"3s\"\n"));
    sluice.wait_for("config applied (generation 2)", LOG_TIMEOUT);
    let after_reload = names_of(5, port);
    assert!(
        after_reload.iter().all(|n| *n == chosen),
        "after reload expected {chosen}: {after_reload:?}"
    );

    // And after a restart with the very same config.
    sluice.term();
    let status = sluice.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "first instance exit: {status}");
    drop(sluice);
    let _sluice = Sluice::start(&config);
    let after_restart = names_of(5, port);
    assert!(
        after_restart.iter().all(|n| *n == chosen),
        "after restart expected {chosen}: {after_restart:?}"
    );
}

#[test]
fn balance_source_socket_spreads_over_source_ports() {
    let backends = three_backends();
    let port = free_port();
    let _sluice = Sluice::start(&tcp_config(port, &addrs(&backends), "source_socket", ""));

    let names = names_of(60, port);
    let c = counts(&names);
    assert!(
        c.len() > 1,
        "60 source ports all hashed to one target: {c:?}"
    );
}

#[test]
fn balance_least_conn_prefers_the_idle_target() {
    let backends = three_backends();
    let port = free_port();
    let mut sluice = Sluice::start(&tcp_config(port, &addrs(&backends), "least_conn", ""));

    // Held open: each new connection must go to a target with none.
    let (c1, n1) = hello(local(port));
    let (mut c2, n2) = hello(local(port));
    let (mut c3, n3) = hello(local(port));
    let mut held = vec![n1.clone(), n2.clone(), n3.clone()];
    held.sort();
    assert_eq!(
        held,
        ["A", "B", "C"],
        "three open connections: {n1} {n2} {n3}"
    );

    // Free the first target: it is now the only one without a connection.
    let first = c1.local_addr().unwrap();
    drop(c1);
    sluice.wait_tcp_access(first);
    let (mut c4, n4) = hello(local(port));
    assert_eq!(
        n4, n1,
        "the next connection goes to the target that has none"
    );

    echo_roundtrip(&mut c2, "c2");
    echo_roundtrip(&mut c3, "c3");
    echo_roundtrip(&mut c4, "c4");
}
