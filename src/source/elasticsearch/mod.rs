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
mod open;
mod page;
mod since;
mod target;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use crate::config::EsConfig;
use crate::context::Context;
use crate::error::{ErrorType, PipelineError, Stage};
use crate::metrics::Metrics;
use crate::retry::parse_duration;
use crate::runtime::runtime;

use super::json_object::SchemaCache;
use super::{Source, SourceOutput};
use client::{Client, EsError};
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
    since: Option<Since>,
    server: String,
    /// `--limit` cut the read short.
    limited: bool,
    /// `--checkpoint`, resumed: the point in time read on, and its count.
    resumed_at: Option<(String, u64)>,
    /// `--checkpoint`: the point in time left open until the job is complete.
    open_pit_id: Option<String>,
}

/// The point in time a run resumed from `--checkpoint` reads on: the
/// latest id a slice was given, or the one the first run opened.
fn saved_pit(resume: &crate::checkpoint::Resume) -> Option<String> {
    resume
        .state
        .values()
        .find_map(|(_, at)| at["pit"].as_str().map(str::to_string))
        .or_else(|| {
            let source = resume.source.as_ref()?;
            source["pit"].as_str().map(str::to_string)
        })
}

/// The count of a `_count` answer or a `size: 0` search.
fn count_of(answer: &Json) -> u64 {
    answer["count"]
        .as_u64()
        .or_else(|| page::total_of(answer))
        .unwrap_or(0)
}

impl EsSource {
    fn page_body(&self, slice: u32, first: bool) -> Json {
        let mut body = json!({
            "size": self.cfg.page_size,
            "query": self.query,
            "track_total_hits": first,
        });
        if let Some(fields) = &self.cfg.fields {
            body["_source"] = json!({"includes": fields});
        }
        // The since field's values, without adding it to the records.
        if let Some(dv) = self.since.as_ref().and_then(Since::docvalue_fields) {
            body["docvalue_fields"] = dv;
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

    /// Reads one slice to its end (or until told to stop), handing its
    /// documents to `out` (this slice's fork of the source's output).
    fn read_slice(
        &self,
        slice: u32,
        pit: Option<&str>,
        out: &mut SourceOutput,
        shared: &SliceShared,
    ) -> SliceEnd {
        let mut scrolls = Vec::new();
        let _active = out.ctx().metrics.worker_active(Stage::Source);
        // --checkpoint, resumed: the slice goes on after the sort values of
        // its last page done, its documents numbered on from there.
        let resumed = out
            .ctx()
            .checkpoint()
            .and_then(|t| t.resume())
            .and_then(|r| r.state.get(&slice).cloned());
        let mut cursor = match (pit, &resumed) {
            (Some(_), Some((_, at))) if at["pit"].is_string() => Cursor::Pit {
                id: at["pit"].as_str().unwrap_or_default().to_string(),
                after: Some(at["after"].clone()).filter(|a| !a.is_null()),
            },
            (Some(id), _) => Cursor::Pit {
                id: id.to_string(),
                after: None,
            },
            (None, _) => Cursor::ScrollStart,
        };
        out.begin_stream(slice, resumed.as_ref().map_or(0, |r| r.0));
        let (mut total, mut first, mut limited) = (0u64, true, false);
        let mut schemas = SchemaCache::default();
        let mut mark = Mark::default();
        let mut last_asked = Instant::now();
        let result = loop {
            if out.should_stop() || shared.failed.load(Ordering::Relaxed) > 0 {
                break Ok(total);
            }
            let page = match self.fetch_page(slice, &cursor, first, &mut last_asked, out.ctx()) {
                Ok(Some(p)) => p,
                Ok(None) => break Ok(total),
                Err(e) => {
                    // The run fails: the other slices stop too.
                    shared.failed.store(1, Ordering::Relaxed);
                    break Err(e);
                }
            };
            if first {
                total = page.total.unwrap_or(0);
                first = false;
                if self.scroll_slice() {
                    out.progress_total_records(total);
                }
            }
            if let Some(new_scroll) = cursor.advance(&page) {
                scrolls.push(new_scroll);
            }
            if let Cursor::Pit { id, after } = &cursor {
                out.set_resume_state(|| json!({"pit": id, "after": after}));
            }
            if page.len() == 0 {
                break Ok(total);
            }
            if self.take_page(&page, (&mut schemas, &mut mark), out, shared) {
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

    /// Asks for the next page of a slice (`last_asked`: when the previous
    /// one was asked for; the server's keep-alive runs from its handling of
    /// that request, so a slow answer counts too). A page some shards
    /// failed is an error; `Ok(None)`: the run was stopped.
    fn fetch_page(
        &self,
        slice: u32,
        cursor: &Cursor,
        first: bool,
        last_asked: &mut Instant,
        ctx: &Context,
    ) -> Result<Option<page::Page>, EsError> {
        let asked = Instant::now();
        let idle = asked.duration_since(*last_asked);
        let page = match runtime().block_on(self.next_page(slice, cursor, first, ctx)) {
            Ok(p) => p,
            Err(EsError::Stopped) => return Ok(None),
            Err(EsError::Expired(reason)) => return Err(self.context_gone(&reason, idle)),
            Err(other) => return Err(other),
        };
        *last_asked = asked;
        if let Some((kind, reason)) = &page.shard_failure {
            if kind == "search_context_missing_exception" {
                return Err(self.context_gone(reason, idle));
            }
            return Err(EsError::Refused(format!(
                "some shards failed ({kind}: {reason}); the page would be incomplete"
            )));
        }
        Ok(Some(page))
    }

    /// Hands the documents of `page` to `out`, as many as `--limit` still
    /// lets through, noting their since values in `mark`. True when the
    /// limit cut the page short.
    fn take_page(
        &self,
        page: &page::Page,
        (schemas, mark): (&mut SchemaCache, &mut Mark),
        out: &mut SourceOutput,
        shared: &SliceShared,
    ) -> bool {
        let n = out.claim(page.len() as u64);
        let before = shared.position.fetch_add(n, Ordering::Relaxed);
        let mut members = Vec::new();
        for i in 0..n as usize {
            let position = before + i as u64 + 1;
            let record = page.record(i, schemas, &mut members, &self.cfg.meta_fields, position);
            if let Some(s) = &self.since {
                match s.point_of(page.docvalues(i, &s.field).as_deref()) {
                    Some(v) => mark.see(v, page.index(i), &page.id(i)),
                    None => mark.missing += 1,
                }
            }
            out.push(record);
        }
        out.end_page();
        n < page.len() as u64
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
                "the pages of the point in time on Elasticsearch reported {slice_totals} matching documents but a count on it says {count}; the export cannot be trusted"
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

/// The live counters the slices of one run share (the documents read and
/// `--limit` are the output's).
#[derive(Default)]
struct SliceShared {
    /// The position of the last record handed out (for dead-letter entries).
    position: AtomicU64,
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

    fn checkpointed(
        &mut self,
        resume: Option<&crate::checkpoint::Resume>,
    ) -> Result<(), PipelineError> {
        if self.paging == Paging::Scroll {
            return Err(PipelineError::Config(format!(
                "--checkpoint needs a point in time to go on from; {} offers only scroll here (--es-mode), whose pages cannot be asked for again: leave out --checkpoint, or use --es-mode pit",
                self.server
            )));
        }
        let Some(id) = resume.and_then(saved_pit) else {
            return Ok(());
        };
        // The point in time a resumed run reads on is still there, and its
        // count is the one the run is checked against.
        let count = runtime()
            .block_on(self.count_in_pit(&id))
            .map_err(|e| PipelineError::Config(format!(
                "--checkpoint: the point in time it reads on is gone or cannot be read ({}); it expires --es-keep-alive {} after the last page asked for, or when the server restarts; --restart to export the index from the start",
                e.message(),
                self.cfg.keep_alive
            )))?;
        self.resumed_at = Some((id, count));
        Ok(())
    }

    fn run(&mut self, out: &mut SourceOutput) -> Result<(), PipelineError> {
        let ctx = out.ctx();
        let (pit, count) = match self.resumed_at.take() {
            Some((id, count)) => (Some(id), count),
            None => self
                .open_reading(ctx)
                .map_err(|e| self.run_error(e, &ctx.metrics, 0))?,
        };
        // --checkpoint: the documents are numbered in this point in time's
        // order; it is saved before any of them is sent.
        if let (Some(t), Some(id)) = (ctx.checkpoint(), &pit) {
            t.pin(json!({"pit": id})).map_err(|e| {
                PipelineError::Source(
                    ErrorType::Io,
                    format!(
                        "cannot write --checkpoint '{}': {e}; check that its directory is writable",
                        t.path().display()
                    ),
                )
            })?;
        }
        if !self.scroll_slice() {
            out.progress_total_records(count);
        }
        let ends = self.read_slices(pit.as_deref(), out);
        // Always release what the server holds for us.
        // (Not a point in time opened beforehand: the other processes of
        // the job may still be reading it. With --checkpoint, only once the
        // job is complete (`finished`): until every record read is written,
        // a resumed run may still need to read on in it; left open, it
        // expires after --es-keep-alive.)
        let rt = runtime();
        let last_pit = ends.iter().rev().find_map(|e| e.pit.clone()).or(pit);
        match (&last_pit, &self.cfg.pit_id) {
            (Some(id), None) if ctx.checkpoint().is_some() => self.open_pit_id = Some(id.clone()),
            (Some(id), None) => rt.block_on(self.close_pit(id)),
            _ => {}
        }
        let scrolls = ends
            .iter()
            .flat_map(|e| e.scrolls.iter().cloned())
            .collect();
        rt.block_on(self.clear_scrolls(scrolls));

        // Documents an earlier run finished count as read here.
        let read = out.read() + out.resumed();
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
        let count = self.count_to_check(count, slice_totals, last_pit.is_none(), ctx, read)?;
        self.check_counts(read, slice_totals, count, last_pit.is_some())?;
        tracing::info!(
            "read {read} documents from {} (counted {count} when the {} opened)",
            self.cfg.index,
            self.paging.name()
        );
        Ok(())
    }

    fn finished(&mut self, committed: bool) -> Result<Option<String>, PipelineError> {
        // --checkpoint: the job is complete, nothing will read on in it.
        if let (true, Some(id)) = (committed, self.open_pit_id.take()) {
            runtime().block_on(self.close_pit(&id));
        }
        Ok(None)
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
        let missing = s.seen.lock().expect("since lock").missing;
        if missing > 0 {
            tracing::warn!(
                "{missing} documents read had no value of {} (absent, null or empty): no position covers them, so they are read again on every run (--es-since-missing include); give them a value, or leave them out with --es-since-missing skip",
                s.field
            );
        }
        let Some((mark, file)) = s.save()? else {
            return Ok(None);
        };
        let (field, path) = (s.field.clone(), s.path.clone());
        Ok(Some(super::StagedCommit {
            file,
            what: format!("--state-file '{}'", path.display()),
            then: Box::new(move |metrics| {
                if let Some(v) = mark.value.as_ref().and_then(since::Point::seconds) {
                    metrics.watermark(v);
                }
                tracing::info!(
                    "saved {field} >= {} ({} documents at that value already read) to {}",
                    mark.value
                        .as_ref()
                        .map(since::Point::to_state)
                        .unwrap_or_default(),
                    mark.ids.len(),
                    path.display()
                );
            }),
        }))
    }
}

impl EsSource {
    /// Opens the point in time (unless one was given) or gets ready to
    /// scroll, and takes the independent count: on the point in time itself
    /// (of this process's slice, with --es-slice-id), or `_count` just
    /// before the scroll opens (of the whole index: a slice of a scroll is
    /// counted by its first page only). Returns the point in time and the
    /// count.
    fn open_reading(&self, ctx: &Context) -> Result<(Option<String>, u64), EsError> {
        runtime().block_on(async {
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
        })
    }

    /// Reads every slice of this process, each on its own thread with its
    /// own fork of `out`.
    fn read_slices(&self, pit: Option<&str>, out: &SourceOutput) -> Vec<SliceEnd> {
        let slices = match self.cfg.slice_id {
            Some(id) => id..id + 1,
            None => 0..self.cfg.slices,
        };
        let shared = SliceShared::default();
        std::thread::scope(|scope| {
            let handles: Vec<_> = slices
                .map(|slice| {
                    let shared = &shared;
                    let mut out = out.fork();
                    std::thread::Builder::new()
                        .name(format!("es-slice-{slice}"))
                        .spawn_scoped(scope, move || self.read_slice(slice, pit, &mut out, shared))
                        .expect("spawn a slice reader")
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("slice reader panicked"))
                .collect()
        })
    }

    /// The count the number read is checked against: the one taken when
    /// reading began, or the slices' own total where that is what counts
    /// (one slice of a scroll; a scroll whose index changed while it opened,
    /// when its total lies between the counts taken before and after).
    fn count_to_check(
        &self,
        count: u64,
        slice_totals: u64,
        scroll: bool,
        ctx: &Context,
        read: u64,
    ) -> Result<u64, PipelineError> {
        if self.scroll_slice() {
            // Nothing counts one slice of a scroll but the scroll itself.
            return Ok(slice_totals);
        }
        if !scroll || slice_totals == count {
            return Ok(count);
        }
        let after = runtime()
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
                "the scroll on Elasticsearch reported {slice_totals} matching documents but _count said {count} before it opened and {after} after; the export cannot be trusted"
            )));
        }
        Ok(slice_totals)
    }

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
                message: format!(
                    "Elasticsearch refused the credentials: {m}; check --es-user and --es-pass (or PIPELINE_ES_PASS), or --es-api-key"
                ),
            },
            EsError::Auth(m) => PipelineError::Source(
                t,
                format!("Elasticsearch refused the credentials: {m}"),
            ),
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
