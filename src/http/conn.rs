//! Buffered byte streams for the HTTP/1.1 drivers: a read buffer heads are parsed from and
//! bodies decoded from, and the body pump that moves one message body from a buffered
//! stream to a writer, re-framed, in bounded memory. Does IO.

use std::io;
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt, future};
use http::HeaderMap;

use super::h1::{BodyDecoder, H1Error, write_chunk, write_last_chunk};
use crate::spare::Spare;
use crate::timer::Timer;

/// Bytes read per call: large enough for throughput, small enough that thousands of
/// connections stay cheap (a body never needs more than this buffered).
pub const READ_CHUNK: usize = 16 * 1024;

/// A stream with a read buffer. The buffer is zeroed once when it grows, never per read;
/// bytes `start..end` are buffered and not consumed yet. A stream with nothing buffered
/// lends its buffer back to a per-thread spare list while it waits for bytes, so idle
/// keep-alive clients and pooled upstream connections hold no buffer.
pub struct BufStream<S> {
    pub io: S,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The read timeout, one timer for all reads: set again per read, it moves in the
    /// thread's timer map once per timeout, not once per read (src/timer.rs).
    timer: Timer,
}

/// Spare read buffers kept per thread (`READ_CHUNK` bytes each, already zeroed): at most
/// 1 MiB waits here for the next connection with bytes to read.
const SPARE_BUFFERS: usize = 64;

thread_local! {
    static SPARE: Spare<Vec<u8>> = const { Spare::new(SPARE_BUFFERS) };
}

fn spare_take() -> Vec<u8> {
    SPARE
        .with(Spare::take)
        .unwrap_or_else(|| vec![0; READ_CHUNK])
}

/// Keep a buffer of the usual size for the next taker (a grown one is freed).
fn spare_give(buf: Vec<u8>) {
    if buf.len() == READ_CHUNK {
        SPARE.with(|s| s.give(buf));
    }
}

impl<S: AsyncRead + AsyncWrite + HalfClose + Unpin> BufStream<S> {
    /// `initial`: bytes already read from `io` (e.g. by the protocol probe).
    pub fn new(io: S, initial: Vec<u8>) -> Self {
        let end = initial.len();
        BufStream {
            io,
            buf: initial,
            start: 0,
            end,
            timer: Timer::never(),
        }
    }

    /// Buffered bytes not consumed yet.
    pub fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Take every buffered byte (for a splice after an upgrade).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let rest = self.data().to_vec();
        self.start = 0;
        self.end = 0;
        rest
    }

    /// Lend the read buffer back when nothing is buffered (e.g. before this stream idles
    /// in a pool); the next `fill` takes one again.
    pub fn release_buffer(&mut self) {
        if self.end == 0 && !self.buf.is_empty() {
            spare_give(std::mem::take(&mut self.buf));
        }
        // The task that read last may end while this stream idles: hold nothing of it.
        self.timer.forget_waker();
    }

    /// Whether this stream holds a read buffer now.
    #[cfg(test)]
    pub fn holds_buffer(&self) -> bool {
        self.buf.capacity() > 0
    }

    /// Read more bytes; `Ok(0)` at EOF. `timeout`: how long the peer may stay silent.
    ///
    /// # Errors
    /// The read failed, or timed out (`ErrorKind::TimedOut`).
    pub async fn fill(&mut self, timeout: Duration) -> io::Result<usize> {
        if self.buf.is_empty() {
            self.buf = spare_take();
        }
        if self.buf.len() - self.end < READ_CHUNK / 4 {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < READ_CHUNK / 4 {
                self.buf.resize(self.end + READ_CHUNK, 0);
            }
        }
        let end = self.end;
        let (io, buf, timer) = (&mut self.io, &mut self.buf, &mut self.timer);
        // While the read waits and nothing is buffered, the buffer goes back to the spares.
        let read = future::poll_fn(|cx| {
            if buf.is_empty() {
                *buf = spare_take();
            }
            let dst = buf.get_mut(end..).unwrap_or_default();
            let room = dst.len();
            match Pin::new(&mut *io).poll_read(cx, dst) {
                Poll::Pending => {
                    if end == 0 {
                        spare_give(std::mem::take(buf));
                    }
                    Poll::Pending
                }
                Poll::Ready(Ok(n)) if n > 0 && n < room => {
                    io.forget_readiness();
                    Poll::Ready(Ok(n))
                }
                ready => ready,
            }
        });
        let n = future::or(read, async {
            // Set only when the read has to wait: a read that finds bytes reads no clock.
            timer.set_after(timeout);
            timer.await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no data for {timeout:?}"),
            ))
        })
        .await;
        let n = match n {
            Ok(n) => n,
            // A TLS peer that closes without close_notify: the end of the stream, like
            // curl and browsers take it (framed bodies still notice a truncation).
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e),
        };
        self.end += n;
        Ok(n)
    }
}

/// A stream whose write side can be shut on its own (TCP FIN), so a spliced upgrade can pass
/// a half-close on. (`AsyncWrite::poll_close` of `Async<TcpStream>` only flushes.) It also
/// reaches the socket under the stream for `forget_readiness`.
pub trait HalfClose {
    fn shut_write(&self) -> io::Result<()>;

    /// Forget the readiness event a read that drained the socket has used up. async-io keeps
    /// the last event and reports it once more at the next read that would block, which then
    /// costs a second read(2) for nothing; this clears it (or arms the wait the next read
    /// would arm anyway). Nothing to do for streams that are not a bare socket.
    fn forget_readiness(&self) {}
}

impl HalfClose for Async<TcpStream> {
    fn shut_write(&self) -> io::Result<()> {
        self.get_ref().shutdown(Shutdown::Write)
    }

    fn forget_readiness(&self) {
        let _ = self.poll_readable(&mut Context::from_waker(std::task::Waker::noop()));
    }
}

impl<T: HalfClose + ?Sized> HalfClose for &mut T {
    fn shut_write(&self) -> io::Result<()> {
        (**self).shut_write()
    }

    fn forget_readiness(&self) {
        (**self).forget_readiness();
    }
}

/// Wraps a stream so that closing it shuts its write side.
pub struct ShutOnClose<S>(pub S);

impl<S: AsyncRead + Unpin> AsyncRead for ShutOnClose<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + HalfClose + Unpin> AsyncWrite for ShutOnClose<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    /// The inner close first (a TLS stream sends close_notify there), then the FIN.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.0).poll_close(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(self.0.shut_write()),
            other => other,
        }
    }
}

/// How the pump writes the body it decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encode {
    /// The bytes as decoded (Content-Length or close-delimited output).
    Raw,
    /// Chunked, with the source's trailers (if any) at the end.
    Chunked,
}

/// Why a body did not make it through.
#[derive(Debug)]
pub enum PumpError {
    /// The source broke the framing (or the size limit).
    Framing(H1Error),
    /// The source closed before the body was complete.
    Truncated,
    /// Reading the source failed or timed out.
    Read(io::Error),
    /// Writing to the destination failed.
    Write(io::Error),
}

impl std::fmt::Display for PumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PumpError::Framing(e) => write!(f, "{e}"),
            PumpError::Truncated => f.write_str("closed inside the body"),
            PumpError::Read(e) => write!(f, "read: {e}"),
            PumpError::Write(e) => write!(f, "write: {e}"),
        }
    }
}

/// Moves one body from `src` to `dst`: decodes with `dec`, writes per `encode`, leaves any
/// bytes after the body in `src`. Returns the body bytes moved. Memory stays bounded by the
/// read buffer.
///
/// # Errors
/// See [`PumpError`]; on error the body is incomplete on `dst`.
pub async fn pump<R, W>(
    src: &mut BufStream<R>,
    dec: &mut BodyDecoder,
    dst: &mut W,
    encode: Encode,
    idle: Duration,
    keep_trailers: bool,
) -> Result<u64, PumpError>
where
    R: AsyncRead + AsyncWrite + HalfClose + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut moved = 0u64;
    let mut framed = Vec::new();
    loop {
        if !src.data().is_empty() || dec.is_done() {
            let d = dec.decode(src.data()).map_err(PumpError::Framing)?;
            let (consumed, done) = (d.consumed, d.done);
            if !d.data.is_empty() {
                moved += d.data.len() as u64;
                let bytes = match encode {
                    Encode::Raw => d.data,
                    Encode::Chunked => {
                        framed.clear();
                        write_chunk(&mut framed, d.data);
                        &framed
                    }
                };
                write_within(dst, bytes, idle).await?;
            }
            src.consume(consumed);
            if done {
                if encode == Encode::Chunked {
                    let trailers = dec.trailers().filter(|_| keep_trailers);
                    finish_chunked(dst, trailers, idle).await?;
                }
                dst.flush().await.map_err(PumpError::Write)?;
                return Ok(moved);
            }
            if consumed > 0 {
                continue;
            }
        }
        let n = src.fill(idle).await.map_err(PumpError::Read)?;
        if n == 0 {
            dec.finish_at_eof().map_err(|_| PumpError::Truncated)?;
            if encode == Encode::Chunked {
                finish_chunked(dst, None, idle).await?;
            }
            dst.flush().await.map_err(PumpError::Write)?;
            return Ok(moved);
        }
    }
}

/// Write all of `bytes`, failing when the peer takes none of them for `idle` (a reader that
/// stopped reading must not hold the connection, and its upstream, forever).
async fn write_within<W: AsyncWrite + Unpin>(
    dst: &mut W,
    bytes: &[u8],
    idle: Duration,
) -> Result<(), PumpError> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let wrote = future::or(dst.write(rest), async {
            Timer::after(idle).await;
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("peer read nothing for {idle:?}"),
            ))
        })
        .await
        .map_err(PumpError::Write)?;
        if wrote == 0 {
            return Err(PumpError::Write(io::ErrorKind::WriteZero.into()));
        }
        rest = rest.get(wrote..).unwrap_or_default();
    }
    Ok(())
}

async fn finish_chunked<W: AsyncWrite + Unpin>(
    dst: &mut W,
    trailers: Option<&HeaderMap>,
    idle: Duration,
) -> Result<(), PumpError> {
    let mut last = Vec::new();
    write_last_chunk(&mut last, trailers.unwrap_or(&HeaderMap::new()));
    write_within(dst, &last, idle).await
}

/// Write all of `bytes` and flush, failing when the peer takes nothing for `idle`.
///
/// # Errors
/// The write failed or timed out.
pub async fn send<W: AsyncWrite + Unpin>(
    dst: &mut W,
    bytes: &[u8],
    idle: Duration,
) -> io::Result<()> {
    match write_within(dst, bytes, idle).await {
        Ok(()) => dst.flush().await,
        Err(PumpError::Write(e)) => Err(e),
        Err(e) => Err(io::Error::other(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    #[test]
    fn a_stream_waiting_with_nothing_buffered_lends_its_buffer_back() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (ours, _) = l.accept().unwrap();
        let mut s = BufStream::new(Async::new(ours).unwrap(), Vec::new());
        let wait = Duration::from_secs(5);
        smol::block_on(async {
            peer.write_all(b"GET").unwrap();
            assert_eq!(s.fill(wait).await.unwrap(), 3);
            assert!(s.holds_buffer());

            // Bytes are buffered: a read that has to wait keeps them, and the buffer.
            assert!(future::poll_once(s.fill(wait)).await.is_none());
            assert_eq!(s.data(), b"GET");
            assert!(s.holds_buffer());

            // Nothing buffered: a read that has to wait holds no buffer.
            s.consume(3);
            assert!(future::poll_once(s.fill(wait)).await.is_none());
            assert!(!s.holds_buffer(), "an idle stream keeps no read buffer");

            peer.write_all(b" / HTTP/1.1\r\n").unwrap();
            assert_eq!(s.fill(wait).await.unwrap(), 13);
            assert_eq!(s.data(), b" / HTTP/1.1\r\n");

            // Pooled streams give their buffer back explicitly, once nothing is buffered.
            s.release_buffer();
            assert!(s.holds_buffer(), "buffered bytes keep the buffer");
            s.consume(13);
            s.release_buffer();
            assert!(!s.holds_buffer());
        });
    }
}
