//! Edge-triggered TCP streams (and, in `listen`, listeners and UDP sockets) for the HTTP
//! engine and the L4 relay, in the epoll set a worker thread's run loop sleeps in
//! ([`crate::runloop`]). Does IO.
//!
//! Why: async-io arms a one-shot epoll interest each time a read or write would block, so
//! every wait costs an `epoll_ctl` and, after the event, a read that returns `EAGAIN` first.
//! A keep-alive request through the proxy waits twice (the client's next request, the
//! upstream's response): four system calls of about ten per request went to that.
//!
//! Here each socket is added once, edge-triggered, to the set of this worker thread, and
//! the stream keeps its own readiness: a read that returns less than asked for, or
//! `EAGAIN`, marks the socket drained, and the next read waits for the set to report new
//! bytes without asking the kernel first. The run loop collects the set's events in batches
//! (one `epoll_wait` however many sockets became ready) and wakes the tasks that wait on
//! them.
//!
//! Everything here belongs to one worker thread (`Rc`, thread-locals); streams never move
//! between threads. A thread with no run loop has no set: its streams fail to open.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_lite::{AsyncRead, AsyncWrite};
use rustix::buffer::spare_capacity;
use rustix::event::epoll;

use crate::http::conn::HalfClose;
use crate::runloop::Unpark;
use crate::sys;

mod listen;
pub use listen::{EdgeListener, Watched};

/// How many events one `epoll_wait` collects; a fuller batch is followed by another.
const BATCH: usize = 256;

/// The most slices one writev(2) takes (Linux's IOV_MAX); std passes no more.
const IOV_MAX: usize = 1024;

/// The key of the run loop's eventfd in the set (never a slot's).
const WAKE: u64 = u64::MAX;

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
    epoll: OwnedFd,
    slots: RefCell<Vec<Slot>>,
    /// Indexes of `slots` no stream uses.
    free: RefCell<Vec<usize>>,
    /// How other threads (and wakers called from them) wake the run loop.
    unpark: Arc<Unpark>,
    /// Which slot each listening socket's events go to (see [`EdgeListener`]).
    listeners: RefCell<HashMap<RawFd, usize>>,
    /// Room for the events of one `epoll_wait` and the wakers they call, kept between waits.
    events: RefCell<Vec<epoll::Event>>,
    wake: RefCell<Vec<Waker>>,
}

thread_local! {
    static REACTOR: RefCell<Option<Rc<Reactor>>> = const { RefCell::new(None) };
}

/// The set a run loop sleeps in (see [`crate::runloop`]).
pub(crate) struct LoopSet(Rc<Reactor>);

impl LoopSet {
    /// This thread's set, made on first use with the eventfd that wakes it.
    ///
    /// # Errors
    /// As epoll_create(2), eventfd(2) and epoll_ctl(2).
    pub(crate) fn open() -> io::Result<LoopSet> {
        REACTOR.with(|r| {
            if let Some(r) = r.borrow().as_ref() {
                return Ok(LoopSet(r.clone()));
            }
            let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
            let unpark = Arc::new(Unpark::new()?);
            // Edge-triggered: each write reports anew, so the counter is never read (it
            // fills only after 2^64 - 2 wakes).
            epoll::add(
                &epoll,
                unpark.fd(),
                epoll::EventData::new_u64(WAKE),
                epoll::EventFlags::IN | epoll::EventFlags::ET,
            )?;
            let reactor = Rc::new(Reactor {
                epoll,
                slots: RefCell::new(Vec::new()),
                free: RefCell::new(Vec::new()),
                unpark,
                listeners: RefCell::new(HashMap::new()),
                events: RefCell::new(Vec::with_capacity(BATCH)),
                wake: RefCell::new(Vec::new()),
            });
            *r.borrow_mut() = Some(reactor.clone());
            Ok(LoopSet(reactor))
        })
    }

    pub(crate) fn unpark(&self) -> &Arc<Unpark> {
        &self.0.unpark
    }

    /// Wait up to `timeout` for the set's events, and wake the tasks that wait on the
    /// sockets they concern.
    ///
    /// # Errors
    /// As epoll_wait(2) (interruptions are not errors).
    pub(crate) fn wait(&self, timeout: std::time::Duration) -> io::Result<()> {
        let mut timeout = rustix::time::Timespec {
            tv_sec: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let (mut events, mut wake) = (self.0.events.borrow_mut(), self.0.wake.borrow_mut());
        loop {
            events.clear();
            let polled = epoll::wait(&self.0.epoll, spare_capacity(&mut *events), Some(&timeout));
            // Before any task is woken: a wake from this thread then costs no write.
            self.0.unpark.running();
            match polled {
                Err(rustix::io::Errno::INTR) => return Ok(()),
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            self.0.hand_out(&events, &mut wake);
            // Woken outside the slots' borrow: a waker may run code that touches them.
            wake.drain(..).for_each(Waker::wake);
            if events.len() < BATCH {
                return Ok(());
            }
            // A full batch: take what else is there now, without sleeping.
            timeout = rustix::time::Timespec::default();
        }
    }
}

impl Reactor {
    /// This thread's reactor, if its run loop has made one.
    fn get() -> io::Result<Rc<Reactor>> {
        REACTOR.with(|r| r.borrow().clone()).ok_or_else(|| {
            io::Error::other("this thread runs no event loop for edge-triggered sockets")
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

    /// Add `fd` to the set with `flags`, in a new slot (`ready` as for
    /// [`Reactor::take_slot`]); the slot's key is the event's data.
    fn add(&self, fd: &impl AsFd, flags: epoll::EventFlags, ready: bool) -> io::Result<usize> {
        let key = self.take_slot(ready);
        match epoll::add(
            &self.epoll,
            fd,
            epoll::EventData::new_u64(key as u64),
            flags,
        ) {
            Ok(()) => Ok(key),
            Err(e) => {
                self.free.borrow_mut().push(key);
                Err(e.into())
            }
        }
    }

    /// Slot `key`'s socket has left the set: its state and waiters go, the slot is free.
    fn release(&self, key: usize) {
        if let Some(slot) = self.slots.borrow_mut().get_mut(key) {
            *slot = Slot::default();
        }
        self.free.borrow_mut().push(key);
    }

    /// Slot `key`'s socket said `WouldBlock` to a read: reads wait for the set.
    fn not_readable(&self, key: usize) {
        if let Some(slot) = self.slots.borrow_mut().get_mut(key) {
            slot.readable = false;
        }
    }

    /// Ready when slot `key` says a read (`write`: a write) may succeed; otherwise the
    /// task waits for the set to report the socket ready again.
    fn poll_ready(&self, key: usize, cx: &mut Context<'_>, write: bool) -> Poll<()> {
        let replaced = {
            let mut slots = self.slots.borrow_mut();
            // A slot is never taken from a live stream; without one, let the op report.
            let Some(slot) = slots.get_mut(key) else {
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
        // again, not forgotten (outside the borrow, like the run loop's wakes).
        if let Some(old) = replaced {
            old.wake();
        }
        Poll::Pending
    }

    /// Mark the slots `events` concern ready, and collect the wakers of the tasks that
    /// wait on them in `wake`. (The run loop's eventfd has no slot: its events only end
    /// the wait.)
    fn hand_out(&self, events: &[epoll::Event], wake: &mut Vec<Waker>) {
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
            if slot.ended || flags.intersects(epoll::EventFlags::IN | epoll::EventFlags::PRI) {
                slot.readable = true;
                wake.extend(slot.reader.take());
            }
            if broken || flags.contains(epoll::EventFlags::OUT) {
                slot.writable = true;
                wake.extend(slot.writer.take());
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

/// Make this thread's set now, before its sockets need it (the run loop makes it when it
/// starts, which may be after the first listeners are bound).
///
/// # Errors
/// As [`LoopSet::open`] (out of descriptors or memory): without its set a worker could not
/// accept, connect or relay anything, so the caller refuses the configuration.
pub fn prepare() -> io::Result<()> {
    LoopSet::open().map(drop)
}

/// A non-blocking TCP stream in this thread's edge-triggered set.
pub struct EdgeStream {
    tcp: TcpStream,
    key: usize,
    reactor: Rc<Reactor>,
}

impl EdgeStream {
    /// Put a connected std stream (tests' sockets) into this thread's set; the server's
    /// come in through [`EdgeListener::accept`] and [`EdgeStream::connect`].
    #[cfg(test)]
    pub(crate) fn from_std(tcp: TcpStream) -> io::Result<EdgeStream> {
        tcp.set_nonblocking(true)?;
        EdgeStream::join(tcp, true)
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
        let key = reactor.add(&tcp, interest(true), ready)?;
        Ok(EdgeStream { tcp, key, reactor })
    }

    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }

    /// Stop (`false`) or resume (`true`) the set's reports of bytes arriving, for a reader
    /// about to read in a loop until the socket says `WouldBlock`: each arrival would
    /// otherwise make the set ready again, an event for the run loop to collect for nothing.
    /// Resuming reports bytes already there at once. Writes are still reported throughout.
    ///
    /// # Errors
    /// As epoll_ctl(2); after a failed resume the reader must not wait on the set.
    pub fn watch_reads(&self, on: bool) -> io::Result<()> {
        let data = epoll::EventData::new_u64(self.key as u64);
        Ok(epoll::modify(
            &self.reactor.epoll,
            &self.tcp,
            data,
            interest(on),
        )?)
    }

    /// Whether a read found the socket drained and the set has reported nothing on it
    /// since: no bytes, no end, no error, as of this thread's last wait in the set (what
    /// arrived after that is not known yet).
    pub fn quiet(&self) -> bool {
        self.reactor
            .slots
            .borrow()
            .get(self.key)
            .is_some_and(|s| !s.readable && !s.ended)
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
        self.reactor.poll_ready(self.key, cx, write)
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
        self.reactor.release(self.key);
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
