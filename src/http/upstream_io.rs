//! The byte stream to an upstream: plain TCP, or TLS over TCP for `tls = true` upstreams.
//! One type, so pooling, liveness checks and the HTTP/1.1 driver treat both alike. Does IO.

use std::io;
use std::net::TcpStream;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::client::TlsStream;

use super::conn::HalfClose;
use crate::edge::EdgeStream;

pub enum UpstreamIo {
    Plain(EdgeStream),
    Tls(Box<TlsStream<EdgeStream>>),
}

impl UpstreamIo {
    /// The TCP connection underneath (for liveness checks and socket options).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            UpstreamIo::Plain(s) => s.get_ref(),
            UpstreamIo::Tls(s) => s.get_ref().0.get_ref(),
        }
    }
}

impl AsyncRead for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_flush(cx),
            UpstreamIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_close(cx),
            UpstreamIo::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

impl HalfClose for UpstreamIo {
    fn shut_write(&self) -> io::Result<()> {
        self.tcp().shutdown(std::net::Shutdown::Write)
    }
}
