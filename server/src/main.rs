//! `tessera`: a node running the built-in games and `coins`.

tessera_server::use_node_allocator!();

fn main() -> std::process::ExitCode {
    #[cfg_attr(
        not(feature = "coins"),
        expect(unused_mut, reason = "without the coins feature nothing is added")
    )]
    let mut games = tessera_sim::games::builtin();
    #[cfg(feature = "coins")]
    games.push(std::sync::Arc::new(tessera_coins::Coins));
    tessera_server::cli::main(games)
}
