//! The node's connection to Redis: one Redis through a connection manager
//! that reconnects by itself, or a Redis Cluster. Every call has a deadline,
//! so that a Redis that hangs costs a join a refusal, never a wait.

use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::metrics::cluster as names;

/// Either kind of connection; both multiplex concurrent calls.
#[derive(Clone)]
pub enum RedisLink {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single(_) => "RedisLink::Single",
            Self::Cluster(_) => "RedisLink::Cluster",
        })
    }
}

/// Why Redis could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RedisFailure {
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl RedisLink {
    /// Connects as `url` says. One Redis is connected lazily (the node
    /// starts while Redis is down, and reconnects whenever it returns); a
    /// Redis Cluster (`cluster`: `url` lists seed nodes, comma-separated)
    /// must answer at start, to learn its slots.
    pub async fn open(url: &str, cluster: bool, timeout: Duration) -> Result<Self, RedisFailure> {
        if cluster {
            let seeds: Vec<&str> = url.split(',').map(str::trim).collect();
            let client = redis::cluster::ClusterClientBuilder::new(seeds)
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .retries(1)
                .build()?;
            return Ok(Self::Cluster(client.get_async_connection().await?));
        }
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        Ok(Self::Single(ConnectionManager::new_lazy_with_config(
            client, config,
        )?))
    }

    /// Runs `call` (named `name` in the metrics) within `timeout`.
    pub async fn within<T>(
        &self,
        name: &'static str,
        timeout: Duration,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, RedisFailure> {
        let started = Instant::now();
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(RedisFailure::Redis(e)),
            Err(_) => Err(RedisFailure::Timeout(timeout)),
        };
        match &result {
            Ok(_) => ::metrics::histogram!(names::REDIS_RTT, "call" => name)
                .record(started.elapsed().as_secs_f64()),
            Err(_) => ::metrics::counter!(names::REDIS_FAILURES, "call" => name).increment(1),
        }
        result
    }
}

impl ConnectionLike for RedisLink {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}
