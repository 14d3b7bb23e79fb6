//! The Elasticsearch source's flags (`--es-*`, `--state-file`) and their
//! translation into an [`EsConfig`].

use std::path::PathBuf;

use crate::config::{EsConfig, EsMode, Secret, SinceMissing};
use crate::error::PipelineError;

use super::resolve::{duration_flag, Slice};
use super::run::RunFlags;

/// The flags of `--source-type elasticsearch`.
#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct EsFlags {
    /// Elasticsearch/OpenSearch node URL(s).
    ///
    /// Comma-separated; a bare host:port means http; the next node is tried
    /// when one cannot be reached. Example: --es-url https://es1:9200,https://es2:9200
    #[arg(long, value_name = "URL[,URL]", help_heading = "Elasticsearch source")]
    pub es_url: Option<String>,

    /// Index name or pattern to read.
    ///
    /// Example: --es-index 'logs-2026.*'
    #[arg(long, value_name = "NAME", help_heading = "Elasticsearch source")]
    pub es_index: Option<String>,

    /// Query as JSON (a query clause or a body with "query"), or @FILE to read it
    /// from a file. Default: match_all. Example: --es-query '{"term":{"status":"paid"}}'
    #[arg(long, value_name = "JSON|@FILE", help_heading = "Elasticsearch source")]
    pub es_query: Option<String>,

    /// Documents per page (at most 10000). Example: --es-page-size 5000
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        help_heading = "Elasticsearch source"
    )]
    pub es_page_size: u32,

    /// Only these _source fields, comma-separated. Example: --es-fields id,amount,customer
    #[arg(long, value_name = "A,B", help_heading = "Elasticsearch source")]
    pub es_fields: Option<String>,

    /// Metadata copied into each record, comma-separated (empty for none).
    /// Example: --es-meta-fields _id,_index
    #[arg(
        long,
        value_name = "A,B",
        default_value = "_id",
        help_heading = "Elasticsearch source"
    )]
    pub es_meta_fields: String,

    /// Split the read into N slices (sliced point in time or scroll): read in
    /// parallel threads, or, with --es-slice-id, one slice per process.
    /// Example: --es-slices 4
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        env = "PIPELINE_ES_SLICES",
        help_heading = "Elasticsearch source"
    )]
    pub es_slices: u32,

    /// Read only slice I (0 … N-1) of --es-slices N: N processes, on one host
    /// or many (a Kubernetes Indexed Job sets it from the completion index),
    /// together read every matching document once. Metrics carry
    /// slice="I" and slices="N" and are pushed to their own Pushgateway
    /// group; a --state-file of another N is refused; `{slice}` in
    /// --state-file, --output-file, --dead-letter, --lock-file,
    /// --metrics-textfile and --summary-json becomes I. Example:
    /// --es-slices 4 --es-slice-id 2
    #[arg(
        long,
        value_name = "I",
        env = "PIPELINE_ES_SLICE_ID",
        help_heading = "Elasticsearch source"
    )]
    pub es_slice_id: Option<u32>,

    /// Page through this point in time (opened beforehand with --es-open-pit)
    /// instead of opening one: every process of a sliced job then reads the
    /// same snapshot. It is not closed at the end (it expires after
    /// --es-keep-alive without use). Example: --es-pit-id "$PIT"
    #[arg(
        long,
        value_name = "ID",
        env = "PIPELINE_ES_PIT_ID",
        help_heading = "Elasticsearch source"
    )]
    pub es_pit_id: Option<String>,

    /// Open a point in time on --es-index for --es-keep-alive, print its id on
    /// standard output and exit: the snapshot the processes of a sliced job
    /// share through --es-pit-id. Example:
    /// PIT=$(pipeline-cli --source-type elasticsearch --es-index orders --es-keep-alive 30m --es-open-pit)
    #[arg(long, help_heading = "Elasticsearch source")]
    pub es_open_pit: bool,

    /// Paging: point in time + search_after, scroll, or auto (point in time where
    /// the server has it).
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        help_heading = "Elasticsearch source"
    )]
    pub es_mode: EsMode,

    /// How long the server keeps the point in time or scroll open between two
    /// pages. Example: --es-keep-alive 10m
    #[arg(
        long,
        value_name = "DURATION",
        default_value = crate::config::DEFAULT_ES_KEEP_ALIVE,
        help_heading = "Elasticsearch source"
    )]
    pub es_keep_alive: String,

    /// User for basic authentication (password in PIPELINE_ES_PASS). Example: --es-user reader
    #[arg(long, value_name = "USER", help_heading = "Elasticsearch source")]
    pub es_user: Option<String>,

    /// Password for --es-user; better set as PIPELINE_ES_PASS. Never printed.
    #[arg(
        long,
        value_name = "PASS",
        env = "PIPELINE_ES_PASS",
        hide_env_values = true,
        help_heading = "Elasticsearch source"
    )]
    pub es_pass: Option<String>,

    /// API key (base64 id:key); better set as PIPELINE_ES_API_KEY. Never printed.
    #[arg(
        long,
        value_name = "KEY",
        env = "PIPELINE_ES_API_KEY",
        hide_env_values = true,
        help_heading = "Elasticsearch source"
    )]
    pub es_api_key: Option<String>,

    /// CA certificate (PEM) to trust for https. Example: --es-ca-cert /etc/ssl/es-ca.pem
    #[arg(long, value_name = "PATH", help_heading = "Elasticsearch source")]
    pub es_ca_cert: Option<PathBuf>,

    /// Do not check the server's certificate (testing only).
    #[arg(long, help_heading = "Elasticsearch source")]
    pub es_insecure: bool,

    /// Ask for gzip-compressed answers (Accept-Encoding: gzip): a fifth of
    /// the bytes on the network for more client CPU. Off by default, since
    /// on a fast network the decompression costs more than it saves.
    #[arg(long, help_heading = "Elasticsearch source")]
    pub es_compression: bool,

    /// Longest one request may take before it counts as timed out (and is
    /// retried). Example: --es-timeout 2m
    #[arg(
        long,
        value_name = "DURATION",
        default_value = crate::config::DEFAULT_ES_TIMEOUT,
        help_heading = "Elasticsearch source"
    )]
    pub es_timeout: String,

    /// Incremental runs: read only documents whose FIELD is greater than the
    /// value saved by the last successful run (needs --state-file). Example: --es-since-field updated_at
    #[arg(long, value_name = "FIELD", help_heading = "Elasticsearch source")]
    pub es_since_field: Option<String>,

    /// What the next run starts from; written atomically, only when a run
    /// succeeds, put into place with the output. Elasticsearch: where
    /// --es-since-field keeps its position. CSV and NDJSON: the files
    /// loaded (real path, size, modification time, SHA-256 of the first
    /// 64 KiB), which the next run skips (see --changed-files,
    /// --after-load); the run holds PATH.lock unless --lock-file names
    /// another, so two runs at once do not load a file twice.
    /// Example: --state-file /var/lib/pipeline/orders.state
    #[arg(long, value_name = "PATH", help_heading = "Elasticsearch source")]
    pub state_file: Option<PathBuf>,

    /// Incremental runs: documents without a value of --es-since-field
    /// (absent, null, empty) are read on every run (include) or never (skip);
    /// either way they are counted and reported. Example: --es-since-missing skip
    #[arg(
        long,
        value_enum,
        default_value = "include",
        help_heading = "Elasticsearch source"
    )]
    pub es_since_missing: SinceMissing,
}

fn cfg(message: String) -> PipelineError {
    PipelineError::Config(message)
}

/// A comma-separated list, its items trimmed, the empty ones left out.
fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect()
}

impl EsFlags {
    /// The flags of this group that other sources refuse: all of them but
    /// `--state-file`, which any source has always accepted (and only
    /// Elasticsearch uses).
    pub(super) fn foreign_ids() -> Vec<String> {
        super::group_ids::<EsFlags>()
            .into_iter()
            .filter(|id| id != "state_file")
            .collect()
    }

    /// The slice this process reads and the count: `--es-slice-id` of
    /// `--es-slices`.
    pub(super) fn slice(&self) -> Option<(u32, u32)> {
        self.es_slice_id.map(|i| (i, self.es_slices))
    }

    /// The Elasticsearch source's settings.
    pub(super) fn resolve(&self, slice: Slice, run: &RunFlags) -> Result<EsConfig, PipelineError> {
        let urls = self.urls()?;
        let index = self
            .es_index
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| cfg("--source-type elasticsearch needs --es-index NAME".into()))?;
        let query = self.query()?;
        self.check_paging()?;
        let pit_id = self.es_pit_id.clone().filter(|p| !p.trim().is_empty());
        if pit_id.is_some() && self.es_mode == EsMode::Scroll {
            return Err(cfg(
                "--es-pit-id names a point in time; it cannot be paged with --es-mode scroll"
                    .into(),
            ));
        }
        self.check_access()?;
        let meta_fields = list(&self.es_meta_fields);
        check_meta_fields(&meta_fields)?;
        let secret = |s: &Option<String>| s.clone().filter(|p| !p.is_empty()).map(Secret::new);
        Ok(EsConfig {
            urls,
            index,
            query,
            page_size: self.es_page_size,
            fields: self.es_fields.as_deref().map(list),
            meta_fields,
            slices: self.es_slices,
            slice_id: self.es_slice_id,
            pit_id,
            mode: self.es_mode,
            keep_alive: self.es_keep_alive.clone(),
            user: self.es_user.clone(),
            password: secret(&self.es_pass),
            api_key: secret(&self.es_api_key),
            ca_cert: self.es_ca_cert.clone(),
            insecure: self.es_insecure,
            compression: self.es_compression,
            since_field: self.es_since_field.clone(),
            since_missing: self.es_since_missing,
            state_file: slice.path("--state-file", self.state_file.as_deref())?,
            retry: run.retry_policy()?,
            timeout: duration_flag("--es-timeout", &self.es_timeout)?,
        })
    }

    /// `--es-url`: one URL or more, each http or https.
    fn urls(&self) -> Result<Vec<url::Url>, PipelineError> {
        let raw = self.es_url.as_deref().ok_or_else(|| {
            cfg(
                "--source-type elasticsearch needs --es-url URL (e.g. http://localhost:9200)"
                    .into(),
            )
        })?;
        let mut urls = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let with_scheme = if part.contains("://") {
                part.to_string()
            } else {
                format!("http://{part}")
            };
            let url = url::Url::parse(&with_scheme).map_err(|e| {
                cfg(format!(
                    "--es-url '{}' is not a URL: {e}",
                    crate::config::redacted(part)
                ))
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(cfg(format!(
                    "--es-url '{}' must be http or https",
                    crate::config::redacted(part)
                )));
            }
            urls.push(url);
        }
        if urls.is_empty() {
            return Err(cfg("--es-url needs at least one URL".into()));
        }
        Ok(urls)
    }

    /// `--es-query`: a query clause, or the `query` of a search body
    /// (inline or `@FILE`); match_all without it.
    fn query(&self) -> Result<serde_json::Value, PipelineError> {
        let Some(q) = self.es_query.as_deref() else {
            return Ok(serde_json::json!({"match_all": {}}));
        };
        let text = match q.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| cfg(format!("--es-query @{path}: {e}")))?,
            None => q.to_string(),
        };
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| cfg(format!("--es-query is not valid JSON: {e}")))?;
        match v {
            serde_json::Value::Object(mut m) if m.contains_key("query") => {
                Ok(m.remove("query").expect("checked"))
            }
            serde_json::Value::Object(_) => Ok(v),
            _ => Err(cfg("--es-query must be a JSON object".into())),
        }
    }

    /// Page size, slices and the slice this process reads.
    fn check_paging(&self) -> Result<(), PipelineError> {
        if self.es_page_size == 0 || self.es_page_size > 10_000 {
            return Err(cfg("--es-page-size must be between 1 and 10000".into()));
        }
        if self.es_slices == 0 || self.es_slices > 1024 {
            return Err(cfg("--es-slices must be between 1 and 1024".into()));
        }
        let Some(id) = self.es_slice_id else {
            return Ok(());
        };
        if id >= self.es_slices {
            return Err(cfg(format!(
                "--es-slice-id {id} is not a slice of --es-slices {n}: slices are numbered 0 to {}",
                self.es_slices - 1,
                n = self.es_slices
            )));
        }
        if let Some(state) = &self.state_file {
            if self.es_slices > 1 && !state.to_string_lossy().contains("{slice}") {
                return Err(cfg(format!(
                    "--state-file '{}' would be shared by the {} slices; each slice keeps its own state: put {{slice}} in the path (orders.{{slice}}.state)",
                    state.display(),
                    self.es_slices
                )));
            }
        }
        Ok(())
    }

    /// The incremental pair, credentials, CA certificate and keep-alive.
    fn check_access(&self) -> Result<(), PipelineError> {
        if self.es_since_field.is_some() != self.state_file.is_some() {
            return Err(cfg("--es-since-field and --state-file go together".into()));
        }
        if self.es_pass.is_some() && self.es_user.is_none() {
            return Err(cfg(
                "a password (--es-pass / PIPELINE_ES_PASS) needs --es-user".into(),
            ));
        }
        if let Some(ca) = &self.es_ca_cert {
            if !ca.is_file() {
                return Err(cfg(format!(
                    "--es-ca-cert '{}' is not a readable file",
                    ca.display()
                )));
            }
        }
        let ka = &self.es_keep_alive;
        let unit_ok = ["ms", "s", "m", "h", "d"].iter().any(|u| {
            ka.strip_suffix(u)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
        if !unit_ok {
            return Err(cfg(format!(
                "--es-keep-alive '{ka}' is not a duration like 30s, 5m or 1h"
            )));
        }
        Ok(())
    }
}

/// The metadata a search hit carries without asking for more.
const HIT_METADATA: [&str; 5] = ["_id", "_index", "_routing", "_score", "_ignored"];

/// `--es-meta-fields`: each a hit's metadata field, each once (a name
/// given twice would be two fields of one record, the second always
/// null; an unknown one would be null in every record).
fn check_meta_fields(names: &[String]) -> Result<(), PipelineError> {
    for (i, name) in names.iter().enumerate() {
        if !HIT_METADATA.contains(&name.as_str()) {
            return Err(PipelineError::Config(format!(
                "--es-meta-fields: '{name}' is not metadata of a search hit; choose from {}",
                HIT_METADATA.join(", ")
            )));
        }
        if names[..i].contains(name) {
            return Err(PipelineError::Config(format!(
                "--es-meta-fields: '{name}' is given twice"
            )));
        }
    }
    Ok(())
}
