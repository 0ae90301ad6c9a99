//! `[gateway]`: the webinar gateway `serve` answers Pod 3.8.2+ on (docs/webinar-api.md).
//! Optional: without it every other command works as before. Its token may be absent
//! from the file (the environment of `serve`'s unit may hold it alone), so a missing
//! token is no load error; `serve` refuses to start without one ([`GatewayConfig::token`]).
//! A token Pod cannot store (over 25 characters) or could not send in a header is an
//! error at load, like any other wrong value.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Result, anyhow};

use super::raw::{DEFAULT_LISTEN, RawGateway};
use super::validate::Validator;
use super::{Env, Secret, SecretSource};

/// The environment variable that overrides `gateway.token`.
pub const ENV_GATEWAY_TOKEN: &str = "BBB_POD_LIVE_GATEWAY_TOKEN";

/// Pod's `LiveGateway.sipmediagw_server_token` is a `CharField(max_length=25)`.
pub const TOKEN_MAX_CHARS: usize = 25;

/// The validated `[gateway]`.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    /// `None` when neither the file nor the environment gives one (or the file's is "").
    token: Option<Secret>,
    /// Where the token was (or would be) read.
    pub token_source: SecretSource,
    /// HTTPS served by `serve` itself; `None`: plain HTTP (behind a proxy).
    pub tls: Option<TlsFiles>,
}

/// `gateway.tls_cert` and `gateway.tls_key`, both absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the certificate, then its chain.
    pub cert: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl GatewayConfig {
    /// The bearer token Pod sends, or the error `serve` exits 2 with, naming the key
    /// and the environment variable.
    pub fn token(&self) -> Result<&Secret> {
        self.token.as_ref().ok_or_else(|| match &self.token_source {
            SecretSource::Env { var, .. } => anyhow!("{var} is set but empty"),
            SecretSource::File { key, file } => anyhow!(
                "configuration file {}: key `{key}` is missing or empty: set the token of the \
                 LiveGateways in Pod (1 to {TOKEN_MAX_CHARS} characters) there or in the \
                 environment variable {ENV_GATEWAY_TOKEN}",
                file.display()
            ),
        })
    }
}

impl Validator {
    /// `[gateway]`; the token from the environment first.
    pub(super) fn gateway(&self, g: RawGateway, env: &dyn Env) -> Result<GatewayConfig> {
        let listen = g.listen.trim().parse::<SocketAddr>().map_err(|_| {
            self.err(
                "gateway.listen",
                format!(
                    "{:?} is not an address and port (e.g. {DEFAULT_LISTEN}, 0.0.0.0:8090 or [::]:8090)",
                    g.listen
                ),
            )
        })?;
        if listen.port() == 0 {
            return Err(self.err("gateway.listen", "needs a port other than 0"));
        }
        let (token, token_source) = match env.var(ENV_GATEWAY_TOKEN) {
            Some(v) => (
                v,
                SecretSource::Env {
                    var: ENV_GATEWAY_TOKEN,
                    key: "gateway.token",
                },
            ),
            None => (
                g.token.unwrap_or_default(),
                SecretSource::File {
                    key: "gateway.token",
                    file: self.path.clone(),
                },
            ),
        };
        let token = match token.as_str() {
            "" => None,
            t => Some(Secret::new(self.token(t, &token_source)?)),
        };
        let tls = match (g.tls_cert, g.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: self.absolute_dir("gateway.tls_cert", cert.trim())?,
                key: self.absolute_dir("gateway.tls_key", key.trim())?,
            }),
            (Some(_), None) => {
                return Err(self.err(
                    "gateway.tls_key",
                    "is missing: HTTPS needs both tls_cert and tls_key (or neither, for plain HTTP behind a proxy)",
                ));
            }
            (None, Some(_)) => {
                return Err(self.err(
                    "gateway.tls_cert",
                    "is missing: HTTPS needs both tls_cert and tls_key (or neither, for plain HTTP behind a proxy)",
                ));
            }
        };
        Ok(GatewayConfig {
            listen,
            token,
            token_source,
            tls,
        })
    }

    /// A token Pod can store and send: at most 25 characters, printable ASCII (it
    /// travels in an HTTP header), no space.
    fn token(&self, token: &str, source: &SecretSource) -> Result<String> {
        let chars = token.chars().count();
        if chars > TOKEN_MAX_CHARS {
            return Err(self.secret_err(
                source,
                format!(
                    "has {chars} characters; Pod stores at most {TOKEN_MAX_CHARS} \
                     (LiveGateway's token field): choose a shorter one"
                ),
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(self.secret_err(
                source,
                "must be printable ASCII without spaces or line breaks (it is sent in an HTTP header)",
            ));
        }
        Ok(token.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    struct MapEnv(HashMap<String, String>);
    impl Env for MapEnv {
        fn var(&self, key: &str) -> Option<String> {
            self.0.get(key).cloned()
        }
    }

    const MINIMAL: &str = r#"
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
"#;

    fn parse_env(gateway: &str, env: &[(&str, &str)]) -> Result<Config> {
        let env = MapEnv(
            env.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        Config::parse(
            Path::new("/etc/bbb-pod-live/config.toml"),
            &format!("{MINIMAL}\n[gateway]\n{gateway}\n"),
            &env,
        )
    }

    fn parse(gateway: &str) -> Result<Config> {
        parse_env(gateway, &[])
    }

    fn err(gateway: &str) -> String {
        format!("{:#}", parse(gateway).expect_err("refused"))
    }

    #[test]
    fn without_the_section_there_is_no_gateway() {
        let c =
            Config::parse(Path::new("/x.toml"), MINIMAL, &MapEnv(HashMap::new())).expect("valid");
        assert!(c.gateway.is_none());
    }

    #[test]
    fn defaults_and_a_token_from_the_file() {
        let c = parse("token = \"abcdefghijklmnopqrstuvwxy\"").expect("25 characters fit");
        let g = c.gateway.expect("a gateway");
        assert_eq!(g.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(
            g.token().expect("set").expose(),
            "abcdefghijklmnopqrstuvwxy"
        );
        assert!(g.tls.is_none());
        assert!(!format!("{g:?}").contains("abcdefghij"), "{g:?}");
    }

    #[test]
    fn the_environment_overrides_the_token() {
        let c = parse_env("token = \"file\"", &[(ENV_GATEWAY_TOKEN, "env-token")]).expect("ok");
        let g = c.gateway.expect("a gateway");
        assert_eq!(g.token().expect("set").expose(), "env-token");
        assert!(g.token_source.to_string().contains(ENV_GATEWAY_TOKEN));
    }

    #[test]
    fn a_missing_or_empty_token_loads_but_serve_is_told_which_key() {
        for text in ["", "token = \"\""] {
            let c = parse(text).expect("other commands still work");
            let e = format!(
                "{:#}",
                c.gateway.expect("gateway").token().expect_err("none")
            );
            assert!(e.contains("`gateway.token`"), "{e}");
            assert!(e.contains(ENV_GATEWAY_TOKEN), "{e}");
        }
        let c = parse_env("token = \"file\"", &[(ENV_GATEWAY_TOKEN, "")]).expect("loads");
        let e = format!(
            "{:#}",
            c.gateway.expect("gateway").token().expect_err("empty")
        );
        assert!(e.contains(ENV_GATEWAY_TOKEN), "{e}");
    }

    #[test]
    fn a_token_pod_cannot_store_or_send_is_refused_naming_its_source() {
        let e = err("token = \"abcdefghijklmnopqrstuvwxyz\"");
        assert!(e.contains("`gateway.token`") && e.contains("26"), "{e}");
        assert!(
            !e.contains("abcdefghijklmnopqrstuvwxyz"),
            "the token is not shown: {e}"
        );
        let e = err("token = \"with space\"");
        assert!(e.contains("`gateway.token`"), "{e}");
        let e = format!(
            "{:#}",
            parse_env("", &[(ENV_GATEWAY_TOKEN, "tok\n")]).expect_err("refused")
        );
        assert!(e.contains(ENV_GATEWAY_TOKEN), "{e}");
        // 25 characters, not bytes: Pod counts characters, but a header is ASCII.
        let e = err("token = \"é\"");
        assert!(e.contains("ASCII"), "{e}");
    }

    #[test]
    fn listen_and_tls_are_checked() {
        let e = err("listen = \"localhost:8090\"");
        assert!(e.contains("`gateway.listen`"), "{e}");
        let e = err("listen = \"127.0.0.1:0\"");
        assert!(e.contains("`gateway.listen`"), "{e}");
        let c = parse("listen = \"[::]:8443\"").expect("IPv6");
        assert_eq!(c.gateway.expect("gateway").listen.port(), 8443);
        let e = err("tls_cert = \"/etc/x.pem\"");
        assert!(e.contains("`gateway.tls_key`"), "{e}");
        let e = err("tls_key = \"/etc/x.key\"");
        assert!(e.contains("`gateway.tls_cert`"), "{e}");
        let e = err("tls_cert = \"x.pem\"\ntls_key = \"/etc/x.key\"");
        assert!(e.contains("`gateway.tls_cert`"), "{e}");
        let c = parse("tls_cert = \"/etc/x.pem\"\ntls_key = \"/etc/x.key\"").expect("valid");
        assert_eq!(
            c.gateway.expect("gateway").tls,
            Some(TlsFiles {
                cert: "/etc/x.pem".into(),
                key: "/etc/x.key".into()
            })
        );
        let e = err("tokken = \"x\"");
        assert!(e.contains("tokken"), "{e}");
    }
}
