//! File descriptors. Every WebSocket connection, open or still in its
//! upgrade, holds one (QUIC connections share the endpoint's one UDP
//! socket). A node whose caps need more than the process may open would
//! fail accepts with `EMFILE` and leave clients hanging, so at start the
//! soft limit is raised toward the hard one and, if it is still short, the
//! caps are lowered to fit: clients past them get `server_full`.

use crate::config::ServerConfig;

/// Descriptors kept for everything but client connections: listeners, the
/// runtime's epoll and wake-ups, log and data files, the admin API's
/// connections (`max_admin_connections`, added on top).
pub const RESERVED: u64 = 64;

/// The process's descriptor limit after trying to raise it.
pub fn raise_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the file descriptor limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(u64::MAX, |(soft, _)| soft)
        }
    }
}

/// Lowers `max_connections` and `max_pending_handshakes` until, with what
/// is reserved, they fit in `limit` descriptors. Returns whether it had to.
pub fn fit_caps(config: &mut ServerConfig, limit: u64) -> bool {
    let reserved = RESERVED + config.max_admin_connections as u64;
    let available = usize::try_from(limit.saturating_sub(reserved)).unwrap_or(usize::MAX);
    let wanted = config
        .max_connections
        .saturating_add(config.max_pending_handshakes);
    if wanted <= available {
        return false;
    }
    let pending = config.max_pending_handshakes.min((available / 8).max(1));
    config.max_pending_handshakes = pending;
    config.max_pending_handshakes_per_ip = config.max_pending_handshakes_per_ip.min(pending);
    config.max_connections = config
        .max_connections
        .min(available.saturating_sub(pending).max(1));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_that_fit_are_left_alone() {
        let mut config = ServerConfig::default();
        let before = config.clone();
        assert!(!fit_caps(&mut config, 1_048_576));
        assert_eq!(config, before);
    }

    #[test]
    fn caps_that_do_not_fit_are_lowered_into_the_limit() {
        let mut config = ServerConfig::default();
        assert!(fit_caps(&mut config, 1_024));
        let used = config.max_connections + config.max_pending_handshakes;
        let reserved = RESERVED as usize + config.max_admin_connections;
        assert!(used + reserved <= 1_024, "{used} + {reserved}");
        assert!(config.max_connections >= 700, "{}", config.max_connections);
        assert!(config.max_pending_handshakes_per_ip <= config.max_pending_handshakes);
        // Even a tiny limit leaves one of each.
        let mut tiny = ServerConfig::default();
        fit_caps(&mut tiny, 10);
        assert_eq!((tiny.max_connections, tiny.max_pending_handshakes), (1, 1));
    }
}
