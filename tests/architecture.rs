//! The layering rules of ARCHITECTURE.md, checked on the source: which top-level module may
//! import which, and no cycles between top-level modules or between the modules of one layer.
//!
//! The check reads `src/` as text: every `crate::<module>` path outside `#[cfg(test)]` code is an
//! import of that module. Test code may reach anywhere (it is not part of the layering).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What each top-level module may import (besides itself). Everything not listed is forbidden.
const ALLOWED: &[(&str, &[&str])] = &[
    ("clock", &[]),
    ("digest", &[]),
    // Observability: metrics cells and the access log, recorded into by the serving layers.
    ("obs", &["clock"]),
    ("http", &["clock", "obs"]),
    ("auth", &["http", "clock"]),
    ("storage", &["digest", "clock", "obs"]),
    ("s3", &["auth", "http", "storage", "digest", "clock"]),
    (
        "runtime",
        &["s3", "auth", "http", "storage", "digest", "clock", "obs"],
    ),
    ("bench", &["runtime", "auth", "http", "clock"]),
    ("cli", &["runtime", "bench", "auth"]),
    ("lib", &[]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a source file, e.g. `src/s3/ops/put.rs` -> ["s3", "ops", "put"].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The file's text without its `#[cfg(test)] mod ...` block (kept to the end of the file, as
/// this code base places test modules last) and without comment lines.
fn production_text(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim_start().starts_with("mod "))
        .unwrap_or(lines.len());
    lines[..end]
        .iter()
        .filter(|l| !l.trim_start().starts_with("//"))
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b` path in `text`, as its first `depth` segments.
fn crate_paths(text: &str, depth: usize) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let path: Vec<String> = rest
            .split("::")
            .map(|seg| {
                seg.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|seg| !seg.is_empty() && seg.chars().all(|c| !c.is_ascii_uppercase()))
            .take(depth)
            .collect();
        if !path.is_empty() {
            found.insert(path);
        }
    }
    found
}

/// Module -> modules it imports, at `depth` path segments, over production code.
fn graph(depth: usize) -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(&src, &file);
        if module == ["main"] || module.last().is_some_and(|m| m.starts_with("tests_")) {
            continue;
        }
        let from: Vec<String> = module.iter().take(depth).cloned().collect();
        let text = production_text(&std::fs::read_to_string(&file).expect("read source"));
        for to in crate_paths(&text, depth) {
            // A module's own children and parents are part of it at this depth.
            let same = to.iter().zip(&from).all(|(a, b)| a == b);
            let macro_name = to.len() == 1 && to[0].ends_with("err");
            if !same && !macro_name {
                edges
                    .entry(from.join("/"))
                    .or_default()
                    .insert(to.join("/"));
            }
        }
    }
    edges
}

/// One cycle in `edges`, if there is any.
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(pos) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[pos..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|n| visit(n, edges, &mut Vec::new(), &mut done))
}

#[test]
fn top_level_modules_import_only_the_layers_below() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut violations = Vec::new();
    for (from, tos) in graph(1) {
        let ok = allowed
            .get(from.as_str())
            .unwrap_or_else(|| panic!("module {from} is missing from ALLOWED"));
        for to in tos {
            if !ok.contains(&to.as_str()) {
                violations.push(format!("{from} imports {to}"));
            }
        }
    }
    assert!(violations.is_empty(), "layering broken: {violations:?}");
}

#[test]
fn no_cycles_between_modules() {
    for depth in 1..=3 {
        let edges = graph(depth);
        assert!(
            !edges.is_empty(),
            "the scan found no imports at depth {depth}"
        );
        if let Some(cycle) = find_cycle(&edges) {
            panic!("import cycle at depth {depth}: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_checker_sees_a_cycle_and_an_upward_import() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    edges.entry("b".into()).or_default().insert("a".into());
    assert!(find_cycle(&edges).is_some());
    let paths = crate_paths("use crate::s3::error::S3Error; x(crate::storage::Store)", 2);
    assert!(paths.contains(&vec!["s3".to_string(), "error".to_string()]));
    assert!(paths.contains(&vec!["storage".to_string()]));
    let text = "use crate::a::b;\n#[cfg(test)]\nmod tests {\n use crate::z::y;\n}";
    assert!(!production_text(text).contains("crate::z"));
}
