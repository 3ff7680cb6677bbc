//! Edge-triggered TCP streams for the HTTP engine and the L4 relay. Does IO.
//!
//! Why: async-io arms a one-shot epoll interest each time a read or write would block, so
//! every wait costs an `epoll_ctl` and, after the event, a read that returns `EAGAIN` first.
//! A keep-alive request through the proxy waits twice (the client's next request, the
//! upstream's response): four system calls of about ten per request went to that.
//!
//! Here each socket is added once, edge-triggered, to an epoll set of this worker thread,
//! and the stream keeps its own readiness: a read that returns less than asked for, or
//! `EAGAIN`, marks the socket drained, and the next read waits for the set to report new
//! bytes without asking the kernel first. The set itself is one descriptor in async-io's
//! reactor; a driver task collects its events in batches (one `epoll_wait` and one
//! re-arm per reactor pass, however many sockets became ready) and wakes the tasks that
//! wait on them.
//!
//! Everything here belongs to one worker thread (`Rc`, thread-locals); streams never move
//! between threads.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};
use rustix::buffer::spare_capacity;
use rustix::event::epoll;

use crate::http::conn::HalfClose;
use crate::{state, sys};

/// How many events one `epoll_wait` collects; a fuller batch is followed by another.
const BATCH: usize = 256;

/// The most slices one writev(2) takes (Linux's IOV_MAX); std passes no more.
const IOV_MAX: usize = 1024;

/// The driver's pause before it polls again after a failure.
const RETRY: std::time::Duration = std::time::Duration::from_millis(50);

/// What the set last said about one socket, and who waits on it.
#[derive(Default)]
struct Slot {
    /// Bytes (or the end of the stream) may be waiting: a read is worth trying.
    readable: bool,
    /// A write may succeed.
    writable: bool,
    /// The set reported the peer's end of the stream (or an error): a short read no longer
    /// means drained, as the end (or the error) waits behind the bytes with no new event.
    ended: bool,
    /// The set reported TCP urgent data: a read stops short at its mark with bytes after
    /// it, so here too only `WouldBlock` means drained (telnet and FTP, relayed by L4
    /// services, send it).
    urgent: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

/// One worker thread's epoll set and the state of every stream in it.
struct Reactor {
    epoll: Async<OwnedFd>,
    slots: RefCell<Vec<Slot>>,
    /// Indexes of `slots` no stream uses.
    free: RefCell<Vec<usize>>,
}

thread_local! {
    static REACTOR: RefCell<Option<Rc<Reactor>>> = const { RefCell::new(None) };
}

impl Reactor {
    /// This thread's reactor, created (with its driver task) on first use.
    fn get() -> io::Result<Rc<Reactor>> {
        REACTOR.with(|r| {
            if let Some(r) = r.borrow().as_ref() {
                return Ok(r.clone());
            }
            let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
            let reactor = Rc::new(Reactor {
                epoll: Async::new(epoll)?,
                slots: RefCell::new(Vec::new()),
                free: RefCell::new(Vec::new()),
            });
            state::spawn(drive(reactor.clone())).detach();
            *r.borrow_mut() = Some(reactor.clone());
            Ok(reactor)
        })
    }

    /// A slot for a new socket; `ready`: whether reads and writes are worth trying before
    /// the set reports anything (an accepted socket may hold the client's first bytes; a
    /// connecting one can do nothing until the set says the connection is made).
    fn take_slot(&self, ready: bool) -> usize {
        let mut slots = self.slots.borrow_mut();
        let key = self.free.borrow_mut().pop().unwrap_or_else(|| {
            slots.push(Slot::default());
            slots.len() - 1
        });
        if let Some(s) = slots.get_mut(key) {
            *s = Slot {
                readable: ready,
                writable: ready,
                ..Slot::default()
            };
        }
        key
    }

    /// Collect what the set reports and wake the waiting tasks (`wake`: room for their
    /// wakers, kept between calls).
    fn dispatch(&self, events: &mut Vec<epoll::Event>, wake: &mut Vec<Waker>) -> io::Result<()> {
        loop {
            events.clear();
            let polled = epoll::wait(
                self.epoll.get_ref(),
                spare_capacity(events),
                Some(&rustix::time::Timespec::default()),
            );
            match polled {
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            {
                let mut slots = self.slots.borrow_mut();
                for ev in events.iter() {
                    let (flags, key) = (ev.flags, ev.data.u64() as usize);
                    let Some(slot) = slots.get_mut(key) else {
                        continue;
                    };
                    let broken = flags.intersects(epoll::EventFlags::ERR | epoll::EventFlags::HUP);
                    if broken || flags.contains(epoll::EventFlags::RDHUP) {
                        slot.ended = true;
                    }
                    if flags.contains(epoll::EventFlags::PRI) {
                        slot.urgent = true;
                    }
                    if slot.ended
                        || flags.intersects(epoll::EventFlags::IN | epoll::EventFlags::PRI)
                    {
                        slot.readable = true;
                        wake.extend(slot.reader.take());
                    }
                    if broken || flags.contains(epoll::EventFlags::OUT) {
                        slot.writable = true;
                        wake.extend(slot.writer.take());
                    }
                }
            }
            // Woken outside the borrow: a waker may run code that touches the slots.
            wake.drain(..).for_each(Waker::wake);
            if events.len() < BATCH {
                return Ok(());
            }
        }
    }
}

/// `WouldBlock` or `Interrupted`: nothing was done, and the call may be made again (after
/// waiting for the set, for the first).
pub fn try_again(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// What the set watches for on a stream's socket: everything, or (`reads` false) only room
/// to write and errors.
fn interest(reads: bool) -> epoll::EventFlags {
    let all_reads = epoll::EventFlags::IN | epoll::EventFlags::PRI | epoll::EventFlags::RDHUP;
    let always = epoll::EventFlags::OUT | epoll::EventFlags::ET;
    if reads { all_reads | always } else { always }
}

/// Make this thread's set (and its driver task) now, before its sockets need it; a failure
/// is logged, and the first stream tries again.
pub fn prepare() {
    if let Err(e) = Reactor::get() {
        log::error!("cannot make this worker's epoll set for TCP sockets yet: {e}");
    }
}

/// The driver: waits until the set has events, hands them out, and waits again. It lives as
/// long as its thread's executor.
async fn drive(r: Rc<Reactor>) {
    let (mut events, mut wake) = (Vec::with_capacity(BATCH), Vec::new());
    let mut failing = false;
    loop {
        let polled = match r.epoll.readable().await {
            Ok(()) => r.dispatch(&mut events, &mut wake),
            Err(e) => Err(e),
        };
        match polled {
            Ok(()) => failing = false,
            // Nothing else would ever wake this thread's HTTP sockets: keep trying (out of
            // memory passes), and say so once per spell.
            Err(e) => {
                if !failing {
                    log::error!("polling the TCP sockets' epoll set failed: {e}; retrying");
                }
                failing = true;
                async_io::Timer::after(RETRY).await;
            }
        }
    }
}

/// A non-blocking TCP stream in this thread's edge-triggered set.
pub struct EdgeStream {
    tcp: TcpStream,
    key: usize,
    reactor: Rc<Reactor>,
}

impl EdgeStream {
    /// Put a connected std stream (tests' sockets) into this thread's set; the server's
    /// come in through [`EdgeStream::accept`] and [`EdgeStream::connect`].
    #[cfg(test)]
    pub(crate) fn from_std(tcp: TcpStream) -> io::Result<EdgeStream> {
        tcp.set_nonblocking(true)?;
        EdgeStream::join(tcp, true)
    }

    /// Accept a connection from `listener` (a socket in async-io's reactor) straight into
    /// this thread's set: accept4(2) makes it non-blocking, so no call follows but the one
    /// that adds it to the set.
    ///
    /// # Errors
    /// As accept(2) (the listener's `WouldBlock` is waited out), or adding to the set failed
    /// (the connection is then closed).
    pub async fn accept(listener: &Async<TcpListener>) -> io::Result<(EdgeStream, SocketAddr)> {
        let (tcp, peer) = listener.read_with(sys::accept_nonblocking).await?;
        let stream = EdgeStream::join(tcp, true).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot watch the connection from {peer}: {e}"),
            )
        })?;
        Ok((stream, peer))
    }

    /// Connect to `addr` with a non-blocking socket in this thread's set, and wait until the
    /// connection is made or refused. A success costs no getsockopt(2): the set reports a
    /// failed connection as an error event, and only then is the socket asked which.
    ///
    /// # Errors
    /// As socket(2) and connect(2) (refused, unreachable, …); adding to the set failed.
    pub async fn connect(addr: SocketAddr) -> io::Result<EdgeStream> {
        let stream = EdgeStream::join(sys::connect_nonblocking(addr)?, false)?;
        stream.ready(true).await;
        let failed = stream
            .reactor
            .slots
            .borrow()
            .get(stream.key)
            .is_none_or(|s| s.ended);
        if failed {
            if let Some(e) = stream.tcp.take_error()? {
                return Err(e);
            }
            // A hang-up with no error recorded: connected only if the socket has a peer
            // (ENOTCONN otherwise).
            stream.tcp.peer_addr()?;
        }
        Ok(stream)
    }

    /// Add `tcp` (non-blocking) to this thread's set; `ready` as for [`Reactor::take_slot`].
    fn join(tcp: TcpStream, ready: bool) -> io::Result<EdgeStream> {
        let reactor = Reactor::get()?;
        let key = reactor.take_slot(ready);
        if let Err(e) = epoll::add(
            reactor.epoll.get_ref(),
            &tcp,
            epoll::EventData::new_u64(key as u64),
            interest(true),
        ) {
            reactor.free.borrow_mut().push(key);
            return Err(e.into());
        }
        Ok(EdgeStream { tcp, key, reactor })
    }

    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }

    /// Stop (`false`) or resume (`true`) the set's reports of bytes arriving, for a reader
    /// about to read in a loop until the socket says `WouldBlock`: each arrival would
    /// otherwise make the set ready again, and whichever thread waits in async-io's reactor
    /// meanwhile (its own, when this one is busy) would wake for nothing. Resuming reports
    /// bytes already there at once. Writes are still reported throughout.
    ///
    /// # Errors
    /// As epoll_ctl(2); after a failed resume the reader must not wait on the set.
    pub fn watch_reads(&self, on: bool) -> io::Result<()> {
        let data = epoll::EventData::new_u64(self.key as u64);
        Ok(epoll::modify(
            self.reactor.epoll.get_ref(),
            &self.tcp,
            data,
            interest(on),
        )?)
    }

    /// Let the next read ask the kernel even if the socket was drained and the set has
    /// reported nothing since (that report may still be on its way).
    pub fn recheck(&self) {
        if let Some(slot) = self.reactor.slots.borrow_mut().get_mut(self.key) {
            slot.readable = true;
        }
    }

    /// Ready when the slot says a read (`write`: a write) may succeed; otherwise the task
    /// waits for the set to report the socket ready again.
    fn poll_ready(&self, cx: &mut Context<'_>, write: bool) -> Poll<()> {
        let replaced = {
            let mut slots = self.reactor.slots.borrow_mut();
            // A slot is never taken from a live stream; without one, let the op report.
            let Some(slot) = slots.get_mut(self.key) else {
                return Poll::Ready(());
            };
            let (ready, waiter) = if write {
                (slot.writable, &mut slot.writer)
            } else {
                (slot.readable, &mut slot.reader)
            };
            if ready {
                return Poll::Ready(());
            }
            if waiter.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                return Poll::Pending;
            }
            waiter.replace(cx.waker().clone())
        };
        // Another task now waits in this direction: the one it replaces is woken to look
        // again, not forgotten (outside the borrow, like the driver's wakes).
        if let Some(old) = replaced {
            old.wake();
        }
        Poll::Pending
    }

    /// Wait until the set says a read (`write`: a write) may succeed, without trying one.
    pub async fn ready(&self, write: bool) {
        futures_lite::future::poll_fn(|cx| self.poll_ready(cx, write)).await;
    }

    /// Run `op` on the socket once, without waiting, and keep what it shows about the
    /// socket: `WouldBlock`, or less than the `asked` bytes, means drained (reads) or full
    /// (writes) until the set reports otherwise. For calls the stream has no method for,
    /// such as splice(2).
    ///
    /// # Errors
    /// Whatever `op` returns, `WouldBlock` included.
    pub fn try_op(
        &self,
        write: bool,
        op: impl FnOnce(&TcpStream) -> io::Result<usize>,
        asked: usize,
    ) -> io::Result<usize> {
        match op(&self.tcp) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.drained(write, true);
                Err(e)
            }
            Ok(n) => {
                // Short: the socket is drained (or its buffer full); the set reports the
                // next change. Zero is the end of the stream, which stays readable. (A read
                // also stops short at TCP urgent data, which our peers do not send; one that
                // did would stall its own connection until its timeout.)
                if n > 0 && n < asked {
                    self.drained(write, false);
                }
                Ok(n)
            }
            Err(e) => Err(e),
        }
    }

    /// Run `op` when the slot says it may succeed, waiting for the set as long as it hears
    /// `WouldBlock`.
    fn poll_op(
        &self,
        cx: &mut Context<'_>,
        write: bool,
        mut op: impl FnMut(&TcpStream) -> io::Result<usize>,
        asked: usize,
    ) -> Poll<io::Result<usize>> {
        loop {
            if self.poll_ready(cx, write).is_pending() {
                return Poll::Pending;
            }
            match self.try_op(write, &mut op, asked) {
                Err(e) if try_again(&e) => {}
                done => return Poll::Ready(done),
            }
        }
    }

    /// The socket has nothing more to read (or no room to write) for now: `surely` after
    /// `WouldBlock`, otherwise after a short read or write.
    fn drained(&self, write: bool, surely: bool) {
        if let Some(slot) = self.reactor.slots.borrow_mut().get_mut(self.key) {
            if write {
                slot.writable = false;
            } else if surely || !(slot.ended || slot.urgent) {
                slot.readable = false;
            }
        }
    }
}

impl Drop for EdgeStream {
    fn drop(&mut self) {
        // The waiters are dropped with the slot's state. No `epoll_ctl` to leave the set:
        // closing the socket, right after this, takes it out, and nothing polls the set in
        // between. That holds because this is the socket's last descriptor: a stream's
        // socket is never duplicated (`get_ref` lends it, nothing clones it). A duplicate
        // would stay in the set and could hand its events to the slot's next stream.
        if let Some(slot) = self.reactor.slots.borrow_mut().get_mut(self.key) {
            *slot = Slot::default();
        }
        self.reactor.free.borrow_mut().push(self.key);
    }
}

// Reads and writes take `&EdgeStream`, so one task can read a stream while another writes
// it, and the L4 relay can pump both directions of one pair of streams.
impl AsyncRead for &EdgeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let asked = buf.len();
        self.poll_op(cx, false, |mut tcp| tcp.read(buf), asked)
    }
}

impl AsyncWrite for &EdgeStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_op(cx, true, |mut tcp| tcp.write(buf), buf.len())
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // std passes at most IOV_MAX slices to writev(2); asked is what those hold.
        let asked = bufs.iter().take(IOV_MAX).map(|b| b.len()).sum();
        self.poll_op(cx, true, |mut tcp| tcp.write_vectored(bufs), asked)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for EdgeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self).poll_read(cx, buf)
    }
}

impl AsyncWrite for EdgeStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl HalfClose for EdgeStream {
    fn shut_write(&self) -> io::Result<()> {
        self.tcp.shutdown(Shutdown::Write)
    }
}

#[cfg(test)]
#[path = "edge_tests.rs"]
mod tests;
