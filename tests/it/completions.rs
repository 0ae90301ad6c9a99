//! Shell completion as an admin meets it: the script `bbb-pod-live completions bash`
//! prints is sourced in a real `bash`, the completion function it registers for
//! `bbb-pod-live` is called the way bash calls it on <TAB> (`COMP_WORDS`, `COMP_CWORD`,
//! the command, the current and the previous word), and `COMPREPLY` is compared.
//! Grepping the script proved nothing: it named every option while completing none
//! after a subcommand (clap-rs/clap#6421).

use std::path::Path;
use std::process::Command;

use crate::support::BIN;

/// Sources the script given as $1, finds the function `complete -F` registered for
/// bbb-pod-live, and calls it for the words given after it (the last one is the word
/// being completed). Prints one candidate a line.
const HARNESS: &str = r#"
set -u
source "$1" || exit 3
shift
spec=$(complete -p bbb-pod-live) || exit 4
fn=${spec#*-F }
fn=${fn%% *}
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
COMPREPLY=()
"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;

/// What bash offers for `words` (the last is the word under the cursor), with the
/// completion script at `script`.
fn complete(script: &Path, words: &[&str]) -> Vec<String> {
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", HARNESS, "bash"])
        .arg(script)
        .args(words)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("bash runs (it is needed for these tests)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "completing {words:?}: {:?}\n{stderr}",
        out.status
    );
    let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    got.sort();
    got
}

fn bash_script() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .env_clear()
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", out);
    let path = dir.path().join("bbb-pod-live.bash");
    std::fs::write(&path, &out.stdout).unwrap();
    (dir, path)
}

#[test]
fn bash_completes_the_options_of_a_subcommand() {
    let (_dir, script) = bash_script();
    assert_eq!(
        complete(&script, &["bbb-pod-live", "status", "--j"]),
        ["--json"]
    );
    assert_eq!(
        complete(&script, &["bbb-pod-live", "check", "--se"]),
        ["--send-test-mail"]
    );
    let stop = complete(&script, &["bbb-pod-live", "stop", "--"]);
    for option in ["--live", "--slot", "--config", "--dry-run", "--help"] {
        assert!(stop.contains(&option.to_owned()), "{option}: {stop:?}");
    }
    assert!(!stop.contains(&"--json".to_owned()), "{stop:?}");
    // Only where it applies: a command that changes nothing does not offer --dry-run.
    let status = complete(&script, &["bbb-pod-live", "status", "--"]);
    assert!(status.contains(&"--json".to_owned()), "{status:?}");
    assert!(!status.contains(&"--dry-run".to_owned()), "{status:?}");
    // The options of a subcommand that changes things, global ones and --dry-run.
    assert_eq!(
        complete(&script, &["bbb-pod-live", "run", "--dr"]),
        ["--dry-run"]
    );
}

#[test]
fn bash_completes_subcommands_and_values() {
    let (_dir, script) = bash_script();
    assert_eq!(
        complete(&script, &["bbb-pod-live", "st"]),
        ["status", "stop"]
    );
    assert_eq!(
        complete(&script, &["bbb-pod-live", "--dry-run", "--qu"]),
        ["--quiet"]
    );
    assert_eq!(
        complete(&script, &["bbb-pod-live", "completions", "f"]),
        ["fish"]
    );
    assert_eq!(complete(&script, &["bbb-pod-live", "help", "in"]), ["init"]);
}
