//! The crate graph, read from `cargo metadata`: dependencies point one way, and the edges
//! the design forbids are not there (ARCHITECTURE.md, "Dependencies").

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Our crates and the custody crates each depends on (normal dependencies only: tests may
/// use anything).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut graph = BTreeMap::new();
    for package in meta["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap().to_string();
        let deps = package["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str())
            .filter(|d| d.starts_with("custody"))
            .map(str::to_string)
            .collect();
        graph.insert(name, deps);
    }
    graph
}

#[test]
fn forbidden_edges_are_absent() {
    let graph = graph();
    assert!(graph.len() >= 10, "the workspace was not read: {graph:?}");
    let forbidden: &[(&str, &str, &str)] = &[
        ("custody-scan", "custody-ledger", "the scanner records nothing itself"),
        ("custody-scan", "custody-crypto", "remediation (custody-remedy) seals, not the scanner"),
        ("custody-scan", "custody-remedy", "remediation builds on the scanner, not the other way"),
        ("custody-remedy", "custody-ledger", "the binary records what remediation did"),
        ("custody-remedy", "custody-vault", "remediation never opens the vault"),
        ("custody-scan", "custody-vault", "the scanner never opens the vault"),
        ("custody-scan", "custody-server", "the scanner knows no HTTP"),
        ("custody-extract", "custody-detect", "extraction is format knowledge, not detection"),
        ("custody-ledger", "custody-vault", "the ledger knows nothing of records"),
        ("custody-ledger", "custody-crypto", "the ledger's cryptography is its own"),
        ("custody-server", "custody-scan", "the server serves the vault"),
        (
            "custody",
            "custody-crypto",
            "the binary is thin: key handling is the vault's and remedy's",
        ),
        ("custody", "custody-extract", "the binary is thin: reading inside files is the scanner's"),
    ];
    for (from, to, why) in forbidden {
        assert!(
            !graph.get(*from).is_some_and(|deps| deps.contains(*to)),
            "{from} depends on {to}, but {why}"
        );
    }
    // The foundations depend on nothing of ours.
    for leaf in ["custody-store", "custody-detect", "custody-crypto", "custody-testkit"] {
        assert_eq!(
            graph.get(leaf),
            Some(&BTreeSet::new()),
            "{leaf} must depend on no custody crate"
        );
    }
}

#[test]
fn the_graph_has_no_cycle() {
    let graph = graph();
    // Kahn's algorithm: every crate is removed once all it depends on is.
    let mut left = graph.clone();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
            .map(|(name, _)| name.clone())
            .collect();
        assert!(!ready.is_empty(), "a dependency cycle among {:?}", left.keys());
        for name in ready {
            left.remove(&name);
        }
    }
}
