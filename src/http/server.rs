//! HTTP/1.1 client connections: the accept loop of a plain-HTTP listener, the per-connection
//! loop (request heads with slowloris and keep-alive timeouts, pipelined requests answered in
//! order), routing each request to an app and route, the answers sluice gives itself (errors,
//! the built-in status page) and the access line of every request. Proxying is in
//! `proxy.rs`. Does IO; generic over the byte stream so TLS connections can use it too.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt, future};
use http::{Method, StatusCode};

pub use super::access::Access;
use super::conn::{BufStream, HalfClose};
use super::engine::{ClientSlot, Engine};
use super::h1::{self, H1Error, Parsed, RequestHead, TargetForm};
pub use super::local::answer_error;
use super::local::{builtin_status, redirect_to_https, send_error};
use super::routing::{self, AppMatch};
use crate::edge::EdgeListener;
use crate::plan::{Builtin, HttpTimeouts};
use crate::state::{self, Shared};
use crate::timer::Timer;
use crate::tls::server::Prefixed;

const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Most bytes buffered while a head is incomplete: the parser's own limits (request line,
/// header section) stop well before this; it only guards against a parser bug.
const MAX_HEAD_BUFFER: usize = h1::MAX_REQUEST_LINE + h1::MAX_HEADER_BYTES + 1024;

/// Where a client connection came from and arrived.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub https: bool,
    /// The TLS server name the client asked for (HTTPS only).
    pub sni: Option<Rc<str>>,
}

/// What the connection does after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    KeepAlive,
    Close,
    /// The connection was handed to an upgraded protocol and is finished.
    Upgraded,
}

/// Accept connections until the task is dropped; `https`: TLS is terminated first.
pub async fn accept_loop(
    listener: Rc<Async<TcpListener>>,
    addr: SocketAddr,
    https: bool,
    shared: Rc<Shared>,
) {
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut edge = EdgeListener::new(listener.clone());
    loop {
        if shared.common.fds.short() {
            // Descriptors freed go to the L4 connections waiting for them first (src/fds.rs).
            shared.common.fds.admit().await;
        }
        match edge.accept().await {
            Ok((stream, peer)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                let cx = ConnInfo {
                    peer,
                    local: addr,
                    https,
                    sni: None,
                };
                if https {
                    state::spawn(serve_tls(stream, Vec::new(), cx, shared.clone())).detach();
                } else {
                    state::spawn(serve(stream, Vec::new(), cx, shared.clone())).detach();
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                if crate::fds::out_of_descriptors(&e) {
                    shared.common.fds.ran_out();
                }
                log::error!("http {addr}: accept failed: {e}; pausing {backoff:?}");
                Timer::after(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
}

/// Serve one client connection; `initial` holds bytes already read from it (by the L4
/// multiplexer's probe).
pub async fn serve<S>(io: S, initial: Vec<u8>, cx: ConnInfo, shared: Rc<Shared>)
where
    S: AsyncRead + AsyncWrite + HalfClose + Unpin,
{
    let Some(engine) = shared.http_engine() else {
        return;
    };
    let _guard = shared.drain.guard();
    let mut client = BufStream::new(io, initial);
    let Some(_slot) = ClientSlot::open(&engine.stats, &engine.plan, cx.peer.ip()) else {
        let mut access = Access::new(&cx);
        let why = "too many open connections; try again later";
        let _ = send_error(
            &mut client,
            &mut access,
            StatusCode::SERVICE_UNAVAILABLE,
            why,
            true,
        )
        .await;
        access.log(&engine);
        return;
    };
    run(client, cx, shared, engine).await;
}

/// Terminate TLS on one client connection, then serve HTTP on it; `initial` holds bytes
/// already read from it (the ClientHello the multiplexer probed).
pub async fn serve_tls<S>(io: S, initial: Vec<u8>, mut cx: ConnInfo, shared: Rc<Shared>)
where
    S: AsyncRead + AsyncWrite + HalfClose + Unpin,
{
    let Some(engine) = shared.http_engine() else {
        return;
    };
    let _guard = shared.drain.guard();
    let Some(_slot) = ClientSlot::open(&engine.stats, &engine.plan, cx.peer.ip()) else {
        log::warn!(
            "https {} -> {}: refused, max_clients reached",
            cx.peer,
            cx.local
        );
        return;
    };
    let Some(tls) = engine.tls.borrow().clone() else {
        return;
    };
    let io = Prefixed::new(initial, io);
    match crate::tls::server::accept(io, &tls).await {
        Ok((stream, sni)) => {
            cx.https = true;
            cx.sni = sni.map(Rc::from);
            run(BufStream::new(stream, Vec::new()), cx, shared, engine).await;
        }
        Err(e) => log::info!(
            "https {} -> {}: TLS handshake failed: {e}",
            cx.peer,
            cx.local
        ),
    }
}

/// Serve requests on an admitted connection until it ends, is cut at shutdown or reaches
/// `connection_handling_timeout`.
async fn run<S>(mut client: BufStream<S>, cx: ConnInfo, shared: Rc<Shared>, engine: Rc<Engine>)
where
    S: AsyncRead + AsyncWrite + HalfClose + Unpin,
{
    let lifetime = engine.plan.experimental.connection_handling_timeout;
    drop(engine);
    let cut = shared.drain.cut_off();
    let limit = async {
        match lifetime {
            Some(t) => Timer::after(t).await,
            None => future::pending().await,
        };
    };
    future::or(
        connection(&mut client, &cx, &shared),
        future::or(cut, limit),
    )
    .await;
    let _ = client.io.close().await;
}

/// Requests one after another until either side ends the connection.
async fn connection<S>(client: &mut BufStream<S>, cx: &ConnInfo, shared: &Rc<Shared>)
where
    S: AsyncRead + AsyncWrite + HalfClose + Unpin,
{
    let mut first = true;
    loop {
        // The engine is looked up again once a head is in: an idle keep-alive connection must
        // not keep a replaced engine (and its plan) alive.
        let Some(timeouts) = shared.http_engine().map(|e| e.plan.timeouts) else {
            return;
        };
        let head = read_head(client, timeouts, first, shared).await;
        first = false;
        let Some(engine) = shared.http_engine() else {
            return;
        };
        let mut access = Access::new(cx);
        let next = match head {
            HeadRead::Head(head) => {
                engine.stats.requests.add(1);
                access.request(&head, engine.plan.redact_query_in_access_log);
                // Boxed: an idle keep-alive connection waits in `read_head` and should not
                // carry a request's state (forwarding, upstream IO) in its task meanwhile.
                Box::pin(handle(client, head, &engine, cx, shared, &mut access)).await
            }
            HeadRead::Closed => return,
            HeadRead::Failed(e) => {
                let status = e.status();
                let _ = send_error(client, &mut access, status, e.context(), true).await;
                Next::Close
            }
            HeadRead::TimedOut => {
                // Like nginx: logged as 408, closed without an answer (a slow client gets
                // no further bytes of ours to wait on).
                access.status = StatusCode::REQUEST_TIMEOUT.as_u16();
                access.error = Some("the request head did not arrive in time".to_owned());
                Next::Close
            }
        };
        if access.status != 0 {
            access.log(&engine);
        }
        if next != Next::KeepAlive || shared.drain.is_stopping() {
            return;
        }
    }
}

enum HeadRead {
    Head(Box<RequestHead>),
    /// The client closed or went idle between requests: nothing to answer.
    Closed,
    Failed(H1Error),
    /// Part of a head arrived, the rest not within `request_header_timeout`.
    TimedOut,
}

/// The next request head. Between requests the client may stay silent for the keep-alive
/// timeout (the header timeout before the first); once a byte arrives, the whole head must
/// follow within the header timeout.
async fn read_head<S>(
    client: &mut BufStream<S>,
    t: HttpTimeouts,
    first: bool,
    shared: &Shared,
) -> HeadRead
where
    S: AsyncRead + AsyncWrite + HalfClose + Unpin,
{
    // Set once bytes of the head are in and more must be waited for.
    let mut deadline = None;
    // Bytes already looked at: the head is parsed again only when new bytes could finish it
    // or finish its request line, so a head trickled a byte at a time costs linear work.
    let mut seen = 0;
    loop {
        let data = client.data();
        let old = data.get(..seen).unwrap_or_default();
        let new = data.get(seen..).unwrap_or_default();
        let worth_parsing = seen == 0
            || ends_head(data, seen)
            || (!old.contains(&b'\n') && new.contains(&b'\n'))
            || data.len() > MAX_HEAD_BUFFER;
        seen = data.len();
        let parsed = if worth_parsing {
            h1::parse_request(data)
        } else {
            Ok(Parsed::Partial)
        };
        match parsed {
            Ok(Parsed::Complete { head, consumed }) => {
                client.consume(consumed);
                return HeadRead::Head(Box::new(head));
            }
            Ok(Parsed::Partial) if client.data().len() > MAX_HEAD_BUFFER => {
                return HeadRead::Failed(H1Error::HeadersTooLarge("request head too large"));
            }
            Ok(Parsed::Partial) => {}
            Err(e) => return HeadRead::Failed(e),
        }
        if deadline.is_none() && !client.data().is_empty() {
            deadline = Some(Instant::now() + t.request_header);
        }
        let idle = deadline.is_none();
        let wait = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None if first => t.request_header,
            None => t.keepalive,
        };
        let stopping = shared.drain.stopping();
        let read = future::or(client.fill(wait), async {
            if idle {
                stopping.await;
            } else {
                future::pending::<()>().await;
            }
            Ok(0)
        })
        .await;
        match read {
            Ok(0) if client.data().is_empty() => return HeadRead::Closed,
            Ok(0) => {
                return HeadRead::Failed(H1Error::Invalid(
                    "connection closed inside the request head",
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut && !client.data().is_empty() => {
                return HeadRead::TimedOut;
            }
            Err(_) => return HeadRead::Closed,
        }
    }
}

/// Whether bytes from `from` on (with the three before, for a split CRLFCRLF) hold the end of
/// a head.
fn ends_head(data: &[u8], from: usize) -> bool {
    data.get(from.saturating_sub(3)..)
        .is_some_and(|tail| tail.windows(4).any(|w| w == b"\r\n\r\n"))
}

/// Where routing sent a request.
pub struct Routed {
    pub app: usize,
    pub route: usize,
    /// The normalized path and query, before `replace_path`.
    pub path_and_query: String,
    /// Served by `default_app` because no app names the host.
    pub via_default: bool,
    /// The authority the client named (Host or absolute-form target), as received.
    pub authority: Option<String>,
}

/// Route one request and answer it (proxy, built-in page, or error).
async fn handle<S>(
    client: &mut BufStream<S>,
    head: Box<RequestHead>,
    engine: &Rc<Engine>,
    cx: &ConnInfo,
    shared: &Rc<Shared>,
    access: &mut Access,
) -> Next
where
    S: AsyncRead + AsyncWrite + HalfClose + Unpin,
{
    let routed = match route(engine, &head, cx) {
        Ok(r) => r,
        Err((status, why)) => {
            // The body (if any) is not read: close so its bytes are never taken for a request.
            let close = !head.keep_alive || head.framing.has_body();
            let head_only = head.method == Method::HEAD;
            return answer_error(client, access, status, &why, close, head_only).await;
        }
    };
    if let Some(app) = engine.plan.apps.get(routed.app) {
        access.set_app(&app.name);
        if !cx.https
            && app.tls.as_ref().is_some_and(|t| t.https_redirection)
            && let Some(tls_port) = engine.plan.listen_port_tls
        {
            let port = engine.plan.public_https_port.unwrap_or(tls_port);
            return redirect_to_https(client, access, &head, &routed, port).await;
        }
    }
    let Some((route, state)) = engine.route(routed.app, routed.route) else {
        return answer_error(
            client,
            access,
            StatusCode::NOT_FOUND,
            "no route",
            true,
            false,
        )
        .await;
    };
    if let Some(Builtin::Status) = state.builtin {
        return builtin_status(client, &head, &routed, shared, access).await;
    }
    super::proxy::forward(
        client, head, routed, route, state, engine, cx, shared, access,
    )
    .await
}

/// App and route for a request, or the status and reason to refuse it with.
fn route(
    engine: &Engine,
    head: &RequestHead,
    cx: &ConnInfo,
) -> Result<Routed, (StatusCode, String)> {
    let bad = |why: &str| (StatusCode::BAD_REQUEST, why.to_owned());
    if !head.host_matches_target() {
        return Err(bad("Host and the request target name different hosts"));
    }
    match head.form {
        TargetForm::Origin | TargetForm::Absolute => {}
        TargetForm::Authority => {
            return Err((
                StatusCode::METHOD_NOT_ALLOWED,
                "CONNECT is not supported: this is a reverse proxy".to_owned(),
            ));
        }
        TargetForm::Asterisk => return Err(bad("`*` targets are not forwarded")),
    }
    let raw = head.target.path_and_query().map_or("/", |p| p.as_str());
    let (path, query) = match routing::split_once_byte(raw, b'?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    let path = routing::normalize_path(if path.is_empty() { "/" } else { path }).map_err(bad)?;
    let authority = head
        .authority()
        .map(str::to_owned)
        .or_else(|| cx.sni.as_deref().map(str::to_owned));
    let plan = &engine.plan;
    if let Some(sni) = &cx.sni
        && !plan.experimental.ignore_sni_consistency
    {
        let host = authority.as_deref().and_then(routing::host_only);
        if !host.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(sni)) {
            return Err((
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "this connection is for {sni}, not {}",
                    host.as_deref().unwrap_or("(no host)")
                ),
            ));
        }
    }
    let (app, via_default) = match routing::match_app(plan, authority.as_deref()) {
        AppMatch::App(i) => (i, false),
        AppMatch::Default(i) => (i, true),
        AppMatch::Unknown => {
            let host = authority.as_deref().unwrap_or("(none)");
            return Err((
                StatusCode::SERVICE_UNAVAILABLE,
                format!("no app serves host {host}"),
            ));
        }
    };
    let Some(app_plan) = plan.apps.get(app) else {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "no such app".to_owned()));
    };
    if !app_plan.access.allows(cx.peer.ip()) {
        return Err((
            StatusCode::FORBIDDEN,
            "this client address may not use this app".to_owned(),
        ));
    }
    let Some(route) = routing::match_route(app_plan, &path) else {
        return Err((StatusCode::NOT_FOUND, format!("no route for {path}")));
    };
    let path_and_query = match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    Ok(Routed {
        app,
        route,
        path_and_query,
        via_default,
        authority,
    })
}
