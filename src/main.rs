use std::process::ExitCode;

use bbb_pod_live::cli::Cli;
use bbb_pod_live::{Fatal, Outcome};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (result, guard) = bbb_pod_live::run(&cli);
    let code = match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::from(1),
        Ok(Outcome::Interrupted(signal)) => {
            tracing::warn!(
                "interrupted by {}: exiting",
                bbb_pod_live::signals::name(signal)
            );
            ExitCode::from(u8::try_from(128 + signal).unwrap_or(1))
        }
        Err(Fatal::Config(e)) => {
            eprintln!("bbb-pod-live: {e:#}");
            ExitCode::from(2)
        }
        Err(Fatal::Other(e)) => {
            // Goes to the log file and to stderr.
            tracing::error!("{e:#}");
            ExitCode::from(1)
        }
    };
    // Flush the log file before exiting.
    drop(guard);
    code
}
