//! What Bitrix24 tells us back: lead and deal status for the conversion KPI.
//! - [`parse_event`]: an outgoing-webhook POST (`application/x-www-form-urlencoded`,
//!   `event`, `data[FIELDS][ID]`, `ts`, `auth[application_token]`…) checked against our
//!   application token; the HTTP handler of `bot serve` maps [`EventError`] to 401 / 400;
//! - [`lead_status`]: the status of one lead, fetched after an event (events carry the id only);
//! - [`changed_since`]: reconciliation, because Bitrix24 never redelivers an event: every lead of
//!   ours modified after a moment (`>DATE_MODIFY`), page by page.

use super::bitrix24::{Bitrix24, CrmError, Retry, id};
use super::lead::Mapping;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

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

/// Where a lead of ours stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadStatus {
    pub id: u64,
    pub status_id: String,
    pub origin_id: Option<String>,
    /// Converted to a deal/contact (`STATUS_ID` `CONVERTED`, or semantic `S` = success).
    pub converted: bool,
}

fn status_of(v: &Value) -> Option<LeadStatus> {
    let id = v.get("ID").and_then(id)?;
    let status_id = v
        .get("STATUS_ID")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let semantic = v.get("STATUS_SEMANTIC_ID").and_then(Value::as_str);
    Some(LeadStatus {
        id,
        converted: status_id == "CONVERTED" || semantic == Some("S"),
        origin_id: v
            .get("ORIGIN_ID")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        status_id,
    })
}

/// The status of one lead (after an event).
pub async fn lead_status(client: &Bitrix24, lead_id: u64) -> Result<LeadStatus, CrmError> {
    let answer = client
        .call("crm.lead.get", &json!({"id": lead_id}), Retry::Safe)
        .await?;
    status_of(&answer.result).ok_or_else(|| CrmError::BadResponse {
        method: "crm.lead.get".into(),
        detail: "no ID in the lead".into(),
    })
}

/// Our leads modified after `since`, all pages.
pub async fn changed_since(
    client: &Bitrix24,
    m: &Mapping,
    since: DateTime<Utc>,
) -> Result<Vec<LeadStatus>, CrmError> {
    let mut out = Vec::new();
    let mut start = 0u64;
    loop {
        let answer = client
            .call(
                "crm.lead.list",
                &json!({
                    "filter": {
                        ">DATE_MODIFY": since.with_timezone(&m.tz).to_rfc3339(),
                        "ORIGINATOR_ID": m.originator_id,
                    },
                    "select": ["ID", "STATUS_ID", "STATUS_SEMANTIC_ID", "ORIGIN_ID", "DATE_MODIFY"],
                    "order": {"ID": "ASC"},
                    "start": start,
                }),
                Retry::Safe,
            )
            .await?;
        let rows = answer.result.as_array().cloned().unwrap_or_default();
        out.extend(rows.iter().filter_map(status_of));
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
