//! The served `manifest.json`, read through the state DB: one conditional
//! request when the state DB has seen it, the state DB brought up to date
//! when the target moved on, and what was read remembered.

use crate::commands::context::{Context, deploy_record};
use crate::error::{Error, Result};
use crate::remote::manifest::Manifest;
use crate::remote::switch::Remote;
use crate::store::GetOutcome;

/// What [`Context::served_manifest`] found.
pub enum Served {
    /// The target still serves the manifest the state DB holds, of `deploy`.
    Unchanged {
        deploy: String,
        etag: Option<String>,
    },
    Fetched(Box<Remote>),
}

impl Context {
    /// Reads `manifest.json`; one conditional request when the state DB has
    /// seen it before. A state DB behind the target (another machine
    /// deployed since) is brought up to date from it.
    pub async fn remote_manifest(&mut self) -> Result<Remote> {
        match self.fetch_manifest(false).await? {
            Served::Fetched(r) => Ok(*r),
            Served::Unchanged { .. } => unreachable!("only asked for with head_only"),
        }
    }

    /// Which deploy the target serves, for a caller that needs the
    /// manifest's entries only if it changed: when the target still serves
    /// the manifest the state DB holds (a conditional GET answered 304), its
    /// deploy is known without reading or parsing the entries.
    pub async fn served_manifest(&mut self) -> Result<Served> {
        self.fetch_manifest(true).await
    }

    async fn fetch_manifest(&mut self, head_only: bool) -> Result<Served> {
        let key = self.config.manifest_key.clone();
        let cached_etag = self
            .target
            .manifest_etag
            .clone()
            .filter(|_| self.target.has_manifest_json);
        let outcome = self.store.get(&key, cached_etag.as_deref()).await?;
        let what = format!("`{key}` at {}", self.store.describe());
        // None: the state DB already holds the target's manifest as it is.
        let mut seen = None;
        let mut fetched_etag = None;
        let manifest = match outcome {
            GetOutcome::Missing => {
                seen = Some((None, None));
                None
            }
            GetOutcome::NotModified => {
                // The manifest the state DB holds, and with it the deploy
                // it names (both are remembered together).
                if head_only && let Some(deploy) = self.target.current_deploy.clone() {
                    return Ok(Served::Unchanged {
                        deploy,
                        etag: cached_etag,
                    });
                }
                let json = self.state.manifest_json(self.target.id)?.ok_or_else(|| {
                    Error::Runtime("the state DB lost its copy of the manifest".into())
                })?;
                Some(Manifest::parse(json.as_bytes(), &what)?)
            }
            GetOutcome::Found(f) => {
                let m = Manifest::parse(&f.bytes, &what)?;
                let json = String::from_utf8(f.bytes)
                    .map_err(|_| Error::Store(format!("{what} is not UTF-8")))?;
                fetched_etag = f.etag.clone();
                // A manifest that records a switch under way is not
                // remembered by its ETag: the next run must read it whole
                // to see whether the switch finished.
                let etag = if m.switching.is_some() { None } else { f.etag };
                seen = Some((etag, Some(json)));
                Some(m)
            }
        };
        let remote_deploy = manifest.as_ref().map(|m| m.deploy.clone());
        if self.target.current_deploy.is_none() && remote_deploy.is_some() {
            self.reporter.note(&format!(
                "the state DB has no record of {}: starting from its manifest.json (deploy {})",
                self.store.describe(),
                remote_deploy.as_deref().unwrap_or_default()
            ));
        } else if self.target.current_deploy.is_some()
            && self.target.current_deploy != remote_deploy
        {
            self.reporter.note(&format!(
                "the state DB was behind {}: current deploy is {}, not {}; using the target's manifest",
                self.store.describe(),
                remote_deploy.as_deref().unwrap_or("(none)"),
                self.target.current_deploy.as_deref().unwrap_or("(none)")
            ));
        }
        if let Some(m) = &manifest {
            self.state
                .record_deploy(self.target.id, &deploy_record(m, None))?;
            // The probe's answer travels with the manifest: a runner with
            // no state DB need not probe the store again.
            if self.target.conditional_writes.is_none()
                && let Some(enforced) = m.conditional_writes
            {
                self.state.set_conditional_writes(
                    self.target.id,
                    enforced,
                    &self.store.describe(),
                )?;
                self.target.conditional_writes = Some(enforced);
            }
        }
        let etag = match seen {
            Some((etag, json)) => {
                self.remember(etag.as_deref(), json.as_deref(), remote_deploy.as_deref())?;
                etag.or(fetched_etag)
            }
            // Already in the state DB: rewriting it (megabytes for a large
            // site) on every run is wasted work.
            None => cached_etag,
        };
        Ok(Served::Fetched(Box::new(Remote { manifest, etag })))
    }

    pub fn remember(
        &mut self,
        etag: Option<&str>,
        json: Option<&str>,
        deploy: Option<&str>,
    ) -> Result<()> {
        self.state
            .set_remote_manifest(self.target.id, etag, json, deploy)?;
        self.target.manifest_etag = etag.map(String::from);
        self.target.has_manifest_json = json.is_some();
        self.target.current_deploy = deploy.map(String::from);
        Ok(())
    }
}
