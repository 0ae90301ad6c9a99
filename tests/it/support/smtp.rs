//! `SmtpSink`: a real, minimal SMTP server (RFC 5321 subset) that stores what it is sent:
//! greeting, EHLO/HELO, optional AUTH PLAIN/LOGIN, MAIL/RCPT/DATA with dot-unstuffing,
//! RSET, NOOP, VRFY, QUIT. STARTTLS is only advertised when asked, and then refused
//! (454), so a client insisting on TLS fails as against a relay without a certificate.
//! Stored mails are decoded for assertions (RFC 2047 subject, quoted-printable or base64
//! body, first text/plain part of a multipart). It can refuse connections, answer 421 at
//! the greeting, reject recipients or data, answer something that is not SMTP, or wait
//! before greeting.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::net::{Background, Conn};
use super::text::{base64_decode, hex_val};

/// One message as received.
#[derive(Clone, Debug)]
pub struct Mail {
    /// Reverse path of MAIL FROM (without `<>`).
    pub from: String,
    /// Forward paths of every accepted RCPT TO.
    pub to: Vec<String>,
    /// The message as transmitted (headers and body), dot-unstuffed, CRLF line ends.
    pub data: String,
    /// Subject header, unfolded and RFC 2047-decoded.
    pub subject: String,
    /// Text body, transfer-decoded (first text/plain part of a multipart).
    pub body: String,
    /// User name of a successful AUTH on that session, if any.
    pub auth_user: Option<String>,
}

impl Mail {
    /// A header of the top-level message, unfolded (first occurrence, case-insensitive
    /// name), RFC 2047-decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        let (headers, _) = split_message(&self.data);
        headers
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| decode_words(&v))
    }
}

/// How the sink treats clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmtpMode {
    Normal,
    /// Connections refused.
    Down,
    /// `421` at the greeting, then close (relay overloaded).
    TempFail,
    /// `550` to every RCPT TO.
    RejectRecipients,
    /// `554` after the data (content refused).
    RejectData,
    /// Not SMTP at all: an HTTP error page instead of the greeting, then close (a
    /// port taken by another service).
    Garbage,
    /// Accepts the connection and never says a word (a wedged relay).
    Hang,
}

/// Options fixed at start.
#[derive(Clone, Debug, Default)]
pub struct SmtpOptions {
    /// Advertise `AUTH PLAIN LOGIN` and accept only this user and password.
    pub auth: Option<(String, String)>,
    /// Advertise STARTTLS (and refuse it with 454 when asked).
    pub advertise_starttls: bool,
}

struct SmtpState {
    mode: SmtpMode,
    options: SmtpOptions,
    messages: Vec<Mail>,
    connections: usize,
    failed_auths: usize,
    latency: Duration,
}

/// The SMTP sink. Dropping it stops the server.
pub struct SmtpSink {
    server: Background,
    state: Arc<Mutex<SmtpState>>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        SmtpSink::start_with(SmtpOptions::default())
    }

    pub fn start_with(options: SmtpOptions) -> SmtpSink {
        let state = Arc::new(Mutex::new(SmtpState {
            mode: SmtpMode::Normal,
            options,
            messages: Vec::new(),
            connections: 0,
            failed_auths: 0,
            latency: Duration::ZERO,
        }));
        let st = state.clone();
        let server = Background::start(
            "smtp",
            move |mut rx: mpsc::Receiver<Conn>, _addr| async move {
                while let Some(conn) = rx.recv().await {
                    tokio::spawn(session(conn, st.clone()));
                }
            },
        );
        SmtpSink { server, state }
    }

    fn st(&self) -> MutexGuard<'_, SmtpState> {
        self.state.lock().expect("smtp state")
    }

    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<Mail> {
        self.st().messages.clone()
    }

    /// Waits until at least `n` messages arrived (panics after `timeout`).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} mails within {timeout:?}, got {}: {:#?}",
                m.len(),
                m.iter().map(|m| &m.subject).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn clear(&self) {
        self.st().messages.clear();
    }

    /// Number of TCP sessions accepted.
    pub fn connections(&self) -> usize {
        self.st().connections
    }

    /// Number of AUTH attempts refused.
    pub fn failed_auths(&self) -> usize {
        self.st().failed_auths
    }

    pub fn set_mode(&self, mode: SmtpMode) {
        let down = mode == SmtpMode::Down;
        self.st().mode = mode;
        self.server.set_up(!down);
    }

    /// Waits this long before the greeting of each session (a relay under load).
    pub fn set_latency(&self, latency: Duration) {
        self.st().latency = latency;
    }

    /// Connections refused from now on.
    pub fn set_down(&self) {
        self.set_mode(SmtpMode::Down);
    }

    /// Back to normal service.
    pub fn set_up(&self) {
        self.set_mode(SmtpMode::Normal);
    }
}

const HOST: &str = "smtp-sink.test";

async fn session(conn: Conn, state: Arc<Mutex<SmtpState>>) {
    let _ = session_inner(conn, state).await;
}

async fn session_inner(conn: Conn, state: Arc<Mutex<SmtpState>>) -> std::io::Result<()> {
    let (mode, options, latency) = {
        let mut st = state.lock().expect("smtp state");
        st.connections += 1;
        (st.mode.clone(), st.options.clone(), st.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if mode == SmtpMode::Hang {
        let _held = conn;
        return std::future::pending::<std::io::Result<()>>().await;
    }
    let (r, mut w) = tokio::io::split(conn);
    let mut r = BufReader::new(r);
    if mode == SmtpMode::Garbage {
        w.write_all(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n\r\n<html>\x00\xff\xfe</html>\r\n",
        )
        .await?;
        return w.flush().await;
    }
    if mode == SmtpMode::TempFail {
        w.write_all(
            format!("421 4.3.2 {HOST} Service not available, closing channel\r\n").as_bytes(),
        )
        .await?;
        return w.flush().await;
    }
    w.write_all(format!("220 {HOST} ESMTP fake sink ready\r\n").as_bytes())
        .await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut auth_user: Option<String> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd_line = line.trim_end_matches(['\r', '\n']).to_string();
        let upper = cmd_line.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or("").to_string();
        let reply: String = match verb.as_str() {
            "EHLO" => {
                let client = cmd_line.split_whitespace().nth(1).unwrap_or("unknown");
                let mut lines = vec![format!("{HOST} Hello {client}")];
                lines.push("PIPELINING".into());
                lines.push("SIZE 52428800".into());
                lines.push("8BITMIME".into());
                lines.push("SMTPUTF8".into());
                if options.advertise_starttls {
                    lines.push("STARTTLS".into());
                }
                if options.auth.is_some() {
                    lines.push("AUTH PLAIN LOGIN".into());
                }
                let n = lines.len();
                lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("250{}{l}\r\n", if i + 1 == n { ' ' } else { '-' }))
                    .collect()
            }
            "HELO" => format!("250 {HOST}\r\n"),
            "STARTTLS" if options.advertise_starttls => {
                "454 4.7.0 TLS not available due to local problem\r\n".into()
            }
            "AUTH" if options.auth.is_some() => {
                let args: Vec<&str> = cmd_line.split_whitespace().skip(1).collect();
                let mech = args
                    .first()
                    .map(|m| m.to_ascii_uppercase())
                    .unwrap_or_default();
                let creds = match mech.as_str() {
                    "PLAIN" => {
                        let b64 = match args.get(1) {
                            Some(b) => b.to_string(),
                            None => {
                                w.write_all(b"334 \r\n").await?;
                                read_trimmed(&mut r).await?
                            }
                        };
                        base64_decode(&b64).map(|d| {
                            let parts: Vec<String> = d
                                .split(|b| *b == 0)
                                .map(|p| String::from_utf8_lossy(p).into_owned())
                                .collect();
                            (
                                parts.get(1).cloned().unwrap_or_default(),
                                parts.get(2).cloned().unwrap_or_default(),
                            )
                        })
                    }
                    "LOGIN" => {
                        let user_b64 = match args.get(1) {
                            Some(b) => b.to_string(),
                            None => {
                                w.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
                                read_trimmed(&mut r).await?
                            }
                        };
                        w.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
                        let pass_b64 = read_trimmed(&mut r).await?;
                        match (base64_decode(&user_b64), base64_decode(&pass_b64)) {
                            (Some(u), Some(p)) => Some((
                                String::from_utf8_lossy(&u).into_owned(),
                                String::from_utf8_lossy(&p).into_owned(),
                            )),
                            _ => None,
                        }
                    }
                    _ => {
                        w.write_all(b"504 5.5.4 Unrecognized authentication type\r\n")
                            .await?;
                        continue;
                    }
                };
                match (creds, &options.auth) {
                    (Some(c), Some(expected)) if &c == expected => {
                        auth_user = Some(c.0);
                        "235 2.7.0 Authentication successful\r\n".into()
                    }
                    _ => {
                        state.lock().expect("smtp state").failed_auths += 1;
                        "535 5.7.8 Error: authentication failed\r\n".into()
                    }
                }
            }
            "MAIL" => {
                if options.auth.is_some() && auth_user.is_none() {
                    "530 5.7.0 Authentication required\r\n".into()
                } else {
                    match path_arg(&cmd_line, "FROM:") {
                        Some(p) => {
                            from = Some(p);
                            to.clear();
                            "250 2.1.0 Ok\r\n".into()
                        }
                        None => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".into(),
                    }
                }
            }
            "RCPT" => {
                if from.is_none() {
                    "503 5.5.1 Error: need MAIL command\r\n".into()
                } else if mode == SmtpMode::RejectRecipients {
                    "550 5.1.1 Recipient address rejected: User unknown\r\n".into()
                } else {
                    match path_arg(&cmd_line, "TO:") {
                        Some(p) => {
                            to.push(p);
                            "250 2.1.5 Ok\r\n".into()
                        }
                        None => "501 5.5.4 Syntax: RCPT TO:<address>\r\n".into(),
                    }
                }
            }
            "DATA" => {
                if to.is_empty() {
                    "503 5.5.1 Error: need RCPT command\r\n".into()
                } else {
                    w.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let mut data = String::new();
                    let mut l = String::new();
                    loop {
                        l.clear();
                        if r.read_line(&mut l).await? == 0 {
                            return Ok(());
                        }
                        let content = l.trim_end_matches(['\r', '\n']);
                        if content == "." {
                            break;
                        }
                        let content = content.strip_prefix('.').unwrap_or(content);
                        data.push_str(content);
                        data.push_str("\r\n");
                    }
                    if mode == SmtpMode::RejectData {
                        from = None;
                        to.clear();
                        "554 5.6.0 Message content rejected\r\n".into()
                    } else {
                        let mail = decode_mail(
                            from.take().unwrap_or_default(),
                            std::mem::take(&mut to),
                            data,
                            auth_user.clone(),
                        );
                        let mut st = state.lock().expect("smtp state");
                        st.messages.push(mail);
                        format!("250 2.0.0 Ok: queued as FAKE{:05}\r\n", st.messages.len())
                    }
                }
            }
            "RSET" => {
                from = None;
                to.clear();
                "250 2.0.0 Ok\r\n".into()
            }
            "NOOP" => "250 2.0.0 Ok\r\n".into(),
            "VRFY" => "252 2.0.0 Cannot VRFY user\r\n".into(),
            "QUIT" => {
                w.write_all(b"221 2.0.0 Bye\r\n").await?;
                w.flush().await?;
                return Ok(());
            }
            _ => "502 5.5.2 Error: command not recognized\r\n".into(),
        };
        w.write_all(reply.as_bytes()).await?;
        w.flush().await?;
    }
}

async fn read_trimmed<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<String> {
    let mut s = String::new();
    r.read_line(&mut s).await?;
    Ok(s.trim().to_string())
}

/// `<addr>` after `FROM:` / `TO:` (parameters after it ignored).
fn path_arg(line: &str, key: &str) -> Option<String> {
    let upper = line.to_ascii_uppercase();
    let i = upper.find(key)? + key.len();
    let rest = line[i..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_string())
}

// ---------------------------------------------------------------------------
// MIME decoding (enough for what lettre produces)
// ---------------------------------------------------------------------------

fn decode_mail(from: String, to: Vec<String>, data: String, auth_user: Option<String>) -> Mail {
    let (headers, body) = split_message(&data);
    let subject = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("subject"))
        .map(|(_, v)| decode_words(v))
        .unwrap_or_default();
    let body = text_body(&headers, &body);
    Mail {
        from,
        to,
        data,
        subject,
        body,
        auth_user,
    }
}

/// Headers (unfolded) and body of a MIME entity.
fn split_message(data: &str) -> (Vec<(String, String)>, String) {
    let (head, body) = match data.find("\r\n\r\n") {
        Some(i) => (&data[..i], &data[i + 4..]),
        None => match data.find("\n\n") {
            Some(i) => (&data[..i], &data[i + 2..]),
            None => (data, ""),
        },
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split('\n').map(|l| l.trim_end_matches('\r')) {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push_str(line);
            }
        } else if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    (headers, body.to_string())
}

fn header_param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn text_body(headers: &[(String, String)], body: &str) -> String {
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let ctype = get("content-type").unwrap_or_else(|| "text/plain".into());
    if ctype.to_ascii_lowercase().starts_with("multipart/") {
        let Some(b) = header_param(&ctype, "boundary") else {
            return body.to_string();
        };
        let delim = format!("--{b}");
        let parts: Vec<&str> = body.split(delim.as_str()).skip(1).collect();
        let mut first_text = None;
        for part in parts {
            if part.starts_with("--") {
                break;
            }
            let part = part.strip_prefix("\r\n").unwrap_or(part);
            let (h, b) = split_message(part);
            let t = h
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.to_ascii_lowercase())
                .unwrap_or_else(|| "text/plain".into());
            if t.starts_with("text/plain") || t.starts_with("multipart/") {
                let b = b.strip_suffix("\r\n").unwrap_or(&b).to_string();
                return text_body(&h, &b);
            }
            if first_text.is_none() {
                first_text = Some(text_body(&h, &b));
            }
        }
        return first_text.unwrap_or_default();
    }
    let cte = get("content-transfer-encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    match cte.as_str() {
        "base64" => base64_decode(body)
            .map(|d| String::from_utf8_lossy(&d).into_owned())
            .unwrap_or_else(|| body.to_string()),
        "quoted-printable" => quoted_printable(body, false),
        _ => body.to_string(),
    }
}

/// Quoted-printable (RFC 2045; `underscore` = RFC 2047 "Q" encoding).
fn quoted_printable(text: &str, underscore: bool) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'=' if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') => i += 3,
            b'=' if b.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' => match (
                b.get(i + 1).copied().and_then(hex_val),
                b.get(i + 2).copied().and_then(hex_val),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    out.push(b'=');
                    i += 1;
                }
            },
            b'_' if underscore => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`); whitespace between two
/// encoded words is dropped.
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut pending_space = String::new();
    let mut last_was_word = false;
    while !rest.is_empty() {
        if let Some(start) = rest.find("=?") {
            let (before, after) = rest.split_at(start);
            if let Some((decoded, consumed)) = encoded_word(after) {
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(&pending_space);
                    out.push_str(before);
                }
                pending_space.clear();
                out.push_str(&decoded);
                rest = &after[consumed..];
                last_was_word = true;
                // Keep the whitespace aside: dropped if another encoded word follows.
                let ws_len = rest.len() - rest.trim_start().len();
                pending_space = rest[..ws_len].to_string();
                rest = &rest[ws_len..];
                continue;
            }
            out.push_str(&pending_space);
            pending_space.clear();
            out.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
            last_was_word = false;
        } else {
            out.push_str(&pending_space);
            pending_space.clear();
            out.push_str(rest);
            break;
        }
    }
    out.push_str(&pending_space);
    out
}

fn encoded_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (_charset, r) = inner.split_once('?')?;
    let (enc, r) = r.split_once('?')?;
    let end = r.find("?=")?;
    let text = &r[..end];
    let consumed = 2 + (inner.len() - r.len()) + end + 2;
    let decoded = match enc.to_ascii_uppercase().as_str() {
        "B" => String::from_utf8_lossy(&base64_decode(text)?).into_owned(),
        "Q" => quoted_printable(text, true),
        _ => return None,
    };
    Some((decoded, consumed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2047_words_decode() {
        assert_eq!(decode_words("=?utf-8?b?w6l0w6k=?="), "été");
        assert_eq!(
            decode_words("=?utf-8?q?caf=C3=A9_cr=C3=A8me?="),
            "café crème"
        );
        assert_eq!(
            decode_words("[X] =?utf-8?b?w6k=?= =?utf-8?b?w6k=?= end"),
            "[X] éé end"
        );
        assert_eq!(decode_words("plain subject"), "plain subject");
    }

    #[test]
    fn quoted_printable_soft_breaks() {
        assert_eq!(quoted_printable("ab=\r\ncd=C3=A9", false), "abcdé");
    }
}
