//! What a text file references, read out of the bytes the hashing pass
//! already holds, so a stylesheet or script is read once. Both the hasher
//! and the reference graph ([`super::references`]) start from this.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::rewrite::{self, Syntax};
use crate::settings::Config;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ref {
    pub target: String,
    pub url: String,
    /// A back-reference that does not decide the referrer's key.
    pub weak: bool,
}

impl Ref {
    /// In place of a file's references: the file is no text the scanner
    /// reads (see [`Scanner::scan`]), so whatever it references is left as
    /// written. Kept with the references, so that a run that takes them
    /// from the cache says it too.
    pub fn not_text() -> Ref {
        Ref {
            target: String::new(),
            url: String::new(),
            weak: false,
        }
    }

    pub fn is_not_text(&self) -> bool {
        self.url.is_empty()
    }
}

/// How a file is read for references, and the key of its references in the
/// cache. The `/2` is the scanner's version: its references include URLs
/// that leave the source dir, and those of UTF-16 stylesheets, which the
/// first one left out.
pub(super) fn mode(syntax: Syntax, js_imports: bool, html: bool) -> Option<&'static str> {
    match syntax {
        Syntax::Css => Some("css/2"),
        Syntax::Js if js_imports => Some("js+imports/2"),
        Syntax::Js => Some("js/2"),
        Syntax::SourceMap => Some("map/2"),
        Syntax::Html if html => Some("html/2"),
        Syntax::WebManifest if html => Some("webmanifest/2"),
        Syntax::Html | Syntax::WebManifest => None,
        Syntax::Other => None,
    }
}

/// Reads a text file's references out of its bytes. The hashing pass runs
/// it on the bytes it already holds, so a stylesheet or script is read once.
pub struct Scanner {
    rewrite: bool,
    js_imports: bool,
    html: bool,
}

impl Scanner {
    pub fn new(config: &Config) -> Scanner {
        Scanner {
            rewrite: config.rewrite,
            js_imports: config.rewrite_js_imports,
            html: config.rewrite_html,
        }
    }

    /// Whether the file's syntax can hold references to rewrite.
    pub fn wants(&self, logical: &str) -> bool {
        self.rewrite && mode(Syntax::for_path(logical), self.js_imports, self.html).is_some()
    }

    /// The file's references, and its text with where they were found
    /// when there are any (to rewrite them without scanning again).
    pub fn scan(&self, logical: &str, bytes: Vec<u8>) -> (Vec<Ref>, Option<ScannedText>) {
        let syntax = Syntax::for_path(logical);
        // Other bytes than UTF-8 text (or a UTF-16 stylesheet) cannot hold
        // references we could rewrite safely. A stylesheet is expected to
        // hold some, so that is said (a NUL is no CSS: UTF-16 without a BOM
        // or `@charset`, which reads as valid UTF-8).
        let decoded = rewrite::decode(syntax, bytes)
            .ok()
            .filter(|(text, _)| syntax != Syntax::Css || !text.contains('\0'));
        let Some((text, encoding)) = decoded else {
            let refs = if syntax == Syntax::Css {
                vec![Ref::not_text()]
            } else {
                Vec::new()
            };
            return (refs, None);
        };
        let (found, outside) =
            rewrite::find_references_and_outside(syntax, logical, &text, self.js_imports);
        let mut seen = BTreeSet::new();
        let refs: Vec<Ref> = found
            .iter()
            .filter(|r| seen.insert((&r.target, &r.url)))
            .map(|r| Ref {
                target: r.target.clone(),
                url: r.url.clone(),
                weak: syntax == Syntax::SourceMap,
            })
            .collect();
        let text = (!refs.is_empty()).then_some(ScannedText {
            text,
            encoding,
            found,
        });
        // URLs that leave the source dir resolve to no target; they are
        // kept so that the reference graph can warn about them.
        let mut refs = refs;
        let mut seen_outside = BTreeSet::new();
        refs.extend(
            outside
                .into_iter()
                .filter(|u| seen_outside.insert(u.clone()))
                .map(|url| Ref {
                    target: String::new(),
                    url,
                    weak: false,
                }),
        );
        (refs, text)
    }
}

/// A text file as scanned: its content, the encoding it was read in, and
/// the references found in it.
#[derive(Debug, Clone)]
pub struct ScannedText {
    pub text: String,
    pub encoding: rewrite::TextEncoding,
    found: Vec<rewrite::Reference>,
}

impl ScannedText {
    /// The file's bytes with its references to `targets` rewritten, in the
    /// encoding it was read in, as `apply` would, without finding them
    /// again.
    pub fn apply(&self, targets: &BTreeMap<String, String>) -> Vec<u8> {
        rewrite::encode(
            rewrite::rewrite(&self.text, &self.found, |t| targets.get(t).cloned()),
            self.encoding,
        )
    }
}
