//! Property tests of the frame codec.
//!
//! - Decoding is total: arbitrary bytes, and valid frames with bytes
//!   flipped, inserted or deleted, give a message or an error, never a panic.
//! - Every message within the limits survives encode → decode unchanged.
//! - Whatever the decoder accepts re-encodes to a frame no longer than the
//!   input that decodes to the same message (the canonical form).
//! - Receivers skip elements appended after the known ones, refuse frames
//!   with fewer, and refuse a `Hello` of another version before its layout.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use serde::{Serialize, Serializer};
use tessera_protocol::arena::{JoinOptions, Name, Position, SpawnNear, Walk};
use tessera_protocol::limits::{
    MAX_CHAT, MAX_CLIENT_FRAME, MAX_COMPONENTS_PER_ENTITY, MAX_GAME_NAME, MAX_GAME_VALUE,
    MAX_REASON, MAX_REDIRECT_URL, MAX_RESUME_TOKEN, MAX_ROOM_NAME, MAX_SEAT, MAX_TOKEN,
};
use tessera_protocol::{
    ClientMsg, ComponentValue, DecodeError, Delta, DeltaPart, DeltaView, EntityState, ErrorCode,
    GameSchema, Hello, Move, PROTOCOL_VERSION, RawValue, ServerMsg, Welcome, truncate,
};

// ---------------------------------------------------------------------------
// Game payloads: arbitrary small serde values, encoded the way games do.

/// A MessagePack-shaped serde value, so payloads cover every type a game
/// could send (including maps, floats, bin and non-string map keys).
#[derive(Debug, Clone)]
enum Val {
    Nil,
    Bool(bool),
    UInt(u64),
    Int(i64),
    F32(f32),
    F64(f64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Val>),
    Map(Vec<(Val, Val)>),
}

impl Serialize for Val {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Nil => s.serialize_unit(),
            Self::Bool(b) => s.serialize_bool(*b),
            Self::UInt(n) => s.serialize_u64(*n),
            Self::Int(n) => s.serialize_i64(*n),
            Self::F32(f) => s.serialize_f32(*f),
            Self::F64(f) => s.serialize_f64(*f),
            Self::Str(t) => s.serialize_str(t),
            Self::Bin(b) => s.serialize_bytes(b),
            Self::Array(items) => s.collect_seq(items),
            Self::Map(pairs) => s.collect_map(pairs.iter().map(|(k, v)| (k, v))),
        }
    }
}

fn val() -> impl Strategy<Value = Val> {
    let leaf = prop_oneof![
        Just(Val::Nil),
        any::<bool>().prop_map(Val::Bool),
        any::<u64>().prop_map(Val::UInt),
        any::<i64>().prop_map(Val::Int),
        any::<f32>().prop_map(Val::F32),
        any::<f64>().prop_map(Val::F64),
        "\\PC{0,24}".prop_map(Val::Str),
        vec(any::<u8>(), 0..24).prop_map(Val::Bin),
    ];
    // Depth 4 stays well inside MAX_VALUE_DEPTH (16).
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Val::Array),
            vec((inner.clone(), inner), 0..4).prop_map(Val::Map),
        ]
    })
}

fn encoded<T: Serialize>(value: &T) -> RawValue {
    RawValue::encode(value).expect("small values fit MAX_GAME_VALUE")
}

/// A game payload within the limits: nil, one of the arena's types, or an
/// arbitrary value.
fn raw_value() -> impl Strategy<Value = RawValue> {
    prop_oneof![
        Just(RawValue::nil()),
        any::<(i8, i8)>().prop_map(|(dx, dy)| encoded(&Walk { dx, dy })),
        any::<(u16, u16)>().prop_map(|(x, y)| encoded(&Position { x, y })),
        "\\PC{0,32}".prop_map(|name| encoded(&Name(name))),
        "\\PC{0,32}".prop_map(|name| encoded(&JoinOptions::named(name))),
        ("\\PC{0,32}", "\\PC{0,32}").prop_map(|(name, near)| {
            encoded(&JoinOptions::named(name).near(SpawnNear::Player(near)))
        }),
        ("\\PC{0,8}", any::<(f32, f32)>()).prop_map(|(name, (x, y))| {
            encoded(&JoinOptions::named(name).near(SpawnNear::Point(x, y)))
        }),
        val().prop_filter_map("payload over MAX_GAME_VALUE", |v| RawValue::encode(&v).ok()),
    ]
}

/// A string of at most `max_bytes` bytes of UTF-8: usually short, sometimes
/// exactly at the limit.
fn text(max_bytes: usize) -> impl Strategy<Value = String> {
    let max_chars = max_bytes.min(64);
    prop_oneof![
        4 => proptest::string::string_regex(&format!("\\PC{{0,{max_chars}}}"))
            .expect("valid regex")
            .prop_map(move |s| truncate(s, max_bytes)),
        1 => Just("é".repeat(max_bytes / 2)),
        1 => Just("x".repeat(max_bytes)),
    ]
}

fn room() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex(&format!("[A-Za-z0-9_.:-]{{1,{MAX_ROOM_NAME}}}"))
            .expect("valid regex"),
        // The decoder checks the length only; the server checks the characters.
        text(MAX_ROOM_NAME),
    ]
}

// ---------------------------------------------------------------------------
// Messages.

/// A `Hello` of `version` with arbitrary fields within their limits.
fn hello_of(version: u16) -> impl Strategy<Value = Hello> {
    (
        room(),
        proptest::option::of(text(MAX_TOKEN)),
        proptest::option::of(text(MAX_RESUME_TOKEN)),
        raw_value(),
        proptest::option::of((text(MAX_GAME_NAME), any::<u64>())),
        proptest::option::of(text(MAX_SEAT)),
    )
        .prop_map(move |(room, token, resume, options, schema, seat)| Hello {
            version,
            room,
            token,
            resume,
            options,
            schema: schema.map(|(game, fingerprint)| GameSchema { game, fingerprint }),
            seat,
        })
}

/// Any client message within the field limits. Every such message fits
/// `MAX_CLIENT_FRAME` (see `largest_hello_fits_the_client_frame`), so none
/// is filtered out.
fn client_msg() -> impl Strategy<Value = ClientMsg> {
    prop_oneof![
        hello_of(PROTOCOL_VERSION).prop_map(ClientMsg::Hello),
        (any::<u32>(), raw_value()).prop_map(|(seq, intent)| ClientMsg::Input { seq, intent }),
        text(MAX_CHAT).prop_map(|text| ClientMsg::Chat { text }),
        any::<u32>().prop_map(|nonce| ClientMsg::Ping { nonce }),
        any::<u32>().prop_map(|tick| ClientMsg::Ack { tick }),
    ]
}

fn entity_state() -> impl Strategy<Value = EntityState> {
    (
        any::<u32>(),
        vec(
            (any::<u8>(), raw_value()).prop_map(|(id, value)| ComponentValue { id, value }),
            0..6,
        ),
    )
        .prop_map(|(id, components)| EntityState { id, components })
}

fn delta() -> impl Strategy<Value = Delta> {
    (
        any::<u32>(),
        any::<u32>(),
        vec(entity_state(), 0..6),
        vec(entity_state(), 0..6),
        vec(any::<u32>(), 0..20),
        any::<bool>(),
        vec(any::<(u32, i32, i32)>(), 0..20),
    )
        .prop_map(
            |(tick, ack_input, entered, updated, left, slotted, moved)| {
                // A delta with moves has a slot per entered entity; one
                // without may have them or not.
                let slots = if slotted || !moved.is_empty() {
                    (0..entered.len() as u32).map(|i| i * 7).collect()
                } else {
                    Vec::new()
                };
                Delta {
                    tick,
                    ack_input,
                    entered,
                    updated,
                    left,
                    slots,
                    moved: moved
                        .into_iter()
                        .map(|(slot, dx, dy)| Move { slot, dx, dy })
                        .collect(),
                }
            },
        )
}

/// A valid part: `baseline` 0 or an earlier tick than `tick`.
fn delta_part() -> impl Strategy<Value = DeltaPart> {
    (
        (
            1u32..,
            any::<u32>(),
            any::<u32>(),
            any::<u16>(),
            any::<bool>(),
        ),
        vec(entity_state(), 0..6),
        vec(entity_state(), 0..6),
        vec(any::<u32>(), 0..20),
    )
        .prop_map(
            |((tick, baseline, ack_input, part, last), entered, updated, left)| DeltaPart {
                tick,
                baseline: baseline % tick,
                ack_input,
                part,
                last,
                entered,
                updated,
                left,
            },
        )
}

fn server_msg() -> impl Strategy<Value = ServerMsg> {
    prop_oneof![
        (
            any::<(u64, u32, u16, u32, u32, u32)>(),
            proptest::option::of(text(MAX_RESUME_TOKEN)),
            any::<u8>(),
        )
            .prop_map(
                |(
                    (session_id, entity_id, tick_rate, tick, aoi_radius, aoi_margin),
                    resume,
                    motion,
                )| {
                    ServerMsg::Welcome(Welcome {
                        session_id,
                        entity_id,
                        tick_rate,
                        tick,
                        aoi_radius,
                        aoi_margin,
                        resume,
                        motion,
                    })
                }
            ),
        delta().prop_map(ServerMsg::Delta),
        (any::<u32>(), text(MAX_CHAT)).prop_map(|(from, text)| ServerMsg::Chat { from, text }),
        any::<(u32, u32)>().prop_map(|(nonce, tick)| ServerMsg::Pong { nonce, tick }),
        (any::<u16>(), text(MAX_REASON))
            .prop_map(|(code, message)| ServerMsg::Error { code, message }),
        (any::<u16>(), text(MAX_REASON))
            .prop_map(|(reason, message)| ServerMsg::Kicked { reason, message }),
        delta_part().prop_map(ServerMsg::DeltaPart),
        (text(MAX_REDIRECT_URL), text(MAX_SEAT))
            .prop_map(|(url, seat)| ServerMsg::Redirect { url, seat }),
    ]
}

// ---------------------------------------------------------------------------
// Mutations of valid frames.

#[derive(Debug, Clone)]
enum Mutation {
    /// XOR a byte with a non-zero mask.
    Flip(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    /// Cut the frame short.
    Truncate(Index),
    /// Overwrite a byte with an interesting MessagePack marker.
    Marker(Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let markers = prop::sample::select(vec![
        0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc4, 0xc9, 0xcc, 0xcd, 0xce,
        0xcf, 0xd0, 0xd3, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff,
    ]);
    prop_oneof![
        (any::<Index>(), 1..=u8::MAX).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), markers).prop_map(|(i, b)| Mutation::Marker(i, b)),
    ]
}

fn mutate(frame: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let len = frame.len();
        match m {
            Mutation::Insert(i, b) => frame.insert(i.index(len + 1), *b),
            _ if len == 0 => {}
            Mutation::Flip(i, mask) => frame[i.index(len)] ^= mask,
            Mutation::Delete(i) => {
                frame.remove(i.index(len));
            }
            Mutation::Truncate(i) => frame.truncate(i.index(len)),
            Mutation::Marker(i, b) => frame[i.index(len)] = *b,
        }
    }
}

// ---------------------------------------------------------------------------
// Checks shared by the properties.

/// Decodes `frame` as a client message; if it is accepted, its re-encoding
/// must be no longer and must decode to the same message.
fn check_client_frame(frame: Vec<u8>) -> Result<(), TestCaseError> {
    let len = frame.len();
    match ClientMsg::decode(&Bytes::from(frame)) {
        Ok(msg) => {
            let again = msg.encode();
            prop_assert!(again.len() <= len, "canonical form is longer");
            prop_assert_eq!(ClientMsg::decode(&Bytes::from(again)), Ok(msg));
        }
        Err(e) => {
            prop_assert_eq!(
                e.code() == ErrorCode::FrameTooLarge,
                len > MAX_CLIENT_FRAME,
                "{}",
                e
            );
        }
    }
    Ok(())
}

/// Entries as plain data, to compare the view with the owned decoder.
type Flat = Vec<(u32, Vec<(u8, Vec<u8>)>)>;

/// The in-place view agrees with the owned decoder on every frame: the same
/// delta, or the same error, or "not a delta".
fn check_delta_view(
    frame: &[u8],
    decoded: &Result<ServerMsg, DecodeError>,
) -> Result<(), TestCaseError> {
    let view = DeltaView::parse(frame);
    match (decoded, view) {
        (Ok(ServerMsg::Delta(d)), Ok(Some(v))) => {
            prop_assert_eq!((v.tick, v.ack_input), (d.tick, d.ack_input));
            let owned = |entries: &[EntityState]| -> Flat {
                entries
                    .iter()
                    .map(|e| {
                        (
                            e.id,
                            e.components
                                .iter()
                                .map(|c| (c.id, c.value.as_bytes().to_vec()))
                                .collect(),
                        )
                    })
                    .collect()
            };
            let viewed = |entries: tessera_protocol::delta_view::Entries<'_>| -> Flat {
                entries
                    .map(|e| (e.id, e.components().map(|(c, v)| (c, v.to_vec())).collect()))
                    .collect()
            };
            prop_assert_eq!(viewed(v.entered()), owned(&d.entered));
            prop_assert_eq!(viewed(v.updated()), owned(&d.updated));
            prop_assert_eq!(v.left().collect::<Vec<_>>(), d.left.clone());
        }
        (Ok(ServerMsg::Delta(_)), other) => prop_assert!(false, "view disagrees: {other:?}"),
        (Ok(_), view) => prop_assert!(matches!(view, Ok(None)), "not a delta: {view:?}"),
        (Err(_), Ok(None)) => {}
        (Err(e), Err(v)) => prop_assert_eq!(e, &v),
        (Err(e), Ok(Some(_))) => prop_assert!(false, "view accepted what decode refused: {e}"),
    }
    Ok(())
}

fn check_server_frame(frame: Vec<u8>) -> Result<(), TestCaseError> {
    let len = frame.len();
    let decoded = ServerMsg::decode(&Bytes::from(frame.clone()));
    check_delta_view(&frame, &decoded)?;
    match decoded {
        Ok(msg) => {
            let again = msg.encode();
            prop_assert!(again.len() <= len, "canonical form is longer");
            prop_assert_eq!(ServerMsg::decode(&Bytes::from(again)), Ok(msg));
        }
        Err(e) => prop_assert_ne!(e.code(), ErrorCode::FrameTooLarge, "{}", e),
    }
    Ok(())
}

/// A frame that starts like a message (array header, known-ish tag) so that
/// random bytes reach the field decoders instead of failing at byte 0.
fn plausible_frame() -> impl Strategy<Value = Vec<u8>> {
    (0u8..=7, 0u8..=7, vec(any::<u8>(), 0..256)).prop_map(|(arity, tag, rest)| {
        let mut frame = vec![0x90 | arity, tag];
        frame.extend(rest);
        frame
    })
}

/// `frame` (a message with a fixarray header) with `extra` encoded values
/// appended as further elements, as a later protocol version might send.
fn with_appended(frame: &[u8], extra: &[Val]) -> Vec<u8> {
    let len = usize::from(frame[0] & 0x0f) + extra.len();
    assert!(frame[0] & 0xf0 == 0x90 && len <= 15, "fixarray header");
    let mut out = frame.to_vec();
    out[0] = 0x90 | len as u8;
    for v in extra {
        out.extend(rmp_serde::to_vec(v).expect("values encode"));
    }
    out
}

/// `frame` with its fixarray header claiming `fewer` elements less.
fn with_fewer(frame: &[u8], fewer: u8) -> Vec<u8> {
    let mut out = frame.to_vec();
    out[0] -= fewer;
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    // (a) Decoding never panics.

    #[test]
    fn arbitrary_bytes_never_panic(frame in vec(any::<u8>(), 0..5000)) {
        check_client_frame(frame.clone())?;
        check_server_frame(frame)?;
    }

    #[test]
    fn plausible_frames_never_panic(frame in plausible_frame()) {
        check_client_frame(frame.clone())?;
        check_server_frame(frame)?;
    }

    #[test]
    fn mutated_client_frames_never_panic(
        msg in client_msg(),
        mutations in vec(mutation(), 1..5),
    ) {
        let mut frame = msg.encode();
        mutate(&mut frame, &mutations);
        check_client_frame(frame.clone())?;
        check_server_frame(frame)?;
    }

    #[test]
    fn mutated_server_frames_never_panic(
        msg in server_msg(),
        mutations in vec(mutation(), 1..5),
    ) {
        let mut frame = msg.encode();
        mutate(&mut frame, &mutations);
        check_server_frame(frame.clone())?;
        check_client_frame(frame)?;
    }

    // (b) Encode then decode gives the message back.

    #[test]
    fn client_messages_roundtrip(msg in client_msg()) {
        let frame = Bytes::from(msg.encode());
        prop_assert_eq!(ClientMsg::decode(&frame), Ok(msg));
    }

    #[test]
    fn server_messages_roundtrip(msg in server_msg()) {
        let frame = Bytes::from(msg.encode());
        prop_assert_eq!(ServerMsg::decode(&frame), Ok(msg));
    }

    // (b2) Forward compatibility: appended elements are skipped, the
    // message is unchanged, and its canonical form drops them.

    #[test]
    fn appended_client_elements_are_skipped(msg in client_msg(), extra in vec(val(), 1..5)) {
        // A Hello without a schema has six elements, and one without a
        // seat seven: what comes seventh is read as its schema and eighth
        // as its seat, so the appended ones start after nils there.
        let mut extra = extra;
        if let ClientMsg::Hello(h) = &msg
            && h.seat.is_none()
        {
            extra.insert(0, Val::Nil);
            if h.schema.is_none() {
                extra.insert(0, Val::Nil);
            }
        }
        let frame = with_appended(&msg.encode(), &extra);
        if frame.len() > MAX_CLIENT_FRAME {
            prop_assert_eq!(
                ClientMsg::decode(&Bytes::from(frame)).map_err(|e| e.code()),
                Err(ErrorCode::FrameTooLarge)
            );
        } else {
            prop_assert_eq!(ClientMsg::decode(&Bytes::from(frame)), Ok(msg));
        }
    }

    #[test]
    fn appended_server_elements_are_skipped(msg in server_msg(), extra in vec(val(), 1..5)) {
        // Optional elements this version knows come before appended ones:
        // a Welcome's resume token (nil) and motion component (0), a
        // delta's slots and moves (as empty sections).
        let mut extra = extra;
        let msg = match msg {
            ServerMsg::Welcome(w) if w.motion == 0 => {
                extra.insert(0, Val::UInt(0));
                if w.resume.is_none() {
                    extra.insert(0, Val::Nil);
                }
                ServerMsg::Welcome(w)
            }
            ServerMsg::Delta(d) if !d.is_compact() && !d.entered.is_empty() => {
                let slots = vec![7; d.entered.len()];
                ServerMsg::Delta(Delta { slots, ..d })
            }
            ServerMsg::Delta(d) if !d.is_compact() => {
                extra.insert(0, Val::Array(Vec::new()));
                extra.insert(0, Val::Array(Vec::new()));
                ServerMsg::Delta(d)
            }
            other => other,
        };
        let frame = with_appended(&msg.encode(), &extra);
        prop_assert_eq!(ServerMsg::decode(&Bytes::from(frame)), Ok(msg));
    }

    #[test]
    fn missing_elements_are_malformed(
        client in client_msg(),
        server in server_msg(),
        fewer in 1u8..=2,
    ) {
        let frame = with_fewer(&client.encode(), fewer);
        prop_assert_eq!(
            ClientMsg::decode(&Bytes::from(frame)).map_err(|e| e.code()),
            Err(ErrorCode::Malformed)
        );
        let frame = with_fewer(&server.encode(), fewer);
        prop_assert_eq!(
            ServerMsg::decode(&Bytes::from(frame)).map_err(|e| e.code()),
            Err(ErrorCode::Malformed)
        );
    }

    /// A `Hello` of another version is refused as such whatever follows the
    /// version: this one's fields, fewer, or more.
    #[test]
    fn other_versions_are_unsupported_whatever_the_layout(
        version in any::<u16>().prop_filter("another version", |v| *v != PROTOCOL_VERSION),
        hello in hello_of(PROTOCOL_VERSION),
        extra in vec(val(), 0..4),
        fewer in 0u8..=4,
    ) {
        let frame = ClientMsg::Hello(Hello { version, ..hello }).encode();
        let frame = with_fewer(&with_appended(&frame, &extra), fewer);
        prop_assert_eq!(
            ClientMsg::decode(&Bytes::from(frame)),
            Err(DecodeError::UnsupportedVersion { found: version })
        );
    }

    // (c) Whatever decodes re-encodes to a frame that decodes to the same
    // message: checked by `check_*_frame` on every input above, and here on
    // frames re-encoded twice, which must reach a fixed point.

    #[test]
    fn canonical_form_is_a_fixed_point(
        msg in client_msg(),
        mutations in vec(mutation(), 0..4),
    ) {
        let mut frame = msg.encode();
        mutate(&mut frame, &mutations);
        if let Ok(decoded) = ClientMsg::decode(&Bytes::from(frame)) {
            let once = decoded.encode();
            let twice = ClientMsg::decode(&Bytes::from(once.clone()))
                .map(|m| m.encode());
            prop_assert_eq!(twice, Ok(once));
        }
    }
}

// ---------------------------------------------------------------------------
// Boundaries the generators above rarely reach.

fn entity_with(components: usize) -> ServerMsg {
    ServerMsg::Delta(Delta {
        updated: vec![EntityState {
            id: 1,
            components: (0..components)
                .map(|i| ComponentValue {
                    id: i as u8,
                    value: RawValue::nil(),
                })
                .collect(),
        }],
        ..Delta::default()
    })
}

#[test]
fn an_entry_holds_at_most_max_components() {
    let at_limit = entity_with(MAX_COMPONENTS_PER_ENTITY);
    assert_eq!(
        ServerMsg::decode(&Bytes::from(at_limit.encode())),
        Ok(at_limit)
    );
    let over = entity_with(MAX_COMPONENTS_PER_ENTITY + 1);
    let err = ServerMsg::decode(&Bytes::from(over.encode())).expect_err("65 components");
    assert_eq!(err.code(), ErrorCode::Malformed);
}

/// A game payload of exactly `len` encoded bytes: a `bin` value.
fn bin_payload(len: usize) -> RawValue {
    let data = len - 3;
    let mut bytes = vec![0xc5];
    bytes.extend_from_slice(&u16::try_from(data).expect("fits").to_be_bytes());
    bytes.resize(len, 0xab);
    RawValue::from_bytes(Bytes::from(bytes)).expect("one value within limits")
}

/// The largest `Hello` this version can send: every field at its limit.
fn largest_hello() -> ClientMsg {
    ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        room: "r".repeat(MAX_ROOM_NAME),
        token: Some("t".repeat(MAX_TOKEN)),
        resume: Some("s".repeat(MAX_RESUME_TOKEN)),
        options: bin_payload(MAX_GAME_VALUE),
        schema: Some(GameSchema {
            game: "g".repeat(MAX_GAME_NAME),
            fingerprint: u64::MAX,
        }),
        seat: Some("z".repeat(MAX_SEAT)),
    })
}

#[test]
fn largest_hello_fits_the_client_frame() {
    let hello = largest_hello();
    let frame = hello.encode();
    // 3 (header, tag, version) + 66 (room) + 1027 (token) + 259 (resume)
    // + 2048 (options) + 44 (schema: 1 array, 34 game, 9 fingerprint)
    // + 130 (seat).
    assert_eq!(frame.len(), 3577);
    assert!(frame.len() <= MAX_CLIENT_FRAME);
    assert_eq!(ClientMsg::decode(&Bytes::from(frame)), Ok(hello));
    // Each field one byte over its limit is refused as malformed.
    let ClientMsg::Hello(max) = largest_hello() else {
        unreachable!()
    };
    let over = [
        Hello {
            room: "r".repeat(MAX_ROOM_NAME + 1),
            ..max.clone()
        },
        Hello {
            token: Some("t".repeat(MAX_TOKEN + 1)),
            ..max.clone()
        },
        Hello {
            resume: Some("s".repeat(MAX_RESUME_TOKEN + 1)),
            ..max.clone()
        },
        Hello {
            schema: Some(GameSchema {
                game: "g".repeat(MAX_GAME_NAME + 1),
                fingerprint: 0,
            }),
            ..max.clone()
        },
        Hello {
            seat: Some("z".repeat(MAX_SEAT + 1)),
            ..max
        },
    ];
    for hello in over {
        let err = ClientMsg::decode(&Bytes::from(ClientMsg::Hello(hello).encode()))
            .expect_err("a field over its limit");
        assert_eq!(err.code(), ErrorCode::Malformed, "{err}");
    }
}

/// The largest `Hello` followed by one appended `bin` element, `total`
/// bytes in all: what a later version's `Hello` might look like.
fn padded_hello(total: usize) -> Vec<u8> {
    let base = largest_hello().encode();
    let pad = total - base.len();
    let mut extra = vec![0xc5];
    extra.extend_from_slice(&u16::try_from(pad - 3).expect("fits").to_be_bytes());
    extra.resize(pad, 0xcd);
    let mut frame = base;
    frame[0] += 1;
    frame.extend(extra);
    assert_eq!(frame.len(), total);
    frame
}

#[test]
fn client_frame_limit_is_inclusive() {
    let at_limit = padded_hello(MAX_CLIENT_FRAME);
    assert_eq!(
        ClientMsg::decode(&Bytes::from(at_limit)),
        Ok(largest_hello())
    );
    let over = padded_hello(MAX_CLIENT_FRAME + 1);
    let err = ClientMsg::decode(&Bytes::from(over)).expect_err("one byte over");
    assert_eq!(err.code(), ErrorCode::FrameTooLarge);
}
