//! Our leads as Bitrix24 leads, and the deduplicating sync that pushes them.
//!
//! Mapping: TITLE (service and local date), NAME/SECOND_NAME/LAST_NAME (see `PersonName`),
//! PHONE (E.164, `MOBILE`), EMAIL,
//! SOURCE_ID (our `CHAT_BOT` source, registered when missing), SOURCE_DESCRIPTION (the
//! channel), COMMENTS, ORIGINATOR_ID/ORIGIN_ID (our ids, so a lead is always found again) and
//! the configured `UF_CRM_*` fields.
//!
//! Sync: CRM v2 has no idempotency key, so before any add we look the lead up — by ORIGIN_ID
//! and by `crm.duplicate.findbycomm` on the phone's written variants — in one batch per chunk
//! of leads (then the found leads' phones and e-mails in one list call), and add or update in
//! a second batch. An update sends only the phones and e-mails the lead lacks: Bitrix24
//! appends every multifield item sent without an ID. Leads of one chunk never share a phone,
//! e-mail or id (a repeat waits for the next chunk), and a write batch whose fate is unknown
//! is looked up again rather than resent: every lead lands exactly once.

use super::bitrix24::{
    BATCH_MAX, BatchAnswer, Bitrix24, Command, CrmError, FINDBYCOMM_MAX, PortalError, Retry, id,
    object_or_empty,
};
use crate::domain::{BookingChange, ChannelKind};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet, VecDeque};

/// Where a lead came from; the CSV knows two more channels than the bot serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadChannel {
    Telegram,
    Whatsapp,
    Instagram,
    Web,
    Vk,
    Max,
    Phone,
}

impl LeadChannel {
    pub const ALL: [LeadChannel; 7] = [
        LeadChannel::Telegram,
        LeadChannel::Whatsapp,
        LeadChannel::Instagram,
        LeadChannel::Web,
        LeadChannel::Vk,
        LeadChannel::Max,
        LeadChannel::Phone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LeadChannel::Telegram => "telegram",
            LeadChannel::Whatsapp => "whatsapp",
            LeadChannel::Instagram => "instagram",
            LeadChannel::Web => "web",
            LeadChannel::Vk => "vk",
            LeadChannel::Max => "max",
            LeadChannel::Phone => "phone",
        }
    }

    pub fn parse(s: &str) -> Option<LeadChannel> {
        let s = s.trim();
        LeadChannel::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }

    /// As a manager reads it in the card.
    pub fn label(self) -> &'static str {
        match self {
            LeadChannel::Telegram => "Telegram",
            LeadChannel::Whatsapp => "WhatsApp",
            LeadChannel::Instagram => "Instagram",
            LeadChannel::Web => "веб-чат",
            LeadChannel::Vk => "ВКонтакте",
            LeadChannel::Max => "MAX",
            LeadChannel::Phone => "телефон",
        }
    }
}

impl From<ChannelKind> for LeadChannel {
    fn from(c: ChannelKind) -> LeadChannel {
        match c {
            ChannelKind::Telegram => LeadChannel::Telegram,
            ChannelKind::Whatsapp => LeadChannel::Whatsapp,
            ChannelKind::Instagram => LeadChannel::Instagram,
            ChannelKind::Web => LeadChannel::Web,
            ChannelKind::Max => LeadChannel::Max,
            ChannelKind::Vk => LeadChannel::Vk,
        }
    }
}

/// A lead ready for the CRM: validated, phone in E.164.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrmLead {
    /// Our id of the lead (ORIGIN_ID): unique per lead, stable across runs.
    pub origin_id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub channel: LeadChannel,
    /// The service as the business names it.
    pub service: Option<String>,
    pub desired_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    /// Campaign tags when known: (`UTM_SOURCE`…`UTM_TERM`, value).
    pub utm: Vec<(String, String)>,
}

impl CrmLead {
    /// The `fields` of `crm.lead.add`.
    pub fn fields(&self, m: &Mapping) -> Map<String, Value> {
        let mut f = Map::new();
        let when = self
            .desired_at
            .map(|d| d.with_timezone(&m.tz).format("%d.%m %H:%M").to_string());
        let who = self
            .name
            .as_deref()
            .map(|n| {
                n.split_whitespace()
                    .map(capitalized)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|n| !n.is_empty())
            .or_else(|| self.phone.clone())
            .or_else(|| self.email.clone())
            .unwrap_or_default();
        let title = match (&self.service, &when) {
            (Some(s), Some(w)) => format!("{s} на {w} — {who}"),
            (Some(s), None) => format!("{s} — {who}"),
            (None, Some(w)) => format!("Запись на {w} — {who}"),
            (None, None) => format!("Заявка из чат-бота — {who}"),
        };
        f.insert("TITLE".into(), title.into());
        if let Some(name) = &self.name {
            let parts = PersonName::split(name);
            for (field, value) in [
                ("NAME", parts.first),
                ("SECOND_NAME", parts.patronymic),
                ("LAST_NAME", parts.last),
            ] {
                if let Some(v) = value {
                    f.insert(field.into(), v.into());
                }
            }
        }
        if m.simple_mode && !f.contains_key("NAME") {
            f.insert("NAME".into(), "Клиент чат-бота".into());
        }
        if let Some(phone) = &self.phone {
            f.insert(
                "PHONE".into(),
                json!([{"VALUE": phone, "VALUE_TYPE": "MOBILE"}]),
            );
        }
        if let Some(email) = &self.email {
            f.insert(
                "EMAIL".into(),
                json!([{"VALUE": email, "VALUE_TYPE": "HOME"}]),
            );
        }
        f.insert("SOURCE_ID".into(), m.source_id.clone().into());
        f.insert(
            "SOURCE_DESCRIPTION".into(),
            format!("Чат-бот, канал: {}", self.channel.label()).into(),
        );
        let mut comments = Vec::new();
        if let Some(s) = &self.service {
            comments.push(format!("Услуга: {s}"));
        }
        if let Some(w) = &when {
            comments.push(format!("Желаемое время: {w} ({})", m.tz));
        }
        comments.push(format!("Канал: {}", self.channel.label()));
        if let Some(c) = &self.comment {
            comments.push(c.clone());
        }
        f.insert("COMMENTS".into(), comments.join("\n").into());
        f.insert("ORIGINATOR_ID".into(), m.originator_id.clone().into());
        f.insert("ORIGIN_ID".into(), self.origin_id.clone().into());
        f.insert("OPENED".into(), "Y".into());
        for (k, v) in &self.utm {
            f.insert(k.clone(), v.clone().into());
        }
        if let Some(uf) = &m.uf_channel {
            f.insert(uf.clone(), self.channel.as_str().into());
        }
        if let (Some(uf), Some(d)) = (&m.uf_desired_at, self.desired_at) {
            f.insert(uf.clone(), d.with_timezone(&m.tz).to_rfc3339().into());
        }
        f
    }

    /// What identifies this person: phone, e-mail, our id. Two leads sharing one are the same.
    fn keys(&self) -> Vec<String> {
        let mut k = vec![format!("id:{}", self.origin_id)];
        if let Some(p) = &self.phone {
            k.push(format!("phone:{p}"));
        }
        if let Some(e) = &self.email {
            k.push(format!("email:{}", e.to_lowercase()));
        }
        k
    }
}

/// A contact name as the portal's NAME, SECOND_NAME (patronymic) and LAST_NAME: the bot writes
/// «Имя [Отчество] [Фамилия]», so the first word is the first name, a word shaped like a
/// patronymic (-вич, -вна, -ична, -ьич) the patronymic and the rest the surname. Words typed in
/// lower case are capitalised ("анна петрова" → Анна / Петрова).
#[derive(Debug, Default, PartialEq, Eq)]
struct PersonName {
    first: Option<String>,
    patronymic: Option<String>,
    last: Option<String>,
}

impl PersonName {
    fn split(name: &str) -> PersonName {
        let mut words = name.split_whitespace().map(capitalized);
        let first = words.next();
        let (mut patronymic, mut last) = (None, Vec::new());
        for w in words {
            let lower = w.to_lowercase();
            let is_patronymic = ["вич", "вна", "ична", "ьич"]
                .iter()
                .any(|e| lower.ends_with(e));
            if is_patronymic && patronymic.is_none() {
                patronymic = Some(w);
            } else {
                last.push(w);
            }
        }
        PersonName {
            first,
            patronymic,
            last: (!last.is_empty()).then(|| last.join(" ")),
        }
    }
}

/// A word typed in lower case with its first letter (and any after a hyphen) upper-cased;
/// a word with a capital anywhere ("МакКей", "DJ") is kept as written.
fn capitalized(word: &str) -> String {
    if word.chars().any(char::is_uppercase) {
        return word.to_string();
    }
    crate::nlu::names_gazetteer::capitalize_words(word)
}

/// How our leads map onto the portal's fields.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// SOURCE_ID of our leads; registered in the SOURCE directory when missing.
    pub source_id: String,
    /// Its name in the directory.
    pub source_name: String,
    /// ORIGINATOR_ID of our leads.
    pub originator_id: String,
    /// A `UF_CRM_*` field for the channel code, when the portal has one.
    pub uf_channel: Option<String>,
    /// A `UF_CRM_*` field for the desired visit time.
    pub uf_desired_at: Option<String>,
    /// The business time zone (dates in titles and comments).
    pub tz: Tz,
    /// Simple CRM mode: a new lead becomes a deal at once, which needs a NAME.
    pub simple_mode: bool,
}

impl Default for Mapping {
    fn default() -> Mapping {
        Mapping {
            source_id: "CHAT_BOT".into(),
            source_name: "Чат-бот".into(),
            originator_id: "bot".into(),
            uf_channel: None,
            uf_desired_at: None,
            tz: chrono_tz::Asia::Novosibirsk,
            simple_mode: false,
        }
    }
}

impl Mapping {
    /// `BOT_BITRIX24_SOURCE_ID`, `BOT_BITRIX24_UF_CHANNEL`, `BOT_BITRIX24_UF_DESIRED_AT`.
    pub fn from_env() -> Result<Mapping, CrmError> {
        let mut m = Mapping::default();
        if let Ok(s) = std::env::var("BOT_BITRIX24_SOURCE_ID") {
            let ok = !s.is_empty()
                && s.len() <= 50
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                return Err(CrmError::Config(format!(
                    "BOT_BITRIX24_SOURCE_ID={s:?}: expected up to 50 Latin letters, digits, - or _"
                )));
            }
            m.source_id = s.to_ascii_uppercase();
        }
        for (name, slot) in [
            ("BOT_BITRIX24_UF_CHANNEL", &mut m.uf_channel),
            ("BOT_BITRIX24_UF_DESIRED_AT", &mut m.uf_desired_at),
        ] {
            if let Ok(v) = std::env::var(name) {
                let ok = v.starts_with("UF_CRM_")
                    && v.len() > 7
                    && v.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                if !ok {
                    return Err(CrmError::Config(format!(
                        "{name}={v:?}: expected a custom field code like UF_CRM_CHANNEL"
                    )));
                }
                *slot = Some(v);
            }
        }
        Ok(m)
    }
}

/// The ways a Russian number is commonly written, for `crm.duplicate.findbycomm` (matching
/// depends on the written form). At most [`FINDBYCOMM_MAX`] values, E.164 first.
pub fn phone_variants(e164: &str) -> Vec<String> {
    let mut v = vec![e164.to_string()];
    let digits: String = e164.chars().filter(char::is_ascii_digit).collect();
    v.push(digits.clone());
    if let Some(n) = digits
        .strip_prefix('7')
        .filter(|n| n.len() == 10 && e164.starts_with("+7"))
    {
        let (a, b, c, d) = (&n[0..3], &n[3..6], &n[6..8], &n[8..10]);
        for p in ["+7", "8", "7"] {
            v.push(format!("{p}{n}"));
            v.push(format!("{p} ({a}) {b}-{c}-{d}"));
            v.push(format!("{p}({a}){b}-{c}-{d}"));
            v.push(format!("{p} {a} {b}-{c}-{d}"));
            v.push(format!("{p} {a} {b} {c} {d}"));
            v.push(format!("{p}-{a}-{b}-{c}-{d}"));
        }
        v.push(n.to_string());
    }
    let mut seen = HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v.truncate(FINDBYCOMM_MAX);
    v
}

/// What happened to one lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// A new lead (id None in a dry run).
    Created { id: Option<u64> },
    /// An existing lead was found (same phone, e-mail or our id) and updated.
    Updated { id: u64 },
    /// Not sent: the input is invalid.
    Skipped { reason: String },
    /// Sent but refused, or the portal stayed unavailable.
    Failed { error: String },
}

impl Outcome {
    /// The portal's lead id, when the lead is there.
    pub fn lead_id(&self) -> Option<u64> {
        match self {
            Outcome::Created { id } => *id,
            Outcome::Updated { id } => Some(*id),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Created { .. } => "created",
            Outcome::Updated { .. } => "updated",
            Outcome::Skipped { .. } => "skipped",
            Outcome::Failed { .. } => "failed",
        }
    }
}

/// Counts of a finished sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub created: usize,
    pub updated: usize,
    pub skipped: usize,
    pub failed: usize,
}

impl SyncReport {
    pub fn of(outcomes: &[Outcome]) -> SyncReport {
        let mut r = SyncReport::default();
        for o in outcomes {
            match o {
                Outcome::Created { .. } => r.created += 1,
                Outcome::Updated { .. } => r.updated += 1,
                Outcome::Skipped { .. } => r.skipped += 1,
                Outcome::Failed { .. } => r.failed += 1,
            }
        }
        r
    }
}

/// Whether our source was there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    Existed,
    Registered,
    /// Dry run: it would be registered.
    Missing,
}

/// Make sure `SOURCE_ID` exists in the SOURCE directory: list, add when missing, and take
/// "already exists" (a concurrent setup) as success.
pub async fn ensure_source(
    client: &Bitrix24,
    m: &Mapping,
    dry_run: bool,
) -> Result<SourceState, CrmError> {
    let list = client
        .call(
            "crm.status.list",
            &json!({"filter": {"ENTITY_ID": "SOURCE"}, "order": {"SORT": "ASC"}}),
            Retry::Safe,
        )
        .await?;
    let exists = list.result.as_array().is_some_and(|items| {
        items.iter().any(|i| {
            i.get("STATUS_ID")
                .and_then(Value::as_str)
                .is_some_and(|s| s.eq_ignore_ascii_case(&m.source_id))
        })
    });
    if exists {
        return Ok(SourceState::Existed);
    }
    if dry_run {
        return Ok(SourceState::Missing);
    }
    let add = client
        .call(
            "crm.status.add",
            &json!({"fields": {"ENTITY_ID": "SOURCE", "STATUS_ID": m.source_id, "NAME": m.source_name, "SORT": 500}}),
            // Safe to resend: a second add of the same id is refused as "already exists".
            Retry::Safe,
        )
        .await;
    match add {
        Ok(_) => Ok(SourceState::Registered),
        Err(CrmError::Api { error, .. }) if error.is_already_exists() => Ok(SourceState::Existed),
        Err(e) => Err(e),
    }
}

/// Read the portal's CRM mode (`crm.settings.mode.get`: 1 classic, 2 simple) into `m`.
pub async fn detect_mode(client: &Bitrix24, m: &mut Mapping) -> Result<bool, CrmError> {
    let answer = client
        .call("crm.settings.mode.get", &json!({}), Retry::Safe)
        .await?;
    m.simple_mode = id(&answer.result) == Some(2);
    Ok(m.simple_mode)
}

/// The deals our leads became (simple mode, or a robot converted them): lead id → deal id.
pub async fn follow_deals(
    client: &Bitrix24,
    lead_ids: &[u64],
) -> Result<HashMap<u64, u64>, CrmError> {
    let mut out = HashMap::new();
    for chunk in lead_ids.chunks(BATCH_MAX) {
        let commands: Vec<Command> = chunk
            .iter()
            .map(|lead| Command {
                label: format!("deal{lead}"),
                method: "crm.deal.list".into(),
                params: json!({"filter": {"LEAD_ID": lead}, "select": ["ID", "LEAD_ID"], "order": {"ID": "ASC"}}),
            })
            .collect();
        let answer = client.batch(&commands, Retry::Safe).await?;
        for lead in chunk {
            let deal = answer
                .results
                .get(&format!("deal{lead}"))
                .and_then(Value::as_array)
                .and_then(|rows| rows.iter().filter_map(|r| r.get("ID").and_then(id)).min());
            if let Some(deal) = deal {
                out.insert(*lead, deal);
            }
        }
    }
    Ok(out)
}

/// A booking change to show on the lead it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct BookingOnLead {
    /// ORIGIN_ID of the client's lead.
    pub lead_origin_id: String,
    pub booking_id: String,
    pub change: BookingChange,
    pub service: String,
    pub start: DateTime<Utc>,
    pub staff: String,
}

/// Update the leads of bookings: TITLE and STATUS_DESCRIPTION say what is booked and when.
/// Per chunk of [`BATCH_MAX`] bookings one lookup (`crm.lead.list` by ORIGIN_ID) and one batch
/// of updates, in order (a booking made and moved ends up moved). Per booking: `Ok(Some(id))`
/// updated, `Ok(None)` its lead is not in the portal yet (push the lead first, then retry),
/// `Err` a method error of its own. A fatal or whole-call error is the call's `Err`.
pub async fn update_for_bookings(
    client: &Bitrix24,
    m: &Mapping,
    changes: &[BookingOnLead],
) -> Result<Vec<Result<Option<u64>, PortalError>>, CrmError> {
    let mut out = Vec::with_capacity(changes.len());
    for chunk in changes.chunks(BATCH_MAX) {
        let mut origins: Vec<&str> = chunk.iter().map(|b| b.lead_origin_id.as_str()).collect();
        origins.sort_unstable();
        origins.dedup();
        let found = client
            .call(
                "crm.lead.list",
                &json!({
                    "filter": {"ORIGINATOR_ID": m.originator_id, "@ORIGIN_ID": origins},
                    "select": ["ID", "NAME", "ORIGIN_ID"],
                    "order": {"ID": "ASC"},
                }),
                Retry::Safe,
            )
            .await?;
        let mut by_origin: HashMap<String, (u64, String)> = HashMap::new();
        for row in found.result.as_array().into_iter().flatten() {
            let (Some(origin), Some(lead_id)) = (
                row.get("ORIGIN_ID").and_then(Value::as_str),
                row.get("ID").and_then(id),
            ) else {
                continue;
            };
            let name = row.get("NAME").and_then(Value::as_str).unwrap_or("");
            by_origin
                .entry(origin.to_string())
                .or_insert((lead_id, name.to_string()));
        }
        let mut commands = Vec::new();
        for (i, b) in chunk.iter().enumerate() {
            let Some((lead_id, name)) = by_origin.get(&b.lead_origin_id) else {
                continue;
            };
            commands.push(Command {
                label: format!("bk{i:05}"),
                method: "crm.lead.update".into(),
                params: json!({"id": lead_id, "fields": b.fields(m, name), "params": {"REGISTER_SONET_EVENT": "Y"}}),
            });
        }
        let answer = if commands.is_empty() {
            BatchAnswer::default()
        } else {
            // An update repeated is the same update.
            client.batch(&commands, Retry::Safe).await?
        };
        for (i, b) in chunk.iter().enumerate() {
            let Some((lead_id, _)) = by_origin.get(&b.lead_origin_id) else {
                out.push(Ok(None));
                continue;
            };
            let label = format!("bk{i:05}");
            out.push(
                match (answer.errors.get(&label), answer.results.get(&label)) {
                    (Some(e), _) => {
                        let err = classify_item("crm.lead.update", e.clone());
                        if err.is_fatal() {
                            return Err(err);
                        }
                        Err(e.clone())
                    }
                    (None, Some(_)) => Ok(Some(*lead_id)),
                    (None, None) => Err(PortalError {
                        code: String::new(),
                        description: "the batch did not run this command".into(),
                        status: 0,
                    }),
                },
            );
        }
    }
    Ok(out)
}

impl BookingOnLead {
    /// The fields of the update of lead `name`.
    fn fields(&self, m: &Mapping, name: &str) -> Map<String, Value> {
        let when = self.start.with_timezone(&m.tz).format("%d.%m %H:%M");
        let what = match self.change {
            BookingChange::Created => "записан(а)",
            BookingChange::Moved => "запись перенесена",
            BookingChange::Cancelled => "запись отменена",
            BookingChange::Confirmed => "запись подтверждена",
            BookingChange::Completed => "визит состоялся",
            BookingChange::NoShow => "клиент не пришёл",
        };
        let mut fields = Map::new();
        fields.insert(
            "TITLE".into(),
            format!("{} на {when} — {name}", self.service)
                .trim_end_matches(" — ")
                .into(),
        );
        fields.insert(
            "STATUS_DESCRIPTION".into(),
            format!(
                "{what}: {} {when}, мастер {}, запись № {}",
                self.service, self.staff, self.booking_id
            )
            .into(),
        );
        if let Some(uf) = &m.uf_desired_at {
            fields.insert(
                uf.clone(),
                self.start.with_timezone(&m.tz).to_rfc3339().into(),
            );
        }
        fields
    }
}

/// The ORIGIN_ID of our lead `id` in the portal.
pub fn origin_of_lead(id: i64) -> String {
    format!("lead-{id}")
}

/// Our lead's id from an ORIGIN_ID written by [`origin_of_lead`].
pub fn lead_of_origin(origin: &str) -> Option<i64> {
    origin
        .strip_prefix("lead-")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
}

/// Read the CRM mode, then make sure our lead source exists (see [`detect_mode`],
/// [`ensure_source`]): what every push does first.
pub async fn prepare(
    client: &Bitrix24,
    m: &mut Mapping,
    dry_run: bool,
) -> Result<SourceState, CrmError> {
    detect_mode(client, m).await?;
    ensure_source(client, m, dry_run).await
}

/// Leads per chunk: one batch slot is the ORIGIN_ID lookup.
const CHUNK: usize = BATCH_MAX - 1;
/// Times a lead is looked up again after a write batch of unknown fate.
const MAX_ROUNDS: u32 = 4;

/// Push `leads` (ensure the source first with [`ensure_source`]). Returns one outcome per lead
/// in order. A fatal error stops everything; other failures are per lead.
pub async fn sync(
    client: &Bitrix24,
    m: &Mapping,
    leads: &[CrmLead],
    dry_run: bool,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Outcome>, CrmError> {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; leads.len()];
    let mut rounds = vec![0u32; leads.len()];
    let mut queue: VecDeque<usize> = (0..leads.len()).collect();
    let mut done = 0usize;
    while !queue.is_empty() {
        let mut chunk = Vec::new();
        let mut taken: HashSet<String> = HashSet::new();
        let mut later = VecDeque::new();
        while let Some(i) = queue.pop_front() {
            let keys = leads[i].keys();
            if chunk.len() >= CHUNK || keys.iter().any(|k| taken.contains(k)) {
                later.push_back(i);
            } else {
                taken.extend(keys);
                chunk.push(i);
            }
        }
        queue = later;
        let found = match lookup(client, m, leads, &chunk).await {
            Ok(f) => f,
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                for &i in &chunk {
                    outcomes[i] = Some(Outcome::Failed {
                        error: e.to_string(),
                    });
                }
                done += chunk.len();
                progress(done);
                continue;
            }
        };
        let mut commands = Vec::new();
        for &i in &chunk {
            match found
                .get(&i)
                .cloned()
                .unwrap_or_else(|| Ok(Found::default()))
            {
                Err(e) => {
                    outcomes[i] = Some(Outcome::Failed {
                        error: e.to_string(),
                    })
                }
                Ok(f) => {
                    let mut fields = leads[i].fields(m);
                    if let Some(lead_id) = f.lead {
                        if dry_run {
                            outcomes[i] = Some(Outcome::Updated { id: lead_id });
                            continue;
                        }
                        // Multifield items without an ID are appended: send only a phone or
                        // e-mail the lead does not have yet.
                        if leads[i].phone.as_deref().is_some_and(|p| f.has_phone(p)) {
                            fields.remove("PHONE");
                        }
                        if leads[i].email.as_deref().is_some_and(|e| f.has_email(e)) {
                            fields.remove("EMAIL");
                        }
                        // Found by phone or e-mail: the lead keeps the id it was created with.
                        if f.by_phone || f.by_email {
                            fields.remove("ORIGIN_ID");
                            fields.remove("ORIGINATOR_ID");
                        }
                        commands.push(Command {
                            label: format!("upd{i:05}"),
                            method: "crm.lead.update".into(),
                            params: json!({"id": lead_id, "fields": fields, "params": {"REGISTER_SONET_EVENT": "N"}}),
                        });
                    } else {
                        if dry_run {
                            outcomes[i] = Some(Outcome::Created { id: None });
                            continue;
                        }
                        if let Some(contact) = f.contact {
                            fields.insert("CONTACT_ID".into(), contact.into());
                        }
                        commands.push(Command {
                            label: format!("add{i:05}"),
                            method: "crm.lead.add".into(),
                            params: json!({"fields": fields, "params": {"REGISTER_SONET_EVENT": "Y"}}),
                        });
                    }
                }
            }
        }
        if !commands.is_empty() {
            match client.batch(&commands, Retry::OnlyUnexecuted).await {
                Ok(answer) => {
                    for c in &commands {
                        let Some(i) = c.label.get(3..).and_then(|n| n.parse::<usize>().ok()) else {
                            continue;
                        };
                        let limited = answer
                            .errors
                            .get(&c.label)
                            .is_some_and(|e| e.is_operation_limit() || e.is_query_limit());
                        if limited && rounds[i] + 1 < MAX_ROUNDS * 4 {
                            // The method is paused until its reset; the command did not run.
                            rounds[i] += 1;
                            queue.push_back(i);
                            continue;
                        }
                        outcomes[i] = Some(if let Some(err) = answer.errors.get(&c.label) {
                            Outcome::Failed {
                                error: err.to_string(),
                            }
                        } else if let Some(v) = answer.results.get(&c.label) {
                            if c.method == "crm.lead.add" {
                                match id(v) {
                                    Some(n) => Outcome::Created { id: Some(n) },
                                    None => Outcome::Failed {
                                        error: format!(
                                            "crm.lead.add answered {v} instead of an id"
                                        ),
                                    },
                                }
                            } else {
                                let updated = c.params.get("id").and_then(id).unwrap_or(0);
                                Outcome::Updated { id: updated }
                            }
                        } else {
                            Outcome::Failed {
                                error: "the batch did not run this command".into(),
                            }
                        });
                    }
                }
                Err(e) if e.is_fatal() => return Err(e),
                Err(e @ CrmError::Unavailable { attempts: 0, .. }) => {
                    // Not sent at all (a method paused longer than the caller waits): the
                    // fate is known, nothing to look up.
                    for c in &commands {
                        if let Some(i) = c.label.get(3..).and_then(|n| n.parse::<usize>().ok()) {
                            outcomes[i] = Some(Outcome::Failed {
                                error: e.to_string(),
                            });
                        }
                    }
                }
                Err(e) => {
                    // Unknown fate: some may have landed. Look them up again, never resend.
                    for c in &commands {
                        let Some(i) = c.label.get(3..).and_then(|n| n.parse::<usize>().ok()) else {
                            continue;
                        };
                        rounds[i] += 1;
                        if rounds[i] < MAX_ROUNDS {
                            queue.push_back(i);
                        } else {
                            outcomes[i] = Some(Outcome::Failed {
                                error: e.to_string(),
                            });
                        }
                    }
                }
            }
        }
        done = outcomes.iter().filter(|o| o.is_some()).count();
        progress(done);
    }
    Ok(outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or(Outcome::Failed {
                error: "not sent".into(),
            })
        })
        .collect())
}

/// What the portal already has for one lead.
#[derive(Debug, Clone, Default)]
struct Found {
    lead: Option<u64>,
    contact: Option<u64>,
    by_phone: bool,
    by_email: bool,
    /// The found lead's phones and e-mails as written in the portal.
    phones: Vec<String>,
    emails: Vec<String>,
}

impl Found {
    /// The lead has the phone `e164` in any of its written forms (compared by digits).
    fn has_phone(&self, e164: &str) -> bool {
        let digits = |s: &str| -> String { s.chars().filter(char::is_ascii_digit).collect() };
        let ours: HashSet<String> = phone_variants(e164).iter().map(|v| digits(v)).collect();
        self.phones.iter().any(|p| ours.contains(&digits(p)))
    }

    /// The lead has the e-mail `email` (case aside).
    fn has_email(&self, email: &str) -> bool {
        let email = email.trim().to_lowercase();
        self.emails.iter().any(|e| e.trim().to_lowercase() == email)
    }
}

/// The PHONE and EMAIL values of the leads `ids` (at most one page: [`BATCH_MAX`]), for an
/// update that must not append what a lead has already.
async fn multifields(
    client: &Bitrix24,
    ids: &[u64],
) -> Result<HashMap<u64, (Vec<String>, Vec<String>)>, CrmError> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let answer = client
        .call(
            "crm.lead.list",
            &json!({
                "filter": {"@ID": ids},
                "select": ["ID", "PHONE", "EMAIL"],
                "order": {"ID": "ASC"},
            }),
            Retry::Safe,
        )
        .await?;
    let values = |row: &Value, field: &str| -> Vec<String> {
        row.get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|item| item.get("VALUE").and_then(Value::as_str))
            .map(str::to_string)
            .collect()
    };
    for row in answer.result.as_array().into_iter().flatten() {
        if let Some(lead) = row.get("ID").and_then(id) {
            out.insert(lead, (values(row, "PHONE"), values(row, "EMAIL")));
        }
    }
    Ok(out)
}

/// One batch: the chunk's ORIGIN_IDs in one `crm.lead.list`, and one `findbycomm` per lead;
/// then one `crm.lead.list` for the phones and e-mails of the leads found.
async fn lookup(
    client: &Bitrix24,
    m: &Mapping,
    leads: &[CrmLead],
    chunk: &[usize],
) -> Result<HashMap<usize, Result<Found, PortalError>>, CrmError> {
    let mut commands = vec![Command {
        label: "origin".into(),
        method: "crm.lead.list".into(),
        params: json!({
            "filter": {
                "ORIGINATOR_ID": m.originator_id,
                "@ORIGIN_ID": chunk.iter().map(|&i| leads[i].origin_id.clone()).collect::<Vec<_>>(),
            },
            "select": ["ID", "ORIGIN_ID"],
            "order": {"ID": "ASC"},
        }),
    }];
    for &i in chunk {
        let lead = &leads[i];
        let (kind, values) = match (&lead.phone, &lead.email) {
            (Some(p), _) => ("PHONE", phone_variants(p)),
            (None, Some(e)) => ("EMAIL", vec![e.clone()]),
            (None, None) => continue,
        };
        commands.push(Command {
            label: format!("dup{i:05}"),
            method: "crm.duplicate.findbycomm".into(),
            params: json!({"type": kind, "values": values}),
        });
    }
    let answer = client.batch(&commands, Retry::Safe).await?;
    let mut by_origin: HashMap<String, u64> = HashMap::new();
    match (answer.results.get("origin"), answer.errors.get("origin")) {
        (_, Some(e)) => {
            return Err(classify_item("crm.lead.list", e.clone()));
        }
        (Some(Value::Array(rows)), None) => {
            for row in rows {
                if let (Some(o), Some(n)) = (
                    row.get("ORIGIN_ID").and_then(Value::as_str),
                    row.get("ID").and_then(id),
                ) {
                    by_origin.entry(o.to_string()).or_insert(n);
                }
            }
        }
        _ => {}
    }
    let mut out = HashMap::new();
    for &i in chunk {
        let lead = &leads[i];
        let label = format!("dup{i:05}");
        let mut f = Found::default();
        if let Some(e) = answer.errors.get(&label) {
            let err = classify_item("crm.duplicate.findbycomm", e.clone());
            if err.is_fatal() {
                return Err(err);
            }
            out.insert(i, Err(e.clone()));
            continue;
        }
        if let Some(v) = answer.results.get(&label) {
            let hits = object_or_empty(Some(v)).unwrap_or_default();
            let min_of = |key: &str| {
                hits.get(key)
                    .and_then(Value::as_array)
                    .and_then(|ids| ids.iter().filter_map(id).min())
            };
            f.lead = min_of("LEAD");
            f.contact = min_of("CONTACT");
            if f.lead.is_some() {
                f.by_phone = lead.phone.is_some();
                f.by_email = lead.phone.is_none();
            }
        }
        if let Some(&n) = by_origin.get(&lead.origin_id)
            && f.lead.is_none()
        {
            f.lead = Some(n);
        }
        out.insert(i, Ok(f));
    }
    let mut found: Vec<u64> = out
        .values()
        .filter_map(|f| f.as_ref().ok().and_then(|f| f.lead))
        .collect();
    found.sort_unstable();
    found.dedup();
    let existing = multifields(client, &found).await?;
    for f in out.values_mut().filter_map(|f| f.as_mut().ok()) {
        if let Some((phones, emails)) = f.lead.and_then(|l| existing.get(&l)) {
            f.phones.clone_from(phones);
            f.emails.clone_from(emails);
        }
    }
    Ok(out)
}

/// A batch item error that is really fatal (scope, access) becomes the sync's error.
fn classify_item(method: &str, error: PortalError) -> CrmError {
    match error.fatal() {
        Some((cause, fix)) => CrmError::Fatal {
            method: method.into(),
            cause: cause.into(),
            fix: fix.into(),
            error: Box::new(error),
        },
        None => CrmError::Api {
            method: method.into(),
            error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_variants_stay_within_the_cap_and_start_with_e164() {
        let v = phone_variants("+79131234567");
        assert!(v.len() <= FINDBYCOMM_MAX);
        assert_eq!(v[0], "+79131234567");
        assert!(v.contains(&"89131234567".to_string()));
        assert!(v.contains(&"8 (913) 123-45-67".to_string()));
        assert_eq!(
            phone_variants("+4930123456"),
            vec!["+4930123456", "4930123456"]
        );
    }

    #[test]
    fn origin_ids_round_trip_and_foreign_ones_are_not_ours() {
        assert_eq!(lead_of_origin(&origin_of_lead(42)), Some(42));
        assert_eq!(lead_of_origin("lead-0"), None);
        assert_eq!(lead_of_origin("csv-12"), None);
        assert_eq!(lead_of_origin("lead-x"), None);
    }

    #[test]
    fn a_contact_name_splits_into_first_name_patronymic_and_surname() {
        let split = |n: &str| {
            let p = PersonName::split(n);
            (p.first, p.patronymic, p.last)
        };
        let s = |v: &str| Some(v.to_string());
        for (name, want) in [
            ("Анна", (s("Анна"), None, None)),
            ("Анна Петрова", (s("Анна"), None, s("Петрова"))),
            ("Анна Сергеевна", (s("Анна"), s("Сергеевна"), None)),
            (
                "Анна Сергеевна Иванова",
                (s("Анна"), s("Сергеевна"), s("Иванова")),
            ),
            ("Пётр Ильич Сидоров", (s("Пётр"), s("Ильич"), s("Сидоров"))),
            ("Гульнара Рашитовна", (s("Гульнара"), s("Рашитовна"), None)),
            (
                "Ольга Кузьминична Орлова",
                (s("Ольга"), s("Кузьминична"), s("Орлова")),
            ),
            (
                "Сергей Петрович Иванов",
                (s("Сергей"), s("Петрович"), s("Иванов")),
            ),
            (
                "анна сергеевна иванова",
                (s("Анна"), s("Сергеевна"), s("Иванова")),
            ),
            ("лиза", (s("Лиза"), None, None)),
            ("анна-мария", (s("Анна-Мария"), None, None)),
            ("Мария Тереза Гомес", (s("Мария"), None, s("Тереза Гомес"))),
            ("Ivan Petrov", (s("Ivan"), None, s("Petrov"))),
            ("  ", (None, None, None)),
        ] {
            assert_eq!(split(name), want, "{name:?}");
        }
    }

    #[test]
    fn fields_name_the_contact_in_three_parts() {
        let lead = CrmLead {
            origin_id: "x-2".into(),
            name: Some("анна сергеевна иванова".into()),
            phone: None,
            email: Some("anna@example.com".into()),
            channel: LeadChannel::Telegram,
            service: None,
            desired_at: None,
            comment: None,
            utm: Vec::new(),
        };
        let f = lead.fields(&Mapping::default());
        assert_eq!(f["NAME"], "Анна");
        assert_eq!(f["SECOND_NAME"], "Сергеевна");
        assert_eq!(f["LAST_NAME"], "Иванова");
        assert_eq!(f["TITLE"], "Заявка из чат-бота — Анна Сергеевна Иванова");
        let first_only = CrmLead {
            name: Some("лиза".into()),
            ..lead
        };
        let f = first_only.fields(&Mapping::default());
        assert_eq!(f["NAME"], "Лиза");
        assert!(!f.contains_key("SECOND_NAME") && !f.contains_key("LAST_NAME"));
    }

    #[test]
    fn fields_carry_source_channel_and_our_ids() {
        let lead = CrmLead {
            origin_id: "x-1".into(),
            name: Some("Анна Петрова".into()),
            phone: Some("+79131234567".into()),
            email: None,
            channel: LeadChannel::Whatsapp,
            service: Some("маникюр".into()),
            desired_at: "2026-11-20T08:00:00Z".parse().ok(),
            comment: None,
            utm: vec![("UTM_SOURCE".into(), "vk_ads".into())],
        };
        let m = Mapping {
            uf_channel: Some("UF_CRM_CHANNEL".into()),
            ..Mapping::default()
        };
        let f = lead.fields(&m);
        assert_eq!(f["TITLE"], "маникюр на 20.11 15:00 — Анна Петрова");
        assert_eq!(f["NAME"], "Анна");
        assert_eq!(f["LAST_NAME"], "Петрова");
        assert_eq!(f["PHONE"][0]["VALUE_TYPE"], "MOBILE");
        assert_eq!(f["SOURCE_ID"], "CHAT_BOT");
        assert_eq!(f["ORIGIN_ID"], "x-1");
        assert_eq!(f["UF_CRM_CHANNEL"], "whatsapp");
        assert_eq!(f["UTM_SOURCE"], "vk_ads");
        assert!(
            f["SOURCE_DESCRIPTION"]
                .as_str()
                .is_some_and(|s| s.contains("WhatsApp"))
        );
    }
}
