//! The text codecs the fakes need, over the crates that do them (base64,
//! percent-encoding, form_urlencoded), shaped as Python's `urllib.parse` does it where
//! Pod's answers depend on it; XML escaping and test ids.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Standard base64 (RFC 4648), padding written, and optional when read.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    BASE64.encode(data)
}

/// Decodes base64, ignoring whitespace (MIME bodies are wrapped). `None` if malformed.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.split_ascii_whitespace().collect();
    BASE64.decode(compact).ok()
}

/// Decodes `%XX` escapes (and `+` as space when `plus` is set) into UTF-8, lossily; a
/// `%` not followed by two hex digits stays as it is.
pub fn percent_decode(text: &str, plus: bool) -> String {
    let text = if plus {
        text.replace('+', " ")
    } else {
        text.to_owned()
    };
    percent_decode_str(&text).decode_utf8_lossy().into_owned()
}

/// The value of a hex digit (quoted-printable bodies).
pub fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// What Python's `quote_plus` leaves as it is: letters, digits and `_.-~`.
const QUOTE_PLUS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// Python's `urllib.parse.quote_plus`: a space is `+`.
pub fn quote_plus(text: &str) -> String {
    text.split(' ')
        .map(|part| utf8_percent_encode(part, QUOTE_PLUS).to_string())
        .collect::<Vec<_>>()
        .join("+")
}

/// `application/x-www-form-urlencoded` pairs, decoded, blanks kept (Python's
/// `parse_qsl(keep_blank_values=True)`).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Escapes text for an XML element or attribute.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A hex string of `n` pseudo-random characters (tokens, ids). Not cryptographic: it only
/// has to differ between runs and objects.
pub fn random_hex(n: usize) -> String {
    use sha1::{Digest, Sha1};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::new();
    while out.len() < n {
        let mut h = Sha1::new();
        h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        h.update(now.to_le_bytes());
        out.push_str(&hex::encode(h.finalize()));
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar", "é ü ✓"] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).unwrap(),
                s.as_bytes()
            );
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn query_codecs_follow_python() {
        assert_eq!(quote_plus("a b/é"), "a+b%2F%C3%A9");
        assert_eq!(
            parse_query("a=1&b=x+y&c=%C3%A9&d"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "é".into()),
                ("d".into(), String::new())
            ]
        );
        assert_eq!(percent_decode("100%", false), "100%");
    }
}
