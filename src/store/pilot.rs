//! Pilots in the store: the `pilots` row that every `bot serve` replica reads on a client's
//! message (so a start, a share change or a stop is seen at once), and the sticky first
//! assignment of each client key (`pilot_assignments`, unique per pilot and key, never
//! rewritten). The assignment rule itself is `crate::pilot`; this file owns the two tables.

use super::turn::carry_out;
use super::tx::{Tx, on};
use super::{Store, StoreError};
use crate::domain::{ClientRef, Contact, Effect, HandoffReason};
use crate::engine::plan::Step;
use crate::engine::{Conversation, Engine, Owner, Stage, Turn};
use crate::nlu::Understanding;
use crate::pilot::{self, Arm};
use chrono::{DateTime, Utc};

/// A pilot as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Pilot {
    pub id: i64,
    pub seed: String,
    /// The bot's share of new clients, in percent (0–100).
    pub share: f64,
    /// Who serves the clients known before the start.
    pub existing: Arm,
    pub started_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
}

impl Pilot {
    /// New clients are assigned now.
    pub fn assigns_at(&self, now: DateTime<Utc>) -> bool {
        self.stopped_at.is_none() && now >= self.started_at && now < self.ends_at
    }

    /// Neither stopped nor past its end.
    pub fn running_at(&self, now: DateTime<Utc>) -> bool {
        self.stopped_at.is_none() && now < self.ends_at
    }
}

/// One stored assignment.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub client_key: String,
    pub client_id: Option<i64>,
    pub arm: Arm,
    pub h: f64,
    /// The share (percent) in force when the client was assigned.
    pub share: f64,
    pub assigned_at: DateTime<Utc>,
    /// The earlier key of the same person (their phone linked the two), whose arm they keep.
    pub linked_to: Option<String>,
}

/// What starting a pilot did.
#[derive(Debug, Clone, PartialEq)]
pub enum Started {
    New(Pilot),
    /// The running pilot's share (and end) changed; its seed and assignments stay.
    Changed {
        before: Pilot,
        after: Pilot,
    },
}

/// What `bot pilot --share N` asks for.
#[derive(Debug, Clone)]
pub struct PilotPlan {
    pub share: f64,
    pub seed: Option<String>,
    pub start: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub existing: Arm,
}

type PilotRow = (
    i64,
    String,
    f64,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

fn parse_arm(s: &str) -> Result<Arm, StoreError> {
    match s {
        "bot" => Ok(Arm::Bot),
        "managers" => Ok(Arm::Managers),
        other => Err(StoreError::corrupt(
            "pilot arm",
            format!("unknown arm {other:?}"),
        )),
    }
}

fn pilot_from(row: PilotRow) -> Result<Pilot, StoreError> {
    let (id, seed, share, existing, started_at, ends_at, changed_at, stopped_at) = row;
    Ok(Pilot {
        id,
        seed,
        share,
        existing: parse_arm(&existing)?,
        started_at,
        ends_at,
        changed_at,
        stopped_at,
    })
}

/// A fresh random seed: 16 hex digits from the OS's random source.
fn random_seed() -> Result<String, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::corrupt("random source", e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Store {
    /// The latest pilot (running, stopped or ended), if any was ever started.
    pub async fn pilot(&self) -> Result<Option<Pilot>, StoreError> {
        let mut tx = self.read().await?;
        let p = tx.latest_pilot().await?;
        tx.commit().await?;
        Ok(p)
    }

    /// Start a pilot, or change the running one's share and end (its seed and every stored
    /// assignment stay; the new share applies to clients first seen from now on).
    pub async fn start_pilot(
        &self,
        plan: &PilotPlan,
        now: DateTime<Utc>,
    ) -> Result<Started, StoreError> {
        let mut tx = self.write().await?;
        let running = tx.latest_pilot().await?.filter(|p| p.running_at(now));
        let started = match running {
            Some(before) => {
                const SQL: &str = "UPDATE pilots SET share = $2, ends_at = $3, changed_at = $4, existing = $5 \
                     WHERE id = $1";
                on!(&mut tx, |c| sqlx::query(SQL)
                    .bind(before.id)
                    .bind(plan.share)
                    .bind(plan.ends_at)
                    .bind(now)
                    .bind(arm_str(plan.existing))
                    .execute(c)
                    .await?
                    .rows_affected());
                let after = Pilot {
                    share: plan.share,
                    ends_at: plan.ends_at,
                    changed_at: now,
                    existing: plan.existing,
                    ..before.clone()
                };
                Started::Changed { before, after }
            }
            None => {
                let seed = match &plan.seed {
                    Some(s) => s.clone(),
                    None => random_seed()?,
                };
                const SQL: &str = "INSERT INTO pilots \
                     (seed, share, existing, started_at, ends_at, changed_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
                let id = on!(&mut tx, |c| sqlx::query_scalar::<_, i64>(SQL)
                    .bind(&seed)
                    .bind(plan.share)
                    .bind(arm_str(plan.existing))
                    .bind(plan.start)
                    .bind(plan.ends_at)
                    .bind(now)
                    .fetch_one(c)
                    .await?);
                Started::New(Pilot {
                    id,
                    seed,
                    share: plan.share,
                    existing: plan.existing,
                    started_at: plan.start,
                    ends_at: plan.ends_at,
                    changed_at: now,
                    stopped_at: None,
                })
            }
        };
        self.commit(tx).await?;
        Ok(started)
    }

    /// Stop the running pilot: new clients get the bot again. None when none runs.
    pub async fn stop_pilot(&self, now: DateTime<Utc>) -> Result<Option<Pilot>, StoreError> {
        let mut tx = self.write().await?;
        let Some(running) = tx.latest_pilot().await?.filter(|p| p.running_at(now)) else {
            tx.rollback().await?;
            return Ok(None);
        };
        const SQL: &str = "UPDATE pilots SET stopped_at = $2, changed_at = $2 WHERE id = $1";
        on!(&mut tx, |c| sqlx::query(SQL)
            .bind(running.id)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        self.commit(tx).await?;
        Ok(Some(Pilot {
            stopped_at: Some(now),
            changed_at: now,
            ..running
        }))
    }

    /// Every assignment of pilot `id`, in assignment order.
    pub async fn pilot_assignments(&self, id: i64) -> Result<Vec<Assignment>, StoreError> {
        self.assignments_where(id, None).await
    }

    /// The stored assignment of `key` in pilot `id`, if the client was assigned.
    pub async fn pilot_assignment(
        &self,
        id: i64,
        key: &str,
    ) -> Result<Option<Assignment>, StoreError> {
        Ok(self.assignments_where(id, Some(key)).await?.pop())
    }

    async fn assignments_where(
        &self,
        id: i64,
        key: Option<&str>,
    ) -> Result<Vec<Assignment>, StoreError> {
        const SQL: &str = "SELECT client_key, client_id, arm, h, share, assigned_at, linked_to \
             FROM pilot_assignments WHERE pilot_id = $1 AND ($2 IS NULL OR client_key = $2) \
             ORDER BY id";
        type Row = (
            String,
            Option<i64>,
            String,
            f64,
            f64,
            DateTime<Utc>,
            Option<String>,
        );
        let mut tx = self.read().await?;
        let rows = on!(&mut tx, |c| sqlx::query_as::<_, Row>(SQL)
            .bind(id)
            .bind(key)
            .fetch_all(c)
            .await?);
        tx.commit().await?;
        rows.into_iter()
            .map(
                |(client_key, client_id, arm, h, share, assigned_at, linked_to)| {
                    Ok(Assignment {
                        client_key,
                        client_id,
                        arm: parse_arm(&arm)?,
                        h,
                        share,
                        assigned_at,
                        linked_to,
                    })
                },
            )
            .collect()
    }
}

fn arm_str(arm: Arm) -> &'static str {
    match arm {
        Arm::Bot => "bot",
        Arm::Managers => "managers",
    }
}

impl Tx {
    pub(in crate::store) async fn latest_pilot(&mut self) -> Result<Option<Pilot>, StoreError> {
        const SQL: &str = "SELECT id, seed, share, existing, started_at, ends_at, changed_at, \
             stopped_at FROM pilots ORDER BY id DESC LIMIT 1";
        let row = on!(self, |c| sqlx::query_as::<_, PilotRow>(SQL)
            .fetch_optional(c)
            .await?);
        row.map(pilot_from).transpose()
    }

    /// The arm that serves `client` in the pilot now running, assigning a new client on their
    /// first message (the stored row wins over a concurrent replica's: unique key). None when
    /// no pilot runs or the client is not in it and the bot serves them.
    pub(in crate::store) async fn pilot_arm(
        &mut self,
        client_id: i64,
        client: &ClientRef,
        now: DateTime<Utc>,
    ) -> Result<Option<Arm>, StoreError> {
        // Stopped or past its end: the bot serves everyone again (the managers keep the
        // conversations they have until they give them back).
        let Some(p) = self.latest_pilot().await?.filter(|p| p.running_at(now)) else {
            return Ok(None);
        };
        const MINE: &str = "SELECT a.arm, l.arm FROM pilot_assignments a \
             LEFT JOIN pilot_assignments l ON l.pilot_id = a.pilot_id AND l.client_key = a.linked_to \
             WHERE a.pilot_id = $1 AND a.client_id = $2 ORDER BY a.id LIMIT 1";
        let stored = on!(self, |c| sqlx::query_as::<_, (String, Option<String>)>(
            MINE
        )
        .bind(p.id)
        .bind(client_id)
        .fetch_optional(c)
        .await?);
        if let Some((own, linked)) = stored {
            // A person linked by phone to an earlier key keeps that key's arm.
            return parse_arm(linked.as_deref().unwrap_or(&own)).map(Some);
        }
        if !p.assigns_at(now) {
            return Ok(None);
        }
        const CREATED: &str = "SELECT created_at FROM clients WHERE id = $1";
        let created = on!(self, |c| sqlx::query_scalar::<_, DateTime<Utc>>(CREATED)
            .bind(client_id)
            .fetch_one(c)
            .await?);
        if created < p.started_at {
            // Known before the pilot: not in it.
            return Ok((p.existing == Arm::Managers).then_some(Arm::Managers));
        }
        // WhatsApp's client id is the phone (E.164 digits): the key is the phone.
        let phone = client.channel.provides_phone().then(|| {
            let digits = client.id.trim_start_matches('+');
            format!("+{digits}")
        });
        let key = pilot::client_key(client, phone.as_deref());
        let h = pilot::hash_v2(&p.seed, &key);
        let arm = pilot::arm(h, p.share);
        const INSERT: &str = "INSERT INTO pilot_assignments \
             (pilot_id, client_key, client_id, arm, h, share, assigned_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (pilot_id, client_key) DO NOTHING";
        const SELECT: &str =
            "SELECT arm FROM pilot_assignments WHERE pilot_id = $1 AND client_key = $2";
        let arm = on!(self, |c| {
            sqlx::query(INSERT)
                .bind(p.id)
                .bind(&key)
                .bind(client_id)
                .bind(arm_str(arm))
                .bind(h)
                .bind(p.share)
                .bind(now)
                .execute(&mut *c)
                .await?;
            sqlx::query_scalar::<_, String>(SELECT)
                .bind(p.id)
                .bind(&key)
                .fetch_one(c)
                .await?
        });
        parse_arm(&arm).map(Some)
    }

    /// The client's phone became known: when another key of the running pilot belongs to the
    /// same phone and was assigned earlier, link this client's assignment to it (the person
    /// keeps the earliest arm; the row's own arm, hash and share are never rewritten).
    pub(in crate::store) async fn link_pilot_phone(
        &mut self,
        client_id: i64,
        phone: &str,
    ) -> Result<(), StoreError> {
        let Some(p) = self
            .latest_pilot()
            .await?
            .filter(|p| p.stopped_at.is_none())
        else {
            return Ok(());
        };
        const EARLIER: &str = "SELECT a.client_key FROM pilot_assignments a \
             JOIN pilot_assignments mine ON mine.pilot_id = a.pilot_id AND mine.client_id = $2 \
             LEFT JOIN clients c ON c.id = a.client_id \
             WHERE a.pilot_id = $1 AND a.id < mine.id AND a.linked_to IS NULL \
             AND (c.phone = $3 OR a.client_key = $4) ORDER BY a.id LIMIT 1";
        let tel = format!("tel:{phone}");
        let earlier = on!(self, |c| sqlx::query_scalar::<_, String>(EARLIER)
            .bind(p.id)
            .bind(client_id)
            .bind(phone)
            .bind(&tel)
            .fetch_optional(c)
            .await?);
        if let Some(key) = earlier {
            const LINK: &str = "UPDATE pilot_assignments SET linked_to = $3 \
                 WHERE pilot_id = $1 AND client_id = $2 AND linked_to IS NULL";
            on!(self, |c| sqlx::query(LINK)
                .bind(p.id)
                .bind(client_id)
                .bind(&key)
                .execute(c)
                .await?
                .rows_affected());
        }
        Ok(())
    }

    /// The turn of a managers-arm client: the bot says nothing and decides nothing. The first
    /// one hands the conversation to the managers (their notice, the console's inbox); a
    /// release leaves it with them while the pilot runs.
    pub(in crate::store) async fn managers_turn(
        &mut self,
        engine: &Engine,
        client_id: i64,
        conv: &Conversation,
        understood: Option<&Understanding>,
        now: DateTime<Utc>,
    ) -> Result<Turn, StoreError> {
        let mut conversation = conv.clone();
        conversation.turns += 1;
        // Reading is not acting: a phone, name or e-mail the client wrote is kept for the
        // managers' card, and a phone may show an earlier key of the same person.
        if let Some(u) = understood
            && (u.phone.is_some() || u.name.is_some() || u.email.is_some())
        {
            let contact = Contact {
                name: u.name.clone(),
                phone: u.phone.clone(),
                email: u.email.clone(),
            };
            self.update_contact(client_id, &contact).await?;
            if let Some(phone) = &contact.phone {
                self.link_pilot_phone(client_id, phone).await?;
            }
        }
        let mut effects = Vec::new();
        if conversation.owner != Owner::Human {
            conversation.owner = Owner::Human;
            conversation.stage = Stage::Idle;
            let reason = HandoffReason::Pilot;
            effects.push(Effect::HandoffRequested { reason });
            carry_out(
                self,
                engine.profile(),
                client_id,
                Step::Handoff(reason),
                now,
            )
            .await?;
        }
        self.save_conversation(client_id, &conversation, now)
            .await?;
        Ok(Turn {
            conversation,
            replies: Vec::new(),
            effects,
            understanding: understood.cloned(),
        })
    }
}
