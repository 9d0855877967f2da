//! `coins`: players walk a 1024 x 1024 field and collect coins that lie at
//! seeded random places; each coin collected adds its value to the
//! player's score, and a new coin appears elsewhere.
//!
//! The model for writing a game on Tessera (`docs/GAME_GUIDE.md` builds it
//! step by step), written on the public API of `tessera-sim` alone:
//!
//! - [`schema`]: what clients need (wire components, intent, action,
//!   event); it depends on `tessera-protocol` only.
//! - `Coins`: the game (feature `game`, on by default). Coins are
//!   retained (`tessera_sim::Retained`): a player keeps knowing a coin it
//!   has seen after walking away from it. Collecting is an action, and the answer
//!   ("you scored") is a game event to the collector.

pub mod schema;

#[cfg(feature = "game")]
mod game;

#[cfg(feature = "game")]
pub use game::{Coins, Place, Points, Worth};
