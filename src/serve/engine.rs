//! The engine thread: it alone owns the executor (a `BatchEngine`). Between steps it
//! admits waiting requests into free KV-cache slots (prefill + first token); each step
//! decodes one token for every active sequence in one batched call; each row is sampled
//! with its own request's sampler and its text sent back on that request's channel.
//! A request whose client went away (its channel closed) gives its slot back before the
//! next step.

use super::stop::StopMatcher;
use crate::exec::BatchEngine;
use crate::generate::{Sampler, SamplerConfig};
use crate::tokenizer::{StreamDecoder, Tokenizer};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// How long active sequences may keep running after a shutdown signal before they are cut.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// One generation request, tokenized and validated.
pub struct Job {
    pub id: String,
    pub prompt: Vec<u32>,
    /// At least 1; the HTTP side has already limited it to the context left.
    pub max_tokens: usize,
    pub sampling: SamplerConfig,
    /// Non-empty stop strings.
    pub stop: Vec<String>,
    pub events: UnboundedSender<Event>,
    pub received: Instant,
    /// The request's place in the server, given back when the job is dropped.
    pub ticket: Ticket,
}

/// What the engine tells a request.
#[derive(Debug)]
pub enum Event {
    /// More generated text (never empty).
    Text(String),
    Done(Outcome),
    Failed(Failure),
}

/// Why a request ended without finishing.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    /// True when the server is shutting down (HTTP 503), false for an executor error (500).
    pub unavailable: bool,
}

impl Failure {
    fn shutdown(message: &str) -> Event {
        Event::Failed(Failure {
            message: message.to_string(),
            unavailable: true,
        })
    }

    fn error(e: &crate::Error) -> Event {
        Event::Failed(Failure {
            message: e.to_string(),
            unavailable: false,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// End-of-generation token or a stop string.
    Stop,
    /// `max_tokens` reached.
    Length,
}

impl Finish {
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Outcome {
    pub finish: Finish,
    pub prompt_tokens: usize,
    /// Tokens the model generated, an end-of-generation token included.
    pub completion_tokens: usize,
}

pub enum Msg {
    Job(Box<Job>),
    /// Wakes an idle engine to notice `Gauges::shutting_down`.
    Wake,
}

/// State shared between the HTTP side and the engine thread.
pub struct Gauges {
    pub slots: usize,
    /// Requests that may wait for a slot beyond the active ones.
    pub queue: usize,
    /// Requests in the server (active + waiting), each holding a `Ticket`.
    admitted: AtomicUsize,
    /// Sequences holding a slot.
    busy: AtomicUsize,
    shutting_down: AtomicBool,
}

impl Gauges {
    pub fn new(slots: usize, queue: usize) -> Arc<Gauges> {
        Arc::new(Gauges {
            slots,
            queue,
            admitted: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
        })
    }

    /// A place for one more request, or None when every slot is busy and the queue full.
    pub fn admit(self: &Arc<Self>) -> Option<Ticket> {
        let cap = self.slots + self.queue;
        self.admitted
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()
            .map(|_| Ticket(self.clone()))
    }

    pub fn free_slots(&self) -> usize {
        self.slots - self.busy.load(Ordering::SeqCst).min(self.slots)
    }

    /// Requests admitted but not yet holding a slot.
    pub fn waiting(&self) -> usize {
        self.admitted
            .load(Ordering::SeqCst)
            .saturating_sub(self.busy.load(Ordering::SeqCst))
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// A request's place in the server; dropping it frees the place.
pub struct Ticket(Arc<Gauges>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A sequence holding a slot.
struct Seq {
    job: Box<Job>,
    slot: usize,
    sampler: Sampler,
    /// The token to feed at the next step.
    next: u32,
    generated: usize,
    decoder: StreamDecoder,
    stop: StopMatcher,
    first_token: Instant,
}

/// What became of a sequence after a token.
enum After {
    Continue,
    Finished(Finish),
    /// The client is gone.
    Gone,
}

impl Seq {
    /// Takes the sampled token: streams its text, decides whether the sequence ends.
    fn accept(&mut self, tok: u32, tk: &Tokenizer) -> After {
        self.generated += 1;
        if tk.is_end_of_generation(tok) {
            return self.flush(Finish::Stop);
        }
        let piece = self.decoder.push(&tk.token_bytes(tok, false));
        let (text, stopped) = self.stop.push(&piece);
        if !self.send_text(text) {
            return After::Gone;
        }
        if stopped {
            return After::Finished(Finish::Stop);
        }
        if self.generated >= self.job.max_tokens {
            return self.flush(Finish::Length);
        }
        self.next = tok;
        After::Continue
    }

    /// Ends without a stop string: sends what the decoder and the stop matcher held back
    /// (which may still complete a stop string).
    fn flush(&mut self, finish: Finish) -> After {
        let (text, stopped) = self.stop.push(&self.decoder.finish());
        let rest = if stopped {
            String::new()
        } else {
            self.stop.flush()
        };
        if self.send_text(text + &rest) {
            After::Finished(finish)
        } else {
            After::Gone
        }
    }

    fn send_text(&self, text: String) -> bool {
        text.is_empty() || self.job.events.send(Event::Text(text)).is_ok()
    }
}

/// The engine loop; returns when the channel closes, or after a shutdown once no sequence
/// is left.
pub fn run(mut eng: Box<dyn BatchEngine + '_>, tk: &Tokenizer, rx: Receiver<Msg>, g: &Gauges) {
    let mut free: Vec<usize> = (0..eng.n_slots()).rev().collect();
    let mut active: Vec<Seq> = Vec::new();
    let mut deadline: Option<Instant> = None;
    loop {
        // Clients that went away give their slots back before anything else runs.
        let (gone, kept): (Vec<Seq>, Vec<Seq>) =
            active.drain(..).partition(|s| s.job.events.is_closed());
        active = kept;
        for s in gone {
            end(s, None, eng.as_mut(), &mut free, g);
        }
        if g.shutting_down() {
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + SHUTDOWN_GRACE);
            reject_waiting(&rx, "the server is shutting down");
            if Instant::now() >= deadline {
                for s in active.drain(..) {
                    let msg = "the server shut down before the request finished";
                    s.job.events.send(Failure::shutdown(msg)).ok();
                    end(s, None, eng.as_mut(), &mut free, g);
                }
            }
            if active.is_empty() {
                return;
            }
        } else {
            while !free.is_empty() {
                let msg = if active.is_empty() {
                    match rx.recv() {
                        Ok(m) => m,
                        Err(_) => return,
                    }
                } else {
                    match rx.try_recv() {
                        Ok(m) => m,
                        Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                    }
                };
                match msg {
                    Msg::Wake => break,
                    Msg::Job(job) => {
                        if let Some(s) = start(job, eng.as_mut(), tk, &mut free, g) {
                            active.push(s);
                        }
                    }
                }
            }
        }
        if active.is_empty() {
            continue;
        }
        let batch: Vec<(usize, u32)> = active.iter().map(|s| (s.slot, s.next)).collect();
        // The engine picks the tokens: all greedy, by argmax; otherwise each sampling
        // sequence's next draw goes with its configuration (on the GPU, both on the device:
        // 4 bytes a row come back).
        let tokens = if active.iter().all(|s| s.sampler.is_greedy()) {
            eng.decode_greedy(&batch)
        } else {
            let picks: Vec<_> = active
                .iter_mut()
                .map(|s| {
                    let u = if s.sampler.is_greedy() {
                        0.0
                    } else {
                        s.sampler.draw()
                    };
                    (s.sampler.config().clone(), u)
                })
                .collect();
            eng.decode_sample(&batch, &picks)
        };
        let tokens = match tokens {
            Ok(t) => t,
            Err(e) => {
                eprintln!("graphrun serve: decode step failed: {e}");
                for s in active.drain(..) {
                    s.job.events.send(Failure::error(&e)).ok();
                    end(s, None, eng.as_mut(), &mut free, g);
                }
                continue;
            }
        };
        let mut next = Vec::with_capacity(active.len());
        for (mut s, tok) in active.drain(..).zip(tokens) {
            match s.accept(tok, tk) {
                After::Continue => next.push(s),
                After::Finished(f) => end(s, Some(f), eng.as_mut(), &mut free, g),
                After::Gone => end(s, None, eng.as_mut(), &mut free, g),
            }
        }
        active = next;
    }
}

/// Fails every request still waiting in the channel.
fn reject_waiting(rx: &Receiver<Msg>, why: &str) {
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Job(job) = msg {
            job.events.send(Failure::shutdown(why)).ok();
        }
    }
}

/// Gives `job` a slot: prefill, first token. None when it is already finished (or failed,
/// or its client left while it waited).
fn start(
    job: Box<Job>,
    eng: &mut dyn BatchEngine,
    tk: &Tokenizer,
    free: &mut Vec<usize>,
    g: &Gauges,
) -> Option<Seq> {
    if job.events.is_closed() {
        eprintln!(
            "graphrun serve: {} cancelled while waiting: client disconnected",
            job.id
        );
        return None;
    }
    let sampler = match Sampler::new(job.sampling.clone()) {
        Ok(s) => s,
        Err(e) => {
            job.events.send(Failure::error(&e)).ok();
            return None;
        }
    };
    let slot = free.pop().expect("start is called with a free slot");
    g.busy.fetch_add(1, Ordering::SeqCst);
    let logits = eng.prefill(slot, &job.prompt);
    let mut s = Seq {
        stop: StopMatcher::new(job.stop.clone()),
        job,
        slot,
        sampler,
        next: 0,
        generated: 0,
        decoder: StreamDecoder::default(),
        first_token: Instant::now(),
    };
    let logits = match logits {
        Ok(l) => l,
        Err(e) => {
            eprintln!("graphrun serve: {}: prefill failed: {e}", s.job.id);
            s.job.events.send(Failure::error(&e)).ok();
            end(s, None, eng, free, g);
            return None;
        }
    };
    let tok = s.sampler.sample(&logits);
    s.first_token = Instant::now();
    match s.accept(tok, tk) {
        After::Continue => Some(s),
        After::Finished(f) => {
            end(s, Some(f), eng, free, g);
            None
        }
        After::Gone => {
            end(s, None, eng, free, g);
            None
        }
    }
}

/// Frees the sequence's slot and place, logs the request, and sends `Done` when it
/// finished (`None`: cancelled or failed; the client has been told or is gone).
fn end(
    s: Seq,
    finish: Option<Finish>,
    eng: &mut dyn BatchEngine,
    free: &mut Vec<usize>,
    g: &Gauges,
) {
    eng.release(s.slot);
    free.push(s.slot);
    g.busy.fetch_sub(1, Ordering::SeqCst);
    let now = Instant::now();
    let ttft = s.first_token.duration_since(s.job.received).as_secs_f64() * 1e3;
    let decode = now.duration_since(s.first_token).as_secs_f64();
    let rate = if s.generated > 1 && decode > 0.0 {
        format!("{:.1} tok/s", (s.generated - 1) as f64 / decode)
    } else {
        "- tok/s".to_string()
    };
    let how = match finish {
        Some(f) => f.as_str(),
        None if s.job.events.is_closed() => "cancelled (client disconnected)",
        None => "ended early (error or shutdown)",
    };
    eprintln!(
        "graphrun serve: {} prompt {} tokens, generated {} tokens, ttft {ttft:.0} ms, {rate}, {how}",
        s.job.id,
        s.job.prompt.len(),
        s.generated
    );
    let outcome = Outcome {
        finish: finish.unwrap_or(Finish::Stop),
        prompt_tokens: s.job.prompt.len(),
        completion_tokens: s.generated,
    };
    let Seq { job, .. } = s;
    let Job { events, ticket, .. } = *job;
    // The place is free before the client hears that its request is done.
    drop(ticket);
    if finish.is_some() {
        events.send(Event::Done(outcome)).ok();
    }
}
