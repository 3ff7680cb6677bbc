//! Descriptor shortage (EMFILE/ENFILE). A relayed connection needs two descriptors: the
//! client's, taken at accept, and its upstream socket's, taken after probing. A listener
//! that keeps accepting while descriptors are short hands the last free ones to new clients,
//! which then wait for an upstream socket that every other waiter is waiting for too, until
//! their connect timeouts. So while descriptors are short, a listener accepts only when no
//! accepted connection is still waiting for one, and only after it has set one aside for
//! the new connection's upstream socket ([`Reserve`]). No IO of its own beyond that one
//! descriptor.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use async_io::Timer;

use crate::sys;

/// How long after the last EMFILE/ENFILE the listeners stay careful.
const SHORTAGE_LASTS: Duration = Duration::from_secs(2);

/// How often a careful listener looks whether the waiting connections got their descriptor.
const ADMIT_POLL: Duration = Duration::from_millis(10);

/// What the listeners of this thread know about the descriptor supply.
#[derive(Default)]
pub struct Descriptors {
    /// When a descriptor was last found missing.
    ran_out_at: Cell<Option<Instant>>,
    /// Accepted connections retrying for an upstream socket.
    waiting: Cell<usize>,
}

impl Descriptors {
    /// An EMFILE/ENFILE was seen just now.
    pub fn ran_out(&self) {
        self.ran_out_at.set(Some(Instant::now()));
    }

    /// Whether one was missing recently enough for listeners to be careful.
    pub fn short(&self) -> bool {
        match self.ran_out_at.get() {
            Some(at) if at.elapsed() < SHORTAGE_LASTS => true,
            Some(_) => {
                self.ran_out_at.set(None);
                false
            }
            None => false,
        }
    }

    /// Resolves when no accepted connection waits for a descriptor: the next ones freed go
    /// to those connections, not to a new client.
    pub async fn admit(&self) {
        while self.waiting.get() > 0 {
            Timer::after(ADMIT_POLL).await;
        }
    }

    /// Count the caller as waiting for a descriptor until the guard drops.
    pub fn wait(&self) -> Waiting<'_> {
        self.ran_out();
        self.waiting.set(self.waiting.get() + 1);
        Waiting(self)
    }
}

/// One connection waiting for a descriptor; see [`Descriptors::wait`].
pub struct Waiting<'a>(&'a Descriptors);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let w = &self.0.waiting;
        w.set(w.get().saturating_sub(1));
    }
}

/// A descriptor held for a connection's upstream socket while descriptors are short.
pub struct Reserve(Option<OwnedFd>);

impl Reserve {
    /// Nothing held: descriptors are plentiful.
    pub fn none() -> Self {
        Reserve(None)
    }

    /// Set one aside (a duplicate of `like`).
    ///
    /// # Errors
    /// Out of file descriptors: the listener should not accept yet.
    pub fn take(like: &impl AsFd) -> io::Result<Self> {
        sys::set_aside(like).map(|fd| Reserve(Some(fd)))
    }

    /// Close the held descriptor so that the socket created next, on this thread and before
    /// the task yields, gets its number.
    pub fn release(&mut self) {
        self.0 = None;
    }

    pub fn holds(&self) -> bool {
        self.0.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortage_starts_when_noticed_and_waiters_are_counted_until_dropped() {
        let d = Descriptors::default();
        assert!(!d.short());
        let a = d.wait();
        let b = d.wait();
        assert!(d.short(), "waiting for a descriptor means they are short");
        assert_eq!(d.waiting.get(), 2);
        drop(a);
        assert_eq!(d.waiting.get(), 1);
        drop(b);
        assert_eq!(d.waiting.get(), 0);
        async_io::block_on(d.admit());
    }

    #[test]
    fn shortage_ends_after_a_quiet_spell() {
        let d = Descriptors::default();
        d.ran_out_at.set(Some(Instant::now() - SHORTAGE_LASTS));
        assert!(!d.short());
        assert_eq!(d.ran_out_at.get(), None);
    }

    #[test]
    fn a_reserve_holds_one_descriptor_until_released() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut r = Reserve::take(&listener).unwrap();
        let held = r.0.as_ref().map(std::os::fd::AsRawFd::as_raw_fd).unwrap();
        assert!(std::path::Path::new(&format!("/proc/self/fd/{held}")).exists());
        assert!(r.holds());
        r.release();
        assert!(!r.holds());
        assert!(!Reserve::none().holds());
    }
}
