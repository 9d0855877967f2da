//! Channels across rooms, as the simulation sees them: what a game
//! publishes in a tick is handed out after it, and what a room receives on
//! a channel it subscribes to reaches the game's handler, once.

use bevy_ecs::prelude::*;
use tessera_protocol::RawValue;
use tessera_sim::channels::{ChannelError, is_valid_channel_name};
use tessera_sim::games::arena::Arena;
use tessera_sim::testing::TestRoom;
use tessera_sim::{EventError, Game, GameEvents, RoomBuilder, RoomConfig, TickSet};

/// Lines the room heard on `news`.
#[derive(Resource, Default)]
struct Heard(Vec<String>);

/// The arena, announcing every tick on `news` and keeping what it hears.
struct Newsroom;

impl Game for Newsroom {
    fn name(&self) -> &'static str {
        "newsroom"
    }

    fn setup(&self, room: &mut RoomBuilder<'_>) {
        Arena.setup(room);
        room.world().insert_resource(Heard::default());
        room.on_channel("news", |world, line: String| {
            world.resource_mut::<Heard>().0.push(line);
        });
        room.add_systems(
            TickSet::ApplyInputs,
            |mut events: ResMut<'_, GameEvents>| {
                let _ = events.publish("news", "extra");
            },
        );
    }
}

#[test]
fn a_tick_hands_out_what_it_published_and_a_message_reaches_the_handler() {
    let mut t = TestRoom::new(&Newsroom, RoomConfig::default());
    assert_eq!(t.room.channels().collect::<Vec<_>>(), ["news"]);
    assert!(t.room.take_published().is_empty(), "nothing before a tick");
    t.step();
    let published = t.room.take_published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].channel, "news");
    assert_eq!(
        published[0].payload.decode::<String>().expect("decodes"),
        "extra"
    );
    assert!(t.room.take_published().is_empty(), "handed out once");

    t.room
        .receive("news", &RawValue::encode("hello").expect("encodes"))
        .expect("handled");
    assert_eq!(t.room.world().resource::<Heard>().0, ["hello"]);
}

#[test]
fn a_message_it_cannot_decode_or_did_not_subscribe_to_is_refused() {
    let mut t = TestRoom::new(&Newsroom, RoomConfig::default());
    let number = RawValue::encode(&7u8).expect("encodes");
    assert!(matches!(
        t.room.receive("news", &number),
        Err(ChannelError::Undecodable { .. })
    ));
    assert!(matches!(
        t.room.receive("sports", &number),
        Err(ChannelError::NotSubscribed(_))
    ));
    assert!(t.room.world().resource::<Heard>().0.is_empty());
}

#[test]
fn channel_names_are_checked() {
    assert!(is_valid_channel_name("global-chat:eu.1"));
    assert!(!is_valid_channel_name(""));
    assert!(!is_valid_channel_name("has space"));
    assert!(!is_valid_channel_name(&"x".repeat(65)));
    let mut t = TestRoom::new(&Newsroom, RoomConfig::default());
    let mut events = t.room.world_mut().resource_mut::<GameEvents>();
    assert!(matches!(
        events.publish("bad name", "x"),
        Err(EventError::InvalidChannel(_))
    ));
}
