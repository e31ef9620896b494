//! An optional LLM beside the rules (`BOT_LLM_*`): asked only for what the rules could not read,
//! never for what comes from data. This file owns the settings and the HTTP client of an
//! OpenAI-compatible `chat/completions` endpoint (Yandex AI Studio, a `gpt2giga` proxy, a local
//! llama.cpp/Ollama/vLLM): one POST per question, no retries, a hard deadline, a non-blocking
//! concurrency gate (a full gate skips the model: no queue grows) and a circuit breaker.
//! `assist.rs` builds the question and checks the answer; `grounding.rs` holds the business's
//! knowledge, the check that an answer invents no number, and the masking of personal data.
//!
//! Why not async-openai: with lenient own response types and no retry layer (the reference's
//! advice) it would only carry one POST that reqwest, already in the tree, makes directly;
//! it would add 21 crates and two duplicate versions.

pub mod assist;
pub mod grounding;

use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How the API key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer KEY` (OpenAI, Yandex's documented form, local servers).
    Bearer,
    /// `Authorization: Api-Key KEY` (Yandex Cloud's service-account key form).
    ApiKey,
}

/// The settings, from the environment (binding names, README «LLM»).
#[derive(Clone, PartialEq)]
pub struct LlmConfig {
    /// Up to and including `/v1`, without a trailing slash.
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    pub auth: Auth,
    /// Sent as `OpenAI-Project` (Yandex's folder id).
    pub project: Option<String>,
    pub timeout: Duration,
    pub max_concurrency: usize,
    /// Names, phones and e-mails leave the machine as written (default: placeholders).
    pub send_personal_data: bool,
    /// Conversation turns given as context.
    pub context_turns: usize,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "…"))
            .field("model", &self.model)
            .field("auth", &self.auth)
            .field("project", &self.project)
            .field("timeout", &self.timeout)
            .field("max_concurrency", &self.max_concurrency)
            .field("send_personal_data", &self.send_personal_data)
            .field("context_turns", &self.context_turns)
            .finish()
    }
}

/// A setting that cannot be used, named.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

fn bad(name: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        name,
        problem: problem.into(),
    }
}

impl LlmConfig {
    /// Off (None) unless `BOT_LLM_BASE_URL` is set.
    pub fn from_env() -> Result<Option<LlmConfig>, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    }

    /// The same, from any lookup (tests).
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<LlmConfig>, ConfigError> {
        let Some(base) = get("BOT_LLM_BASE_URL") else {
            return Ok(None);
        };
        let base_url = base.trim().trim_end_matches('/').to_string();
        let parsed = reqwest::Url::parse(&base_url).map_err(|e| {
            bad(
                "BOT_LLM_BASE_URL",
                format!("{base_url:?} is not a URL: {e}"),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad(
                "BOT_LLM_BASE_URL",
                "expected an http:// or https:// URL",
            ));
        }
        if !base_url.ends_with("/v1") {
            return Err(bad(
                "BOT_LLM_BASE_URL",
                format!(
                    "{base_url:?} must end with /v1 (e.g. https://llm.api.cloud.yandex.net/v1)"
                ),
            ));
        }
        let model = get("BOT_LLM_MODEL").ok_or_else(|| {
            bad(
                "BOT_LLM_MODEL",
                "required with BOT_LLM_BASE_URL (e.g. gpt://<folder>/yandexgpt-lite/latest)",
            )
        })?;
        let auth = match get("BOT_LLM_AUTH").as_deref().map(str::trim) {
            None | Some("bearer") => Auth::Bearer,
            Some("api-key") => Auth::ApiKey,
            Some(other) => {
                return Err(bad(
                    "BOT_LLM_AUTH",
                    format!("{other:?}: expected bearer or api-key"),
                ));
            }
        };
        let number = |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        bad(
                            name,
                            format!(
                                "{v:?}: expected a whole number from {} to {}",
                                range.start(),
                                range.end()
                            ),
                        )
                    }),
            }
        };
        let timeout = Duration::from_millis(number("BOT_LLM_TIMEOUT_MS", 2000, 100..=30_000)?);
        let max_concurrency = number("BOT_LLM_MAX_CONCURRENCY", 4, 1..=64)? as usize;
        let context_turns = number("BOT_LLM_CONTEXT_TURNS", 6, 0..=40)? as usize;
        let send_personal_data = match get("BOT_LLM_SEND_PERSONAL_DATA").as_deref() {
            None | Some("0") | Some("false") => false,
            Some("1") | Some("true") => true,
            Some(other) => {
                return Err(bad(
                    "BOT_LLM_SEND_PERSONAL_DATA",
                    format!("{other:?}: expected 1 or 0"),
                ));
            }
        };
        Ok(Some(LlmConfig {
            base_url,
            api_key: get("BOT_LLM_API_KEY"),
            model,
            auth,
            project: get("BOT_LLM_PROJECT"),
            timeout,
            max_concurrency,
            send_personal_data,
            context_turns,
        }))
    }

    /// The host the model is reached at (for the start-up line; no key, no path).
    pub fn host(&self) -> String {
        reqwest::Url::parse(&self.base_url)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_string(),
                })
            })
            .unwrap_or_default()
    }
}

/// Why the model gave nothing usable; the rules answer instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    #[error("every slot is busy")]
    Busy,
    #[error("skipped for a while after repeated failures")]
    Open,
    #[error("no answer within the deadline")]
    Timeout,
    #[error("rate limited (429)")]
    RateLimited,
    #[error("HTTP {status}: {message}")]
    Http { status: u16, message: String },
    #[error("transport: {0}")]
    Transport(String),
    #[error("not the expected JSON: {0}")]
    BadJson(String),
    #[error("the answer was cut off or refused ({0})")]
    Unfinished(String),
}

impl From<reqwest::Error> for LlmError {
    fn from(e: reqwest::Error) -> LlmError {
        if e.is_timeout() {
            LlmError::Timeout
        } else {
            LlmError::Transport(e.to_string())
        }
    }
}

impl LlmError {
    /// The metric label of a fallback.
    pub fn cause(&self) -> &'static str {
        match self {
            LlmError::Busy => "busy",
            LlmError::Open => "circuit_open",
            LlmError::Timeout => "timeout",
            LlmError::RateLimited => "rate_limited",
            LlmError::Http { status, .. } if *status >= 500 => "server_error",
            LlmError::Http { .. } => "refused",
            LlmError::Transport(_) => "transport",
            LlmError::BadJson(_) => "bad_json",
            LlmError::Unfinished(_) => "unfinished",
        }
    }
}

/// Failures in a row that open the breaker, and for how long it stays open.
const BREAKER_FAILURES: u32 = 5;
const BREAKER_OPEN: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

/// What one call used.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct LlmStats {
    pub calls: AtomicU64,
    pub tokens_in: AtomicU64,
    pub tokens_out: AtomicU64,
}

/// The client of one configured model.
pub struct Llm {
    pub config: LlmConfig,
    http: reqwest::Client,
    gate: Semaphore,
    breaker: Mutex<Breaker>,
    /// The endpoint refused `json_schema`: ask for a JSON object by the prompt instead.
    no_schema: AtomicBool,
    pub stats: LlmStats,
}

/// The lenient shape of an answer: every field optional, unknown values kept as text.
#[derive(Debug, Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<UsageIn>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<MessageIn>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MessageIn {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Debug, Deserialize)]
struct UsageIn {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl Llm {
    pub fn new(config: LlmConfig) -> Llm {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(config.timeout)
            .build()
            .unwrap_or_default();
        Llm {
            gate: Semaphore::new(config.max_concurrency),
            config,
            http,
            breaker: Mutex::new(Breaker::default()),
            no_schema: AtomicBool::new(false),
            stats: LlmStats::default(),
        }
    }

    /// Ask for a JSON object of `schema` (`name`: the schema's name). The whole call, however
    /// the server behaves, ends within the configured timeout.
    pub async fn json(
        &self,
        system: &str,
        user: &str,
        name: &str,
        schema: &Value,
    ) -> Result<(Value, Usage), LlmError> {
        if self.breaker_open() {
            return Err(LlmError::Open);
        }
        let Ok(_permit) = self.gate.try_acquire() else {
            return Err(LlmError::Busy);
        };
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let result =
            match tokio::time::timeout(self.config.timeout, self.ask(system, user, name, schema))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(LlmError::Timeout),
            };
        self.record(&result);
        result
    }

    async fn ask(
        &self,
        system: &str,
        user: &str,
        name: &str,
        schema: &Value,
    ) -> Result<(Value, Usage), LlmError> {
        let with_schema = !self.no_schema.load(Ordering::Relaxed);
        let first = self.post(system, user, name, schema, with_schema).await;
        match first {
            // A provider without structured output says so with a 400 about response_format:
            // from now on the schema goes into the prompt and the answer is a JSON object.
            Err(LlmError::Http {
                status: 400,
                message,
            }) if with_schema && message.contains("response_format") => {
                self.no_schema.store(true, Ordering::Relaxed);
                self.post(system, user, name, schema, false).await
            }
            other => other,
        }
    }

    async fn post(
        &self,
        system: &str,
        user: &str,
        name: &str,
        schema: &Value,
        with_schema: bool,
    ) -> Result<(Value, Usage), LlmError> {
        let mut body = json!({
            "model": self.config.model,
            "temperature": 0.0,
            "max_tokens": 400,
            "messages": [
                {"role": "system", "content": if with_schema {
                    system.to_string()
                } else {
                    format!("{system}\n\nОтветь ОДНИМ JSON-объектом по этой JSON-схеме, без текста вокруг:\n{schema}")
                }},
                {"role": "user", "content": user},
            ],
        });
        body["response_format"] = if with_schema {
            json!({"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": true}})
        } else {
            json!({"type": "json_object"})
        };
        let mut req = self
            .http
            .post(format!("{}/chat/completions", self.config.base_url))
            .json(&body);
        if let Some(key) = &self.config.api_key {
            req = req.header(
                "Authorization",
                match self.config.auth {
                    Auth::Bearer => format!("Bearer {key}"),
                    Auth::ApiKey => format!("Api-Key {key}"),
                },
            );
        }
        if let Some(p) = &self.config.project {
            req = req.header("OpenAI-Project", p);
        }
        // Yandex keeps prompts unless told not to.
        req = req.header("x-data-logging-enabled", "false");
        let resp = req.send().await.map_err(LlmError::from)?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(LlmError::from)?;
        if status == 429 {
            return Err(LlmError::RateLimited);
        }
        if status != 200 {
            return Err(LlmError::Http {
                status,
                message: error_message(&text),
            });
        }
        let completion: Completion = serde_json::from_str(&text)
            .map_err(|e| LlmError::BadJson(format!("the reply: {e}")))?;
        let usage = completion.usage.map_or_else(Usage::default, |u| Usage {
            prompt_tokens: u.prompt_tokens.unwrap_or(0),
            completion_tokens: u.completion_tokens.unwrap_or(0),
        });
        self.stats
            .tokens_in
            .fetch_add(usage.prompt_tokens, Ordering::Relaxed);
        self.stats
            .tokens_out
            .fetch_add(usage.completion_tokens, Ordering::Relaxed);
        let choice = completion
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| LlmError::BadJson("no choices".into()))?;
        let finish = choice.finish_reason.unwrap_or_default();
        if !matches!(finish.as_str(), "stop" | "") {
            return Err(LlmError::Unfinished(finish));
        }
        let message = choice
            .message
            .ok_or_else(|| LlmError::BadJson("no message".into()))?;
        if let Some(r) = message.refusal.filter(|r| !r.is_empty()) {
            return Err(LlmError::Unfinished(format!("refusal: {r}")));
        }
        let content = message.content.unwrap_or_default();
        let value = parse_object(&content)
            .ok_or_else(|| LlmError::BadJson("the content is not a JSON object".into()))?;
        Ok((value, usage))
    }

    /// Whether the endpoint took `json_schema` structured output (false once it refused it).
    pub fn structured_output(&self) -> bool {
        !self.no_schema.load(Ordering::Relaxed)
    }

    fn breaker_open(&self) -> bool {
        let Ok(mut b) = self.breaker.lock() else {
            return false;
        };
        match b.open_until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                // Half-open: one more failure opens it again.
                b.open_until = None;
                b.failures = BREAKER_FAILURES - 1;
                false
            }
            None => false,
        }
    }

    fn record<T>(&self, result: &Result<T, LlmError>) {
        let Ok(mut b) = self.breaker.lock() else {
            return;
        };
        match result {
            Ok(_) => b.failures = 0,
            Err(LlmError::Busy | LlmError::Open) => {}
            Err(_) => {
                b.failures += 1;
                if b.failures >= BREAKER_FAILURES {
                    b.open_until = Some(Instant::now() + BREAKER_OPEN);
                    tracing::warn!(
                        failures = b.failures,
                        "the LLM failed repeatedly: the rules answer alone for a minute"
                    );
                }
            }
        }
    }
}

/// The message of an error body (`{"error":{"message"}}`, `{"error":"text"}`, `{"detail"}`),
/// or its first characters.
fn error_message(body: &str) -> String {
    let v: Option<Value> = serde_json::from_str(body).ok();
    let found = v.as_ref().and_then(|v| {
        v["error"]["message"]
            .as_str()
            .or_else(|| v["error"].as_str())
            .or_else(|| v["detail"].as_str())
            .or_else(|| v["message"].as_str())
            .map(String::from)
    });
    found.unwrap_or_else(|| body.chars().take(200).collect())
}

/// A JSON object from a model's content: the whole text, or the first `{…}` in it (a model
/// without structured output may wrap it in words or a code fence).
fn parse_object(content: &str) -> Option<Value> {
    let t = content.trim();
    if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(t) {
        return Some(v);
    }
    let start = t.find('{')?;
    let end = t.rfind('}')?;
    match serde_json::from_str::<Value>(t.get(start..=end)?) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn off_without_a_base_url_and_every_bad_setting_is_named() {
        assert_eq!(LlmConfig::from_lookup(lookup(&[])), Ok(None));
        let base = ("BOT_LLM_BASE_URL", "https://llm.api.cloud.yandex.net/v1/");
        let model = ("BOT_LLM_MODEL", "gpt://b1g/yandexgpt-lite/latest");
        let c = LlmConfig::from_lookup(lookup(&[base, model]))
            .unwrap()
            .unwrap();
        assert_eq!(c.base_url, "https://llm.api.cloud.yandex.net/v1");
        assert_eq!(
            (c.auth, c.timeout),
            (Auth::Bearer, Duration::from_millis(2000))
        );
        assert_eq!((c.max_concurrency, c.context_turns), (4, 6));
        assert!(!c.send_personal_data);
        assert_eq!(c.host(), "llm.api.cloud.yandex.net");
        for (pairs, name) in [
            (vec![base], "BOT_LLM_MODEL"),
            (
                vec![("BOT_LLM_BASE_URL", "https://example.com/api"), model],
                "BOT_LLM_BASE_URL",
            ),
            (
                vec![("BOT_LLM_BASE_URL", "ftp://x/v1"), model],
                "BOT_LLM_BASE_URL",
            ),
            (vec![base, model, ("BOT_LLM_AUTH", "basic")], "BOT_LLM_AUTH"),
            (
                vec![base, model, ("BOT_LLM_TIMEOUT_MS", "0")],
                "BOT_LLM_TIMEOUT_MS",
            ),
            (
                vec![base, model, ("BOT_LLM_MAX_CONCURRENCY", "many")],
                "BOT_LLM_MAX_CONCURRENCY",
            ),
            (
                vec![base, model, ("BOT_LLM_SEND_PERSONAL_DATA", "yes")],
                "BOT_LLM_SEND_PERSONAL_DATA",
            ),
        ] {
            let err = LlmConfig::from_lookup(lookup(&pairs)).unwrap_err();
            assert_eq!(err.name, name, "{err}");
        }
        let c = LlmConfig::from_lookup(lookup(&[
            base,
            model,
            ("BOT_LLM_AUTH", "api-key"),
            ("BOT_LLM_API_KEY", "secret"),
            ("BOT_LLM_PROJECT", "b1g"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.auth, Auth::ApiKey);
        assert!(
            !format!("{c:?}").contains("secret"),
            "no key in debug output"
        );
    }

    #[test]
    fn a_json_object_is_found_in_words_or_a_fence_and_nothing_else_passes() {
        assert_eq!(parse_object("{\"a\":1}"), Some(json!({"a": 1})));
        assert_eq!(
            parse_object("Вот ответ:\n```json\n{\"a\": [1]}\n```"),
            Some(json!({"a": [1]}))
        );
        assert_eq!(parse_object("[1, 2]"), None);
        assert_eq!(parse_object("нет"), None);
        assert_eq!(parse_object("{broken"), None);
        assert_eq!(
            error_message("{\"error\":{\"message\":\"m\",\"code\":429}}"),
            "m"
        );
        assert_eq!(error_message("{\"error\":\"text\"}"), "text");
        assert_eq!(error_message("<html>502</html>"), "<html>502</html>");
    }
}
