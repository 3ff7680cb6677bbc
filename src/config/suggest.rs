//! "Did you mean …?" for unknown keys and enum values: nearest candidate by edit distance.
//! No IO.

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), compared
/// case-insensitively, so `tcp_targte` is 1 away from `tcp_target`.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    // Three rolling rows: two back (for transpositions), previous, current.
    let mut two_back: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        if let Some(first) = cur.first_mut() {
            *first = i + 1;
        }
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let del = prev.get(j + 1).map_or(usize::MAX, |d| d + 1);
            let ins = cur.get(j).map_or(usize::MAX, |d| d + 1);
            let sub = prev.get(j).map_or(usize::MAX, |d| d + cost);
            let mut best = del.min(ins).min(sub);
            let swapped = i > 0 && j > 0 && a.get(i - 1) == Some(&cb) && b.get(j - 1) == Some(&ca);
            if swapped {
                best = best.min(two_back.get(j - 1).map_or(usize::MAX, |d| d + 1));
            }
            if let Some(slot) = cur.get_mut(j + 1) {
                *slot = best;
            }
        }
        std::mem::swap(&mut two_back, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(0)
}

/// The candidate closest to `word`, when it is close enough to be a plausible typo:
/// distance ≤ max(2, len/3).
pub(crate) fn nearest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `; did you mean `x`?` or `; expected one of: a, b, c` — the tail of an "unknown" message.
pub(crate) fn hint(word: &str, candidates: &[&str], expected: &str) -> String {
    match nearest(word, candidates) {
        Some(c) => format!("; did you mean `{c}`?"),
        None => format!("; {expected}: {}", candidates.join(", ")),
    }
}
