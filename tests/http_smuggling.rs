//! Request smuggling on the wire: every malformed or ambiguous request gets a 400 from sluice
//! and nothing of it reaches the backend. The codec-level corpus with exact outcomes is in
//! `src/http/h1_smuggling_tests.rs`; this one sends whole requests through the real binary,
//! each followed by a smuggled `GET /smuggled` that must never be seen upstream.

mod common;

use std::time::Duration;

use common::http_backend::HttpBackend;
use common::http_client::*;
use common::*;

/// `{H}` in a payload stands for a valid `Host` line of app1; `{S}` for a smuggled request.
const HOST_LINE: &str = "Host: app1.example.com\r\n";
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: app1.example.com\r\n\r\n";

/// Requests whose head is invalid: refused before anything is forwarded.
const BAD_HEADS: &[(&str, &str)] = &[
    // Framing ambiguity (CL.TE, TE.CL, CL.CL).
    (
        "cl_then_te",
        "POST /s HTTP/1.1\r\n{H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{S}",
    ),
    (
        "te_then_cl",
        "POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n32\r\n{S}\r\n0\r\n\r\n",
    ),
    (
        "two_content_lengths",
        "POST /s HTTP/1.1\r\n{H}Content-Length: 3\r\nContent-Length: 53\r\n\r\nabc{S}",
    ),
    (
        "content_length_list",
        "POST /s HTTP/1.1\r\n{H}Content-Length: 1,2\r\n\r\nab{S}",
    ),
    (
        "content_length_plus",
        "POST /s HTTP/1.1\r\n{H}Content-Length: +3\r\n\r\nabc{S}",
    ),
    (
        "content_length_negative",
        "POST /s HTTP/1.1\r\n{H}Content-Length: -1\r\n\r\n{S}",
    ),
    (
        "content_length_hex",
        "POST /s HTTP/1.1\r\n{H}Content-Length: 0x3\r\n\r\nabc{S}",
    ),
    (
        "content_length_inner_space",
        "POST /s HTTP/1.1\r\n{H}Content-Length: 1 0\r\n\r\n0123456789{S}",
    ),
    (
        "content_length_overflow",
        "POST /s HTTP/1.1\r\n{H}Content-Length: 18446744073709551616\r\n\r\n{S}",
    ),
    (
        "te_not_ending_in_chunked",
        "POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n{S}",
    ),
    (
        "te_chunked_identity",
        "POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{S}",
    ),
    (
        "te_xchunked",
        "POST /s HTTP/1.1\r\n{H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n{S}",
    ),
    (
        "te_quoted",
        "POST /s HTTP/1.1\r\n{H}Transfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n{S}",
    ),
    (
        "te_with_parameter",
        "POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n{S}",
    ),
    (
        "te_empty",
        "POST /s HTTP/1.1\r\n{H}Transfer-Encoding: \r\n\r\n{S}",
    ),
    (
        "te_twice",
        "POST /s HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{S}",
    ),
    (
        "te_obs_fold",
        "POST /s HTTP/1.1\r\n{H}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n{S}",
    ),
    (
        "te_space_before_colon",
        "POST /s HTTP/1.1\r\n{H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n{S}",
    ),
    (
        "te_in_http10",
        "POST /s HTTP/1.0\r\n{H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n{S}",
    ),
    // Field syntax.
    (
        "obs_fold_other_field",
        "GET /s HTTP/1.1\r\n{H}X-Note: first\r\n  continued\r\n\r\n{S}",
    ),
    (
        "space_before_colon",
        "GET /s HTTP/1.1\r\n{H}X-Note : a\r\n\r\n{S}",
    ),
    (
        "leading_space_first_field",
        "GET /s HTTP/1.1\r\n X-Note: a\r\n{H}\r\n{S}",
    ),
    (
        "bare_cr_in_value",
        "GET /s HTTP/1.1\r\n{H}X-Note: a\rb\r\n\r\n{S}",
    ),
    (
        "bare_cr_line_end",
        "GET /s HTTP/1.1\r\n{H}X-Note: a\r\r\n\r\n{S}",
    ),
    ("bare_lf_request_line", "GET /s HTTP/1.1\n{H}\r\n{S}"),
    (
        "bare_lf_field_line",
        "GET /s HTTP/1.1\r\n{H}X-Note: a\n\r\n{S}",
    ),
    ("bare_lf_end_of_head", "GET /s HTTP/1.1\r\n{H}\n{S}"),
    (
        "field_without_colon",
        "GET /s HTTP/1.1\r\n{H}NoColonHere\r\n\r\n{S}",
    ),
    (
        "empty_field_name",
        "GET /s HTTP/1.1\r\n{H}: value\r\n\r\n{S}",
    ),
    (
        "field_name_not_token",
        "GET /s HTTP/1.1\r\n{H}X(Note): a\r\n\r\n{S}",
    ),
    (
        "field_name_at_sign",
        "GET /s HTTP/1.1\r\n{H}X@Note: a\r\n\r\n{S}",
    ),
    (
        "nul_in_value",
        "GET /s HTTP/1.1\r\n{H}X-Note: a\0b\r\n\r\n{S}",
    ),
    ("nul_in_name", "GET /s HTTP/1.1\r\n{H}X\0Note: a\r\n\r\n{S}"),
    (
        "del_in_value",
        "GET /s HTTP/1.1\r\n{H}X-Note: a\x7fb\r\n\r\n{S}",
    ),
    // Request line.
    ("method_not_token", "G(ET /s HTTP/1.1\r\n{H}\r\n{S}"),
    ("method_with_slash", "GE/T /s HTTP/1.1\r\n{H}\r\n{S}"),
    ("nul_in_target", "GET /s\0x HTTP/1.1\r\n{H}\r\n{S}"),
    ("space_in_target", "GET /s x HTTP/1.1\r\n{H}\r\n{S}"),
    ("tab_separator", "GET\t/s HTTP/1.1\r\n{H}\r\n{S}"),
    ("double_space", "GET  /s HTTP/1.1\r\n{H}\r\n{S}"),
    // Host.
    (
        "duplicate_host",
        "GET /s HTTP/1.1\r\n{H}Host: evil.example\r\n\r\n{S}",
    ),
    (
        "duplicate_host_same_value",
        "GET /s HTTP/1.1\r\n{H}{H}\r\n{S}",
    ),
    (
        "host_with_path",
        "GET /s HTTP/1.1\r\nHost: app1.example.com/evil\r\n\r\n{S}",
    ),
    (
        "host_with_userinfo",
        "GET /s HTTP/1.1\r\nHost: user@app1.example.com\r\n\r\n{S}",
    ),
    (
        "http11_without_host",
        "GET /s HTTP/1.1\r\nX-Note: a\r\n\r\n{S}",
    ),
];

/// Chunked requests with a valid head and a broken body. Sluice may already have forwarded
/// the head (and the chunks before the broken one) when it finds the error, so "nothing
/// forwarded" means here: the backend never sees a *complete* request (the terminating
/// zero-size chunk never reaches it) and never sees the smuggled request that follows.
const BAD_CHUNKS: &[(&str, &str)] = &[
    ("chunk_size_0x", "0x10\r\n0123456789abcdef\r\n0\r\n\r\n"),
    ("chunk_size_negative", "-1\r\na\r\n0\r\n\r\n"),
    ("chunk_size_plus", "+5\r\nhello\r\n0\r\n\r\n"),
    (
        "chunk_size_inner_space",
        "1 0\r\n0123456789abcdef\r\n0\r\n\r\n",
    ),
    ("chunk_size_empty", "\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_not_hex", "zz\r\nhello\r\n0\r\n\r\n"),
    (
        "chunk_size_overflow",
        "10000000000000000\r\nhello\r\n0\r\n\r\n",
    ),
    (
        "chunk_size_huge_overflow",
        "fffffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    ),
    ("chunk_data_longer_than_size", "3\r\nabcdef\r\n0\r\n\r\n"),
    ("chunk_missing_crlf_after_data", "3\r\nabcX\r\n0\r\n\r\n"),
    ("chunk_bare_lf_after_size", "3\nabc\r\n0\r\n\r\n"),
    ("chunk_bare_lf_after_data", "3\r\nabc\n0\r\n\r\n"),
    ("chunk_bad_extension", "5;ext\"bad\r\nhello\r\n0\r\n\r\n"),
    (
        "chunk_valid_then_bad",
        "5\r\nhello\r\nxyz\r\nhello\r\n0\r\n\r\n",
    ),
    ("chunk_trailer_obs_fold", "0\r\nX-T: 1\r\n folded\r\n\r\n"),
];

fn expand(payload: &str) -> Vec<u8> {
    payload
        .replace("{H}", HOST_LINE)
        .replace("{S}", SMUGGLED)
        .into_bytes()
}

fn start(b: &HttpBackend) -> (Sluice, u16) {
    let port = free_port();
    let sluice = Sluice::start(&app1_config(port, &[b.addr()], "none", ""));
    (sluice, port)
}

#[test]
fn malformed_heads_get_400_and_nothing_reaches_the_backend() {
    assert!(BAD_HEADS.len() >= 30, "corpus size");
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b);

    let mut failures = Vec::new();
    for (name, payload) in BAD_HEADS {
        let out = send_raw(local(port), &expand(payload), Duration::from_secs(5));
        let problem = match &out.response {
            None => Some(format!("no response ({:?})", out.error)),
            Some(r) if r.status() != 400 => Some(format!("status {} {:?}", r.status(), r.text())),
            Some(r) if !r.text().starts_with("400") => Some(format!("body {:?}", r.text())),
            Some(r) if !r.head.has_token("connection", "close") => {
                Some(format!("no `connection: close`: {:?}", r.head.headers))
            }
            Some(_) if !matches!(out.ending, Ending::Closed(_)) => Some(format!(
                "connection not closed after the 400: {:?}",
                out.ending
            )),
            Some(_) => None,
        };
        if let Some(p) = problem {
            failures.push(format!("{name}: {p}"));
        }
    }
    assert!(
        failures.is_empty(),
        "payloads not refused cleanly:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        (b.accepted(), b.bytes_received()),
        (0, 0),
        "something reached the backend; heads it saw: {:?}",
        b.heads()
    );

    // The same route does serve a valid request (so the zeros above mean something).
    let r = get(local(port), APP1, "/control");
    assert_eq!(r.status(), 200, "{r:?}");
    assert_eq!(b.heads(), ["/control"]);
}

#[test]
fn broken_chunked_bodies_are_refused_and_never_complete_upstream() {
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b);

    let mut failures = Vec::new();
    for (name, body) in BAD_CHUNKS {
        let mut wire = format!(
            "POST /chunk/{name} HTTP/1.1\r\n{HOST_LINE}Transfer-Encoding: chunked\r\n\r\n{body}"
        )
        .into_bytes();
        wire.extend_from_slice(SMUGGLED.as_bytes());
        let out = send_raw(local(port), &wire, Duration::from_secs(5));
        match &out.response {
            // Refused with sluice's 400.
            Some(r) if r.status() == 400 && r.text().starts_with("400") => {}
            // Or cut off without a response.
            None if matches!(out.ending, Ending::Closed(_)) => {}
            Some(r) => failures.push(format!("{name}: status {} {:?}", r.status(), r.text())),
            None => failures.push(format!("{name}: neither 400 nor closed: {out:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "broken bodies not refused:\n{}",
        failures.join("\n")
    );
    assert_eq!(
        b.request_count(),
        0,
        "a broken body completed upstream: {:?}",
        b.requests()
    );
    let heads = b.heads();
    assert!(
        heads.iter().all(|t| t.starts_with("/chunk/")),
        "the smuggled request reached the backend: {heads:?}"
    );

    // A well-formed chunked request on the same route completes (the check above can fail).
    let mut conn = HttpConn::connect(local(port));
    conn.send(
        format!(
            "POST /chunk/valid HTTP/1.1\r\n{HOST_LINE}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        .as_bytes(),
    );
    let r = conn.response();
    assert_eq!(r.status(), 200, "{r:?}");
    assert_eq!(r.echo().body_len, 5);
    assert_eq!(b.request_count(), 1);
}

#[test]
fn smuggling_attempt_after_a_valid_request_on_one_connection_is_refused() {
    let b = HttpBackend::start("A");
    let (_sluice, port) = start(&b);

    // A valid request, then a CL.TE request, then the smuggled one, in one write.
    let mut wire = request_bytes("GET", "/first", APP1, &[], b"");
    wire.extend(expand(BAD_HEADS[0].1));
    let mut conn = HttpConn::connect(local(port));
    conn.send(&wire);
    let first = conn.response();
    assert_eq!(first.status(), 200, "{first:?}");
    assert_eq!(first.echo().target, "/first");
    let second = conn.response();
    assert_sluice_error(&second, 400, "CL.TE after a valid request");
    conn.assert_closed(IO_TIMEOUT, "after the 400");
    assert_eq!(
        b.heads(),
        ["/first"],
        "only the valid request went upstream"
    );
}
