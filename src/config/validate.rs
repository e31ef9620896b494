//! Every rule of a valid business profile: takes the raw YAML structs (`yaml.rs`), checks them
//! and builds the typed `Profile`. The first violation found is returned as
//! `file:line:column: field.path: message`, where the line and column are those of the
//! offending value and the message says what was expected. Reads nothing but its input.

use super::ConfigError;
use super::profile::*;
use super::yaml::*;
use crate::config::templates::{ALWAYS_ALLOWED, TemplateKey, placeholders};
use crate::domain::{LeadField, ServiceId, StaffId};
use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use serde_saphyr::{Location, Spanned};
use std::collections::{BTreeMap, HashMap, HashSet};

type Res<T> = Result<T, ConfigError>;

/// Build a `Profile` from the raw file, or say what is wrong and where.
pub(super) fn profile(raw: RawProfile, file: &str) -> Res<Profile> {
    Checker { file }.profile(raw)
}

/// The time zone when a profile does not name one.
const DEFAULT_TIMEZONE: Tz = chrono_tz::Asia::Novosibirsk;

struct Checker<'a> {
    file: &'a str,
}

/// Where in the file a value sits; `Location` line/column are 1-based, 0 when unknown.
fn at<T>(s: &Spanned<T>) -> Location {
    s.referenced
}

impl Checker<'_> {
    fn fail(
        &self,
        loc: Location,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::invalid(self.file, (loc.line(), loc.column()), field, message)
    }

    // ---- building blocks -------------------------------------------------------------

    /// Trimmed, non-empty text.
    fn text(&self, t: &Text, field: &str) -> Res<String> {
        let v = t.value.trim();
        if v.is_empty() {
            return Err(self.fail(at(t), field, "must not be empty"));
        }
        Ok(v.to_string())
    }

    fn opt_text(&self, t: Option<&Text>, field: &str) -> Res<Option<String>> {
        t.map(|t| self.text(t, field)).transpose()
    }

    /// A list of non-empty texts (keywords, synonyms, aliases).
    fn texts(&self, list: &[Text], field: &str) -> Res<Vec<String>> {
        list.iter()
            .enumerate()
            .map(|(i, t)| self.text(t, &format!("{field}[{i}]")))
            .collect()
    }

    /// An identifier integrators and other files refer to: `gel_polish`, `olga`.
    fn id(&self, t: &Text, field: &str) -> Res<String> {
        let v = t.value.trim();
        let ok = v.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && v.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(self.fail(
                at(t),
                field,
                format!(
                    "invalid id {:?} (expected lowercase latin letters, digits and _, starting with a letter, e.g. gel_polish)",
                    t.value
                ),
            ));
        }
        Ok(v.to_string())
    }

    /// A whole number in `min..=max`.
    fn number(&self, n: &Int, field: &str, min: i64, max: i64) -> Res<u32> {
        let v = n.value;
        if v < min || v > max {
            let message = match min {
                1 if v < 1 => format!("must be positive, got {v}"),
                0 if v < 0 => format!("must not be negative, got {v}"),
                _ => format!("must be between {min} and {max}, got {v}"),
            };
            return Err(self.fail(at(n), field, message));
        }
        u32::try_from(v).map_err(|_| {
            self.fail(
                at(n),
                field,
                format!("must be between {min} and {max}, got {v}"),
            )
        })
    }

    fn date(&self, t: &Text, field: &str) -> Res<NaiveDate> {
        NaiveDate::parse_from_str(t.value.trim(), "%Y-%m-%d").map_err(|_| {
            self.fail(
                at(t),
                field,
                format!(
                    "invalid date {:?} (expected YYYY-MM-DD, e.g. 2026-12-31)",
                    t.value
                ),
            )
        })
    }

    /// `"HH:MM-HH:MM"`; `wraps` allows the end before the start (quiet hours over midnight).
    /// `expected` describes the accepted forms in the error message.
    fn interval(
        &self,
        t: &Text,
        field: &str,
        wraps: bool,
        expected: &str,
    ) -> Res<(NaiveTime, NaiveTime)> {
        let malformed = || {
            self.fail(
                at(t),
                field,
                format!("invalid hours {:?} (expected {expected})", t.value),
            )
        };
        let (a, b) = t.value.split_once(['-', '–', '—']).ok_or_else(malformed)?;
        let time = |s: &str| NaiveTime::parse_from_str(s.trim(), "%H:%M").ok();
        let (Some(from), Some(until)) = (time(a), time(b)) else {
            return Err(malformed());
        };
        if from == until || (!wraps && from > until) {
            let rule = if wraps {
                "start and end must differ"
            } else {
                "expected opening < closing"
            };
            return Err(self.fail(
                at(t),
                field,
                format!("{} ends at or before it starts ({rule})", t.value.trim()),
            ));
        }
        Ok((from, until))
    }

    /// Opening hours of one week. Days not listed are closed unless `all_days` requires
    /// every day to be written out (the business week, where forgetting a day is a mistake).
    fn week(&self, w: &Spanned<RawWeek>, field: &str, all_days: bool) -> Res<WeekHours> {
        let mut hours = WeekHours::default();
        for (i, (day, value)) in w.value.days().into_iter().enumerate() {
            let path = format!("{field}.{day}");
            let Some(value) = value else {
                if all_days {
                    return Err(self.fail(
                        at(w),
                        path,
                        "missing (expected \"HH:MM-HH:MM\" or \"closed\" for every day mon..sun)",
                    ));
                }
                continue;
            };
            let v = value.value.trim();
            if v.eq_ignore_ascii_case("closed") {
                continue;
            }
            let (open, close) =
                self.interval(value, &path, false, "\"HH:MM-HH:MM\" or \"closed\"")?;
            hours.days[i] = Some(DayHours { open, close });
        }
        Ok(hours)
    }

    /// The id of list entry `base` (`services[2]`): well-formed and not used by an earlier
    /// entry of the same list (`seen` maps ids to the entry that used them first).
    fn new_id(
        &self,
        seen: &mut HashMap<String, String>,
        t: &Text,
        base: &str,
        what: &str,
    ) -> Res<String> {
        let field = format!("{base}.id");
        let id = self.id(t, &field)?;
        if let Some(first) = seen.get(&id) {
            return Err(self.fail(
                at(t),
                field,
                format!("duplicate {what} {id:?} (already used by {first})"),
            ));
        }
        seen.insert(id.clone(), base.to_string());
        Ok(id)
    }

    // ---- sections ----------------------------------------------------------------------

    fn profile(&self, raw: RawProfile) -> Res<Profile> {
        let business = self.business(&raw.business)?;
        let hours = self.week(&raw.hours, "hours", true)?;
        let holidays = self.holidays(&raw.holidays)?;
        let booking = self.booking(raw.booking.as_ref())?;
        let services = self.services(&raw.services.value)?;
        let staff = self.staff(&raw.staff, &services, &hours)?;
        self.every_service_performed(&raw.services.value, &staff)?;
        let promotions = self.promotions(&raw.promotions, &services)?;
        let faq = self.faq(&raw.faq)?;
        let templates = self.templates(raw.templates.as_ref())?;
        let qualification = self.qualification(raw.qualification.as_ref())?;
        let escalation = self.escalation(raw.escalation.as_ref(), &raw.business)?;
        let reminders = self.reminders(raw.reminders.as_ref())?;
        Ok(Profile {
            business,
            hours,
            holidays,
            booking,
            staff,
            services,
            promotions,
            faq,
            templates,
            qualification,
            escalation,
            reminders,
        })
    }

    fn business(&self, b: &Spanned<RawBusiness>) -> Res<Business> {
        let b = &b.value;
        let kind = match b.kind.value.trim() {
            "salon" => BusinessKind::Salon,
            "clinic" => BusinessKind::Clinic,
            other => {
                return Err(self.fail(
                    at(&b.kind),
                    "business.kind",
                    format!("unknown kind {other:?} (expected salon or clinic)"),
                ));
            }
        };
        let timezone = match &b.timezone {
            None => DEFAULT_TIMEZONE,
            Some(tz) => tz.value.trim().parse::<Tz>().map_err(|_| {
                self.fail(
                    at(tz),
                    "business.timezone",
                    format!(
                        "unknown time zone {:?} (expected an IANA name such as Asia/Novosibirsk)",
                        tz.value
                    ),
                )
            })?,
        };
        let phone = self.text(&b.phone, "business.phone")?;
        if !is_valid_phone(&phone) {
            return Err(self.fail(
                at(&b.phone),
                "business.phone",
                format!("invalid phone number {phone:?} (expected a Russian number such as +7 383 213-45-67)"),
            ));
        }
        let website = self.opt_text(b.website.as_ref(), "business.website")?;
        if let (Some(site), Some(t)) = (&website, &b.website)
            && !(site.starts_with("https://") || site.starts_with("http://"))
        {
            return Err(self.fail(
                at(t),
                "business.website",
                format!("invalid address {site:?} (expected a URL starting with https://)"),
            ));
        }
        Ok(Business {
            name: self.text(&b.name, "business.name")?,
            kind,
            address: self.text(&b.address, "business.address")?,
            phone,
            timezone,
            website,
        })
    }

    fn holidays(&self, list: &[Text]) -> Res<Vec<NaiveDate>> {
        let mut days = Vec::with_capacity(list.len());
        for (i, t) in list.iter().enumerate() {
            let field = format!("holidays[{i}]");
            let day = self.date(t, &field)?;
            if days.contains(&day) {
                return Err(self.fail(at(t), field, format!("duplicate holiday {day}")));
            }
            days.push(day);
        }
        days.sort();
        Ok(days)
    }

    fn booking(&self, b: Option<&RawBooking>) -> Res<BookingRules> {
        let mut rules = BookingRules::default();
        let Some(b) = b else { return Ok(rules) };
        if let Some(n) = &b.slot_step_minutes {
            let field = "booking.slot_step_minutes";
            let step = self.number(n, field, 1, 240)?;
            if 1440 % step != 0 {
                return Err(self.fail(
                    at(n),
                    field,
                    format!(
                        "{step} does not divide a day evenly (expected e.g. 10, 15, 20, 30 or 60)"
                    ),
                ));
            }
            rules.slot_step_minutes = step;
        }
        if let Some(n) = &b.buffer_minutes {
            rules.buffer_minutes = self.number(n, "booking.buffer_minutes", 0, 480)?;
        }
        if let Some(n) = &b.min_notice_minutes {
            rules.min_notice_minutes =
                self.number(n, "booking.min_notice_minutes", 0, 7 * 24 * 60)?;
        }
        if let Some(n) = &b.horizon_days {
            rules.horizon_days = self.number(n, "booking.horizon_days", 1, 366)?;
        }
        if let Some(n) = &b.suggestions {
            rules.suggestions = self.number(n, "booking.suggestions", 1, 10)? as usize;
        }
        Ok(rules)
    }

    fn services(&self, list: &[RawService]) -> Res<Vec<Service>> {
        let mut ids = HashMap::new();
        // Every name and synonym, normalised, with the service that owns it: a phrase that
        // means two services makes the client's words ambiguous.
        let mut phrases: HashMap<String, (String, String)> = HashMap::new();
        let mut out = Vec::with_capacity(list.len());
        for (i, s) in list.iter().enumerate() {
            let base = format!("services[{i}]");
            let id = self.new_id(&mut ids, &s.id, &base, "service id")?;
            let name = self.text(&s.name, &format!("{base}.name"))?;
            let accusative = self.opt_text(s.accusative.as_ref(), &format!("{base}.accusative"))?;
            let price = self.price(&s.price, &format!("{base}.price"))?;
            let price_note = self.opt_text(s.price_note.as_ref(), &format!("{base}.price_note"))?;
            let duration_minutes = self.number(
                &s.duration_minutes,
                &format!("{base}.duration_minutes"),
                1,
                24 * 60,
            )?;
            let synonyms = self.texts(&s.synonyms, &format!("{base}.synonyms"))?;

            let mut own = vec![(normalise(&name), &s.name, format!("{base}.name"))];
            for (j, t) in s.synonyms.iter().enumerate() {
                own.push((normalise(&t.value), t, format!("{base}.synonyms[{j}]")));
            }
            for (phrase, t, field) in own {
                match phrases.get(&phrase) {
                    Some((owner, where_)) if *owner != id => {
                        return Err(self.fail(
                            at(t),
                            field,
                            format!("{:?} already names service {owner} ({where_}); a phrase may name only one service", t.value.trim()),
                        ));
                    }
                    // Repeating the service's own name or a synonym is harmless.
                    Some(_) => {}
                    None => {
                        phrases.insert(phrase, (id.clone(), field));
                    }
                }
            }

            out.push(Service {
                id: ServiceId(id),
                accusative: accusative.unwrap_or_else(|| name.clone()),
                name,
                price,
                price_note,
                duration_minutes,
                synonyms,
            });
        }
        Ok(out)
    }

    fn price(&self, p: &Spanned<RawPrice>, field: &str) -> Res<Price> {
        const MAX: i64 = 10_000_000;
        match &p.value {
            RawPrice::Fixed(v) => {
                let n = Spanned::new(*v, p.referenced, p.defined);
                Ok(Price::Fixed(self.number(&n, field, 1, MAX)?))
            }
            RawPrice::Range { from, to } => {
                let lo = self.number(from, &format!("{field}.from"), 1, MAX)?;
                let hi = self.number(to, &format!("{field}.to"), 1, MAX)?;
                if lo >= hi {
                    return Err(self.fail(
                        at(from),
                        field,
                        format!("range from {lo} to {hi} is empty (expected from < to; a single price is written as price: {lo})"),
                    ));
                }
                Ok(Price::Range { from: lo, to: hi })
            }
        }
    }

    /// A list of service ids that must all exist.
    fn service_refs(
        &self,
        list: &[Text],
        field: &str,
        services: &[Service],
    ) -> Res<Vec<ServiceId>> {
        let mut out: Vec<ServiceId> = Vec::with_capacity(list.len());
        for (i, t) in list.iter().enumerate() {
            let path = format!("{field}[{i}]");
            let id = t.value.trim();
            if !services.iter().any(|s| s.id.as_str() == id) {
                let known: Vec<&str> = services.iter().map(|s| s.id.as_str()).collect();
                return Err(self.fail(
                    at(t),
                    path,
                    format!("unknown service {id:?} (known: {})", known.join(", ")),
                ));
            }
            if out.iter().any(|s| s.as_str() == id) {
                return Err(self.fail(at(t), path, format!("service {id:?} is listed twice")));
            }
            out.push(ServiceId::from(id));
        }
        Ok(out)
    }

    fn staff(
        &self,
        list: &Spanned<Vec<RawStaff>>,
        services: &[Service],
        business: &WeekHours,
    ) -> Res<Vec<Staff>> {
        if list.value.is_empty() {
            return Err(self.fail(at(list), "staff", "must list at least one staff member"));
        }
        let mut ids = HashMap::new();
        let mut out = Vec::with_capacity(list.value.len());
        for (i, s) in list.value.iter().enumerate() {
            let base = format!("staff[{i}]");
            let id = self.new_id(&mut ids, &s.id, &base, "staff id")?;
            let performs =
                self.service_refs(&s.services.value, &format!("{base}.services"), services)?;
            if performs.is_empty() {
                return Err(self.fail(
                    at(&s.services),
                    format!("{base}.services"),
                    "must list at least one service id",
                ));
            }
            let hours = match &s.hours {
                None => business.clone(),
                Some(h) => {
                    let field = format!("{base}.hours");
                    let own = self.week(h, &field, false)?;
                    self.within_business(h, &own, business, &field)?;
                    own
                }
            };
            out.push(Staff {
                id: StaffId(id),
                name: self.text(&s.name, &format!("{base}.name"))?,
                role: self.text(&s.role, &format!("{base}.role"))?,
                aliases: self.texts(&s.aliases, &format!("{base}.aliases"))?,
                services: performs,
                hours,
            });
        }
        Ok(out)
    }

    /// A staff member works only while the business is open.
    fn within_business(
        &self,
        raw: &Spanned<RawWeek>,
        own: &WeekHours,
        business: &WeekHours,
        field: &str,
    ) -> Res<()> {
        for (i, (day, value)) in raw.value.days().into_iter().enumerate() {
            let (Some(value), Some(h)) = (value, own.days[i]) else {
                continue;
            };
            let path = format!("{field}.{day}");
            match business.days[i] {
                None => {
                    return Err(self.fail(
                        at(value),
                        path,
                        format!(
                            "the business is closed on {day} (expected \"closed\" or no entry)"
                        ),
                    ));
                }
                Some(b) if h.open < b.open || h.close > b.close => {
                    return Err(self.fail(
                        at(value),
                        path,
                        format!(
                            "{}-{} is outside the business hours {}-{} of {day}",
                            h.open.format("%H:%M"),
                            h.close.format("%H:%M"),
                            b.open.format("%H:%M"),
                            b.close.format("%H:%M")
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// A service nobody performs can never be booked: that is a mistake in the profile.
    fn every_service_performed(&self, raw: &[RawService], staff: &[Staff]) -> Res<()> {
        let performed: HashSet<&str> = staff
            .iter()
            .flat_map(|s| s.services.iter().map(ServiceId::as_str))
            .collect();
        for (i, s) in raw.iter().enumerate() {
            let id = s.id.value.trim();
            if !performed.contains(id) {
                return Err(self.fail(
                    at(&s.id),
                    format!("services[{i}].id"),
                    format!("nobody performs service {id:?}, so it can never be booked (expected it in some staff[].services)"),
                ));
            }
        }
        Ok(())
    }

    fn promotions(&self, list: &[RawPromotion], services: &[Service]) -> Res<Vec<Promotion>> {
        let mut ids = HashMap::new();
        let mut out = Vec::with_capacity(list.len());
        for (i, p) in list.iter().enumerate() {
            let base = format!("promotions[{i}]");
            let id = self.new_id(&mut ids, &p.id, &base, "promotion id")?;
            let valid_from = p
                .valid_from
                .as_ref()
                .map(|t| self.date(t, &format!("{base}.valid_from")))
                .transpose()?;
            let valid_until = p
                .valid_until
                .as_ref()
                .map(|t| self.date(t, &format!("{base}.valid_until")))
                .transpose()?;
            if let (Some(from), Some(until), Some(t)) = (valid_from, valid_until, &p.valid_until)
                && until < from
            {
                return Err(self.fail(
                    at(t),
                    format!("{base}.valid_until"),
                    format!(
                        "{until} is before valid_from {from} (expected valid_from ≤ valid_until)"
                    ),
                ));
            }
            let discount_percent = p
                .discount_percent
                .as_ref()
                .map(|n| self.number(n, &format!("{base}.discount_percent"), 1, 100))
                .transpose()?;
            out.push(Promotion {
                id,
                title: self.text(&p.title, &format!("{base}.title"))?,
                text: self.text(&p.text, &format!("{base}.text"))?,
                valid_from,
                valid_until,
                services: self.service_refs(&p.services, &format!("{base}.services"), services)?,
                discount_percent,
                conditions: self.opt_text(p.conditions.as_ref(), &format!("{base}.conditions"))?,
            });
        }
        Ok(out)
    }

    fn faq(&self, list: &[RawFaq]) -> Res<Vec<Faq>> {
        let mut ids = HashMap::new();
        let mut out = Vec::with_capacity(list.len());
        for (i, f) in list.iter().enumerate() {
            let base = format!("faq[{i}]");
            let id = self.new_id(&mut ids, &f.id, &base, "faq id")?;
            if f.keywords.value.is_empty() {
                return Err(self.fail(
                    at(&f.keywords),
                    format!("{base}.keywords"),
                    "must list at least one keyword",
                ));
            }
            out.push(Faq {
                id,
                keywords: self.texts(&f.keywords.value, &format!("{base}.keywords"))?,
                answer: self.text(&f.answer, &format!("{base}.answer"))?,
            });
        }
        Ok(out)
    }

    fn templates(
        &self,
        given: Option<&Entries<TextList>>,
    ) -> Res<BTreeMap<TemplateKey, Vec<String>>> {
        let mut out = BTreeMap::new();
        for (key_text, variations) in given.map(|e| e.0.as_slice()).unwrap_or_default() {
            let name = key_text.value.trim();
            let field = format!("templates.{name}");
            let Some(key) = TemplateKey::parse(name) else {
                let all: Vec<&str> = TemplateKey::ALL.iter().map(|k| k.as_str()).collect();
                return Err(self.fail(
                    at(key_text),
                    field,
                    format!("unknown template (expected one of {})", all.join(", ")),
                ));
            };
            if out.contains_key(&key) {
                return Err(self.fail(at(key_text), field, "template given twice"));
            }
            if variations.value.is_empty() {
                return Err(self.fail(at(variations), field, "must have at least one variation"));
            }
            let mut list = Vec::with_capacity(variations.value.len());
            for (i, v) in variations.value.iter().enumerate() {
                let path = format!("{field}[{i}]");
                let text = self.text(v, &path)?;
                for p in placeholders(&text) {
                    if !key.allowed().contains(&p) && !ALWAYS_ALLOWED.contains(&p) {
                        let allowed: Vec<String> = key
                            .allowed()
                            .iter()
                            .chain(ALWAYS_ALLOWED)
                            .map(|a| format!("{{{a}}}"))
                            .collect();
                        return Err(self.fail(
                            at(v),
                            path,
                            format!(
                                "placeholder {{{p}}} is not allowed in {key} (allowed: {})",
                                allowed.join(", ")
                            ),
                        ));
                    }
                }
                list.push(text);
            }
            out.insert(key, list);
        }
        for key in TemplateKey::ALL {
            out.entry(*key)
                .or_insert_with(|| key.defaults().iter().map(|s| s.to_string()).collect());
        }
        Ok(out)
    }

    fn qualification(&self, q: Option<&RawQualification>) -> Res<Qualification> {
        let Some(q) = q else {
            return Ok(Qualification::default());
        };
        if q.required.value.is_empty() {
            return Err(self.fail(at(&q.required), "qualification.required", "must list at least one field (expected some of service, datetime, phone, name, email)"));
        }
        let mut required = Vec::new();
        for (i, t) in q.required.value.iter().enumerate() {
            let field = format!("qualification.required[{i}]");
            let f = match t.value.trim() {
                "service" => LeadField::Service,
                "datetime" => LeadField::Datetime,
                "phone" => LeadField::Phone,
                "name" => LeadField::Name,
                "email" => LeadField::Email,
                other => {
                    return Err(self.fail(at(t), field, format!("unknown lead field {other:?} (expected one of service, datetime, phone, name, email)")));
                }
            };
            if required.contains(&f) {
                return Err(self.fail(at(t), field, format!("{:?} is listed twice", f.as_str())));
            }
            required.push(f);
        }
        Ok(Qualification { required })
    }

    fn escalation(
        &self,
        e: Option<&Spanned<RawEscalation>>,
        business: &Spanned<RawBusiness>,
    ) -> Res<Escalation> {
        let is_clinic = business.value.kind.value.trim() == "clinic";
        let Some(e) = e else {
            if is_clinic {
                return Err(self.fail(
                    at(&business.value.kind),
                    "escalation",
                    "a clinic must hand medical questions to a person (expected an escalation section with medical_keywords)",
                ));
            }
            return Ok(Escalation::default());
        };
        let raw = &e.value;
        let mut out = Escalation::default();
        if let Some(n) = &raw.max_misunderstandings {
            out.max_misunderstandings =
                self.number(n, "escalation.max_misunderstandings", 1, 10)?;
        }
        out.complaint_keywords =
            self.texts(&raw.complaint_keywords, "escalation.complaint_keywords")?;
        out.medical_keywords = self.texts(&raw.medical_keywords, "escalation.medical_keywords")?;
        // Clinics never answer medical questions unless told otherwise explicitly.
        out.medical_questions_to_human = raw
            .medical_questions_to_human
            .as_ref()
            .map_or(is_clinic, |b| b.value);
        if out.medical_questions_to_human && out.medical_keywords.is_empty() {
            let loc = raw.medical_questions_to_human.as_ref().map_or(at(e), at);
            return Err(self.fail(
                loc,
                "escalation.medical_keywords",
                "medical questions go to a person, but no medical_keywords say which messages are medical (expected words such as болит, температура, диагноз)",
            ));
        }
        Ok(out)
    }

    fn reminders(&self, r: Option<&RawReminders>) -> Res<Reminders> {
        let mut out = Reminders {
            before_hours: vec![24, 2],
            quiet_from: NaiveTime::from_hms_opt(22, 0, 0).unwrap_or_default(),
            quiet_until: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
        };
        let Some(r) = r else { return Ok(out) };
        if let Some(list) = &r.before_hours {
            if list.value.is_empty() {
                return Err(self.fail(
                    at(list),
                    "reminders.before_hours",
                    "must list at least one number of hours (expected e.g. [24, 2])",
                ));
            }
            let mut hours = Vec::with_capacity(list.value.len());
            for (i, n) in list.value.iter().enumerate() {
                let field = format!("reminders.before_hours[{i}]");
                let h = self.number(n, &field, 1, 24 * 14)?;
                if hours.contains(&h) {
                    return Err(self.fail(at(n), field, format!("{h} is listed twice")));
                }
                hours.push(h);
            }
            out.before_hours = hours;
        }
        if let Some(q) = &r.quiet_hours {
            let (from, until) = self.interval(
                q,
                "reminders.quiet_hours",
                true,
                "\"HH:MM-HH:MM\", e.g. \"22:00-09:00\"",
            )?;
            out.quiet_from = from;
            out.quiet_until = until;
        }
        Ok(out)
    }
}

/// Case- and ё-insensitive form of a phrase, for collision checks.
fn normalise(s: &str) -> String {
    s.trim()
        .to_lowercase()
        .replace('ё', "е")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A business phone clients can call. The cheap shape check first keeps arbitrary text away
/// from the phone-number parser.
fn is_valid_phone(s: &str) -> bool {
    let shape_ok = s.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c))
        && (10..=15).contains(&s.chars().filter(char::is_ascii_digit).count());
    shape_ok
        && phonenumber::parse(Some(phonenumber::country::Id::RU), s)
            .map(|n| phonenumber::is_valid(&n))
            .unwrap_or(false)
}
