//! The HTML report in a real browser: headless Chromium opens the file `bot report --out`
//! wrote, at a phone's and a desktop's width; nothing overflows sideways, every chart is drawn
//! (an SVG with bars, on screen), the headline numbers come first, no name or phone is shown,
//! and screenshots are kept in `target/report-screenshots/` for a person to look at.

use serde_json::{Value, json};
use testkit::chromium::Chromium;
use testkit::run_bot;

/// What is wrong with the page at width `arguments[0]`.
const PROBLEMS: &str = r##"
    var problems = [];
    if (innerWidth !== arguments[0]) problems.push("the window is " + innerWidth + " px wide");
    var page = document.documentElement.scrollWidth;
    if (page > innerWidth) problems.push("the page is " + page + " px wide in " + innerWidth);
    var charts = document.querySelectorAll("figure svg");
    if (charts.length !== 4) problems.push(charts.length + " charts, not 4");
    charts.forEach(function (svg, i) {
        var r = svg.getBoundingClientRect();
        if (r.width < 200 || r.height < 80) problems.push("chart " + i + " is " + r.width + "×" + r.height);
        if (r.right > innerWidth + 1) problems.push("chart " + i + " sticks out");
        if (svg.querySelectorAll("rect").length < 3) problems.push("chart " + i + " has no bars");
        if (svg.querySelectorAll("text").length < 3) problems.push("chart " + i + " has no labels");
    });
    var first = document.querySelector("main > *:nth-child(3)");
    if (!first || !first.classList.contains("cards")) problems.push("the headline numbers are not first");
    return problems;
"##;

#[tokio::test]
async fn the_html_report_fits_a_phone_and_a_desktop_and_draws_its_charts() {
    let Some(browser) = Chromium::launch(390, 844).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite://{}", dir.path().join("bot.db").display());
    for files in [
        vec!["fixtures/import/telegram-full.json"],
        vec!["fixtures/import/instagram-export.zip"],
        vec![
            "fixtures/import/WhatsApp Chat with +7 913 000-11-22.txt",
            "fixtures/import/WhatsApp Chat - Мария Ким.zip",
            "fixtures/import/chats.csv",
        ],
    ] {
        let mut args = vec!["import", "--db", &db];
        args.extend(files);
        let (code, _, err) = run_bot!(&args, &[]).await;
        assert_eq!(code, 0, "{err}");
    }
    let out = dir.path().join("reports");
    let out_arg = format!("{}/", out.display());
    let (code, _, err) = run_bot!(
        &[
            "report",
            "--db",
            &db,
            "--from",
            "2026-11-30",
            "--to",
            "2026-12-06",
            "--out",
            &out_arg
        ],
        &[]
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let html = out.join("2026-W49.html");
    let page = std::fs::read_to_string(&html).expect("the HTML report");
    assert!(out.join("2026-W49.json").exists());
    for private in ["Ким", "000-11-22", "79130001122", "555 0142", "Аня"] {
        assert!(!page.contains(private), "{private} in the report");
    }
    for outside in ["<link", "<script", "src=", "href=", "@import", "url("] {
        assert!(!page.contains(outside), "self-contained, yet {outside}");
    }

    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/report-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot folder");
    browser
        .client
        .goto(&format!("file://{}", html.display()))
        .await
        .expect("open the report");
    for (name, width, height) in [("phone", 390u32, 844u32), ("desktop", 1280, 900)] {
        browser
            .client
            .set_window_size(width, height)
            .await
            .expect("resize");
        browser
            .eventually(&format!("the report to fit a {name}"), async || {
                let problems = browser.run(PROBLEMS, json!(width)).await;
                let problems: Vec<String> = serde_json::from_value(problems).unwrap_or_default();
                if problems.is_empty() {
                    Ok(())
                } else {
                    Err(problems.join("; "))
                }
            })
            .await;
        let png = browser.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(shots.join(format!("report-{name}.png")), png).expect("save");
    }
    let headline = browser
        .run(
            r#"return document.querySelector(".card b").textContent"#,
            Value::Null,
        )
        .await;
    assert!(
        headline.as_str().unwrap_or_default().ends_with('%'),
        "{headline}"
    );
    // The check can fail: a wide element is reported.
    browser
        .run(
            r#"var d = document.createElement("div"); d.style.width = "3000px"; d.style.height = "4px"; document.querySelector("main").appendChild(d);"#,
            Value::Null,
        )
        .await;
    let problems = browser.run(PROBLEMS, json!(1280)).await;
    assert!(problems.to_string().contains("px wide"), "{problems}");
    browser.close().await;
}
