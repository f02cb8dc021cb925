//! Redirects and response headers: `_redirects` and `_headers` at the root
//! of a source dir (the Netlify / Cloudflare Pages syntax), `[[redirects]]`
//! and the `headers` of `[[rules]]` in publish.toml. A subset of the syntax
//! is supported; anything else is refused naming the file, the line and
//! what is not supported, never dropped.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Config;
use crate::error::{Error, Result};

pub const REDIRECTS_FILE: &str = "_redirects";
pub const HEADERS_FILE: &str = "_headers";

/// The statuses a redirect may have.
pub const STATUSES: [u16; 4] = [301, 302, 307, 308];

/// One redirect: `from` is a decoded path, ending in `*` for a splat;
/// `to` a path or an absolute URL, with `:splat` where the splat goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    pub from: String,
    pub to: String,
    pub status: u16,
}

impl Redirect {
    /// The part of `from` before its `*`, for a splat.
    pub fn splat_prefix(&self) -> Option<&str> {
        self.from.strip_suffix('*')
    }

    /// The key that holds this redirect on a store that keeps one object a
    /// path (S3): the path without its leading `/`, and `index.html` for a
    /// directory, as S3 website endpoints look them up.
    pub fn key(&self) -> String {
        let path = self.from.trim_start_matches('/');
        if path.is_empty() || path.ends_with('/') {
            format!("{path}index.html")
        } else {
            path.to_string()
        }
    }

    /// Where a request for `path` goes, if this rule takes it.
    fn apply(&self, path: &str) -> Option<String> {
        match self.splat_prefix() {
            Some(prefix) => path
                .strip_prefix(prefix)
                .map(|rest| self.to.replace(":splat", rest)),
            None => (path == self.from).then(|| self.to.clone()),
        }
    }
}

/// Response headers for the requests a pattern matches: `path` (from
/// `_headers`: an exact path, or ending in `*`) or `glob` (from `[[rules]]`:
/// a glob over the logical paths of the build's files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderRule {
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub glob: Option<String>,
    pub headers: BTreeMap<String, String>,
}

impl HeaderRule {
    pub fn pattern(&self) -> String {
        match (&self.path, &self.glob) {
            (Some(p), _) => p.clone(),
            (None, Some(g)) => format!("match `{g}`"),
            (None, None) => String::new(),
        }
    }
}

/// A rule and where it was written (`` `dist/_redirects` line 3 ``,
/// `` `publish.toml` [[redirects]] #2 ``).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub rule: T,
    pub origin: String,
}

/// Every redirect and header rule of a build, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub redirects: Vec<Sourced<Redirect>>,
    pub headers: Vec<Sourced<HeaderRule>>,
}

impl Rules {
    pub fn redirects(&self) -> Vec<Redirect> {
        self.redirects.iter().map(|r| r.rule.clone()).collect()
    }

    pub fn headers(&self) -> Vec<HeaderRule> {
        self.headers.iter().map(|r| r.rule.clone()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.redirects.is_empty() && self.headers.is_empty()
    }

    /// A digest of the rules, for the inputs of a deploy.
    pub fn digest(&self) -> String {
        let text =
            serde_json::to_vec(&(self.redirects(), self.headers())).expect("rules serialize");
        blake3::hash(&text).to_hex()[..16].to_string()
    }
}

/// `[[redirects]]` in publish.toml.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct RawRedirect {
    pub from: String,
    pub to: String,
    pub status: Option<u16>,
}

/// Reads and checks the rules of the build (`_redirects` and `_headers` at
/// the root of each source dir, in the order of the dirs) and of
/// publish.toml. Every problem at once, exit 3.
pub fn load(config: &Config) -> Result<Rules> {
    let mut rules = Rules::default();
    let mut problems = Vec::new();
    let toml = config
        .path
        .as_ref()
        .map_or_else(|| "publish.toml".to_string(), |p| p.display().to_string());
    for dir in &config.sources {
        for (name, parse) in [
            (REDIRECTS_FILE, parse_redirects as Parser),
            (HEADERS_FILE, parse_headers as Parser),
        ] {
            let path = dir.join(name);
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("cannot read", &path, e)),
            };
            let file = path.display().to_string();
            match String::from_utf8(bytes) {
                Ok(text) => parse(&text, &file, &mut rules, &mut problems),
                Err(_) => problems.push(format!("`{file}` is not UTF-8 text")),
            }
        }
    }
    for (i, r) in config.redirects.iter().enumerate() {
        let origin = format!("`{toml}` [[redirects]] #{}", i + 1);
        let status = r
            .status
            .map_or_else(|| "301".to_string(), |s| s.to_string());
        match redirect(&r.from, &r.to, Some(&status)) {
            Ok(rule) => rules.redirects.push(Sourced { rule, origin }),
            Err(what) => problems.push(format!("{origin}: {what}")),
        }
    }
    for (i, rule) in config.rules.iter().enumerate() {
        if rule.headers.is_empty() {
            continue;
        }
        let origin = format!("`{toml}` [[rules]] #{} headers", i + 1);
        let mut headers = BTreeMap::new();
        for (name, value) in &rule.headers {
            match header(name, value) {
                Ok(()) => {
                    headers.insert(name.clone(), value.clone());
                }
                Err(what) => problems.push(format!("{origin}: {what}")),
            }
        }
        rules.headers.push(Sourced {
            rule: HeaderRule {
                path: None,
                glob: Some(rule.pattern.clone()),
                headers,
            },
            origin,
        });
    }
    problems.extend(duplicates(&rules.redirects));
    problems.extend(loops(&rules.redirects));
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(Error::Validation(problems))
    }
}

type Parser = fn(&str, &str, &mut Rules, &mut Vec<String>);

/// Lines without their terminator (LF or CRLF), numbered from 1, a BOM
/// dropped.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

/// `from [conditions] to [status]` a line; `#` starts a comment.
pub fn parse_redirects(text: &str, file: &str, rules: &mut Rules, problems: &mut Vec<String>) {
    for (n, line) in lines(text) {
        let content = line.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let origin = format!("`{file}` line {n}");
        let tokens: Vec<&str> = content.split_whitespace().collect();
        let result = match tokens.as_slice() {
            [_] => Err(format!(
                "`{content}` has a source but no target: write `/from /to [status]`"
            )),
            [_, to, ..] if to.contains('=') && !to.starts_with('/') && !to.contains("://") => Err(
                format!("query parameter conditions (`{to}`) are not supported"),
            ),
            [from, to] => redirect(from, to, None),
            [from, to, status] => redirect(from, to, Some(status)),
            [_, _, _, extra, ..] if extra.contains('=') => Err(format!(
                "conditions (`{extra}`: Country, Language, Role, Cookie ...) are not supported"
            )),
            [_, _, _, extra, ..] => Err(format!(
                "unexpected `{extra}` after the status: write `/from /to [status]`"
            )),
            [] => continue,
        };
        match result {
            Ok(rule) => rules.redirects.push(Sourced { rule, origin }),
            Err(what) => problems.push(format!("{origin}: {what}")),
        }
    }
}

/// A path pattern on a line of its own, then its `Name: value` lines,
/// indented; `#` starts a comment.
pub fn parse_headers(text: &str, file: &str, rules: &mut Rules, problems: &mut Vec<String>) {
    // The block being read: its rule, the line of its path, and whether
    // any header line followed it.
    type Block = Option<(HeaderRule, usize, bool)>;
    let mut block: Block = None;
    // The lines under a refused path are part of that refusal.
    let mut refused = false;
    let finish = |block: Block, rules: &mut Rules, problems: &mut Vec<_>| {
        if let Some((rule, n, lines)) = block {
            let origin = format!("`{file}` line {n}");
            if !lines {
                problems.push(format!(
                    "{origin}: `{}` has no headers: indent `Name: value` lines under it",
                    rule.path.as_deref().unwrap_or_default()
                ));
            } else if !rule.headers.is_empty() {
                rules.headers.push(Sourced { rule, origin });
            }
        }
    };
    for (n, line) in lines(text) {
        let content = line.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let origin = format!("`{file}` line {n}");
        let indented = line.starts_with([' ', '\t']);
        if !indented {
            finish(block.take(), rules, problems);
            refused = false;
            match path_pattern(content) {
                Ok(path) => {
                    block = Some((
                        HeaderRule {
                            path: Some(path),
                            glob: None,
                            headers: BTreeMap::new(),
                        },
                        n,
                        false,
                    ))
                }
                Err(what) => {
                    refused = true;
                    problems.push(format!("{origin}: {what}"));
                }
            }
            continue;
        }
        if refused {
            continue;
        }
        if let Some((_, _, lines)) = block.as_mut() {
            *lines = true;
        }
        if let Some(name) = content.strip_prefix('!') {
            problems.push(format!(
                "{origin}: detaching a header (`!{}`) is not supported",
                name.trim()
            ));
            continue;
        }
        let Some((name, value)) = content.split_once(':') else {
            problems.push(format!(
                "{origin}: `{content}` is not a `Name: value` header line"
            ));
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        let Some((rule, _, _)) = block.as_mut() else {
            problems.push(format!(
                "{origin}: header `{name}` comes before any path: put the path it is for on the line above, unindented"
            ));
            continue;
        };
        if let Err(what) = header(name, value) {
            problems.push(format!("{origin}: {what}"));
            continue;
        }
        // Written twice in a block: both values, as one list.
        rule.headers
            .entry(name.to_string())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value);
            })
            .or_insert_with(|| value.to_string());
    }
    finish(block.take(), rules, problems);
}

/// A redirect from its three fields, or why it is not supported.
pub fn redirect(
    from: &str,
    to: &str,
    status: Option<&str>,
) -> std::result::Result<Redirect, String> {
    let from = source_path(from, "source")?;
    let splat = from.ends_with('*');
    if to.is_empty() {
        return Err("the target is empty".to_string());
    }
    if to.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "the target `{}` holds a space or a control character",
            to.escape_debug()
        ));
    }
    let external = to.starts_with("http://") || to.starts_with("https://");
    if !external && !to.starts_with('/') || to.starts_with("//") {
        return Err(format!(
            "the target `{to}` must be a path starting with `/` or an `http://` or `https://` URL"
        ));
    }
    let path_part = if external {
        to.splitn(4, '/').nth(3).unwrap_or_default()
    } else {
        to
    };
    for placeholder in placeholders(path_part) {
        if placeholder == "splat" && splat {
            continue;
        }
        return Err(if placeholder == "splat" {
            format!(
                "`:splat` in the target `{to}` needs a source ending in `*` (`{from}` has none)"
            )
        } else {
            format!(
                "placeholders (`:{placeholder}` in `{to}`) are not supported; only a trailing `*` in the source and `:splat` in the target"
            )
        });
    }
    let status = match status {
        None => 301,
        Some(s) => {
            if let Some(code) = s.strip_suffix('!') {
                return Err(format!(
                    "`{code}!` (force) is not supported: a redirect from a path the build publishes is refused instead"
                ));
            }
            match s.parse::<u16>() {
                Ok(code) if STATUSES.contains(&code) => code,
                Ok(200) => {
                    return Err(
                        "status 200 (a rewrite, or a proxy) is not supported: use 301, 302, 307 or 308".to_string(),
                    );
                }
                Ok(code) => {
                    return Err(format!(
                        "status {code} is not supported: use 301, 302, 307 or 308"
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "`{s}` is not a status: write `/from /to [301|302|307|308]`"
                    ));
                }
            }
        }
    };
    Ok(Redirect {
        from,
        to: to.to_string(),
        status,
    })
}

/// The `:name` placeholders of a path: a `:` that starts a segment.
fn placeholders(path: &str) -> Vec<String> {
    path.split(['/', '?', '&', '='])
        .filter_map(|seg| seg.strip_prefix(':'))
        .filter(|name| name.starts_with(|c: char| c.is_ascii_alphabetic()))
        .map(|name| {
            name.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// A path to match requests against, decoded: starts with `/`, may end in
/// one `*`.
fn source_path(raw: &str, what: &str) -> std::result::Result<String, String> {
    if raw.starts_with("http://") || raw.starts_with("https://") || raw.starts_with("//") {
        return Err(format!(
            "a {what} with a host (`{raw}`) is not supported: write the path"
        ));
    }
    if !raw.starts_with('/') {
        return Err(format!(
            "the {what} `{raw}` must be a path starting with `/`"
        ));
    }
    if raw.contains(['?', '#']) {
        return Err(format!(
            "a query string or fragment in the {what} `{raw}` is not supported"
        ));
    }
    let stars = raw.matches('*').count();
    if stars > 1 || stars == 1 && !raw.ends_with('*') {
        return Err(format!(
            "`*` in `{raw}` is only supported once, at the end of the {what} (a splat)"
        ));
    }
    if let Some(p) = placeholders(raw).first() {
        return Err(format!(
            "placeholders (`:{p}` in `{raw}`) are not supported; only a trailing `*`"
        ));
    }
    let decoded = percent_decode(raw)
        .ok_or_else(|| format!("the {what} `{raw}` has a `%` escape that is not valid UTF-8"))?;
    if decoded.chars().any(char::is_control) || decoded.contains('\\') {
        return Err(format!(
            "the {what} `{}` holds a control character or a backslash",
            decoded.escape_debug()
        ));
    }
    if decoded.split('/').any(|s| s == ".." || s == ".") {
        return Err(format!("the {what} `{raw}` holds a `.` or `..` segment"));
    }
    if decoded.contains("//") {
        return Err(format!("the {what} `{raw}` holds an empty segment (`//`)"));
    }
    Ok(decoded)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A `_headers` path pattern.
fn path_pattern(content: &str) -> std::result::Result<String, String> {
    if content.contains(char::is_whitespace) {
        return Err(format!(
            "`{content}` is not a path: a path pattern stands alone on its line, and header lines are indented"
        ));
    }
    source_path(content, "path")
}

/// Headers assetpub or the server sets from the file itself, or that would
/// break the response: refused, with where to set them instead.
const MANAGED: &[(&str, &str)] = &[
    (
        "cache-control",
        "set it with `cache_control` in `[[rules]]`",
    ),
    ("content-type", "set it with `content_type` in `[[rules]]`"),
    (
        "content-disposition",
        "set it with `content_disposition` in `[[rules]]`",
    ),
    (
        "content-language",
        "set it with `content_language` in `[[rules]]`",
    ),
    (
        "content-encoding",
        "assetpub sets it from the object's encoding",
    ),
    ("content-length", "the server sets it"),
    ("transfer-encoding", "the server sets it"),
    ("connection", "the server sets it"),
    ("date", "the server sets it"),
    ("server", "the server sets it"),
    ("etag", "the server sets it"),
    ("last-modified", "the server sets it"),
    ("location", "write a redirect in `_redirects` instead"),
];

/// Whether `name` is an RFC 9110 token.
pub fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header that can be sent as written, or why not.
fn header(name: &str, value: &str) -> std::result::Result<(), String> {
    if !is_token(name) {
        return Err(format!(
            "`{}` is not a valid header name (RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~)",
            name.escape_debug()
        ));
    }
    if let Some((_, fix)) = MANAGED.iter().find(|(m, _)| m.eq_ignore_ascii_case(name)) {
        return Err(format!("`{name}` cannot be set by a header rule: {fix}"));
    }
    if value
        .chars()
        .any(|c| c == '\r' || c == '\n' || c == '\0' || (c.is_control() && c != '\t'))
    {
        return Err(format!(
            "the value of `{name}` holds a line break or a control character: `{}`",
            value.escape_debug()
        ));
    }
    if value.is_empty() {
        return Err(format!("`{name}` has an empty value"));
    }
    Ok(())
}

/// Two redirects from one source (or two to one key): only one could be
/// answered.
fn duplicates(redirects: &[Sourced<Redirect>]) -> Vec<String> {
    let mut first: BTreeMap<String, &Sourced<Redirect>> = BTreeMap::new();
    let mut problems = Vec::new();
    for r in redirects {
        let slot = match r.rule.splat_prefix() {
            Some(_) => r.rule.from.clone(),
            None => r.rule.key(),
        };
        match first.get(&slot) {
            Some(earlier) => problems.push(format!(
                "{}: a second redirect from `{}` (the first is {}); remove one",
                r.origin, r.rule.from, earlier.origin
            )),
            None => {
                first.insert(slot, r);
            }
        }
    }
    problems
}

/// Redirect loops and chains without end, each named once, with the lines
/// of its rules. A request is followed through the rules as a server
/// would (the first rule that takes a path wins) from each rule's source.
fn loops(redirects: &[Sourced<Redirect>]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen: BTreeSet<Vec<usize>> = BTreeSet::new();
    for start in redirects {
        let mut path = match start.rule.splat_prefix() {
            Some(prefix) => format!("{prefix}x"),
            None => start.rule.from.clone(),
        };
        let mut visited = vec![path.clone()];
        let mut used: Vec<usize> = Vec::new();
        let outcome = loop {
            let Some((i, next)) = redirects
                .iter()
                .enumerate()
                .find_map(|(i, r)| r.rule.apply(&path).map(|n| (i, n)))
            else {
                break None;
            };
            used.push(i);
            if next.starts_with("http://") || next.starts_with("https://") {
                break None;
            }
            let next = next
                .split(['?', '#'])
                .next()
                .unwrap_or_default()
                .to_string();
            let next = percent_decode(&next).unwrap_or(next);
            if visited.contains(&next) {
                visited.push(next);
                break Some("a redirect loop");
            }
            if used.len() > redirects.len() {
                break Some("a chain of redirects without end");
            }
            visited.push(next.clone());
            path = next;
        };
        let Some(what) = outcome else { continue };
        let mut key = used.clone();
        key.sort_unstable();
        key.dedup();
        if !seen.insert(key.clone()) {
            continue;
        }
        let chain: Vec<String> = visited.iter().map(|p| format!("`{p}`")).collect();
        let origins: Vec<&str> = key.iter().map(|&i| redirects[i].origin.as_str()).collect();
        problems.push(format!(
            "{what}: {} ({})",
            chain.join(" -> "),
            origins.join(", ")
        ));
    }
    problems
}

/// What a target can do with the rules, said per rule: on S3 a redirect is
/// an object answered with 301 by the website endpoint, a splat cannot be
/// expressed, and no header rule is sent. Warnings, one a rule.
pub fn s3_limits(rules: &Rules) -> Vec<String> {
    let mut out = Vec::new();
    for r in &rules.redirects {
        let rule = &r.rule;
        if rule.splat_prefix().is_some() {
            out.push(format!(
                "{}: `{} {} {}`: S3 cannot express a splat: not written; configure it on the CDN",
                r.origin, rule.from, rule.to, rule.status
            ));
        } else if rule.status != 301 {
            out.push(format!(
                "{}: `{} {} {}`: S3 website endpoints answer every redirect object with 301: served as 301",
                r.origin, rule.from, rule.to, rule.status
            ));
        }
    }
    for h in &rules.headers {
        let names: Vec<&str> = h.rule.headers.keys().map(String::as_str).collect();
        out.push(format!(
            "{}: {} for {}: S3 cannot store these headers: not sent; configure them on the CDN",
            h.origin,
            names.join(", "),
            h.rule.pattern()
        ));
    }
    out
}

/// The redirect objects of a deploy on S3, by key: the exact redirects,
/// each with its target.
pub fn s3_objects(redirects: &[Redirect]) -> BTreeMap<String, String> {
    redirects
        .iter()
        .filter(|r| r.splat_prefix().is_none())
        .map(|r| (r.key(), r.to.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirects(text: &str) -> std::result::Result<Vec<Redirect>, Vec<String>> {
        let mut rules = Rules::default();
        let mut problems = Vec::new();
        parse_redirects(text, "_redirects", &mut rules, &mut problems);
        if problems.is_empty() {
            problems.extend(loops(&rules.redirects));
        }
        if problems.is_empty() {
            Ok(rules.redirects())
        } else {
            Err(problems)
        }
    }

    fn headers(text: &str) -> std::result::Result<Vec<HeaderRule>, Vec<String>> {
        let mut rules = Rules::default();
        let mut problems = Vec::new();
        parse_headers(text, "_headers", &mut rules, &mut problems);
        if problems.is_empty() {
            Ok(rules.headers())
        } else {
            Err(problems)
        }
    }

    fn r(from: &str, to: &str, status: u16) -> Redirect {
        Redirect {
            from: from.into(),
            to: to.into(),
            status,
        }
    }

    #[test]
    fn every_supported_redirect_form() {
        let text = "\u{feff}# comment\n\n/old /new\r\n  /a   /b   302  \n/c /d 307\n/e /f 308\n/g /h 301\n/blog/* /news/:splat\n/ext https://example.org/x?y=1 302\n/docs/* https://docs.example.org/:splat\n/caf%C3%A9 /cafe\n/dir/ /other/\n";
        assert_eq!(
            redirects(text).unwrap(),
            vec![
                r("/old", "/new", 301),
                r("/a", "/b", 302),
                r("/c", "/d", 307),
                r("/e", "/f", 308),
                r("/g", "/h", 301),
                r("/blog/*", "/news/:splat", 301),
                r("/ext", "https://example.org/x?y=1", 302),
                r("/docs/*", "https://docs.example.org/:splat", 301),
                r("/café", "/cafe", 301),
                r("/dir/", "/other/", 301),
            ]
        );
        assert_eq!(r("/old", "/new", 301).key(), "old");
        assert_eq!(r("/dir/", "/x", 301).key(), "dir/index.html");
        assert_eq!(r("/", "/x", 301).key(), "index.html");
    }

    #[test]
    fn every_unsupported_redirect_form_names_its_line_and_what() {
        let cases: &[(&str, &str)] = &[
            ("/only-source", "has a source but no target"),
            (
                "/a /b 200",
                "status 200 (a rewrite, or a proxy) is not supported",
            ),
            ("/a /b 404", "status 404 is not supported"),
            ("/a /b 301!", "`301!` (force) is not supported"),
            ("/a /b fast", "`fast` is not a status"),
            ("/users/:id /u/:id", "placeholders (`:id` in `/users/:id`)"),
            ("/a /b/:id", "placeholders (`:id` in `/b/:id`)"),
            (
                "/a /b/:splat",
                "`:splat` in the target `/b/:splat` needs a source ending in `*`",
            ),
            (
                "/store id=:id /blog/:id 301",
                "query parameter conditions (`id=:id`)",
            ),
            ("/a /b 302 Country=us", "conditions (`Country=us`"),
            ("/a /b 302 Language=de", "conditions (`Language=de`"),
            ("/a /b 302 extra", "unexpected `extra`"),
            ("https://x.org/a /b", "a source with a host"),
            ("a /b", "must be a path starting with `/`"),
            ("/a b", "the target `b` must be a path"),
            ("/a //evil.org", "the target `//evil.org` must be a path"),
            ("/a?x=1 /b", "query string or fragment"),
            ("/a*/b /c", "only supported once, at the end"),
            ("/a/../b /c", "`..` segment"),
            ("/%ff /c", "not valid UTF-8"),
        ];
        for (line, want) in cases {
            let text = format!("/ok /fine\n{line}\n");
            let problems = redirects(&text).unwrap_err();
            assert_eq!(problems.len(), 1, "{line}: {problems:?}");
            assert!(
                problems[0].starts_with("`_redirects` line 2: "),
                "{line}: {problems:?}"
            );
            assert!(problems[0].contains(want), "{line}: {problems:?}");
        }
    }

    #[test]
    fn loops_and_endless_chains_are_refused_naming_every_line() {
        let two = redirects("/a /b\n/b /a\n").unwrap_err();
        assert_eq!(
            two,
            vec![
                "a redirect loop: `/a` -> `/b` -> `/a` (`_redirects` line 1, `_redirects` line 2)"
            ]
        );
        let three = redirects("/x /y\n/a /b\n/b /c 302\n/c /a\n").unwrap_err();
        assert_eq!(three.len(), 1, "{three:?}");
        assert!(
            three[0].contains("`/a` -> `/b` -> `/c` -> `/a`")
                && three[0].contains("line 2")
                && three[0].contains("line 4"),
            "{three:?}"
        );
        let own = redirects("/a /a\n").unwrap_err();
        assert!(
            own[0].starts_with("a redirect loop: `/a` -> `/a`"),
            "{own:?}"
        );
        let splat = redirects("/a/* /a/:splat\n").unwrap_err();
        assert!(splat[0].starts_with("a redirect loop"), "{splat:?}");
        let mut rules = Rules::default();
        let mut problems = Vec::new();
        parse_redirects(
            "/a /b\n/x/ /y\n/a /c 302\n/x/index.html /z\n",
            "_redirects",
            &mut rules,
            &mut problems,
        );
        assert_eq!(
            duplicates(&rules.redirects),
            vec![
                "`_redirects` line 3: a second redirect from `/a` (the first is `_redirects` line 1); remove one",
                "`_redirects` line 4: a second redirect from `/x/index.html` (the first is `_redirects` line 2); remove one",
            ]
        );
        let grows = redirects("/a/* /a/b/:splat\n").unwrap_err();
        assert!(
            grows[0].starts_with("a chain of redirects without end"),
            "{grows:?}"
        );
        let through = redirects("/old/* /new/:splat\n/new/x /old/x\n").unwrap_err();
        assert!(through[0].starts_with("a redirect loop"), "{through:?}");
        // A chain that ends, and the query and encoding of a target.
        redirects("/a /b\n/b /c\n/c https://example.org/a\n/d /e?from=/d\n").unwrap();
    }

    #[test]
    fn header_blocks() {
        let text = "# security\n/*\n  X-Frame-Options: DENY\n  Content-Security-Policy: default-src 'self'; img-src *\r\n\n/blog/*\n\tLink: </a.css>; rel=preload\n\tLink: </b.css>; rel=preload\n/about.html\n  X-Robots-Tag: noindex\n";
        let rules = headers(text).unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0].path.as_deref(), Some("/*"));
        assert_eq!(rules[0].headers["X-Frame-Options"], "DENY");
        assert_eq!(
            rules[0].headers["Content-Security-Policy"],
            "default-src 'self'; img-src *"
        );
        assert_eq!(
            rules[1].headers["Link"],
            "</a.css>; rel=preload, </b.css>; rel=preload"
        );
        assert_eq!(rules[2].path.as_deref(), Some("/about.html"));
    }

    #[test]
    fn every_unsupported_header_form_names_its_line_and_what() {
        let cases: &[(&str, &str, usize)] = &[
            (
                "/a\n  Bad Name: x\n",
                "`Bad Name` is not a valid header name",
                2,
            ),
            ("/a\n  X(y): x\n", "`X(y)` is not a valid header name", 2),
            ("/a\n  : x\n", "`` is not a valid header name", 2),
            ("/a\n  X-A: one\rtwo\n", "holds a line break", 2),
            ("/a\n  X-A:\n", "empty value", 2),
            ("/a\n  no colon\n", "is not a `Name: value` header line", 2),
            ("/a\n  ! X-A\n", "detaching a header", 2),
            ("  X-A: b\n", "comes before any path", 1),
            ("/a\n", "`/a` has no headers", 1),
            ("/a\n/b\n  X-A: b\n", "`/a` has no headers", 1),
            ("/users/:id\n  X-A: b\n", "placeholders (`:id`", 1),
            ("https://x.org/*\n  X-A: b\n", "a path with a host", 1),
            ("/a X-A: b\n", "is not a path", 1),
            (
                "/a\n  Cache-Control: no-store\n",
                "`cache_control` in `[[rules]]`",
                2,
            ),
            ("/a\n  content-type: text/plain\n", "`content_type`", 2),
            ("/a\n  Location: /b\n", "write a redirect", 2),
        ];
        for (text, want, line) in cases {
            let problems = headers(text).unwrap_err();
            assert_eq!(problems.len(), 1, "{text:?}: {problems:?}");
            assert!(
                problems[0].starts_with(&format!("`_headers` line {line}: ")),
                "{text:?}: {problems:?}"
            );
            assert!(problems[0].contains(want), "{text:?}: {problems:?}");
        }
    }

    #[test]
    fn tokens() {
        for ok in ["X-Frame-Options", "a", "x!#$%&'*+-.^_`|~9"] {
            assert!(is_token(ok), "{ok}");
        }
        for bad in ["", "a b", "a:b", "a\"", "a,b", "é", "a(b)", "a\tb"] {
            assert!(!is_token(bad), "{bad}");
        }
    }

    #[test]
    fn what_s3_does_with_each_rule_is_said() {
        let mut rules = Rules::default();
        let mut problems = Vec::new();
        parse_redirects(
            "/a /b\n/c /d 302\n/e/* /f/:splat\n",
            "_redirects",
            &mut rules,
            &mut problems,
        );
        parse_headers(
            "/*\n  X-Frame-Options: DENY\n",
            "_headers",
            &mut rules,
            &mut problems,
        );
        assert!(problems.is_empty());
        assert_eq!(
            s3_limits(&rules),
            vec![
                "`_redirects` line 2: `/c /d 302`: S3 website endpoints answer every redirect object with 301: served as 301",
                "`_redirects` line 3: `/e/* /f/:splat 301`: S3 cannot express a splat: not written; configure it on the CDN",
                "`_headers` line 1: X-Frame-Options for /*: S3 cannot store these headers: not sent; configure them on the CDN",
            ]
        );
        let objects = s3_objects(&rules.redirects());
        assert_eq!(
            objects.into_iter().collect::<Vec<_>>(),
            vec![
                ("a".to_string(), "/b".to_string()),
                ("c".to_string(), "/d".to_string())
            ]
        );
    }
}
