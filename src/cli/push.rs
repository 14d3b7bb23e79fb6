//! The Pushgateway's flags (`--pushgateway-url`, `--push-*`) and their
//! translation into a [`PushConfig`].

use std::time::Duration;

use crate::config::PushConfig;
use crate::error::PipelineError;

use super::resolve::{duration_flag, label_ok};

/// Pushing the metrics to a Pushgateway.
#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct PushFlags {
    /// Push the run's metrics to this Pushgateway when it ends (and every
    /// --push-interval while it runs). Example: --pushgateway-url http://127.0.0.1:9091
    #[arg(long, value_name = "URL", help_heading = "Scheduled runs")]
    pub pushgateway_url: Option<String>,

    /// The `job` grouping label of pushed metrics. Example: --push-job nightly-export
    #[arg(
        long,
        value_name = "NAME",
        default_value = "pipeline-cli",
        help_heading = "Scheduled runs"
    )]
    pub push_job: String,

    /// Longest the final push may take, retries included; a slow Pushgateway
    /// never holds a finished run longer. Example: --push-timeout 30s
    #[arg(
        long,
        value_name = "DURATION",
        default_value = crate::config::DEFAULT_PUSH_TIMEOUT,
        help_heading = "Scheduled runs"
    )]
    pub push_timeout: String,

    /// Also push every SECS seconds while the run lasts. Example: --push-interval 15
    #[arg(long, value_name = "SECS", help_heading = "Scheduled runs")]
    pub push_interval: Option<u64>,

    /// A failed final push fails the run (exit 1); otherwise it is only logged and counted.
    #[arg(long, help_heading = "Scheduled runs")]
    pub push_required: bool,
}

impl PushFlags {
    /// The push's settings, or none without `--pushgateway-url`.
    pub(super) fn resolve(&self) -> Result<Option<PushConfig>, PipelineError> {
        let Some(raw) = &self.pushgateway_url else {
            if self.push_interval.is_some() || self.push_required {
                return Err(PipelineError::Config(
                    "--push-interval and --push-required need --pushgateway-url URL".into(),
                ));
            }
            return Ok(None);
        };
        // A bare host:port means http, as for --es-url.
        let with_scheme = if raw.contains("://") {
            raw.clone()
        } else {
            format!("http://{raw}")
        };
        let url = url::Url::parse(&with_scheme)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                PipelineError::Config(format!(
                    "--pushgateway-url '{}' is not an http(s) URL; give the Pushgateway's base URL, e.g. http://pushgateway:9091",
                    crate::config::redacted(raw)
                ))
            })?;
        let path = url.path().trim_end_matches('/');
        if path.ends_with("/metrics") || path.contains("/metrics/job") {
            return Err(PipelineError::Config(format!(
                "--pushgateway-url '{}' names a path; give the Pushgateway's base URL (e.g. http://pushgateway:9091): pipeline-cli adds /metrics/job/<job>/pipeline_id/<id>",
                crate::config::redacted(raw)
            )));
        }
        if !label_ok(&self.push_job) {
            return Err(PipelineError::Config(
                "--push-job may hold only letters, digits, '_', '-', '.' and ':'".into(),
            ));
        }
        if self.push_interval == Some(0) {
            return Err(PipelineError::Config(
                "--push-interval must be at least 1".into(),
            ));
        }
        Ok(Some(PushConfig {
            url,
            job: self.push_job.clone(),
            interval: self.push_interval.map(Duration::from_secs),
            required: self.push_required,
            timeout: duration_flag("--push-timeout", &self.push_timeout)?,
        }))
    }
}
