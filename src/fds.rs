//! Descriptor shortage (EMFILE/ENFILE). A relayed connection needs two descriptors: the
//! client's, taken at accept, and its upstream socket's, taken after probing. A listener
//! that keeps accepting while descriptors are short hands the last free ones to new clients,
//! which then wait for an upstream socket that every other waiter is waiting for too, until
//! their connect timeouts. So while descriptors are short, a listener accepts only when no
//! accepted connection is still waiting for one, and only after it has set one aside for
//! the new connection's upstream socket ([`Reserve`]). No IO of its own beyond that one
//! descriptor.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::sys;
use crate::timer::Timer;

/// How long after the last EMFILE/ENFILE the listeners stay careful.
const SHORTAGE_LASTS: Duration = Duration::from_secs(2);

/// How often a careful listener looks whether the waiting connections got their descriptor.
const ADMIT_POLL: Duration = Duration::from_millis(10);

/// EMFILE or ENFILE: this process or the whole system has no descriptor left.
pub fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// What the listeners know about the descriptor supply. The limit is the process's, so with
/// several workers this is shared by all of them (in [`crate::state::Common`]).
pub struct Descriptors {
    epoch: Instant,
    /// When a descriptor was last found missing: milliseconds after `epoch`, plus one (0:
    /// never, or long enough ago).
    ran_out_at: AtomicU64,
    /// Accepted connections retrying for an upstream socket.
    waiting: AtomicUsize,
}

impl Default for Descriptors {
    fn default() -> Self {
        Descriptors {
            epoch: Instant::now(),
            ran_out_at: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
        }
    }
}

impl Descriptors {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// An EMFILE/ENFILE was seen just now.
    pub fn ran_out(&self) {
        self.ran_out_at.store(self.now(), Ordering::Relaxed);
    }

    /// Whether one was missing recently enough for listeners to be careful.
    pub fn short(&self) -> bool {
        let at = self.ran_out_at.load(Ordering::Relaxed);
        if at == 0 {
            return false;
        }
        let lasts = u64::try_from(SHORTAGE_LASTS.as_millis()).unwrap_or(u64::MAX);
        if self.now().saturating_sub(at) < lasts {
            return true;
        }
        // Over; unless another EMFILE came in meanwhile.
        let _ = self
            .ran_out_at
            .compare_exchange(at, 0, Ordering::Relaxed, Ordering::Relaxed);
        false
    }

    /// Resolves when no accepted connection waits for a descriptor: the next ones freed go
    /// to those connections, not to a new client.
    pub async fn admit(&self) {
        while self.waiting.load(Ordering::Relaxed) > 0 {
            Timer::after(ADMIT_POLL).await;
        }
    }

    /// Count the caller as waiting for a descriptor until the guard drops.
    pub fn wait(&self) -> Waiting<'_> {
        self.ran_out();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(self)
    }
}

/// One connection waiting for a descriptor; see [`Descriptors::wait`].
pub struct Waiting<'a>(&'a Descriptors);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
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

    #[cfg(test)]
    fn holds(&self) -> bool {
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
        assert_eq!(d.waiting.load(Ordering::Relaxed), 2);
        drop(a);
        assert_eq!(d.waiting.load(Ordering::Relaxed), 1);
        drop(b);
        assert_eq!(d.waiting.load(Ordering::Relaxed), 0);
        async_io::block_on(d.admit());
    }

    #[test]
    fn shortage_ends_after_a_quiet_spell() {
        let d = Descriptors {
            epoch: Instant::now() - SHORTAGE_LASTS - Duration::from_millis(5),
            ..Descriptors::default()
        };
        d.ran_out_at.store(1, Ordering::Relaxed);
        assert!(!d.short(), "noticed more than SHORTAGE_LASTS ago");
        assert_eq!(d.ran_out_at.load(Ordering::Relaxed), 0);
        d.ran_out();
        assert!(d.short());
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
