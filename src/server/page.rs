//! The web chat page (`GET /`), made from `chat.html` and the business profile at each request:
//! the business's name in the header and title, and the bot's welcome (the profile's
//! `greeting` with today's menu: book, prices, promotions while one runs) as the first message,
//! so an embedded widget speaks like the rest of the bot.

use crate::engine::Engine;
use chrono::{DateTime, Utc};

const TEMPLATE: &str = include_str!("chat.html");

/// The page as of `now`, its inline script and style marked with `nonce` (the page's CSP
/// allows only them).
pub fn chat_page(engine: &Engine, now: DateTime<Utc>, nonce: &str) -> String {
    let welcome = engine.welcome(now);
    TEMPLATE
        .replace("<script>", &format!("<script nonce=\"{nonce}\">"))
        .replace("<style>", &format!("<style nonce=\"{nonce}\">"))
        .replace(
            "{{business}}",
            &script_value(&engine.profile().business.name),
        )
        .replace("{{greeting}}", &script_value(&welcome.text))
        .replace("{{buttons}}", &script_value(&welcome.buttons))
}

/// `value` as a JavaScript literal that is safe inside `<script>`: JSON, with `</` written as
/// `<\/` so no value can close the script element.
fn script_value(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "null".into())
        .replace("</", "<\\/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_greets_as_the_business_and_no_name_breaks_the_script() {
        let now = chrono::Utc::now();
        let page = chat_page(&Engine::new(crate::config::demo_salon()), now, "n0nce");
        assert!(page.contains(r#"<script nonce="n0nce">"#));
        assert!(page.contains(r#"<style nonce="n0nce">"#));
        assert!(page.contains("«Лаванда»"), "the business name");
        assert!(page.contains(r#"{"title":"Записаться","payload":"book"}"#));
        assert!(!page.contains("{{"), "every placeholder filled");
        let mut profile = crate::config::demo_clinic();
        profile.business.name = "Клиника \"Береста\" </script><script>alert(1)</script>".into();
        let page = chat_page(&Engine::new(profile), now, "n");
        assert_eq!(page.matches("</script>").count(), 1, "only the page's own");
        assert!(page.contains(r#"Клиника \"Береста\" <\/script>"#));
    }
}
