//! `verify`: every object the current manifest names is there with the right
//! size and headers (and, on a directory target, the right bytes).

use std::io::Read;

use serde::Serialize;

use crate::commands::context::Context;
use crate::concurrency::limited;
use crate::error::{Error, Result};
use crate::remote::manifest::object_meta;
use crate::remote::manifest::{Entry, ObjectRef, Variant, objects_for};
use crate::store::{ContentDigest, Head, Store};

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub key: String,
    pub logical: String,
    pub problem: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub target: String,
    pub deploy: Option<String>,
    pub objects: usize,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn render(&self) -> String {
        let Some(deploy) = &self.deploy else {
            return format!("no deploy at {}: nothing to verify\n", self.target);
        };
        let mut out = String::new();
        for p in &self.problems {
            out.push_str(&format!("`{}` ({}): {}\n", p.key, p.logical, p.problem));
        }
        if self.ok() {
            out.push_str(&format!(
                "ok: {} objects of deploy {deploy} at {} verified\n",
                self.objects, self.target
            ));
        } else {
            out.push_str(&format!(
                "{} problem{} in {} objects of deploy {deploy} at {}\n",
                self.problems.len(),
                if self.problems.len() == 1 { "" } else { "s" },
                self.objects,
                self.target
            ));
        }
        out
    }
}

pub async fn verify(ctx: &mut Context) -> Result<VerifyReport> {
    let remote = ctx.remote_manifest().await?;
    let mut report = VerifyReport {
        target: ctx.store.describe(),
        deploy: None,
        objects: 0,
        problems: Vec::new(),
    };
    let Some(m) = remote.manifest else {
        return Ok(report);
    };
    report.deploy = Some(m.deploy.clone());
    if ctx
        .store
        .head(&crate::remote::manifest::Manifest::deploy_key(&m.deploy))
        .await?
        .is_none()
    {
        report.problems.push(Problem {
            key: crate::remote::manifest::Manifest::deploy_key(&m.deploy),
            logical: "-".into(),
            problem: "the deploy's versioned manifest is missing: it cannot be rolled back to"
                .into(),
        });
    }
    if ctx.config.django {
        let json = crate::remote::django::staticfiles_json(&m.files);
        if !crate::remote::django::remote_is_current(&ctx.store, &json).await? {
            report.problems.push(Problem {
                key: crate::remote::django::KEY.into(),
                logical: "-".into(),
                problem: "missing, or does not map the current deploy's files (`[manifest] django = true`): run `assetpub publish` to rewrite it".into(),
            });
        }
    }
    let headers_matter = ctx.config.is_s3();
    let mut work: Vec<(String, Entry, ObjectRef)> = Vec::new();
    for (logical, entry) in &m.files {
        for o in objects_for(entry, m.sidecars, m.object_encoding()) {
            work.push((logical.clone(), entry.clone(), o));
        }
    }
    report.objects = work.len();
    let store = ctx.store.clone();
    let checked = limited(
        ctx.config.target.concurrency,
        work,
        |(logical, entry, o)| {
            let store = store.clone();
            async move {
                let problem = check(&store, &entry, &o, headers_matter).await?;
                Ok::<_, Error>(problem.map(|problem| Problem {
                    key: o.key,
                    logical,
                    problem,
                }))
            }
        },
    )
    .try_collect(|e| Error::Runtime(format!("verify task failed: {e}")))
    .await?;
    report.problems.extend(checked.into_iter().flatten());
    report.problems.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(report)
}

async fn check(
    store: &dyn Store,
    entry: &Entry,
    o: &ObjectRef,
    headers_matter: bool,
) -> Result<Option<String>> {
    let Some(head) = store.head(&o.key).await? else {
        return Ok(Some("missing".into()));
    };
    let expected_size = match o.variant {
        Variant::Identity => entry.size,
        v => entry.encodings.get(v.name()).copied().unwrap_or(0),
    };
    if head.size != expected_size {
        return Ok(Some(format!(
            "size {} but the manifest says {expected_size}",
            head.size
        )));
    }
    if headers_matter {
        return Ok(header_problem(&head, entry, o));
    }
    let expected = entry.blake3.clone();
    let reader = match store.content_digest(&o.key).await? {
        ContentDigest::Missing => return Ok(Some("missing".into())),
        ContentDigest::Recorded(digest) => {
            return Ok((digest != Some(expected)).then(|| MISMATCH.into()));
        }
        ContentDigest::Bytes(reader) => reader,
    };
    let variant = o.variant;
    let actual = tokio::task::spawn_blocking(move || decoded_hash(reader, variant))
        .await
        .map_err(|e| Error::Runtime(format!("verify task failed: {e}")))?;
    Ok(match actual {
        Ok(h) if h == expected => None,
        Ok(_) => Some(MISMATCH.into()),
        Err(e) => Some(format!("cannot be read: {e}")),
    })
}

const MISMATCH: &str = "content does not match the manifest's blake3 (tampered or corrupt)";

fn header_problem(head: &Head, entry: &Entry, o: &ObjectRef) -> Option<String> {
    let want = object_meta(entry, o.variant, o.stable);
    let mut wrong = Vec::new();
    if head.meta.content_type != want.content_type {
        wrong.push(format!(
            "Content-Type {:?} (want {:?})",
            head.meta.content_type, want.content_type
        ));
    }
    if head.meta.cache_control != want.cache_control {
        wrong.push(format!(
            "Cache-Control {:?} (want {:?})",
            head.meta.cache_control, want.cache_control
        ));
    }
    if head.meta.content_encoding != want.content_encoding {
        wrong.push(format!(
            "Content-Encoding {:?} (want {:?})",
            head.meta.content_encoding, want.content_encoding
        ));
    }
    if head.meta.metadata.get("blake3") != Some(&entry.blake3) {
        wrong.push("x-amz-meta-blake3 does not match the manifest (object replaced?)".into());
    }
    (!wrong.is_empty()).then(|| wrong.join("; "))
}

/// blake3 of the file's decoded content, so a sidecar is checked against the
/// same hash as the file it encodes.
fn decoded_hash(file: Box<dyn Read + Send>, variant: Variant) -> std::io::Result<String> {
    let mut reader: Box<dyn Read> = match variant {
        Variant::Identity => Box::new(file),
        Variant::Gzip => Box::new(flate2::read::GzDecoder::new(file)),
        Variant::Br => Box::new(brotli::Decompressor::new(file, 64 * 1024)),
    };
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}
