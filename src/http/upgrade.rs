//! After a `101 Switching Protocols` (WebSocket, h2c…): the client and upstream connections
//! are joined and bytes pass both ways, flushed as they come, with half-closes passed on,
//! until both sides close or nothing moves for an hour. Does IO.

use std::cell::Cell;
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, future};

use super::conn::{BufStream, HalfClose, READ_CHUNK, ShutOnClose};
use super::upstream_io::UpstreamIo;
use crate::timer::Timer;

/// An upgraded connection (WebSocket) with no byte either way for this long is closed: a
/// peer that vanished without a FIN must not hold a client slot and an upstream forever.
pub const UPGRADED_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// After a 101: pass bytes both ways until both sides have closed, or nothing moved for
/// [`UPGRADED_IDLE_TIMEOUT`]. Returns the bytes sent upstream and to the client.
pub async fn splice<S>(
    client: &mut BufStream<S>,
    upstream: &mut BufStream<UpstreamIo>,
) -> (u64, u64)
where
    S: AsyncRead + AsyncWrite + HalfClose + Unpin,
{
    let early_up = client.take_buffered();
    let early_down = upstream.take_buffered();
    let last = Cell::new(Instant::now());
    let (cr, cw) = futures_lite::io::split(ShutOnClose(&mut client.io));
    let (ur, uw) = futures_lite::io::split(ShutOnClose(&mut upstream.io));
    let both = future::zip(
        pass(cr, uw, early_up, &last),
        pass(ur, cw, early_down, &last),
    );
    let idle = async {
        loop {
            let quiet_until = last.get() + UPGRADED_IDLE_TIMEOUT;
            if Instant::now() >= quiet_until {
                return (0, 0);
            }
            Timer::at(quiet_until).await;
        }
    };
    future::or(both, idle).await
}

/// One direction of a splice: `early` first, then everything `from` sends, flushed as it
/// comes (TLS buffers otherwise); at EOF the write side of `to` is shut.
async fn pass<R, W>(mut from: R, mut to: W, early: Vec<u8>, last: &Cell<Instant>) -> u64
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut moved = early.len() as u64;
    if to.write_all(&early).await.is_err() || to.flush().await.is_err() {
        return moved;
    }
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        last.set(Instant::now());
        let chunk = buf.get(..n).unwrap_or_default();
        if to.write_all(chunk).await.is_err() || to.flush().await.is_err() {
            return moved;
        }
        moved += n as u64;
    }
    let _ = to.close().await;
    moved
}
