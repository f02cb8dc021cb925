//! What lives on the target besides the site's own objects: the manifest
//! format and its reserved keys, the switch, the lock, and Django's `staticfiles.json`.

pub mod django;
pub mod lock;
pub mod manifest;
pub mod switch;
