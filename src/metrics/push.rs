//! Metrics for runs that end before Prometheus scrapes them (cron): pushing
//! to a Pushgateway, and writing a node_exporter textfile.
//!
//! Pushes use POST (add semantics) to
//! `<url>/metrics/job/<job>/pipeline_id/<id>`: the metrics of this run replace
//! those of the same name in the group, and a metric this run does not have
//! is left alone. `last_success_timestamp_seconds` is only exported by a
//! successful run, so a failed run never erases the previous success.
//! The `process_*` metrics are left out of pushes and textfiles: they would
//! describe a process that has ended, and node_exporter has its own.

use std::path::Path;
use std::sync::Arc;

use crate::config::PushConfig;
use crate::error::PipelineError;
use crate::error::{ErrorType, Stage};
use crate::retry::Failure;
use crate::runtime::runtime;

use super::Metrics;

/// Attempts per push (the first try and the retries).
const PUSH_ATTEMPTS: u32 = 3;

/// The exposition without the `process_*` families.
pub fn render_for_export(metrics: &Metrics) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in metrics.render().lines() {
        let name = if let Some(rest) = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
        {
            rest.split_whitespace().next().unwrap_or("")
        } else {
            line.split(['{', ' ']).next().unwrap_or("")
        };
        if line.starts_with("# HELP ") {
            skipping = name.starts_with("process_");
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Pushes a run's metrics to a Pushgateway.
pub struct Pusher {
    cfg: PushConfig,
    metrics: Arc<Metrics>,
    client: reqwest::Client,
    target: String,
}

impl Pusher {
    /// A pusher for this run's metrics.
    pub fn new(cfg: PushConfig, metrics: Arc<Metrics>) -> Result<Pusher, PipelineError> {
        // The client's connection pool lives on the shared runtime.
        let _inside = runtime().enter();
        let client = reqwest::Client::builder()
            .connect_timeout(cfg.timeout)
            .build()
            .map_err(|e| {
                PipelineError::Config(format!("cannot set up the Pushgateway client: {e}"))
            })?;
        let base = cfg.url.as_str().trim_end_matches('/').to_string();
        let mut target = format!(
            "{base}/metrics/job/{}/pipeline_id/{}",
            cfg.job,
            metrics.pipeline_id()
        );
        // Each slice of a sliced job has its own group: N processes do not
        // replace each other's metrics; N is in it too, so processes that
        // disagree on N never share one.
        if let Some((slice, n)) = metrics.slice() {
            target.push_str(&format!("/slice/{slice}/slices/{n}"));
        }
        Ok(Pusher {
            cfg,
            metrics,
            client,
            target,
        })
    }

    /// Where the metrics go (for messages).
    pub fn target(&self) -> String {
        crate::config::redacted(&self.target)
    }

    /// Pushes now, retrying a passing failure (a refused connection, a 5xx,
    /// a timeout) for at most `--push-timeout` in all, so a slow or absent
    /// Pushgateway never holds a finished run for long. A 4xx is a mistake in
    /// the URL or the metrics and is not retried. A failure is logged and
    /// counted in `errors_total{stage="push"}`.
    pub fn push(&self) -> Result<(), String> {
        let deadline = std::time::Instant::now() + self.cfg.timeout;
        let policy = crate::retry::RetryPolicy {
            retry_for: self.cfg.timeout,
            max_retries: Some(PUSH_ATTEMPTS - 1),
            at_start: self.cfg.timeout,
        };
        let pushed = policy.retrier().within(deadline).run(
            || self.push_once(deadline),
            |(error_type, why): &(ErrorType, String), progress, wait| {
                let why = format!("pushing metrics to {}: {why}", self.target());
                self.metrics
                    .retrying(Stage::Push, *error_type, &why, progress, wait);
            },
        );
        let gave_up = match pushed {
            Ok(()) => return Ok(()),
            Err(g) => g,
        };
        let (error_type, last) = gave_up.error;
        self.metrics.error(Stage::Push, error_type, 1);
        let msg = format!(
            "pushing metrics to {} failed after {} attempt(s): {last}",
            self.target(),
            gave_up.retries + 1
        );
        tracing::error!("{msg}");
        Err(msg)
    }

    /// One push, within what is left until `deadline`. A 4xx is final.
    fn push_once(&self, deadline: std::time::Instant) -> Result<(), Failure<(ErrorType, String)>> {
        let body = render_for_export(&self.metrics);
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        // The request is built inside the runtime: reqwest sets its timers
        // up as soon as the request is made.
        let sent = runtime().block_on(async {
            let request = self
                .client
                .post(&self.target)
                .header("Content-Type", "text/plain; version=0.0.4")
                .body(body)
                .send();
            match tokio::time::timeout(left, request).await {
                Ok(Ok(resp)) => {
                    let status = resp.status();
                    let text = tokio::time::timeout(left, resp.text())
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_default();
                    Ok((status, text))
                }
                Ok(Err(e)) => Err((e.is_timeout(), crate::error::chain(&e.without_url()))),
                Err(_) => Err((true, String::new())),
            }
        });
        let (error_type, why, retryable) = match sent {
            Ok((status, _)) if status.is_success() => return Ok(()),
            Ok((status, text)) => (
                ErrorType::Server,
                format!("HTTP {status}: {}", text.trim()),
                status.is_server_error(),
            ),
            Err((true, _)) => (
                ErrorType::Timeout,
                format!(
                    "timed out (--push-timeout {})",
                    crate::retry::format_duration(self.cfg.timeout)
                ),
                true,
            ),
            Err((false, e)) => (ErrorType::Connection, format!("cannot connect: {e}"), true),
        };
        Err(Failure {
            error: (error_type, why),
            retryable,
            hint: None,
        })
    }

    /// Whether a failed final push fails the run.
    pub fn required(&self) -> bool {
        self.cfg.required
    }

    /// Pushes every `--push-interval` until `done` is dropped or sent to.
    pub fn spawn_interval(
        self: &Arc<Self>,
        done: crossbeam_channel::Receiver<()>,
    ) -> Option<std::thread::JoinHandle<()>> {
        let every = self.cfg.interval?;
        let me = self.clone();
        Some(
            std::thread::Builder::new()
                .name("metrics-push".into())
                .spawn(move || {
                    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                        done.recv_timeout(every)
                    {
                        let _ = me.push();
                    }
                })
                .expect("spawn the push thread"),
        )
    }
}

const LAST_SUCCESS: &str = "pipeline_last_success_timestamp_seconds";
const LAST_COMPLETION: &str = "pipeline_last_completion_timestamp_seconds";

/// The lines of `name` (HELP, TYPE, the sample of this pipeline) of an
/// earlier textfile, or nothing.
fn carried_forward(previous: &str, pipeline_id: &str, name: &str) -> String {
    let label = format!("pipeline_id=\"{pipeline_id}\"");
    let sample = previous
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(&label));
    let Some(sample) = sample else {
        return String::new();
    };
    let mut out = String::new();
    for l in previous.lines() {
        if l.starts_with(&format!("# HELP {name} ")) || l.starts_with(&format!("# TYPE {name} ")) {
            out.push_str(l);
            out.push('\n');
        }
    }
    out.push_str(sample);
    out.push('\n');
    out
}

/// Writes the exposition to `path` atomically (temporary file beside it,
/// fsync, rename), for node_exporter's textfile collector.
pub fn write_textfile(path: &Path, metrics: &Metrics) -> std::io::Result<()> {
    let mut text = render_for_export(metrics);
    // A run that did not succeed (or did not complete) has no last-success
    // (last-completion) time of its own: keep the previous run's, as the
    // Pushgateway keeps it, so "no recent success" and "no recent
    // completion" can be alerted on from the textfile too.
    let missing: Vec<&str> = [LAST_SUCCESS, LAST_COMPLETION]
        .into_iter()
        .filter(|name| !text.contains(&format!("{name}{{")))
        .collect();
    if !missing.is_empty() {
        if let Ok(previous) = crate::safe_fs::read_own(path) {
            for name in missing {
                text.push_str(&carried_forward(&previous, metrics.pipeline_id(), name));
            }
        }
    }
    let result = crate::fsutil::write_atomic(path, text.as_bytes());
    if result.is_err() {
        metrics.error(Stage::Push, ErrorType::Io, 1);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_leave_out_process_metrics_only() {
        let m = Metrics::new(
            "px",
            crate::config::SourceKind::Csv,
            crate::config::SinkKind::File,
        );
        // A finished run: its duration no longer moves between two renders.
        m.set_state(super::super::RunState::Completed);
        let text = render_for_export(&m);
        assert!(!text.contains("process_"), "{text}");
        assert!(text.contains("# TYPE pipeline_records_read_total counter"));
        assert!(text.contains("pipeline_state{state=\"completed\",pipeline_id=\"px\"} 1"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipeline.prom");
        write_textfile(&path, &m).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            render_for_export(&m)
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn a_slice_carries_its_count_in_its_labels_and_its_group() {
        let m = Metrics::with_slice(
            "sx",
            Some((1, 3)),
            crate::config::SourceKind::Elasticsearch,
            crate::config::SinkKind::File,
        );
        let text = render_for_export(&m);
        let line = text
            .lines()
            .find(|l| l.starts_with("pipeline_records_read_total{"))
            .unwrap();
        assert!(
            line.contains("slice=\"1\"") && line.contains("slices=\"3\""),
            "{line}"
        );
        let cfg = PushConfig {
            url: "http://127.0.0.1:9091".parse().unwrap(),
            job: "j".into(),
            interval: None,
            required: false,
            timeout: std::time::Duration::from_secs(1),
        };
        let pusher = Pusher::new(cfg, m).unwrap();
        assert_eq!(
            pusher.target(),
            "http://127.0.0.1:9091/metrics/job/j/pipeline_id/sx/slice/1/slices/3"
        );
    }
}
