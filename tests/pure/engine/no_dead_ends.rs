//! Random conversations from a grammar of what clients write while booking — wishes, refusals,
//! names, phones, questions, insisting on a time — never make the bot repeat itself or drop a
//! chosen slot without saying so.

use super::{Chat, friday_10};
use bot::domain::Effect;
use bot::engine::{Owner, Stage, Turn};
use proptest::prelude::*;

/// One client message of the grammar.
fn message() -> impl Strategy<Value = String> {
    prop_oneof![
        // wishes
        Just("хочу на маникюр".to_string()),
        Just("запишите на маникюр в субботу в 12".to_string()),
        Just("можно на стрижку завтра после обеда".to_string()),
        Just("на массаж в субботу в 12".to_string()),
        Just("в понедельник в 10".to_string()),
        Just("давайте в воскресенье".to_string()),
        Just("а пораньше есть?".to_string()),
        Just("в 12".to_string()),
        // refusals and insisting
        Just("нет".to_string()),
        Just("нет, мне нужно в субботу в 12".to_string()),
        Just("не подходит".to_string()),
        Just("другое время не подходит, только в субботу в 12".to_string()),
        Just("передумала".to_string()),
        // names and phones
        Just("Лилия".to_string()),
        Just("лиза".to_string()),
        Just("Роза".to_string()),
        Just("Слава".to_string()),
        Just("Милена, 89131234567".to_string()),
        Just("8 913 123-45-67".to_string()),
        Just("+7 913 555 66 77".to_string()),
        Just("Иванова Мария".to_string()),
        // questions
        Just("сколько стоит маникюр?".to_string()),
        Just("где вы находитесь?".to_string()),
        Just("а это долго?".to_string()),
        Just("ок".to_string()),
        Just("да".to_string()),
        Just("спасибо".to_string()),
    ]
}

/// A turn may let go of a held slot only by saying why: booked, declined, handed over, or a
/// new offer for another time.
const LETS_GO_OF_A_SLOT: &[&str] = &[
    "booked",
    "declined",
    "handoff",
    "handoff_complaint",
    "handoff_safety",
    "handoff_medical",
    "handoff_callback",
    "callback_noted",
    "offer_slots",
    "offer_slots_days",
    "offer_wider",
    "offer_manager",
    "ask_which_time",
    "slot_taken",
    "outside_hours",
    "too_soon",
    "service_not_that_day",
    "staff_away_then",
    "no_slots",
    "ask_datetime",
    "ask_time",
    "ask_service",
];

fn held(stage: &Stage) -> bool {
    matches!(stage, Stage::AwaitingContact { .. })
}

fn templates(turn: &Turn) -> Vec<&str> {
    turn.replies
        .iter()
        .filter_map(|r| r.template.as_deref())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_bot_never_repeats_a_message_nor_drops_a_held_slot_silently(
        msgs in proptest::collection::vec(message(), 1..14)
    ) {
        let mut chat = Chat::salon();
        chat.now = friday_10();
        let mut history: Vec<Vec<String>> = Vec::new();
        for m in &msgs {
            let before = chat.conv.stage.clone();
            let turn = chat.say(m);
            let texts: Vec<String> = turn.replies.iter().map(|r| r.text.clone()).collect();
            if !texts.is_empty() {
                history.push(texts);
            }
            // Stronger than «never three times»: never the same message twice in a row.
            if let [.., b, c] = history.as_slice() {
                let twice = b.iter().any(|t| c.contains(t));
                prop_assert!(!twice, "the same message twice in a row: {c:?} after {msgs:?}");
            }
            let booked = turn
                .effects
                .iter()
                .any(|e| matches!(e, Effect::BookingRequested { .. }));
            if held(&before) && !held(&turn.conversation.stage) && !booked
                && turn.conversation.owner != Owner::Human
            {
                let keys = templates(&turn);
                prop_assert!(
                    keys.iter().any(|k| LETS_GO_OF_A_SLOT.contains(k)),
                    "a held slot was dropped with {keys:?} on {m:?} after {msgs:?}"
                );
            }
        }
    }
}
