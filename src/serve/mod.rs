//! `graphrun serve`: an OpenAI-compatible HTTP server (chat and text completions, streamed
//! or not) over any `BatchEngine`.
//!
//! Two sides joined by channels: the HTTP side (`http`: axum on a small tokio runtime)
//! parses, validates and tokenizes requests and admits them (`engine::Gauges`); one engine
//! thread (`engine`) owns the executor and runs every active sequence in one batched
//! decode step, streaming text back per request. `api` is the wire format, `template` the
//! model's chat template, `stop` stop strings.

pub mod api;
pub mod engine;
pub mod http;
pub mod stop;
pub mod template;

use crate::error::{Error, Result};
use crate::exec::BatchEngine;
use crate::tokenizer::Tokenizer;
use engine::{Gauges, Msg};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use template::ChatTemplate;

pub struct Config {
    pub host: String,
    /// 0 picks a free port (the log line says which).
    pub port: u16,
    /// The name clients use for the model (`GET /v1/models`).
    pub model_id: String,
    /// KV-cache slots: sequences decoded together. The engine must have this many.
    pub parallel: usize,
    /// Requests that may wait for a slot; more get 429.
    pub queue: usize,
}

/// Serves until SIGINT or SIGTERM. `make_engine` runs on the engine thread, which owns the
/// executor for its whole life.
pub fn serve<'m, F>(
    cfg: &Config,
    tk: Tokenizer,
    template: Option<ChatTemplate>,
    make_engine: F,
) -> Result<()>
where
    F: FnOnce() -> Result<Box<dyn BatchEngine + 'm>> + Send + 'm,
{
    if cfg.parallel == 0 {
        return Err(Error::invalid("--parallel must be at least 1"));
    }
    let tk = Arc::new(tk);
    let gauges = Gauges::new(cfg.parallel, cfg.queue);
    let (jobs, jobs_rx) = std::sync::mpsc::channel::<Msg>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        let (tk_e, g_e) = (tk.clone(), gauges.clone());
        s.spawn(move || {
            let eng = match make_engine() {
                Ok(e) if e.n_slots() != g_e.slots => {
                    let msg = format!(
                        "the {} engine has {} slots, --parallel asks for {}",
                        e.name(),
                        e.n_slots(),
                        g_e.slots
                    );
                    ready_tx.send(Err(Error::invalid(msg))).ok();
                    return;
                }
                Ok(e) => e,
                Err(e) => {
                    ready_tx.send(Err(e)).ok();
                    return;
                }
            };
            ready_tx.send(Ok((eng.name(), eng.n_ctx()))).ok();
            engine::run(eng, &tk_e, jobs_rx, &g_e);
        });
        let (engine_name, n_ctx) = ready_rx
            .recv()
            .map_err(|_| Error::invalid("the engine thread stopped while starting"))??;
        let app = Arc::new(http::App {
            model_id: cfg.model_id.clone(),
            tk,
            template,
            n_ctx,
            gauges: gauges.clone(),
            jobs: jobs.clone(),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            next_id: AtomicU64::new(1),
        });
        let summary = format!(
            "model {} on {engine_name}, {} slots x {n_ctx} positions, queue {}",
            cfg.model_id, cfg.parallel, cfg.queue
        );
        // When this returns, every sender is gone and the engine thread ends too.
        run_http(cfg, app, &gauges, jobs, &summary)
    })
}

/// Runs the HTTP server on a small tokio runtime until a signal, then shuts down: no new
/// connections, waiting requests refused, active ones given `SHUTDOWN_GRACE` to finish.
fn run_http(
    cfg: &Config,
    app: Arc<http::App>,
    gauges: &Arc<Gauges>,
    jobs: std::sync::mpsc::Sender<Msg>,
    summary: &str,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::invalid(format!("starting the HTTP runtime: {e}")))?;
    let addr = format!("{}:{}", cfg.host, cfg.port);
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| Error::invalid(format!("--host/--port: cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::invalid(format!("{addr}: {e}")))?;
        eprintln!("graphrun serve: listening on http://{local} ({summary})");
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let g = gauges.clone();
        let shutdown = async move {
            let why = signal().await;
            eprintln!(
                "graphrun serve: {why}: shutting down (waiting requests refused, active ones get {} s to finish)",
                engine::SHUTDOWN_GRACE.as_secs()
            );
            g.begin_shutdown();
            jobs.send(Msg::Wake).ok();
            stop_tx.send(true).ok();
        };
        let server = axum::serve(listener, http::router(app)).with_graceful_shutdown(shutdown);
        // Connections that stay open (a client that never finishes its request) do not
        // hold the shutdown beyond the grace period and a few seconds.
        let limit = async {
            while !*stop_rx.borrow() {
                if stop_rx.changed().await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(engine::SHUTDOWN_GRACE + std::time::Duration::from_secs(3)).await;
        };
        tokio::select! {
            r = server => r.map_err(|e| Error::invalid(format!("HTTP server: {e}")))?,
            _ = limit => eprintln!("graphrun serve: closing connections still open after the grace period"),
        }
        eprintln!("graphrun serve: stopped");
        Ok(())
    })
}

/// Waits for SIGINT or SIGTERM; returns its name.
async fn signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without signal handlers the server runs until killed.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}
