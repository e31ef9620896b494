//! Finding and offering slots: the booking draft (merged from what the client said), the
//! window a wish spans, the search (spread over a window, nearest to an exact time, the next
//! days when the wanted one is full), and the offer with its buttons.

use super::*;

/// How many days ahead to look when the wanted day has nothing free.
pub(super) const SEARCH_DAYS: i64 = 7;
/// How many free slots of a window to choose the spread suggestions from.
const SPREAD_POOL: usize = 96;

/// `n` slots evenly spread over `slots` (sorted), first and last included.
pub(super) fn spread_evenly(slots: Vec<Slot>, n: usize) -> Vec<Slot> {
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

impl<'a> Ctx<'a> {
    /// All slots fall on one local day.
    pub(super) fn one_day(&self, slots: &[Slot]) -> bool {
        let tz = self.tz();
        slots.windows(2).all(|w| {
            w[0].start.with_timezone(&tz).date_naive() == w[1].start.with_timezone(&tz).date_naive()
        })
    }

    /// "15:00" when all slots share a day, else "пт 20.11 15:00".
    pub(super) fn slot_buttons(&self, slots: &[Slot]) -> Vec<Button> {
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

    pub(super) fn merge_draft(&mut self, u: &Understanding) {
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

    pub(super) fn refine_booking(&mut self, u: &Understanding) {
        self.merge_draft(u);
        self.advance_booking(false);
    }

    /// The local date/time of a UTC moment as an exact `When`.
    pub(super) fn local_when(&self, at: DateTime<Utc>) -> When {
        let local = at.with_timezone(&self.tz());
        When {
            date: Some(local.date_naive()),
            time: Some(local.time()),
            ..When::default()
        }
    }

    /// A time with no date means today if it is still ahead, else tomorrow.
    pub(super) fn complete_date(&self, when: &When) -> When {
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
    pub(super) fn window(&self, when: &When) -> (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) {
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

    pub(super) fn search(
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
    pub(super) fn advance_booking(&mut self, show_free: bool) {
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

    /// The exact wanted time is not possible: say why (the truth: taken, too soon, the business
    /// closed, or open but without a master for the service then) and offer the nearest free
    /// slots.
    pub(super) fn offer_instead(
        &mut self,
        service_id: &ServiceId,
        moving: Option<Booking>,
        start: DateTime<Utc>,
    ) {
        let Some(service) = self.service(service_id) else {
            return;
        };
        let notice = Duration::minutes(i64::from(self.profile.booking.min_notice_minutes));
        let local = start.with_timezone(&self.tz());
        let weekday = chrono::Datelike::weekday(&local);
        let service_days = self.service_days(service_id);
        let key = if start < self.now + notice {
            K::TooSoon
        } else if self.avail.open_at(service_id, start) {
            K::SlotTaken
        } else if !self.business_open(start) {
            K::OutsideHours
        } else if service_days.contains(&weekday) {
            K::StaffAwayThen
        } else {
            K::ServiceNotThatDay
        };
        let no_master = matches!(key, K::StaffAwayThen | K::ServiceNotThatDay);
        let slots = if no_master {
            // The client wants this time of day: the same time on other days first, then other
            // times of the day asked.
            self.same_time_other_days(service_id, moving.as_ref(), start)
        } else {
            let day_start = self
                .utc(local.date_naive(), NaiveTime::MIN)
                .unwrap_or(start);
            self.search(
                service_id,
                moving.as_ref(),
                day_start,
                day_start + Duration::days(1),
                start,
                false,
            )
        };
        if slots.is_empty() {
            self.conv.stage = Stage::Booking;
            return self.say(K::NoSlots, Values::new().service(Some(service)));
        }
        let days: Vec<&str> = service_days.into_iter().map(weekday_short).collect();
        let values = Values::new()
            .service(Some(service))
            .at(self.profile, start)
            .set("hours", fmt_week_hours(&self.profile.hours))
            .set("on_day", weekday_on(weekday))
            .set("days", days.join(", "));
        self.present_offer(key, values, service_id, slots, moving);
    }

    /// The business itself is open at `start` (its hours that weekday, not a holiday).
    fn business_open(&self, start: DateTime<Utc>) -> bool {
        let local = start.with_timezone(&self.tz());
        let day = local.date_naive();
        !self.profile.is_holiday(day)
            && self
                .profile
                .hours
                .on(chrono::Datelike::weekday(&day))
                .is_some_and(|h| local.time() >= h.open && local.time() < h.close)
    }

    /// The weekdays some master who does `service` works, Monday first.
    fn service_days(&self, service: &ServiceId) -> Vec<chrono::Weekday> {
        (0..7)
            .filter_map(|i| chrono::Weekday::try_from(i).ok())
            .filter(|d| {
                self.profile
                    .staff
                    .iter()
                    .any(|s| s.services.contains(service) && s.hours.on(*d).is_some())
            })
            .collect()
    }

    /// Free slots at the local time of `start` on the following days, then other free times of
    /// `start`'s own day: what a client who named a time of day most likely takes.
    fn same_time_other_days(
        &self,
        service: &ServiceId,
        moving: Option<&Booking>,
        start: DateTime<Utc>,
    ) -> Vec<Slot> {
        let wanted = self.profile.booking.suggestions.max(1);
        let local = start.with_timezone(&self.tz());
        let staff = self.conv.draft.staff.clone();
        let ignore = moving.map(|b| &b.id);
        let mut slots: Vec<Slot> = (1..=2 * SEARCH_DAYS)
            .filter_map(|d| {
                let day = local.date_naive() + Duration::days(d);
                let at = self.utc(day, local.time())?;
                self.avail
                    .slot_at(service, staff.as_ref(), at, self.now, ignore)
                    .or_else(|| self.avail.slot_at(service, None, at, self.now, ignore))
            })
            .take(wanted)
            .collect();
        if slots.len() < wanted {
            let day_start = self
                .utc(local.date_naive(), NaiveTime::MIN)
                .unwrap_or(start);
            let week = day_start + Duration::days(SEARCH_DAYS);
            let same_day = self.search(
                service,
                moving,
                day_start,
                day_start + Duration::days(1),
                start,
                false,
            );
            for s in same_day {
                if slots.len() < wanted
                    && s.start.with_timezone(&self.tz()).date_naive() == local.date_naive()
                    && !slots.iter().any(|x| x.start == s.start)
                {
                    slots.push(s);
                }
            }
            if slots.is_empty() {
                // Neither: the nearest free times of that service at all.
                slots = self.search(service, moving, day_start, week, start, false);
            }
        }
        slots
    }

    pub(super) fn offer(&mut self, service: &Service, slots: Vec<Slot>, moving: Option<Booking>) {
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
        let service_id = service.id.clone();
        self.present_offer(key, values, &service_id, slots, moving);
    }

    /// Offer `slots` as buttons — unless every one of them was offered already in this booking
    /// and not taken: then widen the search, and after the second time offer a manager.
    fn present_offer(
        &mut self,
        key: K,
        values: Values<'_>,
        service_id: &ServiceId,
        slots: Vec<Slot>,
        moving: Option<Booking>,
    ) {
        let same = |a: &Slot, b: &Slot| a.start == b.start && a.staff == b.staff;
        let repeated = !self.conv.last_offer.is_empty()
            && slots
                .iter()
                .all(|s| self.conv.last_offer.iter().any(|o| same(s, o)));
        if repeated {
            return self.unmet_offer(service_id, moving);
        }
        let buttons = self.slot_buttons(&slots);
        self.say_with(key, values, buttons);
        self.remember_offer(&slots);
        self.conv.stage = Stage::ChoosingSlot {
            offered: slots,
            moving,
        };
    }

    /// The client asked again for what the last offer already answered: never the same offer
    /// twice. Other days at the wished time and other masters first; nothing new — ask which
    /// time suits; the second time — offer a manager.
    fn unmet_offer(&mut self, service_id: &ServiceId, moving: Option<Booking>) {
        let prev = self.conv.last_offer.clone();
        self.conv.unmet_offers += 1;
        let service = self.service(service_id);
        if self.conv.unmet_offers >= 2 {
            return self.offer_manager();
        }
        let wanted = self.profile.booking.suggestions.max(1);
        // Around what the client wished (the draft), else around the last offer.
        let around = self
            .draft_at()
            .or(prev.first().map(|s| s.start))
            .unwrap_or(self.now);
        // Any master, not only the one asked for.
        let staff = self.conv.draft.staff.take();
        let mut wider = self.same_time_other_days(service_id, moving.as_ref(), around);
        let horizon = self.now + Duration::days(2 * SEARCH_DAYS);
        wider.extend(self.search(service_id, moving.as_ref(), self.now, horizon, around, true));
        self.conv.draft.staff = staff;
        let mut fresh: Vec<Slot> = Vec::new();
        for s in wider {
            let seen = prev.iter().chain(&fresh).any(|o| o.start == s.start);
            if !seen && fresh.len() < wanted {
                fresh.push(s);
            }
        }
        let values = Values::new().service(service);
        if fresh.is_empty() {
            let manager = Button::new("Администратор", Payload::Human.encode());
            self.say_with(K::AskWhichTime, values, vec![manager]);
            self.conv.last_offer.clear();
            self.conv.stage = match moving {
                Some(booking) => Stage::Rescheduling { booking },
                None => Stage::Booking,
            };
            return;
        }
        let buttons = self.slot_buttons(&fresh);
        self.say_with(K::OfferWider, values, buttons);
        self.remember_offer(&fresh);
        self.conv.stage = Stage::ChoosingSlot {
            offered: fresh,
            moving,
        };
    }

    /// Every slot offered in this booking attempt is remembered, so none is offered as new again.
    fn remember_offer(&mut self, slots: &[Slot]) {
        for s in slots {
            if !self
                .conv
                .last_offer
                .iter()
                .any(|o| o.start == s.start && o.staff == s.staff)
            {
                self.conv.last_offer.push(s.clone());
            }
        }
    }

    /// The client answered the offer with something else: remind them to pick a time (the
    /// same buttons), unless the bot failed to understand too often. Always an answer.
    pub(super) fn choose_from(
        &mut self,
        offered: Vec<Slot>,
        moving: Option<Booking>,
        captured: bool,
    ) -> bool {
        if !captured && self.unread_answer() {
            return true;
        }
        let buttons = self.slot_buttons(&offered);
        self.say_with(K::ChooseSlot, Values::new(), buttons);
        self.conv.stage = Stage::ChoosingSlot { offered, moving };
        true
    }

    /// The service of the booking under way, if chosen.
    pub(super) fn draft_service(&self) -> Option<&'a Service> {
        self.conv
            .draft
            .service
            .as_ref()
            .and_then(|s| self.service(s))
    }

    /// The exact moment the booking under way asks for, if it names one.
    pub(super) fn draft_at(&self) -> Option<DateTime<Utc>> {
        let (d, t) = self.conv.draft.when.exact()?;
        self.utc(d, t)
    }

    /// An offer was taken, or the booking ended: the next offer starts afresh.
    pub(super) fn offers_settled(&mut self) {
        self.conv.unmet_offers = 0;
        self.conv.last_offer.clear();
    }

    /// Twice the offers were not what the client wants: a person picks a time by hand.
    pub(super) fn offer_manager(&mut self) {
        let service = self.draft_service();
        let buttons = Self::yes_no("Да, передать", "Нет, спасибо");
        self.say_with(K::OfferManager, Values::new().service(service), buttons);
        self.conv.last_offer.clear();
        self.conv.stage = Stage::OfferedManager;
    }

    pub(super) fn match_offered(&self, offered: &[Slot], when: &When) -> Option<Slot> {
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
}
