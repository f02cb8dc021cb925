//! What every command that talks to a target starts from: the resolved
//! config, the state DB, the store, and the remote manifest.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::remote::manifest::Manifest;
use crate::remote::switch::Remote;
use crate::report::Reporter;
use crate::settings::{Config, TargetUrl};
use crate::state::{DeployRecord, State, TargetInfo};
use crate::store::fs::FsStore;
use crate::store::s3::{S3Settings, S3Store};
use crate::store::{GetOutcome, Store};

pub struct Context {
    pub config: Config,
    pub state: State,
    pub store: Arc<dyn Store>,
    pub target: TargetInfo,
    pub reporter: Arc<dyn Reporter>,
}

/// What [`Context::served_manifest`] found.
pub enum Served {
    /// The target still serves the manifest the state DB holds, of `deploy`.
    Unchanged {
        deploy: String,
        etag: Option<String>,
    },
    Fetched(Remote),
}

impl Context {
    pub async fn open(config: Config, reporter: Arc<dyn Reporter>) -> Result<Context> {
        let state = State::open(&config.state_path, reporter.as_ref())?;
        let store = connect(&config).await?;
        let target = state.target(&config.target.url.to_string())?;
        Ok(Context {
            config,
            state,
            store,
            target,
            reporter,
        })
    }

    pub fn target_url(&self) -> String {
        self.config.target.url.to_string()
    }

    /// Reads `manifest.json`; one conditional request when the state DB has
    /// seen it before. A state DB behind the target (another machine
    /// deployed since) is brought up to date from it.
    pub async fn remote_manifest(&mut self) -> Result<Remote> {
        match self.fetch_manifest(false).await? {
            Served::Fetched(r) => Ok(r),
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
        Ok(Served::Fetched(Remote { manifest, etag }))
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

    /// Whether the store enforces conditional writes, probed once per target
    /// and remembered. Says so plainly when it does not.
    pub async fn conditional_writes(&mut self) -> Result<bool> {
        let enforced = match self.target.conditional_writes {
            Some(e) => e,
            None => {
                let e = self.store.probe_conditional_writes().await?;
                self.state.set_conditional_writes(self.target.id, e)?;
                self.target.conditional_writes = Some(e);
                e
            }
        };
        if !enforced {
            self.reporter.warn(&format!(
                "{} does not enforce conditional writes: concurrent deploys to it are not protected (run one deploy at a time)",
                self.store.describe()
            ));
        }
        Ok(enforced)
    }

    /// The target as the switch sees it.
    pub fn switch_target(&self, enforced: bool) -> crate::remote::switch::Target<'_> {
        crate::remote::switch::Target {
            store: &self.store,
            manifest_key: &self.config.manifest_key,
            concurrency: self.config.target.concurrency,
            enforced,
            django: self.config.django,
            reporter: self.reporter.as_ref(),
        }
    }

    /// Fetches one deploy's manifest from `.assetpub/deploys/`.
    pub async fn deploy_manifest(&self, deploy: &str) -> Result<Option<Manifest>> {
        crate::remote::switch::read_deploy(self.store.as_ref(), deploy).await
    }
}

pub fn deploy_record(m: &Manifest, uploaded: Option<(u64, u64)>) -> DeployRecord {
    let (uploaded, bytes) = uploaded.unwrap_or((0, 0));
    DeployRecord {
        id: m.deploy.clone(),
        parent: m.parent.clone(),
        created: m.created.clone(),
        files: m.files.len() as u64,
        uploaded,
        bytes,
        git_commit: m.commit.clone(),
        ci_run: m.ci_run.clone(),
    }
}

/// The store a target URL names: one line a backend.
pub async fn connect(config: &Config) -> Result<Arc<dyn Store>> {
    Ok(match &config.target.url {
        TargetUrl::Dir(p) => {
            Arc::new(FsStore::new(p.clone()).with_manifest_key(&config.manifest_key))
        }
        TargetUrl::S3 { bucket, prefix } => Arc::new(
            S3Store::connect(S3Settings {
                bucket: bucket.clone(),
                prefix: prefix.clone(),
                region: config.target.region.clone(),
                endpoint: config.target.endpoint.clone(),
                path_style: config.target.path_style,
                profile: config.target.profile.clone(),
                concurrency: config.target.concurrency,
                public_read: config.target.public_read,
                request_timeout: config.target.request_timeout,
            })
            .await?,
        ),
    })
}
