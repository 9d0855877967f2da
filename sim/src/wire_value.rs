//! Storage for a component's last encoded wire value.

/// Values up to this many bytes live inline (positions, small enums, short
/// names): every entity's values then sit side by side in one array, and
/// building an entry reads contiguous memory instead of one heap block per
/// value.
const INLINE: usize = 22;

#[derive(Debug, Clone)]
pub(crate) enum WireValue {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl Default for WireValue {
    fn default() -> Self {
        Self::Inline {
            len: 0,
            bytes: [0; INLINE],
        }
    }
}

impl WireValue {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Heap(v) => v,
        }
    }

    pub(crate) fn set(&mut self, value: &[u8]) {
        if value.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..value.len()].copy_from_slice(value);
            *self = Self::Inline {
                len: value.len() as u8,
                bytes,
            };
        } else if let Self::Heap(v) = self {
            v.clear();
            v.extend_from_slice(value);
        } else {
            *self = Self::Heap(value.to_vec());
        }
    }

    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_inline_long_ones_on_the_heap() {
        let mut v = WireValue::default();
        assert_eq!(v.as_slice(), b"");
        v.set(b"abc");
        assert!(matches!(v, WireValue::Inline { len: 3, .. }));
        assert_eq!(v.as_slice(), b"abc");
        let long = vec![7u8; 100];
        v.set(&long);
        assert_eq!(v.as_slice(), long.as_slice());
        v.set(&[1; 23]);
        assert_eq!(v.as_slice(), [1; 23]);
        v.set(b"x");
        assert_eq!(v.as_slice(), b"x");
        v.clear();
        assert_eq!(v.as_slice(), b"");
    }
}
