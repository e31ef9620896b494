//! The statements of an erase (`store/privacy.rs`): one person's rows, across the tables, in
//! the caller's transaction.

use super::{Tx, on};
use crate::store::StoreError;
use crate::store::privacy::{Erased, Person};
use chrono::{DateTime, Utc};

impl Tx {
    /// The client ids of a person: one channel's client, or every client with the phone (on
    /// the client or on one of their leads).
    pub(in crate::store) async fn person_ids(
        &mut self,
        person: &Person,
    ) -> Result<Vec<i64>, StoreError> {
        match person {
            Person::Client(client) => Ok(self.find_client(client).await?.into_iter().collect()),
            Person::Phone(phone) => {
                const SQL: &str = "SELECT id FROM clients WHERE phone = $1 \
                     UNION SELECT client_id FROM leads WHERE phone = $1 ORDER BY 1";
                Ok(on!(self, |c| sqlx::query_scalar::<_, i64>(SQL)
                    .bind(phone)
                    .fetch_all(c)
                    .await?))
            }
        }
    }

    /// Erase one client's personal data (see `store/privacy.rs` for what each column gets).
    pub(in crate::store) async fn erase_client(
        &mut self,
        client_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Erased, StoreError> {
        let client = self.client_ref(client_id).await?;
        let mut erased = Erased {
            clients: 1,
            ..Erased::default()
        };
        // Bitrix24 holds its own copy: the operator erases those leads there.
        const CRM: &str = "SELECT crm_id FROM leads WHERE client_id = $1 AND crm_id IS NOT NULL";
        erased.crm_leads = on!(self, |c| sqlx::query_scalar::<_, String>(CRM)
            .bind(client_id)
            .fetch_all(c)
            .await?);
        const MESSAGES: &str = "UPDATE messages SET text = '', payload = NULL, inbound_id = NULL \
             WHERE client_id = $1";
        erased.messages = self.run_for(MESSAGES, client_id).await?;
        const LEADS: &str = "UPDATE leads SET name = NULL, phone = NULL, email = NULL, \
             crm_error = NULL, came_from = NULL WHERE client_id = $1";
        erased.leads = self.run_for(LEADS, client_id).await?;
        const PENDING: &str = "DELETE FROM jobs WHERE client_id = $1 AND done_at IS NULL";
        erased.jobs_dropped = self.run_for(PENDING, client_id).await?;
        self.run_for(
            "UPDATE jobs SET last_error = NULL WHERE client_id = $1",
            client_id,
        )
        .await?;
        self.run_for("DELETE FROM conversations WHERE client_id = $1", client_id)
            .await?;
        // A pilot's assignment keeps its arm, hash, share and time for the pilot's counts; its
        // key spells a phone or a channel's id. A key linked to this client's goes the same way.
        const PILOT: &str = "UPDATE pilot_assignments SET client_key = 'erased-' || CAST(id AS TEXT), \
             linked_to = CASE WHEN linked_to IS NULL THEN NULL ELSE 'erased' END, client_id = NULL \
             WHERE client_id = $1";
        erased.pilot_assignments = self.run_for(PILOT, client_id).await?;
        // Dedup ids that spell the person's id: the web chat's and MAX's.
        let prefixes = match client.channel {
            crate::domain::ChannelKind::Web => {
                vec![format!("web:{}:{}:", client.id.len(), client.id)]
            }
            crate::domain::ChannelKind::Max => vec![
                format!("max:{}:", client.id),
                format!("max:start:{}:", client.id),
                format!("max:stop:{}:", client.id),
            ],
            _ => Vec::new(),
        };
        for prefix in prefixes {
            const DEDUP: &str =
                "DELETE FROM processed_inbound WHERE substr(id, 1, length($1)) = $1";
            on!(self, |c| sqlx::query(DEDUP)
                .bind(&prefix)
                .execute(c)
                .await?
                .rows_affected());
        }
        const CLIENT: &str = "UPDATE clients SET external_id = $2, name = NULL, phone = NULL, \
             email = NULL, note = NULL, consent_reminders = (1 = 0), consent_marketing = (1 = 0) WHERE id = $1";
        let anonymous = format!("erased-{client_id}-{}", now.timestamp());
        on!(self, |c| sqlx::query(CLIENT)
            .bind(client_id)
            .bind(&anonymous)
            .execute(c)
            .await?
            .rows_affected());
        Ok(erased)
    }

    /// Erase a person's imported chats: the chat whose phone or channel id is theirs, or where
    /// they shared a contact card with their phone. Their texts and phones go, the chat loses
    /// its name and key; times and sides stay for the baseline KPIs. How many chats.
    pub(in crate::store) async fn erase_imports(
        &mut self,
        person: &Person,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        const BY_PHONE: &str = "SELECT id FROM import_chats WHERE phone = $1 \
             UNION SELECT chat_id FROM import_messages WHERE phone = $1";
        const BY_KEY: &str = "SELECT id FROM import_chats WHERE channel = $1 AND chat_key = $2";
        let chats: Vec<i64> = match person {
            Person::Phone(phone) => on!(self, |c| sqlx::query_scalar::<_, i64>(BY_PHONE)
                .bind(phone)
                .fetch_all(c)
                .await?),
            Person::Client(client) => on!(self, |c| sqlx::query_scalar::<_, i64>(BY_KEY)
                .bind(client.channel.as_str())
                .bind(&client.id)
                .fetch_all(c)
                .await?),
        };
        const MESSAGES: &str = "UPDATE import_messages SET text = '', phone = NULL, \
             msg_key = 'erased-' || CAST(id AS TEXT) WHERE chat_id = $1";
        const CHAT: &str = "UPDATE import_chats SET name = NULL, phone = NULL, \
             chat_key = $2 WHERE id = $1";
        // A label made from a file name may spell the person (WhatsApp names the file after
        // the chat): it goes too.
        let label = self.pick(
            "UPDATE import_chats SET label = 'erased-' || CAST(id AS TEXT) WHERE id = $1 \
             AND (instr(label, chat_key) > 0 OR (name IS NOT NULL AND instr(label, name) > 0))",
            "UPDATE import_chats SET label = 'erased-' || CAST(id AS TEXT) WHERE id = $1 \
             AND (strpos(label, chat_key) > 0 OR (name IS NOT NULL AND strpos(label, name) > 0))",
        );
        for id in &chats {
            self.run_for(label, *id).await?;
            self.run_for(MESSAGES, *id).await?;
            let anonymous = format!("erased-{id}-{}", now.timestamp());
            on!(self, |c| sqlx::query(CHAT)
                .bind(*id)
                .bind(&anonymous)
                .execute(c)
                .await?
                .rows_affected());
        }
        Ok(chats.len() as u64)
    }

    async fn run_for(&mut self, sql: &'static str, client_id: i64) -> Result<u64, StoreError> {
        Ok(on!(self, |c| sqlx::query(sql)
            .bind(client_id)
            .execute(c)
            .await?
            .rows_affected()))
    }
}
