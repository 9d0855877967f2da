//! Which transport bots use. The URLs' scheme says it (`ws://` or
//! `quic://`); `--transport` is only needed to pick the default URL, and an
//! explicit one that contradicts the scheme is refused rather than guessed.
//! Every `--url` of a run speaks the same transport: the report has one.

/// Transports bots can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    Ws,
    Quic,
}

/// A `--url` and a `--transport` that do not go together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error(
        "--url {url:?}: the scheme picks the transport and must be ws:// (WebSocket) or \
         quic:// (QUIC), followed by host:port"
    )]
    UnknownScheme { url: String },
    #[error(
        "--transport {flag} contradicts --url {url} (a {scheme}:// URL means --transport \
         {scheme}); drop --transport or change the URL",
        flag = flag.name(),
        scheme = scheme.name()
    )]
    Contradiction {
        flag: Transport,
        url: String,
        scheme: Transport,
    },
    #[error(
        "--url {first} and --url {other} are of different transports; one run speaks one \
         (run the bots once per transport)"
    )]
    Mixed { first: String, other: String },
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ws => "ws",
            Self::Quic => "quic",
        }
    }

    /// The server's own default address for this transport, on this host.
    pub fn default_url(self) -> &'static str {
        match self {
            Self::Ws => "ws://127.0.0.1:7700",
            Self::Quic => "quic://127.0.0.1:7701",
        }
    }

    /// The transport `url`'s scheme names, if it names one and has a host.
    pub fn of_url(url: &str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        if rest.is_empty() {
            return None;
        }
        match scheme.to_ascii_lowercase().as_str() {
            "ws" => Some(Self::Ws),
            "quic" => Some(Self::Quic),
            _ => None,
        }
    }

    /// The transport and URLs of a run from `--url` (any number) and
    /// `--transport`: the URLs' scheme decides; without a URL, the
    /// transport's default URL (WebSocket when neither is given).
    pub fn resolve(
        urls: Vec<String>,
        flag: Option<Transport>,
    ) -> Result<(Self, Vec<String>), TransportError> {
        let Some(first) = urls.first() else {
            let transport = flag.unwrap_or(Self::Ws);
            return Ok((transport, vec![transport.default_url().to_owned()]));
        };
        let Some(scheme) = Self::of_url(first) else {
            return Err(TransportError::UnknownScheme { url: first.clone() });
        };
        if let Some(flag) = flag
            && flag != scheme
        {
            return Err(TransportError::Contradiction {
                flag,
                url: first.clone(),
                scheme,
            });
        }
        for url in &urls[1..] {
            match Self::of_url(url) {
                None => return Err(TransportError::UnknownScheme { url: url.clone() }),
                Some(other) if other != scheme => {
                    return Err(TransportError::Mixed {
                        first: first.clone(),
                        other: url.clone(),
                    });
                }
                Some(_) => {}
            }
        }
        Ok((scheme, urls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_transport() {
        let urls = |us: &[&str]| us.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            Transport::resolve(urls(&["quic://127.0.0.1:7701"]), None),
            Ok((Transport::Quic, urls(&["quic://127.0.0.1:7701"])))
        );
        assert_eq!(
            Transport::resolve(urls(&["WS://h:1"]), Some(Transport::Ws)),
            Ok((Transport::Ws, urls(&["WS://h:1"])))
        );
        assert_eq!(
            Transport::resolve(urls(&["ws://a:1", "ws://b:1"]), None),
            Ok((Transport::Ws, urls(&["ws://a:1", "ws://b:1"])))
        );
        assert_eq!(
            Transport::resolve(Vec::new(), Some(Transport::Quic)),
            Ok((Transport::Quic, urls(&["quic://127.0.0.1:7701"])))
        );
        assert_eq!(
            Transport::resolve(Vec::new(), None),
            Ok((Transport::Ws, urls(&["ws://127.0.0.1:7700"])))
        );
    }

    #[test]
    fn a_contradicting_flag_or_an_unknown_scheme_is_refused() {
        let contradiction = Transport::resolve(vec!["quic://h:1".into()], Some(Transport::Ws))
            .expect_err("contradicts");
        assert!(
            matches!(contradiction, TransportError::Contradiction { .. }),
            "{contradiction}"
        );
        let said = contradiction.to_string();
        assert!(
            said.contains("--transport ws") && said.contains("quic://"),
            "{said}"
        );
        for bad in ["http://h:1", "wss://h:1", "ws://", "127.0.0.1:7700"] {
            assert!(
                matches!(
                    Transport::resolve(vec![bad.into()], None),
                    Err(TransportError::UnknownScheme { .. })
                ),
                "{bad}"
            );
            assert!(
                matches!(
                    Transport::resolve(vec!["ws://h:1".into(), bad.into()], None),
                    Err(TransportError::UnknownScheme { .. })
                ),
                "{bad} second"
            );
        }
        let mixed = Transport::resolve(vec!["ws://h:1".into(), "quic://h:2".into()], None)
            .expect_err("one transport per run");
        assert!(matches!(mixed, TransportError::Mixed { .. }), "{mixed}");
    }
}
