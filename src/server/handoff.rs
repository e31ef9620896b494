//! Hand-off to managers over Telegram: the notice the managers' chat (`BOT_MANAGERS_CHAT_ID`)
//! gets when a conversation is handed to a human, and how a manager's reply to that notice
//! finds its client again. The notice ends with a `#client channel:id` line; a reply quotes
//! the notice, so no mapping table is needed.

use crate::domain::ClientRef;
use crate::store::ClientCard;
use std::fmt::Write;

const TAG: &str = "#client ";

/// The text of the managers' notice.
pub fn notice(card: &ClientCard, reason: &str) -> String {
    let mut text = format!("🔔 Нужен администратор ({})\n", reason_ru(reason));
    let who = match (&card.name, &card.phone) {
        (Some(n), Some(p)) => format!("{n}, {p}"),
        (Some(n), None) => n.clone(),
        (None, Some(p)) => p.clone(),
        (None, None) => "имя и телефон неизвестны".to_string(),
    };
    let _ = writeln!(text, "Клиент: {who}");
    let _ = writeln!(text, "Канал: {}", card.client.channel);
    if !card.messages.is_empty() {
        let _ = writeln!(text, "Последние сообщения:");
        for m in &card.messages {
            let who = if m.inbound { "клиент" } else { "бот" };
            let line: String = m.text.chars().take(300).collect();
            let _ = writeln!(text, "— {who}: {line}");
        }
    }
    if reason == "pilot" {
        let _ = writeln!(text, "Ответьте на это сообщение — ответ уйдёт клиенту.");
    } else {
        let _ = writeln!(
            text,
            "Ответьте на это сообщение — ответ уйдёт клиенту. /release в ответе вернёт диалог боту."
        );
    }
    let _ = write!(text, "{TAG}{}", card.client);
    text
}

fn reason_ru(reason: &str) -> &'static str {
    match reason {
        "complaint" => "жалоба",
        "misunderstanding" => "бот не понял клиента",
        "medical" => "медицинский вопрос",
        "pilot" => "пилот: этому клиенту отвечают менеджеры, бот молчит",
        "question" => "вопрос, на который у бота нет ответа",
        _ => "клиент просит человека",
    }
}

/// A client's message written while a manager has the conversation, for the managers' chat
/// (a reply to it reaches the client too).
pub fn forward(client: &ClientRef, text: &str) -> String {
    let text: String = text.chars().take(3000).collect();
    format!("💬 Клиент пишет: {text}\n{TAG}{client}")
}

/// The client a notice was about, from the quoted notice text.
pub fn client_of(notice: &str) -> Option<ClientRef> {
    ClientRef::parse(notice.lines().rev().find_map(|l| l.strip_prefix(TAG))?)
}

/// A manager's reply that gives the conversation back to the bot.
pub fn is_release(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or_default();
    first == "/release" || first.starts_with("/release@")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ChannelKind;

    #[test]
    fn the_client_is_found_again_in_the_quoted_notice() {
        let card = ClientCard {
            client: ClientRef {
                channel: ChannelKind::Telegram,
                id: "901".into(),
            },
            name: Some("Марина".into()),
            phone: None,
            messages: Vec::new(),
        };
        let text = notice(&card, "complaint");
        assert!(text.contains("жалоба") && text.contains("Марина"));
        assert_eq!(client_of(&text), Some(card.client.clone()));
        assert_eq!(
            client_of(&forward(&card.client, "алло?")),
            Some(card.client)
        );
        assert_eq!(client_of("просто текст"), None);
        assert_eq!(client_of("#client fax:1"), None);
        assert!(is_release("/release") && is_release("/release@salon_bot спасибо"));
        assert!(!is_release("release"));
    }
}
