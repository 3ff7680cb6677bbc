//! The TLS handshake driver: read the ClientHello into the stream's prefix without
//! consuming it, pick the app's config by SNI, refuse unknown names with a raw
//! `unrecognized_name` alert, then replay the bytes to rustls; plus `Prefixed`, the stream
//! that hands bytes read ahead (by the multiplexer's probe) back, and `HalfClose` for TLS
//! streams. Does IO on the stream it is given; opens no sockets.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, future};
use rustls::server::Acceptor;

use super::{Refusal, TlsServer};
use crate::http::conn::HalfClose;
use crate::timer::Timer;

/// A fatal `unrecognized_name` alert record (RFC 6066 §3), written raw when no TLS app
/// serves the ClientHello's SNI (or there is none).
pub const UNRECOGNIZED_NAME_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70];
/// A fatal `internal_error` alert record, for an app whose TLS setup is broken.
const INTERNAL_ERROR_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50];
/// The whole handshake, ClientHello included, must finish within this (slowloris).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read per step while waiting for a complete ClientHello.
const HELLO_READ_CHUNK: usize = 4096;

/// What [`accept`] hands back: rustls over the (prefixed) client stream.
pub type ServerTls<S> = futures_rustls::server::TlsStream<Prefixed<S>>;

/// Why [`accept`] produced no TLS stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcceptError {
    /// No TLS app serves the SNI (or none was sent); `unrecognized_name` was sent.
    UnknownName(Option<String>),
    /// The app cannot serve TLS now (see [`Refusal::Broken`]); `internal_error` was sent.
    Broken(String),
    /// The handshake did not finish within the deadline.
    Timeout,
    /// The client closed or reset the connection before the handshake finished.
    Closed,
    /// The handshake failed: not TLS, a bad certificate, no shared parameters, …
    Tls(String),
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcceptError::UnknownName(Some(n)) => write!(f, "no TLS app for SNI {n}"),
            AcceptError::UnknownName(None) => f.write_str("no SNI in the ClientHello"),
            AcceptError::Broken(why) => f.write_str(why),
            AcceptError::Timeout => {
                write!(f, "TLS handshake not done within {HANDSHAKE_TIMEOUT:?}")
            }
            AcceptError::Closed => {
                f.write_str("client closed the connection during the TLS handshake")
            }
            AcceptError::Tls(why) => f.write_str(why),
        }
    }
}

/// Run the server side of a TLS handshake on `io`, whose prefix holds whatever was read
/// already (the multiplexer's probe bytes; empty from a plain listener). The ClientHello is
/// read into that prefix and parsed to pick the app's config by SNI, then replayed to the
/// handshake: the stream is never re-serialized. Returns the stream and the SNI
/// (lower-cased). Bounded by [`HANDSHAKE_TIMEOUT`].
///
/// Refusals are answered before closing: an unknown name with a raw
/// [`UNRECOGNIZED_NAME_ALERT`], a broken app with `internal_error`, a malformed
/// ClientHello or failed handshake with the alert rustls chooses.
///
/// # Errors
/// See [`AcceptError`].
pub async fn accept<S>(
    io: Prefixed<S>,
    server: &TlsServer,
) -> Result<(ServerTls<S>, Option<String>), AcceptError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_within(io, server, HANDSHAKE_TIMEOUT).await
}

pub(super) async fn accept_within<S>(
    io: Prefixed<S>,
    server: &TlsServer,
    limit: Duration,
) -> Result<(ServerTls<S>, Option<String>), AcceptError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    future::or(handshake(io, server), async {
        Timer::after(limit).await;
        Err(AcceptError::Timeout)
    })
    .await
}

async fn handshake<S>(
    mut io: Prefixed<S>,
    server: &TlsServer,
) -> Result<(ServerTls<S>, Option<String>), AcceptError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let sni = read_client_hello(&mut io).await?;
    let config = match server.config_for(sni.as_deref()) {
        Ok(config) => config,
        Err(Refusal::UnknownName(name)) => {
            send_raw(&mut io, &UNRECOGNIZED_NAME_ALERT).await;
            return Err(AcceptError::UnknownName(name));
        }
        Err(Refusal::Broken(why)) => {
            send_raw(&mut io, &INTERNAL_ERROR_ALERT).await;
            return Err(AcceptError::Broken(why));
        }
    };
    let stream = futures_rustls::TlsAcceptor::from(config)
        .accept(io)
        .await
        .map_err(|e| describe(&e))?;
    Ok((stream, sni))
}

/// Read until the prefix holds a complete ClientHello (nothing is consumed) and return
/// its SNI. A malformed one is answered with rustls's alert.
async fn read_client_hello<S>(io: &mut Prefixed<S>) -> Result<Option<String>, AcceptError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut acceptor = Acceptor::default();
    let mut fed = io.pos;
    loop {
        while let Some(mut chunk) = io.prefix.get(fed..).filter(|c| !c.is_empty()) {
            match acceptor.read_tls(&mut chunk) {
                Ok(0) => return Err(AcceptError::Tls("ClientHello too large".to_owned())),
                Ok(n) => fed += n,
                Err(e) => return Err(AcceptError::Tls(format!("reading the ClientHello: {e}"))),
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                return Ok(accepted
                    .client_hello()
                    .server_name()
                    .map(str::to_ascii_lowercase));
            }
            Ok(None) => {}
            Err((err, mut alert)) => {
                let mut record = Vec::new();
                if alert.write_all(&mut record).is_ok() {
                    send_raw(io, &record).await;
                }
                return Err(AcceptError::Tls(explain(&err)));
            }
        }
        match io.peek_more().await {
            Ok(0) => return Err(AcceptError::Closed),
            Ok(_) => {}
            Err(e) => return Err(describe(&e)),
        }
    }
}

/// Best effort: write `bytes` past the prefix and flush (the caller closes after).
async fn send_raw<S: AsyncWrite + Unpin>(io: &mut Prefixed<S>, bytes: &[u8]) {
    if io.inner.write_all(bytes).await.is_ok() {
        let _ = io.inner.flush().await;
    }
}

/// An IO error of the handshake as an [`AcceptError`]; rustls errors inside are explained.
fn describe(e: &io::Error) -> AcceptError {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return AcceptError::Tls(explain(tls));
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => AcceptError::Closed,
        _ => AcceptError::Tls(e.to_string()),
    }
}

/// A rustls error in words an operator can act on.
fn explain(e: &rustls::Error) -> String {
    match e {
        rustls::Error::NoCertificatesPresented => {
            "client sent no certificate (this app requires one: client_ca_cert_path)".to_owned()
        }
        rustls::Error::InvalidCertificate(why) => format!("client certificate rejected: {why:?}"),
        rustls::Error::AlertReceived(alert) => {
            format!("client aborted the handshake with alert {alert:?}")
        }
        rustls::Error::NoApplicationProtocol => {
            "client offered no ALPN protocol sluice speaks (http/1.1)".to_owned()
        }
        other => other.to_string(),
    }
}

/// A stream that first yields `prefix` (bytes already read from `inner`, e.g. by the
/// multiplexer's probe), then reads from `inner`; writes go straight to `inner`.
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    /// How much of `prefix` was read already.
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    /// `inner` with `prefix` in front of what it will read next (`Vec::new()`: none).
    pub fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed {
            prefix,
            pos: 0,
            inner,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The prefix bytes not read yet, and the inner stream.
    pub fn into_parts(mut self) -> (Vec<u8>, S) {
        self.prefix.drain(..self.pos.min(self.prefix.len()));
        (self.prefix, self.inner)
    }
}

impl<S: AsyncRead + Unpin> Prefixed<S> {
    /// Append more bytes from `inner` to the unread prefix; `Ok(0)` at EOF.
    async fn peek_more(&mut self) -> io::Result<usize> {
        let old = self.prefix.len();
        self.prefix.resize(old + HELLO_READ_CHUNK, 0);
        let read = self
            .inner
            .read(self.prefix.get_mut(old..).unwrap_or_default())
            .await;
        self.prefix.truncate(old + read.as_ref().map_or(0, |n| *n));
        read
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let rest = this.prefix.get(this.pos..).unwrap_or_default();
        if rest.is_empty() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let n = rest.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
            dst.copy_from_slice(src);
        }
        this.pos += n;
        if this.pos >= this.prefix.len() {
            // Done with it: free the memory for the connection's lifetime.
            this.prefix = Vec::new();
            this.pos = 0;
        }
        Poll::Ready(Ok(n))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

impl<S: HalfClose> HalfClose for Prefixed<S> {
    fn shut_write(&self) -> io::Result<()> {
        self.inner.shut_write()
    }
}

/// Shuts the TCP write side only. `shut_write` takes `&self` and cannot send TLS data, so
/// send close_notify first with `close().await` (futures-rustls's `poll_close` queues and
/// flushes it, then only flushes the socket); `ShutOnClose` alone would skip close_notify.
impl<S: HalfClose> HalfClose for futures_rustls::server::TlsStream<S> {
    fn shut_write(&self) -> io::Result<()> {
        self.get_ref().0.shut_write()
    }
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
