//! Every message pipeline-cli can print names what it is about: a flag
//! (`--db-table`), a file or path, or a server (MySQL, Elasticsearch, the
//! Pushgateway, a URL or host); one that ends the run at start also says
//! the next step. The messages are collected from the source: the format
//! strings of `tracing::error!`/`warn!`, of the errors that end a run
//! (`PipelineError`'s variants and `#[error]` texts, `Unavailable`'s
//! `message`) and of `report::fatal_line`.

use std::path::Path;

/// A message found in the source.
#[derive(Debug)]
struct Message {
    /// `file:line`.
    at: String,
    /// The format string.
    text: String,
    /// The call's arguments, as written.
    args: String,
    /// It ends the run before anything is read: it must say what to do.
    fatal: bool,
}

/// Where messages are made, and whether they end the run at start.
const CALLS: [(&str, bool); 9] = [
    ("error!(", false),
    ("warn!(", false),
    ("PipelineError::Config(", true),
    ("PipelineError::Busy(", true),
    ("PipelineError::Push(", true),
    ("PipelineError::Source(", false),
    ("PipelineError::Sink(", false),
    ("fatal_line(", true),
    ("#[error(", false),
];

/// Messages that name no flag, file or server, and why that is right.
const EXEMPT: [(&str, &str); 7] = [
    (
        "record counts do not reconcile: read {} != inserted {} + updated {} + skipped {} + failed {}; this is a bug: please report it",
        "a bug: no setting of the user's is at fault",
    ),
    ("a {} parse thread crashed", "a bug"),
    ("the sample reader crashed", "a bug"),
    (
        "cannot install the signal handler: {e}; nothing was read: run it again",
        "the process itself, before any input or server is touched",
    ),
    (
        "rejected row: {reason}",
        "one rejected row of the one input: its line is a field, the reason says what is wrong with it, and after ten the line names --dead-letter",
    ),
    (
        "rejected record: {reason}",
        "one rejected record: its position is a field, the reason says what is wrong with it, and after ten the line names --dead-letter",
    ),
    (
        "rejected document _id={id} in index {index}: {reason}",
        "one rejected document: its _id and index are in the line, its position a field, the reason says what is wrong with it, and after ten the line names --dead-letter",
    ),
];

/// The string literal that starts at `from` (after its `"`), unescaped
/// enough to be read, and where it ends.
fn literal(src: &str, from: usize) -> (String, usize) {
    let b = src.as_bytes();
    let mut out = String::new();
    let mut i = from;
    while b[i] != b'"' {
        if b[i] == b'\\' {
            if b[i + 1] == b'\n' {
                i += 2;
                while b[i].is_ascii_whitespace() {
                    i += 1;
                }
                continue;
            }
            out.push_str(&src[i..i + 2]);
            i += 2;
            continue;
        }
        let c = src[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    (out, i + 1)
}

/// The first string literal of the call whose arguments start at `from`,
/// and the call's arguments as written; `None` when there is none, or when
/// `first` and the first argument is not a literal (or a `format!` of one).
fn first_literal(src: &str, from: usize, first: bool) -> Option<(String, String)> {
    let b = src.as_bytes();
    let mut depth = 0i32;
    let mut i = from;
    let mut found: Option<(String, usize)> = None;
    while i < b.len() {
        match b[i] {
            b'"' if found.is_none() => {
                let (text, end) = literal(src, i + 1);
                found = Some((text, end));
                i = end;
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth < 0 {
                    break;
                }
            }
            b';' => break,
            b',' if depth == 0 && found.is_none() && first => return None,
            _ => {}
        }
        i += 1;
    }
    found.map(|(text, _)| (text, src[from..i].to_string()))
}

/// Whether the struct literal around `at` (a `message:` field) is a
/// `PipelineError::Unavailable`: a server that cannot be used at start.
fn in_unavailable(src: &str, at: usize) -> bool {
    let before = &src[..at];
    let open = before.rfind('{').unwrap_or(0);
    before[..open].trim_end().ends_with("Unavailable")
}

/// Every message in the Rust files under `dir` (tests left out).
fn messages(dir: &Path) -> Vec<Message> {
    let mut out = Vec::new();
    let mut files = vec![dir.to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                files.push(entry.unwrap().path());
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path
                .strip_prefix(dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            out.extend(messages_in(&name, &text));
        }
    }
    out
}

/// The messages of one file's source.
fn messages_in(name: &str, text: &str) -> Vec<Message> {
    let src = text.split("#[cfg(test)]").next().unwrap();
    let line = |at: usize| format!("{name}:{}", src[..at].matches('\n').count() + 1);
    let mut out = Vec::new();
    for (call, fatal) in CALLS {
        for (at, _) in src.match_indices(call) {
            let glued = src[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            if call.ends_with("!(") && glued {
                continue;
            }
            let first = call == "fatal_line(";
            if let Some((text, args)) = first_literal(src, at + call.len(), first) {
                out.push(Message {
                    at: line(at),
                    text,
                    args,
                    fatal,
                });
            }
        }
    }
    for (at, _) in src.match_indices("message: ") {
        if let Some((text, args)) = first_literal(src, at + "message: ".len(), true) {
            out.push(Message {
                at: line(at),
                text,
                args,
                fatal: in_unavailable(src, at),
            });
        }
    }
    out
}

fn word(text: &str, words: &[&str]) -> bool {
    let lower = text.to_lowercase();
    let tokens: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .collect();
    words.iter().any(|w| {
        let w: Vec<&str> = w.split(' ').collect();
        tokens.windows(w.len()).any(|t| t == w.as_slice())
    })
}

/// The `{…}` placeholders of a format string (`{{` left out).
fn placeholders(text: &str) -> Vec<&str> {
    let text_bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if text_bytes[i] == b'{' {
            if text_bytes.get(i + 1) == Some(&b'{') {
                i += 2;
                continue;
            }
            if let Some(end) = text[i..].find('}') {
                out.push(&text[i + 1..i + end]);
                i += end + 1;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Placeholders that carry a whole message made elsewhere (and checked
/// there).
const CARRIED: [&str; 9] = ["0", "1", "why", "message", "msg", "error", "e", "m", "note"];

/// What is wrong with `m`, if anything.
fn problem(m: &Message) -> Option<&'static str> {
    let text = m.text.as_str();
    let holes = placeholders(text);
    let bare: String = {
        let mut s = text.to_string();
        for h in &holes {
            s = s.replacen(&format!("{{{h}}}"), "", 1);
        }
        s
    };
    // Nothing but what another message says ("{error}", "{message} ({})").
    if !bare.chars().any(|c| c.is_alphabetic()) {
        return None;
    }
    // A message made elsewhere, then added to: "{why}; retry 2/5 in 1s".
    if holes
        .first()
        .is_some_and(|h| text.starts_with(&format!("{{{h}}}")) && CARRIED.contains(h))
        || holes.iter().any(|h| ["0", "1", "message"].contains(h))
    {
        return None;
    }
    if EXEMPT.iter().any(|(t, _)| *t == text) {
        return None;
    }
    let name_holes = [
        "path", "file", "name", "source", "target", "shown", "url", "host", "table", "lock",
        "first", "input", "output", "sql", "flag", "server",
    ];
    let names_by_hole = holes.iter().any(|h| {
        let h = h.split(':').next().unwrap_or("");
        name_holes.iter().any(|n| h.starts_with(n))
    });
    // A structured field: `warn!(file = f, line = n, "rejected row: …")`.
    let names_by_field = ["file =", "path =", "url =", "host ="]
        .iter()
        .any(|f| m.args.contains(f));
    let names_by_arg = holes.contains(&"")
        && [
            "display(", "path", "file", "name", "url", "target", "table", "host", "server",
            "origin", "shown", "redacted", "addr", "database",
        ]
        .iter()
        .any(|a| m.args.contains(a));
    let names = text.contains("--")
        || text.contains("PIPELINE_")
        || text.contains("'{")
        || text.contains("}.{")
        || names_by_hole
        || names_by_arg
        || names_by_field
        || word(
            text,
            &[
                "file",
                "files",
                "table",
                "column",
                "columns",
                "mysql",
                "elasticsearch",
                "pushgateway",
                "url",
                "host",
                "standard input",
                "standard output",
                "index",
                "directory",
                "path",
            ],
        );
    if !names {
        return Some("names no flag (--…), file or path, or server (MySQL, Elasticsearch, Pushgateway, URL, host)");
    }
    let step = word(
        text,
        &[
            "must", "need", "needs", "use", "give", "add", "remove", "choose", "set", "create",
            "correct", "delete", "wait", "raise", "check", "name", "write", "leave", "keep", "fix",
            "start", "run", "rename", "grant", "make", "pass", "install", "see", "try", "quote",
            "drop", "put", "lower", "free", "only", "convert", "change",
        ],
    );
    if m.fatal && !step {
        return Some("ends the run but says no next step (use, give, add, remove, check, …)");
    }
    None
}

fn problems(found: &[Message]) -> Vec<String> {
    found
        .iter()
        .filter_map(|m| problem(m).map(|why| format!("{}: {why}:\n    {}", m.at, m.text)))
        .collect()
}

#[test]
fn every_message_names_what_it_is_about_and_a_fatal_one_the_next_step() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = messages(&root.join("src"));
    // The scan finds the messages at all (a changed macro path would hide
    // them).
    assert!(found.len() > 120, "only {} messages found", found.len());
    assert!(found.iter().any(|m| m.fatal && m.text.starts_with("--")));
    let bad = problems(&found);
    assert!(
        bad.is_empty(),
        "{} messages:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// The check fails a message that names nothing, or a fatal one with no
/// next step, and passes them once they do.
#[test]
fn the_check_fails_a_message_that_names_nothing() {
    let src = r#"
fn f(e: std::io::Error, path: &Path) {
    tracing::warn!("something went wrong: {e}");
    tracing::warn!("cannot read {}: {e}", path.display());
    let _ = PipelineError::Config(format!("the value is bad: {e}"));
    let _ = PipelineError::Config(format!("--batch-size is bad: {e}"));
    let _ = PipelineError::Config(format!("--batch-size is bad: {e}; give a number"));
    let _ = PipelineError::Unavailable {
        stage: Stage::Sink,
        message: format!("cannot reach MySQL at {target}"),
    };
}
"#;
    let found = messages_in("x.rs", src);
    assert_eq!(found.len(), 6, "{found:?}");
    let verdicts: Vec<bool> = found.iter().map(|m| problem(m).is_none()).collect();
    let by_text = |t: &str| {
        let i = found.iter().position(|m| m.text.starts_with(t)).unwrap();
        verdicts[i]
    };
    assert!(!by_text("something went wrong"));
    assert!(by_text("cannot read {}"));
    assert!(!by_text("the value is bad"));
    assert!(
        !by_text("cannot reach MySQL"),
        "an Unavailable with no next step"
    );
    let flags: Vec<bool> = found
        .iter()
        .filter(|m| m.text.starts_with("--batch-size"))
        .map(|m| problem(m).is_none())
        .collect();
    assert_eq!(flags, [false, true]);
}
