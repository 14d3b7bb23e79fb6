//! Prometheus-side helpers: scrape `/metrics`, read a series, wait for a
//! counter, run the real promtool.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::net::{http, port_open};

/// GET `/metrics`, panicking on anything but 200.
pub fn scrape(port: u16) -> String {
    let (status, _, body) = http("GET", port, "/metrics").expect("scrape /metrics");
    assert_eq!(status, 200, "GET /metrics");
    body
}

/// Waits until the metrics server answers.
pub fn wait_for_port(port: u16, child: &mut Child) {
    let t = Instant::now();
    while !port_open(port) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("pipeline-cli exited ({status}) before serving metrics");
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "metrics server never came up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The value of the one series of `name` (with any labels) whose label set
/// contains every `labels` pair, e.g. `value(&text, "pipeline_errors_total",
/// &[("stage", "source"), ("error_type", "parse")])`.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, v) = l.rsplit_once(' ')?;
        let (n, rest) = match series.split_once('{') {
            Some((n, rest)) => (n, rest),
            None => (series, ""),
        };
        if n != name {
            return None;
        }
        let all = labels
            .iter()
            .all(|(k, val)| rest.contains(&format!("{k}=\"{val}\"")));
        all.then(|| v.parse().ok())?
    })
}

/// Runs `promtool check metrics` on `text`; returns its combined output and
/// whether it passed. promtool must be installed (scripts/test.sh does it).
pub fn promtool_check_metrics(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect(
            "promtool is required: run scripts/test.sh, which installs Debian's prometheus package",
        );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), all)
}

/// Scrapes `/metrics` until `cond` holds on the text (returned), failing
/// after 30 s with `what` and the last scrape.
pub fn scrape_until(port: u16, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let t = Instant::now();
    loop {
        let text = scrape(port);
        if cond(&text) {
            return text;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `pipeline_<counter>_total` reaches `at_least`.
pub fn wait_for_count(port: u16, counter: &str, at_least: f64) {
    let name = format!("pipeline_records_{counter}_total");
    scrape_until(port, &format!("{name} >= {at_least}"), |t| {
        value(t, &name, &[]).unwrap_or(0.0) >= at_least
    });
}
