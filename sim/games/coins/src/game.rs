//! The coins game on the simulation side.

// The ECS derives look for a crate named `bevy_ecs`: this is Tessera's.
use tessera_protocol::serde::{Deserialize, Serialize};
use tessera_sim::bevy_ecs::{self, prelude::*};
use tessera_sim::rand::RngExt;
use tessera_sim::{
    ActionContext, Game, GameEvents, Intent, JoinContext, JoinRefused, Journal, PlayerId,
    Replicate, Replicated, Retained, RoomBuilder, RoomRng, SpatialPosition, TickInfo, TickSet,
};

use crate::schema::{Action, COINS, Coin, Event, REACH, SPEED, Score, Spot, WORLD_SIZE, Walk};

/// The game. Serve it with `tessera serve --game coins`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Coins;

/// Where a player or a coin is, in world units.
#[derive(Component, Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(crate = "tessera_protocol::serde")]
pub struct Place {
    pub x: f32,
    pub y: f32,
}

impl Replicate for Place {
    type Wire = Spot;
    fn to_wire(&self) -> Spot {
        Spot {
            x: self.x.round() as u16,
            y: self.y.round() as u16,
        }
    }
}

impl SpatialPosition for Place {
    fn position(&self) -> [f32; 2] {
        [self.x, self.y]
    }
}

/// A player's score: what it keeps from one session to the next.
#[derive(Component, Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(crate = "tessera_protocol::serde")]
pub struct Points(pub u32);

impl Replicate for Points {
    type Wire = Score;
    fn to_wire(&self) -> Score {
        Score(self.0)
    }
}

/// What a coin is worth; only coins have it.
#[derive(Component, Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(crate = "tessera_protocol::serde")]
pub struct Worth(pub u8);

impl Replicate for Worth {
    type Wire = Coin;
    fn to_wire(&self) -> Coin {
        Coin(self.0)
    }
}

impl Game for Coins {
    fn name(&self) -> &'static str {
        "coins"
    }

    fn world_size(&self) -> Option<f32> {
        Some(WORLD_SIZE)
    }

    fn setup(&self, room: &mut RoomBuilder<'_>) {
        room.replicate::<Place>()
            .replicate::<Points>()
            .replicate::<Worth>()
            .spatial::<Place>()
            .input::<Walk>()
            .persist::<Place>(1)
            .persist::<Points>(2)
            .persist::<Worth>(3)
            .on_action(collect)
            .on_join(join)
            .add_systems(TickSet::Simulate, walk);
        for _ in 0..COINS {
            spawn_coin(room.world());
        }
    }
}

/// A coin worth 1 to 5 at a random place, from the room's seeded RNG.
fn spawn_coin(world: &mut World) {
    let mut rng = world.resource_mut::<RoomRng>();
    let place = Place {
        x: rng.0.random_range(0.0..WORLD_SIZE),
        y: rng.0.random_range(0.0..WORLD_SIZE),
    };
    let worth = Worth(rng.0.random_range(1..=5));
    world.spawn((place, worth, Replicated, Retained));
}

/// Every player starts in the middle, with the points it had when it last
/// left (none the first time).
fn join(world: &mut World, ctx: JoinContext<'_>) -> Result<Entity, JoinRefused> {
    let middle = WORLD_SIZE / 2.0;
    let place = Place {
        x: middle,
        y: middle,
    };
    let points = ctx
        .saved
        .and_then(|saved| saved.get::<Points>())
        .unwrap_or_default();
    Ok(world.spawn((place, points)).id())
}

/// What the store keeps of a collected coin (the `coin_collected` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "tessera_protocol::serde")]
pub struct CoinCollected {
    pub player: String,
    pub points: u32,
    pub total: u32,
}

/// Collects the nearest coin in reach, if any, and tells the player.
fn collect(world: &mut World, who: ActionContext, Action::Collect: Action) {
    let Some(&me) = world.get::<Place>(who.entity) else {
        return;
    };
    let mut coins = world.query::<(Entity, &Place, &Worth)>();
    let nearest = coins
        .iter(world)
        .map(|(coin, at, worth)| (coin, (at.x - me.x).hypot(at.y - me.y), worth.0))
        .filter(|(_, distance, _)| *distance <= REACH)
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let event = match nearest {
        None => Event::NothingInReach,
        Some((coin, _, worth)) => {
            world.despawn(coin);
            spawn_coin(world);
            let mut points = world
                .get_mut::<Points>(who.entity)
                .expect("players have points");
            points.0 += u32::from(worth);
            let total = points.0;
            let player = world
                .get::<PlayerId>(who.entity)
                .map(|p| p.0.clone())
                .unwrap_or_default();
            let collected = CoinCollected {
                player,
                points: worth.into(),
                total,
            };
            // At most one a player a tick, far below the journal's limit.
            let _ = world
                .resource_mut::<Journal>()
                .record("coin_collected", &collected);
            Event::Scored {
                points: worth.into(),
                total,
            }
        }
    };
    // A small event to one client cannot fail.
    let _ = world
        .resource_mut::<GameEvents>()
        .to_client(who.client, &event);
}

/// Moves every player at `SPEED` in its intent's direction, inside the field.
fn walk(mut walkers: Query<'_, '_, (&Intent<Walk>, &mut Place)>, tick: Res<'_, TickInfo>) {
    for (Intent(walk), mut place) in &mut walkers {
        let (dx, dy) = (f32::from(walk.dx) / 127.0, f32::from(walk.dy) / 127.0);
        let scale = SPEED * tick.dt / dx.hypot(dy).max(1.0);
        let next = Place {
            x: (place.x + dx * scale).clamp(0.0, WORLD_SIZE),
            y: (place.y + dy * scale).clamp(0.0, WORLD_SIZE),
        };
        place.set_if_neq(next);
    }
}

#[cfg(test)]
mod tests {
    use tessera_sim::testing::TestRoom;
    use tessera_sim::{RoomConfig, RoomRecord};

    use super::*;

    /// Net id and place of every coin, nearest to `(x, y)` first.
    fn coins_by_distance(t: &mut TestRoom, x: f32, y: f32) -> Vec<(u32, Place)> {
        let world = t.room.world_mut();
        let mut coins = world.query_filtered::<(&tessera_sim::NetId, &Place), With<Worth>>();
        let mut found: Vec<_> = coins.iter(world).map(|(id, at)| (id.0, *at)).collect();
        found.sort_by(|a, b| {
            let d = |p: &Place| (p.x - x).hypot(p.y - y);
            d(&a.1).total_cmp(&d(&b.1))
        });
        found
    }

    #[test]
    fn collecting_a_coin_in_reach_scores_and_a_new_one_appears() {
        let mut t = TestRoom::new(&Coins, RoomConfig::default());
        let me = t.join(1).entity_id;
        t.step();
        let (coin, at) = coins_by_distance(&mut t, 0.0, 0.0)[0];
        let worth = t.get::<Worth>(coin).expect("a coin").0;
        t.set(
            me,
            Place {
                x: at.x + 10.0,
                ..at
            },
        );
        t.action(1, &Action::Collect);
        t.step();
        assert!(t.entity(coin).is_none(), "the coin is gone");
        let total = u32::from(worth);
        assert_eq!(t.view(1).get::<Score>(me), Some(Score(total)));
        let scored = Event::Scored {
            points: total,
            total,
        };
        assert_eq!(t.view(1).events_as::<Event>(), vec![scored]);
        assert_eq!(coins_by_distance(&mut t, 0.0, 0.0).len(), COINS);
    }

    #[test]
    fn out_of_reach_nothing_is_collected_and_the_player_is_told() {
        let mut t = TestRoom::new(&Coins, RoomConfig::default());
        let me = t.join(1).entity_id;
        t.set(me, Place { x: -100.0, y: 0.0 });
        t.action(1, &Action::Collect);
        t.step();
        assert_eq!(t.view(1).events_as::<Event>(), vec![Event::NothingInReach]);
        assert_eq!(t.view(1).get::<Score>(me), Some(Score(0)));
    }

    #[test]
    fn two_collects_in_one_tick_are_both_applied() {
        let mut t = TestRoom::new(&Coins, RoomConfig::default());
        let me = t.join(1).entity_id;
        t.step();
        let (_, at) = coins_by_distance(&mut t, 0.0, 0.0)[0];
        t.set(me, at);
        t.action(1, &Action::Collect);
        t.action(1, &Action::Collect);
        t.step();
        let events = t.view(1).events_as::<Event>();
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(matches!(events[0], Event::Scored { .. }));
    }

    #[test]
    fn a_coin_seen_stays_known_far_away_until_someone_collects_it() {
        let mut t = TestRoom::new(&Coins, RoomConfig::default());
        let (ann, bob) = (t.join(1).entity_id, t.join(2).entity_id);
        t.step();
        let (coin, at) = coins_by_distance(&mut t, 0.0, 0.0)[0];
        t.set(ann, at);
        t.step();
        assert!(t.view(1).entities.contains_key(&coin), "ann sees the coin");
        let far = Place {
            x: WORLD_SIZE - at.x,
            y: WORLD_SIZE - at.y,
        };
        t.set(ann, far);
        t.step_n(2);
        assert!(t.view(1).entities.contains_key(&coin), "and keeps it");
        assert!(!t.view(1).entities.contains_key(&bob), "unlike a player");
        t.set(bob, at);
        t.action(2, &Action::Collect);
        t.step();
        assert!(!t.view(1).entities.contains_key(&coin), "gone when taken");
    }

    #[test]
    fn points_are_recorded_and_kept_for_the_player_next_time() {
        let saving = RoomConfig {
            save_players: true,
            ..RoomConfig::default()
        };
        let mut t = TestRoom::new(&Coins, saving.clone());
        let me = t.join_saved(1, "ann", None).expect("join").entity_id;
        t.step();
        let (_, at) = coins_by_distance(&mut t, 0.0, 0.0)[0];
        t.set(me, at);
        t.action(1, &Action::Collect);
        t.step();
        let total = t.get::<Points>(me).expect("points").0;
        assert!(total > 0);
        let recorded = t.room.take_records();
        assert!(matches!(
            &recorded[..],
            [RoomRecord::Event { kind, .. }] if kind == "coin_collected"
        ));
        t.leave(1);
        let saved = match &t.room.take_records()[..] {
            [RoomRecord::PlayerSaved { state, .. }] => state.clone(),
            other => panic!("expected ann's save, got {other:?}"),
        };
        let mut next_time = TestRoom::new(&Coins, saving);
        let back = next_time.join_saved(5, "ann", Some(&saved)).expect("join");
        assert_eq!(next_time.get::<Points>(back.entity_id), Some(Points(total)));
    }
}
