//! The web chat page (`GET /`), made once at start from `chat.html` and the business profile:
//! the business's name in the header and title, and its own greeting (the profile's `greeting`
//! template) as the first message, so an embedded widget speaks like the rest of the bot.

use crate::config::Profile;
use crate::engine::reply::{Values, say};
use crate::engine::templates::TemplateKey;

const TEMPLATE: &str = include_str!("chat.html");

/// The page for `profile`.
pub fn chat_page(profile: &Profile) -> String {
    let greeting = say(profile, TemplateKey::Greeting, 0, &Values::new()).text;
    TEMPLATE
        .replace("{{business}}", &script_string(&profile.business.name))
        .replace("{{greeting}}", &script_string(&greeting))
}

/// `text` as a JavaScript string literal that is safe inside `<script>`: JSON, with `</`
/// written as `<\/` so no value can close the script element.
fn script_string(text: &str) -> String {
    serde_json::Value::from(text)
        .to_string()
        .replace("</", "<\\/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_greets_as_the_business_and_no_name_breaks_the_script() {
        let page = chat_page(&crate::config::demo_salon());
        assert!(page.contains("«Лаванда»"), "the business name");
        assert!(!page.contains("{{"), "every placeholder filled");
        let mut profile = crate::config::demo_clinic();
        profile.business.name = "Клиника \"Береста\" </script><script>alert(1)</script>".into();
        let page = chat_page(&profile);
        assert_eq!(page.matches("</script>").count(), 1, "only the page's own");
        assert!(page.contains(r#"Клиника \"Береста\" <\/script>"#));
    }
}
