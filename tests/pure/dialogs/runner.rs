//! The runner's mechanics: the virtual clock and reminders, the booking store effects are
//! applied to, strict and explicit effect checks, variations and how they combine, repeats,
//! fragments, latency budgets, and failures that say where and why.

use super::{compile_spec, failure_of, failures, reminder_dialog, run_spec, run_spec_with};
use bot::spec::model::Combine;
use bot::spec::runner::Verdict;

#[test]
fn reminders_are_scheduled_from_the_bookings_and_fire_when_time_passes() {
    let spec = "id: clock\ntitle: Часы\nnow: 2026-11-20 10:00\nbookings:\n  - {id: B1, service: manicure, staff: olga, at: 2026-11-21 15:00}\nsteps:\n  - wait: 4h\n    silent: true\n    reminders:\n      - {kind: day_before, at: 20.11 15:00}\n      - {kind: soon, at: 2026-11-21 13:00}\n  - wait: 1h\n    bot: {key: reminder_day_before}\n    reminders: [{kind: soon, at: 21.11 13:00}]\n";
    let report = run_spec(spec);
    assert_eq!(report.verdict, Verdict::Pass, "{}", failures(&report));

    let wrong = spec.replace("at: 20.11 15:00", "at: 20.11 16:00");
    let f = failure_of(&wrong);
    assert_eq!(
        (f.step, f.check.as_str()),
        (1, "reminders"),
        "{}",
        f.render()
    );
    assert!(
        f.detail.contains("day_before 20.11 15:00"),
        "{}",
        f.render()
    );
}

#[test]
fn confirming_a_reminder_is_an_effect_and_strict_effects_catch_surprises() {
    let ok = reminder_dialog(
        "    bot: {key: reminder_day_before}",
        "  - press: Подтверждаю\n    confirmed: true\n    cancelled: false\n",
    );
    let report = run_spec(&ok);
    assert_eq!(report.verdict, Verdict::Pass, "{}", failures(&report));

    let wrong = ok.replace("confirmed: true", "confirmed: false");
    let f = failure_of(&wrong);
    assert_eq!(
        (f.step, f.check.as_str()),
        (2, "confirmed"),
        "{}",
        f.render()
    );

    // A cancellation the step does not mention fails the step.
    let surprise = reminder_dialog(
        "    bot: {key: reminder_day_before}",
        "  - press: Отменить\n    bot: {key: confirm_cancel}\n  - press: Да, отменить\n    bot: {key: cancelled}\n",
    );
    let f = run_spec(&surprise).runs[0]
        .failure
        .clone()
        .expect("a failure");
    assert_eq!(
        (f.step, f.check.as_str()),
        (3, "cancelled"),
        "{}",
        f.render()
    );
    assert!(f.detail.contains("unexpected"), "{}", f.render());
    assert!(
        f.effects.iter().any(|e| e.contains("cancelled B1")),
        "{}",
        f.render()
    );

    let declared = surprise.replace(
        "bot: {key: cancelled}",
        "bot: {key: cancelled}\n    cancelled: {service: manicure, date: 21.11, time: \"15:00\", staff: olga}\n    reminders: []",
    );
    let report = run_spec(&declared);
    assert_eq!(report.verdict, Verdict::Pass, "{}", failures(&report));

    let other_time = declared.replace("time: \"15:00\"", "time: \"16:00\"");
    let f = run_spec(&other_time).runs[0]
        .failure
        .clone()
        .expect("a failure");
    assert_eq!(f.check, "cancelled", "{}", f.render());
}

#[test]
fn no_show_marks_the_booking_and_sends_the_follow_up() {
    let spec = "id: noshow\ntitle: Неявка\nnow: 2026-11-21 16:30\nbookings:\n  - {id: B7, service: pedicure, staff: olga, at: 2026-11-21 15:00}\nsteps:\n  - no_show: B7\n    bot:\n      key: noshow_followup\n      buttons: [Подобрать время, Не нужно]\n    reminders: []\n";
    let report = run_spec(spec);
    assert_eq!(report.verdict, Verdict::Pass, "{}", failures(&report));

    let unknown = spec.replace("no_show: B7", "no_show: B8");
    let f = run_spec(&unknown).runs[0]
        .failure
        .clone()
        .expect("a failure");
    assert_eq!(f.check, "action", "{}", f.render());
    assert!(f.detail.contains("no booking B8"), "{}", f.render());
}

#[test]
fn buttons_are_pressed_by_title_payload_or_index_and_a_missing_one_fails() {
    for press in [
        "Подтверждаю",
        "{payload: \"yes\"}",
        "{index: 1}",
        "ПОДТВЕРЖДАЮ",
    ] {
        let spec = reminder_dialog(
            "    bot: {key: reminder_day_before}",
            &format!("  - press: {press}\n    confirmed: true\n"),
        );
        let report = run_spec(&spec);
        assert_eq!(
            report.verdict,
            Verdict::Pass,
            "{press}\n{}",
            failures(&report)
        );
    }
    let spec = reminder_dialog(
        "    bot: {key: reminder_day_before}",
        "  - press: Записаться\n",
    );
    let f = failure_of(&spec);
    assert_eq!((f.step, f.check.as_str()), (2, "action"), "{}", f.render());
    assert!(
        f.detail
            .contains("offered: Подтверждаю, Перенести, Отменить"),
        "{}",
        f.render()
    );
}

#[test]
fn every_variation_is_replayed_zip_by_default_and_product_on_request() {
    let spec = "id: vars\ntitle: Варианты\nnow: 2026-11-20 10:00\nbookings:\n  - {id: B1, service: manicure, staff: olga, at: 2026-11-21 15:00}\nsteps:\n  - reminder: day_before\n  - press: [Подтверждаю, \"{index: 1}\"]\n";
    // A list of titles: the second is a literal title that does not exist → that path fails.
    let report = run_spec(spec);
    assert_eq!(report.paths, 2);
    assert_eq!(report.variations, 2);
    assert_eq!(report.variations_replayed, 2);
    assert_eq!(
        report.path_verdict(0),
        Verdict::Pass,
        "{}",
        failures(&report)
    );
    assert_eq!(report.path_verdict(1), Verdict::Fail);

    let three = "id: zip\ntitle: Zip\nnow: 2026-11-20 10:00\nsteps:\n  - client: [ывапролд, йцукенг, фывапро]\n  - wait: 1h\n  - client: [ячсмить, щшгнекуц]\n";
    let d = compile_spec(three, &[]).expect("compiles");
    assert_eq!(d.combine, Combine::Zip);
    assert_eq!(d.paths(), vec![vec![0, 0, 0], vec![1, 0, 1], vec![2, 0, 0]]);
    let report = run_spec(three);
    assert_eq!(report.runs.len(), 3);
    assert_eq!(report.variations_replayed, 5, "every phrase replayed");

    let product = three.replace("title: Zip", "title: Zip\nvariations: product");
    let d = compile_spec(&product, &[]).expect("compiles");
    assert_eq!(d.paths().len(), 6);
    let capped = product.replace("variations: product", "variations: product\nmax_paths: 4");
    let errors = compile_spec(&capped, &[]).expect_err("over the cap");
    assert!(
        errors[0]
            .to_string()
            .contains("gives 6 paths, more than max_paths 4"),
        "{}",
        errors[0]
    );
}

#[test]
fn repeats_run_every_path_again_with_another_client_and_stay_inside_the_variations() {
    let spec = reminder_dialog(
        "    bot: {key: reminder_day_before}",
        "  - press: Подтверждаю\n    bot:\n      any:\n        - \"Спасибо, ждём вас {date} в {time}!\"\n        - \"Отлично, до встречи {date} в {time}!\"\n",
    );
    let report = run_spec_with(&spec, &[], 8);
    assert_eq!(report.runs.len(), 8);
    assert_eq!(report.verdict, Verdict::Pass, "{}", failures(&report));
    // Different clients get different reply variations (the engine hashes the client id).
    let texts: std::collections::BTreeSet<&str> = report
        .runs
        .iter()
        .filter_map(|r| r.transcript.iter().rfind(|l| l.who == "bot"))
        .map(|l| l.text.as_str())
        .collect();
    assert!(
        texts.len() > 1,
        "repeats should see both variations: {texts:?}"
    );

    // Only one variation allowed: some repeats fail, some pass → flaky.
    let narrow = spec.replace("        - \"Отлично, до встречи {date} в {time}!\"\n", "");
    let report = run_spec_with(&narrow, &[], 8);
    assert_eq!(report.verdict, Verdict::Flaky, "{}", failures(&report));
}

#[test]
fn fragments_are_included_with_their_own_locations_and_variables() {
    let fragment = "description: подтверждение визита\nsteps:\n  - press: ${button}\n    bot:\n      any:\n        - \"Спасибо, ждём вас {date} в {time}!\"\n        - \"Отлично, до встречи {date} в {time}!\"\n    confirmed: true\n";
    let spec = reminder_dialog(
        "    bot: {key: reminder_day_before}",
        "  - include: fragments/confirm.yaml\n    with: {button: Подтверждаю}\n",
    );
    let report = run_spec_with(&spec, &[("fragments/confirm.yaml", fragment)], 1);
    assert_eq!(report.verdict, Verdict::Pass, "{}", failures(&report));
    assert_eq!(report.steps, 2);

    let broken = fragment.replace("confirmed: true", "confirmed: false");
    let report = run_spec_with(&spec, &[("fragments/confirm.yaml", &broken)], 1);
    let f = report.runs[0].failure.clone().expect("a failure");
    assert!(
        f.location.contains("fragments/confirm.yaml:3:5"),
        "{}",
        f.render()
    );
    assert_eq!(f.step, 2);
}

#[test]
fn a_turn_over_the_latency_budget_fails() {
    let spec = reminder_dialog("    bot: {key: reminder_day_before}\n    latency: 0ms", "");
    let f = failure_of(&spec);
    assert_eq!(f.check, "latency", "{}", f.render());
    let relaxed = reminder_dialog("    bot: {key: reminder_day_before}\n    latency: 2s", "");
    assert_eq!(run_spec(&relaxed).verdict, Verdict::Pass);
}

#[test]
fn understanding_is_checked_against_what_the_nlu_returned() {
    let spec = "id: nlu\ntitle: NLU\nnow: 2026-11-20 10:00\nsteps:\n  - client: ывапролд жщзхъ\n    understood: {intent: other}\n";
    let report = run_spec(spec);
    assert_eq!(report.verdict, Verdict::Pass, "{}", failures(&report));
    let wrong = spec.replace("intent: other", "intent: cancel");
    let f = failure_of(&wrong);
    assert_eq!(f.check, "understood", "{}", f.render());
    assert!(f.detail.contains("want cancel"), "{}", f.render());
}
