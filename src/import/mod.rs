//! `bot import`: chats exported from Telegram Desktop (JSON), WhatsApp («Export chat» text)
//! and our own CSV, read into the store's import tables as the KPIs' baseline
//! (`../shared/reference/imports.md` has the formats byte by byte).
//!
//! Each format's reader (`telegram.rs`, `whatsapp.rs`, `csv.rs`) turns a file into
//! [`Parsed`] chats and messages with the sender as the export names them; which sender is the
//! business is decided over all the files of one run ([`business_side`]): the account named by
//! `--business`, or the one present in every chat. Times become UTC here (Telegram's
//! `date_unixtime`; WhatsApp's and CSV's local times in `--tz`). Service lines are dropped by
//! the readers; placeholders (media, stickers, contacts, deleted) stay messages of their sender.
//! Nothing here touches the database: `cli/import.rs` writes what this returns.

pub mod csv;
pub mod telegram;
pub mod whatsapp;

use crate::kpi::Side;
use crate::store::imports::{ImportChat, ImportMessage};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Telegram Desktop «Export chat history» / «Export Telegram data», machine-readable JSON.
    Telegram,
    /// WhatsApp «Export chat» text (Android or iOS).
    Whatsapp,
    /// `conversation_id,channel,sender,timestamp,text`.
    Csv,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Telegram => "telegram",
            Format::Whatsapp => "whatsapp",
            Format::Csv => "csv",
        }
    }
}

/// Why a file cannot be imported at all (nothing of it is stored).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{file}: {source}")]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Malformed {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Unreadable { file: PathBuf, message: String },
}

impl ImportError {
    pub(crate) fn io(file: &Path, source: std::io::Error) -> ImportError {
        ImportError::Io {
            file: file.to_path_buf(),
            source,
        }
    }
}

/// Who sent a message, as the export says it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sender {
    /// An account id (Telegram `user123`), with the name shown.
    Id { id: String, name: String },
    /// A display name (WhatsApp).
    Name(String),
    /// The export says which side (CSV).
    Side(Side),
}

impl Sender {
    /// The name a person would give with `--business`.
    fn names(&self) -> Vec<String> {
        match self {
            Sender::Id { id, name } => vec![id.clone(), name.clone()],
            Sender::Name(n) => vec![n.clone()],
            Sender::Side(_) => Vec::new(),
        }
    }

    /// How a candidate is listed when the business side is ambiguous.
    fn label(&self) -> String {
        match self {
            Sender::Id { id, name } => format!("{name} ({id})"),
            Sender::Name(n) => n.clone(),
            Sender::Side(s) => format!("{s:?}"),
        }
    }
}

/// One message as read from an export.
#[derive(Debug, Clone, PartialEq)]
pub struct RawMessage {
    pub chat: usize,
    pub sender: Sender,
    pub at: chrono::DateTime<chrono::Utc>,
    pub text: String,
    pub phone: Option<String>,
    /// A stable key when the export has ids (Telegram); else one is made from the content.
    pub key: Option<String>,
}

/// A line or record that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub file: PathBuf,
    pub line: usize,
    pub why: String,
}

/// What one file holds.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub chats: Vec<ImportChat>,
    pub messages: Vec<RawMessage>,
    /// The exporting account, when the export names it (Telegram's full export).
    pub owner: Option<String>,
    pub skipped: Vec<Skipped>,
}

/// The format of a file from its first bytes.
pub fn detect(head: &[u8]) -> Option<Format> {
    let text = String::from_utf8_lossy(head);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if text.starts_with('{') {
        return Some(Format::Telegram);
    }
    let first = text.lines().next().unwrap_or_default();
    if first.replace(' ', "").to_lowercase() == "conversation_id,channel,sender,timestamp,text" {
        return Some(Format::Csv);
    }
    if whatsapp::looks_like(text) {
        return Some(Format::Whatsapp);
    }
    None
}

/// Read one file (its format given or detected).
pub fn read(
    path: &Path,
    format: Option<Format>,
    tz: chrono_tz::Tz,
) -> Result<(Format, Parsed), ImportError> {
    let format = match format {
        Some(f) => f,
        None => {
            let mut head = vec![0u8; 4096];
            let n = {
                use std::io::Read;
                let mut f = std::fs::File::open(path).map_err(|e| ImportError::io(path, e))?;
                f.read(&mut head).map_err(|e| ImportError::io(path, e))?
            };
            head.truncate(n);
            detect(&head).ok_or_else(|| ImportError::Unreadable {
                file: path.to_path_buf(),
                message: "not a Telegram JSON export, a WhatsApp chat export or a CSV with the \
                          header conversation_id,channel,sender,timestamp,text (use --format)"
                    .into(),
            })?
        }
    };
    let parsed = match format {
        Format::Telegram => telegram::read(path, tz)?,
        Format::Whatsapp => whatsapp::read(path, tz)?,
        Format::Csv => csv::read(path, tz)?,
    };
    Ok((format, parsed))
}

/// Which senders are the business, over all files of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessSide {
    names: BTreeSet<String>,
}

impl BusinessSide {
    pub fn side_of(&self, sender: &Sender) -> Side {
        match sender {
            Sender::Side(s) => *s,
            other => {
                if other
                    .names()
                    .iter()
                    .any(|n| self.names.contains(&normal(n)))
                {
                    Side::Business
                } else {
                    Side::Client
                }
            }
        }
    }
}

/// A name compared without case and invisible marks.
fn normal(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'))
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_lowercase()
}

/// Why the business side cannot be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ambiguous {
    #[error(
        "which sender is the business? none is in every chat, or several are; say it with --business NAME (candidates: {})",
        .0.join(", ")
    )]
    Candidates(Vec<String>),
    #[error("--business {0:?} wrote in none of the chats (senders: {1})")]
    Unknown(String, String),
}

/// The business side: the `--business` names, the exporting account of a full Telegram
/// export, or the one sender present in every chat.
pub fn business_side(files: &[Parsed], named: &[String]) -> Result<BusinessSide, Ambiguous> {
    let mut per_chat: BTreeMap<(usize, usize), BTreeSet<&Sender>> = BTreeMap::new();
    for (f, p) in files.iter().enumerate() {
        for m in &p.messages {
            per_chat.entry((f, m.chat)).or_default().insert(&m.sender);
        }
    }
    let everyone: BTreeSet<&Sender> = per_chat.values().flatten().copied().collect();
    if !named.is_empty() {
        let names: BTreeSet<String> = named.iter().map(|n| normal(n)).collect();
        for n in named {
            let known = everyone
                .iter()
                .any(|s| s.names().iter().any(|x| normal(x) == normal(n)));
            if !known && !everyone.iter().all(|s| matches!(s, Sender::Side(_))) {
                let all: Vec<String> = everyone.iter().map(|s| s.label()).collect();
                return Err(Ambiguous::Unknown(n.clone(), all.join(", ")));
            }
        }
        return Ok(BusinessSide { names });
    }
    let mut names: BTreeSet<String> = files
        .iter()
        .filter_map(|p| p.owner.as_deref())
        .map(normal)
        .collect();
    // Chats whose business side is not known yet: those of files without an owner.
    let open: Vec<&BTreeSet<&Sender>> = per_chat
        .iter()
        .filter(|((f, _), _)| files[*f].owner.is_none())
        .map(|(_, s)| s)
        .filter(|s| !s.iter().all(|x| matches!(x, Sender::Side(_))))
        .collect();
    if !open.is_empty() {
        let mut common: BTreeSet<&Sender> = open[0].clone();
        for s in &open[1..] {
            common = common.intersection(s).copied().collect();
        }
        if common.len() != 1 {
            let candidates: Vec<String> = if common.is_empty() {
                everyone.iter().map(|s| s.label()).collect()
            } else {
                common.iter().map(|s| s.label()).collect()
            };
            return Err(Ambiguous::Candidates(candidates));
        }
        for s in common {
            names.extend(s.names().iter().map(|n| normal(n)));
        }
    }
    Ok(BusinessSide { names })
}

/// The stored form of one parsed file's messages: each with its side and a stable key.
pub fn messages_of<'a>(
    parsed: &'a Parsed,
    chat: usize,
    side: &'a BusinessSide,
) -> impl Iterator<Item = ImportMessage> + 'a {
    let key_of = &parsed.chats[chat];
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    parsed
        .messages
        .iter()
        .filter(move |m| m.chat == chat)
        .map(move |m| {
            let key = match &m.key {
                Some(k) => k.clone(),
                None => {
                    let base = content_key(key_of, m);
                    let n = seen.entry(base.clone()).or_insert(0);
                    *n += 1;
                    format!("{base}:{n}")
                }
            };
            ImportMessage {
                key,
                side: side.side_of(&m.sender),
                at: m.at,
                text: m.text.clone(),
                phone: m.phone.clone(),
            }
        })
}

/// A key from what a message is: its chat, instant, sender and text (the n-th repetition of
/// the same is told apart by the caller).
fn content_key(chat: &ImportChat, m: &RawMessage) -> String {
    let mut h = Sha256::new();
    for part in [
        chat.channel.as_str(),
        chat.chat_key.as_str(),
        &m.at.timestamp_millis().to_string(),
        &format!("{:?}", m.sender),
        &m.text,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}:{hex}", chat.format)
}

#[cfg(test)]
mod tests;
