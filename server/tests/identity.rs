//! Players with an identity, over real sockets: a node in `token` mode
//! refuses each kind of bad token with its own code, and admits a Tessera
//! token and a studio's RS256 JWT, whose player id the game's join hook
//! sees.

mod common;

use std::sync::Arc;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tessera_client::protocol::arena::Name;
use tessera_client::{Client, ErrorCode, Hello};
use tessera_server::ServerConfig;
use tessera_server::admin::AdminToken;
use tessera_server::identity::{self, AuthMode, TokenRequest};
use tessera_sim::bevy_ecs::prelude::*;
use tessera_sim::games::arena::{Arena, Name as SimName, Position};
use tessera_sim::{Game, JoinContext, JoinRefused, RoomBuilder};

const SECRET: &str = "test-node-secret";
const RSA_PRIVATE: &[u8] = include_bytes!("fixtures/jwt-rs256-private.pem");

/// The arena, with each player named `player-id/display-name` by its join
/// hook, so that a client reads what the hook saw off its own entity.
struct WhoJoined;

impl Game for WhoJoined {
    fn name(&self) -> &'static str {
        "who-joined"
    }
    fn setup(&self, room: &mut RoomBuilder<'_>) {
        Arena.setup(room);
        room.on_join(
            |world: &mut World, ctx: JoinContext<'_>| -> Result<Entity, JoinRefused> {
                let name = format!("{}/{}", ctx.player, ctx.display_name.unwrap_or("-"));
                Ok(world
                    .spawn((Position { x: 10.0, y: 10.0 }, SimName(name)))
                    .id())
            },
        );
    }
}

async fn token_node() -> tessera_server::Server {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    start_games(
        vec![Arc::new(WhoJoined)],
        "who-joined",
        |c: &mut ServerConfig| {
            c.auth = AuthMode::Token;
            c.token_secret = Some(AdminToken::new(SECRET));
            c.jwt_public_key = Some(fixtures.join("jwt-rs256-public.pem"));
            c.jwt_issuer = Some("auth.studio.example".into());
        },
    )
    .await
}

fn hello(room: &str, token: Option<String>) -> Hello {
    let mut hello = Hello::new(room);
    hello.token = token;
    hello
}

fn tessera_token(player: &str, room: Option<&str>, issued: u64) -> String {
    let request = TokenRequest {
        player: player.into(),
        name: Some("Ann".into()),
        room: room.map(Into::into),
        ttl_s: 600,
    };
    identity::issue(&AdminToken::new(SECRET), &request, issued)
}

/// The name the node gave the client's own entity.
async fn own_name(client: &mut Client) -> String {
    let me = client.welcome().entity_id;
    until(client, PATIENCE, |c, _| c.world().contains(me)).await;
    let entity = client.world().get(me).expect("own entity");
    entity.get::<Name>().expect("a name").expect("decodes").0
}

#[tokio::test]
async fn each_bad_token_gets_its_code_and_good_ones_name_the_player() {
    let server = token_node().await;
    let url = url(&server);
    let now = identity::unix_now();
    let refused = |hello: Hello| {
        let url = url.clone();
        async move {
            let err = Client::connect(&url, hello).await.expect_err("refused");
            err.error_code()
        }
    };
    assert_eq!(
        refused(hello("r", None)).await,
        Some(ErrorCode::AuthRequired)
    );
    let forged = identity::issue(
        &AdminToken::new("not-the-secret"),
        &TokenRequest {
            player: "mallory".into(),
            name: None,
            room: None,
            ttl_s: 600,
        },
        now,
    );
    assert_eq!(
        refused(hello("r", Some(forged))).await,
        Some(ErrorCode::TokenInvalid)
    );
    let garbage = Some("eyJ.not.a-token".to_owned());
    assert_eq!(
        refused(hello("r", garbage)).await,
        Some(ErrorCode::TokenInvalid)
    );
    let expired = tessera_token("ann", None, now - 3_600);
    assert_eq!(
        refused(hello("r", Some(expired))).await,
        Some(ErrorCode::TokenExpired)
    );
    let lobby_only = tessera_token("ann", Some("lobby"), now);
    assert_eq!(
        refused(hello("arena-2", Some(lobby_only.clone()))).await,
        Some(ErrorCode::TokenWrongRoom)
    );

    let mut ann = Client::connect(&url, hello("lobby", Some(lobby_only)))
        .await
        .expect("a Tessera token joins");
    assert_eq!(own_name(&mut ann).await, "ann/Ann");

    #[derive(serde::Serialize)]
    struct StudioClaims<'a> {
        sub: &'a str,
        exp: u64,
        iss: &'a str,
    }
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE).expect("test key");
    let sign = |iss: &str| {
        let claims = StudioClaims {
            sub: "studio-user-9",
            exp: now + 600,
            iss,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).expect("signs")
    };
    let wrong_issuer = Some(sign("elsewhere.example"));
    assert_eq!(
        refused(hello("lobby", wrong_issuer)).await,
        Some(ErrorCode::TokenInvalid)
    );
    let mut studio = Client::connect(&url, hello("lobby", Some(sign("auth.studio.example"))))
        .await
        .expect("a studio JWT joins");
    assert_eq!(own_name(&mut studio).await, "studio-user-9/-");
    server.shutdown().await;
}

#[tokio::test]
async fn an_open_node_names_each_session_a_new_anonymous_player() {
    let server = start_games(vec![Arc::new(WhoJoined)], "who-joined", |_| {}).await;
    let mut a = Client::connect(&url(&server), hello("r", None))
        .await
        .expect("joins");
    let mut b = Client::connect(&url(&server), hello("r", Some("ignored".into())))
        .await
        .expect("a token is not looked at");
    let (a, b) = (own_name(&mut a).await, own_name(&mut b).await);
    assert!(
        a.starts_with("anon-") && b.starts_with("anon-") && a != b,
        "{a} {b}"
    );
    server.shutdown().await;
}

/// A second connection with a token of the same player, while the first
/// is still open, takes the player over at once: the first is told it was
/// replaced, and one entity remains.
#[tokio::test]
async fn the_same_player_twice_keeps_one_entity_and_replaces_the_first() {
    let server = token_node().await;
    let token = || tessera_token("ann", None, identity::unix_now());
    let mut first = Client::connect(&url(&server), hello("r", Some(token())))
        .await
        .expect("joins");
    let entity = first.welcome().entity_id;
    let second = Client::connect(&url(&server), hello("r", Some(token())))
        .await
        .expect("joins again");
    assert_eq!(second.welcome().entity_id, entity, "the same player");
    let kicked = until(&mut first, PATIENCE, |_, e| {
        matches!(e, tessera_client::Event::Kicked { .. })
    })
    .await;
    assert_eq!(
        kicked.kick_reason(),
        Some(tessera_client::KickReason::Replaced)
    );
    let players = server.state().rooms.get("r").map(|r| r.players());
    assert_eq!(players, Some(1));
    server.shutdown().await;
}

/// The token secret can come from a file of its own.
#[tokio::test]
async fn the_token_secret_may_be_read_from_a_file() {
    let dir = std::env::temp_dir().join(format!("tessera-secret-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).expect("written");
    let server = start_games(
        vec![Arc::new(WhoJoined)],
        "who-joined",
        |c: &mut ServerConfig| {
            c.auth = AuthMode::Token;
            c.token_secret_file = Some(file.clone());
        },
    )
    .await;
    let token = tessera_token("filed", None, identity::unix_now());
    let mut client = Client::connect(&url(&server), hello("r", Some(token)))
        .await
        .expect("the file's secret signs");
    assert_eq!(own_name(&mut client).await, "filed/Ann");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
