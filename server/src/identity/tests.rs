//! Tokens checked with the time passed in by hand.

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::*;

const NOW: u64 = 1_800_000_000;

fn secret() -> AdminToken {
    AdminToken::new("node-secret")
}

fn anon() -> String {
    "anon-1".into()
}

fn request(player: &str, room: Option<&str>, ttl_s: u64) -> TokenRequest {
    TokenRequest {
        player: player.into(),
        name: Some("Ann".into()),
        room: room.map(Into::into),
        ttl_s,
    }
}

fn studio_token(alg: Algorithm, key: &EncodingKey, claims: &Claims) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, key).expect("signs")
}

fn claims(sub: &str, exp: u64) -> Claims {
    Claims {
        sub: sub.into(),
        exp: Some(exp),
        ..Claims::default()
    }
}

const RSA_PRIVATE: &[u8] = include_bytes!("../../tests/fixtures/jwt-rs256-private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/jwt-rs256-public.pem");
const ED_PRIVATE: &[u8] = include_bytes!("../../tests/fixtures/jwt-eddsa-private.pem");
const ED_PUBLIC: &[u8] = include_bytes!("../../tests/fixtures/jwt-eddsa-public.pem");

#[test]
fn open_mode_ignores_tokens_and_names_an_anonymous_player() {
    let open = Verifier::open();
    let who = open.verify(Some("garbage"), "r", NOW, anon).expect("open");
    assert_eq!(
        who,
        Identity {
            player: "anon-1".into(),
            name: None
        }
    );
}

#[test]
fn a_tessera_token_admits_its_player_until_it_expires_with_leeway() {
    let v = Verifier::tokens(&secret(), None, 30);
    let token = issue(&secret(), &request("p-42", None, 3_600), NOW);
    let who = v.verify(Some(&token), "any", NOW, anon).expect("valid");
    assert_eq!(
        who,
        Identity {
            player: "p-42".into(),
            name: Some("Ann".into())
        }
    );
    assert!(
        v.verify(Some(&token), "any", NOW + 3_600 + 30, anon)
            .is_ok(),
        "leeway"
    );
    assert_eq!(
        v.verify(Some(&token), "any", NOW + 3_600 + 31, anon),
        Err(TokenRefusal::Expired)
    );
}

#[test]
fn each_bad_token_has_its_own_code() {
    let v = Verifier::tokens(&secret(), None, 0);
    let refused = |token: Option<&str>, room: &str| {
        v.verify(token, room, NOW, anon)
            .expect_err("refused")
            .code()
    };
    assert_eq!(refused(None, "r"), ErrorCode::AuthRequired);
    assert_eq!(refused(Some("not.a.jwt"), "r"), ErrorCode::TokenInvalid);
    let forged = issue(
        &AdminToken::new("another-secret"),
        &request("p", None, 60),
        NOW,
    );
    assert_eq!(refused(Some(&forged), "r"), ErrorCode::TokenInvalid);
    let expired = issue(&secret(), &request("p", None, 60), NOW - 120);
    assert_eq!(refused(Some(&expired), "r"), ErrorCode::TokenExpired);
    let lobby_only = issue(&secret(), &request("p", Some("lobby"), 60), NOW);
    assert_eq!(
        refused(Some(&lobby_only), "arena-2"),
        ErrorCode::TokenWrongRoom
    );
    assert!(v.verify(Some(&lobby_only), "lobby", NOW, anon).is_ok());
    // Tessera's key signs Tessera tokens only: another issuer is refused.
    let key = EncodingKey::from_secret(b"node-secret");
    let other_issuer = studio_token(
        Algorithm::HS256,
        &key,
        &Claims {
            iss: Some("someone".into()),
            ..claims("p", NOW + 60)
        },
    );
    assert_eq!(refused(Some(&other_issuer), "r"), ErrorCode::TokenInvalid);
    let no_issuer = studio_token(Algorithm::HS256, &key, &claims("p", NOW + 60));
    assert_eq!(refused(Some(&no_issuer), "r"), ErrorCode::TokenInvalid);
}

#[test]
fn studio_jwts_are_checked_for_signature_issuer_audience_and_time() {
    let studio = StudioJwt::public_key(RSA_PUBLIC)
        .expect("an RSA key")
        .issuer(Some("auth.studio.example".into()))
        .audience(Some("tessera".into()));
    let v = Verifier::tokens(&secret(), Some(studio), 0);
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("key");
    #[derive(serde::Serialize)]
    struct Studio<'a> {
        sub: &'a str,
        exp: u64,
        nbf: u64,
        iss: &'a str,
        aud: &'a str,
    }
    let sign = |c: &Studio<'_>| {
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), c, &key).expect("signs")
    };
    let good = Studio {
        sub: "user-7",
        exp: NOW + 60,
        nbf: NOW - 1,
        iss: "auth.studio.example",
        aud: "tessera",
    };
    let who = v.verify(Some(&sign(&good)), "r", NOW, anon).expect("valid");
    assert_eq!(who.player, "user-7");
    for bad in [
        Studio {
            iss: "elsewhere",
            ..good
        },
        Studio {
            aud: "another-app",
            ..good
        },
        Studio {
            nbf: NOW + 3_600,
            ..good
        },
    ] {
        assert_eq!(
            v.verify(Some(&sign(&bad)), "r", NOW, anon)
                .map_err(|e| e.code()),
            Err(ErrorCode::TokenInvalid)
        );
    }
    // A token that leaves the configured claims out is refused too.
    #[derive(serde::Serialize)]
    struct Bare<'a> {
        sub: &'a str,
        exp: u64,
    }
    let bare = Bare {
        sub: "user-7",
        exp: NOW + 60,
    };
    let bare = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &bare, &key).expect("signs");
    assert_eq!(
        v.verify(Some(&bare), "r", NOW, anon).map_err(|e| e.code()),
        Err(ErrorCode::TokenInvalid)
    );
    let late = Studio {
        exp: NOW - 1,
        ..good
    };
    assert_eq!(
        v.verify(Some(&sign(&late)), "r", NOW, anon),
        Err(TokenRefusal::Expired)
    );
}

#[test]
fn eddsa_and_shared_secret_studio_tokens_verify_and_algorithms_do_not_mix() {
    let ed = Verifier::tokens(
        &secret(),
        Some(StudioJwt::public_key(ED_PUBLIC).expect("ed")),
        0,
    );
    let ed_key = EncodingKey::from_ed_pem(ED_PRIVATE).expect("key");
    let token = studio_token(Algorithm::EdDSA, &ed_key, &claims("ed-user", NOW + 60));
    assert_eq!(
        ed.verify(Some(&token), "r", NOW, anon)
            .expect("valid")
            .player,
        "ed-user"
    );
    // An RS256 token to a node that knows an EdDSA key only.
    let rsa_key = EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("key");
    let rs = studio_token(Algorithm::RS256, &rsa_key, &claims("x", NOW + 60));
    assert!(ed.verify(Some(&rs), "r", NOW, anon).is_err());

    let shared = StudioJwt::shared_secret(&AdminToken::new("studio-shared"));
    let v = Verifier::tokens(&secret(), Some(shared), 0);
    let key = EncodingKey::from_secret(b"studio-shared");
    let token = studio_token(Algorithm::HS256, &key, &claims("hs-user", NOW + 60));
    assert_eq!(
        v.verify(Some(&token), "r", NOW, anon)
            .expect("valid")
            .player,
        "hs-user"
    );
    let no_exp = studio_token(
        Algorithm::HS256,
        &key,
        &Claims {
            exp: None,
            ..claims("p", 0)
        },
    );
    assert_eq!(
        v.verify(Some(&no_exp), "r", NOW, anon)
            .map_err(|e| e.code()),
        Err(ErrorCode::TokenInvalid)
    );
}

#[test]
fn ttls_read_as_people_write_them() {
    assert_eq!(parse_ttl("90s"), Ok(90));
    assert_eq!(parse_ttl("30m"), Ok(1_800));
    assert_eq!(parse_ttl("1h"), Ok(3_600));
    assert_eq!(parse_ttl("2d"), Ok(172_800));
    assert_eq!(parse_ttl("45"), Ok(45));
    for bad in ["", "0s", "1w", "h", "-1h", "99999999999999999999d"] {
        assert!(parse_ttl(bad).is_err(), "{bad:?}");
    }
}
