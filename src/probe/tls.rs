//! TLS probe (stub, being written).

use super::Probe;
use crate::wire::WireError;

/// What a ClientHello says that routing cares about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelloInfo {
    /// server_name (host_name type), lower-cased, no trailing dot.
    pub sni: Option<String>,
    /// ALPN protocol names in client order (non-UTF-8 names are skipped).
    pub alpn: Vec<String>,
    /// An encrypted_client_hello extension (0xfe0d) is present.
    pub ech: bool,
}

/// Parse one ClientHello handshake message (starting at the handshake type byte 0x01, as
/// carried in TLS records or in QUIC CRYPTO frames).
///
/// # Errors
/// `Truncated` when the message is incomplete; `Invalid` when it is not a ClientHello.
pub fn parse_client_hello(_msg: &[u8]) -> Result<HelloInfo, WireError> {
    Err(WireError::Invalid("stub"))
}

pub fn probe(_prefix: &[u8]) -> Probe {
    Probe::NoMatch
}
