//! Whatever text an integrator feeds the loader, it answers with a profile or an error, never a
//! panic: arbitrary text, and the demo fixtures with random edits (which keep most of the
//! structure, so validation — not only the YAML parser — gets exercised).

use bot::config::{self, ConfigError};
use proptest::prelude::*;

const SALON: &str = config::DEMO_SALON_YAML;
const CLINIC: &str = config::DEMO_CLINIC_YAML;

/// One edit of a fixture, applied line-wise so the text stays valid UTF-8.
#[derive(Debug, Clone)]
enum Edit {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    /// Replace the part after the first `: ` of a line with a new value.
    ReplaceValue(usize, String),
    InsertText(usize, usize, String),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let value = prop_oneof![
        Just(String::new()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("~".to_string()),
        Just("\"25:00-26:00\"".to_string()),
        Just("{from: 5, to: 1}".to_string()),
        Just("\"{nope}\"".to_string()),
        Just("*missing".to_string()),
        Just("&a x".to_string()),
        Just("99999999999999999999999".to_string()),
        "[a-z_{}:\\-\\[\\], 0-9\"'#&*!|>]{0,12}",
        "\\PC{0,8}",
    ];
    prop_oneof![
        any::<usize>().prop_map(Edit::DeleteLine),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (any::<usize>(), value).prop_map(|(l, v)| Edit::ReplaceValue(l, v)),
        (
            any::<usize>(),
            any::<usize>(),
            "\\PC{0,6}|[\\t\\n :\\-\\[\\]{}]{1,3}"
        )
            .prop_map(|(l, c, t)| Edit::InsertText(l, c, t)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for e in edits {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match e {
            Edit::DeleteLine(i) => {
                lines.remove(i % n);
            }
            Edit::DuplicateLine(i) => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Edit::SwapLines(a, b) => lines.swap(a % n, b % n),
            Edit::ReplaceValue(i, v) => {
                let l = &mut lines[i % n];
                if let Some(pos) = l.find(": ") {
                    l.truncate(pos + 2);
                    l.push_str(v);
                }
            }
            Edit::InsertText(i, c, t) => {
                let l = &mut lines[i % n];
                let chars: Vec<char> = l.chars().collect();
                let at = c % (chars.len() + 1);
                let mut s: String = chars[..at].iter().collect();
                s.push_str(t);
                s.extend(&chars[at..]);
                *l = s;
            }
            Edit::Truncate(i) => lines.truncate(i % n),
        }
    }
    lines.join("\n")
}

/// Errors from text are always `Invalid` and render as `file:line:column: path: message`.
fn check(text: &str) {
    match config::load_str(text, "p.yaml") {
        Ok(_) => {}
        Err(e @ ConfigError::Invalid { .. }) => {
            let shown = e.to_string();
            assert!(shown.starts_with("p.yaml:"), "{shown}");
        }
        Err(e) => panic!("unexpected error kind: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check(&text);
    }

    #[test]
    fn yaml_like_text_never_panics(text in "([a-z_]{1,8}: ?[\\[\\]{}a-z0-9:\\-\"&*, ]{0,12}\n {0,4}-? ?){0,12}") {
        check(&text);
    }

    #[test]
    fn mutated_salon_never_panics(edits in prop::collection::vec(edit(), 1..4)) {
        check(&apply(SALON, &edits));
    }

    #[test]
    fn mutated_clinic_never_panics(edits in prop::collection::vec(edit(), 1..4)) {
        check(&apply(CLINIC, &edits));
    }
}

#[test]
fn the_mutator_really_breaks_fixtures() {
    // A mutation that must fail, so the property tests above exercise the error paths.
    let broken = apply(SALON, &[Edit::Truncate(20)]);
    assert!(config::load_str(&broken, "p.yaml").is_err());
}
