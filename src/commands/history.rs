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
    pub fn render(&self) -> String {
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
                ]
            })
            .collect();
        format!(
            "deploys at {} (newest first, * = current):\n{}",
            self.target,
            crate::util::table(
                &["", "DEPLOY", "CREATED", "FILES", "PARENT", "COMMIT"],
                &rows
            )
        )
    }
}
