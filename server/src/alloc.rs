//! The allocator a node runs on.
//!
//! Rooms open and close in bursts, and a node must give their memory back:
//! with glibc's malloc, 200 rooms opened and closed left 56 of their 62 MB
//! resident (`tests/room_memory.rs`). jemalloc returns freed pages, and its
//! background thread purges them within about a second instead of waiting
//! for the next allocation.

pub use tikv_jemallocator::Jemalloc;

/// jemalloc's options: purge freed pages after a second, from a thread of
/// its own.
#[doc(hidden)]
pub const CONF_LEN: usize = 63;

/// Makes jemalloc, tuned as above, the global allocator of the binary it is
/// written in. Its options travel in the one exported symbol jemalloc reads
/// at start: a static C string, never written, which is why this is the
/// workspace's only `unsafe(...)` attribute (the `unsafe_code` lint does
/// not look inside another crate's macro). The `tessera` binary does; so should a game's own `main`:
///
/// ```ignore
/// tessera_server::use_node_allocator!();
/// ```
#[macro_export]
macro_rules! use_node_allocator {
    () => {
        #[global_allocator]
        static GLOBAL_ALLOCATOR: $crate::alloc::Jemalloc = $crate::alloc::Jemalloc;

        /// Read by jemalloc at start (a C string).
        #[unsafe(export_name = "_rjem_malloc_conf")]
        static JEMALLOC_CONF: &[u8; $crate::alloc::CONF_LEN] =
            b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:1000\0";
    };
}
