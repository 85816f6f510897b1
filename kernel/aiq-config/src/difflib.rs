//! `difflib.get_close_matches(word, choices, n=1, cutoff=0.6)` as Python computes it, for the
//! "did you mean" hints of the layout check.

use std::collections::HashMap;

/// Python's `SequenceMatcher(None, a, b).ratio()`.
fn ratio(a: &[char], b: &[char]) -> f64 {
    let total = a.len() + b.len();
    if total == 0 {
        return 1.0;
    }
    // b2j with Python's autojunk: in a `b` of 200+ items, items seen more than 1% are "popular".
    let mut b2j: HashMap<char, Vec<usize>> = HashMap::new();
    for (j, c) in b.iter().enumerate() {
        b2j.entry(*c).or_default().push(j);
    }
    if b.len() >= 200 {
        let ntest = b.len() / 100 + 1;
        b2j.retain(|_, idx| idx.len() <= ntest);
    }
    let longest = |alo: usize, ahi: usize, blo: usize, bhi: usize| -> (usize, usize, usize) {
        let (mut besti, mut bestj, mut bestsize) = (alo, blo, 0usize);
        let mut j2len: HashMap<usize, usize> = HashMap::new();
        for (i, c) in a.iter().enumerate().take(ahi).skip(alo) {
            let mut next: HashMap<usize, usize> = HashMap::new();
            for &j in b2j.get(c).map(Vec::as_slice).unwrap_or(&[]) {
                if j < blo {
                    continue;
                }
                if j >= bhi {
                    break;
                }
                let k = if j > 0 { j2len.get(&(j - 1)).copied().unwrap_or(0) } else { 0 } + 1;
                next.insert(j, k);
                if k > bestsize {
                    (besti, bestj, bestsize) = (i + 1 - k, j + 1 - k, k);
                }
            }
            j2len = next;
        }
        while besti > alo && bestj > blo && a[besti - 1] == b[bestj - 1] {
            (besti, bestj, bestsize) = (besti - 1, bestj - 1, bestsize + 1);
        }
        while besti + bestsize < ahi && bestj + bestsize < bhi && a[besti + bestsize] == b[bestj + bestsize] {
            bestsize += 1;
        }
        (besti, bestj, bestsize)
    };
    let mut matches = 0;
    let mut queue = vec![(0, a.len(), 0, b.len())];
    while let Some((alo, ahi, blo, bhi)) = queue.pop() {
        let (i, j, k) = longest(alo, ahi, blo, bhi);
        if k > 0 {
            matches += k;
            if alo < i && blo < j {
                queue.push((alo, i, blo, j));
            }
            if i + k < ahi && j + k < bhi {
                queue.push((i + k, ahi, j + k, bhi));
            }
        }
    }
    2.0 * matches as f64 / total as f64
}

/// The closest of `choices` to `word` with a similarity of at least 0.6 (ties: the greater
/// string, as Python's `heapq.nlargest` on `(score, choice)` picks).
pub fn close_match<'a>(word: &str, choices: &[&'a str]) -> Option<&'a str> {
    let b: Vec<char> = word.chars().collect();
    let mut best: Option<(f64, &'a str)> = None;
    for choice in choices {
        let a: Vec<char> = choice.chars().collect();
        let score = ratio(&a, &b);
        if score >= 0.6 && best.is_none_or(|(s, c)| (score, *choice) > (s, c)) {
            best = Some((score, choice));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_difflib() {
        // Values from CPython's difflib.
        let r = |a: &str, b: &str| ratio(&a.chars().collect::<Vec<_>>(), &b.chars().collect::<Vec<_>>());
        assert!((r("abcd", "bcde") - 0.75).abs() < 1e-12);
        assert!((r("allocation_pct", "alocation_pct") - 26.0 / 27.0).abs() < 1e-12);
        assert_eq!(close_match("alocation_pct", &["leverage", "allocation_pct"]), Some("allocation_pct"));
        assert_eq!(close_match("primery", &["primary", "fallback", "conservative", "flat"]), Some("primary"));
        assert_eq!(close_match("zzz", &["trade", "engine"]), None);
    }
}
