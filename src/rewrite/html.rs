//! HTML: URL attributes (`src`, `href`, `srcset`, ...) and inline styles.

use super::*;

/// Elements whose content is text, not markup: nothing in them is a tag.
const RAW_TEXT: &[&[u8]] = &[b"script", b"style", b"textarea", b"title", b"xmp"];

/// The URL spans of the attributes a browser loads or follows (`src`,
/// `href`, `poster`, `data`, `xlink:href`, each candidate of `srcset`
/// and `imagesrcset`), and of `url()` in `style` attributes and
/// `<style>` elements. Comments and raw-text elements (`<script>`,
/// `<textarea>`, ...) are skipped whole. A document with a `<base href>`
/// resolves its URLs elsewhere than its own path: it yields nothing.
pub(super) fn spans(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while let Some(at) = b.get(i..).and_then(|s| s.iter().position(|&c| c == b'<')) {
        let open = i + at;
        i = if b.get(open + 1..open + 4) == Some(b"!--") {
            find(b, open + 4, b"-->").map_or(b.len(), |p| p + 3)
        } else if b.get(open + 1).is_some_and(u8::is_ascii_alphabetic) {
            match start_tag(b, open + 1, &mut spans) {
                Tag::Base => return Vec::new(),
                Tag::Other(next) => next,
                Tag::RawText(name, next) => raw_text(b, name, next, &mut spans),
            }
        } else if matches!(b.get(open + 1), Some(b'/' | b'!' | b'?')) {
            find(b, open + 1, b">").map_or(b.len(), |p| p + 1)
        } else {
            open + 1
        };
    }
    spans
}

enum Tag<'a> {
    /// A `<base href>`.
    Base,
    /// Just past the tag.
    Other(usize),
    /// A raw-text element's name, and just past its start tag.
    RawText(&'a [u8], usize),
}

fn is_name_end(c: u8) -> bool {
    is_space(c) || c == b'/' || c == b'>'
}

/// The start tag whose name begins at `start`: its URL attributes go to
/// `spans`.
fn start_tag<'a>(b: &'a [u8], start: usize, spans: &mut Vec<Range<usize>>) -> Tag<'a> {
    let mut i = start;
    while b.get(i).is_some_and(|&c| !is_name_end(c)) {
        i += 1;
    }
    let name = &b[start..i];
    let mut found = Vec::new();
    loop {
        while b.get(i).is_some_and(|&c| is_space(c) || c == b'/') {
            i += 1;
        }
        match b.get(i) {
            None => return Tag::Other(b.len()),
            Some(b'>') => {
                i += 1;
                break;
            }
            Some(_) => {}
        }
        let attr_start = i;
        while b.get(i).is_some_and(|&c| !is_name_end(c) && c != b'=') {
            i += 1;
        }
        let attr = &b[attr_start..i];
        let after_name = skip_spaces(b, i);
        if b.get(after_name) != Some(&b'=') {
            i = after_name;
            continue;
        }
        let v = skip_spaces(b, after_name + 1);
        let (value, next) = match b.get(v) {
            Some(&q @ (b'"' | b'\'')) => {
                match b.get(v + 1..).and_then(|s| s.iter().position(|&c| c == q)) {
                    Some(len) => (v + 1..v + 1 + len, v + 2 + len),
                    // An unclosed quote swallows the rest of the document.
                    None => return Tag::Other(b.len()),
                }
            }
            _ => {
                let mut e = v;
                while b.get(e).is_some_and(|&c| !is_space(c) && c != b'>') {
                    e += 1;
                }
                (v..e, e)
            }
        };
        found.push((attr, value));
        i = next;
    }
    if name.eq_ignore_ascii_case(b"base")
        && found.iter().any(|(a, _)| a.eq_ignore_ascii_case(b"href"))
    {
        return Tag::Base;
    }
    for (attr, value) in found {
        let attr = attr.to_ascii_lowercase();
        match attr.as_slice() {
            b"src" | b"href" | b"poster" | b"data" | b"xlink:href" => {
                spans.extend(url_value(b, value));
            }
            b"srcset" | b"imagesrcset" => srcset(b, value, spans),
            // Character references would hide the URL from the CSS
            // scanner; such a style is left as written.
            b"style" if !b[value.clone()].contains(&b'&') => {
                let offset = value.start;
                let css = std::str::from_utf8(&b[value]).unwrap_or_default();
                spans.extend(
                    css::spans(css)
                        .into_iter()
                        .map(|r| r.start + offset..r.end + offset),
                );
            }
            _ => {}
        }
    }
    match RAW_TEXT.iter().find(|raw| name.eq_ignore_ascii_case(raw)) {
        Some(raw) => Tag::RawText(raw, i),
        None => Tag::Other(i),
    }
}

/// An attribute's URL without the whitespace browsers strip around it.
/// A character reference in the path (`a&amp;b.png`) is left alone:
/// the path as written is not the file name.
fn url_value(b: &[u8], value: Range<usize>) -> Option<Range<usize>> {
    let r = trimmed(b, value);
    let path_end = b[r.clone()]
        .iter()
        .position(|&c| c == b'?' || c == b'#')
        .map_or(r.end, |p| r.start + p);
    (!r.is_empty() && !b[r.start..path_end].contains(&b'&')).then_some(r)
}

fn trimmed(b: &[u8], r: Range<usize>) -> Range<usize> {
    let mut r = r;
    while r.start < r.end && is_space(b[r.start]) {
        r.start += 1;
    }
    while r.end > r.start && is_space(b[r.end - 1]) {
        r.end -= 1;
    }
    r
}

/// The URLs of `srcset="a.png 1x, b.png 2x"`, split as the HTML
/// standard splits them: a URL runs to whitespace, and a comma ends a
/// candidate only outside its descriptors' parentheses.
fn srcset(b: &[u8], value: Range<usize>, spans: &mut Vec<Range<usize>>) {
    let mut i = value.start;
    while i < value.end {
        while i < value.end && (is_space(b[i]) || b[i] == b',') {
            i += 1;
        }
        let start = i;
        while i < value.end && !is_space(b[i]) {
            i += 1;
        }
        let mut end = i;
        let bare = end > start && b[end - 1] == b',';
        while end > start && b[end - 1] == b',' {
            end -= 1;
        }
        spans.extend(url_value(b, start..end));
        if bare {
            continue;
        }
        let mut depth = 0usize;
        while i < value.end {
            match b[i] {
                b'(' => depth += 1,
                b')' => depth = depth.saturating_sub(1),
                b',' if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
    }
}

/// Skips a raw-text element's content to its end tag; a `<style>`'s CSS
/// is scanned on the way.
fn raw_text(b: &[u8], name: &[u8], start: usize, spans: &mut Vec<Range<usize>>) -> usize {
    let mut i = start;
    let end = loop {
        match find(b, i, b"</") {
            None => break b.len(),
            Some(p)
                if starts_with_ignore_case(b, p + 2, name)
                    && b.get(p + 2 + name.len()).is_none_or(|&c| is_name_end(c)) =>
            {
                break p;
            }
            Some(p) => i = p + 2,
        }
    };
    if name == b"style" {
        let css = std::str::from_utf8(&b[start..end]).unwrap_or_default();
        spans.extend(
            css::spans(css)
                .into_iter()
                .map(|r| r.start + start..r.end + start),
        );
    }
    end
}
