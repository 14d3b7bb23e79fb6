//! From flags to a validated [`Config`]: every combination checked, every
//! default applied, every flag that is wrong named in one clear line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{
    Config, CsvConfig, EsConfig, FileSinkConfig, JsonlConfig, MetricsConfig, MysqlConfig,
    OutputCompression, OutputPath, PushConfig, Secret, SinkConfig, SourceConfig, SslMode,
};
use crate::error::PipelineError;

use super::{Cli, OutputCompressionFlag, SinkType, SourceType};

mod inputs;
use inputs::{inputs, parse_shard};

fn parse_delimiter(s: &str) -> Result<u8, PipelineError> {
    let bytes = match s {
        "tab" | "\\t" => return Ok(b'\t'),
        _ => s.as_bytes(),
    };
    match bytes {
        [b] if *b != b'"' && *b != b'\n' && *b != b'\r' => Ok(*b),
        _ => Err(PipelineError::Config(format!(
            "--csv-delimiter must be a single ASCII character other than a quote or newline (or `tab`), got {s:?}"
        ))),
    }
}

fn positive_u64(flag: &str, n: u64) -> Result<u64, PipelineError> {
    if n == 0 {
        return Err(PipelineError::Config(format!("{flag} must be at least 1")));
    }
    Ok(n)
}

/// A duration flag (`30s`, `5m`, …) that must be more than zero.
fn duration_flag(flag: &str, text: &str) -> Result<Duration, PipelineError> {
    let d = crate::retry::parse_duration(text)
        .map_err(|e| PipelineError::Config(format!("{flag}: {e}")))?;
    if d.is_zero() {
        return Err(PipelineError::Config(format!("{flag} must be more than 0")));
    }
    Ok(d)
}

fn positive(flag: &str, n: usize) -> Result<usize, PipelineError> {
    if n == 0 {
        return Err(PipelineError::Config(format!("{flag} must be at least 1")));
    }
    Ok(n)
}

/// The parts of a `mysql://user:pass@host:port/db` URL.
#[derive(Debug, Default)]
struct DbUrl {
    host: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    pass: Option<String>,
    db: Option<String>,
}

fn parse_db_url(raw: &str) -> Result<DbUrl, PipelineError> {
    // The message never repeats the URL: it may hold a password.
    let bad =
        |why: &str| PipelineError::Config(format!("--db-url is not a valid MySQL URL: {why}"));
    let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "mysql" | "mariadb") {
        return Err(bad("it must start with mysql://"));
    }
    // Percent-decoding only: a '+' in a password stays a '+'.
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let db = url.path().trim_start_matches('/');
    Ok(DbUrl {
        host: url.host_str().map(str::to_string),
        port: url.port(),
        user: (!url.username().is_empty()).then(|| decode(url.username())),
        pass: url.password().map(decode),
        db: (!db.is_empty()).then(|| decode(db)),
    })
}

impl Cli {
    fn retry_policy(&self) -> Result<crate::retry::RetryPolicy, PipelineError> {
        Ok(crate::retry::RetryPolicy {
            retry_for: crate::retry::parse_duration(&self.retry_for)
                .map_err(|e| PipelineError::Config(format!("--retry-for: {e}")))?,
            max_retries: self.max_retries,
        })
    }

    /// The Elasticsearch source's settings.
    pub fn es_config(&self) -> Result<EsConfig, PipelineError> {
        let cfg = |m: String| PipelineError::Config(m);
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
        let index = self
            .es_index
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or_else(|| cfg("--source-type elasticsearch needs --es-index NAME".into()))?;
        let query = match self.es_query.as_deref() {
            None => serde_json::json!({"match_all": {}}),
            Some(q) => {
                let text = match q.strip_prefix('@') {
                    Some(path) => std::fs::read_to_string(path)
                        .map_err(|e| cfg(format!("--es-query @{path}: {e}")))?,
                    None => q.to_string(),
                };
                let v: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| cfg(format!("--es-query is not valid JSON: {e}")))?;
                match v {
                    serde_json::Value::Object(mut m) if m.contains_key("query") => {
                        m.remove("query").expect("checked")
                    }
                    serde_json::Value::Object(_) => v,
                    _ => return Err(cfg("--es-query must be a JSON object".into())),
                }
            }
        };
        if self.es_page_size == 0 || self.es_page_size > 10_000 {
            return Err(cfg("--es-page-size must be between 1 and 10000".into()));
        }
        if self.es_slices == 0 || self.es_slices > 1024 {
            return Err(cfg("--es-slices must be between 1 and 1024".into()));
        }
        if let Some(id) = self.es_slice_id {
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
        }
        let pit_id = self.es_pit_id.clone().filter(|p| !p.trim().is_empty());
        if pit_id.is_some() && self.es_mode == crate::config::EsMode::Scroll {
            return Err(cfg(
                "--es-pit-id names a point in time; it cannot be paged with --es-mode scroll"
                    .into(),
            ));
        }
        let list = |s: &str| -> Vec<String> {
            s.split(',')
                .map(|f| f.trim().to_string())
                .filter(|f| !f.is_empty())
                .collect()
        };
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
        let meta_fields = list(&self.es_meta_fields);
        check_meta_fields(&meta_fields)?;
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
            keep_alive: ka.clone(),
            user: self.es_user.clone(),
            password: self
                .es_pass
                .clone()
                .filter(|p| !p.is_empty())
                .map(Secret::new),
            api_key: self
                .es_api_key
                .clone()
                .filter(|p| !p.is_empty())
                .map(Secret::new),
            ca_cert: self.es_ca_cert.clone(),
            insecure: self.es_insecure,
            compression: self.es_compression,
            since_field: self.es_since_field.clone(),
            since_missing: self.es_since_missing,
            state_file: self.sliced("--state-file", self.state_file.as_deref())?,
            retry: self.retry_policy()?,
            timeout: duration_flag("--es-timeout", &self.es_timeout)?,
        })
    }

    fn mysql_config(&self) -> Result<MysqlConfig, PipelineError> {
        let url = match &self.db_url {
            Some(u) => parse_db_url(u)?,
            None => DbUrl::default(),
        };
        let database = self.db_name.clone().or(url.db).ok_or_else(|| {
            PipelineError::Config(
                "--sink-type mysql needs the database: --db-name NAME (or the path of --db-url)"
                    .into(),
            )
        })?;
        let table = self.db_table.clone().ok_or_else(|| {
            PipelineError::Config("--sink-type mysql needs --db-table TABLE".into())
        })?;
        let ssl_mode = self.db_ssl_mode;
        if matches!(ssl_mode, SslMode::VerifyCa | SslMode::VerifyIdentity)
            && self.db_ssl_ca.is_none()
        {
            return Err(PipelineError::Config(
                "--db-ssl-mode verify-ca and verify-identity need --db-ssl-ca PATH".into(),
            ));
        }
        if let Some(ca) = &self.db_ssl_ca {
            if !ca.is_file() {
                return Err(PipelineError::Config(format!(
                    "--db-ssl-ca '{}' is not a readable file",
                    ca.display()
                )));
            }
        }
        let key: Vec<String> = self
            .db_key
            .as_deref()
            .map(|k| {
                k.split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if self.db_key.is_some() && key.is_empty() {
            return Err(PipelineError::Config(
                "--db-key needs at least one column name".into(),
            ));
        }
        if self.create_table && key.is_empty() && !self.no_key {
            return Err(PipelineError::Config(
                "--create-table needs --db-key COL[,COL] for the table's primary key: without a key, duplicates cannot be detected and a re-run inserts every row again; add --no-key to create it without one anyway".into(),
            ));
        }
        Ok(MysqlConfig {
            host: self
                .db_host
                .clone()
                .or(url.host)
                .unwrap_or_else(|| "127.0.0.1".into()),
            port: self.db_port.or(url.port).unwrap_or(3306),
            user: self
                .db_user
                .clone()
                .or(url.user)
                .unwrap_or_else(|| "root".into()),
            password_source: match (&self.db_pass, &url.pass) {
                (Some(p), _) if !p.is_empty() => "--db-pass or PIPELINE_DB_PASS",
                (_, Some(p)) if !p.is_empty() => "--db-url",
                _ => "nowhere: no password was given (--db-pass or PIPELINE_DB_PASS)",
            },
            password: self
                .db_pass
                .clone()
                .or(url.pass)
                .filter(|p| !p.is_empty())
                .map(Secret::new),
            database,
            table,
            ssl_mode,
            ssl_ca: self.db_ssl_ca.clone(),
            create_table: self.create_table,
            create_table_sample: self.create_table_sample.unwrap_or(match self.source_type {
                // A file can be read twice: all of it.
                SourceType::Csv | SourceType::Jsonl => 0,
                SourceType::Elasticsearch => crate::config::DEFAULT_CREATE_TABLE_SAMPLE,
            }),
            key,
            on_duplicate: self.on_duplicate,
            load_mode: self.mysql_load_mode,
            strict_columns: self.strict_columns,
            add_columns: self.add_columns,
            ignore_fields: self
                .ignore_fields
                .as_deref()
                .map(|f| {
                    f.split(',')
                        .map(|c| c.trim().to_string())
                        .filter(|c| !c.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            no_key: self.no_key,
            retry: self.retry_policy()?,
            timeout: duration_flag("--db-timeout", &self.db_timeout)?,
        })
    }

    /// Refuses flags that the chosen source or sink would ignore.
    fn check_unused_flags(&self) -> Result<(), PipelineError> {
        let (source, source_flags): (&str, &[&str]) = match self.source_type {
            SourceType::Csv => ("csv", &["es_", "jsonl_"]),
            SourceType::Elasticsearch => ("elasticsearch", &["csv_", "jsonl_"]),
            SourceType::Jsonl => ("jsonl", &["csv_", "es_"]),
        };
        let sink_type = self.sink_type.expect("clap requires --sink-type");
        let (sink, sink_flags): (&str, &[&str]) = match sink_type {
            SinkType::File => (
                "file",
                &[
                    "db_",
                    "mysql_",
                    "on_duplicate",
                    "create_table",
                    "add_columns",
                    "ignore_fields",
                    "no_key",
                    "strict_columns",
                ],
            ),
            SinkType::Mysql => ("mysql", &["output_file", "output_compression"]),
        };
        for (kind, name, prefixes) in [("source", source, source_flags), ("sink", sink, sink_flags)]
        {
            let unused: Vec<String> = self
                .given
                .iter()
                .filter(|g| prefixes.iter().any(|p| g.starts_with(p)))
                .map(|g| format!("--{}", g.replace('_', "-")))
                .collect();
            if !unused.is_empty() {
                return Err(PipelineError::Config(format!(
                    "{} {} not used by --{kind}-type {name}; remove {} or choose the {kind} {} belong{} to",
                    unused.join(", "),
                    if unused.len() == 1 { "is" } else { "are" },
                    if unused.len() == 1 { "it" } else { "them" },
                    if unused.len() == 1 { "it" } else { "they" },
                    if unused.len() == 1 { "s" } else { "" },
                )));
            }
        }
        Ok(())
    }

    /// Checks the flags against each other and builds the run's [`Config`].
    pub fn into_config(self) -> Result<Config, PipelineError> {
        self.check_unused_flags()?;
        let mut notes = Vec::new();
        let source = match self.source_type {
            SourceType::Elasticsearch => SourceConfig::Elasticsearch(Box::new(self.es_config()?)),
            SourceType::Jsonl => {
                let (input, list) = inputs(
                    "jsonl",
                    "--jsonl-file",
                    &self.jsonl_file,
                    self.shard()?,
                    &mut notes,
                )?;
                SourceConfig::Jsonl(JsonlConfig {
                    input,
                    list,
                    max_line_bytes: positive_u64(
                        "--jsonl-max-line-bytes",
                        self.jsonl_max_line_bytes,
                    )?,
                })
            }
            SourceType::Csv => {
                let (input, list) = inputs(
                    "csv",
                    "--csv-file",
                    &self.csv_file,
                    self.shard()?,
                    &mut notes,
                )?;
                SourceConfig::Csv(CsvConfig {
                    input,
                    list,
                    delimiter: parse_delimiter(&self.csv_delimiter)?,
                    has_header: !self.csv_no_header,
                    infer_types: self.csv_infer_types,
                    max_field_bytes: crate::retry::parse_size(&self.csv_max_field_bytes)
                        .map_err(|e| PipelineError::Config(format!("--csv-max-field-bytes: {e}")))
                        .and_then(|n| positive_u64("--csv-max-field-bytes", n))?,
                    max_field_lines: positive_u64(
                        "--csv-max-field-lines",
                        self.csv_max_field_lines,
                    )?,
                    threads: match self.csv_threads {
                        Some(0) => {
                            return Err(PipelineError::Config(
                                "--csv-threads must be at least 1".into(),
                            ))
                        }
                        n => n,
                    },
                })
            }
        };
        let sink = match self.sink_type.expect("clap requires --sink-type") {
            SinkType::Mysql => SinkConfig::Mysql(Box::new(self.mysql_config()?)),
            SinkType::File => {
                let file = self.output_file.clone().ok_or_else(|| {
                    PipelineError::Config(
                        "--sink-type file needs --output-file PATH (or `-` for standard output)"
                            .into(),
                    )
                })?;
                let output = if file == "-" {
                    OutputPath::Stdout
                } else {
                    OutputPath::File(
                        self.sliced("--output-file", Some(Path::new(&file)))?
                            .expect("a path"),
                    )
                };
                let compression = match (self.output_compression, &output) {
                    (OutputCompressionFlag::Auto, OutputPath::File(p)) => {
                        OutputCompression::from_name(p)
                    }
                    (OutputCompressionFlag::Auto | OutputCompressionFlag::None, _) => None,
                    (OutputCompressionFlag::Gzip, _) => Some(OutputCompression::Gzip),
                    (OutputCompressionFlag::Zstd, _) => Some(OutputCompression::Zstd),
                };
                SinkConfig::File(FileSinkConfig {
                    output,
                    compression,
                })
            }
        };
        let mut config = Config::new(source, sink);
        config.notes = notes;
        if let Some(n) = self.batch_size {
            config.batch_size = positive("--batch-size", n)?;
        }
        config.batch_timeout = Duration::from_millis(self.batch_timeout_ms.max(1));
        config.queue_size = positive("--queue-size", self.queue_size)?;
        if let Some(w) = self.workers {
            config.workers = positive("--workers", w)?;
        }
        if self.max_errors == Some(0) {
            return Err(PipelineError::Config(
                "--max-errors must be at least 1 (leave it out to never stop on errors)".into(),
            ));
        }
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
        config.retry = self.retry_policy()?;
        config.dead_letter = self.sliced("--dead-letter", self.dead_letter.as_deref())?;
        config.max_errors = self.max_errors;
        config.accept_errors = match &self.accept_errors {
            Some(text) => Some(
                crate::config::ErrorAllowance::parse(text)
                    .map_err(|e| PipelineError::Config(format!("--accept-errors: {e}")))?,
            ),
            None => None,
        };
        config.limit = self.limit;
        config.metrics = MetricsConfig {
            port: self.metrics_port,
            host: self.metrics_host.clone(),
            keep_alive: self.metrics_keep_alive,
        };
        config.pipeline_id = self.pipeline_id.clone();
        config.log_format = self.log_format;
        config.quiet = self.quiet;
        config.check = self.check;
        config.summary_json = match self.summary_json.as_deref() {
            Some(p) if p.as_os_str() == "-" => Some(OutputPath::Stdout),
            Some(p) => Some(OutputPath::File(
                self.sliced("--summary-json", Some(p))?.expect("a path"),
            )),
            None => None,
        };
        if config.summary_json == Some(OutputPath::Stdout)
            && matches!(&config.sink, SinkConfig::File(f) if f.output == OutputPath::Stdout)
        {
            return Err(PipelineError::Config(
                "--summary-json - and --output-file - would both write to standard output; give one of them a path".into(),
            ));
        }
        config.shutdown_timeout = Duration::from_secs(self.shutdown_timeout);
        let label_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        };
        if !label_ok(&config.pipeline_id) {
            return Err(PipelineError::Config(
                "--pipeline-id may hold only letters, digits, '_', '-', '.' and ':'".into(),
            ));
        }
        if let Some(raw) = &self.pushgateway_url {
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
                        "--pushgateway-url '{}' is not an http(s) URL",
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
            config.push = Some(PushConfig {
                url,
                job: self.push_job.clone(),
                interval: self.push_interval.map(Duration::from_secs),
                required: self.push_required,
                timeout: duration_flag("--push-timeout", &self.push_timeout)?,
            });
        } else if self.push_interval.is_some() || self.push_required {
            return Err(PipelineError::Config(
                "--push-interval and --push-required need --pushgateway-url URL".into(),
            ));
        }
        config.textfile = self.sliced("--metrics-textfile", self.metrics_textfile.as_deref())?;
        config.lock_file = self.sliced("--lock-file", self.lock_file.as_deref())?;
        config.slice = self.slice_id()?;
        Ok(config)
    }

    /// `--input-shard`, for a file source (refused for Elasticsearch).
    fn shard(&self) -> Result<Option<(u32, u32)>, PipelineError> {
        match (&self.input_shard, self.source_type) {
            (None, _) => Ok(None),
            (Some(_), SourceType::Elasticsearch) => Err(PipelineError::Config(
                "--input-shard splits input files; an Elasticsearch read is split with --es-slices N --es-slice-id I".into(),
            )),
            (Some(text), _) => parse_shard(text).map(Some),
        }
    }

    /// The slice this process reads and the count: `--es-slice-id` of
    /// `--es-slices`, or `--input-shard I/N`.
    fn slice_id(&self) -> Result<Option<(u32, u32)>, PipelineError> {
        Ok(match self.source_type {
            SourceType::Elasticsearch => self.es_slice_id.map(|i| (i, self.es_slices)),
            _ => self.shard()?,
        })
    }

    /// `--es-open-pit`: only the Elasticsearch settings and how to log
    /// matter (there is no sink).
    pub fn open_pit_config(&self) -> Result<Config, PipelineError> {
        if self.source_type != SourceType::Elasticsearch {
            return Err(PipelineError::Config(
                "--es-open-pit needs --source-type elasticsearch".into(),
            ));
        }
        if self.es_pit_id.is_some() {
            return Err(PipelineError::Config(
                "--es-open-pit opens a point in time; --es-pit-id names one already open: give one of them".into(),
            ));
        }
        let mut config = Config::new(
            SourceConfig::Elasticsearch(Box::new(self.es_config()?)),
            SinkConfig::File(FileSinkConfig {
                output: OutputPath::Stdout,
                compression: None,
            }),
        );
        config.log_format = self.log_format;
        config.quiet = self.quiet;
        config.pipeline_id = self.pipeline_id.clone();
        Ok(config)
    }

    /// `path` with `{slice}` replaced by the slice this process reads; a
    /// `{slice}` without --es-slice-id is a mistake.
    fn sliced(&self, flag: &str, path: Option<&Path>) -> Result<Option<PathBuf>, PipelineError> {
        let Some(path) = path else {
            return Ok(None);
        };
        let text = path.to_string_lossy();
        if !text.contains("{slice}") {
            return Ok(Some(path.to_path_buf()));
        }
        match self.slice_id()? {
            Some((id, _)) => Ok(Some(PathBuf::from(text.replace("{slice}", &id.to_string())))),
            None => Err(PipelineError::Config(format!(
                "{flag} '{text}' contains {{slice}} but neither --es-slice-id nor --input-shard says which slice this process reads"
            ))),
        }
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
