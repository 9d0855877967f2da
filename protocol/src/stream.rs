//! Framing on byte streams (the QUIC control stream): each message is a
//! 4-byte big-endian length, then that many bytes holding one frame.
//!
//! A receiver reads the prefix, checks the length against the direction's
//! limit ([`crate::limits::MAX_CLIENT_FRAME`] or
//! [`crate::limits::MAX_SERVER_FRAME`]) before it reads or allocates
//! anything, then reads the frame and decodes it as usual. A zero length is
//! an empty frame (`malformed` when decoded).

use crate::error::DecodeError;

/// Bytes of the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// The prefix announcing a frame of `len` bytes.
///
/// # Panics
/// Never for frames within the protocol's limits; a length over
/// `u32::MAX` is clamped (and then refused by every receiver).
pub fn length_prefix(len: usize) -> [u8; LENGTH_PREFIX] {
    u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes()
}

/// Appends `frame` with its length prefix to `out`.
pub fn write_frame(out: &mut Vec<u8>, frame: &[u8]) {
    out.extend_from_slice(&length_prefix(frame.len()));
    out.extend_from_slice(frame);
}

/// The frame length a prefix announces, refused when it is over `max`.
pub fn frame_length(prefix: [u8; LENGTH_PREFIX], max: usize) -> Result<usize, DecodeError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(DecodeError::FrameTooLarge { len, max });
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_roundtrips_and_is_checked_before_reading() {
        let mut out = Vec::new();
        write_frame(&mut out, &[0x91, 0x04]);
        assert_eq!(out, [0, 0, 0, 2, 0x91, 0x04]);
        assert_eq!(frame_length([0, 0, 0, 2], 4096), Ok(2));
        assert_eq!(
            frame_length([0, 0, 0x10, 0x01], 4096),
            Err(DecodeError::FrameTooLarge {
                len: 4097,
                max: 4096
            })
        );
        assert_eq!(frame_length([0xff; 4], usize::MAX), Ok(u32::MAX as usize));
    }
}
