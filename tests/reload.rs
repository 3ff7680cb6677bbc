//! Hot reload of the real binary: established TCP connections and UDP flows survive, new ones
//! follow the new config; a broken file is rejected with FILE:LINE:COL and the old config
//! keeps serving; SIGHUP forces a check; a listener that moved stops accepting.

mod common;

use std::fs::{self, File};
use std::net::SocketAddr;
use std::time::Instant;

use common::http_backend::HttpBackend;
use common::http_client::*;
use common::*;

fn tcp_udp_config(port: u16, tcp: SocketAddr, udp: SocketAddr) -> String {
    format!(
        "listen_port = {port}\n\
         listen_address_v4 = \"127.0.0.1\"\n\
         tcp_target = [\"{tcp}\"]\n\
         udp_target = [\"{udp}\"]\n\
         udp_idle_lifetime = 30\n"
    )
}

#[test]
fn reload_keeps_established_tcp_and_udp_and_routes_new_ones() {
    let (a, b) = (TcpBackend::echo("A"), TcpBackend::echo("B"));
    let (u1, u2) = (UdpBackend::echo("U1"), UdpBackend::echo("U2"));
    let port = free_port();
    let listener = local(port);
    let mut sluice = Sluice::start(&tcp_udp_config(port, a.addr(), u1.addr()));

    let (mut old_tcp, name) = hello(listener);
    assert_eq!(name, "A");
    let old_udp = udp_client();
    let before = udp_ask(&old_udp, listener, b"before");
    assert_eq!(before.backend, "U1");

    let written = Instant::now();
    sluice.rewrite(&tcp_udp_config(port, b.addr(), u2.addr()));
    sluice.wait_for("config applied (generation 2)", LOG_TIMEOUT);
    eprintln!(
        "reload: {:?} from writing the file to `config applied`",
        written.elapsed()
    );

    // The established TCP connection still talks to A (a reconnect would greet with `B`).
    echo_roundtrip(&mut old_tcp, "after reload");
    assert_eq!(b.accepted(), 0, "B must not see the old connection");
    // The established UDP flow still goes to U1, through the same upstream socket.
    let after = udp_ask(&old_udp, listener, b"after");
    assert_eq!(after.backend, "U1", "old flow after reload");
    assert_eq!(
        after.upstream, before.upstream,
        "old flow keeps its upstream socket"
    );
    assert_eq!(after.from, listener);

    // New connections and flows use the new targets.
    let (_new_tcp, name) = hello(listener);
    assert_eq!(name, "B", "new TCP connection after reload");
    let new_udp = udp_client();
    let fresh = udp_ask(&new_udp, listener, b"fresh");
    assert_eq!(fresh.backend, "U2", "new UDP flow after reload");
    assert_eq!(fresh.from, listener);

    echo_roundtrip(&mut old_tcp, "still A");
    assert_eq!(a.accepted(), 1);
}

#[test]
fn reload_rejects_a_broken_file_and_keeps_serving() {
    let (a, b) = (TcpBackend::echo("A"), TcpBackend::echo("B"));
    let port = free_port();
    let listener = local(port);
    let mut sluice = Sluice::start(&tcp_config(port, &[a.addr()], "none", ""));
    let path = sluice.config_path().display().to_string();

    // Line 3, column 1: a misspelt key.
    sluice.rewrite(&format!(
        "listen_port = {port}\n\
         listen_address_v4 = \"127.0.0.1\"\n\
         tcp_targte = [\"{}\"]\n",
        b.addr()
    ));
    sluice.wait_for("config rejected", LOG_TIMEOUT);
    let diag = sluice.wait_for(&format!("{path}:3:1:"), LOG_TIMEOUT);
    assert!(
        diag.contains("unknown key `tcp_targte`") && diag.contains("`tcp_target`"),
        "diagnostic names the key and the suggestion: {diag}"
    );

    let (_c, name) = hello(listener);
    assert_eq!(name, "A", "the old config keeps serving");
    assert_eq!(b.accepted(), 0);

    sluice.rewrite(&tcp_config(port, &[b.addr()], "none", ""));
    sluice.wait_for("config applied (generation 2)", LOG_TIMEOUT);
    let (_c, name) = hello(listener);
    assert_eq!(name, "B", "the fixed file is applied");
}

#[test]
fn sighup_forces_a_reload_the_poller_cannot_see() {
    let (a, b) = (TcpBackend::echo("A"), TcpBackend::echo("B"));
    let port = free_port();
    let listener = local(port);
    let old = tcp_config(port, &[a.addr()], "none", "");
    let mut new = tcp_config(port, &[b.addr()], "none", "");
    // Same size, same inode and (below) the old mtime: only SIGHUP can reveal the change.
    while new.len() < old.len() {
        new.push('#');
    }
    assert_eq!(new.len(), old.len(), "backend ports of equal width");
    let mut sluice = Sluice::start(&old);
    let (_c, name) = hello(listener);
    assert_eq!(name, "A");

    let mtime = fs::metadata(sluice.config_path())
        .unwrap()
        .modified()
        .unwrap();
    sluice.rewrite(&new);
    File::options()
        .write(true)
        .open(sluice.config_path())
        .and_then(|f| f.set_modified(mtime))
        .expect("restore the config's mtime");
    sluice.hup();
    sluice.wait_for("config applied (generation 2)", LOG_TIMEOUT);
    let (_c, name) = hello(listener);
    assert_eq!(name, "B", "new connection after SIGHUP reload");
}

#[test]
fn reload_moves_a_listener_and_keeps_its_open_connection() {
    let a = TcpBackend::echo("A");
    let (old_port, new_port) = (free_port(), free_port());
    let mut sluice = Sluice::start(&tcp_config(old_port, &[a.addr()], "none", ""));
    let (mut established, _) = hello(local(old_port));

    // Replaced by rename (new inode), as editors do.
    sluice.replace(&tcp_config(new_port, &[a.addr()], "none", ""));
    sluice.wait_for("config applied (generation 2)", LOG_TIMEOUT);

    assert_refuses_new_connections(local(old_port));
    echo_roundtrip(&mut established, "established survives");
    let (_c, name) = hello(local(new_port));
    assert_eq!(name, "A", "the new listener");
    echo_roundtrip(&mut established, "still");
}

/// `GET /status.json` with `Connection: close`; the whole response as text.
fn status_json(addr: SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s = connect(addr);
    s.write_all(b"GET /status.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn a_kept_socket_that_changes_job_between_l4_and_http_accepts_at_once() {
    let tcp = TcpBackend::echo("A");
    let web = HttpBackend::start("W");
    let port = free_port();
    let l4 = tcp_config(port, &[tcp.addr()], "none", "");
    let http = app1_config(port, &[web.addr()], "none", "");
    let mut sluice = Sluice::start(&l4);
    let (_c, name) = hello(local(port));
    assert_eq!(name, "A");
    // The new job's accept loop starts while the old one still watches the socket.
    sluice.rewrite(&http);
    sluice.wait_for("config applied (generation 2)", LOG_TIMEOUT);
    let r = HttpConn::connect(local(port)).get("/after");
    assert_eq!(r.backend(), "W", "the socket now serves HTTP");
    sluice.rewrite(&l4);
    sluice.wait_for("config applied (generation 3)", LOG_TIMEOUT);
    let (_d, name) = hello(local(port));
    assert_eq!(name, "A", "and L4 again");
    let failures: Vec<&String> = sluice
        .lines()
        .iter()
        .filter(|l| l.contains("accept failed"))
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn a_kept_socket_that_changes_job_between_status_page_and_l4_serves_the_new_job() {
    let a = TcpBackend::echo("A");
    let (p1, p2) = (free_port(), free_port());
    let config = |l4: u16, status: u16| {
        tcp_config(
            l4,
            &[a.addr()],
            "none",
            &format!("status_listen = \"127.0.0.1:{status}\"\n"),
        )
    };
    let mut sluice = Sluice::start(&config(p1, p2));
    assert!(
        status_json(local(p2)).contains("\"l4\""),
        "status page on p2 first"
    );
    sluice.rewrite(&config(p2, p1));
    sluice.wait_for("config applied (generation 2)", LOG_TIMEOUT);
    let (_c, name) = hello(local(p2));
    assert_eq!(name, "A", "p2 now relays to the backend");
    let page = status_json(local(p1));
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("\"l4\""),
        "p1 now serves the status page: {page}"
    );
}

#[test]
fn a_udp_address_removed_then_added_back_serves_again() {
    let u = UdpBackend::echo("U");
    let (p1, p2) = (free_port(), free_port());
    let config = |port: u16| {
        format!(
            "listen_port = {port}\nlisten_address_v4 = \"127.0.0.1\"\nudp_target = [\"{}\"]\n",
            u.addr()
        )
    };
    let mut sluice = Sluice::start(&config(p1));
    sluice.rewrite(&config(p2));
    sluice.wait_for("config applied (generation 2)", LOG_TIMEOUT);
    // p1 had no flows: its loop ended and its socket closed. Adding it back must bind anew.
    sluice.rewrite(&config(p1));
    sluice.wait_for("config applied (generation 3)", LOG_TIMEOUT);
    let c = udp_client();
    assert_eq!(udp_ask(&c, local(p1), b"back").backend, "U");
}

#[test]
fn signals_sent_the_moment_ready_is_logged_get_their_graceful_meaning() {
    // Process managers signal as soon as the service reports ready; the handlers must be in
    // place by then, or SIGHUP kills the process instead of reloading it.
    let a = TcpBackend::echo("A");
    for _ in 0..5 {
        let port = free_port();
        let mut sluice = Sluice::start(&tcp_config(port, &[a.addr()], "none", ""));
        sluice.hup();
        sluice.wait_for("SIGHUP: reloading", LOG_TIMEOUT);
        sluice.term();
        let status = sluice.wait_exit(LOG_TIMEOUT);
        assert!(status.success(), "exit after SIGTERM: {status:?}");
    }
}
