//! The server's modules import one way: no two of them import each other,
//! directly or around a loop. Checked on the source, among the top-level
//! modules of `src/` and among the sibling modules of each folder, so the
//! map in `docs/ARCHITECTURE.md` stays true.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path below the crate root: `["room", "host"]`.
type ModPath = Vec<String>;

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file defines: `src/room/host.rs` and `src/room/host/mod.rs`
/// are both `room::host`; `src/lib.rs` is the root.
fn module_of(src: &Path, file: &Path) -> ModPath {
    let relative = file.strip_prefix(src).expect("under src");
    let mut parts: ModPath = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// Every path a file names from `crate::` or `super::`, with `{a, b::c}`
/// groups spread out, resolved to absolute paths.
fn named_paths(module: &ModPath, text: &str) -> Vec<ModPath> {
    let tokens = tokenize(text);
    let mut paths = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let base = match tokens[i].as_str() {
            "crate" => Some(Vec::new()),
            "super" if i == 0 || tokens[i - 1] != "::" => {
                let mut base = module.clone();
                let mut supers = 0;
                let mut j = i;
                while tokens.get(j).map(String::as_str) == Some("super") {
                    supers += 1;
                    j += 2;
                }
                let keep = module.len().saturating_sub(supers);
                base.truncate(keep);
                i = j - 2;
                Some(base)
            }
            _ => None,
        };
        if let Some(base) = base
            && tokens.get(i + 1).map(String::as_str) == Some("::")
        {
            let (next, found) = parse_tree(&tokens, i + 2, base);
            paths.extend(found);
            i = next;
        } else {
            i += 1;
        }
    }
    paths
}

/// Identifiers, `::`, braces and commas; everything else splits them.
/// Comments and strings are dropped first.
fn tokenize(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut tokens = Vec::new();
    let mut chars = code.chars().peekable();
    let mut word = String::new();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            if c == '\\' {
                chars.next();
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        match c {
            '"' => in_string = true,
            ':' if chars.peek() == Some(&':') => {
                chars.next();
                tokens.push("::".into());
            }
            '{' | '}' | ',' => tokens.push(c.to_string()),
            c if c.is_whitespace() => {}
            _ => tokens.push(c.to_string()),
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

/// Parses `a::b::{c, d::e}` from `at`; returns where it stopped and the
/// paths it names.
fn parse_tree(tokens: &[String], mut at: usize, mut prefix: ModPath) -> (usize, Vec<ModPath>) {
    let is_ident = |t: &str| t.chars().all(|c| c.is_alphanumeric() || c == '_');
    loop {
        match tokens.get(at).map(String::as_str) {
            Some("{") => {
                let mut found = Vec::new();
                at += 1;
                loop {
                    match tokens.get(at).map(String::as_str) {
                        Some("}") => return (at + 1, found),
                        Some(",") => at += 1,
                        Some(_) => {
                            let (next, inner) = parse_tree(tokens, at, prefix.clone());
                            found.extend(inner);
                            at = next.max(at + 1);
                        }
                        None => return (at, found),
                    }
                }
            }
            Some(t) if is_ident(t) && t != "self" => {
                prefix.push(t.to_owned());
                at += 1;
                if tokens.get(at).map(String::as_str) == Some("::") {
                    at += 1;
                } else {
                    return (at, vec![prefix]);
                }
            }
            Some("self") => return (at + 1, vec![prefix]),
            _ => return (at, vec![prefix]),
        }
    }
}

/// The longest prefix of `path` that is a module of the crate.
fn longest_module(path: &ModPath, modules: &BTreeSet<ModPath>) -> ModPath {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
        .unwrap_or_default()
}

/// The import edges between sibling modules: `a` uses something in `b`,
/// both children of the same parent, each an ancestor-or-self of the two
/// ends. Parent-child uses (a child using its folder's items) are not
/// edges: a folder's root is its table of contents. A use through a
/// re-export is an edge to the re-exporting module, whose `pub use` is in
/// turn an edge to where the item lives, so loops through re-exports are
/// seen too.
fn sibling_edges() -> BTreeMap<(ModPath, ModPath), String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let modules: BTreeSet<ModPath> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges = BTreeMap::new();
    for file in &files {
        let from = module_of(&src, file);
        if from.is_empty() {
            continue; // lib.rs and main.rs name everything
        }
        let text = std::fs::read_to_string(file).expect("read");
        for path in named_paths(&from, &text) {
            let to = longest_module(&path, &modules);
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == from.len() || common == to.len() {
                continue;
            }
            let a = from[..=common].to_vec();
            let b = to[..=common].to_vec();
            let shown = format!("{} names {}", file.display(), path.join("::"));
            edges.entry((a, b)).or_insert(shown);
        }
    }
    edges
}

/// A loop in `edges`, as the modules around it (the first repeated last).
fn find_cycle(edges: &BTreeSet<(ModPath, ModPath)>) -> Option<Vec<ModPath>> {
    let mut graph: BTreeMap<&ModPath, Vec<&ModPath>> = BTreeMap::new();
    for (a, b) in edges {
        graph.entry(a).or_default().push(b);
    }
    // A depth-first walk; a module met again on the current path closes a
    // loop.
    fn walk<'a>(
        node: &'a ModPath,
        graph: &BTreeMap<&'a ModPath, Vec<&'a ModPath>>,
        path: &mut Vec<&'a ModPath>,
        done: &mut BTreeSet<&'a ModPath>,
    ) -> Option<Vec<ModPath>> {
        if let Some(at) = path.iter().position(|p| *p == node) {
            let mut cycle: Vec<ModPath> = path[at..].iter().map(|p| (*p).clone()).collect();
            cycle.push(node.clone());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = walk(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| walk(node, &graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_two_modules_import_each_other() {
    let edges = sibling_edges();
    let keys: BTreeSet<(ModPath, ModPath)> = edges.keys().cloned().collect();
    if let Some(cycle) = find_cycle(&keys) {
        let steps: Vec<String> = cycle
            .windows(2)
            .map(|w| edges[&(w[0].clone(), w[1].clone())].clone())
            .collect();
        panic!("modules import each other:\n  {}", steps.join("\n  "));
    }
}

#[test]
fn the_check_sees_imports_and_loops() {
    let module: ModPath = vec!["room".into(), "host".into()];
    let found = named_paths(
        &module,
        "use super::load::LoadWindow;\nuse crate::{link::{self, RoomCommand}, metrics};\n\
         // use crate::ignored;\nlet x = crate::metrics::rejected(\"crate::nope\");",
    );
    let shown: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        shown,
        [
            "room::load::LoadWindow",
            "link",
            "link::RoomCommand",
            "metrics",
            "metrics::rejected"
        ]
    );
    let twice = named_paths(&module, "use super::super::config::ServerConfig;");
    assert_eq!(twice[0].join("::"), "config::ServerConfig");

    let m = |name: &str| vec![name.to_owned()];
    let edge = |a: &str, b: &str| (m(a), m(b));
    let chain: BTreeSet<_> = [edge("a", "b"), edge("b", "c"), edge("a", "c")].into();
    assert_eq!(find_cycle(&chain), None);
    let mut looped = chain;
    looped.insert(edge("c", "a"));
    let cycle = find_cycle(&looped).expect("a loop");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4, "{cycle:?}");
}
