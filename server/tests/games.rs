//! A game's mistakes stop the node at start, with the reason, instead of
//! failing every first join.

use std::sync::Arc;

use tessera_server::{Server, ServerConfig, StartError};
use tessera_sim::games::arena::{Arena, Position};
use tessera_sim::{Game, RoomBuilder};

/// Registers the arena's position twice: one wire id for two components.
struct TwiceTheSameWireId;

impl Game for TwiceTheSameWireId {
    fn name(&self) -> &'static str {
        "twice"
    }

    fn setup(&self, room: &mut RoomBuilder<'_>) {
        Arena.setup(room);
        room.replicate::<Position>();
    }
}

struct SetupPanics;

impl Game for SetupPanics {
    fn name(&self) -> &'static str {
        "panics"
    }

    fn setup(&self, _room: &mut RoomBuilder<'_>) {
        panic!("the level file is missing");
    }
}

async fn start(game: Arc<dyn Game>) -> Result<Server, StartError> {
    let dir = std::env::temp_dir().join(format!(
        "tessera-games-{}-{}",
        game.name(),
        std::process::id()
    ));
    let config = ServerConfig {
        ws_addr: "127.0.0.1:0".parse().expect("addr"),
        quic_addr: "127.0.0.1:0".parse().expect("addr"),
        admin_addr: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir,
        game: game.name().into(),
        tick_threads: 1,
        ..ServerConfig::default()
    };
    Server::start_with_games(config, vec![game]).await
}

#[tokio::test]
async fn a_game_that_cannot_build_a_room_stops_the_start_with_its_reason() {
    let Err(error) = start(Arc::new(TwiceTheSameWireId)).await else {
        panic!("started a game with one wire id twice");
    };
    let text = error.to_string();
    assert!(
        text.contains("\"twice\"") && text.contains("wire id"),
        "{text}"
    );

    let Err(error) = start(Arc::new(SetupPanics)).await else {
        panic!("started a game whose setup panics");
    };
    let text = error.to_string();
    assert!(
        text.contains("\"panics\"") && text.contains("the level file is missing"),
        "{text}"
    );
}
