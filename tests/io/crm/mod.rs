//! Bitrix24 CRM against a local emulator of the portal (`testkit::bitrix24`).

mod live;
mod pending;

use bot::crm::bitrix24::{Bitrix24, Command, CrmError, Retry, Settings, parse_batch};
use bot::crm::lead::{self, Mapping, Outcome, SourceState};
use bot::crm::{CrmLead, LeadChannel, SyncReport, csv};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use testkit::bitrix24::{Call, Config, Emulator};

fn client(emu: &Emulator, rate: f64, burst: f64) -> Bitrix24 {
    let mut s = Settings::new(&emu.webhook()).expect("emulator webhook is valid");
    s.rate = rate;
    s.burst = burst;
    s.backoff = Duration::from_millis(20);
    s.max_backoff = Duration::from_millis(200);
    s.max_attempts = 30;
    s.timeout = Duration::from_secs(10);
    Bitrix24::new(s).expect("client")
}

fn lead(origin: &str, name: &str, phone: Option<&str>, channel: LeadChannel) -> CrmLead {
    CrmLead {
        origin_id: origin.into(),
        name: Some(name.into()),
        phone: phone.map(str::to_string),
        email: None,
        channel,
        service: Some("маникюр".into()),
        desired_at: "2026-11-20T08:00:00Z".parse().ok(),
        comment: Some("хочет к Ольге".into()),
        utm: Vec::new(),
    }
}

fn fixture_leads() -> (Vec<CrmLead>, usize) {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/leads.csv"))
        .expect("fixtures/leads.csv");
    let rows = csv::read(text.as_bytes()).expect("fixture header");
    let invalid = rows.iter().filter(|r| r.lead.is_err()).count();
    (
        rows.into_iter().filter_map(|r| r.lead.ok()).collect(),
        invalid,
    )
}

async fn push(c: &Bitrix24, leads: &[CrmLead]) -> Result<Vec<Outcome>, CrmError> {
    let m = Mapping::default();
    lead::ensure_source(c, &m, false).await?;
    lead::sync(c, &m, leads, false, &|_| {}).await
}

/// `n` leads with ids `{prefix}-{i}` and phones `+7{code}NNNNNN` (code: operator + first digit).
fn numbered_leads(prefix: &str, code: &str, n: usize, channel: LeadChannel) -> Vec<CrmLead> {
    (0..n)
        .map(|i| {
            lead(
                &format!("{prefix}-{i}"),
                "Клиент",
                Some(&format!("+7{code}{i:06}")),
                channel,
            )
        })
        .collect()
}

/// Every phone of `leads` is on exactly one lead of the portal.
fn assert_one_lead_per_phone(emu: &Emulator, leads: &[CrmLead]) {
    let stored: Vec<String> = emu
        .leads()
        .iter()
        .filter_map(|l| {
            l.get("PHONE")
                .and_then(|p| p[0]["VALUE"].as_str())
                .map(str::to_string)
        })
        .collect();
    let distinct: HashSet<&String> = stored.iter().collect();
    assert_eq!(distinct.len(), stored.len(), "one lead per phone");
    let wanted: HashSet<String> = leads.iter().filter_map(|l| l.phone.clone()).collect();
    assert_eq!(distinct.len(), wanted.len(), "every phone landed");
}

#[tokio::test]
async fn leads_are_created_with_the_right_fields_and_a_registered_source() {
    let emu = Emulator::start(Config::default()).await;
    let c = client(&emu, 2.0, 50.0);
    let out = push(
        &c,
        &[
            lead(
                "lead-1",
                "Анна Петрова",
                Some("+79131234567"),
                LeadChannel::Telegram,
            ),
            // a name given as «имя отчество фамилия», typed in lower case
            lead(
                "lead-2",
                "ольга сергеевна иванова",
                Some("+79137654321"),
                LeadChannel::Web,
            ),
        ],
    )
    .await
    .expect("sync");
    assert_eq!(
        out,
        vec![
            Outcome::Created { id: Some(1) },
            Outcome::Created { id: Some(2) }
        ]
    );
    let leads = emu.leads();
    let full = &leads[1];
    assert_eq!(full["NAME"], "Ольга");
    assert_eq!(full["SECOND_NAME"], "Сергеевна");
    assert_eq!(full["LAST_NAME"], "Иванова");
    assert_eq!(
        full["TITLE"],
        "маникюр на 20.11 15:00 — Ольга Сергеевна Иванова"
    );
    let l = &leads[0];
    assert_eq!(l["NAME"], "Анна");
    assert_eq!(l["LAST_NAME"], "Петрова");
    assert!(l.get("SECOND_NAME").is_none());
    assert_eq!(l["PHONE"][0]["VALUE"], "+79131234567");
    assert_eq!(l["PHONE"][0]["VALUE_TYPE"], "MOBILE");
    assert_eq!(l["SOURCE_ID"], "CHAT_BOT");
    assert_eq!(l["ORIGINATOR_ID"], "bot");
    assert_eq!(l["ORIGIN_ID"], "lead-1");
    assert_eq!(l["TITLE"], "маникюр на 20.11 15:00 — Анна Петрова");
    assert!(
        l["SOURCE_DESCRIPTION"]
            .as_str()
            .is_some_and(|s| s.contains("Telegram"))
    );
    assert!(
        l["COMMENTS"]
            .as_str()
            .is_some_and(|s| s.contains("хочет к Ольге"))
    );
    let registered = emu
        .lock()
        .statuses
        .iter()
        .any(|s| s["ENTITY_ID"] == "SOURCE" && s["STATUS_ID"] == "CHAT_BOT");
    assert!(registered, "the CHAT_BOT source is registered before use");
    // A second setup finds it and adds nothing.
    let again = lead::ensure_source(&c, &Mapping::default(), false)
        .await
        .expect("setup");
    assert_eq!(again, SourceState::Existed);
    assert_eq!(
        emu.calls()
            .iter()
            .filter(|c| c.method == "crm.status.add")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_duplicate_phone_written_otherwise_updates_instead_of_creating() {
    let emu = Emulator::start(Config::default()).await;
    let c = client(&emu, 2.0, 50.0);
    // A manager typed the number by hand in the national format.
    let existing = c
        .call(
            "crm.lead.add",
            &json!({"fields": {"TITLE": "звонок", "PHONE": [{"VALUE": "8 (913) 555-12-34", "VALUE_TYPE": "WORK"}]}}),
            Retry::OnlyUnexecuted,
        )
        .await
        .expect("seed lead");
    assert_eq!(existing.result, json!(1));
    let out = push(
        &c,
        &[lead(
            "lead-9",
            "Ирина",
            Some("+79135551234"),
            LeadChannel::Whatsapp,
        )],
    )
    .await
    .expect("sync");
    assert_eq!(out, vec![Outcome::Updated { id: 1 }]);
    let leads = emu.leads();
    assert_eq!(leads.len(), 1, "no second lead");
    assert!(
        leads[0]["TITLE"]
            .as_str()
            .is_some_and(|t| t.contains("Ирина")),
        "the lead is updated"
    );
    assert_eq!(
        leads[0]["PHONE"].as_array().map(Vec::len),
        Some(1),
        "the phone is not appended again"
    );
}

/// Each phone (by its digits) and e-mail (case aside) of every portal lead, with how often the
/// lead has it: a multifield that grew on an update shows a count above 1.
fn multifield_counts(emu: &Emulator) -> Vec<(String, String, usize)> {
    let mut counts = Vec::new();
    for l in emu.leads() {
        let id = l["ID"].as_str().unwrap_or_default().to_string();
        let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
        for (field, value) in ["PHONE", "EMAIL"].iter().flat_map(|f| {
            l.get(*f)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(move |i| i["VALUE"].as_str().map(|v| (*f, v.to_string())))
        }) {
            let key = if field == "PHONE" {
                value.chars().filter(char::is_ascii_digit).collect()
            } else {
                value.to_lowercase()
            };
            *seen.entry(key).or_default() += 1;
        }
        counts.extend(seen.into_iter().map(|(v, n)| (id.clone(), v, n)));
    }
    counts
}

/// Leads where a phone or an e-mail stands more than once.
fn repeated_multifields(emu: &Emulator) -> Vec<(String, String, usize)> {
    multifield_counts(emu)
        .into_iter()
        .filter(|(_, _, n)| *n > 1)
        .collect()
}

#[tokio::test]
async fn updates_never_add_a_phone_or_e_mail_the_lead_already_has() {
    let emu = Emulator::start(Config::default()).await;
    let c = client(&emu, 2.0, 50.0);
    let with_email = |origin: &str, phone: Option<&str>, email: &str| CrmLead {
        email: Some(email.into()),
        ..lead(origin, "Вера", phone, LeadChannel::Web)
    };
    let leads = [
        with_email("lead-1", Some("+79130000001"), "vera@mail.ru"),
        with_email("lead-2", None, "only@mail.ru"),
    ];
    for round in 1..=3 {
        let out = push(&c, &leads).await.expect("sync");
        assert!(
            out.iter().all(|o| o.lead_id().is_some()),
            "round {round}: {out:?}"
        );
        assert_eq!(repeated_multifields(&emu), vec![], "round {round}");
    }
    assert_eq!(emu.leads().len(), 2);
    // Found by its phone with a new e-mail (written in other case): the new one is added once.
    let moved = [with_email("lead-3", Some("+79130000001"), "Vera@Yandex.ru")];
    for _ in 0..2 {
        push(&c, &moved).await.expect("sync");
    }
    assert_eq!(repeated_multifields(&emu), vec![]);
    let emails: Vec<String> = multifield_counts(&emu)
        .into_iter()
        .filter(|(id, v, _)| id == "1" && v.contains('@'))
        .map(|(_, v, _)| v)
        .collect();
    assert_eq!(emails, ["vera@mail.ru", "vera@yandex.ru"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_sync_cli_three_times_keeps_each_phone_and_email_once_per_lead() {
    let emu = Emulator::start(Config::default()).await;
    for round in 1..=3 {
        let (code, _, err) = bot_cli(emu.webhook(), &SYNC_FIXTURE_JSON).await;
        assert_eq!(code, 0, "round {round}: {err}");
        assert_eq!(repeated_multifields(&emu), vec![], "round {round}");
    }
    let emails = multifield_counts(&emu)
        .iter()
        .filter(|(_, v, _)| v.contains('@'))
        .count();
    assert!(emails > 0, "the fixture's e-mails landed");
}

#[tokio::test]
async fn a_known_contact_is_linked_to_the_new_lead() {
    let emu = Emulator::start(Config::default()).await;
    let contact = emu.add_contact("Ольга", "+79130001122");
    let c = client(&emu, 2.0, 50.0);
    let out = push(
        &c,
        &[lead(
            "lead-2",
            "Ольга",
            Some("+79130001122"),
            LeadChannel::Web,
        )],
    )
    .await
    .expect("sync");
    assert!(matches!(out[0], Outcome::Created { .. }));
    assert_eq!(emu.leads()[0]["CONTACT_ID"], contact.to_string());
}

#[tokio::test]
async fn the_fixture_syncs_once_and_a_rerun_creates_nothing() {
    let emu = Emulator::start(Config::default()).await;
    let c = client(&emu, 2.0, 50.0);
    let (leads, invalid) = fixture_leads();
    assert!(leads.len() + invalid >= 200);
    assert!(invalid >= 5, "the fixture has invalid rows");
    let started = Instant::now();
    let first = SyncReport::of(&push(&c, &leads).await.expect("first sync"));
    let took = started.elapsed();
    let unique: HashSet<String> = leads
        .iter()
        .filter_map(|l| l.phone.clone().or_else(|| l.email.clone()))
        .collect();
    assert_eq!(first.failed, 0);
    assert_eq!(first.created, emu.leads().len());
    assert!(first.updated > 0, "the fixture's duplicates update");
    assert_one_lead_per_phone(&emu, &leads);
    assert!(emu.leads().len() <= unique.len());
    let requests = c.stats().requests;
    eprintln!(
        "fixture: {} leads in {:.2?} over {requests} requests = {:.0} leads/s",
        leads.len(),
        took,
        leads.len() as f64 / took.as_secs_f64()
    );
    let second = SyncReport::of(&push(&c, &leads).await.expect("rerun"));
    assert_eq!(second.created, 0, "a rerun creates nothing new");
    assert_eq!(second.updated, leads.len());
    assert_eq!(emu.violations(), 0);
}

#[tokio::test]
async fn two_hundred_leads_respect_the_bucket() {
    // A tight portal: burst 4, 10 per second. Our bucket matches it.
    let emu = Emulator::start(Config {
        rate: 10.0,
        burst: 4.0,
        ..Config::default()
    })
    .await;
    let c = client(&emu, 10.0, 4.0);
    let leads: Vec<CrmLead> = numbered_leads("b", "9131", 200, LeadChannel::Instagram);
    let started = Instant::now();
    let out = push(&c, &leads).await.expect("sync");
    let took = started.elapsed();
    assert_eq!(SyncReport::of(&out).created, 200);
    assert_eq!(emu.violations(), 0, "the portal never had to refuse");
    let requests = emu.calls().len() as f64;
    assert!(requests > 4.0);
    let least = (requests - 4.0) / 10.0;
    assert!(
        took.as_secs_f64() >= least * 0.9,
        "{requests} requests took {took:?}, at least {least} s expected"
    );
    assert!(
        emu.calls()
            .iter()
            .all(|c| c.method != "batch"
                || c.params["cmd"].as_object().is_some_and(|m| m.len() <= 50))
    );
}

#[tokio::test]
async fn query_limit_exceeded_and_broken_writes_still_land_every_lead_exactly_once() {
    // The client believes in a bigger bucket than the portal's, 30 % of requests get an
    // injected 503 and 20 % of writes answer 500 after doing the work. Several fault patterns.
    for seed in [7, 11, 23] {
        let emu = Emulator::start(Config {
            rate: 20.0,
            burst: 3.0,
            random_503: 0.3,
            fail_after_write: 0.2,
            seed,
            ..Config::default()
        })
        .await;
        let c = client(&emu, 100.0, 50.0);
        let (leads, _) = fixture_leads();
        let out = push(&c, &leads).await.expect("sync");
        let report = SyncReport::of(&out);
        assert_eq!(report.failed, 0, "seed {seed}: {out:?}");
        let (violations, injected) = {
            let p = emu.lock();
            (p.violations, p.injected)
        };
        assert!(
            violations > 0 && injected > 0,
            "seed {seed}: faults happened: {violations} {injected}"
        );
        assert!(c.stats().query_limit_retries > 0);
        assert_one_lead_per_phone(&emu, &leads);
        // The rerun, under the same faults, creates nothing.
        let again = SyncReport::of(&push(&c, &leads).await.expect("rerun"));
        assert_eq!((again.created, again.failed), (0, 0), "seed {seed}");
        assert_one_lead_per_phone(&emu, &leads);
    }
}

#[tokio::test]
async fn answers_lost_to_timeouts_are_looked_up_again_not_resent() {
    // 30 % of writes land but their answer comes after the client gave up.
    let emu = Emulator::start(Config {
        slow_after_write: 0.3,
        slow: Duration::from_millis(800),
        ..Config::default()
    })
    .await;
    let mut s = Settings::new(&emu.webhook()).expect("webhook");
    s.timeout = Duration::from_millis(300);
    s.backoff = Duration::from_millis(10);
    let c = Bitrix24::new(s).expect("client");
    let (leads, _) = fixture_leads();
    let out = push(&c, &leads).await.expect("sync");
    assert_eq!(SyncReport::of(&out).failed, 0, "{out:?}");
    assert!(emu.lock().injected > 0, "timeouts happened");
    assert_one_lead_per_phone(&emu, &leads);
}

#[tokio::test]
async fn throughput_after_the_burst_at_the_default_limits() {
    let emu = Emulator::start(Config::default()).await;
    let c = client(&emu, 2.0, 50.0);
    // Spend the burst first: the steady state is what the limits allow.
    for _ in 0..50 {
        c.call("crm.settings.mode.get", &json!({}), Retry::Safe)
            .await
            .expect("warm-up");
    }
    let leads: Vec<CrmLead> = numbered_leads("t", "9232", 200, LeadChannel::Web);
    let started = Instant::now();
    let before = c.stats().requests;
    let out = push(&c, &leads).await.expect("sync");
    let took = started.elapsed().as_secs_f64();
    assert_eq!(SyncReport::of(&out).created, 200);
    assert_eq!(emu.violations(), 0);
    let rate = 200.0 / took;
    // Best possible: 2 requests/s × 50 commands per batch = 100 leads/s.
    eprintln!(
        "throughput: 200 leads in {took:.2} s over {} requests = {rate:.1} leads/s = {:.0} % of the 100 leads/s the limits allow",
        c.stats().requests - before,
        rate
    );
    assert!(rate >= 30.0, "{rate} leads/s");
}

#[tokio::test]
async fn operation_time_limit_inside_a_batch_pauses_the_method_and_lands_the_rest() {
    // crm.lead.add is blocked for 1 s after every 30 runs; inner commands count, batch does not.
    let emu = Emulator::start(Config {
        operating_block: Some(("crm.lead.add".into(), 30, Duration::from_secs(1))),
        ..Config::default()
    })
    .await;
    let c = client(&emu, 2.0, 50.0);
    let leads: Vec<CrmLead> = numbered_leads("op", "9604", 100, LeadChannel::Whatsapp);
    let out = push(&c, &leads).await.expect("sync");
    assert_eq!(SyncReport::of(&out).created, 100, "{out:?}");
    assert!(c.stats().operation_limit_pauses > 0);
    assert_one_lead_per_phone(&emu, &leads);
}

#[tokio::test]
async fn operation_time_limit_pauses_the_method_until_reset() {
    let emu = Emulator::start(Config {
        operating_block: Some(("crm.status.list".into(), 1, Duration::from_secs(1))),
        ..Config::default()
    })
    .await;
    let c = client(&emu, 2.0, 50.0);
    let args = json!({"filter": {"ENTITY_ID": "SOURCE"}});
    c.call("crm.status.list", &args, Retry::Safe)
        .await
        .expect("first");
    let started = Instant::now();
    c.call("crm.status.list", &args, Retry::Safe)
        .await
        .expect("after the pause");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(c.stats().operation_limit_pauses, 1);
    assert!(emu.calls().iter().any(|c| c.status == 429));
}

#[tokio::test]
async fn a_wrong_webhook_code_is_fatal_and_names_the_fix() {
    let emu = Emulator::start(Config::default()).await;
    let wrong = format!("{}/rest/1/wrongcode/", emu.base);
    let c = Bitrix24::new(Settings::new(&wrong).expect("url")).expect("client");
    let err = push(
        &c,
        &[lead("x", "A", Some("+79131234567"), LeadChannel::Web)],
    )
    .await
    .expect_err("fatal");
    assert!(err.is_fatal());
    let msg = err.to_string();
    assert!(
        msg.contains("webhook") && msg.contains("BOT_BITRIX24_WEBHOOK"),
        "{msg}"
    );
    assert_eq!(emu.calls().len(), 1, "no retries of a fatal error");
}

#[tokio::test]
async fn rest_unavailable_on_the_plan_is_fatal() {
    let emu = Emulator::start(Config {
        rest_unavailable: true,
        ..Config::default()
    })
    .await;
    let err = push(&client(&emu, 2.0, 50.0), &[])
        .await
        .expect_err("fatal");
    assert!(err.to_string().contains("plan"), "{err}");
}

#[tokio::test]
async fn no_right_to_register_the_source_is_fatal_with_the_fix() {
    let emu = Emulator::start(Config {
        settings_denied: true,
        ..Config::default()
    })
    .await;
    let err = push(&client(&emu, 2.0, 50.0), &[])
        .await
        .expect_err("fatal");
    assert!(err.is_fatal());
    assert!(err.to_string().contains("BOT_BITRIX24_SOURCE_ID"), "{err}");
}

#[tokio::test]
async fn method_errors_with_an_empty_code_fail_only_that_call() {
    let emu = Emulator::start(Config::default()).await;
    let c = client(&emu, 2.0, 50.0);
    let err = c
        .call("crm.lead.get", &json!({"id": 999}), Retry::Safe)
        .await
        .expect_err("not found");
    match err {
        CrmError::Api { error, .. } => {
            assert_eq!(error.code, "");
            assert_eq!(error.description, "Not found");
            assert_eq!(error.status, 400);
        }
        other => panic!("expected an API error, got {other}"),
    }
    let err = c
        .call("crm.no.such", &json!({}), Retry::Safe)
        .await
        .expect_err("unknown");
    assert!(err.is_fatal(), "{err}");
}

#[tokio::test]
async fn batch_reports_per_label_and_empty_maps_as_arrays() {
    let emu = Emulator::start(Config::default()).await;
    let c = client(&emu, 2.0, 50.0);
    let commands = vec![
        Command {
            label: "ok".into(),
            method: "crm.settings.mode.get".into(),
            params: json!({}),
        },
        Command {
            label: "bad".into(),
            method: "crm.lead.get".into(),
            params: json!({"id": 5}),
        },
        Command {
            label: "nodup".into(),
            method: "crm.duplicate.findbycomm".into(),
            params: json!({"type": "PHONE", "values": ["+70000000000"]}),
        },
    ];
    let a = c.batch(&commands, Retry::Safe).await.expect("batch");
    assert_eq!(a.results.get("ok"), Some(&json!(1)));
    assert_eq!(a.results.get("nodup"), Some(&json!([])));
    assert_eq!(
        a.errors.get("bad").map(|e| e.description.as_str()),
        Some("Not found")
    );
    let numeric = vec![Command {
        label: "0".into(),
        method: "crm.settings.mode.get".into(),
        params: json!({}),
    }];
    assert!(
        c.batch(&numeric, Retry::Safe).await.is_err(),
        "numeric labels are refused"
    );
    // The emulator answers numeric labels the PHP way: a list, as the real portal does.
    let raw = c
        .call(
            "batch",
            &json!({"cmd": {"0": "crm.settings.mode.get"}}),
            Retry::Safe,
        )
        .await
        .expect("raw");
    assert!(raw.result["result"].is_array() && raw.result["result_error"] == json!([]));
}

#[tokio::test]
async fn simple_mode_names_every_lead_and_follows_it_to_its_deal() {
    let emu = Emulator::start(Config {
        simple_mode: true,
        ..Config::default()
    })
    .await;
    let c = client(&emu, 2.0, 50.0);
    let mut m = Mapping::default();
    assert!(lead::detect_mode(&c, &mut m).await.expect("mode"));
    let mut nameless = lead("s-2", "x", Some("+79131110001"), LeadChannel::Phone);
    nameless.name = None;
    let leads = [
        lead("s-1", "Вера", Some("+79131110000"), LeadChannel::Vk),
        nameless,
    ];
    lead::ensure_source(&c, &m, false).await.expect("source");
    let out = lead::sync(&c, &m, &leads, false, &|_| {})
        .await
        .expect("sync");
    let ids: Vec<u64> = out
        .iter()
        .filter_map(|o| match o {
            Outcome::Created { id } => *id,
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(
        emu.leads().iter().all(|l| l["STATUS_ID"] == "CONVERTED"),
        "a NAME lets every lead convert"
    );
    let deals = lead::follow_deals(&c, &ids).await.expect("deals");
    assert_eq!(deals.len(), 2, "{deals:?}");
    // Without the simple-mode NAME, the portal could not convert a nameless lead.
    let emu = Emulator::start(Config {
        simple_mode: true,
        ..Config::default()
    })
    .await;
    let c = client(&emu, 2.0, 50.0);
    let out = push(&c, &leads[1..]).await.expect("sync");
    assert!(matches!(out[0], Outcome::Created { .. }));
    assert_eq!(emu.leads()[0]["STATUS_ID"], "NEW");
}

#[test]
fn plain_http_to_a_portal_is_refused() {
    assert!(Settings::new("http://salon.bitrix24.ru/rest/1/code/").is_err());
    assert!(Settings::new("https://salon.bitrix24.ru/rest/code/").is_err());
}

proptest! {
    #[test]
    fn the_csv_reader_never_panics(text in "\\PC{0,400}", rows in proptest::collection::vec("[a-zа-я0-9+@.,\"\\- ]{0,60}", 0..8)) {
        let _ = csv::read(text.as_bytes());
        let with_header = format!("name,phone,email,channel,service,desired_at,comment,external_id\n{}", rows.join("\n"));
        if let Ok(parsed) = csv::read(with_header.as_bytes()) {
            prop_assert!(parsed.len() <= rows.len());
        }
    }

    #[test]
    fn the_response_parsers_never_panic(v in arb_json()) {
        let _ = parse_batch(&v);
        let _ = bot::crm::PortalError::from_value(&v, 400);
        let _ = bot::crm::bitrix24::object_or_empty(Some(&v));
        let _ = bot::crm::bitrix24::id(&v);
        let wrapped = json!({"result": v.clone(), "result_error": v.clone(), "result_total": v});
        let _ = parse_batch(&wrapped);
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(
                "(error|error_description|result|[a-z0-9]{1,6})",
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Run `bot ARGS` with the emulator's webhook; (exit code, stdout, stderr).
async fn bot_cli(webhook: String, args: &[&str]) -> (i32, String, String) {
    testkit::run_bot!(args, &[("BOT_BITRIX24_WEBHOOK", webhook.as_str())]).await
}

const SYNC_FIXTURE_JSON: [&str; 6] = [
    "crm",
    "sync",
    "--leads",
    "fixtures/leads.csv",
    "--format",
    "json",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_sync_cli_reports_every_row_and_a_rerun_creates_nothing() {
    let emu = Emulator::start(Config::default()).await;
    let args = SYNC_FIXTURE_JSON;
    let (code, out, err) = bot_cli(emu.webhook(), &args).await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json output");
    let (leads, invalid) = fixture_leads();
    assert_eq!(v["summary"]["skipped"], json!(invalid));
    assert_eq!(
        v["rows"].as_array().map(Vec::len),
        Some(leads.len() + invalid)
    );
    assert_eq!(v["summary"]["created"], json!(emu.leads().len()));
    // A skipped row names its line and field.
    let skipped: Vec<&Value> = v["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["status"] == "skipped")
        .collect();
    assert!(
        skipped
            .iter()
            .all(|r| r["line"].as_u64().is_some_and(|l| l > 1))
    );
    assert!(
        skipped.iter().any(|r| r["reason"]
            .as_str()
            .is_some_and(|s| s.contains(": channel: "))),
        "{skipped:?}"
    );
    let (code, out, _) = bot_cli(emu.webhook(), &args).await;
    assert_eq!(code, 0);
    let again: Value = serde_json::from_str(&out).expect("json output");
    assert_eq!(again["summary"]["created"], json!(0));
    // The table view on a non-terminal: no progress bar, UTF-8 table.
    let (code, out, _) = bot_cli(
        emu.webhook(),
        &["crm", "sync", "--leads", "fixtures/leads.csv", "--dry-run"],
    )
    .await;
    assert_eq!(code, 0);
    assert!(
        out.contains("would be updated (duplicate found)") && out.contains('┌'),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_cli_fatal_and_usage_errors_exit_2() {
    let emu = Emulator::start(Config {
        rest_unavailable: true,
        ..Config::default()
    })
    .await;
    let (code, _, err) = bot_cli(emu.webhook(), &["crm", "setup"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("plan") && err.contains("Fix:"), "{err}");
    let (code, _, _) = bot_cli(emu.webhook(), &["crm", "sync"]).await;
    assert_eq!(code, 2, "neither --leads nor --pending");
    let (code, _, err) = bot_cli(emu.webhook(), &["crm", "sync", "--leads", "no/such.csv"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("no/such.csv"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_check_names_what_to_fix_and_setup_fixes_the_source() {
    let emu = Emulator::start(Config {
        scopes: vec!["user".into()],
        ..Config::default()
    })
    .await;
    let (code, out, err) = bot_cli(emu.webhook(), &["crm", "check"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        out.contains("scope crm: MISSING") && out.contains("lead source CHAT_BOT: MISSING"),
        "{out}"
    );
    assert!(
        !out.contains(testkit::bitrix24::CODE),
        "the webhook code is masked: {out}"
    );
    let (code, out, _) = bot_cli(emu.webhook(), &["crm", "setup"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("registered now"), "{out}");
    let (_, out, _) = bot_cli(emu.webhook(), &["crm", "check"]).await;
    assert!(out.contains("lead source CHAT_BOT: ok"), "{out}");
    assert!(
        emu.calls()
            .iter()
            .filter(|c| c.method == "crm.status.add")
            .count()
            == 1,
        "check changes nothing"
    );
}

#[tokio::test]
async fn reconciliation_finds_leads_converted_since_the_cursor_across_pages() {
    use bot::crm::events::{Fetched, changed_since, fetch};
    use bot::domain::{CrmEntity, CrmSemantic};
    let emu = Emulator::start(Config::default()).await;
    let c = client(&emu, 50.0, 50.0);
    let leads: Vec<CrmLead> = numbered_leads("r", "9523", 60, LeadChannel::Web);
    push(&c, &leads).await.expect("sync");
    // A lead of someone else's is never ours.
    c.call(
        "crm.lead.add",
        &json!({"fields": {"TITLE": "звонок", "ORIGINATOR_ID": "1c", "ORIGIN_ID": "x"}}),
        Retry::OnlyUnexecuted,
    )
    .await
    .expect("foreign lead");
    let m = Mapping::default();
    let all = changed_since(&c, &m, CrmEntity::Lead, None)
        .await
        .expect("all");
    assert_eq!(all.len(), 60, "two pages of 50, only ours");
    assert!(
        emu.calls()
            .iter()
            .any(|c| c.method == "crm.lead.list" && c.params["start"] == json!(50))
    );
    assert!(
        all.iter()
            .all(|o| o.semantic == CrmSemantic::InWork && o.status_id == "NEW")
    );
    let cursor = all.iter().filter_map(|o| o.modified_at).max();
    assert!(cursor.is_some(), "DATE_MODIFY is read");
    // The portal keeps whole seconds: a change a second later is newer than the cursor.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    emu.set_lead_status(7, "CONVERTED");
    let changed = changed_since(&c, &m, CrmEntity::Lead, cursor)
        .await
        .expect("changed");
    // `>=`: the cursor's own second is read again, so a change made in it is never lost.
    let in_cursor_second = all.iter().filter(|o| o.modified_at == cursor).count();
    let seven_was_older = all.iter().any(|o| o.id == 7 && o.modified_at != cursor);
    assert_eq!(
        changed.len(),
        in_cursor_second + usize::from(seven_was_older)
    );
    assert!(
        changed
            .iter()
            .any(|o| o.id == 7 && o.semantic == CrmSemantic::Converted),
        "{changed:?}"
    );
    // From the newest change on, only what changed then is read.
    let cursor = changed.iter().filter_map(|o| o.modified_at).max();
    let again = changed_since(&c, &m, CrmEntity::Lead, cursor)
        .await
        .expect("changed again");
    assert_eq!(again.iter().map(|o| o.id).collect::<Vec<_>>(), vec![7]);
    let lead7 = &leads[6].origin_id;
    let one = fetch(&c, &[(CrmEntity::Lead, 7), (CrmEntity::Lead, 999)])
        .await
        .expect("fetch");
    match one.get(&(CrmEntity::Lead, 7)) {
        Some(Fetched::Found(o)) => {
            assert_eq!(o.semantic, CrmSemantic::Converted);
            assert_eq!(o.origin_id.as_ref(), Some(lead7));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(one.get(&(CrmEntity::Lead, 999)), Some(&Fetched::Gone));
}

#[tokio::test]
async fn oauth_renews_an_expired_token_once_and_stores_the_new_pair() {
    use bot::crm::oauth::{OAuth, Tokens};
    let emu = Emulator::start(Config {
        oauth_app: Some(("local.app1".into(), "s3cr3t".into())),
        ..Config::default()
    })
    .await;
    let (access, refresh) = emu.oauth_tokens();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("tokens.json");
    let tokens = Tokens {
        access_token: access,
        refresh_token: refresh,
        client_endpoint: format!("{}/rest/", emu.base),
    };
    let mut oauth = OAuth::new(
        "local.app1".into(),
        "s3cr3t".into(),
        format!("{}/oauth/token/", emu.base),
        tokens,
    );
    oauth.token_file = Some(file.clone());
    let c =
        Bitrix24::with_oauth(Settings::new_base(&emu.base).expect("base"), oauth).expect("client");
    push(
        &c,
        &[lead(
            "o-1",
            "Ксения",
            Some("+79830001111"),
            LeadChannel::Telegram,
        )],
    )
    .await
    .expect("sync");
    emu.expire_access_token();
    push(
        &c,
        &[lead(
            "o-2",
            "Полина",
            Some("+79830002222"),
            LeadChannel::Telegram,
        )],
    )
    .await
    .expect("sync after expiry");
    assert_eq!(emu.leads().len(), 2);
    let renewals: Vec<Call> = emu
        .calls()
        .into_iter()
        .filter(|c| c.method == "oauth.token")
        .collect();
    assert_eq!(renewals.len(), 1, "renewed once, not before every call");
    assert_eq!(renewals[0].params["client_secret"], "s3cr3t");
    assert!(
        emu.calls()
            .iter()
            .filter(|c| c.method != "oauth.token")
            .all(|c| c.params.get("client_secret").is_none())
    );
    let saved: Tokens =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("token file")).expect("json");
    assert_eq!(saved.refresh_token, "refresh2", "the new pair is stored");

    // A revoked refresh token: the sync stops and says to authorize again.
    let stale = Tokens {
        access_token: "access1".into(),
        refresh_token: "refresh1".into(),
        client_endpoint: format!("{}/rest/", emu.base),
    };
    let oauth = OAuth::new(
        "local.app1".into(),
        "s3cr3t".into(),
        format!("{}/oauth/token/", emu.base),
        stale,
    );
    let c =
        Bitrix24::with_oauth(Settings::new_base(&emu.base).expect("base"), oauth).expect("client");
    let err = push(&c, &[]).await.expect_err("fatal");
    assert!(
        err.is_fatal() && err.to_string().contains("authorize the application again"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crm_sync_cli_in_simple_mode_reports_the_deals() {
    let emu = Emulator::start(Config {
        simple_mode: true,
        ..Config::default()
    })
    .await;
    let args = SYNC_FIXTURE_JSON;
    let (code, out, err) = bot_cli(emu.webhook(), &args).await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let with_deal = v["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["deal_id"].is_u64())
        .count();
    assert_eq!(
        with_deal,
        emu.lock().deals.len() + v["summary"]["updated"].as_u64().unwrap_or(0) as usize
    );
    assert!(err.contains("simple CRM mode"), "{err}");
}

#[tokio::test]
async fn a_renamed_portal_is_reported_not_followed() {
    // The old address answers 302 to the new one; a followed POST would lose its body.
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::FOUND,
            [(
                axum::http::header::LOCATION,
                "https://new-salon.bitrix24.ru/rest/1/k3y/crm.lead.add.json",
            )],
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let c = Bitrix24::new(Settings::new(&format!("http://{addr}/rest/1/k3y/")).expect("url"))
        .expect("client");
    let err = c
        .call(
            "crm.lead.add",
            &json!({"fields": {}}),
            Retry::OnlyUnexecuted,
        )
        .await
        .expect_err("moved");
    assert!(err.is_fatal());
    let msg = err.to_string();
    assert!(
        msg.contains("https://new-salon.bitrix24.ru/rest/1/k3***/"),
        "{msg}"
    );
    assert!(!msg.contains("k3y"), "the code is masked: {msg}");
}

#[tokio::test]
async fn network_errors_never_show_the_webhook_code() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener); // nobody listens there now
    let mut s = Settings::new(&format!("http://{addr}/rest/1/topsecretcode/")).expect("url");
    s.max_attempts = 2;
    s.backoff = Duration::from_millis(1);
    let err = Bitrix24::new(s)
        .expect("client")
        .call("crm.settings.mode.get", &json!({}), Retry::Safe)
        .await
        .expect_err("down");
    assert!(
        matches!(err, CrmError::Unavailable { attempts: 2, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("topsecretcode"), "{err}");
}
