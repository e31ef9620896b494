//! Who may use the console: the session cookie, the CSRF token of every form, and the limits
//! on login attempts.
//!
//! A session is a 256-bit random token in an `HttpOnly`, `SameSite=Strict` cookie scoped to
//! `/console` (`Secure` when the request came over HTTPS through a proxy); the store keeps
//! only its SHA-256, with the operator and the session's CSRF token. Every POST carries the
//! CSRF token in a form field and is refused (403) without it, on top of `SameSite`. The login
//! form, which has no session yet, pairs a cookie with a form field (double submit). Login
//! attempts are limited per IP address and per operator name, and every refusal is logged
//! (with the name tried and the address, never the password).

use crate::store::console::ConsoleSession;
use crate::store::{Store, StoreError};
use axum::http::{HeaderMap, HeaderValue, header};
use chrono::{DateTime, Duration, Utc};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::num::NonZeroU32;

/// The session cookie.
pub const SESSION_COOKIE: &str = "bot_console";
/// The login form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "bot_console_login";
/// How long a session lasts (a working day and then some).
pub const SESSION_HOURS: i64 = 12;

/// `bytes` random bytes from the OS, as hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_err() {
        // Without OS randomness no secret can be made; a panic here would be the only option
        // and the console is not worth the process: such a token matches nothing stored.
        return String::new();
    }
    hex(&buf)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the store keeps of a session token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The request came over HTTPS (through a proxy that says so).
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` for the console: HttpOnly, SameSite=Strict, Path=/console, Secure over HTTPS.
pub fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if over_https(headers) { "; Secure" } else { "" };
    let cookie = format!(
        "{name}={value}; Path=/console; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The signed-in operator's session, if the request has a live one.
pub async fn session(
    store: &Store,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Result<Option<ConsoleSession>, StoreError> {
    match cookie(headers, SESSION_COOKIE) {
        Some(token) if token.len() == 64 => store.session(&token_hash(token), now).await,
        _ => Ok(None),
    }
}

/// Start a session for `operator_id`: the token for the cookie.
pub async fn start(
    store: &Store,
    operator_id: i64,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let token = random_hex(32);
    let csrf = random_hex(32);
    let expires = now + Duration::hours(SESSION_HOURS);
    store
        .open_session(operator_id, &token_hash(&token), &csrf, now, expires)
        .await?;
    Ok(token)
}

/// The CSRF token a form sent is the expected one (constant time; empty never matches).
pub fn csrf_ok(sent: &str, expected: &str) -> bool {
    !expected.is_empty() && crate::channels::same_secret(sent.as_bytes(), expected.as_bytes())
}

/// Login attempts: a few a minute per address and per operator name.
pub struct LoginLimits {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_name: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl std::fmt::Debug for LoginLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginLimits")
    }
}

/// Attempts allowed in a burst, then one every 12 seconds (5 a minute).
const ATTEMPTS: NonZeroU32 = NonZeroU32::new(5).expect("5 is not zero");

impl Default for LoginLimits {
    fn default() -> Self {
        let quota = Quota::per_minute(ATTEMPTS).allow_burst(ATTEMPTS);
        LoginLimits {
            per_ip: RateLimiter::keyed(quota),
            per_name: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
        }
    }
}

impl LoginLimits {
    /// Ok, or how long to wait before trying again.
    pub fn check(&self, ip: Option<IpAddr>, name: &str) -> Result<(), std::time::Duration> {
        let now = self.clock.now();
        if let Some(ip) = ip {
            self.per_ip
                .check_key(&ip)
                .map_err(|n| n.wait_time_from(now))?;
        }
        self.per_name
            .check_key(&name.to_lowercase())
            .map_err(|n| n.wait_time_from(now))
    }

    /// Forget quiet keys.
    pub fn tidy(&self) {
        self.per_ip.retain_recent();
        self.per_name.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name_and_set_strictly() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; bot_console=abc; bot_console_login=x"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), Some("x"));
        assert_eq!(cookie(&h, "b"), None);
        let set = set_cookie(&h, SESSION_COOKIE, "t", 60);
        let set = set.to_str().unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(!set.contains("Secure"), "plain HTTP: {set}");
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(
            set_cookie(&h, SESSION_COOKIE, "t", 60)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let a = random_hex(32);
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_hex(32));
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
        assert!(csrf_ok(&a, &a));
        assert!(!csrf_ok("", ""), "an empty token never matches");
        assert!(!csrf_ok(&a, &random_hex(32)));
    }

    #[test]
    fn login_attempts_are_limited_per_address_and_per_name() {
        let l = LoginLimits::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for i in 0..5 {
            assert!(l.check(Some(ip), &format!("name{i}")).is_ok(), "{i}");
        }
        assert!(l.check(Some(ip), "other").is_err(), "the address is over");
        let l = LoginLimits::default();
        for i in 0..5u8 {
            let ip = IpAddr::from([10, 0, 1, i]);
            assert!(l.check(Some(ip), "Olga").is_ok());
        }
        assert!(
            l.check(Some(IpAddr::from([10, 0, 2, 1])), "olga").is_err(),
            "the name is over, from any address, in any case"
        );
    }
}
