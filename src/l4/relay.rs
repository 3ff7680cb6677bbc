//! Moving bytes both ways between two TCP streams (splice(2) through a pipe, or a buffer
//! copy) with half-close propagation, byte counters and an idle deadline. Does IO.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::{Shutdown, TcpStream};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};

use crate::spare::Spare;
use crate::sys;

/// Per-direction copy buffer when splice is unavailable: large enough for loopback
/// throughput, small enough for routers.
pub const RELAY_BUF: usize = 32 * 1024;
/// Bytes asked of one splice(2) into the pipe: the default pipe capacity (16 pages).
pub const SPLICE_CHUNK: usize = 64 * 1024;

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

    let pump = |from, to, count, is_up| {
        let dir = Direction {
            count,
            is_up,
            last: &last,
            first_eof: &first_eof,
            on_bytes,
        };
        pump(from, to, dir)
    };
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

/// What one direction of a relay shares with the other and with the caller.
struct Direction<'a> {
    count: &'a Cell<u64>,
    is_up: bool,
    last: &'a Cell<Instant>,
    first_eof: &'a Cell<Option<End>>,
    on_bytes: &'a dyn Fn(bool, usize),
}

impl Direction<'_> {
    fn moved(&self, n: usize) {
        self.count.set(self.count.get() + n as u64);
        self.last.set(Instant::now());
        (self.on_bytes)(self.is_up, n);
    }

    fn eof(&self, to: &Async<TcpStream>) {
        if self.first_eof.get().is_none() {
            let end = if self.is_up {
                End::ClientClosed
            } else {
                End::UpstreamClosed
            };
            self.first_eof.set(Some(end));
        }
        // Propagate the half-close; the peer may already be gone, which is fine.
        let _ = to.get_ref().shutdown(Shutdown::Write);
    }
}

/// One direction: splice(2) through a pipe when one can be had (the bytes never enter user
/// space), else copy through a buffer. The pipe or buffer is taken when this direction
/// first has something to move, so idle connections cost two sockets and nothing more.
async fn pump(
    from: &Async<TcpStream>,
    to: &Async<TcpStream>,
    dir: Direction<'_>,
) -> io::Result<()> {
    loop {
        // A pipe is held only during a burst: idle connections hold just their two sockets,
        // so descriptors go to connections that move data.
        from.readable().await?;
        let pipe = match take_pipe() {
            Ok(pipe) => pipe,
            Err(e) => {
                log::debug!("relay: no pipe for splice ({e}); copying through a buffer");
                return pump_copy(from, to, dir).await;
            }
        };
        // A burst that fails may leave bytes in the pipe: then the pipe is dropped, not kept.
        let burst = splice_burst(from, to, &pipe.0, &pipe.1, &dir).await?;
        give_back(pipe);
        if burst == Burst::Eof {
            dir.eof(to);
            return Ok(());
        }
    }
}

/// Empty pipes kept for the next burst (per thread; the executor is single-threaded), so a
/// short connection does not pay pipe2(2) and two close(2) per direction.
const SPARE_PIPES: usize = 16;

thread_local! {
    static SPARE: Spare<(OwnedFd, OwnedFd)> = const { Spare::new(SPARE_PIPES) };
}

/// Close the kept pipes: descriptors are short, and sockets need them more.
pub fn drop_spare_pipes() {
    SPARE.with(Spare::clear);
}

fn take_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    match SPARE.with(Spare::take) {
        Some(pipe) => Ok(pipe),
        None => sys::splice_pipe(),
    }
}

/// Keep an empty pipe for later (or close it when enough are kept).
fn give_back(pipe: (OwnedFd, OwnedFd)) {
    SPARE.with(|s| s.give(pipe));
}

#[derive(PartialEq, Eq)]
enum Burst {
    /// The socket has nothing more for now (the pipe is empty again).
    Drained,
    Eof,
}

/// Splice from `from` to `to` through the pipe until `from` has nothing queued or ends.
async fn splice_burst(
    from: &Async<TcpStream>,
    to: &Async<TcpStream>,
    pipe_out: &OwnedFd,
    pipe_in: &OwnedFd,
    dir: &Direction<'_>,
) -> io::Result<Burst> {
    loop {
        // The pipe is empty here, so WouldBlock can only mean the socket has nothing yet.
        let n = match sys::splice(from.get_ref(), pipe_in, SPLICE_CHUNK) {
            Ok(0) => return Ok(Burst::Eof),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Burst::Drained),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut left = n;
        while left > 0 {
            left -= to.write_with(|s| sys::splice(pipe_out, s, left)).await?;
        }
        dir.moved(n);
        // Less than asked: the socket had no more queued, so wait for readiness instead of
        // spending a splice(2) on hearing EAGAIN.
        if n < SPLICE_CHUNK {
            return Ok(Burst::Drained);
        }
    }
}

async fn pump_copy(
    from: &Async<TcpStream>,
    to: &Async<TcpStream>,
    dir: Direction<'_>,
) -> io::Result<()> {
    let mut buf = vec![0u8; RELAY_BUF];
    loop {
        let n = (&*from).read(&mut buf).await?;
        if n == 0 {
            dir.eof(to);
            return Ok(());
        }
        (&*to).write_all(buf.get(..n).unwrap_or_default()).await?;
        dir.moved(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A connected pair: (our end as Async, the peer as a blocking std stream).
    fn pair() -> (Async<TcpStream>, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (ours, _) = l.accept().unwrap();
        (Async::new(ours).unwrap(), peer)
    }

    /// Both pumps over the same sockets: bytes arrive intact, EOF is passed on as a
    /// half-close, and the counters see every byte.
    fn exercise(use_splice: bool) {
        let (a, mut client) = pair();
        let (b, mut server) = pair();
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let sent = payload.clone();
        let writer = std::thread::spawn(move || {
            client.write_all(&sent).unwrap();
            client.shutdown(Shutdown::Write).unwrap();
        });
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            server.read_to_end(&mut got).unwrap();
            got
        });
        let (count, last, first_eof) = (Cell::new(0), Cell::new(Instant::now()), Cell::new(None));
        let dir = Direction {
            count: &count,
            is_up: true,
            last: &last,
            first_eof: &first_eof,
            on_bytes: &|_, _| {},
        };
        smol::block_on(async {
            if use_splice {
                pump(&a, &b, dir).await.unwrap();
            } else {
                pump_copy(&a, &b, dir).await.unwrap();
            }
        });
        writer.join().unwrap();
        assert_eq!(
            reader.join().unwrap(),
            payload,
            "EOF reached the far side after every byte"
        );
        assert_eq!(count.get(), payload.len() as u64);
        assert_eq!(first_eof.get(), Some(End::ClientClosed));
    }

    #[test]
    fn splice_pump_moves_every_byte_and_the_half_close() {
        exercise(true);
    }

    #[test]
    fn splice_pump_keeps_its_emptied_pipe_for_the_next_burst() {
        exercise(true);
        let kept = || SPARE.with(Spare::len);
        assert_eq!(
            kept(),
            1,
            "the pipe went back to the spare list once drained"
        );
        exercise(true);
        assert_eq!(
            kept(),
            1,
            "the spare pipe was taken again, not a second one made"
        );
    }

    #[test]
    fn copy_pump_moves_every_byte_and_the_half_close() {
        exercise(false);
    }
}
