//! Forwarding one request to an upstream and its response back: upstream choice (policy,
//! health, sticky cookie), pooled keep-alive connections, retry on another upstream when a
//! connection fails before any response byte, 100-continue, bodies streamed in both
//! directions, 1xx, WebSocket (and any other) upgrades spliced after 101. Does IO.

use std::io;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite};
use http::header::{CONNECTION, HOST, SET_COOKIE, TE, TRANSFER_ENCODING};
use http::{HeaderValue, Method, StatusCode, Uri, Version};

use super::conn::{BufStream, Encode, HalfClose, PumpError, pump, send};
use super::engine::{self, Engine, RouteState, UpstreamState, upstream_id};
use super::forward::{self, ForwardContext};
use super::h1::{self, BodyDecoder, BodyFraming, H1Error, Parsed, RequestHead, ResponseHead};
use super::routing;
use super::server::{Access, ConnInfo, Next, Routed, answer_error};
use super::sticky::{self, COOKIE_NAME};
use super::upgrade::splice;
use super::upstream_io::UpstreamIo;
use crate::plan::{HttpBalance, HttpRoute};
use crate::state::{Shared, add};

type Upstream = UpstreamIo;

/// Forward `head` (body still in `client`) per `route` and relay the answer.
#[allow(clippy::too_many_arguments)]
pub async fn forward<S>(
    client: &mut BufStream<S>,
    head: Box<RequestHead>,
    routed: Routed,
    route: &HttpRoute,
    state: &RouteState,
    engine: &Rc<Engine>,
    cx: &ConnInfo,
    shared: &Rc<Shared>,
    access: &mut Access,
) -> Next
where
    S: AsyncRead + AsyncWrite + HalfClose + Unpin,
{
    let plan = &engine.plan;
    let t = plan.timeouts;
    let head_only = head.method == Method::HEAD;
    let max_body = plan.request_max_body_size.unwrap_or(u64::MAX);
    let mut body = match BodyDecoder::new(head.framing, max_body) {
        Ok(d) => d,
        Err(e) => {
            return answer_error(client, access, e.status(), e.context(), true, head_only).await;
        }
    };
    let target = routing::rewrite_path(route, &routed.path_and_query);
    let Ok(target) = Uri::try_from(target) else {
        let why = "the rewritten path is not a valid request target";
        return answer_error(
            client,
            access,
            StatusCode::BAD_REQUEST,
            why,
            true,
            head_only,
        )
        .await;
    };
    let sticky_now = (route.balance == HttpBalance::Sticky)
        .then(|| sticky::find_cookie(&head.headers, COOKIE_NAME))
        .flatten()
        .and_then(|v| engine.sticky.open(&state.id, v))
        .and_then(|id| state.find(&id));
    let has_body = head.framing.has_body();
    let idempotent = matches!(
        head.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    let default_host = routed
        .via_default
        .then(|| plan.apps.get(routed.app).map(|a| a.server_name.as_str()))
        .flatten();
    let upgrade = head.upgrade;

    let mut tried: Vec<usize> = Vec::new();
    let mut last_error = String::new();
    let mut sent_continue = false;
    // After a reused connection turned out dead: the same upstream, on a fresh connection.
    let mut again: Option<usize> = None;
    // Set when the request body did not make it upstream whole: neither connection can
    // carry another message then (the client's unread body bytes must never be taken for a
    // request, nor the upstream's half-received body for the next one).
    let mut body_broken = false;
    let (idx, mut upstream, response) = loop {
        let idx = match again
            .take()
            .or_else(|| state.pick(route, sticky_now, &tried))
        {
            Some(i) => i,
            None if tried.is_empty() => {
                let why = "no healthy upstream";
                return answer_error(
                    client,
                    access,
                    StatusCode::SERVICE_UNAVAILABLE,
                    why,
                    !head.keep_alive || has_body,
                    head_only,
                )
                .await;
            }
            None => {
                let why = format!("no upstream answered ({last_error})");
                return answer_error(
                    client,
                    access,
                    StatusCode::BAD_GATEWAY,
                    &why,
                    !head.keep_alive || has_body,
                    head_only,
                )
                .await;
            }
        };
        let Some(up) = state.upstreams.get(idx) else {
            tried.push(idx);
            continue;
        };
        access.set_upstream(&up.target);
        let (mut upstream, reused) = match up.checkout(!has_body && idempotent).await {
            Some(s) => (s, true),
            None => match open(shared, engine, up, t.upstream_connect).await {
                Ok(s) => (BufStream::new(s, Vec::new()), false),
                Err(e) => {
                    up.passive_failure(&e);
                    last_error = format!("{}: {e}", up.target);
                    tried.push(idx);
                    continue;
                }
            },
        };
        add(&up.requests, 1);
        let mut headers = h1::header_map();
        headers.extend(head.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        let fcx = ForwardContext {
            peer: cx.peer,
            local: cx.local,
            https: cx.https,
            trusted: &plan.trusted_forwarded_proxies,
            options: route.options,
            client_host: routed.authority.as_deref(),
            upstream_host: &up.authority,
            default_app_host: default_host,
            upgrade,
        };
        forward::upstream_request_headers(&mut headers, &fcx);
        // `TE: trailers` matters to HTTP/2 upstreams (gRPC); on HTTP/1.1 it would be a
        // hop-by-hop field without the `Connection: te` that makes it legal.
        h1::remove_if_present(&mut headers, &TE);
        if !headers.contains_key(HOST) {
            if let Ok(v) = HeaderValue::from_str(&up.authority) {
                headers.insert(HOST, v);
            }
        }
        let out_framing = match head.framing {
            BodyFraming::None if needs_length(&head.method) => BodyFraming::ContentLength(0),
            f => f,
        };
        h1::set_body_framing(&mut headers, out_framing);
        let mut wire = Vec::with_capacity(1024);
        h1::write_request_head(&mut wire, &head.method, &target, &headers);
        h1::recycle(headers);
        if let Err(e) = send(&mut upstream.io, &wire, t.upstream_response).await {
            if reused {
                again = Some(idx);
            } else {
                up.passive_failure(&e.to_string());
                last_error = format!("{}: {e}", up.target);
                tried.push(idx);
            }
            continue;
        }
        let mut body_error = None;
        if has_body {
            if head.expect_continue && !sent_continue {
                sent_continue = true;
                if send(
                    &mut client.io,
                    b"HTTP/1.1 100 Continue\r\n\r\n",
                    t.keepalive,
                )
                .await
                .is_err()
                {
                    return Next::Close;
                }
            }
            let encode = if out_framing == BodyFraming::Chunked {
                Encode::Chunked
            } else {
                Encode::Raw
            };
            // Request trailers are dropped (as nginx does): they would reach the upstream
            // without the sanitizing its headers get.
            match pump(
                client,
                &mut body,
                &mut upstream.io,
                encode,
                t.keepalive,
                false,
            )
            .await
            {
                Ok(n) => access.bytes_in = n,
                Err(PumpError::Framing(e)) => {
                    return answer_error(client, access, e.status(), e.context(), true, head_only)
                        .await;
                }
                Err(PumpError::Truncated | PumpError::Read(_)) => {
                    access.status = 499;
                    access.error = Some("client went away inside the request body".to_owned());
                    return Next::Close;
                }
                // The upstream may have answered early (e.g. 413) and closed: read on.
                Err(PumpError::Write(e)) => {
                    body_broken = true;
                    body_error = Some(e);
                }
            }
        }
        match read_response(&mut upstream, &head.method, t.upstream_response).await {
            Ok(r) => break (idx, upstream, r),
            Err(ResponseError::TimedOut) => {
                up.passive_failure("response timeout");
                let why = format!(
                    "upstream {} sent no response within {:?}",
                    up.target, t.upstream_response
                );
                return answer_error(
                    client,
                    access,
                    StatusCode::GATEWAY_TIMEOUT,
                    &why,
                    !head.keep_alive || body_broken,
                    head_only,
                )
                .await;
            }
            Err(ResponseError::Closed(e)) if !has_body && idempotent => {
                // Nothing of the response arrived and the request may be sent again (like
                // nginx, never a non-idempotent one: the upstream may have acted on it):
                // a reused connection the upstream had closed, or a failing upstream.
                if reused {
                    again = Some(idx);
                } else {
                    up.passive_failure(&e);
                    last_error = format!("{}: {e}", up.target);
                    tried.push(idx);
                }
            }
            Err(ResponseError::Closed(e)) => {
                // A reused connection closing is the keep-alive race, not a sick upstream.
                if !reused {
                    up.passive_failure(&e);
                }
                let why = match body_error {
                    Some(b) => format!(
                        "upstream {} failed while receiving the body: {b}",
                        up.target
                    ),
                    None => format!("upstream {} closed without a response: {e}", up.target),
                };
                return answer_error(
                    client,
                    access,
                    StatusCode::BAD_GATEWAY,
                    &why,
                    true,
                    head_only,
                )
                .await;
            }
            Err(ResponseError::Invalid(e)) => {
                let why = format!(
                    "upstream {} sent an invalid response: {}",
                    up.target,
                    e.context()
                );
                return answer_error(
                    client,
                    access,
                    StatusCode::BAD_GATEWAY,
                    &why,
                    true,
                    head_only,
                )
                .await;
            }
        }
    };
    let Some(up) = state.upstreams.get(idx).cloned() else {
        return Next::Close;
    };
    let set_sticky = sticky_now != Some(idx);
    let after = relay_response(
        client,
        &mut upstream,
        &head,
        response,
        &up,
        state,
        route,
        engine,
        cx,
        access,
        set_sticky,
    )
    .await
    .map(|a| {
        if body_broken {
            After {
                next: Next::Close,
                reuse: false,
            }
        } else {
            a
        }
    })
    .unwrap_or(After {
        next: Next::Close,
        reuse: false,
    });
    if after.reuse && upstream.data().is_empty() {
        up.checkin(upstream);
    }
    after.next
}

/// POST, PUT and PATCH without a body still say `Content-Length: 0` (many servers insist).
fn needs_length(m: &Method) -> bool {
    matches!(*m, Method::POST | Method::PUT | Method::PATCH)
}

async fn open(
    shared: &Shared,
    engine: &Engine,
    up: &UpstreamState,
    timeout: Duration,
) -> Result<Upstream, String> {
    let addrs = shared
        .resolver
        .resolve(&up.target)
        .await
        .map_err(|e| format!("cannot resolve: {e}"))?;
    let tcp = engine::connect(&addrs, timeout).await?;
    if !up.tls {
        return Ok(UpstreamIo::Plain(tcp));
    }
    let config = engine.upstream_tls().config(up.tls_ca.as_deref())?;
    let tls = crate::tls::client::connect(tcp, config, &up.tls_name, timeout).await?;
    Ok(UpstreamIo::Tls(Box::new(tls)))
}

enum ResponseError {
    TimedOut,
    /// Closed or reset before a complete head.
    Closed(String),
    Invalid(H1Error),
}

/// The final (or 101) response head; interim ones are consumed here.
async fn read_response<U>(
    upstream: &mut BufStream<U>,
    method: &Method,
    timeout: Duration,
) -> Result<ResponseHead, ResponseError>
where
    U: AsyncRead + AsyncWrite + HalfClose + Unpin,
{
    loop {
        match h1::parse_response(upstream.data(), method) {
            Ok(Parsed::Complete { head, consumed }) => {
                upstream.consume(consumed);
                // 100 answers an Expect we never forwarded; 102/103 are dropped too (rarely
                // useful through a proxy, and HTTP/1.0 clients cannot take them).
                if head.is_interim() {
                    continue;
                }
                return Ok(head);
            }
            Ok(Parsed::Partial) => {}
            Err(e) => return Err(ResponseError::Invalid(e)),
        }
        match upstream.fill(timeout).await {
            Ok(0) if upstream.data().is_empty() => {
                return Err(ResponseError::Closed("connection closed".to_owned()));
            }
            Ok(0) => {
                return Err(ResponseError::Invalid(H1Error::Invalid(
                    "closed inside the response head",
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => return Err(ResponseError::TimedOut),
            Err(e) => return Err(ResponseError::Closed(e.to_string())),
        }
    }
}

/// What happens to the client and upstream connections after a response.
struct After {
    next: Next,
    /// The upstream connection ended cleanly at a message boundary: reuse it.
    reuse: bool,
}

/// Write the response head and stream its body (or splice an upgrade).
#[allow(clippy::too_many_arguments)]
async fn relay_response<S>(
    client: &mut BufStream<S>,
    upstream: &mut BufStream<Upstream>,
    req: &RequestHead,
    mut resp: ResponseHead,
    up: &UpstreamState,
    state: &RouteState,
    route: &HttpRoute,
    engine: &Engine,
    cx: &ConnInfo,
    access: &mut Access,
    set_sticky: bool,
) -> Result<After, ()>
where
    S: AsyncRead + AsyncWrite + HalfClose + Unpin,
{
    let t = engine.plan.timeouts;
    access.status = resp.status.as_u16();
    let mut headers = std::mem::take(&mut resp.headers);
    if resp.status == StatusCode::SWITCHING_PROTOCOLS {
        if !req.upgrade {
            let why = "the upstream switched protocols without being asked";
            let head_only = req.method == Method::HEAD;
            answer_error(
                client,
                access,
                StatusCode::BAD_GATEWAY,
                why,
                true,
                head_only,
            )
            .await;
            return Err(());
        }
        forward::client_response_headers(&mut headers, true);
        let mut wire = Vec::new();
        h1::write_response_head(&mut wire, resp.status, &headers);
        access.bytes_out += wire.len() as u64;
        send(&mut client.io, &wire, t.keepalive)
            .await
            .map_err(|_| ())?;
        let (up_in, up_out) = splice(client, upstream).await;
        access.bytes_in += up_in;
        access.bytes_out += up_out;
        up.passive_success();
        return Ok(After {
            next: Next::Upgraded,
            reuse: false,
        });
    }
    up.passive_success();
    forward::client_response_headers(&mut headers, false);
    if route.balance == HttpBalance::Sticky && set_sticky {
        let value = engine.sticky.seal(&state.id, &upstream_id(up));
        let path = route.path.as_deref().unwrap_or("/");
        headers.append(SET_COOKIE, sticky::set_cookie(&value, path, cx.https));
    }
    let client_11 = req.version == Version::HTTP_11;
    let bodyless = req.method == Method::HEAD
        || resp.status == StatusCode::NO_CONTENT
        || resp.status == StatusCode::NOT_MODIFIED;
    let (out, encode) = match resp.framing {
        BodyFraming::None | BodyFraming::ContentLength(_) => (resp.framing, Encode::Raw),
        BodyFraming::Chunked | BodyFraming::UntilClose if client_11 => {
            (BodyFraming::Chunked, Encode::Chunked)
        }
        BodyFraming::Chunked | BodyFraming::UntilClose => (BodyFraming::UntilClose, Encode::Raw),
    };
    if bodyless {
        // Keep the upstream's Content-Length: it describes the resource, not this message.
        if !client_11 {
            headers.remove(TRANSFER_ENCODING);
        }
    } else {
        h1::set_body_framing(&mut headers, out);
    }
    let keep = req.keep_alive && out != BodyFraming::UntilClose;
    if !keep {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    } else if !client_11 {
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
    }
    let mut wire = Vec::with_capacity(1024);
    h1::write_response_head(&mut wire, resp.status, &headers);
    h1::recycle(headers);
    access.bytes_out += wire.len() as u64;
    let mut dec = BodyDecoder::new(resp.framing, u64::MAX).map_err(|_| ())?;
    // Body bytes that came with the head go out in the same write (one syscall for a small
    // response instead of two).
    if encode == Encode::Raw && !upstream.data().is_empty() {
        let d = dec.decode(upstream.data()).map_err(|_| ())?;
        wire.extend_from_slice(d.data);
        access.bytes_out += d.data.len() as u64;
        let consumed = d.consumed;
        upstream.consume(consumed);
    }
    send(&mut client.io, &wire, t.upstream_response)
        .await
        .map_err(|_| ())?;
    match pump(
        upstream,
        &mut dec,
        &mut client.io,
        encode,
        t.upstream_response,
        true,
    )
    .await
    {
        Ok(n) => access.bytes_out += n,
        Err(e) => {
            access.error = Some(format!("response body: {e}"));
            return Err(());
        }
    }
    Ok(After {
        next: if keep { Next::KeepAlive } else { Next::Close },
        reuse: resp.keep_alive && dec.is_done(),
    })
}
