//! Malformed specs are rejected before anything runs, each with `file:line:column`, the field
//! path and what was expected; and no input makes the parser panic.

use super::{compile_spec, salon, spec_errors};
use bot::spec::load;
use proptest::prelude::*;
use std::path::Path;

const HEAD: &str = "id: t\ntitle: T\nnow: 2026-11-20 10:00\n";

/// (spec after HEAD, line:column, text the error must contain)
const CASES: &[(&str, &str, &str)] = &[
    (
        "steps:\n  - client: привет\n    bot:\n      answr: x\n",
        "7:7",
        r#"steps[0].bot: unknown key "answr" (expected one of text, template, regex, contains, key, any, buttons"#,
    ),
    (
        "steps:\n  - client: привет\n    clinet: x\n",
        "6:5",
        r#"steps[0]: unknown key "clinet""#,
    ),
    (
        "steps:\n  - client: привет\n    press: Да\n",
        "5:5",
        "steps[0]: a step needs exactly one of client, press, contact, reminder, no_show, wait, release, include (found: client, press)",
    ),
    ("steps:\n  - bot: {key: greeting}\n", "5:5", "(found: none)"),
    (
        "bookings:\n  - {id: B1, service: manicur, staff: olga, at: 2026-11-21 15:00}\nsteps:\n  - wait: 1h\n",
        "5:23",
        r#"bookings[0].service: unknown service "manicur" (the profile has manicure, gel_polish"#,
    ),
    (
        "bookings:\n  - {id: B1, service: manicure, staff: anna, at: 2026-11-21 15:00}\nsteps:\n  - wait: 1h\n",
        "5:40",
        "bookings[0].staff: anna does not perform manicure",
    ),
    (
        "steps:\n  - wait: 23 hours\n",
        "5:11",
        r#"steps[0].wait: bad duration "23 hours""#,
    ),
    (
        "steps:\n  - client: привет\n    bot: \"Записала вас на {servise} {date}\"\n",
        "6:10",
        "steps[0].bot: unknown placeholder {servise} (expected one of date, time, service",
    ),
    (
        "steps:\n  - client: мой номер ${booking}\n",
        "5:5",
        "${booking} is not captured by an earlier step",
    ),
    (
        "steps:\n  - client: привет\n    bot: {key: bookd}\n",
        "6:10",
        r#"unknown template key "bookd" (expected one of greeting"#,
    ),
    (
        "steps:\n  - client: привет\n    bot: {regex: '(unclosed'}\n",
        "6:10",
        "steps[0].bot: bad regex",
    ),
    (
        "steps:\n  - client: 15\n",
        "5:13",
        "steps[0].client: a phrase that YAML reads as a number or true/false: put it in quotes",
    ),
    (
        "steps:\n  - client: привет\n    handoff: maybe\n",
        "6:14",
        r#"steps[0].handoff: unknown hand-off reason "maybe""#,
    ),
    (
        "steps:\n  - reminder: tomorrow\n",
        "5:15",
        r#"steps[0].reminder: unknown value "tomorrow" (expected one of day_before, soon)"#,
    ),
    (
        "steps:\n  - client: привет\n    understood: {intent: book, service: nails}\n",
        "6:17",
        r#"steps[0].understood.service: unknown service "nails""#,
    ),
    (
        "steps:\n  - client: привет\n    silent: true\n    bot: {key: greeting}\n",
        "5:5",
        "steps[0].silent: `silent: true` and `bot:` contradict each other",
    ),
    (
        "steps:\n  - include: fragments/none.yaml\n",
        "5:14",
        "steps[0].include:",
    ),
    ("steps:\n  - client: [привет\n", "5:", ""),
];

#[test]
fn malformed_specs_name_file_line_column_and_field() {
    let mut wrong = Vec::new();
    for (body, at, says) in CASES {
        let spec = format!("{HEAD}{body}");
        let errors = spec_errors(&spec);
        if !errors.contains(&format!("dialog.yaml:{at}")) || !errors.contains(says) {
            wrong.push(format!("want {at} {says:?} in:\n{errors}\nspec:\n{spec}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn missing_keys_and_bad_clock_are_reported() {
    let errors = spec_errors("id: t\nnow: 2026-11-20 10:00\nsteps: []\n");
    assert!(errors.contains(r#"missing key "title""#), "{errors}");
    let errors = spec_errors("id: t\ntitle: T\nnow: 20 ноября\nsteps:\n  - wait: 1h\n");
    assert!(
        errors.contains("dialog.yaml:3:6: now: bad date and time"),
        "{errors}"
    );
}

#[test]
fn fragment_errors_point_into_the_fragment() {
    let spec = format!("{HEAD}steps:\n  - include: fragments/bad.yaml\n");
    let errors = compile_spec(
        &spec,
        &[(
            "fragments/bad.yaml",
            "steps:\n  - client: да\n    bott: x\n",
        )],
    )
    .expect_err("bad fragment");
    let text = errors[0].to_string();
    assert!(
        text.contains("fragments/bad.yaml:3:5: steps[0]: unknown key \"bott\""),
        "{text}"
    );

    let errors = compile_spec(
        &spec,
        &[("fragments/bad.yaml", "steps:\n  - include: bad.yaml\n")],
    )
    .expect_err("cycle");
    assert!(
        errors[0].to_string().contains("includes itself"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_capture_makes_its_variable_usable_in_later_steps_only() {
    let ok = format!(
        "{HEAD}steps:\n  - client: привет\n    bot: {{key: greeting, capture: {{name: '(\\w+)'}}}}\n  - client: меня зовут ${{name}}\n"
    );
    compile_spec(&ok, &[]).expect("captured first");
    let same_step = format!(
        "{HEAD}steps:\n  - client: привет ${{name}}\n    bot: {{key: greeting, capture: {{name: '(\\w+)'}}}}\n"
    );
    assert!(spec_errors(&same_step).contains("${name} is not captured by an earlier step"));
}

/// Keys and values that occur in specs, to build inputs that get past the first line.
fn yamlish() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "id",
        "title",
        "now",
        "steps",
        "client",
        "bot",
        "press",
        "wait",
        "template",
        "any",
        "key",
        "regex",
        "buttons",
        "booked",
        "include",
        "capture",
        "reminders",
        "- ",
        "  ",
        "bookings",
        "handoff",
        "silent",
        "with",
        "lead",
        "fields",
        "understood",
    ]);
    let value = prop::sample::select(vec![
        "",
        " x",
        " [a, b]",
        " {a: 1}",
        " 2026-11-20 10:00",
        " 23h",
        " '{date}'",
        " ${v}",
        " &a",
        " *a",
        " !!str",
        " |",
        " ?",
        " true",
        " 15",
        " \"",
        " '",
        " [",
        " {",
        " -",
    ]);
    prop::collection::vec((key, value, 0usize..6), 0..24).prop_map(|parts| {
        let mut s = String::new();
        for (k, v, indent) in parts {
            s.push_str(&" ".repeat(indent));
            s.push_str(k);
            s.push(':');
            s.push_str(v);
            s.push('\n');
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_parser_never_panics_on_arbitrary_text(text in "\\PC*") {
        let _ = load::check_syntax(&text);
    }

    #[test]
    fn parsing_and_compiling_never_panic_on_spec_like_yaml(text in yamlish()) {
        let (engine, vocab) = salon();
        if let Ok(parsed) = load::parse_str(&text, Path::new("/nonexistent/d.yaml")) {
            let _ = load::compile(&parsed, engine.profile(), vocab);
        }
    }
}
