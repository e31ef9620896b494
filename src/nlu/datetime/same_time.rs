//! «в то же время», «время такое же», «во столько же», «давайте в субботу так же»: the client
//! keeps the time of the booking being moved and names only the day. One pass over the words of
//! the normalised tokens; the slot arithmetic stays in `resolve` (the engine takes the time from
//! the booking).
//!
//! «так же»/«также» alone is an everyday "also" ("и педикюр также", "я так же хочу"), so it counts
//! only at the end of its clause and right after a date or time ("в субботу так же") or with
//! nothing but fillers around it ("да, так же").

use super::scan::Mention;
use crate::nlu::normalize::{Token, TokenKind};

/// "то же", "это же", "такое же" ... before "время"/"час".
const SAME: &[&str] = &["то", "это", "тот", "такое", "тоже"];
/// What follows "время" when it stays: "время такое же", "время прежнее", "время оставьте".
const KEEP_AFTER_TIME: &[&str] = &[
    "такое",
    "то",
    "тоже",
    "прежнее",
    "оставьте",
    "оставим",
    "оставляем",
    "сохраните",
    "сохраняем",
];
/// Words that may stand beside a bare «так же» in its clause ("да, так же", "давайте так же").
const FILLERS: &[&str] = &[
    "да",
    "давайте",
    "давай",
    "можно",
    "ну",
    "тогда",
    "пусть",
    "лучше",
    "пожалуйста",
    "ок",
    "хорошо",
    "все",
    "по",
    "времени",
    "время",
];

/// The message keeps the time of the booking being moved.
pub(super) fn said(toks: &[Token], mentions: &[Mention]) -> bool {
    // Word tokens only (a hyphen in "то-же" is skipped), with their token index.
    let words: Vec<(usize, &str)> = toks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.kind != TokenKind::Punct)
        .map(|(i, t)| (i, t.text.as_str()))
        .collect();
    let w = |k: usize| words.get(k).map_or("", |x| x.1);
    // Token indexes right after a date or time ("в субботу| так же").
    let mut after_slot = vec![false; toks.len() + 1];
    for m in mentions {
        let comma = toks.get(m.range.end).is_some_and(|t| t.is_punct(','));
        for end in [m.range.end, m.range.end + usize::from(comma)] {
            if let Some(a) = after_slot.get_mut(end) {
                *a = true;
            }
        }
    }
    (0..words.len()).any(|k| {
        let strong = match w(k) {
            // "в то же время", "на это же время", "в то же самое время", "в тот же час", "в
            // тоже время"; without the preposition only to open a clause ("то же время, но в
            // субботу"): "а на завтра тоже время есть?" asks about another day
            s if SAME.contains(&s)
                && (matches!(w(k.wrapping_sub(1)), "в" | "во" | "на")
                    || opens_clause(toks, words.get(k).map_or(0, |x| x.0))) =>
            {
                let mut j = k + 1;
                if w(j) == "же" {
                    j += 1;
                } else if s != "тоже" {
                    return false;
                }
                if w(j) == "самое" {
                    j += 1;
                }
                matches!(w(j), "время" | "час")
            }
            // "время такое же", "время то же", "время прежнее", "время не меняем"
            "время" => {
                KEEP_AFTER_TIME.contains(&w(k + 1))
                    || (w(k + 1) == "не" && w(k + 2).starts_with("меня"))
            }
            "оставьте" | "оставим" | "сохраните" => w(k + 1) == "время",
            // "во столько же"
            "столько" => w(k + 1) == "же" && matches!(w(k.wrapping_sub(1)), "во" | "в"),
            _ => false,
        };
        strong || bare_so(toks, &after_slot, &words, k)
    })
}

/// Token `i` starts its clause, but for fillers ("да, то же время").
fn opens_clause(toks: &[Token], i: usize) -> bool {
    toks[..i]
        .iter()
        .rev()
        .take_while(|t| !is_clause_end(t))
        .all(|t| t.kind == TokenKind::Punct || FILLERS.contains(&t.text.as_str()))
}

fn is_clause_end(t: &Token) -> bool {
    t.kind == TokenKind::Punct && matches!(t.text.as_str(), "," | "." | "!" | "?" | ";")
}

/// «так же»/«также» at word `k` that means "at the same time".
fn bare_so(toks: &[Token], after_slot: &[bool], words: &[(usize, &str)], k: usize) -> bool {
    let w = |k: usize| words.get(k).map_or("", |x| x.1);
    let (first, last) = match w(k) {
        "также" => (k, k),
        "так" if w(k + 1) == "же" => (k, k + 1),
        _ => return false,
    };
    let (start_tok, end_tok) = (words[first].0, words[last].0);
    let clause_end = |i: usize| toks.get(i).is_none_or(is_clause_end);
    // It ends its clause, or "по времени"/"пожалуйста" follow.
    let ends = clause_end(end_tok + 1)
        || matches!(w(last + 1), "пожалуйста")
        || (w(last + 1) == "по" && w(last + 2) == "времени");
    // "так же, как в прошлый раз" compares with something else
    if !ends || w(last + 1) == "как" {
        return false;
    }
    // Right after a date or time ("в субботу так же", "завтра, так же").
    if after_slot.get(start_tok).copied().unwrap_or(false) {
        return true;
    }
    // Or alone in its clause but for fillers ("да, так же", "давайте так же").
    if !opens_clause(toks, start_tok) {
        return false;
    }
    let mut j = end_tok + 1;
    while !clause_end(j) {
        if toks[j].kind != TokenKind::Punct && !FILLERS.contains(&toks[j].text.as_str()) {
            return false;
        }
        j += 1;
    }
    true
}
