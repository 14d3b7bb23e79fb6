//! Records the git revision pipeline-cli is built from (`--version`,
//! `pipeline_build_info{revision}`): `PIPELINE_GIT_REVISION` when set (a
//! container build, which has no `.git`), else `git rev-parse`; `unknown`
//! outside a git checkout.

use std::path::Path;
use std::process::Command;

fn main() {
    let given = std::env::var("PIPELINE_GIT_REVISION")
        .ok()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty() && r != "unknown");
    let revision = given
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .filter(|r| !r.is_empty())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PIPELINE_GIT_REVISION={revision}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PIPELINE_GIT_REVISION");
    // A new commit moves HEAD's branch (a loose ref, or packed-refs).
    let head = Path::new(".git/HEAD");
    if head.exists() {
        println!("cargo:rerun-if-changed=.git/HEAD");
        if let Some(branch) = std::fs::read_to_string(head)
            .ok()
            .and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_string()))
        {
            for path in [format!(".git/{branch}"), ".git/packed-refs".into()] {
                if Path::new(&path).exists() {
                    println!("cargo:rerun-if-changed={path}");
                }
            }
        }
    }
}
