//! The sticky-session cookie: which upstream a client was sent to, sealed with
//! ChaCha20-Poly1305 so clients can neither read nor forge it, plus finding it in a request's
//! `Cookie` headers and building the `Set-Cookie` value. No IO.
//!
//! The value is `base64url(nonce || ciphertext || tag)` without padding. The route id is the
//! AEAD's associated data, so a cookie minted for one route opens on no other.
//!
//! ```
//! use sluice::http::sticky::StickyKey;
//!
//! let key = StickyKey::new(&[7; 32]);
//! let cookie = key.seal("app/api", "10.0.0.2:8080");
//! assert_eq!(key.open("app/api", &cookie).as_deref(), Some("10.0.0.2:8080"));
//! assert_eq!(key.open("app/web", &cookie), None);
//! ```
#![deny(clippy::indexing_slicing)]

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderValue;
use http::header::COOKIE;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The cookie's name.
pub const COOKIE_NAME: &str = "sluice_sticky";

/// Longest cookie value `open` looks at: browsers keep at most 4096 bytes per cookie, so a
/// longer value was not minted by us, and the bound caps the work a client can cause.
pub const MAX_COOKIE_VALUE: usize = 4096;

/// Poly1305 tag length.
const TAG_LEN: usize = 16;

/// The key that seals and opens sticky cookies. `Debug` does not print it.
pub struct StickyKey {
    key: Option<LessSafeKey>,
    rng: SystemRandom,
    /// Nonce counter, used only if the system random source ever fails.
    fallback: AtomicU64,
}

impl fmt::Debug for StickyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StickyKey(..)")
    }
}

impl StickyKey {
    /// A key from `sticky_cookie_secret`: cookies stay valid across restarts and across
    /// instances sharing the secret.
    pub fn new(secret: &[u8; 32]) -> StickyKey {
        StickyKey {
            key: aead_key(secret),
            rng: SystemRandom::new(),
            fallback: AtomicU64::new(0),
        }
    }

    /// A fresh random key (no `sticky_cookie_secret`): cookies die with the process.
    pub fn random() -> StickyKey {
        let rng = SystemRandom::new();
        let mut secret = [0u8; 32];
        if rng.fill(&mut secret).is_err() {
            // Never seen on a real system; weak but still per-process keys beat none.
            log::error!("system random source failed; sticky cookie key is weak");
            secret = weak_secret();
        }
        StickyKey::new(&secret)
    }

    /// Seals `upstream_id` for `route_id` into a cookie value (base64url, no padding).
    pub fn seal(&self, route_id: &str, upstream_id: &str) -> String {
        let Some(key) = &self.key else {
            return String::new();
        };
        let nonce = self.nonce();
        let mut in_out = upstream_id.as_bytes().to_vec();
        let sealed = key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(route_id.as_bytes()),
            &mut in_out,
        );
        if sealed.is_err() {
            // Only for inputs of gigabytes; an empty value opens as nothing.
            return String::new();
        }
        let mut raw = Vec::with_capacity(NONCE_LEN + in_out.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&in_out);
        encode(&raw)
    }

    /// The upstream id sealed in `value` for `route_id`; `None` if the value is malformed,
    /// too long, forged, tampered with, from another key or route, or not UTF-8.
    pub fn open(&self, route_id: &str, value: &str) -> Option<String> {
        if value.len() > MAX_COOKIE_VALUE {
            return None;
        }
        let raw = decode(value)?;
        let (nonce, sealed) = raw.split_first_chunk::<NONCE_LEN>()?;
        if sealed.len() < TAG_LEN {
            return None;
        }
        let mut in_out = sealed.to_vec();
        let plain = self
            .key
            .as_ref()?
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(route_id.as_bytes()),
                &mut in_out,
            )
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }

    /// A 96-bit random nonce; if the system source fails, a random prefix and a counter
    /// (still unique per key within this process).
    fn nonce(&self) -> [u8; NONCE_LEN] {
        let mut nonce = [0u8; NONCE_LEN];
        if self.rng.fill(&mut nonce).is_err() {
            let count = self.fallback.fetch_add(1, Ordering::Relaxed);
            let prefix = fastrand::u32(..).to_be_bytes();
            for (dst, src) in nonce
                .iter_mut()
                .zip(prefix.iter().chain(count.to_be_bytes().iter()))
            {
                *dst = *src;
            }
        }
        nonce
    }
}

/// ring refuses only a key of the wrong length, and a `[u8; 32]` is the right one; `None`
/// (never seen) makes every seal empty and every open fail rather than panic.
fn aead_key(secret: &[u8; 32]) -> Option<LessSafeKey> {
    UnboundKey::new(&CHACHA20_POLY1305, secret)
        .ok()
        .map(LessSafeKey::new)
}

/// A last-resort key from sources that are not cryptographic: process id, clock, fastrand.
fn weak_secret() -> [u8; 32] {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&now.to_le_bytes());
    ctx.update(&std::process::id().to_le_bytes());
    for _ in 0..4 {
        ctx.update(&fastrand::u64(..).to_le_bytes());
    }
    let mut out = [0u8; 32];
    for (dst, src) in out.iter_mut().zip(ctx.finish().as_ref()) {
        *dst = *src;
    }
    out
}

/// The value of the first cookie called `name` across all `Cookie` headers (`; `-separated
/// `name=value` pairs; surrounding double quotes removed). Names compare case-sensitively.
pub fn find_cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| std::str::from_utf8(v.as_bytes()).ok())
        .flat_map(|line| line.split(';'))
        .find_map(|pair| {
            let (n, v) = pair.split_once('=')?;
            if n.trim_matches([' ', '\t']) != name {
                return None;
            }
            let v = v.trim_matches([' ', '\t']);
            Some(
                v.strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v),
            )
        })
}

/// The `Set-Cookie` value that gives a client `value`:
/// `sluice_sticky=V; Path=P; HttpOnly; SameSite=Lax[; Secure]`. Bytes that could end the
/// value or an attribute early (`;`, control bytes, …) are dropped; an empty path is `/`.
pub fn set_cookie(value: &str, path: &str, secure: bool) -> HeaderValue {
    let value: String = value.chars().filter(|&c| is_cookie_octet(c)).collect();
    let path: String = path
        .chars()
        .filter(|&c| c.is_ascii_graphic() && c != ';')
        .collect();
    let path = if path.is_empty() { "/" } else { path.as_str() };
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{COOKIE_NAME}={value}; Path={path}; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| {
        HeaderValue::from_static("sluice_sticky=; Path=/; HttpOnly; SameSite=Lax")
    })
}

/// RFC 6265 §4.1.1 `cookie-octet`.
fn is_cookie_octet(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '"' | ',' | ';' | '\\')
}

/// base64url without padding (RFC 4648 §5).
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let (b0, b1, b2) = match *chunk {
            [a] => (a, 0, 0),
            [a, b] => (a, b, 0),
            [a, b, c] => (a, b, c),
            _ => continue,
        };
        let n = u32::from(b0) << 16 | u32::from(b1) << 8 | u32::from(b2);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let shift = 18 - 6 * i;
            out.push(sextet_char((n >> shift) as u8 & 0x3f));
        }
    }
    out
}

fn sextet_char(v: u8) -> char {
    char::from(match v {
        0..=25 => b'A' + v,
        26..=51 => b'a' + (v - 26),
        52..=61 => b'0' + (v - 52),
        62 => b'-',
        _ => b'_',
    })
}

fn sextet(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Strict base64url decoding: no padding, no other alphabet, and unused trailing bits must
/// be zero, so every value has exactly one spelling (a changed character never decodes to
/// the same bytes).
fn decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for &c in chunk {
            n = n << 6 | sextet(c)?;
        }
        match chunk.len() {
            4 => out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]),
            3 if n & 0x3 == 0 => out.extend_from_slice(&[(n >> 10) as u8, (n >> 2) as u8]),
            2 if n & 0xf == 0 => out.push((n >> 4) as u8),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
#[path = "sticky_tests.rs"]
mod tests;
