//! Walking toml's spanned `DeTable`: byte spans to line:col, the diagnostics collector,
//! unknown-key checks and typed getters that report what they expected and found. No IO.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Diagnostic;
use super::suggest;
use super::values;

/// A TOML value with its byte span in the source.
pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// Largest string echoed back in a message before it is cut.
const MAX_ECHO_CHARS: usize = 40;

/// 1-based line and column (in characters) of byte offset `off` in `src`.
pub(crate) fn line_col(src: &str, off: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for (i, c) in src.char_indices() {
        if i >= off {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// Collects errors and warnings for one source text, all with line:col.
pub(crate) struct Diags<'s> {
    src: &'s str,
    pub(crate) errors: Vec<Diagnostic>,
    pub(crate) warnings: Vec<Diagnostic>,
}

impl<'s> Diags<'s> {
    pub(crate) fn new(src: &'s str) -> Self {
        Diags {
            src,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn diagnostic(&self, span: &Range<usize>, message: String) -> Diagnostic {
        let (line, col) = line_col(self.src, span.start);
        Diagnostic { line, col, message }
    }

    pub(crate) fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let d = self.diagnostic(span, message.into());
        self.errors.push(d);
    }

    pub(crate) fn warn(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let d = self.diagnostic(span, message.into());
        self.warnings.push(d);
    }

    /// The 1-based line of a span, for messages that point at a second place.
    pub(crate) fn line(&self, span: &Range<usize>) -> usize {
        line_col(self.src, span.start).0
    }
}

/// One TOML table being validated, with how messages name it.
pub(crate) struct Section<'a, 'i> {
    pub(crate) table: &'a DeTable<'i>,
    /// `top level`, `` `[protocols.tls_1]` ``, `` `l4[1]` ``…
    pub(crate) label: String,
    /// Where a missing key is reported: the table's header (0..0 for the top level).
    pub(crate) span: Range<usize>,
}

impl<'a, 'i> Section<'a, 'i> {
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.table.get(key)
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    pub(crate) fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.table.get_key_value(key).map(|(k, _)| k.span())
    }

    /// Keys with their key span and value, in the order they appear in the file (the map
    /// itself is sorted by name).
    pub(crate) fn entries(&self) -> Vec<(&'a str, Range<usize>, &'a Value<'i>)> {
        let mut out: Vec<_> = self
            .table
            .iter()
            .map(|(k, v)| (k.get_ref().as_ref(), k.span(), v))
            .collect();
        out.sort_by_key(|(_, span, _)| span.start);
        out
    }

    /// Report every key not in `allowed`, suggesting the nearest allowed one.
    pub(crate) fn check_keys(&self, d: &mut Diags, allowed: &[&str]) {
        self.check_keys_suggesting(d, allowed, allowed);
    }

    /// Report every key not in `allowed`, suggesting the nearest of `candidates`.
    pub(crate) fn check_keys_suggesting(
        &self,
        d: &mut Diags,
        allowed: &[&str],
        candidates: &[&str],
    ) {
        for (key, span, _) in self.entries() {
            if !allowed.contains(&key) {
                let hint = suggest::hint(key, candidates, "valid keys are");
                d.error(
                    &span,
                    format!("unknown key `{key}` in {}{hint}", self.label),
                );
            }
        }
    }

    /// The value of a key that must be present; a missing key is reported at the header.
    pub(crate) fn require(&self, d: &mut Diags, key: &str) -> Option<&'a Value<'i>> {
        let v = self.get(key);
        if v.is_none() {
            d.error(
                &self.span,
                format!("missing required key `{key}` in {}", self.label),
            );
        }
        v
    }
}

/// How a message describes a value that had the wrong type or content.
pub(crate) fn found(v: &DeValue) -> String {
    match v {
        DeValue::String(s) => format!("string {}", echo(s)),
        DeValue::Integer(i) => format!("integer {}", i.as_str()),
        DeValue::Float(f) => format!("float {}", f.as_str()),
        DeValue::Boolean(b) => format!("boolean {b}"),
        DeValue::Datetime(_) => "a datetime".to_string(),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

/// A user string quoted for a message, cut at [`MAX_ECHO_CHARS`].
pub(crate) fn echo(s: &str) -> String {
    if s.chars().count() > MAX_ECHO_CHARS {
        let cut: String = s.chars().take(MAX_ECHO_CHARS).collect();
        format!("\"{cut}…\"")
    } else {
        format!("{s:?}")
    }
}

fn type_error(d: &mut Diags, key: &str, v: &Value, expected: &str) {
    d.error(
        &v.span(),
        format!("`{key}`: expected {expected}, found {}", found(v.get_ref())),
    );
}

/// A non-negative integer in `min..=max`.
pub(crate) fn int(d: &mut Diags, key: &str, v: &Value, min: u64, max: u64) -> Option<u64> {
    let range = if max == u64::MAX {
        format!("an integer ≥ {min}")
    } else {
        format!("an integer {min}..={max}")
    };
    let DeValue::Integer(i) = v.get_ref() else {
        type_error(d, key, v, &range);
        return None;
    };
    match i128::from_str_radix(i.as_str(), i.radix()) {
        Ok(n) if n >= i128::from(min) && n <= i128::from(max) => u64::try_from(n).ok(),
        Ok(n) => {
            d.error(&v.span(), format!("`{key}`: expected {range}, found {n}"));
            None
        }
        Err(_) => {
            d.error(
                &v.span(),
                format!("`{key}`: integer is too large (max {max})"),
            );
            None
        }
    }
}

/// An integer that fits `usize`, at least `min`.
pub(crate) fn count(d: &mut Diags, key: &str, v: &Value, min: u64) -> Option<usize> {
    let max = u64::try_from(usize::MAX).unwrap_or(u64::MAX);
    int(d, key, v, min, max).and_then(|n| usize::try_from(n).ok())
}

pub(crate) fn boolean(d: &mut Diags, key: &str, v: &Value) -> Option<bool> {
    match v.get_ref() {
        DeValue::Boolean(b) => Some(*b),
        _ => {
            type_error(d, key, v, "true or false");
            None
        }
    }
}

pub(crate) fn string<'v>(d: &mut Diags, key: &str, v: &'v Value) -> Option<&'v str> {
    match v.get_ref() {
        DeValue::String(s) => Some(s.as_ref()),
        _ => {
            type_error(d, key, v, "a string");
            None
        }
    }
}

pub(crate) fn table<'v, 'i>(d: &mut Diags, key: &str, v: &'v Value<'i>) -> Option<&'v DeTable<'i>> {
    match v.get_ref() {
        DeValue::Table(t) => Some(t),
        _ => {
            type_error(d, key, v, "a table");
            None
        }
    }
}

/// A string or an array of strings, each with its span; `None` when the value or any element
/// has the wrong type (each one reported).
pub(crate) fn strings<'v>(
    d: &mut Diags,
    key: &str,
    v: &'v Value,
) -> Option<Vec<(&'v str, Range<usize>)>> {
    match v.get_ref() {
        DeValue::String(s) => Some(vec![(s.as_ref(), v.span())]),
        DeValue::Array(a) => {
            let mut out = Vec::new();
            let mut ok = true;
            for e in a.iter() {
                match e.get_ref() {
                    DeValue::String(s) => out.push((s.as_ref(), e.span())),
                    other => {
                        d.error(
                            &e.span(),
                            format!("`{key}`: expected a string element, found {}", found(other)),
                        );
                        ok = false;
                    }
                }
            }
            ok.then_some(out)
        }
        _ => {
            type_error(d, key, v, "a string or an array of strings");
            None
        }
    }
}

/// Longest duration accepted anywhere: deadlines are computed as `now + duration`, which
/// must not overflow, and nothing sensible waits longer.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

/// An integer number of seconds or a string such as `"1m30s"`.
pub(crate) fn duration(d: &mut Diags, key: &str, v: &Value) -> Option<Duration> {
    match v.get_ref() {
        DeValue::Integer(_) => int(d, key, v, 0, MAX_DURATION.as_secs()).map(Duration::from_secs),
        DeValue::String(s) => match values::parse_duration(s) {
            Ok(t) if t > MAX_DURATION => {
                d.error(
                    &v.span(),
                    format!(
                        "`{key}`: {} is longer than the 10-year maximum; use 0 to disable",
                        echo(s)
                    ),
                );
                None
            }
            Ok(t) => Some(t),
            Err(e) => {
                d.error(
                    &v.span(),
                    format!(
                        "`{key}`: invalid duration {}: {e}; {}",
                        echo(s),
                        values::DURATION_EXAMPLE
                    ),
                );
                None
            }
        },
        _ => {
            type_error(
                d,
                key,
                v,
                "a duration (integer seconds or a string like \"30s\")",
            );
            None
        }
    }
}

/// One of the names in `choices`, with a suggestion when it is not.
pub(crate) fn choice<T: Copy>(
    d: &mut Diags,
    key: &str,
    v: &Value,
    choices: &[(&'static str, T)],
) -> Option<T> {
    let s = string(d, key, v)?;
    if let Some((_, t)) = choices.iter().find(|(name, _)| *name == s) {
        return Some(*t);
    }
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    let hint = suggest::hint(s, &names, "expected one of");
    d.error(
        &v.span(),
        format!("`{key}`: unknown value {}{hint}", echo(s)),
    );
    None
}
