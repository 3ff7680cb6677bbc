//! Real third-party programs through one multiplexed port (the Makefile's `deps-test`
//! installs them): an `openssl s_client` TLS handshake with SNI to an `openssl s_server`
//! (which would fail if the probed ClientHello were altered: it is part of the transcript),
//! `curl` over TLS and over plain HTTP, and an OpenSSH client logging in to a real `sshd`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;

/// A child process killed on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `cmd` and wait until a line of its output (stdout or stderr) contains `ready`.
fn start_daemon(cmd: &mut Command, ready: &str) -> Daemon {
    let (daemon, rx) = spawn_lines(cmd);
    loop {
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) if line.contains(ready) => return daemon,
            Ok(_) => {}
            Err(e) => panic!("{cmd:?} never said {ready:?}: {e}"),
        }
    }
}

/// Start `cmd` with piped stdio; its output lines (stdout and stderr) arrive on the channel.
fn spawn_lines(cmd: &mut Command) -> (Daemon, mpsc::Receiver<String>) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?} (run `make deps-test`): {e}"));
    let (tx, rx) = mpsc::channel();
    for out in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    (Daemon(child), rx)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A self-signed certificate and key for `name`.
fn certificate(dir: &Path, name: &str) -> (String, String) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
        ])
        .arg(format!("/CN={name}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    (cert.display().to_string(), key.display().to_string())
}

fn tls_server(dir: &Path, name: &str, mode: &str) -> (Daemon, u16) {
    let (cert, key) = certificate(dir, name);
    let port = free_port();
    let d = start_daemon(
        Command::new("openssl")
            .args(["s_server", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-cert", &cert, "-key", &key, mode]),
        "ACCEPT",
    );
    (d, port)
}

#[test]
fn openssl_and_curl_through_the_mux_by_sni_and_plain_http() {
    let dir = TempDir::new("interop-tls");
    let (_rev, rev_port) = tls_server(dir.path(), "rev.example.com", "-rev");
    let (_www, www_port) = tls_server(dir.path(), "www.example.com", "-www");
    let port = free_port();
    let status = free_port();
    let config = format!(
        "listen_port = {port}\nlisten_address_v4 = \"127.0.0.1\"\nstatus_listen = \"127.0.0.1:{status}\"\n\
         [protocols.rev]\nprotocol = \"tls\"\ntarget = [\"127.0.0.1:{rev_port}\"]\nserver_names = [\"rev.example.com\"]\n\
         [protocols.www]\nprotocol = \"tls\"\ntarget = [\"127.0.0.1:{www_port}\"]\nserver_names = [\"www.example.com\"]\n\
         [protocols.web]\nprotocol = \"http\"\ntarget = [\"127.0.0.1:{status}\"]\n"
    );
    let mut sluice = Sluice::start(&config);

    // s_client completes the handshake (its Finished covers the ClientHello bytes) and the
    // s_server in -rev mode answers each line reversed. s_client keeps running after its
    // input ends, so read its output until the answer shows, then let Daemon kill it.
    let (mut client, lines) = spawn_lines(
        Command::new("openssl")
            .args(["s_client", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-servername", "rev.example.com", "-quiet"]),
    );
    client
        .0
        .stdin
        .take()
        .unwrap()
        .write_all(b"sluice\n")
        .unwrap();
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(IO_TIMEOUT) {
            Ok(line) if line.contains("eciuls") => break,
            Ok(line) => seen.push(line),
            Err(e) => panic!("no reversed line from s_server ({e}); s_client said {seen:?}"),
        }
    }
    drop(client);
    sluice.wait_for("sni=rev.example.com", LOG_TIMEOUT);

    let page = run(Command::new("curl")
        .args(["-sS", "--max-time", "10", "-k", "--resolve"])
        .arg(format!("www.example.com:{port}:127.0.0.1"))
        .arg(format!("https://www.example.com:{port}/")));
    assert!(
        page.contains("s_server"),
        "openssl -www page through the mux: {page:?}"
    );

    let json = run(Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{port}/status.json")));
    assert!(
        json.contains("\"protocols\""),
        "status JSON via the http rule: {json:?}"
    );
}

#[test]
fn openssh_login_through_the_mux() {
    let dir = TempDir::new("interop-ssh");
    let d = dir.path();
    let host_key = d.join("host_key");
    let user_key = d.join("user_key");
    for key in [&host_key, &user_key] {
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(key));
    }
    std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
    let user = run(Command::new("id").arg("-un")).trim().to_owned();
    let sshd_port = free_port();
    let config = d.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {sshd_port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
             UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n",
            host_key.display(),
            d.join("authorized_keys").display(),
            d.join("sshd.pid").display()
        ),
    )
    .unwrap();
    // Privilege separation wants this directory (root-run sshd).
    let _ = std::fs::create_dir_all("/run/sshd");
    let _sshd = start_daemon(
        Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config),
        "Server listening",
    );

    let port = free_port();
    let mux = format!(
        "listen_port = {port}\nlisten_address_v4 = \"127.0.0.1\"\ntcp_target = [\"127.0.0.1:9\"]\n\
         [protocols.ssh]\nprotocol = \"ssh\"\ntarget = [\"127.0.0.1:{sshd_port}\"]\n"
    );
    let mut sluice = Sluice::start(&mux);
    let out = run(Command::new("ssh")
        .args(["-i"])
        .arg(&user_key)
        .args([
            "-p",
            &port.to_string(),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
        ])
        .arg(format!("{user}@127.0.0.1"))
        .arg("echo through-sluice"));
    assert_eq!(out.trim(), "through-sluice");
    let line = sluice.wait_line("ssh access line", Duration::from_secs(10), |l| {
        l.contains("route=ssh") && l.contains("end=")
    });
    assert!(line.contains("proto=ssh"), "{line}");
}

#[test]
fn quic_handshakes_routed_by_sni_complete_through_the_mux() {
    let dir = TempDir::new("interop-quic");
    let peer = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/quic_peer.py");
    let mut servers = Vec::new();
    let mut ports = Vec::new();
    for name in ["a.example.com", "b.example.com"] {
        let (cert, key) = certificate(dir.path(), name);
        let port = free_port();
        servers.push(start_daemon(
            Command::new("python3").args([peer, "server", &port.to_string(), &cert, &key, name]),
            "listening",
        ));
        ports.push(port);
    }
    let port = free_port();
    let config = format!(
        "listen_port = {port}\nlisten_address_v4 = \"127.0.0.1\"\n\
         [protocols.qa]\nprotocol = \"quic\"\ntarget = [\"127.0.0.1:{}\"]\nserver_names = [\"a.example.com\"]\n\
         [protocols.qb]\nprotocol = \"quic\"\ntarget = [\"127.0.0.1:{}\"]\nserver_names = [\"b.example.com\"]\n",
        ports[0], ports[1]
    );
    let mut sluice = Sluice::start(&config);
    for name in ["a.example.com", "b.example.com", "a.example.com"] {
        let out = run(Command::new("python3").args([peer, "client", &port.to_string(), name]));
        assert_eq!(
            out.trim(),
            format!("{name} ping"),
            "answer through the mux for SNI {name}"
        );
    }
    drop(servers);
    // Flows end only when idle; the routing decisions are visible now.
    let _ = &mut sluice;
}
