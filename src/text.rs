//! Small text helpers that several rooms need, one of each: a text on one line, its
//! end or its beginning within a size, and an error with its causes. Nothing of the
//! crate is imported here: every floor may use it.

/// The non-blank lines of `s`, trimmed, joined with ` | `: a program's stderr or an
/// error's text as one log line, one line of `check`, one line of a mail.
pub fn one_line(s: &str) -> String {
    if !s.contains('\n') {
        return s.to_owned();
    }
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The last `max` bytes of `s` at most, starting on a character boundary.
pub fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// `s` if it has at most `max_chars` characters, else its first `max_chars - 1`
/// followed by `…`.
pub fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max_chars.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// An error and its causes, `outer: inner: innermost`, each text once: a cause whose
/// text is already said is skipped (hyper, reqwest and lettre repeat their source in
/// their own message: `os error 13` twice), and so is a blank one.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string().trim().to_owned();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        let cause_text = cause_text.trim();
        if !cause_text.is_empty() && !text.contains(cause_text) {
            text.push_str(": ");
            text.push_str(cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[test]
    fn one_line_joins_the_non_blank_lines() {
        assert_eq!(
            one_line("docker: unknown command\n\nRun 'docker --help'\n"),
            "docker: unknown command | Run 'docker --help'"
        );
        assert_eq!(one_line("already one line"), "already one line");
        assert_eq!(one_line("a\r\nb"), "a | b");
    }

    #[test]
    fn tail_respects_char_boundaries() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("ééé", 3), "é");
    }

    #[test]
    fn truncate_counts_characters_and_marks_the_cut() {
        assert_eq!(truncate("réunion", 7), "réunion");
        assert_eq!(truncate("réunion", 4), "réu…");
        assert_eq!(truncate("", 0), "");
    }

    #[test]
    fn an_error_chain_says_each_text_once() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "spawning sendmail: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::from_raw_os_error(13));
        let text = error_chain(&e);
        assert_eq!(text.matches("os error 13").count(), 1, "{text}");
        assert!(text.starts_with("spawning sendmail"), "{text}");

        let wrapped = anyhow::Error::new(std::io::Error::from_raw_os_error(2)).context("reading x");
        assert_eq!(
            error_chain(wrapped.as_ref()),
            "reading x: No such file or directory (os error 2)"
        );
    }
}
