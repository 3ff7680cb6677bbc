//! Edge-triggered TCP streams for the HTTP engine's client and upstream connections. Does IO.
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
use std::net::{Shutdown, TcpStream};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};
use rustix::buffer::spare_capacity;
use rustix::event::epoll;

use super::conn::HalfClose;
use crate::state;

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

    fn take_slot(&self) -> usize {
        let mut slots = self.slots.borrow_mut();
        let key = self.free.borrow_mut().pop().unwrap_or_else(|| {
            slots.push(Slot::default());
            slots.len() - 1
        });
        // A new socket may have bytes already (the client's first request): try first.
        if let Some(s) = slots.get_mut(key) {
            *s = Slot {
                readable: true,
                writable: true,
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
                    if slot.ended || flags.contains(epoll::EventFlags::IN) {
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
                    log::error!("http: polling the sockets' epoll set failed: {e}; retrying");
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
    /// Take `stream` out of async-io's reactor and into this thread's edge-triggered set.
    ///
    /// # Errors
    /// Creating the set or adding the socket failed (out of descriptors or memory).
    pub fn new(stream: Async<TcpStream>) -> io::Result<EdgeStream> {
        let reactor = Reactor::get()?;
        // Still non-blocking, as async-io made it. (Leaving its reactor and joining this set
        // costs an epoll_ctl each; sockets accepted or connected straight into the set
        // would save both, left for later.)
        let tcp = stream.into_inner()?;
        let key = reactor.take_slot();
        let flags = epoll::EventFlags::IN
            | epoll::EventFlags::OUT
            | epoll::EventFlags::RDHUP
            | epoll::EventFlags::ET;
        if let Err(e) = epoll::add(
            reactor.epoll.get_ref(),
            &tcp,
            epoll::EventData::new_u64(key as u64),
            flags,
        ) {
            reactor.free.borrow_mut().push(key);
            return Err(e.into());
        }
        Ok(EdgeStream { tcp, key, reactor })
    }

    pub fn get_ref(&self) -> &TcpStream {
        &self.tcp
    }

    /// Let the next read ask the kernel even if the socket was drained and the set has
    /// reported nothing since (that report may still be on its way).
    pub fn recheck(&self) {
        if let Some(slot) = self.reactor.slots.borrow_mut().get_mut(self.key) {
            slot.readable = true;
        }
    }

    /// Run `op` if the slot says it may succeed; on `WouldBlock` (or when the slot already
    /// says so) park the task until the set reports the socket ready again.
    fn poll_op(
        &self,
        cx: &mut Context<'_>,
        write: bool,
        mut op: impl FnMut(&TcpStream) -> io::Result<usize>,
        asked: usize,
    ) -> Poll<io::Result<usize>> {
        loop {
            let (ready, replaced) = {
                let mut slots = self.reactor.slots.borrow_mut();
                let Some(slot) = slots.get_mut(self.key) else {
                    return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
                };
                let (ready, waiter) = if write {
                    (slot.writable, &mut slot.writer)
                } else {
                    (slot.readable, &mut slot.reader)
                };
                if ready {
                    (true, None)
                } else if waiter.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    return Poll::Pending;
                } else {
                    (false, waiter.replace(cx.waker().clone()))
                }
            };
            if !ready {
                // Another task now waits in this direction: the one it replaces is woken to
                // look again, not forgotten (outside the borrow, like the driver's wakes).
                if let Some(old) = replaced {
                    old.wake();
                }
                return Poll::Pending;
            }
            match op(&self.tcp) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.drained(write, true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(n) => {
                    // Short: the socket is drained (or its buffer full); the set reports the
                    // next change. Zero is the end of the stream, which stays readable. (A
                    // read also stops short at TCP urgent data, which HTTP peers do not send;
                    // one that did would stall its own connection until its timeout.)
                    if n > 0 && n < asked {
                        self.drained(write, false);
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// The socket has nothing more to read (or no room to write) for now: `surely` after
    /// `WouldBlock`, otherwise after a short read or write.
    fn drained(&self, write: bool, surely: bool) {
        if let Some(slot) = self.reactor.slots.borrow_mut().get_mut(self.key) {
            if write {
                slot.writable = false;
            } else if surely || !slot.ended {
                slot.readable = false;
            }
        }
    }
}

impl Drop for EdgeStream {
    fn drop(&mut self) {
        // Out of the set before its slot can go to another stream, so no event of this
        // socket reaches that one; the waiters are dropped with the slot's state.
        if let Some(slot) = self.reactor.slots.borrow_mut().get_mut(self.key) {
            *slot = Slot::default();
        }
        let _ = epoll::delete(self.reactor.epoll.get_ref(), &self.tcp);
        self.reactor.free.borrow_mut().push(self.key);
    }
}

impl AsyncRead for EdgeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let asked = buf.len();
        self.poll_op(cx, false, |mut tcp| tcp.read(buf), asked)
    }
}

impl AsyncWrite for EdgeStream {
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

impl HalfClose for EdgeStream {
    fn shut_write(&self) -> io::Result<()> {
        self.tcp.shutdown(Shutdown::Write)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    use futures_lite::future::{self, poll_once};
    use futures_lite::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Our end in the edge set, and the peer's plain blocking end.
    async fn pair() -> (EdgeStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = Async::<TcpStream>::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (theirs, _) = listener.accept().unwrap();
        (EdgeStream::new(ours).unwrap(), theirs)
    }

    /// Run `test` as a task of a worker-style executor (a task is polled only when woken,
    /// unlike the future `block_on` runs); a wait that is never woken fails it instead of
    /// hanging the suite.
    fn run(test: impl Future<Output = ()> + 'static) {
        state::block_on(future::or(state::spawn(test), async {
            async_io::Timer::after(Duration::from_secs(10)).await;
            panic!("a wait was never woken");
        }));
    }

    #[test]
    fn a_drained_socket_waits_for_the_set_and_reads_what_comes_next() {
        run(async {
            let (mut ours, mut theirs) = pair().await;
            let mut buf = [0u8; 64];
            theirs.write_all(b"first").unwrap();
            // Tried at once; five bytes of 64 is a short read, so the socket is drained.
            let n = ours.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"first");
            let mut next = ours.read(&mut buf);
            assert!(
                poll_once(&mut next).await.is_none(),
                "a drained socket waits"
            );
            theirs.write_all(b"second").unwrap();
            let n = next.await.unwrap();
            assert_eq!(&buf[..n], b"second");
        });
    }

    #[test]
    fn bytes_and_the_end_of_the_stream_arriving_together_are_both_read() {
        run(async {
            let (mut ours, mut theirs) = pair().await;
            let mut first = [0u8; 1];
            let mut wait = ours.read_exact(&mut first);
            assert!(poll_once(&mut wait).await.is_none(), "nothing sent yet");
            theirs.write_all(b"xbody").unwrap();
            theirs.shutdown(Shutdown::Write).unwrap();
            wait.await.unwrap();
            // The set reported bytes and the end in one event; "body" is a short read with
            // the end queued behind it, which no new event announces.
            let mut rest = Vec::new();
            ours.read_to_end(&mut rest).await.unwrap();
            assert_eq!((&first[..], &rest[..]), (&b"x"[..], &b"body"[..]));
        });
    }

    #[test]
    fn a_reset_wakes_the_waiting_reader_with_an_error() {
        run(async {
            let (mut ours, theirs) = pair().await;
            let mut buf = [0u8; 8];
            let mut wait = ours.read(&mut buf);
            assert!(poll_once(&mut wait).await.is_none(), "nothing sent yet");
            // Linger zero: closing sends a reset instead of a FIN.
            rustix::net::sockopt::set_socket_linger(&theirs, Some(Duration::ZERO)).unwrap();
            drop(theirs);
            let err = wait
                .await
                .expect_err("a reset is an error, not data or the end");
            assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        });
    }

    #[test]
    fn a_writer_blocked_on_a_full_socket_resumes_when_the_peer_reads() {
        run(async {
            let (mut ours, mut theirs) = pair().await;
            let total = 8 << 20;
            // A blocking reader on its own thread, so it drains while our writes wait.
            let reader = std::thread::spawn(move || {
                let mut got = 0;
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    match theirs.read(&mut buf).unwrap() {
                        0 => return got,
                        n => got += n,
                    }
                }
            });
            let chunk = vec![7u8; 1 << 16];
            for _ in 0..total / chunk.len() {
                ours.write_all(&chunk).await.unwrap();
            }
            ours.shut_write().unwrap();
            assert_eq!(reader.join().unwrap(), total);
        });
    }

    #[test]
    fn a_slot_freed_by_one_stream_serves_the_next() {
        run(async {
            let (first, _peer) = pair().await;
            let key = first.key;
            drop(first);
            let (mut second, mut theirs) = pair().await;
            assert_eq!(second.key, key);
            let mut buf = [0u8; 8];
            let mut wait = second.read(&mut buf);
            assert!(poll_once(&mut wait).await.is_none(), "nothing sent yet");
            theirs.write_all(b"hi").unwrap();
            let n = wait.await.unwrap();
            assert_eq!(&buf[..n], b"hi");
        });
    }
}
