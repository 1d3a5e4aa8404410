//! The minimum supported Rust version (`rust-version` in `Cargo.toml` and `codegen/Cargo.toml`)
//! checked as far as one toolchain allows.
//!
//! Only the current stable toolchain exists on this machine and no other can be fetched, so the
//! declared version cannot be built with. What can be checked:
//!
//! - every registry crate a user of either crate builds (`cargo tree -e normal,build` with all
//!   features; the Windows and WASI crates of other platforms are not fetched here) declares a
//!   `rust-version` no newer than ours: cargo would refuse to build it otherwise. Dev-only
//!   crates (rcgen and `time` for the TLS tests' certificates) are left out: only this
//!   repository's own tests build them, on the toolchain CI has;
//! - the newest language feature that tends to slip in unnoticed: `let` chains, stable since
//!   1.88 (edition 2024 accepts them on any newer compiler); a crate that declares less may
//!   not use one (`src/wire.rs` had one while the crate declared 1.85);
//! - the standard library: `cargo clippy` reads `rust-version` and its `incompatible_msrv` lint
//!   (on in `tests/run.sh`, `-D warnings`) fails on any std item stabilized after it.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `"1.85"` or `"1.85.0"` as `(1, 85, 0)`.
fn version(text: &str) -> (u32, u32, u32) {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().expect("a number"));
    (
        parts.next().expect("major"),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// The value of `rust-version = "…"` in a manifest's `[package]`, if any.
fn rust_version(manifest: &str) -> Option<(u32, u32, u32)> {
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| version(v.trim().trim_matches('"')))
}

fn declared(manifest: &Path) -> (u32, u32, u32) {
    let text = std::fs::read_to_string(manifest).expect("read manifest");
    rust_version(&text).expect("a rust-version")
}

/// Every `(name, version)` from the crates.io registry in `Cargo.lock`.
fn locked_registry_crates() -> Vec<(String, String)> {
    let lock = std::fs::read_to_string(repo().join("Cargo.lock")).expect("read Cargo.lock");
    let mut crates = Vec::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |key: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key} = ")))
                .map(|v| v.trim_matches('"').to_string())
        };
        if field("source").is_some_and(|s| s.starts_with("registry+")) {
            crates.push((
                field("name").expect("name"),
                field("version").expect("version"),
            ));
        }
    }
    crates
}

/// `name version` of every crate a user's build of either crate compiles, with all features:
/// normal and build edges, no dev-dependencies.
fn shipped_crates() -> std::collections::HashSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(repo())
        .args([
            "tree",
            "--offline",
            "-e",
            "normal,build",
            "--all-features",
            "--prefix",
            "none",
        ])
        .args(["-p", "bare-grpc", "-p", "bare-grpc-codegen"])
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next()?;
            let version = words.next()?.strip_prefix('v')?;
            Some(format!("{name} {version}"))
        })
        .collect()
}

/// The unpacked sources of the registries cargo has fetched into.
fn registry_sources() -> Vec<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    std::fs::read_dir(home.join("registry/src"))
        .expect("cargo's registry sources")
        .map(|e| e.expect("registry entry").path())
        .collect()
}

#[test]
fn no_dependency_needs_a_newer_rust_than_declared() {
    let ours = [
        declared(&repo().join("Cargo.toml")),
        declared(&repo().join("codegen/Cargo.toml")),
    ];
    let floor = ours.iter().min().copied().expect("two crates");
    let sources = registry_sources();
    let shipped = shipped_crates();
    let mut checked = 0;
    let mut too_new = Vec::new();
    for (name, version_text) in locked_registry_crates() {
        if !shipped.contains(&format!("{name} {version_text}")) {
            continue; // a dev-dependency's crate: only our own tests build it
        }
        let Some(manifest) = sources
            .iter()
            .map(|s| s.join(format!("{name}-{version_text}/Cargo.toml")))
            .find(|p| p.is_file())
        else {
            continue; // another platform's crate, never fetched here
        };
        checked += 1;
        let text = std::fs::read_to_string(&manifest).expect("read a dependency's manifest");
        match rust_version(&text) {
            Some(needs) if needs > floor => {
                too_new.push(format!("{name} {version_text} needs {needs:?}"))
            }
            _ => {}
        }
    }
    assert!(checked > 40, "only {checked} locked crates found on disk");
    assert!(
        too_new.is_empty(),
        "declared rust-version {floor:?} is older than: {too_new:?}"
    );
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn let_chains_need_1_88() {
    for (manifest, src) in [("Cargo.toml", "src"), ("codegen/Cargo.toml", "codegen/src")] {
        let mut files = Vec::new();
        rust_files(&repo().join(src), &mut files);
        // A `let` chain: a line of an `if`/`while` condition that goes on with `&& let`.
        let users: Vec<String> = files
            .iter()
            .filter(|f| {
                std::fs::read_to_string(f)
                    .expect("read source")
                    .lines()
                    .any(|l| l.trim_start().starts_with("&& let ") || l.contains(" && let "))
            })
            .map(|f| f.display().to_string())
            .collect();
        if !users.is_empty() {
            let declared = declared(&repo().join(manifest));
            assert!(
                declared >= (1, 88, 0),
                "{manifest} declares {declared:?} but let chains (stable in 1.88) are used in {users:?}"
            );
        }
    }
}
