//! Reading dialog specs: find the files, parse YAML (syntax and shape errors carry
//! file:line:column and the field path), expand `include:` fragments, then compile each
//! dialog against its business profile into `model::Dialog`, checking everything that can be
//! checked before running: one action per step, dates, times, durations, placeholders,
//! regexes, template keys, service/staff/FAQ ids, and that every `${name}` is captured first.

use super::SpecError;
use super::format::{
    self, BookedSpec, BotSpec, Combine, ContactSpec, DialogFile, FragmentFile, HandoffSpec,
    MatcherFields, MessageSpec, MovedSpec, PressFields, PressSpec, SlotSpec, StepSpec, Toggle,
};
use super::matcher::{Capture, Matcher, MessageExpect, Pattern, Vocabulary};
use super::model::{
    Action, BookingExpect, Dialog, Expect, LeadExpect, Origin, Press, ProfileRef, ReminderExpect,
    Step, UnderstoodExpect, Want, When,
};
use super::vars;
use crate::config::Profile;
use crate::config::templates::TemplateKey;
use crate::domain::{
    Booking, BookingId, BookingStatus, ChannelKind, ClientRef, Contact, LEAD_SOURCE, ServiceId,
    Slot, StaffId,
};
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::de::DeserializeOwned;
use serde_saphyr::Spanned;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Deepest include nesting allowed (a fragment including a fragment ...).
const MAX_INCLUDE_DEPTH: usize = 8;
const DEFAULT_LATENCY: std::time::Duration = std::time::Duration::from_secs(3);
const DEFAULT_MAX_PATHS: u32 = 64;

/// The dialog files under `paths`: files as given, directories scanned (not recursively, so
/// fragments in a sub-folder are not taken for dialogs) for `*.yaml` / `*.yml`, sorted.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SpecError> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| SpecError::Io {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| SpecError::Io {
                path: path.clone(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Parse YAML text into `T`, mapping any error to `file:line:column: path: message`.
pub fn parse_yaml<T: DeserializeOwned>(text: &str, file: &str) -> Result<T, SpecError> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        with_snippet: false,
    };
    let mut field_path = String::new();
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            field_path = e.path().to_string();
            e.into_inner()
        })
    });
    result.map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line() as u32, l.column() as u32))
            .unwrap_or((0, 0));
        let raw = e.without_snippet().to_string();
        let (path, message) = explain(&clean_path(&field_path), strip_location(&raw));
        SpecError::Invalid {
            file: file.to_string(),
            line,
            column,
            path,
            message,
        }
    })
}

/// serde-saphyr appends " at line L, column C"; we print the location up front instead.
fn strip_location(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(", column ") => &msg[..i],
        _ => msg,
    }
}

/// `Spanned` adds a `.value` level to paths; `.` alone is the root.
fn clean_path(path: &str) -> String {
    let p = path.replace(".value", "");
    if p == "." || p == "?" {
        String::new()
    } else {
        p
    }
}

/// Say serde's messages the way spec writers think: keys, not fields; and an unknown key is
/// reported at the mapping that holds it.
fn explain(path: &str, msg: &str) -> (String, String) {
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((key, expected)) = rest.split_once('`')
    {
        let parent = match path.rfind(['.', '[']) {
            Some(i) if path[i..].starts_with('.') && path.ends_with(key) => path[..i].to_string(),
            _ if path == key => String::new(),
            _ => path.to_string(),
        };
        let expected = expected.trim_start_matches(", ").replace('`', "");
        let expected = if expected.is_empty() {
            String::new()
        } else {
            format!(" ({expected})")
        };
        return (parent, format!("unknown key \"{key}\"{expected}"));
    }
    if let Some(rest) = msg.strip_prefix("missing field `")
        && let Some((key, _)) = rest.split_once('`')
    {
        return (path.to_string(), format!("missing key \"{key}\""));
    }
    if let Some(rest) = msg.strip_prefix("unknown variant `")
        && let Some((value, expected)) = rest.split_once('`')
    {
        let expected = expected.trim_start_matches(", ").replace('`', "");
        return (
            path.to_string(),
            format!("unknown value \"{value}\" ({expected})"),
        );
    }
    (path.to_string(), msg.to_string())
}

/// A step read from a file, with where it came from.
#[derive(Debug)]
struct RawStep {
    file: String,
    path: String,
    spec: Spanned<StepSpec>,
    set: Vec<(String, String)>,
}

/// A parsed dialog file with its includes expanded, not yet checked against a profile.
#[derive(Debug)]
pub struct Parsed {
    pub file: String,
    pub dir: PathBuf,
    pub spec: DialogFile,
    steps: Vec<RawStep>,
}

impl Parsed {
    pub fn id(&self) -> &str {
        &self.spec.id.value
    }

    /// The profile the dialog asks for (`--profile` may override it).
    pub fn profile(&self) -> ProfileRef {
        match self.spec.profile.as_ref().map(|p| p.value.as_str()) {
            None | Some("salon") => ProfileRef::Salon,
            Some("clinic") => ProfileRef::Clinic,
            Some(path) => ProfileRef::File(self.dir.join(path)),
        }
    }
}

fn read(path: &Path) -> Result<String, SpecError> {
    std::fs::read_to_string(path).map_err(|source| SpecError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Read and parse one dialog file, expanding its includes.
pub fn parse_file(path: &Path) -> Result<Parsed, SpecError> {
    let text = read(path)?;
    parse_str(&text, path)
}

/// Parse dialog YAML that lives at `path` (includes resolve relative to it).
pub fn parse_str(text: &str, path: &Path) -> Result<Parsed, SpecError> {
    let file = display(path);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut spec: DialogFile = parse_yaml(text, &file)?;
    let mut steps = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    let trigger = spec.trigger.take();
    let all = trigger
        .into_iter()
        .map(|s| ("trigger".to_string(), s))
        .chain(
            std::mem::take(&mut spec.steps)
                .into_iter()
                .enumerate()
                .map(|(i, s)| (format!("steps[{i}]"), s)),
        );
    for (field, step) in all {
        expand(step, field, &file, &dir, Vec::new(), &mut stack, &mut steps)?;
    }
    if steps.is_empty() {
        return Err(SpecError::at(
            &file,
            &spec.id,
            "steps",
            "a dialog needs at least one step",
        ));
    }
    Ok(Parsed {
        file,
        dir,
        spec,
        steps,
    })
}

fn expand(
    step: Spanned<StepSpec>,
    path: String,
    file: &str,
    dir: &Path,
    set: Vec<(String, String)>,
    stack: &mut Vec<PathBuf>,
    out: &mut Vec<RawStep>,
) -> Result<(), SpecError> {
    let Some(include) = &step.value.include else {
        out.push(RawStep {
            file: file.to_string(),
            path,
            spec: step,
            set,
        });
        return Ok(());
    };
    let others = actions(&step.value);
    if others.len() > 1 || has_expectations(&step.value) || step.value.name.is_some() {
        return Err(SpecError::at(
            file,
            &step,
            &path,
            "an include step takes only `include` and `with` (put expectations in the fragment)",
        ));
    }
    if stack.len() > MAX_INCLUDE_DEPTH {
        return Err(SpecError::at(
            file,
            include,
            &format!("{path}.include"),
            &format!("includes nested deeper than {MAX_INCLUDE_DEPTH}"),
        ));
    }
    let target = dir.join(&include.value);
    if stack.contains(&target) {
        return Err(SpecError::at(
            file,
            include,
            &format!("{path}.include"),
            &format!("{} includes itself", include.value),
        ));
    }
    let text = read(&target)
        .map_err(|e| SpecError::at(file, include, &format!("{path}.include"), &e.to_string()))?;
    let frag_file = display(&target);
    let fragment: FragmentFile = parse_yaml(&text, &frag_file)?;
    if fragment.steps.is_empty() {
        return Err(SpecError::at(
            file,
            include,
            &format!("{path}.include"),
            "the fragment has no steps",
        ));
    }
    let mut with: Vec<(String, String)> = set;
    for (k, v) in step.value.with.iter().flatten() {
        if !vars::is_name(k) {
            return Err(SpecError::at(
                file,
                &step,
                &format!("{path}.with"),
                &format!("bad variable name {k:?} (letters, digits and _)"),
            ));
        }
        with.push((k.clone(), v.clone()));
    }
    let frag_dir = target.parent().map(Path::to_path_buf).unwrap_or_default();
    stack.push(target);
    for (i, s) in fragment.steps.into_iter().enumerate() {
        let set = if i == 0 {
            std::mem::take(&mut with)
        } else {
            Vec::new()
        };
        expand(
            s,
            format!("steps[{i}]"),
            &frag_file,
            &frag_dir,
            set,
            stack,
            out,
        )?;
    }
    stack.pop();
    Ok(())
}

/// The action keys a step uses.
fn actions(s: &StepSpec) -> Vec<&'static str> {
    let mut a = Vec::new();
    if s.client.is_some() {
        a.push("client");
    }
    if s.press.is_some() {
        a.push("press");
    }
    if s.contact.is_some() {
        a.push("contact");
    }
    if s.reminder.is_some() {
        a.push("reminder");
    }
    if s.no_show.is_some() {
        a.push("no_show");
    }
    if s.wait.is_some() {
        a.push("wait");
    }
    if s.release.is_some() {
        a.push("release");
    }
    if s.include.is_some() {
        a.push("include");
    }
    a
}

fn has_expectations(s: &StepSpec) -> bool {
    s.bot.is_some()
        || s.silent.is_some()
        || s.understood.is_some()
        || s.booked.is_some()
        || s.moved.is_some()
        || s.cancelled.is_some()
        || s.confirmed.is_some()
        || s.lead.is_some()
        || s.contact_captured.is_some()
        || s.handoff.is_some()
        || s.reminders.is_some()
        || s.latency.is_some()
}

// ---- values ---------------------------------------------------------------------------------

/// `23h`, `90m`, `1d 2h`, `500ms`, `3s`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let err = || format!("bad duration {s:?} (e.g. 500ms, 3s, 15m, 23h, 1d 2h)");
    let mut total: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(err());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
            .unwrap_or(rest.len());
        let ms: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(err()),
        };
        total = n
            .checked_mul(ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(err)?;
        rest = rest[unit_len..].trim_start();
    }
    Ok(std::time::Duration::from_millis(total))
}

/// `21.11`, `21.11.2026` or `2026-11-21`; a year-less date takes the year of `now`.
pub fn parse_date(s: &str, year: i32) -> Result<NaiveDate, String> {
    let s = s.trim();
    let err = || format!("bad date {s:?} (expected DD.MM, DD.MM.YYYY or YYYY-MM-DD)");
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d);
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%d.%m.%Y") {
        return Ok(d);
    }
    let (d, m) = s.split_once('.').ok_or_else(err)?;
    let (d, m): (u32, u32) = (d.parse().map_err(|_| err())?, m.parse().map_err(|_| err())?);
    NaiveDate::from_ymd_opt(year, m, d).ok_or_else(err)
}

/// `15:00` or `9:30`.
pub fn parse_time(s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .map_err(|_| format!("bad time {s:?} (expected HH:MM)"))
}

/// `2026-11-20 10:00` / `20.11 10:00` in the business zone, or RFC 3339.
pub fn parse_moment(s: &str, tz: Tz, year: i32) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let err = || {
        format!("bad date and time {s:?} (expected `2026-11-20 10:00`, `20.11 10:00` or RFC 3339)")
    };
    let (d, t) = s.rsplit_once(' ').ok_or_else(err)?;
    let local: NaiveDateTime = parse_date(d, year)
        .map_err(|_| err())?
        .and_time(parse_time(t).map_err(|_| err())?);
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(err)
}

// ---- compiling ------------------------------------------------------------------------------

/// Collects the errors of one dialog.
struct Checker<'a> {
    profile: &'a Profile,
    vocab: &'a Vocabulary,
    tz: Tz,
    year: i32,
    /// The dialog's channel (leads carry it by default).
    channel: ChannelKind,
    errors: Vec<SpecError>,
    /// Variables defined so far (walking the steps in order).
    defined: BTreeSet<String>,
}

impl Checker<'_> {
    fn err<T>(&mut self, file: &str, at: &Spanned<T>, path: &str, message: impl Into<String>) {
        self.errors
            .push(SpecError::at(file, at, path, &message.into()));
    }

    fn service(&self, id: &str) -> Result<ServiceId, String> {
        if self.profile.services.iter().any(|s| s.id.as_str() == id) {
            return Ok(ServiceId(id.to_string()));
        }
        let known: Vec<&str> = self
            .profile
            .services
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        Err(format!(
            "unknown service {id:?} (the profile has {})",
            known.join(", ")
        ))
    }

    fn staff(&self, id: &str) -> Result<StaffId, String> {
        if self.profile.staff.iter().any(|s| s.id.as_str() == id) {
            return Ok(StaffId(id.to_string()));
        }
        let known: Vec<&str> = self.profile.staff.iter().map(|s| s.id.as_str()).collect();
        Err(format!(
            "unknown staff member {id:?} (the profile has {})",
            known.join(", ")
        ))
    }

    /// Check the `${...}` references of `s` against what is captured before this step.
    fn refs(&self, s: &str) -> Result<(), String> {
        vars::pieces(s)?;
        for name in vars::refs(s) {
            if !self.defined.contains(name) {
                return Err(format!(
                    "${{{name}}} is not captured by an earlier step (capture it with `capture:` or set it with `with:`)"
                ));
            }
        }
        Ok(())
    }

    /// A date string: checked now unless it refers to captured values.
    fn date(&self, s: &str) -> Result<String, String> {
        self.refs(s)?;
        if vars::refs(s).is_empty() {
            parse_date(s, self.year)?;
        }
        Ok(s.to_string())
    }

    fn time(&self, s: &str) -> Result<String, String> {
        self.refs(s)?;
        if vars::refs(s).is_empty() {
            parse_time(s)?;
        }
        Ok(s.to_string())
    }

    fn when(&self, date: &Option<String>, time: &Option<String>) -> Result<When, String> {
        Ok(When {
            date: date.as_deref().map(|d| self.date(d)).transpose()?,
            time: time.as_deref().map(|t| self.time(t)).transpose()?,
        })
    }

    fn text(&self, s: &str) -> Result<String, String> {
        self.refs(s)?;
        Ok(s.to_string())
    }
}

/// Check a parsed dialog against `profile` and build the runnable model.
pub fn compile(
    parsed: &Parsed,
    profile: &Profile,
    vocab: &Vocabulary,
) -> Result<Dialog, Vec<SpecError>> {
    let spec = &parsed.spec;
    let file = parsed.file.as_str();
    let tz = profile.business.timezone;
    let channel = spec.channel.unwrap_or(ChannelKind::Telegram);
    let mut c = Checker {
        profile,
        vocab,
        tz,
        year: 2026,
        channel,
        errors: Vec::new(),
        defined: BTreeSet::new(),
    };
    let now = match parse_moment(&spec.now.value, tz, 2026) {
        Ok(now) => now,
        Err(e) => {
            c.err(file, &spec.now, "now", e);
            Utc::now()
        }
    };
    c.year = now.with_timezone(&tz).year();
    if spec.id.value.trim().is_empty() {
        c.err(file, &spec.id, "id", "the id is empty");
    }
    let latency = match &spec.latency {
        Some(l) => parse_duration(&l.value).unwrap_or_else(|e| {
            c.err(file, l, "latency", e);
            DEFAULT_LATENCY
        }),
        None => DEFAULT_LATENCY,
    };
    let default_client = format!("test-{}", spec.id.value);
    let client_spec = spec.client.as_ref();
    let phone = client_spec.and_then(|c| c.phone.clone());
    let client_id = match (client_spec.and_then(|c| c.id.clone()), channel, &phone) {
        (Some(id), _, _) => id,
        (None, ChannelKind::Whatsapp, Some(p)) => p.chars().filter(char::is_ascii_digit).collect(),
        (None, ChannelKind::Whatsapp, None) => "79130000001".to_string(),
        (None, _, _) => default_client,
    };
    let client = ClientRef {
        channel,
        id: client_id,
    };
    let known = Contact {
        name: client_spec.and_then(|c| c.name.clone()),
        phone,
        email: None,
    };
    let combine = spec
        .variations
        .as_ref()
        .map(|v| v.value)
        .unwrap_or(Combine::Zip);
    let max_paths = spec.max_paths.unwrap_or(DEFAULT_MAX_PATHS).max(1) as usize;

    let mut bookings = Vec::new();
    for (i, b) in spec.bookings.iter().enumerate() {
        let path = format!("bookings[{i}]");
        let service = c.service(&b.value.service.value).map_err(|e| {
            c.err(file, &b.value.service, &format!("{path}.service"), e);
        });
        let staff = c.staff(&b.value.staff.value).map_err(|e| {
            c.err(file, &b.value.staff, &format!("{path}.staff"), e);
        });
        let start = parse_moment(&b.value.at.value, tz, c.year).map_err(|e| {
            c.err(file, &b.value.at, &format!("{path}.at"), e);
        });
        let (Ok(service), Ok(staff), Ok(start)) = (service, staff, start) else {
            continue;
        };
        if let Some(member) = profile.staff_member(&staff)
            && !member.services.contains(&service)
        {
            c.err(
                file,
                &b.value.staff,
                &format!("{path}.staff"),
                format!("{} does not perform {}", staff, service),
            );
        }
        let minutes = profile
            .service(&service)
            .map(|s| i64::from(s.duration_minutes))
            .unwrap_or(60);
        if bookings
            .iter()
            .any(|x: &Booking| x.id.as_str() == b.value.id)
        {
            c.err(
                file,
                b,
                &path,
                format!("booking id {:?} is used twice", b.value.id),
            );
        }
        bookings.push(Booking {
            id: BookingId(b.value.id.clone()),
            client: if b.value.other_client {
                ClientRef {
                    channel,
                    id: format!("other-{i}"),
                }
            } else {
                client.clone()
            },
            service,
            slot: Slot {
                start,
                end: start + chrono::Duration::minutes(minutes),
                staff,
            },
            status: b.value.status.unwrap_or(BookingStatus::Booked),
        });
    }

    let mut steps = Vec::new();
    for raw in &parsed.steps {
        for (k, _) in &raw.set {
            c.defined.insert(k.clone());
        }
        if let Some(step) = compile_step(&mut c, raw) {
            steps.push(step);
        }
    }
    if combine == Combine::Product {
        let size = steps
            .iter()
            .map(|s: &Step| s.variations().max(1))
            .fold(1usize, |a, b| a.saturating_mul(b));
        if size > max_paths
            && let Some(v) = &spec.variations
        {
            c.err(
                file,
                v,
                "variations",
                format!("`product` gives {size} paths, more than max_paths {max_paths} (raise max_paths or use zip)"),
            );
        }
    }
    if !c.errors.is_empty() {
        return Err(c.errors);
    }
    Ok(Dialog {
        id: spec.id.value.clone(),
        title: spec.title.clone(),
        description: spec.description.clone(),
        file: parsed.file.clone(),
        profile: parsed.profile(),
        channel,
        fixed_client_id: client_spec.is_some_and(|c| c.id.is_some()),
        client,
        known,
        now,
        latency,
        combine,
        max_paths,
        bookings,
        steps,
        managers: spec.managers.unwrap_or(true),
    })
}

fn origin<T>(file: &str, at: &Spanned<T>, path: &str) -> Origin {
    Origin {
        file: file.to_string(),
        line: at.referenced.line() as u32,
        column: at.referenced.column() as u32,
        path: path.to_string(),
    }
}

fn compile_step(c: &mut Checker<'_>, raw: &RawStep) -> Option<Step> {
    let s = &raw.spec.value;
    let file = raw.file.as_str();
    let path = raw.path.as_str();
    let errors_before = c.errors.len();
    let p = |k: &str| format!("{path}.{k}");

    let found = actions(s);
    if found.len() != 1 {
        let what = if found.is_empty() {
            "none".to_string()
        } else {
            found.join(", ")
        };
        c.err(
            file,
            &raw.spec,
            path,
            format!("a step needs exactly one of client, press, contact, reminder, no_show, wait, release, include (found: {what})"),
        );
        return None;
    }
    if s.with.is_some() {
        c.err(
            file,
            &raw.spec,
            &p("with"),
            "`with` goes together with `include`",
        );
    }
    let action = if let Some(texts) = &s.client {
        if texts.0.is_empty() {
            c.err(file, &raw.spec, &p("client"), "no phrases");
        }
        for (i, t) in texts.0.iter().enumerate() {
            if t.trim().is_empty() {
                c.err(
                    file,
                    &raw.spec,
                    &format!("{}[{i}]", p("client")),
                    "empty phrase",
                );
            }
            if let Err(e) = c.refs(t) {
                c.err(file, &raw.spec, &p("client"), e);
            }
        }
        Action::Text(texts.0.clone())
    } else if let Some(press) = &s.press {
        let presses = match press {
            PressSpec::Titles(t) => t.iter().cloned().map(Press::Title).collect(),
            PressSpec::Fields(PressFields {
                title,
                payload,
                index,
            }) => match (title, payload, index) {
                (Some(t), None, None) => vec![Press::Title(t.clone())],
                (None, Some(pl), None) => vec![Press::Payload(pl.clone())],
                (None, None, Some(i)) if *i >= 1 => vec![Press::Index(*i)],
                (None, None, Some(_)) => {
                    c.err(
                        file,
                        &raw.spec,
                        &p("press.index"),
                        "buttons are counted from 1",
                    );
                    Vec::new()
                }
                _ => {
                    c.err(
                        file,
                        &raw.spec,
                        &p("press"),
                        "give exactly one of title, payload, index",
                    );
                    Vec::new()
                }
            },
        };
        if presses.is_empty() && c.errors.len() == errors_before {
            c.err(file, &raw.spec, &p("press"), "no button to press");
        }
        for pr in &presses {
            if let Press::Title(t) | Press::Payload(t) = pr
                && let Err(e) = c.refs(t)
            {
                c.err(file, &raw.spec, &p("press"), e);
            }
        }
        Action::Press(presses)
    } else if let Some(ContactSpec { phone, name }) = &s.contact {
        let Some(phone) = phone else {
            c.err(
                file,
                &raw.spec,
                &p("contact"),
                "a shared contact needs a phone",
            );
            return None;
        };
        Action::Contact {
            phone: phone.clone(),
            name: name.clone(),
        }
    } else if let Some(kind) = s.reminder {
        Action::Reminder(kind)
    } else if let Some(id) = &s.no_show {
        if let Err(e) = c.refs(&id.value) {
            c.err(file, id, &p("no_show"), e);
        }
        Action::NoShow(id.value.clone())
    } else if let Some(w) = &s.wait {
        match parse_duration(&w.value) {
            Ok(d) if !d.is_zero() => {
                Action::Wait(chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero()))
            }
            Ok(_) => {
                c.err(file, w, &p("wait"), "wait for a positive time");
                return None;
            }
            Err(e) => {
                c.err(file, w, &p("wait"), e);
                return None;
            }
        }
    } else {
        if s.release == Some(false) {
            c.err(
                file,
                &raw.spec,
                &p("release"),
                "write `release: true` (or drop the step)",
            );
        }
        Action::Release
    };

    let expect = compile_expect(c, raw);
    let latency = s
        .latency
        .as_ref()
        .and_then(|l| match parse_duration(&l.value) {
            Ok(d) => Some(d),
            Err(e) => {
                c.err(file, l, &p("latency"), e);
                None
            }
        });
    if c.errors.len() > errors_before {
        return None;
    }
    Some(Step {
        origin: origin(file, &raw.spec, path),
        name: s.name.clone(),
        set: raw.set.clone(),
        action,
        expect,
        latency,
    })
}

fn compile_expect(c: &mut Checker<'_>, raw: &RawStep) -> Expect {
    let s = &raw.spec.value;
    let file = raw.file.as_str();
    let path = raw.path.as_str();
    let p = |k: &str| format!("{path}.{k}");
    let mut e = Expect {
        silent: s.silent.unwrap_or(false),
        ..Expect::default()
    };
    let mut captures: Vec<String> = Vec::new();
    if e.silent && s.bot.is_some() {
        c.err(
            file,
            &raw.spec,
            &p("silent"),
            "`silent: true` and `bot:` contradict each other",
        );
    }
    if let Some(bot) = &s.bot {
        let messages: Vec<(Origin, &MessageSpec)> = match &bot.value {
            BotSpec::One(m) => vec![(origin(file, bot, &p("bot")), m)],
            BotSpec::Many(list) => {
                if list.is_empty() {
                    c.err(
                        file,
                        bot,
                        &p("bot"),
                        "an empty list: write `silent: true` for no reply",
                    );
                }
                list.iter()
                    .enumerate()
                    .map(|(i, m)| (origin(file, m, &format!("{}[{i}]", p("bot"))), &m.value))
                    .collect()
            }
        };
        let mut out = Vec::new();
        for (o, m) in messages {
            if let Some(m) = compile_message(c, file, bot, &o.path, m, &mut captures) {
                out.push((o, m));
            }
        }
        e.messages = Some(out);
    }
    if let Some(u) = &s.understood {
        let at = |k: &str| format!("{}.{k}", p("understood"));
        let v = &u.value;
        let mut x = UnderstoodExpect {
            intent: v.intent,
            phone: v.phone.clone(),
            name: v.name.clone(),
            email: v.email.clone(),
            ..UnderstoodExpect::default()
        };
        if let Some(sv) = &v.service {
            match c.service(sv) {
                Ok(id) => x.service = Some(id),
                Err(m) => c.err(file, u, &at("service"), m),
            }
        }
        if let Some(st) = &v.staff {
            match c.staff(st) {
                Ok(id) => x.staff = Some(id),
                Err(m) => c.err(file, u, &at("staff"), m),
            }
        }
        if let Some(f) = &v.faq {
            if c.profile.faq.iter().any(|q| &q.id == f) {
                x.faq = Some(f.clone());
            } else {
                let known: Vec<&str> = c.profile.faq.iter().map(|q| q.id.as_str()).collect();
                c.err(
                    file,
                    u,
                    &at("faq"),
                    format!(
                        "unknown FAQ entry {f:?} (the profile has {})",
                        known.join(", ")
                    ),
                );
            }
        }
        match c.when(&v.date, &v.time) {
            Ok(w) => x.at = w,
            Err(m) => c.err(file, u, &p("understood"), m),
        }
        e.understood = Some(x);
    }
    if let Some(b) = &s.booked {
        e.booked = Some(match &b.value {
            Toggle::No => Want::Absent,
            Toggle::Yes(BookedSpec {
                service,
                date,
                time,
                staff,
                capture,
            }) => {
                let x = booking_expect(c, file, b, &p("booked"), service, staff, date, time);
                if let Some(name) = capture {
                    if vars::is_name(name) {
                        captures.push(name.clone());
                    } else {
                        c.err(
                            file,
                            b,
                            &p("booked.capture"),
                            format!("bad variable name {name:?}"),
                        );
                    }
                }
                Want::Present(BookingExpect {
                    capture: capture.clone(),
                    ..x
                })
            }
        });
    }
    if let Some(m) = &s.moved {
        e.moved = Some(match &m.value {
            Toggle::No => Want::Absent,
            Toggle::Yes(MovedSpec {
                id,
                service,
                date,
                time,
                staff,
                from_date,
                from_time,
            }) => {
                let mut x = booking_expect(c, file, m, &p("moved"), service, staff, date, time);
                match c.when(from_date, from_time) {
                    Ok(w) => x.from = w,
                    Err(msg) => c.err(file, m, &p("moved"), msg),
                }
                if let Some(id) = id {
                    match c.text(id) {
                        Ok(id) => x.id = Some(id),
                        Err(msg) => c.err(file, m, &p("moved.id"), msg),
                    }
                }
                Want::Present(x)
            }
        });
    }
    if let Some(x) = &s.cancelled {
        e.cancelled = Some(match &x.value {
            Toggle::No => Want::Absent,
            Toggle::Yes(SlotSpec {
                service,
                date,
                time,
                staff,
            }) => Want::Present(booking_expect(
                c,
                file,
                x,
                &p("cancelled"),
                service,
                staff,
                date,
                time,
            )),
        });
    }
    e.confirmed = s.confirmed;
    if let Some(l) = &s.lead {
        e.lead = Some(match &l.value {
            Toggle::No => Want::Absent,
            Toggle::Yes(v) => {
                let service = v.service.as_deref().and_then(|sv| match c.service(sv) {
                    Ok(id) => Some(id),
                    Err(m) => {
                        c.err(file, l, &format!("{}.service", p("lead")), m);
                        None
                    }
                });
                let at = c.when(&v.date, &v.time).unwrap_or_else(|m| {
                    c.err(file, l, &p("lead"), m);
                    When::default()
                });
                Want::Present(LeadExpect {
                    fields: v.fields.clone().unwrap_or_default(),
                    service,
                    at,
                    phone: v.phone.clone(),
                    name: v.name.clone(),
                    channel: v.channel.unwrap_or(c.channel),
                    source: v.source.clone().unwrap_or_else(|| LEAD_SOURCE.to_string()),
                })
            }
        });
    }
    if let Some(cc) = &s.contact_captured {
        e.contact = Some(match cc {
            Toggle::No => Want::Absent,
            Toggle::Yes(ContactSpec { phone, name }) => Want::Present(Contact {
                name: name.clone(),
                phone: phone.clone(),
                email: None,
            }),
        });
    }
    if let Some(h) = s.handoff {
        e.handoff = Some(match h {
            HandoffSpec::No => Want::Absent,
            HandoffSpec::Any => Want::Present(None),
            HandoffSpec::Reason(r) => Want::Present(Some(r)),
        });
    }
    if let Some(list) = &s.reminders {
        let mut out = Vec::new();
        for (i, r) in list.iter().enumerate() {
            match parse_moment(&r.value.at, c.tz, c.year) {
                Ok(at) => out.push(ReminderExpect {
                    kind: r.value.kind,
                    at,
                }),
                Err(m) => c.err(file, r, &format!("{}[{i}].at", p("reminders")), m),
            }
        }
        e.reminders = Some(out);
    }
    // Captures become usable from the next step on.
    c.defined.extend(captures);
    e
}

#[allow(clippy::too_many_arguments)]
fn booking_expect<T>(
    c: &mut Checker<'_>,
    file: &str,
    at: &Spanned<T>,
    path: &str,
    service: &Option<String>,
    staff: &Option<String>,
    date: &Option<String>,
    time: &Option<String>,
) -> BookingExpect {
    let mut x = BookingExpect::default();
    if let Some(sv) = service {
        match c.service(sv) {
            Ok(id) => x.service = Some(id),
            Err(m) => c.err(file, at, &format!("{path}.service"), m),
        }
    }
    if let Some(st) = staff {
        match c.staff(st) {
            Ok(id) => x.staff = Some(id),
            Err(m) => c.err(file, at, &format!("{path}.staff"), m),
        }
    }
    match c.when(date, time) {
        Ok(w) => x.at = w,
        Err(m) => c.err(file, at, path, m),
    }
    x
}

fn matcher(c: &Checker<'_>, f: &MatcherFields) -> Result<Vec<Matcher>, String> {
    let mut out = Vec::new();
    if let Some(t) = &f.text {
        out.push(Matcher::Text(c.text(t)?));
    }
    if let Some(t) = &f.template {
        c.refs(t)?;
        out.push(Matcher::Template(Pattern::template(t, c.vocab)?));
    }
    if let Some(r) = &f.regex {
        c.refs(r)?;
        out.push(Matcher::Regex(
            Pattern::regex(r, c.vocab).map_err(|e| format!("bad regex: {e}"))?,
        ));
    }
    if let Some(words) = &f.contains {
        if words.0.is_empty() {
            return Err("`contains` needs at least one phrase".into());
        }
        for w in &words.0 {
            c.refs(w)?;
        }
        out.push(Matcher::Contains(words.0.clone()));
    }
    if let Some(k) = &f.key {
        match TemplateKey::parse(k) {
            Some(key) => out.push(Matcher::Key(key)),
            None => {
                let known: Vec<&str> = TemplateKey::ALL.iter().map(|k| k.as_str()).collect();
                return Err(format!(
                    "unknown template key {k:?} (expected one of {})",
                    known.join(", ")
                ));
            }
        }
    }
    Ok(out)
}

fn compile_message<T>(
    c: &mut Checker<'_>,
    file: &str,
    at: &Spanned<T>,
    path: &str,
    m: &MessageSpec,
    captures: &mut Vec<String>,
) -> Option<MessageExpect> {
    let before = c.errors.len();
    let fields = MatcherFields {
        text: m.text.clone(),
        template: m.template.clone(),
        regex: m.regex.clone(),
        contains: m.contains.clone(),
        key: m.key.clone(),
    };
    let all = matcher(c, &fields).unwrap_or_else(|e| {
        c.err(file, at, path, e);
        Vec::new()
    });
    let mut any = Vec::new();
    if let Some(list) = &m.any {
        if list.is_empty() {
            c.err(file, at, &format!("{path}.any"), "no variations listed");
        }
        for (i, v) in list.iter().enumerate() {
            let ipath = format!("{path}.any[{i}]");
            match matcher(c, &v.value.0) {
                Ok(ms) if ms.len() == 1 => any.extend(ms),
                Ok(_) => c.err(
                    file,
                    v,
                    &ipath,
                    "each variation is one of text, template, regex, contains, key",
                ),
                Err(e) => c.err(file, v, &ipath, e),
            }
        }
    }
    let mut patterns = |list: &Option<Vec<String>>, key: &str| -> Option<Vec<Pattern>> {
        let list = list.as_ref()?;
        let mut out = Vec::new();
        for t in list {
            match c.refs(t).and_then(|_| Pattern::template(t, c.vocab)) {
                Ok(pt) => out.push(pt),
                Err(e) => c.err(file, at, &format!("{path}.{key}"), e),
            }
        }
        Some(out)
    };
    let buttons = patterns(&m.buttons, "buttons");
    let buttons_include = patterns(&m.buttons_include, "buttons_include").unwrap_or_default();
    let not = m.not.clone().map(|t| t.0).unwrap_or_default();
    for w in &not {
        if let Err(e) = c.refs(w) {
            c.err(file, at, &format!("{path}.not"), e);
        }
    }
    let mut capture = Vec::new();
    for (name, re) in m.capture.iter().flatten() {
        if !vars::is_name(name) {
            c.err(
                file,
                at,
                &format!("{path}.capture"),
                format!("bad variable name {name:?} (letters, digits and _)"),
            );
            continue;
        }
        match regex::Regex::new(re) {
            Ok(pattern) => {
                captures.push(name.clone());
                capture.push(Capture {
                    name: name.clone(),
                    pattern,
                });
            }
            Err(e) => c.err(
                file,
                at,
                &format!("{path}.capture.{name}"),
                format!("bad regex: {e}"),
            ),
        }
    }
    (c.errors.len() == before).then_some(MessageExpect {
        all,
        any,
        buttons,
        buttons_include,
        not,
        capture,
    })
}

/// Parse `format` errors straight from text, for tests and the proptest.
pub fn check_syntax(text: &str) -> Result<(), SpecError> {
    parse_yaml::<format::DialogFile>(text, "<input>").map(|_| ())
}
