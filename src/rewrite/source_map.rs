//! Source maps: the top-level `file` field (the rest is left byte-identical).

use super::*;

/// The value of the top-level `"file"` member. The rest of the document
/// is only skipped over, so it comes back byte-identical.
pub(super) fn file_spans(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = skip_spaces(b, document_start(b));
    if b.get(i) != Some(&b'{') {
        return spans;
    }
    i += 1;
    loop {
        i = skip_spaces(b, i);
        if b.get(i) != Some(&b'"') {
            return spans;
        }
        let key = quoted(b, i);
        if !key.closed {
            return spans;
        }
        i = skip_spaces(b, key.next);
        if b.get(i) != Some(&b':') {
            return spans;
        }
        i = skip_spaces(b, i + 1);
        if b.get(key.content) == Some(b"file") && b.get(i) == Some(&b'"') {
            let value = quoted(b, i);
            if !value.closed {
                return spans;
            }
            spans.push(value.content);
            i = value.next;
        } else {
            match value_end(b, i) {
                Some(end) => i = end,
                None => return spans,
            }
        }
        i = skip_spaces(b, i);
        if b.get(i) != Some(&b',') {
            return spans;
        }
        i += 1;
    }
}

/// Past a UTF-8 byte order mark and the `)]}'` line the source map spec
/// allows in front of the JSON to defeat script inclusion.
fn document_start(b: &[u8]) -> usize {
    let i = if b.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
    if b.get(i..).is_some_and(|s| s.starts_with(b")]}'")) {
        return find_byte(b, i, b'\n').map_or(b.len(), |p| p + 1);
    }
    i
}

fn value_end(b: &[u8], start: usize) -> Option<usize> {
    match *b.get(start)? {
        b'"' => closed_end(b, start),
        b'{' | b'[' => {
            const STOPS: [bool; 256] = stops(b"\"{[]}");
            let mut depth = 0usize;
            let mut i = start;
            loop {
                i = next_stop(b, i, &STOPS);
                match *b.get(i)? {
                    b'"' => {
                        i = closed_end(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let rest = b.get(start..)?;
            let len = rest
                .iter()
                .position(|&c| matches!(c, b',' | b'}' | b']') || is_space(c))
                .unwrap_or(rest.len());
            (len > 0).then_some(start + len)
        }
    }
}

fn closed_end(b: &[u8], start: usize) -> Option<usize> {
    let s = quoted(b, start);
    s.closed.then_some(s.next)
}
