//! `tessera admin …`: the admin API from a terminal.
//!
//! Each subcommand is one request (`watch` repeats one every second). Output
//! is a table, or the API's JSON with `--json`. Every failure is one line
//! and a non-zero exit ([`CliError::exit_code`]): 2 when the server cannot
//! be asked at all (bad URL, no token, nothing listening), 1 when it
//! answered no (wrong token, unknown room or player, busy room).
//!
//! [`run`] writes to any `Write`, so tests call it in-process and read what
//! an operator would see.

use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand};
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use hyper::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::http::{HttpError, Target};
use super::report::{
    BroadcastReport, BroadcastRequest, CloseReport, CloseRequest, DeadLetterList, DrainReport,
    EntityReport, ErrorBody, KickReport, KickRequest, NodeList, RoomDetail, RoomList, RoomSummary,
};
use crate::admin_token::TOKEN_FILE;
use crate::config::ServerConfig;

/// Default `--url`: the server's default `admin_addr`.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7780";
/// How often `watch` refreshes.
const WATCH_PERIOD: Duration = Duration::from_secs(1);
/// Clears the terminal and puts the cursor top left (`watch`).
const CLEAR: &str = "\x1b[H\x1b[2J";

/// Talk to a running node's admin API.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Admin API URL.
    #[arg(long, env = "TESSERA_ADMIN_URL", default_value = DEFAULT_URL, global = true)]
    pub url: String,
    /// Admin token. Default: `./tessera-data/admin-token` if it exists
    /// (the token a server started here generated).
    #[arg(
        long,
        env = "TESSERA_ADMIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// List the rooms: players, entities, tick p50/p99, bytes out per second.
    Rooms,
    /// One room in detail: each player's session, address, RTT, lag, view.
    Room { room: String },
    /// One entity's replicated components.
    Entity { room: String, id: u32 },
    /// Remove a player (by session id, as `room` shows); it is told why.
    Kick {
        room: String,
        #[arg(value_name = "SESSION")]
        player: u64,
        /// Told to the player in its `Kicked` message.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Close a room: every player is told, the name is free again.
    Close {
        room: String,
        /// Told to every player.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Refuse new joins from now on (`/ready` turns 503); players stay.
    /// In a cluster the node also takes no new rooms or seats.
    Drain {
        /// Drain this node of the cluster instead of the one asked.
        #[arg(long)]
        node: Option<String>,
    },
    /// List the cluster's nodes: URLs, state, rooms, players, CPU, and the
    /// age of each one's last heartbeat.
    Nodes,
    /// Send a server chat line to every player of the cluster (or of one
    /// room).
    Broadcast {
        text: String,
        #[arg(long)]
        room: Option<String>,
    },
    /// Show a room, refreshed in place every second until Ctrl-C.
    Watch { room: String },
    /// List the records the database kept refusing, with their errors
    /// (`tessera worker --replay-dead-letters` tries them again).
    DeadLetters,
}

/// Why a command failed. Its `Display` is one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("invalid --url {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(
        "no admin token: pass --token, set TESSERA_ADMIN_TOKEN, or run where ./tessera-data/{TOKEN_FILE} is"
    )]
    NoToken,
    #[error("cannot reach the admin API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the admin API at {url} refused the token (401 unauthorized)")]
    Unauthorized { url: String },
    #[error("{message} ({status})")]
    Api { status: u16, message: String },
    #[error("unexpected answer from {url}: {reason}")]
    BadAnswer { url: String, reason: String },
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// 2: the server could not be asked; 1: it answered no.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::BadUrl { .. } | Self::NoToken | Self::Unreachable { .. } => 2,
            _ => 1,
        }
    }

    /// The message as exactly one line.
    pub fn line(&self) -> String {
        self.to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Runs one admin command, writing what it shows to `out`.
pub async fn run(args: AdminArgs, out: &mut (dyn Write + Send)) -> Result<(), CliError> {
    let client = Client::new(&args)?;
    match &args.command {
        AdminCommand::Rooms => {
            let list: RoomList = client.get("/admin/rooms").await?;
            show(out, args.json, &list, render_rooms)
        }
        AdminCommand::Room { room } => {
            let detail = client.room(room).await?;
            show(out, args.json, &detail, render_room)
        }
        AdminCommand::Entity { room, id } => {
            let path = format!("/admin/rooms/{}/entities/{id}", segment(room));
            let entity: EntityReport = client.get(&path).await?;
            show(out, args.json, &entity, render_entity)
        }
        AdminCommand::Kick {
            room,
            player,
            reason,
        } => {
            let body = KickRequest {
                session: *player,
                reason: reason.clone(),
            };
            let path = format!("/admin/rooms/{}/kick", segment(room));
            let kicked: KickReport = client.post(&path, &body).await?;
            show(out, args.json, &kicked, |k| {
                format!(
                    "kicked session {} from room {}: {}\n",
                    k.session, k.room, k.reason
                )
            })
        }
        AdminCommand::Close { room, reason } => {
            let body = CloseRequest {
                reason: reason.clone(),
            };
            let path = format!("/admin/rooms/{}/close", segment(room));
            let closed: CloseReport = client.post(&path, &body).await?;
            show(out, args.json, &closed, |c| {
                format!("closed room {}; {} player(s) told\n", c.room, c.kicked)
            })
        }
        AdminCommand::DeadLetters => {
            let list: DeadLetterList = client.get("/admin/dead-letters").await?;
            show(out, args.json, &list, render_dead_letters)
        }
        AdminCommand::Nodes => {
            let list: NodeList = client.get("/admin/nodes").await?;
            show(out, args.json, &list, render_nodes)
        }
        AdminCommand::Broadcast { text, room } => {
            let body = BroadcastRequest {
                text: text.clone(),
                room: room.clone(),
            };
            let sent: BroadcastReport = client.post("/admin/broadcast", &body).await?;
            show(out, args.json, &sent, |b| match &b.room {
                Some(room) => format!("sent to room {room} (through {} node(s))\n", b.nodes),
                None => format!("sent to every room of {} node(s)\n", b.nodes),
            })
        }
        AdminCommand::Drain { node } => {
            let path = match node {
                Some(node) => format!("/admin/drain?node={}", segment(node)),
                None => "/admin/drain".to_owned(),
            };
            let drained: DrainReport = client.post(&path, &()).await?;
            show(out, args.json, &drained, |d| {
                format!(
                    "draining: new joins are refused; {} room(s) with {} player(s) keep running\n",
                    d.rooms, d.players
                )
            })
        }
        AdminCommand::Watch { room } => watch(&client, room, args.json, out).await,
    }
}

/// Redraws the room every [`WATCH_PERIOD`] until Ctrl-C (or an error: the
/// room closed, the server went away).
async fn watch(
    client: &Client,
    room: &str,
    json: bool,
    out: &mut (dyn Write + Send),
) -> Result<(), CliError> {
    let mut ticks = tokio::time::interval(WATCH_PERIOD);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        let detail = client.room(room).await?;
        let body = if json {
            to_json(&detail)
        } else {
            render_room(&detail)
        };
        write!(
            out,
            "{CLEAR}{body}\nrefreshing every second; Ctrl-C to stop\n"
        )?;
        out.flush()?;
    }
}

/// One node's admin API, with the token to use.
struct Client {
    target: Target,
    url: String,
    token: String,
}

impl Client {
    fn new(args: &AdminArgs) -> Result<Self, CliError> {
        let target = Target::parse(&args.url).map_err(|reason| CliError::BadUrl {
            url: args.url.clone(),
            reason,
        })?;
        let token = match &args.token {
            Some(token) if !token.trim().is_empty() => token.trim().to_owned(),
            _ => default_token().ok_or(CliError::NoToken)?,
        };
        Ok(Self {
            target,
            url: args.url.clone(),
            token,
        })
    }

    async fn room(&self, room: &str) -> Result<RoomDetail, CliError> {
        self.get(&format!("/admin/rooms/{}", segment(room))).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        self.call(Method::GET, path, None).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, CliError> {
        let body = serde_json::to_vec(body).map_err(|e| CliError::BadAnswer {
            url: self.url.clone(),
            reason: e.to_string(),
        })?;
        self.call(Method::POST, path, Some(body)).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, CliError> {
        let answer = self.target.call(method, path, &self.token, body).await;
        let (status, bytes) = answer.map_err(|e| match e {
            HttpError::Connect(_) | HttpError::Timeout(_) | HttpError::Http(_) => {
                CliError::Unreachable {
                    url: self.url.clone(),
                    reason: e.to_string(),
                }
            }
            HttpError::Request(reason) => CliError::BadUrl {
                url: self.url.clone(),
                reason,
            },
        })?;
        if status == StatusCode::UNAUTHORIZED {
            return Err(CliError::Unauthorized {
                url: self.url.clone(),
            });
        }
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|b| b.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_owned());
            return Err(CliError::Api {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| CliError::BadAnswer {
            url: self.url.clone(),
            reason: e.to_string(),
        })
    }
}

/// The token a server started in this directory generated, if any.
fn default_token() -> Option<String> {
    let path = ServerConfig::default().data_dir.join(TOKEN_FILE);
    let token = std::fs::read_to_string(path).ok()?;
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_owned())
}

/// A room name as one URL path segment. Room names are `A-Z a-z 0-9 _ . :
/// -`, so only a few characters ever need escaping.
fn segment(name: &str) -> String {
    name.bytes().fold(String::new(), |mut s, b| {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
        s
    })
}

fn show<T: Serialize>(
    out: &mut (dyn Write + Send),
    json: bool,
    value: &T,
    render: impl Fn(&T) -> String,
) -> Result<(), CliError> {
    if json {
        writeln!(out, "{}", to_json(value))?;
    } else {
        write!(out, "{}", render(value))?;
    }
    Ok(())
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

fn table(header: &[&str], right_aligned_from: usize) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    for i in right_aligned_from..header.len() {
        if let Some(column) = table.column_mut(i) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

fn render_dead_letters(list: &DeadLetterList) -> String {
    if list.dead_letters.is_empty() {
        return "no dead letters\n".to_owned();
    }
    let mut t = table(
        &["RECORD", "KIND", "ATTEMPTS", "FAILED (UNIX MS)", "ERROR"],
        2,
    );
    for d in &list.dead_letters {
        t.add_row(vec![
            d.id.clone(),
            d.kind.clone(),
            d.attempts.to_string(),
            d.failed_at_ms.to_string(),
            d.error.clone(),
        ]);
    }
    format!("{t}\n")
}

fn render_nodes(list: &NodeList) -> String {
    let mut t = table(
        &[
            "NODE",
            "STATE",
            "WS URL",
            "QUIC URL",
            "ROOMS",
            "PLAYERS",
            "CPU %",
            "HEARTBEAT",
        ],
        4,
    );
    for n in &list.nodes {
        t.add_row(vec![
            n.info.id.clone(),
            n.info.state.clone(),
            n.info.ws_url.clone(),
            n.info.quic_url.clone(),
            n.info.rooms.to_string(),
            n.info.players.to_string(),
            format!("{:.0}", n.info.cpu_percent),
            format!("{:.1}s ago", n.heartbeat_age_ms as f64 / 1000.0),
        ]);
    }
    let note = if list.clustered {
        ""
    } else {
        "not part of a cluster: this node only\n"
    };
    format!("{t}\n{note}")
}

fn render_rooms(list: &RoomList) -> String {
    let warning = list
        .cluster_unavailable
        .as_ref()
        .map(|e| format!("the cluster cannot be read ({e}): this node's rooms only\n"))
        .unwrap_or_default();
    if list.rooms.is_empty() {
        return format!("{warning}no rooms\n");
    }
    let clustered = list.rooms.iter().any(|r| r.node.is_some());
    let mut header = vec!["ROOM"];
    if clustered {
        header.push("NODE");
    }
    header.extend(["PLAYERS", "ENTITIES", "TICK", "P50 MS", "P99 MS", "OUT/S"]);
    let mut t = table(&header, header.len() - 6);
    for r in &list.rooms {
        let mut row = vec![r.name.clone()];
        if clustered {
            row.push(r.node.clone().unwrap_or_default());
        }
        row.extend([
            r.players.to_string(),
            r.entities.to_string(),
            r.tick.to_string(),
            format!("{:.2}", r.tick_p50_ms),
            format!("{:.2}", r.tick_p99_ms),
            bytes(r.bytes_out_per_s),
        ]);
        t.add_row(row);
    }
    format!("{warning}{t}\n")
}

fn summary_line(r: &RoomSummary) -> String {
    format!(
        "room {} (id {}): tick {}, {} player(s), {} entities, tick p50 {:.2} ms p99 {:.2} ms, out {}/s\n",
        r.name,
        r.id,
        r.tick,
        r.players,
        r.entities,
        r.tick_p50_ms,
        r.tick_p99_ms,
        bytes(r.bytes_out_per_s)
    )
}

fn render_room(detail: &RoomDetail) -> String {
    let mut s = summary_line(&detail.summary);
    if detail.players.is_empty() {
        s.push_str("no players\n");
        return s;
    }
    let mut t = table(
        &[
            "SESSION",
            "ENTITY",
            "ADDRESS",
            "TRANSPORT",
            "RTT MS",
            "QUEUED",
            "LAG MS",
            "VISIBLE",
            "CONNECTED",
        ],
        4,
    );
    for p in &detail.players {
        t.add_row(vec![
            p.session.to_string(),
            p.entity.map_or_else(|| "-".to_owned(), |e| e.to_string()),
            p.address.clone(),
            p.transport.clone(),
            p.rtt_ms
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.1}")),
            p.queued_frames.to_string(),
            p.lag_ms.to_string(),
            p.visible.to_string(),
            format!("{}s", p.connected_s),
        ]);
    }
    s.push_str(&format!("{t}\n"));
    s
}

fn render_entity(e: &EntityReport) -> String {
    let owner = e
        .player
        .map_or_else(String::new, |p| format!(" (player session {p})"));
    let mut s = format!("entity {} in room {}{owner}\n", e.id, e.room);
    let mut t = table(&["ID", "COMPONENT", "VALUE", "BYTES"], 4);
    for c in &e.components {
        t.add_row(vec![
            c.id.to_string(),
            c.name.clone(),
            readable_text(&c.value),
            c.bytes.clone(),
        ]);
    }
    s.push_str(&format!("{t}\n"));
    s
}

/// A component's value for a person: `x=12.5 y=40` for a map of plain
/// values, a string as itself, anything else as JSON.
fn readable_text(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::String(s) => s.clone(),
        Value::Object(fields) if fields.values().all(|v| !v.is_object() && !v.is_array()) => fields
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s:?}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// Bytes in B, KiB or MiB.
fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line_with_their_exit_code() {
        let e = CliError::Api {
            status: 404,
            message: "no room named \"x\"\non this node".into(),
        };
        assert_eq!(e.line(), "no room named \"x\" on this node (404)");
        assert_eq!(e.exit_code(), 1);
        let e = CliError::Unreachable {
            url: "http://127.0.0.1:1".into(),
            reason: "Connection refused (os error 111)".into(),
        };
        assert_eq!(e.exit_code(), 2);
        assert!(!e.line().contains('\n'));
    }

    #[test]
    fn room_names_become_path_segments() {
        assert_eq!(segment("lobby-1.eu_west"), "lobby-1.eu_west");
        assert_eq!(segment("zone:7"), "zone%3A7");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(12), "12 B");
        assert_eq!(bytes(2048), "2.0 KiB");
        assert_eq!(bytes(3 * 1_048_576), "3.0 MiB");
    }
}
