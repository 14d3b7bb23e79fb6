//! The metrics server's flags and the `pipeline_id` label.

use crate::config::MetricsConfig;
use crate::error::PipelineError;

use super::resolve::label_ok;

/// The longest `--metrics-linger`.
const MAX_LINGER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The metrics server and the label on every series.
#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct MetricsFlags {
    /// Serve metrics and a live page on this port.
    ///
    /// Serve /metrics, /health and / on this port while the run lasts (0 picks a
    /// free port and logs it). Example: --metrics-port 9464
    #[arg(long, value_name = "N", help_heading = "Metrics")]
    pub metrics_port: Option<u16>,

    /// Address the metrics server binds. Example: --metrics-host 0.0.0.0
    #[arg(
        long,
        value_name = "H",
        default_value = crate::config::DEFAULT_METRICS_HOST,
        help_heading = "Metrics"
    )]
    pub metrics_host: String,

    /// After the run ends, keep serving the final metrics until Ctrl+C or
    /// SIGTERM, so Prometheus gets its last scrape.
    #[arg(long, help_heading = "Metrics")]
    pub metrics_keep_alive: bool,

    /// With --metrics-port: after the run ends (or fails to start), keep
    /// serving its final state, exit code included, this long, so
    /// Prometheus scrapes it and a late look at / still sees how it ended.
    /// The default covers two scrapes at a 15s interval; raise it for a
    /// longer scrape_interval, 0 exits at once. Ctrl+C or SIGTERM ends it
    /// sooner; the exit code stays the run's. Example: --metrics-linger 2m
    #[arg(
        long,
        value_name = "DURATION",
        default_value = crate::config::DEFAULT_METRICS_LINGER,
        help_heading = "Metrics"
    )]
    pub metrics_linger: String,

    /// Value of the pipeline_id label on every series. Example: --pipeline-id orders-hourly
    #[arg(
        long,
        value_name = "ID",
        default_value = crate::config::DEFAULT_PIPELINE_ID,
        help_heading = "Metrics"
    )]
    pub pipeline_id: String,
}

impl MetricsFlags {
    /// Refuses an empty `--pipeline-id` and `--metrics-keep-alive` without
    /// a port.
    pub(super) fn check(&self) -> Result<(), PipelineError> {
        if self.pipeline_id.is_empty() {
            return Err(PipelineError::Config(
                "--pipeline-id must not be empty".into(),
            ));
        }
        if self.metrics_keep_alive && self.metrics_port.is_none() {
            return Err(PipelineError::Config(
                "--metrics-keep-alive needs --metrics-port N".into(),
            ));
        }
        Ok(())
    }

    /// Refuses a `--pipeline-id` that is not a plain label value.
    pub(super) fn check_label(&self) -> Result<(), PipelineError> {
        if !label_ok(&self.pipeline_id) {
            return Err(PipelineError::Config(
                "--pipeline-id may hold only letters, digits, '_', '-', '.' and ':'".into(),
            ));
        }
        Ok(())
    }

    /// The metrics server's settings.
    pub(super) fn resolve(&self) -> Result<MetricsConfig, PipelineError> {
        Ok(MetricsConfig {
            port: self.metrics_port,
            host: self.metrics_host.clone(),
            keep_alive: self.metrics_keep_alive,
            linger: crate::retry::parse_duration(&self.metrics_linger)
                .map_err(|e| {
                    PipelineError::Config(format!(
                        "--metrics-linger: {e}; give a duration such as 30s or 2m, or 0 to exit at once"
                    ))
                })
                .and_then(|d| match d <= MAX_LINGER {
                    true => Ok(d),
                    false => Err(PipelineError::Config(
                        "--metrics-linger: at most 24h; --metrics-keep-alive serves until a signal"
                            .into(),
                    )),
                })?,
        })
    }
}
