//! The Elasticsearch / OpenSearch source. It asks the server what it is, then
//! pages through the index with a point in time + search_after (sorted by
//! `_shard_doc`; OpenSearch's own PIT API on OpenSearch) or with the scroll
//! API, optionally in parallel slices, each feeding the channel.
//!
//! Every document is read exactly once, and that is checked: every page must
//! be a well-formed search response (a proxy's HTML page or a body cut short
//! is retried like a 5xx, never taken as the end of the index), and the
//! number read is compared at the end with a count taken independently of
//! the pages when the point in time or scroll opened. A stop cancels the
//! request in flight; the point in time or scroll is always released.

mod client;
mod cursor;
mod page;
mod since;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use elasticsearch::http::Method;
use serde_json::{json, Value as Json};

use crate::channel::RecordSender;
use crate::config::{EsConfig, EsMode};
use crate::context::Context;
use crate::error::{ErrorType, PipelineError, Stage};
use crate::metrics::Metrics;
use crate::record::Record;
use crate::retry::parse_duration;
use crate::runtime::runtime;

use super::json_object::SchemaCache;
use super::Source;
use client::{Call, Client, EsError};
use cursor::Cursor;
use since::{Mark, Since};

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

impl Paging {
    fn name(self) -> &'static str {
        match self {
            Paging::Scroll => "scroll",
            _ => "point in time",
        }
    }
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
    let (error_type, message) = match e {
        EsError::Missing(_) => (
            ErrorType::Config,
            format!("index '{}' does not exist (--es-index)", cfg.index),
        ),
        other => (
            other.error_type(),
            format!("cannot read from Elasticsearch: {}", other.message()),
        ),
    };
    PipelineError::Unavailable {
        stage: Stage::Source,
        error_type,
        message,
    }
}

fn version_at_least(number: &str, major: u64, minor: u64) -> bool {
    let mut parts = number.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (ma, mi) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}

/// The count of a `_count` answer or a `size: 0` search.
fn count_of(answer: &Json) -> u64 {
    answer["count"]
        .as_u64()
        .or_else(|| page::total_of(answer))
        .unwrap_or(0)
}

impl EsSource {
    /// Asks the server what it is, checks the index and counts the matching
    /// documents. A missing index, bad credentials or an unreachable server
    /// are reported here, before anything is read.
    pub fn open(
        cfg: &EsConfig,
        limit: Option<u64>,
        metrics: &Metrics,
    ) -> Result<EsSource, PipelineError> {
        if let (Some(user), None, None) = (&cfg.user, &cfg.password, &cfg.api_key) {
            tracing::warn!(
                "--es-user {user} is set but no password (--es-pass or PIPELINE_ES_PASS): requests carry user {user} with an empty password"
            );
        }
        let client = Arc::new(Client::new(cfg)?);
        let since = match (&cfg.since_field, &cfg.state_file) {
            (Some(field), Some(path)) => Some(Since::open(field, path)?),
            _ => None,
        };
        if let Some(v) = since
            .as_ref()
            .and_then(|s| s.previous.value.as_ref())
            .and_then(since::as_seconds)
        {
            metrics.watermark(v);
        }
        let query = match &since {
            Some(s) => s.narrow(cfg.query.clone()),
            None => cfg.query.clone(),
        };
        let (info, count) = runtime().block_on(async {
            let check_info = |j: &Json| {
                j["version"]["number"]
                    .as_str()
                    .map(|_| ())
                    .ok_or_else(|| "no version.number".to_string())
            };
            let mut call = Call::new(Method::Get, "/");
            call.check = Some(&check_info);
            call.retries = Some(metrics);
            let (info, _) = client.send(call).await.map_err(|e| open_error(cfg, e))?;
            let count = Self::count_matching(&client, &cfg.index, &query, Some(metrics))
                .await
                .map_err(|e| open_error(cfg, e))?;
            Ok::<_, PipelineError>((info, count))
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
        let product = if opensearch {
            "OpenSearch"
        } else {
            "Elasticsearch"
        };
        let paging = match (cfg.mode, pit) {
            (EsMode::Scroll, _) | (EsMode::Auto, None) => Paging::Scroll,
            (_, Some(p)) => p,
            (EsMode::Pit, None) => {
                return Err(PipelineError::Config(format!(
                    "--es-mode pit: this server ({product} {number}) has no point in time API; use --es-mode scroll or auto"
                )))
            }
        };
        let server = format!("{product} {number}");
        tracing::info!(
            "{server}: index {} holds {count} matching documents; paging with {}{}",
            cfg.index,
            match paging {
                Paging::EsPit | Paging::OsPit => "point in time + search_after",
                Paging::Scroll => "scroll",
            },
            match cfg.slice_id {
                Some(id) => format!("; this process reads slice {id} of {}", cfg.slices),
                None => String::new(),
            }
        );
        if cfg.pit_id.is_some() && paging == Paging::Scroll {
            return Err(PipelineError::Config(format!(
                "--es-pit-id: {server} has no point in time API; give each process its own slice with --es-slice-id and let it open its own scroll"
            )));
        }
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

    /// `--es-open-pit`: opens a point in time on the index for the
    /// processes of a sliced job to share (`--es-pit-id`), and returns its id.
    pub fn open_shared_pit(cfg: &EsConfig, metrics: &Metrics) -> Result<String, PipelineError> {
        let source = EsSource::open(cfg, None, metrics)?;
        if source.paging == Paging::Scroll {
            return Err(PipelineError::Config(format!(
                "--es-open-pit: {} is read with scroll here (--es-mode scroll, or a server without point in time), and a scroll cannot be shared between processes: give each process its own slice with --es-slice-id instead",
                source.server
            )));
        }
        let id = runtime()
            .block_on(source.open_pit())
            .map_err(|e| source.run_error(e, metrics, 0))?;
        tracing::info!(
            "opened a point in time on {} for --es-keep-alive {}: pass its id to every process with --es-pit-id (or PIPELINE_ES_PIT_ID)",
            cfg.index,
            cfg.keep_alive
        );
        Ok(id)
    }

    /// `_count` with the query.
    async fn count_matching(
        client: &Client,
        index: &str,
        query: &Json,
        retries: Option<&Metrics>,
    ) -> Result<u64, EsError> {
        let path = format!("/{index}/_count");
        let mut call = Call::new(Method::Post, &path);
        call.retries = retries;
        call.body = Some(json!({"query": query}));
        call.check = Some(&page::check_count);
        let (answer, _) = client.send(call).await?;
        Ok(count_of(&answer))
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
        self.add_slice(&mut body, slice);
        body
    }

    /// Asks for slice `slice` of `--es-slices` in a search body (nothing
    /// when the read is not sliced).
    pub(super) fn add_slice(&self, body: &mut Json, slice: u32) {
        if self.cfg.slices > 1 {
            body["slice"] = json!({"id": slice, "max": self.cfg.slices});
        }
    }

    /// This process reads one slice of several through a scroll: only the
    /// scroll's first page says how many documents the slice holds.
    fn scroll_slice(&self) -> bool {
        self.cfg.slice_id.is_some() && self.cfg.slices > 1 && self.paging == Paging::Scroll
    }

    /// Explains a lost point in time or scroll: expired (pages came too
    /// slowly) or lost (a node restarted) according to how long it was idle.
    fn context_gone(&self, reason: &str, idle: Duration) -> EsError {
        let what = self.paging.name();
        let ka = &self.cfg.keep_alive;
        let idle_s = format!("{:.1}s", idle.as_secs_f64());
        let msg = match parse_duration(ka) {
            Ok(limit) if idle < limit => format!(
                "the {what} was lost on the server ({reason}) only {idle_s} after the previous page, within --es-keep-alive {ka}: a node probably restarted or freed it; nothing after the last page written was read, run again"
            ),
            _ => format!(
                "the {what} expired on the server ({reason}): {idle_s} passed between two pages; pages came too slowly for --es-keep-alive {ka}: raise it"
            ),
        };
        EsError::Expired(msg)
    }

    /// Reads one slice to its end (or until told to stop).
    fn read_slice(
        &self,
        slice: u32,
        pit: Option<&str>,
        out: &RecordSender,
        ctx: &Context,
        shared: &SliceShared,
    ) -> SliceEnd {
        let mut scrolls = Vec::new();
        let mut limited = false;
        let _active = ctx.metrics.worker_active(Stage::Source);
        let rt = runtime();
        let mut cursor = match pit {
            Some(id) => Cursor::Pit {
                id: id.to_string(),
                after: None,
            },
            None => Cursor::ScrollStart,
        };
        let mut total = 0u64;
        let mut first = true;
        let mut schemas = SchemaCache::default();
        let mut chunk: Vec<Record> = Vec::new();
        let mut mark = Mark::default();
        let mut last_answer = Instant::now();
        let result = loop {
            if ctx.should_stop_reading() || shared.failed.load(Ordering::Relaxed) > 0 {
                break Ok(total);
            }
            let idle = last_answer.elapsed();
            let page = match rt.block_on(self.next_page(slice, &cursor, first, ctx)) {
                Ok(p) => p,
                Err(EsError::Stopped) => break Ok(total),
                Err(e) => {
                    // The run fails: the other slices stop too.
                    shared.failed.store(1, Ordering::Relaxed);
                    break Err(match e {
                        EsError::Expired(reason) => self.context_gone(&reason, idle),
                        other => other,
                    });
                }
            };
            last_answer = Instant::now();
            if let Some((kind, reason)) = &page.shard_failure {
                shared.failed.store(1, Ordering::Relaxed);
                if kind == "search_context_missing_exception" {
                    break Err(self.context_gone(reason, idle));
                }
                break Err(EsError::Refused(format!(
                    "some shards failed ({kind}: {reason}); the page would be incomplete"
                )));
            }
            if first {
                total = page.total.unwrap_or(0);
                first = false;
                if self.scroll_slice() {
                    ctx.progress_total_records(self.limit.map_or(total, |l| l.min(total)));
                }
            }
            if let Some(new_scroll) = cursor.advance(&page) {
                scrolls.push(new_scroll);
            }
            if page.len() == 0 {
                break Ok(total);
            }
            let mut stop_after = false;
            let mut members = Vec::new();
            let field = self.since.as_ref().map(|s| s.field.as_str());
            for i in 0..page.len() {
                if let Some(limit) = self.limit {
                    if shared.taken.fetch_add(1, Ordering::SeqCst) >= limit {
                        stop_after = true;
                        break;
                    }
                }
                let position = shared.position.fetch_add(1, Ordering::Relaxed) + 1;
                let (record, value) = page.record(
                    i,
                    &mut schemas,
                    &mut members,
                    &self.cfg.meta_fields,
                    position,
                    field,
                );
                if let Some(v) = value {
                    mark.see(&v, &page.id(i));
                }
                chunk.push(record);
            }
            ctx.metrics.records_read(chunk.len() as u64);
            let read =
                shared.read.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
            out.send_all(&mut chunk, ctx);
            ctx.progress(0, read);
            if stop_after {
                limited = true;
                break Ok(total);
            }
        };
        if let Some(s) = &self.since {
            s.seen.lock().expect("since lock").merge(mark);
        }
        SliceEnd {
            total: result,
            scrolls,
            pit: match cursor {
                Cursor::Pit { id, .. } => Some(id),
                _ => None,
            },
            limited,
        }
    }

    /// Checks the number read against the count taken when the point in
    /// time or scroll opened, and the slices' own totals against that count.
    fn check_counts(
        &self,
        read: u64,
        slice_totals: u64,
        count: u64,
        pit: bool,
    ) -> Result<(), PipelineError> {
        let what = self.paging.name();
        if pit && slice_totals != count {
            return Err(PipelineError::Source(ErrorType::Server, format!(
                "the pages of the point in time reported {slice_totals} matching documents but a count on it says {count}; the export cannot be trusted"
            )));
        }
        let expected = if pit { count } else { slice_totals };
        if read != expected {
            return Err(PipelineError::Source(ErrorType::Server, format!(
                "read {read} documents but {} counted {expected} matching documents when the {what} opened; the export is incomplete or doubled",
                self.server,
            )));
        }
        Ok(())
    }
}

/// The live counters the slices of one run share.
#[derive(Default)]
struct SliceShared {
    /// The position of the last record handed out (for dead-letter entries).
    position: AtomicU64,
    /// Documents read by all slices (for the progress bar and the check).
    read: AtomicU64,
    /// Documents taken against `--limit`.
    taken: AtomicU64,
    /// Set when one slice fails: the others stop after their current page.
    failed: AtomicU64,
}

/// What a slice's thread hands back when it ends.
struct SliceEnd {
    /// The slice's own total (from its first page), or why it failed.
    total: Result<u64, EsError>,
    /// Every scroll id it was given, to release.
    scrolls: Vec<String>,
    /// The point in time id it last got back, to release.
    pit: Option<String>,
    /// `--limit` stopped it.
    limited: bool,
}

impl Source for EsSource {
    fn size_hint(&self) -> Option<u64> {
        None
    }

    fn fields(&self) -> Option<Vec<String>> {
        None
    }

    fn describe(&self) -> Vec<String> {
        let paging = match self.paging {
            Paging::EsPit | Paging::OsPit => "point in time + search_after",
            Paging::Scroll => "scroll",
        };
        let mut lines = vec![
            format!(
                "source: {} at {}",
                self.server,
                self.cfg
                    .urls
                    .iter()
                    .map(|u| crate::config::redacted(u.as_str()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            format!(
                "source: index {}: {} matching documents; paging with {paging}, pages of {}, {}",
                self.cfg.index,
                self.count,
                self.cfg.page_size,
                match self.cfg.slice_id {
                    Some(id) => format!("this process reads slice {id} of {}", self.cfg.slices),
                    None => format!("{} slice(s)", self.cfg.slices),
                }
            ),
        ];
        if self.cfg.pit_id.is_some() {
            lines.push(
                "source: pages through the point in time given by --es-pit-id (left open at the end)"
                    .to_string(),
            );
        }
        if let Some(s) = &self.since {
            lines.push(format!("source: {}", s.describe()));
        }
        lines
    }

    fn run(&mut self, out: &RecordSender, ctx: &Context) -> Result<(), PipelineError> {
        let rt = runtime();
        // The independent count: on the point in time itself (of this
        // process's slice, with --es-slice-id), or `_count` just before the
        // scroll opens (of the whole index: a slice of a scroll is counted
        // by its first page only).
        let opened = rt.block_on(async {
            match self.paging {
                Paging::EsPit | Paging::OsPit => {
                    let (id, ours) = match &self.cfg.pit_id {
                        Some(id) => (id.clone(), false),
                        None => (self.open_pit().await?, true),
                    };
                    tracing::debug!(
                        "{} point in time {id}",
                        if ours { "opened" } else { "paging through" }
                    );
                    match self.count_in_pit(&id).await {
                        Ok(n) => Ok((Some(id), n)),
                        Err(e) => {
                            if ours {
                                self.close_pit(&id).await;
                            }
                            Err(e)
                        }
                    }
                }
                Paging::Scroll => {
                    let n = Self::count_matching(
                        &self.client,
                        &self.cfg.index,
                        &self.query,
                        Some(&ctx.metrics),
                    )
                    .await?;
                    Ok((None, n))
                }
            }
        });
        let (pit, count) = opened.map_err(|e| self.run_error(e, &ctx.metrics, 0))?;
        if !self.scroll_slice() {
            ctx.progress_total_records(self.limit.map_or(count, |l| l.min(count)));
        }
        let slices = match self.cfg.slice_id {
            Some(id) => id..id + 1,
            None => 0..self.cfg.slices,
        };
        let shared = SliceShared::default();
        let ends: Vec<SliceEnd> = std::thread::scope(|scope| {
            let handles: Vec<_> = slices
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
        // (Not a point in time opened beforehand: the other processes of
        // the job may still be reading it.)
        let last_pit = ends.iter().rev().find_map(|e| e.pit.clone()).or(pit);
        if let (Some(id), None) = (&last_pit, &self.cfg.pit_id) {
            rt.block_on(self.close_pit(id));
        }
        let scrolls = ends
            .iter()
            .flat_map(|e| e.scrolls.iter().cloned())
            .collect();
        rt.block_on(self.clear_scrolls(scrolls));

        let read = shared.read.load(Ordering::Relaxed);
        self.limited = ends.iter().any(|e| e.limited);
        let mut slice_totals = 0u64;
        for end in ends {
            slice_totals += end
                .total
                .map_err(|e| self.run_error(e, &ctx.metrics, read))?;
        }
        if ctx.should_stop_reading() || self.limited {
            return Ok(());
        }
        let mut count = count;
        if self.scroll_slice() {
            // Nothing counts one slice of a scroll but the scroll itself.
            count = slice_totals;
        } else if last_pit.is_none() && slice_totals != count {
            // The index changed while the scroll opened: its own total must
            // lie between the counts taken before and after.
            let after = rt
                .block_on(Self::count_matching(
                    &self.client,
                    &self.cfg.index,
                    &self.query,
                    Some(&ctx.metrics),
                ))
                .map_err(|e| self.run_error(e, &ctx.metrics, read))?;
            let (lo, hi) = (count.min(after), count.max(after));
            if !(lo..=hi).contains(&slice_totals) {
                return Err(PipelineError::Source(ErrorType::Server, format!(
                    "the scroll reported {slice_totals} matching documents but _count said {count} before it opened and {after} after; the export cannot be trusted"
                )));
            }
            count = slice_totals;
        }
        self.check_counts(read, slice_totals, count, last_pit.is_some())?;
        tracing::info!(
            "read {read} documents from {} (counted {count} when the {} opened)",
            self.cfg.index,
            self.paging.name()
        );
        Ok(())
    }

    fn stage_commit(&mut self) -> Result<Option<super::StagedCommit>, PipelineError> {
        let Some(s) = &self.since else {
            return Ok(None);
        };
        if self.limited {
            // Documents are read in index order, not by the field: after a
            // --limit cut, some smaller values may still be unread.
            tracing::warn!(
                "--limit stopped the read early; {} is not saved, so the next run starts from the same place",
                s.path.display()
            );
            return Ok(None);
        }
        let Some((mark, file)) = s.save()? else {
            return Ok(None);
        };
        let (field, path) = (s.field.clone(), s.path.clone());
        Ok(Some(super::StagedCommit {
            file,
            what: format!("--state-file '{}'", path.display()),
            then: Box::new(move |metrics| {
                if let Some(v) = mark.value.as_ref().and_then(since::as_seconds) {
                    metrics.watermark(v);
                }
                tracing::info!(
                    "saved {field} >= {} ({} documents at that value already read) to {}",
                    mark.value.unwrap_or_default(),
                    mark.ids.len(),
                    path.display()
                );
            }),
        }))
    }
}

impl EsSource {
    /// The error that ends the run, counted in `errors_total{stage="source"}`.
    /// Credentials refused before anything was read are a configuration
    /// error (exit 2).
    fn run_error(&self, e: EsError, metrics: &Metrics, read: u64) -> PipelineError {
        // Failed attempts of passing errors were counted as they happened.
        if !matches!(e, EsError::Unavailable(_) | EsError::ScrollLost(_)) {
            metrics.error(Stage::Source, e.error_type(), 1);
        }
        let t = e.error_type();
        match e {
            EsError::Auth(m) if read == 0 => PipelineError::Unavailable {
                stage: Stage::Source,
                error_type: t,
                message: format!("authentication failed: {m}"),
            },
            EsError::Auth(m) => PipelineError::Source(t, format!("authentication failed: {m}")),
            EsError::ScrollLost(m) => PipelineError::Source(t, format!(
                "a scroll page was lost ({m}); a scroll cannot ask for the same page again, so the run stops here rather than skip it; --es-mode pit can re-request a page and rides this out"
            )),
            EsError::Unavailable(m) if m.contains("--es-timeout") => PipelineError::Source(t, format!(
                "{m}; raise --es-timeout if the server is only slow"
            )),
            other => PipelineError::Source(t, other.message().to_string()),
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
}
