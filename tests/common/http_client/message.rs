//! HTTP/1.1 messages as the tests see them: request bytes, a parsed response, and the echo
//! an [`HttpBackend`](super::super::http_backend::HttpBackend) answers with. No IO.

use super::super::http_backend::find_header;

/// A request's bytes: `METHOD TARGET HTTP/1.1`, `Host`, the extra header lines, a
/// `Content-Length` when `body` is not empty, then the body.
pub fn request_bytes(
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A response status line and header fields.
#[derive(Clone, Debug)]
pub struct ResponseHead {
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// Header fields in order; names as sent.
    pub headers: Vec<(String, String)>,
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether a header's comma-separated values include `token` (any case).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.header_all(name)
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    pub(super) fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().trim_end().ends_with("chunked"))
    }

    pub(super) fn content_length(&self) -> Option<u64> {
        self.header("content-length").map(|v| {
            v.trim()
                .parse()
                .unwrap_or_else(|_| panic!("numeric Content-Length in response: {v:?}"))
        })
    }
}

/// A whole response: its head, decoded body, and the statuses of 1xx responses before it.
#[derive(Clone, Debug)]
pub struct Response {
    pub head: ResponseHead,
    pub body: Vec<u8>,
    pub interim: Vec<u16>,
    /// Trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.head.status
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.head.header_all(name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `x-backend` header (which backend answered); panics without one.
    pub fn backend(&self) -> String {
        self.header("x-backend")
            .unwrap_or_else(|| panic!("no x-backend in response: {self:?}"))
            .to_owned()
    }

    /// The backend's echo of the request; panics if the body is not one.
    pub fn echo(&self) -> Echo {
        Echo::parse(&self.text())
    }
}

/// What an [`HttpBackend`](super::http_backend::HttpBackend) said it received.
#[derive(Clone, Debug)]
pub struct Echo {
    pub backend: String,
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body_len: u64,
    pub body_sha256: String,
}

impl Echo {
    pub fn parse(text: &str) -> Echo {
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        let mut words = first.splitn(3, ' ');
        let (Some(backend), Some(method), Some(target)) =
            (words.next(), words.next(), words.next())
        else {
            panic!("not a backend echo: {text:?}");
        };
        let mut headers = Vec::new();
        let (mut body_len, mut body_sha256) = (None, None);
        for line in lines {
            let (k, v) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("bad echo line {line:?} in {text:?}"));
            match k {
                "body-len" => body_len = v.parse().ok(),
                "body-sha256" => body_sha256 = Some(v.to_owned()),
                _ => headers.push((k.to_owned(), v.to_owned())),
            }
        }
        Echo {
            backend: backend.to_owned(),
            method: method.to_owned(),
            target: target.to_owned(),
            headers,
            body_len: body_len.unwrap_or_else(|| panic!("no body-len in echo {text:?}")),
            body_sha256: body_sha256.unwrap_or_else(|| panic!("no body-sha256 in echo {text:?}")),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}
