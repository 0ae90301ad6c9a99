//! The one integration test binary (docs/architecture.md, "Tests"): the real binary is
//! driven as a subprocess against fakes of Pod, BigBlueButton, an SMTP relay and docker
//! that it cannot tell from the real services, in a temporary directory, with a scrubbed
//! environment. `support` holds the fakes and the `TestEnv` harness; each other module is
//! one group of tests.

// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod support;

mod admin;
mod alone;
mod bounds;
mod cluster;
mod completions;
mod crash;
mod demo;
mod fakes_selftest;
mod faults;
mod gateway;
mod health;
mod history;
mod hostile;
mod operators;
mod pace;
mod sessions;
mod soak;
mod tick;
mod webinar;
