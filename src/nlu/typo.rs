//! Typo correction against a closed vocabulary (weekdays, months, day words, service synonyms,
//! intent keywords): Damerau–Levenshtein distance ≤ 1 for words of 5+ letters, ≤ 2 for 8+,
//! found through a symmetric-delete index (the SymSpell idea) so a lookup costs a handful of
//! hash probes instead of a scan, then verified with `strsim`. Built once per profile.

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    words: Vec<String>,
    /// Delete-variants (and the words themselves) → indexes into `words`.
    index: HashMap<String, Vec<u32>>,
}

/// Largest edit distance tolerated for a word of `len` characters.
fn max_distance(len: usize) -> usize {
    match len {
        0..=4 => 0,
        5..=7 => 1,
        _ => 2,
    }
}

fn deletes(word: &str, depth: usize, out: &mut Vec<String>) {
    if depth == 0 {
        return;
    }
    let chars: Vec<char> = word.chars().collect();
    if chars.len() <= 1 {
        return;
    }
    for i in 0..chars.len() {
        let d: String = chars
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, c)| *c)
            .collect();
        if !out.contains(&d) {
            out.push(d.clone());
            deletes(&d, depth - 1, out);
        }
    }
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
        let mut keys = vec![word.clone()];
        deletes(&word, max_distance(word.chars().count()), &mut keys);
        for k in keys {
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
        if max == 0 {
            return None;
        }
        let mut keys = vec![word.to_string()];
        deletes(word, max, &mut keys);
        let mut best: Option<(usize, u32)> = None;
        for k in &keys {
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
}
