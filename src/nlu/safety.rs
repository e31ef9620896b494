//! Health and safety questions about a procedure, at any business: contraindications ("можно ли
//! делать маникюр беременным", "при варикозе можно массаж?"), allergies ("у меня аллергия на
//! гель-лак"), a reaction after a procedure ("после эпиляции покраснение, что делать?") and what
//! to apply ("чем мазать после ожога воском"). A person answers these; the bot must not.
//!
//! Cue words on the normalised message words (one Aho–Corasick pass, see `lexicon`), combined:
//! - allergies, contraindications, burns and aftercare questions count alone;
//! - a skin reaction (покраснение, сыпь, зуд, отёк) counts after a procedure ("после …", not
//!   the time "после 6") or with "что делать"/"это нормально?";
//! - a condition (беременность, кормлю грудью, варикоз, давление, антибиотики) counts with a
//!   question whether it is allowed ("можно ли", "нельзя", "не вредно").
//!
//! A booking that only gives a reason ("хочу на массаж, спина болит") is no safety question.
//! Built once per `Nlu`; profile-independent.

use crate::nlu::lexicon::{Lexicon, WordText};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cue {
    /// A safety question on its own.
    Alone,
    Reaction,
    Condition,
    /// "можно ли", "нельзя", "вредно".
    Allowed,
    /// "после" (a procedure before it).
    After,
    /// "что делать", "это нормально".
    WhatToDo,
}

const ALONE: &str = "противопоказан*|аллерги*|аллергик*|ожог*|обожгл*|обожгли|\
     обжегл*|чем мазать|чем намазать|чем помазать|чем смазать|чем обработать|чем лечить|\
     что нанести|что намазать|чем снять";

const REACTION: &str = "покрасне*|раздражени*|сыпь|сыпью|высыпа*|волдыр*|пузыр*|чешет*|чешут*|\
     зуд|зуда|зудит|зудят|жжет|жжение|жжения|печет|щиплет|щипет|шелуш*|отек*|отечн*|опух*|\
     воспал*|гноит*|гной|нагноени*|нарыв*|кровит|синяк*|пятна|пятно|вросш*";

const CONDITION: &str = "беременн*|беременност*|кормящ*|кормлю грудью|кормлю ребенка грудью|\
     грудное вскармливание|грудном вскармливании|гв|лактаци*|варикоз*|диабет*|гипертони*|\
     высокое давление|высоким давлением|повышенное давление|давление скачет|\
     проблемы с давлением|эпилепси*|онколог*|псориаз*|экзем*|грибок|грибка|грибком|месячн*|\
     кардиостимулятор*|тромбоз*|тромбофлебит*|герпес*|простуд*|температур*|антибиотик*|\
     лекарств*|таблетк*|прививк*|после операции|после родов|кесарев*|химиотерапи*|гормон*|\
     щитовидк*|астм*|витилиго|ботокс*";

const ALLOWED: &str = "можно|можно ли|нельзя|вредно|не вредно|опасно|не опасно|безопасно|\
     разрешено|не навредит|навредит|стоит ли|допустимо";

const WHAT_TO_DO: &str = "что делать|что мне делать|это нормально|нормально ли|так и должно|\
     должно так быть|пройдет|когда пройдет|как снять|как убрать|как лечить";

/// The compiled cue table.
pub struct SafetyRules {
    lexicon: Lexicon<Cue>,
}

impl Default for SafetyRules {
    fn default() -> Self {
        Self::new()
    }
}

impl SafetyRules {
    pub fn new() -> SafetyRules {
        let tables = [
            (ALONE, Cue::Alone),
            (REACTION, Cue::Reaction),
            (CONDITION, Cue::Condition),
            (ALLOWED, Cue::Allowed),
            ("после", Cue::After),
            (WHAT_TO_DO, Cue::WhatToDo),
        ];
        let patterns = tables.iter().flat_map(|(list, cue)| {
            list.split('|')
                .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|p| !p.is_empty())
                .map(move |p| (p, *cue))
        });
        SafetyRules {
            lexicon: Lexicon::new(patterns),
        }
    }

    /// Whether the message (its normalised words) asks a health or safety question about a
    /// procedure. `known`: words read as something else — a date or time ("после 6" is no
    /// procedure), a service ("ведение беременности", "ботокс ресниц"), a contact or a name.
    pub fn asks(&self, words: &[&str], known: &[bool]) -> bool {
        let text = WordText::new(words.iter().copied());
        let mut seen = [false; 6];
        self.lexicon.for_each(&text, |cue, first, _| {
            if !known.get(first).copied().unwrap_or(false) {
                seen[*cue as usize] = true;
            }
        });
        let has = |c: Cue| seen[c as usize];
        has(Cue::Alone)
            || (has(Cue::Reaction) && (has(Cue::After) || has(Cue::WhatToDo)))
            || (has(Cue::Condition) && has(Cue::Allowed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlu::normalize::normalize;

    fn asks(text: &str) -> bool {
        let n = normalize(text);
        let words: Vec<&str> = n.words().collect();
        SafetyRules::new().asks(&words, &vec![false; words.len()])
    }

    #[test]
    fn health_questions_about_a_procedure_are_safety() {
        for text in [
            "можно ли делать маникюр беременным?",
            "у меня аллергия на гель-лак",
            "после эпиляции покраснение и сыпь, что делать",
            "чем мазать после ожога воском",
            "кормлю грудью, можно на массаж?",
            "при варикозе можно делать массаж ног?",
            "после чистки лица всё чешется, это нормально?",
            "есть ли противопоказания к шугарингу?",
            "после наращивания ресниц опухли глаза",
            "пью антибиотики, можно ли на чистку лица?",
        ] {
            assert!(asks(text), "{text:?} is a safety question");
        }
    }

    #[test]
    fn bookings_that_give_a_reason_are_not_safety() {
        for text in [
            "хочу на массаж, спина болит",
            "у ребенка сыпь, можно к педиатру?",
            "я беременна, запишите на маникюр",
            "можно на маникюр завтра?",
            "какие таблетки пить от давления?",
            "можно массаж с сильным давлением?",
            "после работы можно?",
            "",
        ] {
            assert!(!asks(text), "{text:?} is no safety question");
        }
    }

    #[test]
    fn a_time_after_or_a_service_named_is_no_cue() {
        let rules = SafetyRules::new();
        let n = normalize("покраснение после 6");
        let words: Vec<&str> = n.words().collect();
        assert!(
            !rules.asks(&words, &[false, true, true]),
            "«после 6» is a time"
        );
        assert!(rules.asks(&words, &[false, false, false]));
        let n = normalize("можно ли встать на ведение беременности");
        let words: Vec<&str> = n.words().collect();
        let service = [false, false, false, false, true, true];
        assert!(
            !rules.asks(&words, &service),
            "«ведение беременности» is a service"
        );
    }
}
