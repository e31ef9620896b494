//! `bot`'s own CSV for chats from anywhere else (a CRM, VK, web chat logs):
//! `conversation_id,channel,sender,timestamp,text` with RFC 4180 quoting; `sender` is `client`
//! or `business`; `timestamp` RFC 3339 with an offset, or a local `YYYY-MM-DD HH:MM[:SS]` read
//! in `--tz`. A row that cannot be read is skipped and reported with its line; a file whose
//! header is not this one is refused.

use super::{ImportError, Parsed, RawMessage, Sender, Skipped};
use crate::kpi::Side;
use crate::store::imports::ImportChat;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use std::collections::HashMap;
use std::path::Path;

const HEADER: [&str; 5] = ["conversation_id", "channel", "sender", "timestamp", "text"];

/// Read a CSV export.
pub fn read(path: &Path, tz: chrono_tz::Tz) -> Result<Parsed, ImportError> {
    let file = std::fs::File::open(path).map_err(|e| ImportError::io(path, e))?;
    parse(file, path, tz)
}

pub fn parse(
    reader: impl std::io::Read,
    path: &Path,
    tz: chrono_tz::Tz,
) -> Result<Parsed, ImportError> {
    let mut r = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(reader);
    let malformed = |line: u64, message: String| ImportError::Malformed {
        file: path.to_path_buf(),
        line: line as usize,
        column: 1,
        message,
    };
    let header = r
        .headers()
        .map_err(|e| malformed(1, e.to_string()))?
        .clone();
    let names: Vec<String> = header
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_lowercase())
        .collect();
    if names != HEADER {
        return Err(malformed(
            1,
            format!(
                "the header is {:?}; expected {}",
                names.join(","),
                HEADER.join(",")
            ),
        ));
    }
    let mut parsed = Parsed::default();
    let mut chats: HashMap<(String, String), usize> = HashMap::new();
    for record in r.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, ::csv::Position::line);
                return Err(malformed(line, e.to_string()));
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        let skip = |parsed: &mut Parsed, why: String| {
            parsed.skipped.push(Skipped {
                file: path.to_path_buf(),
                line,
                why,
            });
        };
        if record.len() != 5 {
            skip(&mut parsed, format!("{} fields, expected 5", record.len()));
            continue;
        }
        let (conversation, channel, sender, timestamp, text) = (
            record[0].trim(),
            record[1].trim().to_lowercase(),
            record[2].trim().to_lowercase(),
            record[3].trim(),
            &record[4],
        );
        if conversation.is_empty() || channel.is_empty() {
            skip(
                &mut parsed,
                "conversation_id and channel must not be empty".into(),
            );
            continue;
        }
        let side = match sender.as_str() {
            "client" => Side::Client,
            "business" => Side::Business,
            other => {
                skip(
                    &mut parsed,
                    format!("sender {other:?}: expected client or business"),
                );
                continue;
            }
        };
        let Some(at) = instant(timestamp, tz) else {
            skip(
                &mut parsed,
                format!(
                    "timestamp {timestamp:?}: expected RFC 3339 (2026-12-02T14:05:00+07:00) or a local YYYY-MM-DD HH:MM[:SS]"
                ),
            );
            continue;
        };
        let key = (channel.clone(), conversation.to_string());
        let chat = *chats.entry(key).or_insert_with(|| {
            parsed.chats.push(ImportChat {
                format: "csv",
                channel: channel.clone(),
                chat_key: conversation.to_string(),
                name: Some(conversation.to_string()),
                phone: None,
            });
            parsed.chats.len() - 1
        });
        let sender = parsed.sender(Sender::Side(side));
        parsed.messages.push(RawMessage {
            chat: chat as u32,
            sender,
            at,
            text: text.to_string(),
            phone: None,
            id: None,
        });
    }
    Ok(parsed)
}

fn instant(s: &str, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .and_then(|local| tz.from_local_datetime(&local).earliest())
    .map(|t| t.with_timezone(&Utc))
}
