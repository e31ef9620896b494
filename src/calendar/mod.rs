//! The schedule: which slots are free for which service and staff member, from the profile's
//! hours, holidays, staff schedules, durations, buffers and notice rules, minus existing
//! bookings; and when a booking's reminders are due. The engine asks through the
//! `Availability` trait; this module ships the in-memory implementation. Bookings export as
//! iCalendar (`ical`).

mod availability;
pub mod ical;
mod reminders;

pub use availability::*;
pub use reminders::*;
