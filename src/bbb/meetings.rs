//! The getMeetings answer, parsed as a stream by element name: [`MeetingsParser`], one
//! state machine fed quick-xml events, with two thin drivers sharing one window parser:
//! a byte slice ([`parse_meetings`]) and an async body stream (`read_meetings`, which
//! the client feeds as the answer arrives). It keeps only the four values [`BbbMeeting`]
//! needs and bounds what it holds, so a hostile or huge answer costs neither unbounded
//! memory nor a panic. Watching ([`Watch`]), it also keeps the watched `fullName`s
//! among the attendees of the watched meetings, and nothing of the others.
//!
//! Not here: the HTTP call and its errors (`client.rs`), what the meetings mean (`plan`).

use std::collections::HashSet;
use std::io;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, BytesText, Event};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::BbbError;
use crate::model::{BbbMeeting, InternalMeetingId, MeetingId};

/// Parses a whole getMeetings answer held in memory.
pub fn parse_meetings(xml: &[u8]) -> Result<Vec<BbbMeeting>, BbbError> {
    drive_slice(xml, MeetingsParser::new())
}

// ---------------------------------------------------------------------------
// Limits on what a getMeetings answer may cost
// ---------------------------------------------------------------------------

/// Longest kept text value (an id, `running`, `endTime`, `returncode`, a messageKey).
/// Real values are tens of bytes; a FAILED `message` longer than this is cut, not refused.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Most meetings one answer may list. A large Scalelite lists a few thousand.
pub const MAX_MEETINGS: usize = 200_000;
/// Deepest element nesting accepted. Real answers nest 7 deep
/// (response/meetings/meeting/attendees/attendee/customdata/key); the parser and
/// quick-xml keep a stack of open names, so unbounded nesting would be unbounded memory.
pub const MAX_DEPTH: usize = 64;
/// Most bytes one XML token (tag, text run, comment…) may span. The stream driver holds
/// a whole token before parsing it; BBB metadata values come from a URL query, so real
/// tokens are a few KiB at most.
pub const MAX_TOKEN_BYTES: usize = 1 << 20;

fn garbage(reason: impl Into<String>) -> BbbError {
    BbbError::Garbage(reason.into())
}

fn token_too_long() -> BbbError {
    garbage(format!(
        "an XML token is longer than {MAX_TOKEN_BYTES} bytes"
    ))
}

fn malformed(err: &quick_xml::Error, position: u64) -> BbbError {
    garbage(format!("malformed XML at byte {position}: {err}"))
}

/// An element name for a message: lossy UTF-8, at most 40 characters.
fn shown(name: &[u8]) -> String {
    String::from_utf8_lossy(name).chars().take(40).collect()
}

// ---------------------------------------------------------------------------
// The state machine
// ---------------------------------------------------------------------------

/// The elements whose children the parser looks at. Anything else is skipped whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Response,
    Meetings,
    Meeting,
    Errors,
    Error,
    /// Only entered when watching for streamers ([`Watch`]).
    Attendees,
    Attendee,
}

/// A text value being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    ReturnCode,
    MessageKey,
    Message,
    MeetingId,
    InternalMeetingId,
    Running,
    EndTime,
    ErrorKey,
    ErrorMessage,
    FullName,
}

impl Field {
    fn tag(self) -> &'static str {
        match self {
            Field::ReturnCode => "returncode",
            Field::MessageKey => "messageKey",
            Field::Message => "message",
            Field::MeetingId => "meetingID",
            Field::InternalMeetingId => "internalMeetingID",
            Field::Running => "running",
            Field::EndTime => "endTime",
            Field::ErrorKey => "key",
            Field::ErrorMessage => "message",
            Field::FullName => "fullName",
        }
    }

    /// Human text, only shown to the admin: cut when too long rather than refused.
    fn is_prose(self) -> bool {
        matches!(self, Field::Message | Field::ErrorMessage | Field::FullName)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    NotSeen,
    Open,
    Closed,
}

#[derive(Debug, Default)]
struct PartialMeeting {
    meeting_id: Option<String>,
    internal_meeting_id: Option<String>,
    running: Option<bool>,
    end_time: Option<u64>,
    /// Watched names among its attendees.
    streamers: Vec<String>,
    /// Its attendees with another name.
    others: u32,
}

/// Whom to look for among the attendees (the health's signal b): only the attendees of
/// these meetings with these names are kept, so the parser's memory stays flat
/// whatever the size of the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watch {
    /// External `meetingID`s of the sessions whose streamers run here.
    pub meetings: HashSet<MeetingId>,
    /// The streamers' `fullName`s (the slots' `BBB_USER_NAME`).
    pub names: HashSet<String>,
}

/// A watched meeting as listed: which of the watched names are among its attendees,
/// and how many attendees have another name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub meeting_id: MeetingId,
    pub internal_meeting_id: InternalMeetingId,
    pub running: bool,
    /// Watched `fullName`s found among its attendees (each once).
    pub names: Vec<String>,
    /// Attendees whose `fullName` is not watched: people, not our streamers.
    pub others: u32,
}

#[derive(Debug, Default)]
struct PartialError {
    key: Option<String>,
    message: Option<String>,
}

/// FNV-1a: cheap, and a collision only lets a malformed document through as if its
/// end tag matched (the values read from it are still checked).
fn name_hash(name: &[u8]) -> u64 {
    name.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Stores `value` unless the slot is already filled; `false` for a duplicate.
fn put<T>(slot: &mut Option<T>, value: T) -> bool {
    if slot.is_some() {
        return false;
    }
    *slot = Some(value);
    true
}

/// Cuts `s` to at most `max` bytes on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The getMeetings parser: feed it every quick-xml event of one document, then
/// [`finish`](Self::finish). Elements are recognised by name wherever they come
/// (Scalelite puts `<meetings/>` last), only as direct children of their parent (a
/// `meetingID` inside `metadata` is not the meeting's). Anything it does not keep is
/// skipped without being decoded or stored. After `feed` returns an error the parser
/// is spent: drop it.
#[derive(Debug)]
pub struct MeetingsParser {
    /// A hash of the name of every open element, to check that end tags match.
    names: Vec<u64>,
    scopes: Vec<Scope>,
    /// Depth inside an element being skipped (0: not skipping).
    skipped: usize,
    field: Option<Field>,
    text: String,
    root: Root,
    /// The start of the first non-blank text before any element, to show what a
    /// non-XML body (a proxy's plain-text error) said.
    stray: Option<String>,
    returncode: Option<String>,
    message_key: Option<String>,
    message: Option<String>,
    has_meetings: bool,
    meetings: Vec<BbbMeeting>,
    meeting: PartialMeeting,
    error: PartialError,
    first_error: Option<PartialError>,
    max_meetings: usize,
    watch: Option<Watch>,
    presence: Vec<Presence>,
}

impl Default for MeetingsParser {
    fn default() -> Self {
        Self::new()
    }
}

impl MeetingsParser {
    pub fn new() -> Self {
        MeetingsParser {
            names: Vec::with_capacity(16),
            scopes: Vec::with_capacity(4),
            skipped: 0,
            field: None,
            text: String::new(),
            root: Root::NotSeen,
            stray: None,
            returncode: None,
            message_key: None,
            message: None,
            has_meetings: false,
            meetings: Vec::new(),
            meeting: PartialMeeting::default(),
            error: PartialError::default(),
            first_error: None,
            max_meetings: MAX_MEETINGS,
            watch: None,
            presence: Vec::new(),
        }
    }

    /// A parser that also reports, for the meetings of `watch`, which of its names are
    /// among their attendees ([`finish_watched`](Self::finish_watched)).
    pub fn watching(watch: Watch) -> Self {
        MeetingsParser {
            watch: Some(watch),
            ..Self::new()
        }
    }

    /// [`finish`](Self::finish), with the presence of the watched names.
    pub fn finish_watched(mut self) -> Result<(Vec<BbbMeeting>, Vec<Presence>), BbbError> {
        let presence = std::mem::take(&mut self.presence);
        self.finish().map(|meetings| (meetings, presence))
    }

    /// Takes the next event of the document. `Eof` is accepted and ignored.
    pub fn feed(&mut self, event: Event<'_>) -> Result<(), BbbError> {
        match event {
            Event::Start(e) => {
                self.open(&e)?;
                self.names.push(name_hash(e.name().as_ref()));
                Ok(())
            }
            Event::Empty(e) => {
                self.open(&e)?;
                self.close()
            }
            Event::End(e) => match self.names.pop() {
                Some(open) if open == name_hash(e.name().as_ref()) => self.close(),
                Some(_) => Err(garbage(format!(
                    "the end tag </{}> does not match its start tag",
                    shown(e.name().as_ref())
                ))),
                None => Err(garbage(format!(
                    "the end tag </{}> has no start tag",
                    shown(e.name().as_ref())
                ))),
            },
            Event::Text(t) => {
                if let Some(field) = self.field {
                    let text = t.unescape().map_err(|err| {
                        garbage(format!("<{}>{}: {err}", field.tag(), self.context()))
                    })?;
                    self.append(field, &text)
                } else {
                    if self.root == Root::NotSeen && self.stray.is_none() {
                        let text = String::from_utf8_lossy(&t);
                        let text = text.trim();
                        if !text.is_empty() {
                            self.stray = Some(text.chars().take(60).collect());
                        }
                    }
                    Ok(())
                }
            }
            Event::CData(c) => match self.field {
                Some(field) => {
                    let text = c.decode().map_err(|err| {
                        garbage(format!("<{}>{}: {err}", field.tag(), self.context()))
                    })?;
                    self.append(field, &text)
                }
                None => Ok(()),
            },
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) | Event::Eof => {
                Ok(())
            }
        }
    }

    /// Classifies the whole document.
    pub fn finish(self) -> Result<Vec<BbbMeeting>, BbbError> {
        match self.root {
            Root::NotSeen => {
                return Err(garbage(match self.stray {
                    Some(start) => format!("not XML: the body starts with {start:?}"),
                    None => "empty body".to_owned(),
                }));
            }
            Root::Open => {
                return Err(garbage("truncated: the document ends before </response>"));
            }
            Root::Closed => {}
        }
        let returncode = match self.returncode {
            None => return Err(garbage("<response> has no <returncode>")),
            Some(rc) if rc.is_empty() => return Err(garbage("<returncode> is empty")),
            Some(rc) => rc,
        };
        if returncode == "SUCCESS" {
            if self.has_meetings {
                return Ok(self.meetings);
            }
            if self.message_key.as_deref() == Some("noMeetings") {
                return Ok(Vec::new());
            }
            // isMeetingRunning, getMeetingInfo… answer SUCCESS too. Reading "no
            // meetings" into them would stop every live.
            return Err(garbage(
                "SUCCESS without <meetings> nor noMeetings (another API call's answer?)",
            ));
        }
        // FAILED, or another front end's word for it (b3scale answers ERROR).
        let first_error = self.first_error.unwrap_or_default();
        let message_key = self.message_key.or(first_error.key).unwrap_or_default();
        let message = self
            .message
            .or(first_error.message)
            .unwrap_or_else(|| format!("returncode {returncode} without a message"));
        Err(BbbError::Failed {
            message_key,
            message,
        })
    }

    fn depth(&self) -> usize {
        self.names.len()
    }

    /// Where we are, for messages: " in meeting #3" inside a meeting.
    fn context(&self) -> String {
        if self.scopes.last() == Some(&Scope::Meeting) {
            format!(" in meeting #{}", self.meetings.len() + 1)
        } else {
            String::new()
        }
    }

    fn read(&mut self, field: Field) -> Result<(), BbbError> {
        self.field = Some(field);
        self.text.clear();
        Ok(())
    }

    fn skip(&mut self) -> Result<(), BbbError> {
        self.skipped = 1;
        Ok(())
    }

    fn enter(&mut self, scope: Scope) -> Result<(), BbbError> {
        self.scopes.push(scope);
        Ok(())
    }

    fn open(&mut self, e: &BytesStart<'_>) -> Result<(), BbbError> {
        if let Some(field) = self.field {
            return Err(garbage(format!(
                "<{}>{} contains an element <{}>",
                field.tag(),
                self.context(),
                shown(e.name().as_ref())
            )));
        }
        if self.depth() >= MAX_DEPTH {
            return Err(garbage(format!("elements nested deeper than {MAX_DEPTH}")));
        }
        if self.skipped > 0 {
            self.skipped += 1;
            return Ok(());
        }
        let qname = e.name();
        let name = qname.as_ref();
        match self.scopes.last() {
            None => match self.root {
                Root::Closed => Err(garbage(format!(
                    "an element <{}> follows </response>",
                    shown(name)
                ))),
                _ if name == b"response" => {
                    self.root = Root::Open;
                    self.enter(Scope::Response)
                }
                _ => Err(garbage(format!(
                    "the root element is <{}>, not <response>",
                    shown(name)
                ))),
            },
            Some(Scope::Response) => match name {
                b"returncode" => self.read(Field::ReturnCode),
                b"messageKey" => self.read(Field::MessageKey),
                b"message" => self.read(Field::Message),
                b"meetings" => {
                    self.has_meetings = true;
                    self.enter(Scope::Meetings)
                }
                b"errors" => self.enter(Scope::Errors),
                _ => self.skip(),
            },
            Some(Scope::Meetings) => match name {
                b"meeting" => {
                    if self.meetings.len() >= self.max_meetings {
                        return Err(garbage(format!("more than {} meetings", self.max_meetings)));
                    }
                    self.meeting = PartialMeeting::default();
                    self.enter(Scope::Meeting)
                }
                _ => self.skip(),
            },
            Some(Scope::Meeting) => match name {
                b"meetingID" => self.read(Field::MeetingId),
                b"internalMeetingID" => self.read(Field::InternalMeetingId),
                b"running" => self.read(Field::Running),
                b"endTime" => self.read(Field::EndTime),
                b"attendees" if self.watch.is_some() => self.enter(Scope::Attendees),
                // metadata, attendees, breakoutRooms… may hold anything.
                _ => self.skip(),
            },
            Some(Scope::Attendees) => match name {
                b"attendee" => self.enter(Scope::Attendee),
                _ => self.skip(),
            },
            Some(Scope::Attendee) => match name {
                b"fullName" => self.read(Field::FullName),
                _ => self.skip(),
            },
            Some(Scope::Errors) => match name {
                b"error" => {
                    self.error = PartialError::default();
                    self.error_attributes(e)?;
                    self.enter(Scope::Error)
                }
                _ => self.skip(),
            },
            Some(Scope::Error) => match name {
                b"key" => self.read(Field::ErrorKey),
                b"message" => self.read(Field::ErrorMessage),
                _ => self.skip(),
            },
        }
    }

    /// `<error key="checksumError" message="…"/>` (BBB template api-errors.ftlx).
    fn error_attributes(&mut self, e: &BytesStart<'_>) -> Result<(), BbbError> {
        for attribute in e.attributes() {
            let attribute =
                attribute.map_err(|err| garbage(format!("bad attribute in <error>: {err}")))?;
            let field = match attribute.key.as_ref() {
                b"key" => Field::ErrorKey,
                b"message" => Field::ErrorMessage,
                _ => continue,
            };
            let value = attribute
                .unescape_value()
                .map_err(|err| garbage(format!("<error {}=…>: {err}", field.tag())))?;
            self.text.clear();
            self.append(field, &value)?;
            self.keep(field)?;
        }
        Ok(())
    }

    fn append(&mut self, field: Field, text: &str) -> Result<(), BbbError> {
        let room = MAX_VALUE_BYTES - self.text.len();
        if text.len() <= room {
            self.text.push_str(text);
        } else if field.is_prose() {
            self.text.push_str(cut(text, room));
        } else {
            return Err(garbage(format!(
                "<{}>{} is longer than {MAX_VALUE_BYTES} bytes",
                field.tag(),
                self.context()
            )));
        }
        Ok(())
    }

    /// Stores the value just read. Ids are kept verbatim: Pod compares them exactly.
    fn keep(&mut self, field: Field) -> Result<(), BbbError> {
        let text = std::mem::take(&mut self.text);
        let fresh = match field {
            Field::ReturnCode => put(&mut self.returncode, text.trim().to_owned()),
            Field::MessageKey => put(&mut self.message_key, text.trim().to_owned()),
            Field::Message => put(&mut self.message, text.trim().to_owned()),
            Field::ErrorKey => put(&mut self.error.key, text.trim().to_owned()),
            Field::ErrorMessage => put(&mut self.error.message, text.trim().to_owned()),
            Field::FullName => {
                let watched = self.watch.as_ref().is_some_and(|w| w.names.contains(&text));
                if !watched {
                    self.meeting.others = self.meeting.others.saturating_add(1);
                } else if !self.meeting.streamers.contains(&text) {
                    self.meeting.streamers.push(text);
                }
                true
            }
            Field::MeetingId => put(&mut self.meeting.meeting_id, text),
            Field::InternalMeetingId => put(&mut self.meeting.internal_meeting_id, text),
            Field::Running => {
                let running = match text.trim() {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(garbage(format!(
                            "<running>{} is {:?}, not true or false",
                            self.context(),
                            cut(other, 60)
                        )));
                    }
                };
                put(&mut self.meeting.running, running)
            }
            Field::EndTime => {
                let digits = text.trim();
                let end_time = digits
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| digits.parse::<u64>().ok())
                    .flatten()
                    .ok_or_else(|| {
                        garbage(format!(
                            "<endTime>{} is {:?}, not a number of milliseconds",
                            self.context(),
                            cut(digits, 60)
                        ))
                    })?;
                put(&mut self.meeting.end_time, end_time)
            }
        };
        if fresh {
            Ok(())
        } else {
            Err(garbage(format!("two <{}>{}", field.tag(), self.context())))
        }
    }

    fn close(&mut self) -> Result<(), BbbError> {
        if let Some(field) = self.field.take() {
            return self.keep(field);
        }
        if self.skipped > 0 {
            self.skipped -= 1;
            return Ok(());
        }
        match self.scopes.pop() {
            // `names` already refused an end tag without a start tag.
            None => Err(garbage("an end tag without its start tag")),
            Some(Scope::Response) => {
                self.root = Root::Closed;
                Ok(())
            }
            Some(Scope::Meetings | Scope::Errors | Scope::Attendees | Scope::Attendee) => Ok(()),
            Some(Scope::Meeting) => self.end_meeting(),
            Some(Scope::Error) => {
                let error = std::mem::take(&mut self.error);
                if self.first_error.is_none() {
                    self.first_error = Some(error);
                }
                Ok(())
            }
        }
    }

    /// A meeting lacking one of the four values, or with a blank id, is not something
    /// the tick may decide on: the whole answer is refused rather than guessed at.
    fn end_meeting(&mut self) -> Result<(), BbbError> {
        let n = self.meetings.len() + 1;
        let m = std::mem::take(&mut self.meeting);
        let meeting_id = match m.meeting_id {
            Some(id) if !id.trim().is_empty() => MeetingId::from(id),
            Some(_) => return Err(garbage(format!("meeting #{n} has a blank <meetingID>"))),
            None => return Err(garbage(format!("meeting #{n} has no <meetingID>"))),
        };
        let missing = |tag: &str| {
            garbage(format!(
                "meeting #{n} ({:?}) has no <{tag}>",
                meeting_id.as_str()
            ))
        };
        let internal_meeting_id = match m.internal_meeting_id {
            Some(id) if !id.trim().is_empty() => InternalMeetingId::from(id),
            _ => return Err(missing("internalMeetingID")),
        };
        let running = m.running.ok_or_else(|| missing("running"))?;
        let end_time = m.end_time.ok_or_else(|| missing("endTime"))?;
        if self
            .watch
            .as_ref()
            .is_some_and(|w| w.meetings.contains(&meeting_id))
        {
            self.presence.push(Presence {
                meeting_id: meeting_id.clone(),
                internal_meeting_id: internal_meeting_id.clone(),
                running,
                names: m.streamers,
                others: m.others,
            });
        }
        self.meetings.push(BbbMeeting {
            meeting_id,
            internal_meeting_id,
            running,
            end_time,
        });
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Drivers
// ---------------------------------------------------------------------------
//
// Both drivers run quick-xml's borrowing slice reader over a window of bytes: the
// whole body for `parse_meetings`, the bytes received and not yet parsed for the
// stream. (quick-xml's own async reader, `read_event_into_async`, costs 4-5 ms per MB
// on a getMeetings answer against ~1.3 for the slice reader; see the 30 MB test.)

/// Bytes taken from the stream at a time.
const READ_CHUNK: usize = 64 * 1024;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses the complete events at the start of `window` (which starts at byte `base` of
/// the body) and returns how many bytes they span. Unless `last`, an event reaching the
/// end of the window, or markup left unclosed there, may be cut: it is left for the
/// next call with more bytes.
fn parse_window(
    parser: &mut MeetingsParser,
    window: &[u8],
    base: u64,
    last: bool,
) -> Result<usize, BbbError> {
    let mut reader = Reader::from_reader(window);
    // A reader starts afresh at each window, so it cannot match end tags with start
    // tags seen before: the parser does it (MeetingsParser::names).
    let config = reader.config_mut();
    config.check_end_names = false;
    config.allow_unmatched_ends = true;
    // The reader drops a byte order mark at the start of its input without counting it
    // in its positions. Mid-document it is text (U+FEFF), given back to the parser below.
    let bom = if window.starts_with(UTF8_BOM) {
        UTF8_BOM.len()
    } else {
        0
    };
    let mut lost_bom = base > 0 && bom > 0;
    let mut consumed = 0;
    loop {
        let result = reader.read_event();
        let end = bom + reader.buffer_position() as usize;
        match result {
            Ok(Event::Eof) if last => return Ok(end),
            Ok(Event::Eof) => return Ok(consumed),
            Ok(_) | Err(quick_xml::Error::Syntax(_)) if !last && end >= window.len() => {
                return Ok(consumed);
            }
            Ok(event) => {
                if end - consumed > MAX_TOKEN_BYTES {
                    return Err(token_too_long());
                }
                if lost_bom {
                    lost_bom = false;
                    parser.feed(Event::Text(BytesText::from_escaped("\u{FEFF}")))?;
                }
                parser.feed(event)?;
                consumed = end;
            }
            // Unclosed markup is only known to be cut once the stream has ended.
            Err(quick_xml::Error::Syntax(_)) if !last => return Ok(consumed),
            Err(err) => {
                let position = base + bom as u64 + reader.error_position();
                return Err(malformed(&err, position));
            }
        }
    }
}

/// Feeds `parser` every event of `xml`. Events borrow from the slice: nothing is copied.
fn drive_slice(xml: &[u8], mut parser: MeetingsParser) -> Result<Vec<BbbMeeting>, BbbError> {
    parse_window(&mut parser, xml, 0, true)?;
    parser.finish()
}

/// Why reading a body stream stopped: the transport, or the answer itself.
#[derive(Debug)]
pub(super) enum ReadError {
    Io(io::Error),
    Bbb(BbbError),
}

impl From<BbbError> for ReadError {
    fn from(e: BbbError) -> Self {
        ReadError::Bbb(e)
    }
}

/// Feeds a parser the events of an async byte stream. It holds the bytes of one
/// unfinished token plus one read: at most [`MAX_TOKEN_BYTES`] + 1 + [`READ_CHUNK`].
#[cfg(test)]
pub(super) async fn read_meetings<R: AsyncBufRead + Unpin>(
    source: R,
) -> Result<Vec<BbbMeeting>, ReadError> {
    read_watched(source, None)
        .await
        .map(|(meetings, _)| meetings)
}

/// `read_meetings`, also reporting the watched attendees when `watch` is given.
pub(super) async fn read_watched<R: AsyncBufRead + Unpin>(
    mut source: R,
    watch: Option<Watch>,
) -> Result<(Vec<BbbMeeting>, Vec<Presence>), ReadError> {
    let mut parser = match watch {
        Some(w) => MeetingsParser::watching(w),
        None => MeetingsParser::new(),
    };
    let mut window: Vec<u8> = Vec::with_capacity(2 * READ_CHUNK);
    let mut base = 0u64;
    let mut parse_at = 0;
    loop {
        let available = source.fill_buf().await.map_err(ReadError::Io)?;
        let last = available.is_empty();
        let n = available.len().min(READ_CHUNK);
        window.extend_from_slice(&available[..n]);
        source.consume(n);
        if last {
            parse_window(&mut parser, &window, base, true)?;
            return Ok(parser.finish_watched()?);
        }
        if window.len() < parse_at {
            continue;
        }
        let consumed = parse_window(&mut parser, &window, base, false)?;
        window.drain(..consumed);
        base += consumed as u64;
        if window.len() > MAX_TOKEN_BYTES {
            return Err(token_too_long().into());
        }
        // What is left is the start of a token: parse it again only once the window
        // has doubled, so a token dribbled in small reads costs linear, not quadratic,
        // time.
        parse_at = (2 * window.len()).min(MAX_TOKEN_BYTES + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bbb::test_support::{failed, fixture, garbage_reason, meeting};

    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use futures_util::{StreamExt, TryStreamExt, stream};
    use proptest::prelude::*;
    use tokio_util::io::StreamReader;

    /// The stream driver over `xml` delivered in chunks of `chunk` bytes.
    pub(super) fn parse_chunked(xml: &[u8], chunk: usize) -> Result<Vec<BbbMeeting>, BbbError> {
        let chunks: Vec<io::Result<io::Cursor<Vec<u8>>>> = xml
            .chunks(chunk.max(1))
            .map(|c| Ok(io::Cursor::new(c.to_vec())))
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            read_meetings(StreamReader::new(stream::iter(chunks)))
                .await
                .map_err(|err| match err {
                    ReadError::Bbb(err) => err,
                    ReadError::Io(err) => panic!("in-memory read failed: {err}"),
                })
        })
    }

    fn parse_async(xml: &[u8]) -> Result<Vec<BbbMeeting>, BbbError> {
        parse_chunked(xml, READ_CHUNK)
    }

    /// One `<meeting>` with every field BBB sends, in BBB's order.
    fn attendee_xml(name: &str) -> String {
        format!(
            "<attendee><userID>w_1</userID><fullName>{name}</fullName><role>VIEWER</role>\
             <customdata><fullName>Live</fullName></customdata></attendee>"
        )
    }

    fn watched(xml: &str, meetings: &[&str], names: &[&str]) -> (Vec<BbbMeeting>, Vec<Presence>) {
        let watch = Watch {
            meetings: meetings.iter().map(|&s| MeetingId::from(s)).collect(),
            names: names.iter().map(|s| s.to_string()).collect(),
        };
        let mut parser = MeetingsParser::watching(watch);
        let mut reader = Reader::from_str(xml);
        loop {
            let event = reader.read_event().unwrap();
            let eof = matches!(event, Event::Eof);
            parser.feed(event).unwrap();
            if eof {
                break;
            }
        }
        parser.finish_watched().unwrap()
    }

    #[test]
    fn watching_keeps_only_the_watched_names_of_the_watched_meetings() {
        let with = |id: &str, internal: &str, attendees: &str| {
            meeting_xml(id, internal, true, 0).replace(
                "<attendees></attendees>",
                &format!("<attendees>{attendees}</attendees>"),
            )
        };
        let xml = format!(
            "<response><returncode>SUCCESS</returncode><meetings>{}{}{}</meetings></response>",
            with(
                "here",
                "here-1",
                &format!(
                    "{}{}{}",
                    attendee_xml("Prof &amp; Co"),
                    attendee_xml("Live"),
                    attendee_xml("Live")
                )
            ),
            with("other", "other-1", &attendee_xml("Live")),
            with("alone", "alone-1", &attendee_xml("Prof")),
        );
        let (meetings, presence) = watched(&xml, &["here", "alone", "absent"], &["Live"]);
        assert_eq!(meetings.len(), 3);
        assert_eq!(
            presence,
            vec![
                Presence {
                    meeting_id: "here".into(),
                    internal_meeting_id: "here-1".into(),
                    running: true,
                    names: vec!["Live".into()],
                    others: 1,
                },
                Presence {
                    meeting_id: "alone".into(),
                    internal_meeting_id: "alone-1".into(),
                    running: true,
                    names: vec![],
                    others: 1,
                },
            ]
        );
        // Not watching: attendees are skipped, names included.
        assert_eq!(parse_meetings(xml.as_bytes()).unwrap(), meetings);
    }

    #[test]
    fn a_huge_attendee_name_is_cut_not_refused() {
        let name = "N".repeat(MAX_VALUE_BYTES + 10);
        let xml = format!(
            "<response><returncode>SUCCESS</returncode><meetings>{}</meetings></response>",
            meeting_xml("m", "m-1", true, 0).replace(
                "<attendees></attendees>",
                &format!("<attendees>{}</attendees>", attendee_xml(&name))
            )
        );
        let (_, presence) = watched(&xml, &["m"], &["Live"]);
        assert_eq!(presence[0].names, Vec::<String>::new());
        assert_eq!(presence[0].others, 1);
    }

    #[test]
    fn watching_holds_nothing_of_unwatched_meetings() {
        let one = meeting_xml("x", "x-1", true, 0).replace(
            "<attendees></attendees>",
            &format!("<attendees>{}</attendees>", attendee_xml("Live").repeat(20)),
        );
        let xml = format!(
            "<response><returncode>SUCCESS</returncode><meetings>{}{}</meetings></response>",
            one.repeat(2000),
            meeting_xml("mine", "mine-1", true, 0)
        );
        let (meetings, presence) = watched(&xml, &["mine"], &["Live"]);
        assert_eq!(meetings.len(), 2001);
        assert_eq!(presence.len(), 1);
        assert!(presence[0].names.is_empty());
    }

    fn meeting_xml(id: &str, internal: &str, running: bool, end_time: u64) -> String {
        format!(
            "<meeting><meetingName>Cours</meetingName><meetingID>{id}</meetingID>\
             <internalMeetingID>{internal}</internalMeetingID><createTime>1</createTime>\
             <running>{running}</running><duration>0</duration><endTime>{end_time}</endTime>\
             <attendees></attendees><metadata></metadata><isBreakout>false</isBreakout></meeting>"
        )
    }

    // --- every fixture ------------------------------------------------------

    #[test]
    fn several_meetings_fixture() {
        let meetings = parse_meetings(fixture!("getMeetings-several.xml")).expect("SUCCESS");
        assert_eq!(
            meetings,
            vec![
                meeting(
                    "5cf490a7-2c9a-3571-a48c-134ef58d47c2",
                    "bf32e77309232abb44627ddbb5edd47e0e13e7b8-1554729625768",
                    false,
                    0
                ),
                meeting(
                    "b2e7555d-b7c6-3b9f-b3ae-4c5754f64427",
                    "8299be7b3bc6693c3b747fe5178a5f7b6e417ac7-1554729632085",
                    false,
                    0
                ),
                meeting(
                    "56e1ae16-3dfc-390d-b0d8-5aa844a25874",
                    "b97b512f2c92c0ffe7a3476152525807daa1c676-1524213158682",
                    true,
                    0
                ),
            ]
        );
    }

    #[test]
    fn ended_meeting_still_listed_fixture() {
        let meetings = parse_meetings(fixture!("getMeetings-ended-meeting-still-listed.xml"))
            .expect("SUCCESS");
        assert_eq!(
            meetings,
            vec![meeting(
                "acme_test",
                "23b6d60f1802301a0f6af44fb7d573dbae861ee1-1590146963416",
                false,
                1590147528510
            )]
        );
        assert!(meetings[0].has_ended());
    }

    #[test]
    fn no_meetings_in_both_orders_is_an_empty_success() {
        let bbb = parse_meetings(fixture!("getMeetings-noMeetings.xml")).expect("SUCCESS");
        assert!(bbb.is_empty());
        let scalelite = parse_meetings(fixture!("scalelite-getMeetings-noMeetings-DERIVED.xml"))
            .expect("SUCCESS");
        assert!(scalelite.is_empty());
    }

    #[test]
    fn checksum_error_fixture_is_failed() {
        let (key, message) = failed(parse_meetings(fixture!("checksumError.xml")));
        assert_eq!(key, "checksumError");
        assert_eq!(message, "Checksums do not match");
    }

    #[test]
    fn scalelite_internal_error_fixture_is_failed() {
        let (key, message) = failed(parse_meetings(fixture!(
            "scalelite-getMeetings-internalError-DERIVED.xml"
        )));
        assert_eq!(key, "internalError");
        assert_eq!(message, "Unable to access server.");
    }

    #[test]
    fn other_calls_answers_are_garbage_not_an_empty_list() {
        // SUCCESS, but not a getMeetings answer: "no meetings" would stop every live.
        // getMeetingInfo also has a <meetingID> under <response>: it must not count.
        for xml in [
            fixture!("getMeetingInfo.xml"),
            fixture!("isMeetingRunning-true.xml"),
        ] {
            let reason = garbage_reason(parse_meetings(xml));
            assert!(reason.contains("without <meetings>"), "{reason}");
        }
    }

    #[test]
    fn fixture_readme_is_copied() {
        let readme = std::str::from_utf8(fixture!("README.md")).expect("UTF-8");
        assert!(readme.contains("scalelite-getMeetings-noMeetings-DERIVED.xml"));
    }

    // --- classification -----------------------------------------------------

    #[test]
    fn truncated_documents_are_garbage_at_every_cut() {
        let xml = fixture!("getMeetings-several.xml");
        let text = std::str::from_utf8(xml).expect("UTF-8");
        let complete = text.rfind("</response>").expect("root end") + "</response>".len();
        for len in 0..complete {
            let result = parse_meetings(&xml[..len]);
            assert!(
                matches!(result, Err(BbbError::Garbage(_))),
                "prefix of {len} bytes gave {result:?}"
            );
        }
        assert_eq!(parse_meetings(&xml[..complete]).expect("whole").len(), 3);
        let reason = garbage_reason(parse_meetings(
            b"<response><returncode>SUCCESS</returncode><meetings>",
        ));
        assert!(reason.contains("truncated"), "{reason}");
    }

    #[test]
    fn html_pages_and_non_xml_are_garbage() {
        let html = b"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>502 Bad Gateway</title></head>\
                     <body><h1>Bad Gateway</h1></body></html>";
        let reason = garbage_reason(parse_meetings(html));
        assert!(reason.contains("<html>"), "{reason}");

        let reason = garbage_reason(parse_meetings(b"Bad Gateway"));
        assert!(reason.contains("Bad Gateway"), "{reason}");
        let reason = garbage_reason(parse_meetings(b"{\"returncode\": \"SUCCESS\"}"));
        assert!(reason.contains("not XML"), "{reason}");
        garbage_reason(parse_meetings(
            b"<response><returncode>SUCCESS</returncode></respons>",
        ));
        garbage_reason(parse_meetings(&[0xff, 0xfe, 0x00, 0x3c]));
    }

    #[test]
    fn empty_body_is_garbage() {
        assert_eq!(garbage_reason(parse_meetings(b"")), "empty body");
        assert_eq!(garbage_reason(parse_meetings(b"  \n\t ")), "empty body");
        let reason = garbage_reason(parse_meetings(b"<?xml version=\"1.0\"?>"));
        assert_eq!(reason, "empty body");
    }

    #[test]
    fn answer_without_returncode_is_garbage() {
        let reason = garbage_reason(parse_meetings(b"<response><meetings/></response>"));
        assert!(reason.contains("no <returncode>"), "{reason}");
        let reason = garbage_reason(parse_meetings(b"<response/>"));
        assert!(reason.contains("no <returncode>"), "{reason}");
        garbage_reason(parse_meetings(
            b"<response><returncode></returncode><meetings/></response>",
        ));
    }

    #[test]
    fn errors_list_forms_are_failed() {
        let attributes = br#"<response><returncode>FAILED</returncode><errors>
            <error key="checksumError" message="Checksums do not match"/>
            <error key="second" message="ignored"/></errors></response>"#;
        assert_eq!(
            failed(parse_meetings(attributes)),
            ("checksumError".into(), "Checksums do not match".into())
        );
        let children = b"<response><returncode>FAILED</returncode><errors><error>\
            <key>missingParamMeetingID</key><message>You must specify a meeting ID</message>\
            </error></errors></response>";
        assert_eq!(
            failed(parse_meetings(children)),
            (
                "missingParamMeetingID".into(),
                "You must specify a meeting ID".into()
            )
        );
        // A top-level messageKey wins over the list.
        let both = b"<response><returncode>FAILED</returncode><messageKey>top</messageKey>\
            <errors><error key=\"inner\" message=\"m\"/></errors></response>";
        assert_eq!(failed(parse_meetings(both)).0, "top");
    }

    #[test]
    fn any_returncode_but_success_is_failed_and_decided_on_the_key() {
        // b3scale's answer (b3scale issue #36).
        let b3scale = b"<response><returncode>ERROR</returncode>\
            <messageKey>b3scale_server_error</messageKey><message>boom</message></response>";
        assert_eq!(
            failed(parse_meetings(b3scale)),
            ("b3scale_server_error".into(), "boom".into())
        );
        // A FAILED answer that also carries <meetings> is still FAILED.
        let odd = format!(
            "<response><returncode>FAILED</returncode><meetings>{}</meetings>\
             <messageKey>internalError</messageKey></response>",
            meeting_xml("a", "i", true, 0)
        );
        let (key, message) = failed(parse_meetings(odd.as_bytes()));
        assert_eq!(key, "internalError");
        assert!(message.contains("FAILED"), "{message}");
        // The message is never used to decide: a SUCCESS with an alarming message is fine.
        let success = b"<response><returncode>SUCCESS</returncode><meetings/>\
            <message>Checksums do not match</message></response>";
        assert_eq!(parse_meetings(success).expect("SUCCESS"), vec![]);
        // And a noMeetings key does not turn a FAILED into an empty list.
        let no = b"<response><returncode>FAILED</returncode><messageKey>noMeetings</messageKey></response>";
        assert_eq!(failed(parse_meetings(no)).0, "noMeetings");
    }

    #[test]
    fn a_meeting_id_nested_in_metadata_is_ignored() {
        let xml = b"<response><returncode>SUCCESS</returncode><meetings><meeting>\
            <metadata><meetingID>decoy</meetingID><running>maybe</running></metadata>\
            <attendees><attendee><customdata><endTime>x</endTime></customdata></attendee></attendees>\
            <meetingID>real</meetingID><internalMeetingID>int</internalMeetingID>\
            <breakoutRooms><breakout><meetingID>child</meetingID></breakout></breakoutRooms>\
            <running>true</running><endTime>0</endTime></meeting></meetings></response>";
        assert_eq!(
            parse_meetings(xml).expect("SUCCESS"),
            vec![meeting("real", "int", true, 0)]
        );
        // A <meeting> outside <meetings> is not a listed meeting either.
        let outside = format!(
            "<response><returncode>SUCCESS</returncode><other>{}</other><meetings/></response>",
            meeting_xml("x", "y", true, 0)
        );
        assert_eq!(parse_meetings(outside.as_bytes()).expect("SUCCESS"), vec![]);
    }

    #[test]
    fn element_order_does_not_matter() {
        let xml = b"<response><meetings><meeting><endTime>42</endTime><running>false</running>\
            <internalMeetingID>int</internalMeetingID><meetingID>m</meetingID></meeting></meetings>\
            <message>ok</message><returncode>SUCCESS</returncode></response>";
        assert_eq!(
            parse_meetings(xml).expect("SUCCESS"),
            vec![meeting("m", "int", false, 42)]
        );
    }

    #[test]
    fn cdata_entities_and_character_references_are_decoded_in_kept_values() {
        let xml = "<response><returncode> SUCCESS\n</returncode><meetings><meeting>\
            <meetingID>a &amp; b &lt;c&gt; &#233;&#x263A;</meetingID>\
            <internalMeetingID><![CDATA[x<&>]]>y<![CDATA[z]]></internalMeetingID>\
            <running><![CDATA[true]]></running><endTime>\n  7\n</endTime></meeting></meetings></response>";
        assert_eq!(
            parse_meetings(xml.as_bytes()).expect("SUCCESS"),
            vec![meeting("a & b <c> é☺", "x<&>yz", true, 7)]
        );
        // Ids are kept verbatim (Pod compares them exactly), spaces included.
        let spaced = format!(
            "<response><returncode>SUCCESS</returncode><meetings>{}</meetings></response>",
            meeting_xml(" id ", "int", true, 0)
        );
        assert_eq!(
            parse_meetings(spaced.as_bytes()).expect("SUCCESS")[0].meeting_id,
            " id "
        );
    }

    #[test]
    fn unknown_entities_are_refused_in_kept_values_only() {
        let kept = format!(
            "<response><returncode>SUCCESS</returncode><meetings>{}</meetings></response>",
            meeting_xml("a&nbsp;b", "int", true, 0)
        );
        let reason = garbage_reason(parse_meetings(kept.as_bytes()));
        assert!(reason.contains("<meetingID>"), "{reason}");
        let skipped = "<response><returncode>SUCCESS</returncode><meetings>\
            <meeting><metadata><x>&nbsp;</x></metadata><meetingID>a</meetingID>\
            <internalMeetingID>i</internalMeetingID><running>true</running><endTime>0</endTime>\
            </meeting></meetings></response>";
        assert_eq!(
            parse_meetings(skipped.as_bytes()).expect("SUCCESS").len(),
            1
        );
    }

    fn one_meeting(inner: &str) -> Vec<u8> {
        format!(
            "<response><returncode>SUCCESS</returncode><meetings><meeting>{inner}</meeting>\
             </meetings></response>"
        )
        .into_bytes()
    }

    #[test]
    fn a_meeting_lacking_a_value_is_garbage() {
        let id = "<meetingID>m</meetingID>";
        let internal = "<internalMeetingID>i</internalMeetingID>";
        let running = "<running>true</running>";
        let end = "<endTime>0</endTime>";
        let cases = [
            (format!("{internal}{running}{end}"), "no <meetingID>"),
            (
                format!("<meetingID> </meetingID>{internal}{running}{end}"),
                "blank <meetingID>",
            ),
            (
                format!("<meetingID/>{internal}{running}{end}"),
                "blank <meetingID>",
            ),
            (format!("{id}{running}{end}"), "no <internalMeetingID>"),
            (format!("{id}{internal}{end}"), "no <running>"),
            (format!("{id}{internal}{running}"), "no <endTime>"),
            (
                format!("{id}{id}{internal}{running}{end}"),
                "two <meetingID>",
            ),
        ];
        for (inner, expected) in cases {
            let reason = garbage_reason(parse_meetings(&one_meeting(&inner)));
            assert!(reason.contains(expected), "{inner}: {reason}");
        }
    }

    #[test]
    fn running_must_be_true_or_false_and_end_time_an_integer() {
        let base = "<meetingID>m</meetingID><internalMeetingID>i</internalMeetingID>";
        for running in ["yes", "TRUE", "1", ""] {
            let inner = format!("{base}<running>{running}</running><endTime>0</endTime>");
            let reason = garbage_reason(parse_meetings(&one_meeting(&inner)));
            assert!(reason.contains("<running> in meeting #1"), "{reason}");
        }
        for end in ["-1", "12a", "", "+5", "1.5", "99999999999999999999999"] {
            let inner = format!("{base}<running>true</running><endTime>{end}</endTime>");
            let reason = garbage_reason(parse_meetings(&one_meeting(&inner)));
            assert!(reason.contains("<endTime>"), "{end}: {reason}");
        }
    }

    #[test]
    fn a_kept_value_holding_an_element_is_garbage() {
        let inner = "<meetingID>a<b>c</b></meetingID><internalMeetingID>i</internalMeetingID>\
                     <running>true</running><endTime>0</endTime>";
        let reason = garbage_reason(parse_meetings(&one_meeting(inner)));
        assert!(reason.contains("contains an element <b>"), "{reason}");
    }

    #[test]
    fn elements_after_the_root_are_garbage() {
        let xml = b"<response><returncode>SUCCESS</returncode><meetings/></response><response/>";
        let reason = garbage_reason(parse_meetings(xml));
        assert!(reason.contains("follows </response>"), "{reason}");
    }

    // --- limits -------------------------------------------------------------

    #[test]
    fn long_values_are_refused_but_long_failure_messages_are_cut() {
        let long_id = "x".repeat(MAX_VALUE_BYTES + 1);
        let inner = format!(
            "<meetingID>{long_id}</meetingID><internalMeetingID>i</internalMeetingID>\
             <running>true</running><endTime>0</endTime>"
        );
        let reason = garbage_reason(parse_meetings(&one_meeting(&inner)));
        assert!(reason.contains("longer than 4096"), "{reason}");
        // Exactly at the limit is fine.
        let id = "y".repeat(MAX_VALUE_BYTES);
        let inner = inner.replace(&long_id, &id);
        assert_eq!(
            parse_meetings(&one_meeting(&inner)).expect("ok")[0].meeting_id,
            id
        );

        let long_message = "é".repeat(MAX_VALUE_BYTES);
        let xml = format!(
            "<response><returncode>FAILED</returncode><messageKey>k</messageKey>\
             <message>{long_message}</message></response>"
        );
        let (key, message) = failed(parse_meetings(xml.as_bytes()));
        assert_eq!(key, "k");
        assert!(message.len() <= MAX_VALUE_BYTES && message.len() > MAX_VALUE_BYTES - 4);
        assert!(message.chars().all(|c| c == 'é'));
    }

    #[test]
    fn the_number_of_meetings_is_capped() {
        let xml = format!(
            "<response><returncode>SUCCESS</returncode><meetings>{}{}{}</meetings></response>",
            meeting_xml("a", "1", true, 0),
            meeting_xml("b", "2", true, 0),
            meeting_xml("c", "3", true, 0)
        );
        let mut parser = MeetingsParser::new();
        parser.max_meetings = 2;
        let reason = garbage_reason(drive_slice(xml.as_bytes(), parser));
        assert!(reason.contains("more than 2 meetings"), "{reason}");
        let mut parser = MeetingsParser::new();
        parser.max_meetings = 3;
        assert_eq!(drive_slice(xml.as_bytes(), parser).expect("ok").len(), 3);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!(
            "<response><returncode>SUCCESS</returncode><meetings><meeting><metadata>{}{}</metadata>\
             </meeting></meetings></response>",
            "<x>".repeat(MAX_DEPTH),
            "</x>".repeat(MAX_DEPTH)
        );
        let reason = garbage_reason(parse_meetings(deep.as_bytes()));
        assert!(reason.contains("nested deeper"), "{reason}");
        // 50 levels of customdata are fine.
        let fine = deep
            .replace(&"<x>".repeat(MAX_DEPTH), &"<x>".repeat(50))
            .replace(
                &"</x>".repeat(MAX_DEPTH),
                &format!(
                    "{}</metadata><meetingID>m</meetingID><internalMeetingID>i</internalMeetingID>\
                 <running>true</running><endTime>0</endTime><metadata>",
                    "</x>".repeat(50)
                ),
            );
        assert_eq!(parse_meetings(fine.as_bytes()).expect("ok").len(), 1);
    }

    #[test]
    fn skipped_text_is_neither_decoded_nor_stored() {
        let big = "z".repeat(100_000);
        let xml = format!(
            "<response><returncode>SUCCESS</returncode><meetings><meeting>\
             <metadata><note>{big}</note></metadata><meetingID>m</meetingID>"
        );
        let mut reader = Reader::from_reader(xml.as_bytes());
        let mut parser = MeetingsParser::new();
        loop {
            match reader.read_event().expect("well-formed prefix") {
                Event::Eof => break,
                event => parser.feed(event).expect("accepted"),
            }
        }
        assert!(
            parser.text.capacity() < MAX_VALUE_BYTES,
            "{}",
            parser.text.capacity()
        );
        assert_eq!(parser.meeting.meeting_id.as_deref(), Some("m"));
    }

    #[test]
    fn tokens_longer_than_the_limit_are_refused_by_both_drivers() {
        let answer = |filler: usize| {
            format!(
                "<response><returncode>SUCCESS</returncode><meetings><meeting>\
                 <metadata><note>{}</note></metadata><meetingID>m</meetingID>\
                 <internalMeetingID>i</internalMeetingID><running>true</running>\
                 <endTime>0</endTime></meeting></meetings></response>",
                "z".repeat(filler)
            )
        };
        // Small reads too: the stream driver re-parses a held-back token only once its
        // window has doubled, or these 1 000-byte reads would rescan the token 1 000 times.
        let huge = answer(MAX_TOKEN_BYTES + 10);
        for result in [
            parse_meetings(huge.as_bytes()),
            parse_async(huge.as_bytes()),
            parse_chunked(huge.as_bytes(), 1000),
        ] {
            let reason = garbage_reason(result);
            assert!(reason.contains("XML token"), "{reason}");
        }
        let big = answer(MAX_TOKEN_BYTES - 100);
        assert_eq!(parse_meetings(big.as_bytes()).expect("ok").len(), 1);
        assert_eq!(parse_async(big.as_bytes()).expect("ok").len(), 1);
        assert_eq!(parse_chunked(big.as_bytes(), 1000).expect("ok").len(), 1);
    }

    #[test]
    fn both_drivers_agree() {
        let several = fixture!("getMeetings-several.xml");
        let mut inputs: Vec<Vec<u8>> = vec![
            fixture!("getMeetings-several.xml").to_vec(),
            fixture!("getMeetings-ended-meeting-still-listed.xml").to_vec(),
            fixture!("getMeetings-noMeetings.xml").to_vec(),
            fixture!("scalelite-getMeetings-noMeetings-DERIVED.xml").to_vec(),
            fixture!("scalelite-getMeetings-internalError-DERIVED.xml").to_vec(),
            fixture!("checksumError.xml").to_vec(),
            fixture!("getMeetingInfo.xml").to_vec(),
            fixture!("isMeetingRunning-true.xml").to_vec(),
            b"".to_vec(),
            b"<html><body>x</body></html>".to_vec(),
        ];
        inputs.extend(
            (0..several.len())
                .step_by(37)
                .map(|n| several[..n].to_vec()),
        );
        inputs.push(
            b"<response><returncode>SUCCESS</returncode><meetings></meeting></response>".to_vec(),
        );
        inputs.push(
            b"<response><!-- a <b> --><![CDATA[x]]><?pi x?><returncode>SUCCESS</returncode>\
              <meetings/></response>"
                .to_vec(),
        );
        inputs
            .push(b"<response><returncode>SUCCESS</returncode><!x><meetings/></response>".to_vec());
        for xml in inputs {
            let expected = format!("{:?}", parse_meetings(&xml));
            for chunk in [1, 2, 3, 7, 64, READ_CHUNK] {
                assert_eq!(
                    expected,
                    format!("{:?}", parse_chunked(&xml, chunk)),
                    "chunks of {chunk}: {}",
                    String::from_utf8_lossy(&xml)
                );
            }
        }
    }

    #[test]
    fn end_tags_must_match_across_reads() {
        let xml = b"<response><returncode>SUCCESS</returncode><meetings><meeting>\
            <meetingID>m</internalMeetingID></meeting></meetings></response>";
        for result in [
            parse_meetings(xml),
            parse_chunked(xml, 1),
            parse_chunked(xml, 50),
        ] {
            let reason = garbage_reason(result);
            assert!(
                reason.contains("</internalMeetingID> does not match"),
                "{reason}"
            );
        }
        let reason = garbage_reason(parse_chunked(b"</response>", 3));
        assert!(reason.contains("no start tag"), "{reason}");
    }

    #[test]
    fn a_byte_order_mark_is_dropped_at_the_start_only() {
        let inner = "<meetingID>\u{FEFF}m</meetingID><internalMeetingID>i</internalMeetingID>\
                     <running>true</running><endTime>0</endTime>";
        let mut xml = UTF8_BOM.to_vec();
        xml.extend_from_slice(&one_meeting(inner));
        let expected = vec![meeting("\u{FEFF}m", "i", true, 0)];
        assert_eq!(parse_meetings(&xml).expect("ok"), expected);
        // Wherever the reads are cut, the mark inside the id is kept.
        for chunk in 1..=80 {
            assert_eq!(
                parse_chunked(&xml, chunk).expect("ok"),
                expected,
                "chunk {chunk}"
            );
        }
    }

    /// A getMeetings answer of `count` meetings with 20 attendees each (~6 KB a meeting),
    /// produced chunk by chunk so the body never sits in memory.
    fn generated_answer(
        count: usize,
    ) -> impl futures_util::Stream<Item = io::Result<io::Cursor<Vec<u8>>>> {
        let head = stream::once(async {
            Ok(io::Cursor::new(
                b"<?xml version=\"1.0\"?>\n<response><returncode>SUCCESS</returncode><meetings>"
                    .to_vec(),
            ))
        });
        // Same attendees in every meeting (they are skipped anyway): built once, so the
        // generator costs a copy per meeting and the timing is the parser's.
        let mut attendees = String::new();
        for a in 0..20 {
            attendees.push_str(&format!(
                "<attendee><userID>w_{a}</userID><fullName>Étudiant {a} &amp; co</fullName>\
                 <role>VIEWER</role><isPresenter>false</isPresenter><isListeningOnly>true</isListeningOnly>\
                 <hasJoinedVoice>false</hasJoinedVoice><hasVideo>false</hasVideo><clientType>HTML5</clientType>\
                 <customdata><meetingID>decoy</meetingID><theme>dark</theme></customdata></attendee>"
            ));
        }
        let body = stream::iter((0..count).map(move |i| {
            let mut m = format!(
                "<meeting><meetingName>Amphi {i} &amp; co</meetingName>\
                 <meetingID>meeting-{i}</meetingID>\
                 <internalMeetingID>{i:040x}-1590146963416</internalMeetingID>\
                 <createTime>1590146963416</createTime><voiceBridge>70100</voiceBridge>\
                 <running>{}</running><duration>0</duration><hasUserJoined>true</hasUserJoined>\
                 <startTime>1590146963494</startTime><endTime>{}</endTime><attendees>",
                i % 3 != 0,
                if i % 3 == 0 { 1590147528510u64 } else { 0 }
            );
            m.push_str(&attendees);
            m.push_str(
                "</attendees><metadata><bbb-origin>Pod</bbb-origin><meetingID>decoy</meetingID>\
                 <endcallbackurl>https://pod.univ.fr/meeting/end/?x=1&amp;y=2</endcallbackurl>\
                 </metadata><isBreakout>false</isBreakout></meeting>",
            );
            Ok(io::Cursor::new(m.into_bytes()))
        }));
        let tail = stream::once(async { Ok(io::Cursor::new(b"</meetings></response>".to_vec())) });
        head.chain(body).chain(tail)
    }

    #[tokio::test]
    async fn a_30_mb_answer_streams_through_the_async_driver() {
        const COUNT: usize = 5_000;
        let size = Arc::new(Mutex::new(0usize));
        let counted = size.clone();
        let chunks = generated_answer(COUNT).inspect_ok(move |chunk| {
            *counted.lock().expect("lock") += chunk.get_ref().len();
        });
        let started = Instant::now();
        let meetings = match read_meetings(StreamReader::new(Box::pin(chunks))).await {
            Ok(meetings) => meetings,
            Err(err) => panic!("{err:?}"),
        };
        let elapsed = started.elapsed();
        let bytes = *size.lock().expect("lock");
        assert!(bytes > 30_000_000, "generated only {bytes} bytes");
        eprintln!(
            "parsed {} MB in {elapsed:?} ({:.2} ms/MB)",
            bytes / 1_000_000,
            elapsed.as_secs_f64() * 1000.0 / (bytes as f64 / 1e6)
        );
        assert_eq!(meetings.len(), COUNT);
        for (i, m) in meetings.iter().enumerate() {
            assert_eq!(m.meeting_id, format!("meeting-{i}"));
            assert_eq!(m.internal_meeting_id, format!("{i:040x}-1590146963416"));
            assert_eq!(m.running, i % 3 != 0);
            assert_eq!(m.end_time, if i % 3 == 0 { 1590147528510 } else { 0 });
        }
    }

    // --- properties ---------------------------------------------------------

    fn render(meetings: &[(String, String, bool, u64)], order: &[usize], cdata: bool) -> String {
        use quick_xml::escape::escape;
        let mut xml = String::from("<response><meetings>");
        for (n, (id, internal, running, end_time)) in meetings.iter().enumerate() {
            let text = |value: &str| {
                if cdata && !value.contains("]]>") {
                    format!("<![CDATA[{value}]]>")
                } else {
                    escape(value).into_owned()
                }
            };
            let fields = [
                format!("<meetingID>{}</meetingID>", text(id)),
                format!("<internalMeetingID>{}</internalMeetingID>", text(internal)),
                format!("<running>{running}</running>"),
                format!("<endTime>{end_time}</endTime>"),
                format!(
                    "<metadata><meetingID>{}-decoy</meetingID></metadata>",
                    escape(id.as_str())
                ),
            ];
            xml.push_str("<meeting>");
            for k in 0..fields.len() {
                xml.push_str(&fields[(k + order[n % order.len()]) % fields.len()]);
            }
            xml.push_str("</meeting>");
        }
        xml.push_str("</meetings><returncode>SUCCESS</returncode></response>");
        xml
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_meetings(&bytes);
        }

        #[test]
        fn both_drivers_agree_on_any_input_and_any_cut(
            bytes in proptest::collection::vec(any::<u8>(), 0..600),
            chunk in 1usize..40,
        ) {
            prop_assert_eq!(
                format!("{:?}", parse_meetings(&bytes)),
                format!("{:?}", parse_chunked(&bytes, chunk))
            );
        }

        #[test]
        fn both_drivers_agree_on_mangled_answers(
            at in 0usize..5000,
            byte in prop::sample::select(b"<>/&;![]-?\"' \xEF\xBBa".to_vec()),
            chunk in 1usize..200,
        ) {
            let mut xml = fixture!("getMeetings-several.xml").to_vec();
            let at = at % xml.len();
            xml[at] = byte;
            prop_assert_eq!(
                format!("{:?}", parse_meetings(&xml)),
                format!("{:?}", parse_chunked(&xml, chunk))
            );
        }

        #[test]
        fn mangled_fixtures_never_panic_and_never_invent_meetings(
            cut in 0usize..5000,
            at in 0usize..5000,
            byte in any::<u8>(),
        ) {
            let mut xml = fixture!("getMeetings-several.xml").to_vec();
            let at = at % xml.len();
            xml[at] = byte;
            xml.truncate(cut.max(at + 1));
            if let Ok(meetings) = parse_meetings(&xml) {
                prop_assert!(meetings.len() <= 3);
            }
        }

        #[test]
        fn rendered_meetings_parse_back(
            meetings in proptest::collection::vec(
                ("\\PC{0,30}[a-z0-9]", "[^\\p{C}\\s]{1,40}", any::<bool>(), any::<u64>()),
                0..8,
            ),
            order in proptest::collection::vec(0usize..5, 1..4),
            cdata in any::<bool>(),
        ) {
            let xml = render(&meetings, &order, cdata);
            let expected: Vec<BbbMeeting> = meetings
                .iter()
                .map(|(id, internal, running, end_time)| meeting(id, internal, *running, *end_time))
                .collect();
            let parsed = parse_meetings(xml.as_bytes());
            prop_assert_eq!(parsed.as_ref().ok(), Some(&expected), "{}", xml);
        }
    }
}

/// Hostile getMeetings answers. The `tests` module above holds the
/// parser's own properties; these add BBB-shaped documents whose every free text
/// (meeting names, attendees, metadata) is hostile and whose ids are written every way
/// XML allows, and every fixture mangled by several edits at once.
#[cfg(test)]
mod hostile_props {
    use super::tests::parse_chunked;
    use super::*;

    use proptest::prelude::*;

    macro_rules! fixture {
        ($file:literal) => {
            (
                $file,
                include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/bbb-xml/",
                    $file
                ))
                .as_slice(),
            )
        };
    }

    const FIXTURES: [(&str, &[u8]); 8] = [
        fixture!("checksumError.xml"),
        fixture!("getMeetingInfo.xml"),
        fixture!("getMeetings-ended-meeting-still-listed.xml"),
        fixture!("getMeetings-noMeetings.xml"),
        fixture!("getMeetings-several.xml"),
        fixture!("isMeetingRunning-true.xml"),
        fixture!("scalelite-getMeetings-internalError-DERIVED.xml"),
        fixture!("scalelite-getMeetings-noMeetings-DERIVED.xml"),
    ];

    /// How a kept value is written in the document.
    #[derive(Clone, Copy, Debug)]
    enum Enc {
        /// Markup characters as named entities, everything else as is.
        Raw,
        /// Every non-ASCII-alphanumeric character as `&#N;` (NUL stays raw: XML has no
        /// reference for it).
        Decimal,
        /// Same with `&#xN;`.
        Hex,
        /// In a CDATA section (split where the value holds `]]>`).
        Cdata,
    }

    fn encode(value: &str, enc: Enc) -> String {
        if let Enc::Cdata = enc {
            // `]]>` cannot be inside a CDATA section: close it after `]]` and reopen.
            return format!("<![CDATA[{}]]>", value.replace("]]>", "]]]]><![CDATA[>"));
        }
        let mut out = String::new();
        for c in value.chars() {
            match (c, enc) {
                ('\0', _) => out.push(c),
                (c, Enc::Decimal) if !c.is_ascii_alphanumeric() => {
                    out.push_str(&format!("&#{};", c as u32));
                }
                (c, Enc::Hex) if !c.is_ascii_alphanumeric() => {
                    out.push_str(&format!("&#x{:X};", c as u32));
                }
                ('&', _) => out.push_str("&amp;"),
                ('<', _) => out.push_str("&lt;"),
                ('>', _) => out.push_str("&gt;"),
                ('"', _) => out.push_str("&quot;"),
                ('\'', _) => out.push_str("&apos;"),
                (c, _) => out.push(c),
            }
        }
        out
    }

    fn arb_enc() -> impl Strategy<Value = Enc> {
        prop_oneof![
            Just(Enc::Raw),
            Just(Enc::Decimal),
            Just(Enc::Hex),
            Just(Enc::Cdata)
        ]
    }

    /// Text an attacker or a careless front end could put in a name or an id: any
    /// Unicode, control characters, markup, entity look-alikes, path separators.
    fn hostile() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            any::<char>().prop_map(String::from),
            "[\\x00-\\x1f\\x7f\\u{85}\\u{2028}\\u{feff}\\u{fffe}\\u{ffff}]",
            prop::sample::select(vec![
                "&amp;",
                "&nbsp;",
                "&#0;",
                "&#x41;",
                "<",
                ">",
                "]]>",
                "<![CDATA[",
                "</meetingID>",
                "<meetingID>x</meetingID>",
                "<!-- -->",
                "\r\n",
                "../",
                "/",
                "\\",
                "$VAR",
                "${X}",
                "%2F",
                " ",
                "é",
                "𝔘",
            ])
            .prop_map(str::to_owned),
        ];
        prop_oneof![
            any::<String>(),
            prop::collection::vec(piece, 0..12).prop_map(|v| v.concat()),
        ]
    }

    /// A meeting id: hostile but not blank (a blank id is refused, tested in `tests`).
    fn hostile_id() -> impl Strategy<Value = String> {
        hostile().prop_filter("not blank", |s| !s.trim().is_empty())
    }

    #[derive(Clone, Debug)]
    struct Generated {
        name: String,
        meeting_id: String,
        internal_meeting_id: String,
        running: bool,
        end_time: u64,
        attendees: Vec<(String, String)>,
        metadata: String,
        id_enc: Enc,
        text_enc: Enc,
    }

    fn arb_meeting() -> impl Strategy<Value = Generated> {
        (
            (
                hostile(),
                hostile_id(),
                hostile_id(),
                any::<bool>(),
                any::<u64>(),
            ),
            (
                prop::collection::vec((hostile(), hostile()), 0..3),
                hostile(),
                arb_enc(),
                arb_enc(),
            ),
        )
            .prop_map(
                |(
                    (name, meeting_id, internal_meeting_id, running, end_time),
                    (attendees, metadata, id_enc, text_enc),
                )| Generated {
                    name,
                    meeting_id,
                    internal_meeting_id,
                    running,
                    end_time,
                    attendees,
                    metadata,
                    id_enc,
                    text_enc,
                },
            )
    }

    /// A getMeetings answer as BBB writes it (every element of api-getMeetings.ftlx),
    /// with the values of `meetings`.
    fn render(meetings: &[Generated]) -> String {
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<response>\n  <returncode>SUCCESS</returncode>\n  <meetings>\n",
        );
        for m in meetings {
            let t = |v: &str| encode(v, m.text_enc);
            let id = |v: &str| encode(v, m.id_enc);
            xml.push_str("    <meeting>\n");
            xml.push_str(&format!(
                "      <meetingName>{}</meetingName>\n",
                t(&m.name)
            ));
            xml.push_str(&format!(
                "      <meetingID>{}</meetingID>\n",
                id(&m.meeting_id)
            ));
            xml.push_str(&format!(
                "      <internalMeetingID>{}</internalMeetingID>\n",
                id(&m.internal_meeting_id)
            ));
            xml.push_str("      <createTime>1590146963416</createTime>\n");
            xml.push_str(&format!("      <createDate>{}</createDate>\n", t(&m.name)));
            xml.push_str(&format!(
                "      <attendeePW>{}</attendeePW>\n",
                t(&m.metadata)
            ));
            xml.push_str(&format!("      <running>{}</running>\n", m.running));
            xml.push_str(&format!("      <endTime>{}</endTime>\n", m.end_time));
            xml.push_str("      <attendees>\n");
            for (user, full_name) in &m.attendees {
                xml.push_str(&format!(
                    "        <attendee><userID>{}</userID><fullName>{}</fullName>\
                     <role>VIEWER</role><customdata><meetingID>{}</meetingID></customdata></attendee>\n",
                    t(user),
                    t(full_name),
                    t(full_name)
                ));
            }
            xml.push_str("      </attendees>\n");
            xml.push_str(&format!(
                "      <metadata><bbb-context>{}</bbb-context><meetingID>{}</meetingID>\
                 <running>{}</running></metadata>\n",
                t(&m.metadata),
                t(&m.name),
                t(&m.metadata)
            ));
            xml.push_str(&format!(
                "      <breakoutRooms><breakout>{}</breakout></breakoutRooms>\n",
                t(&m.name)
            ));
            xml.push_str("    </meeting>\n");
        }
        xml.push_str("  </meetings>\n</response>\n");
        xml
    }

    fn expected(meetings: &[Generated]) -> Vec<BbbMeeting> {
        meetings
            .iter()
            .map(|m| BbbMeeting {
                meeting_id: m.meeting_id.clone().into(),
                internal_meeting_id: m.internal_meeting_id.clone().into(),
                running: m.running,
                end_time: m.end_time,
            })
            .collect()
    }

    /// One edit of a document.
    #[derive(Clone, Debug)]
    enum Edit {
        Flip(usize, u8),
        Insert(usize, Vec<u8>),
        Delete(usize, usize),
        Duplicate(usize, usize),
        Truncate(usize),
    }

    fn arb_edit() -> impl Strategy<Value = Edit> {
        let bytes = prop_oneof![
            prop::collection::vec(any::<u8>(), 1..8),
            prop::sample::select(vec![
                b"<meeting>".to_vec(),
                b"</meeting>".to_vec(),
                b"<meetings>".to_vec(),
                b"</response>".to_vec(),
                b"<returncode>FAILED</returncode>".to_vec(),
                b"&#0;".to_vec(),
                b"&bogus;".to_vec(),
                b"<![CDATA[".to_vec(),
                b"\xEF\xBB\xBF".to_vec(),
                b"\xFF\xFE".to_vec(),
                b"<!DOCTYPE x [<!ENTITY a \"&a;&a;\">]>".to_vec(),
            ]),
        ];
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Flip(at, b)),
            (any::<usize>(), bytes).prop_map(|(at, b)| Edit::Insert(at, b)),
            (any::<usize>(), 1usize..64).prop_map(|(at, n)| Edit::Delete(at, n)),
            (any::<usize>(), 1usize..256).prop_map(|(at, n)| Edit::Duplicate(at, n)),
            any::<usize>().prop_map(Edit::Truncate),
        ]
    }

    fn apply(doc: &mut Vec<u8>, edit: &Edit) {
        let len = doc.len();
        let at = |i: usize| if len == 0 { 0 } else { i % (len + 1) };
        match edit {
            Edit::Flip(i, b) if len > 0 => doc[i % len] = *b,
            Edit::Flip(..) => {}
            Edit::Insert(i, bytes) => {
                let i = at(*i);
                doc.splice(i..i, bytes.iter().copied());
            }
            Edit::Delete(i, n) => {
                let i = at(*i);
                doc.drain(i..(i + n).min(len));
            }
            Edit::Duplicate(i, n) => {
                let i = at(*i);
                let piece = doc[i..(i + n).min(len)].to_vec();
                doc.splice(i..i, piece);
            }
            Edit::Truncate(i) => doc.truncate(at(*i)),
        }
    }

    fn count(haystack: &[u8], needle: &[u8]) -> usize {
        haystack
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count()
    }

    /// The error is something an admin can read: one bounded message, naming a cause.
    fn assert_clear(err: &BbbError) -> Result<(), TestCaseError> {
        let text = err.to_string();
        prop_assert!(!text.trim().is_empty());
        prop_assert!(
            text.len() <= MAX_VALUE_BYTES + 200,
            "an error message of {} bytes",
            text.len()
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any names, any ids written any way XML allows: the four kept values come back
        /// exactly, from both drivers, whatever the skipped elements hold.
        #[test]
        fn hostile_meetings_rendered_like_bbb_parse_back_exactly(
            meetings in prop::collection::vec(arb_meeting(), 0..5),
            chunk in 1usize..300,
        ) {
            let xml = render(&meetings);
            let want = expected(&meetings);
            let parsed = parse_meetings(xml.as_bytes());
            prop_assert_eq!(parsed.as_ref().ok(), Some(&want), "{:?}\n{}", parsed, xml);
            let streamed = parse_chunked(xml.as_bytes(), chunk);
            prop_assert_eq!(streamed.as_ref().ok(), Some(&want), "{:?}", streamed);
        }

        /// Every fixture, mangled by up to six edits: no panic, no meeting that the
        /// mangled bytes do not hold, both drivers agree, and a refusal is one readable
        /// message.
        #[test]
        fn every_fixture_mangled_never_panics_nor_invents_meetings(
            which in 0usize..FIXTURES.len(),
            edits in prop::collection::vec(arb_edit(), 1..6),
            chunk in 1usize..100,
        ) {
            let (name, original) = FIXTURES[which];
            let mut doc = original.to_vec();
            for e in &edits {
                apply(&mut doc, e);
            }
            let parsed = parse_meetings(&doc);
            match &parsed {
                Ok(meetings) => prop_assert!(
                    meetings.len() <= count(&doc, b"<meeting>"),
                    "{name}: {} meetings from {} <meeting> tags",
                    meetings.len(),
                    count(&doc, b"<meeting>")
                ),
                Err(e) => assert_clear(e)?,
            }
            prop_assert_eq!(
                format!("{:?}", parsed),
                format!("{:?}", parse_chunked(&doc, chunk)),
                "{}", name
            );
        }

        /// A hostile meeting list cut anywhere is refused (never a shorter list, which
        /// would read as "those meetings ended").
        #[test]
        fn a_hostile_answer_cut_anywhere_is_refused(
            meetings in prop::collection::vec(arb_meeting(), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let xml = render(&meetings);
            // The end of `</response>` is where the answer becomes complete.
            let complete = xml.rfind("</response>").expect("rendered") + "</response>".len();
            let at = cut.index(complete);
            let result = parse_meetings(&xml.as_bytes()[..at]);
            prop_assert!(result.is_err(), "cut at {}/{}: {:?}", at, complete, result);
            if let Err(e) = &result {
                assert_clear(e)?;
            }
        }
    }
}
