//! The WebSocket side of the HTTP backend (RFC 6455): the handshake's accept key, and the
//! frame echo run after a `101`. Does IO (on the upgraded connection).

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};

use ring::digest;

use super::input::{Input, invalid};

/// The GUID of RFC 6455 §1.3 that `Sec-WebSocket-Accept` is derived with.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for `key` (RFC 6455 §4.2.2): base64(SHA-1(key ‖ GUID)).
pub fn websocket_accept(key: &str) -> String {
    let hash = digest::digest(
        &digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{WEBSOCKET_GUID}").as_bytes(),
    );
    base64(hash.as_ref())
}

/// Standard padded base64 (RFC 4648 §4).
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in data.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Echo WebSocket frames (RFC 6455 §5) until a close frame or EOF. Client frames must be
/// masked; echoes are unmasked with the same FIN bit and opcode.
pub(super) fn websocket_echo(
    input: &mut Input,
    out: &mut TcpStream,
    frames: &AtomicUsize,
) -> io::Result<()> {
    loop {
        let mut header = Vec::new();
        if input.available().is_empty() && input.fill()? == 0 {
            return Ok(());
        }
        input.take(2, &mut |d: &[u8]| header.extend_from_slice(d))?;
        let (first, second) = (header[0], header[1]);
        let opcode = first & 0x0f;
        if second & 0x80 == 0 {
            return Err(invalid("unmasked client frame"));
        }
        let mut len = u64::from(second & 0x7f);
        let extra = match len {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        if extra > 0 {
            let mut ext = Vec::new();
            input.take(extra, &mut |d: &[u8]| ext.extend_from_slice(d))?;
            len = ext.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        }
        let mut mask = Vec::new();
        input.take(4, &mut |d: &[u8]| mask.extend_from_slice(d))?;
        let mut payload = Vec::new();
        input.take(len, &mut |d: &[u8]| payload.extend_from_slice(d))?;
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        match opcode {
            0x8 => {
                out.write_all(&frame(0x80 | 0x8, &payload))?;
                let _ = out.shutdown(Shutdown::Write);
                return Ok(());
            }
            0x9 => out.write_all(&frame(0x80 | 0xA, &payload))?,
            0xA => {}
            _ => {
                frames.fetch_add(1, Ordering::SeqCst);
                out.write_all(&frame(first, &payload))?;
            }
        }
    }
}

/// An unmasked frame with first byte `first` (FIN, RSV, opcode) and `payload`.
pub fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![first];
    match payload.len() {
        n if n < 126 => f.push(n as u8),
        n if n <= 0xffff => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}
