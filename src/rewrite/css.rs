//! CSS: `url()`, `@import` and the `sourceMappingURL` comment.

use super::*;

/// The URL spans of `url()`, `@import "..."` and the `sourceMappingURL`
/// comment. Other comments and strings are skipped whole, so neither a
/// commented-out rule nor `content: "url(x)"` counts.
pub(super) fn spans(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    // `url(` is found by its `(`: far fewer stops than at every `u`.
    let mut starts = Next::new(b'/', b'"', b'\'');
    let mut others = Next::new(b'\\', b'@', b'(');
    let mut i = 0;
    loop {
        i = starts.from(b, i).min(others.from(b, i));
        let Some(&c) = b.get(i) else { break };
        i = match c {
            b'/' if b.get(i + 1) == Some(&b'*') => comment(b, i, &mut spans),
            b'"' | b'\'' => quoted(b, i).next,
            b'\\' => i + 2,
            b'@' if is_import_rule(b, i) => import_rule(b, i + "@import".len(), &mut spans),
            b'(' if i >= 3 && is_url_function(b, i - 3) => url_function(b, i + 1, &mut spans),
            _ => i + 1,
        };
    }
    spans
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c >= 0x80
}

fn is_import_rule(b: &[u8], at: usize) -> bool {
    starts_with_ignore_case(b, at + 1, b"import") && !b.get(at + 7).is_some_and(|&c| is_ident(c))
}

/// `url(` not preceded by a name character: `myurl(` is another function.
fn is_url_function(b: &[u8], at: usize) -> bool {
    let boundary = at == 0 || b.get(at - 1).is_some_and(|&c| !is_ident(c) && c != b'\\');
    boundary && starts_with_ignore_case(b, at, b"url(")
}

fn comment(b: &[u8], start: usize, spans: &mut Vec<Range<usize>>) -> usize {
    let (body_end, next) = block_comment(b, start);
    spans.extend(source_mapping_url(b, start + 2, body_end));
    next
}

/// `@import "x"` and `@import 'x'`; `@import url(x)` is left to the main
/// loop, which finds the `url(` next.
fn import_rule(b: &[u8], after: usize, spans: &mut Vec<Range<usize>>) -> usize {
    let i = skip_spaces(b, after);
    if !matches!(b.get(i), Some(b'"' | b'\'')) {
        return i;
    }
    let s = quoted(b, i);
    if s.closed {
        spans.push(trimmed(b, s.content));
    }
    s.next
}

fn url_function(b: &[u8], after: usize, spans: &mut Vec<Range<usize>>) -> usize {
    let i = skip_spaces(b, after);
    match b.get(i) {
        None => b.len(),
        Some(b'"' | b'\'') => quoted_url(b, i, spans),
        Some(_) => unquoted_url(b, i, spans),
    }
}

fn quoted_url(b: &[u8], start: usize, spans: &mut Vec<Range<usize>>) -> usize {
    let s = quoted(b, start);
    if !s.closed {
        return s.next;
    }
    let close = skip_spaces(b, s.next);
    if b.get(close) != Some(&b')') {
        // `url("a" junk)` is no URL; what follows is tokenised as usual.
        return close;
    }
    spans.push(trimmed(b, s.content));
    close + 1
}

/// An unquoted URL ends at `)`, optionally after whitespace. Whitespace
/// inside it, a quote or a `(` make it a bad URL, which CSS discards up
/// to the next `)`; one that runs to the end of the text is dropped too.
fn unquoted_url(b: &[u8], start: usize, spans: &mut Vec<Range<usize>>) -> usize {
    let mut i = start;
    loop {
        match b.get(i) {
            None => return b.len(),
            Some(b')') => {
                spans.push(start..i);
                return i + 1;
            }
            Some(&c) if is_space(c) => {
                let close = skip_spaces(b, i);
                if b.get(close) != Some(&b')') {
                    return bad_url_end(b, close);
                }
                spans.push(start..i);
                return close + 1;
            }
            Some(b'"' | b'\'' | b'(') => return bad_url_end(b, i),
            Some(b'\\') => i += 2,
            Some(_) => i += 1,
        }
    }
}

fn bad_url_end(b: &[u8], mut i: usize) -> usize {
    loop {
        match b.get(i) {
            None => return b.len(),
            Some(b')') => return i + 1,
            Some(b'\\') => i += 2,
            Some(_) => i += 1,
        }
    }
}

/// Whitespace just inside the quotes is no part of the URL (browsers
/// strip it), and leaving it out of the span keeps it as written.
fn trimmed(b: &[u8], r: Range<usize>) -> Range<usize> {
    let Some(s) = b.get(r.clone()) else {
        return r;
    };
    let lead = s.iter().take_while(|&&c| is_space(c)).count();
    let trail = s
        .get(lead..)
        .map_or(0, |t| t.iter().rev().take_while(|&&c| is_space(c)).count());
    r.start + lead..r.end - trail
}
