//! `check` lines for `[gateway]` (`serve`): the listening address usable, the token
//! set, the certificate and key readable and fitting together. Nothing when the
//! section is absent: the server does not serve webinars.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::config::{Config, GatewayConfig};

use super::{Line, fail, ok, warn};

/// How long a `serve` already listening gets to answer the probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub(super) async fn lines(cfg: &Config) -> Vec<Line> {
    let Some(g) = &cfg.gateway else {
        return Vec::new();
    };
    let mut lines = vec![listen(g).await];
    lines.push(match g.token() {
        Ok(_) => ok(format!(
            "gateway.token is set ({}); give the same to every LiveGateway in Pod",
            g.token_source
        )),
        Err(e) => fail(format!("{e:#}")),
    });
    match &g.tls {
        None if !g.listen.ip().is_loopback() => lines.push(warn(format!(
            "gateway.listen {} is plain HTTP on a network address: Pod's token crosses the \
             network in clear; set gateway.tls_cert and tls_key, or listen on 127.0.0.1 behind \
             the site's HTTPS proxy",
            g.listen
        ))),
        None => {}
        Some(tls) => {
            lines.push(match crate::gateway::tls_acceptor(tls) {
                Ok(_) => ok(format!(
                    "gateway.tls_cert {} and gateway.tls_key {} are readable and fit together",
                    tls.cert.display(),
                    tls.key.display()
                )),
                Err(e) => fail(format!("{e:#}")),
            });
            let mode = std::fs::metadata(&tls.key).map(|m| m.permissions().mode() & 0o7777);
            if let Ok(mode) = mode
                && mode & 0o077 != 0
            {
                lines.push(warn(format!(
                    "gateway.tls_key {} has mode {mode:04o}: other users can read the private \
                     key; chmod 600 {}",
                    tls.key.display(),
                    tls.key.display()
                )));
            }
        }
    }
    lines
}

/// The address is free to listen on, or a `serve` answers there (it is running).
async fn listen(g: &GatewayConfig) -> Line {
    let addr = g.listen;
    match std::net::TcpListener::bind(addr) {
        Ok(_) => ok(format!(
            "gateway.listen {addr} is free for serve to listen on"
        )),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if serve_answers(g).await {
                ok(format!("gateway.listen {addr}: serve answers there"))
            } else {
                fail(format!(
                    "gateway.listen {addr} is used by another program: stop it or choose \
                     another port (ss -ltnp shows which)"
                ))
            }
        }
        Err(e) => fail(format!(
            "gateway.listen {addr}: cannot listen there ({e}): use an address of this host, \
             and a port above 1023 unless serve runs as root"
        )),
    }
}

/// Whether what listens on the address answers an unknown route the way `serve` does.
async fn serve_answers(g: &GatewayConfig) -> bool {
    let scheme = if g.tls.is_some() { "https" } else { "http" };
    let host = match g.listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let url = format!("{scheme}://{host}:{}/bbb-pod-live-check", g.listen.port());
    let Ok(client) = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        // Our own listener, probed to see it answers; its certificate is checked above.
        .danger_accept_invalid_certs(true)
        .build()
    else {
        return false;
    };
    let Ok(response) = client.get(url).send().await else {
        return false;
    };
    response
        .json::<serde_json::Value>()
        .await
        .is_ok_and(|v| v["status"] == "error" && v["res"].is_string())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::commands::check::Level;

    struct NoEnv;
    impl crate::config::Env for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
    }

    fn config(gateway: &str) -> Config {
        let text = format!(
            r#"
[server]
hostname = "live1.univ.fr"
[bbb]
url = "https://bbb.univ.fr/bigbluebutton/api"
secret = "s3cr3t"
stream_url = "rtmp://live.univ.fr/live/"
[pod]
url = "https://pod.univ.fr"
token = "tok"
hls_url = "https://live.univ.fr/hls/"
[gateway]
{gateway}
"#
        );
        Config::parse(Path::new("/x.toml"), &text, &NoEnv).expect("valid")
    }

    fn levels(lines: &[Line]) -> Vec<Level> {
        lines.iter().map(|l| l.level).collect()
    }

    #[tokio::test]
    async fn a_free_address_and_a_token_pass() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a port")
            .port();
        let cfg = config(&format!("listen = \"127.0.0.1:{port}\"\ntoken = \"t\""));
        let report = lines(&cfg).await;
        assert_eq!(levels(&report), [Level::Ok, Level::Ok], "{report:?}");
        assert!(!report[1].text.contains("\"t\""), "{report:?}");
    }

    #[tokio::test]
    async fn an_address_another_program_holds_and_a_missing_token_fail() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = held.local_addr().expect("address").port();
        // Something listening that is not serve: the probe gets no JSON.
        let cfg = config(&format!("listen = \"127.0.0.1:{port}\""));
        let report = lines(&cfg).await;
        assert_eq!(levels(&report), [Level::Fail, Level::Fail], "{report:?}");
        assert!(report[0].text.contains("another program"), "{report:?}");
        assert!(report[1].text.contains("gateway.token"), "{report:?}");
    }

    #[tokio::test]
    async fn certificates_are_loaded_and_plain_http_on_the_network_is_warned() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
        let cfg = config(&format!(
            "listen = \"127.0.0.1:1\"\ntoken = \"t\"\ntls_cert = \"{}\"\ntls_key = \"{}\"",
            fixtures.join("gateway.pem").display(),
            fixtures.join("other.key").display()
        ));
        let report = lines(&cfg).await;
        assert!(
            report
                .iter()
                .any(|l| l.level == Level::Fail && l.text.contains("does not fit")),
            "{report:?}"
        );
        let cfg = config("listen = \"0.0.0.0:1\"\ntoken = \"t\"");
        let report = lines(&cfg).await;
        assert!(
            report
                .iter()
                .any(|l| l.level == Level::Warn && l.text.contains("in clear")),
            "{report:?}"
        );
    }
}
