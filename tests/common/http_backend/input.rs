//! The backend's read side: a buffered connection that counts raw bytes, and the chunked
//! body decoder. Does IO (reads a socket).

use std::io::{self, ErrorKind, Read};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};

use super::MAX_HEAD;

/// Size of each read from a connection.
const READ_CHUNK: usize = 64 * 1024;

/// A connection's read side with a buffer, counting every byte into the backend's total.
pub(super) struct Input<'a> {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    /// The backend's total of raw bytes received.
    counter: &'a AtomicU64,
}

impl<'a> Input<'a> {
    /// Read `stream`, adding every byte received to `counter`.
    pub(super) fn new(stream: TcpStream, counter: &'a AtomicU64) -> Input<'a> {
        Input {
            stream,
            buf: Vec::new(),
            pos: 0,
            counter,
        }
    }

    pub(super) fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Drop everything buffered so far.
    pub(super) fn discard(&mut self) {
        self.pos = self.buf.len();
    }

    /// Read more bytes into the buffer; `Ok(0)` at EOF.
    pub(super) fn fill(&mut self) -> io::Result<usize> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let n = loop {
            match self.stream.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        self.counter.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }

    pub(super) fn fill_or_eof(&mut self) -> io::Result<()> {
        if self.fill()? == 0 {
            return Err(io::Error::new(ErrorKind::UnexpectedEof, "EOF"));
        }
        Ok(())
    }

    /// Bytes up to and including `delim`; `Ok(None)` on EOF before any byte.
    pub(super) fn read_until(&mut self, delim: &[u8], limit: usize) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = self
                .available()
                .windows(delim.len())
                .position(|w| w == delim)
            {
                let end = self.pos + i + delim.len();
                let out = self.buf[self.pos..end].to_vec();
                self.pos = end;
                return Ok(Some(out));
            }
            if self.available().len() > limit {
                return Err(io::Error::new(ErrorKind::InvalidData, "line too long"));
            }
            if self.fill()? == 0 {
                if self.available().is_empty() {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "EOF inside a line",
                ));
            }
        }
    }

    /// Consume exactly `n` bytes, handing them to `sink` piece by piece.
    pub(super) fn take(&mut self, mut n: u64, sink: &mut impl FnMut(&[u8])) -> io::Result<()> {
        while n > 0 {
            if self.available().is_empty() {
                self.fill_or_eof()?;
            }
            let k = self
                .available()
                .len()
                .min(usize::try_from(n).unwrap_or(usize::MAX));
            sink(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            n -= k as u64;
        }
        Ok(())
    }
}

pub(super) fn invalid(why: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, why.to_owned())
}

/// Decode a chunked body into `sink` (extensions and trailers skipped).
pub(super) fn read_chunked(input: &mut Input, sink: &mut impl FnMut(&[u8])) -> io::Result<()> {
    loop {
        let line = input
            .read_until(b"\r\n", 4096)?
            .ok_or_else(|| invalid("EOF in chunk"))?;
        let text = std::str::from_utf8(&line).map_err(|_| invalid("chunk line"))?;
        let size_text = text.trim_end().split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_text, 16).map_err(|_| invalid("chunk size"))?;
        if size == 0 {
            loop {
                let trailer = input.read_until(b"\r\n", MAX_HEAD)?;
                match trailer {
                    Some(t) if t == b"\r\n" => return Ok(()),
                    Some(_) => {}
                    None => return Err(invalid("EOF in trailers")),
                }
            }
        }
        input.take(size, sink)?;
        let mut crlf = Vec::new();
        input.take(2, &mut |d: &[u8]| crlf.extend_from_slice(d))?;
        if crlf != b"\r\n" {
            return Err(invalid("no CRLF after chunk data"));
        }
    }
}
