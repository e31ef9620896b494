//! Each reader on the fixtures in `fixtures/import/` (written by hand from the reference
//! formats), with what a person reading the file would count.

use super::*;
use crate::kpi::Side;
use chrono::{DateTime, Utc};

const NSK: chrono_tz::Tz = chrono_tz::Asia::Novosibirsk;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/import")
        .join(name)
}

/// The stored form of chat `chat`'s messages.
fn of_chat(p: &Parsed, chat: usize, side: &BusinessSide) -> Vec<ImportMessage> {
    messages_of(p, side)
        .filter(|(c, _)| *c == chat)
        .map(|(_, m)| m)
        .collect()
}

fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&NSK).format("%d.%m %H:%M:%S").to_string()
}

#[test]
fn a_full_telegram_export_keeps_client_chats_and_reads_unix_times() {
    let (format, p) = read(&fixture("telegram-full.json"), None, NSK).unwrap();
    assert_eq!(format, Format::Telegram);
    assert_eq!(p.owner.as_deref(), Some("user5100000001"));
    let names: Vec<_> = p.chats.iter().map(|c| c.name.clone().unwrap()).collect();
    assert_eq!(names, ["Мария Ким", "Игорь"], "the staff group is skipped");
    let maria: Vec<&RawMessage> = p.messages.iter().filter(|m| m.chat == 0).collect();
    assert_eq!(maria.len(), 4, "the missed call is a service line");
    assert_eq!(
        local(maria[0].at),
        "02.12 14:05:33",
        "date_unixtime, not the Moscow `date`"
    );
    assert_eq!(
        maria[1].text, "Записала на пятницу 04.12 в 15:00, ждём!",
        "the text array flattened"
    );
    assert_eq!(maria[2].phone.as_deref(), Some("+79135550142"));
    assert_eq!(maria[2].text, "[контакт]");
    assert_eq!(maria[3].text, "спасибо!", "\\x21 read as \\u0021");
    assert_eq!(maria[0].id, Some(901));
    let igor: Vec<&RawMessage> = p.messages.iter().filter(|m| m.chat == 1).collect();
    assert_eq!(igor[0].text, "[фото]");

    let side = business_side(&[&p], &[]).unwrap();
    let stored: Vec<ImportMessage> = of_chat(&p, 0, &side).into_iter().collect();
    assert_eq!(
        stored[0].key, "tg:6200000002:901",
        "Telegram's own ids make the key"
    );
    let sides: Vec<Side> = stored.iter().map(|m| m.side).collect();
    assert_eq!(
        sides,
        [Side::Client, Side::Business, Side::Client, Side::Client]
    );
}

#[test]
fn a_single_chat_needs_the_business_named_and_says_who_it_could_be() {
    let (_, p) = read(&fixture("telegram-chat.json"), None, NSK).unwrap();
    assert_eq!(p.owner, None);
    let err = business_side(&[&p], &[]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("Лаванда (user5100000009)") && text.contains("Анна Смирнова"),
        "{text}"
    );
    let side = business_side(&[&p], &["лаванда".into()]).unwrap();
    let stored: Vec<ImportMessage> = of_chat(&p, 0, &side).into_iter().collect();
    assert_eq!(stored[1].side, Side::Business);
    let unknown = business_side(&[&p], &["Роза".into()]).unwrap_err();
    assert!(unknown.to_string().contains("Роза"), "{unknown}");
    // With the full export beside it, the one account in every open chat is still unclear:
    // the single chat alone decides nothing, so the name is asked for.
    let (_, full) = read(&fixture("telegram-full.json"), None, NSK).unwrap();
    assert!(business_side(&[&full, &p], &[]).is_err());
}

#[test]
fn an_android_whatsapp_export_in_russian() {
    let path = fixture("WhatsApp Chat with +7 913 000-11-22.txt");
    let (format, p) = read(&path, None, NSK).unwrap();
    assert_eq!(format, Format::Whatsapp);
    assert_eq!(p.chats[0].chat_key, "+7 913 000-11-22");
    assert_eq!(p.chats[0].phone.as_deref(), Some("+79130001122"));
    let texts: Vec<&str> = p.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "можно на маникюр в пятницу?\nесть окошко после 15?",
            "<Без медиафайлов>",
            "Записала вас на пятницу 04.12 в 15:00, ждём!",
            "Данное сообщение удалено",
        ],
        "the encryption notice is not a message; the placeholders are"
    );
    assert_eq!(local(p.messages[0].at), "02.12 14:05:00");
    let side = business_side(&[&p], &["Студия Роза".into()]).unwrap();
    let sides: Vec<Side> = of_chat(&p, 0, &side).into_iter().map(|m| m.side).collect();
    assert_eq!(
        sides,
        [Side::Client, Side::Client, Side::Business, Side::Client]
    );
}

#[test]
fn an_ios_whatsapp_export_with_crlf_marks_and_a_notice_under_a_name() {
    let (_, p) = read(&fixture("WhatsApp Chat - Мария Ким.txt"), None, NSK).unwrap();
    assert_eq!(p.chats[0].chat_key, "Мария Ким");
    let texts: Vec<&str> = p.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "можно на маникюр в пятницу?",
            "изображение отсутствует",
            "Записала вас на пятницу 04.12 в 15:00\nдо встречи!",
        ]
    );
    assert_eq!(local(p.messages[0].at), "02.12 14:05:33");
    assert_eq!(p.skipped.len(), 1, "{:?}", p.skipped);
    assert_eq!(p.skipped[0].line, 1);
}

#[test]
fn an_english_android_export_with_a_twelve_hour_clock_and_month_first() {
    let (_, p) = read(&fixture("WhatsApp Chat with Maria.txt"), None, NSK).unwrap();
    assert_eq!(p.messages.len(), 3);
    assert_eq!(local(p.messages[0].at), "02.12 14:05:00");
    assert_eq!(
        local(p.messages[2].at),
        "13.12 11:59:00",
        "12/13 settles the order"
    );
    let side = business_side(&[&p], &["Studio Rosa".into()]).unwrap();
    assert_eq!(
        of_chat(&p, 0, &side).into_iter().nth(1).map(|m| m.side),
        Some(Side::Business)
    );
}

#[test]
fn the_csv_reads_quotes_offsets_and_local_times_and_skips_bad_rows_with_their_line() {
    let (format, p) = read(&fixture("chats.csv"), None, NSK).unwrap();
    assert_eq!(format, Format::Csv);
    assert_eq!(p.chats.len(), 2);
    assert_eq!(p.messages.len(), 4);
    assert_eq!(
        p.messages[2].text,
        "можно на завтра, \"после обеда\"?\nнапишите"
    );
    assert_eq!(
        local(p.messages[2].at),
        "02.12 20:00:00",
        "local time in --tz"
    );
    assert_eq!(local(p.messages[3].at), "03.12 10:00:00", "Z converted");
    let why: Vec<(usize, &str)> = p.skipped.iter().map(|s| (s.line, s.why.as_str())).collect();
    assert_eq!(why.len(), 2, "{why:?}");
    assert_eq!(why[0].0, 6);
    assert!(why[0].1.contains("robot"), "{why:?}");
    assert_eq!(why[1].0, 8);
    assert!(why[1].1.contains("вчера"), "{why:?}");
    let side = business_side(&[&p], &[]).unwrap();
    let sides: Vec<Side> = of_chat(&p, 1, &side).into_iter().map(|m| m.side).collect();
    assert_eq!(sides, [Side::Client, Side::Business]);
}

#[test]
fn malformed_files_name_the_file_and_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("result.json");
    let full = std::fs::read_to_string(fixture("telegram-full.json")).unwrap();
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let err = read(&cut, None, NSK).unwrap_err().to_string();
    assert!(err.starts_with(&cut.display().to_string()), "{err}");
    assert!(err.contains("EOF") || err.contains("end"), "{err}");
    let other = dir.path().join("notes.txt");
    std::fs::write(&other, "просто заметки\nбез дат\n").unwrap();
    let err = read(&other, None, NSK).unwrap_err().to_string();
    assert!(err.contains("--format"), "{err}");
    let err = read(&other, Some(Format::Whatsapp), NSK)
        .unwrap_err()
        .to_string();
    assert!(err.contains(":1:1:"), "{err}");
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "id,who,when\n1,2,3\n").unwrap();
    let err = read(&csv, Some(Format::Csv), NSK).unwrap_err().to_string();
    assert!(err.contains("expected conversation_id,channel"), "{err}");
}

#[test]
fn content_keys_are_stable_and_tell_repeats_apart() {
    let (_, p) = read(
        &fixture("WhatsApp Chat with +7 913 000-11-22.txt"),
        None,
        NSK,
    )
    .unwrap();
    let side = business_side(&[&p], &["Студия Роза".into()]).unwrap();
    let a: Vec<String> = of_chat(&p, 0, &side).into_iter().map(|m| m.key).collect();
    let b: Vec<String> = of_chat(&p, 0, &side).into_iter().map(|m| m.key).collect();
    assert_eq!(a, b);
    let mut twice = p.clone();
    twice.messages.push(p.messages[1].clone());
    let keys: Vec<String> = of_chat(&twice, 0, &side)
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys.len(), 5);
    let unique: std::collections::BTreeSet<&String> = keys.iter().collect();
    assert_eq!(
        unique.len(),
        5,
        "the same text at the same minute twice is two messages"
    );
}

#[test]
fn an_instagram_export_folder_merges_split_threads_and_repairs_the_text() {
    let (format, p) = read(&fixture("instagram"), None, NSK).unwrap();
    assert_eq!(format, Format::Instagram);
    let names: Vec<String> = p.chats.iter().map(|c| c.name.clone().unwrap()).collect();
    assert_eq!(names, ["Аня", "Олег"]);
    assert_eq!(p.chats[0].chat_key, "inbox/anya_17840000000000001");
    let anya: Vec<(String, &str)> = p
        .messages
        .iter()
        .filter(|m| m.chat == 0)
        .map(|m| (local(m.at), m.text.as_str()))
        .collect();
    assert_eq!(
        anya,
        [
            ("02.12 14:05:33".to_string(), "Можно в пятницу на маникюр?"),
            (
                "02.12 14:07:41".to_string(),
                "Да 💅 на маникюр есть 15:00 в пятницу"
            ),
            ("02.12 14:08:20".to_string(), "[фото]"),
            (
                "02.12 14:10:00".to_string(),
                "Записала вас на пятницу 04.12 в 15:00, ждём 💅"
            ),
        ],
        "two files, newest first each, merged in time order; the reaction is no message"
    );
    let oleg = p.messages.iter().filter(|m| m.chat == 1).count();
    assert_eq!(oleg, 1, "the call record is not a message");
    let side = business_side(&[&p], &[]).unwrap();
    let sides: Vec<Side> = of_chat(&p, 0, &side).into_iter().map(|m| m.side).collect();
    assert_eq!(
        sides,
        [Side::Client, Side::Business, Side::Client, Side::Business],
        "«Роза | студия» writes in every thread"
    );
}

#[test]
fn zip_exports_are_read_directly() {
    let (format, zipped) = read(&fixture("instagram-export.zip"), None, NSK).unwrap();
    assert_eq!(format, Format::Instagram);
    let (_, folder) = read(&fixture("instagram"), None, NSK).unwrap();
    assert_eq!(zipped.messages.len(), folder.messages.len());
    assert_eq!(zipped.chats[0].chat_key, folder.chats[0].chat_key);

    let (format, wa) = read(&fixture("WhatsApp Chat - Мария Ким.zip"), None, NSK).unwrap();
    assert_eq!(format, Format::Whatsapp);
    assert_eq!(
        wa.chats[0].chat_key, "Мария Ким",
        "the title from the ZIP's name"
    );
    let (_, txt) = read(&fixture("WhatsApp Chat - Мария Ким.txt"), None, NSK).unwrap();
    assert_eq!(wa.messages, txt.messages);
}
