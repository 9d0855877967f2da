//! Games that ship with Tessera.

pub mod arena;

use std::sync::Arc;

use crate::game::Game;

/// The built-in games, by name.
pub fn builtin() -> Vec<Arc<dyn Game>> {
    vec![Arc::new(arena::Arena)]
}
