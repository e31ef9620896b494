//! One turn of the dialog: escalation first, then what the bot is waiting for (the stage),
//! then the client's intent. Every branch ends in replies (possibly none: silence after a
//! hand-off) and typed effects; nothing here reads a clock or touches the outside world.
//!
//! This file is the state machine: the events, what each stage accepts as an answer, and the
//! client's intents. The steps it dispatches to live beside it by topic: slot search and offers
//! (`offers.rs`), the booking lifecycle (`bookings.rs`), and the answers that are not a booking
//! step (`info.rs`).

mod bookings;
mod info;
mod offers;

use super::buttons::Payload;
use super::reply::{
    Values, fmt_date, fmt_price, fmt_time, fmt_week_hours, say, say_nth, stable_hash, variations,
    weekday_on, weekday_short,
};
use super::{Conversation, Draft, Engine, Owner, Stage, Turn};
use crate::calendar::{Availability, SlotQuery};
use crate::config::templates::TemplateKey as K;
use crate::config::{Price, Profile, Service};
use crate::domain::{
    Booking, BookingId, BookingStatus, Button, Effect, Event, HandoffReason, Inbound, Intent,
    LEAD_SOURCE, Lead, LeadField, ReminderKind, Reply, ServiceId, Slot, When,
};
use crate::nlu::Understanding;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};

struct Ctx<'a> {
    profile: &'a Profile,
    avail: &'a dyn Availability,
    now: DateTime<Utc>,
    conv: Conversation,
    replies: Vec<Reply>,
    effects: Vec<Effect>,
    /// A managers' channel is set up (see `Engine::without_managers`).
    managers: bool,
    /// The client asked to keep the booked time («в то же время») for a move.
    same_time: bool,
    /// What an LLM added to this message's understanding (used where the rules give up).
    assist: Option<crate::nlu::Assist>,
}

/// What the text of `inbound` says: a typed message, or a button payload this bot did not make
/// (read as typed text). None for every other event.
pub(super) fn understand(
    engine: &Engine,
    inbound: &Inbound,
    now: DateTime<Utc>,
) -> Option<Understanding> {
    match &inbound.event {
        Event::Text { text } => Some(engine.nlu.understand(text, now)),
        Event::Button { payload } if Payload::parse(payload).is_none() => {
            Some(engine.nlu.understand(payload, now))
        }
        _ => None,
    }
}

/// Decide the turn; `understood` is [`understand`] of the same inbound at the same moment,
/// computed by the caller before any lock is taken (computed here when it is missing).
pub(super) fn turn(
    engine: &Engine,
    conversation: &Conversation,
    inbound: &Inbound,
    understood: Option<Understanding>,
    now: DateTime<Utc>,
    avail: &dyn Availability,
) -> Turn {
    let mut understood = understood;
    let mut read = |text: &str| {
        understood
            .take()
            .unwrap_or_else(|| engine.nlu.understand(text, now))
    };
    let mut t = Ctx {
        profile: &engine.profile,
        avail,
        now,
        conv: conversation.clone(),
        replies: Vec::new(),
        effects: Vec::new(),
        managers: engine.managers,
        same_time: false,
        assist: None,
    };
    t.conv.turns += 1;
    if t.conv.contact.phone.is_none() && inbound.client.channel.provides_phone() {
        t.conv.contact.phone = phone_from_channel_id(&inbound.client.id);
    }
    let mut understanding = None;
    match &inbound.event {
        Event::Released => {
            t.conv.owner = Owner::Bot;
            t.conv.stage = Stage::Idle;
            t.conv.misunderstandings = 0;
        }
        Event::Reminder { booking, kind } => t.reminder(booking, *kind),
        Event::NoShow { booking } => t.no_show(booking),
        Event::Text { text } => {
            if t.conv.came_from.is_none() {
                t.conv.came_from = crate::domain::start_payload(text);
            }
            let u = read(text);
            if t.conv.owner.bot_answers() {
                t.assist = u.assist.clone();
                t.text(&u);
            }
            understanding = Some(u);
        }
        _ if t.conv.owner == Owner::Human => {}
        Event::Button { payload } => match Payload::parse(payload) {
            Some(p) => t.button(p),
            // A payload we did not make: read it as typed text.
            None => {
                let u = read(payload);
                t.text(&u);
                understanding = Some(u);
            }
        },
        Event::Contact { phone, name } => t.contact_shared(phone, name.as_deref()),
    }
    t.check_qualified(None);
    if !t.replies.is_empty() {
        t.conv.last_said = t.replies.iter().map(|r| text_hash(&r.text)).collect();
    }
    Turn {
        conversation: t.conv,
        replies: t.replies,
        effects: t.effects,
        understanding,
    }
}

/// The hash a sent text is remembered by.
fn text_hash(text: &str) -> u64 {
    stable_hash(&[text.as_bytes()])
}

/// WhatsApp ids are the client's number in international form without "+".
fn phone_from_channel_id(id: &str) -> Option<String> {
    crate::nlu::phone::find(&format!("+{}", id.trim_start_matches('+')), None).e164
}

impl<'a> Ctx<'a> {
    // ---- output helpers -------------------------------------------------------------------

    fn seed(&self) -> u64 {
        stable_hash(&[
            self.conv.client.id.as_bytes(),
            &self.conv.turns.to_le_bytes(),
            &(self.replies.len() as u32).to_le_bytes(),
        ])
    }

    fn say(&mut self, key: K, values: Values<'_>) {
        self.say_with(key, values, Vec::new());
    }

    /// Render `key`; a text the bot sent in its previous turn is rendered in another variation
    /// (the same message twice in a row reads as a bot stuck in a loop).
    fn say_with(&mut self, key: K, values: Values<'_>, buttons: Vec<Button>) {
        let seed = self.seed();
        let mut r = say(self.profile, key, seed, &values);
        for other in 1..variations(self.profile, key) {
            // `conv.last_said` is the previous turn's until this turn ends.
            if !self.conv.last_said.contains(&text_hash(&r.text)) {
                break;
            }
            r = say_nth(self.profile, key, seed, &values, other);
        }
        r.buttons = buttons;
        self.replies.push(r);
    }

    fn service(&self, id: &ServiceId) -> Option<&'a Service> {
        self.profile.service(id)
    }

    fn staff_name(&self, slot: &Slot) -> String {
        self.profile
            .staff_member(&slot.staff)
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }

    fn tz(&self) -> chrono_tz::Tz {
        self.profile.business.timezone
    }

    fn today(&self) -> NaiveDate {
        self.now.with_timezone(&self.tz()).date_naive()
    }

    fn utc(&self, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
        self.tz()
            .from_local_datetime(&date.and_time(time))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    }

    fn menu(&self) -> Vec<Button> {
        menu(self.profile, self.today())
    }

    fn yes_no(yes: &str, no: &str) -> Vec<Button> {
        vec![
            Button::new(yes, Payload::Yes.encode()),
            Button::new(no, Payload::No.encode()),
        ]
    }

    fn booking_values(&self, booking: &Booking) -> Values<'a> {
        Values::new()
            .service(self.service(&booking.service))
            .at(self.profile, booking.slot.start)
            .set("staff", self.staff_name(&booking.slot))
            .set("name", self.conv.contact.name.clone().unwrap_or_default())
            .set("booking", booking.id.to_string())
    }

    // ---- events ---------------------------------------------------------------------------

    fn text(&mut self, u: &Understanding) {
        self.same_time = u.same_time;
        // A medical question goes to a person; a request to book a doctor that mentions a
        // symptom ("к стоматологу, зуб болит") is booked — that is what the patient asks for.
        let booking_a_doctor = u.intent == Intent::Book && u.service.is_some();
        if u.medical && self.profile.escalation.medical_questions_to_human && !booking_a_doctor {
            return self.handoff(HandoffReason::Medical);
        }
        // Health first: a burn after waxing is a complaint too, but its answer is a specialist's.
        if u.safety {
            return self.handoff(HandoffReason::Safety);
        }
        if u.complaint {
            return self.handoff(HandoffReason::Complaint);
        }
        if u.intent == Intent::Human && u.frustrated {
            return self.handoff(HandoffReason::Misunderstanding);
        }
        if u.intent == Intent::Human {
            return self.handoff(HandoffReason::Requested);
        }
        // Just asked for a name: a short answer is the name, also one the gazetteer does not
        // know, in lower case, or one that is also a word («Роза», «Слава»).
        let asked_name = matches!(self.conv.stage, Stage::AwaitingContact { .. })
            && self.conv.contact.name.is_none();
        let name = u
            .name
            .as_deref()
            .or(u.name_answer.as_deref().filter(|_| asked_name));
        let captured = self.capture(name, u.phone.as_deref(), u.email.as_deref());
        let stage = self.conv.stage.clone();
        let unread = self.conv.misunderstandings;
        if self.on_stage(&stage, u, captured) {
            // An answer to the question resets the count, one re-asked after an unread reply
            // keeps it (so asking again cannot go on for ever).
            if self.conv.misunderstandings == unread {
                self.conv.misunderstandings = 0;
            }
            return;
        }
        self.on_intent(u);
    }

    fn contact_shared(&mut self, phone: &str, name: Option<&str>) {
        let e164 = crate::nlu::phone::find(phone, None).e164;
        let captured = self.capture(name, e164.as_deref(), None);
        if let Stage::AwaitingContact { slot } = self.conv.stage.clone() {
            self.continue_contact(slot, e164.is_none());
        } else if captured {
            self.say(K::Thanks, Values::new());
        }
    }

    fn button(&mut self, p: Payload) {
        self.conv.misunderstandings = 0;
        let stage = self.conv.stage.clone();
        match p {
            Payload::Yes => self.yes(&stage),
            Payload::No => self.no(&stage),
            Payload::Book => {
                self.conv.draft.when = When::default();
                self.advance_booking(false);
            }
            Payload::Nearest => {
                self.conv.draft.when = When::default();
                self.advance_booking(true);
            }
            Payload::Prices => self.ask_price_service(),
            Payload::Promos => self.promos(),
            Payload::Human => self.handoff(HandoffReason::Requested),
            Payload::Reschedule => match self
                .stage_booking(&stage)
                .or_else(|| self.pick_booking(None, None))
            {
                Some(b) => self.ask_reschedule(b),
                None => self.say(K::NoBooking, Values::new()),
            },
            Payload::Cancel => match self
                .stage_booking(&stage)
                .or_else(|| self.pick_booking(None, None))
            {
                Some(b) => self.confirm_cancel(b),
                None => self.say(K::NoBooking, Values::new()),
            },
            Payload::Faq(id) => self.faq(Some(&id)),
            Payload::Slot { start, staff } => {
                let moving = match &stage {
                    Stage::ChoosingSlot { moving, .. } => moving.clone(),
                    _ => None,
                };
                let service = moving
                    .as_ref()
                    .map(|b| b.service.clone())
                    .or_else(|| self.conv.draft.service.clone());
                let slot = service.and_then(|svc| {
                    self.avail.slot_at(
                        &svc,
                        Some(&staff),
                        start,
                        self.now,
                        moving.as_ref().map(|b| &b.id),
                    )
                });
                match slot {
                    Some(slot) => self.choose(slot, moving),
                    None => {
                        // Taken meanwhile: offer what is free around it.
                        self.conv.draft.when = self.local_when(start);
                        self.conv.draft.staff = None;
                        match moving {
                            Some(b) => self.move_to(b, self.local_when(start)),
                            None => self.advance_booking(false),
                        }
                    }
                }
            }
        }
    }

    fn reminder(&mut self, id: &BookingId, kind: ReminderKind) {
        let Some(booking) = self.avail.booking(id).filter(Booking::is_active) else {
            return;
        };
        let values = self.booking_values(&booking);
        match kind {
            ReminderKind::DayBefore => {
                let buttons = vec![
                    Button::new("Подтверждаю", Payload::Yes.encode()),
                    Button::new("Перенести", Payload::Reschedule.encode()),
                    Button::new("Отменить", Payload::Cancel.encode()),
                ];
                self.say_with(K::ReminderDayBefore, values, buttons);
                if self.conv.owner.bot_answers() {
                    self.conv.stage = Stage::ReminderSent { booking };
                }
            }
            ReminderKind::Soon => self.say(K::ReminderSoon, values),
        }
    }

    fn no_show(&mut self, id: &BookingId) {
        let Some(booking) = self.avail.booking(id) else {
            return;
        };
        let values = self.booking_values(&booking);
        self.say_with(
            K::NoShowFollowup,
            values,
            Self::yes_no("Подобрать время", "Не нужно"),
        );
        if self.conv.owner.bot_answers() {
            self.conv.draft = Draft {
                service: Some(booking.service.clone()),
                staff: Some(booking.slot.staff.clone()),
                when: When::default(),
            };
            self.conv.stage = Stage::OfferedBooking;
        }
    }

    // ---- contact and qualification ----------------------------------------------------------

    // ---- stage handling --------------------------------------------------------------------

    /// Handle the message as the answer to what the bot is waiting for; false = not an answer.
    fn on_stage(&mut self, stage: &Stage, u: &Understanding, captured: bool) -> bool {
        let has_when = !u.when.is_empty();
        // Messages that answer the bot's question, as opposed to a new request (a price
        // question in the middle of a booking is answered, and the booking waits).
        let answers = matches!(
            u.intent,
            Intent::Book | Intent::FreeTime | Intent::Other | Intent::Confirm | Intent::Deny
        );
        match stage {
            Stage::Idle => false,
            Stage::MoveOrNew { booking } => match u.intent {
                Intent::Reschedule | Intent::Confirm => {
                    let when = self.conv.draft.when.clone();
                    self.move_to(booking.clone(), when);
                    true
                }
                Intent::Book | Intent::Deny => {
                    self.advance_booking(false);
                    true
                }
                _ => false,
            },
            Stage::OfferedManager => match u.intent {
                Intent::Confirm | Intent::Human => {
                    self.handoff(HandoffReason::Requested);
                    true
                }
                Intent::Deny if !has_when => {
                    self.declined();
                    true
                }
                _ if answers && (has_when || u.service.is_some()) => {
                    self.refine_booking(u);
                    true
                }
                _ => false,
            },
            Stage::AwaitingCallbackPhone => {
                if self.conv.contact.phone.is_some() && (captured || u.phone.is_some()) {
                    self.callback_noted();
                    true
                } else if u.invalid_phone {
                    self.say(K::InvalidPhone, Values::new());
                    true
                } else {
                    // Something else: answered as usual, the callback still waits for a phone.
                    self.conv.stage = Stage::Idle;
                    false
                }
            }
            Stage::AwaitingContact { slot } => {
                if captured || u.invalid_phone {
                    self.continue_contact(slot.clone(), u.invalid_phone);
                    true
                } else if answers && (has_when || u.service.is_some()) {
                    self.conv.stage = Stage::Booking;
                    self.refine_booking(u);
                    true
                } else if u.intent == Intent::Deny {
                    self.declined();
                    true
                } else if matches!(u.intent, Intent::Other | Intent::Confirm) && u.faq.is_none() {
                    // Not read as a name or a phone: ask again, the slot stays held (never the
                    // generic menu, which would drop it) — until the bot has failed too often.
                    if u.intent == Intent::Other && self.unread_answer() {
                        return true;
                    }
                    self.continue_contact(slot.clone(), false);
                    true
                } else {
                    false
                }
            }
            Stage::ChoosingSlot { offered, moving } => {
                if let Some(slot) = self.match_offered(offered, &u.when) {
                    self.choose(slot, moving.clone());
                    true
                } else if u.intent == Intent::Confirm && offered.len() == 1 {
                    self.choose(offered[0].clone(), moving.clone());
                    true
                } else if u.intent == Intent::Deny && !has_when {
                    self.declined();
                    true
                } else if has_when && (answers || u.intent == Intent::Reschedule) {
                    match moving {
                        Some(b) => self.move_to(b.clone(), u.when.clone()),
                        None => self.refine_booking(u),
                    }
                    true
                } else if captured || (u.intent == Intent::Other && u.faq.is_none()) {
                    // A name or phone ahead of time, or something unread: the offer stands.
                    self.choose_from(offered.clone(), moving.clone(), captured)
                } else {
                    false
                }
            }
            Stage::ConfirmingCancel { booking } => match u.intent {
                Intent::Confirm | Intent::Cancel => {
                    self.cancel(booking.clone());
                    true
                }
                Intent::Deny => {
                    self.keep_booking(booking);
                    true
                }
                _ => self.reschedule_request(booking, u),
            },
            Stage::Rescheduling { booking } => {
                if u.intent == Intent::Cancel {
                    self.confirm_cancel(booking.clone());
                    true
                } else if has_when {
                    self.move_to(booking.clone(), u.when.clone());
                    true
                } else if u.intent == Intent::Deny {
                    self.declined();
                    true
                } else {
                    false
                }
            }
            Stage::ReminderSent { booking } => match u.intent {
                Intent::Confirm => {
                    self.attendance_confirmed(booking.clone());
                    true
                }
                // "не получится прийти" or "отмените" after a reminder: offer to move the
                // visit before cancelling it.
                Intent::Deny | Intent::Cancel => {
                    self.attendance_declined(booking.clone());
                    true
                }
                _ => self.reschedule_request(booking, u),
            },
            Stage::OfferedBooking => match u.intent {
                Intent::Confirm => {
                    self.advance_booking(false);
                    true
                }
                Intent::Deny => {
                    self.declined();
                    true
                }
                _ if has_when && matches!(u.intent, Intent::Other | Intent::Book) => {
                    self.refine_booking(u);
                    true
                }
                _ => false,
            },
            Stage::AskedPriceService => match &u.service {
                Some(s) if matches!(u.intent, Intent::Other | Intent::Price) => {
                    self.price(s.clone());
                    true
                }
                _ => false,
            },
            Stage::Booking => {
                if answers && (has_when || u.service.is_some() || u.staff.is_some()) {
                    self.refine_booking(u);
                    true
                } else if u.intent == Intent::Deny {
                    self.declined();
                    true
                } else {
                    false
                }
            }
        }
    }

    /// "Перенесите" about `booking` (with or without the new time); false when `u` is not that.
    fn reschedule_request(&mut self, booking: &Booking, u: &Understanding) -> bool {
        match u.intent {
            Intent::Reschedule | Intent::Book if !u.when.is_empty() => {
                self.move_to(booking.clone(), u.when.clone())
            }
            Intent::Reschedule => self.ask_reschedule(booking.clone()),
            _ => return false,
        }
        true
    }

    fn stage_booking(&self, stage: &Stage) -> Option<Booking> {
        match stage {
            Stage::ReminderSent { booking }
            | Stage::Rescheduling { booking }
            | Stage::ConfirmingCancel { booking } => Some(booking.clone()),
            _ => None,
        }
    }

    fn yes(&mut self, stage: &Stage) {
        match stage {
            Stage::ReminderSent { booking } => self.attendance_confirmed(booking.clone()),
            Stage::ConfirmingCancel { booking } => self.cancel(booking.clone()),
            Stage::OfferedBooking | Stage::Booking => self.advance_booking(false),
            Stage::OfferedManager => self.handoff(HandoffReason::Requested),
            Stage::MoveOrNew { booking } => {
                let when = self.conv.draft.when.clone();
                self.move_to(booking.clone(), when);
            }
            Stage::ChoosingSlot { offered, moving } if offered.len() == 1 => {
                self.choose(offered[0].clone(), moving.clone())
            }
            _ => self.say(K::Thanks, Values::new()),
        }
    }

    fn no(&mut self, stage: &Stage) {
        match stage {
            Stage::MoveOrNew { .. } => self.advance_booking(false),
            Stage::ReminderSent { booking } => self.attendance_declined(booking.clone()),
            Stage::ConfirmingCancel { booking } => self.keep_booking(booking),
            _ => self.declined(),
        }
    }

    // ---- intents ---------------------------------------------------------------------------

    /// A booking or a move is under way: side questions (prices) are answered without
    /// dropping it.
    fn booking_in_progress(&self) -> bool {
        matches!(
            self.conv.stage,
            Stage::Booking
                | Stage::ChoosingSlot { .. }
                | Stage::AwaitingContact { .. }
                | Stage::Rescheduling { .. }
        )
    }

    fn on_intent(&mut self, u: &Understanding) {
        let in_progress = self.booking_in_progress();
        let understood = u.intent != Intent::Other || u.service.is_some();
        if understood {
            self.conv.misunderstandings = 0;
        }
        match u.intent {
            Intent::Book => match self.booked_already(u).filter(|_| !in_progress) {
                Some(b) if !u.when.is_empty() => {
                    self.merge_draft(u);
                    self.ask_move_or_new(b);
                }
                _ => self.refine_booking(u),
            },
            Intent::FreeTime => {
                self.merge_draft(u);
                self.advance_booking(true);
            }
            Intent::Reschedule => {
                match self.pick_booking(u.moved_from.as_ref(), u.service.as_ref()) {
                    Some(b) if !u.when.is_empty() => self.move_to(b, u.when.clone()),
                    Some(b) => self.ask_reschedule(b),
                    // No booking yet, one under way: «другое время» is about that one.
                    None if in_progress => self.refine_booking(u),
                    None => self.no_booking(),
                }
            }
            Intent::Cancel => match self.pick_booking(Some(&u.when), u.service.as_ref()) {
                Some(b) => self.confirm_cancel(b),
                None if in_progress => self.declined(),
                None => self.no_booking(),
            },
            Intent::Price => {
                let draft = self.conv.draft.service.clone().filter(|_| in_progress);
                let asked = match (u.service.clone(), draft) {
                    // «а сколько будет с покрытием?» while booking a pedicure: the note of the
                    // service under way speaks of the one named, so it is that service's price.
                    (Some(named), Some(d)) if self.note_speaks_of(&d, &named) => Some(d),
                    (Some(named), _) => Some(named),
                    (None, d) => d,
                };
                match asked {
                    Some(s) => {
                        self.price(s);
                        self.resume_offer();
                    }
                    None => self.ask_price_service(),
                }
            }
            Intent::Promo => self.promos(),
            Intent::Faq if u.faqs.len() > 1 => self.faqs(&u.faqs),
            Intent::Faq => self.faq(u.faq.as_deref()),
            Intent::Greeting => {
                let menu = self.menu();
                self.say_with(K::Greeting, Values::new(), menu);
            }
            Intent::Thanks | Intent::Confirm => self.say(K::Thanks, Values::new()),
            Intent::Deny => self.declined(),
            Intent::Human => self.handoff(HandoffReason::Requested),
            Intent::Other if u.service.is_some() => self.refine_booking(u),
            Intent::Other => self.misunderstood(),
        }
    }

    // ---- booking ---------------------------------------------------------------------------

    // ---- existing bookings -----------------------------------------------------------------
}

/// What the bot offers to start with: booking, prices, and promotions when one is running.
pub(super) fn menu(profile: &Profile, today: NaiveDate) -> Vec<Button> {
    let mut b = vec![
        Button::new("Записаться", Payload::Book.encode()),
        Button::new("Цены", Payload::Prices.encode()),
    ];
    if profile.promotions.iter().any(|p| p.is_valid_on(today)) {
        b.push(Button::new("Акции", Payload::Promos.encode()));
    }
    b
}
