//! Installed without Rust: the Dockerfile builds the image the Kubernetes
//! manifests run (checked as far as a machine without a container engine
//! can: its stages, user, paths and image name, and the build context it
//! copies resolving with `--locked`), and `cargo package` holds what builds
//! the binary and none of the test data.

use std::fs;
use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One Dockerfile instruction: its stage (0 = the first FROM), keyword and
/// arguments (continuation lines joined).
#[derive(Debug)]
struct Instruction {
    stage: usize,
    keyword: String,
    args: String,
}

fn dockerfile() -> Vec<Instruction> {
    let text = fs::read_to_string(repo().join("Dockerfile")).expect("a Dockerfile at the root");
    let mut joined = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && pending.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => pending.push_str(&format!("{} ", head.trim())),
            None => {
                pending.push_str(line);
                joined.push(std::mem::take(&mut pending));
            }
        }
    }
    let mut stage = 0;
    let mut seen_from = false;
    joined
        .into_iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (keyword, args) = l.split_once(' ').unwrap_or((&l, ""));
            let keyword = keyword.to_ascii_uppercase();
            if keyword == "FROM" {
                stage += usize::from(seen_from);
                seen_from = true;
            }
            Instruction {
                stage,
                keyword,
                args: args.trim().to_string(),
            }
        })
        .collect()
}

/// The values of `key:` in the Kubernetes manifests.
fn manifest_values(key: &str) -> Vec<String> {
    let mut values = Vec::new();
    for entry in fs::read_dir(repo().join("deploy/kubernetes")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            for line in fs::read_to_string(&path).unwrap().lines() {
                if let Some(v) = line.trim().strip_prefix(&format!("{key}:")) {
                    values.push(v.trim().to_string());
                }
            }
        }
    }
    assert!(!values.is_empty(), "no {key}: in deploy/kubernetes");
    values
}

/// True when `.dockerignore` leaves `path` (relative) out of the context.
fn ignored(path: &str) -> bool {
    let text = fs::read_to_string(repo().join(".dockerignore")).expect("a .dockerignore");
    let first = path.split('/').next().unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|pattern| pattern == first || pattern == path)
}

#[test]
fn the_dockerfile_builds_the_image_the_manifests_run() {
    let steps = dockerfile();
    let of = |stage: usize, keyword: &str| -> Vec<&str> {
        steps
            .iter()
            .filter(|i| i.stage == stage && i.keyword == keyword)
            .map(|i| i.args.as_str())
            .collect()
    };
    let froms: Vec<&Instruction> = steps.iter().filter(|i| i.keyword == "FROM").collect();
    assert_eq!(
        froms.len(),
        2,
        "a build stage and a runtime stage: {froms:?}"
    );

    // The build stage: Rust on Debian bookworm, at least rust-version.
    let build = &froms[0].args;
    assert!(
        build.starts_with("rust:")
            && build.contains("-slim-bookworm")
            && build.ends_with(" AS build"),
        "{build}"
    );
    let rust: Vec<u32> = steps
        .iter()
        .find_map(|i| i.args.strip_prefix("RUST_VERSION="))
        .expect("ARG RUST_VERSION=…")
        .split('.')
        .map(|n| n.parse().unwrap())
        .collect();
    let manifest = fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let needed: Vec<u32> = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"')
        .split('.')
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        rust >= needed,
        "Rust {rust:?} is older than rust-version {needed:?}"
    );
    assert!(
        of(0, "RUN").contains(&"cargo build --release --locked"),
        "{:?}",
        of(0, "RUN")
    );
    assert_eq!(of(0, "WORKDIR"), ["/src"]);

    // The runtime stage: no compiler, no shell step, not root.
    let runtime = &froms[1].args;
    for word in ["rust", "gcc", "buildpack", "sdk"] {
        assert!(!runtime.contains(word), "{runtime}");
    }
    assert!(
        runtime.contains("distroless/cc") || runtime.contains("bookworm-slim"),
        "{runtime}"
    );
    assert!(
        of(1, "RUN").is_empty(),
        "the runtime stage runs nothing: {:?}",
        of(1, "RUN")
    );
    let user = of(1, "USER");
    assert_eq!(user.len(), 1, "{user:?}");
    let uid = user[0].split(':').next().unwrap();
    assert!(uid != "0" && uid != "root", "{user:?}");
    for want in manifest_values("runAsUser") {
        assert_eq!(uid, want, "the manifests run as user {want}");
    }

    // The binary goes where the manifests start it, from where cargo puts it.
    let copy = of(1, "COPY");
    assert_eq!(
        copy,
        ["--from=build /src/target/release/pipeline-cli /usr/local/bin/pipeline-cli"]
    );
    assert_eq!(of(1, "ENTRYPOINT"), ["[\"/usr/local/bin/pipeline-cli\"]"]);
    for command in manifest_values("command") {
        assert!(
            command.starts_with("[\"/usr/local/bin/pipeline-cli\""),
            "{command}"
        );
    }

    // The image name and tag: the manifests', at Cargo.toml's version.
    let image = format!(
        "registry.example.com/pipeline-cli:{}",
        env!("CARGO_PKG_VERSION")
    );
    for used in manifest_values("image") {
        assert_eq!(used, image);
    }
    let labels = of(1, "LABEL").join(" ");
    assert!(
        labels.contains(&format!("org.opencontainers.image.ref.name=\"{image}\"")),
        "{labels}"
    );
    assert!(
        labels.contains(&format!(
            "org.opencontainers.image.version=\"{}\"",
            env!("CARGO_PKG_VERSION")
        )),
        "{labels}"
    );

    // The build context the build stage copies is there, not left out by
    // .dockerignore, and resolves from Cargo.lock alone (`--locked`).
    let context = tempfile::tempdir().unwrap();
    for args in of(0, "COPY") {
        let words: Vec<&str> = args.split_whitespace().collect();
        let (sources, dest) = words.split_at(words.len() - 1);
        assert!(dest[0] == "./" || dest[0].starts_with("./"), "{args}");
        for source in sources {
            assert!(!ignored(source), ".dockerignore leaves out {source}");
            let from = repo().join(source);
            assert!(from.exists(), "COPY {source}: not in the repository");
            copy_tree(&from, &context.path().join(source));
        }
    }
    for heavy in ["target", ".git", ".venv", "tests", "fixtures"] {
        assert!(ignored(heavy), ".dockerignore should leave out {heavy}");
    }
    // Every dependency resolves from Cargo.lock as it is, for this machine.
    let host = Command::new("rustc").arg("-vV").output().unwrap();
    let host = String::from_utf8_lossy(&host.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .unwrap();
    cargo(
        &["fetch", "--locked", "--offline", "--target", &host],
        context.path(),
    );
    let out = cargo(
        &[
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ],
        context.path(),
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "pipeline-cli")
        .unwrap();
    let bins: Vec<&str> = root["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"][0] == "bin")
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        bins,
        ["pipeline-cli"],
        "the binary the runtime stage copies"
    );
}

/// Runs cargo with `args` in `dir`; it must succeed.
fn cargo(args: &[&str], dir: &Path) -> std::process::Output {
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(from, to).unwrap();
    }
}

#[test]
fn the_package_holds_what_builds_and_no_test_data() {
    // Packaged for real (not verified: that is a whole build), into a
    // target directory of its own.
    let target = tempfile::tempdir().unwrap();
    let dir = target.path().to_str().unwrap();
    let out = cargo(
        &[
            "package",
            "--no-verify",
            "--allow-dirty",
            "--offline",
            "--target-dir",
            dir,
        ],
        repo(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("warning"), "cargo package warns: {err}");
    let krate = target.path().join(format!(
        "package/pipeline-cli-{}.crate",
        env!("CARGO_PKG_VERSION")
    ));
    let size = fs::metadata(&krate).unwrap().len();
    assert!(size < 1 << 20, "the package is {size} bytes compressed");
    let out = cargo(&["package", "--list", "--allow-dirty", "--offline"], repo());
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src/main.rs",
        "src/lib.rs",
        "README.md",
        "LICENSE-MIT",
        "LICENSE-APACHE",
    ] {
        assert!(
            listed.iter().any(|l| l == needed),
            "{needed} is not packaged"
        );
    }
    // Every source file is in (a module left out would not build).
    let mut missing = Vec::new();
    walk(&repo().join("src"), &mut |path| {
        let rel = path
            .strip_prefix(repo())
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        if rel.ends_with(".rs") && !listed.contains(&rel) {
            missing.push(rel);
        }
    });
    assert!(missing.is_empty(), "not packaged: {missing:?}");
    let mut bytes = 0;
    for file in &listed {
        for kept_out in [
            "fixtures/",
            "scripts/",
            "deploy/",
            "monitoring/",
            "examples/",
            "target/",
            ".venv/",
        ] {
            assert!(!file.starts_with(kept_out), "{file} is packaged");
        }
        if let Ok(m) = fs::metadata(repo().join(file)) {
            bytes += m.len();
        }
    }
    assert!(bytes < 4 << 20, "the package holds {bytes} bytes");
}

fn walk(dir: &Path, each: &mut dyn FnMut(&Path)) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, each);
        } else {
            each(&path);
        }
    }
}
