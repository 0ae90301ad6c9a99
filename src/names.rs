//! Names a live gets outside this tool: its stream key (RTMP and HLS URLs) and its
//! broadcaster name in Pod, and the slug Pod will derive from that name (Django's
//! `slugify`). Pure functions: choosing among them (is a name taken by another
//! running live?) is the caller's business.
//!
//! Pod answers HTTP 500 rather than 400 when a broadcaster's slug collides with
//! another one, or is too long for the transcript file Pod creates from it
//! (docs/pod-api.md, "Broadcasters"). So the names made here keep their slug short,
//! never let it be the bare `bbb` every non-Latin name reduces to, and can be made
//! distinct with the live id.

use std::fmt::Write as _;

use unicode_normalization::UnicodeNormalization;

use crate::model::LiveId;

/// Longest meeting-name part of a stream key, in characters (keeps URLs readable).
pub const STREAM_KEY_SLUG_MAX: usize = 40;
/// `Broadcaster.name` is a `CharField(max_length=200)`: Pod answers 400 beyond.
pub const BROADCASTER_NAME_MAX: usize = 200;
/// `Broadcaster.slug` is a `SlugField(max_length=200)`.
pub const BROADCASTER_SLUG_MAX: usize = 200;
/// Pod 3.x creates `MEDIA_ROOT/live_transcripts/<slug>.vtt_empty.vtt`: one file name,
/// at most 255 bytes on the usual file systems, else a 500 "File name too long".
const TRANSCRIPT_SUFFIX: &str = ".vtt_empty.vtt";
const FILE_NAME_MAX: usize = 255;
/// What every broadcaster name starts with, as with bbb-pod-live.php.
const PREFIX: &str = "[BBB]";

/// Stream key for a live: `[A-Za-z0-9._~-]+`, from the meeting name, unique per live id.
///
/// `bbb-<slug of the name, at most 40 characters>-<live id>`, or `bbb-live-<live id>`
/// when the name has nothing Latin in it. The same live always gets the same key,
/// so a retried start reuses it; the live id, the part after the last `-` (a slug
/// never ends with `-`), makes the keys of two lives differ.
pub fn stream_key(meeting_name: &str, live: LiveId) -> String {
    let slug = django_slugify(meeting_name);
    let slug = shorten_slug(&slug, STREAM_KEY_SLUG_MAX);
    if slug.is_empty() {
        format!("bbb-live-{live}")
    } else {
        format!("bbb-{slug}-{live}")
    }
}

/// The live a stream key was made for (the inverse of [`stream_key`]): the id after
/// its last `-`, if that is a number.
pub fn live_of_stream_key(key: &str) -> Option<LiveId> {
    key.rsplit_once('-')?.1.parse().ok()
}

/// `slug` cut to at most `max` characters, at a `-` when that keeps at least half
/// of it, without a trailing `-` or `_`.
fn shorten_slug(slug: &str, max: usize) -> &str {
    if slug.len() <= max {
        return slug;
    }
    // A slug is ASCII: byte indices are character indices.
    let head = &slug[..max];
    let cut = if slug.as_bytes()[max] == b'-' {
        head
    } else {
        match head.rfind('-') {
            Some(i) if i >= max / 2 => &head[..i],
            _ => head,
        }
    };
    cut.trim_end_matches(['-', '_'])
}

/// Python's `\s` on ASCII text (`str.isspace`): the usual white space plus the
/// information separators U+001C..U+001F, which Rust does not count as white space.
fn is_python_space(c: char) -> bool {
    matches!(c, '\t'..='\r' | '\u{1c}'..='\u{1f}' | ' ')
}

/// Django 3.2's `slugify` (`allow_unicode=False`), as Pod computes a broadcaster's slug:
/// NFKD, non-ASCII dropped, lowercase, characters other than `[A-Za-z0-9_]`, white
/// space and `-` removed, runs of `-` and white space turned into one `-`, leading
/// and trailing `-` and `_` stripped.
pub fn django_slugify(s: &str) -> String {
    let mut slug = String::with_capacity(s.len());
    let mut separator = false;
    for c in s.nfkd().filter(char::is_ascii) {
        let c = c.to_ascii_lowercase();
        if c == '-' || is_python_space(c) {
            separator = true;
        } else if c.is_ascii_alphanumeric() || c == '_' {
            if separator && !slug.is_empty() {
                slug.push('-');
            }
            separator = false;
            slug.push(c);
        }
        // Anything else is deleted without separating words: `d'amphi` → `damphi`.
    }
    // Leading separators were never written, trailing ones are pending in
    // `separator`; what is left to strip is `_` (and `-` that `_` hid).
    slug.trim_matches(['-', '_']).to_owned()
}

/// The slug Pod derives from a broadcaster name (`Broadcaster.save`).
pub fn broadcaster_slug(name: &str) -> String {
    django_slugify(name)
}

/// Broadcaster name `[BBB] <meeting name>`; with `distinct`, made unique with the live id.
/// At most 200 characters, slug not empty-ish and short enough for Pod.
///
/// The meeting name has control characters replaced by spaces, white space collapsed
/// and trimmed, and no trailing `-` or `_` as far as the slug sees it: Django 1.11
/// (Pod 2.x) keeps them at the end of a slug and 3.2 strips them, so without them
/// both give the same slug. ` (<live id>)` is appended when `distinct` is asked or
/// when the name alone would slugify to the bare `bbb` (nothing Latin in it: every
/// such name would collide). The meeting name is then cut, by characters and before
/// the suffix, until the name, its slug and Pod's transcript file name fit.
pub fn broadcaster_name(meeting_name: &str, live: LiveId, distinct: bool) -> String {
    let cleaned = collapse_whitespace(
        &meeting_name
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>(),
    );
    let chars: Vec<char> = cleaned.chars().collect();
    for n in (0..=chars.len().min(BROADCASTER_NAME_MAX)).rev() {
        let part = without_trailing_separators(&chars[..n].iter().collect::<String>());
        let candidate = assemble(&part, live, distinct);
        if fits_pod(&candidate) {
            return candidate;
        }
    }
    // Unreachable in practice: with an empty meeting name the candidate is
    // `[BBB] (<live id>)`, at most 28 characters, which always fits.
    assemble("", live, true)
}

/// `[BBB] <part>`, with ` (<live id>)` when asked or when the slug would be bare.
fn assemble(part: &str, live: LiveId, distinct: bool) -> String {
    let mut name = String::from(PREFIX);
    if !part.is_empty() {
        name.push(' ');
        name.push_str(part);
    }
    if distinct || django_slugify(&name) == "bbb" {
        // `write!` into a String cannot fail.
        let _ = write!(name, " ({live})");
    }
    name
}

/// Pod's limits on a broadcaster (docs/pod-api.md, "Broadcasters").
fn fits_pod(name: &str) -> bool {
    let slug = broadcaster_slug(name);
    name.chars().count() <= BROADCASTER_NAME_MAX
        && slug.len() <= BROADCASTER_SLUG_MAX
        && slug.len() + TRANSCRIPT_SUFFIX.len() <= FILE_NAME_MAX
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `s` without the characters that would end its slug with `-` or `_` (in Django
/// 1.11, which does not strip them), looking through characters the slug ignores:
/// `Cours -` → `Cours`, `TD_ !` → `TD !`, `Cours － 会议` → `Cours 会议`.
fn without_trailing_separators(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    // Each pass removes one character or stops, so this ends.
    'again: loop {
        for i in (0..chars.len()).rev() {
            // What the slug keeps of this character: NFKD, ASCII, `[\w\s-]`.
            let kept = chars[i].nfkd().filter(|c| {
                c.is_ascii_alphanumeric() || *c == '_' || *c == '-' || is_python_space(*c)
            });
            match kept.filter(|c| !is_python_space(*c)).last() {
                None => continue,
                Some('-' | '_') => {
                    chars.remove(i);
                    continue 'again;
                }
                Some(_) => break 'again,
            }
        }
        break;
    }
    collapse_whitespace(&chars.into_iter().collect::<String>())
}

#[cfg(test)]
// Panicking on an unexpected `Err` is how a test fails.
#[allow(clippy::unwrap_used)]
mod tests {

    #[test]
    fn the_live_is_read_back_from_its_stream_key() {
        for (name, live) in [
            ("Cours d'amphi", 42),
            ("日本語", 7),
            (&*"x".repeat(90), 123),
        ] {
            assert_eq!(live_of_stream_key(&stream_key(name, live)), Some(live));
        }
        assert_eq!(live_of_stream_key("stale"), None);
        assert_eq!(live_of_stream_key("bbb-cours-x"), None);
    }
    use super::*;
    use proptest::prelude::*;

    fn is_key_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-')
    }

    #[test]
    fn slugify_matches_the_pod_table() {
        // docs/pod-api.md: names sent by bbb-pod-live.php and the slugs Pod made.
        assert_eq!(django_slugify("[BBB] Cours d-amphi"), "bbb-cours-d-amphi");
        assert_eq!(django_slugify("[BBB] OEuvre ete"), "bbb-oeuvre-ete");
        assert_eq!(
            django_slugify("[BBB] Reunion: L1 &amp; L2 (TD)"),
            "bbb-reunion-l1-amp-l2-td"
        );
        assert_eq!(django_slugify("[BBB] Test_ "), "bbb-test");
    }

    #[test]
    fn slugify_follows_django() {
        // Œ has no decomposition and is dropped (observed on Pod 3.8.1).
        assert_eq!(django_slugify("Œuvre été"), "uvre-ete");
        assert_eq!(django_slugify("ﬃ"), "ffi");
        assert_eq!(django_slugify("Réunion: L1 & L2 (TD)"), "reunion-l1-l2-td");
        assert_eq!(django_slugify("Cours d'amphi"), "cours-damphi");
        assert_eq!(django_slugify("会议"), "");
        assert_eq!(django_slugify("[BBB] 会议"), "bbb");
        assert_eq!(django_slugify(""), "");
        assert_eq!(django_slugify("  --a  -- b__  "), "a-b");
        assert_eq!(django_slugify("__a__"), "a");
        assert_eq!(django_slugify("_-_a"), "a");
        assert_eq!(django_slugify("a_-_"), "a");
        assert_eq!(django_slugify("snake_case_Name"), "snake_case_name");
        // Python's \s includes U+001C..U+001F; other controls are deleted.
        assert_eq!(django_slugify("a\u{1c}b\u{7}c\td"), "a-bc-d");
        // NFKD: full-width letters and non-breaking spaces.
        assert_eq!(django_slugify("ＡＢＣ\u{a0}x"), "abc-x");
        assert_eq!(django_slugify("x²"), "x2");
    }

    #[test]
    fn stream_keys() {
        assert_eq!(stream_key("Cours d'amphi", 42), "bbb-cours-damphi-42");
        assert_eq!(stream_key("会议", 7), "bbb-live-7");
        assert_eq!(stream_key("", 7), "bbb-live-7");
        assert_eq!(stream_key("😀😀", 7), "bbb-live-7");
        assert_eq!(stream_key("a/b \"c\" & 'd'\n", 1), "bbb-ab-c-d-1");
        // Deterministic, and distinct for two lives of the same meeting name.
        assert_eq!(stream_key("Amphi A", 1), stream_key("Amphi A", 1));
        assert_ne!(stream_key("Amphi A", 1), stream_key("Amphi A", 2));
    }

    #[test]
    fn long_names_make_short_keys() {
        let long = "Introduction à la programmation fonctionnelle et aux types, L1 ".repeat(4);
        let key = stream_key(&long, 123);
        assert_eq!(key, "bbb-introduction-a-la-programmation-123");
        let k210 = stream_key(&"x".repeat(210), 5);
        assert_eq!(k210, format!("bbb-{}-5", "x".repeat(40)));
        // A boundary far back is not used: hard cut.
        let k = stream_key(&format!("ab {}", "y".repeat(100)), 5);
        assert_eq!(k, format!("bbb-ab-{}-5", "y".repeat(37)));
        // The cut never leaves a trailing separator.
        let k = stream_key(&format!("{} b", "z".repeat(39)), 5);
        assert_eq!(k, format!("bbb-{}-5", "z".repeat(39)));
    }

    #[test]
    fn broadcaster_names() {
        assert_eq!(
            broadcaster_name("Cours d'amphi", 42, false),
            "[BBB] Cours d'amphi"
        );
        assert_eq!(
            broadcaster_name("Cours d'amphi", 42, true),
            "[BBB] Cours d'amphi (42)"
        );
        assert_eq!(
            broadcaster_slug("[BBB] Cours d'amphi (42)"),
            "bbb-cours-damphi-42"
        );
        assert_eq!(broadcaster_name("  a \t b  ", 1, false), "[BBB] a b");
        assert_eq!(
            broadcaster_name("line\nbreak\0nul", 1, false),
            "[BBB] line break nul"
        );
        assert_eq!(broadcaster_name("", 3, false), "[BBB] (3)");
        assert_eq!(broadcaster_name("😀", 3, false), "[BBB] 😀 (3)");
    }

    #[test]
    fn trailing_separators_are_removed() {
        assert_eq!(broadcaster_name("Test_ ", 1, false), "[BBB] Test");
        assert_eq!(broadcaster_name("Cours -", 1, false), "[BBB] Cours");
        assert_eq!(
            broadcaster_name("Cours - 会议", 1, false),
            "[BBB] Cours 会议"
        );
        assert_eq!(broadcaster_name("TD_ !", 1, false), "[BBB] TD !");
        // Full-width hyphen: NFKD makes it a '-'.
        assert_eq!(broadcaster_name("Cours －", 1, false), "[BBB] Cours");
        assert_eq!(broadcaster_name("a-b_c", 1, false), "[BBB] a-b_c");
        assert_eq!(broadcaster_name("___", 1, false), "[BBB] (1)");
    }

    #[test]
    fn non_latin_names_get_the_live_id() {
        let a = broadcaster_name("会议", 1, false);
        let b = broadcaster_name("讲座", 2, false);
        assert_eq!(a, "[BBB] 会议 (1)");
        assert_eq!(b, "[BBB] 讲座 (2)");
        assert_ne!(broadcaster_slug(&a), broadcaster_slug(&b));
        assert_eq!(broadcaster_slug(&a), "bbb-1");
    }

    #[test]
    fn long_names_are_cut_to_pod_limits() {
        let long = "é".repeat(210);
        let name = broadcaster_name(&long, 9, false);
        assert_eq!(name.chars().count(), 200);
        assert_eq!(name, format!("[BBB] {}", "é".repeat(194)));
        let name = broadcaster_name(&long, 99, true);
        assert_eq!(name, format!("[BBB] {} (99)", "é".repeat(189)));
        assert_eq!(name.chars().count(), 200);
    }

    #[test]
    fn ligatures_keep_the_slug_short() {
        // 200 × ﬃ: 206 characters and a 604-character slug before cutting.
        let name = broadcaster_name(&"ﬃ".repeat(200), 5, false);
        let slug = broadcaster_slug(&name);
        assert!(slug.len() <= BROADCASTER_SLUG_MAX, "{}", slug.len());
        assert!(slug.len() + TRANSCRIPT_SUFFIX.len() <= FILE_NAME_MAX);
        assert_eq!(name, format!("[BBB] {}", "ﬃ".repeat(65)));
        assert_eq!(slug.len(), 4 + 3 * 65);
    }

    #[test]
    fn cutting_keeps_the_rules() {
        // The cut lands after a '-': it is removed, not left dangling.
        let name = broadcaster_name(
            &format!("{} - {}", "a".repeat(192), "b".repeat(20)),
            1,
            false,
        );
        assert_eq!(name, format!("[BBB] {}", "a".repeat(192)));
        // The cut removes the only Latin part: the live id comes back.
        let name = broadcaster_name(&format!("{}{}", "会".repeat(194), "abc"), 4, false);
        assert!(name.ends_with(" (4)"), "{name}");
        assert!(name.chars().count() <= BROADCASTER_NAME_MAX);
    }

    fn arb_name() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[\\PC\n\t\0]{0,300}",
            "[a-z会ﬃ㏇ -_]{0,400}",
        ]
    }

    proptest! {
        #[test]
        fn stream_keys_are_url_safe(name in arb_name(), live in any::<u64>()) {
            let key = stream_key(&name, live);
            prop_assert!(!key.is_empty() && key.chars().all(is_key_char), "{key}");
            prop_assert!(key.len() <= 4 + STREAM_KEY_SLUG_MAX + 1 + 20);
            let suffix = format!("-{live}");
            prop_assert!(key.ends_with(&suffix), "{} does not end with {}", key, suffix);
            prop_assert_eq!(&key, &stream_key(&name, live));
        }

        #[test]
        fn keys_of_two_lives_differ(name in arb_name(), a in any::<u64>(), b in any::<u64>()) {
            prop_assume!(a != b);
            prop_assert_ne!(stream_key(&name, a), stream_key(&name, b));
        }

        #[test]
        fn broadcaster_names_fit_pod(name in arb_name(), live in any::<u64>(), distinct in any::<bool>()) {
            let b = broadcaster_name(&name, live, distinct);
            let slug = broadcaster_slug(&b);
            prop_assert!(b.chars().count() <= BROADCASTER_NAME_MAX, "{b}");
            prop_assert!(!slug.is_empty() && slug.len() <= BROADCASTER_SLUG_MAX, "{slug}");
            prop_assert!(slug.len() + TRANSCRIPT_SUFFIX.len() <= FILE_NAME_MAX);
            prop_assert!(slug != "bbb", "bare slug for {b:?}");
            prop_assert!(!b.chars().any(char::is_control));
            prop_assert!(!slug.ends_with(['-', '_']));
            prop_assert!(b.starts_with(PREFIX));
            prop_assert_eq!(&b, &broadcaster_name(&name, live, distinct));
        }

        #[test]
        fn distinct_names_of_two_lives_differ(name in arb_name(), a in any::<u64>(), c in any::<u64>()) {
            prop_assume!(a != c);
            prop_assert_ne!(
                broadcaster_slug(&broadcaster_name(&name, a, true)),
                broadcaster_slug(&broadcaster_name(&name, c, true))
            );
        }
    }
}
