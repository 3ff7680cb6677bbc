//! Copying bytes both ways between two TCP streams with half-close propagation, byte
//! counters and an idle deadline. Does IO.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};

/// Per-direction copy buffer: large enough for loopback throughput, small enough for routers.
pub const RELAY_BUF: usize = 32 * 1024;

/// How a relayed connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The client finished sending first (then the upstream finished too).
    ClientClosed,
    /// The upstream finished sending first.
    UpstreamClosed,
    IdleTimeout,
    /// Still open when the shutdown drain deadline passed.
    Shutdown,
    Error,
}

impl End {
    pub fn as_str(self) -> &'static str {
        match self {
            End::ClientClosed => "client_closed",
            End::UpstreamClosed => "upstream_closed",
            End::IdleTimeout => "idle_timeout",
            End::Shutdown => "shutdown",
            End::Error => "error",
        }
    }
}

/// Bytes moved and how it ended.
pub struct Outcome {
    pub up: u64,
    pub down: u64,
    pub end: End,
    pub error: Option<io::Error>,
}

/// Relay until both sides have finished, one side fails, nothing moved for `idle` (zero
/// disables the idle deadline), or `cut_off` resolves (shutdown deadline). `on_bytes` sees every chunk's direction and size
/// (true = client to upstream), for live counters.
pub async fn relay(
    client: &Async<TcpStream>,
    upstream: &Async<TcpStream>,
    idle: Duration,
    cut_off: impl Future<Output = ()>,
    on_bytes: &dyn Fn(bool, usize),
) -> Outcome {
    let last = Cell::new(Instant::now());
    let up = Cell::new(0u64);
    let down = Cell::new(0u64);
    let first_eof: Cell<Option<End>> = Cell::new(None);

    let pump = |from, to, count, is_up| pump(from, to, count, is_up, &last, &first_eof, on_bytes);
    let both = future::try_zip(
        pump(client, upstream, &up, true),
        pump(upstream, client, &down, false),
    );
    let watchdog = async {
        loop {
            let deadline = last.get() + idle;
            Timer::at(deadline).await;
            if last.get() + idle <= Instant::now() {
                return Ok(((), ()));
            }
        }
    };
    let stopped: Cell<Option<End>> = Cell::new(None);
    let idle_stop = async {
        if idle.is_zero() {
            future::pending::<()>().await;
        }
        let r = watchdog.await;
        stopped.set(Some(End::IdleTimeout));
        r
    };
    let shutdown_stop = async {
        cut_off.await;
        stopped.set(Some(End::Shutdown));
        Ok(((), ()))
    };
    let result = future::or(both, future::or(idle_stop, shutdown_stop)).await;
    let (end, error) = match result {
        _ if stopped.get().is_some() => (stopped.get().unwrap_or(End::Error), None),
        Ok(_) => (first_eof.get().unwrap_or(End::ClientClosed), None),
        Err(e) => (End::Error, Some(e)),
    };
    Outcome {
        up: up.get(),
        down: down.get(),
        end,
        error,
    }
}

async fn pump(
    from: &Async<TcpStream>,
    to: &Async<TcpStream>,
    count: &Cell<u64>,
    is_up: bool,
    last: &Cell<Instant>,
    first_eof: &Cell<Option<End>>,
    on_bytes: &dyn Fn(bool, usize),
) -> io::Result<()> {
    let mut buf = vec![0u8; RELAY_BUF];
    loop {
        let n = (&*from).read(&mut buf).await?;
        if n == 0 {
            if first_eof.get().is_none() {
                first_eof.set(Some(if is_up {
                    End::ClientClosed
                } else {
                    End::UpstreamClosed
                }));
            }
            // Propagate the half-close; the peer may already be gone, which is fine.
            let _ = to.get_ref().shutdown(Shutdown::Write);
            return Ok(());
        }
        let chunk = buf.get(..n).unwrap_or_default();
        (&*to).write_all(chunk).await?;
        count.set(count.get() + n as u64);
        last.set(Instant::now());
        on_bytes(is_up, n);
    }
}
