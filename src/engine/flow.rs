//! One turn of the dialog: escalation first, then what the bot is waiting for (the stage),
//! then the client's intent. Every branch ends in replies (possibly none: silence after a
//! hand-off) and typed effects; nothing here reads a clock or touches the outside world.

use super::buttons::Payload;
use super::reply::{
    Values, fmt_date, fmt_price, fmt_time, fmt_week_hours, say, stable_hash, weekday_short,
};
use super::templates::TemplateKey as K;
use super::{Conversation, Draft, Engine, Owner, Stage, Turn};
use crate::calendar::{Availability, SlotQuery};
use crate::config::{Price, Profile, Service};
use crate::domain::{
    Booking, BookingId, BookingStatus, Button, Effect, Event, HandoffReason, Inbound, Intent,
    LEAD_SOURCE, Lead, LeadField, ReminderKind, Reply, ServiceId, Slot, When,
};
use crate::nlu::Understanding;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};

/// How many days ahead to look when the wanted day has nothing free.
const SEARCH_DAYS: i64 = 7;
/// How many free slots of a window to choose the spread suggestions from.
const SPREAD_POOL: usize = 96;

/// `n` slots evenly spread over `slots` (sorted), first and last included.
fn spread_evenly(slots: Vec<Slot>, n: usize) -> Vec<Slot> {
    if slots.len() <= n || n < 2 {
        return slots.into_iter().take(n.max(1)).collect();
    }
    let last = slots.len() - 1;
    let mut picked: Vec<usize> = (0..n).map(|i| i * last / (n - 1)).collect();
    picked.dedup();
    picked
        .into_iter()
        .filter_map(|i| slots.get(i).cloned())
        .collect()
}

struct Ctx<'a> {
    profile: &'a Profile,
    avail: &'a dyn Availability,
    now: DateTime<Utc>,
    conv: Conversation,
    replies: Vec<Reply>,
    effects: Vec<Effect>,
}

pub(super) fn turn(
    engine: &Engine,
    conversation: &Conversation,
    inbound: &Inbound,
    now: DateTime<Utc>,
    avail: &dyn Availability,
) -> Turn {
    let mut t = Ctx {
        profile: &engine.profile,
        avail,
        now,
        conv: conversation.clone(),
        replies: Vec::new(),
        effects: Vec::new(),
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
            let u = engine.nlu.understand(text, now);
            if t.conv.owner == Owner::Bot {
                t.text(&u);
            }
            understanding = Some(u);
        }
        _ if t.conv.owner == Owner::Human => {}
        Event::Button { payload } => match Payload::parse(payload) {
            Some(p) => t.button(p),
            // A payload we did not make: read it as typed text.
            None => {
                let u = engine.nlu.understand(payload, now);
                t.text(&u);
                understanding = Some(u);
            }
        },
        Event::Contact { phone, name } => t.contact_shared(phone, name.as_deref()),
    }
    t.check_qualified(None);
    Turn {
        conversation: t.conv,
        replies: t.replies,
        effects: t.effects,
        understanding,
    }
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
        let r = say(self.profile, key, self.seed(), &values);
        self.replies.push(r);
    }

    fn say_with(&mut self, key: K, values: Values<'_>, buttons: Vec<Button>) {
        let mut r = say(self.profile, key, self.seed(), &values);
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

    /// All slots fall on one local day.
    fn one_day(&self, slots: &[Slot]) -> bool {
        let tz = self.tz();
        slots.windows(2).all(|w| {
            w[0].start.with_timezone(&tz).date_naive() == w[1].start.with_timezone(&tz).date_naive()
        })
    }

    /// "15:00" when all slots share a day, else "пт 20.11 15:00".
    fn slot_buttons(&self, slots: &[Slot]) -> Vec<Button> {
        let tz = self.tz();
        let same_day = self.one_day(slots);
        slots
            .iter()
            .map(|s| {
                let local = s.start.with_timezone(&tz);
                let title = if same_day {
                    fmt_time(local.time())
                } else {
                    format!(
                        "{} {} {}",
                        weekday_short(chrono::Datelike::weekday(&local)),
                        fmt_date(local.date_naive()),
                        fmt_time(local.time())
                    )
                };
                Button::new(title, Payload::slot(s).encode())
            })
            .collect()
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
        // A medical question goes to a person; a request to book a doctor that mentions a
        // symptom ("к стоматологу, зуб болит") is booked — that is what the patient asks for.
        let booking_a_doctor = u.intent == Intent::Book && u.service.is_some();
        if u.medical && self.profile.escalation.medical_questions_to_human && !booking_a_doctor {
            return self.handoff(HandoffReason::Medical);
        }
        if u.complaint {
            return self.handoff(HandoffReason::Complaint);
        }
        if u.intent == Intent::Human {
            return self.handoff(HandoffReason::Requested);
        }
        let captured = self.capture(u.name.as_deref(), u.phone.as_deref(), u.email.as_deref());
        let stage = self.conv.stage.clone();
        if self.on_stage(&stage, u, captured) {
            self.conv.misunderstandings = 0;
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
                if self.conv.owner == Owner::Bot {
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
        if self.conv.owner == Owner::Bot {
            self.conv.draft = Draft {
                service: Some(booking.service.clone()),
                staff: Some(booking.slot.staff.clone()),
                when: When::default(),
            };
            self.conv.stage = Stage::OfferedBooking;
        }
    }

    // ---- contact and qualification ----------------------------------------------------------

    /// Remember what the client told about themselves; true when something new was learnt.
    fn capture(&mut self, name: Option<&str>, phone: Option<&str>, email: Option<&str>) -> bool {
        let c = &mut self.conv.contact;
        let mut changed = false;
        for (slot, new) in [
            (&mut c.name, name),
            (&mut c.phone, phone),
            (&mut c.email, email),
        ] {
            if let Some(v) = new
                && slot.as_deref() != Some(v)
            {
                *slot = Some(v.to_string());
                changed = true;
            }
        }
        if changed {
            self.effects.push(Effect::ContactCaptured {
                contact: self.conv.contact.clone(),
            });
        }
        changed
    }

    fn contact_complete(&self) -> bool {
        self.conv.contact.phone.is_some() && self.conv.contact.name.is_some()
    }

    /// Report the lead once it has every field the profile requires.
    fn check_qualified(&mut self, booked: Option<(&ServiceId, DateTime<Utc>)>) {
        if self.conv.qualified {
            return;
        }
        let draft_at = self
            .conv
            .draft
            .when
            .exact()
            .and_then(|(d, t)| self.utc(d, t));
        let (service, at) = match booked {
            Some((s, at)) => (Some(s.clone()), Some(at)),
            None => (self.conv.draft.service.clone(), draft_at),
        };
        let c = &self.conv.contact;
        let has = |f: LeadField| match f {
            LeadField::Service => service.is_some(),
            LeadField::Datetime => at.is_some(),
            LeadField::Phone => c.phone.is_some(),
            LeadField::Name => c.name.is_some(),
            LeadField::Email => c.email.is_some(),
        };
        if !self.profile.qualification.required.iter().all(|f| has(*f)) {
            return;
        }
        let mut fields: Vec<LeadField> = [
            LeadField::Service,
            LeadField::Datetime,
            LeadField::Phone,
            LeadField::Name,
            LeadField::Email,
        ]
        .into_iter()
        .filter(|f| has(*f))
        .collect();
        fields.sort();
        self.conv.qualified = true;
        self.effects.push(Effect::LeadQualified {
            lead: Lead {
                client: self.conv.client.clone(),
                source: LEAD_SOURCE.to_string(),
                channel: self.conv.client.channel,
                service,
                desired_at: at,
                contact: self.conv.contact.clone(),
                fields,
            },
        });
    }

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

    /// The client keeps the booking they were about to cancel.
    fn keep_booking(&mut self, booking: &Booking) {
        self.conv.stage = Stage::Idle;
        let v = self.booking_values(booking);
        self.say(K::CancelKept, v);
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
            Stage::ChoosingSlot { offered, moving } if offered.len() == 1 => {
                self.choose(offered[0].clone(), moving.clone())
            }
            _ => self.say(K::Thanks, Values::new()),
        }
    }

    fn no(&mut self, stage: &Stage) {
        match stage {
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
            Intent::Book => self.refine_booking(u),
            Intent::FreeTime => {
                self.merge_draft(u);
                self.advance_booking(true);
            }
            Intent::Reschedule => {
                match self.pick_booking(u.moved_from.as_ref(), u.service.as_ref()) {
                    Some(b) if !u.when.is_empty() => self.move_to(b, u.when.clone()),
                    Some(b) => self.ask_reschedule(b),
                    None => self.no_booking(),
                }
            }
            Intent::Cancel => match self.pick_booking(Some(&u.when), u.service.as_ref()) {
                Some(b) => self.confirm_cancel(b),
                None => self.no_booking(),
            },
            Intent::Price => match u
                .service
                .clone()
                .or_else(|| self.conv.draft.service.clone().filter(|_| in_progress))
            {
                Some(s) => self.price(s),
                None => self.ask_price_service(),
            },
            Intent::Promo => self.promos(),
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

    fn misunderstood(&mut self) {
        self.conv.misunderstandings += 1;
        if self.conv.misunderstandings >= self.profile.escalation.max_misunderstandings.max(1) {
            return self.handoff(HandoffReason::Misunderstanding);
        }
        let mut buttons = self.menu();
        buttons.push(Button::new("Администратор", Payload::Human.encode()));
        self.say_with(K::Fallback, Values::new(), buttons);
    }

    fn handoff(&mut self, reason: HandoffReason) {
        let key = match reason {
            HandoffReason::Complaint => K::HandoffComplaint,
            HandoffReason::Medical => K::HandoffMedical,
            HandoffReason::Requested | HandoffReason::Misunderstanding => K::Handoff,
        };
        self.say(key, Values::new());
        self.conv.owner = Owner::Human;
        self.conv.stage = Stage::Idle;
        self.effects.push(Effect::HandoffRequested { reason });
    }

    fn declined(&mut self) {
        self.conv.stage = Stage::Idle;
        self.conv.draft = Draft::default();
        self.say(K::Declined, Values::new());
    }

    fn no_booking(&mut self) {
        self.conv.stage = Stage::OfferedBooking;
        self.say_with(
            K::NoBooking,
            Values::new(),
            vec![Button::new("Записаться", Payload::Book.encode())],
        );
    }

    fn ask_price_service(&mut self) {
        self.conv.stage = Stage::AskedPriceService;
        self.say(K::PriceAskService, Values::new());
    }

    fn price(&mut self, id: ServiceId) {
        let Some(service) = self.service(&id) else {
            return self.ask_price_service();
        };
        let in_progress = self.booking_in_progress();
        let values = Values::new()
            .service(Some(service))
            .set("price", fmt_price(service.price));
        match service.price {
            Price::Fixed(_) => self.say(K::PriceFixed, values),
            Price::Range { .. } => {
                let note = service.price_note.clone().unwrap_or_default();
                self.say(K::PriceRange, values.set("price_note", note));
            }
        }
        if !in_progress {
            self.conv.draft = Draft {
                service: Some(id),
                ..Draft::default()
            };
            self.conv.stage = Stage::OfferedBooking;
            let v = Values::new().service(Some(service));
            self.say_with(
                K::OfferBooking,
                v,
                Self::yes_no("Записаться", "Нет, спасибо"),
            );
        }
    }

    fn promos(&mut self) {
        let today = self.today();
        let lines: Vec<String> = self
            .profile
            .promotions
            .iter()
            .filter(|p| p.is_valid_on(today))
            .map(|p| {
                let until = p
                    .valid_until
                    .map(|d| format!(" (до {})", fmt_date(d)))
                    .unwrap_or_default();
                format!("• {}: {}{}", p.title, p.text, until)
            })
            .collect();
        if lines.is_empty() {
            self.say(K::NoPromo, Values::new());
            return;
        }
        self.say(
            K::PromoList,
            Values::new().set("promotions", lines.join("\n")),
        );
        if !matches!(
            self.conv.stage,
            Stage::Booking | Stage::ChoosingSlot { .. } | Stage::AwaitingContact { .. }
        ) {
            self.conv.stage = Stage::OfferedBooking;
            self.say_with(
                K::OfferBooking,
                Values::new(),
                Self::yes_no("Записаться", "Нет, спасибо"),
            );
        }
    }

    fn faq(&mut self, id: Option<&str>) {
        match id.and_then(|id| self.profile.faq.iter().find(|f| f.id == id)) {
            Some(f) => self.replies.push(Reply {
                text: f.answer.clone(),
                buttons: Vec::new(),
                template: Some(format!("faq:{}", f.id)),
                request_contact: false,
            }),
            None => self.misunderstood(),
        }
    }

    // ---- booking ---------------------------------------------------------------------------

    fn merge_draft(&mut self, u: &Understanding) {
        let d = &mut self.conv.draft;
        if let Some(s) = &u.service
            && d.service.as_ref() != Some(s)
        {
            d.service = Some(s.clone());
        }
        if u.staff.is_some() {
            d.staff = u.staff.clone();
        }
        d.when = u.when.merged_over(&d.when);
    }

    fn refine_booking(&mut self, u: &Understanding) {
        self.merge_draft(u);
        self.advance_booking(false);
    }

    /// The local date/time of a UTC moment as an exact `When`.
    fn local_when(&self, at: DateTime<Utc>) -> When {
        let local = at.with_timezone(&self.tz());
        When {
            date: Some(local.date_naive()),
            time: Some(local.time()),
            ..When::default()
        }
    }

    /// A time with no date means today if it is still ahead, else tomorrow.
    fn complete_date(&self, when: &When) -> When {
        let mut w = when.clone();
        if w.date.is_none() && (w.time.is_some() || w.part_of_day.is_some()) {
            let start = w
                .time
                .or(w.part_of_day.map(|p| p.range().0))
                .unwrap_or(NaiveTime::MIN);
            let today = self.today();
            let notice = Duration::minutes(i64::from(self.profile.booking.min_notice_minutes));
            let ahead = self
                .utc(today, start)
                .is_some_and(|t| t >= self.now + notice);
            w.date = Some(if ahead {
                today
            } else {
                today.succ_opt().unwrap_or(today)
            });
        }
        w
    }

    /// [from, to) and the preferred moment for a search over `when`.
    fn window(&self, when: &When) -> (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) {
        let Some(date) = when.date else {
            return (self.now, self.now + Duration::days(SEARCH_DAYS), self.now);
        };
        let part = when.part_of_day.map(|p| p.range());
        let start = when.time.or(part.map(|p| p.0)).unwrap_or(NaiveTime::MIN);
        let end = when.until.or(part.map(|p| p.1));
        let from = self.utc(date, start).unwrap_or(self.now);
        let to = match end {
            Some(e) if e > start => self.utc(date, e).unwrap_or(from),
            _ => self
                .utc(date.succ_opt().unwrap_or(date), NaiveTime::MIN)
                .unwrap_or(from),
        };
        (from, to, from)
    }

    fn search(
        &self,
        service: &ServiceId,
        moving: Option<&Booking>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        around: DateTime<Utc>,
        spread: bool,
    ) -> Vec<Slot> {
        let wanted = self.profile.booking.suggestions.max(1);
        let staff = self.conv.draft.staff.clone().filter(|id| {
            self.profile
                .staff_member(id)
                .is_some_and(|s| s.services.contains(service))
        });
        let query = |from, to| SlotQuery {
            service: service.clone(),
            staff: staff.clone(),
            around,
            from,
            to,
            now: self.now,
            ignore: moving.map(|b| b.id.clone()),
            limit: wanted,
        };
        // A window ("в субботу после обеда") gets suggestions spread over it, like an
        // administrator would offer; an exact time gets its nearest neighbours.
        let mut slots = if spread {
            let mut all = self.avail.search(&SlotQuery {
                limit: SPREAD_POOL,
                ..query(from, to)
            });
            all.sort_by_key(|s| s.start);
            spread_evenly(all, wanted)
        } else {
            self.avail.search(&query(from, to))
        };
        if slots.is_empty() {
            // Nothing in the wanted window: the nearest days after it.
            let day_start = self
                .utc(from.with_timezone(&self.tz()).date_naive(), NaiveTime::MIN)
                .unwrap_or(from);
            slots = self.avail.search(&SlotQuery {
                around: from,
                ..query(day_start, day_start + Duration::days(SEARCH_DAYS))
            });
            if slots.is_empty() {
                slots = self
                    .avail
                    .search(&query(from, from + Duration::days(SEARCH_DAYS)));
            }
        }
        slots.sort_by_key(|s| s.start);
        slots
    }

    /// Move the booking in progress one step forward.
    fn advance_booking(&mut self, show_free: bool) {
        self.conv.stage = Stage::Booking;
        let Some(service_id) = self.conv.draft.service.clone() else {
            let name = self.conv.contact.name.clone().unwrap_or_default();
            return self.say(K::AskService, Values::new().set("name", name));
        };
        let Some(service) = self.service(&service_id) else {
            self.conv.draft.service = None;
            return self.say(K::AskService, Values::new());
        };
        let when = self.complete_date(&self.conv.draft.when);
        self.conv.draft.when = when.clone();
        if let Some((d, t)) = when.exact() {
            let Some(start) = self.utc(d, t) else {
                return self.say(K::NoSlots, Values::new().service(Some(service)));
            };
            let staff = self.conv.draft.staff.clone();
            if let Some(slot) =
                self.avail
                    .slot_at(&service_id, staff.as_ref(), start, self.now, None)
            {
                return self.hold(slot);
            }
            return self.offer_instead(&service_id, None, start);
        }
        if when.is_empty() && !show_free {
            let name = self.conv.contact.name.clone().unwrap_or_default();
            // A tap instead of typing a day: the nearest free slots.
            let nearest = Button::new("Ближайшее свободное время", Payload::Nearest.encode());
            return self.say_with(
                K::AskDatetime,
                Values::new().service(Some(service)).set("name", name),
                vec![nearest],
            );
        }
        let (from, to, around) = self.window(&when);
        let slots = self.search(&service_id, None, from, to, around, true);
        self.offer(service, slots, None);
    }

    /// The exact wanted time is not possible: say why and offer the nearest free slots.
    fn offer_instead(
        &mut self,
        service_id: &ServiceId,
        moving: Option<Booking>,
        start: DateTime<Utc>,
    ) {
        let Some(service) = self.service(service_id) else {
            return;
        };
        let notice = Duration::minutes(i64::from(self.profile.booking.min_notice_minutes));
        let key = if start < self.now + notice {
            K::TooSoon
        } else if !self.avail.open_at(service_id, start) {
            K::OutsideHours
        } else {
            K::SlotTaken
        };
        let local_day = start.with_timezone(&self.tz()).date_naive();
        let day_start = self.utc(local_day, NaiveTime::MIN).unwrap_or(start);
        let slots = self.search(
            service_id,
            moving.as_ref(),
            day_start,
            day_start + Duration::days(1),
            start,
            false,
        );
        if slots.is_empty() {
            self.conv.stage = Stage::Booking;
            return self.say(K::NoSlots, Values::new().service(Some(service)));
        }
        let values = Values::new()
            .service(Some(service))
            .at(self.profile, start)
            .set("hours", fmt_week_hours(&self.profile.hours));
        let buttons = self.slot_buttons(&slots);
        self.say_with(key, values, buttons);
        self.conv.stage = Stage::ChoosingSlot {
            offered: slots,
            moving,
        };
    }

    fn offer(&mut self, service: &Service, slots: Vec<Slot>, moving: Option<Booking>) {
        if slots.is_empty() {
            self.conv.stage = if moving.is_some() {
                self.conv.stage.clone()
            } else {
                Stage::Booking
            };
            return self.say(K::NoSlots, Values::new().service(Some(service)));
        }
        let mut values = Values::new().service(Some(service));
        if let Some(first) = slots.first() {
            values = values.at(self.profile, first.start);
        }
        let one_day = self.one_day(&slots);
        let key = if one_day {
            K::OfferSlots
        } else {
            K::OfferSlotsDays
        };
        let buttons = self.slot_buttons(&slots);
        self.say_with(key, values, buttons);
        self.conv.stage = Stage::ChoosingSlot {
            offered: slots,
            moving,
        };
    }

    fn match_offered(&self, offered: &[Slot], when: &When) -> Option<Slot> {
        let time = when.time.filter(|_| !when.time_is_bound)?;
        let tz = self.tz();
        offered
            .iter()
            .find(|s| {
                let local = s.start.with_timezone(&tz);
                local.time() == time && when.date.is_none_or(|d| d == local.date_naive())
            })
            .cloned()
    }

    fn choose(&mut self, slot: Slot, moving: Option<Booking>) {
        match moving {
            Some(b) => self.moved(b, slot),
            None => self.hold(slot),
        }
    }

    /// A free slot is picked: book it now, or first ask for what contact is missing.
    fn hold(&mut self, slot: Slot) {
        self.conv.draft.when = self.local_when(slot.start);
        if self.contact_complete() {
            return self.book(slot);
        }
        self.conv.stage = Stage::AwaitingContact { slot: slot.clone() };
        self.ask_contact(&slot);
    }

    fn ask_contact(&mut self, slot: &Slot) {
        let c = self.conv.contact.clone();
        let service = self
            .conv
            .draft
            .service
            .as_ref()
            .and_then(|s| self.service(s));
        let values = Values::new().service(service).at(self.profile, slot.start);
        match (c.name, c.phone) {
            (None, None) => {
                self.say(K::AskContact, values);
                if let Some(r) = self.replies.last_mut() {
                    r.request_contact = true;
                }
            }
            (Some(name), None) => {
                self.say(K::AskPhone, values.set("name", name));
                if let Some(r) = self.replies.last_mut() {
                    r.request_contact = true;
                }
            }
            _ => self.say(K::AskName, values),
        }
    }

    fn continue_contact(&mut self, slot: Slot, invalid_phone: bool) {
        if invalid_phone && self.conv.contact.phone.is_none() {
            return self.say(K::InvalidPhone, Values::new());
        }
        if self.contact_complete() {
            // Re-check: the slot may have been taken while we asked.
            let service = self.conv.draft.service.clone();
            let still = service.as_ref().and_then(|s| {
                self.avail
                    .slot_at(s, Some(&slot.staff), slot.start, self.now, None)
            });
            return match (still, service) {
                (Some(slot), _) => self.book(slot),
                (None, Some(s)) => self.offer_instead(&s, None, slot.start),
                (None, None) => self.advance_booking(false),
            };
        }
        self.ask_contact(&slot);
    }

    fn booking_id(&self, slot: &Slot) -> BookingId {
        let h = stable_hash(&[
            self.conv.client.to_string().as_bytes(),
            &self.conv.turns.to_le_bytes(),
            slot.start.to_rfc3339().as_bytes(),
        ]);
        BookingId(format!("{:06}", h % 1_000_000))
    }

    fn book(&mut self, slot: Slot) {
        let Some(service_id) = self.conv.draft.service.clone() else {
            return self.advance_booking(false);
        };
        let booking = Booking {
            id: self.booking_id(&slot),
            client: self.conv.client.clone(),
            service: service_id.clone(),
            slot: slot.clone(),
            status: BookingStatus::Booked,
        };
        let service = self.service(&service_id);
        let price = service.map(|s| fmt_price(s.price)).unwrap_or_default();
        let values = self.booking_values(&booking).set("price", price);
        self.say(K::Booked, values);
        self.effects.push(Effect::BookingRequested { booking });
        self.check_qualified(Some((&service_id, slot.start)));
        self.conv.stage = Stage::Idle;
        self.conv.draft = Draft::default();
    }

    // ---- existing bookings -----------------------------------------------------------------

    /// The client's upcoming booking that `hint` (a date) or `service` points at, else the
    /// nearest one.
    fn pick_booking(&self, hint: Option<&When>, service: Option<&ServiceId>) -> Option<Booking> {
        let tz = self.tz();
        let upcoming: Vec<Booking> = self
            .avail
            .bookings_of(&self.conv.client)
            .into_iter()
            .filter(|b| b.slot.end > self.now)
            .collect();
        let by_date = hint.and_then(|w| w.date).and_then(|d| {
            upcoming
                .iter()
                .find(|b| b.slot.start.with_timezone(&tz).date_naive() == d)
        });
        let by_service = service.and_then(|s| upcoming.iter().find(|b| &b.service == s));
        by_date.or(by_service).or(upcoming.first()).cloned()
    }

    fn ask_reschedule(&mut self, booking: Booking) {
        let v = self.booking_values(&booking);
        self.say(K::AskRescheduleWhen, v);
        self.conv.stage = Stage::Rescheduling { booking };
    }

    fn confirm_cancel(&mut self, booking: Booking) {
        let v = self.booking_values(&booking);
        self.say_with(
            K::ConfirmCancel,
            v,
            Self::yes_no("Да, отменить", "Нет, оставить"),
        );
        self.conv.stage = Stage::ConfirmingCancel { booking };
    }

    fn cancel(&mut self, booking: Booking) {
        let v = self.booking_values(&booking);
        self.say(K::Cancelled, v);
        self.effects
            .push(Effect::BookingCancelled { id: booking.id });
        self.conv.stage = Stage::Idle;
        self.conv.draft = Draft::default();
    }

    fn attendance_confirmed(&mut self, booking: Booking) {
        let v = self.booking_values(&booking);
        self.say(K::ReminderConfirmed, v);
        self.effects
            .push(Effect::BookingConfirmed { id: booking.id });
        self.conv.stage = Stage::Idle;
    }

    fn attendance_declined(&mut self, booking: Booking) {
        let v = self.booking_values(&booking);
        let buttons = vec![
            Button::new("Перенести", Payload::Reschedule.encode()),
            Button::new("Отменить", Payload::Cancel.encode()),
        ];
        self.say_with(K::ReminderDeclined, v, buttons);
        self.conv.stage = Stage::Rescheduling { booking };
    }

    /// Move `booking` to `when` (a time alone keeps the booking's day).
    fn move_to(&mut self, booking: Booking, when: When) {
        let tz = self.tz();
        let mut when = when;
        if when.date.is_none() && when.time.is_some() {
            when.date = Some(booking.slot.start.with_timezone(&tz).date_naive());
        }
        let Some(service) = self.service(&booking.service) else {
            return self.no_booking();
        };
        if let Some((d, t)) = when.exact() {
            let Some(start) = self.utc(d, t) else {
                return self.ask_reschedule(booking);
            };
            let same_staff = self.avail.slot_at(
                &booking.service,
                Some(&booking.slot.staff),
                start,
                self.now,
                Some(&booking.id),
            );
            let any = || {
                self.avail
                    .slot_at(&booking.service, None, start, self.now, Some(&booking.id))
            };
            return match same_staff.or_else(any) {
                Some(slot) => self.moved(booking, slot),
                None => self.offer_instead(&booking.service.clone(), Some(booking), start),
            };
        }
        if when.is_empty() {
            return self.ask_reschedule(booking);
        }
        let (from, to, around) = self.window(&self.complete_date(&when));
        let slots = self.search(&booking.service, Some(&booking), from, to, around, true);
        self.offer(service, slots, Some(booking));
    }

    fn moved(&mut self, booking: Booking, to: Slot) {
        let tz = self.tz();
        let old = booking.slot.start.with_timezone(&tz);
        let mut moved = booking.clone();
        moved.slot = to.clone();
        let values = self
            .booking_values(&moved)
            .set("old_date", fmt_date(old.date_naive()))
            .set("old_time", fmt_time(old.time()));
        self.say(K::Rescheduled, values);
        self.effects.push(Effect::BookingMoved {
            id: booking.id,
            from: booking.slot,
            to,
        });
        self.conv.stage = Stage::Idle;
        self.conv.draft = Draft::default();
    }
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
