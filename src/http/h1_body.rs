//! HTTP/1.1 message bodies, sans-IO: decoders that take the bytes buffered so far and hand
//! back body bytes as sub-slices of them (no copy), and the chunked encoder. No IO.
//!
//! The contract is the head parsers': `decode` reports how many input bytes it consumed;
//! the caller drops those and presents the rest again, with more appended, next time.

use http::HeaderMap;

use super::fields::{Halt, field_line, take_line};
use super::{BodyFraming, H1Error, MAX_CHUNK_LINE, MAX_HEADERS, MAX_TRAILER_BYTES};
use crate::wire::{Reader, WireError};

/// One step of decoding.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Input bytes used up (framing and data); drop them before the next call.
    pub consumed: usize,
    /// Body bytes: a sub-slice of the input, possibly empty.
    pub data: &'a [u8],
    /// The body is complete (any trailers are parsed); bytes after `consumed` belong to
    /// the next message.
    pub done: bool,
}

impl Decoded<'_> {
    /// Nothing consumed and not done: read more.
    pub fn needs_more(&self) -> bool {
        self.consumed == 0 && !self.done
    }
}

/// Counts down a `Content-Length` body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LengthBody {
    remaining: u64,
}

impl LengthBody {
    pub fn new(len: u64) -> Self {
        LengthBody { remaining: len }
    }

    /// Body bytes still expected.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    pub fn is_done(&self) -> bool {
        self.remaining == 0
    }

    /// Takes as much of `input` as still belongs to the body.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Decoded<'a> {
        let n = usize::try_from(self.remaining).map_or(input.len(), |r| r.min(input.len()));
        let data = input.get(..n).unwrap_or_default();
        self.remaining = self.remaining.saturating_sub(n as u64);
        Decoded {
            consumed: n,
            data,
            done: self.remaining == 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    /// Expecting `chunk-size [chunk-ext] CRLF`.
    Size,
    /// Inside chunk data with this many bytes left.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer field lines until an empty line.
    Trailers,
    Done,
    /// An error was returned; it is returned again.
    Failed(H1Error),
}

/// Streaming decoder of `Transfer-Encoding: chunked` (RFC 9112 §7.1), bounded by a maximum
/// body size (413) and by [`MAX_CHUNK_LINE`] and [`MAX_TRAILER_BYTES`].
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: ChunkState,
    total: u64,
    max_body: u64,
    trailers: HeaderMap,
    trailer_bytes_left: usize,
}

impl ChunkedDecoder {
    /// A decoder that fails with [`H1Error::BodyTooLarge`] once the chunk sizes add up to
    /// more than `max_body`.
    pub fn new(max_body: u64) -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
            total: 0,
            max_body,
            trailers: HeaderMap::new(),
            trailer_bytes_left: MAX_TRAILER_BYTES,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Body bytes announced so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The trailer fields (empty until done, and when none were sent).
    pub fn trailers(&self) -> &HeaderMap {
        &self.trailers
    }

    /// Decodes from the start of `input` until it has body bytes to hand back, needs more
    /// input, or the body is complete.
    ///
    /// # Errors
    /// Malformed chunk lines or trailers (400), a body over the limit (413), a trailer
    /// section over its limits (431). Errors are final.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<Decoded<'a>, H1Error> {
        let mut r = Reader::new(input);
        let result = self.step(&mut r);
        let consumed = input.len().saturating_sub(r.len());
        match result {
            Ok(data) => Ok(Decoded {
                consumed,
                data,
                done: self.state == ChunkState::Done,
            }),
            Err(Halt::Partial) => Ok(Decoded {
                consumed,
                data: &[],
                done: false,
            }),
            Err(Halt::Fail(e)) => {
                self.state = ChunkState::Failed(e);
                Err(e)
            }
        }
    }

    fn step<'a>(&mut self, r: &mut Reader<'a>) -> Result<&'a [u8], Halt> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let line =
                        take_line(r, MAX_CHUNK_LINE, H1Error::Invalid("chunk line too long"))?;
                    let size = chunk_size(line)?;
                    if size > self.max_body.saturating_sub(self.total) {
                        return Err(Halt::Fail(H1Error::BodyTooLarge));
                    }
                    self.total += size;
                    self.state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if r.is_empty() {
                        return Err(Halt::Partial);
                    }
                    let n = usize::try_from(left).map_or(r.len(), |l| l.min(r.len()));
                    let data = r.take(n).map_err(|_| Halt::Partial)?;
                    let left = left.saturating_sub(n as u64);
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                    return Ok(data);
                }
                ChunkState::DataEnd => match r.expect(b"\r\n", "missing CRLF after chunk data") {
                    Ok(()) => self.state = ChunkState::Size,
                    Err(WireError::Truncated) => return Err(Halt::Partial),
                    Err(WireError::Invalid(why)) => return Err(Halt::Fail(H1Error::Invalid(why))),
                },
                ChunkState::Trailers => {
                    let before = r.len();
                    let field = field_line(
                        r,
                        self.trailer_bytes_left,
                        H1Error::HeadersTooLarge("trailer section over MAX_TRAILER_BYTES"),
                    )?;
                    self.trailer_bytes_left = self
                        .trailer_bytes_left
                        .saturating_sub(before.saturating_sub(r.len()));
                    let Some((name, value)) = field else {
                        self.state = ChunkState::Done;
                        return Ok(&[]);
                    };
                    if self.trailers.len() == MAX_HEADERS {
                        return Err(Halt::Fail(H1Error::HeadersTooLarge(
                            "more than MAX_HEADERS trailer fields",
                        )));
                    }
                    self.trailers.append(name, value);
                }
                ChunkState::Done => return Ok(&[]),
                ChunkState::Failed(e) => return Err(Halt::Fail(e)),
            }
        }
    }
}

/// `chunk-size [ chunk-ext ]` (RFC 9112 §7.1.1), strictly: 1*HEXDIG fitting a u64, then
/// `;name` or `;name=token` or `;name="quoted"` with no whitespace anywhere (BWS is allowed
/// by the grammar but sent by nobody, and lenient whitespace handling is a smuggling vector).
fn chunk_size(line: &[u8]) -> Result<u64, H1Error> {
    let bad = H1Error::Invalid;
    let mut l = Reader::new(line);
    let digits = l.take_while(|b| b.is_ascii_hexdigit());
    if digits.is_empty() {
        return Err(bad("chunk size is not hex"));
    }
    let size = digits
        .iter()
        .try_fold(0u64, |n, &d| {
            let digit = char::from(d).to_digit(16)?;
            n.checked_mul(16)?.checked_add(u64::from(digit))
        })
        .ok_or(bad("chunk size overflows u64"))?;
    if !l.is_empty() && !l.rest().starts_with(b";") {
        return Err(bad("chunk size is not hex"));
    }
    while l.expect(b";", "").is_ok() {
        if l.take_while(super::fields::is_tchar).is_empty() {
            return Err(bad("chunk extension name is not a token"));
        }
        if l.expect(b"=", "").is_ok() {
            if l.expect(b"\"", "").is_ok() {
                quoted_string_rest(&mut l).ok_or(bad("bad quoted chunk extension value"))?;
            } else if l.take_while(super::fields::is_tchar).is_empty() {
                return Err(bad("chunk extension value is not a token"));
            }
        }
        if !l.is_empty() && !l.rest().starts_with(b";") {
            return Err(bad("bad chunk extension"));
        }
    }
    Ok(size)
}

/// The rest of a quoted-string after its opening quote, through the closing quote.
fn quoted_string_rest(l: &mut Reader<'_>) -> Option<()> {
    let qdtext = |b: u8| {
        b == b'\t'
            || b == b' '
            || b == 0x21
            || ((0x23..=0x7e).contains(&b) && b != b'\\')
            || b >= 0x80
    };
    loop {
        match l.u8().ok()? {
            b'"' => return Some(()),
            b'\\' => {
                let escaped = l.u8().ok()?;
                if !super::fields::is_field_byte(escaped) {
                    return None;
                }
            }
            b if qdtext(b) => {}
            _ => return None,
        }
    }
}

/// Decodes whichever body a head announced, bounded by the caller's maximum.
#[derive(Clone, Debug)]
pub enum BodyDecoder {
    /// No body.
    Empty,
    Length(LengthBody),
    Chunked(ChunkedDecoder),
    /// Until the connection closes (responses only).
    UntilClose {
        seen: u64,
        max_body: u64,
    },
}

impl BodyDecoder {
    /// The decoder for `framing`; `max_body` is e.g. the app's `request_max_body_size`
    /// (`u64::MAX` for none).
    ///
    /// # Errors
    /// [`H1Error::BodyTooLarge`] at once when a Content-Length exceeds `max_body`.
    pub fn new(framing: BodyFraming, max_body: u64) -> Result<Self, H1Error> {
        Ok(match framing {
            BodyFraming::None => BodyDecoder::Empty,
            BodyFraming::ContentLength(n) if n > max_body => return Err(H1Error::BodyTooLarge),
            BodyFraming::ContentLength(n) => BodyDecoder::Length(LengthBody::new(n)),
            BodyFraming::Chunked => BodyDecoder::Chunked(ChunkedDecoder::new(max_body)),
            BodyFraming::UntilClose => BodyDecoder::UntilClose { seen: 0, max_body },
        })
    }

    /// The next body bytes from the start of `input` (see [`Decoded`]).
    ///
    /// # Errors
    /// As [`ChunkedDecoder::decode`]; [`H1Error::BodyTooLarge`] for a close-delimited body
    /// over the limit.
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<Decoded<'a>, H1Error> {
        match self {
            BodyDecoder::Empty => Ok(Decoded {
                consumed: 0,
                data: &[],
                done: true,
            }),
            BodyDecoder::Length(body) => Ok(body.decode(input)),
            BodyDecoder::Chunked(chunked) => chunked.decode(input),
            BodyDecoder::UntilClose { seen, max_body } => {
                *seen = seen.saturating_add(input.len() as u64);
                if *seen > *max_body {
                    return Err(H1Error::BodyTooLarge);
                }
                Ok(Decoded {
                    consumed: input.len(),
                    data: input,
                    done: false,
                })
            }
        }
    }

    pub fn is_done(&self) -> bool {
        match self {
            BodyDecoder::Empty => true,
            BodyDecoder::Length(body) => body.is_done(),
            BodyDecoder::Chunked(chunked) => chunked.is_done(),
            BodyDecoder::UntilClose { .. } => false,
        }
    }

    /// The peer closed the connection: fine for a close-delimited or finished body.
    ///
    /// # Errors
    /// `Invalid("connection closed inside the body")` otherwise.
    pub fn finish_at_eof(&self) -> Result<(), H1Error> {
        if self.is_done() || matches!(self, BodyDecoder::UntilClose { .. }) {
            Ok(())
        } else {
            Err(H1Error::Invalid("connection closed inside the body"))
        }
    }

    /// Trailers of a finished chunked body.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        match self {
            BodyDecoder::Chunked(chunked) if chunked.is_done() => Some(chunked.trailers()),
            _ => None,
        }
    }
}

/// Appends one chunk holding `data` (nothing for empty `data`: an empty chunk would end
/// the body).
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    push_hex(out, data.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk, `trailers` (may be empty) and the final CRLF.
pub fn write_last_chunk(out: &mut Vec<u8>, trailers: &HeaderMap) {
    out.extend_from_slice(b"0\r\n");
    super::write::fields(out, trailers);
    out.extend_from_slice(b"\r\n");
}

fn push_hex(out: &mut Vec<u8>, n: u64) {
    let digits = (u64::BITS - n.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        let nibble = ((n >> (i * 4)) & 0xf) as u32;
        out.push(char::from_digit(nibble, 16).map_or(b'0', |c| c as u8));
    }
}
