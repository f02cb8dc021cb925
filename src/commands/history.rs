//! `history`: the deploys at the target, newest first, the current one
//! marked. Read from the target, so it works from any machine.

use serde::Serialize;

use crate::commands::context::{Context, deploy_record};
use crate::concurrency::limited;
use crate::error::{Error, Result};
use crate::remote::manifest::DEPLOYS_PREFIX;
use crate::state::DeployRecord;

#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    #[serde(flatten)]
    pub deploy: DeployRecord,
    pub current: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub target: String,
    pub current: Option<String>,
    pub deploys: Vec<HistoryEntry>,
}

pub async fn history(ctx: &mut Context) -> Result<History> {
    let remote = ctx.remote_manifest().await?;
    let current = remote.manifest.map(|m| m.deploy);
    let mut ids: Vec<String> = ctx
        .store
        .list(DEPLOYS_PREFIX)
        .await?
        .into_iter()
        .filter_map(|l| {
            l.key
                .strip_prefix(DEPLOYS_PREFIX)
                .and_then(|k| k.strip_suffix(".json"))
                .map(String::from)
        })
        .collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    let mut known = ctx.state.deploys(ctx.target.id)?;
    // Deploys made on other machines are read once and remembered.
    let unknown: Vec<String> = ids
        .iter()
        .filter(|id| !known.contains_key(*id))
        .cloned()
        .collect();
    let store = ctx.store.clone();
    let mut fetches = limited(16, unknown, |id| {
        let store = store.clone();
        async move {
            let key = crate::remote::manifest::Manifest::deploy_key(&id);
            match store.get(&key, None).await? {
                crate::store::GetOutcome::Found(f) => Ok(Some(
                    crate::remote::manifest::Manifest::parse(&f.bytes, &format!("`{key}`"))?,
                )),
                _ => Ok::<_, Error>(None),
            }
        }
    });
    // Each one is remembered as it arrives.
    while let Some(fetched) = fetches.next().await {
        let fetched =
            fetched.map_err(|e| Error::Runtime(format!("history task failed: {e}")))??;
        if let Some(m) = fetched {
            let record = deploy_record(&m, None);
            ctx.state.record_deploy(ctx.target.id, &record)?;
            known.insert(record.id.clone(), record);
        }
    }
    let mut records: Vec<DeployRecord> =
        ids.into_iter().filter_map(|id| known.remove(&id)).collect();
    records.sort_by(|a, b| (&b.created, &b.id).cmp(&(&a.created, &a.id)));
    let deploys = records
        .into_iter()
        .map(|d| HistoryEntry {
            current: current.as_deref() == Some(d.id.as_str()),
            deploy: d,
        })
        .collect();
    Ok(History {
        target: ctx.store.describe(),
        current,
        deploys,
    })
}

impl History {
    /// The table; with `width`, each line is cut to it (the message, last,
    /// is what gets cut).
    pub fn render(&self, width: Option<usize>) -> String {
        if self.deploys.is_empty() {
            return format!("no deploys at {}\n", self.target);
        }
        let rows: Vec<Vec<String>> = self
            .deploys
            .iter()
            .map(|e| {
                let d = &e.deploy;
                vec![
                    if e.current { "*".into() } else { String::new() },
                    d.id.clone(),
                    d.created.clone(),
                    d.files.to_string(),
                    d.parent.clone().unwrap_or_else(|| "-".into()),
                    d.git_commit
                        .as_deref()
                        .map_or_else(|| "-".into(), |c| c.chars().take(12).collect()),
                    // One line: a message is a subject, not a body.
                    d.message.as_deref().map_or_else(
                        || "-".into(),
                        |m| m.lines().next().unwrap_or("").to_string(),
                    ),
                ]
            })
            .collect();
        let table = crate::util::table(
            &[
                "", "DEPLOY", "CREATED", "FILES", "PARENT", "COMMIT", "MESSAGE",
            ],
            &rows,
        );
        let mut out = format!("deploys at {} (newest first, * = current):\n", self.target);
        for line in table.lines() {
            out.push_str(&cut(line, width));
            out.push('\n');
        }
        out
    }
}

/// `line` cut to `width` characters, the cut marked with `…`.
fn cut(line: &str, width: Option<usize>) -> String {
    let line = line.trim_end();
    match width {
        Some(w) if w > 1 && line.chars().count() > w => {
            let mut s: String = line.chars().take(w - 1).collect();
            s.push('…');
            s
        }
        _ => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(message: &str) -> History {
        History {
            target: "file://published".into(),
            current: Some("d1".into()),
            deploys: vec![HistoryEntry {
                current: true,
                deploy: DeployRecord {
                    id: "d1".into(),
                    parent: None,
                    created: "2026-11-30T00:00:00Z".into(),
                    files: 3,
                    uploaded: 3,
                    bytes: 10,
                    git_commit: None,
                    ci_run: None,
                    message: Some(message.into()),
                },
            }],
        }
    }

    #[test]
    fn the_message_is_cut_to_the_terminal_width() {
        let h = history("Fix the header on every page of the blog and the docs");
        let full = h.render(None);
        assert!(full.contains("Fix the header on every page of the blog and the docs"));
        let cut = h.render(Some(75));
        for line in cut.lines() {
            assert!(line.chars().count() <= 75, "{line:?}");
        }
        assert!(cut.contains('…'), "{cut}");
        assert!(cut.contains("Fix the"), "{cut}");
    }

    #[test]
    fn only_the_subject_of_a_long_message_is_shown() {
        let h = history("Subject line\n\nBody that goes on");
        let out = h.render(None);
        assert!(
            out.contains("Subject line") && !out.contains("Body"),
            "{out}"
        );
    }
}
