//! Minimal MessagePack primitives for the frame layer.
//!
//! Frames are hand-laid MessagePack so that the byte layout is exactly what
//! `PROTOCOL.md` documents and so that decoding is total: every read is
//! bounds-checked, lengths are checked against the bytes that remain before
//! anything is allocated, and nesting depth is capped. Game payloads inside a
//! frame (intents, component values, join options) are ordinary serde types
//! encoded with `rmp-serde`; see [`crate::RawValue`].

use rmp::Marker;

use crate::error::DecodeError;
use crate::limits::MAX_VALUE_DEPTH;

/// Appends MessagePack values to a byte vector, always in their smallest form.
#[derive(Debug)]
pub struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Writer<'a> {
    /// Writes into `out`, appending after whatever it already holds.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out }
    }

    /// The bytes written so far (including anything `out` held before).
    pub fn bytes(&self) -> &[u8] {
        self.out
    }

    pub fn array_len(&mut self, len: u32) {
        match len {
            0..=15 => self.out.push(0x90 | len as u8),
            16..=0xffff => {
                self.out.push(0xdc);
                self.out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                self.out.push(0xdd);
                self.out.extend_from_slice(&len.to_be_bytes());
            }
        }
    }

    pub fn uint(&mut self, value: u64) {
        match value {
            0..=0x7f => self.out.push(value as u8),
            0x80..=0xff => self.out.extend_from_slice(&[0xcc, value as u8]),
            0x100..=0xffff => {
                self.out.push(0xcd);
                self.out.extend_from_slice(&(value as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                self.out.push(0xce);
                self.out.extend_from_slice(&(value as u32).to_be_bytes());
            }
            _ => {
                self.out.push(0xcf);
                self.out.extend_from_slice(&value.to_be_bytes());
            }
        }
    }

    /// Writes a signed integer in its smallest encoding: non-negative
    /// values as [`Writer::uint`] does, −32…−1 as negative fixint, else the
    /// smallest of int8/16/32/64.
    pub fn int(&mut self, value: i64) {
        match value {
            0.. => self.uint(value as u64),
            -32..=-1 => self.out.push(value as i8 as u8),
            -128..=-33 => self.out.extend_from_slice(&[0xd0, value as i8 as u8]),
            -32_768..=-129 => {
                self.out.push(0xd1);
                self.out.extend_from_slice(&(value as i16).to_be_bytes());
            }
            -2_147_483_648..=-32_769 => {
                self.out.push(0xd2);
                self.out.extend_from_slice(&(value as i32).to_be_bytes());
            }
            _ => {
                self.out.push(0xd3);
                self.out.extend_from_slice(&value.to_be_bytes());
            }
        }
    }

    pub fn str(&mut self, value: &str) {
        let len = value.len();
        match len {
            0..=31 => self.out.push(0xa0 | len as u8),
            32..=0xff => self.out.extend_from_slice(&[0xd9, len as u8]),
            0x100..=0xffff => {
                self.out.push(0xda);
                self.out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                self.out.push(0xdb);
                self.out.extend_from_slice(&(len as u32).to_be_bytes());
            }
        }
        self.out.extend_from_slice(value.as_bytes());
    }

    pub fn nil(&mut self) {
        self.out.push(0xc0);
    }

    pub fn opt_str(&mut self, value: Option<&str>) {
        match value {
            Some(s) => self.str(s),
            None => self.nil(),
        }
    }

    /// Appends bytes that already hold complete MessagePack values.
    pub fn raw(&mut self, encoded: &[u8]) {
        self.out.extend_from_slice(encoded);
    }
}

/// Reads MessagePack values from a byte slice, never past its end.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Byte offset of the next unread byte.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes read since byte offset `start`.
    pub fn consumed_since(&self, start: usize) -> &'a [u8] {
        &self.buf[start.min(self.pos)..self.pos]
    }

    /// The bytes of `span` (as returned by [`Reader::value_span`]).
    pub fn slice(&self, span: std::ops::Range<usize>) -> &'a [u8] {
        self.buf.get(span).unwrap_or_default()
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails unless every byte has been consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes { extra }),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated { at: self.pos });
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn marker(&mut self) -> Result<Marker, DecodeError> {
        Ok(Marker::from_u8(self.take(1)?[0]))
    }

    fn peek_marker(&self) -> Result<Marker, DecodeError> {
        self.buf
            .get(self.pos)
            .map(|b| Marker::from_u8(*b))
            .ok_or(DecodeError::Truncated { at: self.pos })
    }

    fn unexpected(&self, expected: &'static str) -> DecodeError {
        DecodeError::UnexpectedType {
            expected,
            at: self.pos.saturating_sub(1),
        }
    }

    /// Reads an array header. The length is checked against the bytes left
    /// (every element takes at least one byte) so a lying header cannot make
    /// a caller reserve memory it will never fill.
    pub fn array_len(&mut self) -> Result<usize, DecodeError> {
        let len = match self.marker()? {
            Marker::FixArray(n) => usize::from(n),
            Marker::Array16 => self.be(2)? as usize,
            Marker::Array32 => self.be(4)? as usize,
            _ => return Err(self.unexpected("array")),
        };
        if len > self.remaining() {
            return Err(DecodeError::Truncated { at: self.pos });
        }
        Ok(len)
    }

    /// Reads an array header and requires exactly `expected` elements.
    pub fn array_exact(&mut self, expected: usize) -> Result<(), DecodeError> {
        let at = self.pos;
        let found = self.array_len()?;
        if found != expected {
            return Err(DecodeError::WrongArity {
                expected,
                found,
                at,
            });
        }
        Ok(())
    }

    /// Reads any non-negative integer, whatever width it was written in.
    pub fn uint(&mut self) -> Result<u64, DecodeError> {
        let value = self.integer("unsigned integer")?;
        u64::try_from(value).map_err(|_| DecodeError::OutOfRange {
            field: "unsigned integer",
        })
    }

    /// Reads any integer that fits `T` (for example an `i32`), whatever
    /// width and signedness it was written in.
    pub fn int_as<T: TryFrom<i128>>(&mut self, field: &'static str) -> Result<T, DecodeError> {
        T::try_from(self.integer("integer")?).map_err(|_| DecodeError::OutOfRange { field })
    }

    fn integer(&mut self, expected: &'static str) -> Result<i128, DecodeError> {
        Ok(match self.marker()? {
            Marker::FixPos(n) => i128::from(n),
            Marker::U8 => i128::from(self.be(1)?),
            Marker::U16 => i128::from(self.be(2)?),
            Marker::U32 => i128::from(self.be(4)?),
            Marker::U64 => i128::from(self.be(8)?),
            Marker::I8 => i128::from(self.be(1)? as u8 as i8),
            Marker::I16 => i128::from(self.be(2)? as u16 as i16),
            Marker::I32 => i128::from(self.be(4)? as u32 as i32),
            Marker::I64 => i128::from(self.be(8)? as i64),
            Marker::FixNeg(n) => i128::from(n),
            _ => return Err(self.unexpected(expected)),
        })
    }

    /// Reads an unsigned integer that must fit `T` (for example a `u16`).
    pub fn uint_as<T: TryFrom<u64>>(&mut self, field: &'static str) -> Result<T, DecodeError> {
        T::try_from(self.uint()?).map_err(|_| DecodeError::OutOfRange { field })
    }

    /// Reads a UTF-8 string of at most `max` bytes, borrowed from the input.
    pub fn str(&mut self, field: &'static str, max: usize) -> Result<&'a str, DecodeError> {
        let len = match self.marker()? {
            Marker::FixStr(n) => usize::from(n),
            Marker::Str8 => self.be(1)? as usize,
            Marker::Str16 => self.be(2)? as usize,
            Marker::Str32 => self.be(4)? as usize,
            _ => return Err(self.unexpected("string")),
        };
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    /// Reads a `nil` if one is next (true), else reads nothing (false).
    pub fn take_nil(&mut self) -> Result<bool, DecodeError> {
        if self.peek_marker()? == Marker::Null {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// Reads `nil` as `None`, otherwise a string as in [`Reader::str`].
    pub fn opt_str(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<Option<&'a str>, DecodeError> {
        if self.peek_marker()? == Marker::Null {
            self.pos += 1;
            return Ok(None);
        }
        self.str(field, max).map(Some)
    }

    /// Skips exactly one complete value of any type and returns the byte
    /// range it occupied. Nesting deeper than [`MAX_VALUE_DEPTH`] is refused.
    pub fn value_span(&mut self) -> Result<std::ops::Range<usize>, DecodeError> {
        let start = self.pos;
        // Number of values still to skip at each open nesting level.
        let mut pending: u64 = 1;
        let mut depth_stack: Vec<u64> = Vec::new();
        while pending > 0 || !depth_stack.is_empty() {
            if pending == 0 {
                pending = depth_stack.pop().unwrap_or(0);
                continue;
            }
            pending -= 1;
            let children = self.skip_scalar_or_header()?;
            if children > 0 {
                if depth_stack.len() >= MAX_VALUE_DEPTH {
                    return Err(DecodeError::TooDeep {
                        max: MAX_VALUE_DEPTH,
                    });
                }
                depth_stack.push(pending);
                pending = children;
            }
        }
        Ok(start..self.pos)
    }

    /// Consumes one marker with its payload; for arrays and maps returns how
    /// many child values follow (maps count keys and values).
    fn skip_scalar_or_header(&mut self) -> Result<u64, DecodeError> {
        let skip = |r: &mut Self, n: usize| r.take(n).map(|_| 0u64);
        match self.marker()? {
            Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
                Ok(0)
            }
            Marker::Reserved => Err(self.unexpected("a MessagePack value")),
            Marker::U8 | Marker::I8 => skip(self, 1),
            Marker::U16 | Marker::I16 => skip(self, 2),
            Marker::U32 | Marker::I32 | Marker::F32 => skip(self, 4),
            Marker::U64 | Marker::I64 | Marker::F64 => skip(self, 8),
            Marker::FixStr(n) => skip(self, usize::from(n)),
            Marker::Str8 | Marker::Bin8 => {
                let n = self.length(1)?;
                skip(self, n)
            }
            Marker::Str16 | Marker::Bin16 => {
                let n = self.length(2)?;
                skip(self, n)
            }
            Marker::Str32 | Marker::Bin32 => {
                let n = self.length(4)?;
                skip(self, n)
            }
            Marker::FixExt1 => skip(self, 2),
            Marker::FixExt2 => skip(self, 3),
            Marker::FixExt4 => skip(self, 5),
            Marker::FixExt8 => skip(self, 9),
            Marker::FixExt16 => skip(self, 17),
            // The type byte follows the length, then the data.
            Marker::Ext8 => {
                let n = self.ext_length(1)?;
                skip(self, n)
            }
            Marker::Ext16 => {
                let n = self.ext_length(2)?;
                skip(self, n)
            }
            Marker::Ext32 => {
                let n = self.ext_length(4)?;
                skip(self, n)
            }
            Marker::FixArray(n) => Ok(u64::from(n)),
            Marker::Array16 => self.children(2, 1),
            Marker::Array32 => self.children(4, 1),
            Marker::FixMap(n) => Ok(u64::from(n) * 2),
            Marker::Map16 => self.children(2, 2),
            Marker::Map32 => self.children(4, 2),
        }
    }

    /// Reads a `width`-byte length. A length that does not fit `usize` (a
    /// 32-bit length on a 16-bit target) cannot fit the input either.
    fn length(&mut self, width: usize) -> Result<usize, DecodeError> {
        let n = self.be(width)?;
        usize::try_from(n).map_err(|_| DecodeError::Truncated { at: self.pos })
    }

    /// An ext header's length plus its type byte, without overflow on
    /// targets where `usize` is 32 bits wide (`u32::MAX + 1`).
    fn ext_length(&mut self, width: usize) -> Result<usize, DecodeError> {
        let n = self.length(width)?;
        n.checked_add(1)
            .ok_or(DecodeError::Truncated { at: self.pos })
    }

    fn children(&mut self, width: usize, per_entry: u64) -> Result<u64, DecodeError> {
        let n = self.be(width)? * per_entry;
        if n > self.remaining() as u64 {
            return Err(DecodeError::Truncated { at: self.pos });
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip_uint(v: u64) {
        let mut buf = Vec::new();
        Writer::new(&mut buf).uint(v);
        let mut r = Reader::new(&buf);
        assert_eq!(r.uint(), Ok(v));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn uints_roundtrip_at_every_width_boundary() {
        for v in [
            0,
            127,
            128,
            255,
            256,
            65535,
            65536,
            u32::MAX as u64,
            u64::MAX,
        ] {
            roundtrip_uint(v);
        }
    }

    #[test]
    fn uint_widths_are_minimal() {
        let len = |v| {
            let mut buf = Vec::new();
            Writer::new(&mut buf).uint(v);
            buf.len()
        };
        assert_eq!([len(5), len(200), len(60000), len(70000)], [1, 2, 3, 5]);
    }

    #[test]
    fn negative_integer_is_out_of_range_for_uint() {
        assert!(matches!(
            Reader::new(&[0xff]).uint(),
            Err(DecodeError::OutOfRange { .. })
        ));
    }

    #[test]
    fn lying_array_header_is_truncated_not_allocated() {
        let frame = [0xdd, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(matches!(
            Reader::new(&frame).array_len(),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn value_span_skips_nested_values() {
        // [1, {"a": [nil, true]}, "xy"] followed by one extra byte.
        let bytes = [
            0x93, 0x01, 0x81, 0xa1, b'a', 0x92, 0xc0, 0xc3, 0xa2, b'x', b'y', 0x07,
        ];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.value_span(), Ok(0..11));
        assert_eq!(r.uint(), Ok(7));
    }

    #[test]
    fn value_span_refuses_deep_nesting() {
        let bytes = vec![0x91; MAX_VALUE_DEPTH + 2];
        let mut r = Reader::new(&bytes);
        assert!(matches!(
            r.value_span(),
            Err(DecodeError::TooDeep { .. } | DecodeError::Truncated { .. })
        ));
        let mut deep = vec![0x91; MAX_VALUE_DEPTH + 2];
        deep.push(0xc0);
        assert!(matches!(
            Reader::new(&deep).value_span(),
            Err(DecodeError::TooDeep { .. })
        ));
    }

    #[test]
    fn ext_lengths_at_the_maximum_are_truncated() {
        // ext8, ext16 and ext32 headers with the largest length, then a type
        // byte and one data byte.
        for frame in [
            &[0xc7, 0xff, 0x01, 0x00][..],
            &[0xc8, 0xff, 0xff, 0x01, 0x00],
            &[0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00],
        ] {
            assert!(
                matches!(
                    Reader::new(frame).value_span(),
                    Err(DecodeError::Truncated { .. })
                ),
                "{frame:02x?}"
            );
        }
        // The type byte counts: ext8 of 1 data byte is 3 bytes after the marker.
        let mut r = Reader::new(&[0xc7, 0x01, 0x05, 0xaa, 0x07]);
        assert_eq!(r.value_span(), Ok(0..4));
        assert_eq!(r.uint(), Ok(7));
    }
}
