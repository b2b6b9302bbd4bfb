//! The node's module layout: no module imports one that imports it back (directly or around a
//! circle), nothing outside `rpc/` uses the RPC helpers, no RPC namespace imports another, and
//! no source file of the workspace (ours: not `third_party/`) grows far past 600 lines.
//!
//! Imports are read from the sources: every `crate::a::b` and `super::a` path, and every path
//! from a module's own children (`child::item`), resolved to the longest module prefix.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The `.rs` files below `dir` (hidden folders, `target` and `third_party`, whose crates are
/// upstream's, left out).
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable dir") {
            let path = entry.expect("a dir entry").path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "third_party" {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The crate's modules (`a::b`), each with its source, from `src`.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for path in rust_files(src) {
        let relative = path.strip_prefix(src).expect("under src").with_extension("");
        let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if parts.last().is_some_and(|p| p == "mod" || p == "main" || p == "lib") {
            parts.pop();
        }
        let text = std::fs::read_to_string(&path).expect("readable source");
        out.insert(parts.join("::"), text);
    }
    out
}

/// The paths `text` names: `crate::...`, `super::...` (any number), `self::...` and
/// `child::...`, with `{...}` groups (nested, across lines) expanded and `*` naming the module
/// before it; each resolved to the longest prefix that is a module.
fn referenced(module: &str, text: &str, known: &BTreeMap<String, String>) -> BTreeSet<String> {
    let here: Vec<&str> = if module.is_empty() { vec![] } else { module.split("::").collect() };
    // Comments out (a `//` inside a string loses the rest of its line: harmless here).
    let code: String =
        text.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n");
    let bytes = code.as_bytes();
    let mut paths = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let begins = (bytes[at].is_ascii_alphabetic() || bytes[at] == b'_')
            && (at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_'))
            && !(at >= 2 && &bytes[at - 2..at] == b"::");
        if begins {
            at = path_at(&code, at, Vec::new(), &mut paths);
        } else {
            at += 1;
        }
    }
    let mut targets = BTreeSet::new();
    for path in paths.iter().filter(|p| p.len() >= 2 || p.last().is_some_and(|s| s == "*")) {
        let mut segments: Vec<&str> =
            path.iter().map(String::as_str).filter(|s| *s != "*" && *s != "self").collect();
        let absolute: Vec<String> = match segments.first().copied() {
            Some("crate") => segments.split_off(1).into_iter().map(String::from).collect(),
            Some("super") => {
                let ups = segments.iter().take_while(|s| **s == "super").count();
                let base = &here[..here.len().saturating_sub(ups)];
                base.iter().copied().chain(segments[ups..].iter().copied()).map(String::from).collect()
            }
            Some(first) if path[0] == "self" || known.contains_key(&join(&here, first)) => {
                here.iter().copied().chain(segments.iter().copied()).map(String::from).collect()
            }
            _ => continue,
        };
        let target = (1..=absolute.len())
            .rev()
            .map(|n| absolute[..n].join("::"))
            .find(|candidate| known.contains_key(candidate))
            .unwrap_or_default();
        if target != module {
            targets.insert(target);
        }
    }
    targets
}

/// Reads the path starting at `at` (after `prefix`): `a::b::c`, `a::b::*` or `a::{x, y::z}`;
/// pushes every full path it names; returns where it ends.
fn path_at(code: &str, mut at: usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let bytes = code.as_bytes();
    loop {
        let start = at;
        while at < bytes.len()
            && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_' || bytes[at] == b'*')
        {
            at += 1;
        }
        if at == start {
            break;
        }
        prefix.push(code[start..at].to_owned());
        if !code[at..].starts_with("::") {
            break;
        }
        at += 2;
        let rest = code[at..].trim_start();
        at = code.len() - rest.len();
        if rest.starts_with('{') {
            // A group: each item is a path after the prefix.
            at += 1;
            loop {
                let rest = code[at..].trim_start_matches(|c: char| c.is_whitespace() || c == ',');
                at = code.len() - rest.len();
                if rest.is_empty() || rest.starts_with('}') {
                    return at + 1;
                }
                let before = at;
                at = path_at(code, at, prefix.clone(), out);
                // Skip `as name` and anything else up to the next item.
                while at < bytes.len() && bytes[at] != b',' && bytes[at] != b'}' {
                    at += 1;
                }
                if at == before {
                    at += 1;
                }
            }
        }
    }
    if !prefix.is_empty() {
        out.push(prefix);
    }
    at
}

fn join(here: &[&str], child: &str) -> String {
    here.iter().copied().chain([child]).collect::<Vec<_>>().join("::")
}

/// `module`'s imports, by module.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let known = modules(src);
    known.iter().map(|(module, text)| (module.clone(), referenced(module, text, &known))).collect()
}

/// A circle of imports, if any (as the modules along it).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|start| visit(start, graph, &mut Vec::new(), &mut done))
}

fn node_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_module_of_the_node_imports_one_that_imports_it_back() {
    let graph = graph(&node_src());
    assert!(graph.len() > 15, "the node's modules were not found: {:?}", graph.keys());
    // The checker sees the imports it must see.
    assert!(graph["rpc::chain"].contains("service::chain"), "{:?}", graph["rpc::chain"]);
    assert!(graph["cli::light"].contains("cli::light::record"), "{:?}", graph["cli::light"]);
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import circle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_import_reader_sees_groups_globs_and_supers() {
    let known: BTreeMap<String, String> = ["", "a", "a::b", "a::b::c", "d", "d::e"]
        .into_iter()
        .map(|m| (m.to_owned(), String::new()))
        .collect();
    let text =
        "use crate::{d::e::Thing, a::b as bee};\nuse super::super::d::*;\nuse self::c::{\n    x,\n};\n";
    let seen = referenced("a::b", text, &known);
    assert_eq!(seen, BTreeSet::from(["d::e".to_owned(), "d".to_owned(), "a::b::c".to_owned()]));
}

#[test]
fn the_cycle_check_finds_a_circle() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    graph.insert("b".to_owned(), BTreeSet::from(["c".to_owned()]));
    graph.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(find_cycle(&graph), Some(vec!["a", "b", "c", "a"].into_iter().map(String::from).collect()));
    graph.get_mut("c").expect("c").clear();
    assert_eq!(find_cycle(&graph), None);
}

#[test]
fn rpc_helpers_stay_in_rpc_and_namespaces_do_not_import_each_other() {
    let graph = graph(&node_src());
    let shared = ["rpc::codes", "rpc::method"];
    for (module, imports) in &graph {
        for target in imports.iter().filter(|t| t.starts_with("rpc::")) {
            let inside = module == "rpc" || module.starts_with("rpc::");
            assert!(inside, "{module} uses the RPC helper module {target} (only rpc/ may)");
            let allowed =
                module == "rpc" || shared.contains(&target.as_str()) || shared.contains(&module.as_str());
            assert!(allowed, "the RPC module {module} imports {target}: namespaces share only {shared:?}");
        }
    }
}

#[test]
fn source_files_stay_near_600_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf();
    let mut long = Vec::new();
    for path in rust_files(&root) {
        let lines = std::fs::read_to_string(&path).expect("readable source").lines().count();
        if lines > 650 {
            long.push(format!("{} ({lines} lines)", path.strip_prefix(&root).expect("under root").display()));
        }
    }
    assert!(long.is_empty(), "split these files: {long:?}");
}

#[test]
fn the_light_commands_check_only_through_the_light_crate() {
    let modules = modules(&node_src());
    let light: Vec<_> = modules.iter().filter(|(m, _)| m.starts_with("cli::light")).collect();
    assert_eq!(light.len(), 5, "cli/light/: {:?}", light.iter().map(|(m, _)| m).collect::<Vec<_>>());
    for (module, text) in light {
        for check in
            ["verify_record(", "check_extends(", "verify_quorum(", "pyralog_zk::", "verify_state_proof("]
        {
            assert!(!text.contains(check), "{module} checks with {check} itself: call pyralog_light instead");
        }
    }
}

/// The workspace's `rust-version` is what building it needs: the newest `rust-version` among
/// its dependencies (and at least 1.85, for edition 2024). It said 1.85 while smoltcp 0.14
/// needs 1.91.
#[test]
fn rust_version_is_what_the_dependencies_need() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace");
    // This platform's dependencies only: those of other platforms are not downloaded on a fresh
    // machine, and `--offline` keeps the test off the network.
    let rustc = std::process::Command::new("rustc").arg("-vV").output().expect("rustc runs");
    let rustc = String::from_utf8_lossy(&rustc.stdout).into_owned();
    let host = rustc.lines().find_map(|line| line.strip_prefix("host: ")).expect("rustc names its host");
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--locked", "--offline", "--format-version", "1", "--filter-platform", host])
        .current_dir(root)
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    let version = |text: &str| -> (u64, u64) {
        let mut parts = text.split('.').map(|p| p.parse::<u64>().expect("a numeric version"));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    };
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    let packages = metadata["packages"].as_array().expect("packages");
    let (mut ours, mut needed) = (BTreeSet::new(), ((1, 85), "edition 2024".to_owned()));
    for package in packages {
        let Some(rust) = package["rust_version"].as_str() else { continue };
        if members.contains(package["id"].as_str().unwrap_or_default()) {
            ours.insert(version(rust));
        } else if version(rust) > needed.0 {
            needed = (version(rust), format!("{} {}", package["name"], package["version"]));
        }
    }
    assert_eq!(ours.len(), 1, "every member shares the workspace's rust-version: {ours:?}");
    assert_eq!(ours.first(), Some(&needed.0), "rust-version must be what {} needs", needed.1);
}
