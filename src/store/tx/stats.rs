//! Row counts for `bot db status` and the tests.

use super::{Tx, on};
use crate::store::StoreError;
use crate::store::reads::Counts;

impl Tx {
    pub(in crate::store) async fn counts(&mut self) -> Result<Counts, StoreError> {
        const SQL: &str = "SELECT (SELECT COUNT(*) FROM clients), \
             (SELECT COUNT(*) FROM conversations), (SELECT COUNT(*) FROM messages), \
             (SELECT COUNT(*) FROM bookings), \
             (SELECT COUNT(*) FROM bookings WHERE status IN ('booked', 'confirmed')), \
             (SELECT COUNT(*) FROM leads), (SELECT COUNT(*) FROM jobs), \
             (SELECT COUNT(*) FROM jobs WHERE done_at IS NULL), \
             (SELECT COUNT(*) FROM processed_inbound)";
        type Row = (i64, i64, i64, i64, i64, i64, i64, i64, i64);
        let r = on!(self, |c| sqlx::query_as::<_, Row>(SQL).fetch_one(c).await?);
        Ok(Counts {
            clients: r.0,
            conversations: r.1,
            messages: r.2,
            bookings: r.3,
            active_bookings: r.4,
            leads: r.5,
            jobs: r.6,
            pending_jobs: r.7,
            processed_inbound: r.8,
        })
    }
}
