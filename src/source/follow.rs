//! What a [`super::SourceOutput`] does for `--checkpoint`: numbers each row
//! of its stream (its ordinal), skips the rows an earlier run finished, and
//! tells the [`Tracker`] the ordinals of each chunk it sends.

use std::sync::Arc;

use serde_json::Value as Json;

use crate::checkpoint::{Filter, Tracker};

/// One stream's rows, as one output reads them.
pub(super) struct Follow {
    pub(super) tracker: Arc<Tracker>,
    stream: u32,
    /// The ordinal of the last row read.
    ordinal: u64,
    filter: Filter,
    /// Nothing left to skip in this stream.
    clear: bool,
    /// The ordinals of the chunk's items, as runs.
    runs: Vec<(u64, u64)>,
    /// Where the source can go on from after the chunk.
    state: Option<Json>,
    /// Rows skipped since the count was last reported.
    skipped: u64,
    /// Rows rejected as read since the last chunk was sent.
    pub(super) rejected: u64,
}

impl Follow {
    /// Follows stream 0 from its start.
    pub(super) fn new(tracker: Arc<Tracker>) -> Follow {
        let mut f = Follow {
            tracker,
            stream: 0,
            ordinal: 0,
            filter: Filter::default(),
            clear: true,
            runs: Vec::new(),
            state: None,
            skipped: 0,
            rejected: 0,
        };
        f.begin(0, 0);
        f
    }

    /// From now on rows are of stream `stream`, the next one numbered
    /// `after + 1`.
    pub(super) fn begin(&mut self, stream: u32, after: u64) {
        self.stream = stream;
        self.ordinal = after;
        // Rows before where the stream goes on from are not read again.
        if after > 0 {
            self.tracker.skipped(after);
        }
        self.filter = self
            .tracker
            .resume()
            .map(|r| r.filter(stream))
            .unwrap_or_default();
        self.clear = self.filter.past(after + 1);
    }

    /// The next row: true when it is to be skipped (an earlier run finished
    /// it); otherwise it is an item of the chunk when `item`.
    #[inline]
    pub(super) fn next(&mut self, item: bool) -> bool {
        self.ordinal += 1;
        let o = self.ordinal;
        if !self.clear {
            if self.filter.skip(o) {
                self.skipped += 1;
                return true;
            }
            self.clear = self.filter.past(o);
        }
        if item {
            match self.runs.last_mut() {
                Some(last) if last.1 + 1 == o => last.1 = o,
                _ => self.runs.push((o, o)),
            }
        }
        false
    }

    /// The last row's name in a dead-letter entry: `id:stream:ordinal`.
    pub(super) fn tag(&self) -> String {
        format!("{}:{}:{}", self.tracker.id(), self.stream, self.ordinal)
    }

    /// The stream being read.
    pub(super) fn stream(&self) -> u32 {
        self.stream
    }

    /// Where an earlier run said this stream can go on from, and the
    /// ordinal of the last row before it.
    pub(super) fn resume_point(&self) -> Option<(u64, Json)> {
        self.tracker.resume()?.state.get(&self.stream).cloned()
    }

    /// Where the source can go on from once the chunk being read is sent.
    pub(super) fn set_state(&mut self, state: Json) {
        self.state = Some(state);
    }

    /// The chunk is about to be sent (the send lock held): numbers its
    /// items. Returns the rows skipped in all, when that grew.
    pub(super) fn sending(&mut self) -> Option<u64> {
        let grew =
            (self.skipped > 0).then(|| self.tracker.skipped(std::mem::take(&mut self.skipped)));
        let runs = std::mem::take(&mut self.runs);
        let rejected = std::mem::take(&mut self.rejected);
        self.tracker.sent(
            self.stream,
            runs,
            (self.ordinal, rejected),
            self.state.take(),
        );
        grew
    }
}
