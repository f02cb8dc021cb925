//! Resolving a URL written in one file to the logical path it names, and
//! writing a logical path back as a URL relative to its referrer.

/// The logical path a URL written in the file at `referrer` points to,
/// and the URL's query and fragment. None for what is not a file in the
/// published tree: empty, fragment-only, scheme, protocol-relative, a
/// directory, or a path that climbs above the root.
pub(super) fn resolve<'u>(referrer: &str, url: &'u str) -> Option<(String, &'u str)> {
    resolve_or_why(referrer, url).ok()
}

/// Why a URL names no file in the published tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unresolved {
    /// Not a path to a file at all (scheme, fragment, directory ...).
    NotAFile,
    /// A relative path whose `..` climb above the root: it names a file
    /// outside the source dir.
    AboveRoot,
}

/// [`resolve`], or why it names no file.
pub(super) fn resolve_or_why<'u>(
    referrer: &str,
    url: &'u str,
) -> Result<(String, &'u str), Unresolved> {
    // A backslash is a CSS or JS escape, or a Windows separator a browser
    // would normalise; either way the written form is not a plain URL.
    if url.is_empty()
        || url.starts_with('#')
        || url.starts_with("//")
        || url.contains('\\')
        || has_scheme(url)
    {
        return Err(Unresolved::NotAFile);
    }
    let (path, suffix) = url.split_at(url.find(['?', '#']).unwrap_or(url.len()));
    if path.is_empty() || path.ends_with('/') {
        return Err(Unresolved::NotAFile);
    }
    let absolute = path.starts_with('/');
    let (mut segments, relative) = match path.strip_prefix('/') {
        Some(rest) => (Vec::new(), rest),
        None => (referrer_dir(referrer), path),
    };
    let parts: Vec<&str> = relative.split('/').collect();
    for (n, raw) in parts.iter().enumerate() {
        let segment = percent_decode(raw).ok_or(Unresolved::NotAFile)?;
        let last = n + 1 == parts.len();
        match segment.as_str() {
            // `a//b` is a different URL from `a/b` to a server; guessing
            // which file it means could rewrite the wrong one.
            "" => return Err(Unresolved::NotAFile),
            "." | ".." if last => return Err(Unresolved::NotAFile),
            "." => {}
            ".." => {
                // An absolute path's `/..` stays at the root, as browsers
                // read it; a relative one leaves the tree.
                if segments.pop().is_none() {
                    return Err(if absolute {
                        Unresolved::NotAFile
                    } else {
                        Unresolved::AboveRoot
                    });
                }
            }
            s if s.contains('/') => return Err(Unresolved::NotAFile),
            _ => segments.push(segment),
        }
    }
    Ok((segments.join("/"), suffix))
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
