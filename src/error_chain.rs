//! Readable error texts for the HTTP clients (`pod`, `bbb`).

/// An error and its causes, `outer: inner: innermost`, skipping a cause its parent
/// already quotes (hyper and reqwest sometimes repeat the inner message).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
