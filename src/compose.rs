//! Renders a slot's `docker-compose.yml` from the template: the template is parsed
//! with serde_yaml, the streamer's environment and the Redis port are set in the
//! parsed document, and the document is written back out by a small emitter of our
//! own. Values are never substituted as text, so any meeting name gives a valid
//! file whose values read back exactly (PHP defect 5, docs/php-script.md).
//!
//! Two layers of quoting stand between a value and the container:
//! - YAML: the emitter writes every string double-quoted. serde_yaml's own output
//!   leaves strings such as `1_000` or `0X1F` plain, which docker compose's YAML
//!   library (go-yaml v3) reads as numbers: a meeting id `1_000` would reach the
//!   container as `1000`. A double-quoted scalar is a string for every YAML reader.
//!   serde_yaml (0.9) has no option to quote its strings, so it cannot write this
//!   file: tried on the template and on such values, it writes `1_000`, `0X1F`,
//!   `yes` and `on` plain, and the template's `restart: "no"` as `restart: no` (a
//!   boolean to YAML 1.1 readers). Hence the emitter below (`mod emit`), which writes
//!   only what serde_yaml's `Value` can hold.
//! - Compose interpolation: docker compose expands `$VAR` in the file, so each `$`
//!   of a value we set is written `$$`.
//!
//! This module owns the text of the file (`render`); the shape every template must have
//! is the configuration's (`config/template.rs`, checked when the file is loaded), and
//! writing the file to disk (atomically, mode 0600) belongs to the slot code.

use std::net::IpAddr;

use anyhow::{Context, Result, bail};
use serde_yaml::{Mapping, Value};

use crate::config::template::{self, list_entry};
pub use crate::config::template::{REDIS_SERVICE, STREAMER_SERVICE};

/// Redis's port inside its container.
const REDIS_CONTAINER_PORT: u16 = 6379;

/// Everything a slot's compose file depends on.
#[derive(Debug, Clone)]
pub struct ComposeParams {
    pub bbb_url: String,
    pub bbb_secret: String,
    pub meeting_id: String,
    pub attendee_password: String,
    pub moderator_password: String,
    pub title: String,
    pub resolution: String,
    pub video_bitrate: u32,
    pub threads: u32,
    /// `<bbb.stream_url><key>`.
    pub stream_url: String,
    pub enable_chat: bool,
    pub show_chat: bool,
    pub download: bool,
    pub timezone: String,
    pub redis_channel: String,
    /// Published as `<redis_bind>:<redis_port>:6379`.
    pub redis_bind: std::net::IpAddr,
    pub redis_port: u16,
    pub debug: bool,
}

/// The compose file for `params`, as YAML text.
/// A BBB meeting id the streamer can join: not blank, no control character — the
/// rule [`render`] enforces, for callers that check before rendering.
pub fn usable_meeting_id(id: &str) -> bool {
    !id.trim().is_empty() && !id.chars().any(char::is_control)
}

pub fn render(template: &str, params: &ComposeParams) -> Result<String> {
    let mut doc = template::checked(template)?;

    let meeting_id = &params.meeting_id;
    if meeting_id.trim().is_empty() {
        // PHP defect 15: an empty id made the streamer wait for a meeting that never runs.
        bail!("the meeting id is empty: no streamer is started without one");
    }
    if meeting_id.chars().any(char::is_control) {
        bail!("the meeting id {meeting_id:?} contains control characters");
    }

    let env = environment_mut(&mut doc)?;
    let flag = |b: bool| if b { "true" } else { "false" };
    // BBB strips control characters from API parameters anyway, and a NUL killed
    // the PHP script (defect 15): the title keeps its length, with spaces instead.
    let title: String = params
        .title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let settings: [(&str, &str); 17] = [
        ("BBB_URL", &params.bbb_url),
        ("BBB_SECRET", &params.bbb_secret),
        ("BBB_MEETING_ID", meeting_id),
        // The meeting is created by its front end (Moodle, Greenlight, Pod): the
        // streamer waits for it rather than creating it.
        ("BBB_START_MEETING", "false"),
        ("BBB_ATTENDEE_PASSWORD", &params.attendee_password),
        ("BBB_MODERATOR_PASSWORD", &params.moderator_password),
        ("BBB_MEETING_TITLE", &title),
        ("BBB_DOWNLOAD_MEETING", flag(params.download)),
        ("BBB_STREAM_URL", &params.stream_url),
        ("BBB_RESOLUTION", &params.resolution),
        (
            "FFMPEG_STREAM_VIDEO_BITRATE",
            &params.video_bitrate.to_string(),
        ),
        ("FFMPEG_STREAM_THREADS", &params.threads.to_string()),
        ("BBB_ENABLE_CHAT", flag(params.enable_chat)),
        ("BBB_SHOW_CHAT", flag(params.show_chat)),
        ("BBB_REDIS_CHANNEL", &params.redis_channel),
        ("TZ", &params.timezone),
        // The streamer turns debug on for ANY non-empty value, `false` included.
        ("DEBUG", if params.debug { "true" } else { "" }),
    ];
    for (key, value) in settings {
        env.insert(key.into(), Value::String(compose_literal(value)));
    }
    // An admin may point the streamer at another Redis; an absent or empty value
    // means the template's own `redis` service.
    let keep_redis_host = match env.get("BBB_REDIS_HOST") {
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Number(_)) => true,
        _ => false,
    };
    if !keep_redis_host {
        env.insert("BBB_REDIS_HOST".into(), Value::String(REDIS_SERVICE.into()));
    }

    let redis = service_mut(&mut doc, REDIS_SERVICE)?;
    let published = match params.redis_bind {
        IpAddr::V4(a) => format!("{a}:{}:{REDIS_CONTAINER_PORT}", params.redis_port),
        IpAddr::V6(a) => format!("[{a}]:{}:{REDIS_CONTAINER_PORT}", params.redis_port),
    };
    redis.insert(
        "ports".into(),
        Value::Sequence(vec![Value::String(published)]),
    );

    let mut out = String::from(
        "# Written by bbb-pod-live from its compose template for the live in this slot.\n\
         # It is rewritten at every start: change the template, not this file.\n",
    );
    emit::document(&mut out, &doc)?;
    Ok(out)
}

/// The streamer's name in its meeting (its attendee `fullName`) when `BBB_USER_NAME`
/// is unset or empty: the image's default.
pub const DEFAULT_STREAMER_NAME: &str = "Live";

/// The chat relay's name in its meeting when `BBB_CHAT_NAME` is unset or empty: the
/// image's default.
pub const DEFAULT_CHAT_NAME: &str = "Chat";

/// The streamer's attendee `fullName`: `BBB_USER_NAME` of a compose file as written
/// by [`render`] (`$$` read back as `$`), or [`DEFAULT_STREAMER_NAME`].
pub fn streamer_name(compose_file: &str) -> Result<String> {
    own_users(compose_file).map(|[streamer, _]| streamer)
}

/// bbb-pod-live's own attendees in a slot's meeting, as a compose file written by
/// [`render`] names them: the streamer (`BBB_USER_NAME`, default
/// [`DEFAULT_STREAMER_NAME`]) and its chat relay (`BBB_CHAT_NAME`, default
/// [`DEFAULT_CHAT_NAME`]; it joins only when the viewers' chat is on).
pub fn own_users(compose_file: &str) -> Result<[String; 2]> {
    let mut doc: Value =
        serde_yaml::from_str(compose_file).context("the compose file is not valid YAML")?;
    let env = environment_mut(&mut doc)?;
    let name = |key: &str, default: &str| {
        let name = match env.get(key) {
            Some(Value::String(s)) => s.replace("$$", "$"),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => String::new(),
        };
        if name.is_empty() {
            default.to_owned()
        } else {
            name
        }
    };
    Ok([
        name("BBB_USER_NAME", DEFAULT_STREAMER_NAME),
        name("BBB_CHAT_NAME", DEFAULT_CHAT_NAME),
    ])
}

/// The streamer's `image` in a compose template or file, if it names one.
pub fn streamer_image(compose_file: &str) -> Option<String> {
    let doc: Value = serde_yaml::from_str(compose_file).ok()?;
    let image = doc.get("services")?.get(STREAMER_SERVICE)?.get("image")?;
    image.as_str().map(str::to_owned)
}

/// `value` as docker compose must read it to pass `value` on: `$` doubled, since
/// compose interpolates `$VAR` and `${VAR}` in the file.
fn compose_literal(value: &str) -> String {
    value.replace('$', "$$")
}

fn service_mut<'a>(doc: &'a mut Value, name: &str) -> Result<&'a mut Mapping> {
    doc.get_mut("services")
        .and_then(|s| s.get_mut(name))
        .and_then(Value::as_mapping_mut)
        .with_context(|| format!("the compose template has no `services.{name}` service"))
}

/// The streamer's environment as a mapping, a list form being converted in place.
fn environment_mut(doc: &mut Value) -> Result<&mut Mapping> {
    let streamer = service_mut(doc, STREAMER_SERVICE)?;
    let env = streamer.get_mut("environment").with_context(|| {
        format!("the compose template has no `services.{STREAMER_SERVICE}.environment`")
    })?;
    if let Value::Sequence(items) = env {
        let mut map = Mapping::new();
        for item in items.iter() {
            let (key, value) = list_entry(item)?;
            map.insert(Value::String(key), value);
        }
        *env = Value::Mapping(map);
    }
    env.as_mapping_mut().with_context(|| {
        format!(
            "`services.{STREAMER_SERVICE}.environment` in the compose template is not a mapping"
        )
    })
}

/// A block-style YAML emitter for `serde_yaml::Value` that double-quotes every
/// string (see the module documentation for why serde_yaml's own output is not
/// enough for docker compose).
mod emit {
    use std::fmt::Write as _;

    use super::*;

    pub(super) fn document(out: &mut String, doc: &Value) -> Result<()> {
        match doc {
            Value::Mapping(m) if !m.is_empty() => mapping(out, m, 0, false),
            Value::Sequence(s) if !s.is_empty() => sequence(out, s, 0),
            Value::Tagged(t) => {
                if matches!(t.value, Value::Tagged(_)) {
                    bail!("a node with two tags cannot be written as YAML");
                }
                out.push_str(&tag(&t.tag.to_string())?);
                node_after_indicator(out, &t.value, 0)
            }
            scalar => {
                flow_scalar(out, scalar)?;
                out.push('\n');
                Ok(())
            }
        }
    }

    /// Writes what follows `key:` or `-`: ` scalar\n`, or a newline and a block at `indent`.
    fn node_after_indicator(out: &mut String, value: &Value, indent: usize) -> Result<()> {
        match value {
            Value::Mapping(m) if !m.is_empty() => {
                out.push('\n');
                mapping(out, m, indent, false)
            }
            Value::Sequence(s) if !s.is_empty() => {
                out.push('\n');
                sequence(out, s, indent)
            }
            Value::Tagged(t) => {
                if matches!(t.value, Value::Tagged(_)) {
                    bail!("a node with two tags cannot be written as YAML");
                }
                out.push(' ');
                out.push_str(&tag(&t.tag.to_string())?);
                node_after_indicator(out, &t.value, indent)
            }
            scalar => {
                out.push(' ');
                flow_scalar(out, scalar)?;
                out.push('\n');
                Ok(())
            }
        }
    }

    /// With `first_inline`, the first key goes where the cursor is (after `- `).
    fn mapping(out: &mut String, m: &Mapping, indent: usize, first_inline: bool) -> Result<()> {
        for (i, (k, v)) in m.iter().enumerate() {
            if i > 0 || !first_inline {
                pad(out, indent);
            }
            key(out, k)?;
            out.push(':');
            node_after_indicator(out, v, indent + 2)?;
        }
        Ok(())
    }

    fn sequence(out: &mut String, s: &[Value], indent: usize) -> Result<()> {
        for item in s {
            pad(out, indent);
            match item {
                Value::Mapping(m) if !m.is_empty() => {
                    out.push_str("- ");
                    mapping(out, m, indent + 2, true)?;
                }
                other => {
                    out.push('-');
                    node_after_indicator(out, other, indent + 2)?;
                }
            }
        }
        Ok(())
    }

    fn pad(out: &mut String, indent: usize) {
        out.extend(std::iter::repeat_n(' ', indent));
    }

    /// A mapping key: plain when it is an ordinary name (`services`, `BBB_URL`,
    /// `x-common`) so the file stays readable, double-quoted otherwise.
    fn key(out: &mut String, k: &Value) -> Result<()> {
        match k {
            // Compose's merge key: quoting it would turn it into an ordinary key.
            Value::String(s) if s == "<<" => out.push_str("<<"),
            // YAML limits implicit keys to 1024 characters.
            Value::String(s) if s.len() > 1000 => {
                bail!("a mapping key of {} bytes cannot be written", s.len())
            }
            Value::String(s) if is_plain_key(s) => out.push_str(s),
            Value::String(_) | Value::Null | Value::Bool(_) | Value::Number(_) => {
                flow_scalar(out, k)?
            }
            other => bail!("a mapping key that is not a scalar cannot be written: {other:?}"),
        }
        Ok(())
    }

    fn is_plain_key(s: &str) -> bool {
        let mut chars = s.chars();
        let starts_well = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        // Words YAML 1.1 readers take for booleans or null.
        const RESERVED: [&str; 10] = [
            "true", "false", "null", "yes", "no", "on", "off", "y", "n", "nan",
        ];
        starts_well
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
            && !RESERVED.iter().any(|w| w.eq_ignore_ascii_case(s))
    }

    /// A scalar in flow position: strings double-quoted, others as YAML writes them.
    fn flow_scalar(out: &mut String, v: &Value) -> Result<()> {
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            // serde_yaml's Display gives YAML's spelling (`.inf`, `.nan`, `1.0`).
            Value::Number(n) => write!(out, "{n}")?,
            Value::String(s) => double_quoted(out, s),
            Value::Mapping(m) if m.is_empty() => out.push_str("{}"),
            Value::Sequence(s) if s.is_empty() => out.push_str("[]"),
            other => bail!("internal: {other:?} is not a scalar"),
        }
        Ok(())
    }

    /// `s` as a YAML double-quoted scalar: only printable characters are written as
    /// they are; line breaks and other non-printable ones are escaped.
    pub(super) fn double_quoted(out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                // C0 and C1 controls (NEL U+0085 included), the Unicode line and
                // paragraph separators, the BOM and the non-characters U+FFFE/U+FFFF.
                c if c.is_control()
                    || matches!(
                        c,
                        '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                    ) =>
                {
                    let code = u32::from(c);
                    // `write!` into a String cannot fail.
                    let _ = if code <= 0xff {
                        write!(out, "\\x{code:02X}")
                    } else {
                        write!(out, "\\u{code:04X}")
                    };
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    /// A tag such as `!reset` or `!override` (docker compose's own tags).
    fn tag(t: &str) -> Result<String> {
        let name = t.strip_prefix('!').unwrap_or(t);
        let ok = !name.is_empty()
            && name.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/' | '~')
            });
        if !ok {
            bail!("the YAML tag {t:?} cannot be written back");
        }
        Ok(format!("!{name}"))
    }
}

#[cfg(test)]
// Panicking on an unexpected `Err` is how a test fails.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::BUILTIN_TEMPLATE;
    use crate::config::template::check_template;
    use proptest::prelude::*;

    #[test]
    fn streamer_name_is_read_back_from_the_written_file() {
        let p = params();
        let written = render(BUILTIN_TEMPLATE, &p).unwrap();
        assert_eq!(streamer_name(&written).unwrap(), "Live");
        let template =
            BUILTIN_TEMPLATE.replace("BBB_USER_NAME: Live ", "BBB_USER_NAME: \"Cours $ & Live\" ");
        let written = render(&template, &p).unwrap();
        assert_eq!(streamer_name(&written).unwrap(), "Cours $ & Live");
        let list = "services:\n  bbb-streamer:\n    environment:\n      - BBB_USER_NAME=\n";
        assert_eq!(streamer_name(list).unwrap(), DEFAULT_STREAMER_NAME);
        assert_eq!(
            own_users(&written).unwrap(),
            ["Cours $ & Live".to_owned(), "Chat".to_owned()]
        );
        let chat =
            "services:\n  bbb-streamer:\n    environment:\n      BBB_CHAT_NAME: \"Relais $$\"\n";
        assert_eq!(
            own_users(chat).unwrap(),
            ["Live".to_owned(), "Relais $".to_owned()]
        );
        assert_eq!(own_users(list).unwrap()[1], DEFAULT_CHAT_NAME);
        assert!(streamer_name("services: [").is_err());
    }

    #[test]
    fn streamer_image_of_the_builtin_template() {
        assert_eq!(
            streamer_image(BUILTIN_TEMPLATE).as_deref(),
            Some("aauzid/bigbluebutton-livestreaming:latest")
        );
        assert_eq!(streamer_image("services: {}"), None);
    }

    fn params() -> ComposeParams {
        ComposeParams {
            bbb_url: "https://bbb.univ.fr/bigbluebutton/api".into(),
            bbb_secret: "s3cr$t\"'#: x".into(),
            meeting_id: "abc-123".into(),
            attendee_password: "ap".into(),
            moderator_password: "mp".into(),
            title: "[BBB] Cours d'amphi".into(),
            resolution: "1280x720".into(),
            video_bitrate: 3000,
            threads: 0,
            stream_url: "rtmp://live.univ.fr/live/bbb-cours-42".into(),
            enable_chat: true,
            show_chat: false,
            download: true,
            timezone: "Europe/Paris".into(),
            redis_channel: "chat1".into(),
            redis_bind: "0.0.0.0".parse().unwrap(),
            redis_port: 6379,
            debug: false,
        }
    }

    /// The rendered file parsed back, and its streamer environment with `$$` undone.
    fn env_of(text: &str) -> (Value, Mapping) {
        let doc: Value = serde_yaml::from_str(text).unwrap();
        let env = doc["services"][STREAMER_SERVICE]["environment"]
            .as_mapping()
            .unwrap()
            .clone();
        (doc, env)
    }

    fn var(env: &Mapping, key: &str) -> String {
        match env.get(key) {
            Some(Value::String(s)) => s.replace("$$", "$"),
            other => panic!("{key} is not a string: {other:?}"),
        }
    }

    fn assert_all_values(text: &str, p: &ComposeParams, title: &str) {
        let (_, env) = env_of(text);
        assert_eq!(var(&env, "BBB_URL"), p.bbb_url);
        assert_eq!(var(&env, "BBB_SECRET"), p.bbb_secret);
        assert_eq!(var(&env, "BBB_MEETING_ID"), p.meeting_id);
        assert_eq!(var(&env, "BBB_START_MEETING"), "false");
        assert_eq!(var(&env, "BBB_ATTENDEE_PASSWORD"), p.attendee_password);
        assert_eq!(var(&env, "BBB_MODERATOR_PASSWORD"), p.moderator_password);
        assert_eq!(var(&env, "BBB_MEETING_TITLE"), title);
        assert_eq!(var(&env, "BBB_DOWNLOAD_MEETING"), p.download.to_string());
        assert_eq!(var(&env, "BBB_STREAM_URL"), p.stream_url);
        assert_eq!(var(&env, "BBB_RESOLUTION"), p.resolution);
        assert_eq!(
            var(&env, "FFMPEG_STREAM_VIDEO_BITRATE"),
            p.video_bitrate.to_string()
        );
        assert_eq!(var(&env, "FFMPEG_STREAM_THREADS"), p.threads.to_string());
        assert_eq!(var(&env, "BBB_ENABLE_CHAT"), p.enable_chat.to_string());
        assert_eq!(var(&env, "BBB_SHOW_CHAT"), p.show_chat.to_string());
        assert_eq!(var(&env, "BBB_REDIS_HOST"), "redis");
        assert_eq!(var(&env, "BBB_REDIS_CHANNEL"), p.redis_channel);
        assert_eq!(var(&env, "TZ"), p.timezone);
        assert_eq!(
            var(&env, "DEBUG"),
            if p.debug { "true" } else { "" }.to_string()
        );
    }

    /// Every string of the streamer's environment is double-quoted in the file, so
    /// no YAML reader can take it for a number, a boolean or null.
    fn assert_env_quoted(text: &str) {
        let env_lines = text
            .lines()
            .skip_while(|l| l.trim() != "environment:")
            .skip(1)
            .take_while(|l| l.starts_with("      "));
        let mut n = 0;
        for line in env_lines {
            let (_, value) = line.split_once(": ").unwrap();
            assert!(
                value.starts_with('"') && value.ends_with('"'),
                "not double-quoted: {line}"
            );
            n += 1;
        }
        assert!(n >= 18, "only {n} environment lines found in\n{text}");
    }

    #[test]
    fn builtin_template_is_valid() {
        check_template(BUILTIN_TEMPLATE).unwrap();
        let doc: Value = serde_yaml::from_str(BUILTIN_TEMPLATE).unwrap();
        let streamer = &doc["services"][STREAMER_SERVICE];
        assert!(
            streamer["image"]
                .as_str()
                .unwrap()
                .starts_with("aauzid/bigbluebutton-livestreaming")
        );
        assert_eq!(streamer["shm_size"].as_str(), Some("2gb"));
        assert_eq!(streamer["volumes"][0].as_str(), Some("./videodata:/video"));
    }

    #[test]
    fn renders_every_value_from_the_builtin_template() {
        let p = params();
        let text = render(BUILTIN_TEMPLATE, &p).unwrap();
        assert_all_values(&text, &p, &p.title);
        assert_env_quoted(&text);
        let (doc, env) = env_of(&text);
        // Keys of the template we do not set are kept.
        assert_eq!(var(&env, "BBB_USER_NAME"), "Live");
        assert_eq!(var(&env, "BBB_CHAT_NAME"), "Chat");
        assert_eq!(
            doc["services"][STREAMER_SERVICE]["shm_size"].as_str(),
            Some("2gb")
        );
        assert_eq!(
            doc["services"][STREAMER_SERVICE]["depends_on"][0].as_str(),
            Some("redis")
        );
        assert_eq!(
            doc["services"]["redis"]["ports"],
            Value::Sequence(vec!["0.0.0.0:6379:6379".into()])
        );
        assert!(text.starts_with("# Written by bbb-pod-live"));
    }

    #[test]
    fn the_secret_dollar_is_doubled_for_compose() {
        let mut p = params();
        p.bbb_secret = "a$b${X}$$c".into();
        let text = render(BUILTIN_TEMPLATE, &p).unwrap();
        let (_, env) = env_of(&text);
        assert_eq!(env["BBB_SECRET"].as_str(), Some("a$$b$${X}$$$$c"));
        assert_eq!(var(&env, "BBB_SECRET"), "a$b${X}$$c");
    }

    #[test]
    fn hostile_titles_read_back_exactly() {
        let long: String = "é".repeat(210);
        let titles = [
            "It's \"quoted\"",
            "a/b/c & d \\ e",
            "$HOME ${X} $$",
            "# not a comment",
            "key: value",
            "- dash",
            "* star",
            "! bang",
            "&anchor",
            "*alias",
            "yes",
            "no",
            "null",
            "~",
            "1e3",
            "1_000",
            "0X1F",
            "010",
            "true",
            "",
            " leading and trailing ",
            "emoji 😀 🎓",
            "[flow] {map}, `tick` | > % @ ?",
            &long,
        ];
        for t in titles {
            let mut p = params();
            p.title = t.to_owned();
            let text = render(BUILTIN_TEMPLATE, &p).unwrap();
            assert_all_values(&text, &p, t);
            assert_env_quoted(&text);
        }
    }

    #[test]
    fn control_characters_in_the_title_become_spaces() {
        let mut p = params();
        p.title = "line one\nline two\0end\r\t\u{7f}\u{85}x".into();
        let text = render(BUILTIN_TEMPLATE, &p).unwrap();
        assert_all_values(&text, &p, "line one line two end    x");
        assert!(!text.contains('\0'));
    }

    #[test]
    fn meeting_id_must_be_usable() {
        for bad in ["", "   ", "abc\ndef", "abc\0"] {
            let mut p = params();
            p.meeting_id = bad.into();
            let err = render(BUILTIN_TEMPLATE, &p).unwrap_err();
            assert!(format!("{err:#}").contains("meeting id"), "{err:#}");
        }
    }

    #[test]
    fn debug_is_true_or_empty() {
        let mut p = params();
        p.debug = true;
        let text = render(BUILTIN_TEMPLATE, &p).unwrap();
        assert_eq!(var(&env_of(&text).1, "DEBUG"), "true");
        p.debug = false;
        let text = render(BUILTIN_TEMPLATE, &p).unwrap();
        assert_eq!(var(&env_of(&text).1, "DEBUG"), "");
    }

    #[test]
    fn redis_port_for_ipv4_and_ipv6() {
        let mut p = params();
        p.redis_bind = "192.0.2.7".parse().unwrap();
        p.redis_port = 6380;
        let (doc, _) = env_of(&render(BUILTIN_TEMPLATE, &p).unwrap());
        assert_eq!(
            doc["services"]["redis"]["ports"],
            Value::Sequence(vec!["192.0.2.7:6380:6379".into()])
        );
        p.redis_bind = "::".parse().unwrap();
        let (doc, _) = env_of(&render(BUILTIN_TEMPLATE, &p).unwrap());
        assert_eq!(
            doc["services"]["redis"]["ports"],
            Value::Sequence(vec!["[::]:6380:6379".into()])
        );
    }

    const LIST_TEMPLATE: &str = r#"
services:
  bbb-streamer:
    image: aauzid/bigbluebutton-livestreaming:1
    shm_size: '2gb'
    environment:
      - BBB_URL=old
      - BBB_USER_NAME=Stream bot = Live
      - BBB_REDIS_HOST=chat-redis
      - BBB_INTRO=
      - FROM_SHELL
    volumes: ["./videodata:/video"]
  redis:
    image: redis
    ports:
      - "6379:6379"
      - "16379:6379"
    expose: ["6379"]
x-note: &anchor {a: 1}
"#;

    #[test]
    fn list_form_environment_is_converted() {
        check_template(LIST_TEMPLATE).unwrap();
        let p = params();
        let text = render(LIST_TEMPLATE, &p).unwrap();
        let (doc, env) = env_of(&text);
        assert_eq!(var(&env, "BBB_URL"), p.bbb_url);
        assert_eq!(var(&env, "BBB_USER_NAME"), "Stream bot = Live");
        assert_eq!(var(&env, "BBB_INTRO"), "");
        // The template's own Redis host is kept.
        assert_eq!(var(&env, "BBB_REDIS_HOST"), "chat-redis");
        assert_eq!(env.get("FROM_SHELL"), Some(&Value::Null));
        assert_eq!(var(&env, "BBB_MEETING_ID"), p.meeting_id);
        assert_eq!(
            doc["services"]["redis"]["ports"],
            Value::Sequence(vec!["0.0.0.0:6379:6379".into()])
        );
        assert_eq!(doc["services"]["redis"]["expose"][0].as_str(), Some("6379"));
        assert_eq!(doc["x-note"]["a"].as_u64(), Some(1));
        assert_eq!(
            doc["services"][STREAMER_SERVICE]["image"].as_str(),
            Some("aauzid/bigbluebutton-livestreaming:1")
        );
    }

    #[test]
    fn compose_tags_and_merge_keys_survive() {
        let template = r#"
x-base: &base
  restart: "no"
services:
  bbb-streamer:
    <<: *base
    environment: {}
    labels: !reset null
    ports: !override
      - "1:1"
  redis: {image: redis}
"#;
        let text = render(template, &params()).unwrap();
        assert!(text.contains("    <<:\n      restart: \"no\"\n"), "{text}");
        assert!(text.contains("labels: !reset null\n"), "{text}");
        assert!(
            text.contains("ports: !override\n      - \"1:1\"\n"),
            "{text}"
        );
        serde_yaml::from_str::<Value>(&text).unwrap();
    }

    #[test]
    fn template_errors_name_what_is_missing() {
        let cases = [
            ("services: [", "not valid YAML"),
            ("version: '3'\n", "no `services`"),
            ("services: 3\n", "not a mapping"),
            (
                "services:\n  redis: {image: redis}\n",
                "no `services.bbb-streamer`",
            ),
            (
                "services:\n  bbb-streamer: {environment: {}}\n",
                "no `services.redis`",
            ),
            (
                "services:\n  bbb-streamer: {image: x}\n  redis: {}\n",
                "environment",
            ),
            (
                "services:\n  bbb-streamer: {environment: 3}\n  redis: {}\n",
                "mapping or a list",
            ),
            (
                "services:\n  bbb-streamer: {environment: [{A: 1}]}\n  redis: {}\n",
                "KEY=VALUE",
            ),
            (
                "services:\n  bbb-streamer: {environment: ['=x']}\n  redis: {}\n",
                "without a variable name",
            ),
            (
                "services:\n  bbb-streamer: {environment: {}, container_name: live}\n  redis: {}\n",
                "container_name",
            ),
        ];
        for (template, expected) in cases {
            let err = check_template(template).unwrap_err();
            assert!(
                format!("{err:#}").contains(expected),
                "{template:?}: {err:#}"
            );
            let err = render(template, &params()).unwrap_err();
            assert!(
                format!("{err:#}").contains(expected),
                "{template:?}: {err:#}"
            );
        }
    }

    #[test]
    fn escapes_are_valid_yaml() {
        let mut s = String::new();
        emit::double_quoted(&mut s, "a\"b\\c\n\t\r\0\u{1b}\u{85}\u{2028}\u{feff}é😀");
        let back: String = serde_yaml::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\n\t\r\0\u{1b}\u{85}\u{2028}\u{feff}é😀");
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| Value::Number(n.into())),
            any::<u64>().prop_map(|n| Value::Number(n.into())),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| Value::Number(f.into())),
            any::<String>().prop_map(Value::String),
            "[a-z0-9_.<>~-]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Sequence),
                prop::collection::vec(
                    (
                        prop_oneof![any::<String>(), "[a-zA-Z_<][a-z0-9_.-]{0,5}"],
                        inner.clone()
                    ),
                    0..5
                )
                .prop_map(|kv| {
                    Value::Mapping(kv.into_iter().map(|(k, v)| (Value::String(k), v)).collect())
                }),
                inner.prop_map(|v| {
                    let v = match v {
                        Value::Tagged(t) => t.value,
                        v => v,
                    };
                    Value::Tagged(Box::new(serde_yaml::value::TaggedValue {
                        tag: serde_yaml::value::Tag::new("reset"),
                        value: v,
                    }))
                }),
            ]
        })
    }

    /// Control-free, non-blank: what a meeting id may be.
    fn arb_id() -> impl Strategy<Value = String> {
        "[^\\p{Cc}]{1,80}".prop_filter("not blank", |s| !s.trim().is_empty())
    }

    proptest! {
        #[test]
        fn emitter_round_trips_any_document(v in arb_value()) {
            let mut out = String::new();
            emit::document(&mut out, &v).unwrap();
            let back: Value = serde_yaml::from_str(&out).unwrap();
            prop_assert_eq!(back, v, "{}", out);
        }

        #[test]
        fn any_values_round_trip(
            title in any::<String>(),
            secret in any::<String>(),
            attendee in any::<String>(),
            moderator in any::<String>(),
            meeting_id in arb_id(),
        ) {
            let mut p = params();
            p.title = title.clone();
            p.bbb_secret = secret;
            p.attendee_password = attendee;
            p.moderator_password = moderator;
            p.meeting_id = meeting_id;
            let text = render(BUILTIN_TEMPLATE, &p).unwrap();
            let clean: String = title.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            assert_all_values(&text, &p, &clean);
        }
    }
}

/// Compose rendering under hostile values: every string parameter at
/// once (not only the title and the secrets), any number, flag, bind address and port.
/// What `render` promises, checked on the file read back with serde_yaml: each value
/// reads back exactly once its `$$` are undone (and no lone `$` is left for compose to
/// interpolate), except the title, whose control characters become spaces (same number
/// of characters); a meeting id holding a control character, or blank, gives an error
/// and no file; Redis is published on `<redis_bind>:<redis_port>:6379` only; the
/// template's other keys are kept.
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod hostile_props {
    use super::*;
    use crate::config::BUILTIN_TEMPLATE;

    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;

    fn hostile() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[\\x00-\\x1f\\x7f\\u{85}\\u{2028}\\u{feff}$&*!|>%@`#:{}\\[\\],'\"\\\\/. -]{0,24}",
            prop::sample::select(vec![
                "",
                "~",
                "null",
                "yes",
                "no",
                "on",
                "0x1F",
                "1_000",
                "1e3",
                ".inf",
                "-",
                "---",
                "...",
                "- a",
                "? x",
                "&anchor",
                "*alias",
                "!!binary",
                "${BBB_SECRET}",
                "$$",
                "$",
                "a: b",
                "# c",
                "\"",
                "'",
                "\\",
                "\r\n",
                "\u{0}",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn arb_bind() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o))),
            any::<[u16; 8]>().prop_map(|s| IpAddr::V6(Ipv6Addr::from(s))),
        ]
    }

    prop_compose! {
        fn arb_params()(
            s in prop::collection::vec(hostile(), 11),
            meeting_id in hostile().prop_filter("usable id", |s| {
                !s.trim().is_empty() && !s.chars().any(char::is_control)
            }),
            numbers in any::<(u32, u32, u16)>(),
            flags in any::<[bool; 4]>(),
            redis_bind in arb_bind(),
        ) -> ComposeParams {
            ComposeParams {
                bbb_url: s[0].clone(),
                bbb_secret: s[1].clone(),
                meeting_id,
                attendee_password: s[2].clone(),
                moderator_password: s[3].clone(),
                title: s[4].clone(),
                resolution: s[5].clone(),
                video_bitrate: numbers.0,
                threads: numbers.1,
                stream_url: s[6].clone(),
                enable_chat: flags[0],
                show_chat: flags[1],
                download: flags[2],
                timezone: s[7].clone(),
                redis_channel: s[8].clone(),
                redis_bind,
                redis_port: numbers.2,
                debug: flags[3],
            }
        }
    }

    /// The environment value of `key` as written (before compose's `$$` → `$`).
    fn written(env: &Mapping, key: &str) -> Result<String, TestCaseError> {
        match env.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            other => Err(TestCaseError::fail(format!(
                "{key} is not a string: {other:?}"
            ))),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_hostile_value_reads_back_as_promised(p in arb_params()) {
            let text = render(BUILTIN_TEMPLATE, &p).unwrap();
            let doc: Value = serde_yaml::from_str(&text)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            let env = doc["services"][STREAMER_SERVICE]["environment"]
                .as_mapping()
                .unwrap()
                .clone();
            let title: String = p.title.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            prop_assert_eq!(title.chars().count(), p.title.chars().count());
            let flag = |b: bool| b.to_string();
            let expected: [(&str, String); 17] = [
                ("BBB_URL", p.bbb_url.clone()),
                ("BBB_SECRET", p.bbb_secret.clone()),
                ("BBB_MEETING_ID", p.meeting_id.clone()),
                ("BBB_START_MEETING", "false".into()),
                ("BBB_ATTENDEE_PASSWORD", p.attendee_password.clone()),
                ("BBB_MODERATOR_PASSWORD", p.moderator_password.clone()),
                ("BBB_MEETING_TITLE", title),
                ("BBB_DOWNLOAD_MEETING", flag(p.download)),
                ("BBB_STREAM_URL", p.stream_url.clone()),
                ("BBB_RESOLUTION", p.resolution.clone()),
                ("FFMPEG_STREAM_VIDEO_BITRATE", p.video_bitrate.to_string()),
                ("FFMPEG_STREAM_THREADS", p.threads.to_string()),
                ("BBB_ENABLE_CHAT", flag(p.enable_chat)),
                ("BBB_SHOW_CHAT", flag(p.show_chat)),
                ("BBB_REDIS_CHANNEL", p.redis_channel.clone()),
                ("TZ", p.timezone.clone()),
                ("DEBUG", if p.debug { "true".into() } else { String::new() }),
            ];
            for (key, want) in expected {
                let raw = written(&env, key)?;
                // Compose interpolation: every `$` must come doubled.
                prop_assert!(!raw.replace("$$", "").contains('$'), "{}: lone $ in {:?}", key, raw);
                prop_assert_eq!(raw.replace("$$", "$"), want, "{}", key);
            }
            // The template's own values are kept.
            prop_assert_eq!(written(&env, "BBB_REDIS_HOST")?, "redis");
            prop_assert_eq!(written(&env, "BBB_USER_NAME")?, "Live");
            prop_assert_eq!(
                doc["services"][STREAMER_SERVICE]["image"].as_str(),
                Some("aauzid/bigbluebutton-livestreaming:latest")
            );
            // The chat Redis: one published port, on the bind address only.
            let published = match p.redis_bind {
                IpAddr::V4(a) => format!("{a}:{}:6379", p.redis_port),
                IpAddr::V6(a) => format!("[{a}]:{}:6379", p.redis_port),
            };
            prop_assert_eq!(
                doc["services"][REDIS_SERVICE]["ports"].clone(),
                Value::Sequence(vec![Value::String(published)])
            );
        }

        #[test]
        fn a_meeting_id_with_a_control_character_or_blank_gives_no_file(
            p in arb_params(),
            before in "\\PC{0,10}",
            control in "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}]",
            blank in "[ \\t\\n\\r\\u{3000}]{0,4}",
            which in any::<bool>(),
        ) {
            let mut p = p;
            p.meeting_id = if which { format!("{before}{control}") } else { blank };
            let err = match render(BUILTIN_TEMPLATE, &p) {
                Ok(text) => return Err(TestCaseError::fail(format!("rendered for id {:?}:\n{text}", p.meeting_id))),
                Err(e) => e.to_string(),
            };
            prop_assert!(err.contains("meeting id"), "{}", err);
        }
    }
}
