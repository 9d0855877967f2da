//! How a bot gets in: its hello, the redirects of a cluster it follows
//! (PROTOCOL.md §10.5, at most [`MAX_REDIRECTS`] hops in a row, by the
//! SDK's [`JoinRoute`]), and coming back to its player after a drop, on
//! the node it was on or, when that node cannot be reached, through its
//! entry URL.

use std::time::Instant;

use tessera_client::JoinRoute;
use tessera_protocol::arena::JoinOptions;
use tessera_protocol::{ClientMsg, ErrorCode, Hello, RawValue, ServerMsg, Welcome};

use crate::bot::BotContext;
use crate::join::JoinError;
use crate::link::Link;
use crate::stats::Stats;

/// Hops one join takes at most, as the reference clients do.
pub const MAX_REDIRECTS: u32 = tessera_client::redirect::DEFAULT_MAX_REDIRECTS;

/// A bot that is in.
#[derive(Debug)]
pub struct Joined {
    pub link: Link,
    pub welcome: Welcome,
    /// The node that welcomed it: where a resume goes first.
    pub node: String,
}

/// The way back of a bot that dropped its connection.
#[derive(Debug)]
pub struct Comeback {
    /// The Welcome's resume token (`None`: the server holds no players).
    pub token: Option<String>,
    /// The node it was joined to.
    pub node: String,
    pub dropped_at: Instant,
}

/// Resumes the player a dropped connection left, if there is a token to
/// do so; a join afresh through `entry` if there is none or the server
/// refuses it (then inputs are numbered from 1 again). The join time
/// recorded covers all of it, redirects included.
pub async fn join_or_resume(
    id: u64,
    ctx: &BotContext,
    entry: &str,
    comeback: Option<Comeback>,
    seq: &mut u32,
) -> Result<Joined, JoinError> {
    let started = Instant::now();
    if let Some(Comeback {
        token: Some(token),
        node,
        dropped_at,
    }) = comeback
    {
        match resume(id, ctx, &node, entry, token).await {
            Ok(joined) => {
                ctx.stats.record_resume(dropped_at.elapsed());
                ctx.stats.record_join(started.elapsed());
                return Ok(joined);
            }
            Err(JoinError::Refused { code, message })
                if ErrorCode::from_u16(code) == Some(ErrorCode::ResumeFailed) =>
            {
                Stats::bump(&ctx.stats.resume_failures);
                tracing::debug!(bot = id, %message, "resume refused; joining afresh");
            }
            Err(why) => return Err(why),
        }
    }
    *seq = 0;
    let joined = join(id, ctx, entry, entry, None).await?;
    ctx.stats.record_join(started.elapsed());
    Ok(joined)
}

/// A resume on `node`, or through `entry` when `node` cannot be reached.
async fn resume(
    id: u64,
    ctx: &BotContext,
    node: &str,
    entry: &str,
    token: String,
) -> Result<Joined, JoinError> {
    if node != entry {
        match join(id, ctx, node, entry, Some(token.clone())).await {
            Err(JoinError::Connect(why)) => {
                tracing::debug!(bot = id, node, %why, "last node unreachable; resuming through the entry URL");
            }
            other => return other,
        }
    }
    join(id, ctx, entry, entry, Some(token)).await
}

/// One join, from `start` along the cluster's redirects; a refused seat
/// sends it back to `entry`.
async fn join(
    id: u64,
    ctx: &BotContext,
    start: &str,
    entry: &str,
    resume: Option<String>,
) -> Result<Joined, JoinError> {
    let mut hello = Hello::new(ctx.room_of(id)).for_game(tessera_protocol::arena::schema());
    hello.resume = resume;
    hello.version = ctx.protocol_version;
    hello.options = RawValue::encode(&JoinOptions::named(format!("bot-{id}")))
        .map_err(|e| JoinError::Handshake(format!("cannot encode the join options: {e}")))?;
    let mut route = JoinRoute::new(start, entry, MAX_REDIRECTS, None);
    loop {
        let hop = route.next().clone();
        hello.seat = hop.seat;
        match say_hello(id, ctx, &hop.url, &hello).await {
            Ok(Answer::Welcome(link, welcome)) => {
                return Ok(Joined {
                    link,
                    welcome,
                    node: hop.url,
                });
            }
            Ok(Answer::Redirect { url, seat }) => {
                route.follow(url, seat)?;
                Stats::bump(&ctx.stats.redirects);
            }
            Err(JoinError::Refused { code, message })
                if ErrorCode::from_u16(code) == Some(ErrorCode::SeatInvalid) =>
            {
                let Some(back) = route.seat_refused() else {
                    return Err(JoinError::Refused { code, message });
                };
                back?;
                Stats::bump(&ctx.stats.seat_refusals);
            }
            Err(why) => return Err(why),
        }
    }
}

/// What one node answered the hello with.
enum Answer {
    Welcome(Link, Welcome),
    Redirect { url: String, seat: String },
}

async fn say_hello(
    id: u64,
    ctx: &BotContext,
    url: &str,
    hello: &Hello,
) -> Result<Answer, JoinError> {
    let mut link = Link::open(url, ctx.quic.as_ref(), id).await?;
    link.send(ClientMsg::Hello(hello.clone()).encode())
        .await
        .map_err(JoinError::Handshake)?;
    let Some(frame) = link.recv().await.map_err(JoinError::Handshake)? else {
        return Err(JoinError::Handshake("closed before the welcome".into()));
    };
    match ServerMsg::decode(&frame) {
        Ok(ServerMsg::Welcome(welcome)) => Ok(Answer::Welcome(link, welcome)),
        Ok(ServerMsg::Redirect { url, seat }) => {
            link.close().await;
            Ok(Answer::Redirect { url, seat })
        }
        Ok(ServerMsg::Error { code, message }) => Err(JoinError::Refused { code, message }),
        Ok(other) => Err(JoinError::Handshake(format!(
            "expected Welcome, got {}",
            other.kind()
        ))),
        Err(e) => Err(JoinError::Handshake(format!("undecodable answer: {e}"))),
    }
}
