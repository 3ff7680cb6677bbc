//! The one cursor every hand-written parser reads through: it only ever shrinks a borrowed
//! slice, so short or hostile input cannot index out of bounds. No IO.

/// Why a parser stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// More bytes are needed to decide (read more, then parse again).
    Truncated,
    /// The bytes can never become valid; the context says what was wrong.
    Invalid(&'static str),
}

/// The range a big-endian unsigned integer can still take given its leading bytes (see
/// [`Reader::uint_prefix`]); `min == max` once every byte is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UintPrefix {
    pub min: u64,
    pub max: u64,
}

impl UintPrefix {
    /// The value, once every byte has arrived.
    pub fn exact(self) -> Option<u64> {
        (self.min == self.max).then_some(self.min)
    }

    /// Whether the value can still turn out to lie in `range`.
    pub fn may_be_in(self, range: std::ops::RangeInclusive<u64>) -> bool {
        self.min <= *range.end() && self.max >= *range.start()
    }
}

/// A read cursor over a borrowed byte slice.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    /// Bytes not consumed yet.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rest.len()
    }

    /// The next `n` bytes.
    ///
    /// # Errors
    /// `Truncated` when fewer than `n` remain.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.rest.len() {
            return Err(WireError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    ///
    /// # Errors
    /// `Truncated` when fewer than `N` remain.
    pub fn take_array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(u8::from_be_bytes(self.take_array()?))
    }

    pub fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.take_array()?))
    }

    /// A 24-bit big-endian length (TLS handshake messages).
    ///
    /// # Errors
    /// `Truncated` when fewer than 3 bytes remain.
    pub fn u24(&mut self) -> Result<u32, WireError> {
        let [a, b, c] = self.take_array()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.take_array()?))
    }

    /// A QUIC variable-length integer (RFC 9000 §16): the first byte's top two bits give
    /// the length (1, 2, 4 or 8 bytes), the rest is big-endian; at most 2^62 - 1.
    /// Non-minimal encodings are accepted, as the RFC allows outside frame types.
    ///
    /// # Errors
    /// `Truncated` when the encoding runs past the end (nothing is consumed then).
    pub fn quic_varint(&mut self) -> Result<u64, WireError> {
        let mut r = *self;
        let first = r.u8()?;
        let tail = r.take((1usize << (first >> 6)) - 1)?;
        let value = tail
            .iter()
            .fold(u64::from(first & 0x3f), |v, &b| (v << 8) | u64::from(b));
        *self = r;
        Ok(value)
    }

    /// A sub-reader over the next `len` bytes (a length-prefixed body).
    ///
    /// # Errors
    /// `Truncated` when fewer than `len` remain.
    pub fn sub(&mut self, len: usize) -> Result<Reader<'a>, WireError> {
        self.take(len).map(Reader::new)
    }

    /// Bytes up to (not including) the first `delim`, consuming the delimiter too.
    ///
    /// # Errors
    /// `Truncated` when `delim` does not occur.
    pub fn take_until(&mut self, delim: u8) -> Result<&'a [u8], WireError> {
        let at = self
            .rest
            .iter()
            .position(|&b| b == delim)
            .ok_or(WireError::Truncated)?;
        let head = self.take(at)?;
        self.take(1)?;
        Ok(head)
    }

    /// Like [`Reader::take_until`], but `delim` must lie within the next `limit` bytes, so a
    /// line-oriented parser can bound how long it waits for a line to end.
    ///
    /// # Errors
    /// `Truncated` when `delim` is absent and fewer than `limit` bytes are present;
    /// `Invalid(context)` when `limit` bytes are present without `delim`. Nothing is
    /// consumed on error.
    pub fn take_until_within(
        &mut self,
        delim: u8,
        limit: usize,
        context: &'static str,
    ) -> Result<&'a [u8], WireError> {
        let window = self.rest.get(..limit).unwrap_or(self.rest);
        match window.iter().position(|&b| b == delim) {
            Some(at) => {
                let head = self.take(at)?;
                self.take(1)?;
                Ok(head)
            }
            None if self.rest.len() >= limit => Err(WireError::Invalid(context)),
            None => Err(WireError::Truncated),
        }
    }

    /// The longest run of leading bytes for which `keep` holds (possibly empty); stops at
    /// the first byte that fails it, or at the end.
    pub fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a [u8] {
        let at = self
            .rest
            .iter()
            .position(|&b| !keep(b))
            .unwrap_or(self.rest.len());
        let (head, tail) = self.rest.split_at(at);
        self.rest = tail;
        head
    }

    /// Consumes `literal` when the input starts with it.
    ///
    /// # Errors
    /// `Truncated` when the input so far is a proper prefix of `literal` (more bytes could
    /// still complete it); `Invalid(context)` as soon as a byte differs. Nothing is consumed
    /// on error.
    pub fn expect(&mut self, literal: &[u8], context: &'static str) -> Result<(), WireError> {
        if let Some(tail) = self.rest.strip_prefix(literal) {
            self.rest = tail;
            Ok(())
        } else if literal.starts_with(self.rest) {
            Err(WireError::Truncated)
        } else {
            Err(WireError::Invalid(context))
        }
    }

    /// What the bytes present say about the next `N`-byte big-endian unsigned integer
    /// (`N` ≤ 8), consuming them: missing low bytes count as 0x00 for `min` and 0xff for
    /// `max`, so a probe can reject a length or magic number on its first byte.
    pub fn uint_prefix<const N: usize>(&mut self) -> UintPrefix {
        const { assert!(N <= 8, "uint_prefix reads at most 8 bytes") };
        let present = self.take(N.min(self.rest.len())).unwrap_or_default();
        let (mut min, mut max) = (0u64, 0u64);
        for i in 0..N {
            let byte = present.get(i).copied();
            min = (min << 8) | u64::from(byte.unwrap_or(0x00));
            max = (max << 8) | u64::from(byte.unwrap_or(0xff));
        }
        UintPrefix { min, max }
    }

    /// Succeeds only when everything was consumed.
    ///
    /// # Errors
    /// `Invalid(context)` when bytes remain.
    pub fn finish(&self, context: &'static str) -> Result<(), WireError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(WireError::Invalid(context))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_never_reads_past_the_end() {
        let mut r = Reader::new(b"abc");
        assert_eq!(r.take(2), Ok(&b"ab"[..]));
        assert_eq!(r.take(2), Err(WireError::Truncated));
        assert_eq!(r.rest(), b"c");
        assert_eq!(r.u8(), Ok(b'c'));
        assert_eq!(r.u8(), Err(WireError::Truncated));
        assert_eq!(r.finish("x"), Ok(()));
    }

    #[test]
    fn sub_and_u16_read_length_prefixed_bodies() {
        let mut r = Reader::new(&[0, 3, b'x', b'y', b'z', 9]);
        let len = r.u16().unwrap();
        let mut body = r.sub(usize::from(len)).unwrap();
        assert_eq!(body.take_until(b'y'), Ok(&b"x"[..]));
        assert_eq!(body.rest(), b"z");
        assert_eq!(r.finish("trailing"), Err(WireError::Invalid("trailing")));
        assert_eq!(
            Reader::new(&[0, 9, 1]).sub(9).err(),
            Some(WireError::Truncated)
        );
    }

    #[test]
    fn u24_reads_three_bytes_big_endian() {
        let mut r = Reader::new(&[0x01, 0x02, 0x03, 0xff, 0xff]);
        assert_eq!(r.u24(), Ok(0x01_0203));
        assert_eq!(r.u24(), Err(WireError::Truncated));
        assert_eq!(r.len(), 2, "a short read consumes nothing");
        assert_eq!(Reader::new(&[0xff; 3]).u24(), Ok(0xff_ffff));
    }

    #[test]
    fn take_while_stops_at_the_first_rejected_byte() {
        let mut r = Reader::new(b"123 45");
        assert_eq!(r.take_while(|b| b.is_ascii_digit()), b"123");
        assert_eq!(r.take_while(|b| b.is_ascii_digit()), b"");
        assert_eq!(r.u8(), Ok(b' '));
        assert_eq!(r.take_while(|b| b.is_ascii_digit()), b"45");
        assert!(r.is_empty());
        assert_eq!(r.take_while(|_| true), b"");
    }

    #[test]
    fn quic_varint_decodes_the_rfc_9000_examples() {
        // RFC 9000 Appendix A.1, plus the largest value and a short read.
        let cases: &[(&[u8], u64)] = &[
            (
                &[0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c],
                151_288_809_941_952_652,
            ),
            (&[0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            (&[0x7b, 0xbd], 15_293),
            (&[0x25], 37),
            (&[0x40, 0x25], 37),
            (&[0xff; 8], (1 << 62) - 1),
        ];
        for (bytes, value) in cases {
            let mut r = Reader::new(bytes);
            assert_eq!(r.quic_varint(), Ok(*value), "{bytes:02x?}");
            assert!(r.is_empty());
        }
        let mut r = Reader::new(&[0x9d, 0x7f, 0x3e]);
        assert_eq!(r.quic_varint(), Err(WireError::Truncated));
        assert_eq!(r.len(), 3, "a short read consumes nothing");
    }

    #[test]
    fn u32_reads_four_bytes_big_endian() {
        let mut r = Reader::new(&[0x04, 0xd2, 0x16, 0x2f, 0x01]);
        assert_eq!(r.u32(), Ok(80_877_103));
        assert_eq!(r.u32(), Err(WireError::Truncated));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn expect_tells_a_short_prefix_from_a_mismatch() {
        let mut r = Reader::new(b"SSH-2.0-x");
        assert_eq!(r.expect(b"SSH-", "banner"), Ok(()));
        assert_eq!(
            r.expect(b"1.99-", "version"),
            Err(WireError::Invalid("version"))
        );
        assert_eq!(r.expect(b"2.0-", "version"), Ok(()));
        assert_eq!(r.rest(), b"x");
        let mut short = Reader::new(b"SS");
        assert_eq!(short.expect(b"SSH-", "banner"), Err(WireError::Truncated));
        assert_eq!(short.len(), 2, "nothing consumed on error");
        assert_eq!(Reader::new(b"").expect(b"", "empty"), Ok(()));
        assert_eq!(
            Reader::new(b"").expect(b"x", "x"),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn uint_prefix_bounds_a_partly_read_integer() {
        let mut r = Reader::new(&[0x00, 0x00, 0x01]);
        let len = r.uint_prefix::<4>();
        assert_eq!(
            len,
            UintPrefix {
                min: 0x100,
                max: 0x1ff
            }
        );
        assert!(len.may_be_in(8..=10_000));
        assert!(!len.may_be_in(0..=0xff));
        assert!(!len.may_be_in(0x200..=0x300));
        assert_eq!(len.exact(), None);
        assert!(r.is_empty());
        let none = r.uint_prefix::<2>();
        assert_eq!(
            none,
            UintPrefix {
                min: 0,
                max: 0xffff
            }
        );
        let mut full = Reader::new(&[0x12, 0x34, 0x56]);
        assert_eq!(full.uint_prefix::<2>().exact(), Some(0x1234));
        assert_eq!(full.rest(), &[0x56]);
        assert_eq!(
            Reader::new(&[0xff; 9]).uint_prefix::<8>().exact(),
            Some(u64::MAX)
        );
    }

    #[test]
    fn take_until_within_bounds_the_search() {
        let mut r = Reader::new(b"ab\ncd");
        assert_eq!(r.take_until_within(b'\n', 3, "long"), Ok(&b"ab"[..]));
        assert_eq!(
            r.take_until_within(b'\n', 3, "long"),
            Err(WireError::Truncated)
        );
        assert_eq!(
            r.take_until_within(b'\n', 2, "long"),
            Err(WireError::Invalid("long"))
        );
        assert_eq!(r.rest(), b"cd", "nothing consumed on error");
        assert_eq!(
            Reader::new(b"abc\n").take_until_within(b'\n', 3, "long"),
            Err(WireError::Invalid("long")),
            "the delimiter itself must fit in the limit"
        );
    }

    #[test]
    fn take_until_without_delimiter_is_truncated() {
        let mut r = Reader::new(b"GET / HTTP/1.1");
        assert_eq!(r.take_until(b'\n'), Err(WireError::Truncated));
        assert_eq!(r.len(), 14);
    }
}
