//! The protocol multiplexer through the real binary: one port, routed by protocol, TLS SNI
//! (exact and wildcard) and ALPN, with the probed bytes forwarded unchanged; no match goes to
//! the default target, or is closed when there is none; a trickling client is still routed;
//! a silent one reaches `on_timeout`; UDP flows routed by protocol.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use common::hello::*;
use common::*;

struct Backends {
    names: Vec<TcpBackend>,
}

impl Backends {
    fn new(names: &[&str]) -> Self {
        Backends {
            names: names.iter().map(|n| TcpBackend::echo(n)).collect(),
        }
    }
    fn addr(&self, name: &str) -> SocketAddr {
        self.names
            .iter()
            .find(|b| b.name() == name)
            .expect("backend")
            .addr()
    }
}

fn mux_config(port: u16, b: &Backends, with_default: bool) -> String {
    let default = if with_default {
        format!("tcp_target = [\"{}\"]\n", b.addr("DEFAULT"))
    } else {
        String::new()
    };
    format!(
        r#"listen_port = {port}
listen_address_v4 = "127.0.0.1"
{default}probe_timeout = "600ms"
on_timeout = "banner_first"

[protocols.a]
protocol = "tls"
target = ["{a}"]
server_names = ["a.example.com"]

[protocols.b]
protocol = "tls"
target = ["{bb}"]
server_names = ["b.example.com"]

[protocols.lab]
protocol = "tls"
target = ["{lab}"]
server_names = ["*.lab.example.com"]

[protocols.h2]
protocol = "tls"
target = ["{h2}"]
alpn = ["h2"]

[protocols.h1]
protocol = "tls"
target = ["{h1}"]
alpns = ["http/1.1"]

[protocols.ssh]
protocol = "ssh"
target = ["{ssh}"]

[protocols.web]
protocol = "http"
target = ["{web}"]

[protocols.socks]
protocol = "socks5"
target = ["{socks}"]

[protocols.pg]
protocol = "postgres"
target = ["{pg}"]

[protocols.banner_first]
protocol = "xmpp"
target = ["{silent}"]
"#,
        a = b.addr("A"),
        bb = b.addr("B"),
        lab = b.addr("LAB"),
        h2 = b.addr("H2"),
        h1 = b.addr("H1"),
        ssh = b.addr("SSH"),
        web = b.addr("WEB"),
        socks = b.addr("SOCKS"),
        pg = b.addr("PG"),
        silent = b.addr("SILENT"),
    )
}

const ALL: &[&str] = &[
    "A", "B", "LAB", "H2", "H1", "SSH", "WEB", "SOCKS", "PG", "SILENT", "DEFAULT",
];

/// Send `first` through the mux; return the backend's name and check that exactly the bytes
/// sent came back (the echo proves the probed prefix was forwarded unchanged).
fn route_of(port: u16, first: &[u8]) -> String {
    let mut c = connect(local(port));
    c.write_all(first).unwrap();
    let name = read_line(&mut c).unwrap_or_else(|e| panic!("no backend answered: {e}"));
    let mut echo = vec![0u8; first.len()];
    c.read_exact(&mut echo)
        .unwrap_or_else(|e| panic!("echo from {name}: {e}"));
    assert_eq!(
        echo, first,
        "bytes reaching {name} differ from what the client sent"
    );
    name
}

#[test]
fn one_port_routes_by_protocol_sni_and_alpn() {
    let b = Backends::new(ALL);
    let port = free_port();
    let _sluice = Sluice::start(&mux_config(port, &b, true));
    let cases: &[(&str, Vec<u8>)] = &[
        ("A", client_hello(Some("a.example.com"), &[])),
        ("A", client_hello(Some("A.Example.COM"), &["h2"])),
        ("B", client_hello(Some("b.example.com"), &["http/1.1"])),
        ("LAB", client_hello(Some("box.lab.example.com"), &[])),
        (
            "H2",
            client_hello(Some("other.example.com"), &["h2", "http/1.1"]),
        ),
        ("H1", client_hello(None, &["http/1.1"])),
        ("DEFAULT", client_hello(Some("lab.example.com"), &[])),
        ("DEFAULT", client_hello(None, &["dot"])),
        ("SSH", SSH_BANNER.to_vec()),
        ("WEB", HTTP_GET.to_vec()),
        ("SOCKS", SOCKS5_GREETING.to_vec()),
        ("PG", PG_SSL_REQUEST.to_vec()),
        (
            "DEFAULT",
            b"\x00\x01binary junk that no probe claims\n".to_vec(),
        ),
    ];
    for (want, first) in cases {
        assert_eq!(
            route_of(port, first),
            *want,
            "first bytes {:?}",
            String::from_utf8_lossy(first)
        );
    }
}

#[test]
fn access_line_names_route_protocol_and_sni() {
    let b = Backends::new(ALL);
    let port = free_port();
    let mut sluice = Sluice::start(&mux_config(port, &b, true));
    let mut c = connect(local(port));
    let client = c.local_addr().unwrap();
    c.write_all(&client_hello(Some("b.example.com"), &[]))
        .unwrap();
    assert_eq!(read_line(&mut c).unwrap(), "B");
    drop(c);
    let line = sluice.wait_tcp_access(client);
    assert_eq!(field(&line, "route"), Some("b"), "{line}");
    assert_eq!(field(&line, "proto"), Some("tls"), "{line}");
    assert_eq!(field(&line, "sni"), Some("b.example.com"), "{line}");
}

#[test]
fn no_match_without_default_is_closed_and_logged() {
    let b = Backends::new(ALL);
    let port = free_port();
    let mut sluice = Sluice::start(&mux_config(port, &b, false));
    let mut c = connect(local(port));
    let client = c.local_addr().unwrap();
    c.write_all(b"\x00\x01binary junk\n").unwrap();
    assert_closed_without_data(&mut c, "unmatched client without tcp_target");
    let line = sluice.wait_tcp_access(client);
    assert_eq!(field(&line, "end"), Some("no_route"), "{line}");
    // A TLS name no rule claims falls back like any other unmatched connection: closed too.
    let mut c = connect(local(port));
    c.write_all(&client_hello(Some("nobody.example.net"), &[]))
        .unwrap();
    assert_closed_without_data(&mut c, "unclaimed SNI without tcp_target");
    assert!(
        b.names.iter().all(|x| x.accepted() == 0),
        "nothing may reach a backend"
    );
}

#[test]
fn a_client_sending_one_byte_every_10ms_is_still_routed() {
    let b = Backends::new(ALL);
    let port = free_port();
    let mut config = mux_config(port, &b, true);
    // The whole hello takes longer than the default 600 ms here; the deadline is per probe.
    config = config.replace("probe_timeout = \"600ms\"", "probe_timeout = \"5s\"");
    let _sluice = Sluice::start(&config);
    let hello = client_hello(Some("box.lab.example.com"), &["h2"]);
    let mut c = connect(local(port));
    for byte in &hello {
        c.write_all(std::slice::from_ref(byte)).unwrap();
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(read_line(&mut c).unwrap(), "LAB");
    let mut echo = vec![0u8; hello.len()];
    c.read_exact(&mut echo).unwrap();
    assert_eq!(echo, hello);
}

#[test]
fn a_silent_client_reaches_on_timeout_after_the_probe_timeout() {
    let b = Backends::new(ALL);
    let port = free_port();
    let _sluice = Sluice::start(&mux_config(port, &b, true));
    let started = Instant::now();
    let mut c = connect(local(port));
    assert_eq!(
        read_line(&mut c).unwrap(),
        "SILENT",
        "server-speaks-first backend"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(550),
        "routed before the probe timeout: {waited:?}"
    );
    echo_roundtrip(&mut c, "after the banner");
}

#[test]
fn a_silent_client_without_on_timeout_goes_to_the_default() {
    let b = Backends::new(ALL);
    let port = free_port();
    let config = mux_config(port, &b, true).replace("on_timeout = \"banner_first\"\n", "");
    let _sluice = Sluice::start(&config);
    let mut c = connect(local(port));
    assert_eq!(read_line(&mut c).unwrap(), "DEFAULT");
}

#[test]
fn udp_flows_routed_by_protocol_and_default() {
    let wg = UdpBackend::echo("WG");
    let dflt = UdpBackend::echo("UDEFAULT");
    let port = free_port();
    let config = format!(
        "listen_port = {port}\nlisten_address_v4 = \"127.0.0.1\"\nudp_target = [\"{}\"]\n\
         [protocols.wg]\nprotocol = \"wireguard\"\ntarget = [\"{}\"]\nidle_lifetime = 30\n",
        dflt.addr(),
        wg.addr()
    );
    let _sluice = Sluice::start(&config);
    let tunnel = udp_client();
    let init = wireguard_initiation(7);
    let reply = udp_ask(&tunnel, local(port), &init);
    assert_eq!(reply.backend, "WG");
    assert_eq!(
        reply.payload, init,
        "the initiation reached WireGuard unchanged"
    );
    // Later datagrams of the same flow follow it, whatever they look like.
    assert_eq!(
        udp_ask(&tunnel, local(port), b"transport data").backend,
        "WG"
    );
    let other = udp_client();
    assert_eq!(
        udp_ask(&other, local(port), b"not wireguard").backend,
        "UDEFAULT"
    );
}
