//! The dialog engine end to end on the demo profiles: real NLU, real profile, the in-memory
//! schedule, a fixed clock. Each test is a conversation a real client could have.

use bot::calendar::ScheduleAvailability;
use bot::config::{self, Profile};
use bot::domain::{
    Booking, BookingId, BookingStatus, ChannelKind, ClientRef, Effect, Event, HandoffReason,
    Inbound, LEAD_SOURCE, LeadField, ReminderKind, Reply, ServiceId, Slot, StaffId,
};
use bot::engine::{Conversation, Engine, Owner, Turn};
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

mod adversarial;
mod no_dead_ends;

/// Friday 20 Nov 2026, 10:00 in Novosibirsk.
fn friday_10() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T10:00:00+07:00")
        .unwrap()
        .with_timezone(&Utc)
}

fn local(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A client talking to the engine, with the bookings the effects made.
pub(crate) struct Chat {
    engine: Engine,
    conv: Conversation,
    bookings: Vec<Booking>,
    now: DateTime<Utc>,
    effects: Vec<Effect>,
}

impl Chat {
    fn new(profile: Profile, channel: ChannelKind, id: &str) -> Chat {
        Chat {
            engine: Engine::new(profile),
            conv: Conversation::new(ClientRef {
                channel,
                id: id.into(),
            }),
            bookings: Vec::new(),
            now: friday_10(),
            effects: Vec::new(),
        }
    }

    fn salon() -> Chat {
        Chat::new(config::demo_salon(), ChannelKind::Telegram, "1001")
    }

    fn event(&mut self, event: Event) -> Turn {
        let inbound = Inbound {
            client: self.conv.client.clone(),
            at: self.now,
            event,
        };
        let turn = {
            let avail = ScheduleAvailability::new(self.engine.profile(), &self.bookings);
            self.engine.turn(&self.conv, &inbound, self.now, &avail)
        };
        for e in &turn.effects {
            match e {
                Effect::BookingRequested { booking } => self.bookings.push(booking.clone()),
                Effect::BookingMoved { id, to, .. } => {
                    if let Some(b) = self.bookings.iter_mut().find(|b| &b.id == id) {
                        b.slot = to.clone();
                    }
                }
                Effect::BookingCancelled { id } => {
                    if let Some(b) = self.bookings.iter_mut().find(|b| &b.id == id) {
                        b.status = BookingStatus::Cancelled;
                    }
                }
                _ => {}
            }
        }
        self.effects.extend(turn.effects.iter().cloned());
        self.conv = turn.conversation.clone();
        self.now += Duration::seconds(30);
        turn
    }

    fn say(&mut self, text: &str) -> Turn {
        self.event(Event::Text { text: text.into() })
    }

    fn press(&mut self, reply: &Reply, title: &str) -> Turn {
        let payload = reply
            .buttons
            .iter()
            .find(|b| b.title == title)
            .unwrap_or_else(|| panic!("no button {title:?} in {:?}", reply.buttons))
            .payload
            .clone();
        self.event(Event::Button { payload })
    }

    fn existing(&mut self, service: &str, staff: &str, start: &str, minutes: i64) -> BookingId {
        let start = local(start);
        let id = BookingId(format!("B{}", self.bookings.len() + 1));
        self.bookings.push(Booking {
            id: id.clone(),
            client: self.conv.client.clone(),
            service: ServiceId(service.into()),
            slot: Slot {
                start,
                end: start + Duration::minutes(minutes),
                staff: StaffId(staff.into()),
            },
            status: BookingStatus::Booked,
        });
        id
    }
}

fn text(turn: &Turn) -> String {
    turn.replies
        .iter()
        .map(|r| r.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first reply of the turn is the template `key`.
#[track_caller]
fn assert_first_template(turn: &Turn, key: &str) {
    assert_eq!(
        turn.replies[0].template.as_deref(),
        Some(key),
        "{}",
        text(turn)
    );
}

fn all_text(turn: &Turn) -> String {
    text(turn).to_lowercase()
}

/// Some effect of the turn is `wanted`; else the effects and the replies are shown.
#[track_caller]
fn assert_effect(turn: &Turn, wanted: impl Fn(&Effect) -> bool) {
    let found = turn.effects.iter().any(wanted);
    assert!(found, "{:?} / {}", turn.effects, text(turn));
}

/// No effect of the turn is `unwanted`.
#[track_caller]
fn assert_no_effect(turn: &Turn, unwanted: impl Fn(&Effect) -> bool) {
    let found = turn.effects.iter().any(unwanted);
    assert!(!found, "{:?} / {}", turn.effects, text(turn));
}

/// The turn hands the conversation to a human for `reason`.
#[track_caller]
fn assert_handoff(turn: &Turn, reason: HandoffReason) {
    assert_effect(turn, |e| e == &Effect::HandoffRequested { reason });
}

/// The first effect of the turn that `pick` takes.
fn find_effect<T>(turn: &Turn, pick: impl Fn(&Effect) -> Option<T>) -> Option<T> {
    turn.effects.iter().find_map(pick)
}

#[test]
fn booking_from_wish_to_confirmed_booking_with_qualified_lead() {
    let mut chat = Chat::salon();
    let t = chat.say("Здравствуйте, хочу записаться на маникюр");
    assert!(t.effects.is_empty(), "{:?}", t.effects);
    assert_eq!(t.replies.len(), 1, "{}", text(&t));
    assert_first_template(&t, "ask_datetime");

    let t = chat.say("завтра в 3");
    assert_first_template(&t, "ask_contact");
    assert!(text(&t).contains("21.11 в 15:00"), "{}", text(&t));
    assert!(t.replies[0].request_contact);

    let t = chat.say("Анна, 8 913 123-45-67");
    assert_first_template(&t, "booked");
    assert!(text(&t).contains("21.11 в 15:00"), "{}", text(&t));
    let booking = find_effect(&t, |e| match e {
        Effect::BookingRequested { booking } => Some(booking.clone()),
        _ => None,
    })
    .expect("a booking");
    assert_eq!(booking.service.as_str(), "manicure");
    assert_eq!(booking.slot.start, local("2026-11-21T15:00:00+07:00"));
    let lead = find_effect(&t, |e| match e {
        Effect::LeadQualified { lead } => Some(lead.clone()),
        _ => None,
    })
    .expect("a qualified lead");
    assert_eq!(lead.source, LEAD_SOURCE);
    assert_eq!(lead.channel, ChannelKind::Telegram);
    assert_eq!(lead.contact.phone.as_deref(), Some("+79131234567"));
    assert_eq!(lead.contact.name.as_deref(), Some("Анна"));
    for f in [LeadField::Service, LeadField::Datetime, LeadField::Phone] {
        assert!(lead.fields.contains(&f), "{f:?} in {:?}", lead.fields);
    }
    // The lead is reported once.
    let t = chat.say("спасибо!");
    assert_no_effect(&t, |e| matches!(e, Effect::LeadQualified { .. }));
    assert_first_template(&t, "thanks");
}

#[test]
fn taken_time_offers_nearest_slots_as_buttons_and_a_press_books() {
    let mut chat = Chat::salon();
    // Fill every manicure master at 15:00 tomorrow.
    let profile = config::demo_salon();
    for s in profile
        .staff
        .iter()
        .filter(|s| s.services.contains(&ServiceId("manicure".into())))
    {
        chat.existing("manicure", s.id.as_str(), "2026-11-21T15:00:00+07:00", 60);
    }
    // Other clients' visits.
    for b in &mut chat.bookings {
        b.client.id = "someone-else".into();
    }
    chat.conv.contact.name = Some("Ольга".into());
    chat.conv.contact.phone = Some("+79131112233".into());
    let t = chat.say("запишите на маникюр завтра в 15:00");
    assert_first_template(&t, "slot_taken");
    assert!(!t.replies[0].buttons.is_empty());
    assert!(
        t.replies[0].buttons.iter().all(|b| b.title != "15:00"),
        "{:?}",
        t.replies[0].buttons
    );
    let first = t.replies[0].buttons[0].title.clone();
    let reply = t.replies[0].clone();
    let t = chat.press(&reply, &first);
    assert_first_template(&t, "booked");
    assert!(text(&t).contains(&first), "{} / {first}", text(&t));
}

#[test]
fn asked_for_a_day_the_client_can_tap_for_the_nearest_free_slots_instead() {
    let mut chat = Chat::salon();
    let t = chat.say("хочу записаться на маникюр");
    assert_first_template(&t, "ask_datetime");
    let reply = t.replies[0].clone();
    let t = chat.press(&reply, "Ближайшее свободное время");
    let offer = &t.replies[0];
    assert!(
        offer
            .template
            .as_deref()
            .is_some_and(|k| k.starts_with("offer_slots")),
        "{}",
        text(&t)
    );
    assert!(!offer.buttons.is_empty(), "{offer:?}");
    // Friday 10:00: the first is today's, after the minimum notice.
    assert!(offer.buttons[0].title.contains("20.11"), "{offer:?}");
    let first = offer.buttons[0].title.clone();
    let offer = offer.clone();
    let t = chat.press(&offer, &first);
    assert!(
        t.replies
            .iter()
            .any(|r| r.template.as_deref() == Some("ask_contact")),
        "a slot is held, the contact is next: {}",
        text(&t)
    );
}

#[test]
fn whatsapp_gives_the_phone_so_only_the_name_is_asked() {
    let mut chat = Chat::new(config::demo_salon(), ChannelKind::Whatsapp, "79134445566");
    let t = chat.say("хочу на мужскую стрижку в понедельник в 12");
    assert_first_template(&t, "ask_name");
    assert_eq!(chat.conv.contact.phone.as_deref(), Some("+79134445566"));
    let t = chat.say("Дмитрий");
    assert_first_template(&t, "booked");
    assert!(text(&t).contains("23.11 в 12:00"), "{}", text(&t));
}

#[test]
fn shared_contact_card_completes_the_booking() {
    let mut chat = Chat::salon();
    chat.say("запишите на педикюр в понедельник в 11");
    let t = chat.event(Event::Contact {
        phone: "79137778899".into(),
        name: Some("Вика".into()),
    });
    assert_first_template(&t, "booked");
    assert_eq!(chat.conv.contact.phone.as_deref(), Some("+79137778899"));
}

#[test]
fn invalid_phone_is_asked_again_and_nothing_is_booked() {
    let mut chat = Chat::salon();
    chat.say("запишите на педикюр в понедельник в 11");
    let t = chat.say("Лена 8913123");
    assert_no_effect(&t, |e| matches!(e, Effect::BookingRequested { .. }));
    assert!(
        matches!(
            t.replies[0].template.as_deref(),
            Some("ask_phone" | "invalid_phone")
        ),
        "{}",
        text(&t)
    );
}

#[test]
fn a_price_question_mid_booking_is_answered_and_the_booking_waits() {
    let mut chat = Chat::salon();
    chat.say("хочу записаться на маникюр в понедельник в 11");
    let t = chat.say("а сколько стоит маникюр?");
    assert_first_template(&t, "price_fixed");
    let t = chat.say("Маша 89135556677");
    assert_first_template(&t, "booked");
}

#[test]
fn reschedule_moves_the_booking_and_frees_the_old_slot() {
    let mut chat = Chat::salon();
    let id = chat.existing("manicure", "olga", "2026-11-21T12:00:00+07:00", 60);
    let t = chat.say("можно перенести запись на понедельник на 16:00?");
    let moved = find_effect(&t, |e| match e {
        Effect::BookingMoved { id, from, to } => Some((id.clone(), from.clone(), to.clone())),
        _ => None,
    });
    let Some((moved_id, from, to)) = moved else {
        panic!("no move: {}", text(&t));
    };
    assert_eq!(moved_id, id);
    assert_eq!(from.start, local("2026-11-21T12:00:00+07:00"));
    assert_eq!(to.start, local("2026-11-23T16:00:00+07:00"));
    assert!(text(&t).contains("23.11 в 16:00"), "{}", text(&t));
}

#[test]
fn cancel_asks_first_then_frees_the_slot_and_invites_back() {
    let mut chat = Chat::salon();
    let id = chat.existing("pedicure", "olga", "2026-11-21T12:00:00+07:00", 90);
    let t = chat.say("хочу отменить запись");
    assert_first_template(&t, "confirm_cancel");
    assert!(t.effects.is_empty());
    let reply = t.replies[0].clone();
    let t = chat.press(&reply, "Да, отменить");
    assert_eq!(t.effects, vec![Effect::BookingCancelled { id }]);
    assert_first_template(&t, "cancelled");
}

#[test]
fn price_range_is_explained_then_booking_offered() {
    let mut chat = Chat::salon();
    let profile = config::demo_salon();
    let ranged = profile
        .services
        .iter()
        .find(|s| {
            matches!(s.price, bot::config::Price::Range { .. }) && s.id.as_str() == "coloring"
        })
        .expect("coloring has a price range in the demo salon");
    let t = chat.say("сколько стоит окрашивание?");
    assert_first_template(&t, "price_range");
    assert!(text(&t).contains("от "), "{}", text(&t));
    if let Some(note) = &ranged.price_note {
        assert!(text(&t).contains(note.as_str()), "{}", text(&t));
    }
    assert_eq!(
        t.replies.last().unwrap().template.as_deref(),
        Some("offer_booking")
    );
    let t = chat.say("да");
    assert_first_template(&t, "ask_datetime");
}

#[test]
fn handoff_makes_the_bot_silent_until_released() {
    let mut chat = Chat::salon();
    let t = chat.say("позовите администратора пожалуйста");
    assert_handoff(&t, HandoffReason::Requested);
    assert_eq!(chat.conv.owner, Owner::Human);
    let t = chat.say("алло, вы тут?");
    assert!(t.replies.is_empty(), "silent after hand-off: {}", text(&t));
    chat.event(Event::Released);
    assert_eq!(chat.conv.owner, Owner::Bot);
    let t = chat.say("сколько стоит маникюр");
    assert!(!t.replies.is_empty());
}

#[test]
fn repeated_misunderstanding_hands_off() {
    let mut chat = Chat::salon();
    let t = chat.say("ывапролд");
    assert_first_template(&t, "fallback");
    let t = chat.say("кхм фывфыв");
    assert_handoff(&t, HandoffReason::Misunderstanding);
}

#[test]
fn clinic_never_answers_medical_questions() {
    let mut chat = Chat::new(config::demo_clinic(), ChannelKind::Telegram, "2002");
    let t = chat.say("у меня болит горло и температура 38, какие таблетки пить?");
    assert_handoff(&t, HandoffReason::Medical);
}

#[test]
fn reminder_reply_cant_come_offers_to_move_and_moves() {
    let mut chat = Chat::salon();
    let id = chat.existing("manicure", "olga", "2026-11-21T15:00:00+07:00", 60);
    chat.now = local("2026-11-20T15:00:00+07:00");
    let t = chat.event(Event::Reminder {
        booking: id.clone(),
        kind: ReminderKind::DayBefore,
    });
    assert_first_template(&t, "reminder_day_before");
    assert!(
        text(&t).contains("21.11") && text(&t).contains("15:00"),
        "{}",
        text(&t)
    );
    let t = chat.say("ой не смогу");
    assert_first_template(&t, "reminder_declined");
    let t = chat.say("давайте на вторник в 11");
    assert_effect(
        &t,
        |e| matches!(e, Effect::BookingMoved { id: moved, .. } if moved == &id),
    );
}

#[test]
fn reminder_reply_will_come_confirms() {
    let mut chat = Chat::salon();
    let id = chat.existing("manicure", "olga", "2026-11-21T15:00:00+07:00", 60);
    chat.event(Event::Reminder {
        booking: id.clone(),
        kind: ReminderKind::DayBefore,
    });
    let t = chat.say("да, буду");
    assert_eq!(
        t.effects,
        vec![Effect::BookingConfirmed { id }],
        "{}",
        text(&t)
    );
}

#[test]
fn no_show_follow_up_offers_a_new_time() {
    let mut chat = Chat::salon();
    let id = chat.existing("manicure", "olga", "2026-11-19T15:00:00+07:00", 60);
    chat.bookings[0].status = BookingStatus::NoShow;
    let t = chat.event(Event::NoShow { booking: id });
    assert_first_template(&t, "noshow_followup");
    assert!(text(&t).contains("19.11"), "{}", text(&t));
    let reply = t.replies[0].clone();
    let t = chat.press(&reply, "Подобрать время");
    assert_first_template(&t, "ask_datetime");
}

#[test]
fn faq_answers_come_from_the_profile() {
    let mut chat = Chat::salon();
    let t = chat.say("подскажите где вы находитесь?");
    let profile = config::demo_salon();
    let address = profile
        .faq
        .iter()
        .find(|f| f.id == "address")
        .expect("address FAQ");
    assert_eq!(text(&t), address.answer, "{}", all_text(&t));
}

#[test]
fn replays_are_deterministic() {
    let run = || {
        let mut chat = Chat::salon();
        let mut out = Vec::new();
        for m in ["привет", "хочу на маникюр", "завтра после обеда", "спасибо"]
        {
            out.push(text(&chat.say(m)));
        }
        out
    };
    assert_eq!(run(), run());
}

#[test]
fn past_time_is_never_booked() {
    let mut chat = Chat::salon();
    chat.conv.contact.name = Some("Ира".into());
    chat.conv.contact.phone = Some("+79131112233".into());
    let t = chat.say("запишите на маникюр сегодня в 9 утра");
    assert_no_effect(&t, |e| matches!(e, Effect::BookingRequested { .. }));
}

#[test]
fn a_time_when_the_salon_is_open_but_the_master_is_not_is_told_as_it_is() {
    let mut chat = Chat::salon();
    // Thursday 26.11 at 20:00: the salon works till 21:00, the only massage master till 19:00.
    let turn = chat.say("хочу на массаж в четверг 26.11 в 20:00");
    assert_first_template(&turn, "staff_away_then");
    assert!(!all_text(&turn).contains("не работаем"), "{}", text(&turn));
    let buttons: Vec<&str> = turn.replies[0]
        .buttons
        .iter()
        .map(|b| b.title.as_str())
        .collect();
    assert!(!buttons.is_empty(), "offers other times");
    // Saturday: the salon is open, the massage master never works then.
    let mut chat = Chat::salon();
    let turn = chat.say("массаж в субботу в 12");
    assert_first_template(&turn, "service_not_that_day");
    assert_eq!(turn.replies[0].buttons[0].title, "вс 22.11 12:00");
    // And when the salon itself is closed, it says so.
    let mut chat = Chat::salon();
    let turn = chat.say("маникюр в воскресенье в 20:00");
    assert_first_template(&turn, "outside_hours");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn no_message_sequence_panics(msgs in proptest::collection::vec("[а-яА-Я0-9 .,:!?+()-]{0,40}|\\PC{0,20}", 1..6)) {
        let mut chat = Chat::salon();
        for m in &msgs {
            chat.say(m);
        }
        let _ = Utc.timestamp_opt(0, 0);
    }
}

/// `cargo test --test pure engine::transcript -- --ignored --nocapture`: prints a sample conversation.
#[test]
#[ignore]
fn transcript() {
    let mut chat = Chat::salon();
    for m in [
        "привет",
        "хочу на ноготочки в субботу после обеда",
        "15:00",
        "Ксения 89131234567",
        "а где вы находитесь?",
        "есть акции?",
        "сколько стоит окрашивание",
        "перенесите мою запись на воскресенье",
        "отмените запись на воскресенье",
        "да",
    ] {
        let t = chat.say(m);
        println!("> {m}");
        for r in &t.replies {
            let b: Vec<&str> = r.buttons.iter().map(|b| b.title.as_str()).collect();
            println!(
                "< {} {:?} [{}]",
                r.text,
                b,
                r.template.as_deref().unwrap_or("")
            );
        }
        for e in &t.effects {
            println!("  effect: {}", e.kind());
        }
    }
}

#[test]
fn clinic_books_a_visit_that_mentions_a_symptom_but_escalates_the_question() {
    let mut chat = Chat::new(config::demo_clinic(), ChannelKind::Telegram, "2003");
    let t = chat.say("запишите к стоматологу, зуб болит");
    assert_no_effect(&t, |e| matches!(e, Effect::HandoffRequested { .. }));
    assert_first_template(&t, "ask_datetime");
    let t = chat.say("у ребенка температура 39, что делать?");
    assert_handoff(&t, HandoffReason::Medical);
}
