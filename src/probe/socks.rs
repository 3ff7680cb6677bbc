//! socks probe (stub, being written).

use super::Probe;

pub fn probe_v5(_prefix: &[u8]) -> Probe {
    Probe::NoMatch
}

pub fn probe_v4(_prefix: &[u8]) -> Probe {
    Probe::NoMatch
}
