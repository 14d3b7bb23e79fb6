//! Reading a sample before the run (the records `--create-table` infers
//! its types from) and `--check`: what a run would do, with nothing written.

use crate::channel;
use crate::config::Config;
use crate::context::Context;
use crate::dead_letter::DeadLetter;
use crate::error::PipelineError;
use crate::metrics::Metrics;
use crate::record::Record;
use crate::shutdown::Shutdown;
use crate::sink::{self, Sink};
use crate::source;

/// Reads up to `n` records (`0`: all, within `--limit`) from a second
/// opening of the source and hands them to `take` as they come (none is
/// held). `None` when the source cannot be read twice (standard input, a
/// named pipe, `/dev/stdin`, a process substitution: anything but regular
/// files), which is then never opened a second time. Bad rows are skipped
/// here: the run itself counts and keeps them.
/// Hands `sink` the sample `--create-table` reads before the run (`dry`:
/// for `--check`, which creates nothing): with `--flatten`, the flattened
/// records (those that collide left out, as the run fails them).
/// `Ok(None)`: the input is read once, so there is no sample.
pub(super) fn give_sample(
    config: &Config,
    n: u64,
    sink: &dyn Sink,
    dry: bool,
) -> Result<Option<Vec<String>>, PipelineError> {
    let flattener = config.flatten.clone().map(crate::flatten::Flattener::new);
    // A run's --create-table reads the whole input once more first: the bar
    // shows that pass too (not --check's, whose lines go to stdout).
    let progress = if dry {
        None
    } else {
        super::progress_bar(config, "--create-table: reading for the column types ")
    };
    with_sample(config, n, progress, |records| match &flattener {
        Some(f) => sink.take_sample(&mut records.filter_map(|r| f.apply(&r).ok()), dry),
        None => sink.take_sample(records, dry),
    })
}

/// `--check` with real records: hands the sink the first records of the
/// input (flattened with `--flatten`) to convert as the run would. Records
/// `--flatten` fails count as failing; the sink says what the others come
/// to. Nothing when the input is read once (said already).
fn check_sample(
    config: &Config,
    sink: &dyn Sink,
    metrics: &std::sync::Arc<Metrics>,
) -> Result<Vec<String>, PipelineError> {
    let Some(n) = sink.check_sample() else {
        return Ok(Vec::new());
    };
    let flattener = config.flatten.clone().map(crate::flatten::Flattener::new);
    // Records --flatten fails: how many, and the first one's reason and position.
    let mut unflat: (u64, u64, Option<(String, u64)>) = (0, 0, None);
    let checked = with_sample(config, n, None, |records| match &flattener {
        Some(f) => sink.check_records(
            &mut records.filter_map(|r| {
                unflat.0 += 1;
                f.apply(&r)
                    .map_err(|e| {
                        unflat.1 += 1;
                        unflat.2.get_or_insert((e, r.position));
                    })
                    .ok()
            }),
            config.batch_size,
            metrics,
        ),
        None => sink.check_records(records, config.batch_size, metrics),
    })?;
    let mut lines = checked.unwrap_or_default();
    if let (read, failed, Some((why, at))) = unflat {
        if read == failed {
            return Err(PipelineError::Config(format!(
                "none of the {read} sample records would be written: --flatten: {why} (first: position {at}); change --flatten or --flatten-separator"
            )));
        }
        lines.push(format!(
            "check:   {failed} more sample records would fail --flatten: {why} (first: position {at})"
        ));
    }
    Ok(lines)
}

pub(super) fn with_sample<T>(
    config: &Config,
    n: u64,
    progress: Option<crate::progress::Progress>,
    take: impl FnOnce(&mut dyn Iterator<Item = Record>) -> Result<T, PipelineError>,
) -> Result<Option<T>, PipelineError> {
    if !source::read_twice(&config.source) {
        return Ok(None);
    }
    let limit = match (n, config.limit) {
        (0, l) => l,
        (n, Some(l)) => Some(n.min(l)),
        (n, None) => Some(n),
    };
    // Its own metrics: the sample is not part of the run's counts.
    let metrics = Metrics::new(
        &config.pipeline_id,
        config.source.kind(),
        config.sink.kind(),
    );
    // What opening the files says (an empty file skipped, headers that
    // differ) was said when the run's own source was opened.
    let stop = Shutdown::new();
    let mut source =
        tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
            source::open(&config.source, &metrics, &stop)
        })?;
    let ctx = Context::new(metrics, stop, DeadLetter::open(None)?, None, progress);
    if n == 0 {
        ctx.progress_total(source.size_hint());
    }
    ctx.silence_rejections();
    let (sender, rx) = channel::bounded(config.queue_size);
    std::thread::scope(|scope| {
        let (src, ctx) = (&mut source, &ctx);
        let reader = std::thread::Builder::new()
            .name("sample".into())
            .spawn_scoped(scope, move || {
                // What reading says (a format detected, a file empty), the
                // run's own reading says again.
                let read = tracing::subscriber::with_default(
                    tracing::subscriber::NoSubscriber::default(),
                    || src.run(&mut source::SourceOutput::new(&sender, ctx, limit)),
                );
                drop(sender);
                read
            })
            .expect("spawn the sample reader");
        // A sample is read as records (never as lines).
        let taken = take(&mut rx.iter().filter_map(|item| match item {
            channel::Item::Record(r) => Some(r),
            channel::Item::Lines(_) => None,
        }));
        drop(rx);
        let read = reader
            .join()
            .unwrap_or_else(|_| Err(PipelineError::Internal("the sample reader crashed".into())));
        ctx.progress_done();
        read.and(taken).map(Some)
    })
}

/// `--check`: opens the source and the sink as a run would (every
/// connection, every check), and returns what the run would do. Creates,
/// changes and moves nothing: no output or dead-letter file, no table, no
/// lock, no push, no state file.
pub fn check(config: &Config) -> Result<Vec<String>, PipelineError> {
    let metrics = Metrics::new(
        &config.pipeline_id,
        config.source.kind(),
        config.sink.kind(),
    );
    // An input that is not a regular file is never opened here: what it
    // holds is read once, by the run.
    let (regular, read_once) = source::regular_inputs(&config.source);
    let source = match &regular {
        Some(c) => Some(source::open(c, &metrics, &Shutdown::new())?),
        None => None,
    };
    let mut lines = source.as_ref().map(|s| s.describe()).unwrap_or_default();
    for name in &read_once {
        lines.push(format!(
            "source: {name} is not a regular file: read once when the run starts; not read by --check"
        ));
    }
    // Its header is not known before the run: the sink is not checked
    // against fields that may be missing from the list.
    let fields = match &source {
        Some(s) if read_once.is_empty() => s.fields(),
        _ => None,
    };
    if !read_once.is_empty()
        && matches!(&config.source, crate::config::SourceConfig::Csv(c) if c.has_header)
    {
        lines.push(
            "source: the header of an input not read by --check is not known: the record fields are not checked against the sink"
                .into(),
        );
    }
    if let Some(l) = config.limit {
        lines.push(format!("source: at most {l} records (--limit)"));
    }
    if config.checkpoint.is_some() {
        lines.push(super::resume::describe(config)?);
    }
    let sink: std::sync::Arc<dyn Sink> = sink::open(&config.sink, fields.as_deref(), true)?;
    lines.extend(sink.plan());
    if let Some(n) = sink.wants_sample() {
        match give_sample(config, n, sink.as_ref(), true)? {
            Some(l) => lines.extend(l),
            None => lines.push(
                format!("--create-table: the input is read once (standard input or a pipe, not a regular file): the run's first {} records decide the column types, held back until the table exists", crate::config::DEFAULT_CREATE_TABLE_SAMPLE),
            ),
        }
    }
    lines.extend(check_sample(config, sink.as_ref(), &metrics)?);
    lines.push(format!(
        "run: {} sink worker(s), batches of {} records, queue of {}",
        config.workers, config.batch_size, config.queue_size
    ));
    lines.push(match &config.dead_letter {
        Some(p) => format!("failed records: kept in {}", p.display()),
        None => "failed records: counted and logged, not kept (no --dead-letter)".into(),
    });
    if let Some(push) = &config.push {
        lines.push(format!(
            "metrics: pushed to {}",
            crate::config::redacted(push.url.as_str())
        ));
    }
    if let Some(p) = &config.textfile {
        lines.push(format!("metrics: written to {}", p.display()));
    }
    if let Some(p) = &config.lock_file {
        lines.push(format!("one run at a time: --lock-file {}", p.display()));
    }
    Ok(lines)
}
