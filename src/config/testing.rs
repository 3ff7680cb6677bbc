//! Helpers shared by the config unit tests. No IO.
#![allow(clippy::indexing_slicing)]

use super::{Diagnostic, Loaded, parse};

/// Parse a config that must be valid; the failure shows every diagnostic.
pub(crate) fn ok(text: &str) -> Loaded {
    match parse(text, "t.toml") {
        Ok(l) => l,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

/// Parse a config that must be rejected; its diagnostics.
pub(crate) fn errs(text: &str) -> Vec<Diagnostic> {
    match parse(text, "t.toml") {
        Ok(l) => panic!("expected errors, got a plan: {:?}", l.plan),
        Err(e) => e.diagnostics,
    }
}

/// The diagnostic whose message contains `needle`, which must be at `line`:`col`
/// (`col` 0: any column).
pub(crate) fn err_at(text: &str, needle: &str, line: usize, col: usize) -> Diagnostic {
    let all = errs(text);
    let Some(d) = all.iter().find(|d| d.message.contains(needle)) else {
        panic!("no error containing {needle:?} in {all:#?}");
    };
    assert_eq!(d.line, line, "line of {d:?}");
    if col != 0 {
        assert_eq!(d.col, col, "column of {d:?}");
    }
    d.clone()
}

/// A minimal valid rpxy-l4 config followed by `extra` lines (line 3 onwards).
pub(crate) fn l4_with(extra: &str) -> String {
    format!("listen_port = 8448\ntcp_target = [\"127.0.0.1:22\"]\n{extra}")
}
