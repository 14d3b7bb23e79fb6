//! Every example runs as written, against the real servers: the config
//! files, the crontab line, the systemd service, the Kubernetes manifests,
//! and the README's examples into MySQL with their tables' DDL. Only hosts and paths are adapted: through the environment
//! variables the examples read (`${ES_URL:-…}`), and by mapping the
//! absolute paths of the crontab line, the unit and the pod.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::{json, Value};

const DB_PASS: &str = "loader-example-secret";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> PathBuf {
    repo().join("examples").join(name)
}

/// Runs `argv` (the binary first) in `cwd` with `env` added.
fn run_in(argv: &[String], env: &[(String, String)], cwd: &Path) -> Output {
    Command::new(&argv[0])
        .args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("PIPELINE_LOG")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .expect("run the example")
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Held by the tests that use `shop.orders`, one at a time.
static SHOP: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// MariaDB as the examples expect it: database `shop`, user `loader` (its
/// password in PIPELINE_DB_PASS), table `shop.orders`, empty. Hold [`SHOP`].
fn shop() -> Db {
    let mut db = loader();
    db.exec("DROP TABLE IF EXISTS shop.orders");
    db.exec(
        "CREATE TABLE shop.orders (_id VARCHAR(64) PRIMARY KEY, status VARCHAR(20), \
         amount DECIMAL(10,2), updated_at BIGINT)",
    );
    db
}

/// Database `shop` and user `loader` (its password in PIPELINE_DB_PASS), as
/// the examples expect them; a connection as the test's user. Hold [`SHOP`].
fn loader() -> Db {
    let mut db = Db::connect();
    db.exec("CREATE DATABASE IF NOT EXISTS shop");
    for host in ["%", "localhost"] {
        db.exec(&format!(
            "CREATE USER IF NOT EXISTS 'loader'@'{host}' IDENTIFIED BY '{DB_PASS}'"
        ));
        db.exec(&format!("GRANT ALL ON shop.* TO 'loader'@'{host}'"));
    }
    db
}

fn orders(from: u64, to: u64) -> Vec<(String, Value)> {
    (from..to)
        .map(|i| {
            let status = if i % 3 == 0 { "open" } else { "paid" };
            (
                format!("o{i}"),
                json!({"status": status, "amount": 10.5, "updated_at": 1000 + i}),
            )
        })
        .collect()
}

fn paid(from: u64, to: u64) -> u64 {
    (from..to).filter(|i| i % 3 != 0).count() as u64
}

#[test]
fn the_csv_examples_run_as_written() {
    let pg = Pushgateway::start();
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().to_str().unwrap();
    let bin = bin().to_string();

    // csv-to-file, from the repository as its first line says.
    let config = example("csv-to-file.toml");
    let argv = [bin.clone(), "--config".into(), config.display().to_string()];
    let out = run_in(&argv, &env(&[("OUT_DIR", tmp)]), repo());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let fixture = fs::read_to_string(repo().join("fixtures/sample.csv")).unwrap();
    let written = read_jsonl(&dir.path().join("sample.jsonl"));
    assert_eq!(written.len() as u64, summary_number(&stderr(&out), "read"));
    assert!(written.len() >= 8 && fixture.lines().count() > written.len());
    assert!(dir.path().join("sample.prom").exists());

    // csv-to-mysql, with the password from the environment.
    let _shop = SHOP.lock().unwrap_or_else(|e| e.into_inner());
    let mut db = shop();
    let mut csv = String::from("_id,status,amount,updated_at\n");
    for i in 0..50 {
        csv.push_str(&format!("c{i},paid,{i}.25,{i}\n"));
    }
    fs::write(dir.path().join("orders.csv"), csv).unwrap();
    let vars = env(&[
        ("INCOMING_DIR", tmp),
        ("DB_ADDR", "127.0.0.1:3306"),
        ("STATE_DIR", tmp),
        ("LOCK_DIR", tmp),
        ("PUSHGATEWAY_URL", &pg.url()),
        ("PIPELINE_DB_PASS", DB_PASS),
    ]);
    let config = example("csv-to-mysql.toml");
    let argv = [bin, "--config".into(), config.display().to_string()];
    let out = run_in(&argv, &vars, dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(db.count("SELECT COUNT(*) FROM shop.orders"), 50);
    let pushed = value(
        &pg.metrics(),
        "pipeline_records_inserted_total",
        &[("job", "pipeline-cli"), ("pipeline_id", "orders-import")],
    );
    assert_eq!(pushed, Some(50.0));
    assert!(!stderr(&out).contains(DB_PASS));

    // The user and the database come from the environment too.
    for (name, value, said) in [
        ("MYSQL_USER", "nobody_here", "user 'nobody_here'"),
        ("MYSQL_DATABASE", "no_such_db", "database 'no_such_db'"),
    ] {
        let mut vars = vars.clone();
        vars.push((name.to_string(), value.to_string()));
        let out = run_in(&argv, &vars, dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(said), "{name}: {err}");
    }
}

#[test]
fn the_es_to_file_example_runs_as_written() {
    let yesterday = (std::time::SystemTime::now() - std::time::Duration::from_secs(86_400))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let day = yesterday - yesterday % 86_400 + 3_600;
    for kind in ES_KINDS {
        let es = EsServer::start(kind);
        let docs: Vec<_> = (0..40u64)
            .map(|i| {
                // Half yesterday, half a week ago: the query keeps yesterday.
                let at = if i % 2 == 0 { day + i } else { day - 7 * 86_400 };
                let ts = chrono_like(at);
                (format!("l{i}"), json!({"@timestamp": ts, "level": "info", "service": "api", "message": format!("m{i}"), "host": "h1"}))
            })
            .collect();
        es.bulk("logs-2026.11.01", &docs);
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().to_str().unwrap();
        let vars = env(&[
            ("ES_URL", &es.url()),
            ("EXPORT_DIR", tmp),
            ("TEXTFILE_DIR", tmp),
            ("PIPELINE_ES_PASS", "exporter-secret"),
        ]);
        let config = example("es-to-file.toml");
        let argv = [
            bin().to_string(),
            "--config".into(),
            config.display().to_string(),
        ];
        let out = run_in(&argv, &vars, dir.path());
        assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
        let lines = read_jsonl(&dir.path().join("logs.jsonl"));
        assert_eq!(lines.len(), 20, "{kind:?}: {}", stderr(&out));
        assert!(lines.iter().all(|l| l.get("host").is_none()), "es-fields");
        assert!(dir.path().join("logs-export.prom").exists());
    }
}

/// `secs` since the epoch as an RFC 3339 UTC time.
fn chrono_like(secs: u64) -> String {
    let days = secs / 86_400;
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

/// Maps the absolute paths and hosts of a deployed command line to this
/// test's: the binary, the config directory, the lock and log directories,
/// the Pushgateway.
struct Mapping {
    pairs: Vec<(String, String)>,
}

impl Mapping {
    fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (from, to) in &self.pairs {
            out = out.replace(from.as_str(), to);
        }
        out
    }
}

/// The crontab's command, as cron's shell would run it.
fn crontab_command() -> String {
    let cron = fs::read_to_string(example("crontab")).unwrap();
    let line = cron
        .lines()
        .find(|l| l.starts_with(|c: char| c.is_ascii_digit() || c == '*'))
        .expect("a schedule line");
    let command: String = line
        .split_whitespace()
        .skip(5)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        command.starts_with('/'),
        "cron's PATH does not hold /usr/local/bin: name the binary by its full path: {command}"
    );
    command
}

/// The service's ExecStart, split, and its Environment= settings.
fn systemd_command() -> (Vec<String>, Vec<(String, String)>) {
    let unit = fs::read_to_string(example("systemd/pipeline-orders-sync.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let vars = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (exec.split_whitespace().map(String::from).collect(), vars)
}

/// The manifests as JSON (PyYAML comes with kubernetes-validate).
fn manifest(name: &str) -> Value {
    let py = venv().join("bin/python");
    let out = Command::new(&py)
        .args([
            "-c",
            "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(repo().join("deploy/kubernetes").join(name))
        .output()
        .expect("the venv's python (scripts/services.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The CronJob's pod command and its plain env values.
fn cronjob_command() -> (Vec<String>, Vec<(String, String)>) {
    let job = manifest("cronjob.yaml");
    let c = &job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let argv = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .chain(c["args"].as_array().unwrap())
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let vars = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().into(),
                e["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    (argv, vars)
}

#[test]
fn the_configmap_holds_the_example_and_every_manifest_validates() {
    let cm = manifest("configmap.yaml");
    let file = fs::read_to_string(example("es-to-mysql.toml")).unwrap();
    assert_eq!(cm["data"]["es-to-mysql.toml"].as_str(), Some(file.as_str()));
    let validate = venv().join("bin/kubernetes-validate");
    let mut files: Vec<PathBuf> = fs::read_dir(repo().join("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    let out = Command::new(&validate)
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The check can fail: an unknown field is refused.
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    let text = fs::read_to_string(repo().join("deploy/kubernetes/cronjob.yaml")).unwrap();
    fs::write(
        &broken,
        text.replace("concurrencyPolicy:", "concurrencyPolcy:"),
    )
    .unwrap();
    let out = Command::new(&validate)
        .arg("--strict")
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a misspelt field passed");
}

#[test]
fn cron_systemd_and_kubernetes_run_the_same_incremental_job() {
    let pg = Pushgateway::start();
    let _shop = SHOP.lock().unwrap_or_else(|e| e.into_inner());
    for kind in ES_KINDS {
        let mut db = shop();
        let es = EsServer::start(kind);
        es.bulk("orders", &orders(0, 30));
        let dir = tempfile::tempdir().unwrap();
        let tmp = format!("{}/", dir.path().display());
        let map = Mapping {
            pairs: vec![
                ("/usr/local/bin/pipeline-cli".into(), bin().into()),
                (
                    "/etc/pipeline/".into(),
                    format!("{}/", example("").display()),
                ),
                ("/run/lock/".into(), tmp.clone()),
                ("/run/pipeline/".into(), tmp.clone()),
                ("/var/log/pipeline/".into(), tmp.clone()),
                ("/var/lib/pipeline".into(), dir.path().display().to_string()),
                ("http://127.0.0.1:9091".into(), pg.url()),
                ("http://pushgateway.monitoring.svc:9091".into(), pg.url()),
                ("http://elasticsearch.search.svc:9200".into(), es.url()),
                ("mysql.shop.svc".into(), "127.0.0.1".into()),
            ],
        };
        let base = env(&[
            ("ES_URL", &es.url()),
            ("STATE_DIR", dir.path().to_str().unwrap()),
            ("PIPELINE_DB_PASS", DB_PASS),
        ]);

        // cron, through the shell as cron runs it: JSON lines in the log.
        let sh = vec!["sh".to_string(), "-c".into(), map.apply(&crontab_command())];
        let out = run_in(&sh, &base, dir.path());
        assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
        let log = fs::read_to_string(dir.path().join("orders-sync.log")).unwrap();
        let last: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
        assert_eq!(last["outcome"], "success", "{kind:?}: {log}");
        assert_eq!(last["inserted"], paid(0, 30), "{kind:?}: {log}");
        assert!(
            log.lines()
                .all(|l| serde_json::from_str::<Value>(l).is_ok()),
            "{log}"
        );

        // systemd, after new documents: only those.
        es.bulk("orders", &orders(30, 45));
        let (argv, vars) = systemd_command();
        let argv: Vec<String> = argv.iter().map(|a| map.apply(a)).collect();
        let mut all = base.clone();
        all.extend(vars.iter().map(|(k, v)| (k.clone(), map.apply(v))));
        let out = run_in(&argv, &all, dir.path());
        assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
        assert_eq!(summary_json(&out)["inserted"], paid(30, 45));

        // The Kubernetes CronJob's pod: nothing new since.
        let (argv, vars) = cronjob_command();
        let argv: Vec<String> = argv.iter().map(|a| map.apply(a)).collect();
        let mut all = base.clone();
        all.extend(vars.iter().map(|(k, v)| (k.clone(), map.apply(v))));
        let out = run_in(&argv, &all, dir.path());
        assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
        assert_eq!(summary_json(&out)["read"], 0);
        assert_eq!(db.count("SELECT COUNT(*) FROM shop.orders"), paid(0, 45));
    }
}

/// The summary record of a `--log-format json` run.
fn summary_json(out: &Output) -> Value {
    let err = stderr(out);
    let last = err.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!(v["summary"], true, "{err}");
    v
}

#[test]
fn the_cron_docs_show_the_example_crontab_line() {
    let docs = fs::read_to_string(repo().join("docs/cron.md")).unwrap();
    let cron = fs::read_to_string(example("crontab")).unwrap();
    let line = cron.lines().last().unwrap();
    assert!(
        docs.contains(line),
        "docs/cron.md and examples/crontab differ: {line}"
    );
}

#[test]
fn the_install_script_puts_the_man_page_and_completions_in_place() {
    let prefix = tempfile::tempdir().unwrap();
    let out = Command::new(repo().join("scripts/install.sh"))
        .arg(prefix.path())
        .env("PIPELINE_BIN", bin())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let share = prefix.path().join("share");
    let man = share.join("man/man1/pipeline-cli.1");
    let page = Command::new("man")
        .arg("-l")
        .arg(&man)
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&page.stdout);
    assert!(
        text.contains("--es-url") && text.contains("--check"),
        "{text}"
    );
    let bash = share.join("bash-completion/completions/pipeline-cli");
    let script = format!(
        "source {} && COMP_WORDS=(pipeline-cli --sink-t) COMP_CWORD=1 && _pipeline__cli pipeline-cli --sink-t pipeline-cli && echo \"${{COMPREPLY[@]}}\"",
        bash.display()
    );
    let done = Command::new("bash").arg("-c").arg(script).output().unwrap();
    let words = String::from_utf8_lossy(&done.stdout);
    assert!(
        words.contains("--sink-type"),
        "{words}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(share.join("zsh/site-functions/_pipeline-cli").exists());
    assert!(share
        .join("fish/vendor_completions.d/pipeline-cli.fish")
        .exists());
    let installed = prefix.path().join("bin/pipeline-cli");
    let version = Command::new(installed).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.contains(env!("CARGO_PKG_VERSION")) && version.contains("revision"),
        "{version}"
    );
}

/// A pod's container: its command line, its plain env values, and the env
/// variables it takes from the pod's own fields (name, field path).
struct Pod {
    argv: Vec<String>,
    vars: Vec<(String, String)>,
    fields: Vec<(String, String)>,
}

fn pod(container: &Value) -> Pod {
    let argv = container["command"]
        .as_array()
        .unwrap()
        .iter()
        .chain(container["args"].as_array().unwrap())
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut vars = Vec::new();
    let mut fields = Vec::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap().to_string();
        match e["value"].as_str() {
            Some(v) => vars.push((name, v.to_string())),
            None => fields.push((
                name,
                e["valueFrom"]["fieldRef"]["fieldPath"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )),
        }
    }
    Pod { argv, vars, fields }
}

/// Maps a pod's hosts and paths to this machine's (state in `dir`).
fn pod_mapping(dir: &Path, pg: &Pushgateway, es: &EsServer) -> Mapping {
    Mapping {
        pairs: vec![
            ("/usr/local/bin/pipeline-cli".into(), bin().into()),
            (
                "/etc/pipeline/".into(),
                format!("{}/", example("").display()),
            ),
            ("/var/lib/pipeline".into(), dir.display().to_string()),
            ("http://pushgateway.monitoring.svc:9091".into(), pg.url()),
            ("http://elasticsearch.search.svc:9200".into(), es.url()),
            ("mysql.shop.svc".into(), "127.0.0.1".into()),
        ],
    }
}

/// Runs the pods of an Indexed Job with `completions` pods at once, on this
/// machine: the slice id is the completion index, as the Job's pods get it.
fn run_indexed(
    pod: &Pod,
    completions: u32,
    map: &Mapping,
    base: &[(String, String)],
    cwd: &Path,
) -> Vec<Output> {
    assert_eq!(
        pod.fields,
        vec![(
            "PIPELINE_ES_SLICE_ID".to_string(),
            "metadata.annotations['batch.kubernetes.io/job-completion-index']".to_string()
        )],
        "each pod takes its slice from its completion index"
    );
    let children: Vec<_> = (0..completions)
        .map(|i| {
            let argv: Vec<String> = pod.argv.iter().map(|a| map.apply(a)).collect();
            Command::new(&argv[0])
                .args(&argv[1..])
                .envs(base.iter().map(|(k, v)| (k, v)))
                .envs(pod.vars.iter().map(|(k, v)| (k.clone(), map.apply(v))))
                .env("PIPELINE_ES_SLICE_ID", i.to_string())
                .env_remove("PIPELINE_LOG")
                .current_dir(cwd)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// The ids of the paid orders, as the server has them.
fn paid_ids(es: &EsServer) -> std::collections::BTreeSet<String> {
    let (status, v) = es.json(
        "POST",
        "/orders/_search",
        &json!({"size": 10000, "_source": false, "query": {"term": {"status": "paid"}}}),
    );
    assert_eq!(status, 200, "{v}");
    v["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["_id"].as_str().unwrap().to_string())
        .collect()
}

/// The `_id`s of JSON-lines files, each once (a repeat fails the test).
fn ids_once(files: &[PathBuf]) -> std::collections::BTreeSet<String> {
    let mut ids = std::collections::BTreeSet::new();
    for f in files {
        for doc in read_jsonl(f) {
            let id = doc["_id"].as_str().unwrap().to_string();
            assert!(ids.insert(id.clone()), "{id} read twice");
        }
    }
    ids
}

fn sum_of(outs: &[Output], key: &str) -> u64 {
    outs.iter()
        .map(|o| summary_json(o)[key].as_u64().unwrap())
        .sum()
}

/// deploy/kubernetes/sliced-export-job.yaml played on one machine: its four
/// pods at once, each with its completion index as slice id, into one MySQL
/// table: every paid order once, the Pushgateway holding one group per
/// slice whose sums are the document count. Then the same four slices into
/// four files, paging one shared point in time (--es-open-pit), and one
/// process with --es-slices 4 threads: the same set of documents, the
/// server's.
#[test]
fn an_indexed_job_of_four_slices_reads_every_document_once() {
    let pg = Pushgateway::start();
    let _shop = SHOP.lock().unwrap_or_else(|e| e.into_inner());
    let job = manifest("sliced-export-job.yaml");
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let n = job["spec"]["completions"].as_u64().unwrap() as u32;
    assert_eq!(n, 4);
    assert_eq!(job["spec"]["parallelism"].as_u64(), Some(4));
    let pod = pod(&job["spec"]["template"]["spec"]["containers"][0]);
    let slices = pod.argv.iter().position(|a| a == "--es-slices").unwrap();
    assert_eq!(pod.argv[slices + 1], n.to_string());
    for kind in ES_KINDS {
        let mut db = shop();
        let es = EsServer::start(kind);
        es.bulk("orders", &orders(0, 600));
        let want = paid_ids(&es);
        assert_eq!(want.len() as u64, paid(0, 600));
        let dir = tempfile::tempdir().unwrap();
        let map = pod_mapping(dir.path(), &pg, &es);
        let mut pod = Pod {
            argv: pod.argv.clone(),
            vars: pod.vars.clone(),
            fields: pod.fields.clone(),
        };
        // Four pods on one host: each its own metrics port.
        let port = pod.argv.iter().position(|a| a == "--metrics-port").unwrap();
        pod.argv.drain(port..port + 2);
        let base = env(&[("PIPELINE_DB_PASS", DB_PASS)]);
        let outs = run_indexed(&pod, n, &map, &base, dir.path());
        for o in &outs {
            assert_eq!(o.status.code(), Some(0), "{kind:?}: {}", stderr(o));
        }
        let rows: std::collections::BTreeSet<String> = db
            .rows("SELECT _id FROM shop.orders")
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect();
        assert_eq!(rows, want, "{kind:?}: the table is not the server's set");
        assert_eq!(sum_of(&outs, "inserted"), want.len() as u64, "{kind:?}");
        assert_eq!(
            sum_of(&outs, "updated"),
            0,
            "{kind:?}: a document was read twice"
        );
        let per_slice: Vec<u64> = outs
            .iter()
            .map(|o| summary_json(o)["read"].as_u64().unwrap())
            .collect();
        assert!(
            per_slice.iter().filter(|&&r| r > 0).count() >= 2,
            "{kind:?}: the slices did not split the work: {per_slice:?}"
        );
        let text = pg.metrics();
        let mut pushed = 0.0;
        for i in 0..n {
            let group = [("pipeline_id", "orders-export"), ("slice", &*i.to_string())];
            let read = prom::value(&text, "pipeline_records_read_total", &group)
                .unwrap_or_else(|| panic!("{kind:?}: no group for slice {i}"));
            assert_eq!(read as u64, per_slice[i as usize], "{kind:?}: slice {i}");
            pushed += read;
        }
        assert_eq!(pushed as u64, want.len() as u64, "{kind:?}");

        // Into four files, all four pages through one point in time opened
        // beforehand; and one process reading the four slices in threads.
        let common = [
            "--source-type",
            "elasticsearch",
            "--es-url",
            &es.url(),
            "--es-index",
            "orders",
            "--es-query",
            r#"{"term": {"status": "paid"}}"#,
            "--es-page-size",
            "50",
            "--es-slices",
            "4",
        ];
        let opened = Command::new(bin())
            .args(common)
            .args(["--es-keep-alive", "5m", "--es-open-pit"])
            .output()
            .unwrap();
        assert_eq!(
            opened.status.code(),
            Some(0),
            "{kind:?}: {}",
            stderr(&opened)
        );
        let pit = String::from_utf8(opened.stdout).unwrap().trim().to_string();
        assert!(!pit.is_empty() && !pit.contains('\n'), "{pit:?}");
        let out = dir.path().join("slice-{slice}.jsonl");
        let children: Vec<_> = (0..n)
            .map(|i| {
                Command::new(bin())
                    .args(common)
                    .args([
                        "--sink-type",
                        "file",
                        "--output-file",
                        out.to_str().unwrap(),
                    ])
                    .env("PIPELINE_ES_SLICE_ID", i.to_string())
                    .env("PIPELINE_ES_PIT_ID", &pit)
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert_eq!(o.status.code(), Some(0), "{kind:?}: {}", stderr(&o));
        }
        let files: Vec<PathBuf> = (0..n)
            .map(|i| dir.path().join(format!("slice-{i}.jsonl")))
            .collect();
        assert_eq!(ids_once(&files), want, "{kind:?}: four slice files");
        let all = dir.path().join("all.jsonl");
        let o = Command::new(bin())
            .args(common)
            .args([
                "--sink-type",
                "file",
                "--output-file",
                all.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{kind:?}: {}", stderr(&o));
        assert_eq!(ids_once(&[all]), want, "{kind:?}: --es-slices 4 threads");
    }
}

/// deploy/kubernetes/sliced-sync-cronjob.yaml played three times: each
/// slice keeps its own state file, and a document changed between runs is
/// read again once, by one slice.
#[test]
fn a_sliced_incremental_job_reads_each_change_once() {
    let pg = Pushgateway::start();
    let _shop = SHOP.lock().unwrap_or_else(|e| e.into_inner());
    let cron = manifest("sliced-sync-cronjob.yaml");
    let spec = &cron["spec"]["jobTemplate"]["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().unwrap() as u32;
    let pod = pod(&spec["template"]["spec"]["containers"][0]);
    for kind in ES_KINDS {
        let mut db = shop();
        let es = EsServer::start(kind);
        es.bulk("orders", &orders(0, 90));
        let dir = tempfile::tempdir().unwrap();
        let map = pod_mapping(dir.path(), &pg, &es);
        let base = env(&[("PIPELINE_DB_PASS", DB_PASS)]);
        let outs = run_indexed(&pod, n, &map, &base, dir.path());
        for o in &outs {
            assert_eq!(o.status.code(), Some(0), "{kind:?}: {}", stderr(o));
        }
        assert_eq!(sum_of(&outs, "inserted"), paid(0, 90), "{kind:?}");
        for i in 0..n {
            assert!(
                dir.path().join(format!("orders.{i}.state")).exists(),
                "{kind:?}: slice {i} kept no state"
            );
        }
        // 20 paid orders change (a later updated_at), 30 new ones arrive.
        let changed: Vec<(String, Value)> = (0..60)
            .filter(|i| i % 3 != 0)
            .take(20)
            .map(|i| {
                (
                    format!("o{i}"),
                    json!({"status": "paid", "amount": 99.5, "updated_at": 5000 + i}),
                )
            })
            .collect();
        es.bulk("orders", &changed);
        es.bulk("orders", &orders(90, 120));
        let outs = run_indexed(&pod, n, &map, &base, dir.path());
        for o in &outs {
            assert_eq!(o.status.code(), Some(0), "{kind:?}: {}", stderr(o));
        }
        assert_eq!(sum_of(&outs, "read"), 20 + paid(90, 120), "{kind:?}");
        assert_eq!(sum_of(&outs, "updated"), 20, "{kind:?}");
        assert_eq!(sum_of(&outs, "inserted"), paid(90, 120), "{kind:?}");
        assert_eq!(
            db.count("SELECT COUNT(*) FROM shop.orders WHERE amount = 99.5"),
            20
        );
        let outs = run_indexed(&pod, n, &map, &base, dir.path());
        assert_eq!(sum_of(&outs, "read"), 0, "{kind:?}: nothing changed since");
        assert_eq!(db.count("SELECT COUNT(*) FROM shop.orders"), paid(0, 120));
    }
}

/// The flags a sliced process is given are checked before anything runs.
#[test]
fn slice_flags_that_cannot_work_are_refused() {
    let es = [
        "--source-type",
        "elasticsearch",
        "--es-url",
        "http://127.0.0.1:9",
        "--es-index",
        "orders",
    ];
    let file = [
        "--sink-type",
        "file",
        "--output-file",
        "/tmp/never-{slice}.jsonl",
    ];
    for (extra, says) in [
        (
            vec!["--es-slices", "4", "--es-slice-id", "4"],
            "slices are numbered 0 to 3",
        ),
        (
            vec![
                "--es-slices",
                "4",
                "--es-slice-id",
                "1",
                "--es-since-field",
                "updated_at",
                "--state-file",
                "/tmp/one.state",
            ],
            "put {slice} in the path",
        ),
        (
            vec!["--es-slices", "4"],
            "contains {slice} but neither --es-slice-id nor --input-shard",
        ),
        (
            vec![
                "--es-slices",
                "4",
                "--es-slice-id",
                "0",
                "--es-mode",
                "scroll",
                "--es-pit-id",
                "abc",
            ],
            "cannot be paged with --es-mode scroll",
        ),
    ] {
        let out = Command::new(bin())
            .args(es)
            .args(&extra)
            .args(file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{extra:?}: {}", stderr(&out));
    }
}

/// `--es-meta-fields` names each hit metadata field once: a name given
/// twice (its second copy always null) or one a hit does not carry (null in
/// every record) is refused before any server is asked.
#[test]
fn meta_fields_that_would_be_null_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.jsonl");
    for (meta, says) in [
        ("_id,_id", "'_id' is given twice"),
        ("_id,_index,_id", "'_id' is given twice"),
        ("_id,bogus", "'bogus' is not metadata of a search hit"),
        ("_source", "'_source' is not metadata of a search hit"),
    ] {
        let out = Command::new(bin())
            .args([
                "--source-type",
                "elasticsearch",
                "--es-url",
                "http://127.0.0.1:9",
                "--es-index",
                "orders",
                "--es-meta-fields",
                meta,
                "--sink-type",
                "file",
                "--output-file",
            ])
            .arg(&out_file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{meta}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{meta}: {}", stderr(&out));
        assert!(!out_file.exists());
    }
}

/// The fenced blocks of the README's example `### {n}. …`, as (language,
/// text) pairs.
fn readme_blocks(n: u32) -> Vec<(String, String)> {
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    let start = readme
        .find(&format!("\n### {n}. "))
        .unwrap_or_else(|| panic!("README.md has no example {n}"));
    let section = &readme[start + 1..];
    let end = section[1..].find("\n#").map_or(section.len(), |e| e + 1);
    let mut blocks = Vec::new();
    let mut lines = section[..end].lines();
    while let Some(line) = lines.next() {
        if let Some(lang) = line.strip_prefix("```") {
            let body: Vec<&str> = lines
                .by_ref()
                .take_while(|l| !l.starts_with("```"))
                .collect();
            blocks.push((lang.to_string(), body.join("\n")));
        }
    }
    blocks
}

/// The block of `lang` among `blocks`.
fn block<'a>(blocks: &'a [(String, String)], lang: &str) -> &'a str {
    let found = blocks.iter().find(|(l, _)| l == lang);
    &found.unwrap_or_else(|| panic!("no ```{lang} block")).1
}

/// A README command line made to run here: the binary under test, the test
/// database (as root, no password in the environment), `table` for the
/// README's table name.
fn readme_command(sh: &str, readme_table: &str, table: &str) -> String {
    let db = mysql_url();
    sh.replace("PIPELINE_DB_PASS=... ", "")
        .replace("pipeline-cli --", &format!("{} --", bin()))
        .replace("mysql://loader@127.0.0.1:3306/test", &db)
        .replace("mysql://root@127.0.0.1/test", &db)
        .replace(
            "fixtures/sample.csv",
            &repo().join("fixtures/sample.csv").display().to_string(),
        )
        .replace(
            &format!("--db-table {readme_table} "),
            &format!("--db-table {table} "),
        )
}

/// SQL with its layout taken out: one space between tokens, none inside
/// parentheses, no final `;`.
fn sql_words(sql: &str) -> String {
    let words = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    words
        .replace("( ", "(")
        .replace(" )", ")")
        .trim_end_matches(';')
        .to_string()
}

#[test]
fn the_readme_examples_into_mysql_run_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = Db::connect();
    let shell = |cmd: &str| run_in(&["sh".into(), "-c".into(), cmd.into()], &[], dir.path());

    // 2: its table, then the fixture into it, twice (the second updates).
    let blocks = readme_blocks(2);
    let table = table_name("readme_orders");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&block(&blocks, "sql").replacen(
        "CREATE TABLE orders",
        &format!("CREATE TABLE {table}"),
        1,
    ));
    let cmd = readme_command(block(&blocks, "sh"), "orders", &table);
    for updated in ["updated=0", "updated=8"] {
        let out = shell(&cmd);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{cmd}: {err}");
        assert!(err.contains(updated), "{err}");
        assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 8);
    }
    db.exec(&format!("DROP TABLE {table}"));

    // 5: the dump, one gzip file per index; --check prints the README's DDL.
    let blocks = readme_blocks(5);
    fs::create_dir(dir.path().join("dumps")).unwrap();
    let mut files: std::collections::BTreeMap<String, String> = Default::default();
    for line in block(&blocks, "").lines() {
        let doc: Value = serde_json::from_str(line).unwrap();
        let index = doc["_index"].as_str().unwrap().to_string();
        files
            .entry(index)
            .or_default()
            .push_str(&format!("{line}\n"));
    }
    for (index, text) in &files {
        use std::io::Write;
        let file = fs::File::create(dir.path().join(format!("dumps/{index}.json.gz"))).unwrap();
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap();
    }
    let table = table_name("readme_logs");
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    let cmd = readme_command(block(&blocks, "sh"), "logs", &table);
    let out = shell(&format!("{cmd} --check"));
    assert_eq!(out.status.code(), Some(0), "{cmd}: {}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let ddl = stdout
        .lines()
        .find_map(|l| {
            l.split_once("records: CREATE TABLE")
                .map(|(_, d)| format!("CREATE TABLE{d}"))
        })
        .unwrap_or_else(|| panic!("--check printed no DDL: {stdout}"));
    let database = mysql_url().rsplit('/').next().unwrap().to_string();
    let readme_ddl = sql_words(block(&blocks, "sql"))
        .replace("`test`.`logs`", &format!("`{database}`.`{table}`"));
    assert_eq!(
        sql_words(&ddl),
        readme_ddl,
        "README.md example 5's DDL is not what --create-table makes"
    );
    let out = shell(&cmd);
    assert_eq!(out.status.code(), Some(0), "{cmd}: {}", stderr(&out));
    assert_eq!(db.count(&format!("SELECT COUNT(*) FROM {table}")), 3);
    db.exec(&format!("DROP TABLE {table}"));
}

/// The full re-sync Job leaves the table holding exactly the index's paid
/// orders: stale values updated, orders gone from the index (or no longer
/// paid) deleted, on both servers.
#[test]
fn the_full_resync_job_leaves_exactly_the_index() {
    let pg = Pushgateway::start();
    let _shop = SHOP.lock().unwrap_or_else(|e| e.into_inner());
    let job = manifest("full-resync-job.yaml");
    let pod = pod(&job["spec"]["template"]["spec"]["containers"][0]);
    for kind in ES_KINDS {
        let mut db = shop();
        let es = EsServer::start(kind);
        es.bulk("orders", &orders(0, 60));
        let want = paid_ids(&es);
        // What an earlier sync left: every paid order, with an amount since
        // changed, and two orders no longer in the index (within the Job's
        // --max-delete 10%).
        let earlier: Vec<String> = want
            .iter()
            .map(|id| format!("('{id}', 'paid', 99.99, 1)"))
            .chain([
                "('gone-1', 'paid', 1.00, 1)".into(),
                "('gone-2', 'paid', 2.00, 1)".into(),
            ])
            .collect();
        db.exec(&format!(
            "INSERT INTO shop.orders VALUES {}",
            earlier.join(", ")
        ));
        let dir = tempfile::tempdir().unwrap();
        let map = pod_mapping(dir.path(), &pg, &es);
        let mut argv: Vec<String> = pod.argv.iter().map(|a| map.apply(a)).collect();
        // One machine, many tests: no fixed port, no linger.
        let at = argv.iter().position(|a| a == "--metrics-port").unwrap();
        argv.drain(at..at + 2);
        let at = argv.iter().position(|a| a == "--metrics-linger").unwrap();
        argv.drain(at..at + 2);
        let base = env(&[("PIPELINE_DB_PASS", DB_PASS)]);
        let out = run_in(&argv, &base, dir.path());
        assert_eq!(out.status.code(), Some(0), "{kind:?}: {}", stderr(&out));
        let rows: std::collections::BTreeSet<String> = db
            .rows("SELECT _id FROM shop.orders")
            .into_iter()
            .map(|r| r[0].clone().unwrap())
            .collect();
        assert_eq!(
            rows, want,
            "{kind:?}: the table is not the index's paid orders"
        );
        assert_eq!(
            db.count("SELECT COUNT(*) FROM shop.orders WHERE amount <> 10.50"),
            0,
            "{kind:?}: a stale value survived"
        );
        let summary = summary_json(&out);
        assert_eq!(summary["deleted"], 2, "{kind:?}: {summary}");
    }
}

/// Rows of the CSV the resumable load test generates: enough that one
/// uninterrupted run of the debug build takes several seconds (about 4 s on
/// 2 cores), so that it can be killed part way three times.
const ARCHIVE_ROWS: u64 = 400_000;

/// The value of `flag` on a command line, if it is there.
fn flag_value<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    let at = argv.iter().position(|a| a == flag)?;
    argv.get(at + 1).map(String::as_str)
}

/// deploy/kubernetes/resumable-load-job.yaml played on one machine: its pod
/// loads a CSV from the state volume into a table without a key, is killed
/// (SIGKILL, as an OOM kill or a lost node would) three times while some
/// but not all rows are in, and is started again each time with the same
/// flags, as the Job controller does under the manifest's podFailurePolicy
/// and backoffLimit, until one run exits 0: every row is in once, and the
/// checkpoint on the volume is gone.
#[test]
fn the_resumable_load_job_resumes_after_its_pod_is_killed() {
    use common::kill_loop::{run_to_end, stop_when_ready, Rng, Stop};
    use std::io::Write;
    use std::os::unix::process::ExitStatusExt;
    use std::time::Duration;

    let job = manifest("resumable-load-job.yaml");
    let spec = &job["spec"];
    let tpl = &spec["template"]["spec"];
    assert_eq!(tpl["restartPolicy"], "Never", "{job}");
    let backoff = spec["backoffLimit"].as_u64().unwrap();
    // Exit codes that fail the Job rather than start a new pod.
    let fail_job: Vec<i64> = spec["podFailurePolicy"]["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["action"] == "FailJob")
        .flat_map(|r| {
            r["onExitCodes"]["values"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|v| v.as_i64().unwrap())
        .collect();
    let container = &tpl["containers"][0];
    let pod = pod(container);

    // The state volume is state-pvc.yaml's claim; the input, the checkpoint
    // and the dead-letter file are on it.
    let claim = manifest("state-pvc.yaml")["metadata"]["name"].clone();
    let volume = tpl["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["persistentVolumeClaim"]["claimName"] == claim)
        .unwrap_or_else(|| panic!("no volume of the claim {claim}"));
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("the claim's volume mounted")["mountPath"]
        .as_str()
        .unwrap()
        .to_string();
    let on_volume = |flag: &str| {
        let path = flag_value(&pod.argv, flag)?;
        assert!(
            path.starts_with(&format!("{mount}/")),
            "{flag} {path} is not on the state volume ({mount}): a new pod would not find it"
        );
        Some(path.to_string())
    };
    on_volume("--csv-file").expect("--csv-file");
    on_volume("--dead-letter").expect("--dead-letter");
    let checkpoint = on_volume("--checkpoint");

    // The environment from the Secret, each value a test one.
    let secret = manifest("secret.yaml");
    assert_eq!(
        container["envFrom"][0]["secretRef"]["name"],
        secret["metadata"]["name"]
    );
    let vars: Vec<(String, String)> = secret["stringData"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| {
            let v = if k == "PIPELINE_DB_PASS" {
                DB_PASS
            } else {
                "not-used-by-this-job"
            };
            (k.clone(), v.to_string())
        })
        .collect();
    assert!(
        vars.iter().any(|(k, _)| k == "PIPELINE_DB_PASS"),
        "{secret}"
    );
    assert!(pod.fields.is_empty(), "{container}");

    // The table, without a key: nothing but the checkpoint keeps a row from
    // going in twice.
    let db_name = flag_value(&pod.argv, "--db-name").unwrap();
    let table = format!("{db_name}.{}", flag_value(&pod.argv, "--db-table").unwrap());
    let mut db = {
        let _shop = SHOP.lock().unwrap_or_else(|e| e.into_inner());
        loader()
    };
    db.exec(&format!("DROP TABLE IF EXISTS {table}"));
    db.exec(&format!(
        "CREATE TABLE {table} (id BIGINT NOT NULL, customer VARCHAR(32), \
         status VARCHAR(16), amount DECIMAL(10,2), created_at DATETIME)"
    ));

    let dir = tempfile::tempdir().unwrap();
    let map = Mapping {
        pairs: vec![
            ("/usr/local/bin/pipeline-cli".into(), bin().into()),
            (mount.clone(), dir.path().display().to_string()),
            ("mysql.shop.svc".into(), "127.0.0.1".into()),
        ],
    };
    let argv: Vec<String> = pod.argv.iter().map(|a| map.apply(a)).collect();
    assert_eq!(argv[0], bin());
    let csv = PathBuf::from(flag_value(&argv, "--csv-file").unwrap());
    fs::create_dir_all(csv.parent().unwrap()).unwrap();
    let mut w = std::io::BufWriter::new(fs::File::create(&csv).unwrap());
    writeln!(w, "id,customer,status,amount,created_at").unwrap();
    for i in 1..=ARCHIVE_ROWS {
        let status = if i % 3 == 0 { "open" } else { "paid" };
        writeln!(
            w,
            "{i},c{},{status},{}.{:02},2026-{:02}-{:02} 12:00:00",
            i % 977,
            i % 500,
            i % 100,
            i % 12 + 1,
            i % 28 + 1
        )
        .unwrap();
    }
    w.into_inner().unwrap().sync_all().unwrap();

    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    let vars: Vec<(String, String)> = vars
        .into_iter()
        .chain(pod.vars.iter().map(|(k, v)| (k.clone(), map.apply(v))))
        .collect();
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (&**k, &**v)).collect();
    let count = format!("SELECT COUNT(*) FROM {table}");
    // Each of the three kills comes once at least this many rows are in, a
    // random share of the rows (20-30 %, 40-50 %, 60-70 %).
    let mut rng = Rng::seeded("the_resumable_load_job_resumes_after_its_pod_is_killed");
    let kill_at: Vec<u64> = (1..=3)
        .map(|i| ARCHIVE_ROWS * rng.between(20 * i, 20 * i + 10) / 100)
        .collect();
    let limit = Duration::from_secs(180);
    let mut stderrs = Vec::new();
    let mut failed_pods = 0;
    let last = loop {
        let n = stderrs.len();
        let out = match kill_at.get(n) {
            Some(&at) => {
                let r = stop_when_ready(&args, &env, Stop::Kill, limit, || db.count(&count) >= at);
                let now = db.count(&count);
                eprintln!("pod {n}: killed with {now} rows in (at least {at} asked)");
                assert!(
                    !r.exited_first && r.interrupted(),
                    "pod {n} ended {} before {at} rows were in; stderr:\n{}",
                    r.out.status,
                    r.stderr()
                );
                assert!(0 < now && now < ARCHIVE_ROWS, "pod {n}: {now} rows in");
                r.out
            }
            None => run_to_end(&args, &env, limit),
        };
        let err = stderr(&out);
        // The exit code the kubelet reports: 128 + the signal when killed.
        let code = out
            .status
            .code()
            .or(out.status.signal().map(|s| 128 + s))
            .unwrap();
        stderrs.push(err.clone());
        if code == 0 {
            break out;
        }
        assert!(
            !fail_job.contains(&i64::from(code)),
            "pod {n} exited {code}: the Job fails; stderr:\n{err}"
        );
        failed_pods += 1;
        assert!(
            failed_pods <= backoff,
            "more than backoffLimit ({backoff}) pods failed: the Job fails; stderr:\n{err}"
        );
    };
    assert_eq!(failed_pods, 3);

    // Every row of the CSV once, though the table has no key.
    assert_eq!(db.count(&count), ARCHIVE_ROWS, "rows in {table}");
    assert_eq!(
        db.count(&format!("SELECT COUNT(DISTINCT id) FROM {table}")),
        ARCHIVE_ROWS,
        "ids in {table}"
    );
    let summary = summary_json(&last);
    assert_eq!(
        summary["resumed"].as_u64().unwrap() + summary["read"].as_u64().unwrap(),
        ARCHIVE_ROWS,
        "{summary}"
    );
    let checkpoint = map.apply(&checkpoint.expect("--checkpoint"));
    assert!(
        common::kill_loop::marked_complete(Path::new(&checkpoint)),
        "the completed job's checkpoint {checkpoint} is not marked complete"
    );
    assert!(
        stderrs
            .iter()
            .any(|e| e.contains("resuming from checkpoint")),
        "no run resumed:\n{}",
        stderrs.join("\n")
    );
    db.exec(&format!("DROP TABLE {table}"));
}
