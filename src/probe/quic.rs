//! quic probe (stub, being written).

use super::Probe;

pub fn probe(_datagrams: &[&[u8]]) -> Probe {
    Probe::NoMatch
}
