//! The schedule: which slots are free for which service and staff member, from the profile's
//! hours, holidays, staff schedules, durations, buffers and notice rules, minus existing
//! bookings. The engine asks through the `Availability` trait; this module ships the in-memory
//! implementation (the persistent one is built on the same rules).

mod availability;

pub use availability::*;
