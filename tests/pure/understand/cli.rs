//! The real `bot understand` binary: one JSON line per message with exactly the documented
//! keys, from arguments and from stdin. It runs on the embedded demo salon profile.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const KEYS: [&str; 11] = [
    "text",
    "intent",
    "date",
    "time",
    "part_of_day",
    "service",
    "staff",
    "phone",
    "name",
    "email",
    "confidence",
];

fn check_line(line: &str, text: &str) {
    let v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {line}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = KEYS.to_vec();
    want.sort_unstable();
    assert_eq!(keys, want, "{line}");
    assert_eq!(obj["text"], text);
    assert!(
        obj["confidence"]
            .as_f64()
            .is_some_and(|c| (0.0..=1.0).contains(&c))
    );
}

/// Stdout is one valid line per text of `texts`, in order (`why` there are that many); its lines.
#[track_caller]
fn check_stdout(out: &Output, texts: &[&str], why: &str) -> Vec<String> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<String> = stdout.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), texts.len(), "{why}: {stdout}");
    for (line, text) in lines.iter().zip(texts) {
        check_line(line, text);
    }
    lines
}

#[test]
fn understand_prints_one_json_line_per_argument() {
    let texts = ["хочу на маникюр завтра в 3, 89131234567", "спасибо"];
    let out = Command::new(env!("CARGO_BIN_EXE_bot"))
        .args(["understand", "--now", crate::understand::NOW])
        .args(texts)
        .output()
        .unwrap_or_else(|e| panic!("bot did not run: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = check_stdout(&out, &texts, "one line per argument");
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap_or_default();
    assert_eq!(first["intent"], "book");
    assert_eq!(first["phone"], "+79131234567");
    assert_eq!(first["service"], "manicure");
    assert_eq!(first["date"], "2026-11-21");
    assert_eq!(first["time"], "15:00");
}

/// `bot understand` with `input` on stdin: its exit status, stdout and stderr.
fn understand_stdin(input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bot"))
        .args(["understand", "--now", crate::understand::NOW])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("bot did not run: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .unwrap_or_else(|e| panic!("stdin: {e}"));
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("bot failed: {e}"))
}

#[test]
fn understand_reads_messages_from_stdin() {
    let out = understand_stdin("где вы находитесь?\n\nотмените запись\n".as_bytes());
    assert!(out.status.success());
    check_stdout(
        &out,
        &["где вы находитесь?", "отмените запись"],
        "blank lines are skipped",
    );
}

#[test]
fn understand_reports_a_stdin_line_that_is_not_utf8_and_goes_on() {
    let mut input = "где вы находитесь?\n".as_bytes().to_vec();
    input.extend_from_slice(b"\xff\xfe broken\n");
    input.extend_from_slice("отмените запись\r\n".as_bytes());
    input.extend_from_slice(b"also \xc0 broken");
    let out = understand_stdin(&input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        ["stdin:2: not valid UTF-8", "stdin:4: not valid UTF-8"],
        "{stderr}"
    );
    check_stdout(
        &out,
        &["где вы находитесь?", "отмените запись"],
        "nothing for the bad lines",
    );
}

#[test]
fn check_line_rejects_extra_or_missing_keys() {
    let ok = r#"{"text":"x","intent":"other","date":null,"time":null,"part_of_day":null,"service":null,"staff":null,"phone":null,"name":null,"email":null,"confidence":0.2}"#;
    check_line(ok, "x");
    let extra = ok.replace("\"confidence\"", "\"extra\":1,\"confidence\"");
    assert!(std::panic::catch_unwind(|| check_line(&extra, "x")).is_err());
    let missing = ok.replace("\"email\":null,", "");
    assert!(std::panic::catch_unwind(|| check_line(&missing, "x")).is_err());
}
