//! The managers' web console (`/console`, served by `bot serve`): operators sign in
//! (`auth.rs`), see the conversations waiting for a human (hand-offs with their reason, clients
//! waiting for a call back), open one — its whole history, the client's bookings — answer
//! through the client's own channel (the outbox sends it, so it is retried and timed like the
//! bot's replies), give the conversation back to the bot, book, move or cancel for the client
//! by the bot's schedule rules (`store/console.rs`), keep a note, and mark today's visits.
//!
//! It renders HTML on the server (`html.rs`) with one small script that refreshes the inbox
//! and the open conversation in place; nothing here decides a dialog or touches a table
//! directly. The Telegram managers' group keeps working beside it: both write `manager`
//! messages, so an answer from either closes the wait in both.

pub mod auth;
mod html;

use crate::domain::{BookingId, ClientRef, Event, Inbound, ServiceId, StaffId};
use crate::server::App;
use crate::store::console::{BookingAction, Refusal};
use crate::store::{Attendance, StoreError};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;

const CSS: &str = include_str!("console.css");
const JS: &str = include_str!("console.js");

/// Only the console's own files; no inline code, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The console's routes (under `/console`).
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/inbox") }))
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/inbox") }),
        )
        .route("/console/static/console.css", get(css))
        .route("/console/static/console.js", get(js))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/inbox", get(inbox))
        .route("/console/today", get(today))
        .route("/console/bookings/{id}/mark", post(mark))
        .route("/console/c/{client}", get(conversation))
        .route("/console/c/{client}/reply", post(reply))
        .route("/console/c/{client}/release", post(release))
        .route("/console/c/{client}/note", post(note))
        .route("/console/c/{client}/book", post(book))
        .route("/console/c/{client}/move", post(move_booking))
        .route("/console/c/{client}/cancel", post(cancel))
        .layer(axum::middleware::map_response(console_headers))
}

/// Every console answer: its CSP, and never cached (pages hold names and phones).
async fn console_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
}

/// Why a console request ends without its page.
enum Stop {
    /// Not signed in: to the login page.
    SignIn,
    /// A POST without the session's CSRF token.
    Forbidden,
    NotFound(&'static str),
    /// The store failed; logged, not shown.
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        Stop::Store(e)
    }
}

impl IntoResponse for Stop {
    fn into_response(self) -> Response {
        match self {
            Stop::SignIn => Redirect::to("/console/login").into_response(),
            Stop::Forbidden => (
                StatusCode::FORBIDDEN,
                Html(html::refusal(
                    "Запрос отклонён",
                    "Форма устарела или пришла не из консоли. Обновите страницу и попробуйте ещё раз.",
                )),
            )
                .into_response(),
            Stop::NotFound(what) => (
                StatusCode::NOT_FOUND,
                Html(html::refusal("Не найдено", what)),
            )
                .into_response(),
            Stop::Store(e) => {
                let busy = e.is_busy();
                tracing::error!(error = %e, "console: store failed");
                let status = if busy {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                (
                    status,
                    Html(html::refusal(
                        "Ошибка",
                        "База данных не ответила. Попробуйте ещё раз.",
                    )),
                )
                    .into_response()
            }
        }
    }
}

/// The signed-in operator, or the way to the login page.
async fn signed_in(app: &App, headers: &HeaderMap) -> Result<Signed, Stop> {
    match auth::session(&app.store, headers, app.clock.now()).await? {
        Some(s) => Ok(Signed {
            operator: s.operator,
            csrf: s.csrf,
        }),
        None => Err(Stop::SignIn),
    }
}

struct Signed {
    operator: String,
    csrf: String,
}

impl Signed {
    /// A POST's form token must be this session's.
    fn check(&self, sent: &str) -> Result<(), Stop> {
        if auth::csrf_ok(sent, &self.csrf) {
            Ok(())
        } else {
            tracing::warn!(operator = %self.operator, "console: a POST without the CSRF token refused");
            Err(Stop::Forbidden)
        }
    }
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

async fn login_page(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Response, Stop> {
    let has_operators = !app.store.operators().await?.is_empty();
    Ok(login_form(&headers, has_operators, None, StatusCode::OK))
}

/// The login page with a fresh double-submit token (cookie and field).
fn login_form(
    headers: &HeaderMap,
    has_operators: bool,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let token = auth::random_hex(16);
    let cookie = auth::set_cookie(headers, auth::LOGIN_COOKIE, &token, 3600);
    (
        status,
        [(header::SET_COOKIE, cookie)],
        Html(html::login(&token, has_operators, error)),
    )
        .into_response()
}

/// The caller's address (from the accept loop; absent when a test calls the router directly).
struct Peer(Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Peer, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("unknown"),
        }
    }
}

async fn login(
    State(app): State<Arc<App>>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, Stop> {
    let paired = auth::cookie(&headers, auth::LOGIN_COOKIE).unwrap_or_default();
    if !auth::csrf_ok(&form.csrf, paired) {
        tracing::warn!(ip = %peer, "console login without its form token refused");
        return Err(Stop::Forbidden);
    }
    let name = form.name.trim();
    if let Err(wait) = app.console_logins.check(peer.0, name) {
        tracing::warn!(operator = %name, ip = %peer, "console login attempts over the limit");
        let secs = crate::server::retry_after(wait);
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs.to_string())],
            Html(html::refusal(
                "Слишком много попыток",
                &format!("Подождите {secs} с и попробуйте снова."),
            )),
        )
            .into_response());
    }
    let operators = app.store.operators().await?;
    let found = if operators.is_empty() {
        None
    } else {
        app.store.check_operator(name, &form.password).await?
    };
    let Some(operator) = found else {
        tracing::warn!(operator = %name, ip = %peer, "console login refused: wrong name or password");
        return Ok(login_form(
            &headers,
            !operators.is_empty(),
            Some("Неверное имя или пароль."),
            StatusCode::UNAUTHORIZED,
        ));
    };
    let token = auth::start(&app.store, operator.id, app.clock.now()).await?;
    tracing::info!(operator = %operator.name, ip = %peer, "console: signed in");
    let cookie = auth::set_cookie(
        &headers,
        auth::SESSION_COOKIE,
        &token,
        auth::SESSION_HOURS * 3600,
    );
    let clear = auth::set_cookie(&headers, auth::LOGIN_COOKIE, "", 0);
    let mut response = Redirect::to("/console/inbox").into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response.headers_mut().append(header::SET_COOKIE, clear);
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, Stop> {
    let signed = signed_in(&app, &headers).await?;
    signed.check(&form.csrf)?;
    if let Some(token) = auth::cookie(&headers, auth::SESSION_COOKIE) {
        app.store.close_session(&auth::token_hash(token)).await?;
    }
    tracing::info!(operator = %signed.operator, "console: signed out");
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        auth::set_cookie(&headers, auth::SESSION_COOKIE, "", 0),
    );
    Ok(response)
}

#[derive(Debug, Deserialize, Default)]
struct PageQuery {
    /// Only this part of the page (the script's refresh).
    part: Option<String>,
    /// A message to show after an action.
    msg: Option<String>,
    date: Option<String>,
}

/// The conversations waiting for a human, the most recently active first.
async fn inbox(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, Stop> {
    let signed = signed_in(&app, &headers).await?;
    let mut waiting = app.store.handoffs().await?;
    waiting.sort_by_key(|w| std::cmp::Reverse(html::last_activity(w)));
    let now = app.clock.now();
    let tz = app.engine.profile().business.timezone;
    if q.part.as_deref() == Some("list") {
        return Ok(Html(html::inbox_list(&waiting, now, tz)).into_response());
    }
    Ok(Html(html::inbox(
        &signed.operator,
        &signed.csrf,
        &waiting,
        now,
        tz,
    ))
    .into_response())
}

/// A POST about one conversation: the signed-in operator (with the form's CSRF token checked)
/// and the client of the path.
async fn posted(
    app: &App,
    headers: &HeaderMap,
    csrf: &str,
    raw: &str,
) -> Result<(Signed, ClientRef), Stop> {
    let signed = signed_in(app, headers).await?;
    signed.check(csrf)?;
    Ok((signed, client_of(raw)?))
}

/// The client of a `/console/c/{client}` path.
fn client_of(raw: &str) -> Result<ClientRef, Stop> {
    ClientRef::parse(raw).ok_or(Stop::NotFound("Нет такого диалога."))
}

async fn conversation(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, Stop> {
    let signed = signed_in(&app, &headers).await?;
    let client = client_of(&raw)?;
    let Some(file) = app.store.client_file(&client).await? else {
        return Err(Stop::NotFound("Нет такого диалога."));
    };
    let profile = app.engine.profile();
    if q.part.as_deref() == Some("history") {
        return Ok(Html(html::history(&file.messages, profile.business.timezone)).into_response());
    }
    let flash = q.msg.as_deref().map(flash_text);
    Ok(Html(html::conversation(
        &signed.operator,
        &signed.csrf,
        &file,
        profile,
        app.clock.now(),
        flash,
    ))
    .into_response())
}

/// The words of an action's outcome (`?msg=` after the redirect).
fn flash_text(code: &str) -> &'static str {
    match code {
        "sent" => "Ответ отправлен клиенту.",
        "released" => "Диалог возвращён боту.",
        "pilot_kept" => {
            "Этот клиент в группе менеджеров пилота: бот не отвечает ему, пока идёт пилот."
        }
        "note" => "Заметка сохранена.",
        "booked" => "Клиент записан; ему отправлено подтверждение.",
        "moved" => "Запись перенесена; клиенту отправлено сообщение.",
        "cancelled" => "Запись отменена; клиенту отправлено сообщение.",
        "no_slot" => "В это время записать нельзя: занято, мастер не работает или слишком скоро.",
        "not_theirs" => "Эта запись уже не активна.",
        "bad_time" => "Не понял дату или время.",
        "unknown_service" => "Нет такой услуги.",
        "empty" => "Пустое сообщение не отправлено.",
        "marked" => "Отметка сохранена.",
        "too_early" => "Отметить можно только после окончания визита.",
        _ => "Готово.",
    }
}

fn back(client: &ClientRef, msg: &str) -> Response {
    Redirect::to(&format!("{}?msg={msg}", html::client_path(client))).into_response()
}

#[derive(Debug, Deserialize)]
struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

/// An operator's answer: stored as their `manager` message and sent by the outbox through
/// the client's channel (the web chat shows it at its next poll).
async fn reply(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<ReplyForm>,
) -> Result<Response, Stop> {
    let (signed, client) = posted(&app, &headers, &form.csrf, &raw).await?;
    let text = form.text.trim();
    if text.is_empty() {
        return Ok(back(&client, "empty"));
    }
    let text: String = text.chars().take(crate::channels::web::MAX_TEXT).collect();
    let now = app.clock.now();
    let id = format!("console:{}:{}", auth::random_hex(8), now.timestamp_micros());
    let stored = app
        .store
        .manager_message(&id, &client, &text, Some(&signed.operator), now)
        .await?;
    if stored.is_none() {
        return Err(Stop::NotFound("Нет такого диалога."));
    }
    app.wake.notify_one();
    tracing::info!(operator = %signed.operator, channel = %client.channel, "console: operator answered");
    Ok(back(&client, "sent"))
}

/// «Вернуть боту»: the bot answers the client again.
async fn release(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, Stop> {
    let (signed, client) = posted(&app, &headers, &form.csrf, &raw).await?;
    let now = app.clock.now();
    let inbound = Inbound {
        client: client.clone(),
        at: now,
        event: Event::Released,
    };
    let id = format!(
        "console:release:{}:{}",
        auth::random_hex(8),
        now.timestamp_micros()
    );
    let handled = app
        .store
        .process_inbound(&app.engine, &id, &inbound, now)
        .await?;
    app.wake.notify_one();
    // A pilot's managers-arm client stays with the managers while the pilot runs.
    if let crate::store::Handled::Processed(p) = &handled
        && p.turn.conversation.owner == crate::engine::Owner::Human
    {
        return Ok(back(&client, "pilot_kept"));
    }
    tracing::info!(operator = %signed.operator, channel = %client.channel, "console: released to the bot");
    Ok(back(&client, "released"))
}

#[derive(Debug, Deserialize)]
struct NoteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
}

async fn note(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<NoteForm>,
) -> Result<Response, Stop> {
    let (_signed, client) = posted(&app, &headers, &form.csrf, &raw).await?;
    let note: String = form.note.chars().take(2000).collect();
    if !app.store.set_note(&client, &note).await? {
        return Err(Stop::NotFound("Нет такого диалога."));
    }
    Ok(back(&client, "note"))
}

#[derive(Debug, Deserialize)]
struct BookForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    staff: String,
    #[serde(default)]
    booking: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    time: String,
}

impl BookForm {
    /// The form's local date and time in the business's zone.
    fn start(&self, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
        let date = NaiveDate::parse_from_str(self.date.trim(), "%Y-%m-%d").ok()?;
        let time = chrono::NaiveTime::parse_from_str(self.time.trim(), "%H:%M").ok()?;
        tz.from_local_datetime(&date.and_time(time))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    }
}

async fn book(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<BookForm>,
) -> Result<Response, Stop> {
    let (signed, client) = posted(&app, &headers, &form.csrf, &raw).await?;
    let Some(start) = form.start(app.engine.profile().business.timezone) else {
        return Ok(back(&client, "bad_time"));
    };
    let action = BookingAction::Book {
        service: ServiceId(form.service.trim().to_string()),
        staff: Some(form.staff.trim())
            .filter(|s| !s.is_empty())
            .map(|s| StaffId(s.to_string())),
        start,
    };
    booking_action(&app, &signed, &client, &action, "booked").await
}

async fn move_booking(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<BookForm>,
) -> Result<Response, Stop> {
    let (signed, client) = posted(&app, &headers, &form.csrf, &raw).await?;
    let Some(start) = form.start(app.engine.profile().business.timezone) else {
        return Ok(back(&client, "bad_time"));
    };
    let action = BookingAction::Move {
        id: BookingId(form.booking.trim().to_string()),
        start,
    };
    booking_action(&app, &signed, &client, &action, "moved").await
}

async fn cancel(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    Form(form): Form<BookForm>,
) -> Result<Response, Stop> {
    let (signed, client) = posted(&app, &headers, &form.csrf, &raw).await?;
    let action = BookingAction::Cancel {
        id: BookingId(form.booking.trim().to_string()),
    };
    booking_action(&app, &signed, &client, &action, "cancelled").await
}

async fn booking_action(
    app: &Arc<App>,
    signed: &Signed,
    client: &ClientRef,
    action: &BookingAction,
    done: &str,
) -> Result<Response, Stop> {
    let profile = app.engine.profile();
    let tell = |b: &crate::domain::Booking, a: &BookingAction| crate::console::tell(profile, b, a);
    let outcome = app
        .store
        .operator_booking(
            profile,
            client,
            action,
            &signed.operator,
            &tell,
            app.clock.now(),
        )
        .await?;
    let msg = match outcome {
        Ok(_) => {
            app.wake_workers();
            tracing::info!(operator = %signed.operator, done, "console: booking changed");
            done
        }
        Err(Refusal::NoSlot) => "no_slot",
        Err(Refusal::NotTheirs) => "not_theirs",
        Err(Refusal::UnknownService) => "unknown_service",
        Err(Refusal::UnknownClient) => return Err(Stop::NotFound("Нет такого диалога.")),
    };
    Ok(back(client, msg))
}

/// What the client is told about an operator's booking change.
pub fn tell(
    profile: &crate::config::Profile,
    b: &crate::domain::Booking,
    action: &BookingAction,
) -> String {
    let tz = profile.business.timezone;
    let local = b.slot.start.with_timezone(&tz);
    let when = format!(
        "{} ({}) в {}",
        local.format("%d.%m"),
        crate::engine::reply::weekday_short(chrono::Datelike::weekday(&local)),
        local.format("%H:%M")
    );
    let service = profile
        .service(&b.service)
        .map_or_else(|| b.service.to_string(), |s| s.accusative.clone());
    let staff = profile
        .staff_member(&b.slot.staff)
        .map_or_else(|| b.slot.staff.to_string(), |s| s.name.clone());
    match action {
        BookingAction::Book { .. } => format!(
            "Записали вас на {service} {when}, мастер — {staff}. Номер записи {}. Адрес: {}.",
            b.id, profile.business.address
        ),
        BookingAction::Move { .. } => format!(
            "Перенесли вашу запись №{} на {when}, мастер — {staff}.",
            b.id
        ),
        BookingAction::Cancel { .. } => {
            format!("Отменили вашу запись №{} на {service} {when}.", b.id)
        }
    }
}

#[derive(Debug, Deserialize)]
struct MarkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    mark: String,
}

/// Today's bookings per master.
async fn today(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Result<Response, Stop> {
    let signed = signed_in(&app, &headers).await?;
    let profile = app.engine.profile();
    let tz = profile.business.timezone;
    let now = app.clock.now();
    let day = q
        .date
        .as_deref()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or_else(|| now.with_timezone(&tz).date_naive());
    let start = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_time(chrono::NaiveTime::MIN))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    };
    let (Some(from), Some(to)) = (start(day), day.succ_opt().and_then(start)) else {
        return Err(Stop::NotFound("Нет такого дня."));
    };
    let bookings = app.store.bookings_between(from, to).await?;
    let flash = q.msg.as_deref().map(flash_text);
    Ok(Html(html::today(
        &signed.operator,
        &signed.csrf,
        profile,
        day,
        &bookings,
        now,
        flash,
    ))
    .into_response())
}

/// Mark a visit that is over: came, or did not (a no-show schedules the follow-up).
async fn mark(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<MarkForm>,
) -> Result<Response, Stop> {
    let signed = signed_in(&app, &headers).await?;
    signed.check(&form.csrf)?;
    let attendance = match form.mark.as_str() {
        "completed" => Attendance::Completed,
        "no_show" => Attendance::NoShow,
        _ => return Err(Stop::NotFound("Нет такой отметки.")),
    };
    let id = BookingId(id);
    let profile = app.engine.profile();
    let now = app.clock.now();
    let day = match app.store.booking(&id).await? {
        Some(b) => b
            .booking
            .slot
            .start
            .with_timezone(&profile.business.timezone)
            .format("%Y-%m-%d")
            .to_string(),
        None => return Err(Stop::NotFound("Нет такой записи.")),
    };
    let msg = match app.store.mark_booking(profile, &id, attendance, now).await {
        Ok(_) => {
            app.wake_workers();
            tracing::info!(operator = %signed.operator, mark = attendance.as_str(), "console: visit marked");
            "marked"
        }
        Err(StoreError::CannotMark { .. }) => "too_early",
        Err(e) => return Err(e.into()),
    };
    Ok(Redirect::to(&format!("/console/today?date={day}&msg={msg}")).into_response())
}
