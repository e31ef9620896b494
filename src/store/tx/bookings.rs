//! Bookings: the schedule a turn reads, the staff lock, overlap checks, changes.

use super::{Tx, on};
use crate::domain::{Booking, BookingId, BookingStatus, ClientRef, ServiceId, Slot, StaffId};
use crate::store::reads::StoredBooking;
use crate::store::{StoreError, parse_channel, parse_status, status_str};
use chrono::{DateTime, Duration, Utc};

type BookingRow = (
    String,
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    String,
);

fn booking_from(row: BookingRow) -> Result<Booking, StoreError> {
    let (id, channel, external_id, service, staff, start, end, status) = row;
    Ok(Booking {
        id: BookingId(id),
        client: ClientRef {
            channel: parse_channel(&channel)?,
            id: external_id,
        },
        service: ServiceId(service),
        slot: Slot {
            start,
            end,
            staff: StaffId(staff),
        },
        status: parse_status(&status)?,
    })
}

type StoredBookingRow = (
    String,
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    String,
    Option<String>,
    i64,
    DateTime<Utc>,
    i64,
);

fn stored_booking_from(row: StoredBookingRow) -> Result<StoredBooking, StoreError> {
    let (id, channel, ext, service, staff, start, end, status, name, sequence, updated, cid) = row;
    Ok(StoredBooking {
        booking: booking_from((id, channel, ext, service, staff, start, end, status))?,
        client_name: name,
        sequence,
        updated_at: updated,
        client_id: cid,
    })
}

impl Tx {
    /// What the engine needs to see of the schedule: every active booking that has not long
    /// ended, plus all bookings of the client (any status: a no-show follow-up looks one up).
    pub(in crate::store) async fn schedule_bookings(
        &mut self,
        now: DateTime<Utc>,
        client_id: i64,
    ) -> Result<Vec<Booking>, StoreError> {
        // Two indexed halves (by end time, by client) rather than one OR that scans history.
        const SQL: &str = "SELECT b.id, c.channel, c.external_id, b.service, b.staff, \
             b.start_at, b.end_at, b.status FROM bookings b JOIN clients c ON c.id = b.client_id \
             WHERE b.end_at > $1 AND b.status IN ('booked', 'confirmed') \
             UNION SELECT b.id, c.channel, c.external_id, b.service, b.staff, \
             b.start_at, b.end_at, b.status FROM bookings b JOIN clients c ON c.id = b.client_id \
             WHERE b.client_id = $2 ORDER BY 6, 1";
        let since = now - Duration::days(1);
        let rows = on!(self, |c| sqlx::query_as::<_, BookingRow>(SQL)
            .bind(since)
            .bind(client_id)
            .fetch_all(c)
            .await?);
        rows.into_iter().map(booking_from).collect()
    }

    /// Serialise writers of `staff`'s schedule until commit. On SQLite the write transaction
    /// already holds the database lock; the row is kept for symmetry.
    pub(in crate::store) async fn lock_staff(&mut self, staff: &StaffId) -> Result<(), StoreError> {
        const INSERT: &str =
            "INSERT INTO schedule_locks (staff) VALUES ($1) ON CONFLICT (staff) DO NOTHING";
        let lock = self.pick(
            "SELECT staff FROM schedule_locks WHERE staff = $1",
            "SELECT staff FROM schedule_locks WHERE staff = $1 FOR UPDATE",
        );
        on!(self, |c| {
            sqlx::query(INSERT)
                .bind(staff.as_str())
                .execute(&mut *c)
                .await?;
            sqlx::query(lock)
                .bind(staff.as_str())
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// An active booking of `staff` (other than `except`) closer than `buffer` to [start, end).
    /// Call with the staff member locked.
    pub(in crate::store) async fn overlapping(
        &mut self,
        slot: &Slot,
        buffer: Duration,
        except: Option<&BookingId>,
    ) -> Result<Option<BookingId>, StoreError> {
        const SQL: &str = "SELECT id FROM bookings WHERE staff = $1 \
             AND status IN ('booked', 'confirmed') AND start_at < $3 AND end_at > $2 \
             AND id <> $4 ORDER BY start_at LIMIT 1";
        let except = except.map(BookingId::as_str).unwrap_or("");
        let id = on!(self, |c| sqlx::query_scalar::<_, String>(SQL)
            .bind(slot.staff.as_str())
            .bind(slot.start - buffer)
            .bind(slot.end + buffer)
            .bind(except)
            .fetch_optional(c)
            .await?);
        Ok(id.map(BookingId))
    }

    pub(in crate::store) async fn booking_exists(
        &mut self,
        id: &BookingId,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "SELECT COUNT(*) FROM bookings WHERE id = $1";
        let n = on!(self, |c| sqlx::query_scalar::<_, i64>(SQL)
            .bind(id.as_str())
            .fetch_one(c)
            .await?);
        Ok(n > 0)
    }

    pub(in crate::store) async fn insert_booking(
        &mut self,
        b: &Booking,
        client_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO bookings (id, client_id, service, staff, start_at, end_at, \
             status, sequence, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8)";
        on!(self, |c| sqlx::query(SQL)
            .bind(b.id.as_str())
            .bind(client_id)
            .bind(b.service.as_str())
            .bind(b.slot.staff.as_str())
            .bind(b.slot.start)
            .bind(b.slot.end)
            .bind(status_str(b.status))
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Move an active booking to `to` (back to `booked`: a moved visit is confirmed anew);
    /// bumps its iCalendar sequence. False when it is not active.
    pub(in crate::store) async fn move_booking(
        &mut self,
        id: &BookingId,
        to: &Slot,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE bookings SET staff = $2, start_at = $3, end_at = $4, \
             status = 'booked', sequence = sequence + 1, updated_at = $5 \
             WHERE id = $1 AND status IN ('booked', 'confirmed')";
        let n = on!(self, |c| sqlx::query(SQL)
            .bind(id.as_str())
            .bind(to.staff.as_str())
            .bind(to.start)
            .bind(to.end)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    /// Set the status of an active booking; false when it is not active.
    pub(in crate::store) async fn set_status(
        &mut self,
        id: &BookingId,
        status: BookingStatus,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE bookings SET status = $2, sequence = sequence + 1, \
             updated_at = $3 WHERE id = $1 AND status IN ('booked', 'confirmed')";
        let n = on!(self, |c| sqlx::query(SQL)
            .bind(id.as_str())
            .bind(status_str(status))
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(n == 1)
    }

    pub(in crate::store) async fn booking(
        &mut self,
        id: &BookingId,
    ) -> Result<Option<StoredBooking>, StoreError> {
        const SQL: &str = "SELECT b.id, c.channel, c.external_id, b.service, b.staff, \
             b.start_at, b.end_at, b.status, c.name, b.sequence, b.updated_at, b.client_id \
             FROM bookings b JOIN clients c ON c.id = b.client_id WHERE b.id = $1";
        let row = on!(self, |c| sqlx::query_as::<_, StoredBookingRow>(SQL)
            .bind(id.as_str())
            .fetch_optional(c)
            .await?);
        row.map(stored_booking_from).transpose()
    }

    /// Bookings (any status) starting in [from, to), earliest first.
    pub(in crate::store) async fn bookings_between(
        &mut self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StoredBooking>, StoreError> {
        const SQL: &str = "SELECT b.id, c.channel, c.external_id, b.service, b.staff, \
             b.start_at, b.end_at, b.status, c.name, b.sequence, b.updated_at, b.client_id \
             FROM bookings b JOIN clients c ON c.id = b.client_id \
             WHERE b.start_at >= $1 AND b.start_at < $2 ORDER BY b.start_at, b.id";
        let rows = on!(self, |c| sqlx::query_as::<_, StoredBookingRow>(SQL)
            .bind(from)
            .bind(to)
            .fetch_all(c)
            .await?);
        rows.into_iter().map(stored_booking_from).collect()
    }

    /// Every booking of one client (any status), earliest first.
    pub(in crate::store) async fn client_bookings(
        &mut self,
        client_id: i64,
    ) -> Result<Vec<StoredBooking>, StoreError> {
        const SQL: &str = "SELECT b.id, c.channel, c.external_id, b.service, b.staff, \
             b.start_at, b.end_at, b.status, c.name, b.sequence, b.updated_at, b.client_id \
             FROM bookings b JOIN clients c ON c.id = b.client_id \
             WHERE b.client_id = $1 ORDER BY b.start_at, b.id";
        let rows = on!(self, |c| sqlx::query_as::<_, StoredBookingRow>(SQL)
            .bind(client_id)
            .fetch_all(c)
            .await?);
        rows.into_iter().map(stored_booking_from).collect()
    }
}
