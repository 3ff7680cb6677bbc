//! http probe (stub, being written).

use super::Probe;

pub fn probe(_prefix: &[u8]) -> Probe {
    Probe::NoMatch
}
