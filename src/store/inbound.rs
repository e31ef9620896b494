//! One inbound event → one transaction: dedup by inbound id, the message row, the conversation
//! (locked), the engine turn on the stored schedule, the new state, the replies with their
//! outbox jobs, and the turn's effects — bookings with their reminders, leads, contact,
//! hand-offs. A booking that lost a race to another transaction (found under the staff lock)
//! rolls everything back and re-runs the turn on the fresh schedule, so the client is offered
//! the next free slots instead of a double booking.
//! The turn itself is written by `turn.rs`, shared with the scheduler.

use super::turn::{MAX_ATTEMPTS, TurnInput, apply_turn};
use super::tx::NewMessage;
use super::{Store, StoreError};
use crate::domain::{Event, Inbound};
use crate::engine::{Engine, Turn};
use crate::nlu::Understanding;
use crate::pilot::Arm;
use chrono::{DateTime, Utc};

/// The result of a processed inbound event.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    /// The turn as stored (booking numbers may differ from the engine's if one was taken).
    pub turn: Turn,
    /// The stored client message (None for events that are not messages).
    pub message: Option<i64>,
    /// The stored replies, in order; each has an outbox `send` job.
    pub replies: Vec<i64>,
    /// How many times the turn ran (more than 1 after losing a slot to another client).
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// This inbound id was processed before; nothing was changed.
    Duplicate,
    Processed(Box<Processed>),
}

impl Store {
    /// Process one inbound event identified by `inbound_id` (the channel's update/message id)
    /// in one transaction. A redelivered id is `Duplicate` and changes nothing.
    pub async fn process_inbound(
        &self,
        engine: &Engine,
        inbound_id: &str,
        inbound: &Inbound,
        now: DateTime<Utc>,
    ) -> Result<Handled, StoreError> {
        // Understanding is pure and may take a while on a long message: done once, before any
        // transaction, so no writer waits for it.
        let understood = engine.understand(inbound, now);
        self.process_understood(engine, inbound_id, inbound, understood, now)
            .await
    }

    /// [`Store::process_inbound`] with the message already understood (by the rules, and by
    /// an LLM where they gave up), outside any transaction.
    pub async fn process_understood(
        &self,
        engine: &Engine,
        inbound_id: &str,
        inbound: &Inbound,
        understood: Option<Understanding>,
        now: DateTime<Utc>,
    ) -> Result<Handled, StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let busy = match self
                .try_inbound(engine, inbound_id, inbound, understood.as_ref(), now)
                .await
            {
                Ok(Some(Handled::Processed(mut p))) => {
                    p.attempts = attempt;
                    return Ok(Handled::Processed(p));
                }
                Ok(Some(Handled::Duplicate)) => return Ok(Handled::Duplicate),
                Ok(None) => None,
                Err(e) if e.is_retryable() => Some(e),
                Err(e) => return Err(e),
            };
            if attempt >= MAX_ATTEMPTS {
                return Err(busy.unwrap_or(StoreError::Contended(attempt)));
            }
            if busy.is_some() {
                // The database is busy (another process writes, a deadlock was broken): give it
                // a moment, 1, 4, 9 … ms, about 2.9 s over all attempts.
                let wait = u64::from(attempt * attempt);
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
    }

    /// Record an inbound id that carries no event for the engine (a button press that is only
    /// acknowledged), so a redelivery is recognised. False when it was seen before.
    pub async fn claim_inbound(
        &self,
        inbound_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        if !tx.claim_inbound(inbound_id, now).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        self.commit(tx).await?;
        Ok(true)
    }

    /// One attempt; None when a booking lost its slot (rolled back, to be re-run).
    async fn try_inbound(
        &self,
        engine: &Engine,
        inbound_id: &str,
        inbound: &Inbound,
        understood: Option<&Understanding>,
        now: DateTime<Utc>,
    ) -> Result<Option<Handled>, StoreError> {
        let mut tx = self.write().await?;
        if !tx.claim_inbound(inbound_id, now).await? {
            tx.rollback().await?;
            return Ok(Some(Handled::Duplicate));
        }
        let client_id = tx.client_id(&inbound.client, now).await?;
        let conv = tx
            .lock_conversation(client_id, &inbound.client, now)
            .await?;
        let message = match as_message(&inbound.event) {
            Some((kind, text, payload)) => Some(
                tx.insert_message(&NewMessage {
                    client_id,
                    direction: "in",
                    channel: inbound.client.channel.as_str(),
                    kind,
                    text,
                    payload,
                    inbound_id: Some(inbound_id),
                    reply_to: None,
                    received_at: Some(inbound.at),
                    created_at: now,
                    operator: None,
                })
                .await?,
            ),
            None => None,
        };
        if let (Some(id), Some(label)) = (message, understood.and_then(|u| u.llm)) {
            tx.set_message_llm(id, label).await?;
        }
        // A pilot's managers-arm client: stored and read (for the KPIs), never answered.
        let in_pilot = message.is_some() || matches!(inbound.event, Event::Released);
        if in_pilot && tx.pilot_arm(client_id, &inbound.client, now).await? == Some(Arm::Managers) {
            let turn = tx
                .managers_turn(engine, client_id, &conv, understood, now)
                .await?;
            self.commit(tx).await?;
            return Ok(Some(Handled::Processed(Box::new(Processed {
                turn,
                message,
                replies: Vec::new(),
                attempts: 1,
            }))));
        }
        let Some(applied) = apply_turn(
            &mut tx,
            engine,
            client_id,
            &conv,
            TurnInput {
                inbound,
                understood,
                reply_to: message,
            },
            now,
        )
        .await?
        else {
            tx.rollback().await?;
            return Ok(None);
        };
        self.commit(tx).await?;
        Ok(Some(Handled::Processed(Box::new(Processed {
            turn: applied.turn,
            message,
            replies: applied.replies,
            attempts: 1,
        }))))
    }
}

/// The message row of an inbound event: (kind, text, JSON payload). Reminders, no-shows and
/// releases are not client messages.
fn as_message(event: &Event) -> Option<(&'static str, &str, Option<String>)> {
    match event {
        Event::Text { text } => Some(("text", text, None)),
        Event::Button { payload } => Some(("button", payload, None)),
        Event::Contact { phone, name } => Some((
            "contact",
            phone,
            Some(serde_json::json!({ "phone": phone, "name": name }).to_string()),
        )),
        Event::Reminder { .. } | Event::NoShow { .. } | Event::Released => None,
    }
}
