//! Golden test vectors: every ```` ```vector ```` block of `PROTOCOL.md` is
//! decoded with the real decoders and, when valid, re-encoded byte for byte.
//!
//! The document is the source of truth for client implementers, so this test
//! keeps it honest: a vector that the code disagrees with fails here, and so
//! does a document whose error-code or kick-reason table drifts from the code.

use std::collections::BTreeSet;

use bytes::Bytes;
use tessera_protocol::{
    ClientMsg, Delta, DeltaPart, ErrorCode, Hello, KickReason, RawValue, ServerMsg, Welcome,
};

const DOC: &str = include_str!("../PROTOCOL.md");

/// Fewer vectors than this means the parser (or the document) is broken.
const MIN_VALID: usize = 30;
const MIN_INVALID: usize = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Client,
    Server,
    ClientInvalid,
    ServerInvalid,
}

impl Direction {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "client" => Ok(Self::Client),
            "server" => Ok(Self::Server),
            "client-invalid" => Ok(Self::ClientInvalid),
            "server-invalid" => Ok(Self::ServerInvalid),
            other => Err(format!("unknown direction {other:?}")),
        }
    }

    fn is_valid(self) -> bool {
        matches!(self, Self::Client | Self::Server)
    }
}

#[derive(Debug)]
struct Vector {
    name: String,
    /// Line of the opening fence in `PROTOCOL.md`, for error messages.
    line: usize,
    direction: Direction,
    bytes: Vec<u8>,
    error: Option<String>,
    canonical: Option<Vec<u8>>,
}

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    s.split_whitespace()
        .map(|pair| {
            if pair.len() != 2 {
                return Err(format!("{pair:?} is not two hex digits"));
            }
            u8::from_str_radix(pair, 16).map_err(|e| format!("{pair:?}: {e}"))
        })
        .collect()
}

fn parse_block(line: usize, body: &[&str]) -> Result<Vector, String> {
    let mut name = None;
    let mut direction = None;
    let mut hex = None;
    let mut error = None;
    let mut canonical = None;
    for row in body {
        let (key, value) = row
            .split_once(':')
            .ok_or_else(|| format!("line {row:?} is not `key: value`"))?;
        let value = value.trim().to_owned();
        let slot = match key.trim() {
            "name" => &mut name,
            "direction" => &mut direction,
            "hex" => &mut hex,
            "error" => &mut error,
            "canonical" => &mut canonical,
            other => return Err(format!("unknown key {other:?}")),
        };
        if slot.replace(value).is_some() {
            return Err(format!("key {key:?} given twice"));
        }
    }
    let name = name.ok_or("missing name")?;
    let direction = Direction::parse(&direction.ok_or("missing direction")?)?;
    let bytes = parse_hex(&hex.ok_or("missing hex")?)?;
    let canonical = canonical.map(|c| parse_hex(&c)).transpose()?;
    match (direction.is_valid(), &error, &canonical) {
        (true, Some(_), _) => return Err("a valid vector has no `error`".into()),
        (false, None, _) => return Err("an invalid vector needs `error`".into()),
        (false, _, Some(_)) => return Err("an invalid vector has no `canonical`".into()),
        _ => {}
    }
    Ok(Vector {
        name,
        line,
        direction,
        bytes,
        error,
        canonical,
    })
}

/// Every ```` ```vector ```` block of the document, in order.
fn vectors() -> Vec<Vector> {
    let lines: Vec<&str> = DOC.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() != "```vector" {
            i += 1;
            continue;
        }
        let start = i + 1;
        let end = (start..lines.len())
            .find(|&j| lines[j].trim_end() == "```")
            .unwrap_or_else(|| panic!("PROTOCOL.md:{start}: vector block is never closed"));
        match parse_block(start, &lines[start..end]) {
            Ok(v) => out.push(v),
            Err(e) => panic!("PROTOCOL.md:{start}: bad vector block: {e}"),
        }
        i = end + 1;
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks one valid vector: it decodes, re-encodes to its canonical bytes,
/// and the canonical bytes decode to the same message. Returns its kind.
fn check_valid<M: PartialEq + std::fmt::Debug>(
    v: &Vector,
    decode: impl Fn(&Bytes) -> Result<M, tessera_protocol::DecodeError>,
    encode: impl Fn(&M) -> Vec<u8>,
    kind: impl Fn(&M) -> &'static str,
) -> Result<&'static str, String> {
    let msg = decode(&Bytes::from(v.bytes.clone()))
        .map_err(|e| format!("does not decode: {e} ({})", e.code()))?;
    let expected = v.canonical.as_deref().unwrap_or(&v.bytes);
    let again = encode(&msg);
    if again != expected {
        return Err(format!(
            "{msg:?} re-encodes to\n    {}\n  expected\n    {}",
            hex(&again),
            hex(expected)
        ));
    }
    if v.canonical.is_some() {
        if v.canonical.as_deref() == Some(v.bytes.as_slice()) {
            return Err("`canonical` equals `hex`; drop the line".into());
        }
        let from_canonical =
            decode(&Bytes::from(again)).map_err(|e| format!("canonical form fails: {e}"))?;
        if from_canonical != msg {
            return Err(format!("canonical form decodes to {from_canonical:?}"));
        }
    }
    Ok(kind(&msg))
}

fn check_invalid<M: std::fmt::Debug>(
    v: &Vector,
    decode: impl Fn(&Bytes) -> Result<M, tessera_protocol::DecodeError>,
) -> Result<(), String> {
    let expected = v.error.as_deref().unwrap_or_default();
    match decode(&Bytes::from(v.bytes.clone())) {
        Ok(msg) => Err(format!("decodes to {msg:?}, expected error {expected}")),
        Err(e) if e.code().as_str() == expected => Ok(()),
        Err(e) => Err(format!(
            "fails with {} ({e}), expected {expected}",
            e.code().as_str()
        )),
    }
}

/// Runs every vector and returns the kinds covered per direction. Panics
/// listing every failing vector at once.
fn run_all() -> (BTreeSet<&'static str>, BTreeSet<&'static str>) {
    let mut client_kinds = BTreeSet::new();
    let mut server_kinds = BTreeSet::new();
    let mut failures = Vec::new();
    for v in vectors() {
        let result = match v.direction {
            Direction::Client => {
                check_valid(&v, ClientMsg::decode, ClientMsg::encode, ClientMsg::kind).map(|k| {
                    client_kinds.insert(k);
                })
            }
            Direction::Server => {
                check_valid(&v, ServerMsg::decode, ServerMsg::encode, ServerMsg::kind).map(|k| {
                    server_kinds.insert(k);
                })
            }
            Direction::ClientInvalid => check_invalid(&v, ClientMsg::decode),
            Direction::ServerInvalid => check_invalid(&v, ServerMsg::decode),
        };
        if let Err(e) = result {
            failures.push(format!(
                "PROTOCOL.md:{} vector {:?} ({:?}): {e}",
                v.line, v.name, v.direction
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} vector(s) fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
    (client_kinds, server_kinds)
}

#[test]
fn every_vector_block_parses_and_names_are_unique() {
    let all = vectors();
    // Count fences independently of the parser so that a block the parser
    // skipped cannot go unnoticed.
    let fences = DOC.lines().filter(|l| l.trim_end() == "```vector").count();
    assert_eq!(all.len(), fences, "parsed vectors vs. ```vector fences");

    let valid = all.iter().filter(|v| v.direction.is_valid()).count();
    let invalid = all.len() - valid;
    assert!(valid >= MIN_VALID, "only {valid} valid vectors");
    assert!(invalid >= MIN_INVALID, "only {invalid} invalid vectors");

    let mut names = BTreeSet::new();
    for v in &all {
        assert!(
            names.insert(&v.name),
            "vector name {:?} is used twice",
            v.name
        );
    }
}

#[test]
fn vectors_decode_and_reencode_as_documented() {
    run_all();
}

/// One value of every message kind. The `match` has no wildcard, so adding
/// a variant breaks compilation here until a sample (and a vector) is added.
fn all_client_kinds() -> BTreeSet<&'static str> {
    let samples = [
        ClientMsg::Hello(Hello::new("r")),
        ClientMsg::Input {
            seq: 0,
            intent: RawValue::nil(),
        },
        ClientMsg::Chat { text: "t".into() },
        ClientMsg::Ping { nonce: 0 },
        ClientMsg::Ack { tick: 0 },
        ClientMsg::Action {
            action: RawValue::nil(),
        },
    ];
    for s in &samples {
        match s {
            ClientMsg::Hello(_)
            | ClientMsg::Input { .. }
            | ClientMsg::Chat { .. }
            | ClientMsg::Ping { .. }
            | ClientMsg::Ack { .. }
            | ClientMsg::Action { .. } => {}
        }
    }
    samples.iter().map(ClientMsg::kind).collect()
}

fn all_server_kinds() -> BTreeSet<&'static str> {
    let samples = [
        ServerMsg::Welcome(Welcome {
            session_id: 0,
            entity_id: 0,
            tick_rate: 0,
            tick: 0,
            aoi_radius: 0,
            aoi_margin: 0,
            resume: None,
            motion: 0,
        }),
        ServerMsg::Delta(Delta::default()),
        ServerMsg::Chat {
            from: 0,
            text: String::new(),
        },
        ServerMsg::Pong { nonce: 0, tick: 0 },
        ServerMsg::error(ErrorCode::Internal, ""),
        ServerMsg::kicked(KickReason::Admin, ""),
        ServerMsg::DeltaPart(DeltaPart::default()),
        ServerMsg::Event {
            payload: RawValue::nil(),
        },
        ServerMsg::Redirect {
            url: String::new(),
            seat: String::new(),
        },
    ];
    for s in &samples {
        match s {
            ServerMsg::Welcome(_)
            | ServerMsg::Delta(_)
            | ServerMsg::Chat { .. }
            | ServerMsg::Pong { .. }
            | ServerMsg::Error { .. }
            | ServerMsg::Kicked { .. }
            | ServerMsg::DeltaPart(_)
            | ServerMsg::Event { .. }
            | ServerMsg::Redirect { .. } => {}
        }
    }
    samples.iter().map(ServerMsg::kind).collect()
}

#[test]
fn every_message_kind_has_a_valid_vector() {
    let (client, server) = run_all();
    let client_all = all_client_kinds();
    let server_all = all_server_kinds();
    assert_eq!(client_all.len(), 6, "client kinds are distinct");
    assert_eq!(server_all.len(), 9, "server kinds are distinct");
    let missing_client: Vec<_> = client_all.difference(&client).collect();
    let missing_server: Vec<_> = server_all.difference(&server).collect();
    assert!(
        missing_client.is_empty() && missing_server.is_empty(),
        "no valid vector for client {missing_client:?} / server {missing_server:?}"
    );
}

/// Rows `| number | `name` | meaning |` of the table under `heading`.
fn table_rows(heading: &str) -> Vec<(u16, String)> {
    let section = DOC
        .split_once(heading)
        .unwrap_or_else(|| panic!("PROTOCOL.md has no {heading:?}"))
        .1;
    let section = section.split("\n## ").next().unwrap_or_default();
    section
        .lines()
        .filter_map(|line| {
            let mut cells = line.split('|').map(str::trim).skip(1);
            let number = cells.next()?.parse().ok()?;
            let name = cells.next()?.trim_matches('`').to_owned();
            Some((number, name))
        })
        .collect()
}

#[test]
fn error_code_table_matches_the_code() {
    let documented = table_rows("## 8. Error codes");
    let actual: Vec<(u16, String)> = ErrorCode::ALL
        .iter()
        .map(|c| (*c as u16, c.as_str().to_owned()))
        .collect();
    assert_eq!(documented, actual);
}

#[test]
fn kick_reason_table_matches_the_code() {
    let documented = table_rows("## 9. Kick reasons");
    let actual: Vec<(u16, String)> = KickReason::ALL
        .iter()
        .map(|r| (*r as u16, r.as_str().to_owned()))
        .collect();
    assert_eq!(documented, actual);
}

#[test]
fn parser_refuses_malformed_blocks() {
    let ok = ["name: n", "direction: client", "hex: 92 04 05"];
    assert!(parse_block(1, &ok).is_ok());
    let cases: [&[&str]; 6] = [
        &["name: n", "direction: client"],
        &["name: n", "direction: sideways", "hex: 00"],
        &["name: n", "direction: client", "hex: 0"],
        &["name: n", "direction: client-invalid", "hex: 00"],
        &[
            "name: n",
            "direction: client",
            "hex: 00",
            "error: malformed",
        ],
        &["name: n", "direction: client", "hex: 00", "colour: red"],
    ];
    for case in cases {
        assert!(parse_block(1, case).is_err(), "{case:?} was accepted");
    }
}

#[test]
fn limits_table_matches_the_code() {
    use tessera_protocol::limits::*;
    let section = DOC
        .split_once("## 3. Limits")
        .expect("PROTOCOL.md has a limits section")
        .1;
    let section = section.split("\n## ").next().unwrap_or_default();
    let documented: Vec<(String, usize)> = section
        .lines()
        .filter_map(|line| {
            let mut cells = line.split('|').map(str::trim).skip(1);
            let name = cells
                .next()?
                .strip_prefix('`')?
                .strip_suffix('`')?
                .to_owned();
            let value = cells.next()?.split_whitespace().next()?.parse().ok()?;
            Some((name, value))
        })
        .collect();
    let actual: Vec<(String, usize)> = [
        ("MAX_CLIENT_FRAME", MAX_CLIENT_FRAME),
        ("MAX_SERVER_FRAME", MAX_SERVER_FRAME),
        ("MAX_ROOM_NAME", MAX_ROOM_NAME),
        ("MAX_TOKEN", MAX_TOKEN),
        ("MAX_RESUME_TOKEN", MAX_RESUME_TOKEN),
        ("MAX_CHAT", MAX_CHAT),
        ("MAX_REASON", MAX_REASON),
        ("MAX_GAME_VALUE", MAX_GAME_VALUE),
        ("MAX_VALUE_DEPTH", MAX_VALUE_DEPTH),
        ("MAX_COMPONENTS_PER_ENTITY", MAX_COMPONENTS_PER_ENTITY),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_owned(), v))
    .collect();
    assert_eq!(documented, actual);
}
