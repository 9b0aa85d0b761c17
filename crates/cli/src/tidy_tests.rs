//! Tidy tests of the whole workspace (ARCHITECTURE.md "Invariants"): every Rust file says what
//! it is for in a leading `//!` comment, every crate takes the workspace lints, `unsafe` is
//! allowed in one module only (the SMB transport's FFI), and finished runs are reported in one
//! shape (`common::report`), printed by one function of the CLI; each crate has one
//! integration-test binary (`tests/it/`).

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `.rs` files under `dir`, recursively (build output left out).
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The crates of the workspace (folders under `crates/` with a Cargo.toml).
fn crates() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    out.sort();
    out
}

/// Files of `files` whose text does not start with a `//!` comment, relative to the root.
fn without_purpose(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!"))
        .map(|f| f.strip_prefix(root()).unwrap_or(f).display().to_string())
        .collect()
}

#[test]
fn every_rust_file_starts_with_what_it_is_for() {
    let mut files = Vec::new();
    for c in crates() {
        files.extend(rust_files(&c));
    }
    files.extend(rust_files(&root().join("fuzz")));
    assert!(files.len() > 100, "found only {} files", files.len());
    assert_eq!(without_purpose(&files), Vec::<String>::new());
}

#[test]
fn every_crate_takes_the_workspace_lints() {
    let lints = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(lints.contains("[workspace.lints.rust]\nunsafe_code = \"deny\""));
    let missing: Vec<String> = crates()
        .into_iter()
        .filter(|c| {
            !std::fs::read_to_string(c.join("Cargo.toml"))
                .unwrap()
                .contains("[lints]\nworkspace = true")
        })
        .map(|c| c.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(missing, Vec::<String>::new());
}

#[test]
fn unsafe_code_is_allowed_in_the_smb_ffi_only() {
    let mut allowing = Vec::new();
    for c in crates() {
        for f in rust_files(&c) {
            if std::fs::read_to_string(&f)
                .unwrap()
                .contains("allow(unsafe_code)")
            {
                allowing.push(f.strip_prefix(root()).unwrap().display().to_string());
            }
        }
    }
    // This file names the attribute too.
    assert_eq!(
        allowing,
        vec![
            "crates/cli/src/tidy_tests.rs".to_string(),
            "crates/integrations/src/transport/smb.rs".to_string()
        ]
    );
}

/// What a CLI module may not write itself: rejections, pending work and the outcomes they
/// give come from a job's `Summary`, printed by `finish` in `main.rs`.
const OWN_REPORTING: [&str; 3] = [
    "\"rejected:",
    "Outcome::Pending",
    "pending (the address register",
];

/// The lines of `text` that report a run outside the one report shape.
fn own_reporting(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| OWN_REPORTING.iter().any(|p| l.contains(p)))
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn one_report_shape() {
    let mut found = Vec::new();
    for f in rust_files(&root().join("crates/cli/src")) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name == "main.rs" || name == "tidy_tests.rs" {
            continue;
        }
        for line in own_reporting(&std::fs::read_to_string(&f).unwrap()) {
            found.push(format!("{name}: {line}"));
        }
    }
    assert_eq!(found, Vec::<String>::new());
    assert_eq!(
        own_reporting("tracing::warn!(\"rejected: {}\", r);\nOk(Outcome::Ok)"),
        vec!["tracing::warn!(\"rejected: {}\", r);".to_string()]
    );
}

/// The checks see what they look for (a test of the tests).
#[test]
fn a_file_without_a_purpose_comment_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let (good, bad) = (dir.path().join("good.rs"), dir.path().join("bad.rs"));
    std::fs::write(&good, "//! Does a thing.\nfn main() {}\n").unwrap();
    std::fs::write(&bad, "// Not a purpose.\nfn main() {}\n").unwrap();
    let found = without_purpose(&rust_files(dir.path()));
    assert_eq!(found, vec![bad.display().to_string()]);
}

/// The integration-test binaries of `crate_dir`: `.rs` files directly in `tests/`, and folders
/// there with a `main.rs`.
fn test_binaries(crate_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(crate_dir.join("tests")) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs") || p.join("main.rs").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

/// One integration-test binary per crate, `tests/it/main.rs` (each binary links the crate and
/// its dependencies again; one keeps the build fast and the tests easy to find).
#[test]
fn one_integration_test_binary_per_crate() {
    let mut found = Vec::new();
    for c in crates() {
        let binaries = test_binaries(&c);
        if !binaries.is_empty() && binaries != ["it"] {
            found.push(format!(
                "{}: {}",
                c.file_name().unwrap().to_string_lossy(),
                binaries.join(", ")
            ));
        }
    }
    assert_eq!(found, Vec::<String>::new(), "move them into tests/it/");
    assert_eq!(test_binaries(&root().join("crates/integrations")), ["it"]);
}
