//! The example configuration's placeholders left in a file: its `change-me` secrets and
//! its `univ.fr` hosts and addresses. Such a file loads (its shape is right), but a
//! server run on it would send Pod's token to `pod.univ.fr` and mail `admin@univ.fr`:
//! `check` FAILs naming each key, and the commands that act refuse to run.

use reqwest::Url;

use super::Config;

/// The example's placeholder secret.
pub const PLACEHOLDER_SECRET: &str = "change-me";
/// The example's domain: its hosts are this or under it.
const EXAMPLE_DOMAIN: &str = "univ.fr";

fn example_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == EXAMPLE_DOMAIN || host.ends_with(&format!(".{EXAMPLE_DOMAIN}"))
}

impl Config {
    /// Each key still holding a placeholder of the example, with its value (never a
    /// secret's value but the placeholder's), in the file's order.
    pub fn placeholders(&self) -> Vec<String> {
        let mut found = Vec::new();
        let mut host = |key: &str, value: &str, host: Option<&str>| {
            if host.is_some_and(example_host) {
                found.push(format!("{key} = {value:?}"));
            }
        };
        host(
            "server.hostname",
            &self.server.hostname,
            Some(&self.server.hostname),
        );
        host("bbb.url", self.bbb.url.as_str(), self.bbb.url.host_str());
        let stream = Url::parse(self.bbb.stream_url.as_str()).ok();
        host(
            "bbb.stream_url",
            self.bbb.stream_url.as_str(),
            stream.as_ref().and_then(Url::host_str),
        );
        host("pod.url", self.pod.url.as_str(), self.pod.url.host_str());
        let hls = Url::parse(self.pod.hls_url.as_str()).ok();
        host(
            "pod.hls_url",
            self.pod.hls_url.as_str(),
            hls.as_ref().and_then(Url::host_str),
        );
        for admin in &self.mail.admins {
            let address = admin.email.to_string();
            host("mail.admins", &address, Some(admin.email.domain()));
        }
        let from = self.mail.from.email.to_string();
        host("mail.from", &from, Some(self.mail.from.email.domain()));
        if let Some(cluster) = &self.cluster {
            let url = Url::parse(cluster.redis_url.expose()).ok();
            if let Some(h) = url.as_ref().and_then(Url::host_str) {
                host("cluster.redis_url", &format!("redis://{h}/…"), Some(h));
            }
        }
        let mut secret = |key: &str, value: &str| {
            if value == PLACEHOLDER_SECRET {
                found.push(format!("{key} = {PLACEHOLDER_SECRET:?}"));
            }
        };
        secret("bbb.secret", self.bbb.secret.expose());
        secret("pod.token", self.pod.token.expose());
        secret("mail.smtp_password", self.mail.smtp_password.expose());
        if let Some(token) = self.gateway.as_ref().and_then(|g| g.token().ok()) {
            secret("gateway.token", token.expose());
        }
        found
    }

    /// Why the commands that act refuse this file, if they do: the placeholders left.
    pub fn unfinished(&self) -> Option<String> {
        let left = self.placeholders();
        (!left.is_empty()).then(|| {
            format!(
                "configuration {} still holds the example's placeholders: {}; put this \
                 server's values there",
                self.path.display(),
                left.join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{MINIMAL, parse};

    #[test]
    fn the_example_s_placeholders_are_each_named() {
        let c = parse(include_str!("../../config.example.toml")).expect("the example loads");
        let left = c.placeholders().join("\n");
        for key in [
            "server.hostname = \"live1.univ.fr\"",
            "bbb.url = ",
            "bbb.stream_url = ",
            "pod.url = ",
            "pod.hls_url = ",
            "mail.admins = \"admin@univ.fr\"",
            "mail.from = ",
            "bbb.secret = \"change-me\"",
            "pod.token = \"change-me\"",
        ] {
            assert!(left.contains(key), "{key} not in:\n{left}");
        }
        assert!(c.unfinished().is_some());
    }

    #[test]
    fn a_server_s_own_values_are_no_placeholders() {
        let text = MINIMAL
            .replace("univ.fr", "univ-example.fr")
            .replace("change-me", "0123456789abcdef0123456789abcdef");
        let c = parse(&text).expect("loads");
        assert_eq!(c.placeholders(), Vec::<String>::new());
        assert_eq!(c.unfinished(), None);
        assert!(!example_host("notuniv.fr") && example_host("Pod.Univ.FR."));
    }
}
