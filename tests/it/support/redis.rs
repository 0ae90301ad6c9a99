//! `RedisServer`: a real `redis-server` on a free loopback port, with a temporary
//! directory and no persistence, killed when dropped (the `[cluster]` tests). Tests
//! that need it fail with the install hint when the program is missing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Option<Child>,
    host: String,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Whether `redis-server` is installed (the tests that need it are left out when not).
    pub fn available() -> bool {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts `redis-server` and waits until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer::start_at("127.0.0.1", free_port())
    }

    /// Starts `redis-server` on `host:port` (a slot's chat Redis has a fixed port,
    /// 6378 + N: tests give it a loopback address of its own, e.g. 127.0.0.93).
    pub fn start_at(host: &str, port: u16) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("bbb-pod-live-redis-")
            .tempdir()
            .expect("creating the Redis directory");
        let mut server = RedisServer {
            child: None,
            host: host.to_owned(),
            port,
            dir,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", &self.host, "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server is not installed: the [cluster] tests need a real Redis \
                 (apt-get install redis-server; .ci/run installs it)"
            ),
            Err(e) => panic!("starting redis-server: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.command(&["PING"]).as_deref() != Some("+PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer on {}:{} within 10s",
                self.host,
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://{}:{}/0", self.host, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends `sig` to the server (`SIGSTOP`: a Redis that accepts connections and never
    /// answers; `SIGCONT` resumes it).
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Some(c) = &self.child {
            let pid = nix::unistd::Pid::from_raw(c.id() as i32);
            nix::sys::signal::kill(pid, sig).expect("signalling our redis-server");
        }
    }

    /// Kills the server (Redis down); [`RedisServer::restart`] brings it back, empty.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port (after [`RedisServer::stop`]).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// One command in RESP; the first line of the answer (`+OK`, `:1`, `$5`...) or, for
    /// a bulk string, its value; `None` if Redis cannot be reached.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut s = TcpStream::connect((self.host.as_str(), self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).ok()?;
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        let line = line.trim_end().to_string();
        if let Some(n) = line.strip_prefix('$') {
            let n: i64 = n.parse().ok()?;
            if n < 0 {
                return Some("(nil)".into());
            }
            let mut buf = vec![0; n as usize + 2];
            r.read_exact(&mut buf).ok()?;
            buf.truncate(n as usize);
            return Some(String::from_utf8_lossy(&buf).into_owned());
        }
        Some(line)
    }

    /// A connection subscribed to `channel` (its confirmation read): what Pod's chat
    /// relay in the streamer listens to.
    pub fn subscribe(&self, channel: &str) -> BufReader<TcpStream> {
        let mut s = TcpStream::connect((self.host.as_str(), self.port)).expect("connecting");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let req = format!(
            "*2\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{channel}\r\n",
            channel.len()
        );
        s.write_all(req.as_bytes()).expect("SUBSCRIBE");
        let mut r = BufReader::new(s);
        // *3, $9 subscribe, the channel, :1
        for _ in 0..6 {
            let mut line = String::new();
            r.read_line(&mut line)
                .expect("the subscription's confirmation");
        }
        r
    }

    /// The next message published on a [`RedisServer::subscribe`]d connection.
    pub fn next_message(sub: &mut BufReader<TcpStream>) -> String {
        // *3, $7 message, $<n> channel, $<n> payload.
        let mut lines = Vec::new();
        for _ in 0..7 {
            let mut line = String::new();
            sub.read_line(&mut line).expect("a published message");
            lines.push(line.trim_end().to_owned());
        }
        assert_eq!(lines[2], "message", "{lines:?}");
        lines[6].clone()
    }

    /// The value of `key` (`None` if it does not exist).
    pub fn get(&self, key: &str) -> Option<String> {
        match self.command(&["GET", key])?.as_str() {
            "(nil)" => None,
            v => Some(v.to_string()),
        }
    }

    /// Seconds before `key` expires (`TTL`: -2 missing, -1 no expiry).
    pub fn ttl(&self, key: &str) -> i64 {
        self.command(&["TTL", key])
            .and_then(|l| l.strip_prefix(':').and_then(|n| n.parse().ok()))
            .unwrap_or(-2)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("finding a free port")
}
