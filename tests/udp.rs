//! UDP relay through the real binary: many concurrent flows each answered on the right
//! socket from the listener address, and idle flows expiring.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;

use common::*;

fn udp_config(port: u16, targets: &[SocketAddr], extra: &str) -> String {
    format!(
        "listen_port = {port}\n\
         listen_address_v4 = \"127.0.0.1\"\n\
         udp_target = {}\n\
         udp_load_balance = \"none\"\n\
         {extra}",
        toml_addrs(targets)
    )
}

#[test]
fn udp_many_flows_each_get_their_own_answers() {
    const CLIENTS: usize = 50;
    const ROUNDS: usize = 20;
    let u = UdpBackend::echo("U1");
    let port = free_port();
    let listener = local(port);
    let _sluice = Sluice::start(&udp_config(port, &[u.addr()], "udp_idle_lifetime = 30\n"));

    let clients: Vec<_> = (0..CLIENTS).map(|_| udp_client()).collect();
    // The upstream address the backend saw for each client's flow.
    let mut upstream: Vec<Option<SocketAddr>> = vec![None; CLIENTS];
    for round in 0..ROUNDS {
        // Every client has one datagram in flight at a time; 50 flows interleave.
        for (i, c) in clients.iter().enumerate() {
            c.send_to(format!("c{i}-d{round}").as_bytes(), listener)
                .expect("send datagram");
        }
        for (i, c) in clients.iter().enumerate() {
            let reply = udp_recv(c);
            assert_eq!(reply.from, listener, "reply source for client {i}");
            assert_eq!(reply.backend, "U1");
            assert_eq!(
                String::from_utf8_lossy(&reply.payload),
                format!("c{i}-d{round}"),
                "client {i} got another flow's answer"
            );
            match upstream[i] {
                None => upstream[i] = Some(reply.upstream),
                Some(seen) => assert_eq!(
                    seen, reply.upstream,
                    "client {i}: one flow must keep one upstream socket"
                ),
            }
        }
    }
    let distinct: HashSet<_> = upstream.iter().flatten().collect();
    assert_eq!(
        distinct.len(),
        CLIENTS,
        "each flow has its own upstream socket"
    );
    assert_eq!(
        u.peers().len(),
        CLIENTS * ROUNDS,
        "datagrams at the backend"
    );
}

#[test]
fn udp_idle_flow_expires_and_the_next_datagram_opens_a_new_one() {
    let u = UdpBackend::echo("U1");
    let port = free_port();
    let listener = local(port);
    let mut sluice = Sluice::start(&udp_config(port, &[u.addr()], "udp_idle_lifetime = 1\n"));

    let c = udp_client();
    let client = c.local_addr().unwrap();
    let first = udp_ask(&c, listener, b"first");
    assert_eq!(first.from, listener);

    let line = sluice.wait_access("udp", client);
    assert!(
        line.contains(&format!("udp {client} -> {listener} ")),
        "client and listener in access line: {line}"
    );
    assert_eq!(field(&line, "end"), Some("idle_timeout"), "{line}");
    let target = u.addr().to_string();
    assert_eq!(field(&line, "target"), Some(target.as_str()), "{line}");
    let down = format!("U1|{}|first", first.upstream).len() as u64;
    assert_eq!(up_down(&line), (5, down), "{line}");

    let second = udp_ask(&c, listener, b"second");
    assert_eq!(second.from, listener);
    assert_ne!(
        second.upstream.port(),
        first.upstream.port(),
        "after expiry a new flow must use a new upstream socket"
    );
}
