//! `stop`: the admin stops one live by hand (by live or by slot), through the tick's
//! stop path, under the tick lock, and hands its recording over in the same run.

use std::sync::Arc;

use anyhow::anyhow;

use super::outcome::{Fatal, Outcome, lock_waiting, print_lines};
use crate::cli::StopArgs;
use crate::config::Config;
use crate::model::StopReason;
use crate::tick::{self, Ctx};

/// Stops the live `args` names (`dry_run`: says what it would stop).
pub async fn stop(cfg: Arc<Config>, args: &StopArgs, dry_run: bool) -> Result<Outcome, Fatal> {
    let ctx = Ctx::new(Arc::clone(&cfg)).map_err(Fatal::Config)?;
    let (states, broken) = ctx.slots.load_all()?;
    let found = match (args.live, args.slot) {
        (Some(live), _) => states.iter().find(|(_, s)| s.live == live),
        (None, Some(slot)) => states.iter().find(|(n, _)| **n == slot),
        (None, None) => None,
    };
    let Some((&slot, state)) = found else {
        return Err(Fatal::Config(anyhow!(nothing_to_stop(&cfg, args, &broken))));
    };
    if dry_run {
        print_lines(&[format!(
            "stop live {} in slot {slot}: {}",
            state.live,
            StopReason::ByHand.describe()
        )])?;
        return Ok(Outcome::Done);
    }
    let wanted = state.live;
    let _lock = lock_waiting(&cfg)?;
    // A tick may have stopped that live, and started another in its slot, while this
    // waited for the lock: stop only the live that was asked for.
    let state = match ctx.slots.load(slot)? {
        Some(s) if s.live == wanted => s,
        Some(s) => {
            return Err(Fatal::Other(anyhow!(
                "live {wanted} was stopped meanwhile and slot {slot} now runs live {}: nothing done",
                s.live
            )));
        }
        None => {
            return Err(Fatal::Other(anyhow!(
                "live {wanted} was stopped meanwhile (slot {slot} is free): nothing done"
            )));
        }
    };
    // Pod's view decides how the live is closed; if Pod cannot be read, the container
    // still stops now and the live is closed in Pod as soon as Pod answers (this run,
    // or else the next tick).
    let live = match ctx.pod.livestream(state.live).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("reading live {} from Pod: {e}", state.live);
            None
        }
    };
    let mut report = tick::TickReport {
        problems: tick::stop(&ctx, slot, state, Some(StopReason::ByHand), live.as_ref()).await?,
        ..Default::default()
    };
    // The admin waiting at the terminal wants the recording in Pod now, not a minute
    // later: hand it over in this run (what cannot be is retried by the next tick).
    tick::hand_over_recordings(&ctx, false, &mut report).await;
    tick::keep_unconfirmed(&ctx);
    report.log_problems();
    if report.ok() {
        print_lines(&[format!(
            "live {wanted} stopped (slot {slot} is free, the live closed in Pod)"
        )])?;
    } else {
        print_lines(&[format!(
            "live {wanted}: the stop is not complete (see the errors above); slot {slot} \
             stays \"stopping\" and the next tick finishes it"
        )])?;
    }
    Ok(Outcome::from_ok(report.ok()))
}

/// Why `stop` found nothing to stop, one story per case (a corrupt slot's included).
fn nothing_to_stop(cfg: &Config, args: &StopArgs, broken: &crate::slots::BrokenSlots) -> String {
    match (args.live, args.slot) {
        (Some(l), _) if !broken.is_empty() => format!(
            "live {l} runs in no readable slot of this server; slot(s) {} have a state \
             file that cannot be read: see `bbb-pod-live check`",
            broken
                .iter()
                .map(|b| b.0.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (Some(l), _) => format!("live {l} runs in no slot of this server"),
        (None, Some(s)) => match broken.iter().find(|b| b.0 == s) {
            Some((_, e)) => crate::slots::corrupt_story(s, e, &cfg.server.base_dir),
            None if s == 0 || s > cfg.server.slots => format!(
                "there is no slot {s} on this server (server.slots = {})",
                cfg.server.slots
            ),
            None => format!("slot {s} is free"),
        },
        (None, None) => "nothing to stop".into(),
    }
}
