//! What a node needs before it joins a cluster: its id (given, or generated
//! once and kept in the data dir) and the URLs others send clients to.

use std::net::SocketAddr;
use std::path::Path;

use crate::admin_token::hex;
use crate::config::ServerConfig;
use crate::files::{Readers, write_atomically};
use crate::identity::resume::new_key;

use super::PublicUrls;

/// The addresses the node's listeners are bound to.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub ws: SocketAddr,
    pub quic: SocketAddr,
    pub admin: SocketAddr,
}

/// The node id `config` gives, or the one kept in `<data_dir>/node-id`
/// (generated there on first start).
pub fn node_id(config: &ServerConfig) -> Result<String, String> {
    if let Some(id) = &config.node_id {
        return Ok(id.clone());
    }
    read_or_create(&config.data_dir.join("node-id"))
}

fn read_or_create(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let id = format!("node-{}", hex(&new_key()[..6]));
    write_atomically(path, id.as_bytes(), Readers::Anyone)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(id)
}

/// The URLs of this node: as configured, or from the bound addresses. A
/// bound address of every interface (`0.0.0.0`, `::`) names no host others
/// can reach, so then the URL must be configured; the error names the
/// field.
pub fn public_urls(config: &ServerConfig, bound: Bound) -> Result<PublicUrls, String> {
    let derive = |given: &Option<String>, field: &str, scheme: &str, addr: SocketAddr| {
        if let Some(url) = given {
            return Ok(url.clone());
        }
        if addr.ip().is_unspecified() {
            return Err(format!(
                "cluster mode: {field} is not set, and the listener is bound to {addr}, which other nodes cannot send clients to; set {field} (flag --{}) to this node's address as clients reach it",
                field.replace('_', "-")
            ));
        }
        Ok(format!("{scheme}://{addr}"))
    };
    Ok(PublicUrls {
        ws: derive(&config.public_ws_url, "public_ws_url", "ws", bound.ws)?,
        quic: derive(
            &config.public_quic_url,
            "public_quic_url",
            "quic",
            bound.quic,
        )?,
        admin: derive(
            &config.public_admin_url,
            "public_admin_url",
            "http",
            bound.admin,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(ip: [u8; 4]) -> Bound {
        Bound {
            ws: (ip, 7700).into(),
            quic: (ip, 7701).into(),
            admin: (ip, 7780).into(),
        }
    }

    #[test]
    fn urls_come_from_specific_addresses_and_must_be_given_for_every_interface() {
        let config = ServerConfig::default();
        let urls = public_urls(&config, bound([10, 0, 0, 2])).expect("derived");
        assert_eq!(urls.ws, "ws://10.0.0.2:7700");
        assert_eq!(urls.quic, "quic://10.0.0.2:7701");
        let err = public_urls(&config, bound([0, 0, 0, 0])).expect_err("refused");
        assert!(
            err.contains("public_ws_url") && err.contains("--public-ws-url"),
            "{err}"
        );
        let config = ServerConfig {
            public_ws_url: Some("wss://eu1.example.com".into()),
            public_quic_url: Some("quic://eu1.example.com:7701".into()),
            public_admin_url: Some("http://10.1.0.2:7780".into()),
            ..ServerConfig::default()
        };
        let urls = public_urls(&config, bound([0, 0, 0, 0])).expect("given");
        assert_eq!(urls.ws, "wss://eu1.example.com");
    }

    #[test]
    fn a_generated_node_id_is_kept() {
        let dir = std::env::temp_dir().join(format!("tessera-node-id-{}", hex(&new_key()[..4])));
        std::fs::create_dir_all(&dir).expect("dir");
        let config = ServerConfig {
            data_dir: dir.clone(),
            ..ServerConfig::default()
        };
        let first = node_id(&config).expect("generated");
        assert!(first.starts_with("node-"));
        assert_eq!(node_id(&config).expect("read back"), first);
        let _ = std::fs::remove_dir_all(dir);
    }
}
