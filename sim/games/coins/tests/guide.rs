//! `docs/GAME_GUIDE.md` shows this crate's files: each Rust block it says
//! belongs in `src/schema.rs` or `src/game.rs` must be in that file, word
//! for word, so the guide cannot drift from the code that is tested.

const GUIDE: &str = include_str!("../../../../docs/GAME_GUIDE.md");

/// The Rust blocks that follow a line ending in `marker`.
fn blocks_after(marker: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = GUIDE.lines();
    while let Some(line) = lines.next() {
        if !line.trim_end().ends_with(marker) {
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

#[test]
fn the_guide_shows_the_crate_as_it_is() {
    let files = [
        ("`src/schema.rs`:", include_str!("../src/schema.rs")),
        ("`src/game.rs`:", include_str!("../src/game.rs")),
    ];
    for (marker, source) in files {
        let blocks = blocks_after(marker);
        assert!(!blocks.is_empty(), "the guide shows no {marker} block");
        for block in blocks {
            assert!(
                source.contains(&block),
                "the guide's {marker} block differs from the file; run the guide's code through the crate again:\n{block}"
            );
        }
    }
}
