//! The OpenAI wire format: request bodies (parsed with the path of any bad field kept, so
//! errors name it), their validation, and the JSON of responses, stream chunks and errors.

use super::engine::Outcome;
use super::template::ChatMessage;
use crate::generate::SamplerConfig;
use serde::Deserialize;
use serde_json::{Value, json};

/// A client error (4xx) or a server failure (5xx), as OpenAI's error object.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// The request field at fault, e.g. `max_tokens` or `messages[1].role`.
    pub param: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            param: None,
        }
    }

    /// A 400 naming `param`.
    pub fn field(param: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
            param: Some(param.to_string()),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.status {
            429 => "rate_limit_error",
            400..=499 => "invalid_request_error",
            _ => "server_error",
        }
    }

    pub fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind(),
            "param": self.param,
            "code": null,
        }})
    }
}

/// Fields shared by both endpoints. Unknown fields are ignored, as OpenAI-compatible
/// servers do (clients send `user`, `presence_penalty`, ...).
#[derive(Deserialize)]
struct Params {
    model: Option<String>,
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<i64>,
    seed: Option<i64>,
    stop: Option<Stop>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    n: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct ChatBody {
    messages: Vec<WireMessage>,
}

#[derive(Deserialize)]
struct WireMessage {
    role: String,
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Deserialize)]
struct CompletionBody {
    prompt: Prompt,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Prompt {
    One(String),
    Many(Vec<String>),
}

/// Validated generation settings.
#[derive(Clone, Debug)]
pub struct GenParams {
    /// None: until the context is full.
    pub max_tokens: Option<usize>,
    pub sampling: SamplerConfig,
    pub stop: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
}

/// OpenAI's default temperature; top-k and top-p default to `graphrun run`'s.
pub const DEFAULT_TEMPERATURE: f32 = 1.0;
/// At most this many stop strings (OpenAI's limit).
pub const MAX_STOPS: usize = 4;

/// Parses the body as a JSON object (400 for anything else).
pub fn parse_object(body: &[u8]) -> Result<Value, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(400, format!("malformed JSON body: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::new(400, "the request body must be a JSON object"));
    }
    Ok(v)
}

/// Deserializes `T` from `v`, naming the field on error.
fn typed<'a, T: Deserialize<'a>>(v: &'a Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let inner = e.inner().to_string();
        let mut path = e.path().to_string();
        // A missing field is reported at its parent; name the field itself.
        if let Some(name) = inner
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            path = if path == "." {
                name.to_string()
            } else {
                format!("{path}.{name}")
            };
        }
        // `[1].role` style paths read better without serde's `?` for untagged enums.
        let msg = if inner.starts_with("data did not match any variant") {
            "has the wrong type".to_string()
        } else {
            inner
        };
        ApiError::field(&path, format!("{path}: {msg}"))
    })
}

/// The served model's name, checked against the request's `model` (absent: the served one).
pub fn check_model(v: &Value, served: &str) -> Result<(), ApiError> {
    let p: Params = typed(v)?;
    match p.model.as_deref() {
        None => Ok(()),
        Some(m) if m == served => Ok(()),
        Some(m) => Err(ApiError::field(
            "model",
            format!("model: unknown model {m:?}; this server serves {served:?} (GET /v1/models)"),
        )),
    }
}

/// The sampling and stopping fields, validated.
pub fn gen_params(v: &Value) -> Result<GenParams, ApiError> {
    let p: Params = typed(v)?;
    if let Some(n) = p.n
        && n != 1
    {
        return Err(ApiError::field(
            "n",
            format!("n: only one choice per request is supported, got {n}"),
        ));
    }
    let (name, max) = match (p.max_completion_tokens, p.max_tokens) {
        (Some(m), _) => ("max_completion_tokens", Some(m)),
        (None, m) => ("max_tokens", m),
    };
    let max_tokens = match max {
        Some(m) if m < 1 => {
            return Err(ApiError::field(
                name,
                format!("{name}: must be at least 1, got {m}"),
            ));
        }
        m => m.map(|m| usize::try_from(m).unwrap_or(usize::MAX)),
    };
    let temperature = p.temperature.unwrap_or(DEFAULT_TEMPERATURE as f64);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::field(
            "temperature",
            format!("temperature: must be between 0 and 2, got {temperature}"),
        ));
    }
    let defaults = SamplerConfig::default();
    let top_p = p.top_p.unwrap_or(defaults.top_p as f64);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::field(
            "top_p",
            format!("top_p: must be in (0, 1], got {top_p}"),
        ));
    }
    let top_k = match p.top_k {
        Some(k) if k < 0 => {
            return Err(ApiError::field(
                "top_k",
                format!("top_k: must be 0 (off) or more, got {k}"),
            ));
        }
        Some(k) => usize::try_from(k).unwrap_or(usize::MAX),
        None => defaults.top_k,
    };
    let stop: Vec<String> = match p.stop {
        None => Vec::new(),
        Some(Stop::One(s)) => vec![s],
        Some(Stop::Many(v)) => v,
    };
    if stop.len() > MAX_STOPS {
        return Err(ApiError::field(
            "stop",
            format!("stop: at most {MAX_STOPS} stop strings, got {}", stop.len()),
        ));
    }
    Ok(GenParams {
        max_tokens,
        sampling: SamplerConfig {
            temperature: temperature as f32,
            top_k,
            top_p: top_p as f32,
            seed: p.seed.map_or_else(fresh_seed, |s| s as u64),
        },
        stop: stop.into_iter().filter(|s| !s.is_empty()).collect(),
        stream: p.stream.unwrap_or(false),
        include_usage: p
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
    })
}

/// A seed for a request that gave none: different for every request.
fn fresh_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ COUNTER
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The chat messages (text content only).
pub fn chat_messages(v: &Value) -> Result<Vec<ChatMessage>, ApiError> {
    let body: ChatBody = typed(v)?;
    if body.messages.is_empty() {
        return Err(ApiError::field(
            "messages",
            "messages: must contain at least one message",
        ));
    }
    let mut out = Vec::with_capacity(body.messages.len());
    for (i, m) in body.messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "user" | "assistant" | "tool" => m.role,
            // OpenAI's newer name for system instructions.
            "developer" => "system".to_string(),
            other => {
                return Err(ApiError::field(
                    &format!("messages[{i}].role"),
                    format!(
                        "messages[{i}].role: {other:?} is not one of system, developer, user, assistant, tool"
                    ),
                ));
            }
        };
        let content = match m.content {
            None => String::new(),
            Some(Content::Text(t)) => t,
            Some(Content::Parts(parts)) => {
                let mut text = String::new();
                for (j, p) in parts.into_iter().enumerate() {
                    match (p.kind.as_str(), p.text) {
                        ("text", Some(t)) => text += &t,
                        (kind, _) => {
                            return Err(ApiError::field(
                                &format!("messages[{i}].content[{j}]"),
                                format!(
                                    "messages[{i}].content[{j}]: only text parts with a `text` field are supported, got type {kind:?}"
                                ),
                            ));
                        }
                    }
                }
                text
            }
        };
        out.push(ChatMessage { role, content });
    }
    Ok(out)
}

/// The completion prompt (one string).
pub fn completion_prompt(v: &Value) -> Result<String, ApiError> {
    let body: CompletionBody = typed(v)?;
    match body.prompt {
        Prompt::One(s) => Ok(s),
        Prompt::Many(mut v) if v.len() == 1 => Ok(v.remove(0)),
        Prompt::Many(v) => Err(ApiError::field(
            "prompt",
            format!(
                "prompt: one prompt per request is supported, got {}",
                v.len()
            ),
        )),
    }
}

/// Which endpoint a response is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completion,
}

/// What every response and chunk of one request shares.
#[derive(Clone, Debug)]
pub struct Meta {
    pub endpoint: Endpoint,
    pub id: String,
    pub created: u64,
    pub model: String,
}

pub fn usage(o: &Outcome) -> Value {
    json!({
        "prompt_tokens": o.prompt_tokens,
        "completion_tokens": o.completion_tokens,
        "total_tokens": o.prompt_tokens + o.completion_tokens,
    })
}

/// The whole (non-streamed) response.
pub fn response(m: &Meta, text: &str, o: &Outcome) -> Value {
    let choice = match m.endpoint {
        Endpoint::Chat => json!({
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": null,
            "finish_reason": o.finish.as_str(),
        }),
        Endpoint::Completion => json!({
            "index": 0,
            "text": text,
            "logprobs": null,
            "finish_reason": o.finish.as_str(),
        }),
    };
    json!({
        "id": m.id,
        "object": match m.endpoint {
            Endpoint::Chat => "chat.completion",
            Endpoint::Completion => "text_completion",
        },
        "created": m.created,
        "model": m.model,
        "choices": [choice],
        "usage": usage(o),
    })
}

/// One stream chunk: `text` (chat: the first chunk carries the role), and the finish
/// reason on the last one.
pub fn chunk(m: &Meta, text: Option<&str>, first: bool, finish: Option<&str>) -> Value {
    let choice = match m.endpoint {
        Endpoint::Chat => {
            let mut delta = serde_json::Map::new();
            if first {
                delta.insert("role".into(), json!("assistant"));
            }
            if let Some(t) = text {
                delta.insert("content".into(), json!(t));
            }
            json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish})
        }
        Endpoint::Completion => {
            json!({"index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": finish})
        }
    };
    chunk_with(m, vec![choice])
}

/// The chunk after the last choice when the client asked for usage in streams.
pub fn usage_chunk(m: &Meta, o: &Outcome) -> Value {
    let mut c = chunk_with(m, vec![]);
    c["usage"] = usage(o);
    c
}

fn chunk_with(m: &Meta, choices: Vec<Value>) -> Value {
    json!({
        "id": m.id,
        "object": match m.endpoint {
            Endpoint::Chat => "chat.completion.chunk",
            Endpoint::Completion => "text_completion",
        },
        "created": m.created,
        "model": m.model,
        "choices": choices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> ApiError {
        let v = parse_object(body.as_bytes()).unwrap();
        gen_params(&v)
            .and_then(|_| chat_messages(&v).map(|_| ()))
            .unwrap_err()
    }

    #[test]
    fn errors_name_the_field() {
        for (body, param, says) in [
            (
                r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":-3}"#,
                "max_tokens",
                "at least 1",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"max_tokens":"9"}"#,
                "max_tokens",
                "invalid type",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"temperature":2.5}"#,
                "temperature",
                "between 0 and 2",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"top_p":0}"#,
                "top_p",
                "(0, 1]",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"top_k":-1}"#,
                "top_k",
                "0 (off)",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]}"#,
                "stop",
                "at most 4",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"stop":7}"#,
                "stop",
                "wrong type",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"n":2}"#,
                "n",
                "one choice",
            ),
            (
                r#"{"messages":[{"role":"user","content":"x"}],"stream":"yes"}"#,
                "stream",
                "invalid type",
            ),
            (r#"{"max_tokens":3}"#, "messages", "missing field"),
            (r#"{"messages":[]}"#, "messages", "at least one"),
            (
                r#"{"messages":[{"role":"wizard","content":"x"}]}"#,
                "messages[0].role",
                "not one of",
            ),
            (
                r#"{"messages":[{"content":"x"}]}"#,
                "messages[0].role",
                "missing field",
            ),
            (
                r#"{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#,
                "messages[0].content[0]",
                "only text",
            ),
        ] {
            let e = err(body);
            assert_eq!(
                (e.status, e.param.as_deref()),
                (400, Some(param)),
                "{body}: {e:?}"
            );
            assert!(e.message.contains(says), "{body}: {}", e.message);
        }
    }

    #[test]
    fn malformed_and_non_object_bodies_are_400() {
        assert!(
            parse_object(b"{\"messages\": [")
                .unwrap_err()
                .message
                .contains("malformed JSON")
        );
        assert!(
            parse_object(b"[1,2]")
                .unwrap_err()
                .message
                .contains("JSON object")
        );
    }

    #[test]
    fn valid_request_maps_to_sampler_settings() {
        let v = parse_object(
            br#"{"model":"m","messages":[{"role":"developer","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
                 "max_completion_tokens":5,"temperature":0,"seed":-1,"stop":"\n","stream":true,"stream_options":{"include_usage":true}}"#,
        )
        .unwrap();
        let p = gen_params(&v).unwrap();
        assert_eq!(p.max_tokens, Some(5));
        assert_eq!((p.sampling.temperature, p.sampling.seed), (0.0, u64::MAX));
        assert_eq!(p.stop, ["\n"]);
        assert!(p.stream && p.include_usage);
        assert_eq!(
            chat_messages(&v).unwrap(),
            [ChatMessage::new("system", "ab")]
        );
        assert!(check_model(&v, "m").is_ok());
        assert_eq!(
            check_model(&v, "other").unwrap_err().param.as_deref(),
            Some("model")
        );
    }
}
