//! The envelope every frame shares, in both directions: the size check, the
//! top-level array header and the tag, and the arity rule.
//!
//! Arity is "at least": a receiver requires the elements this version knows
//! and skips any that follow, so later versions can append fields without
//! breaking older peers. A sender of this version writes exactly the
//! elements it knows. Skipped elements must still be well-formed values
//! within [`crate::limits::MAX_VALUE_DEPTH`].

use crate::error::DecodeError;
use crate::msgpack::Reader;

/// The top-level array header and tag of a frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    /// The message tag, the array's first element.
    pub tag: u64,
    /// Elements in the top-level array, the tag included.
    pub len: usize,
}

/// Checks the frame's size and reads its array header and tag. Returns the
/// reader positioned after the tag.
pub(crate) fn open(frame: &[u8], max: usize) -> Result<(Reader<'_>, Header), DecodeError> {
    if frame.len() > max {
        return Err(DecodeError::FrameTooLarge {
            len: frame.len(),
            max,
        });
    }
    if frame.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mut r = Reader::new(frame);
    let len = r.array_len()?;
    if len == 0 {
        return Err(DecodeError::WrongArity {
            expected: 1,
            found: 0,
            at: 0,
        });
    }
    let tag = r.uint()?;
    Ok((r, Header { tag, len }))
}

impl Header {
    /// Requires at least `known` elements (the tag included).
    pub fn require(&self, known: usize) -> Result<(), DecodeError> {
        if self.len < known {
            return Err(DecodeError::WrongArity {
                expected: known,
                found: self.len,
                at: 0,
            });
        }
        Ok(())
    }

    /// Skips the elements after the first `known` (fields a later version
    /// appended), then requires the end of the frame.
    pub fn finish(&self, r: &mut Reader<'_>, known: usize) -> Result<(), DecodeError> {
        for _ in known..self.len {
            r.value_span()?;
        }
        r.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_elements_are_skipped_and_missing_ones_refused() {
        // [4, 5, [nil], "x"]: a 2-element message with two appended values.
        let frame = [0x94, 0x04, 0x05, 0x91, 0xc0, 0xa1, b'x'];
        let (mut r, head) = open(&frame, 64).expect("opens");
        assert_eq!(head.tag, 4);
        assert_eq!(head.require(2), Ok(()));
        assert_eq!(r.uint(), Ok(5));
        assert_eq!(head.finish(&mut r, 2), Ok(()));
        assert!(matches!(
            head.require(5),
            Err(DecodeError::WrongArity {
                expected: 5,
                found: 4,
                ..
            })
        ));
    }

    #[test]
    fn skipped_elements_must_be_well_formed() {
        // [4, 5, c1]: the appended element is the reserved marker.
        let frame = [0x93, 0x04, 0x05, 0xc1];
        let (mut r, head) = open(&frame, 64).expect("opens");
        assert_eq!(r.uint(), Ok(5));
        assert!(matches!(
            head.finish(&mut r, 2),
            Err(DecodeError::UnexpectedType { .. })
        ));
    }
}
