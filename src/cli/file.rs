//! The arguments before clap sees them: snake_case flag names become
//! kebab-case (`--source_type` is `--source-type`), and the settings of a
//! `--config` TOML file become flags placed before the command line's own,
//! except those the command line gives itself: a value on the command line
//! replaces the file's (a list as a whole, never added to it), and those
//! whose environment variable is set (command line > environment > file).
//! Secrets are refused in the file in every form.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::PipelineError;

use super::Cli;

/// Spells every flag name in kebab-case (`--csv_file=x` -> `--csv-file=x`),
/// up to a bare `--`. Values are left alone.
pub(super) fn kebab_case(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut flags = true;
    for (i, arg) in args.into_iter().enumerate() {
        let text = arg.to_string_lossy();
        if i == 0 || !flags || !text.starts_with("--") {
            out.push(arg);
            continue;
        }
        if text == "--" {
            flags = false;
            out.push(arg);
            continue;
        }
        let (name, value) = match text.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (&*text, None),
        };
        let mut fixed = format!("--{}", name[2..].replace('_', "-"));
        if let Some(v) = value {
            fixed.push('=');
            fixed.push_str(v);
        }
        out.push(fixed.into());
    }
    out
}

/// The name closest to `wanted` (edit distance at most a third of its
/// length), for a "did you mean" hint.
fn closest<'a>(wanted: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
                prev = cur;
            }
        }
        row[b.len()]
    }
    names
        .map(|n| (distance(wanted, n), n))
        .filter(|(d, _)| *d <= (wanted.len() / 3).max(1))
        .min()
        .map(|(_, n)| n)
}

/// A flag that holds a secret (`--db-pass`, `--es-pass`, `--es-api-key`):
/// one whose environment variable's value is hidden. Never read from a
/// config file.
pub(super) fn is_secret(arg: &clap::Arg) -> bool {
    arg.is_hide_env_values_set()
}

/// The ids of the flags the command line `args` gives itself (not the
/// environment, not defaults). Its other mistakes (a missing required flag,
/// a bad value) are left for the real parse to report.
fn given_on_command_line(command: &clap::Command, args: &[OsString]) -> Vec<clap::Id> {
    let Ok(matches) = command
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(args)
    else {
        return Vec::new();
    };
    matches
        .ids()
        .filter(|id| {
            matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine)
        })
        .cloned()
        .collect()
}

/// The command line with the settings of `--config FILE` (if given) put in
/// front, leaving out every flag the command line gives itself: its value
/// replaces the file's, for lists (`--csv-file`) as for single values.
/// Also returns what the run should log (at info level) about the file:
/// each setting left out because its flag's environment variable is set
/// (command line > environment > config file).
pub fn with_config_file_noting(
    args: Vec<OsString>,
) -> Result<(Vec<OsString>, Vec<String>), PipelineError> {
    with_config_file_in(args, &|name| std::env::var_os(name))
}

/// [`with_config_file_noting`] with the environment `env`. A setting whose
/// flag has an environment variable that `env` sets (not empty) is left out,
/// so that variable decides, as it does with no file; the note names the
/// setting and the variable, never a value (some are secrets).
pub(super) fn with_config_file_in(
    args: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<(Vec<OsString>, Vec<String>), PipelineError> {
    use clap::CommandFactory;
    let mut notes = Vec::new();
    let args = kebab_case(args);
    let Some(path) = config_path(&args) else {
        return Ok((args, notes));
    };
    let shown = path.display().to_string();
    let table = read_table(&path, &shown)?;
    let command = Cli::command();
    let given = given_on_command_line(&command, &args);
    let mut injected: Vec<OsString> = Vec::new();
    for (key, value) in table {
        let flag = key.replace('_', "-");
        let arg = setting_flag(&command, &flag, &key, &shown)?;
        if value_holds_password(&value) {
            return Err(PipelineError::Config(format!(
                "--config {shown}: '{key}' holds a password; set it in the environment (PIPELINE_DB_PASS, PIPELINE_ES_PASS) instead"
            )));
        }
        if given.contains(arg.get_id()) {
            continue;
        }
        if let Some(var) = arg.get_env() {
            let var = var.to_string_lossy();
            if env(&var).is_some_and(|v| !v.is_empty()) {
                notes.push(format!(
                    "--config {shown}: '{key}' left out: the environment variable {var} is set, and it takes precedence over the file"
                ));
                continue;
            }
        }
        let setting = Setting {
            arg,
            flag: &flag,
            key: &key,
            shown: &shown,
        };
        injected.extend(setting.args(value, env)?);
    }
    let mut out = Vec::with_capacity(args.len() + injected.len());
    out.push(args[0].clone());
    out.extend(injected);
    out.extend(args.into_iter().skip(1));
    Ok((out, notes))
}

/// The path of `--config PATH` or `--config=PATH` among `args`, the last
/// one given.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut path: Option<PathBuf> = None;
    let mut iter = args.iter().skip(1);
    while let Some(a) = iter.next() {
        let a = a.to_string_lossy();
        if a == "--config" {
            path = iter.next().map(PathBuf::from);
        } else if let Some(p) = a.strip_prefix("--config=") {
            path = Some(PathBuf::from(p));
        }
    }
    path
}

/// The settings of the TOML file at `path` (shown as `shown`); a syntax
/// error names its line and column.
fn read_table(path: &std::path::Path, shown: &str) -> Result<toml::Table, PipelineError> {
    let text = std::fs::read_to_string(path).map_err(|source| PipelineError::OpenInput {
        what: "--config",
        path: path.to_path_buf(),
        source,
    })?;
    text.parse().map_err(|e: toml::de::Error| {
        let at = e
            .span()
            .map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(" (line {line}, column {column})")
            })
            .unwrap_or_default();
        PipelineError::Config(format!(
            "--config {shown}{at}: {}; correct the TOML there",
            e.message().trim()
        ))
    })
}

/// The flag a setting `key` (spelt `flag` in kebab-case) sets: refused if
/// it is a secret or no flag (with a "did you mean" hint).
fn setting_flag<'a>(
    command: &'a clap::Command,
    flag: &str,
    key: &str,
    shown: &str,
) -> Result<&'a clap::Arg, PipelineError> {
    let arg = command
        .get_arguments()
        .find(|a| a.get_long() == Some(flag) && flag != "config")
        .ok_or_else(|| {
            let names = command
                .get_arguments()
                .filter_map(|a| a.get_long())
                .filter(|n| *n != "config");
            let hint = closest(flag, names)
                .map(|n| format!(" (did you mean '{n}'?)"))
                .unwrap_or_default();
            PipelineError::Config(format!(
                "--config {shown}: unknown setting '{key}'{hint}; correct it, or remove it"
            ))
        })?;
    if is_secret(arg) {
        return Err(PipelineError::Config(format!(
            "--config {shown}: '{key}' is a secret; set it in the environment (PIPELINE_DB_PASS, PIPELINE_ES_PASS, PIPELINE_ES_API_KEY) instead"
        )));
    }
    Ok(arg)
}

/// One setting of the file, for the flag `arg`.
struct Setting<'a> {
    arg: &'a clap::Arg,
    flag: &'a str,
    key: &'a str,
    shown: &'a str,
}

impl Setting<'_> {
    /// The arguments that give the flag the setting's `value`: a flag
    /// taking several values gets a TOML list's items as its values; any
    /// other flag gets them joined with commas; a switch set to true is
    /// given bare.
    fn args(
        &self,
        value: toml::Value,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Vec<OsString>, PipelineError> {
        let (flag, key, shown) = (self.flag, self.key, self.shown);
        let takes_value = self.arg.get_action().takes_values();
        let many = self.arg.get_num_args().is_some_and(|n| n.max_values() > 1)
            || matches!(self.arg.get_action(), clap::ArgAction::Append);
        let expand = |s: &str| {
            expand_env(s, |name| {
                env(name).map(|v| v.to_string_lossy().into_owned())
            })
            .map_err(|e| {
                PipelineError::Config(format!("--config {shown}: '{key}': {e}; correct its value"))
            })
        };
        let text = match value {
            toml::Value::String(s) => expand(&s)?,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) if !takes_value => {
                return Ok(if b {
                    vec![format!("--{flag}").into()]
                } else {
                    Vec::new()
                });
            }
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => {
                let items = items
                    .iter()
                    .map(|v| match v {
                        toml::Value::String(s) => expand(s),
                        other => Ok(other.to_string()),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if many && takes_value {
                    return Ok(items
                        .into_iter()
                        .map(|item| format!("--{flag}={item}").into())
                        .collect());
                }
                items.join(",")
            }
            // A table for a repeatable KEY=VALUE flag (`[rename]` with
            // `a = "b"`): one `--flag=key=value` per entry.
            toml::Value::Table(entries) if many && takes_value => {
                return entries
                    .iter()
                    .map(|(k, v)| match v {
                        toml::Value::String(s) => Ok(format!("--{flag}={k}={}", expand(s)?).into()),
                        other => Err(PipelineError::Config(format!(
                            "--config {shown}: '{key}.{k}' must be a string, not {}",
                            other.type_str()
                        ))),
                    })
                    .collect();
            }
            other => {
                return Err(PipelineError::Config(format!(
                    "--config {shown}: '{key}' must be a string, number, boolean or list, not {}",
                    other.type_str()
                )))
            }
        };
        if !takes_value {
            return Err(PipelineError::Config(format!(
                "--config {shown}: '{key}' is a switch; write {key} = true"
            )));
        }
        Ok(vec![format!("--{flag}={text}").into()])
    }
}

/// Replaces `${NAME}` with the environment variable NAME and
/// `${NAME:-default}` with it or, when it is unset or empty, the default;
/// `$${` is a literal `${`. An unset NAME without a default is an error, so
/// a file deployed without its environment fails at once.
pub(super) fn expand_env(
    text: &str,
    var: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(lit) = after.strip_prefix("${") {
            out.push_str("${");
            rest = lit;
            continue;
        }
        let Some(inner) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let end = inner
            .find('}')
            .ok_or_else(|| format!("'${{' without a closing '}}' in \"{text}\""))?;
        let (name, default) = match inner[..end].split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (&inner[..end], None),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("'${{{}}}' is not a variable name", &inner[..end]));
        }
        match (var(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "the environment variable {name} is not set (give a default with ${{{name}:-value}})"
                ))
            }
        }
        rest = &inner[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// True when `text` holds a URL with a password in any of the forms the
/// flags accept: `scheme://user:pass@host`, a bare `user:pass@host:port`, or
/// either as one part of a comma-separated list.
pub(super) fn holds_password(text: &str) -> bool {
    text.split(',').map(str::trim).any(|part| {
        let with_scheme = if part.contains("://") {
            part.to_string()
        } else {
            format!("http://{part}")
        };
        if url::Url::parse(&with_scheme).is_ok_and(|u| u.password().is_some()) {
            return true;
        }
        // Forms the URL parser refuses still hold a secret: `user:pass@host`
        // (user info made of URL characters, then a host name).
        let rest = part.split_once("://").map_or(part, |(_, r)| r);
        rest.split_once('@').is_some_and(|(userinfo, host)| {
            userinfo.contains(':')
                && userinfo
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+;=:".contains(&b))
                && host
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'[')
        })
    })
}

/// [`holds_password`] for a TOML value of any type (lists included).
pub(super) fn value_holds_password(value: &toml::Value) -> bool {
    match value {
        toml::Value::String(s) => holds_password(s),
        toml::Value::Array(items) => items.iter().any(value_holds_password),
        toml::Value::Table(t) => t.values().any(value_holds_password),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{expand_env, with_config_file_in};

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn variables_expand_with_defaults_and_unset_ones_are_named() {
        assert_eq!(
            expand_env("mysql://${HOST}:3306", env).unwrap(),
            "mysql://db1:3306"
        );
        assert_eq!(
            expand_env("${NOPE:-/var/lib}/x", env).unwrap(),
            "/var/lib/x"
        );
        assert_eq!(expand_env("${EMPTY:-d}", env).unwrap(), "d");
        assert_eq!(
            expand_env("cost $5, $${HOST}", env).unwrap(),
            "cost $5, ${HOST}"
        );
        let e = expand_env("${NOPE}/x", env).unwrap_err();
        assert!(e.contains("NOPE is not set"), "{e}");
        assert!(expand_env("${HOST", env).is_err());
        assert!(expand_env("${a b}", env).is_err());
    }

    /// Every flag with an environment variable, set in a --config file
    /// while its variable is set: the file's setting is left out (the
    /// variable decides: command line > environment > file), with a note
    /// naming the setting and the variable but no value. Unset or empty,
    /// the file's value is used. Found from the definition, so a new flag
    /// with a variable is covered.
    #[test]
    fn an_environment_variable_beats_the_config_file_for_every_flag() {
        use clap::CommandFactory;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("job.toml");
        let command = super::super::Cli::command();
        let mut checked = Vec::new();
        for arg in command.get_arguments() {
            let (Some(long), Some(var)) = (arg.get_long(), arg.get_env()) else {
                continue;
            };
            let var = var.to_string_lossy().into_owned();
            let in_file = if arg.get_action().takes_values() {
                format!("{long} = \"from-the-file\"\n")
            } else {
                format!("{long} = true\n")
            };
            std::fs::write(&file, &in_file).unwrap();
            let argv = || -> Vec<std::ffi::OsString> {
                vec![
                    "pipeline-cli".into(),
                    "--config".into(),
                    file.clone().into_os_string(),
                ]
            };
            let from_file = |a: &std::ffi::OsString| {
                let a = a.to_string_lossy();
                a == format!("--{long}") || a.starts_with(&format!("--{long}="))
            };
            let set = |value: &'static str| {
                let var = var.clone();
                move |name: &str| (name == var).then(|| value.into())
            };
            if super::is_secret(arg) {
                // Refused in the file whatever the environment holds.
                let e = with_config_file_in(argv(), &set("hunter5")).unwrap_err();
                assert!(e.to_string().contains("secret"), "--{long}: {e}");
                continue;
            }
            let (args, notes) = with_config_file_in(argv(), &set("hunter5")).unwrap();
            assert!(!args.iter().any(from_file), "--{long}: {args:?}");
            assert_eq!(notes.len(), 1, "--{long}: {notes:?}");
            assert!(
                notes[0].contains(&format!("'{long}'")) && notes[0].contains(&var),
                "--{long}: {notes:?}"
            );
            assert!(
                !notes[0].contains("hunter5") && !notes[0].contains("from-the-file"),
                "--{long}: {notes:?}"
            );
            for unset in [Some(""), None] {
                let unset = |name: &str| unset.filter(|_| name == var).map(Into::into);
                let (args, notes) = with_config_file_in(argv(), &unset).unwrap();
                assert_eq!(
                    args.iter().filter(|a| from_file(a)).count(),
                    1,
                    "--{long}: {args:?}"
                );
                assert!(notes.is_empty(), "--{long}: {notes:?}");
            }
            checked.push(long.to_string());
        }
        for must in ["input-shard", "es-slice-id", "es-pit-id"] {
            assert!(checked.iter().any(|c| c == must), "{checked:?}");
        }
    }
}
