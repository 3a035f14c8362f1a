//! Build script: records the git revision for `--version` and `genesys_exporter_build_info{revision}`.
//!
//! Never fails: outside a git checkout (a source tarball, a Docker context without `.git`) or without `git`, the
//! revision is `unknown`. A `GIT_REVISION` variable set by the build environment wins.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=GIT_REVISION");
    let revision = std::env::var("GIT_REVISION")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=GIT_REVISION={revision}");

    // Re-run when HEAD moves (checkout or commit). Only existing paths are watched: Cargo treats a missing one as
    // always changed, which would rebuild the crate on every build.
    let mut watched = false;
    let mut paths = vec![git(&["rev-parse", "--git-path", "HEAD"]), git(&["rev-parse", "--git-path", "packed-refs"])];
    if let Some(head_ref) = git(&["rev-parse", "--symbolic-full-name", "HEAD"]) {
        paths.push(git(&["rev-parse", "--git-path", &head_ref]));
    }
    for p in paths.into_iter().flatten() {
        if Path::new(&p).exists() {
            println!("cargo:rerun-if-changed={p}");
            watched = true;
        }
    }
    if !watched {
        println!("cargo:rerun-if-changed=build.rs");
    }
}
