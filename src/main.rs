use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let _cli = bbb_pod_live::cli::Cli::parse();
    ExitCode::SUCCESS
}
