//! Which setting a TOML error is about: the parser says where (a byte span),
//! and the setting is the key or value found there, named as the user wrote
//! it (`[target] lock_ttl`, `[[rules]] #2 fingerprint`,
//! `[env.staging.target] endpoint`).

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// One step down the document: a key, or an element of an array.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// What the span of an error points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Culprit {
    /// A value: the setting it is the value of (`[source] max_file_size`).
    Value(String),
    /// A key (an unknown one): the table it is in (`[target]`), or `None`
    /// at the top level of the file.
    Key { table: Option<String>, key: String },
}

/// What `span` points at in `text`, if it parses.
pub(super) fn culprit(text: &str, span: &Range<usize>) -> Option<Culprit> {
    let doc = DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    match in_table(doc.get_ref(), span, &mut path)? {
        Found::Value => Some(Culprit::Value(setting(&path))),
        Found::Key => {
            let key = match path.pop() {
                Some(Step::Key(k)) => k,
                _ => return None,
            };
            let table = (!path.is_empty()).then(|| setting(&path));
            Some(Culprit::Key { table, key })
        }
    }
}

enum Found {
    Key,
    Value,
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

/// The deepest key or value whose span holds `span`. A table made by a
/// `[header]` has the header's span, not its contents', so every entry is
/// searched, not only those whose span holds `span`.
fn in_table(table: &DeTable<'_>, span: &Range<usize>, path: &mut Vec<Step>) -> Option<Found> {
    for (k, v) in table.iter() {
        path.push(Step::Key(k.get_ref().to_string()));
        if contains(&k.span(), span) {
            return Some(Found::Key);
        }
        if let Some(found) = in_value(v.get_ref(), span, path) {
            return Some(found);
        }
        if contains(&v.span(), span) {
            return Some(Found::Value);
        }
        path.pop();
    }
    None
}

fn in_value(value: &DeValue<'_>, span: &Range<usize>, path: &mut Vec<Step>) -> Option<Found> {
    match value {
        DeValue::Table(t) => in_table(t, span, path),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                if let Some(found) = in_value(item.get_ref(), span, path) {
                    return Some(found);
                }
                if contains(&item.span(), span) {
                    return Some(Found::Value);
                }
                path.pop();
            }
            None
        }
        _ => None,
    }
}

/// A path into the document as the setting's name: the table as its header
/// is written, then the key within it.
fn setting(path: &[Step]) -> String {
    let keys = |steps: &[Step]| -> Vec<String> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Key(k) => Some(k.clone()),
                Step::Index(_) => None,
            })
            .collect()
    };
    let (table, rest) = match path {
        [Step::Key(rules), Step::Index(i), rest @ ..] if rules == "rules" => {
            (format!("[[rules]] #{}", i + 1), rest)
        }
        [Step::Key(env), rest @ ..] if env == "env" => {
            // `[env]`, `[env.NAME]` or `[env.NAME.SECTION]`, then the key.
            let take = rest.len().min(2);
            let mut names = vec![env.clone()];
            names.extend(keys(&rest[..take]));
            (format!("[{}]", names.join(".")), &rest[take..])
        }
        [Step::Key(section), rest @ ..] => (format!("[{section}]"), rest),
        _ => return String::new(),
    };
    let rest = keys(rest);
    if rest.is_empty() {
        table
    } else {
        format!("{table} {}", rest.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, needle: &str) -> Option<Culprit> {
        let start = text.find(needle).expect("needle");
        culprit(text, &(start..start + needle.len()))
    }

    fn value(s: &str) -> Option<Culprit> {
        Some(Culprit::Value(s.to_string()))
    }

    #[test]
    fn values_are_named_by_their_table_and_key() {
        let text = "[source]\ndirs = [\"a\", 7]\nmax_file_size = -5\n[target]\nlock_ttl = \"0s\"\n\
                    [[rules]]\nmatch = \"a\"\n[[rules]]\nmatch = \"b\"\nfingerprint = \"x\"\nmetadata = { team = 42 }\n\
                    [env.staging.target]\nendpoint = \"nope\"\n[env.prod]\ncdn = true\n";
        assert_eq!(at(text, "-5"), value("[source] max_file_size"));
        assert_eq!(at(text, "7"), value("[source] dirs"));
        assert_eq!(at(text, "\"0s\""), value("[target] lock_ttl"));
        assert_eq!(at(text, "\"x\""), value("[[rules]] #2 fingerprint"));
        assert_eq!(at(text, "42"), value("[[rules]] #2 metadata.team"));
        assert_eq!(at(text, "\"nope\""), value("[env.staging.target] endpoint"));
        assert_eq!(at(text, "true"), value("[env.prod.cdn]"));
    }

    #[test]
    fn a_key_is_named_with_its_table() {
        let text = "top = 1\n[target]\nurll = \"x\"\n[env.s.target]\nbukket = 1\n";
        assert_eq!(
            at(text, "top"),
            Some(Culprit::Key {
                table: None,
                key: "top".into()
            })
        );
        assert_eq!(
            at(text, "urll"),
            Some(Culprit::Key {
                table: Some("[target]".into()),
                key: "urll".into()
            })
        );
        assert_eq!(
            at(text, "bukket"),
            Some(Culprit::Key {
                table: Some("[env.s.target]".into()),
                key: "bukket".into()
            })
        );
    }
}
