//! Telegram Desktop's machine-readable JSON export, both shapes: one chat (the root is the
//! chat) and the whole account (`personal_information` names the exporting account — the
//! business — and `chats.list` holds the chats). Read as a stream with serde visitors, so the
//! file is never held as a JSON tree; `\xNN` escapes (which Telegram Desktop writes for control
//! characters and strict parsers refuse) are read as `\u00NN`. Only `personal_chat` chats are
//! client chats; service lines are skipped; `date_unixtime` is the truth, and only files older
//! than mid-2022 fall back to `date`, the exporting machine's wall time, read in `--tz`.

use super::{ImportError, Parsed, RawMessage, Sender, Skipped};
use crate::store::imports::ImportChat;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::io::{BufReader, Read};
use std::path::Path;

/// Read a Telegram export.
pub fn read(path: &Path, tz: chrono_tz::Tz) -> Result<Parsed, ImportError> {
    let file = std::fs::File::open(path).map_err(|e| ImportError::io(path, e))?;
    parse(BufReader::with_capacity(1 << 16, file), path, tz)
}

/// Parse an export from `reader` (named `path` in errors).
pub fn parse(reader: impl Read, path: &Path, tz: chrono_tz::Tz) -> Result<Parsed, ImportError> {
    let mut state = State {
        parsed: Parsed::default(),
        tz,
        path,
    };
    // serde_json reads a byte at a time: the buffer keeps that out of the rewriting reader.
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(
        1 << 16,
        HexEscapes::new(reader),
    ));
    let result = Root(&mut state)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if let Err(e) = result {
        if e.is_io() {
            return Err(ImportError::Unreadable {
                file: path.to_path_buf(),
                message: e.to_string(),
            });
        }
        return Err(ImportError::Malformed {
            file: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: format!("not a Telegram export: {e}"),
        });
    }
    if state.parsed.chats.is_empty() && state.parsed.skipped.is_empty() {
        return Err(ImportError::Unreadable {
            file: path.to_path_buf(),
            message: "no chats: expected a chat export (\"messages\") or a full export \
                      (\"chats\": {\"list\": …})"
                .into(),
        });
    }
    Ok(state.parsed)
}

struct State<'p> {
    parsed: Parsed,
    tz: chrono_tz::Tz,
    path: &'p Path,
}

/// What is known of a chat when its messages start (the export writes `name`, `type`, `id`
/// before `messages`).
#[derive(Default)]
struct Head {
    name: Option<String>,
    kind: Option<String>,
    id: Option<i64>,
    /// The index in `parsed.chats`, once a message was kept.
    index: Option<usize>,
}

struct Root<'a, 'p>(&'a mut State<'p>);

impl<'de> DeserializeSeed<'de> for Root<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Root<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Telegram export object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let state = self.0;
        let mut head = Head::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "personal_information" => {
                    #[derive(Deserialize)]
                    struct Me {
                        user_id: Option<i64>,
                    }
                    let me: Me = map.next_value()?;
                    state.parsed.owner = me.user_id.map(|id| format!("user{id}"));
                }
                "chats" | "left_chats" => map.next_value_seed(ChatList(state))?,
                "name" => head.name = map.next_value()?,
                "type" => head.kind = map.next_value()?,
                "id" => head.id = map.next_value()?,
                "messages" => map.next_value_seed(Messages {
                    state: &mut *state,
                    head: &mut head,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `{"about": …, "list": [chat, …]}`.
struct ChatList<'a, 'p>(&'a mut State<'p>);

impl<'de> DeserializeSeed<'de> for ChatList<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ChatList<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the chats section of a full export")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "list" {
                map.next_value_seed(Chats(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct Chats<'a, 'p>(&'a mut State<'p>);

impl<'de> DeserializeSeed<'de> for Chats<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Chats<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of chats")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Chat(&mut *self.0))?.is_some() {}
        Ok(())
    }
}

struct Chat<'a, 'p>(&'a mut State<'p>);

impl<'de> DeserializeSeed<'de> for Chat<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Chat<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a chat")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut head = Head::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "name" => head.name = map.next_value()?,
                "type" => head.kind = map.next_value()?,
                "id" => head.id = map.next_value()?,
                "messages" => map.next_value_seed(Messages {
                    state: &mut *self.0,
                    head: &mut head,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct Messages<'a, 'p> {
    state: &'a mut State<'p>,
    head: &'a mut Head,
}

impl<'de> DeserializeSeed<'de> for Messages<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Messages<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of messages")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let client_chat = self.head.kind.as_deref() == Some("personal_chat");
        if !client_chat {
            // Groups, channels, bots, saved messages: not client chats.
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        }
        while let Some(m) = seq.next_element::<Message>()? {
            self.state.keep(self.head, m);
        }
        Ok(())
    }
}

/// One message as the export writes it (the fields the KPIs need; the rest is skipped).
#[derive(Deserialize)]
struct Message {
    id: i64,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    date_unixtime: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    from_id: Option<String>,
    #[serde(default)]
    text: Option<Text>,
    #[serde(default)]
    contact_information: Option<ContactCard>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    photo: Option<IgnoredAny>,
    #[serde(default)]
    file: Option<IgnoredAny>,
    #[serde(default)]
    sticker_emoji: Option<String>,
}

#[derive(Deserialize)]
struct ContactCard {
    #[serde(default)]
    phone_number: Option<String>,
}

/// `text`: a string, or an array of strings and entity objects.
#[derive(Deserialize)]
#[serde(untagged)]
enum Text {
    Plain(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Part {
    Plain(String),
    Entity {
        #[serde(default)]
        text: String,
    },
}

impl Text {
    fn flat(self) -> String {
        match self {
            Text::Plain(s) => s,
            Text::Parts(parts) => parts
                .into_iter()
                .map(|p| match p {
                    Part::Plain(s) | Part::Entity { text: s } => s,
                })
                .collect(),
        }
    }
}

impl State<'_> {
    fn keep(&mut self, head: &mut Head, m: Message) {
        if m.kind != "message" {
            // Service lines (calls, pins, joins) and unsupported ones are not messages.
            return;
        }
        let Some(chat_id) = head.id else {
            self.skip(format!("message {} of a chat without an id", m.id));
            return;
        };
        let Some(at) = self.instant(&m) else {
            self.skip(format!(
                "message {} in chat {chat_id}: no readable date_unixtime or date",
                m.id
            ));
            return;
        };
        let Some(from_id) = m.from_id.clone() else {
            self.skip(format!("message {} in chat {chat_id}: no from_id", m.id));
            return;
        };
        let index = *head.index.get_or_insert_with(|| {
            self.parsed.chats.push(ImportChat {
                format: "telegram",
                channel: "telegram".into(),
                chat_key: chat_id.to_string(),
                name: head.name.clone(),
                phone: None,
            });
            self.parsed.chats.len() - 1
        });
        // In E.164, so an erase by phone finds it.
        let phone = m
            .contact_information
            .and_then(|c| c.phone_number)
            .map(|p| crate::nlu::phone::find(&p, None).e164.unwrap_or(p));
        let mut text = m.text.map(Text::flat).unwrap_or_default();
        if text.is_empty() {
            text = placeholder(
                m.media_type.as_deref(),
                m.sticker_emoji.as_deref(),
                &m.photo,
                &m.file,
                phone.is_some(),
            );
        }
        let sender = self.parsed.sender(Sender::Id {
            id: from_id,
            name: m.from.unwrap_or_default(),
        });
        self.parsed.messages.push(RawMessage {
            chat: index as u32,
            sender,
            at,
            text,
            phone: phone.map(String::into_boxed_str),
            id: Some(m.id),
        });
    }

    fn instant(&self, m: &Message) -> Option<DateTime<Utc>> {
        if let Some(unix) = m
            .date_unixtime
            .as_deref()
            .and_then(|s| s.parse::<i64>().ok())
        {
            return DateTime::from_timestamp(unix, 0);
        }
        let local = NaiveDateTime::parse_from_str(m.date.as_deref()?, "%Y-%m-%dT%H:%M:%S").ok()?;
        self.tz
            .from_local_datetime(&local)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    }

    fn skip(&mut self, why: String) {
        self.parsed.skipped.push(Skipped {
            file: self.path.to_path_buf(),
            line: 0,
            why,
        });
    }
}

/// The text of a message that has none: what it carried.
fn placeholder(
    media: Option<&str>,
    sticker: Option<&str>,
    photo: &Option<IgnoredAny>,
    file: &Option<IgnoredAny>,
    contact: bool,
) -> String {
    let what = match media {
        Some("sticker") => {
            return format!(
                "[стикер{}]",
                sticker.map(|e| format!(" {e}")).unwrap_or_default()
            );
        }
        Some("voice_message") => "голосовое сообщение",
        Some("video_message") => "видеосообщение",
        Some("animation") => "GIF",
        Some("video_file") => "видео",
        Some("audio_file") => "аудио",
        _ if contact => "контакт",
        _ if photo.is_some() => "фото",
        _ if file.is_some() => "файл",
        _ => "сообщение без текста",
    };
    format!("[{what}]")
}

/// A reader that turns `\xNN` escapes inside JSON strings into `\u00NN` (Telegram Desktop
/// writes control characters that way). Chunks without a backslash pass through untouched.
struct HexEscapes<R> {
    inner: R,
    /// Bytes produced but not yet handed out, from `start`.
    out: Vec<u8>,
    start: usize,
    raw: Vec<u8>,
    /// The previous chunk ended inside an escape (after an unescaped backslash).
    escaping: bool,
}

impl<R: Read> HexEscapes<R> {
    fn new(inner: R) -> Self {
        HexEscapes {
            inner,
            out: Vec::with_capacity(1 << 16),
            start: 0,
            raw: vec![0; 1 << 16],
            escaping: false,
        }
    }

    /// Read the next chunk into `out`, rewriting the escapes; false at the end.
    fn fill(&mut self) -> std::io::Result<bool> {
        let n = self.inner.read(&mut self.raw)?;
        if n == 0 {
            return Ok(false);
        }
        self.out.clear();
        self.start = 0;
        let raw = &self.raw[..n];
        let mut copied = 0;
        let mut i = 0;
        if self.escaping {
            // The first byte is the escaped one.
            self.escaping = false;
            i = 1;
            if raw[0] == b'x' {
                self.out.extend_from_slice(b"u00");
                copied = 1;
            }
        }
        while let Some(at) = memchr::memchr(b'\\', &raw[i..]) {
            let at = i + at;
            match raw.get(at + 1) {
                None => {
                    // The escaped byte comes with the next chunk.
                    self.escaping = true;
                    i = at + 1;
                }
                Some(b'x') => {
                    self.out.extend_from_slice(&raw[copied..=at]);
                    self.out.extend_from_slice(b"u00");
                    copied = at + 2;
                    i = at + 2;
                }
                Some(_) => i = at + 2,
            }
        }
        self.out.extend_from_slice(&raw[copied..]);
        Ok(true)
    }
}

impl<R: Read> Read for HexEscapes<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.start == self.out.len() {
            if !self.fill()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.out.len() - self.start);
        buf[..n].copy_from_slice(&self.out[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out one byte at a time: escapes split across chunks.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.split_first() {
                Some((b, rest)) if !buf.is_empty() => {
                    buf[0] = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn escapes_split_across_reads_are_rewritten_too() {
        let input = br#"{"a": "x\x01y \\x41 \"\x1f"}"#;
        let mut whole = String::new();
        HexEscapes::new(&input[..])
            .read_to_string(&mut whole)
            .unwrap();
        let mut trickled = String::new();
        HexEscapes::new(Trickle(input))
            .read_to_string(&mut trickled)
            .unwrap();
        assert_eq!(whole, trickled);
    }

    #[test]
    fn hex_escapes_become_unicode_escapes_and_escaped_backslashes_stay() {
        let mut s = String::new();
        HexEscapes::new(&br#"{"a": "x\x01y \\x41 \"\x1f"}"#[..])
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, r#"{"a": "x\u0001y \\x41 \"\u001f"}"#);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["a"], "x\u{1}y \\x41 \"\u{1f}");
    }
}
