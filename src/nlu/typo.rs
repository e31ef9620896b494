//! Typo correction against a closed vocabulary (weekdays, months, day words, service synonyms,
//! intent keywords): Damerau–Levenshtein distance ≤ 1 for words of 5+ letters, ≤ 2 for 8+,
//! found through a symmetric-delete index (the SymSpell idea) so a lookup costs a handful of
//! hash probes instead of a scan, then verified with `strsim`. Built once per profile.
//!
//! The cost of a lookup is bounded whatever the client writes: a word longer than the longest
//! vocabulary word plus the largest edit distance cannot be a typo of any of them and is not
//! looked at, so the delete-variants of a lookup are at most about (longest + 2)² short strings,
//! each one hash probe.

use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    words: Vec<String>,
    /// Delete-variants (and the words themselves) → indexes into `words`.
    index: HashMap<String, Vec<u32>>,
    /// Characters in the longest word.
    longest: usize,
}

/// Largest edit distance tolerated for a word of `len` characters.
fn max_distance(len: usize) -> usize {
    match len {
        0..=4 => 0,
        5..=7 => 1,
        _ => 2,
    }
}

/// Every string `word` becomes with up to `depth` characters deleted (not `word` itself),
/// each once.
fn deletes(word: &str, depth: usize) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut frontier = vec![word.chars().collect::<Vec<char>>()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for chars in &frontier {
            if chars.len() <= 1 {
                continue;
            }
            for i in 0..chars.len() {
                let d: Vec<char> = chars[..i].iter().chain(&chars[i + 1..]).copied().collect();
                if out.insert(d.iter().collect::<String>()) {
                    next.push(d);
                }
            }
        }
        frontier = next;
    }
    out
}

impl Vocabulary {
    pub fn new<I, S>(words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut v = Vocabulary::default();
        for w in words {
            v.insert(w.into());
        }
        v
    }

    pub fn insert(&mut self, word: String) {
        if self
            .index
            .get(&word)
            .is_some_and(|ids| ids.iter().any(|&i| self.words[i as usize] == word))
        {
            return;
        }
        let id = self.words.len() as u32;
        let len = word.chars().count();
        self.longest = self.longest.max(len);
        let keys = deletes(&word, max_distance(len));
        for k in std::iter::once(word.clone()).chain(keys) {
            let ids = self.index.entry(k).or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        self.words.push(word);
    }

    pub fn contains(&self, word: &str) -> bool {
        self.index
            .get(word)
            .is_some_and(|ids| ids.iter().any(|&i| self.words[i as usize] == word))
    }

    /// The vocabulary word `word` is most likely a typo of (itself when known), or None.
    pub fn correct<'a>(&'a self, word: &str) -> Option<&'a str> {
        if self.contains(word) {
            return self.index.get(word).and_then(|ids| {
                ids.iter()
                    .map(|&i| self.words[i as usize].as_str())
                    .find(|w| *w == word)
            });
        }
        let len = word.chars().count();
        let max = max_distance(len);
        // Too long to be within `max` edits of any word: no lookup at all.
        if max == 0 || len > self.longest + max {
            return None;
        }
        let keys = deletes(word, max);
        let mut best: Option<(usize, u32)> = None;
        for k in std::iter::once(word).chain(keys.iter().map(String::as_str)) {
            let Some(ids) = self.index.get(k) else {
                continue;
            };
            for &id in ids {
                let cand = &self.words[id as usize];
                let cand_max = max_distance(cand.chars().count()).min(max);
                if cand_max == 0 {
                    continue;
                }
                let d = strsim::damerau_levenshtein(word, cand);
                if d <= cand_max && best.is_none_or(|(bd, bid)| (d, id) < (bd, bid)) {
                    best = Some((d, id));
                }
            }
        }
        best.map(|(_, id)| self.words[id as usize].as_str())
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrects_common_typos() {
        let v = Vocabulary::new(["завтра", "пятницу", "субботу", "послезавтра", "маникюр"]);
        for (typo, want) in [
            ("завтро", "завтра"),
            ("зафтра", "завтра"),
            ("пятнцу", "пятницу"),
            ("суботу", "субботу"),
            ("послезавтро", "послезавтра"),
            ("пислезафтра", "послезавтра"),
            ("маникур", "маникюр"),
            ("маникюр", "маникюр"),
        ] {
            assert_eq!(v.correct(typo), Some(want), "{typo}");
        }
    }

    #[test]
    fn leaves_short_and_distant_words_alone() {
        let v = Vocabulary::new(["завтра", "среду", "утро"]);
        assert_eq!(v.correct("сред"), None, "short words are not corrected");
        assert_eq!(v.correct("погода"), None);
        assert_eq!(v.correct("утра"), None);
    }

    #[test]
    fn words_longer_than_any_typo_are_not_looked_at() {
        let v = Vocabulary::new(["послезавтра", "завтра"]);
        assert_eq!(
            v.correct("послезавтраа"),
            Some("послезавтра"),
            "one letter more"
        );
        assert_eq!(v.correct("пооослезавтраа"), None, "three letters more");
        let long: String = "абвгдежзиклмнопрст".chars().cycle().take(3000).collect();
        assert_eq!(v.correct(&long), None);
    }

    #[test]
    fn deletes_are_unique_and_complete() {
        let d = deletes("абв", 2);
        let mut got: Vec<&str> = d.iter().map(String::as_str).collect();
        got.sort_unstable();
        assert_eq!(got, ["а", "аб", "ав", "б", "бв", "в"]);
        assert_eq!(deletes("аааа", 2).len(), 2, "аaa and аа, each once");
    }
}
