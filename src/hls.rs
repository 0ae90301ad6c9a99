//! An HLS playlist as the health check reads it (RFC 8216): is it a media playlist, and
//! where does it stand — its `#EXT-X-TARGETDURATION`, `#EXT-X-MEDIA-SEQUENCE` and
//! newest segment. Pure: the HTTP `GET` is `tick/streamer.rs`'s, the judgement of two
//! readings `health.rs`'s.
//!
//! Three tags and the segment lines are all the check needs, so they are read here in a
//! few lines rather than with an M3U8 crate: `m3u8-rs` would parse every tag of both
//! playlist kinds through `nom` for values we then throw away, and a playlist we cannot
//! read must fail the signal, not the tick. What is read follows RFC 8216: the first line
//! is `#EXTM3U` (§4.3.1.1); `#EXT-X-TARGETDURATION` is a decimal integer a media playlist
//! carries exactly once (§4.3.3.1); `#EXT-X-MEDIA-SEQUENCE` is a decimal integer, 0 when
//! absent (§4.3.3.2); every other line that is neither blank nor a `#` comment or tag is
//! a segment URI (§4.1); a master playlist lists variants (`#EXT-X-STREAM-INF`, §4.3.4.2)
//! and has no target duration.

/// Longest segment URI kept in the health memory (nginx-rtmp's are ~20 bytes).
const MAX_URI: usize = 200;

/// What a playlist body is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playlist {
    /// A media playlist: where it stands.
    Media(Media),
    /// A master playlist (variants): it answers, but its progress is in its variants.
    Master,
    /// Not an HLS playlist (an HTML page, an empty body), or a media playlist without a
    /// readable target duration.
    NotHls,
}

/// Where a media playlist stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `#EXT-X-TARGETDURATION`, in seconds.
    pub target_secs: u32,
    /// `#EXT-X-MEDIA-SEQUENCE`: the sequence number of its first segment.
    pub sequence: u64,
    /// How many segments it lists.
    pub segments: u64,
    /// The URI of its last segment (cut to a few hundred bytes), if it lists one.
    pub newest: Option<String>,
}

impl Media {
    /// The sequence number just past its newest segment: it grows as segments are
    /// published, whether the playlist slides (live) or only grows (event).
    pub fn position(&self) -> u64 {
        self.sequence.saturating_add(self.segments)
    }
}

/// Reads a playlist body.
pub fn parse(body: &[u8]) -> Playlist {
    let text = String::from_utf8_lossy(body);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut lines = text.lines().map(str::trim);
    if lines.next() != Some("#EXTM3U") {
        return Playlist::NotHls;
    }
    let mut target = None;
    let mut sequence = None;
    let mut master = false;
    let mut segments = 0u64;
    let mut newest = None;
    for line in lines {
        if let Some(value) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            // A second one is a broken playlist: which would we believe?
            let Some(secs) = decimal(value).and_then(|v| u32::try_from(v).ok()) else {
                return Playlist::NotHls;
            };
            if target.replace(secs).is_some() {
                return Playlist::NotHls;
            }
        } else if let Some(value) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            let Some(n) = decimal(value) else {
                return Playlist::NotHls;
            };
            if sequence.replace(n).is_some() {
                return Playlist::NotHls;
            }
        } else if line.starts_with("#EXT-X-STREAM-INF:") {
            master = true;
        } else if !line.is_empty() && !line.starts_with('#') {
            segments += 1;
            newest = Some(line);
        }
    }
    match target {
        Some(target_secs) => Playlist::Media(Media {
            target_secs,
            sequence: sequence.unwrap_or(0),
            segments,
            newest: newest.map(|uri| cut(uri, MAX_URI).to_owned()),
        }),
        None if master => Playlist::Master,
        None => Playlist::NotHls,
    }
}

/// RFC 8216 §4.2 decimal-integer: digits only, at most 20 of them, fitting a u64.
fn decimal(value: &str) -> Option<u64> {
    let value = value.trim();
    if value.is_empty() || value.len() > 20 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// `s` cut to at most `max` bytes on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(body: &str) -> Media {
        match parse(body.as_bytes()) {
            Playlist::Media(m) => m,
            other => panic!("{other:?} for {body:?}"),
        }
    }

    #[test]
    fn an_nginx_rtmp_live_playlist() {
        let m = media(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:12\n#EXT-X-TARGETDURATION:4\n\
             #EXTINF:4.000,\n12.ts\n#EXTINF:4.000,\n13.ts\n",
        );
        assert_eq!(
            m,
            Media {
                target_secs: 4,
                sequence: 12,
                segments: 2,
                newest: Some("13.ts".into())
            }
        );
        assert_eq!(m.position(), 14);
    }

    #[test]
    fn crlf_a_byte_order_mark_and_tag_order_are_fine_and_the_sequence_defaults_to_0() {
        let m =
            media("\u{feff}#EXTM3U\r\n#EXT-X-TARGETDURATION:6\r\n#EXTINF:6,\r\nseg-1.ts\r\n\r\n");
        assert_eq!((m.target_secs, m.sequence, m.segments), (6, 0, 1));
        assert_eq!(m.newest.as_deref(), Some("seg-1.ts"));
        let empty = media("#EXTM3U\n#EXT-X-TARGETDURATION:2\n");
        assert_eq!((empty.segments, empty.newest), (0, None));
    }

    #[test]
    fn a_master_playlist_is_told_apart() {
        let body = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nlow/index.m3u8\n";
        assert_eq!(parse(body.as_bytes()), Playlist::Master);
    }

    #[test]
    fn what_is_not_a_media_playlist_is_not_hls() {
        for body in [
            "",
            "<html><body>404 Not Found</body></html>",
            "EXTM3U\n#EXT-X-TARGETDURATION:4\n",
            "#EXTM3U\n#EXTINF:4,\n1.ts\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:four\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:-4\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:4.5\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:99999999999\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-TARGETDURATION:6\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:1e3\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-MEDIA-SEQUENCE:2\n",
        ] {
            assert_eq!(parse(body.as_bytes()), Playlist::NotHls, "{body:?}");
        }
    }

    #[test]
    fn huge_values_neither_overflow_nor_grow_the_memory() {
        let long = "x".repeat(10_000);
        let m = media(&format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:{}\n{long}\n",
            u64::MAX
        ));
        assert_eq!(m.position(), u64::MAX);
        assert_eq!(m.newest.map(|n| n.len()), Some(MAX_URI));
        let wide = media(&format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n{}\n",
            "é".repeat(500)
        ));
        assert!(wide.newest.is_some_and(|n| n.len() <= MAX_URI));
    }
}
