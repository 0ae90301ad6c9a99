//! `serve` under test: [`Gateway::spawn`] gives the environment a `[gateway]` on a free
//! loopback port, starts the real binary's `serve` and waits until it answers; requests
//! are written byte for byte as Pod 4.1's `requests` library writes them (a raw HTTP/1.1
//! socket: the headers, their order and the JSON encoding are Pod's, not a client
//! library's), and answers are read as Pod reads them: JSON, whatever the code.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{RunOutput, TestEnv, wait_until};

/// The token of every test gateway (Pod stores up to 25 characters).
pub const TOKEN: &str = "gw-token-0123456789abcdef";

/// A running `serve`.
pub struct Gateway {
    child: Option<Child>,
    pub port: u16,
}

/// An answer: the HTTP code and the body Pod parses.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub json: serde_json::Value,
}

impl Reply {
    pub fn status(&self) -> &str {
        self.json["status"].as_str().unwrap_or("<none>")
    }
    pub fn res(&self) -> &str {
        self.json["res"].as_str().unwrap_or("<none>")
    }
    pub fn details(&self) -> &str {
        self.json["details"].as_str().unwrap_or("<none>")
    }
}

/// A loopback port free now (the kernel's choice; `serve` binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Adds `[gateway]` listening on `port` with [`TOKEN`] to the environment's config.
pub fn configure(env: &TestEnv, port: u16) {
    env.rewrite_config(|text| {
        format!("{text}\n[gateway]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n")
    });
}

impl Gateway {
    /// Configures and starts `serve`; returns once it answers.
    pub fn spawn(env: &TestEnv) -> Gateway {
        let port = free_port();
        configure(env, port);
        Gateway::start(env, port)
    }

    /// Starts `serve` on a configuration that already has its `[gateway]` on `port`.
    pub fn start(env: &TestEnv, port: u16) -> Gateway {
        let child = env.spawn(&["serve"]);
        let mut gateway = Gateway {
            child: Some(child),
            port,
        };
        wait_until("serve to answer", Duration::from_secs(30), || {
            if let Some(Ok(Some(status))) = gateway.child.as_mut().map(Child::try_wait) {
                panic!("serve exited early: {status}\n{}", env.log_text());
            }
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        gateway
    }

    /// `GET <path>` as Pod sends it, with `Authorization: Bearer <token>` when given.
    pub fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: python-requests/2.32.3\r\n\
             Accept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n{auth}\r\n",
            self.port
        );
        self.exchange(request.as_bytes())
    }

    /// `GET` with the gateway's token.
    pub fn get_ok(&self, path: &str) -> Reply {
        self.get(path, Some(TOKEN))
    }

    /// `POST <path>` with Pod's JSON body (`requests`' `json=`: `json.dumps`, so
    /// non-ASCII characters travel as `\uXXXX` escapes), no Authorization header.
    pub fn post_chat(&self, path: &str, room: &str, msg: &str) -> Reply {
        let text = |s: &str| ascii_escaped(&serde_json::Value::from(s).to_string());
        let body = format!("{{\"room\": {}, \"msg\": {}}}", text(room), text(msg));
        self.post_raw(path, body.as_bytes())
    }

    /// `POST <path>` with exactly `body` as `application/json`.
    pub fn post_raw(&self, path: &str, body: &[u8]) -> Reply {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: python-requests/2.32.3\r\n\
             Accept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.port,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        self.exchange(&request)
    }

    /// Writes `request`, reads one response (head, then Content-Length bytes).
    pub fn exchange(&self, request: &[u8]) -> Reply {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connecting to serve");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        stream.write_all(request).expect("writing the request");
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).expect("status line");
        let code: u16 = status
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status line: {status:?}"));
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("Content-Length");
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        let json = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!(
                "Pod could not parse the answer ({e}): {}",
                String::from_utf8_lossy(&body)
            )
        });
        Reply { code, json }
    }

    /// The process id, for signals.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().expect("running").id() as i32)
    }

    /// SIGTERM, then the exit status and output.
    pub fn terminate(mut self, env: &TestEnv) -> RunOutput {
        kill(self.pid(), Signal::SIGTERM).expect("SIGTERM");
        env.wait(self.child.take().expect("running"))
    }

    /// SIGKILL (a crash), then the exit status and output.
    pub fn crash(mut self, env: &TestEnv) -> RunOutput {
        kill(self.pid(), Signal::SIGKILL).expect("SIGKILL");
        env.wait(self.child.take().expect("running"))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// JSON with every non-ASCII character as `\uXXXX` (UTF-16), as Python's `json.dumps`.
fn ascii_escaped(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}
