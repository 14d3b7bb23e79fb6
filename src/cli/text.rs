//! What the binary prints from its flags alone: `--version`, the man page
//! and shell completions.

/// The version `--version` prints: the package version and the git revision
/// it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("PIPELINE_GIT_REVISION"),
    ")"
);

/// `--man-page` or `--completions SHELL` among `args`: the text to print
/// (the man page, or the completion script), generated from the flags.
/// Checked before the other flags, which they do not need.
pub fn generated_text(
    args: &[std::ffi::OsString],
    command: impl Fn() -> clap::Command,
) -> Option<Result<String, String>> {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.iter().any(|a| a == "--man-page") {
        let mut out = Vec::new();
        return Some(
            clap_mangen::Man::new(command())
                .render(&mut out)
                .map(|_| String::from_utf8_lossy(&out).into_owned())
                .map_err(|e| e.to_string()),
        );
    }
    let i = args
        .iter()
        .position(|a| a == "--completions" || a.starts_with("--completions="))?;
    let name = match args[i].split_once('=') {
        Some((_, v)) => Some(v.to_string()),
        None => args.get(i + 1).cloned(),
    };
    let shells = "bash, zsh, fish, elvish, powershell";
    let Some(name) = name else {
        return Some(Err(format!("--completions needs a shell: {shells}")));
    };
    let Ok(shell) = name.parse::<clap_complete::Shell>() else {
        return Some(Err(format!(
            "--completions '{name}': choose one of {shells}"
        )));
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command(), "pipeline-cli", &mut out);
    Some(Ok(String::from_utf8_lossy(&out).into_owned()))
}
