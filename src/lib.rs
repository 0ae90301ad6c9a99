//! bbb-pod-live: one cron tick that starts the BigBlueButton lives Pod asks for,
//! stops those whose meeting ended and hands their recordings over to Pod.
//!
//! The pipeline, one module each: configuration (`config`) → read Pod (`pod`) and
//! BBB (`bbb`) → decide (`plan`, pure, over `model`) → act on docker (`docker`,
//! `compose`), Pod, files (`slots`, `recording`) and mail (`mail`) → report.

pub mod bbb;
pub mod cli;
pub mod compose;
pub mod config;
pub mod fsutil;
pub mod mail;
pub mod model;
pub mod names;
pub mod pod;
pub mod recording;
