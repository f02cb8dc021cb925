//! Web app manifests: every `src` member (icons, screenshots, shortcuts).

use super::*;

/// The value of every `"src"` member, at any depth: the icons,
/// screenshots and shortcut icons of a web app manifest. A value with
/// an escape is left alone (its text is not the URL as written).
pub(super) fn src_spans(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut src_key = false;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'"' {
            let s = quoted(b, i);
            if !s.closed {
                break;
            }
            let after = skip_spaces(b, s.next);
            let content = b.get(s.content.clone()).unwrap_or_default();
            if b.get(after) == Some(&b':') {
                src_key = content == b"src";
                i = after + 1;
                continue;
            }
            if src_key && !content.contains(&b'\\') {
                spans.push(s.content);
            }
            src_key = false;
            i = s.next;
        } else {
            src_key &= is_space(c);
            i += 1;
        }
    }
    spans
}
