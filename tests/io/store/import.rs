//! `bot import` and `bot report` on both backends, as an integrator runs them: the fixtures
//! of `fixtures/import/` imported, imported again (nothing added), a truncated file (nothing
//! stored), a dry run, and the KPIs of the week read back as JSON, table and CSV.

use serde_json::Value;
use testkit::db::TestDb;
use testkit::run_bot;

const WEEK: [&str; 4] = ["--from", "2026-11-30", "--to", "2026-12-06"];

async fn import(db: &TestDb, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["import", "--db", &db.url];
    all.extend_from_slice(args);
    run_bot!(&all, &[]).await
}

async fn report(db: &TestDb, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["report", "--db", &db.url];
    all.extend_from_slice(&WEEK);
    all.extend_from_slice(args);
    run_bot!(&all, &[]).await
}

async fn report_json(db: &TestDb, args: &[&str]) -> Value {
    let mut with = vec!["--format", "json"];
    with.extend_from_slice(args);
    let (code, out, err) = report(db, &with).await;
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

async fn imported_once_reported_and_imported_again_adds_nothing(db: &TestDb) {
    let (code, out, err) = import(db, &["fixtures/import/telegram-full.json"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("telegram"), "{out}");
    let row = out
        .lines()
        .find(|l| l.contains("telegram-full.json"))
        .unwrap_or_default();
    let cells: Vec<&str> = row
        .split('┆')
        .map(|c| c.trim().trim_matches('│').trim())
        .collect();
    // file, format, chats, client, business, new, already stored, skipped
    assert_eq!(cells[2..8], ["2", "4", "1", "5", "0", "0"], "{out}");

    let (code, out, _) = import(db, &["fixtures/import/telegram-full.json"]).await;
    assert_eq!(code, 0);
    let row = out
        .lines()
        .find(|l| l.contains("telegram-full.json"))
        .unwrap_or_default();
    let cells: Vec<&str> = row
        .split('┆')
        .map(|c| c.trim().trim_matches('│').trim())
        .collect();
    assert_eq!(
        cells[5..7],
        ["0", "5"],
        "nothing new the second time: {out}"
    );

    let json = report_json(db, &["--with-personal-data"]).await;
    let k = &json["kpis"]["all"];
    assert_eq!(k["chats"], 2);
    assert_eq!(k["requests"], 2);
    assert_eq!(k["answered"], 1);
    assert_eq!(k["unanswered"], 1);
    // 14:05:33 → 14:06:10 (the missed call in between is not an answer).
    assert_eq!(k["first_response_median_s"], 37.0);
    assert_eq!(k["answered_within_60s"], 0.5);
    assert_eq!(
        k["qualified"], 1,
        "service, Friday and the contact card's phone"
    );
    assert_eq!(k["qualified_pct"], 50.0);
    assert_eq!(k["booked"], 1);
    assert_eq!(k["booking_conversion_pct"], 50.0);
    assert_eq!(k["no_show_rate_pct"], Value::Null);
    assert!(json["kpis"]["by_source"]["telegram-full.json"].is_object());
    assert_eq!(json["period"]["timezone"], "Asia/Novosibirsk");
    let chats: Vec<&str> = json["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["chat"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(chats, ["Мария Ким", "Игорь"]);
    assert_eq!(
        json["requests"][0]["first_client_at"],
        "2026-12-02T07:05:33Z"
    );

    let masked = report_json(db, &[]).await;
    assert_eq!(
        masked["requests"][0]["chat"], "Мария К.",
        "masked by default"
    );

    let (code, table, _) = report(db, &[]).await;
    assert_eq!(code, 0);
    assert!(
        table.contains("50.0 %") && table.contains("37 s"),
        "{table}"
    );
    assert!(!table.contains("Мария"), "no names in the table");
    let (code, csv, _) = report(db, &["--format", "csv"]).await;
    assert_eq!(code, 0);
    assert!(csv.starts_with("scope,chats,"), "{csv}");
    assert!(csv.contains("\nall,2,4,1,2,1,1,37.0,"), "{csv}");
}

async fn whatsapp_exports_find_the_business_in_every_chat_and_csv_keeps_its_sides(db: &TestDb) {
    let (code, out, err) = import(
        db,
        &[
            "fixtures/import/WhatsApp Chat with +7 913 000-11-22.txt",
            "fixtures/import/WhatsApp Chat - Мария Ким.txt",
            "fixtures/import/chats.csv",
            "--label",
            "до бота",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("skipped"),
        "the skipped lines are listed: {out}"
    );
    assert!(out.contains("chats.csv:6:"), "{out}");
    let json = report_json(db, &["--source", "до бота"]).await;
    let k = &json["kpis"]["all"];
    // WhatsApp: two requests on 02.12 (answered in 4 min and in 3 min 29 s, both booked) and
    // the deleted message on 03.12 (unanswered); CSV: vk-101 (answered in 10 min) and vk-102,
    // whose answer came 14 hours later — past the 12-hour gap, so the request is unanswered.
    assert_eq!(k["requests"], 5, "{k}");
    assert_eq!(k["answered"], 3, "{k}");
    assert_eq!(k["booked"], 2, "{k}");
    assert_eq!(k["first_response_median_s"], 240.0, "209, 240, 600 s");
    assert!(json["kpis"]["by_channel"]["vk"].is_object());
    assert!(json["kpis"]["by_channel"]["whatsapp"].is_object());
    assert_eq!(
        json["kpis"]["by_channel"]["whatsapp"]["qualified"], 2,
        "a WhatsApp client's phone comes with the channel: a service and Friday suffice"
    );
}

async fn a_truncated_file_stores_nothing_and_a_dry_run_neither(db: &TestDb) {
    let dir = tempfile::tempdir().expect("dir");
    let cut = dir.path().join("result.json");
    let full = std::fs::read_to_string("fixtures/import/telegram-full.json").expect("fixture");
    std::fs::write(&cut, &full[..full.len() * 2 / 3]).expect("write");
    let cut = cut.display().to_string();
    let (code, _, err) = import(db, &[&cut]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&cut), "{err}");
    assert!(db.store.import_labels().await.expect("labels").is_empty());
    let (code, out, err) = import(db, &["fixtures/import/telegram-full.json", "--dry-run"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("nothing was stored"), "{out}");
    assert!(db.store.import_labels().await.expect("labels").is_empty());
    let (code, _, err) = import(db, &["fixtures/import/telegram-chat.json"]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("--business") && err.contains("Лаванда"),
        "{err}"
    );
}

async fn an_instagram_folder_then_its_zip_adds_the_thread_once(db: &TestDb) {
    let (code, out, err) = import(db, &["fixtures/import/instagram"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("instagram"), "{out}");
    let (code, out, err) = import(db, &["fixtures/import/instagram-export.zip"]).await;
    assert_eq!(code, 0, "{err}");
    let row = out
        .lines()
        .find(|l| l.contains("instagram-export.zip"))
        .unwrap_or_default();
    let cells: Vec<&str> = row
        .split('┆')
        .map(|c| c.trim().trim_matches('│').trim())
        .collect();
    assert_eq!(cells[5..7], ["0", "5"], "the same messages: {out}");
    let json = report_json(db, &[]).await;
    let k = &json["kpis"]["by_channel"]["instagram"];
    assert_eq!(k["requests"], 2, "{k}");
    assert_eq!(k["answered"], 1);
    // «Можно в 15?» at 14:05:33.120, «Да 💅» at 14:07:41.905.
    assert_eq!(k["first_response_median_s"], 128.79);
    assert_eq!(k["booked"], 1);
    assert_eq!(k["qualified"], 0, "no phone was written");
}

async fn an_erase_by_phone_reaches_imported_chats_and_keeps_the_baseline(db: &TestDb) {
    let (code, _, err) = import(
        db,
        &[
            "fixtures/import/telegram-full.json",
            "fixtures/import/WhatsApp Chat with +7 913 000-11-22.txt",
            "--business",
            "Студия Роза",
            "--business",
            "user5100000001",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let before = report_json(db, &["--with-personal-data"]).await;
    for phone in ["+7 913 555-01-42", "89130001122"] {
        let (code, out, err) =
            run_bot!(&["client", "erase", phone, "--yes", "--db", &db.url], &[]).await;
        assert_eq!(code, 0, "{phone}: {err}");
        assert!(out.contains("1 imported chat(s)"), "{phone}: {out}");
    }
    let after = report_json(db, &["--with-personal-data"]).await;
    assert_eq!(
        before["kpis"]["all"]["requests"], after["kpis"]["all"]["requests"],
        "times and sides stay for the baseline"
    );
    let dump = after.to_string();
    for gone in ["Мария Ким", "+7 913 000-11-22", "000-11-22"] {
        assert!(!dump.contains(gone), "{gone} left in {dump}");
    }
    let (code, _, _) = run_bot!(
        &["client", "erase", "+79990000000", "--yes", "--db", &db.url],
        &[]
    )
    .await;
    assert_eq!(code, 2, "nobody has that phone");
}

both!(
    an_erase_by_phone_reaches_imported_chats_and_keeps_the_baseline,
    an_instagram_folder_then_its_zip_adds_the_thread_once,
    imported_once_reported_and_imported_again_adds_nothing,
    whatsapp_exports_find_the_business_in_every_chat_and_csv_keeps_its_sides,
    a_truncated_file_stores_nothing_and_a_dry_run_neither,
);

/// A live conversation in the web chat, then `bot report --source live`: one request,
/// answered at once, qualified without a human, booked.
#[tokio::test]
async fn a_live_booking_shows_in_the_report_beside_an_import() {
    let app = testkit::app::spawn_app().await;
    app.say("anna", "хочу записаться на маникюр").await;
    let offer = app.say("anna", "завтра после обеда").await;
    let slot = testkit::app::payloads(&offer)
        .into_iter()
        .find(|p| p.starts_with("slot:"))
        .expect("a slot");
    app.press("anna", &slot).await;
    app.say("anna", "Меня зовут Марина, мой номер 8 913 123-45-67")
        .await;
    app.say("oleg", "а сколько стоит стрижка?").await;
    let db = app.db_url.clone();
    let (code, _, err) = run_bot!(
        &[
            "import",
            "--db",
            &db,
            "fixtures/import/chats.csv",
            "--label",
            "vk"
        ],
        &[]
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run_bot!(
        &[
            "report",
            "--db",
            &db,
            "--from",
            "2026-11-16",
            "--to",
            "2026-12-06",
            "--format",
            "json",
            "--now",
            "2026-11-20T06:00:00Z",
        ],
        &[]
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let json: Value = serde_json::from_str(&out).expect("JSON");
    let live = &json["kpis"]["by_source"]["live"];
    assert_eq!(live["requests"], 2, "{live}");
    assert_eq!(live["answered"], 2);
    assert_eq!(live["answered_within_60s"], 1.0);
    assert_eq!(live["qualified"], 1);
    assert_eq!(live["qualified_without_human"], 1);
    assert_eq!(live["booked"], 1);
    assert_eq!(
        live["unmarked_past_bookings"], 0,
        "the visit is still ahead"
    );
    assert_eq!(json["kpis"]["by_source"]["vk"]["requests"], 2);
    assert_eq!(json["kpis"]["all"]["requests"], 4);
    assert_eq!(json["kpis"]["by_channel"]["web"]["booked"], 1);
    let (code, table, _) = run_bot!(
        &[
            "report",
            "--db",
            &db,
            "--from",
            "2026-11-16",
            "--to",
            "2026-12-06"
        ],
        &[]
    )
    .await;
    assert_eq!(code, 0);
    let header = table.lines().nth(2).unwrap_or_default();
    assert!(
        header.contains("vk") && header.contains("live") && header.contains("all"),
        "the baseline beside the live bot: {table}"
    );
    app.shutdown().await;
}
