//! The console's pages as HTML: the login page, the inbox, one conversation, and today's
//! bookings. Server-rendered, Russian, no inline script or style (the CSP allows only the
//! console's own `/console/static/` files); every value from a client or the profile goes
//! through [`escape`]. Parts that refresh themselves (`data-refresh`) are rendered by the same
//! functions the page uses, so a refresh cannot drift from the first render.

use crate::config::Profile;
use crate::domain::{BookingStatus, ClientRef};
use crate::store::console::ClientFile;
use crate::store::{StoredBooking, StoredMessage, WaitingHandoff};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use chrono_tz::Tz;
use std::fmt::Write;

/// `s` safe inside HTML text and quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The path of a client's conversation page.
pub fn client_path(client: &ClientRef) -> String {
    // Everything but RFC 3986's unreserved characters.
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let raw = client.to_string();
    let id = percent_encoding::utf8_percent_encode(&raw, SEGMENT);
    format!("/console/c/{id}")
}

/// A whole page: `body` inside the console's frame. `operator` and `csrf` when signed in (the
/// header's links and the sign-out form).
pub fn page(title: &str, signed_in: Option<(&str, &str)>, body: &str) -> String {
    let mut header = String::new();
    if let Some((operator, csrf)) = signed_in {
        let _ = write!(
            header,
            "<header><nav><a href=\"/console/inbox\">Входящие</a>\
             <a href=\"/console/today\">Сегодня</a></nav>\
             <form method=\"post\" action=\"/console/logout\" class=\"logout\">{}\
             <button type=\"submit\">Выйти ({})</button></form></header>",
            csrf_field(csrf),
            escape(operator)
        );
    }
    format!(
        "<!doctype html><html lang=\"ru\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} — консоль</title>\
         <link rel=\"stylesheet\" href=\"/console/static/console.css\">\
         <script src=\"/console/static/console.js\" defer></script></head>\
         <body>{header}<main>{body}</main></body></html>",
        escape(title)
    )
}

pub fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(csrf)
    )
}

/// The login page: the form, or — without any operator — how to create one.
pub fn login(csrf: &str, has_operators: bool, error: Option<&str>) -> String {
    if !has_operators {
        return page(
            "Вход",
            None,
            "<h1>Консоль менеджеров</h1><p class=\"notice\">Операторов пока нет, поэтому вход \
             закрыт. Создайте оператора на сервере командой \
             <code>bot operator add ИМЯ</code> — она напечатает одноразовый пароль.</p>",
        );
    }
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    page(
        "Вход",
        None,
        &format!(
            "<h1>Консоль менеджеров</h1>{error}\
             <form method=\"post\" action=\"/console/login\" class=\"login\">{}\
             <label>Имя <input name=\"name\" autocomplete=\"username\" required></label>\
             <label>Пароль <input name=\"password\" type=\"password\" \
             autocomplete=\"current-password\" required></label>\
             <button type=\"submit\">Войти</button></form>",
            csrf_field(csrf)
        ),
    )
}

/// `t` in the business's zone: `07.12 14:05`.
fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%d.%m %H:%M").to_string()
}

fn hhmm(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%H:%M").to_string()
}

/// `пн 07.12 14:05`.
fn day_time(t: DateTime<Utc>, tz: Tz) -> String {
    let l = t.with_timezone(&tz);
    format!(
        "{} {}",
        crate::engine::reply::weekday_short(l.weekday()),
        l.format("%d.%m %H:%M")
    )
}

/// How long: «3 мин», «1 ч 05 мин», «2 д 3 ч».
pub fn waited(d: chrono::Duration) -> String {
    let mins = d.num_minutes().max(0);
    let (days, hours, mins) = (mins / 1440, mins / 60 % 24, mins % 60);
    match (days, hours) {
        (0, 0) => format!("{mins} мин"),
        (0, _) => format!("{hours} ч {mins:02} мин"),
        _ => format!("{days} д {hours} ч"),
    }
}

fn reason_ru(w: &WaitingHandoff) -> &'static str {
    if w.callback {
        return "перезвонить клиенту";
    }
    match w.reason.map(crate::domain::HandoffReason::as_str) {
        Some("complaint") => "жалоба",
        Some("misunderstanding") => "бот не понял",
        Some("medical") => "медицинский вопрос",
        Some("pilot") => "пилот: отвечают менеджеры",
        Some("question") => "вопрос, на который у бота нет ответа",
        Some(_) => "просит человека",
        None => "передан менеджеру",
    }
}

/// When a waiting conversation last needed attention: the client's last message, or the
/// hand-off itself.
pub fn last_activity(w: &WaitingHandoff) -> DateTime<Utc> {
    w.last_inbound_at.map_or(w.since, |t| t.max(w.since))
}

/// The inbox list (refreshed in place).
pub fn inbox_list(waiting: &[WaitingHandoff], now: DateTime<Utc>, tz: Tz) -> String {
    if waiting.is_empty() {
        return "<p class=\"empty\">Никто не ждёт ответа.</p>".into();
    }
    let mut out = String::from("<ul class=\"inbox\">");
    for w in waiting {
        let who = match (&w.name, &w.phone) {
            (Some(n), Some(p)) => format!("{} · {}", escape(n), escape(p)),
            (Some(n), None) => escape(n),
            (None, Some(p)) => escape(p),
            (None, None) => "Имя неизвестно".into(),
        };
        let state = if w.unanswered() {
            format!(
                "<span class=\"wait\">ждёт {}</span>",
                waited(now - last_activity(w))
            )
        } else {
            "<span class=\"answered\">отвечено</span>".into()
        };
        let last: String = w
            .last_message
            .as_deref()
            .unwrap_or("")
            .chars()
            .take(140)
            .collect();
        let _ = write!(
            out,
            "<li><a class=\"item{}\" href=\"{}\"><span class=\"top\"><span class=\"channel\">{}</span>\
             <span class=\"who\">{who}</span>{state}</span>\
             <span class=\"reason\">{} · с {}</span><span class=\"last\">{}</span></a></li>",
            if w.unanswered() { " unanswered" } else { "" },
            client_path(&w.client),
            w.client.channel,
            reason_ru(w),
            local(w.since, tz),
            escape(&last),
        );
    }
    out.push_str("</ul>");
    out
}

pub fn inbox(
    operator: &str,
    csrf: &str,
    waiting: &[WaitingHandoff],
    now: DateTime<Utc>,
    tz: Tz,
) -> String {
    page(
        "Входящие",
        Some((operator, csrf)),
        &format!(
            "<h1>Ждут менеджера</h1><section id=\"inbox\" data-refresh=\"/console/inbox?part=list\">{}</section>",
            inbox_list(waiting, now, tz)
        ),
    )
}

fn author(m: &StoredMessage) -> String {
    if m.inbound {
        return "Клиент".into();
    }
    match (m.kind.as_str(), &m.operator) {
        ("manager", Some(op)) => format!("Менеджер {}", escape(op)),
        ("manager", None) => "Менеджер (Telegram)".into(),
        _ => "Бот".into(),
    }
}

/// The conversation's messages (refreshed in place).
pub fn history(messages: &[StoredMessage], tz: Tz) -> String {
    let mut out = String::from("<ol class=\"history\">");
    for m in messages {
        let class = if m.inbound {
            "in"
        } else if m.kind == "manager" {
            "manager"
        } else {
            "bot"
        };
        let text = if m.text.is_empty() {
            "<i>текст удалён</i>".to_string()
        } else {
            escape(&m.text)
        };
        let at = m.received_at.unwrap_or(m.created_at);
        let _ = write!(
            out,
            "<li class=\"msg {class}\" data-id=\"{}\"><span class=\"meta\">{} · {}</span>\
             <span class=\"text\">{text}</span></li>",
            m.id,
            author(m),
            local(at, tz),
        );
    }
    out.push_str("</ol>");
    out
}

fn status_ru(s: BookingStatus) -> &'static str {
    match s {
        BookingStatus::Booked => "записан",
        BookingStatus::Confirmed => "подтвердил",
        BookingStatus::Cancelled => "отменена",
        BookingStatus::Rescheduled => "перенесена",
        BookingStatus::Completed => "пришёл",
        BookingStatus::NoShow => "не пришёл",
    }
}

fn service_name(profile: &Profile, b: &StoredBooking) -> String {
    profile
        .service(&b.booking.service)
        .map_or_else(|| b.booking.service.to_string(), |s| s.name.clone())
}

fn staff_name(profile: &Profile, b: &StoredBooking) -> String {
    profile
        .staff_member(&b.booking.slot.staff)
        .map_or_else(|| b.booking.slot.staff.to_string(), |s| s.name.clone())
}

fn options<'a>(items: impl Iterator<Item = (&'a str, &'a str)>, any: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(any) = any {
        let _ = write!(out, "<option value=\"\">{}</option>", escape(any));
    }
    for (value, label) in items {
        let _ = write!(
            out,
            "<option value=\"{}\">{}</option>",
            escape(value),
            escape(label)
        );
    }
    out
}

/// One conversation: who, the history, the reply box, the bookings and the note.
pub fn conversation(
    operator: &str,
    csrf: &str,
    file: &ClientFile,
    profile: &Profile,
    now: DateTime<Utc>,
    flash: Option<&str>,
) -> String {
    let tz = profile.business.timezone;
    let path = client_path(&file.client);
    let csrf_in = csrf_field(csrf);
    let name = file.name.as_deref().unwrap_or("Имя неизвестно");
    let mut body = format!(
        "<h1>{}</h1><p class=\"contact\">{} · {}</p>",
        escape(name),
        file.phone
            .as_deref()
            .map_or_else(|| "телефон неизвестен".into(), escape),
        file.client.channel
    );
    if let Some(flash) = flash {
        let _ = write!(
            body,
            "<p class=\"flash\" role=\"status\">{}</p>",
            escape(flash)
        );
    }
    let state = if file.with_manager {
        "Диалог у менеджера: бот молчит."
    } else if file.callback {
        "Клиент ждёт звонка; бот пока отвечает."
    } else {
        "Отвечает бот."
    };
    let _ = write!(body, "<p class=\"state\">{state}</p>");
    if file.with_manager || file.callback {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"{path}/release\" class=\"release\">{csrf_in}\
             <button type=\"submit\">Вернуть боту</button></form>"
        );
    }
    let _ = write!(
        body,
        "<section id=\"history\" data-refresh=\"{path}?part=history\" data-scroll>{}</section>\
         <form method=\"post\" action=\"{path}/reply\" class=\"reply\">{csrf_in}\
         <textarea name=\"text\" rows=\"3\" maxlength=\"4096\" required \
         placeholder=\"Ответ клиенту\"></textarea>\
         <button type=\"submit\">Отправить</button></form>",
        history(&file.messages, tz)
    );
    body.push_str("<h2>Записи</h2>");
    let active: Vec<&StoredBooking> = file
        .bookings
        .iter()
        .filter(|b| b.booking.is_active() && b.booking.slot.end > now)
        .collect();
    if file.bookings.is_empty() {
        body.push_str("<p class=\"empty\">Записей нет.</p>");
    } else {
        body.push_str("<ul class=\"bookings\">");
        for b in &file.bookings {
            let _ = write!(
                body,
                "<li><span>№{} · {} · {} · мастер {} · {}</span>",
                escape(b.booking.id.as_str()),
                day_time(b.booking.slot.start, tz),
                escape(&service_name(profile, b)),
                escape(&staff_name(profile, b)),
                status_ru(b.booking.status)
            );
            if active.iter().any(|a| a.booking.id == b.booking.id) {
                let local = b.booking.slot.start.with_timezone(&tz);
                let _ = write!(
                    body,
                    "<form method=\"post\" action=\"{path}/move\" class=\"move\">{csrf_in}\
                     <input type=\"hidden\" name=\"booking\" value=\"{id}\">\
                     <input type=\"date\" name=\"date\" value=\"{d}\" required>\
                     <input type=\"time\" name=\"time\" value=\"{t}\" step=\"300\" required>\
                     <button type=\"submit\">Перенести</button></form>\
                     <form method=\"post\" action=\"{path}/cancel\" class=\"cancel\">{csrf_in}\
                     <input type=\"hidden\" name=\"booking\" value=\"{id}\">\
                     <button type=\"submit\">Отменить</button></form>",
                    id = escape(b.booking.id.as_str()),
                    d = local.format("%Y-%m-%d"),
                    t = local.format("%H:%M"),
                );
            }
            body.push_str("</li>");
        }
        body.push_str("</ul>");
    }
    let services = options(
        profile
            .services
            .iter()
            .map(|s| (s.id.as_str(), s.name.as_str())),
        None,
    );
    let staff = options(
        profile
            .staff
            .iter()
            .map(|s| (s.id.as_str(), s.name.as_str())),
        Some("любой мастер"),
    );
    let today = now.with_timezone(&tz).format("%Y-%m-%d");
    let _ = write!(
        body,
        "<form method=\"post\" action=\"{path}/book\" class=\"book\">{csrf_in}\
         <label>Услуга <select name=\"service\" required>{services}</select></label>\
         <label>Мастер <select name=\"staff\">{staff}</select></label>\
         <label>Дата <input type=\"date\" name=\"date\" value=\"{today}\" required></label>\
         <label>Время <input type=\"time\" name=\"time\" step=\"300\" required></label>\
         <button type=\"submit\">Записать</button></form>\
         <h2>Заметка</h2>\
         <form method=\"post\" action=\"{path}/note\" class=\"note\">{csrf_in}\
         <textarea name=\"note\" rows=\"2\" maxlength=\"2000\">{}</textarea>\
         <button type=\"submit\">Сохранить</button></form>",
        escape(file.note.as_deref().unwrap_or(""))
    );
    page(name, Some((operator, csrf)), &body)
}

/// Today's (or `day`'s) bookings per master, with the marks for visits that are over.
pub fn today(
    operator: &str,
    csrf: &str,
    profile: &Profile,
    day: NaiveDate,
    bookings: &[StoredBooking],
    now: DateTime<Utc>,
    flash: Option<&str>,
) -> String {
    let tz = profile.business.timezone;
    let csrf_in = csrf_field(csrf);
    let mut body = format!(
        "<h1>Записи на {} {}</h1>\
         <form method=\"get\" action=\"/console/today\" class=\"day\">\
         <input type=\"date\" name=\"date\" value=\"{}\"><button type=\"submit\">Показать</button></form>",
        crate::engine::reply::weekday_short(day.weekday()),
        day.format("%d.%m"),
        day.format("%Y-%m-%d"),
    );
    if let Some(flash) = flash {
        let _ = write!(
            body,
            "<p class=\"flash\" role=\"status\">{}</p>",
            escape(flash)
        );
    }
    let mut any = false;
    for staff in &profile.staff {
        let theirs: Vec<&StoredBooking> = bookings
            .iter()
            .filter(|b| b.booking.slot.staff == staff.id)
            .collect();
        if theirs.is_empty() {
            continue;
        }
        any = true;
        let _ = write!(
            body,
            "<section class=\"master\"><h2>{}</h2><ol class=\"timeline\">",
            escape(&staff.name)
        );
        for b in theirs {
            let client = b.client_name.as_deref().unwrap_or("Имя неизвестно");
            let _ = write!(
                body,
                "<li class=\"visit {}\"><span class=\"time\">{}–{}</span> \
                 <span>{} · {} · №{} · {}</span>",
                crate::store::status_str(b.booking.status),
                hhmm(b.booking.slot.start, tz),
                hhmm(b.booking.slot.end, tz),
                escape(&service_name(profile, b)),
                escape(client),
                escape(b.booking.id.as_str()),
                status_ru(b.booking.status),
            );
            if b.booking.is_active() && b.booking.slot.end <= now {
                let action = format!("/console/bookings/{}/mark", escape(b.booking.id.as_str()));
                let _ = write!(
                    body,
                    "<form method=\"post\" action=\"{action}\" class=\"mark\">{csrf_in}\
                     <button name=\"mark\" value=\"completed\" type=\"submit\">Пришёл</button>\
                     <button name=\"mark\" value=\"no_show\" type=\"submit\">Не пришёл</button></form>"
                );
            }
            body.push_str("</li>");
        }
        body.push_str("</ol></section>");
    }
    if !any {
        body.push_str("<p class=\"empty\">Записей нет.</p>");
    }
    page("Сегодня", Some((operator, csrf)), &body)
}

/// A short page for a refusal (403, 404, 429).
pub fn refusal(title: &str, text: &str) -> String {
    page(
        title,
        None,
        &format!(
            "<h1>{}</h1><p>{}</p><p><a href=\"/console/inbox\">В консоль</a></p>",
            escape(title),
            escape(text)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ChannelKind;

    #[test]
    fn values_cannot_break_out_of_the_markup() {
        assert_eq!(
            escape(r#"<script>"a" & 'b'</script>"#),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
        let client = ClientRef {
            channel: ChannelKind::Web,
            id: "a/b?c#d e".into(),
        };
        assert_eq!(client_path(&client), "/console/c/web%3Aa%2Fb%3Fc%23d%20e");
    }

    #[test]
    fn waiting_times_read_in_russian() {
        assert_eq!(waited(chrono::Duration::seconds(90)), "1 мин");
        assert_eq!(waited(chrono::Duration::minutes(65)), "1 ч 05 мин");
        assert_eq!(waited(chrono::Duration::hours(51)), "2 д 3 ч");
        assert_eq!(waited(chrono::Duration::seconds(-5)), "0 мин");
    }

    #[test]
    fn without_operators_the_login_page_says_how_to_make_one_and_has_no_form() {
        let page = login("t", false, None);
        assert!(page.contains("bot operator add"));
        assert!(!page.contains("<form"));
        let page = login("t", true, Some("Неверное имя или пароль"));
        assert!(page.contains("name=\"password\"") && page.contains("value=\"t\""));
        assert!(page.contains("Неверное имя или пароль"));
    }
}
