//! The session rules stepped by hand: frames in, decisions out, the time
//! moved by the test.

use super::*;
use tessera_protocol::arena;

const LIMITS: RuleLimits = RuleLimits {
    handshake_timeout: Duration::from_secs(5),
    idle_timeout: Duration::from_secs(30),
    messages_per_second: 40,
    message_burst: 10,
    chat_per_second: 2,
    actions_per_second: 3,
    tick_hz: 10,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn frame(msg: &ClientMsg) -> Inbound {
    Inbound::Frame(Bytes::from(msg.encode()))
}

fn datagram(msg: &ClientMsg) -> Inbound {
    Inbound::Datagram(Bytes::from(msg.encode()))
}

fn hello(room: &str) -> ClientMsg {
    ClientMsg::Hello(Hello {
        version: tessera_protocol::PROTOCOL_VERSION,
        room: room.into(),
        token: None,
        resume: None,
        options: RawValue::nil(),
        schema: None,
        seat: None,
    })
}

fn input(seq: u32) -> ClientMsg {
    ClientMsg::Input {
        seq,
        intent: RawValue::nil(),
    }
}

fn chat(text: &str) -> ClientMsg {
    ClientMsg::Chat { text: text.into() }
}

fn new_rules(t0: Instant) -> SessionRules {
    let live = Arc::new(SessionLive::new("127.0.0.1:9".parse().expect("addr"), "ws"));
    SessionRules::new(LIMITS, Arc::new(arena::schema()), live, t0)
}

/// Rules of a session that sent its Hello at `t0` and joined at once.
fn joined_rules(t0: Instant) -> SessionRules {
    let mut rules = new_rules(t0);
    assert!(matches!(
        rules.on_inbound(frame(&hello("lobby")), t0),
        Decision::Join(_)
    ));
    rules.joined(t0);
    rules
}

fn refusal(decision: Decision) -> ErrorCode {
    match decision {
        Decision::End(End::Refused(code, _)) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_hello_for_another_game_is_refused_naming_both_and_one_without_is_not_checked() {
    let t0 = Instant::now();
    let coins = GameSchema::new("coins", &[(1, "position"), (3, "score")]);
    let ClientMsg::Hello(for_coins) = hello("lobby") else {
        unreachable!()
    };
    let wrong = ClientMsg::Hello(for_coins.clone().for_game(coins));
    match new_rules(t0).on_inbound(frame(&wrong), t0) {
        Decision::End(End::Refused(ErrorCode::WrongGame, message)) => {
            assert!(
                message.contains("\"arena\"") && message.contains("\"coins\""),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    let right = ClientMsg::Hello(for_coins.clone().for_game(arena::schema()));
    assert!(matches!(
        new_rules(t0).on_inbound(frame(&right), t0),
        Decision::Join(_)
    ));
    // Same name, other components: another version of the game.
    let older = GameSchema::new("arena", &[(1, "position")]);
    let stale = ClientMsg::Hello(for_coins.clone().for_game(older));
    assert_eq!(
        refusal(new_rules(t0).on_inbound(frame(&stale), t0)),
        ErrorCode::WrongGame
    );
    let unchecked = ClientMsg::Hello(for_coins);
    assert!(matches!(
        new_rules(t0).on_inbound(frame(&unchecked), t0),
        Decision::Join(_)
    ));
}

#[test]
fn the_first_message_must_be_a_hello_for_a_valid_room() {
    let t0 = Instant::now();
    let first = |inbound| refusal(new_rules(t0).on_inbound(inbound, t0));
    assert_eq!(first(frame(&input(1))), ErrorCode::HandshakeRequired);
    assert_eq!(
        first(datagram(&hello("lobby"))),
        ErrorCode::HandshakeRequired
    );
    assert_eq!(
        first(frame(&hello("no spaces"))),
        ErrorCode::InvalidRoomName
    );
    assert_eq!(
        first(Inbound::Frame(Bytes::from_static(&[0xc1]))),
        ErrorCode::Malformed
    );
    assert_eq!(first(Inbound::TooLarge), ErrorCode::FrameTooLarge);
    assert_eq!(
        first(Inbound::Unsupported("text frame")),
        ErrorCode::UnsupportedFrame
    );

    let mut rules = new_rules(t0);
    match rules.on_inbound(frame(&hello("lobby")), t0) {
        Decision::Join(hello) => assert_eq!(hello.room, "lobby"),
        other => panic!("{other:?}"),
    }
    assert!(!rules.is_joined(), "joined only once the room says so");
}

#[test]
fn the_handshake_and_the_join_each_have_a_deadline() {
    let t0 = Instant::now();
    let mut rules = new_rules(t0);
    assert_eq!(rules.deadline(), t0 + LIMITS.handshake_timeout);
    assert_eq!(rules.on_deadline(t0 + ms(4_999)), None);
    assert_eq!(
        rules
            .on_deadline(t0 + LIMITS.handshake_timeout)
            .map(refused_code),
        Some(ErrorCode::HandshakeTimeout)
    );

    // The Hello comes late in the window; the room gets a window of its own.
    let hello_at = t0 + ms(4_000);
    assert!(matches!(
        rules.on_inbound(frame(&hello("lobby")), hello_at),
        Decision::Join(_)
    ));
    assert_eq!(rules.on_deadline(t0 + LIMITS.handshake_timeout), None);
    // The window starts once the room has the join.
    let sent_at = hello_at + ms(200);
    rules.join_sent(sent_at);
    assert_eq!(rules.on_deadline(hello_at + LIMITS.handshake_timeout), None);
    assert_eq!(
        rules
            .on_deadline(sent_at + LIMITS.handshake_timeout)
            .map(refused_code),
        Some(ErrorCode::RoomBusy)
    );
    rules.joined(sent_at + ms(10));
    assert_eq!(rules.deadline(), sent_at + ms(10) + LIMITS.idle_timeout);
}

fn refused_code(end: End) -> ErrorCode {
    refusal(Decision::End(end))
}

#[test]
fn a_joined_client_idles_out_on_protocol_messages_only() {
    let t0 = Instant::now();
    let mut rules = joined_rules(t0);
    assert_eq!(rules.deadline(), t0 + LIMITS.idle_timeout);
    let t1 = t0 + ms(20_000);
    assert_eq!(
        rules.on_inbound(frame(&input(1)), t1),
        Decision::Input {
            seq: 1,
            intent: RawValue::nil()
        }
    );
    assert_eq!(rules.deadline(), t1 + LIMITS.idle_timeout, "pushed back");
    // WebSocket pings come from the client's library, not from the player.
    assert_eq!(
        rules.on_inbound(Inbound::Control, t1 + ms(1_000)),
        Decision::Nothing
    );
    assert_eq!(
        rules.deadline(),
        t1 + LIMITS.idle_timeout,
        "not pushed back"
    );
    assert_eq!(rules.on_deadline(t1 + ms(29_999)), None);
    assert_eq!(
        rules.on_deadline(t1 + LIMITS.idle_timeout),
        Some(End::IdleTimeout)
    );
}

#[test]
fn joined_messages_go_to_the_room_or_are_answered_in_place() {
    let t0 = Instant::now();
    let mut rules = joined_rules(t0);
    assert_eq!(
        rules.on_inbound(frame(&ClientMsg::Ping { nonce: 7 }), t0),
        Decision::Pong(7)
    );
    assert_eq!(
        rules.on_inbound(frame(&chat("hi")), t0),
        Decision::Chat("hi".into())
    );
    assert_eq!(
        rules.on_inbound(datagram(&ClientMsg::Ack { tick: 12 }), t0),
        Decision::Ack(12)
    );
    assert_eq!(
        refusal(rules.on_inbound(datagram(&input(2)), t0)),
        ErrorCode::UnsupportedFrame,
        "only acks travel in datagrams"
    );
    assert_eq!(
        refusal(rules.on_inbound(frame(&hello("lobby")), t0)),
        ErrorCode::AlreadyJoined
    );
    assert_eq!(
        refusal(rules.on_inbound(frame(&chat("bell\u{7}")), t0)),
        ErrorCode::InvalidChat
    );
    assert_eq!(
        rules.on_inbound(Inbound::Closed, t0),
        Decision::End(End::ClientClosed)
    );
}

#[test]
fn the_message_rate_allows_a_burst_and_refills_with_time() {
    let t0 = Instant::now();
    let mut rules = joined_rules(t0);
    for seq in 0..LIMITS.message_burst {
        assert!(matches!(
            rules.on_inbound(frame(&input(seq)), t0),
            Decision::Input { .. }
        ));
    }
    assert_eq!(
        refusal(rules.on_inbound(frame(&input(99)), t0)),
        ErrorCode::RateLimited
    );

    // At 40 a second, one more fits every 25 ms.
    let mut rules = joined_rules(t0);
    for seq in 0..LIMITS.message_burst {
        rules.on_inbound(frame(&input(seq)), t0);
    }
    let later = t0 + ms(25);
    assert!(matches!(
        rules.on_inbound(frame(&input(50)), later),
        Decision::Input { .. }
    ));
}

#[test]
fn acks_have_their_own_rate_and_chat_a_stricter_one() {
    let t0 = Instant::now();
    let mut rules = joined_rules(t0);
    // Two seconds of acks at once use up none of the message rate.
    for tick in 0..80 {
        assert_eq!(
            rules.on_inbound(datagram(&ClientMsg::Ack { tick }), t0),
            Decision::Ack(tick)
        );
    }
    assert_eq!(
        refusal(rules.on_inbound(datagram(&ClientMsg::Ack { tick: 80 }), t0)),
        ErrorCode::RateLimited
    );
    assert!(matches!(
        rules.on_inbound(frame(&input(1)), t0),
        Decision::Input { .. }
    ));

    let mut rules = joined_rules(t0);
    for _ in 0..5 {
        assert!(matches!(
            rules.on_inbound(frame(&chat("spam")), t0),
            Decision::Chat(_)
        ));
    }
    assert_eq!(
        refusal(rules.on_inbound(frame(&chat("spam")), t0)),
        ErrorCode::RateLimited
    );
}

#[test]
fn actions_go_to_the_room_within_their_own_rate_and_never_by_datagram() {
    let t0 = Instant::now();
    let action = ClientMsg::Action {
        action: RawValue::encode(&"fire").expect("encodes"),
    };
    let mut rules = joined_rules(t0);
    // 3 a second: a burst of 6 (twice the rate, at least 5), then refusal.
    for _ in 0..6 {
        assert!(matches!(
            rules.on_inbound(frame(&action), t0),
            Decision::Action(_)
        ));
    }
    assert_eq!(
        refusal(rules.on_inbound(frame(&action), t0)),
        ErrorCode::RateLimited
    );
    // A second later three more fit.
    let later = t0 + ms(1_000);
    for _ in 0..3 {
        assert!(matches!(
            rules.on_inbound(frame(&action), later),
            Decision::Action(_)
        ));
    }
    let mut rules = joined_rules(t0);
    assert_eq!(
        refusal(rules.on_inbound(datagram(&action), t0)),
        ErrorCode::UnsupportedFrame
    );
}

#[test]
fn control_frames_and_unsolicited_pongs_use_up_the_message_rate() {
    let live = Arc::new(SessionLive::new("127.0.0.1:9".parse().expect("addr"), "ws"));
    let t0 = live.connected;
    let mut rules = SessionRules::new(LIMITS, Arc::new(arena::schema()), Arc::clone(&live), t0);
    let probe = live.probe(t0);
    assert_eq!(
        rules.on_inbound(
            Inbound::ProbeAnswer(Bytes::copy_from_slice(&probe)),
            t0 + ms(30)
        ),
        Decision::RoundTrip(ms(30)),
        "an answer to our probe is a round trip, at any rate"
    );
    for _ in 0..LIMITS.message_burst {
        let unsolicited = Inbound::ProbeAnswer(Bytes::from_static(b"12345678"));
        assert_eq!(rules.on_inbound(unsolicited, t0), Decision::Nothing);
    }
    assert_eq!(
        refusal(rules.on_inbound(Inbound::Control, t0)),
        ErrorCode::RateLimited
    );
}

#[test]
fn each_ending_gets_its_goodbye() {
    let label = |end: End, joined| end.close_request(joined).label;
    assert_eq!(label(End::Shutdown, true), "shutdown", "a player is kicked");
    assert_eq!(
        label(End::Shutdown, false),
        "shutting_down",
        "others get an error"
    );
    assert_eq!(label(End::IdleTimeout, true), "idle_timeout");
    assert_eq!(label(End::ClientClosed, true), end::CLIENT_CLOSED);
    assert_eq!(
        label(End::Transport("reset".into()), true),
        end::TRANSPORT_ERROR
    );
    let refused = End::Refused(ErrorCode::RateLimited, "too many".into()).close_request(false);
    assert_eq!(refused.label, "rate_limited");
    assert!(refused.frame.is_some(), "the client is told why");
}
