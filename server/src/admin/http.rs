//! The `tessera admin` CLI's HTTP client: one request per connection over
//! hyper's HTTP/1 client half (hyper is already built for axum), plain
//! `http://` only, like the admin listener.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the admin API is: host, port and an optional path prefix (when it
/// sits behind a proxy under a path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    host: String,
    port: u16,
    authority: String,
    prefix: String,
}

/// Why a request got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("{0}")]
    Connect(std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("cannot build the request: {0}")]
    Request(String),
}

impl Target {
    /// Parses `http://HOST:PORT[/PREFIX]`; `HOST:PORT` alone means http.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let url = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let uri: Uri = url.parse().map_err(|e| format!("{e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => {
                return Err(format!(
                    "{other}:// is not supported; the admin API speaks plain http://"
                ));
            }
            None => return Err("expected http://HOST:PORT".to_owned()),
        }
        let authority = uri.authority().ok_or("no host in the URL")?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Ok(Self {
            host,
            port: authority.port_u16().unwrap_or(80),
            authority: authority.as_str().to_owned(),
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// Sends one request and reads the whole answer.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), HttpError> {
        let connect = TcpStream::connect((self.host.as_str(), self.port));
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| HttpError::Timeout(CONNECT_TIMEOUT))?
            .map_err(HttpError::Connect)?;
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(HOST, &self.authority)
            .header(AUTHORIZATION, format!("Bearer {token}"));
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let exchange = async {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            let connection = tokio::spawn(connection);
            let response = sender.send_request(request).await;
            let answer = match response {
                Ok(response) => {
                    let status = response.status();
                    response
                        .into_body()
                        .collect()
                        .await
                        .map(|b| (status, b.to_bytes()))
                }
                Err(e) => Err(e),
            };
            connection.abort();
            Ok(answer?)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| HttpError::Timeout(REQUEST_TIMEOUT))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_to_host_port_and_prefix() {
        let t = Target::parse("http://127.0.0.1:7780").expect("parses");
        assert_eq!(
            (t.host.as_str(), t.port, t.prefix.as_str()),
            ("127.0.0.1", 7780, "")
        );
        let t = Target::parse("http://ops.example:8080/tessera/").expect("parses");
        assert_eq!((t.port, t.prefix.as_str()), (8080, "/tessera"));
        let t = Target::parse("http://[::1]:9").expect("parses");
        assert_eq!(t.host, "::1");
        assert!(Target::parse("https://x").is_err());
        let bare = Target::parse("127.0.0.1:7780").expect("parses");
        assert_eq!(
            bare,
            Target::parse("http://127.0.0.1:7780").expect("parses")
        );
        assert!(Target::parse("not a url").is_err());
    }
}
