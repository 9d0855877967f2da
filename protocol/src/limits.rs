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

/// Auth tokens (`Hello.token`).
pub const MAX_TOKEN: usize = 1024;

/// Resume tokens (`Hello.resume`). They are short signed strings the server
/// issued; the bound keeps a `Hello` with every field at its limit inside
/// [`MAX_CLIENT_FRAME`].
pub const MAX_RESUME_TOKEN: usize = 256;

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

/// Why chat text would be refused (PROTOCOL.md §10.1). One rule for the
/// server, which refuses such a line with `invalid_chat`, and for clients,
/// which refuse it before sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatTextProblem {
    /// Nothing but whitespace.
    Empty,
    /// Over [`MAX_CHAT`] bytes.
    TooLong,
    /// A character [`is_forbidden_in_chat`].
    ForbiddenCharacter,
}

/// Checks chat text against the rules every server applies.
pub fn check_chat_text(text: &str) -> Result<(), ChatTextProblem> {
    if text.trim().is_empty() {
        return Err(ChatTextProblem::Empty);
    }
    if text.len() > MAX_CHAT {
        return Err(ChatTextProblem::TooLong);
    }
    if text.chars().any(is_forbidden_in_chat) {
        return Err(ChatTextProblem::ForbiddenCharacter);
    }
    Ok(())
}

/// True when `c` may not appear in chat text: control characters (Unicode
/// category Cc, line breaks and escapes included), the line and paragraph
/// separators, and the bidirectional embedding, override and isolate
/// controls. Each would let a line pose as several lines, or as someone
/// else's text, on other players' screens.
pub fn is_forbidden_in_chat(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
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
    fn room_names() {
        assert!(is_valid_room_name("lobby-1.eu:a_b"));
        assert!(!is_valid_room_name(""));
        assert!(!is_valid_room_name("has space"));
        assert!(!is_valid_room_name(&"x".repeat(MAX_ROOM_NAME + 1)));
    }
}
