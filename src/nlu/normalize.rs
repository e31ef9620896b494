//! Messenger text → a clean, tokenised form every extractor works on: lowercase, `ё`→`е`,
//! emoji and zero-width characters dropped, Latin look-alikes inside Cyrillic words mapped to
//! Cyrillic, all-Latin words transliterated ("zavtra v 15" → "завтра в 15"). Tokens keep their
//! place in the original text so names and e-mails can be cut out as the client wrote them.
//! Pure; allocates only the output.

use std::ops::Range;

/// What a token is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A run of letters (Cyrillic after normalisation).
    Word,
    /// A run of ASCII digits.
    Number,
    /// One punctuation or symbol character (`:`, `.`, `-`, `+`, `(`, `@`...).
    Punct,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Normalised text of the token (a slice of `Normalized::text`).
    pub text: String,
    pub kind: TokenKind,
    /// Byte range in `Normalized::text`.
    pub span: Range<usize>,
    /// Byte range in the original message.
    pub orig: Range<usize>,
    /// No whitespace between this token and the previous one ("15:00", "20е", "10ч").
    pub glued: bool,
    /// The original was written with an upper-case first letter.
    pub capitalized: bool,
}

impl Token {
    pub fn is_word(&self) -> bool {
        self.kind == TokenKind::Word
    }

    pub fn is_number(&self) -> bool {
        self.kind == TokenKind::Number
    }

    /// The numeric value of a `Number` token (None for others or overflow).
    pub fn number(&self) -> Option<u32> {
        if self.kind == TokenKind::Number && self.text.len() <= 9 {
            self.text.parse().ok()
        } else {
            None
        }
    }

    pub fn is_punct(&self, c: char) -> bool {
        self.kind == TokenKind::Punct && self.text.starts_with(c)
    }
}

/// A normalised message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Normalized {
    /// The original text, untouched.
    pub original: String,
    /// Tokens joined by single spaces (glued tokens stay glued).
    pub text: String,
    pub tokens: Vec<Token>,
}

impl Normalized {
    /// The original text of tokens `range` (for names and e-mails "as written").
    pub fn original_of(&self, tokens: Range<usize>) -> &str {
        match (
            self.tokens.get(tokens.start),
            tokens.end.checked_sub(1).and_then(|i| self.tokens.get(i)),
        ) {
            (Some(a), Some(b)) if a.orig.start <= b.orig.end => {
                &self.original[a.orig.start..b.orig.end]
            }
            _ => "",
        }
    }

    /// Words only, in order (handy for keyword rules).
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.tokens
            .iter()
            .filter(|t| t.is_word())
            .map(|t| t.text.as_str())
    }
}

fn is_cyrillic(c: char) -> bool {
    matches!(c, '\u{0400}'..='\u{04FF}')
}

/// Emoji, pictographs, variation selectors, joiners and zero-width characters: dropped.
fn is_noise(c: char) -> bool {
    matches!(c as u32,
        0x200B..=0x200F | 0x2060..=0x2064 | 0xFEFF | 0xFE00..=0xFE0F |
        0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF |
        0xE0000..=0xE007F | 0x20D0..=0x20FF)
}

/// Latin letters that look like Cyrillic ones, used inside otherwise Cyrillic words.
fn lookalike(c: char) -> Option<char> {
    Some(match c {
        'a' => 'а',
        'e' => 'е',
        'o' => 'о',
        'p' => 'р',
        'c' => 'с',
        'x' => 'х',
        'y' => 'у',
        'k' => 'к',
        'm' => 'м',
        't' => 'т',
        'h' => 'н',
        'b' => 'в',
        'u' => 'и',
        _ => return None,
    })
}

/// Transliterate an all-Latin lowercase word to Cyrillic (common Russian chat translit).
fn translit(word: &str) -> String {
    const MULTI: &[(&str, &str)] = &[
        ("shch", "щ"),
        ("sch", "щ"),
        ("tsya", "ться"),
        ("tch", "ч"),
        ("ch", "ч"),
        ("sh", "ш"),
        ("zh", "ж"),
        ("kh", "х"),
        ("ts", "ц"),
        ("ya", "я"),
        ("yu", "ю"),
        ("yo", "е"),
        ("ye", "е"),
        ("ja", "я"),
        ("ju", "ю"),
        ("iu", "ю"),
        ("ia", "я"),
        ("jo", "е"),
    ];
    let mut out = String::with_capacity(word.len() * 2);
    let mut rest = word;
    'outer: while !rest.is_empty() {
        for (from, to) in MULTI {
            if let Some(r) = rest.strip_prefix(from) {
                out.push_str(to);
                rest = r;
                continue 'outer;
            }
        }
        let mut chars = rest.chars();
        let c = chars.next().unwrap_or(' ');
        rest = chars.as_str();
        let mapped = match c {
            'a' => "а",
            'b' => "б",
            'v' => "в",
            'g' => "г",
            'd' => "д",
            'e' => "е",
            'z' => "з",
            'i' => "и",
            'j' => "й",
            'k' => "к",
            'l' => "л",
            'm' => "м",
            'n' => "н",
            'o' => "о",
            'p' => "п",
            'r' => "р",
            's' => "с",
            't' => "т",
            'u' => "у",
            'f' => "ф",
            'h' => "х",
            'c' => "ц",
            'y' => "ы",
            'w' => "в",
            'x' => "кс",
            'q' => "к",
            '\'' => "ь",
            other => {
                out.push(other);
                continue;
            }
        };
        out.push_str(mapped);
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Digit,
    Space,
    Punct,
}

fn class(c: char) -> Class {
    if c.is_alphabetic() {
        Class::Letter
    } else if c.is_ascii_digit() {
        Class::Digit
    } else if c.is_whitespace() || is_noise(c) || c.is_control() {
        Class::Space
    } else {
        Class::Punct
    }
}

/// Normalise a message. Never fails; empty or noise-only input gives no tokens.
pub fn normalize(input: &str) -> Normalized {
    let mut tokens: Vec<Token> = Vec::new();
    let mut text = String::with_capacity(input.len() + 8);
    let mut glued = false;
    let mut iter = input.char_indices().peekable();
    while let Some((start, c)) = iter.next() {
        let cls = class(c);
        if cls == Class::Space {
            glued = false;
            continue;
        }
        let mut end = start + c.len_utf8();
        if cls != Class::Punct {
            while let Some(&(i, n)) = iter.peek() {
                if class(n) != cls {
                    break;
                }
                end = i + n.len_utf8();
                iter.next();
            }
        }
        let raw = &input[start..end];
        let (norm, kind) = match cls {
            Class::Letter => (normalize_word(raw), TokenKind::Word),
            Class::Digit => (raw.to_string(), TokenKind::Number),
            _ => (raw.to_string(), TokenKind::Punct),
        };
        if !text.is_empty() && !glued {
            text.push(' ');
        }
        let span_start = text.len();
        text.push_str(&norm);
        tokens.push(Token {
            text: norm,
            kind,
            span: span_start..text.len(),
            orig: start..end,
            glued: glued && !tokens.is_empty(),
            capitalized: c.is_uppercase(),
        });
        glued = true;
    }
    Normalized {
        original: input.to_string(),
        text,
        tokens,
    }
}

fn normalize_word(raw: &str) -> String {
    let lower: String = raw
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ё' { 'е' } else { c })
        .collect();
    let has_cyr = lower.chars().any(is_cyrillic);
    let has_latin = lower.chars().any(|c| c.is_ascii_alphabetic());
    match (has_cyr, has_latin) {
        (true, true) => lower.chars().map(|c| lookalike(c).unwrap_or(c)).collect(),
        (false, true) => translit(&lower),
        _ => lower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        normalize(s).tokens.into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn lowercases_folds_yo_and_drops_emoji() {
        assert_eq!(words("Ещё 👍🏻 ЁЛКА!!"), ["еще", "елка", "!", "!"]);
    }

    #[test]
    fn maps_latin_lookalikes_inside_cyrillic_words() {
        // "маникюр" typed with Latin "a" and "p".
        assert_eq!(words("мaникюp"), ["маникюр"]);
    }

    #[test]
    fn transliterates_latin_words() {
        assert_eq!(words("zavtra v 15"), ["завтра", "в", "15"]);
        assert_eq!(words("segodnya pyatnitsu"), ["сегодня", "пятницу"]);
    }

    #[test]
    fn splits_letters_digits_and_punct_and_marks_glue() {
        let n = normalize("в 15:00, 20е");
        let t: Vec<(&str, bool)> = n
            .tokens
            .iter()
            .map(|t| (t.text.as_str(), t.glued))
            .collect();
        assert_eq!(
            t,
            [
                ("в", false),
                ("15", false),
                (":", true),
                ("00", true),
                (",", true),
                ("20", false),
                ("е", true)
            ]
        );
        assert_eq!(n.text, "в 15:00, 20е");
    }

    #[test]
    fn keeps_original_spans() {
        let n = normalize("Меня зовут Ольга Петровна");
        assert_eq!(n.original_of(2..4), "Ольга Петровна");
        assert!(n.tokens[2].capitalized);
    }
}
