//! `docs/GAME_GUIDE.md` shows this crate's files: the Rust blocks it says
//! belong in a file must be that file, whole and word for word (the
//! schema's own tests and the example's first lines aside), so the guide
//! cannot drift from the code that is built and tested.

const GUIDE: &str = include_str!("../../../../docs/GAME_GUIDE.md");

/// The Rust blocks that follow a line containing `marker`, in order.
fn blocks_after(marker: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = GUIDE.lines();
    while let Some(line) = lines.next() {
        if !line.contains(marker) {
            continue;
        }
        let block: Vec<&str> = lines
            .by_ref()
            .skip_while(|l| !l.starts_with("```rust"))
            .skip(1)
            .take_while(|l| !l.starts_with("```"))
            .collect();
        blocks.push(block.join("\n"));
    }
    blocks
}

fn assert_shown(marker: &str, file: &str) {
    let shown = blocks_after(marker).join("\n\n");
    assert!(
        shown == file.trim(),
        "the guide's {marker} blocks are not the file as it is; copy the file into the guide again.\n--- guide\n{shown}\n--- file\n{}",
        file.trim()
    );
}

#[test]
fn the_guide_shows_the_crate_as_it_is() {
    let schema = include_str!("../src/schema.rs");
    let without_tests = schema.split("#[cfg(test)]").next().unwrap_or(schema);
    assert_shown("`src/schema.rs`:", without_tests);
    // The game, then its tests ("Append to `src/game.rs`:").
    assert_shown("`src/game.rs`:", include_str!("../src/game.rs"));
    assert_shown("`src/lib.rs`:", include_str!("../src/lib.rs"));
    let client = include_str!("../examples/collect.rs");
    let from_imports = &client[client.find("use coins::").unwrap_or(0)..];
    assert_shown("`src/main.rs`, a client", from_imports);
}
