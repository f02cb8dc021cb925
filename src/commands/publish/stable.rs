//! The stable keys a publish writes: a copy of its object for a page whose
//! object is on the target, or the page's bytes straight for a page
//! written straight (a store without releases), with the MD5 each was
//! written with, for the manifest to record (`Entry::written`).

use std::collections::HashMap;
use std::sync::Arc;

use md5::{Digest as _, Md5};

use crate::commands::context::Context;
use crate::error::{Error, Result};
use crate::pipeline::payload::{self, Payload};
use crate::pipeline::plan::Plan;
use crate::pipeline::prepare::Prepared;
use crate::remote::manifest::{Variant, object_meta};
use crate::remote::switch::StableWrite;
use crate::store::CopyJob;

/// A stable key written straight: which file and variant, with the MD5
/// (hex) of its bytes.
pub struct Written {
    pub logical: String,
    pub variant: Variant,
    pub md5: String,
}

/// The writes of `plan.stable`, in order, and what was written straight.
/// The bytes are made here, before the switch, so that the switch only
/// sends them.
pub async fn writes(
    ctx: &Context,
    plan: &Plan,
    files: &HashMap<String, Arc<Prepared>>,
) -> Result<(Vec<StableWrite>, Vec<Written>)> {
    let straight: Vec<(Arc<Prepared>, Variant)> = plan
        .stable
        .iter()
        .filter(|o| o.copy_of.is_none())
        .map(|o| (files[&o.logical].clone(), o.variant))
        .collect();
    let js_imports = ctx.config.rewrite_js_imports;
    let made = tokio::task::spawn_blocking(move || -> Result<Vec<(Payload, String)>> {
        let objects: Vec<(&Prepared, Variant)> =
            straight.iter().map(|(p, v)| (p.as_ref(), *v)).collect();
        payload::payloads(&objects, js_imports)?
            .into_iter()
            .map(|p| {
                let md5 = md5_hex(&p)?;
                Ok((p, md5))
            })
            .collect()
    })
    .await
    .map_err(|e| Error::Runtime(format!("preparing the pages failed: {e}")))??;
    let mut made = made.into_iter();
    let mut writes = Vec::with_capacity(plan.stable.len());
    let mut written = Vec::new();
    for o in &plan.stable {
        let entry = &files[&o.logical].entry;
        let meta = object_meta(entry, o.variant, true);
        match &o.copy_of {
            Some(from) => writes.push(StableWrite::Copy(CopyJob {
                from: from.clone(),
                to: o.key.clone(),
                meta,
            })),
            None => {
                let (payload, md5) = made.next().expect("a payload for every straight write");
                written.push(Written {
                    logical: o.logical.clone(),
                    variant: o.variant,
                    md5,
                });
                writes.push(StableWrite::Put {
                    key: o.key.clone(),
                    body: super::upload::body(payload),
                    meta,
                });
            }
        }
    }
    Ok((writes, written))
}

/// The MD5 of a payload, in hex: the ETag S3 gives an object written in
/// one request. A file is read as its upload reads it, and refused the
/// same way when it changed since it was collected.
fn md5_hex(p: &Payload) -> Result<String> {
    match p {
        Payload::Bytes(b) => Ok(Md5::digest(b.as_slice())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()),
        Payload::File { path, size, blake3 } => crate::store::s3::file_md5_hex(path, *size, blake3),
    }
}
