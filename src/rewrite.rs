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
        let name = logical.rsplit('/').next().unwrap_or(logical);
        let Some((_, ext)) = name.rsplit_once('.') else {
            return Syntax::Other;
        };
        match ext.to_ascii_lowercase().as_str() {
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
    let spans = match syntax {
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
    };
    spans
        .into_iter()
        .filter_map(|span| reference(text, span, referrer))
        .collect()
}

/// The logical path a URL written in the file at `referrer` points to, for
/// URLs `find_references` returns.
pub fn target_of(referrer: &str, url: &str) -> Option<String> {
    url::resolve(referrer, url).map(|(target, _)| target)
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

// ---------------------------------------------------------------------------

mod css {
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
        starts_with_ignore_case(b, at + 1, b"import")
            && !b.get(at + 7).is_some_and(|&c| is_ident(c))
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
}

// ---------------------------------------------------------------------------

mod js {
    use super::*;

    /// `//# sourceMappingURL=` and `/*# sourceMappingURL= */` only at the
    /// start of a line: the same text inside a string or after code is not
    /// the file's source map, which is what browsers and bundlers assume.
    pub(super) fn source_map_comment_spans(text: &str) -> Vec<Range<usize>> {
        let b = text.as_bytes();
        let mut spans = Vec::new();
        let mut line_start = 0;
        while line_start <= b.len() {
            let line_end = find_byte(b, line_start, b'\n').unwrap_or(b.len());
            let i = line_start
                + b.get(line_start..line_end).map_or(0, |l| {
                    l.iter().take_while(|&&c| c == b' ' || c == b'\t').count()
                });
            match b.get(i..i + 2) {
                Some(b"//") => spans.extend(source_mapping_url(b, i + 2, line_end)),
                Some(b"/*") => {
                    // Looking no further than the line keeps this linear.
                    let line = b.get(..line_end).unwrap_or_default();
                    let body_end = find(line, i + 2, b"*/").unwrap_or(line_end);
                    spans.extend(source_mapping_url(b, i + 2, body_end));
                }
                _ => {}
            }
            line_start = line_end + 1;
        }
        spans
    }

    /// Specifiers of static `import`/`export ... from` and dynamic `import()`
    /// that start with `./` or `../`. Bare specifiers belong to an import map
    /// or a bundler, not to the published tree.
    pub(super) fn import_spans(text: &str) -> Vec<Range<usize>> {
        let mut lexer = Lexer {
            b: text.as_bytes(),
            i: 0,
            regex_ok: true,
            no_regex_before: 0,
            member: false,
            depth: 0,
            templates: Vec::new(),
            spans: Vec::new(),
        };
        while let Some(&c) = lexer.b.get(lexer.i) {
            lexer.step(c);
        }
        lexer.spans
    }

    /// Words after which a `/` starts a regular expression, not a division.
    const EXPRESSION_KEYWORDS: &[&[u8]] = &[
        b"return",
        b"typeof",
        b"instanceof",
        b"in",
        b"of",
        b"new",
        b"delete",
        b"void",
        b"throw",
        b"case",
        b"do",
        b"else",
        b"yield",
        b"await",
    ];

    /// Just enough of a JS tokenizer to know when `import` is code: it skips
    /// comments, strings, template literals (with nested `${}`) and, by the
    /// usual previous-token guess, regular expressions.
    struct Lexer<'a> {
        b: &'a [u8],
        i: usize,
        /// Whether a `/` here starts a regular expression.
        regex_ok: bool,
        /// End of a line on which a regular expression guess already failed.
        /// Later guesses there would fail the same way, and re-scanning the
        /// line for each would be quadratic on a long minified line.
        no_regex_before: usize,
        /// After `.` or `#` the next word is a member name (`x.import`),
        /// never a keyword.
        member: bool,
        depth: usize,
        /// The brace depth outside each open `${`, innermost last.
        templates: Vec<usize>,
        spans: Vec<Range<usize>>,
    }

    impl Lexer<'_> {
        fn step(&mut self, c: u8) {
            let (b, i) = (self.b, self.i);
            match c {
                c if is_space(c) => self.i += 1,
                b'/' if b.get(i + 1) == Some(&b'/') => self.i = line_end(b, i),
                b'/' if b.get(i + 1) == Some(&b'*') => self.i = block_comment_end(b, i),
                b'/' if self.regex_ok && i >= self.no_regex_before => match regex_end(b, i) {
                    Ok(end) => self.value(end),
                    Err(line_end) => {
                        self.no_regex_before = line_end;
                        self.punct(i + 1);
                    }
                },
                b'"' | b'\'' => self.value(quoted(b, i).next),
                b'`' => self.template(i + 1),
                b'{' => {
                    self.depth += 1;
                    self.punct(i + 1);
                }
                b'}' => self.close_brace(i + 1),
                b')' | b']' => self.value(i + 1),
                // After an operand `++`/`--` is postfix and ends an operand too.
                b'+' | b'-' if b.get(i + 1) == Some(&c) && !self.regex_ok => self.value(i + 2),
                b'.' | b'#' => {
                    self.punct(i + 1);
                    self.member = true;
                }
                c if c.is_ascii_digit() => self.value(word_end(b, i)),
                c if is_ident(c) => self.word(i),
                _ => self.punct(i + 1),
            }
        }

        /// After a token that ends an operand, where `/` divides.
        fn value(&mut self, next: usize) {
            self.i = next;
            self.regex_ok = false;
            self.member = false;
        }

        fn punct(&mut self, next: usize) {
            self.i = next;
            self.regex_ok = true;
            self.member = false;
        }

        fn word(&mut self, start: usize) {
            let end = word_end(self.b, start);
            let word = self.b.get(start..end).unwrap_or_default();
            if !self.member {
                let specifier = match word {
                    b"import" => import_specifier(self.b, end),
                    b"export" => export_specifier(self.b, end),
                    _ => None,
                };
                if let Some(s) = specifier {
                    if is_relative(self.b, &s.content) {
                        self.spans.push(s.content);
                    }
                    self.value(s.next);
                    return;
                }
            }
            self.i = end;
            self.regex_ok = EXPRESSION_KEYWORDS.contains(&word);
            self.member = false;
        }

        /// Scans template text from `from` up to the closing backtick or the
        /// next `${`.
        fn template(&mut self, from: usize) {
            let mut j = from;
            loop {
                match self.b.get(j) {
                    None => return self.value(self.b.len()),
                    Some(b'`') => return self.value(j + 1),
                    Some(b'\\') => j += 2,
                    Some(b'$') if self.b.get(j + 1) == Some(&b'{') => {
                        self.templates.push(self.depth);
                        self.depth += 1;
                        return self.punct(j + 2);
                    }
                    Some(_) => j += 1,
                }
            }
        }

        fn close_brace(&mut self, next: usize) {
            if self.depth == 0 {
                return self.value(next);
            }
            self.depth -= 1;
            if self.templates.last() == Some(&self.depth) {
                self.templates.pop();
                self.template(next);
            } else {
                self.value(next);
            }
        }
    }

    fn is_ident(c: u8) -> bool {
        c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
    }

    fn word_end(b: &[u8], mut i: usize) -> usize {
        while b.get(i).is_some_and(|&c| is_ident(c)) {
            i += 1;
        }
        i
    }

    fn line_end(b: &[u8], i: usize) -> usize {
        find_byte(b, i, b'\n').unwrap_or(b.len())
    }

    /// The end of the regular expression literal at `start`, flags included;
    /// Err(end of the line) when it runs into the line end, i.e. the `/` was
    /// a division after all.
    fn regex_end(b: &[u8], start: usize) -> Result<usize, usize> {
        let mut j = start + 1;
        let mut in_class = false;
        loop {
            let Some(&c) = b.get(j) else {
                return Err(b.len());
            };
            match c {
                b'\\' => j += 2,
                b'\n' | b'\r' => return Err(j),
                b'[' => {
                    in_class = true;
                    j += 1;
                }
                b']' => {
                    in_class = false;
                    j += 1;
                }
                b'/' if !in_class => return Ok(word_end(b, j + 1)),
                _ => j += 1,
            }
        }
    }

    /// Whitespace and comments.
    fn skip_trivia(b: &[u8], mut i: usize) -> usize {
        loop {
            i = skip_spaces(b, i);
            match b.get(i..i + 2) {
                Some(b"//") => i = line_end(b, i),
                Some(b"/*") => i = block_comment_end(b, i),
                _ => return i,
            }
        }
    }

    fn is_relative(b: &[u8], r: &Range<usize>) -> bool {
        b.get(r.clone())
            .is_some_and(|s| s.starts_with(b"./") || s.starts_with(b"../"))
    }

    fn closed(q: Quoted) -> Option<Quoted> {
        q.closed.then_some(q)
    }

    /// What follows the keyword `import` at `after`: `("x")`, `"x"`, or a
    /// clause then `from "x"`. `import.meta` and anything else is no import.
    fn import_specifier(b: &[u8], after: usize) -> Option<Quoted> {
        let i = skip_trivia(b, after);
        match *b.get(i)? {
            b'(' => dynamic_import(b, i + 1),
            b'"' | b'\'' => closed(quoted(b, i)),
            b'.' => None,
            _ => clause_then_from(b, i),
        }
    }

    /// Only a literal first argument can be rewritten; `import("./a" + x)`
    /// is left alone since the module it loads is not known here.
    fn dynamic_import(b: &[u8], after: usize) -> Option<Quoted> {
        let i = skip_trivia(b, after);
        let s = match *b.get(i)? {
            b'"' | b'\'' => closed(quoted(b, i))?,
            b'`' => plain_template(b, i)?,
            _ => return None,
        };
        let next = skip_trivia(b, s.next);
        matches!(b.get(next), Some(b')' | b',')).then_some(s)
    }

    fn plain_template(b: &[u8], start: usize) -> Option<Quoted> {
        let mut j = start + 1;
        loop {
            match *b.get(j)? {
                b'`' => {
                    return Some(Quoted {
                        content: start + 1..j,
                        next: j + 1,
                        closed: true,
                    });
                }
                b'\\' => j += 2,
                b'$' if b.get(j + 1) == Some(&b'{') => return None,
                _ => j += 1,
            }
        }
    }

    /// `export * from`, `export * as ns from`, `export { a } from` (and their
    /// `export type` forms); other exports name no module.
    fn export_specifier(b: &[u8], after: usize) -> Option<Quoted> {
        let mut i = skip_trivia(b, after);
        if b.get(i..word_end(b, i)) == Some(b"type") {
            i = skip_trivia(b, word_end(b, i));
        }
        match *b.get(i)? {
            b'*' | b'{' => clause_then_from(b, i),
            _ => None,
        }
    }

    /// Walks an import/export clause (`a, * as b, { c as d, "e-f" as g }`) to
    /// the string after `from`. Anything that cannot be part of a clause ends
    /// the walk, so a stray `import` identifier costs little. So does the
    /// next `import` or `export`: no walk covers another's, which keeps the
    /// scan linear.
    fn clause_then_from(b: &[u8], start: usize) -> Option<Quoted> {
        let mut i = start;
        loop {
            i = skip_trivia(b, i);
            match *b.get(i)? {
                b'*' | b',' => i += 1,
                b'{' => i = named_list_end(b, i + 1)?,
                c if is_ident(c) => {
                    let end = word_end(b, i);
                    match b.get(i..end)? {
                        b"import" | b"export" => return None,
                        b"from" => {
                            let s = skip_trivia(b, end);
                            if matches!(b.get(s), Some(b'"' | b'\'')) {
                                return closed(quoted(b, s));
                            }
                        }
                        _ => {}
                    }
                    i = end;
                }
                _ => return None,
            }
        }
    }

    fn named_list_end(b: &[u8], mut i: usize) -> Option<usize> {
        loop {
            i = skip_trivia(b, i);
            match *b.get(i)? {
                b'}' => return Some(i + 1),
                b',' => i += 1,
                b'"' | b'\'' => i = closed(quoted(b, i))?.next,
                c if is_ident(c) => i = word_end(b, i),
                _ => return None,
            }
        }
    }
}

// ---------------------------------------------------------------------------

mod source_map {
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
}

// ---------------------------------------------------------------------------

mod web_manifest {
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
}

mod html {
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
}

mod url {
    /// The logical path a URL written in the file at `referrer` points to,
    /// and the URL's query and fragment. None for what is not a file in the
    /// published tree: empty, fragment-only, scheme, protocol-relative, a
    /// directory, or a path that climbs above the root.
    pub(super) fn resolve<'u>(referrer: &str, url: &'u str) -> Option<(String, &'u str)> {
        // A backslash is a CSS or JS escape, or a Windows separator a browser
        // would normalise; either way the written form is not a plain URL.
        if url.is_empty()
            || url.starts_with('#')
            || url.starts_with("//")
            || url.contains('\\')
            || has_scheme(url)
        {
            return None;
        }
        let (path, suffix) = url.split_at(url.find(['?', '#']).unwrap_or(url.len()));
        if path.is_empty() || path.ends_with('/') {
            return None;
        }
        let (mut segments, relative) = match path.strip_prefix('/') {
            Some(rest) => (Vec::new(), rest),
            None => (referrer_dir(referrer), path),
        };
        let parts: Vec<&str> = relative.split('/').collect();
        for (n, raw) in parts.iter().enumerate() {
            let segment = percent_decode(raw)?;
            let last = n + 1 == parts.len();
            match segment.as_str() {
                // `a//b` is a different URL from `a/b` to a server; guessing
                // which file it means could rewrite the wrong one.
                "" => return None,
                "." | ".." if last => return None,
                "." => {}
                ".." => {
                    segments.pop()?;
                }
                s if s.contains('/') => return None,
                _ => segments.push(segment),
            }
        }
        Some((segments.join("/"), suffix))
    }

    fn referrer_dir(referrer: &str) -> Vec<String> {
        let mut dir: Vec<String> = referrer
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .map(String::from)
            .collect();
        dir.pop();
        dir
    }

    fn has_scheme(url: &str) -> bool {
        let mut chars = url.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_alphabetic()) {
            return false;
        }
        for c in chars {
            match c {
                ':' => return true,
                c if c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.') => {}
                _ => return false,
            }
        }
        false
    }

    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }

    /// The byte of the escape `%XY` at `at`.
    fn escape_at(b: &[u8], at: usize) -> Option<u8> {
        if b.get(at) != Some(&b'%') {
            return None;
        }
        Some(hex(*b.get(at + 1)?)? << 4 | hex(*b.get(at + 2)?)?)
    }

    /// As browsers do, a `%` that starts no valid escape stands for itself.
    /// None when the decoded bytes are not UTF-8: no logical path is.
    fn percent_decode(s: &str) -> Option<String> {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while let Some(&c) = b.get(i) {
            match escape_at(b, i) {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).ok()
    }

    /// `url` with its last path segment replaced by `name`, spelled the way
    /// the old segment was.
    pub(super) fn with_file_name(url: &str, suffix: &str, name: &str) -> Option<String> {
        let path = url.strip_suffix(suffix)?;
        let segment_start = path.rfind('/').map_or(0, |p| p + 1);
        let (dir, old) = path.split_at(segment_start);
        Some(format!("{dir}{}{suffix}", Spelling::of(old).spell(name)))
    }

    /// How a URL segment was written: which characters were percent-encoded
    /// and which left raw. Spelling the new name the same way makes the
    /// rewritten URL differ from the old one only by the inserted hash, and
    /// keeps a second rewrite a no-op.
    struct Spelling {
        encoded: [bool; 128],
        raw: [bool; 128],
        raw_non_ascii: bool,
        lower_hex: bool,
    }

    impl Spelling {
        fn of(segment: &str) -> Spelling {
            let mut how = Spelling {
                encoded: [false; 128],
                raw: [false; 128],
                raw_non_ascii: false,
                lower_hex: false,
            };
            let b = segment.as_bytes();
            let mut i = 0;
            while let Some(&c) = b.get(i) {
                if let Some(byte) = escape_at(b, i) {
                    if let Some(slot) = how.encoded.get_mut(usize::from(byte)) {
                        *slot = true;
                    }
                    how.lower_hex |= b
                        .get(i + 1..i + 3)
                        .is_some_and(|h| h.iter().any(u8::is_ascii_lowercase));
                    i += 3;
                    continue;
                }
                match how.raw.get_mut(usize::from(c)) {
                    Some(slot) => *slot = true,
                    None => how.raw_non_ascii = true,
                }
                i += 1;
            }
            how
        }

        fn spell(&self, name: &str) -> String {
            let mut out = String::with_capacity(name.len());
            for c in name.chars() {
                if self.must_encode(c) {
                    let mut buf = [0; 4];
                    let digits = if self.lower_hex {
                        b"0123456789abcdef"
                    } else {
                        b"0123456789ABCDEF"
                    };
                    for byte in c.encode_utf8(&mut buf).bytes() {
                        out.push('%');
                        out.push(char::from(digits[usize::from(byte >> 4)]));
                        out.push(char::from(digits[usize::from(byte & 0xf)]));
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }

        fn must_encode(&self, c: char) -> bool {
            if c == '%' {
                return true;
            }
            let Some(i) = u8::try_from(c).ok().filter(u8::is_ascii).map(usize::from) else {
                return !self.raw_non_ascii;
            };
            let encoded = self.encoded.get(i).copied().unwrap_or(false);
            let raw = self.raw.get(i).copied().unwrap_or(false);
            encoded || (needs_escape(c) && !raw)
        }
    }

    /// Characters that would end or change the meaning of a URL in a CSS or
    /// JS string, an unquoted `url()` or a comment.
    fn needs_escape(c: char) -> bool {
        c.is_ascii_control() || " \"#'()<>?\\^`{|}".contains(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "3f2a9c1b7d4e";

    /// The fingerprinted file name of a logical path, and the identity for a
    /// name that already carries the hash, as the caller's lookup behaves.
    fn fingerprinted(target: &str) -> Option<String> {
        let name = target.rsplit('/').next().unwrap_or(target);
        if name.contains(HASH) {
            return Some(name.to_string());
        }
        Some(match name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => format!("{stem}.{HASH}.{ext}"),
            _ => format!("{name}.{HASH}"),
        })
    }

    /// (url as written, target, suffix) of each reference found.
    fn found(
        syntax: Syntax,
        referrer: &str,
        text: &str,
        js_imports: bool,
    ) -> Vec<(String, String, String)> {
        find_references(syntax, referrer, text, js_imports)
            .into_iter()
            .map(|r| {
                assert_eq!(
                    text.get(r.range.clone()),
                    Some(r.url.as_str()),
                    "range matches url"
                );
                (r.url, r.target, r.suffix)
            })
            .collect()
    }

    fn triple(url: &str, target: &str, suffix: &str) -> (String, String, String) {
        (url.to_string(), target.to_string(), suffix.to_string())
    }

    fn css(text: &str) -> Vec<(String, String, String)> {
        found(Syntax::Css, "css/app.css", text, false)
    }

    fn targets(syntax: Syntax, referrer: &str, text: &str, js_imports: bool) -> Vec<String> {
        found(syntax, referrer, text, js_imports)
            .into_iter()
            .map(|(_, t, _)| t)
            .collect()
    }

    fn rewritten(syntax: Syntax, referrer: &str, text: &str, js_imports: bool) -> String {
        let refs = find_references(syntax, referrer, text, js_imports);
        rewrite(text, &refs, fingerprinted)
    }

    fn rewritten_css(text: &str) -> String {
        rewritten(Syntax::Css, "css/app.css", text, false)
    }

    #[test]
    fn syntax_follows_the_extension() {
        assert_eq!(Syntax::for_path("css/app.css"), Syntax::Css);
        assert_eq!(Syntax::for_path("APP.CSS"), Syntax::Css);
        assert_eq!(Syntax::for_path("js/app.js"), Syntax::Js);
        assert_eq!(Syntax::for_path("js/app.mjs"), Syntax::Js);
        assert_eq!(Syntax::for_path("js/app.cjs"), Syntax::Js);
        assert_eq!(Syntax::for_path("js/app.js.map"), Syntax::SourceMap);
        assert_eq!(Syntax::for_path("css.d/readme"), Syntax::Other);
        assert_eq!(Syntax::for_path("index.html"), Syntax::Html);
        assert_eq!(Syntax::for_path("blog/Old.HTM"), Syntax::Html);
        assert_eq!(Syntax::for_path("img/logo.png"), Syntax::Other);
        assert_eq!(Syntax::for_path("site.webmanifest"), Syntax::WebManifest);
        assert_eq!(Syntax::for_path(""), Syntax::Other);
    }

    fn html(text: &str) -> Vec<String> {
        targets(Syntax::Html, "blog/post.html", text, false)
    }

    #[test]
    fn html_url_attributes_in_every_quoting_style() {
        let text = "<link rel=stylesheet href=\"../css/site.css\">\n<script src='/js/app.js' defer></script>\n<IMG SRC=../img/a.png alt=x><video poster=v.jpg></video><object data=doc.svg></object>";
        assert_eq!(
            html(text),
            [
                "css/site.css",
                "js/app.js",
                "img/a.png",
                "blog/v.jpg",
                "blog/doc.svg"
            ]
        );
        assert_eq!(
            rewritten(Syntax::Html, "blog/post.html", text, false),
            format!(
                "<link rel=stylesheet href=\"../css/site.{HASH}.css\">\n<script src='/js/app.{HASH}.js' defer></script>\n<IMG SRC=../img/a.{HASH}.png alt=x><video poster=v.{HASH}.jpg></video><object data=doc.{HASH}.svg></object>"
            )
        );
    }

    #[test]
    fn html_links_svg_uses_and_fragments() {
        let text = "<a href=\"../about.html#team\">a</a> <a href=\"#top\">t</a> <a href=\"mailto:x@y.z\">m</a> <a href=\"https://x.org/a.png\">x</a> <a href=\"../\">up</a>\n<svg><use href=\"../img/icons.svg#arrow\"></use><use xlink:href=\"../img/icons.svg#star\"/></svg>";
        assert_eq!(
            found(Syntax::Html, "blog/post.html", text, false),
            [
                triple("../about.html#team", "about.html", "#team"),
                triple("../img/icons.svg#arrow", "img/icons.svg", "#arrow"),
                triple("../img/icons.svg#star", "img/icons.svg", "#star"),
            ]
        );
    }

    #[test]
    fn html_srcset_candidates_each_rewritten() {
        let text = "<img srcset=\"a.png 1x, b%20c.png 2x,d.png\" src=a.png><link rel=preload as=image imagesrcset=\"e.png 480w,  f.png 800w\">";
        assert_eq!(
            html(text),
            [
                "blog/a.png",
                "blog/b c.png",
                "blog/d.png",
                "blog/a.png",
                "blog/e.png",
                "blog/f.png"
            ]
        );
        assert_eq!(
            rewritten(Syntax::Html, "blog/post.html", text, false),
            format!(
                "<img srcset=\"a.{HASH}.png 1x, b%20c.{HASH}.png 2x,d.{HASH}.png\" src=a.{HASH}.png><link rel=preload as=image imagesrcset=\"e.{HASH}.png 480w,  f.{HASH}.png 800w\">"
            )
        );
    }

    #[test]
    fn html_inline_css_in_style_elements_and_attributes() {
        let text = "<style>\n.hero { background: url(../img/hero.jpg) }\n@import 'x.css';\n</STYLE><div style=\"background-image: url('../img/a.png')\"></div><p style=\"background:url(&quot;b.png&quot;)\"></p>";
        assert_eq!(html(text), ["img/hero.jpg", "blog/x.css", "img/a.png"]);
    }

    #[test]
    fn html_text_comments_scripts_and_other_attributes_are_not_references() {
        let text = "<p>A page pointing at <code>../img/hero.jpg</code> or src=a.png</p>\n<!-- <img src=old.png> -->\n<script>document.write('<img src=\"x.png\">')</script>\n<textarea><img src=t.png></textarea><title>src=y.png</title>\n<img data-src=lazy.png alt=\"src=z.png\" src=\"  real.png  \">\n<a href=\"a&amp;b.html\">e</a><a href=\"q.html?a=1&amp;b=2\">q</a>";
        assert_eq!(html(text), ["blog/real.png", "blog/q.html"]);
        let once = rewritten(Syntax::Html, "blog/post.html", text, false);
        assert_eq!(
            once,
            text.replace("real.png", &format!("real.{HASH}.png"))
                .replace("q.html", &format!("q.{HASH}.html"))
        );
    }

    #[test]
    fn html_with_a_base_element_is_left_alone() {
        let text = "<head><base href=\"https://cdn.example.org/\"><link href=css/site.css rel=stylesheet></head>";
        assert_eq!(html(text), Vec::<String>::new());
        // `<base target>` changes no URL.
        assert_eq!(html("<base target=_blank><img src=a.png>"), ["blog/a.png"]);
    }

    #[test]
    fn html_unclosed_constructs_end_the_scan_without_panicking() {
        for text in [
            "<img src=\"a.png",
            "<img src=",
            "<!-- <img src=a.png>",
            "<script><img src=a.png>",
            "<",
            "<a",
            "<a href",
        ] {
            assert_eq!(html(text), Vec::<String>::new(), "{text:?}");
        }
        // A tag cut off by the end of the file is no tag, as browsers parse it.
        assert_eq!(html("<img src=a.png"), Vec::<String>::new());
    }

    #[test]
    fn web_manifest_icon_sources_at_any_depth() {
        let text = r#"{"name": "src", "start_url": "/index.html",
  "icons": [{ "src": "/img/logo.png", "sizes": "192x192" }, {"src":"icons/a%20b.png?v=2"}],
  "shortcuts": [{"name": "x", "icons": [{"src": "../up.png"}]}],
  "screenshots": [{"src": "s\\u0031.png"}, {"src": 3}], "description": "src"}"#;
        assert_eq!(
            found(Syntax::WebManifest, "app/site.webmanifest", text, false),
            [
                triple("/img/logo.png", "img/logo.png", ""),
                triple("icons/a%20b.png?v=2", "app/icons/a b.png", "?v=2"),
                triple("../up.png", "up.png", ""),
            ]
        );
    }

    #[test]
    fn css_url_in_every_quoting_style() {
        let text = "a{b:url(a.png)}\nb{b:url('b.png')}\nc{b:url(\"c.png\")}";
        assert_eq!(
            css(text),
            vec![
                triple("a.png", "css/a.png", ""),
                triple("b.png", "css/b.png", ""),
                triple("c.png", "css/c.png", ""),
            ]
        );
        assert_eq!(
            rewritten_css(text),
            "a{b:url(a.3f2a9c1b7d4e.png)}\nb{b:url('b.3f2a9c1b7d4e.png')}\nc{b:url(\"c.3f2a9c1b7d4e.png\")}"
        );
    }

    #[test]
    fn whitespace_inside_url_parens_and_quotes_is_kept() {
        let text = "a{b:url(  a.png\t)} b{b:url( ' b.png ' )} c{b:url(\n\"c.png\"\n)}";
        assert_eq!(
            targets(Syntax::Css, "app.css", text, false),
            ["a.png", "b.png", "c.png"]
        );
        assert_eq!(
            rewritten(Syntax::Css, "app.css", text, false),
            "a{b:url(  a.3f2a9c1b7d4e.png\t)} b{b:url( ' b.3f2a9c1b7d4e.png ' )} c{b:url(\n\"c.3f2a9c1b7d4e.png\"\n)}"
        );
    }

    #[test]
    fn several_urls_on_one_line_and_upper_case_url() {
        let text = "x{background:url(a.png),URL(b.png), Url( \"c.png\" )}";
        assert_eq!(
            targets(Syntax::Css, "app.css", text, false),
            ["a.png", "b.png", "c.png"]
        );
    }

    #[test]
    fn font_face_src_list_keeps_format_query_and_fragment() {
        let text = "@font-face{font-family:X;\
            src:url('../fonts/x.eot?#iefix') format('embedded-opentype'),\
            url(\"../fonts/x.woff2?v=1\") format(\"woff2\"),\
            url(../fonts/x.svg#xregular) format('svg'),\
            local('X'), url(../fonts/x.ttf?a=1#b) format(\"truetype\")}";
        assert_eq!(
            css(text),
            vec![
                triple("../fonts/x.eot?#iefix", "fonts/x.eot", "?#iefix"),
                triple("../fonts/x.woff2?v=1", "fonts/x.woff2", "?v=1"),
                triple("../fonts/x.svg#xregular", "fonts/x.svg", "#xregular"),
                triple("../fonts/x.ttf?a=1#b", "fonts/x.ttf", "?a=1#b"),
            ]
        );
        let out = rewritten_css(text);
        assert!(
            out.contains("url('../fonts/x.3f2a9c1b7d4e.eot?#iefix') format('embedded-opentype')"),
            "{out}"
        );
        assert!(
            out.contains("url(\"../fonts/x.3f2a9c1b7d4e.woff2?v=1\") format(\"woff2\")"),
            "{out}"
        );
        assert!(
            out.contains("url(../fonts/x.3f2a9c1b7d4e.svg#xregular) format('svg')"),
            "{out}"
        );
        assert!(
            out.contains("url(../fonts/x.3f2a9c1b7d4e.ttf?a=1#b)"),
            "{out}"
        );
        assert!(out.contains("local('X')"));
    }

    #[test]
    fn non_file_urls_are_left_alone() {
        let text = "a{b:url(data:image/png;base64,iVBORw0KGgo=)}\
            b{b:url('data:image/svg+xml;utf8,<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>')}\
            c{b:url(https://cdn.example.com/a.png)} d{b:url(//cdn.example.com/a.png)}\
            e{filter:url(#shadow)} f{b:url(mailto:x@example.com)} g{b:url()} h{b:url('')}\
            i{b:url(?v=1)} j{b:url(img/)} k{b:url(.)} l{b:url(..)} m{b:url(a\\).png)}\
            n{b:url(HTTP://x/a.png)} o{b:url(a//b.png)}";
        assert_eq!(css(text), vec![]);
        assert_eq!(rewritten_css(text), text);
    }

    #[test]
    fn comments_are_not_references_except_the_source_map_comment() {
        let text = "/* url(foo.png) @import \"x.css\"; */a{b:url(a.png)}/*url(bar.png)*/\n\
            /*# sourceMappingURL=app.css.map */";
        assert_eq!(
            targets(Syntax::Css, "css/app.css", text, false),
            ["css/a.png", "css/app.css.map"]
        );
        assert_eq!(
            rewritten_css(text),
            "/* url(foo.png) @import \"x.css\"; */a{b:url(a.3f2a9c1b7d4e.png)}/*url(bar.png)*/\n\
             /*# sourceMappingURL=app.css.3f2a9c1b7d4e.map */"
        );
    }

    #[test]
    fn css_source_map_comment_forms() {
        assert_eq!(
            css("/*# sourceMappingURL=a.map*/"),
            vec![triple("a.map", "css/a.map", "")]
        );
        assert_eq!(
            css("/*@ sourceMappingURL=a.map */"),
            vec![triple("a.map", "css/a.map", "")]
        );
        assert_eq!(
            css("/*#sourceMappingURL=../maps/a.map */"),
            vec![triple("../maps/a.map", "maps/a.map", "")]
        );
        assert_eq!(css("/* sourceMappingURL=a.map */"), vec![]);
        assert_eq!(
            css("/*# sourceMappingURL=data:application/json;base64,e30= */"),
            vec![]
        );
        assert_eq!(css("/*# sourceMappingURL= */"), vec![]);
        assert_eq!(
            css("/*# sourceMappingURL=a.map"),
            vec![triple("a.map", "css/a.map", "")]
        );
    }

    #[test]
    fn css_strings_are_not_references() {
        let text = "a:before{content:\"url(x.png)\"} b:after{content:'@import \"y.css\"'} c{content:\"\\\"url(z.png)\"}";
        assert_eq!(css(text), vec![]);
    }

    #[test]
    fn an_escaped_quote_outside_strings_opens_no_string() {
        let text = ".it\\'s{background:url(a.png)} .q\\\"{b:url(b.png)}";
        assert_eq!(
            targets(Syntax::Css, "app.css", text, false),
            ["a.png", "b.png"]
        );
    }

    #[test]
    fn url_needs_a_function_boundary() {
        assert_eq!(
            css("a{b:myurl(a.png); c:-x-url(b.png); d:image-set(url(c.png) 1x)}"),
            vec![triple("c.png", "css/c.png", "")]
        );
    }

    #[test]
    fn import_rule_forms() {
        let text = "@import \"a.css\";\n@import 'b.css' screen;\n@import url(c.css);\n@import url( \"d.css\" ) print;\n\
            @IMPORT\t'e.css';\n@import url(https://fonts.example.com/css);\n@imports 'f.css';@import ' g.css ';";
        assert_eq!(
            targets(Syntax::Css, "css/app.css", text, false),
            [
                "css/a.css",
                "css/b.css",
                "css/c.css",
                "css/d.css",
                "css/e.css",
                "css/g.css"
            ]
        );
        assert_eq!(
            rewritten_css(text),
            "@import \"a.3f2a9c1b7d4e.css\";\n@import 'b.3f2a9c1b7d4e.css' screen;\n@import url(c.3f2a9c1b7d4e.css);\n\
             @import url( \"d.3f2a9c1b7d4e.css\" ) print;\n@IMPORT\t'e.3f2a9c1b7d4e.css';\n\
             @import url(https://fonts.example.com/css);\n@imports 'f.css';@import ' g.3f2a9c1b7d4e.css ';"
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_referrer() {
        let text = "a{b:url(../../img/x.png)} b{b:url(./y.png)} c{b:url(z/./../w.png)} d{b:url(../../../up.png)}";
        assert_eq!(
            found(Syntax::Css, "css/sub/a.css", text, false),
            vec![
                triple("../../img/x.png", "img/x.png", ""),
                triple("./y.png", "css/sub/y.png", ""),
                triple("z/./../w.png", "css/sub/w.png", ""),
            ]
        );
        assert_eq!(
            rewritten(Syntax::Css, "css/sub/a.css", text, false),
            "a{b:url(../../img/x.3f2a9c1b7d4e.png)} b{b:url(./y.3f2a9c1b7d4e.png)} \
             c{b:url(z/./../w.3f2a9c1b7d4e.png)} d{b:url(../../../up.png)}"
        );
    }

    #[test]
    fn absolute_paths_resolve_against_the_root_and_keep_their_slash() {
        let text = "a{b:url(/img/a.png)} b{b:url('/b.png?x')}";
        assert_eq!(
            found(Syntax::Css, "css/sub/a.css", text, false),
            vec![
                triple("/img/a.png", "img/a.png", ""),
                triple("/b.png?x", "b.png", "?x")
            ]
        );
        assert_eq!(
            rewritten(Syntax::Css, "css/sub/a.css", text, false),
            "a{b:url(/img/a.3f2a9c1b7d4e.png)} b{b:url('/b.3f2a9c1b7d4e.png?x')}"
        );
        assert_eq!(css("a{b:url(/../a.png)}"), vec![]);
    }

    #[test]
    fn unicode_names_work_as_written() {
        let text = "a{b:url(画像/ünï.png)} b{b:url(\"../é 1.png\")}";
        assert_eq!(
            targets(Syntax::Css, "css/app.css", text, false),
            ["css/画像/ünï.png", "é 1.png"]
        );
        assert_eq!(
            rewritten_css(text),
            "a{b:url(画像/ünï.3f2a9c1b7d4e.png)} b{b:url(\"../é 1.3f2a9c1b7d4e.png\")}"
        );
    }

    #[test]
    fn percent_encoded_names_are_decoded_and_re_encoded_alike() {
        let cases = [
            ("my%20file.png", "my file.png", "my%20file.3f2a9c1b7d4e.png"),
            ("caf%C3%A9.png", "café.png", "caf%C3%A9.3f2a9c1b7d4e.png"),
            (
                "caf%c3%a9%28x%29.png",
                "café(x).png",
                "caf%c3%a9%28x%29.3f2a9c1b7d4e.png",
            ),
            (
                "caf\u{e9}%20x.png",
                "café x.png",
                "caf\u{e9}%20x.3f2a9c1b7d4e.png",
            ),
            ("a%2Bb.png", "a+b.png", "a%2Bb.3f2a9c1b7d4e.png"),
            ("100%.png", "100%.png", "100%25.3f2a9c1b7d4e.png"),
        ];
        for (url, target, new_url) in cases {
            let text = format!("a{{b:url('{url}')}}");
            assert_eq!(
                targets(Syntax::Css, "app.css", &text, false),
                [target],
                "{url}"
            );
            let out = rewritten(Syntax::Css, "app.css", &text, false);
            assert_eq!(out, format!("a{{b:url('{new_url}')}}"));
            assert_eq!(
                rewritten(Syntax::Css, "app.css", &out, false),
                out,
                "a second rewrite changes nothing"
            );
        }
        // An encoded slash is no separator, and bytes that are not UTF-8 name no logical path.
        assert_eq!(css("a{b:url(d%2Fe.png)} b{b:url(%ff.png)}"), vec![]);
    }

    #[test]
    fn a_new_name_is_escaped_where_the_context_needs_it() {
        let refs = find_references(Syntax::Css, "app.css", "a{b:url(a.png)}", false);
        let out = rewrite("a{b:url(a.png)}", &refs, |_| {
            Some("a (1) ü.png".to_string())
        });
        assert_eq!(out, "a{b:url(a%20%281%29%20%C3%BC.png)}");
    }

    #[test]
    fn bad_and_unterminated_urls_are_skipped_and_scanning_goes_on() {
        let text = "a{b:url(a b.png)} c{b:url(a\"b.png)} d{b:url(a(b.png)} e{b:url(\"x.png\" junk)} f{b:url(ok.png)}";
        assert_eq!(targets(Syntax::Css, "app.css", text, false), ["ok.png"]);
        for odd in [
            "a{b:url(a.png",
            "a{b:url(",
            "a{b:url(  ",
            "a{b:url('a.png",
            "a{b:url('a.png')",
            "/* url(a.png)",
            "'",
            "\"url(a.png)",
            "@import",
            "@import '",
            "@import \"a.css",
            "/*# sourceMappingURL=",
            "\\",
            "u",
            "url",
            "é\\",
        ] {
            let refs = find_references(Syntax::Css, "app.css", odd, false);
            assert!(refs.len() <= 1, "{odd:?}");
            assert_eq!(rewrite(odd, &[], fingerprinted), odd);
        }
        assert_eq!(
            targets(Syntax::Css, "app.css", "a{b:url('a.png')", false),
            ["a.png"]
        );
    }

    #[test]
    fn js_source_map_comment_is_line_anchored() {
        let text = "var a = 1;\n//# sourceMappingURL=app.js.map\n";
        assert_eq!(
            found(Syntax::Js, "js/app.js", text, false),
            vec![triple("app.js.map", "js/app.js.map", "")]
        );
        assert_eq!(
            rewritten(Syntax::Js, "js/app.js", text, false),
            "var a = 1;\n//# sourceMappingURL=app.js.3f2a9c1b7d4e.map\n"
        );
        assert_eq!(
            targets(
                Syntax::Js,
                "app.js",
                "x()\n  \t//@ sourceMappingURL=old.map",
                false
            ),
            ["old.map"]
        );
        assert_eq!(
            targets(
                Syntax::Js,
                "app.js",
                "x()\r\n//# sourceMappingURL=a.map\r\n",
                false
            ),
            ["a.map"]
        );
        assert_eq!(
            targets(
                Syntax::Js,
                "app.js",
                "x()\n/*# sourceMappingURL=b.map */",
                false
            ),
            ["b.map"]
        );
        assert_eq!(
            targets(
                Syntax::Js,
                "app.js",
                "x()\n/*# sourceMappingURL=c.map*/\n",
                false
            ),
            ["c.map"]
        );
        assert_eq!(
            targets(
                Syntax::Js,
                "app.js",
                "//# sourceMappingURL=first.map",
                false
            ),
            ["first.map"]
        );
    }

    #[test]
    fn js_source_map_comment_mid_line_is_not_the_files() {
        for text in [
            "var s = \"//# sourceMappingURL=x.map\";",
            "f(); //# sourceMappingURL=x.map",
            "var s = '\\n//# sourceMappingURL=x.map';",
            "x()\n// # sourceMappingURL=x.map",
            "x()\n//# sourceMappingURL=data:application/json;base64,e30=",
            "x()\n//# sourceMappingURL=https://maps.example.com/x.map",
        ] {
            assert_eq!(
                targets(Syntax::Js, "app.js", text, false),
                Vec::<String>::new(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn js_does_not_look_at_css_syntax() {
        let text = "el.style.background = \"url(a.png)\";\n// @import 'b.css'";
        assert_eq!(
            targets(Syntax::Js, "app.js", text, false),
            Vec::<String>::new()
        );
        assert_eq!(
            targets(Syntax::Js, "app.js", text, true),
            Vec::<String>::new()
        );
    }

    const MODULE: &str = r#"import a from "./a.js";
import { b, c as d } from './lib/b.js';
import * as e from "../e.js";
import f, { g } from "./f.mjs?v=2";
import "./side-effect.js";
import x from "bare-package";
import y from "/abs/y.js";
import type { T } from "./types.js";
import {
  h, // comment
  /* more */ i,
  "j-k" as jk,
} from "./multi.js";
export { l } from "./l.js";
export * from "./m.js";
export * as n from './n.js';
export { local };
export default function o() {}
const p = import("./lazy.js");
const q = import( /* webpackChunkName: "q" */ './q.js' , { with: {} });
const r = import(`./tpl.js`);
const s = import(`./${name}.js`);
const t = import("./dyn" + ext);
console.log(import.meta.url);
"#;

    #[test]
    fn js_imports_are_opt_in() {
        assert_eq!(
            targets(Syntax::Js, "js/app.js", MODULE, false),
            Vec::<String>::new()
        );
        assert_eq!(rewritten(Syntax::Js, "js/app.js", MODULE, false), MODULE);
    }

    #[test]
    fn js_relative_imports_in_every_form() {
        assert_eq!(
            targets(Syntax::Js, "js/app.js", MODULE, true),
            [
                "js/a.js",
                "js/lib/b.js",
                "e.js",
                "js/f.mjs",
                "js/side-effect.js",
                "js/types.js",
                "js/multi.js",
                "js/l.js",
                "js/m.js",
                "js/n.js",
                "js/lazy.js",
                "js/q.js",
                "js/tpl.js",
            ]
        );
        let out = rewritten(Syntax::Js, "js/app.js", MODULE, true);
        for expected in [
            "import a from \"./a.3f2a9c1b7d4e.js\";",
            "from './lib/b.3f2a9c1b7d4e.js';",
            "from \"../e.3f2a9c1b7d4e.js\";",
            "from \"./f.3f2a9c1b7d4e.mjs?v=2\";",
            "import \"./side-effect.3f2a9c1b7d4e.js\";",
            "import x from \"bare-package\";",
            "import y from \"/abs/y.js\";",
            "} from \"./multi.3f2a9c1b7d4e.js\";",
            "export * as n from './n.3f2a9c1b7d4e.js';",
            "import(\"./lazy.3f2a9c1b7d4e.js\")",
            "'./q.3f2a9c1b7d4e.js' , { with: {} }",
            "import(`./tpl.3f2a9c1b7d4e.js`)",
            "import(`./${name}.js`)",
            "import(\"./dyn\" + ext)",
        ] {
            assert!(out.contains(expected), "{expected} in\n{out}");
        }
    }

    #[test]
    fn js_imports_in_comments_strings_and_members_are_ignored() {
        let text = r#"// import a from "./c1.js";
/* import("./c2.js") */
const s1 = "import('./s1.js')";
const s2 = 'export * from "./s2.js"';
const s3 = `import "./s3.js" ${ x + `import('./s4.js')` } import "./s5.js"`;
const re = /import\("\.\/re.js"\)'/g;
obj.import("./member.js");
this.#import("./private.js");
const o = { import: "./key.js" };
if (a / b) import("./real.js");
"#;
        assert_eq!(targets(Syntax::Js, "app.js", text, true), ["real.js"]);
    }

    #[test]
    fn js_regex_and_division_are_told_apart() {
        let text = "const re = /[\"']/g; import(\"./after-re.js\");\n\
            const half = a / 2; import(\"./after-div.js\"); const b = c / 3;\n\
            if (x) return /'/.test(y) || import('./after-return.js');\n\
            const n = (1) / 2 / import('./after-paren.js');\n\
            i++ / 2; import('./after-postfix.js'); j = k / 3;\n\
            x = [] + /'/.source; ++n / 2; import('./after-unary.js');";
        assert_eq!(
            targets(Syntax::Js, "app.js", text, true),
            [
                "after-re.js",
                "after-div.js",
                "after-return.js",
                "after-paren.js",
                "after-postfix.js",
                "after-unary.js"
            ]
        );
    }

    #[test]
    fn js_template_substitutions_nest() {
        let text = "const a = `x ${ {k: `y ${z}`}.k } w`; import \"./after.js\";\nconst b = `${`${'`'}`}`; import('./later.js');";
        assert_eq!(
            targets(Syntax::Js, "app.js", text, true),
            ["after.js", "later.js"]
        );
    }

    #[test]
    fn js_odd_text_does_not_panic() {
        for odd in [
            "import",
            "import(",
            "import('./a.js'",
            "import {",
            "import { a",
            "import a from",
            "import a from '",
            "export {",
            "export * from \"./a.js",
            "`${",
            "`${ `",
            "}}}}",
            "/",
            "/[",
            "x = /\\",
            "'\\",
            "\"",
            "import\u{e9}(\"./a.js\")",
            "\u{1F4A5} import('./a.js') \u{1F4A5}",
        ] {
            let _ = find_references(Syntax::Js, "app.js", odd, true);
        }
        assert_eq!(
            targets(
                Syntax::Js,
                "app.js",
                "\u{1F4A5} import('./a.js') \u{1F4A5}",
                true
            ),
            ["a.js"]
        );
    }

    const SOURCE_MAP: &str = "{\"version\":3,\"sources\":[\"../src/a.ts\",\"{\\\"x\\\"}\"],\
        \"names\":[],\"x_nested\":{\"file\":\"no.js\",\"arr\":[1,{\"b\":[]}]},\"n\":-1.5e3,\"t\":true,\
        \"file\" : \"app.js\",\n  \"mappings\":\"AAAA;\"}";

    #[test]
    fn source_map_file_field_only_top_level() {
        assert_eq!(
            found(Syntax::SourceMap, "js/app.js.map", SOURCE_MAP, false),
            vec![triple("app.js", "js/app.js", "")]
        );
        let out = rewritten(Syntax::SourceMap, "js/app.js.map", SOURCE_MAP, false);
        assert_eq!(
            out,
            SOURCE_MAP.replace(
                "\"file\" : \"app.js\"",
                "\"file\" : \"app.3f2a9c1b7d4e.js\""
            )
        );
    }

    #[test]
    fn source_map_prefix_escapes_and_garbage() {
        let prefixed = ")]}'\n{\"version\":3,\"file\":\"app.js\"}";
        assert_eq!(
            targets(Syntax::SourceMap, "app.js.map", prefixed, false),
            ["app.js"]
        );
        let bom = "\u{feff}{\"file\":\"app.js\"}";
        assert_eq!(
            targets(Syntax::SourceMap, "app.js.map", bom, false),
            ["app.js"]
        );
        for no_ref in [
            "{\"file\":\"js\\/app.js\"}",
            "{\"file\":null}",
            "[{\"file\":\"app.js\"}]",
            "{\"sections\":[{\"map\":{\"file\":\"app.js\"}}]}",
            "{\"file\":\"app.js",
            "{\"file\"",
            "{\"a\":[1,2",
            "{\"a\" 1, \"file\":\"app.js\"}",
            "{",
            "",
            "not json",
        ] {
            assert_eq!(
                targets(Syntax::SourceMap, "app.js.map", no_ref, false),
                Vec::<String>::new(),
                "{no_ref:?}"
            );
        }
    }

    #[test]
    fn other_files_have_no_references() {
        assert_eq!(
            targets(
                Syntax::Other,
                "index.html",
                "<img src=\"a.png\"> url(a.png)",
                true
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn references_without_a_new_name_stay_as_written() {
        let text = "a{b:url(a.png)} b{b:url(b.png)}";
        let refs = find_references(Syntax::Css, "app.css", text, false);
        let out = rewrite(text, &refs, |t| {
            (t == "b.png").then(|| "b.111111111111.png".to_string())
        });
        assert_eq!(out, "a{b:url(a.png)} b{b:url(b.111111111111.png)}");
        assert_eq!(rewrite(text, &refs, |_| None), text);
    }

    #[test]
    fn stale_overlapping_or_odd_references_are_skipped() {
        let text = "a{b:url(a.png)}";
        let good = Reference {
            range: 8..13,
            url: "a.png".into(),
            target: "a.png".into(),
            suffix: String::new(),
        };
        let stale = Reference {
            range: 0..5,
            ..good.clone()
        };
        let out_of_bounds = Reference {
            range: 10..99,
            ..good.clone()
        };
        // A reversed range, as a caller with stale offsets could pass.
        let inverted = Reference {
            range: Range { start: 12, end: 3 },
            ..good.clone()
        };
        let refs = [good.clone(), good.clone(), stale, out_of_bounds, inverted];
        assert_eq!(
            rewrite(text, &refs, fingerprinted),
            "a{b:url(a.3f2a9c1b7d4e.png)}"
        );
        assert_eq!(
            rewrite(text, std::slice::from_ref(&good), |_| Some(
                "../x.png".into()
            )),
            text
        );
        assert_eq!(rewrite(text, &[good], |_| Some(String::new())), text);
        let mid_char = Reference {
            range: 1..2,
            url: "\u{e9}".into(),
            target: "x".into(),
            suffix: String::new(),
        };
        assert_eq!(
            rewrite("\u{e9}\u{e9}", &[mid_char], fingerprinted),
            "\u{e9}\u{e9}"
        );
    }

    #[test]
    fn rewriting_twice_changes_nothing_more() {
        let text = "@import 'b.css';a{b:url(\"../img/a.png?v=1#x\")} c{b:url(/f/c%20d.woff2)}\n/*# sourceMappingURL=app.css.map */";
        let once = rewritten_css(text);
        assert_ne!(once, text);
        assert_eq!(rewritten_css(&once), once);
        let module = rewritten(Syntax::Js, "js/app.js", MODULE, true);
        assert_eq!(rewritten(Syntax::Js, "js/app.js", &module, true), module);
    }

    const FONT_AWESOME: &str =
        include_str!("../tests/fixtures/font-awesome-4.7.0/css/font-awesome.css");
    const BOOTSTRAP_ICONS: &str = include_str!("../tests/fixtures/bootstrap-icons-1.13.2.css");

    #[test]
    fn font_awesome_4_7_0_references() {
        assert_eq!(
            found(Syntax::Css, "css/font-awesome.css", FONT_AWESOME, false),
            vec![
                triple(
                    "../fonts/fontawesome-webfont.eot?v=4.7.0",
                    "fonts/fontawesome-webfont.eot",
                    "?v=4.7.0"
                ),
                triple(
                    "../fonts/fontawesome-webfont.eot?#iefix&v=4.7.0",
                    "fonts/fontawesome-webfont.eot",
                    "?#iefix&v=4.7.0"
                ),
                triple(
                    "../fonts/fontawesome-webfont.woff2?v=4.7.0",
                    "fonts/fontawesome-webfont.woff2",
                    "?v=4.7.0"
                ),
                triple(
                    "../fonts/fontawesome-webfont.woff?v=4.7.0",
                    "fonts/fontawesome-webfont.woff",
                    "?v=4.7.0"
                ),
                triple(
                    "../fonts/fontawesome-webfont.ttf?v=4.7.0",
                    "fonts/fontawesome-webfont.ttf",
                    "?v=4.7.0"
                ),
                triple(
                    "../fonts/fontawesome-webfont.svg?v=4.7.0#fontawesomeregular",
                    "fonts/fontawesome-webfont.svg",
                    "?v=4.7.0#fontawesomeregular"
                ),
            ]
        );
        let out = rewritten(Syntax::Css, "css/font-awesome.css", FONT_AWESOME, false);
        let hash_len = ".3f2a9c1b7d4e".len();
        assert_eq!(out.len(), FONT_AWESOME.len() + 6 * hash_len);
        assert_eq!(out.replace(".3f2a9c1b7d4e", ""), FONT_AWESOME);
        assert!(out.contains(
            "url('../fonts/fontawesome-webfont.3f2a9c1b7d4e.eot?#iefix&v=4.7.0') format('embedded-opentype')"
        ));
        assert_eq!(
            rewritten(Syntax::Css, "css/font-awesome.css", &out, false),
            out
        );
    }

    #[test]
    fn bootstrap_icons_1_13_2_references() {
        const Q: &str = "?e34853135f9e39acf64315236852cd5a";
        assert_eq!(
            found(
                Syntax::Css,
                "font/bootstrap-icons.css",
                BOOTSTRAP_ICONS,
                false
            ),
            vec![
                triple(
                    &format!("./fonts/bootstrap-icons.woff2{Q}"),
                    "font/fonts/bootstrap-icons.woff2",
                    Q
                ),
                triple(
                    &format!("./fonts/bootstrap-icons.woff{Q}"),
                    "font/fonts/bootstrap-icons.woff",
                    Q
                ),
            ]
        );
        let out = rewritten(
            Syntax::Css,
            "font/bootstrap-icons.css",
            BOOTSTRAP_ICONS,
            false,
        );
        assert!(out.contains(&format!(
            "url(\"./fonts/bootstrap-icons.3f2a9c1b7d4e.woff2{Q}\") format(\"woff2\")"
        )));
        assert_eq!(out.replace(".3f2a9c1b7d4e", ""), BOOTSTRAP_ICONS);
    }

    /// xorshift64: deterministic, so a failure reproduces from the seed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }
    }

    const FRAGMENTS: &[&str] = &[
        "url(",
        ")",
        "\"",
        "'",
        "/*",
        "*/",
        "@import",
        "#",
        "?",
        "../",
        "./",
        "a.png",
        "\n",
        " ",
        "\t",
        "é",
        "日本",
        "💥",
        "%20",
        "%",
        "\\",
        "data:",
        "https:",
        "//",
        "/",
        "sourceMappingURL=",
        "//# ",
        "/*# ",
        "import",
        "export",
        "from",
        "(",
        "{",
        "}",
        "`",
        "${",
        "\"file\"",
        ":",
        ",",
        "[",
        "]",
        "b.css",
        "x",
        ";",
        "\r\n",
        "*",
        "<",
        ">",
        "<img ",
        "src=",
        "href=",
        "srcset=",
        " 2x",
        "<style>",
        "</style>",
        "<script>",
        "</script>",
        "<!--",
        "-->",
        "style=",
        "<base href=x>",
    ];

    /// Pieces that spell no trigger by themselves; the test still checks,
    /// since two of them may join into one (`url` + `(`).
    const QUIET_FRAGMENTS: &[&str] = &[
        ")",
        "\"",
        "'",
        "/*",
        "*/",
        "#",
        "?",
        "../",
        "./",
        "a.png",
        "\n",
        " ",
        "é",
        "日本",
        "💥",
        "%20",
        "%",
        "\\",
        "data:",
        "//",
        "/",
        "(",
        "url",
        "{",
        "}",
        "`",
        "${",
        "@",
        "sourceMapping",
        "URL=",
        "file",
        "imp",
        "ort",
        ":",
    ];

    fn random_text(rng: &mut Rng, alphabet: &[&str]) -> String {
        let len = rng.below(40);
        (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect()
    }

    /// Pieces of URLs, so that reference-shaped text is common enough for
    /// the rewriting half of the property to be exercised.
    const URL_PIECES: &[&str] = &[
        "a.png",
        "../",
        "./",
        "img/",
        "/",
        "%20",
        "é",
        "日本.css",
        "?v=1",
        "#x",
        "?#iefix",
        "b c",
        "%C3%A9",
        "%",
        ".",
        "..",
        "x.js",
        "'",
        ")",
        "data:",
        "//",
    ];

    /// The shapes a reference takes in each syntax, with `{}` for the URL.
    const REFERENCE_SHAPES: &[&str] = &[
        "url({})",
        "url( '{}' )",
        "url(\"{}\")",
        "@import '{}';",
        "@import url({});",
        "/*# sourceMappingURL={} */",
        "\n//# sourceMappingURL={}\n",
        "import x from \"./{}\";",
        "import('../{}')",
        "export * from './{}'",
        "{\"file\":\"{}\"}",
        "<img src=\"{}\">",
        "<a href='{}'>",
        "<link href={} rel=x>",
        "<img srcset=\"{} 1x, {} 2x\">",
        "<p style=\"background:url({})\">",
        "<style>a{b:url({})}</style>",
        "{\"icons\":[{\"src\": \"{}\"}]}",
    ];

    fn random_reference(rng: &mut Rng) -> String {
        let url: String = (0..1 + rng.below(4))
            .map(|_| URL_PIECES[rng.below(URL_PIECES.len())])
            .collect();
        REFERENCE_SHAPES[rng.below(REFERENCE_SHAPES.len())].replace("{}", &url)
    }

    fn random_text_with_references(rng: &mut Rng) -> String {
        let len = rng.below(30);
        (0..len)
            .map(|_| match rng.below(4) {
                0 => random_reference(rng),
                _ => FRAGMENTS[rng.below(FRAGMENTS.len())].to_string(),
            })
            .collect()
    }

    fn has_trigger(syntax: Syntax, text: &str, js_imports: bool) -> bool {
        let lower = text.to_ascii_lowercase();
        match syntax {
            Syntax::Css => {
                lower.contains("url(")
                    || lower.contains("@import")
                    || text.contains("sourceMappingURL")
            }
            Syntax::Js => {
                text.contains("sourceMappingURL")
                    || (js_imports && (text.contains("import") || text.contains("export")))
            }
            Syntax::SourceMap => text.contains("\"file\""),
            Syntax::Html => text.contains('<'),
            Syntax::WebManifest => text.contains("\"src\""),
            Syntax::Other => false,
        }
    }

    const MODES: [(Syntax, &str, bool); 7] = [
        (Syntax::Css, "css/sub/app.css", false),
        (Syntax::Js, "js/app.js", false),
        (Syntax::Js, "js/app.js", true),
        (Syntax::SourceMap, "js/app.js.map", false),
        (Syntax::Html, "blog/post.html", false),
        (Syntax::WebManifest, "app/site.webmanifest", false),
        (Syntax::Other, "img/logo.png", true),
    ];

    #[test]
    fn random_text_never_panics_and_rewrites_stably() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut rewritten = [0; MODES.len()];
        for _ in 0..6000 {
            let text = random_text_with_references(&mut rng);
            for (mode, (syntax, referrer, js_imports)) in MODES.into_iter().enumerate() {
                let refs = find_references(syntax, referrer, &text, js_imports);
                let mut last_end = 0;
                for r in &refs {
                    assert!(r.range.start >= last_end, "ordered, disjoint: {text:?}");
                    last_end = r.range.end;
                    assert_eq!(text.get(r.range.clone()), Some(r.url.as_str()), "{text:?}");
                    assert!(r.url.ends_with(&r.suffix), "{text:?}");
                    assert!(
                        !r.target.is_empty() && !r.target.starts_with('/'),
                        "{text:?}"
                    );
                    assert!(
                        !r.target
                            .split('/')
                            .any(|s| s.is_empty() || s == "." || s == ".."),
                        "{text:?}"
                    );
                }
                let once = rewrite(&text, &refs, fingerprinted);
                let again = rewrite(
                    &once,
                    &find_references(syntax, referrer, &once, js_imports),
                    fingerprinted,
                );
                assert_eq!(again, once, "idempotent for {syntax:?} on {text:?}");
                if once != text {
                    rewritten[mode] += 1;
                }
            }
        }
        // Every syntax but Other must have had plenty of real rewrites.
        let [css, js, js_imports, map, html, manifest, other] = rewritten;
        assert!(
            css > 1000
                && js > 200
                && js_imports > js + 200
                && map > 20
                && html > 500
                && manifest > 20
                && other == 0,
            "{rewritten:?}"
        );
    }

    #[test]
    fn random_text_without_a_trigger_comes_back_byte_identical() {
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut checked = 0;
        for _ in 0..4000 {
            let text = random_text(&mut rng, QUIET_FRAGMENTS);
            for (syntax, referrer, js_imports) in MODES {
                if has_trigger(syntax, &text, js_imports) {
                    continue;
                }
                checked += 1;
                let refs = find_references(syntax, referrer, &text, js_imports);
                assert_eq!(refs, vec![], "{syntax:?} on {text:?}");
                assert_eq!(rewrite(&text, &refs, fingerprinted), text);
            }
        }
        assert!(
            checked > 10_000,
            "the generator should mostly avoid triggers, checked {checked}"
        );
    }

    /// The same properties over arbitrary Unicode text as well as
    /// reference-shaped pieces, with proptest shrinking any failure to a
    /// minimal input.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn piece() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                prop::sample::select(FRAGMENTS).prop_map(String::from),
                (
                    prop::sample::select(REFERENCE_SHAPES),
                    prop::collection::vec(prop::sample::select(URL_PIECES), 1..5),
                )
                    .prop_map(|(shape, url)| shape.replace("{}", &url.concat())),
            ]
        }

        fn text() -> impl Strategy<Value = String> {
            prop::collection::vec(piece(), 0..16).prop_map(|pieces| pieces.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn rewriting_never_panics_and_is_idempotent(text in text()) {
                for (syntax, referrer, js_imports) in MODES {
                    let refs = find_references(syntax, referrer, &text, js_imports);
                    for r in &refs {
                        prop_assert_eq!(text.get(r.range.clone()), Some(r.url.as_str()));
                    }
                    let once = rewrite(&text, &refs, fingerprinted);
                    let found_again = find_references(syntax, referrer, &once, js_imports);
                    prop_assert_eq!(rewrite(&once, &found_again, fingerprinted), once.clone());
                    // Without percent-escapes to re-spell, a rewrite only
                    // inserts the hash into file names.
                    if !text.contains('%') {
                        let hash = format!(".{HASH}");
                        prop_assert_eq!(once.replace(&hash, ""), text.replace(&hash, ""));
                    }
                }
            }

            #[test]
            fn text_without_a_trigger_is_left_byte_identical(text in "[^(@=\"'`]*") {
                for (syntax, referrer, js_imports) in MODES {
                    let refs = find_references(syntax, referrer, &text, js_imports);
                    prop_assert!(refs.is_empty(), "{:?}", refs);
                    prop_assert_eq!(rewrite(&text, &refs, fingerprinted), text.clone());
                }
            }
        }
    }
}
