//! The booking lifecycle: holding a chosen slot while the contact is asked, booking it,
//! qualifying the lead, and the client's existing bookings (pick, move, cancel, attendance).

use super::*;

impl<'a> Ctx<'a> {
    /// Remember what the client told about themselves; true when something new was learnt.
    pub(super) fn capture(
        &mut self,
        name: Option<&str>,
        phone: Option<&str>,
        email: Option<&str>,
    ) -> bool {
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

    pub(super) fn contact_complete(&self) -> bool {
        self.conv.contact.phone.is_some() && self.conv.contact.name.is_some()
    }

    /// Report the lead once it has every field the profile requires.
    pub(super) fn check_qualified(&mut self, booked: Option<(&ServiceId, DateTime<Utc>)>) {
        if self.conv.qualified {
            return;
        }
        let draft_at = self.draft_at();
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
                came_from: self.conv.came_from.clone(),
            },
        });
    }

    pub(super) fn choose(&mut self, slot: Slot, moving: Option<Booking>) {
        match moving {
            Some(b) => self.moved(b, slot),
            None => self.hold(slot),
        }
    }

    /// A free slot is picked: book it now, or first ask for what contact is missing.
    pub(super) fn hold(&mut self, slot: Slot) {
        self.offers_settled();
        self.conv.draft.when = self.local_when(slot.start);
        if self.contact_complete() {
            return self.book(slot);
        }
        self.conv.stage = Stage::AwaitingContact { slot: slot.clone() };
        self.ask_contact(&slot);
    }

    pub(super) fn ask_contact(&mut self, slot: &Slot) {
        let c = self.conv.contact.clone();
        let service = self.draft_service();
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

    pub(super) fn continue_contact(&mut self, slot: Slot, invalid_phone: bool) {
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

    pub(super) fn booking_id(&self, slot: &Slot) -> BookingId {
        let h = stable_hash(&[
            self.conv.client.to_string().as_bytes(),
            &self.conv.turns.to_le_bytes(),
            slot.start.to_rfc3339().as_bytes(),
        ]);
        BookingId(format!("{:06}", h % 1_000_000))
    }

    pub(super) fn book(&mut self, slot: Slot) {
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

    /// The client's upcoming booking that `hint` (a date) or `service` points at, else the
    /// nearest one.
    pub(super) fn pick_booking(
        &self,
        hint: Option<&When>,
        service: Option<&ServiceId>,
    ) -> Option<Booking> {
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

    /// The client's upcoming booking that a new wish may be about: of the service named (or
    /// being booked), or the only one when none is named.
    pub(super) fn booked_already(&self, u: &Understanding) -> Option<Booking> {
        let upcoming: Vec<Booking> = self
            .avail
            .bookings_of(&self.conv.client)
            .into_iter()
            .filter(|b| b.slot.start > self.now)
            .collect();
        match u.service.as_ref().or(self.conv.draft.service.as_ref()) {
            Some(s) => upcoming.into_iter().find(|b| &b.service == s),
            None if upcoming.len() == 1 => upcoming.into_iter().next(),
            None => None,
        }
    }

    /// A second visit, or this one moved? Never a silent double booking.
    pub(super) fn ask_move_or_new(&mut self, booking: Booking) {
        if self.conv.draft.service.is_none() {
            self.conv.draft.service = Some(booking.service.clone());
        }
        let v = self.booking_values(&booking);
        let buttons = Self::yes_no("Перенести", "Новая запись");
        self.say_with(K::MoveOrNew, v, buttons);
        self.conv.stage = Stage::MoveOrNew { booking };
    }

    pub(super) fn ask_reschedule(&mut self, booking: Booking) {
        let v = self.booking_values(&booking);
        self.say(K::AskRescheduleWhen, v);
        self.conv.stage = Stage::Rescheduling { booking };
    }

    pub(super) fn confirm_cancel(&mut self, booking: Booking) {
        let v = self.booking_values(&booking);
        self.say_with(
            K::ConfirmCancel,
            v,
            Self::yes_no("Да, отменить", "Нет, оставить"),
        );
        self.conv.stage = Stage::ConfirmingCancel { booking };
    }

    pub(super) fn cancel(&mut self, booking: Booking) {
        self.offers_settled();
        let v = self.booking_values(&booking);
        self.say(K::Cancelled, v);
        self.effects
            .push(Effect::BookingCancelled { id: booking.id });
        self.conv.stage = Stage::Idle;
        self.conv.draft = Draft::default();
    }

    /// The client keeps the booking they were about to cancel.
    pub(super) fn keep_booking(&mut self, booking: &Booking) {
        self.conv.stage = Stage::Idle;
        let v = self.booking_values(booking);
        self.say(K::CancelKept, v);
    }

    pub(super) fn attendance_confirmed(&mut self, booking: Booking) {
        let v = self.booking_values(&booking);
        self.say(K::ReminderConfirmed, v);
        self.effects
            .push(Effect::BookingConfirmed { id: booking.id });
        self.conv.stage = Stage::Idle;
    }

    pub(super) fn attendance_declined(&mut self, booking: Booking) {
        let v = self.booking_values(&booking);
        let buttons = vec![
            Button::new("Перенести", Payload::Reschedule.encode()),
            Button::new("Отменить", Payload::Cancel.encode()),
        ];
        self.say_with(K::ReminderDeclined, v, buttons);
        self.conv.stage = Stage::Rescheduling { booking };
    }

    /// Move `booking` to `when` (a time alone keeps the booking's day).
    pub(super) fn move_to(&mut self, booking: Booking, when: When) {
        let tz = self.tz();
        let mut when = when;
        if when.date.is_none() && when.time.is_some() {
            when.date = Some(booking.slot.start.with_timezone(&tz).date_naive());
        }
        // «в субботу в то же время»: the new day at the booked time.
        if self.same_time && when.time.is_none() && when.date.is_some() {
            when.time = Some(booking.slot.start.with_timezone(&tz).time());
            when.part_of_day = None;
            when.until = None;
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

    pub(super) fn moved(&mut self, booking: Booking, to: Slot) {
        self.offers_settled();
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
