//! Which transport bots use. The URL's scheme says it (`ws://` or
//! `quic://`); `--transport` is only needed to pick the default URL, and an
//! explicit one that contradicts the scheme is refused rather than guessed.

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

    /// The transport and URL of a run from `--url` and `--transport`, both
    /// optional: the URL's scheme decides; without a URL, the transport's
    /// default URL (WebSocket when neither is given).
    pub fn resolve(
        url: Option<String>,
        flag: Option<Transport>,
    ) -> Result<(Self, String), TransportError> {
        let Some(url) = url else {
            let transport = flag.unwrap_or(Self::Ws);
            return Ok((transport, transport.default_url().to_owned()));
        };
        let Some(scheme) = Self::of_url(&url) else {
            return Err(TransportError::UnknownScheme { url });
        };
        match flag {
            Some(flag) if flag != scheme => {
                Err(TransportError::Contradiction { flag, url, scheme })
            }
            _ => Ok((scheme, url)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_picks_the_transport() {
        let url = |u: &str| Some(u.to_owned());
        assert_eq!(
            Transport::resolve(url("quic://127.0.0.1:7701"), None),
            Ok((Transport::Quic, "quic://127.0.0.1:7701".into()))
        );
        assert_eq!(
            Transport::resolve(url("WS://h:1"), Some(Transport::Ws)),
            Ok((Transport::Ws, "WS://h:1".into()))
        );
        assert_eq!(
            Transport::resolve(None, Some(Transport::Quic)),
            Ok((Transport::Quic, "quic://127.0.0.1:7701".into()))
        );
        assert_eq!(
            Transport::resolve(None, None),
            Ok((Transport::Ws, "ws://127.0.0.1:7700".into()))
        );
    }

    #[test]
    fn a_contradicting_flag_or_an_unknown_scheme_is_refused() {
        let contradiction = Transport::resolve(Some("quic://h:1".into()), Some(Transport::Ws))
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
                    Transport::resolve(Some(bad.into()), None),
                    Err(TransportError::UnknownScheme { .. })
                ),
                "{bad}"
            );
        }
    }
}
