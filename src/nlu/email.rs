//! E-mail addresses in the original message text, as written (a standard address pattern,
//! compiled once per `Nlu`). Messages without `@` skip the regex entirely.

use regex::Regex;
use std::ops::Range;

#[derive(Debug, Clone)]
pub struct EmailFinder {
    re: Option<Regex>,
}

impl Default for EmailFinder {
    fn default() -> Self {
        Self::new()
    }
}

impl EmailFinder {
    pub fn new() -> EmailFinder {
        EmailFinder {
            re: Regex::new(
                r"(?i)\b[a-z0-9][a-z0-9._%+\-]*@(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+[a-z]{2,24}\b",
            )
            .ok(),
        }
    }

    /// The first address in `text` and its byte range.
    pub fn find(&self, text: &str) -> Option<(String, Range<usize>)> {
        if !text.contains('@') {
            return None;
        }
        let m = self.re.as_ref()?.find(text)?;
        Some((m.as_str().to_string(), m.range()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_addresses_as_written() {
        let f = EmailFinder::new();
        let got = |s: &str| f.find(s).map(|(e, _)| e);
        assert_eq!(
            got("почта Anna.Ivanova@mail.ru, спасибо").as_deref(),
            Some("Anna.Ivanova@mail.ru")
        );
        assert_eq!(
            got("моя почта: olga_85@yandex.ru.").as_deref(),
            Some("olga_85@yandex.ru")
        );
        assert_eq!(got("пишите на @salon_nsk в инсте"), None);
        assert_eq!(got("a@b"), None);
    }
}
