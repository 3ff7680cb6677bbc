//! Unit tests of the HTTP/1.1 codec: real clients' and servers' bytes (captured from curl
//! 7.88, nginx 1.22 and the RFC 6455 examples into `testdata/`), incremental and pipelined
//! parsing, bodies across arbitrary splits, the serializer and hop-by-hop removal, and the
//! fuzz corpus replay.
// Tests may index and panic; the codec above them may not.
#![allow(clippy::indexing_slicing)]

use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};

use super::*;

const CURL_GET: &[u8] = include_bytes!("testdata/curl_get.http");
const CURL_POST_CHUNKED: &[u8] = include_bytes!("testdata/curl_post_chunked.http");
const CURL_POST_EXPECT: &[u8] = include_bytes!("testdata/curl_post_expect_continue.http");
const CURL_PROXY: &[u8] = include_bytes!("testdata/curl_proxy_absolute_form.http");
const CURL_HTTP10: &[u8] = include_bytes!("testdata/curl_http10_keep_alive.http");
const BROWSER_GET: &[u8] = include_bytes!("testdata/browser_get.http");
const WEBSOCKET: &[u8] = include_bytes!("testdata/rfc6455_websocket_upgrade.http");
const REQUESTS: [&[u8]; 7] = [
    CURL_GET,
    CURL_POST_CHUNKED,
    CURL_POST_EXPECT,
    CURL_PROXY,
    CURL_HTTP10,
    BROWSER_GET,
    WEBSOCKET,
];

const NGINX_200: &[u8] = include_bytes!("testdata/nginx_200_content_length.http");
const NGINX_CHUNKED: &[u8] = include_bytes!("testdata/nginx_chunked_trailers.http");
const NGINX_204: &[u8] = include_bytes!("testdata/nginx_204.http");
const NGINX_304: &[u8] = include_bytes!("testdata/nginx_304.http");
const NGINX_HEAD: &[u8] = include_bytes!("testdata/nginx_head.http");
const NGINX_CLOSE: &[u8] = include_bytes!("testdata/nginx_http10_close_delimited.http");
const WEBSOCKET_101: &[u8] = include_bytes!("testdata/rfc6455_101_switching_protocols.http");

fn request(bytes: &[u8]) -> (RequestHead, usize) {
    match parse_request(bytes) {
        Ok(Parsed::Complete { head, consumed }) => (head, consumed),
        other => panic!("{:?} parsed as {other:?}", String::from_utf8_lossy(bytes)),
    }
}

fn response(bytes: &[u8], method: &Method) -> (ResponseHead, usize) {
    match parse_response(bytes, method) {
        Ok(Parsed::Complete { head, consumed }) => (head, consumed),
        other => panic!("{:?} parsed as {other:?}", String::from_utf8_lossy(bytes)),
    }
}

/// Feeds `input` to `decoder` in pieces of `piece` bytes through a caller buffer, as a
/// connection driver would; returns the body and how many input bytes it took up.
fn decode_in_pieces(
    mut decoder: BodyDecoder,
    input: &[u8],
    piece: usize,
) -> Result<(Vec<u8>, usize, BodyDecoder), H1Error> {
    let (mut buf, mut body, mut fed, mut used) = (Vec::new(), Vec::new(), 0, 0);
    loop {
        let step = decoder.decode(&buf)?;
        body.extend_from_slice(step.data);
        let (consumed, done, needs_more) = (step.consumed, step.done, step.needs_more());
        buf.drain(..consumed);
        used += consumed;
        if done {
            return Ok((body, used, decoder));
        }
        if needs_more {
            let end = (fed + piece.max(1)).min(input.len());
            if end == fed {
                return Err(H1Error::Invalid("test input ended inside the body"));
            }
            buf.extend_from_slice(&input[fed..end]);
            fed = end;
        }
    }
}

fn chunked() -> BodyDecoder {
    BodyDecoder::new(BodyFraming::Chunked, u64::MAX).unwrap()
}

// ---- real clients ------------------------------------------------------------------------

#[test]
fn curl_get_is_origin_form_keep_alive_without_body() {
    let (head, consumed) = request(CURL_GET);
    assert_eq!(consumed, CURL_GET.len());
    assert_eq!(head.method, Method::GET);
    assert_eq!(head.target, "/index.html?q=1");
    assert_eq!(head.form, TargetForm::Origin);
    assert_eq!(head.version, Version::HTTP_11);
    assert_eq!(head.framing, BodyFraming::None);
    assert!(head.keep_alive && !head.expect_continue && !head.upgrade);
    assert!(head.host().is_some_and(|h| h.starts_with("127.0.0.1:")));
    assert_eq!(head.headers.get("user-agent").unwrap(), "curl/7.88.1");
    assert_eq!(head.headers.len(), 3);
}

#[test]
fn curl_chunked_upload_decodes_to_the_piped_bytes() {
    let (head, consumed) = request(CURL_POST_CHUNKED);
    assert_eq!(head.method, Method::POST);
    assert_eq!(head.framing, BodyFraming::Chunked);
    assert!(
        head.expect_continue,
        "curl waits for 100 before a chunked upload"
    );
    let decoder = BodyDecoder::new(head.framing, 1 << 20).unwrap();
    let body = &CURL_POST_CHUNKED[consumed..];
    let (data, used, decoder) = decode_in_pieces(decoder, body, 4096).unwrap();
    assert_eq!(data, b"hello world\nsecond line\n");
    assert_eq!(used, body.len());
    assert_eq!(decoder.trailers().map(HeaderMap::len), Some(0));
}

#[test]
fn curl_large_post_sends_expect_100_continue() {
    let (head, consumed) = request(CURL_POST_EXPECT);
    assert_eq!(consumed, CURL_POST_EXPECT.len(), "curl sent only the head");
    assert_eq!(head.framing, BodyFraming::ContentLength(2 * 1024 * 1024));
    assert!(head.expect_continue);
    assert_eq!(
        BodyDecoder::new(head.framing, 1024 * 1024).err(),
        Some(H1Error::BodyTooLarge),
        "a Content-Length over request_max_body_size is refused before 100 Continue"
    );
}

#[test]
fn browser_get_keeps_every_header_and_its_value() {
    let (head, _) = request(BROWSER_GET);
    assert_eq!(head.headers.len(), 17);
    assert_eq!(
        head.headers.get("cookie").unwrap(),
        "session=4f1c2e8a9b7d; theme=dark; _ga=GA1.2.123456789.1700000000"
    );
    assert_eq!(
        head.headers.get("if-none-match").unwrap(),
        "\"65f1a2b3-27\""
    );
    assert_eq!(
        head.target,
        "/articles/2024/http-smuggling?utm_source=feed&ref=home"
    );
    assert!(head.keep_alive);
}

#[test]
fn rfc6455_websocket_handshake_is_an_upgrade_request() {
    let (head, _) = request(WEBSOCKET);
    assert!(
        head.upgrade,
        "Connection: Upgrade (capitalised) plus Upgrade"
    );
    assert_eq!(head.upgrade_protocol().unwrap(), "websocket");
    assert_eq!(head.host(), Some("server.example.com"));
    let mut forwarded = head.headers.clone();
    remove_hop_by_hop(&mut forwarded, head.upgrade);
    assert_eq!(forwarded.get(UPGRADE).unwrap(), "websocket");
    assert_eq!(forwarded.get(CONNECTION).unwrap(), "upgrade");
    assert!(forwarded.contains_key("sec-websocket-key"));
}

#[test]
fn upgrade_is_ignored_in_http10_and_without_connection_upgrade() {
    let (head, _) = request(b"GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert!(!head.upgrade, "RFC 9110 7.8: ignore Upgrade in HTTP/1.0");
    let (head, _) = request(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n");
    assert!(!head.upgrade && head.upgrade_protocol().is_none());
}

#[test]
fn curl_proxy_request_is_absolute_form_and_host_agrees() {
    let (head, _) = request(CURL_PROXY);
    assert_eq!(head.form, TargetForm::Absolute);
    assert_eq!(head.target_authority(), Some("example.com:8080"));
    assert_eq!(head.authority(), Some("example.com:8080"));
    assert_eq!(head.target.path(), "/a/b");
    assert!(head.host_matches_target());
    let mut forwarded = head.headers.clone();
    remove_hop_by_hop(&mut forwarded, false);
    assert!(!forwarded.contains_key("proxy-connection"));
}

#[test]
fn absolute_form_host_mismatch_is_reported_with_default_ports() {
    let (head, _) = request(b"GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n");
    assert!(!head.host_matches_target());
    assert_eq!(
        head.authority(),
        Some("a.example"),
        "RFC 9112 3.2.2: target wins"
    );
    let (head, _) = request(b"GET http://A.example/x HTTP/1.1\r\nHost: a.example:80\r\n\r\n");
    assert!(head.host_matches_target());
    let (head, _) = request(b"GET https://a.example/ HTTP/1.1\r\nHost: a.example:443\r\n\r\n");
    assert!(head.host_matches_target());
    let (head, _) = request(b"GET https://a.example/ HTTP/1.1\r\nHost: a.example:80\r\n\r\n");
    assert!(!head.host_matches_target());
    let (head, _) = request(b"GET http://[::1]:8080/ HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    assert!(head.host_matches_target());
}

#[test]
fn curl_http10_keep_alive_is_honoured() {
    let (head, _) = request(CURL_HTTP10);
    assert_eq!(head.version, Version::HTTP_10);
    assert!(head.keep_alive);
    let (head, _) = request(b"GET / HTTP/1.0\r\n\r\n");
    assert!(!head.keep_alive, "1.0 closes by default");
    assert_eq!(head.host(), None, "Host is optional in 1.0");
    let (head, _) = request(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n");
    assert!(!head.keep_alive, "close wins");
    let (head, _) = request(b"GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n");
    assert!(
        !head.expect_continue,
        "RFC 9110 10.1.1: ignore 100-continue from 1.0"
    );
}

#[test]
fn every_target_form_is_recognised() {
    let (head, _) = request(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((head.form, head.target.path()), (TargetForm::Asterisk, "*"));
    let (head, _) = request(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    assert_eq!(head.form, TargetForm::Authority);
    assert_eq!(head.target_authority(), Some("example.com:443"));
    let (head, _) = request(b"GET //evil.example/ HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(
        head.form,
        TargetForm::Origin,
        "an empty first segment is still a path"
    );
    assert_eq!(
        (head.target.path(), head.target_authority()),
        ("//evil.example/", None)
    );
    let bad: [&[u8]; 5] = [
        b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET http://user@evil.example/ HTTP/1.1\r\nHost: a\r\n\r\n",
    ];
    for bytes in bad {
        let result = parse_request(bytes);
        assert!(
            matches!(result, Err(H1Error::Invalid(_))),
            "{:?}: {result:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

// ---- incremental and pipelined parsing ---------------------------------------------------

#[test]
fn every_prefix_of_a_real_request_is_partial_then_complete() {
    for bytes in REQUESTS {
        let (head, consumed) = request(bytes);
        for cut in 0..consumed {
            assert_eq!(
                parse_request(&bytes[..cut]),
                Ok(Parsed::Partial),
                "cut {cut}"
            );
        }
        assert_eq!(request(&bytes[..consumed]), (head, consumed));
        check_request_invariants(bytes);
    }
}

#[test]
fn every_prefix_of_a_real_response_is_partial_then_complete() {
    for bytes in [
        NGINX_200,
        NGINX_CHUNKED,
        NGINX_204,
        NGINX_304,
        NGINX_HEAD,
        NGINX_CLOSE,
    ] {
        let (head, consumed) = response(bytes, &Method::GET);
        for cut in 0..consumed {
            assert_eq!(
                parse_response(&bytes[..cut], &Method::GET),
                Ok(Parsed::Partial)
            );
        }
        assert_eq!(response(&bytes[..consumed], &Method::GET), (head, consumed));
        check_response_invariants(bytes);
    }
}

#[test]
fn pipelined_requests_parse_in_sequence_with_their_bodies() {
    let mut stream = Vec::new();
    stream.extend_from_slice(CURL_GET);
    stream.extend_from_slice(CURL_POST_CHUNKED);
    stream.extend_from_slice(b"POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
    stream.extend_from_slice(b"\r\n"); // a stray CRLF after a body is skipped (RFC 9112 2.2)
    stream.extend_from_slice(WEBSOCKET);
    let mut rest = &stream[..];
    let mut seen = Vec::new();
    while !rest.is_empty() {
        let (head, consumed) = request(rest);
        rest = &rest[consumed..];
        let decoder = BodyDecoder::new(head.framing, u64::MAX).unwrap();
        let (body, used, _) = decode_in_pieces(decoder, rest, 7).unwrap();
        rest = &rest[used..];
        seen.push((head.method.to_string(), head.target.to_string(), body));
    }
    let expected = [
        ("GET", "/index.html?q=1", &b""[..]),
        ("POST", "/upload", b"hello world\nsecond line\n"),
        ("POST", "/form", b"abc"),
        ("GET", "/chat", b""),
    ];
    assert_eq!(seen.len(), expected.len());
    for ((m, t, b), (em, et, eb)) in seen.iter().zip(expected) {
        assert_eq!((m.as_str(), t.as_str(), b.as_slice()), (em, et, eb));
    }
}

// ---- bodies ------------------------------------------------------------------------------

const CHUNKED_WITH_EXTENSIONS: &[u8] = b"4;name=value;flag\r\nWiki\r\n\
    5;q=\"quoted \\\" ; x\"\r\npedia\r\n\
    E\r\n in\r\n\r\nchunks.\r\n\
    0\r\nExpires: never\r\nX-Sum: 42\r\n\r\nNEXT";

#[test]
fn chunked_body_decodes_the_same_across_every_split() {
    let nginx_body = &NGINX_CHUNKED[response(NGINX_CHUNKED, &Method::GET).1..];
    for input in [CHUNKED_WITH_EXTENSIONS, nginx_body] {
        let (body, used, decoder) = decode_in_pieces(chunked(), input, input.len()).unwrap();
        for piece in 1..input.len() {
            let split = decode_in_pieces(chunked(), input, piece).unwrap();
            assert_eq!((&split.0, split.1), (&body, used), "piece {piece}");
            assert_eq!(split.2.trailers(), decoder.trailers());
        }
        // Every two-way split, handed over as two `decode` calls on a growing buffer.
        for cut in 0..=input.len() {
            let mut d = chunked();
            let mut out = Vec::new();
            let mut buf = input[..cut].to_vec();
            let mut fed_rest = false;
            loop {
                let step = d.decode(&buf).unwrap();
                out.extend_from_slice(step.data);
                let (consumed, done, needs_more) = (step.consumed, step.done, step.needs_more());
                buf.drain(..consumed);
                if done {
                    break;
                }
                if needs_more {
                    assert!(!fed_rest, "cut {cut}: stuck");
                    buf.extend_from_slice(&input[cut..]);
                    fed_rest = true;
                }
            }
            assert_eq!(out, body, "cut {cut}");
        }
    }
    let (body, used, decoder) = decode_in_pieces(chunked(), CHUNKED_WITH_EXTENSIONS, 1).unwrap();
    assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
    assert_eq!(&CHUNKED_WITH_EXTENSIONS[used..], b"NEXT");
    let trailers = decoder.trailers().unwrap();
    assert_eq!(trailers.get("expires").unwrap(), "never");
    assert_eq!(trailers.get("x-sum").unwrap(), "42");
}

#[test]
fn nginx_chunked_response_carries_its_trailer() {
    let (head, consumed) = response(NGINX_CHUNKED, &Method::GET);
    assert_eq!(head.framing, BodyFraming::Chunked);
    assert!(!head.keep_alive, "nginx said Connection: close");
    let (body, used, decoder) = decode_in_pieces(chunked(), &NGINX_CHUNKED[consumed..], 5).unwrap();
    assert_eq!(body, b"zz bbbb zz\n");
    assert_eq!(consumed + used, NGINX_CHUNKED.len());
    assert_eq!(
        decoder.trailers().unwrap().get("x-checksum").unwrap(),
        "abc123"
    );
}

#[test]
fn chunked_encoder_output_decodes_to_its_input() {
    let mut wire = Vec::new();
    let pieces: [&[u8]; 4] = [b"a", b"", &[0xff; 300], b"0\r\n\r\n"];
    for piece in pieces {
        write_chunk(&mut wire, piece);
    }
    let mut trailers = HeaderMap::new();
    trailers.insert("x-digest", HeaderValue::from_static("sha-256=abc"));
    write_last_chunk(&mut wire, &trailers);
    assert!(wire.starts_with(b"1\r\na\r\n12c\r\n"), "{wire:?}");
    assert!(wire.ends_with(b"0\r\nx-digest: sha-256=abc\r\n\r\n"));
    let (body, used, decoder) = decode_in_pieces(chunked(), &wire, 3).unwrap();
    assert_eq!(body, pieces.concat());
    assert_eq!(used, wire.len());
    assert_eq!(decoder.trailers(), Some(&trailers));
    let mut empty = Vec::new();
    write_last_chunk(&mut empty, &HeaderMap::new());
    assert_eq!(empty, b"0\r\n\r\n");
}

#[test]
fn content_length_body_counts_down_and_leaves_the_next_message() {
    let mut body = LengthBody::new(5);
    let step = body.decode(b"hel");
    assert_eq!(
        (step.consumed, step.data, step.done),
        (3, &b"hel"[..], false)
    );
    assert_eq!(body.remaining(), 2);
    let step = body.decode(b"loGET /");
    assert_eq!((step.consumed, step.data, step.done), (2, &b"lo"[..], true));
    assert!(body.is_done());
    assert_eq!(body.decode(b"GET").consumed, 0);
    let mut zero = BodyDecoder::new(BodyFraming::ContentLength(0), 0).unwrap();
    assert!(zero.decode(b"x").unwrap().done);
    assert_eq!(
        BodyDecoder::new(BodyFraming::ContentLength(10), 3).err(),
        Some(H1Error::BodyTooLarge)
    );
}

#[test]
fn chunked_body_over_the_limit_is_413_before_its_data_arrives() {
    let mut d = BodyDecoder::new(BodyFraming::Chunked, 10).unwrap();
    let step = d.decode(b"6\r\nabcdef\r\n").unwrap();
    assert_eq!(step.data, b"abcdef");
    let mut rest = &b"6\r\nabcdef\r\n"[step.consumed..];
    while !rest.is_empty() {
        let step = d.decode(rest).unwrap();
        rest = &rest[step.consumed..];
    }
    assert_eq!(d.decode(b"5\r\n"), Err(H1Error::BodyTooLarge));
    assert_eq!(
        d.decode(b"0\r\n\r\n"),
        Err(H1Error::BodyTooLarge),
        "errors are final"
    );
    assert_eq!(
        H1Error::BodyTooLarge.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[test]
fn close_delimited_body_ends_only_at_eof() {
    let mut d = BodyDecoder::new(BodyFraming::UntilClose, 8).unwrap();
    assert_eq!(d.decode(b"abc").unwrap().data, b"abc");
    assert!(d.finish_at_eof().is_ok());
    assert_eq!(d.decode(b"123456"), Err(H1Error::BodyTooLarge));
    let mut short = BodyDecoder::new(BodyFraming::ContentLength(4), 8).unwrap();
    let _ = short.decode(b"ab").unwrap();
    assert!(
        short.finish_at_eof().is_err(),
        "a truncated body is an error"
    );
}

// ---- responses ---------------------------------------------------------------------------

#[test]
fn nginx_200_with_content_length() {
    let (head, consumed) = response(NGINX_200, &Method::GET);
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.framing, BodyFraming::ContentLength(39));
    assert_eq!(
        &NGINX_200[consumed..],
        b"<html><body>hello sluice</body></html>\n"
    );
    assert!(!head.keep_alive && !head.is_interim());
}

#[test]
fn nginx_head_response_has_no_body_despite_content_length() {
    let (head, consumed) = response(NGINX_HEAD, &Method::HEAD);
    assert_eq!(head.framing, BodyFraming::None);
    assert_eq!(consumed, NGINX_HEAD.len());
    assert_eq!(head.headers.get(CONTENT_LENGTH).unwrap(), "39");
    let (as_get, _) = response(NGINX_HEAD, &Method::GET);
    assert_eq!(as_get.framing, BodyFraming::ContentLength(39));
}

#[test]
fn nginx_204_and_304_have_no_body() {
    for (bytes, status) in [(NGINX_204, 204), (NGINX_304, 304)] {
        let (head, consumed) = response(bytes, &Method::GET);
        assert_eq!(head.status.as_u16(), status);
        assert_eq!(head.framing, BodyFraming::None);
        assert_eq!(consumed, bytes.len());
    }
    let (head, _) = response(
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
        &Method::GET,
    );
    assert_eq!(head.framing, BodyFraming::None, "RFC 9112 6.3 rule 1");
}

#[test]
fn switching_protocols_101_is_final_and_bodiless() {
    let (head, consumed) = response(WEBSOCKET_101, &Method::GET);
    assert_eq!(head.status, StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(
        (head.framing, consumed),
        (BodyFraming::None, WEBSOCKET_101.len())
    );
    assert!(!head.is_interim());
    let mut forwarded = head.headers.clone();
    remove_hop_by_hop(&mut forwarded, true);
    assert_eq!(forwarded.get(UPGRADE).unwrap(), "websocket");
    let (cont, consumed) = response(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n",
        &Method::POST,
    );
    assert!(cont.is_interim());
    assert_eq!(consumed, 25);
}

#[test]
fn response_without_length_is_read_until_close() {
    let (head, consumed) = response(NGINX_CLOSE, &Method::GET);
    assert_eq!(head.framing, BodyFraming::UntilClose);
    assert!(!head.keep_alive);
    assert_eq!(&NGINX_CLOSE[consumed..], b"zz bbbb zz\n");
    let (head, _) = response(
        b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        &Method::GET,
    );
    assert!(!head.keep_alive, "1.0 closes unless keep-alive");
    let (head, _) = response(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", &Method::GET);
    assert!(
        head.keep_alive,
        "a missing reason phrase (and its SP) is tolerated"
    );
    let (head, _) = response(b"HTTP/1.1 200 OK\r\n\r\n", &Method::CONNECT);
    assert_eq!(
        head.framing,
        BodyFraming::None,
        "a 2xx to CONNECT starts a tunnel"
    );
}

#[test]
fn malformed_responses_are_rejected() {
    let bad: [(&[u8], H1Error); 6] = [
        (
            b"HTTP/1.1 20 OK\r\n\r\n",
            H1Error::Invalid("status code is not 3 digits"),
        ),
        (
            b"HTTP/1.1 099 X\r\n\r\n",
            H1Error::Invalid("status code below 100"),
        ),
        (
            b"HTTP/2 200 OK\r\n\r\n",
            H1Error::Invalid("malformed HTTP version"),
        ),
        (
            b"HTTP/1.1 200 O\x01K\r\n\r\n",
            H1Error::Invalid("control character in reason phrase"),
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            H1Error::Invalid("both Content-Length and Transfer-Encoding"),
        ),
        (
            b"HTTP/1.1 200 OK\nContent-Length: 1\n\n",
            H1Error::Invalid("bare LF as line terminator"),
        ),
    ];
    for (bytes, error) in bad {
        assert_eq!(parse_response(bytes, &Method::GET), Err(error), "{bytes:?}");
    }
}

// ---- limits ------------------------------------------------------------------------------

#[test]
fn request_line_at_the_limit_parses_and_one_byte_more_is_414() {
    let line = |len: usize| {
        let fixed = "GET / HTTP/1.1\r\n".len();
        format!(
            "GET /{} HTTP/1.1\r\nHost: a\r\n\r\n",
            "a".repeat(len - fixed)
        )
    };
    assert!(matches!(
        parse_request(line(MAX_REQUEST_LINE).as_bytes()),
        Ok(Parsed::Complete { .. })
    ));
    let too_long = line(MAX_REQUEST_LINE + 1);
    assert_eq!(
        parse_request(too_long.as_bytes()),
        Err(H1Error::StartLineTooLong)
    );
    assert_eq!(
        parse_request(&too_long.as_bytes()[..MAX_REQUEST_LINE]),
        Err(H1Error::StartLineTooLong),
        "decided as soon as the limit is reached without a line end"
    );
    assert_eq!(H1Error::StartLineTooLong.status(), StatusCode::URI_TOO_LONG);
}

#[test]
fn header_section_over_the_limits_is_431() {
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nCookie: {}\r\n\r\n",
        "c".repeat(MAX_HEADER_BYTES)
    );
    let err = parse_request(big.as_bytes()).unwrap_err();
    assert_eq!(
        err,
        H1Error::HeadersTooLarge("header section over MAX_HEADER_BYTES")
    );
    assert_eq!(err.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let fields = |n: usize| {
        let mut s = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
        for i in 1..n {
            s.push_str(&format!("X-{i}: v\r\n"));
        }
        s + "\r\n"
    };
    assert!(matches!(
        parse_request(fields(MAX_HEADERS).as_bytes()),
        Ok(Parsed::Complete { .. })
    ));
    assert_eq!(
        parse_request(fields(MAX_HEADERS + 1).as_bytes()),
        Err(H1Error::HeadersTooLarge("more than MAX_HEADERS fields"))
    );
}

#[test]
fn versions_other_than_1_0_and_1_1_are_505() {
    for v in ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0"] {
        let bytes = format!("GET / {v}\r\nHost: a\r\n\r\n");
        assert_eq!(
            parse_request(bytes.as_bytes()),
            Err(H1Error::VersionNotSupported),
            "{v}"
        );
    }
    assert_eq!(
        H1Error::VersionNotSupported.status(),
        StatusCode::HTTP_VERSION_NOT_SUPPORTED
    );
    for v in ["HTTP/1.10", "http/1.1", "HTTP/1", "HTTP/1.1 "] {
        let bytes = format!("GET / {v}\r\nHost: a\r\n\r\n");
        assert!(
            matches!(parse_request(bytes.as_bytes()), Err(H1Error::Invalid(_))),
            "{v}"
        );
    }
}

#[test]
fn leading_empty_lines_are_skipped_up_to_the_limit() {
    let ok = format!(
        "{}GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\n".repeat(MAX_LEADING_EMPTY_LINES)
    );
    let (_, consumed) = request(ok.as_bytes());
    assert_eq!(consumed, ok.len());
    let bad = format!("\r\n{ok}");
    assert!(parse_request(bad.as_bytes()).is_err());
    assert_eq!(parse_request(b"\r"), Ok(Parsed::Partial));
    assert_eq!(parse_request(b"\r\n\r\n"), Ok(Parsed::Partial));
}

// ---- serializer and hop-by-hop -----------------------------------------------------------

#[test]
fn request_head_serializes_as_http11_with_its_headers() {
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static("backend:8080"));
    headers.append("x-a", HeaderValue::from_static("1"));
    headers.append("x-a", HeaderValue::from_static("2"));
    let mut out = Vec::new();
    write_request_head(&mut out, &Method::PUT, &"/p?q=1".parse().unwrap(), &headers);
    assert_eq!(
        out,
        b"PUT /p?q=1 HTTP/1.1\r\nhost: backend:8080\r\nx-a: 1\r\nx-a: 2\r\n\r\n"
    );
    let mut out = Vec::new();
    write_response_head(&mut out, StatusCode::NOT_FOUND, &HeaderMap::new());
    assert_eq!(out, b"HTTP/1.1 404 Not Found\r\n\r\n");
    let mut out = Vec::new();
    write_response_head(
        &mut out,
        StatusCode::from_u16(599).unwrap(),
        &HeaderMap::new(),
    );
    assert_eq!(out, b"HTTP/1.1 599 \r\n\r\n");
}

#[test]
fn parsed_heads_reencode_to_equal_heads() {
    for bytes in REQUESTS {
        let (head, _) = request(bytes);
        let mut out = Vec::new();
        head.encode(&mut out);
        assert_eq!(request(&out).0, head);
    }
    for bytes in [
        &b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
        b"GET http://a.example HTTP/1.1\r\nHost: a.example\r\n\r\n",
    ] {
        let (head, _) = request(bytes);
        let mut out = Vec::new();
        head.encode(&mut out);
        assert_eq!(request(&out).0, head, "{:?}", String::from_utf8_lossy(&out));
    }
}

fn hop_test(connection: Option<&str>, extra: &str, keep_upgrade: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static("a"));
    headers.insert("x-end-to-end", HeaderValue::from_static("kept"));
    if let Some(c) = connection {
        headers.insert(CONNECTION, HeaderValue::from_str(c).unwrap());
    }
    headers.insert(
        http::HeaderName::from_bytes(extra.as_bytes()).unwrap(),
        HeaderValue::from_static("v"),
    );
    remove_hop_by_hop(&mut headers, keep_upgrade);
    assert_eq!(headers.get(HOST).unwrap(), "a");
    assert_eq!(headers.get("x-end-to-end").unwrap(), "kept");
    headers
}

#[test]
fn hop_by_hop_connection_is_removed() {
    assert!(!hop_test(Some("close"), "x-other", false).contains_key(CONNECTION));
}

#[test]
fn hop_by_hop_keep_alive_is_removed() {
    assert!(!hop_test(None, "keep-alive", false).contains_key("keep-alive"));
}

#[test]
fn hop_by_hop_proxy_connection_is_removed() {
    assert!(!hop_test(None, "proxy-connection", false).contains_key("proxy-connection"));
}

#[test]
fn hop_by_hop_te_is_removed() {
    assert!(!hop_test(None, "te", false).contains_key("te"));
}

#[test]
fn hop_by_hop_trailer_is_removed() {
    assert!(!hop_test(None, "trailer", false).contains_key("trailer"));
}

#[test]
fn hop_by_hop_transfer_encoding_is_removed() {
    assert!(!hop_test(None, "transfer-encoding", false).contains_key(TRANSFER_ENCODING));
}

#[test]
fn hop_by_hop_upgrade_is_removed_unless_forwarding_an_upgrade() {
    assert!(!hop_test(Some("upgrade"), "upgrade", false).contains_key(UPGRADE));
    let kept = hop_test(Some("keep-alive, Upgrade, x-private"), "upgrade", true);
    assert_eq!(kept.get(UPGRADE).unwrap(), "v");
    assert_eq!(kept.get(CONNECTION).unwrap(), "upgrade");
}

#[test]
fn hop_by_hop_fields_named_in_connection_are_removed() {
    let headers = hop_test(Some("X-Private, , x-debug"), "x-private", false);
    assert!(!headers.contains_key("x-private"));
}

#[test]
fn connection_cannot_strip_host_or_content_length() {
    let headers = hop_test(Some("host, content-length"), "content-length", false);
    assert!(headers.contains_key(CONTENT_LENGTH));
}

#[test]
fn body_framing_is_restated_as_the_only_framing_field() {
    let (head, _) = request(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n");
    let mut headers = head.headers.clone();
    remove_hop_by_hop(&mut headers, false);
    set_body_framing(&mut headers, head.framing);
    assert_eq!(headers.get_all(CONTENT_LENGTH).iter().count(), 1);
    assert_eq!(headers.get(CONTENT_LENGTH).unwrap(), "5");
    set_body_framing(&mut headers, BodyFraming::Chunked);
    assert!(!headers.contains_key(CONTENT_LENGTH));
    assert_eq!(headers.get(TRANSFER_ENCODING).unwrap(), "chunked");
}

// ---- errors and fuzz corpus --------------------------------------------------------------

#[test]
fn every_error_maps_to_one_status() {
    let cases = [
        (H1Error::Invalid("x"), 400),
        (H1Error::StartLineTooLong, 414),
        (H1Error::HeadersTooLarge("x"), 431),
        (H1Error::BodyTooLarge, 413),
        (H1Error::VersionNotSupported, 505),
        (H1Error::Unsupported("x"), 501),
    ];
    for (error, status) in cases {
        assert_eq!(error.status().as_u16(), status);
        assert!(!error.context().is_empty());
        assert!(error.to_string().ends_with(&format!("({status})")));
    }
}

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = format!("{}/fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("corpus directory") {
        check(&std::fs::read(entry.expect("entry").path()).expect("corpus file"));
        seen += 1;
    }
    seen
}

#[test]
fn fuzz_corpus_replays_with_the_fuzz_invariants() {
    assert!(
        replay("h1_request", check_request_invariants) >= 40,
        "h1_request corpus went missing"
    );
    assert!(
        replay("h1_response", check_response_invariants) >= 7,
        "h1_response corpus went missing"
    );
}

#[test]
fn byte_class_table_matches_the_rfc_grammar() {
    for b in 0..=255u8 {
        let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        assert_eq!(fields::is_tchar(b), tchar, "tchar {b:#04x}");
        let field = b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80;
        assert_eq!(fields::is_field_byte(b), field, "field {b:#04x}");
        assert_eq!(
            fields::is_target_byte(b),
            (0x21..=0x7e).contains(&b),
            "target {b:#04x}"
        );
    }
}

#[test]
fn recycled_header_maps_come_back_empty_and_oversized_ones_are_not_kept() {
    let mut m = header_map();
    m.insert(HOST, HeaderValue::from_static("a.example"));
    m.append("x-a", HeaderValue::from_static("1"));
    let kept = m.capacity();
    recycle(m);
    let again = header_map();
    assert!(again.is_empty(), "no field of the earlier head: {again:?}");
    assert_eq!(
        again.capacity(),
        kept,
        "the same allocation, taken from the spare list"
    );

    let mut big = HeaderMap::with_capacity(500);
    big.insert(HOST, HeaderValue::from_static("b.example"));
    recycle(big);
    let next = header_map();
    assert!(
        next.capacity() < 500,
        "a map grown past the bound is dropped, not kept"
    );
}

#[test]
fn the_word_at_a_time_value_scan_stops_where_the_byte_scan_does() {
    // Every byte value at every position of runs long enough for two words and a tail,
    // among plain and obs-text bytes: the first non-field byte is found, never skipped.
    for filler in [b'a', b' ', 0x80, 0xff] {
        for len in [0usize, 1, 7, 8, 9, 16, 21] {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![filler; len];
                    bytes[at] = b;
                    let expected = if fields::is_field_byte(b) { len } else { at };
                    assert_eq!(
                        fields::field_bytes(&bytes),
                        expected,
                        "byte {b:#x} at {at} of {len}"
                    );
                }
            }
            assert_eq!(fields::field_bytes(&vec![filler; len]), len);
        }
    }
}

#[test]
fn the_empty_line_that_ends_a_section_counts_against_its_budget() {
    let mut r = crate::wire::Reader::new(b"A: bcd\r\n\r\n");
    assert!(matches!(
        fields::section(&mut r, 8, "over"),
        Err(fields::Halt::Fail(H1Error::HeadersTooLarge("over")))
    ));
    let mut r = crate::wire::Reader::new(b"A: bcd\r\n\r\n");
    assert!(
        fields::section(&mut r, 10, "over").is_ok(),
        "exactly the budget"
    );
}

#[test]
fn a_header_section_two_bytes_over_its_limit_is_refused_whole_or_split() {
    let head = "Host: a\r\n";
    let pad = MAX_HEADER_BYTES - head.len() - "X: \r\n".len();
    let req = format!("GET / HTTP/1.1\r\n{head}X: {}\r\n\r\n", "v".repeat(pad));
    let too_large = Some(H1Error::HeadersTooLarge(
        "header section over MAX_HEADER_BYTES",
    ));
    assert_eq!(parse_request(req.as_bytes()).err(), too_large);
    // Without its final CRLF (still to come): the same answer.
    assert_eq!(
        parse_request(&req.as_bytes()[..req.len() - 2]).err(),
        too_large
    );
}

#[test]
fn a_trailer_section_two_bytes_over_its_limit_is_refused() {
    let pad = MAX_TRAILER_BYTES - "X: \r\n".len();
    let body = format!("0\r\nX: {}\r\n\r\n", "v".repeat(pad));
    let mut d = ChunkedDecoder::new(u64::MAX);
    assert!(d.decode(body.as_bytes()).is_err());
}
