//! What the client wants: keyword cues on normalised words (word-anchored prefixes, so every
//! inflection of "запис*" counts), typo-corrected against a closed vocabulary, then a scoring
//! policy where the strongest cue wins.
//!
//! The policy, in order:
//! 1. a prompt injection ("ignore previous instructions", "</system>", "ты теперь", "забудь
//!    инструкции", "напиши стих", "измени цены") → `other`, and the caller drops every slot;
//! 2. a complaint ("ужасно", "верните деньги", "покрытие слезло", profile `complaint_keywords`)
//!    → `human`;
//! 3. an explicit request for a person ("администратор", "позовите менеджера"), a question
//!    whether the bot is a machine ("вы робот?") or a remark that it does not understand ("вы
//!    меня не понимаете", "бот тупит") → `human`;
//! 4. reschedule or cancel words → that intent (they outrank booking words, which they often
//!    contain: "перенесите запись"); so does a slot moved away from ("не успею к 12, можно на
//!    14", "я записана на четверг, давайте в субботу") or the same time on another day ("в
//!    понедельник в то же время", unless a booking verb says it is a new booking), and a slot
//!    given up with nothing in its place is a cancel ("всё, сегодня не смогу");
//! 5. otherwise the best score among book, free_time, price, promo and faq, where a named
//!    service adds 1 to book and a date/time 0.5. Booking verbs (3) outweigh a price question
//!    (2.5–3): "хочу записаться, сколько стоит маникюр" is `book` — the bot books and states the
//!    price; "сколько стоит маникюр" alone is `price`. "когда можно…/есть окошко" asks what is
//!    free and outweighs a booking verb; ties go book > free_time > price > promo > faq;
//! 6. short answers: deny (нет, не подходит, не смогу) outranks confirm (да, ок, буду); a
//!    date/time together with a deny or a plain "да/ок/давайте" is `book` (it proposes a
//!    slot: "нет, давайте в субботу", "да, завтра в 3"), while "подходит/буду/приду" with a
//!    date stays `confirm` ("буду завтра в 3" answers a reminder);
//! 7. a bare date/time with no cue is `book` (it answers the bot's question), unless a trap
//!    word says the date is something else (погода, др / день рождения, вчера, в прошлый раз);
//! 8. thanks, then greeting; nothing → `other` with a low confidence.
//!
//! Cues preceded by "не" do not count for book, free_time or confirm ("не подходит" is its own
//! deny cue).

use crate::config::Profile;
use crate::domain::Intent;
use crate::nlu::lexicon::{Lexicon, WordText};
use crate::nlu::safety::SafetyRules;
use crate::nlu::typo::Vocabulary;
use aho_corasick::AhoCorasick;
use rust_stemmers::{Algorithm, Stemmer};

/// What a pattern signals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cue {
    Intent(Intent, f32),
    Complaint,
    Human,
    /// «вы робот?», «вы меня не понимаете».
    Frustrated,
    Injection,
    /// Job inquiries, advertising, spam: not a client's request.
    Offtopic,
    /// A date that is not a wanted slot: weather, a birthday, a past visit.
    Trap,
    Medical,
    /// One word of FAQ keyword `keyword` (index into `IntentRules::faq_keywords`), bit `bit`.
    FaqWord {
        keyword: u16,
        bit: u8,
    },
}

/// Intent keyword table: (intent, weight, patterns separated by `|`).
const INTENT_CUES: &[(Intent, f32, &str)] = &[
    (
        Intent::Book,
        3.0,
        "запис*|запиш*|забронир*|заброн*|бронь|бронирован*|на прием|на сеанс|на процедур*",
    ),
    (
        Intent::Book,
        1.5,
        "хотела бы|хотел бы|хотелось бы|можно на|можно к|хочу на|хочу к|нужно на|надо на",
    ),
    (Intent::Book, 1.0, "хочу|хочется|хотим"),
    (
        Intent::Reschedule,
        4.0,
        "перенес*|перенос*|перезапис*|передвин*|сдвин*|подвин*|поменять время|поменяйте время|\
         изменить время|измените время|поменять дату|поменяйте дату|изменить дату|сменить время|\
         поменять день|поменяйте день|перебронир*",
    ),
    (
        Intent::Reschedule,
        3.0,
        "другое время|другой день|другую дату|на другое время|на другой день|вместо",
    ),
    (
        Intent::Cancel,
        4.0,
        "отмен*|отменя*|передумал*|удалите запись|\
         удалите мою запись|снимите запись|снимите с записи|снимите меня|уберите запись|\
         уберите меня|откажусь от записи|отказываюсь от записи|отказаться от записи|\
         отказаться от визита|откажусь от визита|отказываюсь от визита|отказаться от приема|\
         придется отказаться|вынуждена отказаться|вынужден отказаться|запись не актуальн*|\
         запись неактуальн*|уже не актуальн*|уже неактуальн*|визит не актуален",
    ),
    // "Won't come" alone is a refusal of the visit; with "перенесем" it is a reschedule.
    (
        Intent::Cancel,
        2.0,
        "не приду|не придем|не смогу прийти|не сможем прийти|не получится прийти|\
         не получится приехать|не смогу приехать|не успею прийти|не успеваю прийти",
    ),
    (
        Intent::Price,
        3.0,
        "сколько стоит|сколько стоят|сколько будет стоить|сколько стоить|сколько стоило|\
         сколько будет|сколько выйдет|сколько обойдется|во сколько обойдется|\
         стоимост*|прайс*|почем|по чем|расценк*|ценник*|тариф*|сколько по деньгам|\
         сколько денег|сколько за|по деньгам",
    ),
    (Intent::Price, 2.5, "цен*"),
    (Intent::Price, 1.5, "стоит|стоят|дорого|дешево|руб|рублей"),
    (Intent::Price, 1.0, "сколько"),
    (
        Intent::Promo,
        3.0,
        "акци*|скидк*|скидоч*|промокод*|промо|купон*|спецпредложени*|распродаж*|\
         черная пятница|черную пятницу|черной пятницы|черной пятнице|бонус*|кешбэк|кешбек|\
         кэшбек|кэшбэк|для новых клиентов|первое посещение|первый визит",
    ),
    (Intent::Promo, 2.0, "день рождения|именинник*"),
    (Intent::Promo, 1.5, "дешевле|выгодн*|подешевле"),
    (
        Intent::FreeTime,
        5.0,
        "когда можно|когда есть|когда свободн*|когда будет свободн*|на когда можно|\
         какое время есть|какое время свободн*|какие есть окошки|какие окошки|какие есть окна",
    ),
    (
        Intent::FreeTime,
        3.0,
        "окошк*|окошечк*|окно|окна|окон|свободн*|есть время|есть ли время|есть места|есть место|\
         есть ли места|есть ли место|места есть|место есть|мест нет|есть ли запись|\
         есть запись|что есть на|что есть|что свободно",
    ),
    (
        Intent::FreeTime,
        2.5,
        "ближайш*|можно попасть|можно ли попасть|расписани*|будет время|занято|принимает|\
         принимают|работает ли",
    ),
    (Intent::FreeTime, 0.8, "есть"),
    (
        Intent::Confirm,
        2.5,
        "подходит|подойдет|устраивает|устроит|буду|приду|придем|договорились|согласн*|\
         подтвержда*|годится|замечательно|прекрасно",
    ),
    (
        Intent::Confirm,
        2.0,
        "да|дада|ага|угу|ок|окей|оки|хорошо|отлично|конечно|верно|ладно|точно|именно",
    ),
    (Intent::Confirm, 1.5, "давайте|давай|супер|норм|идет|класс"),
    (
        Intent::Deny,
        3.0,
        "не подходит|не подойдет|не устраивает|не устроит|не смогу|не получится|не могу|\
         не сможем|неудобно|не удобно",
    ),
    (
        Intent::Deny,
        2.5,
        "нет|неа|нее|нет спасибо|не надо|не нужно|не хочу|никак|откажусь",
    ),
    (
        Intent::Thanks,
        1.5,
        "спасиб*|спс|пасиб*|благодар*|сенкс|тханкс",
    ),
    (
        Intent::Greeting,
        1.0,
        "привет*|здравствуй*|здраст*|здрасьте|добрый день|добрый вечер|доброе утро|доброго дня|\
         доброй ночи|хай|салют|хелло|хеллоу|алло|приветик|start|старт|начать",
    ),
];

const HUMAN_CUES: &str = "администратор*|админ|админу|админа|оператор*|менеджер*|руководител*|\
     руководств*|директор*|управляющ*|живой человек|живого человека|живым человеком|\
     живому человеку|с человеком|человеку|позовите*|позови|позвать|соедините*|соедини|\
     перезвоните*|перезвоните|перезвонить|позвоните мне|позвонить мне|наберите мне|\
     свяжитесь со мной|связаться с|хочу поговорить|поговорить с";

/// Doubt that a person answers, or frustration that the bot does not understand: a person
/// takes over, and the bot says sorry first.
const FRUSTRATION_CUES: &str = "не с ботом|ты бот|вы бот|это бот|\
     бот|бота|боту|ботом|чат бот|чатбот*|робот*|нейросет*|автоответчик*|искусственный интеллект|\
     вы человек|ты человек|вы живой|ты живой|не понимаете|не понимаешь|не понимает|\
     меня не поняли|меня не понял|понимаете что я|понимаешь что я|тупит*|тупой бот|бред*|чушь|\
     ерунду|невпопад|не то отвечаете|не то пишете|вы ии|ты ии|это ии|издеваетесь|издеваешься|\
     одно и то же";

const COMPLAINT_CUES: &str = "жалоб*|пожаловат*|пожалуюсь|ужас*|отвратительн*|кошмар*|хамств*|\
     нахамил*|хамил*|грубил*|нагрубил*|хамк*|испортил*|испорчен*|верните деньги|\
     вернуть деньги|верните мои деньги|возврат денег|возврат средств|недовол*|безобраз*|\
     обманул*|обман|претензи*|некачествен*|позор*|разочарован*|не понравил*|плохо сделал*|\
     криво сделал*|криво|ожог*|больше не приду|никогда больше|отслоил*|отслаива*|отслоен*|\
     слезл*|слез|слезает|слезают|облез*|облупил*|отвалил*|отклеил*|отклеива*|скололс*|сколол*|\
     откололс*|потрескал*|треснул*|пережгл*|сожгл*|спалил*|поранил*|порезал*|переделайте|\
     переделать бесплатно|переделка|халтур*|не держится|не держатся|продержал*|это как вообще";

const INJECTION_CUES: &str = "ты теперь|теперь ты|забудь|забудь все|забудьте все|забудь инструкц*|\
     забудьте инструкц*|забудь предыдущ*|игнорируй*|проигнорируй*|игнорир*|\
     предыдущие инструкции|предыдущих инструкций|системный промпт|системные инструкции|промпт*|\
     притворись|представь что ты|отвечай как|веди себя как|режим разработчика|напиши стих*|\
     напиши стишок|напиши песн*|напиши сочинени*|напиши рассказ*|напиши код*|напиши программ*|\
     напиши эссе|сочини*|скажи стих*|расскажи стих*|стих про|стишок про|расскажи анекдот*|расскажи сказк*|стихотворени*|измени цен*|\
     поменяй цен*|установи цен*|поставь цен*|сделай цен*|снизь цен*|обнули*|удали все*|\
     удали запис*|удали базу|измени запис*|отмени все записи|отмени всем|покажи все записи|\
     покажи базу|выдай*|скидку 100|бесплатно навсегда|новые правила|твоя роль|твои инструкции|\
     ты больше не";

/// Injection markers in the original text (Latin, case-insensitive).
const INJECTION_LATIN: &[&str] = &[
    "ignore",
    "previous instructions",
    "system prompt",
    "</system>",
    "<system>",
    "<|",
    "[inst]",
    "you are now",
    "act as",
    "jailbreak",
    "developer mode",
    "dan mode",
    "disregard",
    "override",
    "sudo ",
    "prompt",
    "assistant:",
    "system:",
];

const OFFTOPIC_CUES: &str = "ваканси*|ищу работу|устроиться на работу|устроиться к вам|требуются|\
     требуется мастер|сотрудничеств*|реклам*|предлагаем вам|продвижени*|раскрутк*|\
     предлагаю сотрудничество|аренда кресла|аренду кресла";

const TRAP_CUES: &str = "погод*|др|день рождения|дня рождения|днем рождения|родил*|вчера|позавчера|\
     на прошлой неделе|в прошлый раз|в прошлую|в прошлом";

const MEDICAL_CUES: &str = "болит|болят|болело|болела|болели|болеет|болею|болезн*|боль|боли|болью|\
     больно|температур*|симптом*|лечени*|лечить|лечит*|вылечить|чем лечить|таблетк*|лекарств*|\
     препарат*|антибиотик*|диагноз*|сыпь|сыпью|кашел*|кашля*|насморк*|давлени*|тошнит*|тошнот*|\
     воспален*|опух*|отек*|кровотеч*|зуд*|аллерги*|дозировк*|побочк*|побочн*|мазь|мази|кровит|\
     ноет|ноют|простуд*|грипп*|ангин*|головокружени*|что принимать|что пить|можно ли пить";

/// Full words the typo corrector may correct to (the cue words' usual forms).
const TYPO_TARGETS: &str = "записаться записать запишите запишете записывайте записываться запись \
     записи отменить отмените отмена отменяю перенести перенесите перенос перезаписаться \
     сколько стоимость стоит стоят цена цены прайс расценки свободное свободно свободные \
     свободная свободен окошко окошки окошка спасибо благодарю здравствуйте привет добрый \
     администратор менеджер оператор подходит подойдет устраивает договорились хорошо отлично \
     конечно акция акции скидка скидки скидку промокод жалоба ужасно отвратительно недовольна \
     недоволен пожалуйста температура болит лекарство таблетки хотела хотелось можно сегодня \
     завтра послезавтра";

/// Words too common to be typos of anything interesting.
const COMMON_WORDS: &str = "пожалуйста сегодня завтра послезавтра здравствуйте спасибо можно \
     хочу хотела хотел будет есть если когда какое какие время вечером утром днем после \
     обеда вечера утра субботу субботу воскресенье понедельник вторник среду четверг пятницу \
     неделе неделю следующей следующую через записаться маникюр педикюр стрижку";

/// Stop words dropped from FAQ keywords ("где вы находитесь" ≡ "где находитесь").
const FAQ_STOP: &[&str] = &[
    "вы", "вас", "у", "в", "во", "на", "и", "а", "ли", "с", "по", "к", "мне", "я", "нам", "мы",
    "ваш", "ваша", "ваше", "ваши", "же", "это",
];

/// Injection, complaint, human, medical, intent scores and FAQ of one message.
#[derive(Debug, Clone, Default)]
pub struct Cues {
    pub scores: [f32; Intent::ALL.len()],
    pub injection: bool,
    pub offtopic: bool,
    /// The date in the message is not a wanted slot (weather, birthday, past visit).
    pub trap: bool,
    pub complaint: bool,
    pub human: bool,
    /// Doubts a person answers, or says the bot does not understand (also `human`).
    pub frustrated: bool,
    pub medical: bool,
    /// A health or safety question about a procedure (see `safety`).
    pub safety: bool,
    /// Best FAQ (index into profile faq) and how many keyword words it matched.
    pub faq: Option<(usize, usize)>,
    /// Every FAQ entry a whole keyword of which the message holds, in the order asked
    /// («где вы находитесь и до скольки работаете?» → address, hours).
    pub faqs: Vec<usize>,
    /// Words that belong to some cue (not a name, not a service typo).
    pub covered: Vec<bool>,
}

impl Cues {
    pub fn score(&self, intent: Intent) -> f32 {
        self.scores[intent as usize]
    }
}

struct FaqKeyword {
    faq: usize,
    words: usize,
    /// Letters in its content words: between keywords of equal length the more specific one
    /// wins ("припарковаться" over "где").
    letters: usize,
}

/// The compiled cue tables of one profile.
pub struct IntentRules {
    lexicon: Lexicon<Cue>,
    latin: Option<AhoCorasick>,
    typo: Vocabulary,
    common: std::collections::HashSet<&'static str>,
    faq_keywords: Vec<FaqKeyword>,
    safety: SafetyRules,
}

fn split(patterns: &str) -> impl Iterator<Item = String> + '_ {
    patterns
        .split('|')
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
}

/// A profile phrase → normalised words.
fn words_of(phrase: &str) -> Vec<String> {
    crate::nlu::normalize::normalize(phrase)
        .words()
        .map(str::to_string)
        .collect()
}

impl IntentRules {
    pub fn new(profile: &Profile) -> IntentRules {
        let stemmer = Stemmer::create(Algorithm::Russian);
        let mut patterns: Vec<(String, Cue)> = Vec::new();
        for (intent, weight, list) in INTENT_CUES {
            patterns.extend(split(list).map(|p| (p, Cue::Intent(*intent, *weight))));
        }
        patterns.extend(split(HUMAN_CUES).map(|p| (p, Cue::Human)));
        patterns.extend(split(FRUSTRATION_CUES).map(|p| (p, Cue::Frustrated)));
        patterns.extend(split(COMPLAINT_CUES).map(|p| (p, Cue::Complaint)));
        patterns.extend(split(INJECTION_CUES).map(|p| (p, Cue::Injection)));
        patterns.extend(split(OFFTOPIC_CUES).map(|p| (p, Cue::Offtopic)));
        patterns.extend(split(TRAP_CUES).map(|p| (p, Cue::Trap)));
        patterns.extend(split(MEDICAL_CUES).map(|p| (p, Cue::Medical)));
        // Profile phrases: every word as a stem prefix, so inflections match.
        let stem_phrase = |phrase: &str| -> String {
            let words = words_of(phrase);
            let n = words.len();
            words
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    // Only the last word can be a prefix; earlier ones stay whole words.
                    // Short stems are whole words: "болит" → "бол*" would match "больше".
                    let s = stemmer.stem(w);
                    if i + 1 == n && s.chars().count() >= 5 {
                        format!("{s}*")
                    } else {
                        w.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        for k in &profile.escalation.complaint_keywords {
            patterns.push((stem_phrase(k), Cue::Complaint));
        }
        for k in &profile.escalation.medical_keywords {
            patterns.push((stem_phrase(k), Cue::Medical));
        }
        let mut faq_keywords = Vec::new();
        let mut typo_words: Vec<String> = TYPO_TARGETS
            .split_whitespace()
            .map(str::to_string)
            .collect();
        for (fi, faq) in profile.faq.iter().enumerate() {
            for k in &faq.keywords {
                let all = words_of(k);
                let content: Vec<&String> = all
                    .iter()
                    .filter(|w| !FAQ_STOP.contains(&w.as_str()))
                    .collect();
                let content = if content.is_empty() {
                    all.iter().collect()
                } else {
                    content
                };
                if content.is_empty()
                    || content.len() > 8
                    || faq_keywords.len() >= u16::MAX as usize
                {
                    continue;
                }
                let keyword = faq_keywords.len() as u16;
                for (bit, w) in content.iter().enumerate() {
                    let stem = stemmer.stem(w);
                    let pattern = if stem.chars().count() >= 5 {
                        format!("{stem}*")
                    } else {
                        (*w).clone()
                    };
                    patterns.push((
                        pattern,
                        Cue::FaqWord {
                            keyword,
                            bit: bit as u8,
                        },
                    ));
                    typo_words.push((*w).clone());
                }
                faq_keywords.push(FaqKeyword {
                    faq: fi,
                    words: content.len(),
                    letters: content.iter().map(|w| w.chars().count()).sum(),
                });
            }
        }
        let latin = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(INJECTION_LATIN)
            .ok();
        IntentRules {
            lexicon: Lexicon::new(patterns),
            latin,
            typo: Vocabulary::new(typo_words),
            common: COMMON_WORDS.split_whitespace().collect(),
            faq_keywords,
            safety: SafetyRules::new(),
        }
    }

    fn collect(&self, text: &WordText, original: &str, n_words: usize) -> Cues {
        let mut cues = Cues {
            covered: vec![false; n_words],
            ..Cues::default()
        };
        cues.injection = self.latin.as_ref().is_some_and(|ac| ac.is_match(original));
        let words: Vec<&str> = text.text.split(' ').collect();
        // Per keyword: the words seen (bits) and where the first of them stands.
        let mut faq_masks: Vec<(u16, u8, usize)> = Vec::new();
        self.lexicon.for_each(text, |cue, first, last| {
            for c in cues.covered.iter_mut().take(last + 1).skip(first) {
                *c = true;
            }
            let negated = first > 0 && words.get(first - 1) == Some(&"не");
            match *cue {
                Cue::Intent(intent, weight) => {
                    if negated
                        && matches!(intent, Intent::Book | Intent::FreeTime | Intent::Confirm)
                    {
                        return;
                    }
                    let s = &mut cues.scores[intent as usize];
                    *s = s.max(weight) + 0.01;
                }
                Cue::Complaint => cues.complaint = true,
                Cue::Human => cues.human = true,
                Cue::Frustrated => {
                    cues.human = true;
                    cues.frustrated = true;
                }
                Cue::Injection => cues.injection = true,
                Cue::Offtopic => cues.offtopic = true,
                Cue::Trap => cues.trap = true,
                Cue::Medical => cues.medical = true,
                Cue::FaqWord { keyword, bit } => {
                    match faq_masks.iter_mut().find(|(k, _, _)| *k == keyword) {
                        Some((_, m, at)) => {
                            *m |= 1 << bit;
                            *at = (*at).min(first);
                        }
                        None => faq_masks.push((keyword, 1 << bit, first)),
                    }
                }
            }
        });
        let mut best: Option<&FaqKeyword> = None;
        let mut asked: Vec<(usize, usize)> = Vec::new();
        for (keyword, mask, at) in faq_masks {
            let Some(k) = self.faq_keywords.get(usize::from(keyword)) else {
                continue;
            };
            if mask.count_ones() as usize != k.words {
                continue;
            }
            asked.push((at, k.faq));
            if best.is_none_or(|b| (k.words, k.letters) > (b.words, b.letters)) {
                best = Some(k);
            }
        }
        cues.faq = best.map(|k| (k.faq, k.words));
        asked.sort_unstable();
        for (_, faq) in asked {
            if !cues.faqs.contains(&faq) {
                cues.faqs.push(faq);
            }
        }
        cues
    }

    /// Cues of a message given its normalised words; words no cue covers are tried once more
    /// through typo correction ("записатся", "стоимасть", "здраствуйте"). `known`: words of
    /// dates, contacts, names and services.
    pub fn cues(&self, words: &[&str], original: &str, known: &[bool]) -> Cues {
        let safety = self.safety.asks(words, known);
        let mut cues = self.cues_of(words, original, known);
        cues.safety = safety;
        cues
    }

    fn cues_of(&self, words: &[&str], original: &str, known: &[bool]) -> Cues {
        let text = WordText::new(words.iter().copied());
        let cues = self.collect(&text, original, words.len());
        let mut corrected: Option<Vec<&str>> = None;
        for (i, w) in words.iter().enumerate() {
            if cues.covered[i]
                || known.get(i).copied().unwrap_or(false)
                || w.len() < 10 // fewer than 5 Cyrillic letters: never corrected
                || self.common.contains(w)
            {
                continue;
            }
            if let Some(c) = self.typo.correct(w)
                && c != *w
            {
                corrected.get_or_insert_with(|| words.to_vec())[i] = c;
            }
        }
        match corrected {
            Some(fixed) => {
                let text = WordText::new(fixed.iter().copied());
                self.collect(&text, original, fixed.len())
            }
            None => cues,
        }
    }
}

/// What the date/time grammar read that bears on the intent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Slots {
    /// A date or time is named.
    pub has_when: bool,
    /// A reschedule's old slot is named ("с пятницы на субботу", "не успею к 12, можно на 14").
    pub moved: bool,
    /// The only slot named is given up ("всё, сегодня не смогу").
    pub gave_up: bool,
    /// «в то же время», «так же».
    pub same_time: bool,
}

/// The decided intent and its confidence.
pub fn decide(cues: &Cues, slots: Slots, service: bool) -> (Intent, f32) {
    // "какая завтра погода", "у меня др 25 ноября": the date is no booking cue.
    let has_when = slots.has_when && !cues.trap;
    if cues.injection {
        return (Intent::Other, 0.9);
    }
    if cues.offtopic {
        return (Intent::Other, 0.8);
    }
    if cues.complaint {
        return (Intent::Human, 0.9);
    }
    if cues.human {
        return (Intent::Human, 0.9);
    }
    let s = |i: Intent| cues.score(i);
    // A slot moved away from, or the same time on another day, is a reschedule; a slot given up
    // with nothing in its place is a cancel of that booking.
    let keeps_time = slots.same_time && s(Intent::Book) == 0.0;
    let resched = s(Intent::Reschedule)
        + if slots.moved { 3.0 } else { 0.0 }
        + if keeps_time { 2.0 } else { 0.0 };
    let cancel = s(Intent::Cancel) + if slots.gave_up { 3.0 } else { 0.0 };
    if resched > 0.0 || cancel > 0.0 {
        return if resched >= cancel {
            (Intent::Reschedule, confidence(resched, cancel))
        } else {
            (Intent::Cancel, confidence(cancel, resched))
        };
    }
    let faq = cues.faq.map_or(0.0, |(_, n)| 2.5 + 0.5 * (n as f32 - 1.0));
    // A service named inside a medical or safety question ("можно ли пить антибиотики после
    // узи", "есть ли противопоказания к шугарингу") is not a request to book it.
    let service = service && (!(cues.medical || cues.safety) || s(Intent::Book) > 0.0);
    let book = s(Intent::Book)
        + if service { 1.0 } else { 0.0 }
        + if has_when && s(Intent::Book) > 0.0 {
            1.0
        } else {
            0.0
        };
    // "на завтра есть?": a date with "есть" asks what is free.
    // A lone "есть" counts only next to a date.
    let free = match s(Intent::FreeTime) {
        f if has_when && f > 0.0 => f + 1.0,
        f if f < 1.0 => 0.0,
        f => f,
    };
    let ranked = [
        (Intent::Book, book),
        (Intent::FreeTime, free),
        (Intent::Price, s(Intent::Price)),
        (Intent::Promo, s(Intent::Promo)),
        (Intent::Faq, faq),
    ];
    let mut best = (Intent::Other, 0.0f32);
    let mut second = 0.0f32;
    for (intent, score) in ranked {
        if score > best.1 + 0.05 {
            second = best.1;
            best = (intent, score);
        } else {
            second = second.max(score);
        }
    }
    // A lone "сколько" or "хочу" next to a stronger short answer does not make a request.
    let confirm = s(Intent::Confirm);
    let deny = s(Intent::Deny);
    if best.1 >= 1.4 || (best.1 > 0.0 && confirm.max(deny) < best.1) {
        if best.0 == Intent::Book && !service && !has_when && best.1 < 1.4 {
            // "хочу" alone is not a booking.
        } else {
            return (best.0, confidence(best.1, second));
        }
    }
    if deny > 0.0 && deny >= confirm {
        return if has_when {
            (Intent::Book, 0.7)
        } else {
            (Intent::Deny, confidence(deny, confirm))
        };
    }
    if confirm > 0.0 {
        return if has_when && confirm < 2.5 {
            (Intent::Book, 0.7)
        } else {
            (Intent::Confirm, confidence(confirm, s(Intent::Thanks)))
        };
    }
    if has_when {
        return (Intent::Book, 0.6);
    }
    if s(Intent::Thanks) > 0.0 {
        return (Intent::Thanks, 0.85);
    }
    if s(Intent::Greeting) > 0.0 {
        return (Intent::Greeting, 0.8);
    }
    (Intent::Other, 0.2)
}

/// Map a winning score and the runner-up's to 0..1.
fn confidence(best: f32, second: f32) -> f32 {
    (0.45 + 0.12 * best + 0.08 * (best - second)).clamp(0.3, 0.97)
}
