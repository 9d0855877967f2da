//! Size limits that both ends enforce. They are part of the protocol: a
//! frame over a limit is refused before any decoding starts.

/// Largest frame a client may send, in bytes. Client messages are small
/// (a handshake, an intent, a chat line); anything bigger is hostile.
pub const MAX_CLIENT_FRAME: usize = 4 * 1024;

/// Largest frame a server may send, in bytes. A join snapshot in a dense
/// crowd is the biggest message (a few hundred entities, tens of KiB).
pub const MAX_SERVER_FRAME: usize = 1024 * 1024;

/// Room names: 1 to 64 bytes of `[A-Za-z0-9_.:-]`.
pub const MAX_ROOM_NAME: usize = 64;

/// Game names in `Hello.schema`.
pub const MAX_GAME_NAME: usize = 32;

/// Auth tokens (`Hello.token`).
pub const MAX_TOKEN: usize = 1024;

/// Resume tokens (`Hello.resume`). They are short signed strings the server
/// issued; the bound keeps a `Hello` with every field at its limit inside
/// [`MAX_CLIENT_FRAME`].
pub const MAX_RESUME_TOKEN: usize = 256;

/// Seat tokens (`Redirect.seat`, `Hello.seat`): short strings a node of a
/// cluster issued.
pub const MAX_SEAT: usize = 128;

/// The node URL of a `Redirect`.
pub const MAX_REDIRECT_URL: usize = 256;

/// Chat text, in bytes of UTF-8.
pub const MAX_CHAT: usize = 512;

/// Error and kick explanations sent by the server.
pub const MAX_REASON: usize = 256;

/// A game payload (intent, join options, component value), encoded.
pub const MAX_GAME_VALUE: usize = 2 * 1024;

/// Deepest nesting of arrays and maps inside a game payload.
pub const MAX_VALUE_DEPTH: usize = 16;

/// Most components one entity may carry in one delta entry.
pub const MAX_COMPONENTS_PER_ENTITY: usize = 64;

/// Why text shown to other players (a chat line, a player's name) would be
/// refused (PROTOCOL.md §10.1). One rule for the server, which refuses
/// such a line with `invalid_chat` and such a name at the join, and for
/// clients, which refuse it before sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatTextProblem {
    /// Nothing visible: only whitespace and zero-width joiners.
    Empty,
    /// Over its limit ([`MAX_CHAT`] bytes for chat).
    TooLong,
    /// A character [`is_forbidden_in_chat`].
    ForbiddenCharacter,
}

/// Checks chat text against the rules every server applies.
pub fn check_chat_text(text: &str) -> Result<(), ChatTextProblem> {
    check_shown_text(text, MAX_CHAT)
}

/// Checks text other players are shown (chat, names) of at most
/// `max_bytes`: something visible, and no character [`is_forbidden_in_chat`].
pub fn check_shown_text(text: &str, max_bytes: usize) -> Result<(), ChatTextProblem> {
    if text
        .chars()
        .all(|c| c.is_whitespace() || is_zero_width_joiner(c))
    {
        return Err(ChatTextProblem::Empty);
    }
    if text.len() > max_bytes {
        return Err(ChatTextProblem::TooLong);
    }
    if text.chars().any(is_forbidden_in_chat) {
        return Err(ChatTextProblem::ForbiddenCharacter);
    }
    Ok(())
}

/// True when `c` may not appear in text shown to other players: control
/// characters (Unicode category Cc, line breaks and escapes included), the
/// line and paragraph separators, the bidirectional marks, embeddings,
/// overrides and isolates, and the invisible characters (zero-width
/// space, word joiner and the invisible operators, the byte order mark).
/// Each would let a line pose as several lines, as someone else's text, or
/// a name as another player's, on other players' screens. The zero-width
/// joiners (U+200C, U+200D) stay: emoji sequences and several scripts need
/// them, and text of nothing else counts as empty.
pub fn is_forbidden_in_chat(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

fn is_zero_width_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// True when `name` is a valid room name.
pub fn is_valid_room_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ROOM_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_text_must_be_visible_and_safe() {
        assert_eq!(
            check_shown_text("hi 👨\u{200D}👩", 32),
            Ok(()),
            "emoji joiners stay"
        );
        for bad in [
            "a\u{202E}b",
            "a\u{2028}b",
            "a\u{200B}",
            "\u{200F}x",
            "x\u{FEFF}",
            "x\u{2060}",
        ] {
            assert_eq!(
                check_shown_text(bad, 32),
                Err(ChatTextProblem::ForbiddenCharacter),
                "{bad:?}"
            );
        }
        for empty in ["", "   ", "\u{200D}", " \u{200C} "] {
            assert_eq!(
                check_shown_text(empty, 32),
                Err(ChatTextProblem::Empty),
                "{empty:?}"
            );
        }
        assert_eq!(
            check_shown_text("toolong", 3),
            Err(ChatTextProblem::TooLong)
        );
    }

    #[test]
    fn room_names() {
        assert!(is_valid_room_name("lobby-1.eu:a_b"));
        assert!(!is_valid_room_name(""));
        assert!(!is_valid_room_name("has space"));
        assert!(!is_valid_room_name(&"x".repeat(MAX_ROOM_NAME + 1)));
    }
}
