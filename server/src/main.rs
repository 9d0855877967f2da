//! `tessera`: a node running the built-in games and `coins`.

tessera_server::use_node_allocator!();

fn main() -> std::process::ExitCode {
    let mut games = tessera_sim::games::builtin();
    games.push(std::sync::Arc::new(tessera_coins::Coins));
    tessera_server::cli::main(games)
}
