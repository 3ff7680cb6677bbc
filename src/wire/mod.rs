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
    fn take_until_without_delimiter_is_truncated() {
        let mut r = Reader::new(b"GET / HTTP/1.1");
        assert_eq!(r.take_until(b'\n'), Err(WireError::Truncated));
        assert_eq!(r.len(), 14);
    }
}
