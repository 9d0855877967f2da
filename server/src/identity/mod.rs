//! Who a player is: the node's auth mode, the tokens it accepts, and the
//! identity a verified token gives the room.
//!
//! - `open` (the embedded default): anyone joins; each session is a new
//!   anonymous player.
//! - `token`: a `Hello` must carry a token, of one of two kinds:
//!   1. Tessera's own: an HS256 JWT signed with the node's token secret,
//!      issuer `tessera` (`tessera token issue` prints one; [`issue`]).
//!   2. A studio's JWT, from its own auth service: HS256 with a shared
//!      secret, or RS256 / EdDSA with its public key; `aud` and `iss` are
//!      checked when configured.
//!
//!   In both, `sub` is the player id, `name` the display name and `room`
//!   (when present) the only room the token admits.
//!
//! Verification is sans-IO: the caller passes the time, so expiry rules are
//! stepped by hand in tests. jsonwebtoken's own clock checks are off.

pub mod resume;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tessera_protocol::ErrorCode;

use crate::admin_token::AdminToken;

/// Issuer of Tessera's own tokens.
pub const TESSERA_ISSUER: &str = "tessera";
/// Name of the generated token secret's file in the data dir.
pub const SECRET_FILE: &str = "token-secret";
/// Longest player id a token may carry, in bytes.
pub const MAX_PLAYER_ID: usize = 128;

/// Who may join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Anyone; each session is an anonymous player.
    #[default]
    Open,
    /// Only the holder of a valid token.
    Token,
}

/// The player a session speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Stable for a token's player; `anon-…`, new per session, in `open`.
    pub player: String,
    /// The token's display name, if it has one.
    pub name: Option<String>,
}

/// Why a `Hello`'s token was refused; each cause has its own code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    #[error("this server admits players with a token only")]
    Required,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token expired")]
    Expired,
    #[error("the token is for room {token_room:?}, not {room:?}")]
    WrongRoom { token_room: String, room: String },
}

impl TokenRefusal {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Required => ErrorCode::AuthRequired,
            Self::Invalid(_) => ErrorCode::TokenInvalid,
            Self::Expired => ErrorCode::TokenExpired,
            Self::WrongRoom { .. } => ErrorCode::TokenWrongRoom,
        }
    }
}

/// The claims Tessera reads (and writes, in its own tokens).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

/// A studio's token signing, as the node verifies it.
pub struct StudioJwt {
    key: DecodingKey,
    algorithm: Algorithm,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for StudioJwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StudioJwt")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl StudioJwt {
    /// HS256 tokens signed with `secret`.
    pub fn shared_secret(secret: &AdminToken) -> Self {
        Self::with_key(
            DecodingKey::from_secret(secret.expose().as_bytes()),
            Algorithm::HS256,
        )
    }

    /// RS256 or EdDSA tokens, by the kind of the public key in `pem`.
    pub fn public_key(pem: &[u8]) -> Result<Self, String> {
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            return Ok(Self::with_key(key, Algorithm::RS256));
        }
        DecodingKey::from_ed_pem(pem)
            .map(|key| Self::with_key(key, Algorithm::EdDSA))
            .map_err(|_| "not an RSA or Ed25519 public key in PEM".to_owned())
    }

    fn with_key(key: DecodingKey, algorithm: Algorithm) -> Self {
        Self {
            key,
            algorithm,
            issuer: None,
            audience: None,
        }
    }

    /// Only tokens with this `iss` are accepted.
    pub fn issuer(mut self, issuer: Option<String>) -> Self {
        self.issuer = issuer;
        self
    }

    /// Only tokens whose `aud` holds this one are accepted.
    pub fn audience(mut self, audience: Option<String>) -> Self {
        self.audience = audience;
        self
    }
}

/// Checks `Hello` tokens for the node.
#[derive(Debug)]
pub struct Verifier {
    mode: AuthMode,
    /// The node's own secret (`token` mode).
    tessera: Option<DecodingKey>,
    studio: Option<StudioJwt>,
    /// Seconds a token may be past `exp` (or before `nbf`): clocks differ.
    leeway_s: u64,
}

impl Verifier {
    /// A node that admits anyone.
    pub fn open() -> Self {
        Self {
            mode: AuthMode::Open,
            tessera: None,
            studio: None,
            leeway_s: 0,
        }
    }

    /// A node that admits holders of a Tessera token signed with `secret`,
    /// or of a token `studio` verifies.
    pub fn tokens(secret: &AdminToken, studio: Option<StudioJwt>, leeway_s: u64) -> Self {
        Self {
            mode: AuthMode::Token,
            tessera: Some(DecodingKey::from_secret(secret.expose().as_bytes())),
            studio,
            leeway_s,
        }
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The identity `token` proves for a join of `room` at `now_unix`
    /// (seconds since 1970). In `open` mode the token is not looked at and
    /// `anonymous` names the player.
    pub fn verify(
        &self,
        token: Option<&str>,
        room: &str,
        now_unix: u64,
        anonymous: impl FnOnce() -> String,
    ) -> Result<Identity, TokenRefusal> {
        if self.mode == AuthMode::Open {
            return Ok(Identity {
                player: anonymous(),
                name: None,
            });
        }
        let token = token.ok_or(TokenRefusal::Required)?;
        let claims = self.verified_claims(token)?;
        if claims.sub.is_empty() || claims.sub.len() > MAX_PLAYER_ID {
            return Err(TokenRefusal::Invalid(format!(
                "sub (the player id) must be 1 to {MAX_PLAYER_ID} bytes"
            )));
        }
        let exp = claims
            .exp
            .ok_or_else(|| TokenRefusal::Invalid("it has no exp".into()))?;
        if exp.saturating_add(self.leeway_s) < now_unix {
            return Err(TokenRefusal::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now_unix.saturating_add(self.leeway_s))
        {
            return Err(TokenRefusal::Invalid("it is not valid yet (nbf)".into()));
        }
        if let Some(token_room) = claims.room
            && token_room != room
        {
            return Err(TokenRefusal::WrongRoom {
                token_room,
                room: room.to_owned(),
            });
        }
        Ok(Identity {
            player: claims.sub,
            name: claims.name,
        })
    }

    /// The claims of `token` once a key of this node verified its signature
    /// (and issuer and audience where configured).
    fn verified_claims(&self, token: &str) -> Result<Claims, TokenRefusal> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenRefusal::Invalid(format!("not a JWT ({e})")))?;
        let mut last = None;
        if header.alg == Algorithm::HS256
            && let Some(key) = &self.tessera
        {
            let validation = validation(Algorithm::HS256, Some(TESSERA_ISSUER), None);
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => last = Some(e),
            }
        }
        if let Some(studio) = &self.studio
            && header.alg == studio.algorithm
        {
            let validation = validation(
                studio.algorithm,
                studio.issuer.as_deref(),
                studio.audience.as_deref(),
            );
            match jsonwebtoken::decode::<Claims>(token, &studio.key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => last = Some(e),
            }
        }
        Err(TokenRefusal::Invalid(
            match last.as_ref().map(|e| e.kind()) {
                None => format!("this server takes no {:?} tokens", header.alg),
                Some(ErrorKind::InvalidSignature) => "bad signature".into(),
                Some(ErrorKind::InvalidIssuer) => "wrong issuer (iss)".into(),
                Some(ErrorKind::InvalidAudience) => "wrong audience (aud)".into(),
                Some(ErrorKind::MissingRequiredClaim(claim)) => format!("it has no {claim}"),
                Some(kind) => format!("{kind:?}"),
            },
        ))
    }
}

/// Signature, algorithm, and (when given) issuer and audience; the clock
/// checks are [`Verifier::verify`]'s.
fn validation(algorithm: Algorithm, issuer: Option<&str>, audience: Option<&str>) -> Validation {
    let mut v = Validation::new(algorithm);
    v.validate_exp = false;
    v.validate_nbf = false;
    // A configured issuer or audience must be there, not only match when
    // it is.
    v.required_spec_claims = [issuer.map(|_| "iss"), audience.map(|_| "aud")]
        .into_iter()
        .flatten()
        .map(str::to_owned)
        .collect::<HashSet<_>>();
    v.leeway = 0;
    v.validate_aud = audience.is_some();
    if let Some(audience) = audience {
        v.set_audience(&[audience]);
    }
    if let Some(issuer) = issuer {
        v.set_issuer(&[issuer]);
    }
    v
}

/// What a Tessera token says: who, under which name, for which room, for
/// how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub player: String,
    pub name: Option<String>,
    pub room: Option<String>,
    pub ttl_s: u64,
}

/// A Tessera token for `request`, signed with `secret`, issued at
/// `now_unix`.
pub fn issue(secret: &AdminToken, request: &TokenRequest, now_unix: u64) -> String {
    let claims = Claims {
        sub: request.player.clone(),
        name: request.name.clone(),
        room: request.room.clone(),
        exp: Some(now_unix.saturating_add(request.ttl_s)),
        nbf: None,
        iat: Some(now_unix),
        iss: Some(TESSERA_ISSUER.into()),
    };
    let key = EncodingKey::from_secret(secret.expose().as_bytes());
    // HS256 over serializable claims cannot fail.
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap_or_default()
}

/// `1h`, `30m`, `90s`, `2d` or a bare number of seconds, as seconds.
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 30m, 1h or 2d"))?;
    let unit_s = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit is one of s, m, h, d")),
    };
    match n.checked_mul(unit_s) {
        Some(0) | None => Err(format!("{text:?} must be above 0 and reasonable")),
        Some(s) => Ok(s),
    }
}

/// Seconds since 1970, for [`Verifier::verify`] and [`issue`].
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
