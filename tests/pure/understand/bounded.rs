//! Any message a client can send (up to the web API's 64 KiB body, after decoding) is
//! understood with bounded work: long words, long runs of digits, Latin look-alikes that
//! transliterate to two letters, thousands of words. The cost itself is measured in
//! `benches/understand.rs` (worst inputs); here a generous per-case timeout turns a
//! super-linear path into a failure instead of a hang, and the cap is checked exactly.

use super::{now, profiles};
use bot::nlu::{MAX_UNDERSTOOD_CHARS, Nlu};
use proptest::prelude::*;
use std::sync::OnceLock;

fn salon() -> &'static Nlu {
    static NLU: OnceLock<Nlu> = OnceLock::new();
    NLU.get_or_init(|| Nlu::new(&profiles::salon()))
}

/// One piece of a hostile message.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[а-яё]{1,400}",
        "[a-zx]{1,400}",
        "[0-9]{1,300}",
        "[а-яa-z0-9]{1,40}",
        Just("завтра в 3".to_string()),
        Just("меня зовут Аня".to_string()),
        Just("8 913 123-45-67".to_string()),
        Just("маникюрчик".to_string()),
        Just("записатся".to_string()),
        Just("с 10 до 12".to_string()),
        "[ .,!?:@+()\\-]{1,5}",
        "\\PC{1,40}",
    ]
}

/// Messages of up to about 16 KiB built from hostile pieces.
fn message() -> impl Strategy<Value = String> {
    proptest::collection::vec(piece(), 1..120).prop_map(|parts| {
        let mut text = parts.join(" ");
        while text.len() > 16 * 1024 {
            text.pop();
        }
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        // A guard, not a speed goal: the slowest case takes milliseconds; before the typo
        // index was bounded one 300-letter word took half a minute.
        timeout: 20_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_message_is_understood_with_bounded_work(text in message()) {
        let u = salon().understand(&text, now());
        prop_assert!((0.0..=1.0).contains(&u.confidence));
    }
}

#[test]
fn only_the_first_4096_characters_are_read() {
    let head: String = "хочу на маникюр завтра в 3 "
        .chars()
        .cycle()
        .take(MAX_UNDERSTOOD_CHARS)
        .collect();
    let tail = " меня зовут Аня, 8 913 123-45-67, отмените запись";
    let whole = salon().understand(&format!("{head}{tail}"), now());
    assert_eq!(
        whole,
        salon().understand(&head, now()),
        "the tail past the cap is not read"
    );
    assert_eq!(whole.phone, None);
}

#[test]
fn single_words_of_every_length_are_understood() {
    // One word, 1 to 4 096 letters, and the same in Latin `x`, which transliterates to «кс».
    for len in [1, 10, 50, 100, 200, 300, 1000, 4096] {
        for letter in ["щ", "x", "йцукенгшщз"] {
            let word: String = letter.chars().cycle().take(len).collect();
            let u = salon().understand(&word, now());
            assert!(
                u.service.is_none() && u.phone.is_none(),
                "{len} × {letter}: {u:?}"
            );
        }
    }
}
