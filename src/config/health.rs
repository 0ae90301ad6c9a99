//! `[health]`, checked: how many ticks the streamer checks count and how often a live is
//! repaired. `health.rs` judges a live with it.

use anyhow::{Result, bail};

use super::raw::RawHealth;

/// `[health]`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthConfig {
    /// Off: no signal is checked and nothing repaired (a dead container is only reported).
    pub enabled: bool,
    /// Signal (c), the HLS playlist, is checked.
    pub hls: bool,
    /// Ticks after a start or a restart during which (b) and (c) do not count.
    pub grace_ticks: u32,
    /// Consecutive failing ticks of one signal that make a live unhealthy.
    pub fail_ticks: u32,
    /// Restarts per live, after which it is beyond repair.
    pub max_restarts: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        RawHealth::default()
            .validate("")
            .unwrap_or_else(|_| unreachable!("the defaults are valid"))
    }
}

impl RawHealth {
    /// Checks the ranges; errors name `file` and the key.
    pub(super) fn validate(self, file: &str) -> Result<HealthConfig> {
        let range = |key: &str, v: i64, min: i64, max: i64| -> Result<u32> {
            if v < min || v > max {
                bail!(
                    "configuration file {file}: key `health.{key}`: {v} is not between {min} and {max}"
                );
            }
            Ok(v as u32)
        };
        Ok(HealthConfig {
            enabled: self.enabled,
            hls: self.hls,
            grace_ticks: range("grace_ticks", self.grace_ticks, 0, 1000)?,
            fail_ticks: range("fail_ticks", self.fail_ticks, 1, 1000)?,
            max_restarts: range("max_restarts", self.max_restarts, 0, 1000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_those_of_the_issue() {
        let c = HealthConfig::default();
        assert!(c.enabled && c.hls);
        assert_eq!((c.grace_ticks, c.fail_ticks, c.max_restarts), (3, 2, 3));
    }

    #[test]
    fn out_of_range_values_name_the_key() {
        let raw = RawHealth {
            fail_ticks: 0,
            ..RawHealth::default()
        };
        let e = raw.validate("/etc/x.toml").unwrap_err().to_string();
        assert!(
            e.contains("health.fail_ticks") && e.contains("/etc/x.toml"),
            "{e}"
        );
    }
}
