//! Request smuggling corpus (RFC 9112 §6.3, §7.1, §11.2; the CL.TE, TE.CL and TE.TE
//! obfuscations from PortSwigger's and Kettle's research): every payload's exact outcome,
//! including the few obfuscation-looking ones that are valid. The same payloads are files
//! in `fuzz/corpus/h1_request/smuggle_*`.
// Tests may index and panic; the codec above them may not.
#![allow(clippy::indexing_slicing)]

use super::*;
use Outcome::{BodyErr, Chunked, HeadErr, Length};

#[derive(Debug)]
enum Outcome {
    /// Valid, with a Content-Length body.
    Length(u64),
    /// Valid chunked request whose body decodes to these bytes.
    Chunked(&'static [u8]),
    /// The head is refused with this error.
    HeadErr(H1Error),
    /// The head is chunked, and decoding the body fails with this error.
    BodyErr(H1Error),
}

const fn bad(why: &'static str) -> Outcome {
    HeadErr(H1Error::Invalid(why))
}

const fn bad_chunk(why: &'static str) -> Outcome {
    BodyErr(H1Error::Invalid(why))
}

/// (file name, payload, outcome). Payloads are whole requests, body included.
const CORPUS: &[(&str, &[u8], Outcome)] = &[
    // CL.TE and TE.CL: both framings present is refused, whatever the order.
    ("cl_te", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", bad("both Content-Length and Transfer-Encoding")),
    ("te_cl", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", bad("both Content-Length and Transfer-Encoding")),
    ("cl_te_bad_te", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", bad("both Content-Length and Transfer-Encoding")),
    // TE.TE obfuscations.
    ("te_xchunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", bad("unknown transfer coding")),
    ("te_chunk", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunk\r\n\r\n", bad("unknown transfer coding")),
    ("te_quoted", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", bad("unknown transfer coding")),
    ("te_chunked_identity", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n", bad("unknown transfer coding")),
    ("te_identity_chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n", bad("unknown transfer coding")),
    ("te_chunked_param", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", bad("unknown transfer coding")),
    ("te_duplicated", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", bad("chunked applied more than once")),
    ("te_second_line_unknown", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: cow\r\n\r\n", bad("unknown transfer coding")),
    ("te_chunked_gzip", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", bad("final transfer coding is not chunked")),
    ("te_gzip_only", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nContent-Type: x\r\n\r\n", bad("final transfer coding is not chunked")),
    ("te_gzip_chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HeadErr(H1Error::Unsupported("transfer coding other than chunked"))),
    ("te_empty", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", bad("empty Transfer-Encoding")),
    ("te_comma_only", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n", bad("empty Transfer-Encoding")),
    ("te_space_before_colon", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", bad("whitespace between field name and colon")),
    ("te_tab_before_colon", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n", bad("whitespace between field name and colon")),
    ("te_obs_fold", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", bad("obs-fold or whitespace before a field line")),
    ("te_line_leading_space", b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n", bad("obs-fold or whitespace before a field line")),
    ("te_vertical_tab", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n", bad("control character in field value")),
    ("te_in_http10", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", bad("Transfer-Encoding in HTTP/1.0")),
    ("te_underscore_is_another_field", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent-Length: 2\r\n\r\nok", Length(2)),
    // The valid-looking-odd ones: OWS around the value and case do not matter.
    ("te_tab_value_valid", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", Chunked(b"abc")),
    ("te_extra_spaces_valid", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:   chunked  \r\n\r\n3\r\nabc\r\n0\r\n\r\n", Chunked(b"abc")),
    ("te_uppercase_valid", b"POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n", Chunked(b"abc")),
    ("chunk_ext_valid", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b;c;d=\"x\\\"y\"\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", Chunked(b"abc")),
    ("chunk_size_leading_zeros_valid", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000003\r\nabc\r\n0\r\n\r\n", Chunked(b"abc")),
    // Content-Length.
    ("cl_plus", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", bad("Content-Length is not 1*DIGIT")),
    ("cl_minus", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", bad("Content-Length is not 1*DIGIT")),
    ("cl_hex", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", bad("Content-Length is not 1*DIGIT")),
    ("cl_empty", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", bad("Content-Length is not 1*DIGIT")),
    ("cl_inner_space", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", bad("Content-Length is not 1*DIGIT")),
    ("cl_trailing_comma", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\nhello", bad("Content-Length is not 1*DIGIT")),
    ("cl_list_differs", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!", bad("differing Content-Length values")),
    ("cl_lines_differ", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", bad("differing Content-Length values")),
    ("cl_overflow", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", bad("Content-Length overflows")),
    ("cl_list_same_valid", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", Length(5)),
    ("cl_lines_same_valid", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello", Length(5)),
    ("cl_max_valid", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n", Length(u64::MAX)),
    // Host.
    ("host_twice", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", bad("more than one Host")),
    ("host_twice_http10", b"GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n", bad("more than one Host")),
    ("host_missing", b"GET / HTTP/1.1\r\nX: y\r\n\r\n", bad("HTTP/1.1 request without Host")),
    ("host_space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", bad("Host is not uri-host [:port]")),
    ("host_slash", b"GET / HTTP/1.1\r\nHost: evil.example/x\r\n\r\n", bad("Host is not uri-host [:port]")),
    ("host_userinfo", b"GET / HTTP/1.1\r\nHost: user@evil.example\r\n\r\n", bad("Host is not uri-host [:port]")),
    ("host_bad_port", b"GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", bad("Host is not uri-host [:port]")),
    ("host_ipv6_valid", b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", Length(0)),
    // Bytes that must never appear.
    ("nul_in_value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", bad("NUL in field value")),
    ("nul_in_name", b"GET / HTTP/1.1\r\nHost: a\r\nX\x00Y: 1\r\n\r\n", bad("NUL in field name")),
    ("nul_in_target", b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n", bad("request-target is empty or has control or non-ASCII bytes")),
    ("bare_cr_in_value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", bad("bare CR")),
    ("bare_cr_before_crlf", b"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", bad("bare CR")),
    ("bare_cr_as_terminator", b"GET / HTTP/1.1\rHost: a\r\n\r\n", bad("bare CR")),
    ("bare_lf_request_line", b"GET / HTTP/1.1\nHost: a\r\n\r\n", bad("bare LF as line terminator")),
    ("bare_lf_field_line", b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\n\r\n", bad("bare LF as line terminator")),
    ("bare_lf_end_of_head", b"GET / HTTP/1.1\r\nHost: a\r\n\n", bad("bare LF as line terminator")),
    ("space_before_colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", bad("whitespace between field name and colon")),
    ("field_name_not_token", b"GET / HTTP/1.1\r\nHost: a\r\nX(Y): 1\r\n\r\n", bad("field name is not a token")),
    ("field_without_colon", b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", bad("field line without colon")),
    ("empty_field_name", b"GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", bad("empty field name")),
    ("del_in_value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", bad("control character in field value")),
    // Request line.
    ("method_not_token", b"G(ET / HTTP/1.1\r\nHost: a\r\n\r\n", bad("method is not a token")),
    ("target_with_space", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", bad("malformed HTTP version")),
    ("target_with_control", b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", bad("request-target is empty or has control or non-ASCII bytes")),
    ("target_non_ascii", b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", bad("request-target is empty or has control or non-ASCII bytes")),
    ("double_space", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", bad("request-target is empty or has control or non-ASCII bytes")),
    ("tab_separator", b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", bad("request line is not method SP target SP version")),
    ("http09", b"GET /\r\n\r\n", bad("request line is not method SP target SP version")),
    ("version_2", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", HeadErr(H1Error::VersionNotSupported)),
    // Chunk syntax.
    ("chunk_size_0x", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", bad_chunk("chunk size is not hex")),
    ("chunk_ext_bad_quote", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext\"bad\r\nhello\r\n0\r\n\r\n", bad_chunk("bad chunk extension")),
    ("chunk_ext_unterminated_quote", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;e=\"x\r\nhello\r\n0\r\n\r\n", bad_chunk("bad quoted chunk extension value")),
    ("chunk_ext_empty_name", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n", bad_chunk("chunk extension name is not a token")),
    ("chunk_ext_empty_value", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;e=\r\nhello\r\n0\r\n\r\n", bad_chunk("chunk extension value is not a token")),
    ("chunk_size_negative", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", bad_chunk("chunk size is not hex")),
    ("chunk_size_overflow", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nhello\r\n0\r\n\r\n", bad_chunk("chunk size overflows u64")),
    ("chunk_size_huge", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nhello\r\n", BodyErr(H1Error::BodyTooLarge)),
    ("chunk_size_space", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", bad_chunk("chunk size is not hex")),
    ("chunk_size_empty", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n", bad_chunk("chunk size is not hex")),
    ("chunk_missing_crlf", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", bad_chunk("missing CRLF after chunk data")),
    ("chunk_data_longer", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n", bad_chunk("missing CRLF after chunk data")),
    ("chunk_bare_lf_size", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", bad_chunk("bare LF as line terminator")),
    ("chunk_bare_lf_after_data", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n", bad_chunk("missing CRLF after chunk data")),
    ("chunk_trailer_obs_fold", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n folded\r\n\r\n", bad_chunk("obs-fold or whitespace before a field line")),
    ("chunk_trailer_nul", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: \x00\r\n\r\n", bad_chunk("NUL in field value")),
];

/// What parsing `payload` as one request (and its body, if chunked) gives.
fn outcome(payload: &[u8]) -> Result<(BodyFraming, Vec<u8>), (bool, H1Error)> {
    let (head, consumed) = match parse_request(payload) {
        Ok(Parsed::Complete { head, consumed }) => (head, consumed),
        Ok(Parsed::Partial) => panic!("payload is incomplete"),
        Err(e) => return Err((false, e)),
    };
    if head.framing != BodyFraming::Chunked {
        return Ok((head.framing, Vec::new()));
    }
    // A 1 GiB request_max_body_size, as a pipeline would pass.
    let mut decoder = BodyDecoder::new(head.framing, 1 << 30).map_err(|e| (true, e))?;
    let mut rest = &payload[consumed..];
    let mut body = Vec::new();
    loop {
        let step = decoder.decode(rest).map_err(|e| (true, e))?;
        body.extend_from_slice(step.data);
        rest = &rest[step.consumed..];
        if step.done || step.needs_more() {
            return Ok((head.framing, body));
        }
    }
}

#[test]
fn smuggling_corpus_gets_its_exact_outcome() {
    assert!(CORPUS.len() >= 30);
    for (name, payload, expected) in CORPUS {
        let got = outcome(payload);
        match (expected, &got) {
            (Length(n), Ok((BodyFraming::ContentLength(m), _))) if n == m => {}
            (Length(0), Ok((BodyFraming::None, _))) => {}
            (Chunked(data), Ok((BodyFraming::Chunked, body))) if data == body => {}
            (HeadErr(e), Err((false, got))) if e == got => {}
            (BodyErr(e), Err((true, got))) if e == got => {}
            _ => panic!("{name}: expected {expected:?}, got {got:?}"),
        }
        if let HeadErr(e) | BodyErr(e) = expected {
            let status = e.status().as_u16();
            assert!([400, 413, 501, 505].contains(&status), "{name}: {status}");
        }
        check_request_invariants(payload);
    }
}

#[test]
fn smuggling_corpus_errors_are_400_unless_documented() {
    for (name, _, expected) in CORPUS {
        let status = match expected {
            HeadErr(e) | BodyErr(e) => e.status().as_u16(),
            _ => continue,
        };
        let documented = match *name {
            "te_gzip_chunked" => 501,
            "version_2" => 505,
            "chunk_size_huge" => 413,
            _ => 400,
        };
        assert_eq!(status, documented, "{name}");
    }
}

/// The payloads are in the fuzz corpus byte for byte (regenerate with
/// `cargo test --lib write_smuggling_corpus -- --ignored`).
#[test]
fn smuggling_corpus_is_in_the_fuzz_corpus() {
    for (name, payload, _) in CORPUS {
        let path = format!(
            "{}/fuzz/corpus/h1_request/smuggle_{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        // After changing CORPUS: `SLUICE_WRITE_CORPUS=1 cargo test smuggling` rewrites the files.
        if std::env::var_os("SLUICE_WRITE_CORPUS").is_some() {
            std::fs::write(&path, payload).unwrap();
        }
        let stored = std::fs::read(&path).unwrap_or_default();
        assert_eq!(
            stored, *payload,
            "{path} is missing or stale (see SLUICE_WRITE_CORPUS above)"
        );
    }
}
