//! Resume tokens: what `Welcome.resume` carries and a `Hello` brings back
//! to take the same player again after its connection dropped.
//!
//! A token names the room and a random key the room knows its held player
//! by, never the process: any node that hosts the room and shares the
//! token secret can resume it. It expires with the grace window. Its form,
//! opaque to clients: `hex(payload) "." hex(mac)`, where payload is a
//! version byte (1), the expiry (seconds since 1970, u64 big-endian), the
//! 16-byte key and the room name, and mac the first 16 bytes of
//! HMAC-SHA256 under the node's token secret over `tessera-resume` and the
//! payload. At most 211 characters for a 64-byte room name.

use ring::hmac;

use crate::admin_token::{AdminToken, constant_time_eq, hex};

/// The key a room knows a held player by.
pub type ResumeKey = [u8; 16];

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;
const DOMAIN: &[u8] = b"tessera-resume";

/// What a valid resume token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeTicket {
    pub room: String,
    pub key: ResumeKey,
    pub expires: u64,
}

/// Why a resume token was refused (`resume_failed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeRefusal {
    #[error("the resume token is not one this server issued")]
    Invalid,
    #[error("the resume token expired: the grace window is over")]
    Expired,
    #[error("the resume token is for room {token_room:?}, not {room:?}")]
    WrongRoom { token_room: String, room: String },
    #[error("no player to resume: the grace window ended, or it left")]
    NotHeld,
}

/// Signs and checks resume tokens with the node's token secret.
pub struct ResumeSigner {
    key: hmac::Key,
}

impl std::fmt::Debug for ResumeSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResumeSigner(<secret>)")
    }
}

impl ResumeSigner {
    pub fn new(secret: &AdminToken) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes()),
        }
    }

    fn mac(&self, payload: &[u8]) -> [u8; MAC_LEN] {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(DOMAIN);
        context.update(payload);
        let tag = context.sign();
        let mut mac = [0; MAC_LEN];
        mac.copy_from_slice(&tag.as_ref()[..MAC_LEN]);
        mac
    }

    /// The token for `ticket`.
    pub fn sign(&self, ticket: &ResumeTicket) -> String {
        let mut payload = Vec::with_capacity(25 + ticket.room.len());
        payload.push(VERSION);
        payload.extend_from_slice(&ticket.expires.to_be_bytes());
        payload.extend_from_slice(&ticket.key);
        payload.extend_from_slice(ticket.room.as_bytes());
        format!("{}.{}", hex(&payload), hex(&self.mac(&payload)))
    }

    /// What `token` says, if this node signed it and it has not expired at
    /// `now_unix`.
    pub fn open(&self, token: &str, now_unix: u64) -> Result<ResumeTicket, ResumeRefusal> {
        let (payload, mac) = token.split_once('.').ok_or(ResumeRefusal::Invalid)?;
        let payload = unhex(payload).ok_or(ResumeRefusal::Invalid)?;
        let mac = unhex(mac).ok_or(ResumeRefusal::Invalid)?;
        if !constant_time_eq(&self.mac(&payload), &mac) {
            return Err(ResumeRefusal::Invalid);
        }
        if payload.len() < 25 || payload[0] != VERSION {
            return Err(ResumeRefusal::Invalid);
        }
        let mut expires = [0; 8];
        expires.copy_from_slice(&payload[1..9]);
        let expires = u64::from_be_bytes(expires);
        if expires < now_unix {
            return Err(ResumeRefusal::Expired);
        }
        let mut key = [0; 16];
        key.copy_from_slice(&payload[9..25]);
        let room = String::from_utf8(payload[25..].to_vec()).map_err(|_| ResumeRefusal::Invalid)?;
        Ok(ResumeTicket { room, key, expires })
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A fresh random key, from the OS.
pub fn new_key() -> ResumeKey {
    use rand::TryRng;
    let mut key = [0; 16];
    // The OS's generator does not fail on a booted Linux; if it ever
    // did, the standard hasher's per-process random keys still give an
    // unguessable key.
    if rand::rngs::SysRng.try_fill_bytes(&mut key).is_err() {
        use std::hash::BuildHasher;
        let state = std::collections::hash_map::RandomState::new();
        key[..8].copy_from_slice(&state.hash_one(1u8).to_le_bytes());
        key[8..].copy_from_slice(&state.hash_one(2u8).to_le_bytes());
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> ResumeTicket {
        ResumeTicket {
            room: "r".repeat(64),
            key: [7; 16],
            expires: 1_000,
        }
    }

    #[test]
    fn a_token_opens_until_it_expires_and_fits_the_protocol_limit() {
        let signer = ResumeSigner::new(&AdminToken::new("s"));
        let token = signer.sign(&ticket());
        assert!(
            token.len() <= tessera_protocol::limits::MAX_RESUME_TOKEN,
            "{}",
            token.len()
        );
        assert_eq!(signer.open(&token, 1_000), Ok(ticket()));
        assert_eq!(signer.open(&token, 1_001), Err(ResumeRefusal::Expired));
    }

    #[test]
    fn another_secret_a_changed_byte_or_garbage_is_invalid() {
        let signer = ResumeSigner::new(&AdminToken::new("s"));
        let token = signer.sign(&ticket());
        let other = ResumeSigner::new(&AdminToken::new("t"));
        assert_eq!(other.open(&token, 0), Err(ResumeRefusal::Invalid));
        let mut tampered = token.clone().into_bytes();
        tampered[3] = if tampered[3] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert_eq!(signer.open(&tampered, 0), Err(ResumeRefusal::Invalid));
        for garbage in ["", ".", "zz.zz", "abc.def", "00.00"] {
            assert_eq!(
                signer.open(garbage, 0),
                Err(ResumeRefusal::Invalid),
                "{garbage:?}"
            );
        }
    }
}
