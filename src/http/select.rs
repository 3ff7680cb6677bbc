//! Which upstream of an HTTP route a request goes to, given the route's policy, each
//! upstream's health and the upstreams already tried for this request. A pure function of
//! its inputs; no IO, no clock.
//!
//! ```
//! use sluice::http::select::{pick, Availability::*};
//! use sluice::plan::HttpBalance;
//!
//! let avail = [Up, Down, Up];
//! assert_eq!(pick(HttpBalance::RoundRobin, &avail, 1, 0, None, &[]), Some(2));
//! // Retrying after upstream 2 failed: never the same one twice.
//! assert_eq!(pick(HttpBalance::RoundRobin, &avail, 1, 0, None, &[2]), Some(0));
//! ```

use crate::plan::HttpBalance;

/// How usable an upstream is right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Availability {
    Up,
    /// Passively ejected after failed requests; used only when no upstream is `Up`.
    Ejected,
    /// The active health check says it is down; never used.
    Down,
}

impl Availability {
    /// Lower-case name for logs and the status page.
    pub fn name(self) -> &'static str {
        match self {
            Availability::Up => "up",
            Availability::Ejected => "ejected",
            Availability::Down => "down",
        }
    }
}

/// The index of the upstream to send a request to, or `None` when every upstream is down
/// or already tried (the caller answers 503, or 502 after failed attempts).
///
/// Never an index in `tried`. `Up` upstreams win; `None` and `PrimaryBackup` take the first
/// in order, `RoundRobin` walks from `round % n`, `Random` from `random % n` (both wrapping).
/// `Sticky` takes the cookie's upstream (`sticky`) if it is `Up` and untried, else walks like
/// `RoundRobin`, so clients of a failed upstream spread over the rest. With no `Up` one left,
/// the same walk picks an `Ejected` one (preferring the sticky one): a passively ejected
/// upstream may work again, an error page certainly does not.
pub fn pick(
    policy: HttpBalance,
    avail: &[Availability],
    round: usize,
    random: usize,
    sticky: Option<usize>,
    tried: &[usize],
) -> Option<usize> {
    let n = avail.len();
    if n == 0 {
        return None;
    }
    let usable = |i: usize, want: Availability| -> bool {
        avail.get(i) == Some(&want) && !tried.contains(&i)
    };
    let sticky = if policy == HttpBalance::Sticky {
        sticky.filter(|&i| i < n)
    } else {
        None
    };
    let start = match policy {
        HttpBalance::None | HttpBalance::PrimaryBackup => 0,
        HttpBalance::RoundRobin | HttpBalance::Sticky => round % n,
        HttpBalance::Random => random % n,
    };
    [Availability::Up, Availability::Ejected]
        .into_iter()
        .find_map(|want| {
            sticky
                .filter(|&i| usable(i, want))
                .or_else(|| (0..n).map(|k| (start + k) % n).find(|&i| usable(i, want)))
        })
}

#[cfg(test)]
#[path = "select_tests.rs"]
mod tests;
