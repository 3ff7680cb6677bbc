//! Harness for the integration tests: runs the real `sluice` binary on loopback ports against
//! tagged backends (each answers with its own name) and reads its log lines. Does IO
//! (child processes, sockets, files).
//!
//! Everything binds `127.0.0.1` only and every run gets its own temp dir and ports, so tests
//! run in parallel safely. Waiting is always on an observable event (a log line, a socket
//! closing, a process exiting) with a deadline, never a bare sleep.

// Each test binary (`tests/*.rs`) uses a different subset of this module.
#![allow(dead_code)]

mod backends;
mod client;
pub mod hello;
pub mod http_backend;
pub mod http_client;
pub mod tls_pki;

// Re-exported for the test files; a binary that uses none of them would warn.
#[allow(unused_imports)]
pub use backends::{TcpBackend, UdpBackend};
#[allow(unused_imports)]
pub use client::*;

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a fresh process may take to log `ready:` (a cold debug build on a busy CI box).
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Read/write timeout of every client socket, so a broken relay fails a test instead of
/// hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for a log line caused by something the test just did. Reload lines need
/// one poll interval (about a second) plus parsing; this leaves a wide margin.
pub const LOG_TIMEOUT: Duration = Duration::from_secs(10);

/// The binary under test, built by cargo for this test run.
pub fn sluice_bin() -> &'static str {
    env!("CARGO_BIN_EXE_sluice")
}

/// `127.0.0.1:port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A port that is free for both TCP and UDP on 127.0.0.1 right now, and that no other test in
/// this process has been given.
pub fn free_port() -> u16 {
    static GIVEN: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let given = GIVEN.get_or_init(|| Mutex::new(HashSet::new()));
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a TCP port");
        let port = tcp.local_addr().expect("local addr").port();
        if UdpSocket::bind(local(port)).is_err() {
            continue;
        }
        if given.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// `["127.0.0.1:1", "127.0.0.1:2"]` as a TOML array.
pub fn toml_addrs(addrs: &[SocketAddr]) -> String {
    let items: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    format!("[{}]", items.join(", "))
}

/// The smallest TCP-only rpxy-l4 config: listen on `127.0.0.1:port`, default targets, policy,
/// and any `extra` lines appended verbatim.
pub fn tcp_config(port: u16, targets: &[SocketAddr], balance: &str, extra: &str) -> String {
    format!(
        "listen_port = {port}\n\
         listen_address_v4 = \"127.0.0.1\"\n\
         tcp_target = {}\n\
         tcp_load_balance = \"{balance}\"\n\
         {extra}",
        toml_addrs(targets)
    )
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "sluice-it-{}-{nanos}-{tag}-{n}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Run the binary to completion (for `--check`, `-V`, bad flags) with a deadline.
pub fn run_sluice(args: &[&str], timeout: Duration) -> Output {
    let mut child = Command::new(sluice_bin())
        .args(args)
        .env("SLUICE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sluice");
    let pipe_reader = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = pipe_reader(Box::new(child.stdout.take().unwrap()));
    let err = pipe_reader(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`sluice {}` did not exit within {timeout:?}",
                args.join(" ")
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A running `sluice -c CONFIG` with its stderr lines collected. Killed on drop; when the test
/// is failing, everything it logged is printed then.
pub struct Sluice {
    child: Child,
    dir: TempDir,
    config: PathBuf,
    rx: Receiver<String>,
    lines: Vec<String>,
    stderr_closed: bool,
}

impl Sluice {
    /// Write `config` to a fresh temp dir, run sluice on it and wait for `ready:`.
    pub fn start(config: &str) -> Sluice {
        let mut s = Sluice::spawn(config, &[]);
        s.wait_for("ready:", READY_TIMEOUT);
        s
    }

    /// Like [`Sluice::start`] with extra arguments after `-c FILE`, and without waiting for
    /// readiness (with `--log-dir` the `ready:` line is not on stderr).
    pub fn spawn(config: &str, extra_args: &[&str]) -> Sluice {
        let dir = TempDir::new("run");
        let config_path = dir.path().join("sluice.toml");
        fs::write(&config_path, config).expect("write config");
        let mut child = Command::new(sluice_bin())
            .arg("-c")
            .arg(&config_path)
            .args(extra_args)
            .env("SLUICE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluice");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        if tx.send(line.trim_end().to_owned()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Sluice {
            child,
            dir,
            config: config_path,
            rx,
            lines: Vec::new(),
            stderr_closed: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The config file sluice was started with (absolute).
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// This run's temp dir (holds the config; free for the test to use).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The first stderr line (seen so far or arriving before `timeout`) containing `needle`.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        self.wait_line(&format!("containing `{needle}`"), timeout, |l| {
            l.contains(needle)
        })
    }

    /// The first stderr line (seen so far or arriving before `timeout`) for which `pred` holds;
    /// panics naming `what` when none comes.
    pub fn wait_line(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        let mut checked = 0;
        loop {
            if let Some(line) = self.lines[checked..].iter().find(|l| pred(l)) {
                return line.clone();
            }
            checked = self.lines.len();
            if self.stderr_closed {
                let status = self.child.try_wait().ok().flatten();
                panic!(
                    "sluice closed stderr (exit status {status:?}) before logging a line {what}"
                );
            }
            let now = Instant::now();
            if now >= deadline {
                panic!("no sluice log line {what} within {timeout:?}");
            }
            match self.rx.recv_timeout(deadline - now) {
                Ok(line) => self.lines.push(line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.stderr_closed = true,
            }
        }
    }

    /// The access line of the TCP connection whose client end is `client`.
    pub fn wait_tcp_access(&mut self, client: SocketAddr) -> String {
        self.wait_access("tcp", client)
    }

    /// The access line (`tcp` or `udp`) of the connection or flow whose client end is `client`.
    pub fn wait_access(&mut self, transport: &str, client: SocketAddr) -> String {
        let what = format!("with `{transport} {client} -> … end=`");
        self.wait_line(&what, LOG_TIMEOUT, |l| is_access_line(l, transport, client))
    }

    /// Every stderr line received so far.
    pub fn lines(&mut self) -> &[String] {
        loop {
            match self.rx.try_recv() {
                Ok(line) => self.lines.push(line),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.stderr_closed = true;
                    break;
                }
            }
        }
        &self.lines
    }

    /// Replace the config in place (truncate and write: same inode).
    pub fn rewrite(&self, config: &str) {
        fs::write(&self.config, config).expect("rewrite config");
    }

    /// Replace the config by writing a sibling file and renaming it over (new inode), the way
    /// editors and config management tools do.
    pub fn replace(&self, config: &str) {
        let tmp = self.config.with_extension("toml.new");
        fs::write(&tmp, config).expect("write new config");
        fs::rename(&tmp, &self.config).expect("rename config into place");
    }

    /// Send a signal by name (`HUP`, `TERM`, `USR1`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    pub fn hup(&self) {
        self.signal("HUP");
    }

    pub fn term(&self) {
        self.signal("TERM");
    }

    /// Wait for the process to exit, then collect the rest of its stderr.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                panic!("sluice did not exit within {timeout:?}");
            }
            thread::sleep(Duration::from_millis(10));
        };
        self.drain_stderr(Duration::from_secs(2));
        status
    }

    fn drain_stderr(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.stderr_closed {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match self.rx.recv_timeout(deadline - now) {
                Ok(line) => self.lines.push(line),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => self.stderr_closed = true,
            }
        }
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            self.drain_stderr(Duration::from_secs(1));
            eprintln!(
                "---- sluice (pid {}) stderr ----\n{}\n---- end of sluice stderr ----",
                self.child.id(),
                self.lines.join("\n")
            );
        }
    }
}

/// Whether `line` is the access line (`tcp`/`udp` `CLIENT -> LISTENER … end=REASON`) of the
/// connection or flow from `client` (other log lines may name the same addresses).
pub fn is_access_line(line: &str, transport: &str, client: SocketAddr) -> bool {
    line.contains(&format!("{transport} {client} -> ")) && field(line, "end").is_some()
}

/// The value of `key=value` in a log line, if present.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// The `up=` and `down=` byte counts of an access line.
pub fn up_down(line: &str) -> (u64, u64) {
    let num = |k| {
        field(line, k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no numeric `{k}=` in access line: {line}"))
    };
    (num("up"), num("down"))
}

/// Poll a file until one of its lines contains `needle`; returns that line.
pub fn wait_for_file_line(path: &Path, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            return line.to_owned();
        }
        if Instant::now() >= deadline {
            panic!(
                "no line containing `{needle}` in {} within {timeout:?}; it holds:\n{text}",
                path.display()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
}
