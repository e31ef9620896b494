//! The managers' console over HTTP: closed without operators, signing in (cookie attributes,
//! a wrong password, the login limit), CSRF on every POST, the inbox, an answer that reaches a
//! web client through the outbox, «вернуть боту», bookings made, moved and cancelled by the
//! schedule rules (no double booking), the note, today's visits and their marks.

use bot::domain::{BookingStatus, ChannelKind, ClientRef};
use bot::engine::Owner;
use testkit::app::{TestApp, spawn_app};
use testkit::console::ConsoleUser;

const OPERATOR: &str = "olga";
const PASSWORD: &str = "correct horse battery";

async fn with_operator(app: &TestApp) {
    let store = app.store().await;
    assert!(
        store
            .add_operator(OPERATOR, PASSWORD, app.clock.now())
            .await
            .expect("add")
    );
}

fn web(id: &str) -> ClientRef {
    ClientRef {
        channel: ChannelKind::Web,
        id: id.into(),
    }
}

/// What the web client sees when it polls.
async fn web_client_sees(app: &TestApp, id: &str) -> String {
    let response = app
        .http
        .get(app.url("/api/v1/messages"))
        .header("X-Client-Id", id)
        .send()
        .await
        .expect("poll");
    let body: serde_json::Value = response.json().await.expect("JSON");
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| format!("{}: {}", m["from"], m["text"]))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn without_an_operator_the_console_says_how_to_create_one_and_lets_no_one_in() {
    let app = spawn_app().await;
    let mut user = ConsoleUser::new(&app);
    let inbox = user.get("/console/inbox").await;
    assert_eq!(inbox.status, 303);
    assert_eq!(inbox.location.as_deref(), Some("/console/login"));
    let login = user.get("/console/login").await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains("bot operator add"), "{}", login.body);
    assert!(!login.body.contains("password"), "no form: {}", login.body);
    // No form is offered, so none can be sent.
    let tried = user.login("admin", "admin").await;
    assert_eq!(tried.status, 403, "{}", tried.body);
    assert!(!user.cookies.iter().any(|(k, _)| k == "bot_console"));
    app.shutdown().await;
}

#[tokio::test]
async fn signing_in_sets_a_strict_cookie_and_wrong_passwords_or_forged_forms_are_refused() {
    let app = spawn_app().await;
    with_operator(&app).await;

    let mut stranger = ConsoleUser::new(&app);
    let wrong = stranger.login(OPERATOR, "guess").await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(
        wrong.body.contains("Неверное имя или пароль"),
        "{}",
        wrong.body
    );
    assert!(!stranger.cookies.iter().any(|(k, _)| k == "bot_console"));
    // A login form posted from elsewhere lacks the double-submit cookie.
    let mut forged = ConsoleUser::new(&app);
    let page = forged
        .post_raw(
            "/console/login",
            &[("csrf", "x"), ("name", OPERATOR), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.body);

    let mut user = ConsoleUser::new(&app);
    let ok = user.login(OPERATOR, PASSWORD).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let session = ok
        .set_cookies
        .iter()
        .find(|c| c.starts_with("bot_console="))
        .expect("a session cookie");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=43200",
    ] {
        assert!(session.contains(attribute), "{attribute} in {session}");
    }
    let inbox = user.get("/console/inbox").await;
    assert_eq!(inbox.status, 200);
    assert!(
        inbox.body.contains("Никто не ждёт ответа"),
        "{}",
        inbox.body
    );
    let csp = app
        .http
        .get(app.url("/console/login"))
        .send()
        .await
        .expect("page");
    let csp = csp.headers()["content-security-policy"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );

    // A POST without the session's token changes nothing.
    let client = web("web-csrf");
    app.say("web-csrf", "позовите администратора").await;
    let path = format!("/console/c/{}/reply", "web%3Aweb-csrf");
    let forged = user.post_raw(&path, &[("text", "подделка")]).await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    let wrong_token = user
        .post_raw(
            &path,
            &[("csrf", "0".repeat(64).as_str()), ("text", "подделка")],
        )
        .await;
    assert_eq!(wrong_token.status, 403);
    let messages = app.store().await.messages(&client).await.expect("messages");
    assert!(!messages.iter().any(|m| m.text == "подделка"));

    // Signing out ends the session on the server, not only in the browser.
    let cookies = user.cookies.clone();
    let out = user.post("/console/logout", &[]).await;
    assert_eq!(out.status, 303);
    let mut replay = ConsoleUser::new(&app);
    replay.cookies = cookies;
    let after = replay.get("/console/inbox").await;
    assert_eq!(after.status, 303, "the old cookie opens nothing");
    app.shutdown().await;
}

#[tokio::test]
async fn login_attempts_are_limited_and_answered_with_retry_after() {
    let app = spawn_app().await;
    with_operator(&app).await;
    let mut user = ConsoleUser::new(&app);
    for i in 0..5 {
        let page = user.login(OPERATOR, &format!("guess {i}")).await;
        assert_eq!(page.status, 401, "attempt {i}");
    }
    let page = user.login(OPERATOR, PASSWORD).await;
    assert_eq!(
        page.status, 429,
        "even the right password waits: {}",
        page.body
    );
    assert!(page.body.contains("Слишком много попыток"));
    let retry = app
        .http
        .post(app.url("/console/login"))
        .form(&[("csrf", ""), ("name", OPERATOR), ("password", PASSWORD)])
        .send()
        .await
        .expect("answer");
    // No form token: refused before the limiter counts it.
    assert_eq!(retry.status(), 403);
    app.shutdown().await;
}

#[tokio::test]
async fn an_operator_answers_a_web_client_in_their_chat_and_gives_the_conversation_back() {
    let app = spawn_app().await;
    with_operator(&app).await;
    let first = app
        .say("web-ira", "позовите администратора, пожалуйста")
        .await;
    assert_eq!(first["handoff"], true, "{first}");
    app.say("web-ira", "алло, вы тут?").await;
    app.say("web-oleg", "сколько стоит стрижка?").await;

    let mut user = ConsoleUser::signed_in(&app, OPERATOR, PASSWORD).await;
    let list = user.get("/console/inbox?part=list").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("алло, вы тут?"), "{}", list.body);
    assert!(list.body.contains("просит человека"), "{}", list.body);
    assert!(list.body.contains("ждёт"), "{}", list.body);
    assert!(
        !list.body.contains("web-oleg"),
        "only those who wait: {}",
        list.body
    );
    assert!(!list.body.contains("<html"), "a fragment for the refresh");

    let path = "/console/c/web%3Aweb-ira";
    let page = user.get(path).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("позовите администратора"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Вернуть боту"));
    let answer = "Здравствуйте! Я Ольга, администратор. Чем помочь?";
    let sent = user
        .post(&format!("{path}/reply"), &[("text", answer)])
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(sent.location.as_deref(), Some(&*format!("{path}?msg=sent")));

    app.outbox_drained().await;
    let seen = web_client_sees(&app, "web-ira").await;
    assert!(
        seen.contains(&format!("\"manager\": \"{answer}\"")),
        "{seen}"
    );
    let stored = app
        .store()
        .await
        .messages(&web("web-ira"))
        .await
        .expect("messages");
    let mine = stored.iter().find(|m| m.text == answer).expect("stored");
    assert_eq!(mine.kind, "manager");
    assert_eq!(mine.operator.as_deref(), Some(OPERATOR), "attributed");
    assert!(mine.sent_at.is_some(), "sent by the outbox, timed");
    let list = user.get("/console/inbox?part=list").await;
    assert!(list.body.contains("отвечено"), "{}", list.body);
    let history = user.get(&format!("{path}?part=history")).await;
    assert!(history.body.contains("Менеджер olga"), "{}", history.body);

    let released = user.post(&format!("{path}/release"), &[]).await;
    assert_eq!(released.status, 303);
    let conv = app
        .store()
        .await
        .conversation(&web("web-ira"))
        .await
        .expect("read")
        .expect("conversation");
    assert_eq!(conv.owner, Owner::Bot);
    let again = app.say("web-ira", "хочу записаться на маникюр").await;
    assert_eq!(again["handoff"], false, "{again}");
    assert!(
        !testkit::app::texts(&again).is_empty(),
        "the bot answers again"
    );
    let list = user.get("/console/inbox?part=list").await;
    assert!(list.body.contains("Никто не ждёт ответа"), "{}", list.body);
    app.shutdown().await;
}

#[tokio::test]
async fn an_operator_books_moves_and_cancels_by_the_bots_rules_and_marks_the_visit() {
    let app = spawn_app().await;
    with_operator(&app).await;
    app.say("web-a", "позовите администратора").await;
    app.say("web-b", "позовите администратора").await;
    let mut user = ConsoleUser::signed_in(&app, OPERATOR, PASSWORD).await;
    let a = "/console/c/web%3Aweb-a";
    let b = "/console/c/web%3Aweb-b";
    // Monday 23.11, 12:00 with Olga.
    let booked = user
        .post(
            &format!("{a}/book"),
            &[
                ("service", "manicure"),
                ("staff", "olga"),
                ("date", "2026-11-23"),
                ("time", "12:00"),
            ],
        )
        .await;
    assert_eq!(
        booked.location.as_deref(),
        Some(&*format!("{a}?msg=booked"))
    );
    let store = app.store().await;
    let bookings = store
        .client_file(&web("web-a"))
        .await
        .expect("read")
        .expect("client")
        .bookings;
    assert_eq!(bookings.len(), 1);
    let id = bookings[0].booking.id.clone();
    assert_eq!(bookings[0].booking.slot.staff.as_str(), "olga");

    // The same master at the same time for another client: refused, nothing written.
    let twice = user
        .post(
            &format!("{b}/book"),
            &[
                ("service", "manicure"),
                ("staff", "olga"),
                ("date", "2026-11-23"),
                ("time", "12:30"),
            ],
        )
        .await;
    assert_eq!(
        twice.location.as_deref(),
        Some(&*format!("{b}?msg=no_slot"))
    );
    let refused = user.get(&format!("{b}?msg=no_slot")).await;
    assert!(refused.body.contains("записать нельзя"), "{}", refused.body);
    // Sunday night, closed: refused too.
    let closed = user
        .post(
            &format!("{b}/book"),
            &[
                ("service", "manicure"),
                ("staff", ""),
                ("date", "2026-11-22"),
                ("time", "23:00"),
            ],
        )
        .await;
    assert_eq!(
        closed.location.as_deref(),
        Some(&*format!("{b}?msg=no_slot"))
    );
    let garbage = user
        .post(
            &format!("{b}/book"),
            &[
                ("service", "manicure"),
                ("date", "23.11"),
                ("time", "полдень"),
            ],
        )
        .await;
    assert_eq!(
        garbage.location.as_deref(),
        Some(&*format!("{b}?msg=bad_time"))
    );
    let counts = store.counts().await.expect("counts");
    assert_eq!(counts.bookings, 1);

    let moved = user
        .post(
            &format!("{a}/move"),
            &[
                ("booking", id.as_str()),
                ("date", "2026-11-23"),
                ("time", "15:00"),
            ],
        )
        .await;
    assert_eq!(moved.location.as_deref(), Some(&*format!("{a}?msg=moved")));
    let now_at = store.booking(&id).await.expect("read").expect("booking");
    assert_eq!(
        now_at.booking.slot.start.to_rfc3339(),
        "2026-11-23T08:00:00+00:00",
        "15:00 in Novosibirsk"
    );
    // Another client cannot touch it.
    let not_theirs = user
        .post(&format!("{b}/cancel"), &[("booking", id.as_str())])
        .await;
    assert_eq!(
        not_theirs.location.as_deref(),
        Some(&*format!("{b}?msg=not_theirs"))
    );

    app.outbox_drained().await;
    let seen = web_client_sees(&app, "web-a").await;
    assert!(
        seen.contains("Записали вас на маникюр 23.11 (пн) в 12:00"),
        "{seen}"
    );
    assert!(seen.contains("Перенесли вашу запись"), "{seen}");
    assert!(seen.contains("15:00"), "{seen}");
    let jobs = store.pending_jobs().await.expect("jobs");
    assert!(
        jobs.iter().any(|j| j.kind == bot::store::JobKind::Reminder),
        "the moved booking has its reminders"
    );

    // Today's page for Monday lists the visit under Olga; after the visit it can be marked.
    let day = user.get("/console/today?date=2026-11-23").await;
    assert!(day.body.contains("15:00–"), "{}", day.body);
    assert!(!day.body.contains("Не пришёл"), "not before the visit ends");
    app.clock
        .advance(chrono::Duration::days(3) + chrono::Duration::hours(10));
    let expired = user.get("/console/today?date=2026-11-23").await;
    assert_eq!(expired.status, 303, "a session lasts 12 hours");
    let mut user = ConsoleUser::signed_in(&app, OPERATOR, PASSWORD).await;
    let day = user.get("/console/today?date=2026-11-23").await;
    assert!(day.body.contains("Не пришёл"), "{}", day.body);
    let marked = user
        .post(
            &format!("/console/bookings/{id}/mark"),
            &[("mark", "completed")],
        )
        .await;
    assert_eq!(
        marked.location.as_deref(),
        Some("/console/today?date=2026-11-23&msg=marked")
    );
    let done = store.booking(&id).await.expect("read").expect("booking");
    assert_eq!(done.booking.status, BookingStatus::Completed);
    app.shutdown().await;
}

#[tokio::test]
async fn a_cancel_by_the_operator_tells_the_client_and_frees_the_slot_and_the_note_is_kept() {
    let app = spawn_app().await;
    with_operator(&app).await;
    app.say("web-c", "позовите администратора").await;
    let mut user = ConsoleUser::signed_in(&app, OPERATOR, PASSWORD).await;
    let c = "/console/c/web%3Aweb-c";
    let form = [
        ("service", "manicure"),
        ("staff", "olga"),
        ("date", "2026-11-23"),
        ("time", "12:00"),
    ];
    user.post(&format!("{c}/book"), &form).await;
    let store = app.store().await;
    let file = store
        .client_file(&web("web-c"))
        .await
        .expect("read")
        .expect("client");
    let id = file.bookings[0].booking.id.clone();
    let cancelled = user
        .post(&format!("{c}/cancel"), &[("booking", id.as_str())])
        .await;
    assert_eq!(
        cancelled.location.as_deref(),
        Some(&*format!("{c}?msg=cancelled"))
    );
    let b = store.booking(&id).await.expect("read").expect("booking");
    assert_eq!(b.booking.status, BookingStatus::Cancelled);
    let again = user.post(&format!("{c}/book"), &form).await;
    assert_eq!(
        again.location.as_deref(),
        Some(&*format!("{c}?msg=booked")),
        "the slot is free again"
    );
    app.outbox_drained().await;
    assert!(
        web_client_sees(&app, "web-c")
            .await
            .contains("Отменили вашу запись")
    );

    let noted = user
        .post(&format!("{c}/note"), &[("note", "Аллергия на акрил <b>")])
        .await;
    assert_eq!(noted.status, 303);
    let page = user.get(c).await;
    assert!(
        page.body.contains("Аллергия на акрил &lt;b&gt;"),
        "escaped: {}",
        page.body
    );
    assert_eq!(
        store
            .client_file(&web("web-c"))
            .await
            .expect("read")
            .expect("client")
            .note
            .as_deref(),
        Some("Аллергия на акрил <b>")
    );
    let missing = user.get("/console/c/web%3Anobody").await;
    assert_eq!(missing.status, 404);
    app.shutdown().await;
}

#[tokio::test]
async fn a_pilot_managers_client_waits_in_the_inbox_is_answered_and_stays_with_the_managers() {
    let app = spawn_app().await;
    with_operator(&app).await;
    let store = app.store().await;
    let plan = bot::store::pilot::PilotPlan {
        share: 0.0,
        seed: Some("console".into()),
        start: app.clock.now() - chrono::Duration::minutes(1),
        ends_at: app.clock.now() + chrono::Duration::days(14),
        existing: bot::pilot::Arm::Bot,
    };
    store
        .start_pilot(&plan, app.clock.now())
        .await
        .expect("pilot");
    let first = app
        .say("web-pilot", "здравствуйте, сколько стоит маникюр?")
        .await;
    assert_eq!(first["replies"], serde_json::json!([]), "{first}");

    let mut user = ConsoleUser::signed_in(&app, OPERATOR, PASSWORD).await;
    let list = user.get("/console/inbox?part=list").await;
    assert!(
        list.body.contains("пилот: отвечают менеджеры"),
        "{}",
        list.body
    );
    assert!(list.body.contains("сколько стоит маникюр"), "{}", list.body);
    let path = "/console/c/web%3Aweb-pilot";
    let answer = "Здравствуйте! Маникюр — 1 800 ₽.";
    let sent = user
        .post(&format!("{path}/reply"), &[("text", answer)])
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    app.outbox_drained().await;
    assert!(
        web_client_sees(&app, "web-pilot").await.contains(answer),
        "the operator's answer reaches the pilot's client"
    );
    let released = user.post(&format!("{path}/release"), &[]).await;
    assert_eq!(
        released.location.as_deref(),
        Some(&*format!("{path}?msg=pilot_kept"))
    );
    let conv = store
        .conversation(&web("web-pilot"))
        .await
        .expect("read")
        .expect("conversation");
    assert_eq!(conv.owner, Owner::Human, "stays with the managers");
    let again = app.say("web-pilot", "а педикюр?").await;
    assert_eq!(again["replies"], serde_json::json!([]), "{again}");
    store.close().await;
    app.shutdown().await;
}
