//! Who is in a live's BBB session besides bbb-pod-live's own users (its streamer and
//! chat relay): what one tick saw ([`Company`]) and what the slot remembers between
//! ticks ([`Alone`]), for the rule that stops a live whose room stayed empty
//! (`bbb.alone_ticks`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who a tick found in a live's running session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Company {
    /// Someone who is not one of our users: the room is not empty.
    Others,
    /// Our own users only (the streamer or its chat relay, at least one of them in):
    /// nobody is left but what keeps BBB's session running.
    OnlyUs,
}

/// A running live's room, as its slot remembers it between ticks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alone {
    /// Consecutive ticks that found nobody but our own users.
    #[serde(default)]
    pub ticks: u32,
    /// The first of those ticks.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// Someone else was seen in the session since the live started. Until then the
    /// session has not begun for its audience (our streamer may keep BBB's session
    /// "running" alone before the teacher arrives): it is never counted empty.
    #[serde(default)]
    pub begun: bool,
}

impl Alone {
    /// The `seen`-th tick in a row that found nobody but our own users.
    pub fn seen_alone(&mut self, seen: u32, now: DateTime<Utc>) {
        self.ticks = seen;
        self.since.get_or_insert(now);
    }

    /// At the stop for an empty room (the tick that makes the count reach the limit):
    /// the ticks counted, the first of them, and the minutes since.
    pub fn at_stop(&self, now: DateTime<Utc>) -> (u32, DateTime<Utc>, i64) {
        let since = self.since.unwrap_or(now);
        let ticks = self.ticks.saturating_add(1);
        (ticks, since, (now - since).num_minutes().max(0))
    }

    /// Someone else is in the meeting: the count restarts, and the session has begun.
    pub fn seen_company(&mut self) {
        self.ticks = 0;
        self.since = None;
        self.begun = true;
    }
}
