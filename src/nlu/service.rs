//! Which profile service a message names. Every service `name` and synonym (multi-word phrases
//! too) is compiled in `ServiceMatcher::new` into canonical keys: the Russian Snowball stem of
//! each word with a fleeting vowel dropped ("ногот" ≡ "ногт"), indexed by the phrase's first
//! key. A message word is tried as written, then through diminutive rules (маникюрчик →
//! маникюр, бровки → брови, ноготочки → ногти, стрижечку → стрижку, реснички → ресницы,
//! массажик → массаж), then through typo correction on keys (`typo::Vocabulary`). English
//! service words written in Latin are mapped before normalisation is consulted. The longest
//! phrase wins; among equals, the first in the message.

use crate::config::Profile;
use crate::domain::ServiceId;
use crate::nlu::normalize::normalize;
use rust_stemmers::{Algorithm, Stemmer};
use std::collections::{HashMap, HashSet};
use std::ops::Range;

/// English words clients type for services → the Russian word they mean.
const ENGLISH: &[(&str, &str)] = &[
    ("manicure", "маникюр"),
    ("manik", "маникюр"),
    ("pedicure", "педикюр"),
    ("massage", "массаж"),
    ("brows", "брови"),
    ("brow", "брови"),
    ("eyebrows", "брови"),
    ("lashes", "ресницы"),
    ("eyelashes", "ресницы"),
    ("nails", "ногти"),
    ("haircut", "стрижка"),
    ("sugaring", "шугаринг"),
    ("shugaring", "шугаринг"),
    ("epilation", "эпиляция"),
    ("depilation", "депиляция"),
    ("coloring", "окрашивание"),
    ("colouring", "окрашивание"),
    ("peeling", "пилинг"),
    ("dentist", "стоматолог"),
    ("ultrasound", "узи"),
];

/// The Russian word an English service word stands for (`word` lowercase ASCII).
pub fn english_alias(word: &str) -> Option<&'static str> {
    ENGLISH.iter().find(|(e, _)| *e == word).map(|(_, r)| *r)
}

fn is_consonant(c: char) -> bool {
    "бвгджзйклмнпрстфхцчшщ".contains(c)
}

/// Drop a fleeting vowel at the end of a stem: "ногот" → "ногт", "бров" → "брв". Applied to
/// both sides (profile and message), so it only has to be consistent, not linguistic.
fn drop_fleeting(stem: &mut String) {
    let chars: Vec<char> = stem.chars().collect();
    let n = chars.len();
    if n >= 4
        && is_consonant(chars[n - 1])
        && matches!(chars[n - 2], 'о' | 'е')
        && is_consonant(chars[n - 3])
    {
        let keep: String = chars[..n - 2].iter().chain(&chars[n - 1..]).collect();
        *stem = keep;
    }
}

#[derive(Debug, Clone)]
struct Phrase {
    keys: Vec<String>,
    service: usize,
}

pub struct ServiceMatcher {
    stemmer: Stemmer,
    ids: Vec<ServiceId>,
    phrases: Vec<Phrase>,
    by_first: HashMap<String, Vec<usize>>,
    /// Every key of every phrase.
    keys: HashSet<String>,
    /// The first two letters of every key: a word that starts otherwise is not a service as
    /// written nor as a diminutive, so it is never stemmed unless it may be a typo.
    heads: HashSet<String>,
    /// Keys by their first letter: a typo is compared only with the keys of its bucket.
    initials: HashMap<char, Vec<(String, usize)>>,
}

/// Largest edit distance tolerated for a key of `len` characters (as in `typo`).
fn max_typos(len: usize) -> usize {
    match len {
        0..=4 => 0,
        5..=7 => 1,
        _ => 2,
    }
}

/// The first two characters of `s` (all of it when shorter).
fn head(s: &str) -> &str {
    s.char_indices().nth(2).map_or(s, |(i, _)| &s[..i])
}

/// Diminutive surface variants of a word: suffixes removed or simplified.
fn diminutive_variants(word: &str, out: &mut Vec<String>) {
    const ENDINGS: &[&str] = &[
        "", "а", "у", "и", "е", "ом", "ой", "ам", "ами", "ах", "ов", "ек", "ей",
    ];
    for ending in ENDINGS {
        let Some(base) = word.strip_suffix(ending) else {
            continue;
        };
        if let Some(b) = base.strip_suffix("чик") {
            out.push(b.to_string());
        }
        if let Some(b) = base.strip_suffix("ик") {
            out.push(b.to_string());
        }
        for dim in ["ечк", "очк"] {
            if let Some(b) = base.strip_suffix(dim) {
                out.push(format!("{b}к{ending}"));
                out.push(format!("{b}{ending}"));
                out.push(format!("{b}и"));
            }
        }
        if let Some(b) = base.strip_suffix("ичк") {
            out.push(format!("{b}ицы"));
        }
        if let Some(b) = base.strip_suffix("ичек") {
            out.push(format!("{b}ицы"));
        }
        if let Some(b) = base.strip_suffix('к') {
            out.push(format!("{b}и"));
            out.push(format!("{b}{ending}"));
        }
    }
}

impl ServiceMatcher {
    pub fn new(profile: &Profile) -> ServiceMatcher {
        let mut m = ServiceMatcher {
            stemmer: Stemmer::create(Algorithm::Russian),
            ids: Vec::new(),
            phrases: Vec::new(),
            by_first: HashMap::new(),
            keys: HashSet::new(),
            heads: HashSet::new(),
            initials: HashMap::new(),
        };
        for (si, service) in profile.services.iter().enumerate() {
            m.ids.push(service.id.clone());
            let sources = std::iter::once(service.name.as_str())
                .chain(service.synonyms.iter().map(String::as_str));
            for phrase in sources {
                let norm = normalize(phrase);
                let keys: Vec<String> = norm.words().map(|w| m.key(w)).collect();
                if keys.is_empty() {
                    continue;
                }
                for k in &keys {
                    if m.keys.insert(k.clone()) {
                        m.heads.insert(head(k).to_string());
                        if let Some(c) = k.chars().next() {
                            let len = k.chars().count();
                            m.initials.entry(c).or_default().push((k.clone(), len));
                        }
                    }
                }
                let idx = m.phrases.len();
                m.by_first.entry(keys[0].clone()).or_default().push(idx);
                m.phrases.push(Phrase { keys, service: si });
            }
        }
        m
    }

    /// Canonical key of one normalised word.
    pub fn key(&self, word: &str) -> String {
        let mut k = self.stemmer.stem(word).into_owned();
        drop_fleeting(&mut k);
        k
    }

    fn is_key(&self, k: &str) -> bool {
        self.keys.contains(k)
    }

    /// Candidate keys of a message word: as written, as a diminutive, as a typo.
    pub fn word_keys(&self, word: &str) -> Vec<String> {
        let mut out = Vec::with_capacity(2);
        let len = word.chars().count();
        let headed = self.heads.contains(head(word));
        let bucket = word.chars().next().and_then(|c| self.initials.get(&c));
        let Some(bucket) = bucket.filter(|_| headed || max_typos(len) > 0) else {
            return out;
        };
        let k = self.key(word);
        if self.is_key(&k) || len < 3 {
            out.push(k);
            return out;
        }
        if headed {
            let mut variants = Vec::new();
            diminutive_variants(word, &mut variants);
            for v in variants {
                let vk = self.key(&v);
                if self.is_key(&vk) && !out.contains(&vk) {
                    out.push(vk);
                }
            }
        }
        if out.is_empty() {
            // A typo: the closest key of the bucket within the tolerated distance.
            let klen = k.chars().count();
            let best = bucket
                .iter()
                .filter_map(|(cand, clen)| {
                    let max = max_typos(klen).min(max_typos(*clen));
                    if max == 0 || klen.abs_diff(*clen) > max {
                        return None;
                    }
                    let d = strsim::osa_distance(&k, cand);
                    (d <= max).then_some((d, cand))
                })
                .min();
            if let Some((_, c)) = best {
                out.push(c.clone());
            }
        }
        if out.is_empty() {
            out.push(k);
        }
        out
    }

    /// The service named in `words` (normalised message words) and the word range it covers.
    /// `skip[i]` marks words that belong to something else (a staff name, a date).
    pub fn find(&self, words: &[&str], skip: &[bool]) -> Option<(ServiceId, Range<usize>)> {
        if self.phrases.is_empty() {
            return None;
        }
        let keys: Vec<Vec<String>> = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if skip.get(i).copied().unwrap_or(false) {
                    Vec::new()
                } else {
                    self.word_keys(w)
                }
            })
            .collect();
        let mut best: Option<(usize, usize, usize)> = None; // (len, start, phrase)
        for (i, cands) in keys.iter().enumerate() {
            for k in cands {
                let Some(list) = self.by_first.get(k) else {
                    continue;
                };
                for &p in list {
                    let phrase = &self.phrases[p];
                    let n = phrase.keys.len();
                    let fits =
                        phrase.keys.iter().enumerate().skip(1).all(|(j, pk)| {
                            keys.get(i + j).is_some_and(|c| c.iter().any(|x| x == pk))
                        });
                    if fits && best.is_none_or(|(bl, _, _)| n > bl) {
                        best = Some((n, i, p));
                    }
                }
            }
        }
        best.map(|(n, start, p)| (self.ids[self.phrases[p].service].clone(), start..start + n))
    }
}
