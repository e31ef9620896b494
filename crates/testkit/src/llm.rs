//! A faithful local emulator of an OpenAI-compatible chat-completions API for tests: an axum
//! app on 127.0.0.1:0 whose base URL ends in `/v1`, answering `POST /v1/chat/completions` the
//! way api.openai.com does (and Yandex AI Studio, llama.cpp, vLLM after it). It checks, in the
//! real server's order, the path (404 `Invalid URL`), the key (`Authorization: Bearer KEY` or
//! Yandex's `Api-Key KEY`, else 401 `invalid_api_key`) and the request (400
//! `invalid_request_error` naming the `param`: JSON body, no unknown argument, `model`,
//! `messages` with their roles, contents and tool-call pairing, `response_format` and a strict
//! schema, `tools`/`tool_choice`, `temperature`, `top_p`, `max_tokens`/`max_completion_tokens`;
//! `stream: true` and `n > 1` are refused because the emulator does not speak them). Only a
//! valid request takes the next scripted [`Reply`] (or the fallback's), so a refused one never
//! consumes the script. It records every request it receives, refused ones included, for
//! assertions such as "no phone number was sent", "one attempt only", "the deadline was kept".
//! It never decides what a model would say: the test scripts that.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the emulator answers to one valid request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// 200; `message.content` is the string, `finish_reason` `stop`.
    Content(String),
    /// 200; `message.content` is the value serialised (what a `json_schema` answer looks like).
    Json(Value),
    /// 200; `content` null, one `tool_calls` item `{id, type: "function", function: {name,
    /// arguments}}`, `finish_reason` `tool_calls`. `arguments` is sent as given, valid or not.
    ToolCall { name: String, arguments: String },
    /// 200; `finish_reason` `length`: the content was cut at the token limit.
    Length(String),
    /// `status` with `{"error": {message, type: kind, param: null, code}}`; `code` may be a
    /// string, null or an integer (llama.cpp and vLLM send integers).
    Error {
        status: u16,
        kind: String,
        code: Value,
        message: String,
    },
    /// 429 type `requests`, code `rate_limit_exceeded`, with `Retry-After` and the
    /// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` headers.
    RateLimited { retry_after_s: u64 },
    /// This status with an HTML page, as a proxy in front of the model sends (e.g. 502).
    Html(u16),
    /// The inner reply after a pause: a slow or hanging model.
    Delay(Duration, Box<Reply>),
    /// 200 and its headers (a `Content-Length` of the whole completion), then half the body,
    /// then the body stream errors and the connection closes: reading the body fails.
    DropConnection,
    /// This status and body verbatim, as `application/json`: broken JSON, a reply without
    /// `object`, an unknown `finish_reason` such as GigaChat's `blacklist`…
    Raw { status: u16, body: String },
}

/// One request the emulator received, valid or not.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The request path, e.g. `/v1/chat/completions` (a wrong one was answered 404).
    pub path: String,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as JSON; `Null` when it is not JSON.
    pub body: Value,
    /// The body as text (lossy UTF-8).
    pub raw: String,
    /// When the emulator received it.
    pub at: Instant,
}

type Fallback = Arc<dyn Fn(&Value) -> Reply + Send + Sync>;

struct Shared {
    key: String,
    script: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Fallback>,
    requests: Mutex<Vec<Recorded>>,
    /// Numbers `chatcmpl-N`, `call_N` and request ids.
    counter: AtomicU64,
}

impl Shared {
    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The emulator; it serves until the test's runtime ends.
pub struct LlmEmulator {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl LlmEmulator {
    /// Started on a loopback port; `key`: the API key it requires (`Authorization: Bearer KEY`
    /// or `Authorization: Api-Key KEY`, both accepted like Yandex does); a wrong or missing key
    /// is answered 401 `invalid_api_key`.
    pub async fn start(key: &str) -> LlmEmulator {
        let shared = Arc::new(Shared {
            key: key.to_string(),
            script: Mutex::new(VecDeque::new()),
            fallback: Mutex::new(Arc::new(|_: &Value| Reply::Content(String::new())) as Fallback),
            requests: Mutex::new(Vec::new()),
            counter: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let addr = crate::serve_loopback(app).await;
        LlmEmulator { addr, shared }
    }

    /// `http://127.0.0.1:PORT/v1`, the base the bot appends `/chat/completions` to.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Script: the next valid requests get the pushed replies in order; when the script is
    /// empty the fallback answers. Panics on a status that is not an HTTP status.
    pub fn push(&self, reply: Reply) {
        if let Err(why) = check_statuses(&reply) {
            panic!("LlmEmulator::push: {why}");
        }
        self.shared.script.lock().expect("script").push_back(reply);
    }

    /// What answers a valid request when the script is empty, given the request body
    /// (default: `Reply::Content("")`).
    pub fn set_fallback(&self, f: impl Fn(&Value) -> Reply + Send + Sync + 'static) {
        *self.shared.fallback.lock().expect("fallback") = Arc::new(f);
    }

    /// Every request received, in order, the refused ones included.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().expect("requests").clone()
    }
}

/// Bodies above this are answered 413 (the bot sends a few kilobytes).
const BODY_LIMIT: usize = 8 << 20;
const LIMIT_REQUESTS: u64 = 10_000;
const LIMIT_TOKENS: u64 = 30_000_000;

/// An error answer: `{"error": {message, type, param, code}}`.
#[derive(Debug)]
struct ApiError {
    status: u16,
    message: String,
    kind: String,
    param: Option<String>,
    code: Value,
}

fn invalid(param: impl Into<Option<String>>, code: Option<&str>, message: String) -> ApiError {
    ApiError {
        status: 400,
        message,
        kind: "invalid_request_error".to_string(),
        param: param.into(),
        code: code.map_or(Value::Null, |c| json!(c)),
    }
}

fn missing(param: &str) -> ApiError {
    invalid(
        param.to_string(),
        Some("missing_required_parameter"),
        format!("Missing required parameter: '{param}'."),
    )
}

fn wrong_type(param: &str, expected: &str, got: &Value) -> ApiError {
    invalid(
        param.to_string(),
        Some("invalid_type"),
        format!(
            "Invalid type for '{param}': expected {expected}, but got {} instead.",
            type_name(got)
        ),
    )
}

fn wrong_value(param: &str, got: &str, supported: &[&str]) -> ApiError {
    let quoted: Vec<String> = supported.iter().map(|s| format!("'{s}'")).collect();
    let list = match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{}, and {last}", rest.join(", ")),
        _ => quoted.join(""),
    };
    invalid(
        param.to_string(),
        Some("invalid_value"),
        format!("Invalid value: '{got}'. Supported values are: {list}."),
    )
}

fn unknown(param: &str) -> ApiError {
    invalid(
        param.to_string(),
        Some("unknown_parameter"),
        format!("Unknown parameter: '{param}'."),
    )
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_statuses(reply: &Reply) -> Result<(), String> {
    match reply {
        Reply::Error { status, .. } | Reply::Html(status) | Reply::Raw { status, .. } => {
            StatusCode::from_u16(*status)
                .map(|_| ())
                .map_err(|_| format!("{status} is not an HTTP status"))
        }
        Reply::Delay(_, inner) => check_statuses(inner),
        _ => Ok(()),
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, BODY_LIMIT).await;
    let bytes = read.as_ref().map(|b| b.to_vec()).unwrap_or_default();
    shared.requests.lock().expect("requests").push(Recorded {
        path: parts.uri.path().to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_ascii_lowercase(), value)
            })
            .collect(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        raw: String::from_utf8_lossy(&bytes).into_owned(),
        at,
    });
    let request_id = format!("req_{:032x}", request_id_seed(shared.next()));
    let checked = if read.is_err() {
        Err(ApiError {
            status: 413,
            message: format!("The request body is larger than {BODY_LIMIT} bytes."),
            kind: "invalid_request_error".to_string(),
            param: None,
            code: Value::Null,
        })
    } else {
        check_request(
            &shared.key,
            &parts.method,
            parts.uri.path(),
            &parts.headers,
            &bytes,
        )
    };
    let body = match checked {
        Ok(body) => body,
        Err(e) => return error_response(&e, &request_id),
    };
    let scripted = shared.script.lock().expect("script").pop_front();
    let reply = match scripted {
        Some(reply) => reply,
        None => {
            let fallback = Arc::clone(&*shared.fallback.lock().expect("fallback"));
            fallback(&body)
        }
    };
    answer(&shared, reply, &body, &request_id).await
}

/// A request id that differs between emulators and runs, like OpenAI's random ones.
fn request_id_seed(n: u64) -> u128 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (nanos << 16) ^ u128::from(n)
}

/// Path, key, then the request, in the real server's order; the request body when valid.
fn check_request(
    key: &str,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Value, ApiError> {
    if method != Method::POST || path != "/v1/chat/completions" {
        return Err(ApiError {
            status: 404,
            message: format!("Invalid URL ({method} {path})"),
            kind: "invalid_request_error".to_string(),
            param: None,
            code: Value::Null,
        });
    }
    authorize(key, headers)?;
    let Ok(body) = serde_json::from_slice::<Value>(bytes) else {
        return Err(invalid(
            None,
            None,
            "We could not parse the JSON body of your request. (HINT: This likely means you \
             aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, \
             but what was sent was not valid JSON.)"
                .to_string(),
        ));
    };
    let Some(fields) = body.as_object() else {
        return Err(invalid(
            None,
            None,
            format!(
                "Invalid request body: expected a JSON object, but got {} instead.",
                type_name(&body)
            ),
        ));
    };
    validate(fields)?;
    Ok(body)
}

fn authorize(key: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let refuse = |message: String| ApiError {
        status: 401,
        message,
        kind: "invalid_request_error".to_string(),
        param: None,
        code: json!("invalid_api_key"),
    };
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(refuse(
            "You didn't provide an API key. You need to provide your API key in an \
             Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                .to_string(),
        ));
    };
    let given = value.split_once(' ').and_then(|(scheme, given)| {
        let known = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("api-key");
        known.then_some(given.trim())
    });
    match given {
        Some(given) if given == key => Ok(()),
        Some(given) => Err(refuse(format!(
            "Incorrect API key provided: {}. You can find your API key at \
             https://platform.openai.com/account/api-keys.",
            mask(given)
        ))),
        None => Err(refuse(
            "You didn't provide an API key. You need to provide your API key in an \
             Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                .to_string(),
        )),
    }
}

/// `sk-ab***wxyz`: the way OpenAI quotes a wrong key back.
fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// Top-level arguments of chat completions; anything else is refused like OpenAI does.
const KNOWN_ARGUMENTS: &[&str] = &[
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "max_completion_tokens",
    "max_tokens",
    "messages",
    "metadata",
    "modalities",
    "model",
    "n",
    "parallel_tool_calls",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "reasoning_effort",
    "response_format",
    "safety_identifier",
    "seed",
    "service_tier",
    "stop",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "user",
    "verbosity",
    "web_search_options",
];

const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];
const MESSAGE_FIELDS: &[&str] = &[
    "role",
    "content",
    "name",
    "tool_calls",
    "tool_call_id",
    "refusal",
    "audio",
    "function_call",
];

/// A present, non-null optional argument.
fn present<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    fields.get(name).filter(|v| !v.is_null())
}

fn validate(fields: &Map<String, Value>) -> Result<(), ApiError> {
    if let Some(name) = fields
        .keys()
        .find(|k| !KNOWN_ARGUMENTS.contains(&k.as_str()))
    {
        return Err(invalid(
            None,
            None,
            format!("Unrecognized request argument supplied: {name}"),
        ));
    }
    match fields.get("model") {
        Some(Value::String(model)) if !model.is_empty() => {}
        Some(Value::String(_)) | Some(Value::Null) | None => {
            return Err(invalid(
                "model".to_string(),
                None,
                "you must provide a model parameter".to_string(),
            ));
        }
        Some(other) => return Err(wrong_type("model", "a string", other)),
    }
    let messages = check_messages(fields.get("messages"))?;
    if let Some(stream) = present(fields, "stream") {
        match stream {
            Value::Bool(false) => {}
            Value::Bool(true) => {
                return Err(invalid(
                    "stream".to_string(),
                    Some("unsupported_value"),
                    "'stream': true is not supported by this test emulator (the bot does not \
                     stream); send no `stream` or `false`."
                        .to_string(),
                ));
            }
            other => return Err(wrong_type("stream", "a boolean", other)),
        }
    }
    if present(fields, "stream_options").is_some() {
        return Err(invalid(
            "stream_options".to_string(),
            None,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.".to_string(),
        ));
    }
    check_decimal(fields, "temperature", 2.0)?;
    check_decimal(fields, "top_p", 1.0)?;
    for name in ["max_tokens", "max_completion_tokens", "n"] {
        check_positive(fields, name)?;
    }
    if present(fields, "n")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1)
    {
        return Err(invalid(
            "n".to_string(),
            Some("unsupported_value"),
            "'n' above 1 is not supported by this test emulator (it answers one choice)."
                .to_string(),
        ));
    }
    if let Some(format) = present(fields, "response_format") {
        check_response_format(format, messages)?;
    }
    let tools = match present(fields, "tools") {
        Some(tools) => check_tools(tools)?,
        None => Vec::new(),
    };
    if let Some(choice) = present(fields, "tool_choice") {
        check_tool_choice(choice, &tools)?;
    }
    if present(fields, "parallel_tool_calls").is_some() && tools.is_empty() {
        return Err(invalid(
            "parallel_tool_calls".to_string(),
            None,
            "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed \
             when 'tools' are specified."
                .to_string(),
        ));
    }
    Ok(())
}

/// The messages, each with a known role and a string content, tool calls answered in turn.
fn check_messages(messages: Option<&Value>) -> Result<&Vec<Value>, ApiError> {
    let messages = match messages {
        None | Some(Value::Null) => return Err(missing("messages")),
        Some(Value::Array(messages)) => messages,
        Some(other) => return Err(wrong_type("messages", "an array", other)),
    };
    if messages.is_empty() {
        return Err(invalid(
            "messages".to_string(),
            Some("empty_array"),
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got \
             an empty array instead."
                .to_string(),
        ));
    }
    // Ids of the last assistant message's tool calls not answered by a tool message yet.
    let mut pending: Option<(usize, Vec<String>)> = None;
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        let Some(message) = message.as_object() else {
            return Err(wrong_type(&at, "an object", message));
        };
        if let Some(extra) = message
            .keys()
            .find(|k| !MESSAGE_FIELDS.contains(&k.as_str()))
        {
            return Err(unknown(&format!("{at}.{extra}")));
        }
        let role = match message.get("role") {
            None | Some(Value::Null) => return Err(missing(&format!("{at}.role"))),
            Some(Value::String(role)) if ROLES.contains(&role.as_str()) => role.as_str(),
            Some(Value::String(role)) => {
                return Err(wrong_value(&format!("{at}.role"), role, ROLES));
            }
            Some(other) => return Err(wrong_type(&format!("{at}.role"), "a string", other)),
        };
        let calls = if role == "assistant" {
            check_tool_calls(message.get("tool_calls"), &at)?
        } else if message.contains_key("tool_calls") {
            return Err(unknown(&format!("{at}.tool_calls")));
        } else {
            Vec::new()
        };
        match message.get("content") {
            Some(Value::String(_)) => {}
            None | Some(Value::Null) if !calls.is_empty() => {}
            None => return Err(missing(&format!("{at}.content"))),
            Some(other) => return Err(wrong_type(&format!("{at}.content"), "a string", other)),
        }
        if role == "tool" {
            let id = match message.get("tool_call_id") {
                Some(Value::String(id)) => id,
                None | Some(Value::Null) => return Err(missing(&format!("{at}.tool_call_id"))),
                Some(other) => {
                    return Err(wrong_type(&format!("{at}.tool_call_id"), "a string", other));
                }
            };
            let Some((_, ids)) = pending.as_mut() else {
                return Err(invalid(
                    format!("{at}.role"),
                    None,
                    "Invalid parameter: messages with role 'tool' must be a response to a \
                     preceding message with 'tool_calls'."
                        .to_string(),
                ));
            };
            let Some(position) = ids.iter().position(|p| p == id) else {
                return Err(invalid(
                    format!("{at}.tool_call_id"),
                    None,
                    format!(
                        "Invalid parameter: 'tool_call_id' of '{id}' not found in 'tool_calls' \
                         of previous message."
                    ),
                ));
            };
            ids.remove(position);
            continue;
        } else if message.contains_key("tool_call_id") {
            return Err(unknown(&format!("{at}.tool_call_id")));
        }
        unanswered(pending.take())?;
        if !calls.is_empty() {
            pending = Some((i, calls));
        }
    }
    unanswered(pending)?;
    Ok(messages)
}

/// An assistant message's tool calls must all be answered before the next other message.
fn unanswered(pending: Option<(usize, Vec<String>)>) -> Result<(), ApiError> {
    match pending {
        Some((i, ids)) if !ids.is_empty() => Err(invalid(
            format!("messages[{i}].role"),
            None,
            format!(
                "An assistant message with 'tool_calls' must be followed by tool messages \
                 responding to each 'tool_call_id'. The following tool_call_ids did not have \
                 response messages: {}",
                ids.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

/// An assistant message's `tool_calls`: their ids.
fn check_tool_calls(calls: Option<&Value>, at: &str) -> Result<Vec<String>, ApiError> {
    let calls = match calls {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(calls)) => calls,
        Some(other) => return Err(wrong_type(&format!("{at}.tool_calls"), "an array", other)),
    };
    let mut ids = Vec::new();
    for (j, call) in calls.iter().enumerate() {
        let at = format!("{at}.tool_calls[{j}]");
        let Some(call) = call.as_object() else {
            return Err(wrong_type(&at, "an object", call));
        };
        match call.get("id") {
            Some(Value::String(id)) => ids.push(id.clone()),
            None | Some(Value::Null) => return Err(missing(&format!("{at}.id"))),
            Some(other) => return Err(wrong_type(&format!("{at}.id"), "a string", other)),
        }
        match call.get("type") {
            Some(Value::String(t)) if t == "function" => {}
            None | Some(Value::Null) => return Err(missing(&format!("{at}.type"))),
            Some(Value::String(t)) => {
                return Err(wrong_value(&format!("{at}.type"), t, &["function"]));
            }
            Some(other) => return Err(wrong_type(&format!("{at}.type"), "a string", other)),
        }
        let Some(function) = call.get("function").and_then(Value::as_object) else {
            return Err(missing(&format!("{at}.function")));
        };
        for field in ["name", "arguments"] {
            match function.get(field) {
                Some(Value::String(_)) => {}
                None | Some(Value::Null) => {
                    return Err(missing(&format!("{at}.function.{field}")));
                }
                Some(other) => {
                    return Err(wrong_type(
                        &format!("{at}.function.{field}"),
                        "a string",
                        other,
                    ));
                }
            }
        }
    }
    Ok(ids)
}

/// An optional decimal within `0..=max`.
fn check_decimal(fields: &Map<String, Value>, name: &str, max: f64) -> Result<(), ApiError> {
    let Some(value) = present(fields, name) else {
        return Ok(());
    };
    let Some(x) = value.as_f64() else {
        return Err(wrong_type(name, "a decimal", value));
    };
    if x < 0.0 {
        return Err(invalid(
            name.to_string(),
            Some("decimal_below_min_value"),
            format!(
                "Invalid '{name}': decimal below minimum value. Expected a value >= 0, but got \
                 {value} instead."
            ),
        ));
    }
    if x > max {
        return Err(invalid(
            name.to_string(),
            Some("decimal_above_max_value"),
            format!(
                "Invalid '{name}': decimal above maximum value. Expected a value <= {max}, but \
                 got {value} instead."
            ),
        ));
    }
    Ok(())
}

/// An optional integer ≥ 1.
fn check_positive(fields: &Map<String, Value>, name: &str) -> Result<(), ApiError> {
    let Some(value) = present(fields, name) else {
        return Ok(());
    };
    if value.is_u64() || value.is_i64() {
        if value.as_i64().is_some_and(|n| n < 1) {
            return Err(invalid(
                name.to_string(),
                Some("integer_below_min_value"),
                format!(
                    "Invalid '{name}': integer below minimum value. Expected a value >= 1, but \
                     got {value} instead."
                ),
            ));
        }
        return Ok(());
    }
    Err(wrong_type(name, "an integer", value))
}

fn check_response_format(format: &Value, messages: &[Value]) -> Result<(), ApiError> {
    let Some(format) = format.as_object() else {
        return Err(wrong_type("response_format", "an object", format));
    };
    let kind = match format.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        None | Some(Value::Null) => return Err(missing("response_format.type")),
        Some(other) => return Err(wrong_type("response_format.type", "a string", other)),
    };
    let allowed: &[&str] = match kind {
        "text" | "json_object" => &["type"],
        "json_schema" => &["type", "json_schema"],
        other => {
            return Err(wrong_value(
                "response_format.type",
                other,
                &["text", "json_object", "json_schema"],
            ));
        }
    };
    if let Some(extra) = format.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(unknown(&format!("response_format.{extra}")));
    }
    if kind == "json_object" {
        let mentions_json = messages.iter().any(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.to_lowercase().contains("json"))
        });
        if !mentions_json {
            return Err(invalid(
                "messages".to_string(),
                None,
                "'messages' must contain the word 'json' in some form, to use 'response_format' \
                 of type 'json_object'."
                    .to_string(),
            ));
        }
    }
    if kind != "json_schema" {
        return Ok(());
    }
    let spec = match format.get("json_schema") {
        Some(Value::Object(spec)) => spec,
        None | Some(Value::Null) => return Err(missing("response_format.json_schema")),
        Some(other) => {
            return Err(wrong_type(
                "response_format.json_schema",
                "an object",
                other,
            ));
        }
    };
    if let Some(extra) = spec
        .keys()
        .find(|k| !["name", "description", "schema", "strict"].contains(&k.as_str()))
    {
        return Err(unknown(&format!("response_format.json_schema.{extra}")));
    }
    let name = check_name(spec.get("name"), "response_format.json_schema.name")?;
    if let Some(description) = present(spec, "description").filter(|d| !d.is_string()) {
        return Err(wrong_type(
            "response_format.json_schema.description",
            "a string",
            description,
        ));
    }
    let schema = match spec.get("schema") {
        Some(Value::Object(schema)) => schema,
        None | Some(Value::Null) => return Err(missing("response_format.json_schema.schema")),
        Some(other) => {
            return Err(wrong_type(
                "response_format.json_schema.schema",
                "an object",
                other,
            ));
        }
    };
    let strict = match present(spec, "strict") {
        None => false,
        Some(Value::Bool(strict)) => *strict,
        Some(other) => {
            return Err(wrong_type(
                "response_format.json_schema.strict",
                "a boolean",
                other,
            ));
        }
    };
    if strict {
        check_strict_schema(schema, name)?;
    }
    Ok(())
}

/// A function or schema name: `^[a-zA-Z0-9_-]{1,64}$`; the name.
fn check_name<'a>(name: Option<&'a Value>, param: &str) -> Result<&'a str, ApiError> {
    let name = match name {
        Some(Value::String(name)) => name,
        None | Some(Value::Null) => return Err(missing(param)),
        Some(other) => return Err(wrong_type(param, "a string", other)),
    };
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if name.is_empty() || !ok_chars {
        return Err(invalid(
            param.to_string(),
            Some("invalid_value"),
            format!(
                "Invalid '{param}': string does not match pattern. Expected a string that \
                 matches the pattern '^[a-zA-Z0-9_-]+$'."
            ),
        ));
    }
    if name.len() > 64 {
        return Err(invalid(
            param.to_string(),
            Some("string_above_max_length"),
            format!(
                "Invalid '{param}': string too long. Expected a string with maximum length 64, \
                 but got a string with length {} instead.",
                name.len()
            ),
        ));
    }
    Ok(name)
}

/// Structured outputs' strict mode: the root is an object, and every object lists all its
/// properties in `required` and sets `additionalProperties: false`.
fn check_strict_schema(schema: &Map<String, Value>, name: &str) -> Result<(), ApiError> {
    let refuse = |message: String| {
        invalid(
            "response_format".to_string(),
            None,
            format!("Invalid schema for response_format '{name}': {message}"),
        )
    };
    let root_type = schema.get("type").and_then(Value::as_str);
    if root_type != Some("object") {
        return Err(refuse(format!(
            "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{}\"'.",
            root_type.unwrap_or("None")
        )));
    }
    strict_object(schema, &mut Vec::new()).map_err(refuse)
}

fn strict_object(schema: &Map<String, Value>, path: &mut Vec<String>) -> Result<(), String> {
    let context = |path: &[String]| {
        let items: Vec<String> = path.iter().map(|p| format!("'{p}'")).collect();
        match items.len() {
            0 => "()".to_string(),
            1 => format!("({},)", items[0]),
            _ => format!("({})", items.join(", ")),
        }
    };
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        if schema.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Err(format!(
                "In context={}, 'additionalProperties' is required to be supplied and to be \
                 false.",
                context(path)
            ));
        }
        let required: BTreeSet<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(absent) = properties.keys().find(|k| !required.contains(k.as_str())) {
            return Err(format!(
                "In context={}, 'required' is required to be supplied and to be an array \
                 including every key in properties. Missing '{absent}'.",
                context(path)
            ));
        }
        for (key, property) in properties {
            path.extend(["properties".to_string(), key.clone()]);
            strict_nested(property, path)?;
            path.truncate(path.len() - 2);
        }
    }
    if let Some(items) = schema.get("items") {
        path.push("items".to_string());
        strict_nested(items, path)?;
        path.pop();
    }
    for list in ["anyOf", "allOf"] {
        if let Some(branches) = schema.get(list).and_then(Value::as_array) {
            for (i, branch) in branches.iter().enumerate() {
                path.extend([list.to_string(), i.to_string()]);
                strict_nested(branch, path)?;
                path.truncate(path.len() - 2);
            }
        }
    }
    for defs in ["$defs", "definitions"] {
        if let Some(defs_map) = schema.get(defs).and_then(Value::as_object) {
            for (key, def) in defs_map {
                path.extend([defs.to_string(), key.clone()]);
                strict_nested(def, path)?;
                path.truncate(path.len() - 2);
            }
        }
    }
    Ok(())
}

fn strict_nested(schema: &Value, path: &mut Vec<String>) -> Result<(), String> {
    match schema.as_object() {
        Some(schema) => strict_object(schema, path),
        None => Ok(()),
    }
}

/// `tools[]` of `{type: "function", function: {name, description?, parameters?, strict?}}`;
/// the function names.
fn check_tools(tools: &Value) -> Result<Vec<String>, ApiError> {
    let Some(tools) = tools.as_array() else {
        return Err(wrong_type("tools", "an array", tools));
    };
    if tools.is_empty() {
        return Err(invalid(
            "tools".to_string(),
            Some("empty_array"),
            "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an \
             empty array instead."
                .to_string(),
        ));
    }
    let mut names = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let at = format!("tools[{i}]");
        let Some(tool) = tool.as_object() else {
            return Err(wrong_type(&at, "an object", tool));
        };
        match tool.get("type") {
            Some(Value::String(t)) if t == "function" => {}
            None | Some(Value::Null) => return Err(missing(&format!("{at}.type"))),
            Some(Value::String(t)) => {
                return Err(wrong_value(&format!("{at}.type"), t, &["function"]));
            }
            Some(other) => return Err(wrong_type(&format!("{at}.type"), "a string", other)),
        }
        let function = match tool.get("function") {
            Some(Value::Object(function)) => function,
            None | Some(Value::Null) => return Err(missing(&format!("{at}.function"))),
            Some(other) => {
                return Err(wrong_type(&format!("{at}.function"), "an object", other));
            }
        };
        let name = check_name(function.get("name"), &format!("{at}.function.name"))?;
        if let Some(parameters) = present(function, "parameters").filter(|p| !p.is_object()) {
            return Err(wrong_type(
                &format!("{at}.function.parameters"),
                "an object",
                parameters,
            ));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// `auto|none|required` or `{type: "function", function: {name}}` naming a given tool.
fn check_tool_choice(choice: &Value, tools: &[String]) -> Result<(), ApiError> {
    if tools.is_empty() {
        return Err(invalid(
            "tool_choice".to_string(),
            None,
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are \
             specified."
                .to_string(),
        ));
    }
    match choice {
        Value::String(mode) if ["auto", "none", "required"].contains(&mode.as_str()) => Ok(()),
        Value::String(mode) => Err(wrong_value(
            "tool_choice",
            mode,
            &["none", "auto", "required"],
        )),
        Value::Object(named) => {
            if named.get("type").and_then(Value::as_str) != Some("function") {
                return Err(missing("tool_choice.type"));
            }
            let name = named
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str);
            match name {
                None => Err(missing("tool_choice.function.name")),
                Some(name) if tools.iter().any(|t| t == name) => Ok(()),
                Some(name) => Err(invalid(
                    "tool_choice".to_string(),
                    None,
                    format!(
                        "Invalid value for 'tool_choice': function '{name}' not found in 'tools'."
                    ),
                )),
            }
        }
        other => Err(wrong_type("tool_choice", "a string or an object", other)),
    }
}

/// About four characters a token, as OpenAI's tokenisers give for English text.
fn tokens(chars: usize) -> u64 {
    chars.div_ceil(4) as u64
}

/// Prompt tokens: the messages' contents and tool calls, a few tokens a message, the tools.
fn prompt_tokens(request: &Value) -> u64 {
    let messages = request["messages"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let text: usize = messages
        .iter()
        .map(|m| {
            let content = m["content"].as_str().map_or(0, |c| c.chars().count());
            let calls = m.get("tool_calls").map_or(0, |c| c.to_string().len());
            content + calls
        })
        .sum();
    let tools = request.get("tools").map_or(0, |t| t.to_string().len());
    tokens(text + tools) + 4 * messages.len() as u64 + 3
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `12ms`, `6s`, `6m0s`: OpenAI's way of writing reset times.
fn reset_in(seconds: u64) -> String {
    if seconds >= 60 {
        format!("{}m{}s", seconds / 60, seconds % 60)
    } else {
        format!("{seconds}s")
    }
}

fn set_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

fn json_response(status: u16, body: String, request_id: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    set_header(headers, "content-type", "application/json");
    set_header(headers, "x-request-id", request_id);
    response
}

fn error_body(message: &str, kind: &str, param: Option<&str>, code: &Value) -> String {
    json!({ "error": { "message": message, "type": kind, "param": param, "code": code } })
        .to_string()
}

fn error_response(e: &ApiError, request_id: &str) -> Response {
    let body = error_body(&e.message, &e.kind, e.param.as_deref(), &e.code);
    json_response(e.status, body, request_id)
}

/// The chat completion a 200 carries.
fn completion(
    id: u64,
    request: &Value,
    message: Value,
    finish_reason: &str,
    completion_tokens: u64,
) -> Value {
    let prompt = prompt_tokens(request);
    json!({
        "id": format!("chatcmpl-{id}"),
        "object": "chat.completion",
        "created": unix_now(),
        "model": request["model"],
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        },
    })
}

fn text_message(content: &str) -> Value {
    json!({ "role": "assistant", "content": content, "refusal": null })
}

/// A 200 with the rate-limit headers of a request well within its limits.
fn ok_response(body: &Value, request_id: &str) -> Response {
    let mut response = json_response(200, body.to_string(), request_id);
    let used = body["usage"]["total_tokens"].as_u64().unwrap_or(0);
    let headers = response.headers_mut();
    set_header(
        headers,
        "x-ratelimit-limit-requests",
        &LIMIT_REQUESTS.to_string(),
    );
    set_header(
        headers,
        "x-ratelimit-remaining-requests",
        &(LIMIT_REQUESTS - 1).to_string(),
    );
    set_header(headers, "x-ratelimit-reset-requests", "6ms");
    set_header(
        headers,
        "x-ratelimit-limit-tokens",
        &LIMIT_TOKENS.to_string(),
    );
    set_header(
        headers,
        "x-ratelimit-remaining-tokens",
        &LIMIT_TOKENS.saturating_sub(used).to_string(),
    );
    set_header(headers, "x-ratelimit-reset-tokens", "0s");
    set_header(headers, "openai-processing-ms", "42");
    response
}

async fn answer(shared: &Shared, reply: Reply, request: &Value, request_id: &str) -> Response {
    let mut reply = reply;
    while let Reply::Delay(pause, inner) = reply {
        tokio::time::sleep(pause).await;
        reply = *inner;
    }
    if let Err(why) = check_statuses(&reply) {
        let e = ApiError {
            status: 500,
            message: format!("LlmEmulator fallback: {why}"),
            kind: "server_error".to_string(),
            param: None,
            code: Value::Null,
        };
        return error_response(&e, request_id);
    }
    let model = request["model"].as_str().unwrap_or_default();
    let text = |content: &str, finish: &str| {
        let tokens = tokens(content.chars().count());
        completion(
            shared.next(),
            request,
            text_message(content),
            finish,
            tokens,
        )
    };
    match reply {
        Reply::Content(content) => ok_response(&text(&content, "stop"), request_id),
        Reply::Json(value) => ok_response(&text(&value.to_string(), "stop"), request_id),
        Reply::Length(content) => ok_response(&text(&content, "length"), request_id),
        Reply::ToolCall { name, arguments } => {
            let message = json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": format!("call_{}", shared.next()),
                    "type": "function",
                    "function": { "name": name, "arguments": arguments },
                }],
                "refusal": null,
            });
            let tokens = tokens(name.len() + arguments.chars().count()) + 8;
            let body = completion(shared.next(), request, message, "tool_calls", tokens);
            ok_response(&body, request_id)
        }
        Reply::Error {
            status,
            kind,
            code,
            message,
        } => json_response(status, error_body(&message, &kind, None, &code), request_id),
        Reply::RateLimited { retry_after_s } => {
            let message = format!(
                "Rate limit reached for {model} in organization org-emulator on requests per min \
                 (RPM): Limit {LIMIT_REQUESTS}, Used {LIMIT_REQUESTS}, Requested 1. Please try \
                 again in {retry_after_s}s. Visit https://platform.openai.com/account/rate-limits \
                 to learn more."
            );
            let body = error_body(&message, "requests", None, &json!("rate_limit_exceeded"));
            let mut response = json_response(429, body, request_id);
            let headers = response.headers_mut();
            set_header(headers, "retry-after", &retry_after_s.to_string());
            set_header(
                headers,
                "x-ratelimit-limit-requests",
                &LIMIT_REQUESTS.to_string(),
            );
            set_header(headers, "x-ratelimit-remaining-requests", "0");
            set_header(
                headers,
                "x-ratelimit-reset-requests",
                &reset_in(retry_after_s),
            );
            set_header(
                headers,
                "x-ratelimit-limit-tokens",
                &LIMIT_TOKENS.to_string(),
            );
            set_header(
                headers,
                "x-ratelimit-remaining-tokens",
                &LIMIT_TOKENS.to_string(),
            );
            set_header(headers, "x-ratelimit-reset-tokens", "0s");
            response
        }
        Reply::Html(status) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let title = format!(
                "{} {}",
                code.as_u16(),
                code.canonical_reason().unwrap_or("")
            );
            let page = format!(
                "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}\
                 </h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
            );
            let mut response = (code, page).into_response();
            set_header(response.headers_mut(), "content-type", "text/html");
            response
        }
        Reply::DropConnection => {
            let body = text("This answer never arrives whole.", "stop").to_string();
            let half = Bytes::copy_from_slice(&body.as_bytes()[..body.len() / 2]);
            let mut response = Response::new(Body::from_stream(Truncated {
                half: Some(half),
                pause: Box::pin(tokio::time::sleep(Duration::from_millis(20))),
            }));
            let headers = response.headers_mut();
            set_header(headers, "content-type", "application/json");
            set_header(headers, "content-length", &body.len().to_string());
            set_header(headers, "x-request-id", request_id);
            response
        }
        Reply::Raw { status, body } => json_response(status, body, request_id),
        Reply::Delay(..) => unreachable!("delays are unwrapped above"),
    }
}

/// The body of [`Reply::DropConnection`]: half a completion, a pause for hyper to send the
/// headers and that half, then an error, on which hyper closes the connection.
struct Truncated {
    half: Option<Bytes>,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl futures_core::Stream for Truncated {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(half) = self.half.take() {
            return Poll::Ready(Some(Ok(half)));
        }
        ready!(self.pause.as_mut().poll(cx));
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "LlmEmulator: the connection drops mid-body",
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    const KEY: &str = "sk-test-0123456789";

    /// One answer as the client saw it.
    #[derive(Debug)]
    struct Got {
        status: u16,
        headers: reqwest::header::HeaderMap,
        body: Value,
        text: String,
    }

    fn client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    }

    fn chat(content: &str) -> Value {
        json!({ "model": "gpt-test", "messages": [{ "role": "user", "content": content }] })
    }

    async fn send(builder: reqwest::RequestBuilder) -> Got {
        let response = builder.send().await.expect("send");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        Got {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    async fn post(emu: &LlmEmulator, body: &Value) -> Got {
        let url = format!("{}/chat/completions", emu.base_url());
        send(client().post(url).bearer_auth(KEY).json(body)).await
    }

    fn header<'a>(got: &'a Got, name: &str) -> &'a str {
        got.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no header {name}: {got:#?}"))
    }

    /// A 200 chat completion for `model` finishing with `finish`, with consistent usage and
    /// OpenAI's headers; its message.
    fn assert_completion(got: &Got, model: &str, finish: &str) -> Value {
        assert_eq!(got.status, 200, "{got:#?}");
        let b = &got.body;
        let keys: BTreeSet<&str> = b
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let expected: BTreeSet<&str> =
            ["id", "object", "created", "model", "choices", "usage"].into();
        assert_eq!(keys, expected, "{got:#?}");
        assert!(
            b["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("chatcmpl-")),
            "{got:#?}"
        );
        assert_eq!(b["object"], "chat.completion", "{got:#?}");
        assert!(
            b["created"].as_u64().is_some_and(|t| t > 1_700_000_000),
            "{got:#?}"
        );
        assert_eq!(b["model"], model, "{got:#?}");
        let choices = b["choices"].as_array().expect("choices");
        assert_eq!(choices.len(), 1, "{got:#?}");
        assert_eq!(choices[0]["index"], 0, "{got:#?}");
        assert!(choices[0]["logprobs"].is_null(), "{got:#?}");
        assert_eq!(choices[0]["finish_reason"], finish, "{got:#?}");
        let message = &choices[0]["message"];
        assert_eq!(message["role"], "assistant", "{got:#?}");
        assert!(message["refusal"].is_null() && message.get("refusal").is_some());
        let usage = &b["usage"];
        let (p, c, t) = (
            usage["prompt_tokens"].as_u64().expect("prompt_tokens"),
            usage["completion_tokens"]
                .as_u64()
                .expect("completion_tokens"),
            usage["total_tokens"].as_u64().expect("total_tokens"),
        );
        assert!(p > 0 && p + c == t, "usage {usage}");
        assert!(header(got, "x-request-id").starts_with("req_"));
        for kind in ["requests", "tokens"] {
            for what in ["limit", "remaining", "reset"] {
                header(got, &format!("x-ratelimit-{what}-{kind}"));
            }
        }
        assert_eq!(header(got, "content-type"), "application/json");
        message.clone()
    }

    /// `status` with exactly `{"error": {message, type, param, code}}`, this type and param.
    fn assert_api_error(got: &Got, status: u16, kind: &str, param: Option<&str>) {
        assert_eq!(got.status, status, "{got:#?}");
        let keys: Vec<&str> = got
            .body
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(keys, ["error"], "{got:#?}");
        let error = got.body["error"].as_object().expect("error object");
        let keys: BTreeSet<&str> = error.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from(["code", "message", "param", "type"]),
            "{got:#?}"
        );
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{got:#?}"
        );
        assert_eq!(error["type"], kind, "{got:#?}");
        assert_eq!(error["param"], json!(param), "{got:#?}");
        assert_eq!(header(got, "content-type"), "application/json");
    }

    fn panics(f: impl FnOnce()) -> bool {
        catch_unwind(AssertUnwindSafe(f)).is_err()
    }

    fn got(status: u16, body: Value, headers: &[(&'static str, &str)]) -> Got {
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().expect("header value"));
        }
        Got {
            status,
            headers: map,
            text: body.to_string(),
            body,
        }
    }

    fn good_completion() -> Value {
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1_792_051_200u64,
            "model": "m",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": "hi",
                "refusal": null }, "logprobs": null, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11 },
        })
    }

    const OK_HEADERS: &[(&str, &str)] = &[
        ("content-type", "application/json"),
        ("x-request-id", "req_1"),
        ("x-ratelimit-limit-requests", "1"),
        ("x-ratelimit-remaining-requests", "1"),
        ("x-ratelimit-reset-requests", "1s"),
        ("x-ratelimit-limit-tokens", "1"),
        ("x-ratelimit-remaining-tokens", "1"),
        ("x-ratelimit-reset-tokens", "1s"),
    ];

    #[test]
    fn assert_completion_rejects_wrong_answers() {
        let good = got(200, good_completion(), OK_HEADERS);
        assert_completion(&good, "m", "stop");
        let mut wrong: Vec<(&str, Got)> = vec![
            ("status", got(500, good_completion(), OK_HEADERS)),
            ("headers", got(200, good_completion(), &OK_HEADERS[..3])),
        ];
        type Edit = (&'static str, fn(&mut Value));
        let edits: [Edit; 9] = [
            ("object", |b| b["object"] = json!("chat.completion.chunk")),
            ("no id", |b| {
                b.as_object_mut().expect("object").remove("id");
            }),
            ("extra key", |b| b["service_tier"] = json!("default")),
            ("model", |b| b["model"] = json!("other")),
            ("finish", |b| {
                b["choices"][0]["finish_reason"] = json!("length")
            }),
            ("role", |b| {
                b["choices"][0]["message"]["role"] = json!("user")
            }),
            ("no refusal", |b| {
                b["choices"][0]["message"]
                    .as_object_mut()
                    .expect("message")
                    .remove("refusal");
            }),
            ("usage sum", |b| b["usage"]["total_tokens"] = json!(12)),
            ("two choices", |b| {
                let first = b["choices"][0].clone();
                b["choices"].as_array_mut().expect("choices").push(first);
            }),
        ];
        for (what, edit) in edits {
            let mut body = good_completion();
            edit(&mut body);
            wrong.push((what, got(200, body, OK_HEADERS)));
        }
        for (what, answer) in wrong {
            assert!(
                panics(|| {
                    assert_completion(&answer, "m", "stop");
                }),
                "assert_completion accepted a wrong answer ({what})"
            );
        }
    }

    #[test]
    fn assert_api_error_rejects_wrong_answers() {
        let error = |e: Value| json!({ "error": e });
        let good = json!({ "message": "m", "type": "invalid_request_error", "param": "model",
            "code": null });
        let ct = &[("content-type", "application/json")][..];
        assert_api_error(
            &got(400, error(good.clone()), ct),
            400,
            "invalid_request_error",
            Some("model"),
        );
        let mut no_code = good.clone();
        no_code.as_object_mut().expect("object").remove("code");
        let wrong = [
            ("status", got(401, error(good.clone()), ct)),
            (
                "param",
                got(
                    400,
                    error(json!({ "message": "m",
                "type": "invalid_request_error", "param": null, "code": null })),
                    ct,
                ),
            ),
            (
                "type",
                got(
                    400,
                    error(json!({ "message": "m", "type": "server_error",
                "param": "model", "code": null })),
                    ct,
                ),
            ),
            (
                "empty message",
                got(
                    400,
                    error(json!({ "message": "",
                "type": "invalid_request_error", "param": "model", "code": null })),
                    ct,
                ),
            ),
            ("no code", got(400, error(no_code), ct)),
            ("string error", got(400, json!({ "error": "bad" }), ct)),
            ("detail", got(400, json!({ "detail": "bad" }), ct)),
            (
                "extra key",
                got(400, json!({ "error": good, "ok": false }), ct),
            ),
            ("content type", got(400, error(good.clone()), &[])),
        ];
        for (what, answer) in wrong {
            assert!(
                panics(|| assert_api_error(&answer, 400, "invalid_request_error", Some("model"))),
                "assert_api_error accepted a wrong answer ({what})"
            );
        }
    }

    #[tokio::test]
    async fn content_reply_is_a_chat_completion_with_openai_headers() {
        let emu = LlmEmulator::start(KEY).await;
        emu.push(Reply::Content("Добрый день!".to_string()));
        let got = post(&emu, &chat("Здравствуйте")).await;
        let message = assert_completion(&got, "gpt-test", "stop");
        assert_eq!(message["content"], "Добрый день!");
        assert!(message.get("tool_calls").is_none(), "{message}");
        assert!(got.body["usage"]["completion_tokens"].as_u64() > Some(0));
        assert_eq!(header(&got, "x-ratelimit-reset-tokens"), "0s");
    }

    #[tokio::test]
    async fn json_reply_is_the_value_serialised_as_content() {
        let emu = LlmEmulator::start(KEY).await;
        let intent = json!({ "intent": "book", "service": "стрижка" });
        emu.push(Reply::Json(intent.clone()));
        let got = post(&emu, &chat("Хочу на стрижку")).await;
        let message = assert_completion(&got, "gpt-test", "stop");
        let content = message["content"].as_str().expect("content string");
        assert_eq!(
            serde_json::from_str::<Value>(content).expect("json"),
            intent
        );
    }

    #[tokio::test]
    async fn tool_call_reply_has_null_content_and_one_function_call() {
        let emu = LlmEmulator::start(KEY).await;
        emu.push(Reply::ToolCall {
            name: "find_slots".to_string(),
            arguments: r#"{"date":"2026-10-16"}"#.to_string(),
        });
        let got = post(&emu, &chat("Есть время в пятницу?")).await;
        let message = assert_completion(&got, "gpt-test", "tool_calls");
        assert!(message["content"].is_null() && message.get("content").is_some());
        let calls = message["tool_calls"].as_array().expect("tool_calls");
        assert_eq!(calls.len(), 1);
        assert!(
            calls[0]["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("call_"))
        );
        assert_eq!(calls[0]["type"], "function");
        assert_eq!(calls[0]["function"]["name"], "find_slots");
        assert_eq!(
            calls[0]["function"]["arguments"],
            r#"{"date":"2026-10-16"}"#
        );
    }

    #[tokio::test]
    async fn length_reply_finishes_with_length() {
        let emu = LlmEmulator::start(KEY).await;
        emu.push(Reply::Length(r#"{"intent":"bo"#.to_string()));
        let got = post(&emu, &chat("json please")).await;
        let message = assert_completion(&got, "gpt-test", "length");
        assert_eq!(message["content"], r#"{"intent":"bo"#);
    }

    #[tokio::test]
    async fn error_reply_keeps_status_kind_and_an_integer_code() {
        let emu = LlmEmulator::start(KEY).await;
        emu.push(Reply::Error {
            status: 404,
            kind: "invalid_request_error".to_string(),
            code: json!("model_not_found"),
            message: "The model `gpt-test` does not exist".to_string(),
        });
        emu.push(Reply::Error {
            status: 400,
            kind: "invalid_request_error".to_string(),
            code: json!(400),
            message: "the request exceeds the available context size".to_string(),
        });
        let got = post(&emu, &chat("a")).await;
        assert_api_error(&got, 404, "invalid_request_error", None);
        assert_eq!(got.body["error"]["code"], "model_not_found");
        assert_eq!(
            got.body["error"]["message"],
            "The model `gpt-test` does not exist"
        );
        assert!(header(&got, "x-request-id").starts_with("req_"));
        let got = post(&emu, &chat("a")).await;
        assert_api_error(&got, 400, "invalid_request_error", None);
        assert!(got.body["error"]["code"].is_u64(), "{got:#?}");
    }

    #[tokio::test]
    async fn rate_limited_reply_is_429_with_retry_after_and_ratelimit_headers() {
        let emu = LlmEmulator::start(KEY).await;
        emu.push(Reply::RateLimited { retry_after_s: 360 });
        let got = post(&emu, &chat("a")).await;
        assert_api_error(&got, 429, "requests", None);
        assert_eq!(got.body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(header(&got, "retry-after"), "360");
        assert_eq!(header(&got, "x-ratelimit-remaining-requests"), "0");
        assert_eq!(header(&got, "x-ratelimit-reset-requests"), "6m0s");
        for name in [
            "x-ratelimit-limit-requests",
            "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-tokens",
            "x-ratelimit-reset-tokens",
        ] {
            header(&got, name);
        }
    }

    #[tokio::test]
    async fn html_reply_is_a_proxy_page_with_its_status() {
        let emu = LlmEmulator::start(KEY).await;
        emu.push(Reply::Html(502));
        let got = post(&emu, &chat("a")).await;
        assert_eq!(got.status, 502);
        assert!(header(&got, "content-type").starts_with("text/html"));
        assert!(
            got.text.contains("<title>502 Bad Gateway</title>"),
            "{}",
            got.text
        );
        assert!(got.body.is_null(), "not JSON");
    }

    #[tokio::test]
    async fn raw_reply_is_sent_verbatim() {
        let emu = LlmEmulator::start(KEY).await;
        let quirk = r#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"Не могу"},"finish_reason":"blacklist"}]}"#;
        emu.push(Reply::Raw {
            status: 200,
            body: quirk.to_string(),
        });
        emu.push(Reply::Raw {
            status: 200,
            body: r#"{"id": "chatcmpl-1", "obj"#.to_string(),
        });
        let got = post(&emu, &chat("a")).await;
        assert_eq!((got.status, got.text.as_str()), (200, quirk));
        assert_eq!(header(&got, "content-type"), "application/json");
        let got = post(&emu, &chat("a")).await;
        assert_eq!(got.text, r#"{"id": "chatcmpl-1", "obj"#);
    }

    #[tokio::test]
    async fn delay_answers_after_the_pause_and_trips_a_client_timeout() {
        let emu = LlmEmulator::start(KEY).await;
        let pause = Duration::from_millis(300);
        emu.push(Reply::Delay(
            pause,
            Box::new(Reply::Content("поздно".to_string())),
        ));
        let started = Instant::now();
        let got = post(&emu, &chat("a")).await;
        assert!(started.elapsed() >= pause, "{:?}", started.elapsed());
        assert_eq!(
            assert_completion(&got, "gpt-test", "stop")["content"],
            "поздно"
        );

        emu.push(Reply::Delay(
            Duration::from_secs(30),
            Box::new(Reply::Content("never".to_string())),
        ));
        let url = format!("{}/chat/completions", emu.base_url());
        let err = client()
            .post(url)
            .bearer_auth(KEY)
            .json(&chat("a"))
            .timeout(Duration::from_millis(200))
            .send()
            .await
            .expect_err("a hanging model times out");
        assert!(err.is_timeout(), "{err:?}");
    }

    #[tokio::test]
    async fn drop_connection_sends_headers_then_fails_the_body_read() {
        let emu = LlmEmulator::start(KEY).await;
        emu.push(Reply::DropConnection);
        let url = format!("{}/chat/completions", emu.base_url());
        let response = client()
            .post(url)
            .bearer_auth(KEY)
            .json(&chat("a"))
            .send()
            .await
            .expect("the headers arrive");
        assert_eq!(response.status().as_u16(), 200);
        let err = response.text().await.expect_err("the body is cut");
        assert!(err.is_body() || err.is_decode(), "{err:?}");
        // The emulator itself lives on: the next request is answered.
        assert_eq!(post(&emu, &chat("a")).await.status, 200);
    }

    #[tokio::test]
    async fn script_answers_in_order_then_the_fallback_given_the_body() {
        let emu = LlmEmulator::start(KEY).await;
        emu.push(Reply::Content("one".to_string()));
        emu.push(Reply::Content("two".to_string()));
        let content = |got: Got| got.body["choices"][0]["message"]["content"].clone();
        assert_eq!(content(post(&emu, &chat("a")).await), "one");
        assert_eq!(content(post(&emu, &chat("b")).await), "two");
        // The default fallback: an empty content.
        let got = post(&emu, &chat("c")).await;
        assert_eq!(assert_completion(&got, "gpt-test", "stop")["content"], "");
        emu.set_fallback(|body| {
            let said = body["messages"][0]["content"].as_str().unwrap_or_default();
            Reply::Content(format!("echo: {said}"))
        });
        assert_eq!(content(post(&emu, &chat("d")).await), "echo: d");
        emu.push(Reply::Content("scripted again".to_string()));
        assert_eq!(content(post(&emu, &chat("e")).await), "scripted again");
        assert_eq!(content(post(&emu, &chat("f")).await), "echo: f");
    }

    #[tokio::test]
    async fn a_refused_request_does_not_consume_the_script() {
        let emu = LlmEmulator::start(KEY).await;
        emu.push(Reply::Content("kept".to_string()));
        let got = post(
            &emu,
            &json!({ "messages": [{ "role": "user", "content": "a" }] }),
        )
        .await;
        assert_api_error(&got, 400, "invalid_request_error", Some("model"));
        let url = format!("{}/chat/completions", emu.base_url());
        let got = send(client().post(&url).json(&chat("a"))).await;
        assert_eq!(got.status, 401);
        let got = post(&emu, &chat("a")).await;
        assert_eq!(
            assert_completion(&got, "gpt-test", "stop")["content"],
            "kept"
        );
    }

    #[tokio::test]
    async fn a_missing_or_wrong_key_is_401_and_api_key_is_accepted() {
        let emu = LlmEmulator::start(KEY).await;
        let url = format!("{}/chat/completions", emu.base_url());
        let http = client();
        for (what, builder) in [
            ("no key", http.post(&url)),
            (
                "wrong key",
                http.post(&url).bearer_auth("sk-test-wrong-key"),
            ),
            ("no scheme", http.post(&url).header("authorization", KEY)),
            ("basic", http.post(&url).basic_auth("user", Some(KEY))),
        ] {
            let got = send(builder.json(&chat("a"))).await;
            assert_api_error(&got, 401, "invalid_request_error", None);
            assert_eq!(got.body["error"]["code"], "invalid_api_key", "{what}");
        }
        let got = send(
            http.post(&url)
                .bearer_auth("sk-test-wrong-key")
                .json(&chat("a")),
        )
        .await;
        let message = got.body["error"]["message"].as_str().expect("message");
        assert!(
            !message.contains("sk-test-wrong-key"),
            "the key is masked: {message}"
        );
        let yandex = http
            .post(&url)
            .header("authorization", format!("Api-Key {KEY}"));
        assert_completion(&send(yandex.json(&chat("a"))).await, "gpt-test", "stop");
        // The key is checked before the body.
        let got = send(http.post(&url).body("not json")).await;
        assert_eq!(got.status, 401);
    }

    #[tokio::test]
    async fn invalid_requests_are_400_naming_the_param() {
        let emu = LlmEmulator::start(KEY).await;
        emu.push(Reply::Content("first valid".to_string()));
        let user = json!({ "role": "user", "content": "json?" });
        let with = |key: &str, value: Value| {
            let mut body = chat("answer in json");
            body[key] = value;
            body
        };
        let schema = |schema: Value| {
            with(
                "response_format",
                json!({ "type": "json_schema",
                    "json_schema": { "name": "intent", "schema": schema, "strict": true } }),
            )
        };
        let tools = json!([{ "type": "function", "function": { "name": "find_slots",
            "parameters": { "type": "object", "properties": {} } } }]);
        let call = json!({ "role": "assistant", "content": null, "tool_calls": [{ "id": "call_1",
            "type": "function", "function": { "name": "find_slots", "arguments": "{}" } }] });
        // (the expected `param` and `code`, "-" for null; the request)
        let cases: Vec<(&str, Value)> = vec![
            ("model -", json!({ "messages": [user] })),
            ("model -", with("model", json!(""))),
            ("model invalid_type", with("model", json!(4))),
            (
                "messages missing_required_parameter",
                json!({ "model": "m" }),
            ),
            ("messages empty_array", with("messages", json!([]))),
            ("messages invalid_type", with("messages", user.clone())),
            ("messages[0] invalid_type", with("messages", json!(["hi"]))),
            (
                "messages[0].role invalid_value",
                with("messages", json!([{ "role": "bot", "content": "a" }])),
            ),
            (
                "messages[0].role missing_required_parameter",
                with("messages", json!([{ "content": "a" }])),
            ),
            (
                "messages[0].content missing_required_parameter",
                with("messages", json!([{ "role": "user" }])),
            ),
            (
                "messages[0].content invalid_type",
                with("messages", json!([{ "role": "user", "content": 5 }])),
            ),
            (
                "messages[1].content invalid_type",
                with(
                    "messages",
                    json!([user, { "role": "assistant", "content": null }]),
                ),
            ),
            (
                "messages[0].text unknown_parameter",
                with(
                    "messages",
                    json!([{ "role": "user", "content": "a", "text": "a" }]),
                ),
            ),
            (
                "messages[1].role -",
                with(
                    "messages",
                    json!([user, { "role": "tool", "tool_call_id": "call_1", "content": "{}" }]),
                ),
            ),
            (
                "messages[2].tool_call_id missing_required_parameter",
                with(
                    "messages",
                    json!([user, call, { "role": "tool", "content": "{}" }]),
                ),
            ),
            (
                "messages[2].tool_call_id -",
                with(
                    "messages",
                    json!([user, call, { "role": "tool", "tool_call_id": "call_9", "content": "{}" }]),
                ),
            ),
            (
                "messages[1].role -",
                with("messages", json!([user, call, user])),
            ),
            (
                "messages[1].tool_calls[0].type missing_required_parameter",
                with(
                    "messages",
                    json!([user, { "role": "assistant", "tool_calls": [{ "id": "c", "function": { "name": "f", "arguments": "{}" } }] }, { "role": "tool", "tool_call_id": "c", "content": "{}" }]),
                ),
            ),
            ("- -", with("temprature", json!(0.2))),
            ("stream unsupported_value", with("stream", json!(true))),
            (
                "stream_options -",
                with("stream_options", json!({ "include_usage": true })),
            ),
            ("n unsupported_value", with("n", json!(2))),
            (
                "temperature decimal_above_max_value",
                with("temperature", json!(2.5)),
            ),
            (
                "temperature decimal_below_min_value",
                with("temperature", json!(-0.1)),
            ),
            (
                "temperature invalid_type",
                with("temperature", json!("0.2")),
            ),
            ("top_p decimal_above_max_value", with("top_p", json!(1.5))),
            (
                "max_tokens integer_below_min_value",
                with("max_tokens", json!(0)),
            ),
            ("max_tokens invalid_type", with("max_tokens", json!(10.5))),
            (
                "max_completion_tokens integer_below_min_value",
                with("max_completion_tokens", json!(-3)),
            ),
            (
                "response_format invalid_type",
                with("response_format", json!("json")),
            ),
            (
                "response_format.type invalid_value",
                with("response_format", json!({ "type": "xml" })),
            ),
            (
                "response_format.schema unknown_parameter",
                with("response_format", json!({ "type": "text", "schema": {} })),
            ),
            ("messages -", {
                let mut body = chat("привет");
                body["response_format"] = json!({ "type": "json_object" });
                body
            }),
            (
                "response_format.json_schema missing_required_parameter",
                with("response_format", json!({ "type": "json_schema" })),
            ),
            (
                "response_format.json_schema.name missing_required_parameter",
                with(
                    "response_format",
                    json!({ "type": "json_schema", "json_schema": { "schema": { "type": "object" } } }),
                ),
            ),
            (
                "response_format.json_schema.name invalid_value",
                with(
                    "response_format",
                    json!({ "type": "json_schema", "json_schema": { "name": "my intent", "schema": { "type": "object" } } }),
                ),
            ),
            (
                "response_format.json_schema.schema invalid_type",
                with(
                    "response_format",
                    json!({ "type": "json_schema", "json_schema": { "name": "intent", "schema": "{}" } }),
                ),
            ),
            (
                "response_format.json_schema.strict invalid_type",
                with(
                    "response_format",
                    json!({ "type": "json_schema", "json_schema": { "name": "intent", "schema": { "type": "object" }, "strict": "yes" } }),
                ),
            ),
            // Strict mode: additionalProperties false and every property required, nested too.
            (
                "response_format -",
                schema(
                    json!({ "type": "object", "properties": { "intent": { "type": "string" } }, "required": ["intent"] }),
                ),
            ),
            (
                "response_format -",
                schema(
                    json!({ "type": "object", "properties": { "intent": { "type": "string" }, "date": { "type": "string" } }, "required": ["intent"], "additionalProperties": false }),
                ),
            ),
            (
                "response_format -",
                schema(
                    json!({ "type": "object", "properties": { "slot": { "type": "object", "properties": { "at": { "type": "string" } }, "required": ["at"] } }, "required": ["slot"], "additionalProperties": false }),
                ),
            ),
            ("response_format -", schema(json!({ "type": "array" }))),
            ("tools empty_array", with("tools", json!([]))),
            (
                "tools[0].type invalid_value",
                with(
                    "tools",
                    json!([{ "type": "code", "function": { "name": "f" } }]),
                ),
            ),
            (
                "tools[0].function.name invalid_value",
                with(
                    "tools",
                    json!([{ "type": "function", "function": { "name": "find slots" } }]),
                ),
            ),
            ("tool_choice -", with("tool_choice", json!("auto"))),
            ("tool_choice -", {
                let mut body = with("tools", tools.clone());
                body["tool_choice"] = json!({ "type": "function", "function": { "name": "x" } });
                body
            }),
            ("tool_choice invalid_value", {
                let mut body = with("tools", tools.clone());
                body["tool_choice"] = json!("always");
                body
            }),
            (
                "parallel_tool_calls -",
                with("parallel_tool_calls", json!(false)),
            ),
        ];
        let null = |s: &'static str| (s != "-").then_some(s);
        for (expected, body) in &cases {
            let (param, code) = expected.split_once(' ').expect("param code");
            let got = post(&emu, body).await;
            let what = format!("expected {expected} for {body}");
            assert!(
                !panics(|| assert_api_error(&got, 400, "invalid_request_error", null(param))),
                "{what}: {got:#?}"
            );
            assert_eq!(
                got.body["error"]["code"],
                json!(null(code)),
                "{what}: {got:#?}"
            );
        }
        // None of them took the scripted reply: the first valid request does.
        let got = post(&emu, &chat("a")).await;
        assert_eq!(
            assert_completion(&got, "gpt-test", "stop")["content"],
            "first valid"
        );
        assert_eq!(emu.requests().len(), cases.len() + 1);
    }

    #[tokio::test]
    async fn valid_requests_of_every_feature_are_accepted() {
        let emu = LlmEmulator::start(KEY).await;
        let strict = json!({ "type": "object",
            "properties": {
                "intent": { "type": "string", "enum": ["book", "cancel"] },
                "slots": { "type": "array", "items": { "type": "object",
                    "properties": { "at": { "type": ["string", "null"] } },
                    "required": ["at"], "additionalProperties": false } },
                "who": { "anyOf": [{ "type": "null" }, { "$ref": "#/$defs/person" }] } },
            "$defs": { "person": { "type": "object", "properties": { "name": { "type": "string" } },
                "required": ["name"], "additionalProperties": false } },
            "required": ["intent", "slots", "who"], "additionalProperties": false });
        let tools = json!([{ "type": "function", "function": { "name": "find_slots",
            "description": "Free slots", "parameters": { "type": "object", "properties": {} } } }]);
        let bodies = [
            json!({ "model": "yandexgpt-lite/latest", "temperature": 0, "max_tokens": 200,
                "messages": [{ "role": "system", "content": "Ты администратор салона." },
                    { "role": "developer", "content": "Отвечай JSON." },
                    { "role": "user", "content": "Запишите меня" }],
                "response_format": { "type": "json_schema", "json_schema": { "name": "intent",
                    "description": "intent", "schema": strict, "strict": true } } }),
            json!({ "model": "m", "stream": false, "temperature": 2, "top_p": 1,
                "max_completion_tokens": 1, "n": 1, "seed": 7, "user": null,
                "messages": [{ "role": "user", "content": "Reply in JSON" }],
                "response_format": { "type": "json_object" } }),
            json!({ "model": "m", "response_format": { "type": "text" },
                "messages": [{ "role": "user", "content": "Есть время в пятницу?" },
                    { "role": "assistant", "content": null, "tool_calls": [
                        { "id": "call_1", "type": "function",
                          "function": { "name": "find_slots", "arguments": "{}" } },
                        { "id": "call_2", "type": "function",
                          "function": { "name": "find_slots", "arguments": "{\"d\":1}" } }] },
                    { "role": "tool", "tool_call_id": "call_2", "content": "[]" },
                    { "role": "tool", "tool_call_id": "call_1", "content": "[\"10:00\"]" },
                    { "role": "assistant", "content": "Есть 10:00." },
                    { "role": "user", "content": "Беру", "name": "anna" }],
                "tools": tools, "tool_choice": { "type": "function",
                    "function": { "name": "find_slots" } }, "parallel_tool_calls": false }),
        ];
        for body in &bodies {
            let got = post(&emu, body).await;
            assert_completion(&got, body["model"].as_str().expect("model"), "stop");
        }
    }

    #[tokio::test]
    async fn non_json_bodies_and_unknown_paths_are_refused_as_json_errors() {
        let emu = LlmEmulator::start(KEY).await;
        let http = client();
        let url = format!("{}/chat/completions", emu.base_url());
        let got = send(http.post(&url).bearer_auth(KEY).body("{\"model\": ")).await;
        assert_api_error(&got, 400, "invalid_request_error", None);
        let got = send(http.post(&url).bearer_auth(KEY).json(&json!(["m"]))).await;
        assert_api_error(&got, 400, "invalid_request_error", None);
        for (method, path) in [
            (Method::POST, "/v1//chat/completions"),
            (Method::POST, "/chat/completions"),
            (Method::POST, "/v1/completions"),
            (Method::GET, "/v1/chat/completions"),
        ] {
            let url = format!("http://{}{path}", emu.addr);
            let got = send(
                http.request(method.clone(), url)
                    .bearer_auth(KEY)
                    .json(&chat("a")),
            )
            .await;
            assert_api_error(&got, 404, "invalid_request_error", None);
            let message = got.body["error"]["message"].as_str().expect("message");
            assert_eq!(message, format!("Invalid URL ({method} {path})"));
        }
    }

    #[tokio::test]
    async fn requests_records_headers_and_bodies_of_every_request() {
        let emu = LlmEmulator::start(KEY).await;
        let http = client();
        let url = format!("{}/chat/completions", emu.base_url());
        let before = Instant::now();
        post(&emu, &chat("Мой телефон не скажу")).await;
        send(http.post(&url).body("not json")).await;
        send(
            http.post(&url)
                .bearer_auth(KEY)
                .header("OpenAI-Project", "b1gfolder")
                .json(&json!({ "model": "m" })),
        )
        .await;
        send(http.post(format!("{}/models", emu.base_url()))).await;
        let recorded = emu.requests();
        assert_eq!(recorded.len(), 4, "{recorded:#?}");
        let first = &recorded[0];
        assert_eq!(first.path, "/v1/chat/completions");
        assert_eq!(first.body, chat("Мой телефон не скажу"));
        assert_eq!(
            serde_json::from_str::<Value>(&first.raw).expect("raw"),
            first.body
        );
        let has = |r: &Recorded, name: &str, value: &str| {
            r.headers.iter().any(|(n, v)| n == name && v == value)
        };
        assert!(
            has(first, "authorization", &format!("Bearer {KEY}")),
            "{first:#?}"
        );
        assert!(has(first, "content-type", "application/json"), "{first:#?}");
        assert!(first.at >= before);
        // The refused ones too: no key and not JSON, a missing field, an unknown path.
        assert_eq!(recorded[1].body, Value::Null);
        assert_eq!(recorded[1].raw, "not json");
        assert!(
            !recorded[1]
                .headers
                .iter()
                .any(|(n, _)| n == "authorization")
        );
        assert!(
            has(&recorded[2], "openai-project", "b1gfolder"),
            "lower-case names"
        );
        assert_eq!(recorded[2].body, json!({ "model": "m" }));
        assert_eq!(recorded[3].path, "/v1/models");
        assert!(recorded.windows(2).all(|w| w[0].at <= w[1].at));
    }

    #[test]
    #[should_panic(expected = "is not an HTTP status")]
    fn push_refuses_a_status_that_is_not_http() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let emu = runtime.block_on(LlmEmulator::start(KEY));
        emu.push(Reply::Delay(Duration::ZERO, Box::new(Reply::Html(1000))));
    }
}
