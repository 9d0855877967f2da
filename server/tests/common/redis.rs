//! A real `redis-server` of a test's own: a free loopback port, no
//! persistence, killed when the test ends. Never the machine's shared
//! Redis.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Redis the nodes of a test share: one server or a cluster.
pub trait SharedRedis {
    /// What `redis_url` is set to.
    fn url(&self) -> String;
    /// Whether `redis_cluster` is set.
    fn is_cluster(&self) -> bool;
    /// `redis-cli` against it; its trimmed output.
    fn cli(&self, args: &[&str]) -> String;
}

impl SharedRedis for RedisServer {
    fn url(&self) -> String {
        RedisServer::url(self)
    }
    fn is_cluster(&self) -> bool {
        false
    }
    fn cli(&self, args: &[&str]) -> String {
        RedisServer::cli(self, args)
    }
}

impl SharedRedis for RedisCluster {
    fn url(&self) -> String {
        RedisCluster::url(self)
    }
    fn is_cluster(&self) -> bool {
        true
    }
    fn cli(&self, args: &[&str]) -> String {
        RedisCluster::cli(self, args)
    }
}

pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    /// Arguments beyond the port and the persistence switches.
    extra: Vec<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(Vec::new())
    }

    pub fn start_with(extra: Vec<String>) -> Self {
        let mut redis = Self {
            child: None,
            port: free_port(),
            extra,
        };
        redis.restart();
        redis
    }

    /// A master of a Redis Cluster, its state kept in `dir`.
    pub fn start_cluster_master(dir: &std::path::Path) -> Self {
        let port = free_port();
        let config = dir.join(format!("nodes-{port}.conf"));
        let mut redis = Self {
            child: None,
            port,
            extra: vec![
                "--cluster-enabled".into(),
                "yes".into(),
                "--cluster-config-file".into(),
                config.display().to_string(),
            ],
        };
        redis.restart();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (again, empty) on its port, and waits until it answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (scripts/test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]) != "PONG" {
            assert!(Instant::now() < deadline, "redis-server answers");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it at once (SIGKILL): everything it held is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Runs `redis-cli` against it; its trimmed output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A three-master Redis Cluster of the test's own, slots spread by
/// `redis-cli --cluster create`.
pub struct RedisCluster {
    pub masters: Vec<RedisServer>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "tessera-redis-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let masters: Vec<_> = (0..3)
            .map(|_| RedisServer::start_cluster_master(&dir))
            .collect();
        let addresses: Vec<String> = masters
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create runs");
        assert!(
            created.status.success(),
            "cluster created: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = Self { masters, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cluster
            .masters
            .iter()
            .all(|m| m.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(Instant::now() < deadline, "the cluster is up");
            std::thread::sleep(Duration::from_millis(100));
        }
        cluster
    }

    /// The seeds, as `redis_url` takes them with `redis_cluster`.
    pub fn url(&self) -> String {
        self.masters
            .iter()
            .map(|m| m.url())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `redis-cli -c` (following the cluster's redirects) on a master.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-c", "-p", &self.masters[0].port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for master in &mut self.masters {
            master.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
