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
    let based = walk(b, |event| match event {
        Event::Tag(tag) => url_spans(b, tag, &mut spans),
        Event::RawText(name, content) => {
            if name == b"style" {
                let css = std::str::from_utf8(&b[content.clone()]).unwrap_or_default();
                spans.extend(
                    css::spans(css)
                        .into_iter()
                        .map(|r| r.start + content.start..r.end + content.start),
                );
            }
        }
    });
    if based { Vec::new() } else { spans }
}

/// `html` with `integrity` and `crossorigin="anonymous"` added to each
/// `<script src>`, `<link rel="stylesheet">` and `<link rel="modulepreload">`
/// whose URL, resolved from `referrer` (the page's path), is a path
/// `integrity_of` knows. The attributes go at the end of the tag, before
/// its `>` or `/>`; nothing else changes. A tag that already has an
/// `integrity` attribute is left as written (the author chose it), and a
/// `crossorigin` already there is kept (`use-credentials` is a choice too).
/// A page with a `<base href>` is returned as it is, as [`spans`] finds no
/// URL in it.
pub fn add_integrity(
    html: &[u8],
    referrer: &str,
    integrity_of: impl Fn(&str) -> Option<String>,
) -> Vec<u8> {
    let mut inserts: Vec<(usize, String)> = Vec::new();
    let based = walk(html, |event| {
        if let Event::Tag(tag) = event
            && let Some(insert) = integrity_insert(html, tag, referrer, &integrity_of)
        {
            inserts.push(insert);
        }
    });
    if based || inserts.is_empty() {
        return html.to_vec();
    }
    let extra: usize = inserts.iter().map(|(_, s)| s.len()).sum();
    let mut out = Vec::with_capacity(html.len() + extra);
    let mut copied = 0;
    for (at, text) in inserts {
        out.extend_from_slice(&html[copied..at]);
        out.extend_from_slice(text.as_bytes());
        copied = at;
    }
    out.extend_from_slice(&html[copied..]);
    out
}

/// Where to add what to `tag` for [`add_integrity`], if anything.
fn integrity_insert(
    b: &[u8],
    tag: &StartTag,
    referrer: &str,
    integrity_of: &impl Fn(&str) -> Option<String>,
) -> Option<(usize, String)> {
    let end = tag.end?;
    let attr = |name: &[u8]| {
        tag.attrs
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let has = |name: &[u8]| tag.names.iter().any(|a| a.eq_ignore_ascii_case(name));
    let url = if tag.name.eq_ignore_ascii_case(b"script") {
        attr(b"src")?
    } else if tag.name.eq_ignore_ascii_case(b"link") {
        let rel = attr(b"rel")?;
        let loads = b[rel].split(|&c| is_space(c)).any(|token| {
            token.eq_ignore_ascii_case(b"stylesheet")
                || token.eq_ignore_ascii_case(b"modulepreload")
        });
        if !loads {
            return None;
        }
        attr(b"href")?
    } else {
        return None;
    };
    if has(b"integrity") {
        return None;
    }
    let url = std::str::from_utf8(&b[url_value(b, url)?]).ok()?;
    let integrity = integrity_of(&target_of(referrer, url)?)?;
    // Before the `>`, or before a `/>` that is not the end of an unquoted
    // value (`<link href=a.css/>` ends in its URL).
    let gt = end - 1;
    let at = if gt > tag.values_end && b[gt - 1] == b'/' {
        gt - 1
    } else {
        gt
    };
    let crossorigin = if has(b"crossorigin") {
        ""
    } else {
        " crossorigin=\"anonymous\""
    };
    let text = format!("integrity=\"{integrity}\"{crossorigin}");
    // `<link href="a.css" />` keeps its space before the slash.
    Some(if at < gt && is_space(b[at - 1]) {
        (at, format!("{text} "))
    } else {
        (at, format!(" {text}"))
    })
}

/// What [`walk`] meets in a document.
enum Event<'a, 'b> {
    Tag(&'b StartTag<'a>),
    /// A raw-text element's name and content.
    RawText(&'a [u8], Range<usize>),
}

/// Calls `on` for each start tag and raw-text content in `b`, skipping
/// comments and end tags. Returns true, having stopped, at a `<base href>`.
fn walk<'a>(b: &'a [u8], mut on: impl FnMut(Event<'a, '_>)) -> bool {
    let mut i = 0;
    while let Some(at) = b.get(i..).and_then(|s| s.iter().position(|&c| c == b'<')) {
        let open = i + at;
        i = if b.get(open + 1..open + 4) == Some(b"!--") {
            find(b, open + 4, b"-->").map_or(b.len(), |p| p + 3)
        } else if b.get(open + 1).is_some_and(u8::is_ascii_alphabetic) {
            let tag = start_tag(b, open + 1);
            let Some(next) = tag.end else {
                // An unterminated tag swallows the rest of the document.
                break;
            };
            if tag.name.eq_ignore_ascii_case(b"base")
                && tag
                    .attrs
                    .iter()
                    .any(|(a, _)| a.eq_ignore_ascii_case(b"href"))
            {
                return true;
            }
            on(Event::Tag(&tag));
            match RAW_TEXT
                .iter()
                .find(|raw| tag.name.eq_ignore_ascii_case(raw))
            {
                Some(raw) => {
                    let end = raw_text_end(b, raw, next);
                    on(Event::RawText(raw, next..end));
                    end
                }
                None => next,
            }
        } else if matches!(b.get(open + 1), Some(b'/' | b'!' | b'?')) {
            find(b, open + 1, b">").map_or(b.len(), |p| p + 1)
        } else {
            open + 1
        };
    }
    false
}

fn is_name_end(c: u8) -> bool {
    is_space(c) || c == b'/' || c == b'>'
}

/// A start tag as read.
struct StartTag<'a> {
    name: &'a [u8],
    /// The attributes with a value: name and value (without quotes).
    attrs: Vec<(&'a [u8], Range<usize>)>,
    /// Every attribute's name, with a value or without.
    names: Vec<&'a [u8]>,
    /// Where the last attribute value ends (its closing quote included).
    values_end: usize,
    /// Just past the `>`; None when the tag runs to the end of the text.
    end: Option<usize>,
}

/// The start tag whose name begins at `start`.
fn start_tag(b: &[u8], start: usize) -> StartTag<'_> {
    let mut i = start;
    while b.get(i).is_some_and(|&c| !is_name_end(c)) {
        i += 1;
    }
    let mut tag = StartTag {
        name: &b[start..i],
        attrs: Vec::new(),
        names: Vec::new(),
        values_end: i,
        end: None,
    };
    loop {
        while b.get(i).is_some_and(|&c| is_space(c) || c == b'/') {
            i += 1;
        }
        match b.get(i) {
            None => return tag,
            Some(b'>') => {
                tag.end = Some(i + 1);
                return tag;
            }
            Some(_) => {}
        }
        let attr_start = i;
        while b.get(i).is_some_and(|&c| !is_name_end(c) && c != b'=') {
            i += 1;
        }
        let attr = &b[attr_start..i];
        tag.names.push(attr);
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
                    None => return tag,
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
        tag.attrs.push((attr, value));
        tag.values_end = next;
        i = next;
    }
}

/// The URL attributes of `tag` go to `spans`.
fn url_spans(b: &[u8], tag: &StartTag, spans: &mut Vec<Range<usize>>) {
    for (attr, value) in &tag.attrs {
        let attr = attr.to_ascii_lowercase();
        let value = value.clone();
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

/// Where a raw-text element whose content starts at `start` ends: at its
/// end tag, or the end of the text.
fn raw_text_end(b: &[u8], name: &[u8], start: usize) -> usize {
    let mut i = start;
    loop {
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
    }
}
