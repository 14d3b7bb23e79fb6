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

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::PushConfig;
use crate::error::{ErrorType, Stage};
use crate::pipeline::runtime;

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
    pub fn new(cfg: PushConfig, metrics: Arc<Metrics>) -> Result<Pusher, String> {
        // The client's connection pool lives on the shared runtime.
        let _inside = runtime().enter();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot set up the Pushgateway client: {e}"))?;
        let base = cfg.url.as_str().trim_end_matches('/').to_string();
        let target = format!(
            "{base}/metrics/job/{}/pipeline_id/{}",
            cfg.job,
            metrics.pipeline_id()
        );
        Ok(Pusher {
            cfg,
            metrics,
            client,
            target,
        })
    }

    /// Where the metrics go (for messages).
    pub fn target(&self) -> String {
        let mut shown = self.target.clone();
        if let Ok(mut u) = url::Url::parse(&self.target) {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            shown = u.to_string();
        }
        shown
    }

    /// Pushes now, retrying a few times. A failure is logged and counted in
    /// `errors_total{stage="push"}`.
    pub fn push(&self) -> Result<(), String> {
        let mut last = String::new();
        for attempt in 1..=PUSH_ATTEMPTS {
            let body = render_for_export(&self.metrics);
            // The request is built inside the runtime: reqwest sets its
            // timeout timer up as soon as the request is made.
            let sent = runtime().block_on(async {
                self.client
                    .post(&self.target)
                    .header("Content-Type", "text/plain; version=0.0.4")
                    .body(body)
                    .send()
                    .await
            });
            let error_type = match sent {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => {
                    let status = resp.status();
                    let text = runtime().block_on(resp.text()).unwrap_or_default();
                    last = format!("HTTP {status}: {}", text.trim());
                    ErrorType::Server
                }
                Err(e) => {
                    let timeout = e.is_timeout();
                    last = if timeout {
                        "timed out".to_string()
                    } else {
                        format!("cannot connect: {}", e.without_url())
                    };
                    if timeout {
                        ErrorType::Timeout
                    } else {
                        ErrorType::Connection
                    }
                }
            };
            self.metrics.error(Stage::Push, error_type, 1);
            if attempt < PUSH_ATTEMPTS {
                self.metrics.retried(Stage::Push);
                std::thread::sleep(Duration::from_millis(500 << attempt));
            }
        }
        let msg = format!(
            "pushing metrics to {} failed after {PUSH_ATTEMPTS} attempts: {last}",
            self.target()
        );
        tracing::error!("{msg}");
        Err(msg)
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

/// Writes the exposition to `path` atomically (temporary file beside it,
/// fsync, rename), for node_exporter's textfile collector.
pub fn write_textfile(path: &Path, metrics: &Metrics) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pipeline.prom".into());
    // node_exporter reads only *.prom files, so the temporary name is ignored.
    let tmp: PathBuf = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(render_for_export(metrics).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        metrics.error(Stage::Push, ErrorType::Io, 1);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_leave_out_process_metrics_only() {
        let m = Metrics::new("px", "csv", "file");
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
}
