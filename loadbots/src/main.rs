use std::process::ExitCode;

use clap::Parser;
use tessera_bots::{Args, SwarmConfig, Verdict};

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match SwarmConfig::try_from(args) {
        Ok(config) => config,
        Err(e) => return exit(Verdict::Usage, &e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return exit(Verdict::Usage, &format!("cannot start the runtime: {e}")),
    };
    let (report, verdict) = match runtime.block_on(tessera_bots::run(&config)) {
        Ok(done) => done,
        Err(no_bot_joined) => return exit(Verdict::NoBotJoined, &no_bot_joined),
    };
    print!("{}", report.human());
    if let Some(path) = &config.json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            return exit(
                Verdict::Usage,
                &format!("cannot write {}: {e}", path.display()),
            );
        }
    }
    ExitCode::from(verdict as u8)
}

/// Says why in one line on stderr and exits with `verdict`'s code.
fn exit(verdict: Verdict, why: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("tessera-bots: {why}");
    ExitCode::from(verdict as u8)
}
