//! The `bot test dialogs` command as CI runs it: exit codes, the table and failure diff, JSON,
//! JUnit, coverage, filters, and the reference dialogs themselves.

use super::{folder, output_text as text, reminder_dialog, repo};
use std::path::Path;
use std::process::{Command, Output};

fn bot(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bot"))
        .args(["test", "dialogs"])
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run bot")
}

fn passing() -> String {
    reminder_dialog(
        "    bot: {key: reminder_day_before, buttons: [Подтверждаю, Перенести, Отменить]}",
        "  - press: Подтверждаю\n    confirmed: true\n",
    )
}

#[test]
fn a_passing_folder_exits_0_with_a_table() {
    let dir = folder(&[("dialogs/01-ok.yaml", &passing())]);
    let o = bot(&[], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        "dialog",
        "variations replayed",
        "slowest turn",
        "reminder",
        "pass",
        "1 passed",
    ] {
        assert!(out.contains(want), "{want}: {}", text(&o));
    }
}

#[test]
fn a_failing_dialog_exits_1_and_names_the_step_the_phrase_and_the_check() {
    let broken = passing().replace(
        "confirmed: true",
        "confirmed: true\n    bot: {key: cancelled}",
    );
    let dir = folder(&[("d.yaml", &broken)]);
    let o = bot(&["d.yaml"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        "FAIL reminder (d.yaml)",
        "step 2 steps[1].bot at d.yaml:11:10",
        "client:  press «Подтверждаю»",
        "allowed: key cancelled",
        "failed:  key: reply came from template reminder_confirmed, not cancelled",
    ] {
        assert!(out.contains(want), "{want:?} in {}", text(&o));
    }
}

#[test]
fn a_malformed_spec_exits_2_with_its_location_and_runs_nothing() {
    let bad = "id: bad\ntitle: Bad\nnow: 2026-11-20 10:00\nsteps:\n  - client: привет\n    bot:\n      answr: x\n";
    let dir = folder(&[("03-bad.yaml", bad), ("01-ok.yaml", &passing())]);
    let o = bot(&["."], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("03-bad.yaml:7:7: steps[0].bot: unknown key \"answr\" (expected one of"),
        "{}",
        text(&o)
    );
    assert!(o.stdout.is_empty(), "{}", text(&o));
}

#[test]
fn duplicate_ids_unknown_paths_and_target_are_usage_errors() {
    let dir = folder(&[("a.yaml", &passing()), ("b.yaml", &passing())]);
    let o = bot(&[], dir.path());
    assert_eq!(o.status.code(), Some(2), "no dialogs/ folder: {}", text(&o));
    let o = bot(&["."], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("is also used by"),
        "{}",
        text(&o)
    );
    let o = bot(&["a.yaml", "--target", "http://127.0.0.1:9"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot reach bot serve at http://127.0.0.1:9"),
        "{}",
        text(&o)
    );
}

#[test]
fn json_junit_coverage_and_filter() {
    let broken = passing()
        .replace("id: reminder", "id: broken")
        .replace("confirmed: true", "confirmed: false");
    let dir = folder(&[("d/ok.yaml", &passing()), ("d/broken.yaml", &broken)]);
    let o = bot(
        &[
            "d",
            "--format",
            "json",
            "--junit",
            "junit.xml",
            "--coverage",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(doc["summary"]["dialogs"], 2);
    assert_eq!(doc["summary"]["failed"], 1);
    let failed = &doc["dialogs"][0];
    assert_eq!(failed["id"], "broken");
    assert_eq!(failed["runs"][0]["failure"]["check"], "confirmed");
    assert_eq!(failed["runs"][0]["failure"]["step"], 2);
    let areas = doc["coverage"][0]["areas"]
        .as_array()
        .expect("coverage areas");
    let templates = areas
        .iter()
        .find(|a| a["name"] == "reply templates")
        .expect("templates area");
    let covered = templates["covered"].to_string();
    assert!(covered.contains("reminder_day_before"), "{covered}");
    assert!(templates["missing"].to_string().contains("\"booked\""));

    let xml = std::fs::read_to_string(dir.path().join("junit.xml")).expect("junit written");
    assert!(
        xml.contains("<testsuites name=\"bot test dialogs\" tests=\"2\" failures=\"1\""),
        "{xml}"
    );
    assert!(xml.contains("<testcase name=\"Напоминание: path 1 of 1 (variations 1,1)\" classname=\"dialogs.broken\""), "{xml}");
    assert!(xml.contains("<failure message=\"steps[1] at d/broken.yaml:9:5: confirmed: the visit was confirmed\" type=\"confirmed\">"), "{xml}");

    let o = bot(&["d", "--filter", "remind", "--coverage"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("1 dialogs"), "{}", text(&o));
    assert!(out.contains("not exercised by any dialog"), "{}", text(&o));
    let o = bot(&["d", "--filter", "nothing-like-this"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn repeat_labels_flaky_dialogs() {
    let narrow = reminder_dialog(
        "    bot: {key: reminder_day_before}",
        "  - press: Подтверждаю\n    bot: \"Спасибо, ждём вас {date} в {time}!\"\n",
    );
    let dir = folder(&[("d.yaml", &narrow)]);
    let o = bot(&["d.yaml", "--repeat", "8"], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("FLAKY"), "{}", text(&o));
    assert!(out.contains("1/1 in 1 path ×8"), "{}", text(&o));
}

#[test]
fn a_broken_copy_of_a_reference_dialog_exits_1_and_names_the_failing_step() {
    let original =
        std::fs::read_to_string(repo().join("dialogs/08-reminder-reply.yaml")).expect("dialog 08");
    let broken = original.replacen(
        "{any}завтра, 21.11 в 15:00{any}",
        "{any}завтра, 22.11 в 15:00{any}",
        1,
    );
    assert_ne!(broken, original, "the dialog changed; update this test");
    let dir = folder(&[("dialogs/08-broken.yaml", &broken)]);
    let o = bot(&[], dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for want in [
        "FAIL 08-reminder-reply (dialogs/08-broken.yaml)",
        "step 1 steps[0].bot (напоминание за сутки о первой записи) at dialogs/08-broken.yaml:",
        "client:  wait 5h",
        "allowed: template «{any}завтра, 22.11 в 15:00{any}",
        "         key reminder_day_before",
        "failed:  template: does not match",
        "(the same failure on paths 2, 3)",
    ] {
        assert!(out.contains(want), "{want:?} in {}", text(&o));
    }
}

/// `cargo test` is the whole suite: the bot must pass its own reference dialogs, every
/// variation, with the same command CI runs.
#[test]
fn the_bot_passes_every_reference_dialog() {
    let o = bot(&["dialogs/", "--repeat", "3"], &repo());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let files = crate::dialogs::reference_dialog_files();
    assert!(files >= 10, "{files} reference dialogs");
    assert!(out.contains(&format!("{files} dialogs")), "{out}");
}

#[test]
fn the_reference_dialogs_hold_on_max_and_vk_and_the_channel_is_really_replaced() {
    for channel in ["max", "vk"] {
        let o = bot(&["dialogs/", "--channel", channel], &repo());
        assert_eq!(o.status.code(), Some(0), "{channel}: {}", text(&o));
    }
    // A dialog that expects its lead from Telegram fails once it is replayed on MAX.
    let lead = std::fs::read_to_string(repo().join("dialogs/04-price.yaml")).expect("read");
    let pinned = lead.replacen("    lead:\n", "    lead:\n      channel: telegram\n", 1);
    assert_ne!(pinned, lead, "04-price.yaml expects a lead");
    let thanks =
        std::fs::read_to_string(repo().join("dialogs/fragments/thanks.yaml")).expect("read");
    let dir = folder(&[
        ("dialogs/04.yaml", &pinned),
        ("dialogs/fragments/thanks.yaml", &thanks),
    ]);
    let on_telegram = bot(&[], dir.path());
    assert_eq!(on_telegram.status.code(), Some(0), "{}", text(&on_telegram));
    let on_max = bot(&["--channel", "max"], dir.path());
    assert_eq!(on_max.status.code(), Some(1), "{}", text(&on_max));
    let unknown = bot(&["--channel", "icq"], dir.path());
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("max, vk"));
}
