//! Word-anchored keyword search over a message's words: one Aho–Corasick pass finds every
//! cue (intent keywords, complaint and medical words, FAQ keywords) at once. A pattern is a
//! phrase of normalised words; a trailing `*` makes its last word a prefix ("запис*" matches
//! записаться, запишите, записи), otherwise the last word must end where the message word
//! ends. Patterns are always anchored at a word start, so "цен*" never fires inside "оценка".
//! Built once per profile; searching allocates nothing but the caller's callback state.

use aho_corasick::{AhoCorasick, MatchKind};

/// A message's words joined by single spaces, with where each word starts.
#[derive(Debug, Default, Clone)]
pub struct WordText {
    pub text: String,
    /// Byte start of each word in `text`.
    pub starts: Vec<usize>,
}

impl WordText {
    pub fn new<'a>(words: impl IntoIterator<Item = &'a str>) -> WordText {
        let mut t = WordText::default();
        for w in words {
            if !t.text.is_empty() {
                t.text.push(' ');
            }
            t.starts.push(t.text.len());
            t.text.push_str(w);
        }
        t
    }

    fn word_at(&self, byte: usize) -> Option<usize> {
        self.starts.binary_search(&byte).ok()
    }

    fn word_containing(&self, byte: usize) -> usize {
        match self.starts.binary_search(&byte) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry<T> {
    whole: bool,
    value: T,
}

/// A compiled set of word-anchored patterns, each carrying a value.
#[derive(Debug, Clone)]
pub struct Lexicon<T> {
    ac: Option<AhoCorasick>,
    entries: Vec<Entry<T>>,
}

impl<T> Lexicon<T> {
    /// `patterns`: phrase (normalised, words separated by single spaces, optional trailing
    /// `*`) and the value it carries. Empty patterns are skipped.
    pub fn new(patterns: impl IntoIterator<Item = (String, T)>) -> Lexicon<T> {
        let mut texts = Vec::new();
        let mut entries = Vec::new();
        for (p, value) in patterns {
            let (body, whole) = match p.strip_suffix('*') {
                Some(b) => (b.trim().to_string(), false),
                None => (p.trim().to_string(), true),
            };
            if body.is_empty() {
                continue;
            }
            texts.push(body);
            entries.push(Entry { whole, value });
        }
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&texts)
            .ok();
        Lexicon { ac, entries }
    }

    /// Call `f(value, first_word, last_word)` for every pattern occurrence in `text`.
    pub fn for_each<'a>(&'a self, text: &WordText, mut f: impl FnMut(&'a T, usize, usize)) {
        let Some(ac) = &self.ac else {
            return;
        };
        let bytes = text.text.as_bytes();
        for m in ac.find_overlapping_iter(&text.text) {
            let Some(first) = text.word_at(m.start()) else {
                continue;
            };
            let Some(entry) = self.entries.get(m.pattern().as_usize()) else {
                continue;
            };
            if entry.whole && m.end() < bytes.len() && bytes[m.end()] != b' ' {
                continue;
            }
            let last = text.word_containing(m.end().saturating_sub(1));
            f(&entry.value, first, last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(lex: &Lexicon<u8>, s: &str) -> Vec<(u8, usize, usize)> {
        let t = WordText::new(s.split(' '));
        let mut out = Vec::new();
        lex.for_each(&t, |v, a, b| out.push((*v, a, b)));
        out
    }

    #[test]
    fn anchors_patterns_at_word_starts_and_ends() {
        let lex = Lexicon::new([
            ("цен*".to_string(), 1),
            ("да".to_string(), 2),
            ("сколько стоит".to_string(), 3),
        ]);
        assert_eq!(hits(&lex, "оценка цены"), [(1, 1, 1)]);
        assert_eq!(hits(&lex, "дам да"), [(2, 1, 1)]);
        assert_eq!(hits(&lex, "а сколько стоит"), [(3, 1, 2)]);
        assert!(hits(&lex, "сколько стоите").is_empty());
    }
}
