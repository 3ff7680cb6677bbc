//! Listening TCP sockets and UDP sockets in the worker's edge-triggered set (see the parent
//! module). Does IO.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, AsRawFd};
use std::rc::Rc;

use async_io::Async;
use rustix::event::epoll;

use super::{EdgeStream, Reactor};
use crate::sys;

/// A listening socket, in this thread's set from its first accept on. The socket is
/// shared (the reload code keeps it, in async-io's reactor, across reloads), so it leaves
/// the set by an explicit `epoll_ctl` when this is dropped, not by being closed. A reload
/// that gives the socket another role starts the new accept loop before the old one is
/// dropped: the newer `EdgeListener` of a socket takes its events over, and the older one
/// then leaves the set alone.
pub struct EdgeListener {
    listener: Rc<Async<TcpListener>>,
    /// The slot and set, once added.
    watched: Option<(usize, Rc<Reactor>)>,
}

impl EdgeListener {
    pub fn new(listener: Rc<Async<TcpListener>>) -> EdgeListener {
        EdgeListener {
            listener,
            watched: None,
        }
    }

    /// Put the listener in this thread's set, taking its events over from an older
    /// `EdgeListener` of the same socket if there is one.
    fn watch(&self) -> io::Result<(usize, Rc<Reactor>)> {
        let reactor = Reactor::get()?;
        let key = reactor.take_slot(true);
        let data = epoll::EventData::new_u64(key as u64);
        let flags = epoll::EventFlags::IN | epoll::EventFlags::ET;
        let added = match epoll::add(&reactor.epoll, &*self.listener, data, flags) {
            Err(rustix::io::Errno::EXIST) => {
                epoll::modify(&reactor.epoll, &*self.listener, data, flags)
            }
            other => other,
        };
        if let Err(e) = added {
            reactor.free.borrow_mut().push(key);
            let why = format!("cannot watch the listening socket: {e}");
            return Err(io::Error::new(e.kind(), why));
        }
        let fd = self.listener.as_raw_fd();
        reactor.listeners.borrow_mut().insert(fd, key);
        Ok((key, reactor))
    }

    /// Accept a connection straight into this thread's set: accept4(2) makes it
    /// non-blocking, so no call follows but the one that adds it to the set.
    ///
    /// # Errors
    /// As accept(2) (`WouldBlock` is waited out), or adding the listener or the connection
    /// to the set failed (the connection is then closed).
    pub async fn accept(&mut self) -> io::Result<(EdgeStream, SocketAddr)> {
        let (key, reactor) = match &self.watched {
            Some(w) => w.clone(),
            None => {
                let watched = self.watch()?;
                self.watched = Some(watched.clone());
                watched
            }
        };
        let (tcp, peer) = loop {
            futures_lite::future::poll_fn(|cx| reactor.poll_ready(key, cx, false)).await;
            match sys::accept_nonblocking(self.listener.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => reactor.not_readable(key),
                done => break done?,
            }
        };
        let stream = EdgeStream::join(tcp, true).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot watch the connection from {peer}: {e}"),
            )
        })?;
        Ok((stream, peer))
    }
}

impl Drop for EdgeListener {
    fn drop(&mut self) {
        if let Some((key, reactor)) = self.watched.take() {
            let fd = self.listener.as_raw_fd();
            let owner = {
                let mut listeners = reactor.listeners.borrow_mut();
                let owner = listeners.get(&fd) == Some(&key);
                if owner {
                    listeners.remove(&fd);
                }
                owner
            };
            // The socket is still open (this holds it), so the call finds it; a failure
            // would leave its events to the slot's next user.
            if owner && let Err(e) = epoll::delete(&reactor.epoll, &*self.listener) {
                log::error!("cannot take a listening socket out of the epoll set: {e}");
            }
            reactor.release(key);
        }
    }
}

/// A non-blocking socket of another kind (UDP) in this thread's set, for code that reads
/// in batches: [`Watched::readable`] waits until the set reports bytes since the caller
/// last said [`Watched::drained`] (after `WouldBlock`). Sends are not waited for.
pub struct Watched<T: AsFd> {
    io: T,
    key: usize,
    reactor: Rc<Reactor>,
}

impl<T: AsFd> Watched<T> {
    /// Make `io` non-blocking and add it to this thread's set, readable at first.
    ///
    /// # Errors
    /// This thread has no run loop, or ioctl(2) or epoll_ctl(2) failed.
    pub fn new(io: T) -> io::Result<Watched<T>> {
        let reactor = Reactor::get()?;
        rustix::io::ioctl_fionbio(&io, true)?;
        let key = reactor.add(&io, epoll::EventFlags::IN | epoll::EventFlags::ET, true)?;
        Ok(Watched { io, key, reactor })
    }

    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// Wait until a read may find something: at once unless [`Watched::drained`] was
    /// called since the set last reported the socket.
    pub async fn readable(&self) {
        futures_lite::future::poll_fn(|cx| self.reactor.poll_ready(self.key, cx, false)).await;
    }

    /// A read said `WouldBlock`: the next [`Watched::readable`] waits for the set.
    pub fn drained(&self) {
        self.reactor.not_readable(self.key);
    }
}

impl<T: AsFd> Drop for Watched<T> {
    fn drop(&mut self) {
        // Explicit: `io` may be a shared handle whose socket outlives this.
        let _ = epoll::delete(&self.reactor.epoll, &self.io);
        self.reactor.release(self.key);
    }
}
