//! bbb-pod-live: one cron tick that starts the BigBlueButton lives Pod asks for,
//! stops those whose meeting ended and hands their recordings over to Pod.
//!
//! The pipeline, one module each: configuration (`config`) → read Pod (`pod`) and
//! BBB (`bbb`) → decide (`plan`, pure, over `model`) → act on docker (`docker`,
//! `compose`), Pod, files (`slots`, `recording`) and mail (`mail`) → report.
//! `tick` runs one pass of it; `commands` holds the operator commands.

pub mod bbb;
pub mod cli;
pub mod cluster;
pub mod commands;
pub mod compose;
pub mod config;
pub mod docker;
pub mod fsutil;
pub mod gateway;
pub mod health;
pub mod hls;
pub mod lock;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod model;
pub mod names;
pub mod plan;
pub mod pod;
pub mod process;
pub mod recording;
pub mod signals;
pub mod slots;
pub mod text;
pub mod tick;
pub mod webinar;

pub use commands::{Fatal, Outcome, run};
