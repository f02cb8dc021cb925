//! What every command that talks to a target starts from: the resolved
//! config, the state DB and the store. Reading the served manifest through
//! the state DB is `served.rs`.

use std::sync::Arc;

use crate::error::Result;
use crate::remote::lock::{Lock, OnReleaseError, Taking, with_lock};
use crate::remote::manifest::Manifest;
use crate::report::Reporter;
use crate::settings::{Config, TargetUrl};
use crate::state::{DeployRecord, State, TargetInfo};
use crate::store::Store;
use crate::store::fs::FsStore;
use crate::store::s3::{S3Settings, S3Store};

pub struct Context {
    pub config: Config,
    pub state: State,
    pub store: Arc<dyn Store>,
    pub target: TargetInfo,
    pub reporter: Arc<dyn Reporter>,
    /// Set when the commands work on a preview: `store` is then the
    /// preview's part of the target.
    pub preview: Option<PreviewTarget>,
}

/// A preview: the target's store under `_previews/<name>/` (see
/// `commands::preview`).
pub struct PreviewTarget {
    pub name: String,
    /// `_previews/<name>/`, the key prefix in `root`.
    pub prefix: String,
    /// The whole target, the live site's root: where objects to reuse are
    /// copied from.
    pub root: Arc<dyn Store>,
    /// Its URL, from `[preview] base_url`.
    pub url: Option<String>,
    /// How long a deploy of it lives.
    pub ttl: std::time::Duration,
}

impl Context {
    pub async fn open(config: Config, reporter: Arc<dyn Reporter>) -> Result<Context> {
        let state = State::open(&config.state_path, reporter.as_ref())?;
        let store = connect(&config).await?;
        let mut target = state.target(&config.target.url.to_string())?;
        target.known_at(&store.describe());
        Ok(Context {
            config,
            state,
            store,
            target,
            reporter,
            preview: None,
        })
    }

    pub fn target_url(&self) -> String {
        self.config.target.url.to_string()
    }

    /// Records whether the store enforces conditional writes, learnt when
    /// a target's first run took the lock.
    fn learnt_conditional_writes(&mut self, enforced: bool) -> Result<()> {
        self.state
            .set_conditional_writes(self.target.id, enforced, &self.store.describe())?;
        self.target.conditional_writes = Some(enforced);
        self.warn_unless_enforced(enforced);
        Ok(())
    }

    /// Says plainly when the store does not enforce conditional writes.
    fn warn_unless_enforced(&self, enforced: bool) {
        if !enforced {
            self.reporter.warn(&format!(
                "{} does not enforce conditional writes: concurrent deploys to it are not protected (run one deploy at a time)",
                self.store.describe()
            ));
        }
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

    /// Runs `work` holding the target's deploy lock (see
    /// [`crate::remote::lock::with_lock`]), with whether the store enforces
    /// conditional writes: known from an earlier run or the served
    /// manifest, or learnt by taking the lock. A release that fails is a warning, or the
    /// command's failure with `fail_on_release`.
    pub async fn locked<T>(
        &mut self,
        command: &str,
        break_lock: bool,
        fail_on_release: bool,
        work: impl AsyncFnOnce(&mut Context, &Lock, bool) -> Result<T>,
    ) -> Result<T> {
        let known = self.target.conditional_writes;
        // Said before the lock is taken (a run that finds it held says it
        // too); learnt, once it is.
        if let Some(enforced) = known {
            self.warn_unless_enforced(enforced);
        }
        let on_release = if fail_on_release {
            OnReleaseError::Fail
        } else {
            OnReleaseError::Warn(self.reporter.clone())
        };
        let mut learnt = None;
        let taking = Taking {
            command,
            ttl: self.config.target.lock_ttl,
            enforced: known,
            break_lock,
        };
        let result = with_lock(
            self.store.clone(),
            taking,
            on_release,
            &mut learnt,
            async |lock| {
                if known.is_none() {
                    self.learnt_conditional_writes(lock.enforced())?;
                }
                work(self, lock, lock.enforced()).await
            },
        )
        .await;
        // Learnt, but the lock was not taken (another run holds it): still
        // recorded and said.
        if known.is_none()
            && self.target.conditional_writes.is_none()
            && let Some(enforced) = learnt
        {
            let _ = self.learnt_conditional_writes(enforced);
        }
        result
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
        message: m.message.clone(),
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
