//! First bytes of real protocols, built per their specs, for driving the multiplexer: a TLS
//! ClientHello with SNI and ALPN, an SSH banner, an HTTP request, a SOCKS5 greeting, a
//! PostgreSQL SSLRequest, a WireGuard handshake initiation. No IO.

fn u16be(n: usize) -> [u8; 2] {
    u16::try_from(n).expect("fits u16").to_be_bytes()
}

fn ext(kind: u16, body: &[u8]) -> Vec<u8> {
    let mut e = kind.to_be_bytes().to_vec();
    e.extend_from_slice(&u16be(body.len()));
    e.extend_from_slice(body);
    e
}

/// A TLS 1.3-style ClientHello in one record, with `sni` (if any) and `alpn` offered.
pub fn client_hello(sni: Option<&str>, alpn: &[&str]) -> Vec<u8> {
    let mut exts = Vec::new();
    if let Some(name) = sni {
        let mut entry = vec![0u8];
        entry.extend_from_slice(&u16be(name.len()));
        entry.extend_from_slice(name.as_bytes());
        let mut list = u16be(entry.len()).to_vec();
        list.extend_from_slice(&entry);
        exts.extend(ext(0x0000, &list));
    }
    if !alpn.is_empty() {
        let mut names = Vec::new();
        for a in alpn {
            names.push(u8::try_from(a.len()).unwrap());
            names.extend_from_slice(a.as_bytes());
        }
        let mut list = u16be(names.len()).to_vec();
        list.extend_from_slice(&names);
        exts.extend(ext(0x0010, &list));
    }
    exts.extend(ext(0x002b, &[2, 0x03, 0x04])); // supported_versions: TLS 1.3
    exts.extend(ext(0x000a, &[0, 2, 0x00, 0x1d])); // supported_groups: x25519
    let mut body = vec![0x03, 0x03];
    body.extend((0..32u8).map(|i| i.wrapping_mul(37)));
    body.push(0); // legacy session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // TLS_AES_128_GCM_SHA256
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&u16be(exts.len()));
    body.extend(exts);
    let mut hs = vec![0x01, 0];
    hs.extend_from_slice(&u16be(body.len()));
    hs.extend(body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&u16be(hs.len()));
    rec.extend(hs);
    rec
}

pub const SSH_BANNER: &[u8] = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";
pub const HTTP_GET: &[u8] =
    b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";
/// SOCKS5 greeting offering "no authentication" (what `curl --socks5` sends).
pub const SOCKS5_GREETING: &[u8] = &[0x05, 0x01, 0x00];
/// PostgreSQL SSLRequest: length 8, code 80877103.
pub const PG_SSL_REQUEST: &[u8] = &[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// A WireGuard handshake initiation: type 1, three reserved zeros, 144 more bytes.
pub fn wireguard_initiation(sender: u32) -> Vec<u8> {
    let mut p = vec![1, 0, 0, 0];
    p.extend_from_slice(&sender.to_le_bytes());
    p.extend((0..140u32).map(|i| (i * 7 + sender) as u8));
    assert_eq!(p.len(), 148);
    p
}
