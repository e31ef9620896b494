//! Reply templates: the fixed set of things the bot can say, each with several allowed
//! variations in the profile, and the placeholders each may use. Rendering is plain `{name}`
//! substitution; `config::load` has already checked every variation against `allowed()`,
//! so rendering never fails.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! templates {
    ($( $(#[$doc:meta])* $variant:ident = $key:literal, [$($ph:literal),*], [$($default:literal),+ $(,)?]; )+) => {
        /// Everything the bot can say, by purpose.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum TemplateKey {
            $( $(#[$doc])* $variant, )+
        }

        impl TemplateKey {
            pub const ALL: &'static [TemplateKey] = &[$(TemplateKey::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(TemplateKey::$variant => $key,)+ }
            }

            pub fn parse(s: &str) -> Option<TemplateKey> {
                match s { $($key => Some(TemplateKey::$variant),)+ _ => None }
            }

            /// Placeholders a variation of this template may use (`{business}` is always allowed).
            pub fn allowed(self) -> &'static [&'static str] {
                match self { $(TemplateKey::$variant => &[$($ph),*],)+ }
            }

            /// Built-in Russian variations used when a profile does not give its own.
            pub fn defaults(self) -> &'static [&'static str] {
                match self { $(TemplateKey::$variant => &[$($default),+],)+ }
            }
        }
    };
}

templates! {
    /// First contact or a hello.
    Greeting = "greeting", [], [
        "Здравствуйте! Это {business}. Помогу записаться, подскажу цены и свободное время. Что вас интересует?",
        "Добрый день! На связи {business}. Чем могу помочь: запись, цены, свободные окошки?",
    ];
    /// Which service?
    AskService = "ask_service", ["name"], [
        "На какую услугу вас записать?",
        "Подскажите, на какую процедуру хотите записаться?",
    ];
    /// Which day and time?
    AskDatetime = "ask_datetime", ["service", "name"], [
        "На какой день и время записать вас на {service}?",
        "Когда вам удобно прийти на {service}? Напишите день и время.",
    ];
    /// Day known, which time?
    AskTime = "ask_time", ["service", "date", "weekday"], [
        "Во сколько вам удобно {date}?",
        "На какое время {date} вас записать?",
    ];
    /// Name and phone to finish the booking.
    AskContact = "ask_contact", ["service", "date", "time"], [
        "Время {date} в {time} свободно. Напишите, пожалуйста, ваше имя и номер телефона, чтобы я закрепила запись.",
        "{date} в {time} есть окошко! Оставьте, пожалуйста, имя и телефон для записи.",
    ];
    /// Name known, phone missing.
    AskPhone = "ask_phone", ["name"], [
        "Спасибо, {name}! Оставьте, пожалуйста, номер телефона для связи.",
        "{name}, напишите, пожалуйста, ваш номер телефона.",
    ];
    /// Phone known, name missing.
    AskName = "ask_name", [], [
        "Как к вам обращаться?",
        "Подскажите, пожалуйста, ваше имя.",
    ];
    /// A phone was written but is not a valid number.
    InvalidPhone = "invalid_phone", [], [
        "Кажется, в номере ошибка. Напишите, пожалуйста, номер полностью, например +7 913 123-45-67.",
        "Не получается разобрать номер. Напишите его целиком — например, 8 913 123-45-67.",
    ];
    /// Free slots of one day follow as buttons.
    OfferSlots = "offer_slots", ["service", "date", "weekday"], [
        "На {date} могу предложить такое время на {service}:",
        "{date} на {service} есть свободные окошки:",
    ];
    /// Free slots over several days follow as buttons (each with its day).
    OfferSlotsDays = "offer_slots_days", ["service", "date"], [
        "Ближайшее свободное время на {service}:",
        "На {service} есть такие свободные окошки:",
    ];
    /// The wanted time is taken; alternatives follow as buttons.
    SlotTaken = "slot_taken", ["service", "date", "time"], [
        "{date} в {time}, к сожалению, уже занято. Ближайшее свободное время:",
        "На {date} в {time} запись уже есть. Могу предложить:",
    ];
    /// Nothing free around the wanted time.
    NoSlots = "no_slots", ["service", "date"], [
        "К сожалению, на это время свободных окошек нет. Напишите другой день — я проверю.",
        "На это время всё занято. Подскажите другой день или время — посмотрю, что свободно.",
    ];
    /// The time is outside working hours (or a holiday); alternatives follow as buttons.
    OutsideHours = "outside_hours", ["date", "time", "hours"], [
        "{date} в {time} мы не работаем, наш график: {hours}. Могу предложить:",
        "В это время ({date}, {time}) мы закрыты — работаем {hours}. Ближайшее свободное время:",
    ];
    /// The business is open that day, but no master who does the service works that weekday;
    /// alternatives follow as buttons.
    ServiceNotThatDay = "service_not_that_day", ["service", "date", "time", "on_day", "days"], [
        "{on_day} ({date}) на {service} не записываем — мастер по этой услуге принимает: {days}. Ближайшее время:",
        "На {service} {on_day} записи нет: мастер работает {days}. Могу предложить:",
    ];
    /// The business is open then, but the master who does the service is not at work at that
    /// hour; alternatives follow as buttons.
    StaffAwayThen = "staff_away_then", ["service", "date", "time", "on_day"], [
        "{date} в {time} мастера по этой услуге уже (или ещё) нет на месте. Могу предложить:",
        "В {time} {on_day} на {service} не запишу: мастер в это время не работает. Ближайшее время:",
    ];
    /// The time has passed or is too close to now; alternatives follow as buttons.
    TooSoon = "too_soon", ["date", "time"], [
        "На {date} в {time} записаться уже не получится. Ближайшее свободное время:",
        "{date} в {time} уже не успеем. Могу предложить ближайшее время:",
    ];
    /// Booking confirmed.
    Booked = "booked", ["service", "date", "time", "staff", "name", "price", "address", "booking"], [
        "Готово! Записала вас на {service} {date} в {time}, мастер {staff}. Стоимость — {price}. Ждём вас по адресу: {address}.",
        "Записала вас на {service} {date} в {time}, мастер — {staff}, стоимость — {price}. Адрес: {address}. До встречи!",
    ];
    /// Which booking to move, and to when?
    AskRescheduleWhen = "ask_reschedule_when", ["service", "date", "time"], [
        "Вы записаны на {service} {date} в {time}. На какой день и время перенести?",
        "Сейчас у вас {service} {date} в {time}. Когда вам будет удобнее?",
    ];
    Rescheduled = "rescheduled", ["service", "date", "time", "old_date", "old_time", "staff", "booking"], [
        "Перенесла вашу запись на {service} на {date} в {time}, мастер {staff}. Старое время {old_date} в {old_time} освободила.",
        "Готово: {service} теперь {date} в {time}, мастер {staff}.",
    ];
    /// Reschedule or cancel asked, but the client has no booking.
    NoBooking = "no_booking", [], [
        "Не нашла у вас активной записи. Хотите записаться?",
        "Активных записей у вас сейчас нет. Записать вас?",
    ];
    /// Asks to confirm a cancellation.
    ConfirmCancel = "confirm_cancel", ["service", "date", "time"], [
        "Отменить вашу запись на {service} {date} в {time}?",
    ];
    Cancelled = "cancelled", ["service", "date", "time"], [
        "Запись на {service} {date} в {time} отменила. Будем рады видеть вас в другой раз — напишите, когда захотите записаться.",
        "Отменила запись на {service} {date} в {time}. Если захотите прийти в другой день, просто напишите!",
    ];
    /// The client decided to keep the booking.
    CancelKept = "cancel_kept", ["service", "date", "time"], [
        "Хорошо, запись на {service} {date} в {time} остаётся в силе.",
    ];
    /// A fixed price.
    PriceFixed = "price_fixed", ["service", "price"], [
        "{service} стоит {price}.",
        "Стоимость услуги «{service}» — {price}.",
    ];
    /// A price range, with what it depends on.
    PriceRange = "price_range", ["service", "price", "price_note"], [
        "{service} — {price}. {price_note}",
        "Стоимость услуги «{service}»: {price}. {price_note}",
    ];
    /// Price asked without a known service.
    PriceAskService = "price_ask_service", [], [
        "Подскажите, какая услуга вас интересует? Назову точную стоимость.",
        "Цену какой услуги подсказать? Напишите её название.",
    ];
    /// After a price or promo answer.
    OfferBooking = "offer_booking", ["service"], [
        "Записать вас?",
        "Хотите, подберу удобное время?",
    ];
    /// Current promotions follow, one per line in {promotions}.
    PromoList = "promo_list", ["promotions"], [
        "Сейчас действуют акции:\n{promotions}",
    ];
    NoPromo = "no_promo", [], [
        "Сейчас акций нет, но у нас всегда приятные цены. Подсказать стоимость или записать вас?",
    ];
    /// Hand-off to a manager.
    Handoff = "handoff", [], [
        "Передала ваш вопрос администратору, он ответит вам в ближайшее время.",
        "Сейчас подключу администратора — он скоро ответит здесь же.",
    ];
    /// A complaint: apologise and hand off.
    HandoffComplaint = "handoff_complaint", [], [
        "Очень жаль, что так вышло. Передала ваше сообщение администратору, он свяжется с вами в ближайшее время.",
    ];
    /// A medical question at a clinic.
    HandoffMedical = "handoff_medical", [], [
        "По медицинским вопросам я не консультирую — передала ваш вопрос администратору, вам ответит специалист.",
    ];
    /// The client doubts a person answers, or says the bot does not understand.
    HandoffFrustrated = "handoff_frustrated", [], [
        "Простите, что не получилось сразу понять вас. Передаю разговор администратору — он ответит здесь.",
        "Извините за неудобство! Подключаю администратора, он продолжит разговор с вами.",
    ];
    /// A health or safety question about a procedure (any business).
    HandoffSafety = "handoff_safety", [], [
        "Это важный вопрос о здоровье, и отвечать на него должен специалист, а не чат-бот. Передала ваш вопрос администратору — вам ответят в ближайшее время.",
        "С таким вопросом лучше к специалисту — я передала его администратору, он посоветуется с мастером и ответит вам.",
    ];
    /// No managers' channel is set up: how to reach a person, and a call back offered.
    HandoffCallback = "handoff_callback", [], [
        "Администратора сейчас нет в чате. Позвоните нам: {phone} — или напишите здесь свой номер телефона, и администратор вам перезвонит.",
        "В чате администратор сейчас не отвечает. Можно позвонить по номеру {phone} или оставить свой телефон — вам перезвонят.",
    ];
    /// No managers' channel, the client's phone is known: a manager will call back.
    CallbackNoted = "callback_noted", ["client_phone"], [
        "Спасибо! Передала администратору: он перезвонит вам по номеру {client_phone}. Если срочно — звоните нам: {phone}. А пока я могу помочь с записью и ценами.",
        "Записала: администратор перезвонит на {client_phone}. Срочный вопрос — звоните нам: {phone}. Чем ещё могу помочь?",
    ];
    /// A new time for a service the client is already booked for: move or book again?
    MoveOrNew = "move_or_new", ["service", "date", "time"], [
        "У вас уже есть запись на {service} {date} в {time}. Перенести её на новое время или записать вас ещё раз?",
        "Вижу вашу запись на {service} {date} в {time}. Переносим её или это ещё одна запись?",
    ];
    /// The client answered an offer with something else: pick a time, please.
    ChooseSlot = "choose_slot", [], [
        "Выберите, пожалуйста, удобное время кнопкой — или напишите своё.",
        "Какое время из предложенных вам подходит? Можно нажать кнопку или написать другое время.",
    ];
    /// The same slots would be offered again: they are not what the client wants. More
    /// options follow as buttons.
    OfferWider = "offer_wider", ["service"], [
        "Понимаю, это время не подходит. Вот ещё варианты:",
        "Тогда посмотрите другие варианты:",
    ];
    /// Nothing new to offer: which time suits, or a manager picks one by hand.
    AskWhichTime = "ask_which_time", ["service"], [
        "Не нашла других свободных окошек рядом с этим временем. Напишите, какой день и время вам удобны, — или передам администратору, чтобы подобрал время вручную.",
        "Других вариантов рядом нет. Какое время вам подойдёт? Могу и передать администратору — он подберёт вручную.",
    ];
    /// The client turned the offers down twice: a person picks a time by hand.
    OfferManager = "offer_manager", ["service"], [
        "Похоже, подходящего времени я не нашла. Передать администратору, чтобы подобрал время вручную?",
        "Не получается подобрать время? Передам администратору — он найдёт окошко вручную. Передать?",
    ];
    /// Did not understand.
    Fallback = "fallback", [], [
        "Извините, не совсем поняла. Вы хотите записаться, узнать цену или задать вопрос?",
        "Уточните, пожалуйста: вас интересует запись, стоимость услуг или что-то другое?",
    ];
    Thanks = "thanks", [], [
        "Пожалуйста! Обращайтесь.",
        "Всегда рады помочь!",
    ];
    /// The client said no to an offer.
    Declined = "declined", [], [
        "Хорошо! Если что-то понадобится — пишите.",
        "Поняла. Будут вопросы — я на связи.",
    ];
    /// The day-before reminder; buttons confirm / reschedule / cancel.
    ReminderDayBefore = "reminder_day_before", ["service", "date", "time", "staff", "address", "name"], [
        "Напоминаем: завтра, {date} в {time}, вы записаны на {service}, мастер {staff}. Подтвердите, пожалуйста, визит.",
    ];
    /// The short reminder a few hours before.
    ReminderSoon = "reminder_soon", ["service", "date", "time", "staff", "address", "name"], [
        "Ждём вас сегодня в {time} на {service}. Адрес: {address}.",
    ];
    ReminderConfirmed = "reminder_confirmed", ["service", "date", "time"], [
        "Спасибо, ждём вас {date} в {time}!",
        "Отлично, до встречи {date} в {time}!",
    ];
    /// The client cannot come: offer to move or cancel.
    ReminderDeclined = "reminder_declined", ["service", "date", "time"], [
        "Жаль! Давайте перенесём запись на другое время? Или отменить её?",
    ];
    /// The visit was missed.
    NoShowFollowup = "noshow_followup", ["service", "date", "time", "name"], [
        "Здравствуйте! Мы ждали вас {date} в {time} на {service}, но вы не смогли прийти. Давайте подберём другое удобное время?",
        "Добрый день! Жаль, что не получилось прийти {date} на {service}. Подобрать вам новое время?",
    ];
}

impl fmt::Display for TemplateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Placeholders every template may use.
pub const ALWAYS_ALLOWED: &[&str] = &["business", "phone"];

/// The `{name}` placeholders used in a variation, in order. A `{` without a closing `}` or
/// with characters other than `a-z_` inside is literal text.
pub fn placeholders(variation: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = variation;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_placeholder_name(&after[..close]) => {
                out.push(&after[..close]);
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    out
}

fn is_placeholder_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// Substitute `{name}` placeholders with values; unknown placeholders render as empty text.
pub fn render(variation: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(variation.len() + 32);
    let mut rest = variation;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_placeholder_name(&after[..close]) => {
                let key = &after[..close];
                if let Some((_, v)) = values.iter().find(|(k, _)| *k == key) {
                    out.push_str(v);
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    // Collapse the double spaces an empty optional placeholder leaves behind.
    let mut tidy = String::with_capacity(out.len());
    for part in out.split(' ').filter(|p| !p.is_empty()) {
        if !tidy.is_empty() {
            tidy.push(' ');
        }
        tidy.push_str(part);
    }
    tidy.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_uses_only_allowed_placeholders() {
        for key in TemplateKey::ALL {
            for v in key.defaults() {
                for p in placeholders(v) {
                    assert!(
                        key.allowed().contains(&p) || ALWAYS_ALLOWED.contains(&p),
                        "{key}: {{{p}}} not allowed in {v:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn render_substitutes_and_keeps_literal_braces() {
        let s = render(
            "{service} в {time} {x-y} {",
            &[("service", "маникюр"), ("time", "15:00")],
        );
        assert_eq!(s, "маникюр в 15:00 {x-y} {");
    }

    #[test]
    fn keys_round_trip() {
        for key in TemplateKey::ALL {
            assert_eq!(TemplateKey::parse(key.as_str()), Some(*key));
        }
        assert_eq!(TemplateKey::parse("nope"), None);
    }
}
