//! Finding and rewriting the references one published file makes to another:
//! CSS `url()` and `@import`, `sourceMappingURL` comments in CSS and JS, a
//! source map's `file` field, the URL attributes of HTML pages (`src`,
//! `href`, `srcset`, inline styles), the icons of a web app manifest and,
//! when asked, relative JS module imports.
//!
//! These are scanners, not parsers. Each knows just enough of its syntax
//! (comments, strings, template literals) to tell a reference from text that
//! only looks like one. None of them can fail: a file they cannot make sense
//! of is still published, with whatever they did not recognise left as written.

use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Css,
    Js,
    SourceMap,
    Html,
    WebManifest,
    Other,
}

impl Syntax {
    /// By the file name's extension, in any case.
    pub fn for_path(logical: &str) -> Syntax {
        let Some(ext) = crate::mime::extension(logical) else {
            return Syntax::Other;
        };
        match ext.as_str() {
            "css" => Syntax::Css,
            "js" | "mjs" | "cjs" => Syntax::Js,
            "map" => Syntax::SourceMap,
            "html" | "htm" => Syntax::Html,
            "webmanifest" => Syntax::WebManifest,
            _ => Syntax::Other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Byte range in the text of the URL as written (no quotes), to be replaced.
    pub range: Range<usize>,
    /// The URL as written.
    pub url: String,
    /// The resolved logical path, percent-decoded, e.g. `img/x.png`.
    pub target: String,
    /// Query and fragment (`?#iefix`), kept verbatim.
    pub suffix: String,
}

/// All rewritable references in `text`, the content of the file at logical
/// path `referrer`, in text order. URLs with a scheme, protocol-relative and
/// fragment-only URLs, and paths that leave the root are not returned;
/// whether a target exists is the caller's question.
pub fn find_references(
    syntax: Syntax,
    referrer: &str,
    text: &str,
    js_imports: bool,
) -> Vec<Reference> {
    spans(syntax, text, js_imports)
        .into_iter()
        .filter_map(|span| reference(text, span, referrer))
        .collect()
}

/// [`find_references`], and the URLs, as written, of the relative paths
/// that climb above the root: they name files outside the tree, which
/// cannot be collected.
pub fn find_references_and_outside(
    syntax: Syntax,
    referrer: &str,
    text: &str,
    js_imports: bool,
) -> (Vec<Reference>, Vec<String>) {
    let mut found = Vec::new();
    let mut outside = Vec::new();
    for span in spans(syntax, text, js_imports) {
        let Some(written) = text.get(span.clone()) else {
            continue;
        };
        match url::resolve_or_why(referrer, written) {
            Ok((target, suffix)) => found.push(Reference {
                range: span,
                url: written.to_string(),
                target,
                suffix: suffix.to_string(),
            }),
            Err(url::Unresolved::AboveRoot) => outside.push(written.to_string()),
            Err(url::Unresolved::NotAFile) => {}
        }
    }
    (found, outside)
}

fn spans(syntax: Syntax, text: &str, js_imports: bool) -> Vec<Range<usize>> {
    match syntax {
        Syntax::Css => css::spans(text),
        Syntax::Js => {
            let mut spans = js::source_map_comment_spans(text);
            if js_imports {
                spans.extend(js::import_spans(text));
                spans.sort_by_key(|s| s.start);
            }
            spans
        }
        Syntax::SourceMap => source_map::file_spans(text),
        Syntax::Html => html::spans(text),
        Syntax::WebManifest => web_manifest::src_spans(text),
        Syntax::Other => Vec::new(),
    }
}

/// The text of a file of this syntax, as the scanners read it (UTF-8, or
/// a UTF-16 stylesheet); None for bytes that are no such text.
pub fn text_of(syntax: Syntax, bytes: Vec<u8>) -> Option<String> {
    encoding::decode(syntax, bytes).ok().map(|(text, _)| text)
}

/// The logical path a URL written in the file at `referrer` points to, for
/// URLs `find_references` returns.
pub fn target_of(referrer: &str, url: &str) -> Option<String> {
    url::resolve(referrer, url).map(|(target, _)| target)
}

/// Whether a URL written in the file at `referrer` is a relative path that
/// climbs above the root (`../../outside.png` in `css/site.css`).
pub fn leaves_root(referrer: &str, url: &str) -> bool {
    url::resolve_or_why(referrer, url) == Err(url::Unresolved::AboveRoot)
}

/// Replaces each reference for which `new_name(target)` returns the file name
/// of the new key (`logo.3f2a9c1b7d4e.png`); the rest of the URL (directories,
/// `./`, leading `/`, query, fragment) and all other text stay as written.
/// References that no longer match `text`, or overlap an earlier one, are
/// skipped rather than trusted.
pub fn rewrite(
    text: &str,
    refs: &[Reference],
    new_name: impl Fn(&str) -> Option<String>,
) -> String {
    let mut ordered: Vec<&Reference> = refs.iter().collect();
    ordered.sort_by_key(|r| (r.range.start, r.range.end));
    let mut out = String::with_capacity(text.len() + 16 * refs.len());
    let mut copied = 0;
    for r in ordered {
        if r.range.start < copied {
            continue;
        }
        let Some(new_url) = rewritten_url(text, r, &new_name) else {
            continue;
        };
        let Some(between) = text.get(copied..r.range.start) else {
            continue;
        };
        out.push_str(between);
        out.push_str(&new_url);
        copied = r.range.end;
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    out
}

fn rewritten_url(
    text: &str,
    r: &Reference,
    new_name: &impl Fn(&str) -> Option<String>,
) -> Option<String> {
    if text.get(r.range.clone())? != r.url {
        return None;
    }
    let name = new_name(&r.target)?;
    // A name with a slash would silently move the reference to another directory.
    if name.is_empty() || name.contains('/') {
        return None;
    }
    url::with_file_name(&r.url, &r.suffix, &name)
}

fn reference(text: &str, span: Range<usize>, referrer: &str) -> Option<Reference> {
    let written = text.get(span.clone())?;
    let (target, suffix) = url::resolve(referrer, written)?;
    Some(Reference {
        range: span,
        url: written.to_string(),
        target,
        suffix: suffix.to_string(),
    })
}

// ---------------------------------------------------------------------------
// Lexical helpers shared by the scanners. They work on bytes: every delimiter
// they look for is ASCII, and UTF-8 never uses an ASCII byte inside a
// multi-byte character, so every range they return lies on char boundaries.

/// A quoted string as the scanners see it.
struct Quoted {
    /// Between the quotes.
    content: Range<usize>,
    /// Just past the closing quote, or where scanning stopped.
    next: usize,
    /// Whether the closing quote was there. A string cut short by a newline
    /// or the end of the text is no reference.
    closed: bool,
}

/// The string whose opening quote is at `start`. A raw newline ends a string
/// in CSS, JS and JSON alike, which also keeps a stray quote from hiding the
/// rest of the file.
fn quoted(b: &[u8], start: usize) -> Quoted {
    let quote = b.get(start).copied().unwrap_or(b'"');
    let mut i = start + 1;
    while let Some(rest) = b.get(i..) {
        // Straight to the next byte that ends or escapes the string: source
        // maps hold strings of megabytes.
        let stop = memchr::memchr3(quote, b'\\', b'\n', rest).unwrap_or(rest.len());
        i += memchr::memchr2(b'\r', 0x0c, &rest[..stop]).unwrap_or(stop);
        match b.get(i) {
            None => break,
            Some(b'\\') if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') => i += 3,
            Some(b'\\') => i += 2,
            Some(b'\n' | b'\r' | 0x0c) => {
                return Quoted {
                    content: start + 1..i,
                    next: i,
                    closed: false,
                };
            }
            Some(_) => {
                return Quoted {
                    content: start + 1..i,
                    next: i + 1,
                    closed: true,
                };
            }
        }
    }
    let end = b.len().max(start + 1);
    Quoted {
        content: start + 1..end,
        next: end,
        closed: false,
    }
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0c)
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|&c| is_space(c)) {
        i += 1;
    }
    i
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(b.get(from..)?, needle).map(|p| from + p)
}

fn find_byte(b: &[u8], from: usize, byte: u8) -> Option<usize> {
    memchr::memchr(byte, b.get(from..)?).map(|p| from + p)
}

/// Where the next of three bytes is, remembered until the scan passes it,
/// so each byte of the text is searched once however often it is asked.
struct Next {
    bytes: [u8; 3],
    /// usize::MAX: none left.
    at: usize,
    searched: bool,
}

impl Next {
    fn new(a: u8, b: u8, c: u8) -> Next {
        Next {
            bytes: [a, b, c],
            at: 0,
            searched: false,
        }
    }

    /// The first position at or after `from` holding one of the bytes, or
    /// usize::MAX.
    fn from(&mut self, b: &[u8], from: usize) -> usize {
        if !self.searched || self.at < from {
            let [x, y, z] = self.bytes;
            self.at = b
                .get(from..)
                .and_then(|rest| memchr::memchr3(x, y, z, rest))
                .map_or(usize::MAX, |p| from + p);
            self.searched = true;
        }
        self.at
    }
}

/// A table of the bytes a scanner stops at; it skips all others.
const fn stops(bytes: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
}

/// The first position from `from` holding a byte of `table`, or the end.
fn next_stop(b: &[u8], from: usize, table: &[bool; 256]) -> usize {
    b.get(from..)
        .and_then(|rest| rest.iter().position(|&c| table[c as usize]))
        .map_or(b.len().max(from), |p| from + p)
}

fn starts_with_ignore_case(b: &[u8], at: usize, word: &[u8]) -> bool {
    b.get(at..at + word.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(word))
}

/// Where the body of the block comment opening at `start` ends, and just
/// past its `*/`; both are the end of the text for an unterminated comment.
fn block_comment(b: &[u8], start: usize) -> (usize, usize) {
    find(b, start + 2, b"*/").map_or((b.len(), b.len()), |p| (p, p + 2))
}

fn block_comment_end(b: &[u8], start: usize) -> usize {
    block_comment(b, start).1
}

/// The URL of a `# sourceMappingURL=URL` comment body lying in `from..to`
/// (after the `/*` or `//`). `@` is the form older tools wrote.
fn source_mapping_url(b: &[u8], from: usize, to: usize) -> Option<Range<usize>> {
    const KEY: &[u8] = b"sourceMappingURL=";
    let body = b.get(from..to)?;
    let (&marker, rest) = body.split_first()?;
    if marker != b'#' && marker != b'@' {
        return None;
    }
    let blank = rest
        .iter()
        .take_while(|&&c| c == b' ' || c == b'\t')
        .count();
    let value = rest.get(blank..)?.strip_prefix(KEY)?;
    let start = to - value.len();
    let len = value
        .iter()
        .position(|&c| is_space(c))
        .unwrap_or(value.len());
    (len > 0).then_some(start..start + len)
}

mod css;
mod encoding;
pub use encoding::{TextEncoding, decode, encode};

mod js;

mod source_map;

mod web_manifest;

mod html;
pub use html::add_integrity;

mod url;

#[cfg(test)]
mod tests;
