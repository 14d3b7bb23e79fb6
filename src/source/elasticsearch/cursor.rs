//! Paging through the index: a point in time with search_after, or a
//! scroll. A [`Cursor`] says where a slice is; the next page is asked for
//! from it and it advances with each page. Opening, counting on and
//! releasing a point in time or scroll live here too.

use elasticsearch::http::Method;
use serde_json::{json, Value as Json};

use crate::context::Context;

use super::client::{Call, EsError, Retry};
use super::page::{self, Bad, Expect, Page};
use super::{count_of, EsSource, Paging};

/// Where a slice is in its paging.
pub(super) enum Cursor {
    /// Point in time + search_after (none before the first page).
    Pit { id: String, after: Option<Json> },
    /// The scroll is not open yet.
    ScrollStart,
    /// The scroll is open.
    Scroll { id: String },
}

impl Cursor {
    /// Moves past `page`. Returns a scroll id the server handed out for the
    /// first time (to release at the end).
    pub(super) fn advance(&mut self, page: &Page) -> Option<String> {
        match self {
            Cursor::Pit { id, after } => {
                if let Some(new) = &page.pit_id {
                    id.clone_from(new);
                }
                *after = page.last_sort();
                None
            }
            Cursor::ScrollStart | Cursor::Scroll { .. } => {
                let id = page.scroll_id.clone().unwrap_or_default();
                let known = matches!(self, Cursor::Scroll { id: old } if *old == id);
                *self = Cursor::Scroll { id: id.clone() };
                (!known).then_some(id)
            }
        }
    }
}

impl EsSource {
    /// Opens the point in time. Not a page: it is not timed as a fetch.
    pub(super) async fn open_pit(&self) -> Result<String, EsError> {
        let (path, id_key) = match self.paging {
            Paging::EsPit => (format!("/{}/_pit", self.cfg.index), "id"),
            _ => (
                format!("/{}/_search/point_in_time", self.cfg.index),
                "pit_id",
            ),
        };
        let keep_alive = [("keep_alive", self.cfg.keep_alive.as_str())];
        let check = |j: &Json| {
            j[id_key]
                .as_str()
                .map(|_| ())
                .ok_or_else(|| format!("no point in time id ({id_key})"))
        };
        let mut call = Call::new(Method::Post, &path);
        call.query = &keep_alive;
        call.check = Some(&check);
        let (r, _) = self.client.send(call).await?;
        Ok(r[id_key].as_str().unwrap_or_default().to_string())
    }

    /// The number of matching documents in the point in time: a `size: 0`
    /// search, independent of the pages that are read.
    pub(super) async fn count_in_pit(&self, id: &str) -> Result<u64, EsError> {
        self.count_pit(id, &self.query, self.cfg.slice_id).await
    }

    /// A `size: 0` search on the point in time with `query` (and the slice).
    async fn count_pit(&self, id: &str, query: &Json, slice: Option<u32>) -> Result<u64, EsError> {
        let mut body = json!({
            "size": 0,
            "query": query,
            "track_total_hits": true,
            "pit": {"id": id, "keep_alive": self.cfg.keep_alive},
        });
        if let Some(slice) = slice {
            self.add_slice(&mut body, slice);
        }
        let expect = Expect {
            total: true,
            sort: false,
            scroll_id: false,
        };
        let check = move |j: &Json| page::check(j, expect);
        let mut call = Call::new(Method::Post, "/_search");
        call.body = Some(body);
        call.check = Some(&check);
        let (answer, _) = self.client.send(call).await?;
        Ok(count_of(&answer))
    }

    /// Checks a point in time given with `--es-pit-id` before anything is
    /// read: the server must know it (not expired, closed or mistyped), and
    /// it must hold documents of `--es-index` only (`indices`, what the
    /// server resolved it to; not checked when the server did not say),
    /// and some when `--es-index` has some.
    /// `Ok(Err(why))` refuses it.
    pub(super) async fn check_shared_pit(
        &self,
        id: &str,
        indices: Option<&[String]>,
    ) -> Result<Result<(), String>, EsError> {
        let index = &self.cfg.index;
        let all = match self.count_pit(id, &json!({"match_all": {}}), None).await {
            Ok(n) => n,
            Err(EsError::Expired(why) | EsError::Refused(why) | EsError::Missing(why)) => {
                return Ok(Err(format!(
                    "--es-pit-id: {} does not know this point in time ({why}): it expired, was closed, or is not an id this server gave; open a new one on {index} with --es-open-pit",
                    self.server
                )))
            }
            Err(other) => return Err(other),
        };
        let ours = match indices {
            None => all,
            Some([]) => 0,
            Some(names) => {
                let q = json!({"terms": {"_index": names}});
                self.count_pit(id, &q, None).await?
            }
        };
        if all > ours {
            let indices = indices.unwrap_or_default();
            return Ok(Err(format!(
                "--es-pit-id: the point in time holds {} documents of indices that --es-index {index} does not cover (it covers {}): it was opened on another index or pattern; open one on {index} with --es-open-pit",
                all - ours,
                if indices.is_empty() { "no index".to_string() } else { indices.join(",") }
            )));
        }
        if all == 0 {
            let now =
                Self::count_matching(&self.client, index, &json!({"match_all": {}}), None).await?;
            if now > 0 {
                return Ok(Err(format!(
                    "--es-pit-id: the point in time holds no document, while --es-index {index} holds {now}: it was opened on another (or then empty) index; open one on {index} with --es-open-pit"
                )));
            }
            return Ok(Ok(()));
        }
        // Each index of a pattern or alias that holds documents must be in
        // it (a point in time opened on fewer indices reads fewer).
        let names = indices.unwrap_or_default();
        if names.len() > 1 {
            for name in names {
                let one = json!({"term": {"_index": name}});
                if self.count_pit(id, &one, None).await? > 0 {
                    continue;
                }
                let now = Self::count_matching(&self.client, name, &json!({"match_all": {}}), None)
                    .await?;
                if now > 0 {
                    return Ok(Err(format!(
                        "--es-pit-id: the point in time holds no document of index {name}, which --es-index {index} covers and which holds {now}: it was opened on fewer indices (or before {name} was created); open one on {index} with --es-open-pit"
                    )));
                }
            }
        }
        Ok(Ok(()))
    }

    pub(super) async fn close_pit(&self, id: &str) {
        let (path, body) = match self.paging {
            Paging::EsPit => ("/_pit", json!({"id": id})),
            _ => ("/_search/point_in_time", json!({"pit_id": [id]})),
        };
        let mut call = Call::new(Method::Delete, path);
        call.body = Some(body);
        call.retry = Retry::Never;
        match self.client.send(call).await {
            Ok(_) => tracing::debug!("closed point in time {id}"),
            Err(e) => tracing::warn!(
                "could not close the point in time on Elasticsearch: {}; it expires after its keep-alive",
                e.message()
            ),
        }
    }

    pub(super) async fn clear_scrolls(&self, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let mut call = Call::new(Method::Delete, "/_search/scroll");
        call.body = Some(json!({"scroll_id": ids}));
        call.retry = Retry::Never;
        match self.client.send(call).await {
            Ok(_) => tracing::debug!("cleared scrolls {}", ids.join(",")),
            Err(e) => tracing::warn!(
                "could not clear the scroll on Elasticsearch: {}; it expires after its keep-alive",
                e.message()
            ),
        }
    }

    /// Asks for the next page of a slice.
    pub(super) async fn next_page(
        &self,
        slice: u32,
        cursor: &Cursor,
        first: bool,
        ctx: &Context,
    ) -> Result<Page, EsError> {
        let scroll_query = [("scroll", self.cfg.keep_alive.as_str())];
        let (path, query, body, retry, expect): (String, &[(&str, &str)], Json, Retry, Expect) =
            match cursor {
                Cursor::Pit { id, after } => {
                    let mut body = self.page_body(slice, first);
                    body["pit"] = json!({"id": id, "keep_alive": self.cfg.keep_alive});
                    body["sort"] = json!([{"_shard_doc": "asc"}]);
                    if let Some(after) = after {
                        body["search_after"] = after.clone();
                    }
                    let expect = Expect {
                        total: first,
                        sort: true,
                        scroll_id: false,
                    };
                    ("/_search".into(), &[], body, Retry::Passing, expect)
                }
                Cursor::ScrollStart => {
                    let mut body = self.page_body(slice, true);
                    body["sort"] = json!(["_doc"]);
                    let expect = Expect {
                        total: true,
                        sort: false,
                        scroll_id: true,
                    };
                    let path = format!("/{}/_search", self.cfg.index);
                    (path, &scroll_query, body, Retry::Passing, expect)
                }
                Cursor::Scroll { id } => {
                    let body = json!({"scroll": self.cfg.keep_alive, "scroll_id": id});
                    let expect = Expect {
                        total: false,
                        sort: false,
                        scroll_id: true,
                    };
                    // A scroll page that was sent cannot be asked for again:
                    // the server has moved on.
                    let path = "/_search/scroll".to_string();
                    (path, &[], body, Retry::IfNotActedOn, expect)
                }
            };
        let meta = &self.cfg.meta_fields;
        let read = move |bytes: &[u8]| -> Result<Page, Bad> { Page::parse(bytes, meta, expect) };
        let call = Call {
            method: Method::Post,
            path: &path,
            query,
            body: Some(body),
            check: None,
            retry,
            metrics: Some(&ctx.metrics),
            retries: None,
        };
        let (page, _) = self.client.send_or_stop(call, &read, &ctx.shutdown).await?;
        Ok(page)
    }
}
