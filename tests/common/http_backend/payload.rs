//! Test payload bytes for the HTTP backend and its clients: the deterministic `/download`
//! pattern and SHA-256 digests as hex. No IO.

use ring::digest;

/// The deterministic bytes `/download` serves: byte `i` is `i % 251` (a prime, so the
/// pattern does not line up with buffer sizes and a shifted or dropped block shows).
pub struct Pattern {
    period: Vec<u8>,
}

impl Pattern {
    const PRIME: usize = 251;

    pub fn new() -> Pattern {
        let period = (0..Self::PRIME * 256)
            .map(|i| (i % Self::PRIME) as u8)
            .collect();
        Pattern { period }
    }

    /// The longest slice the pattern can hand out at once.
    pub fn max_slice(&self) -> usize {
        self.period.len() - Self::PRIME
    }

    /// The `len` pattern bytes starting at stream offset `offset` (`len <= max_slice()`).
    pub fn slice(&self, offset: u64, len: usize) -> &[u8] {
        let start = (offset % Self::PRIME as u64) as usize;
        &self.period[start..start + len]
    }

    /// Whether `data` equals the pattern at `offset` (any length).
    pub fn matches(&self, offset: u64, data: &[u8]) -> bool {
        let step = self.max_slice();
        data.chunks(step)
            .enumerate()
            .all(|(i, part)| part == self.slice(offset + (i * step) as u64, part.len()))
    }
}

impl Default for Pattern {
    fn default() -> Self {
        Pattern::new()
    }
}

/// Lower-case hex of `data`.
pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `data` as lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}
