//! The web chat in a real browser: headless Chromium opens `GET /` of the real server, a client
//! books a manicure by typing and by pressing a slot button, and the page fits a phone's
//! screen. Asserts on what the page shows (bot bubbles, buttons) and on what the store holds.

use chrono::NaiveTime;
use fantoccini::Locator;
use serde::Deserialize;
use serde_json::{Value, json};
use testkit::app::spawn_app;
use testkit::chromium::Chromium;

/// A phone's window (CSS pixels).
const PHONE: (u32, u32) = (390, 844);

/// What the page showed after one client turn.
#[derive(Debug, Deserialize)]
struct Turn {
    /// The client's own newest bubble.
    mine: String,
    /// The bot's new bubbles.
    texts: Vec<String>,
    /// The titles of the buttons that can still be pressed.
    buttons: Vec<String>,
}

impl Turn {
    fn text(&self) -> String {
        self.texts.join("\n")
    }
}

/// The page after the bot's first `arguments[0]` bubbles, once it no longer waits for the
/// server; null while it does.
const NEXT_TURN: &str = r##"
    var bots = document.querySelectorAll("#log .msg.bot");
    if (document.getElementById("typing") || bots.length <= arguments[0]) return null;
    var mine = document.querySelectorAll("#log .msg.me");
    function text(el) { return el.textContent; }
    return {
        mine: mine.length ? text(mine[mine.length - 1]) : "",
        texts: Array.from(bots).slice(arguments[0]).map(text),
        buttons: Array.from(document.querySelectorAll("#log .buttons button:not(:disabled)")).map(text)
    };
"##;

/// What keeps a client from using the chat in a window `arguments[0]` CSS pixels wide: a
/// sideways scroll, an input or send button off screen or covered, the newest bot message
/// out of view. Empty when there is nothing.
const LAYOUT_PROBLEMS: &str = r##"
    var problems = [];
    if (innerWidth !== arguments[0]) problems.push("the window is " + innerWidth + " px wide, not " + arguments[0]);
    var page = document.documentElement.scrollWidth;
    if (page > innerWidth) problems.push("the page is " + page + " px wide in a " + innerWidth + " px window");
    var log = document.getElementById("log");
    if (log.scrollWidth > log.clientWidth)
        problems.push("the conversation scrolls sideways: " + log.scrollWidth + " px in " + log.clientWidth);
    function shown(name, el, area, where) {
        var r = el.getBoundingClientRect();
        if (!r.width || !r.height) return problems.push(name + " has no size");
        if (r.left < area.left || r.right > area.right || r.top < area.top || r.bottom > area.bottom)
            return problems.push(name + " is not fully on " + where);
        var hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        if (!el.contains(hit)) problems.push(name + " is covered by " + (hit ? hit.outerHTML.slice(0, 60) : "nothing"));
    }
    var screen = { left: 0, top: 0, right: innerWidth, bottom: innerHeight };
    shown("the input", document.getElementById("text"), screen, "screen");
    shown("the send button", document.getElementById("send"), screen, "screen");
    var bots = log.querySelectorAll(".msg.bot");
    shown("the newest bot message", bots[bots.length - 1], log.getBoundingClientRect(), "the conversation's view");
    return problems;
"##;

async fn layout_problems(browser: &Chromium, width: u32) -> Vec<String> {
    let problems = browser.run(LAYOUT_PROBLEMS, json!(width)).await;
    serde_json::from_value(problems).expect("a list of problems")
}

async fn bot_bubbles(browser: &Chromium) -> u64 {
    let script = r##"return document.querySelectorAll("#log .msg.bot").length"##;
    browser
        .run(script, Value::Null)
        .await
        .as_u64()
        .expect("a count")
}

async fn next_turn(browser: &Chromium, before: u64, what: &str) -> Turn {
    let turn = browser.wait_for(what, NEXT_TURN, json!(before)).await;
    serde_json::from_value(turn.clone()).unwrap_or_else(|e| panic!("{what}: {e}: {turn}"))
}

/// Type `text` into the input and press the send button; what the page then shows.
async fn say(browser: &Chromium, text: &str) -> Turn {
    let before = bot_bubbles(browser).await;
    let page = &browser.client;
    let input = page.find(Locator::Css("#text")).await.expect("the input");
    input.send_keys(text).await.expect("type");
    let send = page.find(Locator::Css("#send")).await.expect("send button");
    send.click().await.expect("press send");
    let turn = next_turn(browser, before, &format!("the answer to {text:?}")).await;
    assert_eq!(turn.mine, text, "the client's bubble");
    let left = input.prop("value").await.expect("input value");
    assert_eq!(
        left.as_deref(),
        Some(""),
        "the input is cleared after sending"
    );
    turn
}

/// Click the quick-reply button titled `title`; what the page then shows.
async fn press(browser: &Chromium, title: &str) -> Turn {
    let before = bot_bubbles(browser).await;
    let buttons = browser
        .client
        .find_all(Locator::Css("#log .buttons button:not(:disabled)"))
        .await
        .expect("buttons");
    let mut target = None;
    for b in buttons {
        if b.text().await.expect("button title") == title {
            target = Some(b);
        }
    }
    let target = target.unwrap_or_else(|| panic!("no button {title:?} to press"));
    target.click().await.expect("click");
    let turn = next_turn(
        browser,
        before,
        &format!("the answer to the button {title:?}"),
    )
    .await;
    assert_eq!(turn.mine, title, "the pressed button's bubble");
    turn
}

#[tokio::test]
async fn books_a_manicure_slot_in_the_web_chat_and_fits_a_phone() {
    let Some(browser) = Chromium::launch(1280, 900).await else {
        return;
    };
    let app = spawn_app().await;
    browser.client.goto(&app.url("/")).await.expect("open");
    let greeting = next_turn(&browser, 0, "the greeting").await;
    assert_eq!(greeting.buttons, ["Записаться", "Цены", "Акции"]);
    assert!(
        greeting.text().contains("«Лаванда»"),
        "the business greets in its own words: {greeting:?}"
    );
    let title = browser.client.title().await.expect("title");
    assert!(title.contains("«Лаванда»"), "{title}");

    let asked = say(&browser, "хочу записаться на маникюр").await;
    assert!(asked.text().contains("маникюр"), "{asked:?}");
    assert_eq!(
        asked.buttons,
        ["Ближайшее свободное время"],
        "the greeting's buttons are disabled, the question brings its own: {asked:?}"
    );

    let offer = say(&browser, "завтра после обеда").await;
    assert!(offer.text().contains("21.11"), "{offer:?}");
    assert!(!offer.buttons.is_empty(), "slot buttons: {offer:?}");
    for slot in &offer.buttons {
        assert!(
            NaiveTime::parse_from_str(slot, "%H:%M").is_ok(),
            "a slot button is titled with its time: {offer:?}"
        );
    }
    let slot = offer.buttons[0].clone();

    let contact = press(&browser, &slot).await;
    assert!(
        contact.text().contains("телефон") && contact.text().contains(&slot),
        "the bot asks for a name and phone: {contact:?}"
    );
    let chosen = browser
        .run(
            r##"return Array.from(document.querySelectorAll(".buttons button.chosen:disabled"), function (b) { return b.textContent; })"##,
            Value::Null,
        )
        .await;
    assert_eq!(chosen, json!([slot]), "the pressed slot stays marked");

    let booked = say(&browser, "Анна +79131234567").await;
    let confirmation = booked.text();
    for part in ["маникюр", "21.11", slot.as_str()] {
        assert!(confirmation.contains(part), "{part:?} in {confirmation:?}");
    }
    let counts = app.counts().await;
    assert_eq!((counts.bookings, counts.active_bookings), (1, 1));
    // Under the page's CSP the script ran (the booking above), and the conversation's id is
    // 128 random bits that the booking is stored under.
    let id = browser
        .run(
            r#"return localStorage.getItem("bot.client_id")"#,
            Value::Null,
        )
        .await;
    let id = id.as_str().unwrap_or_default().to_string();
    assert!(
        id.len() == 33 && id.starts_with('w') && id[1..].bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    let client = bot::domain::ClientRef {
        channel: bot::domain::ChannelKind::Web,
        id,
    };
    assert!(
        !app.store()
            .await
            .messages(&client)
            .await
            .expect("read")
            .is_empty()
    );

    // The same conversation on a phone: no sideways scroll, the input, the send button and
    // the confirmation in view.
    browser
        .client
        .set_window_size(PHONE.0, PHONE.1)
        .await
        .expect("a phone-sized window");
    browser
        .eventually("the chat to fit a phone", async || {
            let problems = layout_problems(&browser, PHONE.0).await;
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems.join("; "))
            }
        })
        .await;

    browser.close().await;
    app.shutdown().await;
}

#[tokio::test]
async fn phone_layout_check_reports_a_sideways_scroll_and_a_covered_button() {
    let Some(browser) = Chromium::launch(PHONE.0, PHONE.1).await else {
        return;
    };
    let app = spawn_app().await;
    browser.client.goto(&app.url("/")).await.expect("open");
    next_turn(&browser, 0, "the greeting").await;
    assert_eq!(
        layout_problems(&browser, PHONE.0).await,
        Vec::<String>::new()
    );

    let breakage = r##"
        var wide = document.createElement("div");
        wide.style.cssText = "flex: none; width: 1000px; height: 10px";
        document.getElementById("log").appendChild(wide);
        var cover = document.createElement("div");
        cover.style.cssText = "position: fixed; inset: 0; background: white";
        document.body.appendChild(cover);
    "##;
    browser.run(breakage, Value::Null).await;
    let problems = layout_problems(&browser, PHONE.0).await.join("\n");
    assert!(problems.contains("scrolls sideways"), "{problems}");
    assert!(
        problems.contains("the send button is covered"),
        "{problems}"
    );

    browser.close().await;
    app.shutdown().await;
}

/// What keeps a manager from working on a phone in the console: a sideways scroll, or one of
/// the elements `arguments[0]` (CSS selectors) missing, off the screen's width once scrolled
/// into view, or too small to tap. Empty when there is nothing.
const CONSOLE_PROBLEMS: &str = r##"
    var problems = [];
    var page = document.documentElement.scrollWidth;
    if (page > innerWidth) problems.push("the page is " + page + " px wide in a " + innerWidth + " px window");
    arguments[0].forEach(function (sel) {
        var el = document.querySelector(sel);
        if (!el) return problems.push(sel + " is missing");
        el.scrollIntoView({ block: "center" });
        var r = el.getBoundingClientRect();
        if (r.left < 0 || r.right > innerWidth) problems.push(sel + " is off the screen's width");
        if (el.tagName === "BUTTON" && r.height < 36) problems.push(sel + " is " + r.height + " px tall");
    });
    return problems;
"##;

async fn console_problems(browser: &Chromium, selectors: &[&str]) -> Vec<String> {
    let problems = browser.run(CONSOLE_PROBLEMS, json!(selectors)).await;
    serde_json::from_value(problems).expect("a list of problems")
}

/// Fill the console's input `selector` and submit its form with the button `button`.
async fn console_submit(browser: &Chromium, fields: &[(&str, &str)], button: &str) {
    for (selector, value) in fields {
        let input = browser
            .client
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("{selector}: {e}"));
        input.clear().await.expect("clear");
        input.send_keys(value).await.expect("type");
    }
    browser
        .client
        .find(Locator::Css(button))
        .await
        .unwrap_or_else(|e| panic!("{button}: {e}"))
        .click()
        .await
        .expect("submit");
}

#[tokio::test]
async fn a_manager_on_a_phone_sees_a_web_hand_off_arrive_answers_it_and_releases_it() {
    let Some(console) = Chromium::launch(PHONE.0, PHONE.1).await else {
        return;
    };
    let Some(chat) = Chromium::launch(PHONE.0, PHONE.1).await else {
        return;
    };
    let app = spawn_app().await;
    app.store()
        .await
        .add_operator("olga", "correct horse battery", app.clock.now())
        .await
        .expect("add operator");

    // A wrong password is refused; the right one opens the inbox.
    console
        .client
        .goto(&app.url("/console/login"))
        .await
        .expect("open the console");
    let login = [
        ("input[name=name]", "olga"),
        ("input[name=password]", "wrong password"),
    ];
    console_submit(&console, &login, "form.login button").await;
    console
        .wait_for(
            "the refusal",
            r##"return document.body.innerText.indexOf("Неверное имя или пароль") >= 0"##,
            Value::Null,
        )
        .await;
    let login = [
        ("input[name=name]", "olga"),
        ("input[name=password]", "correct horse battery"),
    ];
    console_submit(&console, &login, "form.login button").await;
    console
        .wait_for(
            "the empty inbox",
            r##"return document.body.innerText.indexOf("Никто не ждёт ответа") >= 0"##,
            Value::Null,
        )
        .await;
    assert_eq!(
        console_problems(&console, &["header nav", "header .logout button"]).await,
        Vec::<String>::new()
    );
    // Marks this page load: still set after the hand-off shows, so it came without a reload.
    console.run("window.sameLoad = true", Value::Null).await;

    chat.client
        .goto(&app.url("/"))
        .await
        .expect("open the chat");
    next_turn(&chat, 0, "the greeting").await;
    let asked = say(&chat, "позовите администратора, пожалуйста").await;
    assert!(!asked.texts.is_empty(), "{asked:?}");

    console
        .wait_for(
            "the hand-off in the inbox without a reload",
            r##"var item = document.querySelector("#inbox a.item.unanswered");
               return window.sameLoad === true && item && item.innerText.indexOf("позовите администратора") >= 0;"##,
            Value::Null,
        )
        .await;
    assert_eq!(
        console_problems(&console, &["#inbox a.item"]).await,
        Vec::<String>::new()
    );
    console
        .client
        .find(Locator::Css("#inbox a.item"))
        .await
        .expect("the item")
        .click()
        .await
        .expect("open it");
    console
        .wait_for(
            "the conversation",
            r##"return document.querySelector("#history .msg.in") !== null"##,
            Value::Null,
        )
        .await;
    assert_eq!(
        console_problems(
            &console,
            &[
                "#history",
                "form.reply textarea",
                "form.reply button",
                "form.release button",
                "form.book button",
                "form.note button",
            ],
        )
        .await,
        Vec::<String>::new()
    );

    let answer = "Здравствуйте! Я Ольга, администратор. Чем помочь?";
    console_submit(
        &console,
        &[("form.reply textarea", answer)],
        "form.reply button",
    )
    .await;
    console
        .wait_for(
            "the answer in the history",
            r##"return document.body.innerText.indexOf("Ответ отправлен") >= 0
                && document.querySelector("#history .msg.manager") !== null"##,
            Value::Null,
        )
        .await;
    chat.wait_for(
        "the manager's answer in the client's chat",
        r##"var want = arguments[0];
           var bots = document.querySelectorAll("#log .msg.bot");
           return Array.from(bots).some(function (b) { return b.textContent.indexOf(want) >= 0; });"##,
        json!(answer),
    )
    .await;

    console_submit(&console, &[], "form.release button").await;
    console
        .wait_for(
            "the release",
            r##"return document.body.innerText.indexOf("Диалог возвращён боту") >= 0"##,
            Value::Null,
        )
        .await;
    let price = say(&chat, "сколько стоит маникюр?").await;
    assert!(
        price.text().contains('₽'),
        "the bot answers again: {price:?}"
    );

    console
        .client
        .goto(&app.url("/console/today"))
        .await
        .expect("today");
    assert_eq!(
        console_problems(&console, &["form.day button"]).await,
        Vec::<String>::new()
    );
    // The check itself can fail: a wide element and a missing one are reported.
    console
        .run(
            r##"var wide = document.createElement("div");
                wide.style.cssText = "width: 1200px; height: 10px";
                document.querySelector("main").appendChild(wide);"##,
            Value::Null,
        )
        .await;
    let problems = console_problems(&console, &["form.nothing"])
        .await
        .join("\n");
    assert!(problems.contains("px wide"), "{problems}");
    assert!(problems.contains("form.nothing is missing"), "{problems}");
    console.close().await;
    chat.close().await;
    app.shutdown().await;
}
