//! Where our leads stand in the CRM, for the conversion KPI: one `crm_status` row per Bitrix24
//! object that follows one of our leads (the lead, and in simple CRM mode or after a manager's
//! conversion the deal it became) with its STATUS_ID / STAGE_ID and what that means
//! (in_work / converted / junk); the reconciliation cursor per entity (`crm_cursors`: the
//! latest DATE_MODIFY a complete run saw); the link recorded when a lead lands in the CRM
//! ([`Store::lead_pushed`]: our lead → its Bitrix24 id, so an event about a lead that was found
//! by phone still finds our lead); and the queue of status fetches after events
//! ([`Store::queue_crm_fetch`]).
//!
//! It owns the `crm_status` and `crm_cursors` tables. It never talks to the CRM (the worker
//! reads the portal and hands readings in) and reads no clock (callers pass `now`). A reading
//! older than the stored one (by DATE_MODIFY) never overwrites it, so an event fetch and a
//! reconciliation may race.

use super::model::JobPayload;
use super::tx::{NewJob, Tx, on};
use super::{Store, StoreError};
use crate::domain::{CrmEntity, CrmSemantic};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// What the worker read about one CRM object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmReading {
    pub entity: CrmEntity,
    /// The Bitrix24 ID.
    pub crm_id: i64,
    /// STATUS_ID of a lead, STAGE_ID of a deal.
    pub status_id: String,
    pub semantic: CrmSemantic,
    /// The portal's DATE_MODIFY of what was read.
    pub modified_at: Option<DateTime<Utc>>,
    /// Our lead, when the object names it itself (our ORIGINATOR_ID and ORIGIN_ID).
    pub our_lead: Option<i64>,
    /// A deal's LEAD_ID: the Bitrix24 lead it was converted from.
    pub crm_lead_id: Option<i64>,
}

/// A stored status row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmStatus {
    pub entity: CrmEntity,
    pub crm_id: i64,
    /// Our lead and its client.
    pub lead_id: Option<i64>,
    pub client_id: Option<i64>,
    pub crm_lead_id: Option<i64>,
    pub status_id: String,
    pub semantic: CrmSemantic,
    pub modified_at: Option<DateTime<Utc>>,
    /// When the object got this status (its DATE_MODIFY then, or when we first saw it).
    pub changed_at: DateTime<Utc>,
    /// When we last read it.
    pub seen_at: DateTime<Utc>,
}

impl CrmStatus {
    /// Where each of our leads stands: the deal it became when there is one (the latest
    /// changed), else its lead. In simple CRM mode every lead is converted at once, so only
    /// the deal's stage says whether the client came.
    pub fn per_lead(rows: &[CrmStatus]) -> BTreeMap<i64, CrmSemantic> {
        let mut best: BTreeMap<i64, &CrmStatus> = BTreeMap::new();
        for row in rows {
            let Some(lead) = row.lead_id else { continue };
            let better = match best.get(&lead) {
                None => true,
                Some(b) => {
                    (row.entity, row.changed_at, row.crm_id) > (b.entity, b.changed_at, b.crm_id)
                }
            };
            if better {
                best.insert(lead, row);
            }
        }
        best.into_iter().map(|(k, v)| (k, v.semantic)).collect()
    }
}

/// What recording a reading did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// A new row.
    Added,
    /// The status changed.
    Changed,
    /// Same status; seen again.
    Unchanged,
    /// Older than what is stored: ignored.
    Stale,
    /// Not one of our leads (nor a deal of one): nothing stored.
    NotOurs,
}

/// Where the last complete reconciliation of an entity stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrmCursor {
    /// The latest DATE_MODIFY it saw; None when it saw nothing (the next run reads everything).
    pub modified_at: Option<DateTime<Utc>>,
    /// When it finished (our clock).
    pub run_at: DateTime<Utc>,
}

type StatusRow = (
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    String,
    String,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn status_from(row: StatusRow) -> Result<CrmStatus, StoreError> {
    let (
        entity,
        crm_id,
        lead_id,
        client_id,
        crm_lead_id,
        status_id,
        semantic,
        modified,
        changed,
        seen,
    ) = row;
    Ok(CrmStatus {
        entity: CrmEntity::parse(&entity)
            .ok_or_else(|| StoreError::corrupt("crm entity", &entity))?,
        crm_id,
        lead_id,
        client_id,
        crm_lead_id,
        status_id,
        semantic: CrmSemantic::parse(&semantic)
            .ok_or_else(|| StoreError::corrupt("crm semantic", &semantic))?,
        modified_at: modified,
        changed_at: changed,
        seen_at: seen,
    })
}

macro_rules! status_select {
    () => {
        "SELECT entity, crm_id, lead_id, client_id, crm_lead_id, status_id, semantic, \
         modified_at, changed_at, seen_at FROM crm_status"
    };
}

impl Tx {
    async fn crm_status(
        &mut self,
        entity: CrmEntity,
        crm_id: i64,
    ) -> Result<Option<CrmStatus>, StoreError> {
        const SQL: &str = concat!(status_select!(), " WHERE entity = $1 AND crm_id = $2");
        let row = on!(self, |c| sqlx::query_as::<_, StatusRow>(SQL)
            .bind(entity.as_str())
            .bind(crm_id)
            .fetch_optional(c)
            .await?);
        row.map(status_from).transpose()
    }

    async fn crm_status_rows(&mut self) -> Result<Vec<CrmStatus>, StoreError> {
        const SQL: &str = concat!(status_select!(), " ORDER BY entity, crm_id");
        let rows = on!(self, |c| sqlx::query_as::<_, StatusRow>(SQL)
            .fetch_all(c)
            .await?);
        rows.into_iter().map(status_from).collect()
    }

    /// Insert or update; an older reading (by DATE_MODIFY) leaves the row as it is, and the
    /// change time moves only when the status does.
    async fn upsert_crm_status(
        &mut self,
        r: &CrmReading,
        owner: (i64, i64),
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO crm_status (entity, crm_id, lead_id, client_id, \
             crm_lead_id, status_id, semantic, modified_at, changed_at, seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (entity, crm_id) DO UPDATE SET \
             lead_id = excluded.lead_id, client_id = excluded.client_id, \
             crm_lead_id = COALESCE(excluded.crm_lead_id, crm_status.crm_lead_id), \
             changed_at = CASE WHEN crm_status.status_id = excluded.status_id \
                 AND crm_status.semantic = excluded.semantic \
                 THEN crm_status.changed_at ELSE excluded.changed_at END, \
             status_id = excluded.status_id, semantic = excluded.semantic, \
             modified_at = COALESCE(excluded.modified_at, crm_status.modified_at), \
             seen_at = excluded.seen_at \
             WHERE crm_status.modified_at IS NULL OR excluded.modified_at IS NULL \
             OR excluded.modified_at >= crm_status.modified_at";
        on!(self, |c| sqlx::query(SQL)
            .bind(r.entity.as_str())
            .bind(r.crm_id)
            .bind(owner.0)
            .bind(owner.1)
            .bind(r.crm_lead_id)
            .bind(&r.status_id)
            .bind(r.semantic.as_str())
            .bind(r.modified_at)
            .bind(r.modified_at.unwrap_or(now))
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(())
    }

    async fn crm_cursor(&mut self, entity: CrmEntity) -> Result<Option<CrmCursor>, StoreError> {
        const SQL: &str = "SELECT modified_at, run_at FROM crm_cursors WHERE entity = $1";
        let row = on!(self, |c| sqlx::query_as::<
            _,
            (Option<DateTime<Utc>>, DateTime<Utc>),
        >(SQL)
        .bind(entity.as_str())
        .fetch_optional(c)
        .await?);
        Ok(row.map(|(modified_at, run_at)| CrmCursor {
            modified_at,
            run_at,
        }))
    }

    /// The cursor never moves back: a run that saw nothing newer keeps the old position.
    async fn save_crm_cursor(
        &mut self,
        entity: CrmEntity,
        cursor: &CrmCursor,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO crm_cursors (entity, modified_at, run_at) \
             VALUES ($1, $2, $3) ON CONFLICT (entity) DO UPDATE SET \
             modified_at = CASE WHEN crm_cursors.modified_at IS NULL \
                 OR excluded.modified_at > crm_cursors.modified_at \
                 THEN excluded.modified_at ELSE crm_cursors.modified_at END, \
             run_at = excluded.run_at";
        on!(self, |c| sqlx::query(SQL)
            .bind(entity.as_str())
            .bind(cursor.modified_at)
            .bind(cursor.run_at)
            .execute(c)
            .await?
            .rows_affected());
        Ok(())
    }
}

impl Store {
    /// Record a reading, linked to our lead: the one it names, else the lead pushed as that
    /// Bitrix24 lead, else (a deal) the lead it was converted from, else the link stored
    /// before. Readings of objects that are none of ours are not stored.
    pub async fn record_crm_status(
        &self,
        r: &CrmReading,
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError> {
        let mut tx = self.write().await?;
        let existing = tx.crm_status(r.entity, r.crm_id).await?;
        let mut owner = None;
        if let Some(lead) = r.our_lead
            && let Some(client) = tx.lead_client(lead).await?
        {
            owner = Some((lead, client));
        }
        if owner.is_none() && r.entity == CrmEntity::Lead {
            owner = tx.lead_by_crm_id(r.crm_id).await?;
        }
        if owner.is_none()
            && let Some(crm_lead) = r.crm_lead_id
        {
            owner = match tx.lead_by_crm_id(crm_lead).await? {
                Some(o) => Some(o),
                None => tx
                    .crm_status(CrmEntity::Lead, crm_lead)
                    .await?
                    .and_then(|s| s.lead_id.zip(s.client_id)),
            };
        }
        if owner.is_none() {
            owner = existing.as_ref().and_then(|s| s.lead_id.zip(s.client_id));
        }
        let Some(owner) = owner else {
            tx.rollback().await?;
            return Ok(Recorded::NotOurs);
        };
        let recorded = match &existing {
            None => Recorded::Added,
            Some(s) if matches!((r.modified_at, s.modified_at), (Some(new), Some(old)) if new < old) =>
            {
                tx.rollback().await?;
                return Ok(Recorded::Stale);
            }
            Some(s) if s.status_id == r.status_id && s.semantic == r.semantic => {
                Recorded::Unchanged
            }
            Some(_) => Recorded::Changed,
        };
        tx.upsert_crm_status(r, owner, now).await?;
        self.commit(tx).await?;
        Ok(recorded)
    }

    /// Every stored status, by entity and id.
    pub async fn crm_statuses(&self) -> Result<Vec<CrmStatus>, StoreError> {
        let mut tx = self.read().await?;
        let rows = tx.crm_status_rows().await?;
        tx.commit().await?;
        Ok(rows)
    }

    pub async fn crm_status(
        &self,
        entity: CrmEntity,
        crm_id: i64,
    ) -> Result<Option<CrmStatus>, StoreError> {
        let mut tx = self.read().await?;
        let row = tx.crm_status(entity, crm_id).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn crm_cursor(&self, entity: CrmEntity) -> Result<Option<CrmCursor>, StoreError> {
        let mut tx = self.read().await?;
        let cursor = tx.crm_cursor(entity).await?;
        tx.commit().await?;
        Ok(cursor)
    }

    /// A reconciliation of `entity` finished: keep where it stopped (never moving back).
    pub async fn save_crm_cursor(
        &self,
        entity: CrmEntity,
        cursor: &CrmCursor,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        tx.save_crm_cursor(entity, cursor).await?;
        self.commit(tx).await
    }

    /// Our lead `lead_id` landed in the CRM as Bitrix24 lead `crm_id`. False when the lead
    /// does not exist.
    pub async fn lead_pushed(
        &self,
        lead_id: i64,
        crm_id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let found = tx.set_lead_synced(lead_id, crm_id, now).await?;
        self.commit(tx).await?;
        Ok(found)
    }

    /// Queue a status fetch of a CRM object (after its event), due at `now`. False when one
    /// for the same object already waits untried: it will read the latest state anyway.
    pub async fn queue_crm_fetch(
        &self,
        entity: CrmEntity,
        crm_id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let payload = JobPayload::CrmFetch { entity, id: crm_id };
        let mut tx = self.write().await?;
        if tx.untried_job(&payload).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.insert_job(&NewJob {
            client_id: None,
            booking: None,
            payload: &payload,
            due_at: now,
        })
        .await?;
        self.commit(tx).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(entity: CrmEntity, crm_id: i64, lead: i64, semantic: CrmSemantic) -> CrmStatus {
        let at = DateTime::<Utc>::default();
        CrmStatus {
            entity,
            crm_id,
            lead_id: Some(lead),
            client_id: Some(1),
            crm_lead_id: None,
            status_id: String::new(),
            semantic,
            modified_at: None,
            changed_at: at,
            seen_at: at,
        }
    }

    #[test]
    fn a_deal_decides_over_its_converted_lead() {
        let rows = [
            row(CrmEntity::Lead, 1, 10, CrmSemantic::Converted),
            row(CrmEntity::Deal, 2, 10, CrmSemantic::Junk),
            row(CrmEntity::Lead, 3, 11, CrmSemantic::InWork),
        ];
        let per = CrmStatus::per_lead(&rows);
        assert_eq!(per.get(&10), Some(&CrmSemantic::Junk));
        assert_eq!(per.get(&11), Some(&CrmSemantic::InWork));
        assert_eq!(per.len(), 2);
    }
}
