//! The store commands through the real binary: `bot db migrate|status`, `bot calendar
//! export`, `bot booking mark`, with `--db` and `DATABASE_URL`.

use crate::store::calendar_export::assert_valid_ics;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use testkit::db::*;

/// The signal that ends a process writing to a closed pipe.
const SIGPIPE: i32 = 13;

fn bot(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bot"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("BOT_PROFILE")
        .output()
        .expect("run bot")
}

fn mark_no_show(db: &TestDb, id: &str, now: &str) -> Output {
    bot(db, &["booking", "mark", id, "no-show", "--now", now])
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn db_status_export_and_mark_through_the_binary(db: &TestDb) {
    let out = bot(db, &["db", "migrate"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out).trim(), "up to date");
    let id = book(db, &engine(), &client(1), &olga(nov(23, 15, 0)), now()).await;

    let out = bot(db, &["db", "status"]);
    assert!(out.status.success(), "{out:?}");
    let s = stdout(&out);
    assert!(s.contains("migration 1 initial: applied"), "{s}");
    assert!(s.contains("bookings 1 (1 active)"), "{s}");

    let out = bot(
        db,
        &[
            "calendar",
            "export",
            "--from",
            "2026-11-23",
            "--to",
            "2026-11-23",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let ics = stdout(&out);
    assert_valid_ics(&ics);
    assert!(ics.contains(&format!("UID:booking-{id}@bot")), "{ics}");
    let out = bot(
        db,
        &[
            "calendar",
            "export",
            "--from",
            "2026-11-24",
            "--to",
            "2026-11-30",
        ],
    );
    assert!(!stdout(&out).contains("BEGIN:VEVENT"), "outside the range");

    let early = mark_no_show(db, id.as_str(), "2026-11-23T15:30:00+07:00");
    assert_eq!(early.status.code(), Some(2), "{early:?}");
    assert!(String::from_utf8_lossy(&early.stderr).contains("mark it after"));
    let out = mark_no_show(db, id.as_str(), "2026-11-23T18:00:00+07:00");
    assert!(out.status.success(), "{out:?}");
    let stored = db.store.booking(&id).await.unwrap().unwrap();
    assert_eq!(stored.booking.status, bot::domain::BookingStatus::NoShow);

    let bad = Command::new(env!("CARGO_BIN_EXE_bot"))
        .args(["db", "status", "--db", "mysql://nope"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

async fn outbox_list_shows_dead_letters_and_retry_requeues_them(db: &TestDb) {
    book(db, &engine(), &client(1), &olga(nov(23, 15, 0)), now()).await;
    let job = db
        .store
        .claim_outbox(
            &[bot::store::JobKind::Send],
            now(),
            chrono::Duration::minutes(5),
            1,
        )
        .await
        .unwrap()
        .remove(0);
    assert!(
        db.store
            .fail_job(job.id, "chat not found", now())
            .await
            .unwrap()
    );

    let out = bot(db, &["outbox", "list", "--dead", "--format", "json"]);
    assert!(out.status.success(), "{out:?}");
    let rows: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    assert_eq!(rows[0]["id"], job.id);
    assert_eq!(rows[0]["state"], "dead");
    assert_eq!(rows[0]["last_error"], "chat not found");

    let out = bot(db, &["outbox", "retry", &job.id.to_string()]);
    assert!(out.status.success(), "{out:?}");
    assert!(db.store.dead_jobs().await.unwrap().is_empty());
    // Retrying what is not a dead letter is an error that names it.
    let out = bot(db, &["outbox", "retry", &job.id.to_string()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&job.id.to_string()));
    let out = bot(db, &["outbox", "list"]);
    assert!(stdout(&out).contains("0 dead"), "{}", stdout(&out));
}

/// `bot args…` whose stdout is a pipe closed before it writes (`bot … | head -0`).
fn bot_into_closed_pipe(db: &TestDb, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bot"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("BOT_PROFILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bot");
    drop(child.stdout.take());
    child.wait_with_output().expect("bot ends")
}

async fn output_to_a_closed_pipe_ends_quietly(db: &TestDb) {
    book(db, &engine(), &client(1), &olga(nov(23, 15, 0)), now()).await;
    for args in [
        &["outbox", "list", "--format", "json"][..],
        &["outbox", "list"],
        &["db", "status"],
        &["calendar", "export", "--from=2026-11-23", "--to=2026-11-23"],
        &["understand", "хочу на маникюр завтра"],
    ] {
        let out = bot_into_closed_pipe(db, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let quiet = out.status.code().is_some_and(|c| c == 0 || c == 141)
            || out.status.signal() == Some(SIGPIPE);
        assert!(quiet, "{args:?} ended with {:?}: {stderr}", out.status);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
}

async fn client_show_and_erase_through_the_binary(db: &TestDb) {
    book(db, &engine(), &client(1), &olga(nov(23, 15, 0)), now()).await;
    let out = bot(
        db,
        &["client", "show", "+7 913 123-45-67", "--format", "json"],
    );
    assert!(out.status.success(), "{out:?}");
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(shown[0]["name"], "Анна", "{shown}");
    assert_eq!(
        shown[0]["bookings"].as_array().map(Vec::len),
        Some(1),
        "{shown}"
    );
    let out = bot(db, &["client", "show", "telegram:1001"]);
    assert!(
        stdout(&out).contains("telegram:1001 · name Анна"),
        "{out:?}"
    );

    // Without --yes nothing changes.
    let out = bot(db, &["client", "erase", "telegram:1001"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        bot(db, &["client", "show", "telegram:1001"])
            .status
            .success()
    );
    let out = bot(db, &["client", "erase", "telegram:1001", "--yes"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("erased: 1 client record(s)"),
        "{out:?}"
    );
    let out = bot(db, &["client", "show", "+79131234567"]);
    assert_eq!(out.status.code(), Some(2), "nobody left: {out:?}");
    let out = bot(db, &["client", "show", "not a phone"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CHANNEL:ID"),
        "{out:?}"
    );
}

async fn operators_through_the_binary(db: &TestDb) {
    let out = bot(db, &["operator", "list"]);
    assert!(stdout(&out).contains("no operators"), "{out:?}");
    let out = bot(db, &["operator", "add", "Ольга"]);
    assert!(out.status.success(), "{out:?}");
    let password = stdout(&out)
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(password.chars().count(), 20, "{out:?}");
    let olga = db.store.check_operator("Ольга", &password).await.unwrap();
    assert_eq!(olga.map(|o| o.name).as_deref(), Some("Ольга"));
    assert!(
        db.store
            .check_operator("Ольга", "wrong")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        bot(db, &["operator", "add", "Ольга"]).status.code(),
        Some(2)
    );

    let out = bot(db, &["operator", "reset", "Ольга"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        db.store
            .check_operator("Ольга", &password)
            .await
            .unwrap()
            .is_none(),
        "the old one stops"
    );
    let out = bot(db, &["operator", "list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list[0]["name"], "Ольга");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("argon2"),
        "no hash is shown"
    );
    assert!(bot(db, &["operator", "remove", "Ольга"]).status.success());
    assert_eq!(
        bot(db, &["operator", "remove", "Ольга"]).status.code(),
        Some(2)
    );
    assert_eq!(bot(db, &["operator", "add", " "]).status.code(), Some(2));
}

both!(
    operators_through_the_binary,
    client_show_and_erase_through_the_binary,
    db_status_export_and_mark_through_the_binary,
    outbox_list_shows_dead_letters_and_retry_requeues_them,
    output_to_a_closed_pipe_ends_quietly,
);
