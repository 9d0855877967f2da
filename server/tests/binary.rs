//! The `tessera` binary as an operator runs it, with its output in a pipe:
//! no colour codes in the log, and torn files in the data dir (a crash
//! while they were written) do not stop it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills the server when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tessera serve` on free loopback ports with `data_dir`, and
/// returns it with every log line up to "tessera is listening".
fn serve(data_dir: &std::path::Path) -> (Running, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "serve",
            "--ws-addr",
            "127.0.0.1:0",
            "--quic-addr",
            "127.0.0.1:0",
        ])
        .args(["--admin-addr", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no \"tessera is listening\" line; got {lines:#?}"));
        let listening = line.contains("tessera is listening");
        lines.push(line);
        if listening {
            return (running, lines);
        }
    }
}

fn data_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-bin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("data dir");
    dir
}

#[test]
fn piped_logs_have_no_colour_codes() {
    let dir = data_dir("plain");
    let (_server, lines) = serve(&dir);
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "an escape code in {line:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_torn_development_certificate_is_replaced_at_start() {
    let dir = data_dir("torn");
    std::fs::write(dir.join("quic-dev-cert.pem"), "").expect("torn cert");
    std::fs::write(dir.join("quic-dev-key.pem"), "").expect("torn key");
    let (_server, lines) = serve(&dir);
    assert!(
        lines.iter().any(|l| l.contains("generating a new one")),
        "{lines:#?}"
    );
    let cert = std::fs::read_to_string(dir.join("quic-dev-cert.pem")).expect("cert");
    assert!(cert.contains("BEGIN CERTIFICATE"), "{cert}");
    let _ = std::fs::remove_dir_all(&dir);
}
