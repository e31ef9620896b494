//! Which staff member a message names: profile staff names and aliases in any case ("к Ольге",
//! "у Анны", "мастеру Кате", "к Светлане Игоревне", "к Иванову"), plus the gazetteer's
//! diminutives of each first name (staff "Екатерина" is also "Катя", "Катюша"). Names that are
//! everyday words ("Вера", "Роза") need a cue: a capital letter or "к/у/мастер/доктор" before.
//! The matched words (with a following patronymic or surname) are never the client's name.

use crate::config::Profile;
use crate::domain::StaffId;
use crate::nlu::names_gazetteer::{
    gazetteer, inflections, patronymic_nominative, surname_nominative,
};
use crate::nlu::normalize::normalize;
use std::collections::HashMap;
use std::ops::Range;

/// Words before a name that make it a staff reference.
pub const CUES: &[&str] = &[
    "к",
    "ко",
    "у",
    "с",
    "мастер",
    "мастеру",
    "мастера",
    "мастером",
    "доктор",
    "доктору",
    "доктора",
    "врач",
    "врачу",
    "врача",
    "специалист",
    "специалисту",
    "стилист",
    "стилисту",
];

#[derive(Debug, Clone, Copy)]
struct Form {
    staff: usize,
    /// The form is an everyday word too (needs a cue or a capital letter).
    common: bool,
    /// A patronymic on its own ("Андреевна" may follow any first name): needs a cue.
    patronymic: bool,
}

pub struct StaffMatcher {
    ids: Vec<StaffId>,
    forms: HashMap<String, Vec<Form>>,
}

impl StaffMatcher {
    pub fn new(profile: &Profile) -> StaffMatcher {
        let mut forms: HashMap<String, Vec<Form>> = HashMap::new();
        let g = gazetteer();
        let mut add = |form: String, staff: usize, common: bool, patronymic: bool| {
            let list = forms.entry(form).or_default();
            if !list.iter().any(|f| f.staff == staff) {
                list.push(Form {
                    staff,
                    common,
                    patronymic,
                });
            }
        };
        for (si, member) in profile.staff.iter().enumerate() {
            let phrases = std::iter::once(member.name.as_str())
                .chain(member.aliases.iter().map(String::as_str));
            for phrase in phrases {
                let norm = normalize(phrase);
                let single = norm.words().count() == 1;
                for word in norm.words() {
                    // Titles and roles in aliases ("доктор Иванов", "терапевт Ковалева",
                    // "Дима барбер") are not names: in a phrase, keep only name-shaped words.
                    let name_shaped = g.lookup(word).is_some()
                        || patronymic_nominative(word).is_some()
                        || surname_nominative(word).is_some();
                    if word.chars().count() < 3 || CUES.contains(&word) || !(single || name_shaped)
                    {
                        continue;
                    }
                    let common = g.lookup(word).is_some_and(|f| f.common_noun);
                    let patronymic = patronymic_nominative(word).is_some();
                    for f in inflections(word) {
                        add(f, si, common, patronymic);
                    }
                    for nom in g.family_of(word) {
                        let common = g.lookup(nom).is_some_and(|f| f.common_noun);
                        for f in inflections(nom) {
                            add(f, si, common, false);
                        }
                    }
                }
            }
        }
        StaffMatcher {
            ids: profile.staff.iter().map(|s| s.id.clone()).collect(),
            forms,
        }
    }

    /// The staff member named in `words` (normalised) and the words the reference covers.
    /// `capitalized[i]`: the word was written with a capital; `claimed[i]`: the word is already
    /// the client's own name ("меня зовут Ольга").
    pub fn find(
        &self,
        words: &[&str],
        capitalized: &[bool],
        claimed: &[bool],
    ) -> Option<(StaffId, Range<usize>)> {
        for (i, w) in words.iter().enumerate() {
            if claimed.get(i).copied().unwrap_or(false) {
                continue;
            }
            let Some(list) = self.forms.get(*w) else {
                continue;
            };
            let Some(form) = list.first() else { continue };
            let cued = i > 0 && CUES.contains(&words[i - 1]);
            let capital = capitalized.get(i).copied().unwrap_or(false);
            if (form.common && !cued && !capital) || (form.patronymic && !cued) {
                continue;
            }
            // Take a following patronymic or a second word of the same person; a patronymic
            // that is not theirs ("Ольга Петровна" when the master is Ольга Викторовна) means
            // somebody else of the same first name.
            let mut end = i + 1;
            let mut someone_else = false;
            while let Some(next) = words.get(end) {
                let same = self
                    .forms
                    .get(*next)
                    .is_some_and(|l| l.iter().any(|f| f.staff == form.staff));
                if same {
                    end += 1;
                } else {
                    someone_else = patronymic_nominative(next).is_some();
                    break;
                }
            }
            if someone_else {
                continue;
            }
            return Some((self.ids[form.staff].clone(), i..end));
        }
        None
    }
}
