//! `Availability`: the questions the dialog engine asks about the schedule, and
//! `ScheduleAvailability`, the answer computed from a profile plus a list of bookings.

use crate::config::Profile;
use crate::domain::{Booking, BookingId, ServiceId, Slot, StaffId};
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};

/// A search for free slots.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotQuery {
    pub service: ServiceId,
    /// Only this staff member; any qualified one when None.
    pub staff: Option<StaffId>,
    /// Rank slots by closeness to this moment.
    pub around: DateTime<Utc>,
    /// Only slots starting in [from, to).
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The reference "now": slots earlier than now + min notice are never offered.
    pub now: DateTime<Utc>,
    /// A booking to ignore (the one being moved).
    pub ignore: Option<BookingId>,
    pub limit: usize,
}

/// What the engine asks about the schedule. Implementations must be deterministic.
pub trait Availability {
    /// Free slots matching the query, closest to `around` first (ties: earlier first, then
    /// staff order in the profile). At most one slot per start time.
    fn search(&self, query: &SlotQuery) -> Vec<Slot>;

    /// The slot starting exactly at `start` for `service`, if some qualified staff member
    /// (`staff` when given) is free then.
    fn slot_at(
        &self,
        service: &ServiceId,
        staff: Option<&StaffId>,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
        ignore: Option<&BookingId>,
    ) -> Option<Slot>;

    /// Some staff member who performs `service` works for the whole visit starting at `start`
    /// (bookings ignored): tells "busy" from "closed".
    fn open_at(&self, service: &ServiceId, start: DateTime<Utc>) -> bool;

    /// Active bookings of a client, earliest first.
    fn bookings_of(&self, client: &crate::domain::ClientRef) -> Vec<Booking>;

    /// Any booking by id, whatever its status.
    fn booking(&self, id: &BookingId) -> Option<Booking>;
}

/// Availability computed in memory from a profile and the bookings it is given.
pub struct ScheduleAvailability<'a> {
    profile: &'a Profile,
    bookings: &'a [Booking],
}

impl<'a> ScheduleAvailability<'a> {
    pub fn new(profile: &'a Profile, bookings: &'a [Booking]) -> Self {
        ScheduleAvailability { profile, bookings }
    }

    fn local(&self, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
        self.profile
            .business
            .timezone
            .from_local_datetime(&date.and_time(time))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    }

    /// Is `staff` working for the whole [start, end)?
    fn staff_works(
        &self,
        staff: &crate::config::Staff,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> bool {
        let tz = self.profile.business.timezone;
        let local_start = start.with_timezone(&tz);
        let day = local_start.date_naive();
        if self.profile.is_holiday(day) {
            return false;
        }
        let Some(hours) = staff.hours.on(chrono::Datelike::weekday(&day)) else {
            return false;
        };
        let (Some(open), Some(close)) = (self.local(day, hours.open), self.local(day, hours.close))
        else {
            return false;
        };
        start >= open && end <= close
    }

    /// Is `staff` working for the whole [start, end) and free of other bookings (with buffer)?
    fn staff_free(
        &self,
        staff: &crate::config::Staff,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        ignore: Option<&BookingId>,
    ) -> bool {
        if !self.staff_works(staff, start, end) {
            return false;
        }
        let buffer = Duration::minutes(i64::from(self.profile.booking.buffer_minutes));
        !self.bookings.iter().any(|b| {
            b.is_active()
                && b.slot.staff == staff.id
                && Some(&b.id) != ignore
                && start < b.slot.end + buffer
                && b.slot.start < end + buffer
        })
    }

    fn earliest_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + Duration::minutes(i64::from(self.profile.booking.min_notice_minutes))
    }

    fn latest_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + Duration::days(i64::from(self.profile.booking.horizon_days))
    }
}

impl Availability for ScheduleAvailability<'_> {
    fn search(&self, q: &SlotQuery) -> Vec<Slot> {
        let Some(service) = self.profile.service(&q.service) else {
            return Vec::new();
        };
        let duration = Duration::minutes(i64::from(service.duration_minutes));
        let step = Duration::minutes(i64::from(self.profile.booking.slot_step_minutes.max(5)));
        let from = q.from.max(self.earliest_start(q.now));
        let to = q.to.min(self.latest_start(q.now));
        if from >= to {
            return Vec::new();
        }
        let tz = self.profile.business.timezone;
        // Walk the grid of each local day from its midnight, so slots sit on :00/:30.
        let mut found: Vec<Slot> = Vec::new();
        let mut day = from.with_timezone(&tz).date_naive();
        let last_day = to.with_timezone(&tz).date_naive();
        while day <= last_day {
            if let Some(mut t) = self.local(day, NaiveTime::MIN) {
                let day_end = t + Duration::days(1);
                while t < day_end {
                    if t >= from && t < to {
                        let end = t + duration;
                        let staff = self.profile.staff.iter().find(|s| {
                            s.services.contains(&q.service)
                                && q.staff.as_ref().is_none_or(|id| id == &s.id)
                                && self.staff_free(s, t, end, q.ignore.as_ref())
                        });
                        if let Some(s) = staff {
                            found.push(Slot {
                                start: t,
                                end,
                                staff: s.id.clone(),
                            });
                        }
                    }
                    t += step;
                }
            }
            match day.succ_opt() {
                Some(d) => day = d,
                None => break,
            }
        }
        found.sort_by_key(|s| ((s.start - q.around).num_seconds().abs(), s.start));
        found.truncate(q.limit);
        found
    }

    fn slot_at(
        &self,
        service: &ServiceId,
        staff: Option<&StaffId>,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
        ignore: Option<&BookingId>,
    ) -> Option<Slot> {
        if start < self.earliest_start(now) || start > self.latest_start(now) {
            return None;
        }
        let svc = self.profile.service(service)?;
        let end = start + Duration::minutes(i64::from(svc.duration_minutes));
        self.profile
            .staff
            .iter()
            .find(|s| {
                s.services.contains(service)
                    && staff.is_none_or(|id| id == &s.id)
                    && self.staff_free(s, start, end, ignore)
            })
            .map(|s| Slot {
                start,
                end,
                staff: s.id.clone(),
            })
    }

    fn open_at(&self, service: &ServiceId, start: DateTime<Utc>) -> bool {
        let Some(svc) = self.profile.service(service) else {
            return false;
        };
        let end = start + Duration::minutes(i64::from(svc.duration_minutes));
        self.profile
            .staff
            .iter()
            .any(|s| s.services.contains(service) && self.staff_works(s, start, end))
    }

    fn booking(&self, id: &BookingId) -> Option<Booking> {
        self.bookings.iter().find(|b| &b.id == id).cloned()
    }

    fn bookings_of(&self, client: &crate::domain::ClientRef) -> Vec<Booking> {
        let mut out: Vec<Booking> = self
            .bookings
            .iter()
            .filter(|b| &b.client == client && b.is_active())
            .cloned()
            .collect();
        out.sort_by_key(|b| b.slot.start);
        out
    }
}
