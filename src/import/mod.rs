//! `bot import`: chats exported from Telegram Desktop (JSON), WhatsApp («Export chat» text,
//! or its ZIP), Instagram («Download your information» JSON: a folder or the ZIP) and our own
//! CSV, read into the store's import tables as the KPIs' baseline
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
pub mod instagram;
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
    /// WhatsApp «Export chat» text (Android or iOS), or its ZIP.
    Whatsapp,
    /// Instagram «Download your information» messages: a thread folder, the inbox, the
    /// unpacked export, or its ZIP.
    Instagram,
    /// `conversation_id,channel,sender,timestamp,text`.
    Csv,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Telegram => "telegram",
            Format::Whatsapp => "whatsapp",
            Format::Instagram => "instagram",
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
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// One message as read from an export, kept small (a million of them are held at once).
#[derive(Debug, Clone, PartialEq)]
pub struct RawMessage {
    pub chat: u32,
    /// An index into [`Parsed::senders`].
    pub sender: u32,
    pub at: chrono::DateTime<chrono::Utc>,
    pub text: String,
    pub phone: Option<Box<str>>,
    /// The export's own id of the message within its chat (Telegram), which makes the stable
    /// key; without one the key is made from the content.
    pub id: Option<i64>,
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
    /// Who is in a chat beyond those who wrote (Instagram's `participants`): sender indices.
    pub members: Vec<(u32, u32)>,
    /// Everyone who wrote or is present, each once.
    pub senders: Vec<Sender>,
    sender_index: std::collections::HashMap<Sender, u32>,
    pub skipped: Vec<Skipped>,
}

impl Parsed {
    /// The index of `sender` in [`Parsed::senders`], added on first sight.
    pub fn sender(&mut self, sender: Sender) -> u32 {
        if let Some(i) = self.sender_index.get(&sender) {
            return *i;
        }
        let i = self.senders.len() as u32;
        self.senders.push(sender.clone());
        self.sender_index.insert(sender, i);
        i
    }

    /// Who sent message `m`.
    pub fn sender_of(&self, m: &RawMessage) -> &Sender {
        &self.senders[m.sender as usize]
    }
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

/// Read one file or folder (its format given or detected).
pub fn read(
    path: &Path,
    format: Option<Format>,
    tz: chrono_tz::Tz,
) -> Result<(Format, Parsed), ImportError> {
    if path.is_dir() {
        let files = instagram::files_in(path)?;
        return Ok((Format::Instagram, instagram::parse(files, path)?));
    }
    if is_zip(path)? {
        return read_zip(path, tz);
    }
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
        Format::Instagram => {
            let bytes = std::fs::read(path).map_err(|e| ImportError::io(path, e))?;
            let file = instagram::ThreadFile {
                name: path.to_path_buf(),
                thread: path
                    .parent()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                bytes,
            };
            instagram::parse(vec![file], path)?
        }
        Format::Csv => csv::read(path, tz)?,
    };
    Ok((format, parsed))
}

fn is_zip(path: &Path) -> Result<bool, ImportError> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(|e| ImportError::io(path, e))?;
    let n = f.read(&mut magic).map_err(|e| ImportError::io(path, e))?;
    Ok(n == 4 && magic == *b"PK\x03\x04")
}

/// The largest ZIP entry read into memory (a chat text or a thread file).
const MAX_ENTRY: u64 = 512 << 20;

/// A ZIP export: Instagram's thread files, or a WhatsApp chat's text (`_chat.txt` on iOS,
/// `WhatsApp Chat with X.txt` on Android); the chat's title from the entry or the ZIP's name.
fn read_zip(path: &Path, tz: chrono_tz::Tz) -> Result<(Format, Parsed), ImportError> {
    use std::io::Read;
    let unreadable = |message: String| ImportError::Unreadable {
        file: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| ImportError::io(path, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| unreadable(format!("not a ZIP: {e}")))?;
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| unreadable(format!("a file name in the ZIP: {e}")))?;
    let mut read_entry = |name: &str| -> Result<Vec<u8>, ImportError> {
        let entry = zip
            .by_name(name)
            .map_err(|e| unreadable(format!("{name}: {e}")))?;
        let mut bytes = Vec::new();
        entry
            .take(MAX_ENTRY)
            .read_to_end(&mut bytes)
            .map_err(|e| unreadable(format!("{name}: {e}")))?;
        Ok(bytes)
    };
    let threads: Vec<&String> = names
        .iter()
        .filter(|n| instagram::is_thread_file(n))
        .collect();
    if !threads.is_empty() {
        let mut files = Vec::new();
        for name in threads {
            let bytes = read_entry(name)?;
            let thread = name.rsplit_once('/').map_or("", |(d, _)| d).to_string();
            files.push(instagram::ThreadFile {
                name: path.join(name),
                thread,
                bytes,
            });
        }
        return Ok((Format::Instagram, instagram::parse(files, path)?));
    }
    let Some(chat) = names.iter().find(|n| n.ends_with(".txt")) else {
        return Err(unreadable(
            "neither Instagram thread files nor a WhatsApp chat text in the ZIP".into(),
        ));
    };
    let bytes = read_entry(chat)?;
    let text = String::from_utf8(bytes).map_err(|e| ImportError::Malformed {
        file: path.join(chat),
        line: 0,
        column: e.utf8_error().valid_up_to(),
        message: "not UTF-8 text".into(),
    })?;
    let inner = Path::new(chat);
    let title = if inner.file_stem().is_some_and(|s| s == "_chat") {
        whatsapp::title(path)
    } else {
        whatsapp::title(inner)
    };
    Ok((
        Format::Whatsapp,
        whatsapp::parse(&text, &path.join(chat), &title, tz)?,
    ))
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
/// export, or the one sender present in every chat where two sides wrote.
pub fn business_side(files: &[&Parsed], named: &[String]) -> Result<BusinessSide, Ambiguous> {
    let mut per_chat: BTreeMap<(usize, u32), BTreeSet<&Sender>> = BTreeMap::new();
    for (f, p) in files.iter().enumerate() {
        for m in &p.messages {
            per_chat
                .entry((f, m.chat))
                .or_default()
                .insert(p.sender_of(m));
        }
        for (chat, member) in &p.members {
            per_chat
                .entry((f, *chat))
                .or_default()
                .insert(&p.senders[*member as usize]);
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
    // A chat where only one side wrote (a client nobody answered) tells nothing.
    let telling: Vec<&BTreeSet<&Sender>> = open.iter().copied().filter(|s| s.len() > 1).collect();
    let open = if telling.is_empty() { open } else { telling };
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

/// The stored form of a parsed file's messages, in one pass: each with its chat's index, its
/// side and a stable key.
pub fn messages_of<'a>(
    parsed: &'a Parsed,
    side: &'a BusinessSide,
) -> impl Iterator<Item = (usize, ImportMessage)> + 'a {
    // Repeats of the same content (by digest, so a million messages cost little memory).
    let mut seen: std::collections::HashMap<[u8; 16], u32> = std::collections::HashMap::new();
    parsed.messages.iter().map(move |m| {
        let chat = &parsed.chats[m.chat as usize];
        let key = match m.id {
            Some(id) => format!("tg:{}:{id}", chat.chat_key),
            None => {
                let digest = content_digest(chat, parsed.sender_of(m), m);
                let n = seen.entry(digest).or_insert(0);
                *n += 1;
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                format!("{}:{hex}:{n}", chat.format)
            }
        };
        (
            m.chat as usize,
            ImportMessage {
                key,
                side: side.side_of(parsed.sender_of(m)),
                at: m.at,
                // The two separators the report packs messages with never appear in a text.
                text: m.text.replace(['\u{1e}', '\u{1f}'], " "),
                phone: m.phone.as_deref().map(str::to_string),
            },
        )
    })
}

/// What a message is — its chat, instant, sender and text — as 128 bits (the n-th
/// repetition of the same is told apart by the caller).
fn content_digest(chat: &ImportChat, sender: &Sender, m: &RawMessage) -> [u8; 16] {
    let mut h = Sha256::new();
    for part in [
        chat.channel.as_str(),
        chat.chat_key.as_str(),
        &m.at.timestamp_millis().to_string(),
        &format!("{sender:?}"),
        &m.text,
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

#[cfg(test)]
mod tests;
