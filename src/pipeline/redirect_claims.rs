//! A redirect's source is never a key the deploy publishes, a key assetpub
//! keeps for itself, or an immutable object of the served deploy: either
//! the redirect would never be answered, or its object would overwrite a
//! file. Pure, like `claims`: one line per collision, naming both sides.

use std::collections::BTreeMap;

use crate::pipeline::claims::Reserved;
use crate::remote::manifest::{Entry, Layout, Manifest, objects_for};
use crate::settings::redirects::Rules;

pub fn collisions(
    files: &BTreeMap<String, Entry>,
    layout: Layout,
    reserved: &[Reserved],
    current: Option<&Manifest>,
    rules: &Rules,
) -> Vec<String> {
    // Every key the deploy serves, with its file; the logical path too,
    // which is what a page links to.
    let mut keys: BTreeMap<String, &str> = BTreeMap::new();
    for (logical, entry) in files {
        keys.insert(logical.clone(), logical);
        for o in objects_for(entry, layout.sidecars, layout.encoding) {
            keys.insert(o.key, logical);
        }
    }
    let mut served: BTreeMap<String, &str> = BTreeMap::new();
    if let Some(m) = current {
        for (logical, entry) in &m.files {
            for o in objects_for(entry, m.sidecars, m.object_encoding()) {
                if !o.stable {
                    served.insert(o.key, logical);
                }
            }
        }
    }
    let mut problems = Vec::new();
    for r in &rules.redirects {
        let rule = &r.rule;
        let from = format!("the redirect from `{}`", rule.from);
        if let Some(prefix) = rule.splat_prefix() {
            let prefix = prefix.trim_start_matches('/');
            let under: Vec<(&String, &&str)> = keys
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .collect();
            if let Some((key, logical)) = under.first() {
                problems.push(format!(
                    "{}: {from} takes every path under it, and the build publishes `{logical}` there (`{key}`{}); remove the rule or those files",
                    r.origin,
                    if under.len() > 1 {
                        format!(" and {} more", under.len() - 1)
                    } else {
                        String::new()
                    }
                ));
            }
            for res in reserved {
                let rk = res.key.trim_end_matches('/');
                if rk.starts_with(prefix) {
                    problems.push(format!(
                        "{}: {from} takes `{}`, {}; remove the rule",
                        r.origin, res.key, res.what
                    ));
                }
            }
            continue;
        }
        let key = rule.key();
        let path = rule.from.trim_start_matches('/');
        for k in [path, key.as_str()] {
            if let Some(logical) = keys.get(k) {
                problems.push(format!(
                    "{}: {from} is also a published file, `{logical}` (`{k}`); remove the rule or the file",
                    r.origin
                ));
                break;
            }
        }
        if let Some(res) = reserved
            .iter()
            .find(|res| res.covers(&key) || res.covers(path))
        {
            problems.push(format!(
                "{}: {from} is `{}`, {}; remove the rule",
                r.origin, res.key, res.what
            ));
        } else if let Some(logical) = served.get(&key) {
            problems.push(format!(
                "{}: {from} would overwrite `{key}`, the immutable object of `{logical}` in the served deploy; remove the rule",
                r.origin
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::manifest::Variant;
    use crate::settings::redirects::{Redirect, Sourced};

    fn entry(key: &str, object: Option<&str>) -> Entry {
        Entry {
            key: key.into(),
            object: object.map(Into::into),
            blake3: "ab".repeat(32),
            size: 1,
            integrity: String::new(),
            written: Default::default(),
            content_type: "text/html".into(),
            cache_control: "no-cache".into(),
            encodings: BTreeMap::new(),
            content_disposition: None,
            content_language: None,
            metadata: BTreeMap::new(),
        }
    }

    fn rules(list: &[(&str, &str)]) -> Rules {
        Rules {
            redirects: list
                .iter()
                .enumerate()
                .map(|(i, (from, to))| Sourced {
                    rule: Redirect {
                        from: from.to_string(),
                        to: to.to_string(),
                        status: 301,
                    },
                    origin: format!("`_redirects` line {}", i + 1),
                })
                .collect(),
            headers: Vec::new(),
        }
    }

    #[test]
    fn a_redirect_over_a_file_a_reserved_key_or_a_served_object_names_both() {
        let files: BTreeMap<String, Entry> = [
            (
                "about.html".to_string(),
                entry("about.html", Some("about.0123456789ab.html")),
            ),
            (
                "blog/post.html".to_string(),
                entry("blog/post.html", Some("blog/post.0123456789ab.html")),
            ),
            (
                "css/a.css".to_string(),
                entry("css/a.0123456789ab.css", None),
            ),
        ]
        .into();
        let layout = Layout {
            sidecars: false,
            encoding: Variant::Identity,
        };
        let reserved = vec![
            Reserved::new("manifest.json", "the key of assetpub's manifest"),
            Reserved::new(".assetpub/", "where assetpub keeps its own records"),
        ];
        let r = rules(&[
            ("/about.html", "/x"),
            ("/css/a.css", "/x"),
            ("/css/a.0123456789ab.css", "/x"),
            ("/manifest.json", "/x"),
            ("/.assetpub/lock", "/x"),
            ("/blog/*", "/news/:splat"),
            ("/fine", "/x"),
            ("/.assetpub*", "/x"),
        ]);
        let p = collisions(&files, layout, &reserved, None, &r);
        assert_eq!(p.len(), 7, "{p:#?}");
        assert!(p[0].starts_with("`_redirects` line 1: the redirect from `/about.html` is also a published file, `about.html`"), "{p:#?}");
        assert!(
            p[1].contains("line 2") && p[1].contains("`css/a.css`"),
            "{p:#?}"
        );
        assert!(
            p[2].contains("line 3") && p[2].contains("`css/a.0123456789ab.css`"),
            "{p:#?}"
        );
        assert!(
            p[3].contains("line 4") && p[3].contains("assetpub's manifest"),
            "{p:#?}"
        );
        assert!(
            p[4].contains("line 5") && p[4].contains("own records"),
            "{p:#?}"
        );
        assert!(
            p[5].contains("line 6") && p[5].contains("`blog/post.html`"),
            "{p:#?}"
        );
        assert!(
            p[6].contains("line 8") && p[6].contains("`.assetpub/`"),
            "{p:#?}"
        );

        let mut served = BTreeMap::new();
        served.insert("old.css".to_string(), entry("old.fedcba987654.css", None));
        let current = Manifest {
            version: 1,
            deploy: "d".into(),
            parent: None,
            created: "c".into(),
            commit: None,
            ci_run: None,
            message: None,
            sidecars: false,
            encoding: "identity".into(),
            files: served,
            switching: None,
            expires: None,
            conditional_writes: None,
            redirects: Vec::new(),
            headers: Vec::new(),
        };
        let p = collisions(
            &files,
            layout,
            &reserved,
            Some(&current),
            &rules(&[("/old.fedcba987654.css", "/x")]),
        );
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].contains("immutable object of `old.css`"), "{p:#?}");
    }
}
