//! Moving bytes both ways between two TCP streams (splice(2) through a pipe, or a buffer
//! copy) with half-close propagation, byte counters and an idle deadline. Does IO.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::{AsyncReadExt, AsyncWriteExt, future};

use crate::edge::EdgeStream;
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
        let (burst, moved) = splice_burst(from, to, &pipe.0, &pipe.1, &dir).await?;
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
    let (n, unsent) = SCRATCH.with_borrow_mut(|buf| -> io::Result<(usize, Vec<u8>)> {
        if buf.is_empty() {
            buf.resize(COPY_FIRST, 0);
        }
        let n = match from.try_op(false, |mut s| s.read(buf), COPY_FIRST) {
            Ok(n) => n,
            // Nothing after all (the stream now waits for the set's next report).
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return Ok((usize::MAX, Vec::new()));
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok((0, Vec::new()));
        }
        let read = buf.get(..n).unwrap_or_default();
        let sent = match to.try_op(true, |mut s| s.write(read), n) {
            Ok(m) => m,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                0
            }
            Err(e) => return Err(e),
        };
        // What `to` had no room for is kept by this connection until it has.
        Ok((n, read.get(sent..).unwrap_or_default().to_vec()))
    })?;
    match n {
        usize::MAX => return Ok(Copied::Drained),
        0 => return Ok(Copied::Eof),
        _ => {}
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
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
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
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::mpsc;

    use async_io::Async;

    use crate::state;

    /// A connected pair: (our end, in this thread's edge set; the peer, a blocking std
    /// stream).
    fn pair() -> (EdgeStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (ours, _) = l.accept().unwrap();
        (EdgeStream::new(Async::new(ours).unwrap()).unwrap(), peer)
    }

    /// As [`pair`], with the peer's receive buffer (set before it connects, so its window
    /// is small from the start) and our send buffer at `size` (the kernel's minimum at most).
    fn pair_with_buffers(size: usize) -> (EdgeStream, TcpStream) {
        use rustix::net::{AddressFamily, SocketType, sockopt};
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
        sockopt::set_socket_recv_buffer_size(&fd, size).unwrap();
        rustix::net::connect(&fd, &l.local_addr().unwrap()).unwrap();
        let (ours, _) = l.accept().unwrap();
        sockopt::set_socket_send_buffer_size(&ours, size).unwrap();
        let ours = EdgeStream::new(Async::new(ours).unwrap()).unwrap();
        (ours, TcpStream::from(fd))
    }

    /// One direction, client to server through a pump. `first` is written into the client
    /// end before the pump starts, a write (so a segment) per part; then `then` gets the client end on a thread of its own,
    /// with a receiver that yields once the server end has read `first`. What the server
    /// end receives in all must be `expect`. Returns what the pump counted and saw end.
    fn pump_through(
        use_splice: bool,
        first: Vec<Vec<u8>>,
        then: impl FnOnce(TcpStream, mpsc::Receiver<()>) + Send + 'static,
        expect: Vec<u8>,
    ) -> (u64, Option<End>) {
        pump_between(use_splice, None, first, then, expect)
    }

    /// As [`pump_through`] (splice allowed), where the server end's connection has the
    /// smallest buffers the kernel allows: its peer's receive buffer and our send buffer.
    fn pump_through_small(
        first: Vec<Vec<u8>>,
        then: impl FnOnce(TcpStream, mpsc::Receiver<()>) + Send + 'static,
        expect: Vec<u8>,
    ) -> (u64, Option<End>) {
        pump_between(true, Some(1), first, then, expect)
    }

    fn pump_between(
        use_splice: bool,
        buffers: Option<usize>,
        first: Vec<Vec<u8>>,
        then: impl FnOnce(TcpStream, mpsc::Receiver<()>) + Send + 'static,
        expect: Vec<u8>,
    ) -> (u64, Option<End>) {
        state::run_as_task(async move {
            let (a, mut client) = pair();
            let (b, mut server) = match buffers {
                None => pair(),
                Some(size) => pair_with_buffers(size),
            };
            client.set_nodelay(true).unwrap();
            for part in &first {
                client.write_all(part).unwrap();
            }
            let first = first.concat();
            let (arrived, on_arrival) = mpsc::channel();
            let writer = std::thread::spawn(move || then(client, on_arrival));
            let reader = std::thread::spawn(move || {
                let mut got = vec![0; first.len()];
                server.read_exact(&mut got).unwrap();
                // (A `then` that does not wait has dropped its receiver.)
                let _ = arrived.send(());
                server.read_to_end(&mut got).unwrap();
                got
            });
            let (count, last, first_eof) =
                (Cell::new(0), Cell::new(Instant::now()), Cell::new(None));
            let dir = Direction {
                count: &count,
                is_up: true,
                last: &last,
                first_eof: &first_eof,
                on_bytes: &|_, _| {},
            };
            if use_splice {
                pump(&a, &b, dir).await.unwrap();
            } else {
                pump_copy(&a, &b, dir).await.unwrap();
            }
            writer.join().unwrap();
            assert!(
                reader.join().unwrap() == expect,
                "every byte reached the far side, then the half-close"
            );
            (count.get(), first_eof.get())
        })
    }

    /// Both pumps over the same sockets: bytes arrive intact, EOF is passed on as a
    /// half-close, and the counters see every byte.
    fn exercise(use_splice: bool) {
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (first, rest) = payload.split_at(1000);
        let rest = rest.to_vec();
        let then = move |mut client: TcpStream, _| {
            client.write_all(&rest).unwrap();
            client.shutdown(Shutdown::Write).unwrap();
        };
        let (count, end) = pump_through(use_splice, vec![first.to_vec()], then, payload.clone());
        assert_eq!(count, payload.len() as u64);
        assert_eq!(end, Some(End::ClientClosed));
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

    /// A splice that stops short because the pipe is full leaves bytes in the socket, with
    /// no event to come: the client sends nothing more until the far side has them all. A
    /// one-page pipe (one slot) makes every splice stop short, as small segments filling a
    /// pipe's 16 slots do; a pump that took short for drained would wait forever.
    #[test]
    fn splice_pump_does_not_stall_when_the_pipe_fills_before_the_socket_drains() {
        let payload: Vec<u8> = (0..60_000u32).map(|i| (i % 241) as u8).collect();
        let (r, w) = sys::splice_pipe().unwrap();
        rustix::pipe::fcntl_setpipe_size(&w, 4096).unwrap();
        SPARE.with(|s| s.give((r, w)));
        let then = |client: TcpStream, arrived: mpsc::Receiver<()>| {
            arrived.recv().unwrap();
            client.shutdown(Shutdown::Write).unwrap();
        };
        let (count, _) = pump_through(true, vec![payload.clone()], then, payload.clone());
        assert_eq!(count, payload.len() as u64);
    }
    /// A copied burst the far side has no room for: what the send left is kept and sent
    /// when the socket drains, in order. (12,000 bytes is less than the scratch buffer, so
    /// no splice; with Linux's smallest buffers the send comes back partial — checked: the
    /// test fails when the unsent rest is dropped.)
    #[test]
    fn a_copied_burst_the_far_side_cannot_take_at_once_arrives_whole() {
        let payload: Vec<u8> = (0..12_000u32).map(|i| (i % 239) as u8).collect();
        let then = |client: TcpStream, arrived: mpsc::Receiver<()>| {
            arrived.recv().unwrap();
            client.shutdown(Shutdown::Write).unwrap();
        };
        let (count, _) = pump_through_small(vec![payload.clone()], then, payload.clone());
        assert_eq!(count, payload.len() as u64);
    }

    /// A whole relay where the client half-closes first, as request-then-response
    /// protocols do: the upstream hears the client's end through shutdown(2), and the
    /// client hears the upstream's through the close that ends the relay (no second
    /// shutdown), which must be a clean end after every byte, not a reset.
    #[test]
    fn a_relay_passes_both_ends_and_each_peer_reads_a_clean_end() {
        let (outcome, client_got, server_got) = state::run_as_task(async {
            let (a, mut client) = pair();
            let (b, mut server) = pair();
            for s in [&client, &server] {
                s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                    .unwrap();
            }
            let client_side = std::thread::spawn(move || {
                client.write_all(b"request").unwrap();
                client.shutdown(Shutdown::Write).unwrap();
                let mut got = Vec::new();
                client.read_to_end(&mut got).map(|_| got)
            });
            let server_side = std::thread::spawn(move || {
                let mut got = Vec::new();
                server.read_to_end(&mut got).unwrap();
                server.write_all(b"response").unwrap();
                server.shutdown(Shutdown::Write).unwrap();
                got
            });
            let out = relay(&a, &b, Duration::ZERO, future::pending(), &|_, _| {}).await;
            drop((a, b));
            let (c, s) = (client_side.join().unwrap(), server_side.join().unwrap());
            ((out.up, out.down, out.end), c, s)
        });
        assert_eq!(outcome, (7, 8, End::ClientClosed));
        assert_eq!(server_got, b"request");
        assert_eq!(client_got.unwrap(), b"response", "a clean end, not a reset");
    }
}
