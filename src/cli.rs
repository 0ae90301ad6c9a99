//! The command line (clap derive). Doc comments are the help text.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

/// Streams BigBlueButton rooms live to Esup-Pod: run `bbb-pod-live run` from cron every minute.
#[derive(Debug, Parser)]
#[command(name = "bbb-pod-live", version, about, long_about = None, after_help = AFTER_HELP)]
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

    /// Read and decide everything, print the plan on stdout, change nothing (run, stop,
    /// init, recordings deliver|discard; also accepted after them).
    #[arg(long)]
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

/// After the options in `--help`: how to see the tool work before configuring it.
const AFTER_HELP: &str = "See it work first: in its source tree, `cargo run --example demo` runs \
this binary's ticks against local stand-ins of Pod, BigBlueButton, docker and a mail server, \
and shows each step (a few seconds, no network, no root).";

impl Cli {
    /// `--dry-run`, given before or after the subcommand.
    pub fn dry_run(&self) -> bool {
        self.dry_run || self.command.dry_run()
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One cron tick: start requested lives, stop ended ones, hand over recordings.
    Run(DryRun),
    /// Validate the configuration and reach every dependency; prints a report.
    Check(CheckArgs),
    /// Slots of this server and the live in each.
    Status(StatusArgs),
    /// Stop one live now, through the same path as an automatic stop.
    Stop(StopArgs),
    /// Create slot directories and compose files (idempotent; run does it too).
    Init(DryRun),
    /// Recordings kept on this server that the tick does not hand over by itself (e.g.
    /// their meeting was deleted in Pod): list, deliver or discard them.
    Recordings(RecordingsArgs),
    /// The webinar gateway for Pod 3.8.2 and later: an HTTP service answering the calls of
    /// Pod's LiveGateways (start, stop, chat) until stopped; run by
    /// bbb-pod-live-serve.service beside the tick. Needs [gateway] in the configuration.
    Serve,
    /// Print a shell completion script on stdout (needs no configuration file).
    ///
    /// bash: `bbb-pod-live completions bash > /etc/bash_completion.d/bbb-pod-live`
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout (needs no configuration file).
    ///
    /// `bbb-pod-live man > /usr/local/share/man/man1/bbb-pod-live.1`
    Man,
}

impl Command {
    /// Commands that only print something derived from this definition: no
    /// configuration is read, no log is started.
    pub fn needs_config(&self) -> bool {
        !matches!(self, Command::Completions(_) | Command::Man)
    }

    /// Whether the command changes files, containers or Pod (`--dry-run` applies to it,
    /// and it writes the day's log file).
    pub fn changes(&self) -> bool {
        match self {
            // `serve` starts and stops streamers; it refuses --dry-run itself.
            Command::Run(_) | Command::Stop(_) | Command::Init(_) | Command::Serve => true,
            Command::Recordings(args) => matches!(
                args.action,
                RecordingsAction::Deliver { .. } | RecordingsAction::Discard { .. }
            ),
            Command::Check(_) | Command::Status(_) | Command::Completions(_) | Command::Man => {
                false
            }
        }
    }

    /// Whether `--dry-run` was given after the subcommand (only those that change
    /// something have it).
    pub fn dry_run(&self) -> bool {
        match self {
            Command::Run(d) | Command::Init(d) => d.dry_run,
            Command::Stop(args) => args.dry_run.dry_run,
            Command::Recordings(args) => match &args.action {
                RecordingsAction::Deliver { dry_run, .. }
                | RecordingsAction::Discard { dry_run, .. } => dry_run.dry_run,
                RecordingsAction::List => false,
            },
            Command::Check(_)
            | Command::Status(_)
            | Command::Serve
            | Command::Completions(_)
            | Command::Man => false,
        }
    }

    /// The subcommand's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Run(_) => "run",
            Command::Check(_) => "check",
            Command::Status(_) => "status",
            Command::Stop(_) => "stop",
            Command::Init(_) => "init",
            Command::Serve => "serve",
            Command::Recordings(_) => "recordings",
            Command::Completions(_) => "completions",
            Command::Man => "man",
        }
    }
}

#[derive(Debug, Args)]
pub struct RecordingsArgs {
    #[command(subcommand)]
    pub action: RecordingsAction,
}

#[derive(Debug, Subcommand)]
pub enum RecordingsAction {
    /// Every recording kept under base_dir: file, size, live, meeting and why it is kept.
    List,
    /// Hand a kept recording over to Pod as `<recordings_dir>/<ID>.mkv` (the tick's
    /// durable path: never overwrites a file there).
    Deliver {
        /// The kept file, as `recordings list` shows it.
        file: PathBuf,
        /// The BBB session's `internal_meeting_id` (a meeting in Pod) to deliver it as.
        #[arg(long = "as", value_name = "INTERNAL_MEETING_ID")]
        as_id: String,
        #[command(flatten)]
        dry_run: DryRun,
    },
    /// Delete a kept recording for good.
    Discard {
        /// The kept file, as `recordings list` shows it.
        file: PathBuf,
        /// Confirm the deletion (refused without it).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        dry_run: DryRun,
    },
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The completion script of `shell` for this command line. Built in memory:
/// clap_complete panics when its writer fails (a closed pipe, say).
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let name = cmd.get_name().to_owned();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name.clone(), &mut out);
    if shell == clap_complete::Shell::Bash {
        out = bash_case_labels_respelled(&String::from_utf8_lossy(&out), &name).into_bytes();
    }
    out
}

/// Works around clap_complete's bash generator (up to 4.6.12 at least, upstream
/// clap-rs/clap#6421 and #6529, open): for a binary name with a hyphen, its dispatch
/// loop computes the state `bbb__pod__live__subcmd__status` but spells the `case`
/// label of that state `bbb__subcmd__pod__subcmd__live__subcmd__status`, so no label
/// ever matched and nothing completed after a subcommand (`status --j<TAB>`). The
/// labels are respelled the way the loop computes them; once upstream is fixed the
/// wrong spelling no longer occurs and this changes nothing. Tested by completing in
/// a real bash (`tests/it/completions.rs`).
fn bash_case_labels_respelled(script: &str, bin_name: &str) -> String {
    if !bin_name.contains('-') {
        return script.to_owned();
    }
    let wrong = format!("{}__subcmd__", bin_name.replace('-', "__subcmd__"));
    let right = format!("{}__subcmd__", bin_name.replace('-', "__"));
    script.replace(&wrong, &right)
}

/// The man page (section 1, roff) of this command line: one page, with a COMMANDS
/// section giving each subcommand's synopsis and options (clap_mangen alone would
/// point at one page per subcommand, which nobody installs).
pub fn man_page() -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = render_man_page(&mut out);
    out
}

fn render_man_page(out: &mut Vec<u8>) -> std::io::Result<()> {
    use roff::Roff;
    let mut cmd = Cli::command();
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    let mut page = Roff::new();
    page.control("SH", ["COMMANDS"]);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        command_entry(&mut page, sub, sub.get_name());
    }
    tagged_section(
        &mut page,
        "EXIT STATUS",
        &[
            (
                "0",
                "Done (also: another run held the lock, so this one did nothing).",
            ),
            (
                "1",
                "It ran, but at least one action or check failed; see the day's log in server.log_dir (check: its FAIL lines).",
            ),
            ("2", "Configuration or usage error: nothing was touched."),
        ],
    );
    tagged_section(
        &mut page,
        "ENVIRONMENT",
        &[
            (
                "BBB_POD_LIVE_CONFIG",
                "The configuration file when --config is not given.",
            ),
            (crate::config::ENV_BBB_SECRET, "Overrides bbb.secret."),
            (crate::config::ENV_POD_TOKEN, "Overrides pod.token."),
            (
                crate::config::ENV_SMTP_PASSWORD,
                "Overrides mail.smtp_password.",
            ),
            (crate::config::ENV_GATEWAY_TOKEN, "Overrides gateway.token."),
        ],
    );
    tagged_section(&mut page, "FILES", MAN_FILES);
    tagged_section(&mut page, "EXAMPLES", MAN_EXAMPLES);
    page.to_writer(out)?;
    man.render_version_section(out)
}

/// One subcommand of the COMMANDS section: its synopsis (clap's own usage line, e.g.
/// `bbb-pod-live stop [OPTIONS] <--live <ID>|--slot <N>>`), what it does and its own
/// options, then each of its subcommands (`recordings list`, `recordings deliver` …)
/// the same way, so that the page has every subcommand and option `--help` has.
fn command_entry(page: &mut roff::Roff, sub: &clap::Command, path: &str) {
    use roff::{bold, roman};
    let usage = sub.clone().render_usage().to_string();
    let usage = usage.trim().trim_start_matches("Usage:").trim().to_owned();
    page.control("SS", [path]);
    page.text([bold(usage)]);
    if let Some(about) = sub.get_long_about().or(sub.get_about()) {
        page.control("PP", [] as [&str; 0]);
        page.text([roman(about.to_string())]);
    }
    for arg in own_arguments(sub) {
        page.control("TP", [] as [&str; 0]);
        page.text(arg_inlines(arg));
        let mut help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(ToString::to_string)
            .unwrap_or_default();
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_owned())
            .collect();
        if !values.is_empty() {
            help.push_str(&format!(" [possible values: {}]", values.join(", ")));
        }
        page.text([roman(help)]);
    }
    for nested in sub.get_subcommands().filter(|s| s.get_name() != "help") {
        command_entry(page, nested, &format!("{path} {}", nested.get_name()));
    }
}

/// The arguments a subcommand has of its own: not the global ones (the OPTIONS section
/// has them), nor hidden ones, nor `--help`/`--version`.
fn own_arguments(sub: &clap::Command) -> impl Iterator<Item = &clap::Arg> {
    sub.get_arguments().filter(|a| {
        !a.is_global_set() && !a.is_hide_set() && a.get_id() != "help" && a.get_id() != "version"
    })
}

/// The FILES section of the man page: the defaults, and what the Debian package installs.
const MAN_FILES: &[(&str, &str)] = &[
    (
        "/etc/bbb-pod-live/config.toml",
        "The default configuration file (mode 0600: it holds secrets).",
    ),
    (
        "/var/lib/bbb-pod-live",
        "The default server.base_dir: slot directories, state, recordings waiting.",
    ),
    (
        "/var/log/bbb-pod-live",
        "The default server.log_dir: one log file per day.",
    ),
    (
        "bbb-pod-live.timer, bbb-pod-live.service",
        "The systemd units that run `run` every minute (the Debian package installs \
         them without enabling them: systemctl enable --now bbb-pod-live.timer).",
    ),
    (
        "bbb-pod-live-serve.service",
        "The systemd unit that runs `serve`, the webinar gateway of Pod 3.8.2 and later \
         (installed, not enabled: systemctl enable --now bbb-pod-live-serve.service).",
    ),
    (
        "/etc/cron.d/bbb-pod-live",
        "The cron alternative to the timer (commented out by the Debian package).",
    ),
];

/// The EXAMPLES section of the man page.
const MAN_EXAMPLES: &[(&str, &str)] = &[
    (
        "cargo run --example demo",
        "In the source tree: the main job start to finish on this machine alone. The \
         real binary's ticks run against local stand-ins (Pod, BigBlueButton, a docker \
         that records with ffmpeg, a mail sink) in a temporary directory, showing each \
         tick's plan and log, the slot's compose file, the mails, the recording handed \
         over and status at each step, then a webinar started and stopped through serve \
         with Pod 4.1's requests (--keep keeps the directory).",
    ),
    (
        "bbb-pod-live check",
        "After editing the configuration: every dependency, one line each.",
    ),
    (
        "bbb-pod-live --dry-run run",
        "What the next tick would do, changing nothing.",
    ),
    (
        "bbb-pod-live status",
        "The slots of this server and the live in each.",
    ),
    (
        "bbb-pod-live stop --live 42",
        "Stop live 42 now, as its meeting's end would.",
    ),
];

/// A man page section of tagged paragraphs: each item's first part in bold, then
/// what it means.
fn tagged_section(page: &mut roff::Roff, title: &str, items: &[(&str, &str)]) {
    use roff::{bold, roman};
    page.control("SH", [title]);
    for (tag, what) in items {
        page.control("TP", [] as [&str; 0]);
        page.text([bold(*tag)]);
        page.text([roman(*what)]);
    }
}

/// `--live <ID>` or `<SHELL>` as roff inlines.
fn arg_inlines(arg: &clap::Arg) -> Vec<roff::Inline> {
    use roff::{bold, italic, roman};
    let value = arg
        .get_value_names()
        .and_then(|v| v.first())
        .map(|v| v.to_string())
        .unwrap_or_else(|| arg.get_id().to_string().to_uppercase());
    match arg.get_long() {
        Some(long) if arg.get_num_args().is_some_and(|n| n.takes_values()) => {
            vec![
                bold(format!("--{long}")),
                roman(" "),
                italic(format!("<{value}>")),
            ]
        }
        Some(long) => vec![bold(format!("--{long}"))],
        None => vec![italic(format!("<{value}>"))],
    }
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
#[group(skip)]
#[command(group(clap::ArgGroup::new("target").required(true).multiple(false).args(["live", "slot"])))]
pub struct StopArgs {
    /// The Pod livestream id to stop.
    #[arg(long, value_name = "ID")]
    pub live: Option<u64>,
    /// The slot (1..=server.slots) whose live to stop.
    #[arg(long, value_name = "N")]
    pub slot: Option<u32>,
    #[command(flatten)]
    pub dry_run: DryRun,
}

/// `--dry-run` after a subcommand that changes something: offered only there (and, for
/// the form `bbb-pod-live --dry-run run`, before the subcommand).
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct DryRun {
    /// Read and decide everything, print what would be done on stdout, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// `--dry-run` is offered by the subcommands that change something, after them or
    /// before them, and by no other: a command that changes nothing has no such option.
    #[test]
    fn dry_run_is_offered_only_where_it_applies() {
        let dry = |args: &[&str]| {
            let mut all = vec!["bbb-pod-live"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all).map(|c| c.dry_run())
        };
        for args in [
            &["--dry-run", "run"][..],
            &["run", "--dry-run"],
            &["init", "--dry-run"],
            &["--dry-run", "stop", "--live", "1"],
            &["stop", "--slot", "1", "--dry-run"],
            &["recordings", "deliver", "f.mkv", "--as", "x", "--dry-run"],
            &["recordings", "discard", "f.mkv", "--yes", "--dry-run"],
        ] {
            assert_eq!(dry(args).ok(), Some(true), "{args:?}");
        }
        assert_eq!(dry(&["run"]).ok(), Some(false));
        for args in [
            &["status", "--dry-run"][..],
            &["check", "--dry-run"],
            &["recordings", "list", "--dry-run"],
            &["man", "--dry-run"],
            &["completions", "bash", "--dry-run"],
        ] {
            assert!(dry(args).is_err(), "{args:?} accepted --dry-run");
        }
        let mut cmd = Cli::command();
        cmd.build();
        for (path, offered) in [
            (&["status"][..], false),
            (&["check"], false),
            (&["man"], false),
            (&["recordings", "list"], false),
            (&["run"], true),
            (&["stop"], true),
            (&["init"], true),
            (&["recordings", "discard"], true),
        ] {
            let mut sub = &cmd;
            for name in path {
                sub = sub.find_subcommand(name).expect("a subcommand");
            }
            let help = sub.clone().render_help().to_string();
            assert_eq!(help.contains("--dry-run"), offered, "{path:?}:\n{help}");
        }
    }

    #[test]
    fn completions_and_man_need_no_configuration() {
        let cli = Cli::try_parse_from(["bbb-pod-live", "completions", "zsh"]).expect("parses");
        assert!(!cli.command.needs_config());
        let cli = Cli::try_parse_from(["bbb-pod-live", "man"]).expect("parses");
        assert!(!cli.command.needs_config());
        let cli = Cli::try_parse_from(["bbb-pod-live", "status"]).expect("parses");
        assert!(cli.command.needs_config());
        assert!(Cli::try_parse_from(["bbb-pod-live", "completions", "cmd.exe"]).is_err());
    }

    #[test]
    fn bash_case_labels_are_spelled_as_the_dispatch_loop_computes_them() {
        let text = String::from_utf8(completions(clap_complete::Shell::Bash)).expect("utf-8");
        assert!(
            text.contains("cmd=\"bbb__pod__live__subcmd__status\""),
            "{text}"
        );
        assert!(
            text.contains("\n        bbb__pod__live__subcmd__status)\n"),
            "{text}"
        );
        assert!(!text.contains("bbb__subcmd__pod"), "{text}");
        // Names without a hyphen are left alone.
        assert_eq!(
            bash_case_labels_respelled("a__subcmd__b", "tool"),
            "a__subcmd__b"
        );
    }

    #[test]
    fn the_man_page_names_the_files_the_package_installs() {
        let page = String::from_utf8(man_page()).expect("utf-8");
        let files = &page[page.find(".SH FILES").expect("a FILES section")..];
        for file in [
            "/etc/bbb\\-pod\\-live/config.toml",
            "/var/lib/bbb\\-pod\\-live",
            "/var/log/bbb\\-pod\\-live",
            "bbb\\-pod\\-live.timer",
            "/etc/cron.d/bbb\\-pod\\-live",
        ] {
            assert!(files.contains(file), "{file} missing:\n{files}");
        }
    }

    /// Every subcommand, nested ones included, and every option of each, as `--help`
    /// shows them, is on the man page.
    #[test]
    fn the_man_page_has_every_subcommand_and_option() {
        fn walk(cmd: &clap::Command, path: String, out: &mut Vec<(String, Vec<String>)>) {
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let path = format!("{path} {}", sub.get_name()).trim().to_owned();
                let options = own_arguments(sub)
                    .map(|a| match a.get_long() {
                        Some(long) => format!("\\-\\-{}", long.replace('-', "\\-")),
                        None => format!(
                            "<{}>",
                            a.get_value_names()
                                .and_then(|v| v.first())
                                .map(|v| v.to_string())
                                .unwrap_or_else(|| a.get_id().to_string().to_uppercase())
                        ),
                    })
                    .collect();
                out.push((path.clone(), options));
                walk(sub, path, out);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut all = Vec::new();
        walk(&cmd, String::new(), &mut all);
        let page = String::from_utf8(man_page()).expect("utf-8");
        let names: Vec<&str> = all.iter().map(|(p, _)| p.as_str()).collect();
        for name in [
            "recordings list",
            "recordings deliver",
            "recordings discard",
        ] {
            assert!(
                names.contains(&name),
                "{name} not in the command tree: {names:?}"
            );
        }
        for (path, options) in &all {
            let name = path.replace('-', "\\-");
            // roff quotes a heading of several words.
            let heading = if path.contains(' ') {
                format!(".SS \"{name}\"")
            } else {
                format!(".SS {name}")
            };
            let start = page
                .find(&format!("{heading}\n"))
                .unwrap_or_else(|| panic!("no {heading} in the man page:\n{page}"));
            let entry = &page[start + heading.len()..];
            let entry = &entry[..entry.find(".SS ").unwrap_or(entry.len())];
            for option in options {
                assert!(
                    entry.contains(option.as_str()),
                    "{path}: {option} missing:\n{entry}"
                );
            }
        }
        // Global options are in the OPTIONS section.
        for option in ["\\-\\-config", "\\-\\-dry\\-run", "\\-\\-verbose"] {
            assert!(page.contains(option), "{option} missing");
        }
    }

    #[test]
    fn help_and_man_page_point_at_the_demo() {
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("cargo run --example demo"), "{help}");
        let page = String::from_utf8(man_page()).expect("utf-8");
        let examples = &page[page.find(".SH EXAMPLES").expect("an EXAMPLES section")..];
        assert!(
            examples.contains("cargo run \\-\\-example demo"),
            "{examples}"
        );
    }

    #[test]
    fn completion_scripts_name_every_subcommand() {
        for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Fish] {
            let text = String::from_utf8(completions(shell)).expect("utf-8");
            for sub in ["run", "check", "status", "stop", "init", "dry-run"] {
                assert!(text.contains(sub), "{shell}: {sub} missing");
            }
        }
    }
}
