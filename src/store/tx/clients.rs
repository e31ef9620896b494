//! Clients and their conversations: first contact, contact details, the locked state of a turn.

use super::{Tx, on};
use crate::domain::{ClientRef, Contact};
use crate::engine::Conversation;
use crate::store::{StoreError, parse_channel};
use chrono::{DateTime, Utc};

impl Tx {
    /// The id of `client`, created on first contact.
    pub(in crate::store) async fn client_id(
        &mut self,
        client: &ClientRef,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        const INSERT: &str = "INSERT INTO clients (channel, external_id, created_at) \
                              VALUES ($1, $2, $3) ON CONFLICT (channel, external_id) DO NOTHING";
        const SELECT: &str = "SELECT id FROM clients WHERE channel = $1 AND external_id = $2";
        let channel = client.channel.as_str();
        Ok(on!(self, |c| {
            sqlx::query(INSERT)
                .bind(channel)
                .bind(&client.id)
                .bind(now)
                .execute(&mut *c)
                .await?;
            sqlx::query_scalar::<_, i64>(SELECT)
                .bind(channel)
                .bind(&client.id)
                .fetch_one(c)
                .await?
        }))
    }

    pub(in crate::store) async fn client_ref(
        &mut self,
        client_id: i64,
    ) -> Result<ClientRef, StoreError> {
        const SQL: &str = "SELECT channel, external_id FROM clients WHERE id = $1";
        let (channel, id) = on!(self, |c| sqlx::query_as::<_, (String, String)>(SQL)
            .bind(client_id)
            .fetch_one(c)
            .await?);
        Ok(ClientRef {
            channel: parse_channel(&channel)?,
            id,
        })
    }

    pub(in crate::store) async fn find_client(
        &mut self,
        client: &ClientRef,
    ) -> Result<Option<i64>, StoreError> {
        const SQL: &str = "SELECT id FROM clients WHERE channel = $1 AND external_id = $2";
        Ok(on!(self, |c| sqlx::query_scalar::<_, i64>(SQL)
            .bind(client.channel.as_str())
            .bind(&client.id)
            .fetch_optional(c)
            .await?))
    }

    /// Keep what the bot learnt of the client's contact (known values are never erased).
    pub(in crate::store) async fn update_contact(
        &mut self,
        client_id: i64,
        contact: &Contact,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE clients SET name = COALESCE($2, name), \
                           phone = COALESCE($3, phone), email = COALESCE($4, email) WHERE id = $1";
        on!(self, |c| sqlx::query(SQL)
            .bind(client_id)
            .bind(&contact.name)
            .bind(&contact.phone)
            .bind(&contact.email)
            .execute(c)
            .await?
            .rows_affected());
        Ok(())
    }

    /// The conversation of `client_id`, created on first contact, locked until commit (other
    /// replicas processing the same client wait, so no turn is lost).
    pub(in crate::store) async fn lock_conversation(
        &mut self,
        client_id: i64,
        client: &ClientRef,
        now: DateTime<Utc>,
    ) -> Result<Conversation, StoreError> {
        const INSERT: &str = "INSERT INTO conversations \
             (client_id, state, owner, stage, turns, created_at, updated_at) \
             VALUES ($1, $2, 'bot', 'idle', 0, $3, $3) ON CONFLICT (client_id) DO NOTHING";
        let select = self.pick(
            "SELECT state FROM conversations WHERE client_id = $1",
            "SELECT state FROM conversations WHERE client_id = $1 FOR UPDATE",
        );
        let fresh = serde_json::to_string(&Conversation::new(client.clone()))
            .map_err(|e| StoreError::corrupt("conversation", e))?;
        let state = on!(self, |c| {
            sqlx::query(INSERT)
                .bind(client_id)
                .bind(&fresh)
                .bind(now)
                .execute(&mut *c)
                .await?;
            sqlx::query_scalar::<_, String>(select)
                .bind(client_id)
                .fetch_one(c)
                .await?
        });
        serde_json::from_str(&state).map_err(|e| StoreError::corrupt("conversation state", e))
    }

    pub(in crate::store) async fn save_conversation(
        &mut self,
        client_id: i64,
        conv: &Conversation,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE conversations SET state = $2, owner = $3, stage = $4, \
                           turns = $5, updated_at = $6, \
                           callback_since = CASE WHEN $7 THEN COALESCE(callback_since, $6) END \
                           WHERE client_id = $1";
        let state =
            serde_json::to_string(conv).map_err(|e| StoreError::corrupt("conversation", e))?;
        // A call back is the bot's conversation meanwhile; `callback_since` lists it.
        let owner = match conv.owner {
            crate::engine::Owner::Bot | crate::engine::Owner::Callback => "bot",
            crate::engine::Owner::Human => "human",
        };
        let callback = conv.owner == crate::engine::Owner::Callback;
        let stage = stage_name(&state);
        on!(self, |c| sqlx::query(SQL)
            .bind(client_id)
            .bind(&state)
            .bind(owner)
            .bind(&stage)
            .bind(i64::from(conv.turns))
            .bind(now)
            .bind(callback)
            .execute(c)
            .await?
            .rows_affected());
        Ok(())
    }

    pub(in crate::store) async fn conversation(
        &mut self,
        client_id: i64,
    ) -> Result<Option<Conversation>, StoreError> {
        const SQL: &str = "SELECT state FROM conversations WHERE client_id = $1";
        let state = on!(self, |c| sqlx::query_scalar::<_, String>(SQL)
            .bind(client_id)
            .fetch_optional(c)
            .await?);
        state
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|e| StoreError::corrupt("conversation state", e))
    }
}

/// The `stage` tag of a serialized conversation, for reporting without parsing JSON in SQL.
fn stage_name(state_json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(state_json)
        .ok()
        .and_then(|v| v["stage"]["stage"].as_str().map(str::to_string))
        .unwrap_or_else(|| "idle".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_name_reads_the_serde_tag() {
        let conv = Conversation::new(ClientRef {
            channel: crate::domain::ChannelKind::Web,
            id: "1".into(),
        });
        let json = serde_json::to_string(&conv).unwrap_or_default();
        assert_eq!(stage_name(&json), "idle");
        assert_eq!(stage_name("{\"stage\":{\"stage\":\"booking\"}}"), "booking");
    }
}
