//! Which of the three config shapes a file has, decided from its top-level keys only; a file
//! that could mean two things is an error. No IO.

use toml::de::DeValue;

use super::http;
use super::l4::{L4_KEYS, SHARED_KEYS};
use super::walk::{Diags, Section};
use crate::plan::Shape;

/// The detected shape. `decided` is false when nothing but shared or own keys was found
/// (such a file is read as rpxy-l4, which may legitimately serve only the status page).
pub(crate) struct Detected {
    pub(crate) shape: Shape,
    pub(crate) decided: bool,
}

/// rpxy-l4 keys that rpxy does not have at its top level.
pub(crate) fn is_l4_only(key: &str) -> bool {
    L4_KEYS.contains(&key) && !SHARED_KEYS.contains(&key)
}

/// rpxy keys that rpxy-l4 does not have. An empty `[experimental]` counts for neither:
/// upstream's rpxy-l4 spec shows it as a (commented) rpxy-l4 table too.
fn is_http_only(key: &str, v: &DeValue) -> bool {
    if key == "experimental" && matches!(v, DeValue::Table(t) if t.is_empty()) {
        return false;
    }
    http::TOP_KEYS.contains(&key) && !SHARED_KEYS.contains(&key)
}

/// Decide the shape, or report why it cannot be decided.
pub(crate) fn detect(d: &mut Diags, root: &Section) -> Option<Detected> {
    if root.has("l4") {
        return Some(Detected {
            shape: Shape::Combined,
            decided: true,
        });
    }
    let entries = root.entries();
    let l4_key = entries.iter().find(|(k, _, _)| is_l4_only(k));
    let http_key = entries
        .iter()
        .find(|(k, _, v)| is_http_only(k, v.get_ref()));
    match (l4_key, http_key) {
        (Some((lk, lspan, _)), Some((hk, hspan, _))) => {
            let (ll, hl) = (d.line(lspan), d.line(hspan));
            d.error(
                lspan,
                format!(
                    "this file mixes rpxy-l4 keys (`{lk}`, line {ll}) with rpxy keys (`{hk}`, line {hl}); to run both, move the L4 keys into an `[l4]` table (the combined shape)"
                ),
            );
            None
        }
        (Some(_), None) => Some(Detected {
            shape: Shape::L4,
            decided: true,
        }),
        (None, Some(_)) => Some(Detected {
            shape: Shape::Http,
            decided: true,
        }),
        (None, None) => Some(Detected {
            shape: Shape::L4,
            decided: false,
        }),
    }
}
