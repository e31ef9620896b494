//! A report as the owner reads it: a terminal table (one column per source or per week, and
//! the change), CSV of the KPIs, and the masking of personal data in what is shown (`+7 913
//! ***-**-67`, «Анна К.», the first characters of an id).

use super::Kpis;
use std::fmt::Write;

/// One row of the table: a label and how to read the value from the KPIs.
type Row = (&'static str, fn(&Kpis) -> Option<f64>, Unit);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Count,
    Seconds,
    Share,
    Percent,
}

fn count(v: u64) -> Option<f64> {
    Some(v as f64)
}

const ROWS: &[Row] = &[
    ("chats", |k| count(k.chats), Unit::Count),
    ("client messages", |k| count(k.messages_client), Unit::Count),
    (
        "business messages",
        |k| count(k.messages_business),
        Unit::Count,
    ),
    ("requests", |k| count(k.requests), Unit::Count),
    ("answered", |k| count(k.answered), Unit::Count),
    ("unanswered", |k| count(k.unanswered), Unit::Count),
    (
        "first response, median",
        |k| k.first_response_median_s,
        Unit::Seconds,
    ),
    (
        "first response, p90",
        |k| k.first_response_p90_s,
        Unit::Seconds,
    ),
    (
        "answered within 1 min",
        |k| k.answered_within_60s,
        Unit::Share,
    ),
    (
        "answered within 15 min",
        |k| k.answered_within_15min,
        Unit::Share,
    ),
    (
        "every response, median",
        |k| k.every_response_median_s,
        Unit::Seconds,
    ),
    (
        "every response, p90",
        |k| k.every_response_p90_s,
        Unit::Seconds,
    ),
    ("qualified", |k| count(k.qualified), Unit::Count),
    ("qualified %", |k| k.qualified_pct, Unit::Percent),
    (
        "qualified without a human",
        |k| k.qualified_without_human.map(|v| v as f64),
        Unit::Count,
    ),
    ("booked", |k| count(k.booked), Unit::Count),
    (
        "booking conversion %",
        |k| k.booking_conversion_pct,
        Unit::Percent,
    ),
    ("no-show rate %", |k| k.no_show_rate_pct, Unit::Percent),
    (
        "unmarked past bookings",
        |k| k.unmarked_past_bookings.map(|v| v as f64),
        Unit::Count,
    ),
    (
        "returning clients",
        |k| k.returning_clients.map(|v| v as f64),
        Unit::Count,
    ),
    (
        "LLM asked (messages)",
        |k| k.llm_asked.map(|v| v as f64),
        Unit::Count,
    ),
    (
        "LLM answer used",
        |k| k.llm_used.map(|v| v as f64),
        Unit::Count,
    ),
];

fn show(v: Option<f64>, unit: Unit) -> String {
    let Some(v) = v else {
        return "—".into();
    };
    match unit {
        Unit::Count => format!("{v:.0}"),
        Unit::Seconds => duration(v),
        Unit::Share => format!("{:.1} %", v * 100.0),
        Unit::Percent => format!("{v:.1} %"),
    }
}

/// Seconds as people read them: «45 s», «12 min 5 s», «3 h 20 min».
pub fn duration(s: f64) -> String {
    let s = s.round() as i64;
    match s {
        ..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

fn change(a: Option<f64>, b: Option<f64>, unit: Unit) -> String {
    let (Some(a), Some(b)) = (a, b) else {
        return "—".into();
    };
    let d = b - a;
    let sign = if d > 0.0 { "+" } else { "" };
    match unit {
        Unit::Count => format!("{sign}{d:.0}"),
        Unit::Seconds => format!("{}{}", if d < 0.0 { "−" } else { "+" }, duration(d.abs())),
        Unit::Share => format!("{sign}{:.1} pp", d * 100.0),
        Unit::Percent => format!("{sign}{d:.1} pp"),
    }
}

/// The KPIs of each column side by side; with two columns, the change from the first to the
/// second.
pub fn table(columns: &[(String, &Kpis)]) -> String {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
    let mut header = vec!["KPI".to_string()];
    header.extend(columns.iter().map(|(name, _)| name.clone()));
    let with_change = columns.len() == 2;
    if with_change {
        header.push("change".into());
    }
    t.set_header(header);
    for (label, read, unit) in ROWS {
        let mut row = vec![(*label).to_string()];
        row.extend(columns.iter().map(|(_, k)| show(read(k), *unit)));
        if with_change {
            row.push(change(read(columns[0].1), read(columns[1].1), *unit));
        }
        t.add_row(row);
    }
    t.to_string()
}

/// The JSON names of the KPIs, in their documented order (the CSV's columns).
pub const FIELDS: [&str; 22] = [
    "chats",
    "messages_client",
    "messages_business",
    "requests",
    "answered",
    "unanswered",
    "first_response_median_s",
    "first_response_p90_s",
    "answered_within_60s",
    "answered_within_15min",
    "every_response_median_s",
    "every_response_p90_s",
    "qualified",
    "qualified_pct",
    "qualified_without_human",
    "booked",
    "booking_conversion_pct",
    "no_show_rate_pct",
    "unmarked_past_bookings",
    "returning_clients",
    "llm_asked",
    "llm_used",
];

/// The KPIs as CSV: one line per scope (`all`, `channel:…`, `source:…`), empty for null.
pub fn csv(scopes: &[(String, &Kpis)]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["scope"];
    header.extend(FIELDS);
    w.write_record(&header)?;
    for (scope, k) in scopes {
        let v = serde_json::to_value(k).unwrap_or_default();
        let mut line = vec![scope.clone()];
        line.extend(FIELDS.iter().map(|f| match &v[*f] {
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        }));
        w.write_record(&line)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A chat's name or id without the person in it: a phone as `+7 913 ***-**-67`, a name as
/// «Анна К.», an id as its first four characters and «…».
pub fn mask_chat(chat: &str) -> String {
    let mut digits: String = chat.chars().filter(char::is_ascii_digit).collect();
    if digits.len() == 11 && digits.starts_with('8') {
        digits.replace_range(..1, "7");
    }
    let only_phone_chars = chat
        .chars()
        .all(|c| c.is_ascii_digit() || " +-()\u{a0}".contains(c));
    // A bare number is an id (a Telegram chat) unless it reads as a Russian phone.
    let formatted = chat.chars().any(|c| " +-()\u{a0}".contains(c));
    let russian = digits.len() == 11 && (digits.starts_with('7') || digits.starts_with('8'));
    let phone_like = only_phone_chars && digits.len() >= 10 && (formatted || russian);
    if phone_like {
        let n = digits.len();
        return format!(
            "+{} {} ***-**-{}",
            &digits[..n - 10],
            &digits[n - 10..n - 7],
            &digits[n - 2..]
        )
        .replace("+ ", "+");
    }
    let words: Vec<&str> = chat.split_whitespace().collect();
    let is_name = !words.is_empty()
        && words
            .iter()
            .all(|w| w.chars().all(|c| c.is_alphabetic() || c == '-' || c == '.'));
    if is_name {
        let mut out = words[0].to_string();
        if let Some(second) = words.get(1).and_then(|w| w.chars().next()) {
            let _ = write!(out, " {second}.");
        }
        return out;
    }
    let shown: String = chat.chars().take(4).collect();
    format!("{shown}…")
}

/// An import's label without the person a WhatsApp export's file name holds
/// («WhatsApp Chat with Мария Ким.txt» → «WhatsApp Chat with Мария К….txt»).
pub fn mask_source(label: &str) -> String {
    for prefix in [
        "WhatsApp Chat with ",
        "Чат WhatsApp с контактом ",
        "Чат WhatsApp с ",
        "WhatsApp Chat - ",
    ] {
        let Some(rest) = label
            .replace('\u{a0}', " ")
            .strip_prefix(prefix)
            .map(str::to_string)
        else {
            continue;
        };
        let (title, ext) = match rest.rsplit_once('.') {
            Some((t, e)) if e.len() <= 4 => (t.to_string(), format!(".{e}")),
            _ => (rest.clone(), String::new()),
        };
        return format!("{prefix}{}{ext}", mask_chat(&title));
    }
    label.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whatsapp_file_names_lose_the_person() {
        assert_eq!(
            mask_source("WhatsApp Chat with +7 913 000-11-22.txt"),
            "WhatsApp Chat with +7 913 ***-**-22.txt"
        );
        assert_eq!(
            mask_source("WhatsApp Chat - Мария Ким.zip"),
            "WhatsApp Chat - Мария К..zip"
        );
        assert_eq!(mask_source("telegram-full.json"), "telegram-full.json");
        assert_eq!(mask_source("до бота"), "до бота");
    }

    #[test]
    fn personal_data_is_masked() {
        assert_eq!(mask_chat("+7 913 123-45-67"), "+7 913 ***-**-67");
        assert_eq!(mask_chat("79131234567"), "+7 913 ***-**-67");
        assert_eq!(mask_chat("Анна Кузнецова"), "Анна К.");
        assert_eq!(mask_chat("Мария"), "Мария");
        assert_eq!(mask_chat("web:3f9a0c1d2e"), "web:…");
        assert_eq!(mask_chat("6200000002"), "6200…");
    }

    #[test]
    fn the_table_shows_each_column_and_the_change() {
        let a = Kpis {
            requests: 10,
            answered_within_60s: Some(0.2),
            first_response_median_s: Some(1800.0),
            ..Kpis::default()
        };
        let b = Kpis {
            requests: 12,
            answered_within_60s: Some(0.9),
            first_response_median_s: Some(3.0),
            ..Kpis::default()
        };
        let t = table(&[("baseline".into(), &a), ("live".into(), &b)]);
        assert!(t.contains("baseline") && t.contains("live") && t.contains("change"));
        assert!(t.contains("+70.0 pp"), "{t}");
        assert!(t.contains("30 min 0 s") && t.contains("3 s"), "{t}");
        assert!(t.contains("+2"), "{t}");
        let csv = csv(&[("all".into(), &b)]).unwrap();
        assert!(csv.starts_with("scope,chats,"), "{csv}");
        assert!(csv.contains("all,0,0,0,12,"), "{csv}");
    }
}
