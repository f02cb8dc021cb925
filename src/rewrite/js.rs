//! JavaScript: the `sourceMappingURL` comment and, when asked, relative
//! module imports (`import`, `export ... from`, `import()`).

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
