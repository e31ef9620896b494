//! Russian understanding: one client message + a reference time + a business profile →
//! `Understanding` (intent, date/time, service, staff, phone, name, e-mail, confidence, and the
//! flags that keep a conversation from a dead end: a safety question, «в то же время», the name
//! a reply to «как к вам обращаться?» gives).
//! Pure and fast: everything costly (regexes, stem tables, vocabularies) is compiled once per
//! profile in `Nlu::new`; `understand` only reads it. Dates are resolved in the business time
//! zone; a date or time is kept as a booking slot only when the intent is about booking.

pub mod datetime;
pub mod email;
pub mod intent;
pub mod lexicon;
pub mod name;
pub mod names_gazetteer;
pub mod normalize;
pub mod phone;
pub mod safety;
pub mod service;
pub mod staff;
pub mod typo;

use crate::config::Profile;
use crate::domain::{Intent, ServiceId, StaffId, When};
use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use std::ops::Range;

/// What a message says, as far as the bot can tell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Understanding {
    pub intent: Intent,
    /// The wanted date/time (for a reschedule: the new one).
    pub when: When,
    /// For a reschedule, the slot being moved away from ("с пятницы на субботу" → пятница).
    pub moved_from: Option<When>,
    pub service: Option<ServiceId>,
    pub staff: Option<StaffId>,
    /// E.164.
    pub phone: Option<String>,
    /// A phone-like number that does not validate (the bot asks again).
    pub invalid_phone: bool,
    /// The client's name, nominative.
    pub name: Option<String>,
    pub email: Option<String>,
    /// Matched FAQ entry id, if the message asks one.
    pub faq: Option<String>,
    /// Looks like a medical question (only acted upon at clinics).
    pub medical: bool,
    /// Looks like a complaint.
    pub complaint: bool,
    /// Doubts that a person answers («вы робот?») or says the bot does not understand: the
    /// intent is `human`, and the bot apologises as it hands over.
    pub frustrated: bool,
    /// A health or safety question about a procedure (contraindications, allergies, a skin
    /// reaction, what to apply): a person answers it at any business, not only at clinics.
    pub safety: bool,
    /// «в то же время», «время такое же», «так же»: keep the time of the booking being moved.
    pub same_time: bool,
    /// Read as the answer to «как к вам обращаться?»: the name a short reply gives (any first
    /// name, also an unknown one, in lower case or a common word like «Роза»; «Фамилия Имя
    /// [Отчество]» keeps the surname), capitalised, in «Имя [Отчество] Фамилия» order. None
    /// when the reply is clearly something else (a question, a refusal, a date, a service).
    pub name_answer: Option<String>,
    /// The message tries to instruct the bot (prompt injection) or is not a client's request
    /// (job inquiry, advertising): intent `other`, every slot dropped.
    pub injection: bool,
    /// 0..1: how sure the intent is.
    pub confidence: f32,
    /// Several FAQ entries asked in one message, in the order asked (empty unless two or more).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faqs: Vec<String>,
    /// What an LLM (`BOT_LLM_*`) added for a question the rules could not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assist: Option<Assist>,
    /// When an LLM was asked about the message: what came of it (`used`, or the fallback's
    /// cause), stored with the message for `bot report`.
    #[serde(skip)]
    pub llm: Option<&'static str>,
}

/// An LLM's help with a question the FAQ does not cover (`llm/assist.rs`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Assist {
    /// An answer whose every fact is in the business's knowledge.
    Answer(String),
    /// The model had no grounded answer: a manager is to answer the question.
    Unanswered,
}

impl Understanding {
    fn empty() -> Understanding {
        Understanding {
            intent: Intent::Other,
            when: When::default(),
            moved_from: None,
            service: None,
            staff: None,
            phone: None,
            invalid_phone: false,
            name: None,
            email: None,
            faq: None,
            medical: false,
            complaint: false,
            safety: false,
            frustrated: false,
            same_time: false,
            name_answer: None,
            injection: false,
            confidence: 0.0,
            faqs: Vec::new(),
            assist: None,
            llm: None,
        }
    }
}

/// The most characters of one message that are read: a messenger text is at most 4 096
/// characters (Telegram, MAX, VK), and whatever a client pastes beyond that is not a booking
/// request. With every step linear in its input, this bounds the work per message.
pub const MAX_UNDERSTOOD_CHARS: usize = 4096;

/// The part of a message that is read: its first [`MAX_UNDERSTOOD_CHARS`] characters.
pub fn read_part(text: &str) -> &str {
    match text.char_indices().nth(MAX_UNDERSTOOD_CHARS) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// Understanding compiled for one profile.
pub struct Nlu {
    tz: Tz,
    opens_at_hour: u32,
    medical_to_human: bool,
    faq_ids: Vec<String>,
    datetime: datetime::DateTimeParser,
    rules: intent::IntentRules,
    services: service::ServiceMatcher,
    staff: staff::StaffMatcher,
    email: email::EmailFinder,
}

/// Mark `range` (word indexes) in `mask`.
fn mark(mask: &mut [bool], range: Range<usize>) {
    for m in mask.iter_mut().take(range.end).skip(range.start) {
        *m = true;
    }
}

impl Nlu {
    pub fn new(profile: &Profile) -> Nlu {
        let opens_at_hour = profile
            .hours
            .days
            .iter()
            .flatten()
            .map(|d| d.open.hour())
            .min()
            .unwrap_or(9);
        Nlu {
            tz: profile.business.timezone,
            opens_at_hour,
            medical_to_human: profile.escalation.medical_questions_to_human,
            faq_ids: profile.faq.iter().map(|f| f.id.clone()).collect(),
            datetime: datetime::DateTimeParser::new(),
            rules: intent::IntentRules::new(profile),
            services: service::ServiceMatcher::new(profile),
            staff: staff::StaffMatcher::new(profile),
            email: email::EmailFinder::new(),
        }
    }

    /// Understand one message sent at `now`.
    pub fn understand(&self, text: &str, now: DateTime<Utc>) -> Understanding {
        let text = read_part(text);
        let mut u = Understanding::empty();
        let norm = normalize::normalize(text);

        // Words (letters and numbers) with their tokens; English service words mapped.
        let mut words: Vec<name::Word<'_>> = Vec::with_capacity(norm.tokens.len());
        for (ti, t) in norm.tokens.iter().enumerate() {
            if t.is_punct('@') || t.kind == normalize::TokenKind::Punct {
                continue;
            }
            let original = norm.original_of(ti..ti + 1);
            let text = if t.is_word() && original.is_ascii() {
                service::english_alias(&original.to_ascii_lowercase()).unwrap_or(&t.text)
            } else {
                &t.text
            };
            words.push(name::Word { text, token: ti });
        }
        let plain: Vec<&str> = words.iter().map(|w| w.text).collect();
        let n = words.len();
        let capitalized: Vec<bool> = words
            .iter()
            .map(|w| norm.tokens.get(w.token).is_some_and(|t| t.capitalized))
            .collect();
        let word_of_token = |ti: usize| words.iter().position(|w| w.token >= ti);
        let words_in_orig = |r: &Range<usize>| -> Range<usize> {
            let first = words
                .iter()
                .position(|w| norm.tokens[w.token].orig.end > r.start)
                .unwrap_or(n);
            let end = words
                .iter()
                .rposition(|w| norm.tokens[w.token].orig.start < r.end)
                .map_or(first, |i| i + 1);
            first..end.max(first)
        };

        // Contacts in the original text.
        let email = self.email.find(text);
        let phone = phone::find(text, email.as_ref().map(|(_, r)| r));
        let mut contact = vec![false; n];
        if let Some((_, r)) = &email {
            mark(&mut contact, words_in_orig(r));
        }
        let phone_words = phone.span.as_ref().map(words_in_orig);
        if let Some(r) = &phone_words {
            mark(&mut contact, r.clone());
        }

        // Dates and times, in the business time zone.
        let local = now.with_timezone(&self.tz);
        let mut dt = self.datetime.parse(&norm, local, self.opens_at_hour);
        // A client's name is not a weekday typo ("Вероника" is not "вторник").
        let g = names_gazetteer::gazetteer();
        let only_names = !dt.tokens.is_empty()
            && dt.tokens.iter().all(|r| {
                r.len() == 1
                    && norm
                        .tokens
                        .get(r.start)
                        .is_some_and(|t| g.lookup(&t.text).is_some_and(|f| !f.common_noun))
            });
        if only_names {
            dt = datetime::DateTimeMatch::default();
        }
        let mut dated = vec![false; n];
        for r in &dt.tokens {
            if let (Some(a), Some(b)) = (word_of_token(r.start), word_of_token(r.end)) {
                mark(&mut dated, a..b);
            } else if let Some(a) = word_of_token(r.start) {
                mark(&mut dated, a..n);
            }
        }

        // The client's own name after a trigger, then staff (never the client), then service.
        let mut blocked: Vec<bool> = contact.iter().zip(&dated).map(|(a, b)| *a || *b).collect();
        let phone_tokens = phone_words.as_ref().and_then(|r| {
            Some(words.get(r.start)?.token..words.get(r.end.checked_sub(1)?)?.token + 1)
        });
        let mut triggered = name::by_trigger(&norm, &words, &blocked)
            .or_else(|| name::signature(&norm, &words, &blocked, phone_tokens.clone()));
        let mut claimed = vec![false; n];
        if let Some((_, r)) = &triggered {
            mark(&mut claimed, r.clone());
        }
        // Words of an e-mail or phone ("anna.k@mail.ru") never name a master.
        let not_staff: Vec<bool> = claimed
            .iter()
            .zip(&contact)
            .map(|(a, b)| *a || *b)
            .collect();
        let mut staff = self.staff.find(&plain, &capitalized, &not_staff);
        // A message that is nothing but a name ("Дмитрий", "Анна Сергеевна") answers "как к
        // вам обращаться?": it is the writer's name even when a master has the same one.
        if triggered.is_none()
            && staff
                .as_ref()
                .is_some_and(|(_, r)| r.start == 0 && r.end == n)
            && let Some(own) = name::standalone(&norm, &words, &blocked, None)
        {
            mark(&mut claimed, own.1.clone());
            triggered = Some(own);
            staff = None;
        }
        // Staff words may name a service too ("к узисту"), so services skip only contacts
        // and dates.
        let service = self.services.find(&plain, &blocked);
        if let Some((_, r)) = &staff {
            mark(&mut blocked, r.clone());
        }

        let mut known = blocked.clone();
        for (k, c) in known.iter_mut().zip(&claimed) {
            *k |= *c;
        }
        if let Some((_, r)) = &service {
            mark(&mut known, r.clone());
        }
        let cues = self.rules.cues(&plain, text, &known);
        let slots = intent::Slots {
            has_when: !dt.when.is_empty(),
            moved: dt.moved_from.is_some(),
            gave_up: dt.gave_up,
            same_time: dt.same_time,
        };
        let (intent, confidence) = intent::decide(&cues, slots, service.is_some());
        u.intent = intent;
        u.confidence = confidence;
        if cues.injection || cues.offtopic {
            u.injection = true;
            return u;
        }
        u.complaint = cues.complaint;
        u.frustrated = cues.frustrated;
        u.medical = cues.medical && self.medical_to_human;
        u.safety = cues.safety;
        // A reply to «как к вам обращаться?» is no date, service or cue word.
        let mut not_a_name = dated;
        for (s, c) in not_a_name.iter_mut().zip(&cues.covered) {
            *s |= *c;
        }
        if let Some((_, r)) = &service {
            mark(&mut not_a_name, r.clone());
        }
        u.name_answer = name::answer(&norm, &words, &not_a_name, &contact);
        u.invalid_phone = phone.invalid;
        u.phone = phone.e164;
        u.email = email.map(|(e, _)| e);
        let service_words = service.as_ref().map(|(_, r)| r.clone());
        u.service = service.map(|(s, _)| s);
        u.staff = staff.map(|(s, _)| s);
        u.faq = cues
            .faq
            .and_then(|(i, _)| self.faq_ids.get(i).cloned())
            .filter(|_| {
                matches!(
                    intent,
                    Intent::Faq | Intent::Price | Intent::Promo | Intent::Other
                )
            });
        if u.faq.is_some() && cues.faqs.len() > 1 {
            u.faqs = cues
                .faqs
                .iter()
                .filter_map(|i| self.faq_ids.get(*i).cloned())
                .collect();
        }
        u.name = match triggered {
            Some((name, _)) => Some(name),
            None => {
                let mut skip = blocked;
                for (s, c) in skip.iter_mut().zip(&cues.covered) {
                    *s |= *c;
                }
                if let Some(r) = service_words {
                    mark(&mut skip, r);
                }
                name::standalone(&norm, &words, &skip, phone_tokens).map(|(name, _)| name)
            }
        };
        u.same_time = dt.same_time;
        if intent.takes_slot() {
            u.when = dt.when;
            u.moved_from = dt.moved_from;
        }
        u
    }
}
