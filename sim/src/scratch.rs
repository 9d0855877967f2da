//! Scratch buffers of the tick, reused across clients and ticks: grown to
//! the largest need seen and never shrunk, so that filling one again costs
//! neither an allocation nor zeroing.

/// Makes `buffer` at least `len` long (new elements are `T::default()`).
pub(crate) fn grow_to<T: Clone + Default>(buffer: &mut Vec<T>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, T::default());
    }
}
