//! The process exit code. Every way a process of pipeline-cli can end is
//! mapped to its code here, and nowhere else.

use crate::error::{ExitCode, PipelineError};
use crate::pipeline::{Outcome, RunSummary};

/// How the process ends.
#[derive(Debug, Clone, Copy)]
pub enum Ending<'a> {
    /// It did what was asked without running a pipeline: printed the help
    /// text, a completion script, `--check`'s plan, a point in time's id.
    Done,
    /// clap refused a flag.
    Usage,
    /// An error kept the run from starting, or `--check` found one.
    Error(&'a PipelineError),
    /// A stop signal (its number) ended the process.
    Signal(i32),
    /// The pipeline finished: how, with which error, after reading what.
    Run(&'a RunSummary),
    /// The run ended with this code, then its own record of the run (the
    /// textfile, a push `--push-required` asks for, the summary file) could
    /// not be written: a run that had succeeded fails.
    RecordLost(ExitCode),
}

/// The exit code of a process that ends so.
pub fn exit_code(ending: Ending<'_>) -> ExitCode {
    match ending {
        Ending::Done => ExitCode::Success,
        Ending::Usage => ExitCode::Usage,
        Ending::Error(PipelineError::Busy(_)) => ExitCode::Locked,
        Ending::Error(e) if e.is_usage() => ExitCode::Usage,
        Ending::Error(_) => ExitCode::Failed,
        Ending::Signal(libc::SIGTERM) => ExitCode::Terminated,
        Ending::Signal(libc::SIGHUP) => ExitCode::Hangup,
        Ending::Signal(_) => ExitCode::Interrupted,
        Ending::Run(s) => match (&s.error, s.outcome) {
            // A configuration error found before anything was read
            // (credentials refused on the first page) is a usage error, as
            // when it is found at start.
            (Some(e), _) if s.counts.read == 0 && e.is_usage() => ExitCode::Usage,
            (_, Outcome::Success | Outcome::FailuresAccepted) => ExitCode::Success,
            (_, Outcome::RecordsFailed | Outcome::Failed) => ExitCode::Failed,
            (_, Outcome::Interrupted(sig)) => exit_code(Ending::Signal(sig)),
        },
        Ending::RecordLost(ExitCode::Success) => ExitCode::Failed,
        Ending::RecordLost(code) => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_signals_and_lost_records() {
        let busy = PipelineError::Busy("held".into());
        assert_eq!(exit_code(Ending::Error(&busy)), ExitCode::Locked);
        let config = PipelineError::Config("bad".into());
        assert_eq!(exit_code(Ending::Error(&config)), ExitCode::Usage);
        let push = PipelineError::Push("down".into());
        assert_eq!(exit_code(Ending::Error(&push)), ExitCode::Failed);
        assert_eq!(exit_code(Ending::Signal(libc::SIGTERM)).code(), 143);
        assert_eq!(exit_code(Ending::Signal(libc::SIGHUP)).code(), 129);
        assert_eq!(exit_code(Ending::Signal(libc::SIGINT)).code(), 130);
        assert_eq!(
            exit_code(Ending::RecordLost(ExitCode::Success)),
            ExitCode::Failed
        );
        assert_eq!(
            exit_code(Ending::RecordLost(ExitCode::Terminated)),
            ExitCode::Terminated
        );
    }
}
