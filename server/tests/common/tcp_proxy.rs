//! A TCP proxy a test can cut: the database seen through it goes away
//! (connections reset, new ones refused) and comes back on the same port,
//! while the real database, shared with other tests, is never touched.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub struct TcpProxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    running: Option<tokio::task::JoinHandle<()>>,
}

async fn serve(listener: TcpListener, upstream: SocketAddr) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            continue;
        };
        connections.spawn(async move {
            if let Ok(mut server) = TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        });
    }
}

impl TcpProxy {
    /// A proxy on a free loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        Self {
            addr,
            upstream,
            running: Some(tokio::spawn(serve(listener, upstream))),
        }
    }

    /// Cuts every connection and refuses new ones.
    pub fn cut(&mut self) {
        if let Some(running) = self.running.take() {
            // Aborting the accept loop drops the listener and, with the
            // join set, every proxied connection.
            running.abort();
        }
    }

    /// Listens again, on the same port.
    pub async fn restore(&mut self) {
        if self.running.is_some() {
            return;
        }
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                // The old socket may linger a moment.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        };
        self.running = Some(tokio::spawn(serve(listener, self.upstream)));
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
    }
}
