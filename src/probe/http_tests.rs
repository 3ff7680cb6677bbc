//! Tests of the HTTP probe with curl 7.88's requests and h2c preface.
#![allow(clippy::indexing_slicing)]

use super::{METHODS, probe};
use crate::plan::Protocol;
use crate::probe::openvpn::tests::decided_at;
use crate::probe::{Detected, Probe};

const CURL_GET: &[u8] = include_bytes!("testdata/http_curl_get.bin");
const CURL_POST: &[u8] = include_bytes!("testdata/http_curl_post_form.bin");
const CURL_H2_PRIOR_KNOWLEDGE: &[u8] = include_bytes!("testdata/http_curl_h2_prior_knowledge.bin");

fn http() -> Probe {
    Probe::Match(Detected::bare(Protocol::Http))
}

#[test]
fn curl_get_matches_at_the_space_after_the_method() {
    assert_eq!(decided_at(probe, CURL_GET), (4, http()));
}

#[test]
fn curl_post_matches_at_the_space_after_the_method() {
    assert_eq!(decided_at(probe, CURL_POST), (5, http()));
}

#[test]
fn curl_h2_prior_knowledge_matches_with_alpn_h2_after_the_whole_preface() {
    let h2c = Probe::Match(Detected {
        alpn: vec!["h2".into()],
        ..Detected::bare(Protocol::Http)
    });
    assert_eq!(decided_at(probe, CURL_H2_PRIOR_KNOWLEDGE), (24, h2c));
}

#[test]
fn every_listed_method_decides_at_its_space() {
    for method in METHODS {
        let request = [method, &b"/ HTTP/1.1\r\n"[..]].concat();
        assert_eq!(
            decided_at(probe, &request),
            (method.len(), http()),
            "{method:?}"
        );
    }
}

#[test]
fn connect_and_absolute_form_requests_match() {
    assert_eq!(probe(b"CONNECT example.com:443 HTTP/1.1\r\n"), http());
    assert_eq!(probe(b"GET http://example.com/ HTTP/1.1\r\n"), http());
    assert_eq!(probe(b"OPTIONS * HTTP/1.1\r\n"), http());
}

#[test]
fn pri_that_is_not_the_whole_preface_is_no_match() {
    assert_eq!(
        decided_at(probe, b"PRI * HTTP/1.1\r\n\r\n"),
        (12, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe, b"PRI / HTTP/1.1\r\n"),
        (5, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe, b"PRI * HTTP/2.0\r\n\r\nXX"),
        (19, Probe::NoMatch)
    );
}

#[test]
fn unknown_or_lowercase_methods_are_no_match_at_the_first_odd_byte() {
    assert_eq!(
        decided_at(probe, b"get / HTTP/1.1\r\n"),
        (1, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe, b"GETS / HTTP/1.1\r\n"),
        (4, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe, b"GET\t/ HTTP/1.1\r\n"),
        (4, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe, b"BREW /pot HTCPCP/1.0\r\n"),
        (2, Probe::NoMatch)
    );
    assert_eq!(
        decided_at(probe, b"\r\nGET / HTTP/1.1\r\n"),
        (1, Probe::NoMatch)
    );
}

#[test]
fn ssh_banner_is_no_match_although_it_is_a_token_and_a_space() {
    let banner = include_bytes!("testdata/ssh_openssh_9_2.bin");
    assert_eq!(decided_at(probe, banner), (2, Probe::NoMatch));
}

#[test]
fn shared_method_prefixes_need_more() {
    for prefix in [
        &b""[..],
        b"P",
        b"PR",
        b"PRO",
        b"M",
        b"UN",
        b"CHECK",
        b"PRI * HTTP/2.0\r\n",
    ] {
        assert_eq!(probe(prefix), Probe::NeedMore, "{prefix:?}");
    }
}
