//! Answer matching: does one bot message satisfy one expected message? Exact text, templates
//! with placeholders, regular expressions, contains-all-of, profile template keys, "any of
//! these variations", buttons, must-not-contain, and values captured for later steps.
//! Everything compares *normalised* text (lower case, ё = е, runs of whitespace = one space),
//! so a spec never fails on capitals or spacing. Profile knowledge (service and staff names,
//! the variations of each template) comes in through `Vocabulary`, built once per profile.

use super::vars::{self, Piece, Vars};
use crate::config::Profile;
use crate::config::templates::TemplateKey;
use crate::domain::Reply;
use regex::{Regex, RegexBuilder};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Placeholders a template may use, with what they match.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("date", "DD.MM"),
    ("time", "HH:MM"),
    ("service", "a service name of the profile"),
    ("staff", "a staff name of the profile"),
    ("price", "a price: 1 500 ₽, от 1 500 до 3 500 ₽"),
    ("name", "one word (a name)"),
    ("number", "digits"),
    ("any", "any text, possibly empty"),
];

/// Lower case, ё → е, every run of whitespace (including no-break spaces and new lines) → one
/// space, trimmed.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.trim().chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        for l in c.to_lowercase() {
            out.push(if l == 'ё' { 'е' } else { l });
        }
    }
    out
}

fn build(source: &str) -> Result<Regex, String> {
    RegexBuilder::new(source)
        .case_insensitive(true)
        .dot_matches_new_line(true)
        .size_limit(1 << 22)
        .build()
        .map_err(|e| e.to_string())
}

/// What a profile lends to matching: names for `{service}` / `{staff}` and the variations of
/// each reply template for `key:` when a reply does not say which template it came from.
#[derive(Debug)]
pub struct Vocabulary {
    service: String,
    staff: String,
    keys: BTreeMap<TemplateKey, Vec<Regex>>,
}

fn alternation(words: impl Iterator<Item = String>) -> String {
    let mut words: Vec<String> = words
        .map(|w| normalize(&w))
        .filter(|w| !w.is_empty())
        .collect();
    // Longest first, so "женская стрижка" wins over "стрижка".
    words.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    words.dedup();
    if words.is_empty() {
        return r"\S+".to_string();
    }
    let alts: Vec<String> = words.iter().map(|w| regex::escape(w)).collect();
    format!("(?:{})", alts.join("|"))
}

impl Vocabulary {
    pub fn new(profile: &Profile) -> Vocabulary {
        let service = alternation(
            profile
                .services
                .iter()
                .flat_map(|s| [s.name.clone(), s.accusative.clone()]),
        );
        let staff = alternation(profile.staff.iter().map(|s| s.name.clone()));
        let mut keys = BTreeMap::new();
        for key in TemplateKey::ALL {
            let variations: Vec<String> = match profile.templates.get(key) {
                Some(v) if !v.is_empty() => v.clone(),
                _ => key.defaults().iter().map(|s| s.to_string()).collect(),
            };
            let regexes = variations
                .iter()
                .filter_map(|v| build(&variation_regex(v)).ok())
                .collect();
            keys.insert(*key, regexes);
        }
        Vocabulary {
            service,
            staff,
            keys,
        }
    }

    /// For tests of the matchers themselves: no profile, any word is a service or a name.
    pub fn empty() -> Vocabulary {
        Vocabulary {
            service: r"\S+(?: \S+)?".to_string(),
            staff: r"\S+".to_string(),
            keys: BTreeMap::new(),
        }
    }

    fn placeholder(&self, name: &str) -> Option<String> {
        const AMOUNT: &str = r"\d{1,3}(?:[\s\u{a0}]?\d{3})*";
        Some(match name {
            "date" => r"\d{2}\.\d{2}".to_string(),
            "time" => r"\d{1,2}:\d{2}".to_string(),
            "service" => self.service.clone(),
            "staff" => self.staff.clone(),
            "price" => format!(r"(?:от\s+)?{AMOUNT}(?:\s*(?:-|–|до)\s*{AMOUNT})?\s*(?:₽|руб\.?)"),
            "name" => r"\p{L}+(?:-\p{L}+)?".to_string(),
            "number" => r"\d+".to_string(),
            "any" => ".*?".to_string(),
            _ => return None,
        })
    }
}

/// A profile variation (with the profile's own `{placeholders}`) as a regex over normalised
/// text where every placeholder matches anything.
fn variation_regex(variation: &str) -> String {
    let mut out = String::from("^");
    let mut rest = variation;
    loop {
        let next = rest.find('{').and_then(|open| {
            let close = rest[open..].find('}')? + open;
            let name = &rest[open + 1..close];
            (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
                .then_some((open, close))
        });
        match next {
            Some((open, close)) => {
                push_literal(&mut out, &rest[..open]);
                out.push_str(".*?");
                rest = &rest[close + 1..];
            }
            None => {
                push_literal(&mut out, rest);
                break;
            }
        }
    }
    out.push('$');
    out
}

/// Literal text as a regex over normalised text: inner whitespace is one or more spaces,
/// whitespace at either end is optional (it may touch a placeholder that matched nothing).
fn push_literal(out: &mut String, literal: &str) {
    let norm = normalize(literal);
    if norm.is_empty() {
        if !literal.is_empty() {
            out.push_str(r"\s*");
        }
        return;
    }
    if literal.starts_with(char::is_whitespace) {
        out.push_str(r"\s*");
    }
    let words: Vec<String> = norm.split(' ').map(regex::escape).collect();
    out.push_str(&words.join(r"\s+"));
    if literal.ends_with(char::is_whitespace) {
        out.push_str(r"\s*");
    }
}

/// A spec template (`{placeholder}`s, `${captured}` values, `{{` and `}}` for literal braces)
/// as an anchored regex over normalised text. Errors name an unknown placeholder.
pub fn template_regex(template: &str, vars: &Vars, vocab: &Vocabulary) -> Result<String, String> {
    let mut out = String::from("^");
    let mut literal = String::new();
    for piece in vars::pieces(template)? {
        match piece {
            Piece::Var(name) => {
                let value = vars
                    .get(name)
                    .ok_or_else(|| format!("${{{name}}} has not been captured yet"))?;
                literal.push_str(value);
            }
            Piece::Literal(text) => {
                let mut rest: &str = &text;
                while let Some(open) = rest.find('{') {
                    literal.push_str(&rest[..open].replace("}}", "}"));
                    let after = &rest[open + 1..];
                    if let Some(tail) = after.strip_prefix('{') {
                        literal.push('{');
                        rest = tail;
                        continue;
                    }
                    let close = after.find('}');
                    let name = close.map(|c| &after[..c]).filter(|n| {
                        !n.is_empty() && n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    });
                    match (name, close) {
                        (Some(name), Some(close)) => {
                            let Some(pattern) = vocab.placeholder(name) else {
                                let known: Vec<&str> =
                                    PLACEHOLDERS.iter().map(|(n, _)| *n).collect();
                                return Err(format!(
                                    "unknown placeholder {{{name}}} (expected one of {}; write {{{{ for a literal brace)",
                                    known.join(", ")
                                ));
                            };
                            push_literal(&mut out, &std::mem::take(&mut literal));
                            out.push_str("(?:");
                            out.push_str(&pattern);
                            out.push(')');
                            rest = &after[close + 1..];
                        }
                        _ => {
                            literal.push('{');
                            rest = after;
                        }
                    }
                }
                literal.push_str(&rest.replace("}}", "}"));
            }
        }
    }
    push_literal(&mut out, &literal);
    out.push('$');
    Ok(out)
}

/// A template or regex, compiled once when it has no `${...}`, else at each check.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    kind: PatternKind,
    compiled: Option<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatternKind {
    Template,
    Regex,
}

impl Pattern {
    /// Check syntax now (with every `${name}` replaced by a sample value).
    pub fn template(source: &str, vocab: &Vocabulary) -> Result<Pattern, String> {
        Pattern::new(source, PatternKind::Template, vocab)
    }

    pub fn regex(source: &str, vocab: &Vocabulary) -> Result<Pattern, String> {
        Pattern::new(source, PatternKind::Regex, vocab)
    }

    fn new(source: &str, kind: PatternKind, vocab: &Vocabulary) -> Result<Pattern, String> {
        let names = vars::refs(source);
        let sample: Vars = names
            .iter()
            .map(|n| (n.to_string(), "x".to_string()))
            .collect();
        let regex = Pattern::compile(source, kind, &sample, vocab)?;
        Ok(Pattern {
            source: source.to_string(),
            kind,
            compiled: names.is_empty().then_some(regex),
        })
    }

    fn compile(
        source: &str,
        kind: PatternKind,
        vars: &Vars,
        vocab: &Vocabulary,
    ) -> Result<Regex, String> {
        let regex_source = match kind {
            PatternKind::Template => template_regex(source, vars, vocab)?,
            PatternKind::Regex => {
                let mut out = String::new();
                for piece in vars::pieces(source)? {
                    match piece {
                        Piece::Literal(l) => out.push_str(&l),
                        Piece::Var(name) => {
                            let v = vars
                                .get(name)
                                .ok_or_else(|| format!("${{{name}}} has not been captured yet"))?;
                            out.push_str(&regex::escape(v));
                        }
                    }
                }
                out
            }
        };
        build(&regex_source)
    }

    pub fn regex_for(&self, vars: &Vars, vocab: &Vocabulary) -> Result<Cow<'_, Regex>, String> {
        match &self.compiled {
            Some(r) => Ok(Cow::Borrowed(r)),
            None => Pattern::compile(&self.source, self.kind, vars, vocab).map(Cow::Owned),
        }
    }

    /// Templates match the whole normalised text; regexes match anywhere in the raw text.
    pub fn matches(&self, raw: &str, vars: &Vars, vocab: &Vocabulary) -> Result<bool, String> {
        let re = self.regex_for(vars, vocab)?;
        Ok(match self.kind {
            PatternKind::Template => re.is_match(&normalize(raw)),
            PatternKind::Regex => re.is_match(raw),
        })
    }
}

/// One way a message may be right.
#[derive(Debug, Clone)]
pub enum Matcher {
    Text(String),
    Template(Pattern),
    Regex(Pattern),
    Contains(Vec<String>),
    Key(TemplateKey),
}

impl Matcher {
    /// The kind of check, as a spec names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Matcher::Text(_) => "text",
            Matcher::Template(_) => "template",
            Matcher::Regex(_) => "regex",
            Matcher::Contains(_) => "contains",
            Matcher::Key(_) => "key",
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Matcher::Text(t) => format!("text «{t}»"),
            Matcher::Template(p) => format!("template «{}»", p.source),
            Matcher::Regex(p) => format!("regex /{}/", p.source),
            Matcher::Contains(words) => {
                let w: Vec<String> = words.iter().map(|w| format!("«{w}»")).collect();
                format!("contains {}", w.join(" + "))
            }
            Matcher::Key(k) => format!("key {k}"),
        }
    }

    /// `Ok(())` when `reply` satisfies this matcher, else why not.
    pub fn check(&self, reply: &Reply, vars: &Vars, vocab: &Vocabulary) -> Result<(), String> {
        let norm = normalize(&reply.text);
        match self {
            Matcher::Text(t) => {
                let want = normalize(&vars::interpolate(t, vars)?);
                if norm == want {
                    Ok(())
                } else {
                    Err(format!("text is not «{want}»"))
                }
            }
            Matcher::Template(p) | Matcher::Regex(p) => {
                if p.matches(&reply.text, vars, vocab)? {
                    Ok(())
                } else {
                    Err("does not match".to_string())
                }
            }
            Matcher::Contains(words) => {
                let mut missing = Vec::new();
                for w in words {
                    let w = normalize(&vars::interpolate(w, vars)?);
                    if !norm.contains(&w) {
                        missing.push(format!("«{w}»"));
                    }
                }
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!("missing {}", missing.join(", ")))
                }
            }
            Matcher::Key(key) => match &reply.template {
                Some(t) if t == key.as_str() => Ok(()),
                Some(t) => Err(format!("reply came from template {t}, not {key}")),
                // Over HTTP replies carry no template key: compare with the variations.
                None => {
                    let hit = vocab
                        .keys
                        .get(key)
                        .is_some_and(|rs| rs.iter().any(|r| r.is_match(&norm)));
                    if hit {
                        Ok(())
                    } else {
                        Err(format!("text matches no variation of template {key}"))
                    }
                }
            },
        }
    }
}

/// A value to capture from a message.
#[derive(Debug, Clone)]
pub struct Capture {
    pub name: String,
    pub pattern: Regex,
}

/// Everything expected of one message.
#[derive(Debug, Clone, Default)]
pub struct MessageExpect {
    /// All must hold.
    pub all: Vec<Matcher>,
    /// When non-empty, at least one must hold (the allowed variations).
    pub any: Vec<Matcher>,
    /// Exactly these buttons in this order (title patterns).
    pub buttons: Option<Vec<Pattern>>,
    /// At least these buttons.
    pub buttons_include: Vec<Pattern>,
    /// None of these may occur (normalised substrings).
    pub not: Vec<String>,
    pub capture: Vec<Capture>,
}

/// Which check of a message failed, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub check: String,
    pub detail: String,
}

fn mismatch(check: &str, detail: impl Into<String>) -> Mismatch {
    Mismatch {
        check: check.to_string(),
        detail: detail.into(),
    }
}

impl MessageExpect {
    /// What the spec allows, one line per alternative (for failure reports).
    pub fn allowed(&self) -> Vec<String> {
        let mut out: Vec<String> = self.all.iter().map(Matcher::describe).collect();
        if !self.any.is_empty() {
            let alts: Vec<String> = self.any.iter().map(Matcher::describe).collect();
            if self.all.is_empty() && alts.len() == 1 {
                out.extend(alts);
            } else {
                out.push(format!("one of: {}", alts.join(" | ")));
            }
        }
        if let Some(b) = &self.buttons {
            let titles: Vec<String> = b.iter().map(|p| format!("«{}»", p.source)).collect();
            out.push(format!("buttons [{}]", titles.join(", ")));
        }
        if !self.buttons_include.is_empty() {
            let titles: Vec<String> = self
                .buttons_include
                .iter()
                .map(|p| format!("«{}»", p.source))
                .collect();
            out.push(format!("buttons include [{}]", titles.join(", ")));
        }
        if !self.not.is_empty() {
            let w: Vec<String> = self.not.iter().map(|w| format!("«{w}»")).collect();
            out.push(format!("not {}", w.join(", ")));
        }
        out
    }

    /// Check `reply`; on success return the values captured from it.
    pub fn check(
        &self,
        reply: &Reply,
        vars: &Vars,
        vocab: &Vocabulary,
    ) -> Result<Vec<(String, String)>, Mismatch> {
        for m in &self.all {
            m.check(reply, vars, vocab)
                .map_err(|why| mismatch(m.kind(), why))?;
        }
        if !self.any.is_empty() {
            let mut whys = Vec::new();
            let mut ok = false;
            for m in &self.any {
                match m.check(reply, vars, vocab) {
                    Ok(()) => {
                        ok = true;
                        break;
                    }
                    Err(why) => whys.push(why),
                }
            }
            if !ok {
                return Err(mismatch(
                    "any",
                    format!("none of the {} allowed variations matched", self.any.len()),
                ));
            }
        }
        let titles: Vec<&str> = reply.buttons.iter().map(|b| b.title.as_str()).collect();
        let quoted = || {
            let q: Vec<String> = titles.iter().map(|t| format!("«{t}»")).collect();
            q.join(", ")
        };
        if let Some(want) = &self.buttons {
            let mut same = want.len() == titles.len();
            for (p, t) in want.iter().zip(&titles) {
                if !same {
                    break;
                }
                same = p
                    .matches(t, vars, vocab)
                    .map_err(|e| mismatch("buttons", e))?;
            }
            if !same {
                return Err(mismatch("buttons", format!("offered [{}]", quoted())));
            }
        }
        for p in &self.buttons_include {
            let mut found = false;
            for t in &titles {
                if p.matches(t, vars, vocab)
                    .map_err(|e| mismatch("buttons_include", e))?
                {
                    found = true;
                    break;
                }
            }
            if !found {
                return Err(mismatch(
                    "buttons_include",
                    format!("no button «{}» in [{}]", p.source, quoted()),
                ));
            }
        }
        let norm = normalize(&reply.text);
        for w in &self.not {
            let w = normalize(&vars::interpolate(w, vars).map_err(|e| mismatch("not", e))?);
            if !w.is_empty() && norm.contains(&w) {
                return Err(mismatch("not", format!("contains «{w}»")));
            }
        }
        let mut captured = Vec::new();
        for c in &self.capture {
            let Some(caps) = c.pattern.captures(&reply.text) else {
                return Err(mismatch(
                    &format!("capture {}", c.name),
                    format!("/{}/ found nothing", c.pattern.as_str()),
                ));
            };
            let value = caps.get(1).or_else(|| caps.get(0)).map(|m| m.as_str());
            captured.push((c.name.clone(), value.unwrap_or_default().to_string()));
        }
        Ok(captured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Button;

    fn reply(text: &str) -> Reply {
        Reply {
            text: text.to_string(),
            buttons: Vec::new(),
            template: None,
            request_contact: false,
        }
    }

    fn ok(m: &Matcher, text: &str) -> bool {
        m.check(&reply(text), &Vars::new(), &Vocabulary::empty())
            .is_ok()
    }

    fn template(s: &str) -> Matcher {
        Matcher::Template(Pattern::template(s, &Vocabulary::empty()).unwrap())
    }

    #[test]
    fn normalises_case_whitespace_and_yo() {
        assert_eq!(
            normalize("  Запись\u{a0}ОСТАЁТСЯ\n в силе "),
            "запись остается в силе"
        );
    }

    #[test]
    fn exact_text_ignores_case_and_spacing_but_not_words() {
        let m = Matcher::Text("Спасибо,  ждём вас!".into());
        assert!(ok(&m, "спасибо, ждем вас!"));
        assert!(!ok(&m, "Спасибо, ждём вас завтра!"));
    }

    #[test]
    fn template_placeholders_accept_their_shapes_and_reject_others() {
        let m = template("Записала вас на {service} {date} в {time}. Стоимость {price}{any}");
        assert!(ok(
            &m,
            "Записала вас на маникюр 21.11 в 15:00. Стоимость 1 500 ₽, ждём!"
        ));
        assert!(ok(
            &m,
            "записала вас на маникюр 21.11 в 15:00. стоимость от 1 500 до 3 500 ₽"
        ));
        assert!(!ok(
            &m,
            "Записала вас на маникюр 21 ноября в 15:00. Стоимость 1 500 ₽"
        ));
        assert!(!ok(
            &m,
            "Записала вас на маникюр 21.11 в 15:00. Стоимость бесплатно"
        ));
        let name = template("Спасибо, {name}!");
        assert!(ok(&name, "Спасибо, Анна-Мария!"));
        assert!(!ok(&name, "Спасибо, Анна Мария!"));
    }

    #[test]
    fn template_literal_prices_and_braces_are_text() {
        let m = template("Маникюр стоит 1 500 ₽ {{акция}}");
        assert!(ok(&m, "маникюр стоит 1 500 ₽ {акция}"));
        assert!(!ok(&m, "маникюр стоит 1 700 ₽ {акция}"));
        assert!(Pattern::template("{servise}", &Vocabulary::empty()).is_err());
    }

    #[test]
    fn template_uses_captured_values_literally() {
        let m = template("Ваш номер записи ${id}.");
        let vars = Vars::from([("id".to_string(), "12.5".to_string())]);
        let v = Vocabulary::empty();
        assert!(m.check(&reply("Ваш номер записи 12.5."), &vars, &v).is_ok());
        assert!(
            m.check(&reply("Ваш номер записи 1235."), &vars, &v)
                .is_err()
        );
        assert!(
            m.check(&reply("Ваш номер записи 12.5."), &Vars::new(), &v)
                .is_err()
        );
    }

    #[test]
    fn regex_searches_case_insensitively() {
        let m = Matcher::Regex(
            Pattern::regex(r"\d{2}\.\d{2} в 1[5-6]:00", &Vocabulary::empty()).unwrap(),
        );
        assert!(ok(&m, "Готово! 21.11 В 15:00"));
        assert!(!ok(&m, "Готово! 21.11 в 17:00"));
    }

    #[test]
    fn contains_needs_every_word() {
        let m = Matcher::Contains(vec!["адрес".into(), "Ленина".into()]);
        assert!(ok(&m, "Наш адрес: ул. Ленина, 1"));
        assert!(!ok(&m, "Наш адрес: ул. Мира, 1"));
    }

    #[test]
    fn key_matches_the_template_tag_and_rejects_another() {
        let m = Matcher::Key(TemplateKey::Booked);
        let mut r = reply("whatever");
        r.template = Some("booked".into());
        assert!(m.check(&r, &Vars::new(), &Vocabulary::empty()).is_ok());
        r.template = Some("fallback".into());
        assert!(m.check(&r, &Vars::new(), &Vocabulary::empty()).is_err());
    }

    #[test]
    fn any_of_variations_buttons_not_and_capture() {
        let v = Vocabulary::empty();
        let e = MessageExpect {
            any: vec![
                template("Отменила запись{any}"),
                template("Запись{any}отменила{any}"),
            ],
            buttons: Some(vec![
                Pattern::template("{time}", &v).unwrap(),
                Pattern::template("Другое время", &v).unwrap(),
            ]),
            not: vec!["ошибка".into()],
            capture: vec![Capture {
                name: "t".into(),
                pattern: Regex::new(r"(\d{2}:\d{2})").unwrap(),
            }],
            ..MessageExpect::default()
        };
        let mut r = reply("Запись на маникюр 21.11 в 15:00 отменила.");
        r.buttons = vec![Button::new("16:00", "a"), Button::new("другое  время", "b")];
        assert_eq!(
            e.check(&r, &Vars::new(), &v),
            Ok(vec![("t".to_string(), "15:00".to_string())])
        );
        let mut wrong = r.clone();
        wrong.text = "Запись перенесла".into();
        assert_eq!(e.check(&wrong, &Vars::new(), &v).unwrap_err().check, "any");
        let mut wrong = r.clone();
        wrong.buttons.pop();
        assert_eq!(
            e.check(&wrong, &Vars::new(), &v).unwrap_err().check,
            "buttons"
        );
        let mut wrong = r.clone();
        wrong.text.push_str(" Произошла ошибка");
        assert_eq!(e.check(&wrong, &Vars::new(), &v).unwrap_err().check, "not");
        let mut wrong = r;
        wrong.text = "Отменила запись.".into();
        assert_eq!(
            e.check(&wrong, &Vars::new(), &v).unwrap_err().check,
            "capture t"
        );
    }

    #[test]
    fn buttons_include_finds_a_subset() {
        let v = Vocabulary::empty();
        let e = MessageExpect {
            buttons_include: vec![Pattern::template("Отменить", &v).unwrap()],
            ..MessageExpect::default()
        };
        let mut r = reply("x");
        r.buttons = vec![Button::new("Перенести", "a"), Button::new("Отменить", "b")];
        assert!(e.check(&r, &Vars::new(), &v).is_ok());
        r.buttons.pop();
        assert!(e.check(&r, &Vars::new(), &v).is_err());
    }
}
