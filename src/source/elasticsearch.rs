//! The Elasticsearch / OpenSearch source. It asks the server what it is, then
//! pages through the index with a point in time + search_after (sorted by
//! `_shard_doc`; OpenSearch's own PIT API on OpenSearch) or with the scroll
//! API, optionally in parallel slices, each feeding the channel. Every
//! document is read exactly once: the number read is checked at the end
//! against the total the server reported for the point in time or scroll, and
//! the point in time or scroll is always released. Passing failures (429,
//! 502-504, connection errors) are retried with backoff, honouring Retry-After.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::headers::HeaderMap;
use elasticsearch::http::request::JsonBody;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::Method;
use elasticsearch::Elasticsearch;
use serde_json::{json, Value as Json};

use crate::config::{EsConfig, EsMode};
use crate::error::{ErrorType, PipelineError, Stage};
use crate::metrics::Metrics;
use crate::pipeline::{runtime, Context, RecordSender};
use crate::record::{Record, Schema, Value};

use super::Source;

/// How the index is paged through, once the server is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paging {
    /// Elasticsearch's point in time (`/_pit`).
    EsPit,
    /// OpenSearch's point in time (`/_search/point_in_time`).
    OsPit,
    /// The scroll API.
    Scroll,
}

/// Why a request failed, after any retries.
#[derive(Debug)]
enum EsError {
    /// 401 / 403.
    Auth(String),
    /// 404 index_not_found.
    Missing(String),
    /// 404 search_context_missing: the point in time or scroll expired.
    Expired(String),
    /// The server could not be reached, or kept answering 429/5xx.
    Unavailable(String),
    /// Anything else the server refused.
    Refused(String),
}

impl EsError {
    fn error_type(&self) -> ErrorType {
        match self {
            EsError::Auth(_) => ErrorType::Auth,
            EsError::Missing(_) => ErrorType::Config,
            EsError::Expired(_) => ErrorType::Timeout,
            EsError::Unavailable(_) => ErrorType::Connection,
            EsError::Refused(_) => ErrorType::Server,
        }
    }

    fn message(&self) -> &str {
        match self {
            EsError::Auth(m)
            | EsError::Missing(m)
            | EsError::Expired(m)
            | EsError::Unavailable(m)
            | EsError::Refused(m) => m,
        }
    }
}

/// The server's error type and reason from an error body.
fn error_reason(body: &Json) -> (String, String) {
    let err = &body["error"];
    let root = &err["root_cause"][0];
    let kind = root["type"]
        .as_str()
        .or_else(|| err["type"].as_str())
        .unwrap_or("")
        .to_string();
    let reason = root["reason"]
        .as_str()
        .or_else(|| err["reason"].as_str())
        .or_else(|| err.as_str())
        .unwrap_or("")
        .to_string();
    (kind, reason)
}

/// A connection to one or more nodes, with retries.
struct Client {
    nodes: Vec<(Elasticsearch, String)>,
    next: AtomicUsize,
    max_retries: u32,
}

impl Client {
    fn new(cfg: &EsConfig) -> Result<Client, PipelineError> {
        let mut nodes = Vec::new();
        for url in &cfg.urls {
            let mut shown = url.clone();
            let _ = shown.set_password(None);
            let _ = shown.set_username("");
            let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url.clone()))
                .disable_proxy()
                .timeout(Duration::from_secs(120));
            if let Some(key) = &cfg.api_key {
                builder = builder.auth(Credentials::EncodedApiKey(key.expose().to_string()));
            } else if let Some(user) = &cfg.user {
                let pass = cfg
                    .password
                    .as_ref()
                    .map(|p| p.expose().to_string())
                    .unwrap_or_default();
                builder = builder.auth(Credentials::Basic(user.clone(), pass));
            }
            if cfg.insecure {
                builder = builder.cert_validation(CertificateValidation::None);
            } else if let Some(ca) = &cfg.ca_cert {
                let pem = std::fs::read(ca).map_err(|e| {
                    PipelineError::Config(format!("--es-ca-cert '{}': {e}", ca.display()))
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| {
                    PipelineError::Config(format!(
                        "--es-ca-cert '{}' is not a PEM certificate: {e}",
                        ca.display()
                    ))
                })?;
                builder = builder.cert_validation(CertificateValidation::Full(cert));
            }
            let transport = builder.build().map_err(|e| {
                PipelineError::Config(format!("cannot set up the client for {shown}: {e}"))
            })?;
            nodes.push((Elasticsearch::new(transport), shown.to_string()));
        }
        Ok(Client {
            nodes,
            next: AtomicUsize::new(0),
            max_retries: cfg.retry.max_retries.unwrap_or(5),
        })
    }

    /// One request, retried on connection errors, 429 and 502/503/504 with
    /// exponential backoff (or the server's Retry-After). Returns the JSON
    /// body and its size in bytes.
    async fn request(
        &self,
        metrics: Option<&Metrics>,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Json>,
    ) -> Result<(Json, u64), EsError> {
        let mut attempt = 0u32;
        loop {
            let n = self.next.load(Ordering::Relaxed) % self.nodes.len();
            let (client, shown) = &self.nodes[n];
            let started = Instant::now();
            let sent = client
                .send(
                    method,
                    path,
                    HeaderMap::new(),
                    Some(query),
                    body.clone().map(JsonBody::new),
                    None,
                )
                .await;
            let (retry_after, why, error_type) = match sent {
                Err(e) => {
                    // Try the next node, if there is one.
                    self.next.fetch_add(1, Ordering::Relaxed);
                    let et = if e.is_timeout() {
                        ErrorType::Timeout
                    } else {
                        ErrorType::Connection
                    };
                    (None, format!("cannot reach {shown}: {e}"), et)
                }
                Ok(resp) => {
                    let status = resp.status_code().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let bytes = match resp.bytes().await {
                        Ok(b) => b,
                        Err(e) => {
                            self.next.fetch_add(1, Ordering::Relaxed);
                            return_or_retry(
                                metrics,
                                &mut attempt,
                                self.max_retries,
                                None,
                                format!("reading the answer from {shown}: {e}"),
                                ErrorType::Connection,
                            )
                            .await?;
                            continue;
                        }
                    };
                    if let Some(m) = metrics {
                        m.fetch_observed(started.elapsed());
                        m.source_bytes(bytes.len() as u64);
                    }
                    let json: Json = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
                    match status {
                        200..=299 => return Ok((json, bytes.len() as u64)),
                        401 | 403 => {
                            return Err(EsError::Auth(format!(
                                "{shown} refused the credentials (HTTP {status}); check --es-user and PIPELINE_ES_PASS, or PIPELINE_ES_API_KEY"
                            )))
                        }
                        429 | 502 | 503 | 504 => (
                            retry_after,
                            format!("{shown} answered HTTP {status}"),
                            ErrorType::Server,
                        ),
                        404 => {
                            let (kind, reason) = error_reason(&json);
                            return Err(match kind.as_str() {
                                "index_not_found_exception" => EsError::Missing(reason),
                                "search_context_missing_exception" => EsError::Expired(reason),
                                _ => EsError::Refused(format!("HTTP 404 {kind}: {reason}")),
                            });
                        }
                        _ => {
                            let (kind, reason) = error_reason(&json);
                            if reason.contains("No search context found") {
                                return Err(EsError::Expired(reason));
                            }
                            return Err(EsError::Refused(format!("HTTP {status} {kind}: {reason}")));
                        }
                    }
                }
            };
            return_or_retry(
                metrics,
                &mut attempt,
                self.max_retries,
                retry_after,
                why,
                error_type,
            )
            .await?;
        }
    }
}

/// Waits before the next attempt, or gives up once `max` retries are used.
async fn return_or_retry(
    metrics: Option<&Metrics>,
    attempt: &mut u32,
    max: u32,
    retry_after: Option<Duration>,
    why: String,
    error_type: ErrorType,
) -> Result<(), EsError> {
    if let Some(m) = metrics {
        m.error(Stage::Source, error_type, 1);
    }
    if *attempt >= max {
        return Err(EsError::Unavailable(format!(
            "{why} (gave up after {max} retries, --max-retries)"
        )));
    }
    *attempt += 1;
    let backoff = retry_after
        .unwrap_or_else(|| Duration::from_millis(200 << (*attempt).min(6)))
        .min(Duration::from_secs(60));
    tracing::warn!("{why}; retry {}/{max} in {backoff:?}", *attempt);
    if let Some(m) = metrics {
        m.retried(Stage::Source);
    }
    tokio::time::sleep(backoff).await;
    Ok(())
}

/// `--es-since-field` with its saved value.
struct Since {
    field: String,
    path: std::path::PathBuf,
    previous: Option<Json>,
    seen: Mutex<Option<Json>>,
}

/// JSON numbers compare as numbers, strings (ISO dates) as strings.
fn greater(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() > y.as_f64(),
        (Json::String(x), Json::String(y)) => x > y,
        _ => false,
    }
}

fn field_at<'a>(source: &'a Json, dotted: &str) -> Option<&'a Json> {
    if let Some(v) = source.get(dotted) {
        return Some(v);
    }
    dotted.split('.').try_fold(source, |v, part| v.get(part))
}

/// An opened Elasticsearch/OpenSearch index.
pub struct EsSource {
    cfg: EsConfig,
    client: Arc<Client>,
    paging: Paging,
    query: Json,
    count: u64,
    limit: Option<u64>,
    since: Option<Since>,
    server: String,
    /// `--limit` cut the read short.
    limited: bool,
}

fn open_error(cfg: &EsConfig, e: EsError) -> PipelineError {
    match e {
        EsError::Missing(_) => {
            PipelineError::Config(format!("index '{}' does not exist (--es-index)", cfg.index))
        }
        other => PipelineError::Config(format!(
            "cannot read from Elasticsearch: {}",
            other.message()
        )),
    }
}

fn version_at_least(number: &str, major: u64, minor: u64) -> bool {
    let mut parts = number.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (ma, mi) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}

impl EsSource {
    /// Asks the server what it is, checks the index and counts the matching
    /// documents. A missing index, bad credentials or an unreachable server
    /// are reported here, before anything is read.
    pub fn open(cfg: &EsConfig, limit: Option<u64>) -> Result<EsSource, PipelineError> {
        let client = Arc::new(Client::new(cfg)?);
        let since = match (&cfg.since_field, &cfg.state_file) {
            (Some(field), Some(path)) => Some(Since {
                field: field.clone(),
                path: path.clone(),
                previous: read_state(path, field)?,
                seen: Mutex::new(None),
            }),
            _ => None,
        };
        let mut query = cfg.query.clone();
        if let Some(s) = &since {
            if let Some(prev) = &s.previous {
                query = json!({"bool": {"filter": [query, {"range": {s.field.clone(): {"gt": prev}}}]}});
            }
        }
        let (info, count) = runtime().block_on(async {
            let (info, _) = client
                .request(None, Method::Get, "/", &[], None)
                .await
                .map_err(|e| open_error(cfg, e))?;
            let path = format!("/{}/_count", cfg.index);
            let (count, _) = client
                .request(
                    None,
                    Method::Post,
                    &path,
                    &[],
                    Some(json!({"query": query})),
                )
                .await
                .map_err(|e| open_error(cfg, e))?;
            Ok::<_, PipelineError>((info, count["count"].as_u64().unwrap_or(0)))
        })?;
        let number = info["version"]["number"]
            .as_str()
            .unwrap_or("0")
            .to_string();
        let opensearch = info["version"]["distribution"].as_str() == Some("opensearch");
        let pit = if opensearch {
            version_at_least(&number, 2, 4).then_some(Paging::OsPit)
        } else {
            version_at_least(&number, 7, 10).then_some(Paging::EsPit)
        };
        let paging = match (cfg.mode, pit) {
            (EsMode::Scroll, _) | (EsMode::Auto, None) => Paging::Scroll,
            (_, Some(p)) => p,
            (EsMode::Pit, None) => {
                return Err(PipelineError::Config(format!(
                    "--es-mode pit: this server ({} {number}) has no point in time API; use --es-mode scroll or auto",
                    if opensearch { "OpenSearch" } else { "Elasticsearch" }
                )))
            }
        };
        let server = format!(
            "{} {number}",
            if opensearch {
                "OpenSearch"
            } else {
                "Elasticsearch"
            }
        );
        tracing::info!(
            "{server}: index {} holds {count} matching documents; paging with {}",
            cfg.index,
            match paging {
                Paging::EsPit | Paging::OsPit => "point in time + search_after",
                Paging::Scroll => "scroll",
            }
        );
        Ok(EsSource {
            cfg: cfg.clone(),
            client,
            paging,
            query,
            count,
            limit,
            since,
            server,
            limited: false,
        })
    }

    fn page_body(&self, slice: u32, first: bool) -> Json {
        let mut body = json!({
            "size": self.cfg.page_size,
            "query": self.query,
            "track_total_hits": first,
        });
        if let Some(fields) = &self.cfg.fields {
            let mut includes = fields.clone();
            if let Some(s) = &self.since {
                if !includes.contains(&s.field) {
                    includes.push(s.field.clone());
                }
            }
            body["_source"] = json!({"includes": includes});
        }
        if self.cfg.slices > 1 {
            body["slice"] = json!({"id": slice, "max": self.cfg.slices});
        }
        body
    }

    /// Opens the point in time. Not a page: it is not timed as a fetch.
    async fn open_pit(&self) -> Result<String, EsError> {
        let (path, id_key) = match self.paging {
            Paging::EsPit => (format!("/{}/_pit", self.cfg.index), "id"),
            _ => (
                format!("/{}/_search/point_in_time", self.cfg.index),
                "pit_id",
            ),
        };
        let keep_alive = [("keep_alive", self.cfg.keep_alive.as_str())];
        let (r, _) = self
            .client
            .request(None, Method::Post, &path, &keep_alive, None)
            .await?;
        r[id_key]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| EsError::Refused("the server did not return a point in time id".into()))
    }

    async fn close_pit(&self, id: &str) {
        let result = match self.paging {
            Paging::EsPit => {
                self.client
                    .request(None, Method::Delete, "/_pit", &[], Some(json!({"id": id})))
                    .await
            }
            _ => {
                self.client
                    .request(
                        None,
                        Method::Delete,
                        "/_search/point_in_time",
                        &[],
                        Some(json!({"pit_id": [id]})),
                    )
                    .await
            }
        };
        match result {
            Ok(_) => tracing::debug!("closed point in time {id}"),
            Err(e) => tracing::warn!("could not close the point in time: {}", e.message()),
        }
    }

    async fn clear_scrolls(&self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        match self
            .client
            .request(
                None,
                Method::Delete,
                "/_search/scroll",
                &[],
                Some(json!({"scroll_id": ids})),
            )
            .await
        {
            Ok(_) => tracing::debug!("cleared scrolls {}", ids.join(",")),
            Err(e) => tracing::warn!("could not clear the scroll: {}", e.message()),
        }
    }

    /// Reads one slice to its end (or until told to stop). Returns the total
    /// the server reported for the slice.
    fn read_slice(
        &self,
        slice: u32,
        pit: Option<&str>,
        out: &RecordSender,
        ctx: &Context,
        shared: &SliceShared,
    ) -> Result<u64, EsError> {
        let _active = ctx.metrics.worker_active(Stage::Source);
        let rt = runtime();
        let mut pit_id = pit.map(str::to_string);
        let mut search_after: Option<Json> = None;
        let mut scroll_id: Option<String> = None;
        let mut total = 0u64;
        let mut first = true;
        let mut schemas = SchemaCache::default();
        let mut chunk: Vec<Record> = Vec::new();
        let mut since_max: Option<Json> = None;
        let result = loop {
            if ctx.should_stop_reading() || shared.failed.load(Ordering::Relaxed) > 0 {
                break Ok(total);
            }
            let page = rt.block_on(async {
                match (&pit_id, &scroll_id) {
                    (Some(id), _) => {
                        let mut body = self.page_body(slice, first);
                        body["pit"] = json!({"id": id, "keep_alive": self.cfg.keep_alive});
                        body["sort"] = json!([{"_shard_doc": "asc"}]);
                        if let Some(after) = &search_after {
                            body["search_after"] = after.clone();
                        }
                        self.client
                            .request(
                                Some(&ctx.metrics),
                                Method::Post,
                                "/_search",
                                &[],
                                Some(body),
                            )
                            .await
                    }
                    (None, Some(sid)) => {
                        let body = json!({"scroll": self.cfg.keep_alive, "scroll_id": sid});
                        self.client
                            .request(
                                Some(&ctx.metrics),
                                Method::Post,
                                "/_search/scroll",
                                &[],
                                Some(body),
                            )
                            .await
                    }
                    (None, None) => {
                        let mut body = self.page_body(slice, true);
                        body["sort"] = json!(["_doc"]);
                        let path = format!("/{}/_search", self.cfg.index);
                        self.client
                            .request(
                                Some(&ctx.metrics),
                                Method::Post,
                                &path,
                                &[("scroll", self.cfg.keep_alive.as_str())],
                                Some(body),
                            )
                            .await
                    }
                }
            });
            let (page, _) = match page {
                Ok(p) => p,
                Err(e) => {
                    // The run fails: the other slices stop too.
                    shared.failed.store(1, Ordering::Relaxed);
                    break Err(e);
                }
            };
            if page["_shards"]["failed"].as_u64().unwrap_or(0) > 0 {
                let (kind, reason) =
                    error_reason(&json!({"error": page["_shards"]["failures"][0]["reason"]}));
                if kind == "search_context_missing_exception" {
                    break Err(EsError::Expired(reason));
                }
                break Err(EsError::Refused(format!(
                    "some shards failed ({kind}: {reason}); the page would be incomplete"
                )));
            }
            if let Some(id) = page["pit_id"].as_str() {
                pit_id = Some(id.to_string());
            }
            if let Some(id) = page["_scroll_id"].as_str() {
                if scroll_id.as_deref() != Some(id) {
                    shared
                        .scrolls
                        .lock()
                        .expect("scroll ids")
                        .push(id.to_string());
                }
                scroll_id = Some(id.to_string());
            }
            if first {
                total = page["hits"]["total"]["value"]
                    .as_u64()
                    .or_else(|| page["hits"]["total"].as_u64())
                    .unwrap_or(0);
                first = false;
            }
            let hits = match page["hits"]["hits"].as_array() {
                Some(h) if !h.is_empty() => h,
                _ => break Ok(total),
            };
            search_after = hits.last().map(|h| h["sort"].clone());
            let mut stop_after = false;
            for hit in hits {
                if let Some(limit) = self.limit {
                    if shared.taken.fetch_add(1, Ordering::SeqCst) >= limit {
                        stop_after = true;
                        break;
                    }
                }
                if let Some(s) = &self.since {
                    if let Some(v) = field_at(&hit["_source"], &s.field) {
                        if since_max.as_ref().is_none_or(|m| greater(v, m)) {
                            since_max = Some(v.clone());
                        }
                    }
                }
                let position = shared.position.fetch_add(1, Ordering::Relaxed) + 1;
                chunk.push(schemas.record(hit, &self.cfg.meta_fields, position));
            }
            ctx.metrics.records_read(chunk.len() as u64);
            let read =
                shared.read.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
            out.send_all(&mut chunk, ctx);
            ctx.progress(0, read);
            if stop_after {
                shared.limited.store(1, Ordering::Relaxed);
                break Ok(total);
            }
        };
        if let (Some(s), Some(v)) = (&self.since, since_max) {
            let mut seen = s.seen.lock().expect("since lock");
            if seen.as_ref().is_none_or(|m| greater(&v, m)) {
                *seen = Some(v);
            }
        }
        if let Some(id) = pit_id {
            *shared.last_pit.lock().expect("pit id") = Some(id);
        }
        result
    }
}

/// What the slices of one run share.
#[derive(Default)]
struct SliceShared {
    position: AtomicU64,
    read: AtomicU64,
    taken: AtomicU64,
    limited: AtomicU64,
    failed: AtomicU64,
    scrolls: Mutex<Vec<String>>,
    last_pit: Mutex<Option<String>>,
}

/// Reuses one schema for consecutive documents with the same fields.
#[derive(Default)]
struct SchemaCache {
    last: Option<Arc<Schema>>,
    by_keys: HashMap<Vec<String>, Arc<Schema>>,
}

/// A JSON value as a record value: strings, numbers, booleans and null as
/// themselves; objects and arrays stay JSON.
fn to_value(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::String(s) => Value::Str(s.clone()),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None if n.is_u64() => Value::Decimal(n.to_string()),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        other => Value::Json(other.clone()),
    }
}

impl SchemaCache {
    fn record(&mut self, hit: &Json, meta: &[String], position: u64) -> Record {
        let source = hit["_source"].as_object();
        let mut names: Vec<&str> = Vec::with_capacity(meta.len() + source.map_or(0, |s| s.len()));
        let mut values = Vec::with_capacity(names.capacity());
        for m in meta {
            names.push(m);
            values.push(to_value(&hit[m.as_str()]));
        }
        if let Some(src) = source {
            for (k, v) in src {
                if meta.iter().any(|m| m == k) {
                    continue;
                }
                names.push(k);
                values.push(to_value(v));
            }
        }
        let schema = match &self.last {
            Some(s)
                if s.names()
                    .iter()
                    .map(String::as_str)
                    .eq(names.iter().copied()) =>
            {
                s.clone()
            }
            _ => {
                let key: Vec<String> = names.iter().map(|s| s.to_string()).collect();
                if self.by_keys.len() > 4096 {
                    self.by_keys.clear();
                }
                let s = self
                    .by_keys
                    .entry(key.clone())
                    .or_insert_with(|| Arc::new(Schema::new(key)))
                    .clone();
                self.last = Some(s.clone());
                s
            }
        };
        Record {
            schema,
            values,
            position,
        }
    }
}

fn read_state(path: &Path, field: &str) -> Result<Option<Json>, PipelineError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(PipelineError::OpenInput {
                what: "--state-file",
                path: path.to_path_buf(),
                source: e,
            })
        }
    };
    let state: Json = serde_json::from_str(&text).map_err(|e| {
        PipelineError::Config(format!(
            "--state-file '{}' is not valid JSON: {e}",
            path.display()
        ))
    })?;
    if state["field"].as_str() != Some(field) {
        return Err(PipelineError::Config(format!(
            "--state-file '{}' holds the position of field '{}', not '{field}'; use another file",
            path.display(),
            state["field"].as_str().unwrap_or("?")
        )));
    }
    Ok(Some(state["since"].clone()).filter(|v| !v.is_null()))
}

/// Writes the state file atomically (temporary file, fsync, rename).
fn write_state(path: &Path, field: &str, since: &Json) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let body = json!({"field": field, "since": since, "saved_at": crate::metrics::unix_now()});
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(serde_json::to_string_pretty(&body)?.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

impl Source for EsSource {
    fn size_hint(&self) -> Option<u64> {
        None
    }

    fn fields(&self) -> Option<Vec<String>> {
        None
    }

    fn run(&mut self, out: &RecordSender, ctx: &Context) -> Result<(), PipelineError> {
        let total_hint = self.limit.map_or(self.count, |l| l.min(self.count));
        ctx.progress_total_records(total_hint);
        let rt = runtime();
        let pit = match self.paging {
            Paging::EsPit | Paging::OsPit => Some(
                rt.block_on(self.open_pit())
                    .map_err(|e| self.run_error(e, &ctx.metrics))?,
            ),
            Paging::Scroll => None,
        };
        if let Some(id) = &pit {
            tracing::debug!("opened point in time {id}");
        }
        let shared = SliceShared::default();
        let results: Vec<Result<u64, EsError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..self.cfg.slices)
                .map(|slice| {
                    let shared = &shared;
                    let pit = pit.as_deref();
                    let this = &*self;
                    std::thread::Builder::new()
                        .name(format!("es-slice-{slice}"))
                        .spawn_scoped(scope, move || this.read_slice(slice, pit, out, ctx, shared))
                        .expect("spawn a slice reader")
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("slice reader panicked"))
                .collect()
        });
        // Always release what the server holds for us.
        let last_pit = shared.last_pit.lock().expect("pit id").take().or(pit);
        if let Some(id) = last_pit {
            rt.block_on(self.close_pit(&id));
        }
        let scrolls = std::mem::take(&mut *shared.scrolls.lock().expect("scroll ids"));
        rt.block_on(self.clear_scrolls(scrolls));

        let mut expected = 0u64;
        for r in results {
            expected += r.map_err(|e| self.run_error(e, &ctx.metrics))?;
        }
        let read = shared.read.load(Ordering::Relaxed);
        self.limited = shared.limited.load(Ordering::Relaxed) > 0;
        let stopped = ctx.should_stop_reading() || shared.limited.load(Ordering::Relaxed) > 0;
        if !stopped && read != expected {
            return Err(PipelineError::Source(format!(
                "read {read} documents but {} reported {expected} matching documents when the {} opened; the export is incomplete or doubled",
                self.server,
                if self.paging == Paging::Scroll { "scroll" } else { "point in time" }
            )));
        }
        tracing::info!(
            "read {read} documents from {} (the server reported {expected})",
            self.cfg.index
        );
        Ok(())
    }

    fn commit(&mut self) -> Result<(), PipelineError> {
        let Some(s) = &self.since else {
            return Ok(());
        };
        if self.limited {
            // Documents are read in index order, not by the field: after a
            // --limit cut, some smaller values may still be unread.
            tracing::warn!(
                "--limit stopped the read early; {} is not saved, so the next run starts from the same place",
                s.path.display()
            );
            return Ok(());
        }
        let seen = s.seen.lock().expect("since lock").clone();
        let Some(max) = seen.or_else(|| s.previous.clone()) else {
            return Ok(());
        };
        write_state(&s.path, &s.field, &max).map_err(|e| {
            PipelineError::Source(format!(
                "cannot save --state-file '{}': {e}",
                s.path.display()
            ))
        })?;
        tracing::info!("saved {} > {max} to {}", s.field, s.path.display());
        Ok(())
    }
}

impl EsSource {
    /// The error that ends the run, counted in `errors_total{stage="source"}`.
    fn run_error(&self, e: EsError, metrics: &Metrics) -> PipelineError {
        // Failed attempts of passing errors were counted as they happened.
        if !matches!(e, EsError::Unavailable(_)) {
            metrics.error(Stage::Source, e.error_type(), 1);
        }
        match e {
            EsError::Expired(reason) => PipelineError::Source(format!(
                "the {} expired on the server ({reason}); pages came too slowly for --es-keep-alive {}: raise it",
                if self.paging == Paging::Scroll { "scroll" } else { "point in time" },
                self.cfg.keep_alive
            )),
            EsError::Auth(m) => PipelineError::Source(format!("authentication failed: {m}")),
            other => PipelineError::Source(other.message().to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_major_and_minor() {
        assert!(version_at_least("8.15.3", 7, 10));
        assert!(version_at_least("7.10.0", 7, 10));
        assert!(!version_at_least("7.9.3", 7, 10));
        assert!(version_at_least("2.4.0", 2, 4));
        assert!(!version_at_least("1.3.2", 2, 4));
    }

    #[test]
    fn hits_become_records_with_metadata_first() {
        let mut cache = SchemaCache::default();
        let hit = json!({"_id": "a", "_index": "i", "_source": {"n": 1, "o": {"k": [1]}, "s": null, "u": 18446744073709551615u64}});
        let r = cache.record(&hit, &["_id".to_string()], 7);
        assert_eq!(r.schema.names(), &["_id", "n", "o", "s", "u"]);
        assert_eq!(r.values[0], Value::Str("a".into()));
        assert_eq!(r.values[1], Value::Int(1));
        assert_eq!(r.values[2], Value::Json(json!({"k": [1]})));
        assert_eq!(r.values[3], Value::Null);
        assert_eq!(r.values[4], Value::Decimal("18446744073709551615".into()));
        let again = cache.record(&hit, &["_id".to_string()], 8);
        assert!(Arc::ptr_eq(&r.schema, &again.schema));
    }

    #[test]
    fn since_values_compare_by_kind() {
        assert!(greater(&json!(3), &json!(2.5)));
        assert!(greater(
            &json!("2026-01-02"),
            &json!("2026-01-01T23:00:00Z")
        ));
        assert!(!greater(&json!("a"), &json!(1)));
        let doc = json!({"a": {"b": 5}, "c.d": 6});
        assert_eq!(field_at(&doc, "a.b"), Some(&json!(5)));
        assert_eq!(field_at(&doc, "c.d"), Some(&json!(6)));
    }
}
