//! Connecting over QUIC to a loopback port where nothing answers: UDP has
//! no "connection refused", so only the client's own connect timeout ends
//! the wait (what the `walk` example relies on to say "nothing answered").

use std::time::Duration;

use tessera_client::{Client, ClientConfig, ClientError, Hello};

/// Every wait in these tests is bounded, so a bug fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_silent_quic_port_times_out_with_the_configured_connect_timeout() {
    // Held open and never read: the client's packets go nowhere.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("binds");
    let url = format!("quic://{}", silent.local_addr().expect("has an address"));
    let connect_timeout = Duration::from_millis(300);
    let config = ClientConfig::default()
        .connect_timeout(connect_timeout)
        .pinned_certificate("ab".repeat(32));
    let joined = tokio::time::timeout(
        LIMIT,
        Client::connect_with(&url, Hello::new("lobby"), config),
    )
    .await
    .expect("the connect timeout ends the wait, not the test's limit");
    match joined {
        Err(ClientError::Timeout(limit)) => assert_eq!(limit, connect_timeout),
        other => panic!("expected a timeout, got {other:?}"),
    }
}
