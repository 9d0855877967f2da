//! [`JoinRoute`]: which node each connection of one join goes to, as a
//! cluster sends the client on (PROTOCOL.md §10.5). Sans-IO: the caller
//! connects, and tells the route what the node answered.
//!
//! A join starts at one URL. A `Redirect` sends it to another node with a
//! seat; a `seat_invalid` refusal of a `Hello` that carried a seat sends it
//! back to the entry URL without one. Each of these is a hop, and a route
//! takes at most `max_redirects` of them in a row: a room that keeps
//! changing hands is the cluster operator's problem, and a client that
//! followed it forever would hide it.

/// How many hops a route takes by default, as the reference clients do
/// (PROTOCOL.md §10.5): a redirect, plus room for the room to have moved
/// once or twice meanwhile.
pub const DEFAULT_MAX_REDIRECTS: u32 = 3;

/// Where one connection of a join goes, and the seat its `Hello` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub url: String,
    /// `Hello.seat`: the seat of the `Redirect` that sent the client here.
    pub seat: Option<String>,
}

/// Why a route stops following the cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    /// The cluster sent the client on more than `max` times in a row.
    #[error(
        "the cluster sent the client on more than {max} times in a row (next: {url}); the \
         room keeps changing hands"
    )]
    TooMany { max: u32, url: String },
    /// A redirect to another transport than the one in use (a `quic://`
    /// node for a WebSocket client): the protocol never sends one.
    #[error("redirected from {from} to {to}, which is another transport")]
    OtherTransport { from: String, to: String },
}

/// The hops of one join. See the module documentation.
#[derive(Debug, Clone)]
pub struct JoinRoute {
    entry: String,
    max: u32,
    hops: u32,
    redirects: u32,
    next: Hop,
}

impl JoinRoute {
    /// A join that starts at `start`, where a refused seat sends it back to
    /// `entry`: the URL the application connected to, or a cluster node
    /// that will redirect. `seat` is the first `Hello`'s seat, if any.
    pub fn new(
        start: impl Into<String>,
        entry: impl Into<String>,
        max_redirects: u32,
        seat: Option<String>,
    ) -> Self {
        Self {
            entry: entry.into(),
            max: max_redirects,
            hops: 0,
            redirects: 0,
            next: Hop {
                url: start.into(),
                seat,
            },
        }
    }

    /// Where to connect now.
    pub fn next(&self) -> &Hop {
        &self.next
    }

    /// The entry URL, where a refused seat leads.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    /// Hops taken so far: redirects followed and refused seats.
    pub fn hops(&self) -> u32 {
        self.hops
    }

    /// Redirects followed so far.
    pub fn redirects(&self) -> u32 {
        self.redirects
    }

    /// The node answered `Redirect { url, seat }`: the next hop is `url`.
    pub fn follow(&mut self, url: String, seat: String) -> Result<&Hop, RedirectError> {
        if transport_of(&url).is_none() || transport_of(&url) != transport_of(&self.next.url) {
            return Err(RedirectError::OtherTransport {
                from: self.next.url.clone(),
                to: url,
            });
        }
        self.hop(Hop {
            url,
            seat: Some(seat),
        })?;
        self.redirects += 1;
        Ok(&self.next)
    }

    /// The node answered `seat_invalid`. `None` when this hop's `Hello`
    /// carried no seat: the refusal is then the server's last word.
    /// Otherwise the next hop is the entry URL, without a seat.
    pub fn seat_refused(&mut self) -> Option<Result<&Hop, RedirectError>> {
        self.next.seat.as_ref()?;
        let back = Hop {
            url: self.entry.clone(),
            seat: None,
        };
        Some(self.hop(back).map(|()| &self.next))
    }

    fn hop(&mut self, next: Hop) -> Result<(), RedirectError> {
        if self.hops >= self.max {
            return Err(RedirectError::TooMany {
                max: self.max,
                url: next.url,
            });
        }
        self.hops += 1;
        self.next = next;
        Ok(())
    }
}

/// The transport a URL's scheme names: `ws` and `wss` are both WebSocket.
fn transport_of(url: &str) -> Option<&'static str> {
    let (scheme, _) = url.split_once("://")?;
    match scheme.to_ascii_lowercase().as_str() {
        "ws" | "wss" => Some("websocket"),
        "quic" => Some("quic"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str = "ws://entry:7700";

    fn hop(url: &str, seat: Option<&str>) -> Hop {
        Hop {
            url: url.into(),
            seat: seat.map(Into::into),
        }
    }

    #[test]
    fn a_redirect_leads_to_its_node_with_its_seat() {
        let mut route = JoinRoute::new(ENTRY, ENTRY, DEFAULT_MAX_REDIRECTS, None);
        assert_eq!(route.next(), &hop(ENTRY, None));
        let next = route
            .follow("ws://b:7700".into(), "s1".into())
            .expect("followed");
        assert_eq!(next, &hop("ws://b:7700", Some("s1")));
        assert_eq!((route.hops(), route.redirects()), (1, 1));
    }

    #[test]
    fn hops_stop_at_the_limit() {
        let mut route = JoinRoute::new(ENTRY, ENTRY, 3, None);
        for i in 1..=3 {
            route
                .follow(format!("ws://n{i}:7700"), format!("s{i}"))
                .expect("within the limit");
        }
        assert_eq!(
            route.follow("ws://n4:7700".into(), "s4".into()),
            Err(RedirectError::TooMany {
                max: 3,
                url: "ws://n4:7700".into()
            })
        );
        // The route stays where it was: nothing more to connect to.
        assert_eq!(route.next(), &hop("ws://n3:7700", Some("s3")));
        assert_eq!(route.hops(), 3);

        let mut never = JoinRoute::new(ENTRY, ENTRY, 0, None);
        assert!(matches!(
            never.follow("ws://b:7700".into(), "s".into()),
            Err(RedirectError::TooMany { max: 0, .. })
        ));
    }

    #[test]
    fn a_refused_seat_goes_back_to_the_entry_and_counts_as_a_hop() {
        let mut route = JoinRoute::new(ENTRY, ENTRY, 2, None);
        // Without a seat, seat_invalid is a refusal like any other.
        assert!(route.seat_refused().is_none());

        route
            .follow("ws://b:7700".into(), "s1".into())
            .expect("followed");
        let back = route.seat_refused().expect("had a seat").expect("in limit");
        assert_eq!(back, &hop(ENTRY, None));
        assert_eq!((route.hops(), route.redirects()), (2, 1));

        route
            .follow("ws://c:7700".into(), "s2".into())
            .expect_err("the third hop is over the limit of 2");
    }

    #[test]
    fn a_seat_given_at_the_start_may_be_refused_too() {
        let mut route = JoinRoute::new("ws://b:7700", ENTRY, 1, Some("mine".into()));
        assert_eq!(route.next(), &hop("ws://b:7700", Some("mine")));
        assert_eq!(
            route.seat_refused(),
            Some(Ok(&hop(ENTRY, None))),
            "back to the entry"
        );
        assert_eq!(route.entry(), ENTRY);
    }

    #[test]
    fn a_redirect_keeps_the_transport() {
        let mut ws = JoinRoute::new(ENTRY, ENTRY, 3, None);
        ws.follow("WSS://b:443/play".into(), "s".into())
            .expect("wss is WebSocket too");
        for other in ["quic://b:7701", "http://b:80", "b:7700"] {
            assert!(
                matches!(
                    ws.follow(other.into(), "s".into()),
                    Err(RedirectError::OtherTransport { .. })
                ),
                "{other}"
            );
        }
        let mut quic = JoinRoute::new("quic://a:7701", "quic://a:7701", 3, None);
        quic.follow("quic://b:7701".into(), "s".into())
            .expect("same transport");
        assert_eq!(quic.redirects(), 1);
    }
}
