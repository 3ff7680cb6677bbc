//! Answers sluice gives itself instead of an upstream: error responses with a one-line
//! reason, the HTTPS redirect, and the built-in status page. Does IO (writes to the client).

use std::io;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite};
use http::header::{CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::access::Access;
use super::conn::{BufStream, HalfClose, send};
use super::h1::{self, RequestHead};
use super::routing;
use super::server::{Next, Routed};
use crate::state::Shared;

/// How long a client may take nothing of an answer sluice makes itself.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Answer `GET`/`HEAD` on a `builtin:status` route.
pub async fn builtin_status<S>(
    client: &mut BufStream<S>,
    head: &RequestHead,
    routed: &Routed,
    shared: &Rc<Shared>,
    access: &mut Access,
) -> Next
where
    S: AsyncRead + AsyncWrite + HalfClose + Unpin,
{
    if head.method != Method::GET && head.method != Method::HEAD {
        let why = "the status page answers GET and HEAD only";
        return answer_error(
            client,
            access,
            StatusCode::METHOD_NOT_ALLOWED,
            why,
            true,
            false,
        )
        .await;
    }
    let json = routed
        .path_and_query
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|kv| kv == "format=json"))
        || routed.path_and_query.ends_with("/status.json");
    let (ctype, body) = if json {
        ("application/json", crate::status::json(shared))
    } else {
        ("text/html; charset=utf-8", crate::status::html(shared))
    };
    let close = !head.keep_alive || head.framing.has_body();
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let head_only = head.method == Method::HEAD;
    match send_local(
        client,
        access,
        StatusCode::OK,
        headers,
        body.as_bytes(),
        close,
        head_only,
    )
    .await
    {
        Ok(()) if !close => Next::KeepAlive,
        _ => Next::Close,
    }
}

/// `301` to the same host and path over HTTPS (`:port` unless 443).
pub async fn redirect_to_https<S>(
    client: &mut BufStream<S>,
    access: &mut Access,
    head: &RequestHead,
    routed: &Routed,
    port: u16,
) -> Next
where
    S: AsyncRead + AsyncWrite + HalfClose + Unpin,
{
    let host = routed
        .authority
        .as_deref()
        .and_then(routing::host_only)
        .unwrap_or_default();
    let port = if port == 443 {
        String::new()
    } else {
        format!(":{port}")
    };
    let location = format!("https://{host}{port}{}", routed.path_and_query);
    let Ok(value) = HeaderValue::from_str(&location) else {
        let why = "cannot build the HTTPS address of this request";
        return answer_error(client, access, StatusCode::BAD_REQUEST, why, true, false).await;
    };
    let mut headers = HeaderMap::new();
    headers.insert(LOCATION, value);
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let body = format!("301 Moved Permanently: use {location}\n");
    let close = !head.keep_alive || head.framing.has_body();
    let head_only = head.method == Method::HEAD;
    match send_local(
        client,
        access,
        StatusCode::MOVED_PERMANENTLY,
        headers,
        body.as_bytes(),
        close,
        head_only,
    )
    .await
    {
        Ok(()) if !close => Next::KeepAlive,
        _ => Next::Close,
    }
}

/// Send an error answer and say what the connection does next.
pub async fn answer_error<S>(
    client: &mut BufStream<S>,
    access: &mut Access,
    status: StatusCode,
    why: &str,
    close: bool,
    head_only: bool,
) -> Next
where
    S: AsyncRead + AsyncWrite + HalfClose + Unpin,
{
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let body = error_body(status, why);
    access.error = Some(why.to_owned());
    match send_local(
        client,
        access,
        status,
        headers,
        body.as_bytes(),
        close,
        head_only,
    )
    .await
    {
        Ok(()) if !close => Next::KeepAlive,
        _ => Next::Close,
    }
}

pub async fn send_error<S>(
    client: &mut BufStream<S>,
    access: &mut Access,
    status: StatusCode,
    why: &str,
    close: bool,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + HalfClose + Unpin,
{
    answer_error(client, access, status, why, close, false).await;
    Ok(())
}

/// `404 Not Found: no route for /x`: what every error body says.
pub fn error_body(status: StatusCode, why: &str) -> String {
    format!(
        "{} {}: {why}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    )
}

/// Write a complete response sluice makes itself.
async fn send_local<S>(
    client: &mut BufStream<S>,
    access: &mut Access,
    status: StatusCode,
    mut headers: HeaderMap,
    body: &[u8],
    close: bool,
    head_only: bool,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + HalfClose + Unpin,
{
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    if close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    let mut out = Vec::with_capacity(256 + body.len());
    h1::write_response_head(&mut out, status, &headers);
    if !head_only {
        out.extend_from_slice(body);
    }
    access.status = status.as_u16();
    access.bytes_out += out.len() as u64;
    send(&mut client.io, &out, SEND_TIMEOUT).await
}
