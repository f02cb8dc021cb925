//! The compressed sizes `plan` estimates for large files (see
//! [`Sizes::Estimated`]): replaced by the exact sizes the served manifest
//! records for the same content, and marked on the planned objects that
//! still carry one.

use std::collections::{BTreeMap, BTreeSet};

use crate::pipeline::plan::Plan;
use crate::pipeline::prepare::{Prepared, Sizes};
use crate::remote::manifest::{Entry, Layout, Manifest, Variant};

/// Takes into `entries` the sizes `current` records for the content whose
/// sizes `prepared` estimated, where it has them (the same bytes, in the
/// same layout): an unchanged file then compares equal with its served
/// entry. Returns the (logical path, encoding name) of the estimates left.
pub fn settle(
    entries: &mut BTreeMap<String, Entry>,
    prepared: &[Prepared],
    current: Option<&Manifest>,
    layout: Layout,
) -> BTreeSet<(String, String)> {
    let served =
        current.filter(|m| m.sidecars == layout.sidecars && m.object_encoding() == layout.encoding);
    let mut left = BTreeSet::new();
    for p in prepared.iter().filter(|p| !p.estimated.is_empty()) {
        let Some(entry) = entries.get_mut(&p.logical) else {
            continue;
        };
        let before = served
            .and_then(|m| m.files.get(&p.logical))
            .filter(|b| b.blake3 == entry.blake3 && b.size == entry.size);
        for encoding in &p.estimated {
            match before.and_then(|b| b.encodings.get(encoding)) {
                Some(&exact) => {
                    entry.encodings.insert(encoding.clone(), exact);
                }
                None => {
                    left.insert((p.logical.clone(), encoding.clone()));
                }
            }
        }
    }
    left
}

/// Marks the objects of `plan` whose sizes are estimates (`left`, from
/// [`settle`]).
pub fn mark(plan: &mut Plan, left: &BTreeSet<(String, String)>) {
    if left.is_empty() {
        return;
    }
    let lists = [
        &mut plan.uploads,
        &mut plan.confirm,
        &mut plan.header_updates,
        &mut plan.stable,
    ];
    for list in lists {
        for o in list.iter_mut() {
            if o.variant != Variant::Identity
                && left.contains(&(o.logical.clone(), o.variant.name().to_string()))
            {
                o.estimated = true;
            }
        }
    }
}

/// What `prepare` is asked for: estimates only where nothing is uploaded.
pub fn sizes(dry_run: bool, estimate: bool) -> Sizes {
    if dry_run && estimate {
        Sizes::Estimated
    } else {
        Sizes::Exact
    }
}
