//! What Bitrix24 tells us back: lead and deal status for the conversion KPI.
//! - [`parse_event`]: an outgoing-webhook POST (`application/x-www-form-urlencoded`,
//!   `event`, `data[FIELDS][ID]`, `ts`, `auth[application_token]`…) checked against our
//!   application token; the HTTP handler of `bot serve` maps [`EventError`] to 401 / 400;
//! - [`fetch`]: the leads and deals named by events, fetched in batches (events carry the id
//!   only), read into [`CrmObject`]s: status, semantics (in work / converted / junk), whose;
//! - [`changed_since`]: reconciliation, because Bitrix24 never redelivers an event: every lead of
//!   ours (and deal from a lead) modified since the cursor (`>=DATE_MODIFY`), page by page.

use super::bitrix24::{BATCH_MAX, Bitrix24, Command, CrmError, PortalError, Retry, id};
use super::lead::{Mapping, lead_of_origin};
use crate::domain::{CrmEntity, CrmSemantic};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// The CRM objects whose events we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    LeadAdd,
    LeadUpdate,
    LeadDelete,
    DealAdd,
    DealUpdate,
}

impl EventKind {
    fn parse(s: &str) -> Option<EventKind> {
        Some(match s.to_ascii_uppercase().as_str() {
            "ONCRMLEADADD" => EventKind::LeadAdd,
            "ONCRMLEADUPDATE" => EventKind::LeadUpdate,
            "ONCRMLEADDELETE" => EventKind::LeadDelete,
            "ONCRMDEALADD" => EventKind::DealAdd,
            "ONCRMDEALUPDATE" => EventKind::DealUpdate,
            _ => return None,
        })
    }
}

/// One event delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmEvent {
    pub kind: EventKind,
    /// The lead's or deal's id; fetch the object for anything else.
    pub id: u64,
    /// `ts`, unix seconds, when present.
    pub ts: Option<i64>,
    pub domain: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    /// Wrong or missing `auth[application_token]`: answer 401.
    #[error("wrong application token")]
    BadToken,
    /// Not an event we can read: answer 400.
    #[error("malformed event: {0}")]
    Malformed(String),
    /// A well-formed event we do not use: answer 200 and ignore it.
    #[error("event {0} is not used")]
    Ignored(String),
}

/// Read a form-encoded event body and check its token (compared in constant time).
pub fn parse_event(body: &str, app_token: &str) -> Result<CrmEvent, EventError> {
    let mut url = reqwest::Url::parse("http://event.invalid/")
        .map_err(|e| EventError::Malformed(e.to_string()))?;
    url.set_query(Some(body));
    let (mut event, mut id_raw, mut ts, mut token, mut domain) = (None, None, None, None, None);
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "event" => event = Some(v.into_owned()),
            "data[FIELDS][ID]" => id_raw = Some(v.into_owned()),
            "ts" => ts = v.parse::<i64>().ok(),
            "auth[application_token]" => token = Some(v.into_owned()),
            "auth[domain]" => domain = Some(v.into_owned()),
            _ => {}
        }
    }
    let token_ok = !app_token.is_empty()
        && token
            .as_deref()
            .is_some_and(|t| constant_time_eq(t.as_bytes(), app_token.as_bytes()));
    if !token_ok {
        return Err(EventError::BadToken);
    }
    let event = event.ok_or_else(|| EventError::Malformed("no `event`".into()))?;
    let kind = EventKind::parse(&event).ok_or(EventError::Ignored(event))?;
    let id = id_raw
        .as_deref()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| EventError::Malformed("no numeric data[FIELDS][ID]".into()))?;
    Ok(CrmEvent {
        kind,
        id,
        ts,
        domain,
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A lead or deal as read back from the portal: what its status means and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmObject {
    pub entity: CrmEntity,
    pub id: u64,
    /// STATUS_ID of a lead, STAGE_ID of a deal.
    pub status_id: String,
    pub semantic: CrmSemantic,
    pub originator_id: Option<String>,
    pub origin_id: Option<String>,
    /// A deal's LEAD_ID.
    pub lead_id: Option<u64>,
    /// DATE_MODIFY.
    pub modified_at: Option<DateTime<Utc>>,
}

impl CrmObject {
    /// Our lead's id when the object says it is ours (our ORIGINATOR_ID, ORIGIN_ID `lead-N`).
    pub fn our_lead(&self, m: &Mapping) -> Option<i64> {
        if self.originator_id.as_deref() != Some(m.originator_id.as_str()) {
            return None;
        }
        self.origin_id.as_deref().and_then(lead_of_origin)
    }
}

/// The status semantics: `S` success, `F` failure, `P` or empty in process. Without the
/// semantic field, the stock ids say it (`CONVERTED`/`JUNK`, `WON`/`LOSE`, `C1:WON`…).
pub fn semantic_of(semantic_id: Option<&str>, status_id: &str) -> CrmSemantic {
    match semantic_id.map(str::trim) {
        Some("S") => CrmSemantic::Converted,
        Some("F") => CrmSemantic::Junk,
        Some(_) => CrmSemantic::InWork,
        None => {
            let stock = status_id.rsplit(':').next().unwrap_or(status_id);
            match stock {
                "CONVERTED" | "WON" => CrmSemantic::Converted,
                "JUNK" | "LOSE" => CrmSemantic::Junk,
                _ => CrmSemantic::InWork,
            }
        }
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Read a `crm.lead.get`/`crm.deal.get` result or a list row. None without an ID.
pub fn object_of(entity: CrmEntity, v: &Value) -> Option<CrmObject> {
    let (status_key, semantic_key) = match entity {
        CrmEntity::Lead => ("STATUS_ID", "STATUS_SEMANTIC_ID"),
        CrmEntity::Deal => ("STAGE_ID", "STAGE_SEMANTIC_ID"),
    };
    let status_id = text(v, status_key).unwrap_or_default();
    let semantic_id = v.get(semantic_key).and_then(Value::as_str);
    Some(CrmObject {
        entity,
        id: v.get("ID").and_then(id)?,
        semantic: semantic_of(semantic_id, &status_id),
        status_id,
        originator_id: text(v, "ORIGINATOR_ID"),
        origin_id: text(v, "ORIGIN_ID"),
        lead_id: v.get("LEAD_ID").and_then(id).filter(|n| *n > 0),
        modified_at: text(v, "DATE_MODIFY")
            .and_then(|d| DateTime::parse_from_rfc3339(&d).ok())
            .map(|d| d.with_timezone(&Utc)),
    })
}

fn method(entity: CrmEntity, verb: &str) -> String {
    format!("crm.{entity}.{verb}")
}

/// What a fetch found for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Found(CrmObject),
    /// Deleted meanwhile (`Not found`).
    Gone,
    /// Another method error for this object.
    Failed(PortalError),
}

/// Fetch objects by id after their events (events carry the id only): `crm.lead.get` /
/// `crm.deal.get`, up to [`BATCH_MAX`] per batch. A fatal or whole-batch error is `Err`.
pub async fn fetch(
    client: &Bitrix24,
    wanted: &[(CrmEntity, u64)],
) -> Result<HashMap<(CrmEntity, u64), Fetched>, CrmError> {
    let mut out = HashMap::new();
    for chunk in wanted.chunks(BATCH_MAX) {
        let commands: Vec<Command> = chunk
            .iter()
            .map(|(entity, n)| Command {
                label: format!("{entity}{n}"),
                method: method(*entity, "get"),
                params: json!({"id": n}),
            })
            .collect();
        let answer = client.batch(&commands, Retry::Safe).await?;
        for (c, &(entity, n)) in commands.iter().zip(chunk) {
            let fetched = if let Some(e) = answer.errors.get(&c.label) {
                if let Some((cause, fix)) = e.fatal() {
                    return Err(CrmError::Fatal {
                        method: c.method.clone(),
                        cause: cause.into(),
                        fix: fix.into(),
                        error: Box::new(e.clone()),
                    });
                }
                if e.description.eq_ignore_ascii_case("not found") {
                    Fetched::Gone
                } else {
                    Fetched::Failed(e.clone())
                }
            } else {
                match answer
                    .results
                    .get(&c.label)
                    .and_then(|v| object_of(entity, v))
                {
                    Some(o) => Fetched::Found(o),
                    None => Fetched::Failed(PortalError {
                        code: String::new(),
                        description: format!("{} answered without an ID", c.method),
                        status: 0,
                    }),
                }
            };
            out.insert((entity, n), fetched);
        }
    }
    Ok(out)
}

/// Objects modified at or after `since` (all of them without a cursor), every page:
/// our leads (by ORIGINATOR_ID), or deals that came from a lead (matched to ours by the
/// caller). `>=` rather than `>`: DATE_MODIFY has whole seconds, and a change in the same
/// second as the cursor must not be lost; reading one object twice changes nothing.
pub async fn changed_since(
    client: &Bitrix24,
    m: &Mapping,
    entity: CrmEntity,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<CrmObject>, CrmError> {
    let mut filter = Map::new();
    if let Some(since) = since {
        filter.insert(
            ">=DATE_MODIFY".into(),
            since.with_timezone(&m.tz).to_rfc3339().into(),
        );
    }
    let select = match entity {
        CrmEntity::Lead => {
            filter.insert("ORIGINATOR_ID".into(), m.originator_id.clone().into());
            json!([
                "ID",
                "STATUS_ID",
                "STATUS_SEMANTIC_ID",
                "ORIGINATOR_ID",
                "ORIGIN_ID",
                "DATE_MODIFY"
            ])
        }
        CrmEntity::Deal => {
            filter.insert(">LEAD_ID".into(), 0.into());
            json!([
                "ID",
                "LEAD_ID",
                "STAGE_ID",
                "STAGE_SEMANTIC_ID",
                "ORIGINATOR_ID",
                "ORIGIN_ID",
                "DATE_MODIFY"
            ])
        }
    };
    let mut out = Vec::new();
    let mut start = 0u64;
    loop {
        let answer = client
            .call(
                &method(entity, "list"),
                &json!({"filter": filter, "select": select, "order": {"ID": "ASC"}, "start": start}),
                Retry::Safe,
            )
            .await?;
        let Some(rows) = answer.result.as_array() else {
            return Err(CrmError::BadResponse {
                method: method(entity, "list"),
                detail: format!("expected a list, got {}", answer.result),
            });
        };
        out.extend(rows.iter().filter_map(|r| object_of(entity, r)));
        match answer.next {
            Some(next) if next > start && !rows.is_empty() => start = next,
            _ => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "event=ONCRMLEADUPDATE&data%5BFIELDS%5D%5BID%5D=42&ts=1763600000&auth%5Bdomain%5D=salon.bitrix24.ru&auth%5Bapplication_token%5D=s3cr3t";

    #[test]
    fn a_lead_update_with_the_right_token_is_read() {
        let e = parse_event(BODY, "s3cr3t");
        assert_eq!(
            e,
            Ok(CrmEvent {
                kind: EventKind::LeadUpdate,
                id: 42,
                ts: Some(1_763_600_000),
                domain: Some("salon.bitrix24.ru".into()),
            })
        );
    }

    #[test]
    fn a_wrong_or_missing_token_is_rejected() {
        assert_eq!(parse_event(BODY, "other"), Err(EventError::BadToken));
        assert_eq!(parse_event(BODY, ""), Err(EventError::BadToken));
        assert_eq!(
            parse_event(
                "event=ONCRMLEADUPDATE&data%5BFIELDS%5D%5BID%5D=42",
                "s3cr3t"
            ),
            Err(EventError::BadToken)
        );
    }

    #[test]
    fn semantics_come_from_the_semantic_id_or_the_stock_ids() {
        assert_eq!(semantic_of(Some("S"), "X"), CrmSemantic::Converted);
        assert_eq!(semantic_of(Some("F"), "NEW"), CrmSemantic::Junk);
        assert_eq!(semantic_of(Some(""), "CONVERTED"), CrmSemantic::InWork);
        assert_eq!(semantic_of(None, "C1:WON"), CrmSemantic::Converted);
        assert_eq!(semantic_of(None, "JUNK"), CrmSemantic::Junk);
        assert_eq!(semantic_of(None, "IN_PROCESS"), CrmSemantic::InWork);
    }

    #[test]
    fn objects_are_read_with_string_numbers_and_offsets() {
        let v = json!({"ID": "7", "STAGE_ID": "WON", "STAGE_SEMANTIC_ID": "S", "LEAD_ID": "3",
            "DATE_MODIFY": "2026-11-20T15:00:05+07:00", "ORIGIN_ID": ""});
        let o = object_of(CrmEntity::Deal, &v);
        assert_eq!(
            o.as_ref().map(|o| (o.id, o.lead_id, o.semantic)),
            Some((7, Some(3), CrmSemantic::Converted))
        );
        assert_eq!(
            o.and_then(|o| o.modified_at).map(|d| d.to_rfc3339()),
            Some("2026-11-20T08:00:05+00:00".into())
        );
        assert!(object_of(CrmEntity::Lead, &json!({"STATUS_ID": "NEW"})).is_none());
        let mine = object_of(
            CrmEntity::Lead,
            &json!({"ID": 1, "ORIGINATOR_ID": "bot", "ORIGIN_ID": "lead-12"}),
        );
        let m = Mapping::default();
        assert_eq!(mine.as_ref().and_then(|o| o.our_lead(&m)), Some(12));
        let theirs = object_of(
            CrmEntity::Lead,
            &json!({"ID": 1, "ORIGINATOR_ID": "1c", "ORIGIN_ID": "lead-12"}),
        );
        assert_eq!(theirs.and_then(|o| o.our_lead(&m)), None);
    }

    #[test]
    fn unused_and_malformed_events_are_told_apart() {
        let t = "&auth%5Bapplication_token%5D=t";
        assert!(matches!(
            parse_event(&format!("event=ONCRMCOMPANYADD{t}"), "t"),
            Err(EventError::Ignored(_))
        ));
        assert!(matches!(
            parse_event(
                &format!("event=ONCRMLEADADD&data%5BFIELDS%5D%5BID%5D=x{t}"),
                "t"
            ),
            Err(EventError::Malformed(_))
        ));
    }
}
