//! `--checkpoint` at the start and the end of a run: what it resumes, the
//! tracker that follows it, and what becomes of the file when it ends.

use std::sync::Arc;

use crate::checkpoint::{Coverage, Header, Start, Tracker};
use crate::config::{Config, SinkConfig};
use crate::error::PipelineError;
use crate::sink::Sink;

/// The sink's settings for a run with checkpoint `start`: a MySQL sink
/// records each batch's rows under its id; a resumed file sink keeps its
/// `.partial` up to where the checkpoint says.
pub(super) fn sink_config(sink: &SinkConfig, start: Option<&Start>) -> SinkConfig {
    let mut sink = sink.clone();
    if let Some(start) = start {
        match &mut sink {
            SinkConfig::Mysql(m) => m.checkpoint = Some(start.id.clone()),
            SinkConfig::File(f) => {
                f.resume_bytes = start.resume.as_ref().and_then(|r| r.output_bytes);
                f.resume_tail = start.resume.as_ref().and_then(|r| r.output_tail.clone());
            }
        }
    }
    sink
}

/// The tracker of a run with checkpoint `start`, the sink open: what the
/// sink recorded of batches beyond the checkpoint is skipped too. The
/// checkpoint is written before anything is read, so a run killed at any
/// moment after this leaves one to resume from.
pub(super) fn track(
    config: &Config,
    start: Start,
    sink: &dyn Sink,
) -> Result<Arc<Tracker>, PipelineError> {
    let c = config.checkpoint.as_ref().expect("--checkpoint");
    let Start {
        id,
        identity,
        mut resume,
        discarded,
        ..
    } = start;
    // What the sink recorded under a checkpoint discarded goes.
    if let Some(old) = discarded {
        sink.checkpoint_complete(&old);
    }
    if let Some(r) = &mut resume {
        // Rows failed beyond what the file says is done, and kept in the
        // dead-letter file already: not read (nor kept) again, and counted
        // failed by an earlier run.
        if let Some(dl) = &config.dead_letter {
            let kept: Vec<(u32, u64)> = kept_rows(dl, &id)
                .into_iter()
                .filter(|&(s, o)| !r.is_done(s, o, o))
                .collect();
            r.failed += kept.len() as u64;
            for (stream, ordinal) in kept {
                r.cover(stream, ordinal, ordinal);
            }
        }
        // The rows of batches that committed beyond it (their failed rows
        // left out: they are kept, found above, or read again).
        for text in sink.checkpoint_coverage(&id)? {
            for (stream, lo, hi) in Coverage::parse(&text) {
                r.cover(stream, lo, hi);
            }
        }
        r.settle();
        tracing::info!(
            checkpoint = %c.path.display(),
            "resuming from checkpoint {}: {} rows done by earlier runs are skipped",
            c.path.display(),
            r.done_rows()
        );
    }
    let header = Header {
        path: c.path.clone(),
        id,
        identity,
    };
    let tracker = Tracker::new(header, c.every, resume, sink.output_position());
    if let SinkConfig::File(crate::config::FileSinkConfig {
        output: crate::config::OutputPath::File(p),
        ..
    }) = &config.sink
    {
        tracker.follow_output(crate::safe_fs::partial_path(p));
    }
    tracker.save_now().map_err(|e| {
        PipelineError::Config(format!(
            "--checkpoint '{}' cannot be written: {e}; check that its directory exists and is writable, or give another path",
            c.path.display()
        ))
    })?;
    Ok(Arc::new(tracker))
}

/// The run is over: a complete run (its output in place) marks the
/// checkpoint complete, then lets go of what the sink recorded under it;
/// any other writes it as of now. Returns what the summary says of it.
pub(super) fn finish(
    tracker: &Tracker,
    sink: &dyn Sink,
    committed: bool,
    accepted: bool,
) -> Result<String, String> {
    tracker.finish(committed.then_some(accepted))?;
    if committed {
        sink.checkpoint_complete(tracker.id());
    }
    let note = tracker.note(committed);
    Ok(match tracker.failed_before() {
        0 => note,
        n => format!("{note}; failed earlier={n} records in earlier runs of the job (kept in the dead-letter file when one was given)"),
    })
}

/// What a run would do with its `--checkpoint`, for `--check`: resume from
/// it (and from where), start it, or refuse it (the error).
pub(super) fn describe(config: &Config) -> Result<String, PipelineError> {
    let c = config.checkpoint.as_ref().expect("--checkpoint");
    let path = c.path.display();
    let start = crate::checkpoint::start(config, &c.path, c.restart)?;
    if let Some(done) = &start.complete {
        return Ok(format!("checkpoint: a run would say {}", done.note));
    }
    if start.discarded.is_some() && !c.restart {
        return Ok(format!(
            "checkpoint: {path} holds a job that completed; a run starts this one from the beginning"
        ));
    }
    Ok(match &start.resume {
        Some(r) => {
            let streams: Vec<String> = r
                .frontier
                .iter()
                .map(|(s, o)| format!("{} up to row {o}", stream_name(config, *s)))
                .collect();
            format!(
                "checkpoint: a run would resume from {path}: {} rows done by earlier runs are skipped ({}){}",
                r.done_rows(),
                if streams.is_empty() { "none yet".to_string() } else { streams.join(", ") },
                match &config.sink {
                    SinkConfig::Mysql(_) => "; and the rows of batches that committed after it was written",
                    SinkConfig::File(_) => "; the output's .partial is kept up to its last batch done",
                }
            )
        }
        None if c.restart && c.path.exists() => format!(
            "checkpoint: {path} would be discarded (--restart): the run starts from the beginning"
        ),
        None => format!(
            "checkpoint: none at {path}: a run starts from the beginning and records there, as batches commit, where to resume"
        ),
    })
}

/// How a stream of the source is named: its file, its slice.
fn stream_name(config: &Config, stream: u32) -> String {
    match &config.source {
        crate::config::SourceConfig::Elasticsearch(_) => format!("slice {stream}"),
        _ => {
            let files = config.source.input_files().1;
            match files.get(stream as usize) {
                Some(f) => f.display().to_string(),
                None => format!("file {}", stream + 1),
            }
        }
    }
}

/// The rows of checkpoint `id` the dead-letter file `path` keeps (rejected
/// as they were read): (stream, ordinal), each once.
fn kept_rows(path: &std::path::Path, id: &str) -> std::collections::BTreeSet<(u32, u64)> {
    use std::io::BufRead;
    let mut rows = std::collections::BTreeSet::new();
    let Ok(file) = std::fs::File::open(path) else {
        return rows;
    };
    let needle = format!("\"checkpoint\":\"{id}:");
    for line in std::io::BufReader::new(file)
        .split(b'\n')
        .map_while(Result::ok)
    {
        let Some(at) = memchr::memmem::find(&line, needle.as_bytes()) else {
            continue;
        };
        let rest = &line[at + needle.len()..];
        let end = rest.iter().position(|&b| b == b'"').unwrap_or(rest.len());
        let Ok(text) = std::str::from_utf8(&rest[..end]) else {
            continue;
        };
        if let Some((s, o)) = text.split_once(':') {
            if let (Ok(s), Ok(o)) = (s.parse(), o.parse()) {
                rows.insert((s, o));
            }
        }
    }
    rows
}

/// A file sink's job killed after its output was put in place but before
/// its checkpoint said so: the output is there whole (a `.partial` is
/// renamed only when complete) and starts with what the checkpoint
/// recorded. Returns the note that the job is complete.
pub(super) fn output_complete(config: &Config, start: &Start) -> Option<String> {
    let SinkConfig::File(crate::config::FileSinkConfig {
        output: crate::config::OutputPath::File(target),
        ..
    }) = &config.sink
    else {
        return None;
    };
    let r = start.resume.as_ref()?;
    let (len, tail) = (r.output_bytes?, r.output_tail.as_ref()?);
    let partial = crate::safe_fs::partial_path(target);
    let whole = std::fs::metadata(target).ok()?.len();
    let ours = crate::checkpoint::tail_of(target, len).ok()? == *tail;
    (!partial.exists() && whole >= len && ours).then(|| {
        format!(
            "nothing to do: {} is complete (its run ended before --checkpoint could say so; run it again with --restart)",
            target.display()
        )
    })
}
