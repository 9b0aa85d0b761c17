//! Tidy tests of the crate's layering (ARCHITECTURE.md "Invariants"), read from the source
//! files themselves:
//!
//! * no connector imports another connector: what two share lives in `common` (or in the
//!   shared services `dar`, `ad`, `transport`, `settings`);
//! * the pure modules (parsing of rows, diffs, mappings, payloads, uuids) use no file system,
//!   network, environment, clock, database or transport;
//! * every connector runs through the job driver (`crate::job`), and only the driver reconciles
//!   and applies plans.

use std::path::{Path, PathBuf};

/// The connectors: each owns its folder.
const CONNECTORS: &[&str] = &["opus", "los", "plan2learn", "os2sync"];

/// Modules that must stay pure.
const PURE: &[&str] = &[
    "common/address.rs",
    "common/env.rs",
    "common/mod.rs",
    "common/uuids.rs",
    "opus/cprmap.rs",
    "opus/diff.rs",
    "opus/map.rs",
    "opus/primary.rs",
    "opus/uuids.rs",
    "los/map.rs",
    "los/parse.rs",
    "los/seed.rs",
    "los/uuids.rs",
    "plan2learn/map.rs",
    "os2sync/map.rs",
    "os2sync/payload.rs",
];

/// What a pure module must not name (outside its `#[cfg(test)]` part).
const IMPURE: &[&str] = &[
    "std::fs",
    "std::net",
    "std::env",
    "std::process",
    "File::",
    "SystemTime",
    "Instant::now",
    "Timestamp::now",
    "Zoned::now",
    "::now()",
    "rusqlite",
    "ureq",
    "reqwest",
    "crate::transport",
    "crate::dar::http",
    "dipex_backend::Backend",
    "dipex_backend::Store",
    "dipex_backend::{",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The `.rs` files under `dir`, recursively, as paths relative to `src/`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.strip_prefix(src()).unwrap().to_path_buf());
        }
    }
    out.sort();
    out
}

/// The code of a file before its unit tests (`#[cfg(test)]`), comments left out.
fn code(rel: &Path) -> String {
    let text = std::fs::read_to_string(src().join(rel)).unwrap();
    let before_tests = text.split("#[cfg(test)]").next().unwrap_or("");
    before_tests
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The other connectors `code` of `connector` names.
fn other_connectors(connector: &str, code: &str) -> Vec<&'static str> {
    CONNECTORS
        .iter()
        .copied()
        .filter(|other| *other != connector && code.contains(&format!("crate::{other}::")))
        .collect()
}

/// The names of I/O `code` uses.
fn impure(code: &str) -> Vec<&'static str> {
    IMPURE
        .iter()
        .copied()
        .filter(|n| code.contains(n))
        .collect()
}

#[test]
fn no_connector_imports_another_connector() {
    let mut found = Vec::new();
    for connector in CONNECTORS {
        for rel in files(&src().join(connector)) {
            for other in other_connectors(connector, &code(&rel)) {
                found.push(format!("{}: uses crate::{other}", rel.display()));
            }
        }
    }
    assert_eq!(
        found,
        Vec::<String>::new(),
        "move what they share to `common`"
    );
}

#[test]
fn pure_modules_do_no_io() {
    let mut found = Vec::new();
    for rel in PURE {
        let path = Path::new(rel);
        assert!(
            src().join(path).is_file(),
            "{rel} is listed as pure but does not exist"
        );
        for needle in impure(&code(path)) {
            found.push(format!("{rel}: uses {needle}"));
        }
    }
    assert_eq!(found, Vec::<String>::new());
}

/// What only the job driver may do: reconcile facts into a plan and apply it.
const DRIVER_ONLY: &[&str] = &["reconcile(", ".apply("];

/// The calls of `code` only the driver may make.
fn writes(code: &str) -> Vec<&'static str> {
    DRIVER_ONLY
        .iter()
        .copied()
        .filter(|n| code.contains(n))
        .collect()
}

#[test]
fn only_the_driver_writes() {
    let mut found = Vec::new();
    for connector in CONNECTORS {
        let run = PathBuf::from(connector).join("run.rs");
        if !code(&run).contains("crate::job::") {
            found.push(format!(
                "{}: does not run through crate::job",
                run.display()
            ));
        }
        for rel in files(&src().join(connector)) {
            for call in writes(&code(&rel)) {
                found.push(format!("{}: calls {call}", rel.display()));
            }
        }
    }
    assert_eq!(
        found,
        Vec::<String>::new(),
        "a connector maps; the job driver reconciles and applies"
    );
    assert!(!writes(&code(Path::new("job.rs"))).is_empty());
}

/// The checks find what they look for (a test of the tests).
#[test]
fn the_checks_see_a_use_of_another_connector_and_of_io() {
    let code = "use crate::opus::uuids::OpusUuids;\nuse crate::los::run;\nlet f = std::fs::read(p);\nlet t = jiff::Timestamp::now();";
    assert_eq!(other_connectors("los", code), vec!["opus"]);
    assert_eq!(other_connectors("plan2learn", code), vec!["opus", "los"]);
    assert_eq!(impure(code), vec!["std::fs", "Timestamp::now", "::now()"]);
    assert_eq!(
        writes("let plan = reconcile(facts, &current);\nbackend.apply(plan, &reg)?;"),
        vec!["reconcile(", ".apply("]
    );
    assert_eq!(
        impure("let x = crate::common::address::split(t);"),
        Vec::<&str>::new()
    );
    assert!(files(&src().join("common")).contains(&PathBuf::from("common/uuids.rs")));
}
