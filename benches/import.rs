//! `cargo bench --bench import`: `bot import` of a generated Telegram export (IMPORT_MESSAGES
//! messages, default 1 000 000, in chats of 50) and of a WhatsApp text of as many lines into a
//! fresh SQLite file, then `bot report` over everything stored — each run as the release binary
//! in its own process, timed, with its peak resident memory (getrusage of the children). For
//! scale, Python's `json.load` of the same Telegram file is timed too (it only parses).
//! Goals (issue «bot import and bot report»): import at least half as fast as `json.load`
//! parses, peak RSS under 300 MB, report under 2 s.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: usize = std::env::var("IMPORT_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // IMPORT_DIR keeps the generated files and the database there (to profile a command).
    let temp = tempfile::tempdir().expect("temp dir");
    let kept = std::env::var_os("IMPORT_DIR").map(std::path::PathBuf::from);
    let dir = kept.as_deref().unwrap_or(temp.path());
    let telegram = dir.join("result.json");
    let whatsapp = dir.join("WhatsApp Chat with Студия.txt");
    let t = Instant::now();
    write_telegram(&telegram, n);
    write_whatsapp(&whatsapp, n);
    let mb = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len()) / 1_000_000;
    println!(
        "generated {n} messages: Telegram {} MB, WhatsApp {} MB ({:.1} s)",
        mb(&telegram),
        mb(&whatsapp),
        t.elapsed().as_secs_f64()
    );
    let bot = env!("CARGO_BIN_EXE_bot");
    let db = format!("sqlite://{}", dir.join("bench.db").display());

    let python = run(
        "python3 json.load",
        Command::new("python3").args([
            "-c",
            "import json,sys; json.load(open(sys.argv[1], encoding='utf-8'))",
            &telegram.display().to_string(),
        ]),
    );
    let tg = run(
        "bot import (Telegram)",
        Command::new(bot).args(["import", "--db", &db, &telegram.display().to_string()]),
    );
    println!(
        "  Telegram import / json.load: {:.2}× the time (goal ≤ 2×)",
        tg / python
    );
    run(
        "bot import (WhatsApp)",
        Command::new(bot).args([
            "import",
            "--db",
            &db,
            "--business",
            "Студия",
            &whatsapp.display().to_string(),
        ]),
    );
    run(
        "bot report (all stored)",
        Command::new(bot).args([
            "report",
            "--db",
            &db,
            "--from",
            "2026-01-01",
            "--to",
            "2026-12-31",
            "--format",
            "json",
        ]),
    );
}

/// Run `cmd` to completion; print its time and its own peak resident memory.
#[allow(clippy::zombie_processes)] // reaped by wait4, which also reports its memory
fn run(what: &str, cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 writes the child's status and resource usage into the values we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = t.elapsed().as_secs_f64();
    assert!(
        waited == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{what} failed (status {status})"
    );
    println!(
        "{what}: {secs:.2} s, peak RSS {} MB",
        usage.ru_maxrss / 1024
    );
    secs
}

const TEXTS: [&str; 6] = [
    "Здравствуйте, можно на маникюр в пятницу после обеда?",
    "Добрый день! Есть 15:00 и 17:30, какое время удобно?",
    "давайте в 15, мой номер 8 913 123-45-67",
    "Записала вас на пятницу 04.12 в 15:00, ждём!",
    "спасибо 🙏",
    "а сколько стоит покрытие гель-лаком?",
];

fn write_telegram(path: &Path, n: usize) {
    let mut w = BufWriter::new(std::fs::File::create(path).expect("create"));
    let owner = 5_100_000_001u64;
    write!(
        w,
        "{{\n \"about\": \"\",\n \"personal_information\": {{\"user_id\": {owner}, \"first_name\": \"Студия\"}},\n \"chats\": {{\n  \"about\": \"\",\n  \"list\": ["
    )
    .expect("write");
    let per_chat = 50;
    let chats = n.div_ceil(per_chat);
    let start = 1_767_225_600u64; // 2026-01-01
    let mut id = 0u64;
    for c in 0..chats {
        let client = 6_200_000_000u64 + c as u64;
        if c > 0 {
            w.write_all(b",").expect("write");
        }
        write!(
            w,
            "\n   {{\n    \"name\": \"Клиент {c}\",\n    \"type\": \"personal_chat\",\n    \"id\": {client},\n    \"messages\": ["
        )
        .expect("write");
        for m in 0..per_chat.min(n - c * per_chat) {
            id += 1;
            let from_client = m % 2 == 0;
            let (from, from_id) = if from_client {
                (format!("Клиент {c}"), format!("user{client}"))
            } else {
                ("Студия".to_string(), format!("user{owner}"))
            };
            let at = start + (c as u64 * 600) % 31_000_000 + m as u64 * 90;
            let text = TEXTS[(c + m) % TEXTS.len()];
            if m > 0 {
                w.write_all(b",").expect("write");
            }
            write!(
                w,
                "\n     {{\n      \"id\": {id},\n      \"type\": \"message\",\n      \"date\": \"2026-01-01T00:00:00\",\n      \"date_unixtime\": \"{at}\",\n      \"from\": \"{from}\",\n      \"from_id\": \"{from_id}\",\n      \"text\": \"{text}\",\n      \"text_entities\": [{{\"type\": \"plain\", \"text\": \"{text}\"}}]\n     }}"
            )
            .expect("write");
        }
        w.write_all(b"\n    ]\n   }").expect("write");
    }
    w.write_all(b"\n  ]\n }\n}").expect("write");
    w.flush().expect("flush");
}

fn write_whatsapp(path: &Path, n: usize) {
    let mut w = BufWriter::new(std::fs::File::create(path).expect("create"));
    for i in 0..n {
        let minute = i / 3;
        let (day, hour, min) = (1 + (minute / 1440) % 28, (minute / 60) % 24, minute % 60);
        let month = 1 + (minute / (1440 * 28)) % 12;
        let who = if i % 2 == 0 {
            "+7 913 000-11-22"
        } else {
            "Студия"
        };
        writeln!(
            w,
            "{day:02}.{month:02}.2026, {hour:02}:{min:02} - {who}: {}",
            TEXTS[i % TEXTS.len()]
        )
        .expect("write");
    }
    w.flush().expect("flush");
}
