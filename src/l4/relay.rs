//! Moving bytes both ways between two TCP streams (splice(2) through a pipe, or a buffer
//! copy) with half-close propagation, byte counters and an idle deadline. Does IO.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt, future};

use crate::edge::{EdgeStream, try_again};
use crate::spare::Spare;
use crate::sys::{self, SplicePipe};
use crate::timer::Timer;

/// Per-direction copy buffer when splice is unavailable: large enough for loopback
/// throughput, small enough for routers.
pub const RELAY_BUF: usize = 32 * 1024;
/// Bytes asked of one splice(2) into the pipe: what the pipe holds.
pub const SPLICE_CHUNK: usize = sys::PIPE_SIZE;

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
    client: &EdgeStream,
    upstream: &EdgeStream,
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

    fn eof(&self, to: &EdgeStream) {
        if self.first_eof.get().is_some() {
            // The other direction ended first: both sides have finished, the relay returns
            // and both sockets are closed, which sends `to` its FIN (its bytes were all read,
            // so the close is not a reset) without a shutdown(2) of its own.
            return;
        }
        let end = if self.is_up {
            End::ClientClosed
        } else {
            End::UpstreamClosed
        };
        self.first_eof.set(Some(end));
        // Propagate the half-close; the peer may already be gone, which is fine.
        let _ = to.get_ref().shutdown(Shutdown::Write);
    }
}

/// One direction. A burst (what the socket holds when the set reports it readable) is first
/// read into the thread's scratch buffer and sent on (recv and send: for the small messages
/// of most connections, cheaper than splice's pipe and one call fewer, as a short read does
/// mean drained). A burst that fills the buffer continues with splice(2) through a pipe when
/// one can be had (the bytes never enter user space), and so does the next one while bursts
/// stay that large. Without a pipe, a buffer of the connection's own. Buffers and pipes are
/// taken only while bytes move, so idle connections cost two sockets and nothing more.
async fn pump(from: &EdgeStream, to: &EdgeStream, dir: Direction<'_>) -> io::Result<()> {
    // Whether the last burst was a large one: the next is spliced from its first byte.
    let mut bulk = false;
    loop {
        from.ready(false).await;
        if !bulk {
            match copy_burst(from, to, &dir).await? {
                Copied::Eof => {
                    dir.eof(to);
                    return Ok(());
                }
                Copied::Drained => continue,
                Copied::Full => {}
            }
        }
        // A pipe is held only during a burst: idle connections hold just their two sockets,
        // so descriptors go to connections that move data.
        let pipe = match take_pipe() {
            Ok(pipe) => pipe,
            Err(e) => {
                log::debug!("relay: no pipe for splice ({e}); copying through a buffer");
                return pump_copy(from, to, dir).await;
            }
        };
        // A large burst reads until WouldBlock: the set need not report arrivals meanwhile.
        let _ = from.watch_reads(false);
        // A burst that fails may leave bytes in the pipe: then the pipe is dropped, not kept.
        let (burst, moved) = splice_burst(from, to, &pipe.read, &pipe.write, &dir).await?;
        from.watch_reads(true)?;
        give_back(pipe);
        if burst == Burst::Eof {
            dir.eof(to);
            return Ok(());
        }
        bulk = moved >= COPY_FIRST as u64;
    }
}

/// The scratch buffer's size: what a burst moves by copying before it turns to splice.
const COPY_FIRST: usize = 16 * 1024;

thread_local! {
    /// Where bursts are copied through (this thread's relays take turns: each read is sent
    /// on before the task yields).
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

enum Copied {
    /// Everything read was passed on, and the socket has nothing more for now.
    Drained,
    Eof,
    /// The read filled the buffer: more is probably waiting.
    Full,
}

/// Read what `from` holds (up to [`COPY_FIRST`]) and send it to `to`.
async fn copy_burst(from: &EdgeStream, to: &EdgeStream, dir: &Direction<'_>) -> io::Result<Copied> {
    // None: nothing to read after all. Else what was read and what `to` could not take.
    let copied = SCRATCH.with_borrow_mut(|buf| -> io::Result<Option<(usize, Vec<u8>)>> {
        if buf.is_empty() {
            buf.resize(COPY_FIRST, 0);
        }
        let n = match from.try_op(false, |mut s| s.read(buf), COPY_FIRST) {
            Ok(n) => n,
            // Nothing after all (the stream now waits for the set's next report).
            Err(e) if try_again(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(Some((0, Vec::new())));
        }
        let read = buf.get(..n).unwrap_or_default();
        let sent = match to.try_op(true, |mut s| s.write(read), n) {
            Ok(m) => m,
            Err(e) if try_again(&e) => 0,
            Err(e) => return Err(e),
        };
        // What `to` had no room for is kept by this connection until it has.
        Ok(Some((n, read.get(sent..).unwrap_or_default().to_vec())))
    })?;
    let Some((n, unsent)) = copied else {
        return Ok(Copied::Drained);
    };
    if n == 0 {
        return Ok(Copied::Eof);
    }
    if !unsent.is_empty() {
        (&*to).write_all(&unsent).await?;
    }
    dir.moved(n);
    Ok(if n == COPY_FIRST {
        Copied::Full
    } else {
        Copied::Drained
    })
}

/// Bytes a burst moves before its task lets the worker's other tasks run: a sender that
/// keeps the socket full never makes a read wait, and the worker's other connections (and
/// this one's own idle and shutdown timers) would wait instead.
const YIELD_EVERY: usize = 1 << 20;

/// Count `n` more bytes moved, and yield to the executor once [`YIELD_EVERY`] have been.
async fn count_and_maybe_yield(since_yield: &mut usize, n: usize) {
    *since_yield += n;
    if *since_yield >= YIELD_EVERY {
        *since_yield = 0;
        future::yield_now().await;
    }
}

/// Empty pipes kept for the next burst (per thread; the executor is single-threaded), so a
/// short connection does not pay pipe2(2) and two close(2) per direction.
const SPARE_PIPES: usize = 16;

thread_local! {
    static SPARE: Spare<SplicePipe> = const { Spare::new(SPARE_PIPES) };
}

/// Close the kept pipes: descriptors are short, and sockets need them more.
pub fn drop_spare_pipes() {
    SPARE.with(Spare::clear);
}

fn take_pipe() -> io::Result<SplicePipe> {
    match SPARE.with(Spare::take) {
        Some(pipe) => Ok(pipe),
        None => sys::splice_pipe(),
    }
}

/// Keep an empty pipe for later (or close it when enough are kept).
fn give_back(pipe: SplicePipe) {
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
    from: &EdgeStream,
    to: &EdgeStream,
    pipe_out: &OwnedFd,
    pipe_in: &OwnedFd,
    dir: &Direction<'_>,
) -> io::Result<(Burst, u64)> {
    let (mut moved, mut since_yield) = (0u64, 0usize);
    loop {
        // The pipe is empty here, so WouldBlock can only mean the socket has nothing yet.
        // A short splice does not mean that: it also stops when the pipe's 16 slots are
        // full, which small segments do long before 64 KiB. So the burst goes on until the
        // socket says WouldBlock (asked 0: the stream learns nothing from a short count),
        // and only then does the stream wait for the set's next report.
        let n = match from.try_op(false, |s| sys::splice(s, pipe_in, SPLICE_CHUNK), 0) {
            Ok(0) => return Ok((Burst::Eof, moved)),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((Burst::Drained, moved)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut left = n;
        while left > 0 {
            to.ready(true).await;
            match to.try_op(true, |s| sys::splice(pipe_out, s, left), left) {
                Ok(m) => left -= m,
                Err(e) if try_again(&e) => {}
                Err(e) => return Err(e),
            }
        }
        dir.moved(n);
        moved += n as u64;
        count_and_maybe_yield(&mut since_yield, n).await;
    }
}

async fn pump_copy(from: &EdgeStream, to: &EdgeStream, dir: Direction<'_>) -> io::Result<()> {
    let mut buf = vec![0u8; RELAY_BUF];
    let mut since_yield = 0;
    loop {
        let n = (&*from).read(&mut buf).await?;
        if n == 0 {
            dir.eof(to);
            return Ok(());
        }
        (&*to).write_all(buf.get(..n).unwrap_or_default()).await?;
        dir.moved(n);
        count_and_maybe_yield(&mut since_yield, n).await;
    }
}

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
