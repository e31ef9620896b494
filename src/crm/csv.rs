//! The test-lead CSV of `bot crm sync --leads FILE.csv`: a header row with the columns
//! `name,phone,email,channel,service,desired_at,comment,external_id` (any order; optional
//! `utm_source`, `utm_medium`, `utm_campaign`, `utm_content`, `utm_term` columns too), then one
//! lead per row. Every row comes back — a valid lead or the line and field of what is wrong — so
//! nothing is silently lost.

use super::lead::{CrmLead, LeadChannel};
use crate::nlu::phone;
use chrono::{DateTime, Utc};
use std::io::Read;

pub const COLUMNS: [&str; 8] = [
    "name",
    "phone",
    "email",
    "channel",
    "service",
    "desired_at",
    "comment",
    "external_id",
];

/// What is wrong with one row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// One data row: its line in the file and the lead or the reason it is invalid.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: u64,
    pub lead: Result<CrmLead, RowError>,
}

/// The file as a whole is unusable (no header, missing columns).
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct FileError {
    pub line: u64,
    pub message: String,
}

/// Read all rows. Only a missing or bad header fails the whole file.
pub fn read(input: impl Read) -> Result<Vec<Row>, FileError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let header = reader
        .headers()
        .map_err(|e| FileError {
            line: 1,
            message: format!("cannot read the header: {e}"),
        })?
        .clone();
    let index = |name: &str| {
        header
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
    };
    let mut cols = [0usize; 8];
    let mut missing = Vec::new();
    for (slot, name) in cols.iter_mut().zip(COLUMNS) {
        match index(name) {
            Some(i) => *slot = i,
            None => missing.push(name),
        }
    }
    if !missing.is_empty() {
        return Err(FileError {
            line: 1,
            message: format!(
                "missing column(s) {} (expected header {})",
                missing.join(", "),
                COLUMNS.join(",")
            ),
        });
    }
    let utm_cols: Vec<(usize, String)> = [
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_content",
        "utm_term",
    ]
    .iter()
    .filter_map(|name| index(name).map(|i| (i, name.to_ascii_uppercase())))
    .collect();
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut last_line = 1u64;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map(|p| p.line()).unwrap_or(last_line + 1);
                last_line = line;
                if record.iter().all(str::is_empty) {
                    continue;
                }
                let lead = if record.len() != header.len() {
                    Err(RowError {
                        field: "row".into(),
                        message: format!("{} cells, the header has {}", record.len(), header.len()),
                    })
                } else {
                    let cell = |c: usize| record.get(cols[c]).unwrap_or("");
                    parse_row(line, &cell).map(|mut lead| {
                        lead.utm = utm_cols
                            .iter()
                            .filter_map(|(i, field)| {
                                opt(record.get(*i).unwrap_or(""))
                                    .map(|v| (field.clone(), v.chars().take(255).collect()))
                            })
                            .collect();
                        lead
                    })
                };
                rows.push(Row { line, lead });
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(last_line + 1);
                last_line = line;
                rows.push(Row {
                    line,
                    lead: Err(RowError {
                        field: "row".into(),
                        message: format!("unreadable: {e}"),
                    }),
                });
                // A broken quote or encoding can swallow the rest of the file; stop at the
                // first error only when the reader cannot resynchronise.
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
            }
        }
    }
    Ok(rows)
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn err(field: &str, message: impl Into<String>) -> RowError {
    RowError {
        field: field.into(),
        message: message.into(),
    }
}

fn parse_row<'a>(line: u64, cell: &dyn Fn(usize) -> &'a str) -> Result<CrmLead, RowError> {
    let name = opt(cell(0));
    if name.as_ref().is_some_and(|n| n.chars().count() > 100) {
        return Err(err("name", "longer than 100 characters"));
    }
    let phone = match opt(cell(1)) {
        None => None,
        Some(raw) => {
            let found = phone::find(&raw, None);
            let digits = raw.chars().filter(char::is_ascii_digit).count();
            match found.e164 {
                // The whole cell must be the number, not a number somewhere in a sentence.
                Some(e164) if digits <= 12 => Some(e164),
                _ => return Err(err("phone", format!("{raw:?} is not a valid phone number"))),
            }
        }
    };
    let email = match opt(cell(2)) {
        None => None,
        Some(e) if valid_email(&e) => Some(e.to_lowercase()),
        Some(e) => return Err(err("email", format!("{e:?} is not an e-mail address"))),
    };
    if phone.is_none() && email.is_none() {
        return Err(err("phone", "a phone or an e-mail is required"));
    }
    let channel = match opt(cell(3)) {
        None => LeadChannel::Web,
        Some(c) => LeadChannel::parse(&c).ok_or_else(|| {
            err(
                "channel",
                format!("{c:?} is not one of telegram, whatsapp, instagram, web, vk, phone"),
            )
        })?,
    };
    let service = opt(cell(4));
    let desired_at = match opt(cell(5)) {
        None => None,
        Some(d) => Some(
            DateTime::parse_from_rfc3339(&d)
                .map_err(|e| err("desired_at", format!("{d:?} is not RFC 3339 ({e})")))?
                .with_timezone(&Utc),
        ),
    };
    let comment = opt(cell(6));
    let origin_id = match opt(cell(7)) {
        Some(id) if id.chars().count() <= 100 => id,
        Some(_) => return Err(err("external_id", "longer than 100 characters")),
        // Stable across runs and edits of other rows: the contact, not the line.
        None => match (&phone, &email) {
            (Some(p), _) => format!("csv:{p}"),
            (None, Some(e)) => format!("csv:{e}"),
            (None, None) => format!("csv:line{line}"),
        },
    };
    Ok(CrmLead {
        origin_id,
        name,
        phone,
        email,
        channel,
        service,
        desired_at,
        comment,
        utm: Vec::new(),
    })
}

fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(|c| c.is_whitespace() || c == ',' || c == ';')
        && !domain.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_rows_name_line_and_field() {
        let text = "name,phone,email,channel,service,desired_at,comment,external_id\n\
                    Анна,8 913 123-45-67,,telegram,маникюр,2026-11-20T15:00:00+07:00,,a1\n\
                    Борис,,,web,,,,b1\n\
                    Вера,+79131112233,,pigeon,,,,c1\n\
                    Галя,+79131112234,,web,,завтра,,d1\n";
        let rows = read(text.as_bytes()).unwrap_or_default();
        assert_eq!(rows.len(), 4);
        assert!(
            rows[0]
                .lead
                .as_ref()
                .is_ok_and(|l| l.phone.as_deref() == Some("+79131234567"))
        );
        let errs: Vec<(u64, String)> = rows
            .iter()
            .filter_map(|r| r.lead.as_ref().err().map(|e| (r.line, e.field.clone())))
            .collect();
        assert_eq!(
            errs,
            vec![
                (3, "phone".into()),
                (4, "channel".into()),
                (5, "desired_at".into())
            ]
        );
    }

    #[test]
    fn optional_utm_columns_become_utm_fields() {
        let text = "phone,name,email,channel,service,desired_at,comment,external_id,utm_campaign\n\
                    89131234567,Анна,,vk,,,,a1,black_friday\n";
        let rows = read(text.as_bytes()).unwrap_or_default();
        let utm = rows
            .first()
            .and_then(|r| r.lead.as_ref().ok())
            .map(|l| l.utm.clone());
        assert_eq!(
            utm,
            Some(vec![(
                "UTM_CAMPAIGN".to_string(),
                "black_friday".to_string()
            )])
        );
    }

    #[test]
    fn a_missing_column_fails_the_file() {
        assert!(read("name,phone\nA,89131234567\n".as_bytes()).is_err());
    }
}
