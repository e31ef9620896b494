//! Instagram «Download your information» messages (JSON): each thread is a folder of
//! `message_1.json`, `message_2.json`, … (newest first, inside and across files), merged and
//! put in time order here. Every string is repaired of Meta's mojibake (each UTF-8 byte written
//! as its own `\u00XX`) before anything compares it. Reactions live inside the message they
//! react to and are not messages; call records are not messages; a photo, a share or an unsent
//! message without text is still a message of its sender. A folder argument (a thread, the
//! inbox, or the whole unpacked export) is searched recursively; the export's ZIP is read
//! directly (`mod.rs`).

use super::{ImportError, Parsed, RawMessage, Sender};
use crate::store::imports::ImportChat;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A thread file: its path (in errors) and its bytes.
pub struct ThreadFile {
    pub name: PathBuf,
    /// The thread's folder, which groups the files of one thread.
    pub thread: String,
    pub bytes: Vec<u8>,
}

/// Whether a path inside an export is a thread file (`…/message_N.json`).
pub fn is_thread_file(name: &str) -> bool {
    let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
    file.starts_with("message_") && file.ends_with(".json")
}

/// The thread files under `dir`, recursively.
pub fn files_in(dir: &Path) -> Result<Vec<ThreadFile>, ImportError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| ImportError::io(&d, e))?;
        for entry in entries {
            let path = entry.map_err(|e| ImportError::io(&d, e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if is_thread_file(&path.to_string_lossy()) {
                let bytes = std::fs::read(&path).map_err(|e| ImportError::io(&path, e))?;
                let thread = path
                    .parent()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.push(ThreadFile {
                    name: path,
                    thread,
                    bytes,
                });
            }
        }
    }
    Ok(out)
}

/// Meta's mojibake undone: a string whose characters are all ≤ U+00FF is taken as the bytes of
/// UTF-8 text; anything else (or bytes that are not UTF-8) is kept as it is.
pub fn repair(s: &str) -> String {
    if s.is_ascii() || s.chars().any(|c| u32::from(c) > 0xFF) {
        return s.to_string();
    }
    let bytes: Vec<u8> = s.chars().map(|c| c as u8).collect();
    String::from_utf8(bytes).unwrap_or_else(|_| s.to_string())
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(repair)
}

/// Parse the files of one or more threads (grouped by their folder).
pub fn parse(files: Vec<ThreadFile>, origin: &Path) -> Result<Parsed, ImportError> {
    if files.is_empty() {
        return Err(ImportError::Unreadable {
            file: origin.to_path_buf(),
            message: "no Instagram thread files (…/messages/inbox/<thread>/message_1.json) \
                      in it"
                .into(),
        });
    }
    let mut threads: BTreeMap<String, Vec<ThreadFile>> = BTreeMap::new();
    for f in files {
        threads.entry(f.thread.clone()).or_default().push(f);
    }
    let mut parsed = Parsed::default();
    for (folder, files) in threads {
        let mut head: Option<(String, String)> = None;
        let mut members: Vec<String> = Vec::new();
        let mut messages: Vec<(i64, String, String)> = Vec::new();
        for f in files {
            let v: Value =
                serde_json::from_slice(&f.bytes).map_err(|e| ImportError::Malformed {
                    file: f.name.clone(),
                    line: e.line(),
                    column: e.column(),
                    message: format!("not an Instagram thread file: {e}"),
                })?;
            let Some(list) = v.get("messages").and_then(Value::as_array) else {
                return Err(ImportError::Malformed {
                    file: f.name.clone(),
                    line: 1,
                    column: 1,
                    message: "no \"messages\" list".into(),
                });
            };
            if head.is_none() {
                members = v
                    .get("participants")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| text(p, "name"))
                    .collect();
                let path = text(&v, "thread_path").unwrap_or_else(|| {
                    folder
                        .rsplit(['/', '\\'])
                        .next()
                        .unwrap_or(&folder)
                        .to_string()
                });
                let title = text(&v, "title").unwrap_or_else(|| path.clone());
                head = Some((path, title));
            }
            for m in list {
                let Some(at) = m.get("timestamp_ms").and_then(Value::as_i64) else {
                    continue;
                };
                let Some(sender) = text(m, "sender_name") else {
                    continue;
                };
                let kind = m.get("type").and_then(Value::as_str).unwrap_or("Generic");
                if m.get("call_duration").is_some()
                    || matches!(kind, "Call" | "Subscribe" | "Unsubscribe")
                {
                    continue;
                }
                messages.push((at, sender, body(m)));
            }
        }
        let Some((key, title)) = head else { continue };
        // Newest first in the files: into time order (ties keep the files' reverse order).
        messages.reverse();
        messages.sort_by_key(|(at, _, _)| *at);
        let index = parsed.chats.len();
        for m in members {
            let member = parsed.sender(Sender::Name(m));
            parsed.members.push((index as u32, member));
        }
        parsed.chats.push(ImportChat {
            format: "instagram",
            channel: "instagram".into(),
            chat_key: key,
            name: Some(title),
            phone: None,
        });
        for (ms, sender, text) in messages {
            let Some(at) = chrono::DateTime::from_timestamp_millis(ms) else {
                continue;
            };
            let sender = parsed.sender(Sender::Name(sender));
            parsed.messages.push(RawMessage {
                chat: index as u32,
                sender,
                at,
                text,
                phone: None,
                id: None,
            });
        }
    }
    Ok(parsed)
}

/// The text of a message, or what it carried when it has none.
fn body(m: &Value) -> String {
    if let Some(c) = text(m, "content").filter(|c| !c.is_empty()) {
        return c;
    }
    let has = |k: &str| m.get(k).is_some_and(|v| !v.is_null());
    if m.get("is_unsent").and_then(Value::as_bool) == Some(true) {
        return "[сообщение удалено]".into();
    }
    if let Some(link) = m
        .get("share")
        .and_then(|s| s.get("link"))
        .and_then(Value::as_str)
    {
        return format!("[ссылка] {link}");
    }
    let what = if has("photos") {
        "фото"
    } else if has("videos") {
        "видео"
    } else if has("audio_files") {
        "аудио"
    } else if has("share") {
        "ссылка"
    } else {
        "вложение"
    };
    format!("[{what}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mojibake_is_repaired_and_clean_text_is_left_alone() {
        assert_eq!(
            repair("\u{d0}\u{94}\u{d0}\u{b0} \u{f0}\u{9f}\u{92}\u{85}"),
            "Да 💅"
        );
        assert_eq!(repair("Да"), "Да", "already right");
        assert_eq!(repair("plain"), "plain");
        assert_eq!(repair("caf\u{e9}"), "caf\u{e9}", "not UTF-8 bytes: kept");
    }
}
