//! Bitrix24 live in `bot serve`: web conversations become leads in the emulated portal through
//! the CRM worker, an outage only delays them, a wrong webhook dead-letters them with the fix,
//! status events and reconciliation record where each lead stands.

use bot::crm::bitrix24::{Bitrix24, Settings};
use bot::crm::lead::Mapping;
use bot::domain::{CrmEntity, CrmSemantic};
use bot::server::Bitrix24Config;
use bot::store::{Job, JobKind};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::app::{TestApp, payloads, spawn_with_bitrix24, texts};
use testkit::bitrix24::{Config, Emulator};

/// The outgoing webhook's token, as Bitrix24 shows it.
const APP_TOKEN: &str = "w3bh00k-app-t0ken";

/// A client that gives up quickly: the queue, not the call, waits out an outage.
fn client(webhook: &str) -> Arc<Bitrix24> {
    let mut s = Settings::new(webhook).expect("webhook URL");
    s.backoff = Duration::from_millis(20);
    s.max_backoff = Duration::from_millis(100);
    s.max_attempts = 2;
    s.timeout = Duration::from_secs(5);
    s.max_pause = Duration::from_secs(1);
    Arc::new(Bitrix24::new(s).expect("client"))
}

fn config(webhook: &str) -> Bitrix24Config {
    Bitrix24Config {
        client: Some(client(webhook)),
        mapping: Mapping::default(),
        app_token: Some(APP_TOKEN.into()),
        reconcile_every: None,
    }
}

/// Poll `check` every 20 ms until it gives Some, or panic after `secs` naming `what`.
/// The app with Bitrix24 on, its portal an emulator set up as `portal` says.
async fn app_with_portal(portal: Config) -> (Emulator, TestApp) {
    let emu = Emulator::start(portal).await;
    let app = spawn_with_bitrix24(config(&emu.webhook())).await;
    (emu, app)
}

async fn until<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {secs} s for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_crm(j: &Job) -> bool {
    matches!(
        j.kind,
        JobKind::CrmLead | JobKind::CrmBooking | JobKind::CrmFetch
    )
}

/// CRM jobs not done yet.
async fn crm_pending(app: &TestApp) -> Vec<Job> {
    let store = app.store().await;
    let jobs = store.pending_jobs().await.expect("jobs");
    store.close().await;
    jobs.into_iter().filter(is_crm).collect()
}

/// Wait until no CRM job waits.
async fn crm_done(app: &TestApp) {
    until(30, "the CRM jobs to be done", || async {
        crm_pending(app).await.is_empty().then_some(())
    })
    .await;
}

/// Wait until every waiting CRM job was tried and put back for later (none is due now).
async fn crm_waiting(app: &TestApp) -> Vec<Job> {
    until(30, "the due CRM jobs to be tried", || async {
        let now = app.clock.now();
        let pending = crm_pending(app).await;
        pending.iter().all(|j| j.due_at > now).then_some(pending)
    })
    .await
}

async fn dead_letters(app: &TestApp) -> Vec<Job> {
    let store = app.store().await;
    let dead = store.dead_jobs().await.expect("dead jobs");
    store.close().await;
    dead
}

/// A web client asks for a manicure on `day`, takes the first slot and leaves name and phone:
/// a booking and a qualified lead.
async fn book_on_web(app: &TestApp, client: &str, day: &str, name: &str, phone: &str) {
    app.say(client, "хочу записаться на маникюр").await;
    let offer = app.say(client, &format!("{day} после обеда")).await;
    let slot = payloads(&offer)
        .into_iter()
        .find(|p| p.starts_with("slot:"))
        .unwrap_or_else(|| panic!("{client}: no slot offered: {offer}"));
    app.press(client, &slot).await;
    let booked = app
        .say(client, &format!("Меня зовут {name}, мой номер {phone}"))
        .await;
    assert!(
        texts(&booked).contains("маникюр"),
        "{client} is booked: {booked}"
    );
}

const DAYS: [&str; 4] = ["завтра", "в понедельник", "во вторник", "в среду"];
const NAMES: [&str; 4] = ["Марина", "Ирина", "Светлана", "Полина"];

fn phone(i: usize) -> (String, String) {
    (format!("8 913 555-10-0{i}"), format!("+791355510{:02}", i))
}

/// The leads of the portal with this phone.
fn leads_with_phone(emu: &Emulator, e164: &str) -> Vec<serde_json::Map<String, Value>> {
    emu.leads()
        .into_iter()
        .filter(|l| l["PHONE"][0]["VALUE"] == e164)
        .collect()
}

/// `crm.lead.add` commands the portal ran, in batches or alone.
fn lead_adds(emu: &Emulator) -> usize {
    emu.calls()
        .iter()
        .filter(|c| c.status == 200)
        .map(|c| match c.method.as_str() {
            "crm.lead.add" => 1,
            "batch" => c.params["cmd"].as_object().map_or(0, |m| {
                m.values()
                    .filter(|v| v.as_str().is_some_and(|s| s.starts_with("crm.lead.add")))
                    .count()
            }),
            _ => 0,
        })
        .sum()
}

fn booked_description(lead: &serde_json::Map<String, Value>) -> bool {
    lead.get("STATUS_DESCRIPTION")
        .and_then(Value::as_str)
        .is_some_and(|d| d.contains("записан") && d.contains("маникюр"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_booking_becomes_one_lead_with_source_channel_and_the_booking() {
    let (emu, app) = app_with_portal(Config::default()).await;
    let (written, e164) = phone(1);
    book_on_web(&app, "anna", DAYS[0], NAMES[0], &written).await;
    crm_done(&app).await;

    let leads = emu.leads();
    assert_eq!(leads.len(), 1, "{leads:?}");
    let lead = &leads[0];
    assert_eq!(lead["PHONE"][0]["VALUE"], e164.as_str());
    assert_eq!(lead["NAME"], "Марина");
    assert_eq!(lead["SOURCE_ID"], "CHAT_BOT");
    assert_eq!(lead["ORIGINATOR_ID"], "bot");
    assert!(
        lead["SOURCE_DESCRIPTION"]
            .as_str()
            .is_some_and(|s| s.contains("веб-чат")),
        "the channel: {lead:?}"
    );
    assert!(
        booked_description(lead),
        "updated with the booking: {lead:?}"
    );
    assert!(
        lead["TITLE"]
            .as_str()
            .is_some_and(|t| t.starts_with("маникюр на 21.11")),
        "{lead:?}"
    );
    assert_eq!(lead_adds(&emu), 1, "added once");
    assert_eq!(emu.violations(), 0, "the leaky bucket was respected");
    // Our lead knows where it landed.
    let store = app.store().await;
    let ours = store.leads().await.expect("leads");
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].crm_state, "synced");
    assert_eq!(
        lead["ORIGIN_ID"].as_str(),
        Some(format!("lead-{}", ours[0].id).as_str())
    );
    assert!(dead_letters(&app).await.is_empty());
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hour_of_outage_only_delays_the_leads_and_each_lands_once() {
    let started = Instant::now();
    let (emu, app) = app_with_portal(Config::default()).await;
    // The portal is unreachable for the first half hour, then its balancer answers 503.
    emu.refuse_connections().await;
    for i in 0..4 {
        let (written, _) = phone(i);
        book_on_web(&app, &format!("c{i}"), DAYS[i], NAMES[i], &written).await;
    }
    let mut attempts_seen = 0;
    for step in 1..=12 {
        if step == 7 {
            emu.accept_connections().await;
            emu.set_unavailable(true);
        }
        let waiting = crm_waiting(&app).await;
        assert_eq!(waiting.len(), 8, "4 leads and 4 bookings wait");
        attempts_seen = waiting.iter().map(|j| j.attempts).max().unwrap_or(0);
        app.clock.advance(chrono::Duration::minutes(5));
    }
    let waiting = crm_waiting(&app).await;
    assert!(emu.leads().is_empty());
    assert!(
        attempts_seen >= 5,
        "retried with backoff during the hour: {attempts_seen}"
    );
    assert!(
        waiting.iter().all(|j| j
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("unavailable"))),
        "{waiting:?}"
    );
    assert!(dead_letters(&app).await.is_empty(), "nothing given up");
    let refused = emu.calls().iter().filter(|c| c.status == 503).count();
    assert!(refused > 0, "the balancer's 503s were met");

    // Back up: at the next retry every lead lands, once, with its booking.
    emu.set_unavailable(false);
    app.clock.advance(chrono::Duration::hours(1));
    crm_done(&app).await;
    assert_eq!(emu.leads().len(), 4, "{:?}", emu.leads());
    for i in 0..4 {
        let (_, e164) = phone(i);
        let found = leads_with_phone(&emu, &e164);
        assert_eq!(found.len(), 1, "{e164}: {found:?}");
        assert!(booked_description(&found[0]), "{found:?}");
    }
    assert_eq!(lead_adds(&emu), 4);
    assert!(dead_letters(&app).await.is_empty());
    assert_eq!(emu.violations(), 0);
    eprintln!(
        "outage test: an hour of outage (30 min refused, 30 min 503) and recovery in {:.2?}",
        started.elapsed()
    );
    app.shutdown().await;
}

/// `bot …` against the server's database; (exit code, stdout, stderr).
async fn bot_cli(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let args: Vec<&str> = args.iter().copied().chain(["--db", &app.db_url]).collect();
    testkit::run_bot!(&args, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_webhook_dead_letters_with_the_fix_and_a_retry_lands_the_lead() {
    let emu = Emulator::start(Config::default()).await;
    let wrong = format!("{}/rest/1/n0tth3c0de/", emu.base);
    let app = spawn_with_bitrix24(config(&wrong)).await;
    let (written, e164) = phone(2);
    book_on_web(&app, "vera", DAYS[0], NAMES[1], &written).await;
    let dead = until(30, "the jobs to be dead letters", || async {
        let dead = dead_letters(&app).await;
        (dead.len() == 2).then_some(dead)
    })
    .await;
    assert!(
        dead.iter()
            .all(|j| j.kind == JobKind::CrmLead || j.kind == JobKind::CrmBooking),
        "{dead:?}"
    );
    assert!(dead.iter().all(|j| j.attempts == 1), "at once: {dead:?}");
    assert!(emu.leads().is_empty());

    // The operator sees why, and what to do.
    let (code, out, err) = bot_cli(&app, &["outbox", "list", "--dead", "--format", "json"]).await;
    assert_eq!(code, 0, "{err}");
    let rows: Value = serde_json::from_str(&out).expect("json");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{out}");
    for row in rows {
        let reason = row["last_error"].as_str().unwrap_or_default();
        assert!(
            reason.contains("webhook code is wrong") && reason.contains("Fix:"),
            "{reason}"
        );
        assert!(
            !reason.contains("n0tth3c0de"),
            "the code is masked: {reason}"
        );
    }

    // The fix: the right webhook, a restart, and the dead letters back in the queue.
    let app = app
        .restart_with(chrono::Utc::now(), config(&emu.webhook()))
        .await;
    let (code, out, err) = bot_cli(&app, &["outbox", "retry", "--all"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 job(s) back in the queue"), "{out}");
    crm_done(&app).await;
    let found = leads_with_phone(&emu, &e164);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(booked_description(&found[0]), "{found:?}");
    assert!(dead_letters(&app).await.is_empty());
    app.shutdown().await;
}

/// POST a form-encoded body to the status webhook; (status, JSON body).
async fn post_event(app: &TestApp, form: &[(&str, &str)]) -> (u16, Value) {
    app.post_form("/webhooks/bitrix24", form).await
}

/// Our one lead's Bitrix24 id, once it landed.
async fn landed(app: &TestApp, emu: &Emulator) -> u64 {
    crm_done(app).await;
    let leads = emu.leads();
    assert_eq!(leads.len(), 1, "{leads:?}");
    leads[0]["ID"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("lead id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_events_need_the_token_and_record_the_conversion() {
    let (emu, app) = app_with_portal(Config::default()).await;
    let (written, _) = phone(3);
    book_on_web(&app, "olya", DAYS[0], NAMES[2], &written).await;
    let id = landed(&app, &emu).await;
    let id_text = id.to_string();

    // Forged, malformed and unused events.
    let event = |token: &'static str| {
        vec![
            ("event", "ONCRMLEADUPDATE"),
            ("data[FIELDS][ID]", "1"),
            ("ts", "1763600000"),
            ("auth[domain]", "salon.bitrix24.ru"),
            ("auth[application_token]", token),
        ]
    };
    let (status, body) = post_event(&app, &event("forged")).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "unauthorized");
    let mut no_token = event("");
    no_token.pop();
    assert_eq!(post_event(&app, &no_token).await.0, 401);
    let (status, body) = post_event(
        &app,
        &[
            ("event", "ONCRMLEADUPDATE"),
            ("auth[application_token]", APP_TOKEN),
        ],
    )
    .await;
    assert_eq!(status, 400, "no id: {body}");
    assert!(body["message"].is_string());
    let (status, body) = post_event(
        &app,
        &[
            ("event", "ONCRMCOMPANYADD"),
            ("data[FIELDS][ID]", "5"),
            ("auth[application_token]", APP_TOKEN),
        ],
    )
    .await;
    assert_eq!(
        (status, &body["ok"]),
        (200, &json!(true)),
        "ignored: {body}"
    );

    // An outgoing webhook registered with another token: refused, nothing recorded.
    emu.subscribe(
        "ONCRMLEADUPDATE",
        &app.url("/webhooks/bitrix24"),
        "old-token",
    );
    emu.set_lead_status(id, "IN_PROCESS");
    until(30, "the event delivery", || async {
        emu.deliveries()
            .iter()
            .any(|d| d.status == Some(401))
            .then_some(())
    })
    .await;
    let store = app.store().await;
    assert!(store.crm_statuses().await.expect("statuses").is_empty());
    assert!(crm_pending(&app).await.is_empty(), "no fetch queued");

    // The right token: the manager's conversion is fetched and recorded.
    emu.unsubscribe_all();
    emu.subscribe("ONCRMLEADUPDATE", &app.url("/webhooks/bitrix24"), APP_TOKEN);
    emu.set_lead_status(id, "CONVERTED");
    let row = until(30, "the conversion to be recorded", || async {
        store
            .crm_status(CrmEntity::Lead, id as i64)
            .await
            .expect("status")
            .filter(|r| r.semantic == CrmSemantic::Converted)
    })
    .await;
    assert_eq!(row.status_id, "CONVERTED");
    let ours = store.leads().await.expect("leads");
    assert_eq!(row.lead_id, Some(ours[0].id), "linked to our lead");
    assert!(row.client_id.is_some());
    assert!(
        emu.deliveries()
            .iter()
            .any(|d| d.status == Some(200) && d.id.to_string() == id_text)
    );
    assert!(
        emu.calls()
            .iter()
            .any(|c| c.method == "batch" && c.params.to_string().contains("crm.lead.get")),
        "fetched after the event"
    );
    store.close().await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_simple_mode_the_deal_is_followed() {
    let (emu, app) = app_with_portal(Config {
        simple_mode: true,
        ..Config::default()
    })
    .await;
    let hook = app.url("/webhooks/bitrix24");
    for event in ["ONCRMLEADADD", "ONCRMDEALADD", "ONCRMDEALUPDATE"] {
        emu.subscribe(event, &hook, APP_TOKEN);
    }
    let (written, _) = phone(4);
    book_on_web(&app, "lena", DAYS[0], NAMES[3], &written).await;
    landed(&app, &emu).await;
    let deal: u64 = {
        let p = emu.lock();
        assert_eq!(p.deals.len(), 1, "the lead became a deal at once");
        *p.deals.keys().next().expect("deal")
    };
    let store = app.store().await;
    let ours = store.leads().await.expect("leads")[0].id;
    // The deal's event may come before the lead's id is known: it is placed all the same.
    let row = until(30, "the deal to be recorded", || async {
        store
            .crm_status(CrmEntity::Deal, deal as i64)
            .await
            .expect("status")
    })
    .await;
    assert_eq!(row.lead_id, Some(ours));
    assert_eq!(row.semantic, CrmSemantic::InWork);
    let per = |rows: Vec<bot::store::CrmStatus>| bot::store::CrmStatus::per_lead(&rows);
    assert_eq!(
        per(store.crm_statuses().await.expect("rows")).get(&ours),
        Some(&CrmSemantic::InWork),
        "a converted lead in simple mode is not yet a client who came"
    );
    emu.set_deal_stage(deal, "WON");
    until(30, "the won deal", || async {
        let rows = store.crm_statuses().await.expect("rows");
        (per(rows).get(&ours) == Some(&CrmSemantic::Converted)).then_some(())
    })
    .await;
    store.close().await;
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_picks_up_a_change_no_event_told_of() {
    let emu = Emulator::start(Config::default()).await;
    let app = spawn_with_bitrix24(Bitrix24Config {
        reconcile_every: Some(Duration::from_secs(15 * 60)),
        ..config(&emu.webhook())
    })
    .await;
    let (written, _) = phone(5);
    book_on_web(&app, "zoya", DAYS[0], NAMES[0], &written).await;
    let id = landed(&app, &emu).await as i64;
    let store = app.store().await;
    // No outgoing webhook: the junking reaches the bot only by reconciliation, which ran at
    // the start and is due again 15 minutes later.
    emu.set_lead_status(id as u64, "JUNK");
    let before = emu.calls().len();
    app.clock.advance(chrono::Duration::minutes(16));
    let row = until(30, "the reconciliation", || async {
        store
            .crm_status(CrmEntity::Lead, id)
            .await
            .expect("status")
            .filter(|r| r.semantic == CrmSemantic::Junk)
    })
    .await;
    assert_eq!(row.status_id, "JUNK");
    assert!(
        emu.calls()[before..]
            .iter()
            .any(|c| c.method == "crm.lead.list" && c.params["filter"]["ORIGINATOR_ID"] == "bot"),
        "our leads are listed"
    );
    let cursor = store
        .crm_cursor(CrmEntity::Lead)
        .await
        .expect("cursor")
        .and_then(|c| c.modified_at)
        .expect("the cursor is at the junking");
    // The next run asks only for what changed since then.
    let before = emu.calls().len();
    app.clock.advance(chrono::Duration::minutes(16));
    let list = until(30, "the next reconciliation", || async {
        emu.calls()[before..]
            .iter()
            .find(|c| c.method == "crm.lead.list")
            .cloned()
    })
    .await;
    let since = list.params["filter"][">=DATE_MODIFY"]
        .as_str()
        .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
        .map(|d| d.with_timezone(&chrono::Utc));
    assert_eq!(since, Some(cursor), "{:?}", list.params);
    let phones: HashSet<String> = emu
        .leads()
        .iter()
        .filter_map(|l| l["PHONE"][0]["VALUE"].as_str().map(String::from))
        .collect();
    assert_eq!(phones.len(), 1);
    store.close().await;
    app.shutdown().await;
}

#[tokio::test]
async fn serve_stops_at_a_bad_webhook_and_says_why() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("bot.db").display());
    let args = ["serve", "--listen", "127.0.0.1:0", "--db", db.as_str()];
    let env = [(
        "BOT_BITRIX24_WEBHOOK",
        "http://salon.bitrix24.ru/rest/1/c0de/",
    )];
    let (code, _, err) = testkit::run_bot!(&args, &env).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("BOT_BITRIX24_WEBHOOK") && err.contains("https"),
        "{err}"
    );
    assert!(!err.contains("c0de"), "the code is masked: {err}");
}

#[tokio::test]
async fn serve_without_bitrix24_says_it_is_off_and_how_to_turn_it_on() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("bot.db").display());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bot"))
        .args(["serve", "--listen", "127.0.0.1:0", "--db", db.as_str()])
        .env_remove("BOT_BITRIX24_WEBHOOK")
        .env_remove("BOT_BITRIX24_TOKEN_FILE")
        .env_remove("BOT_BITRIX24_APP_TOKEN")
        .env_remove("BOT_TELEGRAM_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start bot serve");
    // Its stdout is a closed pipe (`bot serve | head -0`): the server keeps serving.
    drop(child.stdout.take());
    let stderr = child.stderr.take().expect("stderr");
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        let mut reader = BufReader::new(stderr);
        for line in (&mut reader).lines().map_while(Result::ok) {
            let done = line.contains("status events");
            seen.push(line);
            if done {
                break;
            }
        }
        (seen, reader)
    });
    let lines = tokio::time::timeout(Duration::from_secs(30), lines).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = child.kill();
    let _ = child.wait();
    let (lines, mut reader) = lines.expect("start-up lines within 30 s").expect("reader");
    let text = lines.join("\n");
    let mut after = String::new();
    let _ = std::io::Read::read_to_string(&mut reader, &mut after);
    assert!(!after.contains("panicked"), "{after}");
    assert!(
        text.contains("bitrix24: off (set BOT_BITRIX24_WEBHOOK"),
        "{text}"
    );
    assert!(text.contains("BOT_BITRIX24_APP_TOKEN"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operating_limit_holds_the_job_until_its_reset_not_the_worker() {
    let emu = Emulator::start(Config {
        // Once it ran, crm.lead.add is blocked with 429 for 3 s.
        operating_block: Some(("crm.lead.add".into(), 1, Duration::from_secs(3))),
        ..Config::default()
    })
    .await;
    let cfg = config(&emu.webhook());
    let client = cfg.client.clone().expect("client");
    let app = spawn_with_bitrix24(cfg).await;
    // Both leads wait for the portal, so they go out in one batch: the second meets the limit.
    emu.set_unavailable(true);
    for i in 6..8 {
        let (written, _) = phone(i);
        book_on_web(
            &app,
            &format!("limit{i}"),
            DAYS[i - 6],
            NAMES[i - 6],
            &written,
        )
        .await;
    }
    crm_waiting(&app).await;
    emu.set_unavailable(false);
    app.clock.advance(chrono::Duration::minutes(1));
    let waiting = until(30, "the second lead to meet the limit", || async {
        let now = app.clock.now();
        let pending = crm_pending(&app).await;
        let limited = pending.iter().any(|j| {
            j.kind == JobKind::CrmLead
                && j.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("OPERATION_TIME_LIMIT"))
        });
        (limited && pending.iter().all(|j| j.due_at > now)).then_some(pending)
    })
    .await;
    assert_eq!(emu.leads().len(), 1, "the first lead landed");
    assert_eq!(waiting.len(), 2, "the second lead and its booking wait");
    assert!(
        emu.calls().iter().any(|c| c.method == "batch"
            && c.params.to_string().contains("crm.lead.add")
            && c.status == 200),
        "the limit came inside a batch"
    );
    // The job, not the worker, waits for the reset; then the lead lands once.
    until(30, "the limit's reset", || async {
        client.paused_for().is_none().then_some(())
    })
    .await;
    app.clock.advance(chrono::Duration::minutes(2));
    crm_done(&app).await;
    for i in 6..8 {
        let (_, e164) = phone(i);
        assert_eq!(leads_with_phone(&emu, &e164).len(), 1, "{e164}");
    }
    assert!(dead_letters(&app).await.is_empty());
    app.shutdown().await;
}
