//! Joining: the handshake of one connection, and the hops of one join
//! along a [`JoinRoute`] as a cluster redirects it, within the connect
//! timeout.

use tessera_protocol::{ErrorCode, Hello, Welcome};

use super::handle_inbound;
use crate::config::ClientConfig;
use crate::connection::Connection;
use crate::error::ClientError;
use crate::event::{DisconnectReason, Event};
use crate::redirect::JoinRoute;
use crate::transport::{self, Outbound, Transport};

/// A joined connection, before it becomes (part of) a [`crate::Client`].
#[derive(Debug)]
pub(super) struct Joined {
    pub(super) conn: Connection,
    pub(super) welcome: Welcome,
    pub(super) transport: Transport,
    /// The node that welcomed it: where a reconnect goes first.
    pub(super) url: String,
}

/// What came of a join.
#[derive(Debug)]
pub(super) struct Followed {
    /// The nodes redirects sent it to, in order, whether it then joined or
    /// not: each is an [`Event::Redirected`].
    pub(super) redirects: Vec<String>,
    pub(super) result: Result<Joined, ClientError>,
    /// The first node could not be reached at all (refused, or no answer
    /// in time), so nothing is known of the room there.
    pub(super) unreachable: bool,
}

impl Followed {
    pub(super) fn failed(error: ClientError) -> Self {
        Self {
            redirects: Vec::new(),
            result: Err(error),
            unreachable: false,
        }
    }
}

/// What one node answered the hello with.
enum Answer {
    /// Boxed: a join is once per connection, and the connection is large.
    Welcome(Box<Joined>),
    Redirect {
        url: String,
        seat: String,
    },
}

/// Joins along `route` with `hello` (each hop's `Hello.seat` is the
/// route's), numbering inputs after `last_input_seq`. The connect timeout
/// bounds the whole join, redirects included.
pub(super) async fn follow(
    mut route: JoinRoute,
    hello: &Hello,
    last_input_seq: u32,
    config: &ClientConfig,
) -> Followed {
    let mut redirects = Vec::new();
    let limit = config.connect_timeout;
    let hops = hops(&mut route, hello, last_input_seq, config, &mut redirects);
    let result = tokio::time::timeout(limit, hops)
        .await
        .unwrap_or(Err(ClientError::Timeout(limit)));
    let unreachable = route.hops() == 0
        && matches!(
            result,
            Err(ClientError::Connect { .. } | ClientError::Timeout(_))
        );
    Followed {
        redirects,
        result,
        unreachable,
    }
}

/// Where a reconnect attempt joins: `node`, the node the client was joined
/// to, and when that one cannot be reached at all, `entry`, which
/// redirects to wherever the room is now. `None`: `entry` straight away.
pub(super) async fn rejoin(
    node: Option<String>,
    entry: String,
    hello: Hello,
    last_input_seq: u32,
    config: ClientConfig,
) -> Followed {
    let route = |start: &str| JoinRoute::new(start, entry.as_str(), config.max_redirects, None);
    if let Some(node) = node.filter(|node| *node != entry) {
        let first = follow(route(&node), &hello, last_input_seq, &config).await;
        if !first.unreachable {
            return first;
        }
        if let Err(error) = &first.result {
            tracing::debug!(%node, %error, "last node unreachable; joining through the entry URL");
        }
    }
    follow(route(&entry), &hello, last_input_seq, &config).await
}

async fn hops(
    route: &mut JoinRoute,
    hello: &Hello,
    last_input_seq: u32,
    config: &ClientConfig,
    redirects: &mut Vec<String>,
) -> Result<Joined, ClientError> {
    loop {
        let hop = route.next().clone();
        let mut hello = hello.clone();
        hello.seat = hop.seat;
        let conn = Connection::resuming_after(last_input_seq);
        match handshake(&hop.url, conn, &hello, config).await {
            Ok(Answer::Welcome(joined)) => return Ok(*joined),
            Ok(Answer::Redirect { url, seat }) => {
                tracing::debug!(from = %hop.url, to = %url, "redirected");
                route.follow(url.clone(), seat)?;
                redirects.push(url);
            }
            Err(ClientError::Refused { code, message })
                if ErrorCode::from_u16(code) == Some(ErrorCode::SeatInvalid) =>
            {
                let Some(back) = route.seat_refused() else {
                    return Err(ClientError::Refused { code, message });
                };
                back?;
                tracing::debug!(url = %hop.url, %message, "seat refused; joining through the entry URL");
            }
            Err(error) => return Err(error),
        }
    }
}

/// Connects to `url`, says `hello` and waits for the answer.
async fn handshake(
    url: &str,
    mut conn: Connection,
    hello: &Hello,
    config: &ClientConfig,
) -> Result<Answer, ClientError> {
    // Checked before any network: a bad room name fails at once.
    let hello_frame = conn.hello(hello)?;
    let mut transport = transport::open(url, config).await?;
    if transport
        .outbound
        .send(Outbound::Frame(hello_frame))
        .await
        .is_err()
    {
        return Err(ClientError::Disconnected(super::task_gone()));
    }
    loop {
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Welcome(welcome) => {
                    return Ok(Answer::Welcome(Box::new(Joined {
                        conn,
                        welcome,
                        transport,
                        url: url.to_owned(),
                    })));
                }
                Event::Error { code, message } => {
                    return Err(ClientError::Refused { code, message });
                }
                // The transport is dropped on the way out, which closes it.
                Event::Disconnected {
                    reason: DisconnectReason::Redirected { url, seat },
                } => return Ok(Answer::Redirect { url, seat }),
                Event::Disconnected { reason } => return Err(reason.into()),
                // Before the welcome a connection raises nothing else.
                _ => {}
            }
        }
        let inbound = transport.inbound.recv().await;
        handle_inbound(&mut conn, &transport, inbound);
    }
}
