//! `tessera`: a node running the built-in games.

tessera_server::use_node_allocator!();

fn main() -> std::process::ExitCode {
    tessera_server::cli::main(tessera_sim::games::builtin())
}
