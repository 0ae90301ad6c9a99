//! The command line (clap derive). Doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Streams BigBlueButton rooms live to Esup-Pod: run `bbb-pod-live run` from cron every minute.
#[derive(Debug, Parser)]
#[command(name = "bbb-pod-live", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "BBB_POD_LIVE_CONFIG",
        default_value = "/etc/bbb-pod-live/config.toml"
    )]
    pub config: PathBuf,

    /// Read and decide everything, print the plan on stdout, change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,

    /// Also print the log on stderr as it is written (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Print only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One cron tick: start requested lives, stop ended ones, hand over recordings.
    Run,
    /// Validate the configuration and reach every dependency; prints a report.
    Check(CheckArgs),
    /// Slots of this server and the live in each.
    Status(StatusArgs),
    /// Stop one live now, through the same path as an automatic stop.
    Stop(StopArgs),
    /// Create slot directories and compose files (idempotent; run does it too).
    Init,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also send a test mail to the admins.
    #[arg(long)]
    pub send_test_mail: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct StopArgs {
    /// The Pod livestream id to stop.
    #[arg(long, value_name = "ID")]
    pub live: Option<u64>,
    /// The slot (1..=server.slots) whose live to stop.
    #[arg(long, value_name = "N")]
    pub slot: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn stop_needs_exactly_one_target() {
        assert!(Cli::try_parse_from(["bbb-pod-live", "stop"]).is_err());
        assert!(
            Cli::try_parse_from(["bbb-pod-live", "stop", "--live", "1", "--slot", "2"]).is_err()
        );
        assert!(Cli::try_parse_from(["bbb-pod-live", "stop", "--slot", "2"]).is_ok());
    }
}
