//! The node's persistence, started as its config says: off; the embedded
//! default (an in-process queue drained into the database by a task of the
//! node); or, in cluster mode, the queue drained into the cluster's Redis
//! Stream, with a worker in the node unless `persist_worker` is off.
//!
//! `tessera worker` runs the same stream worker on its own ([`worker`]).

use std::sync::Arc;
use std::time::Duration;

use crate::cluster::conn::RedisLink;
use crate::config::ServerConfig;
use crate::persist::Persistence;
use crate::persist::store::{Store, StoreOptions};
use crate::persist::stream::{StreamSpec, StreamWorker};
use crate::persist::writer::{BatchWriter, RetryPolicy};

/// The database URL with any password hidden, for messages.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Opens the database (and migrates it).
pub async fn open_store(config: &ServerConfig) -> Result<Arc<Store>, String> {
    let url = config.database_url();
    let options = StoreOptions {
        keep_checkpoints: config.keep_checkpoints,
    };
    let store = Store::connect_with(&url, options)
        .await
        .map_err(|e| format!("cannot open the database {}: {e}", redacted(&url)))?;
    tracing::info!(
        database = %redacted(&url),
        backend = store.backend(),
        "persistence: database ready"
    );
    Ok(Arc::new(store))
}

fn writer(config: &ServerConfig, store: &Arc<Store>) -> BatchWriter {
    BatchWriter::new(
        Arc::clone(store),
        RetryPolicy {
            max_attempts: config.persist_max_attempts,
            ..RetryPolicy::default()
        },
    )
}

/// A stream worker of this process, named `consumer` in the group.
pub async fn worker(
    config: &ServerConfig,
    store: &Arc<Store>,
    consumer: String,
) -> Result<StreamWorker<RedisLink>, String> {
    let url = config
        .redis_url
        .as_deref()
        .ok_or("a stream worker needs redis_url (the cluster's Redis)")?;
    // Its reads wait for new entries: a connection of its own, with room
    // for that wait in its deadline.
    let timeout = Duration::from_millis(config.redis_timeout_ms) + Duration::from_secs(1);
    let conn = RedisLink::open(url, config.redis_cluster, timeout)
        .await
        .map_err(|e| format!("cannot connect to redis: {e}"))?;
    Ok(StreamWorker {
        conn,
        spec: StreamSpec::new(&config.redis_prefix),
        consumer,
        writer: writer(config, store),
        claim_idle: Duration::from_millis(config.persist_claim_idle_ms),
        batch: crate::persist::BATCH,
        claim_from: "0-0".to_owned(),
    })
}

/// Starts persistence for a node; `None` when it is off.
pub async fn start(config: &ServerConfig) -> Result<Option<Arc<Persistence>>, String> {
    if !config.persistence {
        return Ok(None);
    }
    let store = open_store(config).await?;
    let Some(url) = config.redis_url.as_deref() else {
        return Ok(Some(Persistence::start_local(
            Arc::clone(&store),
            writer(config, &store),
            config.persist_queue,
        )));
    };
    let timeout = Duration::from_millis(config.redis_timeout_ms);
    let conn = RedisLink::open(url, config.redis_cluster, timeout)
        .await
        .map_err(|e| format!("cannot connect to redis: {e}"))?;
    let worker = if config.persist_worker {
        let consumer = format!("node-{}", crate::cluster::node::node_id(config)?);
        Some(self::worker(config, &store, consumer).await?)
    } else {
        None
    };
    tracing::info!(
        stream = StreamSpec::new(&config.redis_prefix).key,
        worker = worker.is_some(),
        "persistence: through the redis stream"
    );
    Ok(Some(Persistence::start_stream(
        store,
        conn,
        StreamSpec::new(&config.redis_prefix),
        worker,
        config.persist_queue,
        timeout,
    )))
}
