//! Game-defined payloads carried inside frames.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::DecodeError;
use crate::limits::MAX_GAME_VALUE;
use crate::msgpack::Reader;

/// One complete MessagePack value whose meaning belongs to the game: an
/// intent, join options, or a replicated component's value.
///
/// The frame layer only checks that it is a single well-formed value within
/// the size and depth limits; the game decodes it into its own serde type
/// with [`RawValue::decode`]. Games encode their types with `rmp-serde`'s
/// compact form (structs as arrays), which is what [`RawValue::encode`] does.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RawValue(Bytes);

/// A game payload that could not be encoded or decoded as its serde type.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("payload does not match the expected type: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    #[error("payload could not be encoded: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    #[error("payload is {len} bytes, more than {max}")]
    TooLarge { len: usize, max: usize },
    #[error("payload is not one well-formed MessagePack value: {0}")]
    Malformed(#[from] DecodeError),
}

impl RawValue {
    /// The MessagePack `nil` value, used where a payload is absent.
    pub fn nil() -> Self {
        Self(Bytes::from_static(&[0xc0]))
    }

    /// Encodes `value` in compact form (structs as arrays).
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Self, PayloadError> {
        let bytes = rmp_serde::to_vec(value)?;
        if bytes.len() > MAX_GAME_VALUE {
            return Err(PayloadError::TooLarge {
                len: bytes.len(),
                max: MAX_GAME_VALUE,
            });
        }
        Ok(Self(Bytes::from(bytes)))
    }

    /// Decodes the payload as the game's type `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        Ok(rmp_serde::from_slice(&self.0)?)
    }

    /// Wraps bytes after checking they hold exactly one value within limits.
    pub fn from_bytes(bytes: Bytes) -> Result<Self, PayloadError> {
        if bytes.len() > MAX_GAME_VALUE {
            return Err(PayloadError::TooLarge {
                len: bytes.len(),
                max: MAX_GAME_VALUE,
            });
        }
        let mut reader = Reader::new(&bytes);
        reader.value_span()?;
        reader.finish()?;
        Ok(Self(bytes))
    }

    /// Wraps bytes the frame decoder has already checked.
    pub(crate) fn from_checked(bytes: Bytes) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_nil(&self) -> bool {
        self.0.as_ref() == [0xc0]
    }
}

impl std::fmt::Debug for RawValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawValue(")?;
        for b in self.0.iter() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl Default for RawValue {
    fn default() -> Self {
        Self::nil()
    }
}

/// Reads one game value from `reader`, slicing it out of `frame` without a copy.
pub(crate) fn read_raw(reader: &mut Reader<'_>, frame: &Bytes) -> Result<RawValue, DecodeError> {
    let span = reader.value_span()?;
    let len = span.len();
    if len > MAX_GAME_VALUE {
        return Err(DecodeError::TooLong {
            field: "game value",
            len,
            max: MAX_GAME_VALUE,
        });
    }
    Ok(RawValue::from_checked(frame.slice(span)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Intent {
        dx: i8,
        dy: i8,
    }

    #[test]
    fn structs_encode_as_arrays() {
        let raw = RawValue::encode(&Intent { dx: 1, dy: -1 }).expect("encodes");
        assert_eq!(raw.as_bytes(), [0x92, 0x01, 0xff]);
        assert_eq!(
            raw.decode::<Intent>().expect("decodes"),
            Intent { dx: 1, dy: -1 }
        );
    }

    #[test]
    fn from_bytes_refuses_two_values() {
        assert!(RawValue::from_bytes(Bytes::from_static(&[0x01, 0x02])).is_err());
        assert!(RawValue::from_bytes(Bytes::from_static(&[0x01])).is_ok());
    }
}
