//! The HTTP side (axum on tokio): routes, body reading with a size and time limit,
//! admission (429 when every slot is busy and the queue is full), and turning the engine's
//! events into a JSON response or a server-sent-event stream.

use super::api::{self, ApiError, Endpoint, GenParams, Meta};
use super::engine::{Event, Failure, Gauges, Job, Msg};
use super::template::{ChatTemplate, chat_prompt_ids};
use crate::tokenizer::Tokenizer;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

/// Largest request body accepted (a full context of text is far smaller).
pub const MAX_BODY_BYTES: usize = 4 << 20;
/// Time a client has to send its whole body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// A comment line on idle streams (queued requests), so a client that left is noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(1);

/// What the handlers share.
pub struct App {
    pub model_id: String,
    pub tk: Arc<Tokenizer>,
    pub template: Option<ChatTemplate>,
    pub n_ctx: usize,
    pub gauges: Arc<Gauges>,
    pub jobs: std::sync::mpsc::Sender<Msg>,
    pub created: u64,
    pub next_id: AtomicU64,
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(wrong_method)
        .with_state(app)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut r = (status, axum::Json(self.body())).into_response();
        if self.status == 429 {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        r
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        404,
        "no such route; this server has POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health",
    )
}

async fn wrong_method() -> ApiError {
    ApiError::new(
        405,
        "wrong method: the completion routes take POST, /v1/models and /health take GET",
    )
}

async fn health(State(app): State<Arc<App>>) -> axum::Json<Value> {
    let g = &app.gauges;
    axum::Json(json!({
        "status": if g.shutting_down() { "shutting_down" } else { "ok" },
        "slots_total": g.slots,
        "slots_free": g.free_slots(),
        "queued": g.waiting(),
        "queue_capacity": g.queue,
    }))
}

async fn models(State(app): State<Arc<App>>) -> axum::Json<Value> {
    axum::Json(json!({
        "object": "list",
        "data": [{
            "id": app.model_id,
            "object": "model",
            "created": app.created,
            "owned_by": "graphrun",
            "context_length": app.n_ctx,
        }],
    }))
}

async fn chat(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    handle(app, headers, body, Endpoint::Chat).await
}

async fn completions(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    handle(app, headers, body, Endpoint::Completion).await
}

async fn handle(app: Arc<App>, headers: HeaderMap, body: Body, ep: Endpoint) -> Response {
    let received = Instant::now();
    let prepared = match read_body(&headers, body).await {
        // Tokenizing a long prompt is CPU work: keep it off the async workers.
        Ok(bytes) => {
            let app = app.clone();
            tokio::task::spawn_blocking(move || prepare(&app, &bytes, ep))
                .await
                .unwrap_or_else(|e| {
                    Err(ApiError::new(500, format!("request handling failed: {e}")))
                })
        }
        Err(e) => Err(e),
    };
    match prepared {
        Ok((prompt, params)) => submit(app, prompt, params, ep, received).await,
        Err(e) => refuse(ep, e),
    }
}

/// The error response for a request that never reached the engine, logged in one line.
fn refuse(ep: Endpoint, e: ApiError) -> Response {
    let path = match ep {
        Endpoint::Chat => "/v1/chat/completions",
        Endpoint::Completion => "/v1/completions",
    };
    eprintln!(
        "graphrun serve: POST {path} refused with {}: {}",
        e.status, e.message
    );
    e.into_response()
}

/// The body, at most `MAX_BODY_BYTES`, within `BODY_TIMEOUT`.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            413,
            format!("request body larger than {MAX_BODY_BYTES} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let read = async {
        let mut stream = body.into_data_stream();
        let mut buf = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::new(400, format!("could not read the request body: {e}")))?;
            if buf.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| {
            ApiError::new(
                408,
                format!(
                    "the request body did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            )
        })?
}

/// Parses and validates a request: the prompt's token ids and the generation settings
/// (`max_tokens` limited to the context left).
fn prepare(app: &App, body: &[u8], ep: Endpoint) -> Result<(Vec<u32>, GenParams), ApiError> {
    let v = api::parse_object(body)?;
    api::check_model(&v, &app.model_id)?;
    let mut params = api::gen_params(&v)?;
    let (prompt, field) = match ep {
        Endpoint::Chat => {
            let msgs = api::chat_messages(&v)?;
            let template = app.template.as_ref().ok_or_else(|| {
                ApiError::field(
                    "messages",
                    "this model has no chat template (tokenizer.chat_template); use /v1/completions",
                )
            })?;
            let text = template.render(&msgs).map_err(|e| {
                ApiError::field("messages", format!("messages: the chat template says: {e}"))
            })?;
            (chat_prompt_ids(&app.tk, &text), "messages")
        }
        Endpoint::Completion => {
            let text = api::completion_prompt(&v)?;
            let mut ids = Vec::new();
            if app.tk.add_bos
                && let Some(b) = app.tk.bos
            {
                ids.push(b);
            }
            ids.extend(app.tk.encode(&text, true));
            (ids, "prompt")
        }
    };
    if prompt.is_empty() {
        return Err(ApiError::field(
            field,
            format!("{field}: the prompt is empty"),
        ));
    }
    if prompt.len() >= app.n_ctx {
        return Err(ApiError::field(
            field,
            format!(
                "{field}: the prompt is {} tokens; the context holds {} positions per sequence, leaving no room to generate (start the server with a larger --ctx)",
                prompt.len(),
                app.n_ctx
            ),
        ));
    }
    let room = app.n_ctx - prompt.len();
    params.max_tokens = Some(params.max_tokens.map_or(room, |m| m.min(room)));
    Ok((prompt, params))
}

/// Hands the request to the engine and answers with its events.
async fn submit(
    app: Arc<App>,
    prompt: Vec<u32>,
    params: GenParams,
    ep: Endpoint,
    received: Instant,
) -> Response {
    if app.gauges.shutting_down() {
        return refuse(ep, ApiError::new(503, "the server is shutting down"));
    }
    let Some(ticket) = app.gauges.admit() else {
        let msg = format!(
            "the server is busy: all {} slots are in use and {} requests are waiting (the queue is full); retry later",
            app.gauges.slots, app.gauges.queue
        );
        return refuse(ep, ApiError::new(429, msg));
    };
    let n = app.next_id.fetch_add(1, Ordering::Relaxed);
    let meta = Meta {
        endpoint: ep,
        id: match ep {
            Endpoint::Chat => format!("chatcmpl-{n}"),
            Endpoint::Completion => format!("cmpl-{n}"),
        },
        created: unix_now(),
        model: app.model_id.clone(),
    };
    let (tx, rx) = unbounded_channel();
    let job = Job {
        id: meta.id.clone(),
        prompt,
        max_tokens: params.max_tokens.unwrap_or(1),
        sampling: params.sampling.clone(),
        stop: params.stop.clone(),
        events: tx,
        received,
        ticket,
    };
    if app.jobs.send(Msg::Job(Box::new(job))).is_err() {
        return refuse(ep, ApiError::new(503, "the engine has stopped"));
    }
    if params.stream {
        stream(meta, rx, params.include_usage).into_response()
    } else {
        collect(meta, rx).await
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn failure(f: Failure) -> ApiError {
    ApiError::new(if f.unavailable { 503 } else { 500 }, f.message)
}

/// A non-streamed answer: all text, then one JSON response.
async fn collect(meta: Meta, mut rx: UnboundedReceiver<Event>) -> Response {
    let mut text = String::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Text(t) => text += &t,
            Event::Done(o) => return axum::Json(api::response(&meta, &text, &o)).into_response(),
            Event::Failed(f) => return failure(f).into_response(),
        }
    }
    ApiError::new(500, "the engine stopped before the request finished").into_response()
}

/// A streamed answer: one SSE `data:` chunk per piece of text, the finish reason, usage
/// when asked for, then `data: [DONE]`. An error after the stream has started is sent as
/// an `error` object in a `data:` line.
fn stream(
    meta: Meta,
    rx: UnboundedReceiver<Event>,
    include_usage: bool,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    struct St {
        meta: Meta,
        rx: UnboundedReceiver<Event>,
        pending: VecDeque<SseEvent>,
        first: bool,
        done: bool,
        include_usage: bool,
    }
    let data = |v: Value| SseEvent::default().data(v.to_string());
    let mut st = St {
        pending: VecDeque::new(),
        first: true,
        done: false,
        include_usage,
        meta,
        rx,
    };
    // The chat stream opens with the assistant role at once, before the prompt is run.
    if st.meta.endpoint == Endpoint::Chat {
        st.pending
            .push_back(data(api::chunk(&st.meta, Some(""), true, None)));
        st.first = false;
    }
    let events = futures_util::stream::unfold(st, move |mut st| async move {
        loop {
            if let Some(e) = st.pending.pop_front() {
                return Some((Ok(e), st));
            }
            if st.done {
                return None;
            }
            match st.rx.recv().await {
                Some(Event::Text(t)) => {
                    let c = api::chunk(&st.meta, Some(&t), st.first, None);
                    st.first = false;
                    st.pending.push_back(data(c));
                }
                Some(Event::Done(o)) => {
                    let c = api::chunk(&st.meta, None, st.first, Some(o.finish.as_str()));
                    st.pending.push_back(data(c));
                    if st.include_usage {
                        st.pending.push_back(data(api::usage_chunk(&st.meta, &o)));
                    }
                    st.pending.push_back(SseEvent::default().data("[DONE]"));
                    st.done = true;
                }
                Some(Event::Failed(f)) => {
                    st.pending.push_back(data(failure(f).body()));
                    st.done = true;
                }
                None => {
                    let e = ApiError::new(500, "the engine stopped before the request finished");
                    st.pending.push_back(data(e.body()));
                    st.done = true;
                }
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}
