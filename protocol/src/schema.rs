//! A game's schema, as client and server each know it: the game's name and
//! a fingerprint of its replicated components. A client sends the one it
//! was built for in `Hello`, so that a client of another game (or of
//! another version of its schema) is refused at the handshake instead of
//! misreading every delta (PROTOCOL.md §4.1).

use crate::wire::WireComponent;

/// The game a client or a server speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GameSchema {
    /// The game's name (`Game::name` on the server), at most
    /// [`crate::limits::MAX_GAME_NAME`] bytes.
    pub game: String,
    /// [`fingerprint`] of its replicated components.
    pub fingerprint: u64,
}

impl GameSchema {
    /// The schema of `game` replicating `components` (`(id, name)` pairs,
    /// in any order).
    pub fn new(game: impl Into<String>, components: &[(u8, &str)]) -> Self {
        Self {
            game: game.into(),
            fingerprint: fingerprint(components),
        }
    }
}

/// One replicated component of a schema, for [`GameSchema::new`].
pub fn component<W: WireComponent>() -> (u8, &'static str) {
    (W::ID, W::NAME)
}

/// 64-bit FNV-1a over each component's id byte, name and a 0 byte, in
/// increasing id order: the same components give the same number whatever
/// order they were registered in, and a renumbered or renamed component
/// gives another.
pub fn fingerprint(components: &[(u8, &str)]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut sorted = components.to_vec();
    sorted.sort_unstable();
    let mut hash = OFFSET;
    for (id, name) in sorted {
        for byte in std::iter::once(id).chain(name.bytes()).chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_the_documented_fnv_1a_and_ignores_order() {
        // PROTOCOL.md §4.1's example.
        assert_eq!(fingerprint(&[]), 0xcbf2_9ce4_8422_2325);
        let arena = fingerprint(&[(1, "position"), (2, "name")]);
        assert_eq!(arena, fingerprint(&[(2, "name"), (1, "position")]));
        assert_eq!(arena, 0xc835_b1bd_c193_304a, "{arena:#018x}");
        assert_ne!(arena, fingerprint(&[(1, "position"), (3, "name")]));
        assert_ne!(arena, fingerprint(&[(1, "position")]));
    }
}
