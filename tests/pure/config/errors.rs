//! Every validation rule, each shown by a small broken profile: the error names the exact
//! `file:line:column`, the field path, and what was expected.

use bot::config::{self, ConfigError};

/// A small valid profile; each case changes one spot of it (line numbers below refer to it).
const BASE: &str = r#"business:
  name: Тест
  kind: salon
  address: Новосибирск, ул. Ленина, 1
  phone: "+7 383 213-45-67"
hours:
  mon: "09:00-21:00"
  tue: "09:00-21:00"
  wed: "09:00-21:00"
  thu: "09:00-21:00"
  fri: "09:00-21:00"
  sat: "10:00-18:00"
  sun: closed
staff:
  - id: olga
    name: Ольга
    role: мастер
    services: [manicure, haircut]
    hours:
      mon: "10:00-19:00"
services:
  - id: manicure
    name: маникюр
    price: 1200
    duration_minutes: 60
    synonyms: [ногти]
  - id: haircut
    name: стрижка
    price: {from: 1500, to: 3500}
    duration_minutes: 60
promotions:
  - id: first_visit
    title: Скидка
    text: Скидка на первый визит
    valid_from: 2026-11-01
    valid_until: 2027-01-31
    services: [manicure]
    discount_percent: 15
faq:
  - id: address
    keywords: [адрес]
    answer: Ленина, 1
templates:
  greeting: ["Здравствуйте! Это {business}."]
qualification:
  required: [service, datetime, phone]
escalation:
  max_misunderstandings: 2
reminders:
  before_hours: [24, 2]
  quiet_hours: "22:00-09:00"
"#;

/// Replaces the first `from` in `BASE` with `to` (which must be there) and loads the result.
fn load_broken(from: &str, to: &str) -> Result<config::Profile, ConfigError> {
    assert!(BASE.contains(from), "case does not apply: {from:?}");
    config::load_str(&BASE.replacen(from, to, 1), "t.yaml")
}

struct Case {
    rule: &'static str,
    from: &'static str,
    to: &'static str,
    /// The whole error line.
    error: &'static str,
}

const CASES: &[Case] = &[
    Case {
        rule: "duration must be positive",
        from: "    duration_minutes: 60\n    synonyms",
        to: "    duration_minutes: 0\n    synonyms",
        error: "t.yaml:25:23: services[0].duration_minutes: must be positive, got 0",
    },
    Case {
        rule: "duration must be a number",
        from: "    duration_minutes: 60\n    synonyms",
        to: "    duration_minutes: 99999999999999999999\n    synonyms",
        error: "t.yaml:25:23: services[0].duration_minutes: expected a whole number",
    },
    Case {
        rule: "fixed price must be positive",
        from: "    price: 1200",
        to: "    price: -5",
        error: "t.yaml:24:12: services[0].price: must be positive, got -5",
    },
    Case {
        rule: "price range must have from < to",
        from: "    price: {from: 1500, to: 3500}",
        to: "    price: {from: 3500, to: 1500}",
        error: "t.yaml:29:19: services[1].price: range from 3500 to 1500 is empty (expected from < to; a single price is written as price: 3500)",
    },
    Case {
        rule: "price range needs both ends",
        from: "    price: {from: 1500, to: 3500}",
        to: "    price: {from: 1500}",
        error: "t.yaml:29:12: services[1].price.to: missing required key \"to\"",
    },
    Case {
        rule: "staff services must exist",
        from: "    services: [manicure, haircut]",
        to: "    services: [manicur, haircut]",
        error: "t.yaml:18:16: staff[0].services[0]: unknown service \"manicur\" (known: manicure, haircut)",
    },
    Case {
        rule: "promotion services must exist",
        from: "    services: [manicure]\n    discount",
        to: "    services: [pedicure]\n    discount",
        error: "t.yaml:37:16: promotions[0].services[0]: unknown service \"pedicure\" (known: manicure, haircut)",
    },
    Case {
        rule: "every service is performed by someone",
        from: "    services: [manicure, haircut]",
        to: "    services: [manicure]",
        error: "t.yaml:27:9: services[1].id: nobody performs service \"haircut\", so it can never be booked (expected it in some staff[].services)",
    },
    Case {
        rule: "service ids are unique",
        from: "  - id: haircut",
        to: "  - id: manicure",
        error: "t.yaml:27:9: services[1].id: duplicate service id \"manicure\" (already used by services[0])",
    },
    Case {
        rule: "staff ids are unique",
        from: "services:\n",
        to: "  - id: olga\n    name: Оля\n    role: мастер\n    services: [manicure]\nservices:\n",
        error: "t.yaml:21:9: staff[1].id: duplicate staff id \"olga\" (already used by staff[0])",
    },
    Case {
        rule: "faq ids are unique",
        from: "templates:\n",
        to: "  - id: address\n    keywords: [где]\n    answer: тут\ntemplates:\n",
        error: "t.yaml:43:9: faq[1].id: duplicate faq id \"address\" (already used by faq[0])",
    },
    Case {
        rule: "promotion ids are unique",
        from: "faq:\n",
        to: "  - id: first_visit\n    title: Ещё\n    text: Ещё скидка\nfaq:\n",
        error: "t.yaml:39:9: promotions[1].id: duplicate promotion id \"first_visit\" (already used by promotions[0])",
    },
    Case {
        rule: "ids are lowercase latin",
        from: "  - id: olga",
        to: "  - id: Olga",
        error: "t.yaml:15:9: staff[0].id: invalid id \"Olga\" (expected lowercase latin letters, digits and _, starting with a letter, e.g. gel_polish)",
    },
    Case {
        rule: "a phrase names one service only",
        from: "    synonyms: [ногти]",
        to: "    synonyms: [ногти, стрижка]",
        error: "t.yaml:28:11: services[1].name: \"стрижка\" already names service manicure (services[0].synonyms[1]); a phrase may name only one service",
    },
    Case {
        rule: "hours are HH:MM-HH:MM",
        from: "  tue: \"09:00-21:00\"",
        to: "  tue: \"9-21\"",
        error: "t.yaml:8:8: hours.tue: invalid hours \"9-21\" (expected \"HH:MM-HH:MM\" or \"closed\")",
    },
    Case {
        rule: "hours open before they close",
        from: "  sun: closed",
        to: "  sun: \"21:00-09:00\"",
        error: "t.yaml:13:8: hours.sun: 21:00-09:00 ends at or before it starts (expected opening < closing)",
    },
    Case {
        rule: "business hours list every day",
        from: "  tue: \"09:00-21:00\"\n",
        to: "",
        error: "t.yaml:7:3: hours.tue: missing (expected \"HH:MM-HH:MM\" or \"closed\" for every day mon..sun)",
    },
    Case {
        rule: "staff hours lie inside business hours",
        from: "      mon: \"10:00-19:00\"",
        to: "      mon: \"08:00-19:00\"",
        error: "t.yaml:20:12: staff[0].hours.mon: 08:00-19:00 is outside the business hours 09:00-21:00 of mon",
    },
    Case {
        rule: "staff do not work when the business is closed",
        from: "      mon: \"10:00-19:00\"",
        to: "      sun: \"10:00-15:00\"",
        error: "t.yaml:20:12: staff[0].hours.sun: the business is closed on sun (expected \"closed\" or no entry)",
    },
    Case {
        rule: "time zone is an IANA name",
        from: "  kind: salon\n",
        to: "  kind: salon\n  timezone: Asia/Novosibirk\n",
        error: "t.yaml:4:13: business.timezone: unknown time zone \"Asia/Novosibirk\" (expected an IANA name such as Asia/Novosibirsk)",
    },
    Case {
        rule: "kind is salon or clinic",
        from: "  kind: salon",
        to: "  kind: spa",
        error: "t.yaml:3:9: business.kind: unknown kind \"spa\" (expected salon or clinic)",
    },
    Case {
        rule: "business phone is a real number",
        from: "  phone: \"+7 383 213-45-67\"",
        to: "  phone: \"12345\"",
        error: "t.yaml:5:10: business.phone: invalid phone number \"12345\" (expected a Russian number such as +7 383 213-45-67)",
    },
    Case {
        rule: "required keys are present",
        from: "  phone: \"+7 383 213-45-67\"\n",
        to: "",
        error: "t.yaml:2:3: business.phone: missing required key \"phone\"",
    },
    Case {
        rule: "text values are not empty",
        from: "  name: Тест",
        to: "  name: \"  \"",
        error: "t.yaml:2:9: business.name: must not be empty",
    },
    Case {
        rule: "promotion validity from <= until",
        from: "    valid_until: 2027-01-31",
        to: "    valid_until: 2026-10-31",
        error: "t.yaml:36:18: promotions[0].valid_until: 2026-10-31 is before valid_from 2026-11-01 (expected valid_from ≤ valid_until)",
    },
    Case {
        rule: "dates exist",
        from: "    valid_until: 2027-01-31",
        to: "    valid_until: 2027-02-31",
        error: "t.yaml:36:18: promotions[0].valid_until: invalid date \"2027-02-31\" (expected YYYY-MM-DD, e.g. 2026-12-31)",
    },
    Case {
        rule: "discount is a percentage",
        from: "    discount_percent: 15",
        to: "    discount_percent: 150",
        error: "t.yaml:38:23: promotions[0].discount_percent: must be between 1 and 100, got 150",
    },
    Case {
        rule: "slot step divides the day",
        from: "reminders:\n",
        to: "booking: {slot_step_minutes: 7}\nreminders:\n",
        error: "t.yaml:49:30: booking.slot_step_minutes: 7 does not divide a day evenly (expected e.g. 10, 15, 20, 30 or 60)",
    },
    Case {
        rule: "template keys are known",
        from: "  greeting:",
        to: "  greetin:",
        error: "t.yaml:44:3: templates.greetin: unknown template (expected one of greeting, ask_service, ask_datetime, ask_time, ask_contact, ask_phone, ask_name, invalid_phone, offer_slots, offer_slots_days, slot_taken, no_slots, outside_hours, service_not_that_day, staff_away_then, too_soon, booked, ask_reschedule_when, rescheduled, no_booking, confirm_cancel, cancelled, cancel_kept, price_fixed, price_range, price_ask_service, offer_booking, promo_list, no_promo, handoff, handoff_complaint, handoff_medical, handoff_frustrated, handoff_safety, handoff_callback, callback_noted, move_or_new, choose_slot, offer_wider, ask_which_time, offer_manager, fallback, thanks, declined, reminder_day_before, reminder_soon, reminder_confirmed, reminder_declined, noshow_followup)",
    },
    Case {
        rule: "templates use only their placeholders",
        from: "  greeting: [\"Здравствуйте! Это {business}.\"]",
        to: "  greeting: [\"Здравствуйте! Это {business}.\", \"Привет, {name}!\"]",
        error: "t.yaml:44:47: templates.greeting[1]: placeholder {name} is not allowed in greeting (allowed: {business}, {phone})",
    },
    Case {
        rule: "templates have variations",
        from: "  greeting: [\"Здравствуйте! Это {business}.\"]",
        to: "  greeting: []",
        error: "t.yaml:44:13: templates.greeting: must have at least one variation",
    },
    Case {
        rule: "qualification fields are known",
        from: "  required: [service, datetime, phone]",
        to: "  required: [service, date, phone]",
        error: "t.yaml:46:23: qualification.required[1]: unknown lead field \"date\" (expected one of service, datetime, phone, name, email)",
    },
    Case {
        rule: "medical hand-off needs medical keywords",
        from: "  max_misunderstandings: 2",
        to: "  max_misunderstandings: 2\n  medical_questions_to_human: true",
        error: "t.yaml:49:31: escalation.medical_keywords: medical questions go to a person, but no medical_keywords say which messages are medical (expected words such as болит, температура, диагноз)",
    },
    Case {
        rule: "reminder hours are positive",
        from: "  before_hours: [24, 2]",
        to: "  before_hours: [24, 0]",
        error: "t.yaml:50:22: reminders.before_hours[1]: must be positive, got 0",
    },
    Case {
        rule: "quiet hours are an interval",
        from: "  quiet_hours: \"22:00-09:00\"",
        to: "  quiet_hours: \"22:00\"",
        error: "t.yaml:51:16: reminders.quiet_hours: invalid hours \"22:00\" (expected \"HH:MM-HH:MM\", e.g. \"22:00-09:00\")",
    },
    Case {
        rule: "lists are lists",
        from: "  max_misunderstandings: 2",
        to: "  max_misunderstandings: 2\n  complaint_keywords: жалоба",
        error: "t.yaml:49:23: escalation.complaint_keywords: expected a list (`- item` lines or [a, b])",
    },
    Case {
        rule: "keys are not repeated",
        from: "  kind: salon\n",
        to: "  kind: salon\n  kind: clinic\n",
        error: "t.yaml:4:3: business.kind: duplicate key \"kind\"",
    },
];

#[test]
fn the_base_profile_is_valid() {
    if let Err(e) = config::load_str(BASE, "t.yaml") {
        panic!("base profile rejected: {e}");
    }
}

#[test]
fn each_rule_names_file_line_column_and_field() {
    let mut failures = Vec::new();
    for case in CASES {
        match load_broken(case.from, case.to) {
            Ok(_) => failures.push(format!("{}: accepted", case.rule)),
            Err(e) if e.to_string() != case.error => failures.push(format!(
                "{}:\n  expected {}\n  got      {e}",
                case.rule, case.error
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let cases = [
        (
            "  kind: salon\n",
            "  kind: salon\n  colour: red\n",
            "t.yaml:4:3: business.colour: unknown key \"colour\" (expected one of name, kind, address, phone, timezone, website)",
        ),
        (
            "    answer: Ленина, 1",
            "    answr: Ленина, 1",
            "t.yaml:42:5: faq[0].answr: unknown key \"answr\" (expected one of id, keywords, answer)",
        ),
        (
            "      mon: \"10:00-19:00\"",
            "      mom: \"10:00-19:00\"",
            "t.yaml:20:7: staff[0].hours.mom: unknown key \"mom\" (expected one of mon, tue, wed, thu, fri, sat, sun)",
        ),
        (
            "    price: {from: 1500, to: 3500}",
            "    price: {from: 1500, too: 3500}",
            "t.yaml:29:25: services[1].price.too: unknown key \"too\" (expected one of from, to)",
        ),
        (
            "reminders:\n",
            "remindres:\n",
            "t.yaml:49:1: remindres: unknown key \"remindres\" (expected one of business, hours, holidays, booking, staff, services, promotions, faq, templates, qualification, escalation, reminders)",
        ),
    ];
    for (from, to, expected) in cases {
        match load_broken(from, to) {
            Ok(_) => panic!("accepted {to:?}"),
            Err(e) => assert_eq!(e.to_string(), expected),
        }
    }
}

#[test]
fn the_whole_document_must_be_a_mapping() {
    for (yaml, expected) in [
        (
            "",
            "t.yaml:1:1: (document): the profile is empty (expected a mapping with business, hours, staff, services…)",
        ),
        (
            "- 1\n",
            "t.yaml:1:1: (document): expected a mapping (`key: value` lines or {key: value})",
        ),
    ] {
        match config::load_str(yaml, "t.yaml") {
            Ok(_) => panic!("accepted {yaml:?}"),
            Err(e) => assert_eq!(e.to_string(), expected),
        }
    }
}

#[test]
fn profile_defaults_fill_what_is_not_written() {
    let p = match config::load_str(BASE, "t.yaml") {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(p.booking, config::BookingRules::default());
    assert_eq!(p.business.timezone, chrono_tz::Asia::Novosibirsk);
    let manicure = p.service(&"manicure".into()).map(|s| s.accusative.clone());
    assert_eq!(manicure.as_deref(), Some("маникюр"));
    // Staff without own hours would work the business hours; olga gives only Monday.
    let olga = p.staff_member(&"olga".into()).map(|s| s.hours.clone());
    assert_eq!(olga.map(|h| h.days.iter().flatten().count()), Some(1));
    use bot::config::templates::TemplateKey;
    assert_eq!(
        p.templates.get(&TemplateKey::Greeting),
        Some(&vec!["Здравствуйте! Это {business}.".to_string()])
    );
    let booked: Vec<String> = TemplateKey::Booked
        .defaults()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(p.templates.get(&TemplateKey::Booked), Some(&booked));
}

#[test]
fn a_missing_file_is_a_read_error() {
    let path = std::path::Path::new("/nonexistent/profile.yaml");
    match config::load(path) {
        Err(ConfigError::Read { path: p, .. }) => assert_eq!(p, path),
        other => panic!("expected a read error, got {other:?}"),
    }
}
