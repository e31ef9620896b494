//! Every kind of answer check, in a real spec against the real engine: the right expectation
//! passes, a wrong one fails at step 1 and names the check. The day-before reminder of the
//! demo salon reads (one of two variations) "… завтра, 21.11 в 15:00, … маникюр … Ольга …",
//! with the buttons Подтверждаю / Перенести / Отменить.

use super::{failure_of, failures, reminder_dialog, run_spec};
use bot::spec::runner::Verdict;

/// (what, `bot:` expectation, passes, check named when it fails)
const CASES: &[(&str, &str, bool, &str)] = &[
    ("key", "key: reminder_day_before", true, ""),
    ("key", "key: booked", false, "key"),
    (
        "template",
        r#"template: "{any}завтра, {date} в {time}{any}{service}{any}{staff}{any}""#,
        true,
        "",
    ),
    (
        "template",
        r#"template: "{any}послезавтра, {date} в {time}{any}""#,
        false,
        "template",
    ),
    (
        "template date shape",
        r#"template: "{any}завтра, {time} в {time}{any}""#,
        false,
        "template",
    ),
    ("regex", r#"regex: '21\.11 в 15:00'"#, true, ""),
    ("regex", r#"regex: '22\.11 в 15:00'"#, false, "regex"),
    (
        "contains",
        r#"contains: [ЗАВТРА, "21.11", "15:00", маникюр]"#,
        true,
        "",
    ),
    ("contains", "contains: [завтра, педикюр]", false, "contains"),
    (
        "any of exact texts",
        "any:\n        - text: \"Здравствуйте! Напоминаем: завтра, 21.11 в 15:00, вы записаны на маникюр, мастер Ольга. Подтвердите, пожалуйста, визит.\"\n        - text: \"Добрый день!  Ждём вас завтра, 21.11 в 15:00, на маникюр, мастер — Ольга. Всё в силе?\"",
        true,
        "",
    ),
    (
        "any of exact texts",
        "any:\n        - text: \"Напоминаем: завтра, 21.11 в 15:00\"\n        - key: booked",
        false,
        "any",
    ),
    (
        "buttons",
        "buttons: [Подтверждаю, Перенести, Отменить]",
        true,
        "",
    ),
    (
        "buttons",
        "buttons: [Подтверждаю, Отменить]",
        false,
        "buttons",
    ),
    ("buttons", "buttons: []", false, "buttons"),
    ("buttons_include", "buttons_include: [отменить]", true, ""),
    (
        "buttons_include",
        "buttons_include: [Записаться]",
        false,
        "buttons_include",
    ),
    ("not", "not: [послезавтра, педикюр]", true, ""),
    ("not", r#"not: ["21.11"]"#, false, "not"),
    ("capture", r#"capture: {day: '(\d{2}\.\d{2})'}"#, true, ""),
    (
        "capture",
        r#"capture: {day: '(\d{4}-\d{2})'}"#,
        false,
        "capture day",
    ),
];

#[test]
fn each_matcher_accepts_the_right_answer_and_rejects_a_wrong_one() {
    for (what, bot, passes, check) in CASES {
        let spec = reminder_dialog(&format!("    bot:\n      {bot}"), "");
        let report = run_spec(&spec);
        if *passes {
            assert_eq!(
                report.verdict,
                Verdict::Pass,
                "{what} should pass: {bot}\n{}",
                failures(&report)
            );
        } else {
            assert_eq!(report.verdict, Verdict::Fail, "{what} should fail: {bot}");
            let f = report.runs[0].failure.as_ref().expect("a failure");
            assert_eq!(f.step, 1, "{what}: {}", f.render());
            assert!(
                f.check.contains(check),
                "{what}: check {:?} should name {check:?}\n{}",
                f.check,
                f.render()
            );
        }
    }
}

#[test]
fn exact_text_ignores_case_and_spacing_and_rejects_other_words() {
    // The 2-hour reminder has a single variation.
    let soon = "Ждём вас сегодня в 15:00 на маникюр. Адрес: Новосибирск, ул. Гоголя, 23, 1 этаж, отдельный вход с торца (5 минут пешком от метро «Маршала Покрышкина», напротив ТЦ «Галерея»).";
    for (text, passes) in [
        (soon.to_string(), true),
        (soon.to_uppercase().replace(' ', "   "), true),
        (soon.replace("15:00", "16:00"), false),
        (soon.replace("Ждём", "Ждем"), true),
    ] {
        let spec = reminder_dialog(
            "    bot: {key: reminder_day_before}",
            &format!("  - reminder: soon\n    bot:\n      text: {text:?}\n"),
        );
        let report = run_spec(&spec);
        assert_eq!(
            report.verdict == Verdict::Pass,
            passes,
            "{text}\n{}",
            failures(&report)
        );
    }
}

#[test]
fn a_captured_value_is_reused_in_a_later_step_and_a_wrong_one_fails() {
    let ok = reminder_dialog(
        r#"    bot:
      key: reminder_day_before
      capture: {t: 'в (\d{2}:\d{2})'}"#,
        r#"  - press: Подтверждаю
    bot:
      any:
        - "Спасибо, ждём вас {date} в ${t}!"
        - "Отлично, до встречи {date} в ${t}!"
    confirmed: true
"#,
    );
    let report = run_spec(&ok);
    assert_eq!(report.verdict, Verdict::Pass, "{}", failures(&report));

    let wrong = ok.replace("в (\\d{2}:\\d{2})", "(\\d{2})\\.11");
    let report = run_spec(&wrong);
    assert_eq!(report.verdict, Verdict::Fail);
    let f = report.runs[0].failure.as_ref().expect("a failure");
    assert_eq!((f.step, f.check.as_str()), (2, "any"), "{}", f.render());
}

#[test]
fn several_messages_in_one_turn_are_checked_in_order() {
    // Waiting 30 hours fires both reminders: two messages in one step.
    let base = "id: two\ntitle: Два напоминания\nnow: 2026-11-20 10:00\nbookings:\n  - {id: B1, service: manicure, staff: olga, at: 2026-11-21 15:00}\nsteps:\n  - wait: 30h\n    bot:\n";
    let right = format!(
        "{base}      - key: reminder_day_before\n      - template: \"Ждём вас сегодня в {{time}} на {{service}}. Адрес: {{any}}\"\n    reminders: []\n"
    );
    let report = run_spec(&right);
    assert_eq!(report.verdict, Verdict::Pass, "{}", failures(&report));

    let swapped = format!("{base}      - key: reminder_soon\n      - key: reminder_day_before\n");
    let f = run_spec(&swapped).runs[0]
        .failure
        .clone()
        .expect("a failure");
    assert!(f.detail.contains("message 1"), "{}", f.render());

    let one = format!("{base}      key: reminder_day_before\n");
    let f = failure_of(&one);
    assert_eq!(f.check, "messages", "{}", f.render());
    assert!(
        f.detail.contains("expected 1 message(s), the bot sent 2"),
        "{}",
        f.render()
    );
}

#[test]
fn silence_is_checked_both_ways() {
    let quiet = reminder_dialog(
        "    bot: {key: reminder_day_before}",
        "  - wait: 1h\n    silent: true\n",
    );
    let report = run_spec(&quiet);
    assert_eq!(report.verdict, Verdict::Pass, "{}", failures(&report));

    let noisy = reminder_dialog("    silent: true", "");
    let f = failure_of(&noisy);
    assert_eq!(f.check, "silent", "{}", f.render());
}
