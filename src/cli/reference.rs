//! The flag reference, `docs/flags.md`: every flag's `--help` text under its
//! heading, as markdown, generated from the flags themselves so it cannot
//! drift from them (`tests/docs.rs` compares it with the file).

use std::fmt::Write;

/// The command that rewrites `docs/flags.md` from the flags.
pub const REGENERATE: &str = "UPDATE_DOCS=1 cargo test --test docs";

/// `docs/flags.md` for `cmd`: its usage, then each help heading in `--help`
/// order with its flags' long help, defaults, environment variables and
/// possible values, then the text `--help` ends with.
pub fn flags_markdown(cmd: &clap::Command) -> String {
    let mut cmd = cmd.clone();
    cmd.build();
    let mut out = String::new();
    let _ = writeln!(out, "# Every flag\n");
    let _ = writeln!(
        out,
        "The text of `pipeline-cli --help`, heading by heading. Generated from the \
         flags themselves: do not edit it by hand; after changing a flag, run\n`{REGENERATE}`.\n"
    );
    let usage = cmd.render_usage().to_string();
    let _ = writeln!(out, "```\n{}\n```\n", usage.trim_end());
    let mut headings: Vec<Option<&str>> = Vec::new();
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        if !headings.contains(&arg.get_help_heading()) {
            headings.push(arg.get_help_heading());
        }
    }
    for heading in &headings {
        let name = heading.unwrap_or("Options");
        let _ = writeln!(out, "- [{name}](#{})", slug(name));
    }
    let after = cmd.get_after_long_help().map(|a| a.to_string());
    if after.is_some() {
        let _ = writeln!(out, "- [Examples and exit codes](#examples-and-exit-codes)");
    }
    for heading in headings {
        let _ = writeln!(out, "\n## {}", heading.unwrap_or("Options"));
        for arg in cmd
            .get_arguments()
            .filter(|a| !a.is_hide_set() && a.get_help_heading() == heading)
        {
            out.push('\n');
            out.push_str(flag_section(arg).trim_end());
            out.push('\n');
        }
    }
    if let Some(after) = after {
        let _ = writeln!(out, "\n## Examples and exit codes\n");
        let _ = writeln!(out, "```\n{}\n```", after.trim_end());
    }
    out
}

/// One flag: a heading with its long name, its spelling with values, its
/// long help, then what `--help` puts in brackets.
fn flag_section(arg: &clap::Arg) -> String {
    let mut out = String::new();
    let name = match (arg.get_long(), arg.get_short()) {
        (Some(long), _) => format!("--{long}"),
        (None, Some(short)) => format!("-{short}"),
        (None, None) => arg.get_id().to_string(),
    };
    let _ = writeln!(out, "### `{name}`\n");
    let _ = writeln!(out, "`{}`\n", spelling(arg));
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    for paragraph in help.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let _ = writeln!(out, "{}\n", escape(paragraph.trim_end()));
    }
    let values: Vec<_> = arg
        .get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .collect();
    if !values.is_empty() && !arg.is_hide_possible_values_set() {
        let _ = writeln!(out, "Possible values:\n");
        for v in values {
            match v.get_help() {
                Some(h) => {
                    let _ = writeln!(out, "- `{}`: {}", v.get_name(), escape(&h.to_string()));
                }
                None => {
                    let _ = writeln!(out, "- `{}`", v.get_name());
                }
            }
        }
        out.push('\n');
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    let shown = arg.get_action().takes_values() && !arg.is_hide_default_value_set();
    if !defaults.is_empty() && shown {
        let _ = writeln!(out, "Default: `{}`\n", defaults.join(","));
    }
    if let Some(env) = arg.get_env() {
        let _ = writeln!(out, "Environment: `{}`\n", env.to_string_lossy());
    }
    out
}

/// How the flag is written with its values: `-q, --quiet`,
/// `--csv-file <PATH|->...`.
fn spelling(arg: &clap::Arg) -> String {
    let mut s = String::new();
    if let Some(short) = arg.get_short() {
        let _ = write!(s, "-{short}");
        if arg.get_long().is_some() {
            s.push_str(", ");
        }
    }
    if let Some(long) = arg.get_long() {
        let _ = write!(s, "--{long}");
    }
    if arg.get_action().takes_values() {
        let names: Vec<String> = match arg.get_value_names() {
            Some(names) => names.iter().map(|n| n.to_string()).collect(),
            None => vec![arg.get_id().to_string().to_uppercase()],
        };
        let optional = arg.get_num_args().is_some_and(|n| n.min_values() == 0);
        for name in names {
            if optional {
                let _ = write!(s, " [{name}]");
            } else {
                let _ = write!(s, " <{name}>");
            }
        }
        if arg.get_num_args().is_some_and(|n| n.max_values() > 1) {
            s.push_str("...");
        }
    }
    s
}

/// `text` with `<` outside code spans written as `&lt;`, so that a value
/// name like `<PATH>` is not taken for an HTML tag.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '<' if !in_code => out.push_str("&lt;"),
            _ => out.push(c),
        }
    }
    out
}

/// The anchor GitHub gives a heading: lower case, punctuation but `-` and
/// `_` dropped, spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}
