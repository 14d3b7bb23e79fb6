//! The monitoring files against the real tools: promtool checks
//! prometheus.example.yml and monitoring/alerts.yml and runs the rule unit
//! tests; a real Prometheus scrapes a real run every second, and the
//! Pushgateway the same run pushes to, sees its record count, loads the
//! alerting rules without an evaluation error, and evaluates every PromQL
//! expression of METRICS.md, monitoring/alerts.yml and the Grafana dashboard
//! (whose panels count the run once, not once per source). amtool checks
//! monitoring/alertmanager.example.yml and a real Alertmanager shows its
//! inhibit rules at work; every alert links to its section of
//! docs/runbook.md. Prometheus and promtool come from Debian's `prometheus`
//! package, the Pushgateway and Alertmanager from `prometheus-pushgateway`
//! and `prometheus-alertmanager`, which scripts/services.sh installs.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const INSTALL_HINT: &str =
    "scripts/services.sh installs it (Debian's prometheus, prometheus-pushgateway and prometheus-alertmanager packages: /usr/bin/prometheus, promtool, prometheus-alertmanager and amtool)";

/// Rows in the generated CSV.
const ROWS: usize = 50_000;

/// The pipeline id of the scraped run.
const PIPELINE_ID: &str = "e2e";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `name` from /usr/bin or else from PATH; fails the test when it is in neither.
fn tool(name: &str) -> PathBuf {
    let usr_bin = Path::new("/usr/bin").join(name);
    if usr_bin.is_file() {
        return usr_bin;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is required and was not found: {INSTALL_HINT}"))
}

/// Runs promtool with `args` in the repository root; fails with its output
/// unless it exits 0.
fn promtool(args: &[&str]) -> String {
    run_tool("promtool", args)
}

/// Runs the tool `name` with `args` in the repository root; fails with its
/// output unless it exits 0.
fn run_tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(tool(name))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}; {INSTALL_HINT}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{name} {} failed ({}):\n{text}",
        args.join(" "),
        out.status
    );
    text
}

#[test]
fn promtool_accepts_the_config_the_rules_and_the_rule_tests() {
    let out = promtool(&["check", "config", "prometheus.example.yml"]);
    assert!(out.contains("1 rule files found"), "{out}");
    let out = promtool(&["check", "rules", "monitoring/alerts.yml"]);
    assert!(out.contains("SUCCESS: 10 rules found"), "{out}");
    let out = promtool(&["test", "rules", "monitoring/alerts.test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Every alerting rule has a unit test that expects it firing and one that
/// expects it silent (`exp_alerts: []`).
#[test]
fn every_alert_is_tested_firing_and_silent() {
    let rules = std::fs::read_to_string(repo().join("monitoring/alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(repo().join("monitoring/alerts.test.yml")).unwrap();
    let names: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(str::trim)
        .collect();
    for required in [
        "PipelineRunFailed",
        "PipelineNoRecentSuccess",
        "PipelineRecordsFailing",
        "PipelineQueueSaturated",
        "PipelineInsertLatencyHigh",
        "PipelineMetricsAbsent",
    ] {
        assert!(names.contains(&required), "{required} is not in alerts.yml");
    }
    // (alertname, expected alerts listed) for each eval of the unit tests.
    let mut evals: Vec<(String, bool)> = Vec::new();
    let lines: Vec<&str> = tests.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if let Some(name) = l.trim().strip_prefix("alertname: ") {
            let next = lines.get(i + 1).map(|n| n.trim()).unwrap_or("");
            let silent = next == "exp_alerts: []";
            assert!(
                silent || next == "exp_alerts:",
                "alerts.test.yml:{}: exp_alerts must follow alertname",
                i + 2
            );
            evals.push((name.trim().to_string(), !silent));
        }
    }
    for name in &names {
        for firing in [true, false] {
            assert!(
                evals.iter().any(|(n, f)| n == name && *f == firing),
                "alerts.test.yml has no eval expecting {name} {}",
                if firing { "firing" } else { "silent" }
            );
        }
    }
}

/// A child process stopped by PID (SIGKILL) when dropped, also when the test
/// fails half-way.
struct Running {
    what: &'static str,
    child: Option<Child>,
}

impl Running {
    fn child(&mut self) -> &mut Child {
        self.child
            .as_mut()
            .unwrap_or_else(|| panic!("{} already stopped", self.what))
    }

    fn take(&mut self) -> Child {
        self.child
            .take()
            .unwrap_or_else(|| panic!("{} already stopped", self.what))
    }

    /// Panics when the process has exited.
    fn assert_alive(&mut self, log: &dyn Fn() -> String) {
        let what = self.what;
        if let Ok(Some(status)) = self.child().try_wait() {
            panic!("{what} exited early ({status}):\n{}", log());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// GET a Prometheus API path; the body parsed as JSON (an error response
/// of the API is JSON too).
fn api(port: u16, path: &str) -> Value {
    let (status, _, body) =
        http("GET", port, path).unwrap_or_else(|e| panic!("GET {path} from Prometheus: {e}"));
    serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("GET {path}: HTTP {status}, not JSON ({e}):\n{body}"))
}

/// An instant query: Ok(result array) or Err(Prometheus' error message).
fn query(port: u16, expr: &str) -> Result<Vec<Value>, String> {
    let v = api(port, &format!("/api/v1/query?query={}", url_encode(expr)));
    if v["status"] == "success" {
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    } else {
        Err(format!(
            "{}: {}",
            v["errorType"].as_str().unwrap_or("?"),
            v["error"].as_str().unwrap_or("?")
        ))
    }
}

/// The value of the single series an instant query returns, if exactly one.
fn single_value(port: u16, expr: &str) -> Option<String> {
    match query(port, expr) {
        Ok(r) if r.len() == 1 => r[0]["value"][1].as_str().map(str::to_string),
        _ => None,
    }
}

/// The labels and value of the one series an instant query must return.
fn one_series(port: u16, expr: &str) -> (Value, String) {
    let result = query(port, expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    assert_eq!(result.len(), 1, "one series from {expr}: {result:?}");
    let value = result[0]["value"][1].as_str().expect("a value").to_string();
    (result[0]["metric"].clone(), value)
}

/// Polls `probe` every 200 ms until it gives Some, failing after `limit` with
/// `what` and `log()`; checks the processes are still alive between tries.
fn wait_until<T>(
    what: &str,
    limit: Duration,
    procs: &mut [&mut Running],
    log: &dyn Fn() -> String,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        for p in procs.iter_mut() {
            p.assert_alive(log);
        }
        assert!(
            t.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}; Prometheus log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The bodies of the ```promql blocks of a Markdown text, one expression each.
fn promql_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in markdown.lines() {
        match current.as_mut() {
            None if line.trim() == "```promql" => current = Some(Vec::new()),
            None => {}
            Some(body) if line.trim() == "```" => {
                blocks.push(body.join("\n").trim().to_string());
                current = None;
            }
            Some(body) => body.push(line),
        }
    }
    assert!(current.is_none(), "METRICS.md: an unclosed ```promql block");
    blocks
}

/// The `expr:` values of a rules file: inline, quoted, or a `|`/`>` block
/// scalar (the lines indented deeper than the key).
fn rule_exprs(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut exprs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let indent = line.len() - line.trim_start().len();
        i += 1;
        let Some(value) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if value.starts_with('|') || value.starts_with('>') {
            let mut body = Vec::new();
            while i < lines.len() {
                let l = lines[i];
                let deeper = l.len() - l.trim_start().len() > indent;
                if !l.trim().is_empty() && !deeper {
                    break;
                }
                body.push(l.trim());
                i += 1;
            }
            let sep = if value.starts_with('>') { " " } else { "\n" };
            exprs.push(body.join(sep).trim().to_string());
        } else {
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            exprs.push(unquoted.to_string());
        }
    }
    exprs
}

/// Every `targets[].expr` anywhere in a dashboard (panels, rows, nested panels).
fn dashboard_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(targets)) = map.get("targets") {
                for t in targets {
                    if let Some(e) = t["expr"].as_str() {
                        out.push(e.to_string());
                    }
                }
            }
            for (k, child) in map {
                if k != "targets" {
                    dashboard_exprs(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| dashboard_exprs(i, out)),
        _ => {}
    }
}

/// The `expr` of each target of the dashboard panel titled `title`.
fn panel_targets(dashboard: &Value, title: &str) -> Vec<String> {
    fn find<'a>(v: &'a Value, title: &str) -> Option<&'a Value> {
        match v {
            Value::Object(map) if map.get("title").and_then(Value::as_str) == Some(title) => {
                Some(v)
            }
            Value::Object(map) => map.values().find_map(|c| find(c, title)),
            Value::Array(items) => items.iter().find_map(|c| find(c, title)),
            _ => None,
        }
    }
    let panel =
        find(&dashboard["panels"], title).unwrap_or_else(|| panic!("no dashboard panel {title}"));
    let targets = panel["targets"].as_array().expect("targets");
    targets
        .iter()
        .map(|t| t["expr"].as_str().expect("expr").to_string())
        .collect()
}

/// The one `expr` of the dashboard panel titled `title`.
fn panel_expr(dashboard: &Value, title: &str) -> String {
    let targets = panel_targets(dashboard, title);
    assert_eq!(targets.len(), 1, "targets of panel {title}");
    targets[0].clone()
}

/// Grafana's variables replaced with values Prometheus understands.
fn substitute_grafana_variables(expr: &str) -> String {
    let mut e = expr.to_string();
    for (var, value) in [
        ("${pipeline_id}", PIPELINE_ID),
        ("$pipeline_id", PIPELINE_ID),
        ("${__rate_interval}", "1m"),
        ("$__rate_interval", "1m"),
        ("${__interval}", "1m"),
        ("$__interval", "1m"),
        ("${__range}", "1m"),
        ("$__range", "1m"),
    ] {
        e = e.replace(var, value);
    }
    e
}

/// The `pipeline_*` metric names an expression refers to (`pipeline_id` is
/// the label).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("pipeline_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        let word_start =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let name = &expr[start..end];
        if word_start && name != "pipeline_id" {
            names.push(name.to_string());
        }
        i = end;
    }
    names
}

#[test]
fn prometheus_scrapes_a_run_and_evaluates_every_query() {
    // The queries first: a broken file fails before anything starts.
    let metrics_md = std::fs::read_to_string(repo().join("METRICS.md")).unwrap();
    let recipes = promql_blocks(&metrics_md);
    check_recipes(&recipes);
    let alerts_path = repo().join("monitoring/alerts.yml");
    let alert_exprs = rule_exprs(&std::fs::read_to_string(&alerts_path).unwrap());
    assert_eq!(alert_exprs.len(), 10, "expr: entries in alerts.yml");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("monitoring/grafana/pipeline-dashboard.json"))
            .unwrap(),
    )
    .expect("the dashboard is valid JSON");
    let panel_exprs = check_dashboard(&dashboard);
    let all = every_query(&recipes, &alert_exprs, &panel_exprs);

    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.jsonl");
    // The run is scraped and also pushes: Prometheus has each of its
    // series twice, from job="pipeline" and from the Pushgateway.
    let pushgateway = Pushgateway::start();
    let (mut pipeline, metrics_port) =
        start_run(&write_csv(dir.path()), &output, &pushgateway.url());
    let (mut prometheus, prom_port, log_path) =
        start_prometheus(dir.path(), &alerts_path, metrics_port, pushgateway.port);
    let log = || log_tail(&log_path);
    wait_for_the_run(prom_port, &mut prometheus, &mut pipeline, &log);

    assert_every_query_evaluates(prom_port, &all);
    assert_a_clean_run_shows(prom_port, &recipes, &dashboard);
    assert_only_exported_metrics(prom_port, &all);
    assert_rules_healthy_and_quiet(prom_port, &mut prometheus, &log, alert_exprs.len());

    // SIGTERM ends the keep-alive; the run itself succeeded.
    let child = pipeline.take();
    signal(&child, "TERM");
    let out = wait_with_limit(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = std::fs::read_to_string(&output).unwrap().lines().count();
    assert_eq!(lines, ROWS, "lines in {}", output.display());

    drop(prometheus);
}

/// METRICS.md has a ```promql recipe for every question the README promises.
fn check_recipes(recipes: &[String]) {
    for (what, needles) in [
        (
            "records/s",
            &[
                "rate(pipeline_records_inserted_total",
                "rate(pipeline_records_updated_total",
            ][..],
        ),
        (
            "success ratio",
            &[
                "pipeline_records_failed_total",
                "pipeline_records_read_total",
            ],
        ),
        (
            "queue saturation",
            &["pipeline_queue_depth / (pipeline_queue_capacity"],
        ),
        (
            "time since last success",
            &["time() - ", "pipeline_last_success_timestamp_seconds"],
        ),
        (
            "failed in the last hour",
            &["increase(pipeline_records_failed_total[1h])"],
        ),
    ] {
        assert!(
            recipes
                .iter()
                .any(|r| needles.iter().all(|n| r.contains(n))),
            "METRICS.md has no ```promql recipe for {what}"
        );
    }
    for hist in ["fetch", "insert", "batch"] {
        for q in ["0.5", "0.95", "0.99"] {
            let (a, b) = (
                format!("histogram_quantile({q},"),
                format!("pipeline_{hist}_duration_seconds_bucket"),
            );
            assert!(
                recipes.iter().any(|r| r.contains(&a) && r.contains(&b)),
                "METRICS.md has no ```promql recipe for {a} {b}"
            );
        }
    }
}

/// The dashboard's shape; returns its panels' expressions.
fn check_dashboard(dashboard: &Value) -> Vec<String> {
    assert!(
        dashboard["schemaVersion"].as_u64().unwrap_or(0) >= 36,
        "schemaVersion"
    );
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let pipeline_var = variables
        .iter()
        .find(|v| v["name"] == "pipeline_id")
        .expect("a pipeline_id template variable");
    assert_eq!(
        pipeline_var["definition"],
        "label_values(pipeline_info, pipeline_id)"
    );
    assert!(
        variables
            .iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "a Prometheus data source variable"
    );
    let mut panel_exprs = Vec::new();
    dashboard_exprs(dashboard, &mut panel_exprs);
    assert!(
        panel_exprs.len() >= 10,
        "dashboard targets: {panel_exprs:?}"
    );

    panel_exprs
}

/// Every expression (recipes, alert rules, dashboard panels with their
/// Grafana variables filled in), with where it came from.
fn every_query(
    recipes: &[String],
    alert_exprs: &[String],
    panel_exprs: &[String],
) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = Vec::new();
    all.extend(
        recipes
            .iter()
            .map(|e| ("METRICS.md".to_string(), e.clone())),
    );
    all.extend(
        alert_exprs
            .iter()
            .map(|e| ("alerts.yml".to_string(), e.clone())),
    );
    for e in panel_exprs {
        let concrete = substitute_grafana_variables(e);
        assert!(
            !concrete.contains('$'),
            "a Grafana variable left in a dashboard expression: {concrete}"
        );
        all.push(("dashboard".to_string(), concrete));
    }

    all
}

/// A CSV of ROWS rows.
fn write_csv(dir: &Path) -> PathBuf {
    let input = dir.join("in.csv");
    let mut csv = String::with_capacity(ROWS * 32);
    csv.push_str("id,name,amount\n");
    for i in 0..ROWS {
        csv.push_str(&format!("{i},name {i},{}.{:02}\n", i % 1000, i % 100));
    }
    std::fs::write(&input, csv).unwrap();
    input
}

/// The run, serving its metrics until SIGTERM and pushing them to
/// `pushgateway`, with `--accept-errors 0.5%`; returns it and its port.
fn start_run(input: &Path, output: &Path, pushgateway: &str) -> (Running, u16) {
    let metrics_port = free_port();
    let metrics_port_s = metrics_port.to_string();
    let mut args = csv_to_file(input.to_str().unwrap(), output.to_str().unwrap());
    args.extend([
        "--metrics-port",
        &metrics_port_s,
        "--metrics-keep-alive",
        "--pushgateway-url",
        pushgateway,
        // Exported for the alerts; nothing fails in this run.
        "--accept-errors",
        "0.5%",
        "--pipeline-id",
        PIPELINE_ID,
        "--quiet",
    ]);
    let mut pipeline = Running {
        what: "pipeline-cli",
        child: Some(spawn(&args).into()),
    };
    wait_for_port(metrics_port, pipeline.child());
    (pipeline, metrics_port)
}

/// Prometheus scraping the run and the Pushgateway every second (the latter
/// with honor_labels, as prometheus.example.yml does), with the alerting
/// rules loaded; returns it, its port and its log file.
fn start_prometheus(
    dir: &Path,
    alerts_path: &Path,
    metrics_port: u16,
    pushgateway_port: u16,
) -> (Running, u16, PathBuf) {
    let prometheus_bin = tool("prometheus");
    let prom_port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: pipeline\n    static_configs:\n      - targets: [\"127.0.0.1:{metrics_port}\"]\n\
             \x20 - job_name: pushgateway\n    honor_labels: true\n    static_configs:\n      - targets: [\"127.0.0.1:{pushgateway_port}\"]\n",
            alerts_path.display()
        ),
    )
    .unwrap();
    let log_path = dir.join("prometheus.log");
    let log_file = File::create(&log_path).unwrap();
    let child = Command::new(&prometheus_bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", prometheus_bin.display()));
    let prometheus = Running {
        what: "prometheus",
        child: Some(child),
    };

    (prometheus, prom_port, log_path)
}

/// The last lines of Prometheus's log, for failure messages.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Waits until Prometheus is ready, scrapes the run, has seen every row
/// from both sources (the run and the Pushgateway it pushed to when it
/// ended) and has a few samples for rate() and increase().
fn wait_for_the_run(
    prom_port: u16,
    prometheus: &mut Running,
    pipeline: &mut Running,
    log: &dyn Fn() -> String,
) {
    wait_until(
        "Prometheus to be ready",
        Duration::from_secs(60),
        &mut [&mut *prometheus],
        log,
        || matches!(http("GET", prom_port, "/-/ready"), Ok((200, _, _))).then_some(()),
    );
    wait_until(
        "up{job=\"pipeline\"} == 1",
        Duration::from_secs(30),
        &mut [&mut *prometheus, &mut *pipeline],
        log,
        || (single_value(prom_port, "up{job=\"pipeline\"}").as_deref() == Some("1")).then_some(()),
    );
    let both = format!(
        "count(pipeline_records_inserted_total{{pipeline_id=\"{PIPELINE_ID}\", job=~\"pipeline|pipeline-cli\"}} == {ROWS})"
    );
    wait_until(
        &format!("{both} == 2 (scraped and pushed)"),
        Duration::from_secs(60),
        &mut [&mut *prometheus, &mut *pipeline],
        log,
        || (single_value(prom_port, &both).as_deref() == Some("2")).then_some(()),
    );
    // A few more scrapes, so rate() and increase() have samples to work on,
    // and rule evaluations over the data.
    let samples = format!(
        "count_over_time(pipeline_info{{job=\"pipeline\", pipeline_id=\"{PIPELINE_ID}\"}}[1m])"
    );
    wait_until(
        "3 scrapes of the run",
        Duration::from_secs(30),
        &mut [&mut *prometheus, &mut *pipeline],
        log,
        || {
            single_value(prom_port, &samples)
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|n| *n >= 3.0)
        },
    );
}

/// Every expression evaluates.
fn assert_every_query_evaluates(prom_port: u16, all: &[(String, String)]) {
    let mut bad = Vec::new();
    for (source, expr) in all {
        if let Err(e) = query(prom_port, expr) {
            bad.push(format!("{source}: {expr}\n    {e}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} expressions failed in Prometheus:\n{}",
        bad.len(),
        all.len(),
        bad.join("\n")
    );
}

/// What a finished run without a failed record must show, through the
/// queries themselves.
fn assert_a_clean_run_shows(prom_port: u16, recipes: &[String], dashboard: &Value) {
    let rows = ROWS.to_string();
    let recipe = |needle: &str| -> &str {
        recipes
            .iter()
            .find(|r| r.contains(needle))
            .unwrap_or_else(|| panic!("METRICS.md has no recipe with {needle}"))
    };
    let panel = |title: &str| substitute_grafana_variables(&panel_expr(dashboard, title));
    // A recipe that aggregates answers once; one that does not, once per
    // source (each the same).
    for (expr, want, copies) in [
        (
            recipe("1 - pipeline_records_failed_total / (pipeline_records_read_total > 0)"),
            "1",
            2,
        ),
        (
            recipe("increase(pipeline_records_failed_total[1h])"),
            "0",
            1,
        ),
        (recipe("pipeline_queue_depth / ("), "0", 2),
    ] {
        let result = query(prom_port, expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(result.len(), copies, "series from {expr}: {result:?}");
        for r in &result {
            assert_eq!(r["value"][1], want, "{expr}: {r}");
        }
    }
    let states = query(prom_port, recipe("pipeline_state == 1")).unwrap();
    assert_eq!(states.len(), 2, "{states:?}");
    assert!(
        states.iter().all(|s| s["metric"]["state"] == "completed"),
        "{states:?}"
    );
    // The panels count the run once (a sum over both sources would show
    // twice the rows).
    let checks = [
        (panel("Records written (this run)"), rows.as_str()),
        (panel("Done"), "100"),
        (panel("Last exit code"), "0"),
        (panel("Success ratio (this run)"), "1"),
    ];
    for (expr, want) in &checks {
        let (_, v) = one_series(prom_port, expr);
        assert_eq!(v, *want, "{expr}");
    }
    let capacity =
        substitute_grafana_variables(&panel_targets(dashboard, "Queue depth vs capacity")[1]);
    let scraped =
        format!("pipeline_queue_capacity{{job=\"pipeline\", pipeline_id=\"{PIPELINE_ID}\"}}");
    let (_, want) = one_series(prom_port, &scraped);
    let (_, v) = one_series(prom_port, &capacity);
    assert_eq!(v, want, "{capacity}");
    let (labels, _) = one_series(prom_port, &panel("State"));
    assert_eq!(labels["state"], "completed", "State");
    // What --accept-errors 0.5% accepts, as PipelineRecordsFailing reads it.
    for (gauge, want) in [
        ("pipeline_accept_errors_records", "0"),
        ("pipeline_accept_errors_ratio", "0.005"),
    ] {
        let result = query(prom_port, gauge).unwrap();
        assert_eq!(result.len(), 2, "{gauge}: {result:?}");
        for r in &result {
            assert_eq!(r["value"][1], want, "{gauge}: {r}");
        }
    }
    let (_, v) = one_series(prom_port, &panel("Run duration"));
    let took: f64 = v.parse().unwrap();
    assert!(took > 0.0 && took < 600.0, "Run duration = {took}");
    for expr in [
        recipe(
            "time() - min by (pipeline_id) (max by (pipeline_id, slice) (pipeline_last_success_timestamp_seconds))",
        )
            .to_string(),
        panel("Time since last success"),
    ] {
        let (_, v) = one_series(prom_port, &expr);
        let age: f64 = v.parse().unwrap();
        assert!((0.0..600.0).contains(&age), "{expr} = {age}");
    }
}

/// The queries name only metrics the run exports (a typo evaluates fine, to
/// nothing).
fn assert_only_exported_metrics(prom_port: u16, all: &[(String, String)]) {
    let known = api(prom_port, "/api/v1/label/__name__/values");
    let mut known: Vec<&str> = known["data"]
        .as_array()
        .expect("metric names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // Exported by some runs only (an Elasticsearch count, an incremental
    // run's position), not by this CSV run: named where they are defined.
    let only_some = [
        "pipeline_source_expected_records",
        "pipeline_source_watermark",
    ];
    let defined = std::fs::read_to_string(repo().join("src/metrics/known.rs")).unwrap();
    for name in only_some {
        assert!(defined.contains(&format!("\"{name}\"")), "{name}");
        known.push(name);
    }
    let mut unknown = Vec::new();
    for (source, expr) in all {
        for name in metric_names(expr) {
            if !known.contains(&name.as_str()) {
                unknown.push(format!("{source}: {name} in {expr}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "metrics the run does not export:\n{}",
        unknown.join("\n")
    );
}

/// The rules Prometheus loaded all evaluate without error, and a run that
/// succeeded raises no alert.
fn assert_rules_healthy_and_quiet(
    prom_port: u16,
    prometheus: &mut Running,
    log: &dyn Fn() -> String,
    rule_count: usize,
) {
    let rules = wait_until(
        "every rule evaluated",
        Duration::from_secs(30),
        &mut [&mut *prometheus],
        log,
        || {
            let v = api(prom_port, "/api/v1/rules");
            let rules: Vec<Value> = v["data"]["groups"]
                .as_array()?
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            (rules.len() == rule_count && rules.iter().all(|r| r["health"] != "unknown"))
                .then_some(rules)
        },
    );
    let unhealthy: Vec<String> = rules
        .iter()
        .filter(|r| r["health"] != "ok")
        .map(|r| format!("{}: {} {}", r["name"], r["health"], r["lastError"]))
        .collect();
    assert!(unhealthy.is_empty(), "rules with errors: {unhealthy:?}");
    let alerts = wait_until(
        "no active alerts",
        Duration::from_secs(15),
        &mut [&mut *prometheus],
        log,
        || {
            let v = api(prom_port, "/api/v1/alerts");
            let active = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
            active.is_empty().then_some(active)
        },
    );
    assert!(alerts.is_empty());
}

#[test]
fn the_query_helpers_parse_what_they_should() {
    assert_eq!(
        url_encode("up{job=\"a b\"} > 0.5"),
        "up%7Bjob%3D%22a%20b%22%7D%20%3E%200.5"
    );
    let md = "x\n```promql\nrate(a[1m])\n```\n```\nnot promql\n```\n```promql\nb\n  + c\n```\n";
    assert_eq!(promql_blocks(md), vec!["rate(a[1m])", "b\n  + c"]);
    let yaml = "rules:\n  - alert: A\n    expr: up == 0\n    for: 5m\n  - alert: B\n    expr: |\n      x\n      or y\n    labels:\n      s: w\n  - alert: C\n    expr: \"z > 1\"\n";
    assert_eq!(rule_exprs(yaml), vec!["up == 0", "x\nor y", "z > 1"]);
    assert_eq!(
        substitute_grafana_variables(
            "rate(m{pipeline_id=~\"$pipeline_id\"}[$__rate_interval]) + n{p=\"${pipeline_id}\"}[$__range]"
        ),
        "rate(m{pipeline_id=~\"e2e\"}[1m]) + n{p=\"e2e\"}[1m]"
    );
    assert_eq!(
        metric_names(
            "sum by (pipeline_id) (rate(pipeline_a_total{pipeline_id=\"x\"}[1m])) / pipeline_b"
        ),
        vec!["pipeline_a_total", "pipeline_b"]
    );
}

/// The alerts of alerts.yml, each with the lines of its rule (up to the
/// next rule).
fn alert_rules(yaml: &str) -> Vec<(String, Vec<String>)> {
    let mut rules: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_alert = false;
    for line in yaml.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("- alert: ") {
            rules.push((name.trim().to_string(), Vec::new()));
            in_alert = true;
        } else if t.starts_with("- record: ") {
            in_alert = false;
        } else if in_alert {
            if let Some((_, lines)) = rules.last_mut() {
                lines.push(t.to_string());
            }
        }
    }
    rules
}

/// GitHub's anchor for a Markdown heading: lower case, spaces to `-`,
/// punctuation other than `-` and `_` dropped.
fn heading_slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of the headings of a Markdown text (outside code blocks).
fn heading_anchors(markdown: &str) -> Vec<String> {
    let mut anchors = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            anchors.push(heading_slug(line.trim_start_matches('#')));
        }
    }
    anchors
}

/// Every alert has a runbook_url naming a section of docs/runbook.md, its
/// own; every section of the runbook belongs to an alert.
#[test]
fn every_alert_links_to_its_runbook_section() {
    let rules =
        alert_rules(&std::fs::read_to_string(repo().join("monitoring/alerts.yml")).unwrap());
    assert_eq!(rules.len(), 9, "alerts in alerts.yml");
    let runbook = std::fs::read_to_string(repo().join("docs/runbook.md")).unwrap();
    let anchors = heading_anchors(&runbook);
    let mut linked = Vec::new();
    for (name, lines) in &rules {
        let url = lines
            .iter()
            .find_map(|l| l.strip_prefix("runbook_url:"))
            .unwrap_or_else(|| panic!("{name} has no runbook_url annotation"))
            .trim()
            .trim_matches('"');
        let (file, anchor) = url
            .split_once('#')
            .unwrap_or_else(|| panic!("{name}: runbook_url {url} has no #anchor"));
        assert_eq!(file, "docs/runbook.md", "{name}: runbook_url {url}");
        assert!(
            anchors.iter().any(|a| a == anchor),
            "{name}: docs/runbook.md has no heading whose anchor is #{anchor}; it has {anchors:?}"
        );
        assert_eq!(
            anchor,
            heading_slug(name),
            "{name} links to another alert's section"
        );
        linked.push(anchor.to_string());
    }
    for section in runbook.lines().filter_map(|l| l.strip_prefix("## ")) {
        let slug = heading_slug(section);
        assert!(
            linked.contains(&slug),
            "docs/runbook.md: section {section} is no alert's"
        );
        for part in [
            "**Means**",
            "**Check first**",
            "**Commands**",
            "**Silence**",
        ] {
            let body = runbook.split(&format!("## {section}\n")).nth(1).unwrap();
            let body = body.split("\n## ").next().unwrap();
            assert!(
                body.contains(part),
                "docs/runbook.md: section {section} has no {part}"
            );
        }
    }
}

#[test]
fn the_heading_slugs_are_githubs() {
    assert_eq!(heading_slug(" PipelineRunFailed"), "pipelinerunfailed");
    assert_eq!(heading_slug("What to check first?"), "what-to-check-first");
    assert_eq!(
        heading_anchors("# A b\n```\n# not a heading\n```\n## c_d.e\n"),
        vec!["a-b", "c_de"]
    );
    let rules =
        alert_rules("  - alert: A\n    x: 1\n  - record: r\n    expr: y\n  - alert: B\n    z: 2\n");
    assert_eq!(
        rules,
        vec![
            ("A".to_string(), vec!["x: 1".to_string()]),
            ("B".to_string(), vec!["z: 2".to_string()])
        ]
    );
}

/// The `alertname="…"` matchers of the example Alertmanager config's
/// inhibit rules: (source, target) pairs.
fn inhibit_pairs(yaml: &str) -> Vec<(String, String)> {
    let name = |l: &str| {
        l.trim()
            .strip_prefix("alertname=\"")
            .and_then(|r| r.strip_suffix('"'))
            .map(str::to_string)
    };
    let mut pairs = Vec::new();
    let mut side = "";
    let mut source = None;
    for line in yaml.lines() {
        match line.trim().trim_start_matches("- ") {
            "source_matchers:" => side = "source",
            "target_matchers:" => side = "target",
            l => match (side, name(l)) {
                ("source", Some(n)) => source = Some(n),
                ("target", Some(n)) => pairs.push((source.take().expect("a source first"), n)),
                _ => {}
            },
        }
    }
    pairs
}

/// amtool accepts the example Alertmanager config, and its inhibit rules
/// name alerts that exist.
#[test]
fn amtool_accepts_the_alertmanager_example() {
    let text = run_tool(
        "amtool",
        &["check-config", "monitoring/alertmanager.example.yml"],
    );
    assert!(text.contains("2 inhibit rules"), "{text}");
    let yaml = std::fs::read_to_string(repo().join("monitoring/alertmanager.example.yml")).unwrap();
    let alerts: Vec<String> =
        alert_rules(&std::fs::read_to_string(repo().join("monitoring/alerts.yml")).unwrap())
            .into_iter()
            .map(|(n, _)| n)
            .collect();
    let pairs = inhibit_pairs(&yaml);
    assert_eq!(
        pairs,
        [
            ("PipelineCannotStart", "PipelineRunFailed"),
            ("PipelineNoRecentSuccess", "PipelineNoRecentCompletion")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    for (a, b) in &pairs {
        assert!(
            alerts.contains(a) && alerts.contains(b),
            "{a} → {b}: not in alerts.yml"
        );
    }
}

/// (alertname, pipeline_id, slice, other labels, whether it is inhibited)
type PostedAlert = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    bool,
);

/// A real Alertmanager with the example config: each alert that only
/// repeats another of the same pipeline (and slice) is inhibited, nothing
/// else is.
#[test]
fn alertmanager_inhibits_the_repeating_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log_path = dir.path().join("alertmanager.log");
    let log_file = File::create(&log_path).unwrap();
    let child = Command::new(tool("prometheus-alertmanager"))
        .arg(format!(
            "--config.file={}",
            repo().join("monitoring/alertmanager.example.yml").display()
        ))
        .arg(format!("--storage.path={}", dir.path().display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // No cluster: no gossip port.
        .arg("--cluster.listen-address=")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start prometheus-alertmanager: {e}; {INSTALL_HINT}"));
    let mut alertmanager = Running {
        what: "alertmanager",
        child: Some(child),
    };
    let log = || log_tail(&log_path);
    wait_until(
        "Alertmanager to be ready",
        Duration::from_secs(30),
        &mut [&mut alertmanager],
        &log,
        || matches!(http("GET", port, "/-/ready"), Ok((200, _, _))).then_some(()),
    );
    let alerts: [PostedAlert; 9] = [
        (
            "PipelineCannotStart",
            "orders",
            "",
            &[("stage", "sink"), ("error_type", "auth")],
            false,
        ),
        (
            "PipelineRunFailed",
            "orders",
            "",
            &[("job", "pipeline-cli"), ("state", "failed")],
            true,
        ),
        // Another pipeline's run failed on its own.
        (
            "PipelineRunFailed",
            "events",
            "",
            &[("job", "pipeline-cli"), ("state", "failed")],
            false,
        ),
        // Slice 1 of "export" cannot start; slice 0 failed for its own reason.
        ("PipelineCannotStart", "export", "1", &[], false),
        (
            "PipelineRunFailed",
            "export",
            "1",
            &[("state", "failed")],
            true,
        ),
        (
            "PipelineRunFailed",
            "export",
            "0",
            &[("state", "failed")],
            false,
        ),
        ("PipelineNoRecentSuccess", "billing", "", &[], false),
        ("PipelineNoRecentCompletion", "billing", "", &[], true),
        ("PipelineNoRecentCompletion", "nightly", "", &[], false),
    ];
    let body: Vec<Value> = alerts
        .iter()
        .map(|(name, pipeline, slice, extra, _)| {
            let mut labels = serde_json::Map::new();
            labels.insert("alertname".into(), (*name).into());
            labels.insert("pipeline_id".into(), (*pipeline).into());
            labels.insert("severity".into(), "critical".into());
            if !slice.is_empty() {
                labels.insert("slice".into(), (*slice).into());
            }
            for (k, v) in extra.iter() {
                labels.insert((*k).into(), (*v).into());
            }
            serde_json::json!({ "labels": labels })
        })
        .collect();
    let body = serde_json::to_vec(&body).unwrap();
    let (status, text) =
        http_body("POST", port, "/api/v2/alerts", "application/json", &body).unwrap();
    assert_eq!(status, 200, "POST /api/v2/alerts: {text}\n{}", log());
    let want: Vec<String> = alerts
        .iter()
        .map(|(n, p, s, _, inhibited)| format!("{n} {p} {s}: inhibited {inhibited}"))
        .collect();
    let got = wait_until(
        "the posted alerts listed",
        Duration::from_secs(20),
        &mut [&mut alertmanager],
        &log,
        || {
            let (_, _, body) = http("GET", port, "/api/v2/alerts").ok()?;
            let listed: Vec<Value> = serde_json::from_str(&body).ok()?;
            let mut got: Vec<String> = listed
                .iter()
                .map(|a| {
                    let l = &a["labels"];
                    let inhibited = a["status"]["inhibitedBy"]
                        .as_array()
                        .is_some_and(|by| !by.is_empty());
                    format!(
                        "{} {} {}: inhibited {inhibited}",
                        l["alertname"].as_str().unwrap_or(""),
                        l["pipeline_id"].as_str().unwrap_or(""),
                        l["slice"].as_str().unwrap_or("")
                    )
                })
                .collect();
            got.sort();
            (got.len() == alerts.len()).then_some(got)
        },
    );
    let mut want = want;
    want.sort();
    assert_eq!(got, want);
}
