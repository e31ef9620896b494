//! Leads and the hand-off queue.

use super::{Tx, on};
use crate::domain::{ClientRef, Contact, Lead, ServiceId};
use crate::store::model::{JobKind, JobPayload};
use crate::store::reads::{StoredLead, WaitingHandoff};
use crate::store::{StoreError, parse_channel};
use chrono::{DateTime, Utc};

/// The columns of a `StoredLead`, read the same way by every lead query.
macro_rules! lead_select {
    () => {
        "SELECT l.id, c.channel, c.external_id, l.service, l.desired_at, \
         l.name, l.phone, l.email, l.fields, l.qualified_at, l.crm_state, l.came_from \
         FROM leads l JOIN clients c ON c.id = l.client_id"
    };
}

type LeadRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    DateTime<Utc>,
    String,
    Option<String>,
);

fn lead_from(row: LeadRow) -> Result<StoredLead, StoreError> {
    let (id, channel, ext, service, desired_at, name, phone, email, fields, at, crm, came_from) =
        row;
    Ok(StoredLead {
        id,
        client: ClientRef {
            channel: parse_channel(&channel)?,
            id: ext,
        },
        service: service.map(ServiceId),
        desired_at,
        contact: Contact { name, phone, email },
        fields: fields
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
        qualified_at: at,
        crm_state: crm,
        came_from,
    })
}

impl Tx {
    pub(in crate::store) async fn insert_lead(
        &mut self,
        client_id: i64,
        lead: &Lead,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        const SQL: &str = "INSERT INTO leads (client_id, channel, source, service, desired_at, \
             name, phone, email, fields, qualified_at, came_from) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id";
        let fields: Vec<&str> = lead.fields.iter().map(|f| f.as_str()).collect();
        Ok(on!(self, |c| sqlx::query_scalar::<_, i64>(SQL)
            .bind(client_id)
            .bind(lead.channel.as_str())
            .bind(&lead.source)
            .bind(lead.service.as_ref().map(ServiceId::as_str))
            .bind(lead.desired_at)
            .bind(&lead.contact.name)
            .bind(&lead.contact.phone)
            .bind(&lead.contact.email)
            .bind(fields.join(","))
            .bind(now)
            .bind(&lead.came_from)
            .fetch_one(c)
            .await?))
    }

    /// Conversations a human owns, with the latest hand-off job (reason, time) and the times
    /// of the client's and the managers' last messages.
    pub(in crate::store) async fn handoffs(&mut self) -> Result<Vec<WaitingHandoff>, StoreError> {
        const SQL: &str = "SELECT c.channel, c.external_id, c.name, c.phone, v.updated_at, \
             (SELECT j.payload FROM jobs j WHERE j.client_id = c.id AND j.kind = 'handoff' \
              ORDER BY j.id DESC LIMIT 1), \
             (SELECT j.created_at FROM jobs j WHERE j.client_id = c.id AND j.kind = 'handoff' \
              ORDER BY j.id DESC LIMIT 1), \
             (SELECT m.created_at FROM messages m WHERE m.client_id = c.id \
              AND m.direction = 'in' ORDER BY m.id DESC LIMIT 1), \
             (SELECT m.created_at FROM messages m WHERE m.client_id = c.id \
              AND m.kind = 'manager' ORDER BY m.id DESC LIMIT 1), \
             (SELECT m.text FROM messages m WHERE m.client_id = c.id \
              AND m.direction = 'in' ORDER BY m.id DESC LIMIT 1), \
             v.callback_since IS NOT NULL \
             FROM conversations v JOIN clients c ON c.id = v.client_id \
             WHERE v.owner = 'human' OR v.callback_since IS NOT NULL ORDER BY c.id";
        type Row = (
            String,
            String,
            Option<String>,
            Option<String>,
            DateTime<Utc>,
            Option<String>,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
            Option<String>,
            bool,
        );
        let rows = on!(self, |c| sqlx::query_as::<_, Row>(SQL).fetch_all(c).await?);
        rows.into_iter()
            .map(
                |(
                    channel,
                    id,
                    name,
                    phone,
                    updated,
                    payload,
                    handed,
                    inbound,
                    manager,
                    last_text,
                    callback,
                )| {
                    let reason = payload.and_then(|p| {
                        match JobPayload::from_columns(JobKind::Handoff, &p) {
                            Ok(JobPayload::Handoff { reason }) => Some(reason),
                            _ => None,
                        }
                    });
                    Ok(WaitingHandoff {
                        client: ClientRef {
                            channel: parse_channel(&channel)?,
                            id,
                        },
                        name,
                        phone,
                        reason,
                        since: handed.unwrap_or(updated),
                        last_inbound_at: inbound,
                        last_manager_at: manager,
                        last_message: last_text,
                        callback,
                    })
                },
            )
            .collect()
    }

    pub(in crate::store) async fn leads(&mut self) -> Result<Vec<StoredLead>, StoreError> {
        const SQL: &str = concat!(lead_select!(), " ORDER BY l.id");
        let rows = on!(self, |c| sqlx::query_as::<_, LeadRow>(SQL)
            .fetch_all(c)
            .await?);
        rows.into_iter().map(lead_from).collect()
    }

    pub(in crate::store) async fn lead(
        &mut self,
        id: i64,
    ) -> Result<Option<StoredLead>, StoreError> {
        const SQL: &str = concat!(lead_select!(), " WHERE l.id = $1");
        let row = on!(self, |c| sqlx::query_as::<_, LeadRow>(SQL)
            .bind(id)
            .fetch_optional(c)
            .await?);
        row.map(lead_from).transpose()
    }

    /// The client's most recent lead.
    pub(in crate::store) async fn latest_lead_of(
        &mut self,
        client_id: i64,
    ) -> Result<Option<StoredLead>, StoreError> {
        const SQL: &str = concat!(
            lead_select!(),
            " WHERE l.client_id = $1 ORDER BY l.id DESC LIMIT 1"
        );
        let row = on!(self, |c| sqlx::query_as::<_, LeadRow>(SQL)
            .bind(client_id)
            .fetch_optional(c)
            .await?);
        row.map(lead_from).transpose()
    }

    /// The client of our lead `id`, when the lead exists.
    pub(in crate::store) async fn lead_client(
        &mut self,
        id: i64,
    ) -> Result<Option<i64>, StoreError> {
        const SQL: &str = "SELECT client_id FROM leads WHERE id = $1";
        Ok(on!(self, |c| sqlx::query_scalar::<_, i64>(SQL)
            .bind(id)
            .fetch_optional(c)
            .await?))
    }

    /// Our lead pushed to the CRM as `crm_id`, and its client.
    pub(in crate::store) async fn lead_by_crm_id(
        &mut self,
        crm_id: i64,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        const SQL: &str =
            "SELECT id, client_id FROM leads WHERE crm_id = $1 ORDER BY id DESC LIMIT 1";
        Ok(on!(self, |c| sqlx::query_as::<_, (i64, i64)>(SQL)
            .bind(crm_id.to_string())
            .fetch_optional(c)
            .await?))
    }

    /// The lead reached the CRM as `crm_id`. False when the lead does not exist.
    pub(in crate::store) async fn set_lead_synced(
        &mut self,
        id: i64,
        crm_id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE leads SET crm_id = $2, crm_state = 'synced', \
             crm_synced_at = $3, crm_error = NULL WHERE id = $1";
        let n = on!(self, |c| sqlx::query(SQL)
            .bind(id)
            .bind(crm_id.to_string())
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(n == 1)
    }
}
