//! A check that modules call down, never in a circle: it reads the sources,
//! builds the graph of `crate::X` references between the top-level modules
//! of `host/src` (and of `super::X` references between the files of
//! `runtime/`), and fails when a group of modules reach each other.
//!
//! Comments, `#[cfg(test)] mod tests` blocks and test-only files
//! (`tests.rs`, `test_support.rs`) are left out: a test may use any module.
//! Circles still being untangled elsewhere are listed in [`KNOWN`]; a new
//! circle fails the test, and so does a listed one that is
//! gone (remove it from the list). Run it with
//! `cargo test -p plugboard --lib module_graph -- --nocapture` to see the
//! graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Circles between top-level modules that are known and not yet broken
/// (none: a new one fails the test).
const KNOWN: &[&[&str]] = &[];

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The `.rs` files of a module: the file itself, or every file under its folder.
fn files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        let p = entry.unwrap().path();
        let test_only = p
            .file_name()
            .is_some_and(|n| n == "tests.rs" || n == "test_support.rs");
        if !test_only && (p.is_dir() || p.extension().is_some_and(|e| e == "rs")) {
            out.extend(files(&p));
        }
    }
    out
}

/// A file's code without comments and without its unit tests.
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names in `text` that follow `prefix` (`crate::`), including those of
/// a group (`crate::{a, b::c}`).
fn referenced(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (at, _) in text.match_indices(prefix) {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.insert(name);
            }
        } else {
            out.insert(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    out
}

/// The graph of the modules in `dir` (skipping `skip`), by `prefix` references.
fn graph(dir: &Path, prefix: &str, skip: &[&str]) -> Graph {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if (path.is_dir() || path.extension().is_some_and(|e| e == "rs"))
            && !skip.contains(&name.as_str())
        {
            modules.insert(name, path);
        }
    }
    modules
        .iter()
        .map(|(name, path)| {
            let uses: BTreeSet<String> = files(path)
                .iter()
                .flat_map(|f| referenced(&code(f), prefix))
                .filter(|m| m != name && modules.contains_key(m))
                .collect();
            (name.clone(), uses)
        })
        .collect()
}

/// Every module `from` reaches.
fn reach(graph: &Graph, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(m) = todo.pop() {
        for next in &graph[&m] {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

/// The groups of two or more modules that all reach each other.
fn circles(graph: &Graph) -> BTreeSet<BTreeSet<String>> {
    let reaches: BTreeMap<_, _> = graph.keys().map(|m| (m, reach(graph, m))).collect();
    graph
        .keys()
        .map(|a| {
            graph
                .keys()
                .filter(|b| a == *b || (reaches[a].contains(*b) && reaches[b].contains(a)))
                .cloned()
                .collect::<BTreeSet<_>>()
        })
        .filter(|group| group.len() > 1)
        .collect()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn top_level_modules_have_no_new_circles() {
    let graph = graph(&src(), "crate::", &["lib", "main", "module_graph"]);
    for (module, uses) in &graph {
        println!("{module} -> {uses:?}");
    }
    let found = circles(&graph);
    let known: BTreeSet<BTreeSet<String>> = KNOWN
        .iter()
        .map(|group| group.iter().map(|m| m.to_string()).collect())
        .collect();
    assert_eq!(
        found, known,
        "circles between top-level modules of host/src"
    );
}

#[test]
fn runtime_files_have_no_circles() {
    let graph = graph(&src().join("runtime"), "super::", &["mod"]);
    assert_eq!(circles(&graph), BTreeSet::new(), "{graph:?}");
}

#[test]
fn references_are_read_from_paths_and_groups() {
    let text = "use crate::{api::x, store};\nlet a = crate::runtime::y;\nmy_crate::no";
    let names: Vec<_> = referenced(text, "crate::").into_iter().collect();
    assert_eq!(names, ["api", "runtime", "store"]);
}
