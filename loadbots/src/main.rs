use std::process::ExitCode;

use clap::Parser;
use tessera_bots::{Args, SwarmConfig, Verdict};

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match SwarmConfig::try_from(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tessera-bots: {e}");
            return ExitCode::from(Verdict::Error as u8);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tessera-bots: cannot start the runtime: {e}");
            return ExitCode::from(Verdict::Error as u8);
        }
    };
    let (report, verdict) = runtime.block_on(tessera_bots::run(&config));
    print!("{}", report.human());
    if let Some(path) = &config.json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("tessera-bots: cannot write {}: {e}", path.display());
            return ExitCode::from(Verdict::Error as u8);
        }
    }
    if verdict == Verdict::Error {
        eprintln!("tessera-bots: no bot could join {}", config.url);
    }
    ExitCode::from(verdict as u8)
}
