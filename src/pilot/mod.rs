//! Pilots on a share of new clients (`bot pilot --share N`). This file holds the assignment
//! rule, which is binding (README, «Pilot»): the client key, GrowthBook's v2 hash, and the
//! arm it gives. Storing the first assignment (sticky across share changes and restarts), the
//! managers arm and the statistics grow here next (issue «bot pilot»).
//!
//! GrowthBook v2: `h = fnv1a32(str(fnv1a32(seed + key))) mod 10000 / 10000`, with FNV-1a 32
//! over UTF-16 code units as GrowthBook's SDKs do, so a non-ASCII id hashes the same as there.

pub mod analysis;
pub mod stats;
use crate::domain::ClientRef;

/// Which side serves a client in a pilot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arm {
    Bot,
    Managers,
}

/// FNV-1a 32 over the UTF-16 code units of `s` (JavaScript's `charCodeAt`).
pub fn fnv1a32(s: &str) -> u32 {
    s.encode_utf16().fold(0x811C_9DC5u32, |h, unit| {
        (h ^ u32::from(unit)).wrapping_mul(0x0100_0193)
    })
}

/// GrowthBook's v2 hash of `key` under `seed`: a number in [0, 1) with four decimals.
pub fn hash_v2(seed: &str, key: &str) -> f64 {
    let inner = fnv1a32(&format!("{seed}{key}"));
    f64::from(fnv1a32(&inner.to_string()) % 10_000) / 10_000.0
}

/// The key a client is assigned by: `tel:<E.164>` when the phone is known at the first message
/// (WhatsApp), otherwise `<channel>:<client id>` with the id exactly as the channel gives it.
pub fn client_key(client: &ClientRef, phone_at_first_message: Option<&str>) -> String {
    match phone_at_first_message {
        Some(e164) => format!("tel:{e164}"),
        None => format!("{}:{}", client.channel, client.id),
    }
}

/// The arm of a client with hash `h` when `share` percent go to the bot: the bot iff
/// `h < share / 100`.
pub fn arm(h: f64, share: f64) -> Arm {
    if h < share / 100.0 {
        Arm::Bot
    } else {
        Arm::Managers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ChannelKind;

    /// The GrowthBook v2 column of `booking-pilot.md` §3.4 (computed there with the official
    /// growthbook 4.0.0 package), seed `pilot-bot`.
    #[test]
    fn the_hash_matches_growthbooks_own_sdk() {
        assert_eq!(fnv1a32("a"), 3_826_002_220);
        assert_eq!(
            fnv1a32("Анна"),
            1_969_718_003,
            "UTF-16 code units, not UTF-8 bytes"
        );
        for (key, expected) in [
            ("client-42", 0.0871),
            ("tg:123456789", 0.1086),
            ("wa:+79131234567", 0.5174),
            ("Анна", 0.5567),
        ] {
            assert_eq!(hash_v2("pilot-bot", key), expected, "{key}");
        }
    }

    #[test]
    fn the_key_prefers_the_phone_and_keeps_the_id_as_given() {
        let web = ClientRef {
            channel: ChannelKind::Web,
            id: "a b/é".into(),
        };
        assert_eq!(client_key(&web, None), "web:a b/é");
        assert_eq!(client_key(&web, Some("+79131234567")), "tel:+79131234567");
    }

    #[test]
    fn the_arm_is_the_bot_strictly_below_the_share() {
        assert_eq!(arm(0.0999, 10.0), Arm::Bot);
        assert_eq!(arm(0.1, 10.0), Arm::Managers);
        assert_eq!(arm(0.5, 0.0), Arm::Managers);
        assert_eq!(arm(0.9999, 100.0), Arm::Bot);
    }
}
