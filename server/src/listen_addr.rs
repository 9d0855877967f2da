//! Listen addresses as people write them: a bare port (`7700`, every
//! interface), an IP and port (`0.0.0.0:7700`, `[::]:7700`), or a host name
//! and port (`localhost:7700`, resolved once at start).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};

use serde::Deserializer;
use serde::de::{self, Visitor};

/// What a valid address looks like, for error messages.
const EXAMPLES: &str = "a port (7700), an IP and port (0.0.0.0:7700, [::]:7700) or a host name and port (localhost:7700)";

/// The socket address `text` names.
pub fn parse(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Ok((Ipv4Addr::UNSPECIFIED, port).into());
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("{text:?} is not an address: give {EXAMPLES}"));
    };
    let Ok(port) = port.parse::<u16>() else {
        return Err(format!(
            "{text:?} is not an address: the port {port:?} is not a number from 0 to 65535; give {EXAMPLES}"
        ));
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{text:?} is not an address: give {EXAMPLES}"));
    }
    let mut resolved = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve the host {host:?} of {text:?}: {e}"))?;
    resolved
        .next()
        .ok_or_else(|| format!("the host {host:?} of {text:?} resolves to no address"))
}

/// `serde(deserialize_with)` for a [`SocketAddr`] field written as [`parse`]
/// reads it; a TOML integer is a bare port.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    d.deserialize_any(AddrVisitor)
}

struct AddrVisitor;

impl Visitor<'_> for AddrVisitor {
    type Value = SocketAddr;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{EXAMPLES}")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<SocketAddr, E> {
        parse(text).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, port: i64) -> Result<SocketAddr, E> {
        let port = u16::try_from(port)
            .map_err(|_| E::custom(format!("port {port} is not from 0 to 65535")))?;
        Ok((Ipv4Addr::UNSPECIFIED, port).into())
    }

    fn visit_u64<E: de::Error>(self, port: u64) -> Result<SocketAddr, E> {
        self.visit_i64(i64::try_from(port).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_ips_and_host_names_are_addresses() {
        assert_eq!(parse("7700"), Ok("0.0.0.0:7700".parse().expect("addr")));
        assert_eq!(
            parse("127.0.0.1:9000"),
            Ok("127.0.0.1:9000".parse().expect("addr"))
        );
        assert_eq!(parse("[::1]:9000"), Ok("[::1]:9000".parse().expect("addr")));
        let local = parse("localhost:9000").expect("localhost resolves");
        assert!(local.ip().is_loopback() && local.port() == 9000, "{local}");
    }

    #[test]
    fn what_is_not_an_address_is_named_with_examples() {
        for bad in [
            "",
            "seven",
            "localhost:port",
            "localhost:70000",
            "a b:1",
            ":1",
        ] {
            let error = parse(bad).expect_err(bad);
            assert!(error.contains(&format!("{:?}", bad.trim())), "{error}");
        }
        assert!(parse("seven").expect_err("bad").contains("localhost:7700"));
    }
}
