//! The last warnings and errors of the run, for the live page and
//! `/status`: a bounded list fed by every WARN and ERROR line, whether it
//! went through `tracing` or was written directly (the run's error line).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// How many are kept; older ones are dropped, and counted.
pub const KEPT: usize = 20;

/// One warning or error.
#[derive(Debug, Clone, Serialize)]
pub struct Note {
    /// Seconds since the Unix epoch.
    pub time: f64,
    /// `WARN` or `ERROR`.
    pub level: &'static str,
    /// The line's message.
    pub message: String,
    /// Where it is about, when the line says: `line=12`, `file=a.csv`,
    /// `_id=abc`, `index=logs` (the line's own fields, in order).
    pub at: String,
}

struct Ring {
    notes: VecDeque<Note>,
    dropped: u64,
}

static RING: Mutex<Ring> = Mutex::new(Ring {
    notes: VecDeque::new(),
    dropped: 0,
});

/// Keeps one warning or error.
pub fn push(level: &'static str, message: &str, at: String) {
    // These are served over HTTP: no URL keeps its credentials or query.
    let note = Note {
        time: super::unix_now(),
        level,
        message: crate::config::redact_urls(message),
        at: crate::config::redact_urls(&at),
    };
    let mut ring = RING.lock().unwrap_or_else(|e| e.into_inner());
    if ring.notes.len() == KEPT {
        ring.notes.pop_front();
        ring.dropped += 1;
    }
    ring.notes.push_back(note);
}

/// The kept notes, oldest first, and how many older ones were dropped.
pub fn snapshot() -> (Vec<Note>, u64) {
    let ring = RING.lock().unwrap_or_else(|e| e.into_inner());
    (ring.notes.iter().cloned().collect(), ring.dropped)
}

/// A `tracing` layer that keeps every WARN and ERROR event.
pub struct RecentLayer;

impl<S: Subscriber> Layer<S> for RecentLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARN",
            _ => return,
        };
        let mut v = Fields::default();
        event.record(&mut v);
        push(level, &v.message, v.at);
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    at: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.add(field, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.add(field, &format!("{value:?}"));
        }
    }
}

impl Fields {
    fn add(&mut self, field: &Field, value: &str) {
        if !self.at.is_empty() {
            self.at.push(' ');
        }
        let _ = write!(self.at, "{}={value}", field.name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn keeps_the_last_warnings_with_where_they_are_about() {
        let subscriber = tracing_subscriber::registry().with(RecentLayer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not kept");
            for i in 0..KEPT + 3 {
                tracing::warn!(line = i, file = "a.csv", "rejected row {i}");
            }
            tracing::error!("the end");
        });
        // Other tests of this process may keep notes too: look for ours.
        let (notes, dropped) = snapshot();
        assert!(notes.len() <= KEPT);
        assert!(dropped >= 4, "{dropped}");
        assert!(notes
            .iter()
            .any(|n| (n.level, n.message.as_str()) == ("ERROR", "the end")));
        let warn = notes
            .iter()
            .find(|n| n.message == format!("rejected row {}", KEPT + 2))
            .expect("the last warning is kept");
        assert_eq!(warn.level, "WARN");
        assert_eq!(warn.at, format!("line={} file=a.csv", KEPT + 2));
        assert!(notes.iter().all(|n| n.message != "rejected row 0"));
        assert!(notes.iter().all(|n| n.message != "not kept"));
    }
}
