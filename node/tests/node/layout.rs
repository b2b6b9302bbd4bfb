//! The node's module layout: no module imports one that imports it back (directly or around a
//! circle), nothing outside `rpc/` uses the RPC helpers, no RPC namespace imports another, and
//! no source file of the workspace grows far past 600 lines.
//!
//! Imports are read from the sources: every `crate::a::b` and `super::a` path, and every path
//! from a module's own children (`child::item`), resolved to the longest module prefix.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crate's modules (`a::b`), each with its source, from `src`.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable source dir") {
            let path = entry.expect("a dir entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src").with_extension("");
            let mut parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "main" || p == "lib") {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).expect("readable source");
            out.insert(parts.join("::"), text);
        }
    }
    out
}

/// The paths `text` names: `crate::...`, `super::...` and `child::...` (as absolute segments).
fn referenced(module: &str, text: &str, known: &BTreeMap<String, String>) -> BTreeSet<String> {
    let here: Vec<&str> = if module.is_empty() { vec![] } else { module.split("::").collect() };
    let mut targets = BTreeSet::new();
    for line in text.lines().map(str::trim_start).filter(|l| !l.starts_with("//")) {
        let bytes = line.as_bytes();
        let mut start = 0;
        while start < bytes.len() {
            // A path starts at an identifier not preceded by `::`, a letter or a digit.
            let begins = bytes[start].is_ascii_alphabetic()
                && (start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_'))
                && !(start >= 2 && &bytes[start - 2..start] == b"::");
            if !begins {
                start += 1;
                continue;
            }
            let mut end = start;
            while end < bytes.len()
                && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' || bytes[end] == b':')
            {
                end += 1;
            }
            let path: Vec<&str> = line[start..end].split("::").filter(|s| !s.is_empty()).collect();
            start = end.max(start + 1);
            if path.len() < 2 {
                continue;
            }
            let absolute: Vec<String> = match path[0] {
                "crate" => path[1..].iter().map(|s| s.to_string()).collect(),
                "super" => {
                    let parent = &here[..here.len().saturating_sub(1)];
                    parent.iter().chain(&path[1..]).map(|s| s.to_string()).collect()
                }
                "self" => here.iter().chain(&path[1..]).map(|s| s.to_string()).collect(),
                child if known.contains_key(&join(&here, child)) => {
                    here.iter().chain(&path).map(|s| s.to_string()).collect()
                }
                _ => continue,
            };
            // The longest prefix that is a module.
            let target = (1..=absolute.len())
                .rev()
                .map(|n| absolute[..n].join("::"))
                .find(|candidate| known.contains_key(candidate))
                .unwrap_or_default();
            if target != module {
                targets.insert(target);
            }
        }
    }
    targets
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
    let mut stack = vec![root.clone()];
    let mut long = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable dir") {
            let path = entry.expect("a dir entry").path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") {
                let lines = std::fs::read_to_string(&path).expect("readable source").lines().count();
                if lines > 650 {
                    long.push(format!(
                        "{} ({lines} lines)",
                        path.strip_prefix(&root).expect("under root").display()
                    ));
                }
            }
        }
    }
    assert!(long.is_empty(), "split these files: {long:?}");
}

#[test]
fn the_light_commands_check_only_through_the_light_crate() {
    let modules = modules(&node_src());
    let light: Vec<_> = modules.iter().filter(|(m, _)| m.starts_with("cli::light")).collect();
    assert_eq!(light.len(), 4, "cli/light/: {:?}", light.iter().map(|(m, _)| m).collect::<Vec<_>>());
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
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--locked", "--offline", "--format-version", "1"])
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
