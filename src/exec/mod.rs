//! Executors: run a lowered graph. `interp` is the CPU reference interpreter (unfused,
//! node by node); the CUDA executor runs the fused schedule. `Engine` is what a single
//! sequence needs (run, trace, perplexity); `BatchEngine` is several sequences decoded
//! together (serve).

pub mod cuda;
pub mod gpu_probe;
pub mod interp;

use crate::error::{Error, Result};
use crate::graph::{Node, NodeId};

/// Which executor ran (recorded in traces, chosen between in `graphrun diff`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Executor {
    /// The CPU reference interpreter.
    Interp,
    /// The CUDA executor.
    Cuda,
}

impl Executor {
    pub fn name(self) -> &'static str {
        match self {
            Executor::Interp => "interp",
            Executor::Cuda => "cuda",
        }
    }
}

/// Sees every node's output right after it is computed (tracing, fault injection).
/// `pos` is the position of the first of the `rows` rows in `data` (`[rows, node.width]`).
pub trait Observer {
    fn node_done(
        &mut self,
        id: NodeId,
        node: &Node,
        pos: usize,
        rows: usize,
        data: &mut [f32],
    ) -> Result<()>;
    /// Called by the engine at the start of each `step` (before any node of it), so a
    /// prefill that an executor runs in several chunks stays one step.
    fn step_start(&mut self) {}
    /// False when the observer ignores the data (lets the GPU skip copies and replay its
    /// captured decode graph).
    fn wants_data(&self) -> bool {
        true
    }
    /// Called before `node_done` by executors that run kernel groups: the kernel(s) of the
    /// group whose output follows and the graph nodes it covers (None: one node, unfused).
    fn group(&mut self, _kernel: Option<&str>, _covers: &[NodeId]) {}
}

/// An observer that does nothing.
pub struct NoObserver;

impl Observer for NoObserver {
    fn node_done(&mut self, _: NodeId, _: &Node, _: usize, _: usize, _: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn wants_data(&self) -> bool {
        false
    }
}

/// The checks every executor makes before a step of `tokens` at position `pos`: at least
/// one token, room in the context, logit rows inside the step, token ids inside the
/// vocabulary (so no kernel or op can index the embedding out of range).
pub fn check_step(
    tokens: &[u32],
    logit_rows: &std::ops::Range<usize>,
    pos: usize,
    n_ctx: usize,
    vocab: usize,
) -> Result<()> {
    let t = tokens.len();
    if t == 0 {
        return Err(Error::invalid("a step needs at least one token"));
    }
    if pos.checked_add(t).is_none_or(|end| end > n_ctx) {
        return Err(Error::invalid(format!(
            "context length exceeded: {pos} positions used + {t} new tokens > context size {n_ctx} (raise --ctx)"
        )));
    }
    if logit_rows.start >= logit_rows.end || logit_rows.end > t {
        return Err(Error::invalid(format!(
            "logit rows {logit_rows:?} outside the step's {t} rows"
        )));
    }
    if let Some(&bad) = tokens.iter().find(|&&x| x as usize >= vocab) {
        return Err(Error::invalid(format!(
            "token id {bad} is outside the vocabulary ({vocab} tokens)"
        )));
    }
    Ok(())
}

/// What generation and perplexity need from an executor (CPU interpreter or GPU).
pub trait Engine {
    /// Runs `tokens` at the next positions; returns logits for the step rows in `logit_rows`.
    fn step(
        &mut self,
        tokens: &[u32],
        logit_rows: std::ops::Range<usize>,
        obs: &mut dyn Observer,
    ) -> Result<Vec<f32>>;
    /// Clears the KV cache.
    fn reset(&mut self);
    /// Positions already in the KV cache.
    fn pos(&self) -> usize;
    /// Maximum positions.
    fn n_ctx(&self) -> usize;
    /// Which executor this is.
    fn executor(&self) -> Executor;
    /// Short name for messages (`interp`, `cuda`).
    fn name(&self) -> &'static str {
        self.executor().name()
    }
    /// The GPU decode kernel in use (`graph`, `persistent`); None for the interpreter.
    fn decode_kernel(&self) -> Option<&'static str> {
        None
    }
    /// One step, returning the greedy token of the last row; non-finite logits are an error.
    /// The CUDA executor overrides it: a one-token step whose observer wants no data takes
    /// the argmax on the device (which never picks NaN, but does not report it either; an
    /// observer that checks, as under `--trace`, sees every node), other steps the host's
    /// checked `greedy_token`.
    fn step_argmax(&mut self, tokens: &[u32], obs: &mut dyn Observer) -> Result<u32> {
        let logits = self.step(tokens, tokens.len() - 1..tokens.len(), obs)?;
        crate::numerics::greedy_token(&logits)
    }
    /// One decode step of `token` that samples the next token on the executor with `cfg`
    /// and the uniform draw `u` (`sample::sample`, run there); None where the executor
    /// does not (the caller then samples the step's logits on the host with the same
    /// draw). The CUDA executor does so in its captured decode graph when the observer
    /// wants no data and `samples_on_device(cfg)`.
    fn step_sample(
        &mut self,
        _token: u32,
        _cfg: &crate::sample::SamplerConfig,
        _u: f64,
        _obs: &mut dyn Observer,
    ) -> Option<Result<u32>> {
        None
    }
    /// Up to `n` one-token decode steps after `first`, each fed the token the step before
    /// gave, its token chosen as `generate::next_token` would with `sampler` (the same
    /// draws in the same order, so the same tokens). `on_token` sees each step's token in
    /// order; false stops the run after that token. Returns the steps whose tokens it
    /// passed on; `pos()` then counts exactly those. None where the executor has no loop of
    /// its own (`generate::decode_tokens` then calls `next_token` step by step). The CUDA
    /// executor pipelines the loop: it queues step i + 1 before it reads step i's token
    /// (cuda/chain.rs), so the host's turn between steps is off the device's path.
    fn decode_chain(
        &mut self,
        _first: u32,
        _n: usize,
        _sampler: &mut crate::sample::Sampler,
        _obs: &mut dyn Observer,
        _on_token: &mut dyn FnMut(u32) -> bool,
    ) -> Option<Result<usize>> {
        None
    }
}

impl Engine for interp::Interpreter<'_> {
    fn step(
        &mut self,
        tokens: &[u32],
        logit_rows: std::ops::Range<usize>,
        obs: &mut dyn Observer,
    ) -> Result<Vec<f32>> {
        interp::Interpreter::step(self, tokens, logit_rows, obs)
    }
    fn reset(&mut self) {
        interp::Interpreter::reset(self)
    }
    fn pos(&self) -> usize {
        interp::Interpreter::pos(self)
    }
    fn n_ctx(&self) -> usize {
        interp::Interpreter::n_ctx(self)
    }
    fn executor(&self) -> Executor {
        Executor::Interp
    }
}

/// `decode_sample` takes a (configuration, draw) per row of the step.
pub fn check_picks(
    batch: &[(usize, u32)],
    picks: &[(crate::sample::SamplerConfig, f64)],
) -> Result<()> {
    if batch.len() != picks.len() {
        return Err(Error::invalid(format!(
            "{} sampler picks for a step of {} sequences",
            picks.len(),
            batch.len()
        )));
    }
    Ok(())
}

/// Several independent sequences decoded together (what a server needs). Each sequence owns
/// a KV-cache slot `0..n_slots()`. A decode step takes one new token for each of any subset
/// of the slots, runs them as one batch of rows — every weight matrix is read once per step,
/// however many sequences are in it — and returns one logits row per input row. Sequences
/// join (`prefill`) and leave (`release`) between steps.
///
/// The interpreter (`Interpreter::with_slots`) and the CUDA executor
/// (`CudaEngine::with_slots`, cuda/batch.rs) implement it natively; any other
/// single-sequence `Engine` serves one slot through `OneSlot`.
pub trait BatchEngine {
    /// Number of sequences that can be in flight at once.
    fn n_slots(&self) -> usize;
    /// Positions per slot.
    fn n_ctx(&self) -> usize;
    /// Short name for messages (`interp`, `cuda`).
    fn name(&self) -> &'static str;
    /// Empties `slot` and runs `tokens` in it from position 0; returns the logits of the
    /// last token (`[vocab]`).
    fn prefill(&mut self, slot: usize, tokens: &[u32]) -> Result<Vec<f32>>;
    /// One step: each `(slot, token)` (distinct slots, each prefilled) feeds `token` at that
    /// slot's next position. Returns logits `[batch.len(), vocab]`, row i for `batch[i]`.
    fn decode(&mut self, batch: &[(usize, u32)]) -> Result<Vec<f32>>;
    /// `decode` for sequences that all decode greedily: each row's most likely token
    /// (`numerics::argmax` of its logits). The GPU picks them on the device and copies
    /// back 4 bytes a row instead of the logits (kernels/argmax.cu; on a row of NaNs only
    /// it gives an id past the vocabulary, which the next step refuses, where the host's
    /// argmax gives 0).
    fn decode_greedy(&mut self, batch: &[(usize, u32)]) -> Result<Vec<u32>> {
        let logits = self.decode(batch)?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let vocab = logits.len() / batch.len();
        Ok(logits
            .chunks_exact(vocab)
            .map(|r| crate::numerics::argmax(r) as u32)
            .collect())
    }
    /// `decode`, then row i's token as `sample::sample(logits_i, &picks[i].0, picks[i].1)`
    /// picks it (a greedy configuration: the argmax; the draw is then unused). The GPU
    /// samples on the device when every row's configuration allows (`samples_on_device`, or
    /// greedy) and copies back 4 bytes a row instead of the logits; there a NaN or infinity
    /// among a row's candidates (its top k; a greedy row's largest logit) is an error naming
    /// the slot.
    fn decode_sample(
        &mut self,
        batch: &[(usize, u32)],
        picks: &[(crate::sample::SamplerConfig, f64)],
    ) -> Result<Vec<u32>> {
        check_picks(batch, picks)?;
        let logits = self.decode(batch)?;
        Ok(crate::sample::sample_rows(&logits, picks))
    }
    /// Forgets `slot`'s sequence.
    fn release(&mut self, slot: usize);
}

impl BatchEngine for interp::Interpreter<'_> {
    fn n_slots(&self) -> usize {
        interp::Interpreter::n_slots(self)
    }
    fn n_ctx(&self) -> usize {
        interp::Interpreter::n_ctx(self)
    }
    fn name(&self) -> &'static str {
        Executor::Interp.name()
    }
    fn prefill(&mut self, slot: usize, tokens: &[u32]) -> Result<Vec<f32>> {
        self.reset_slot(slot);
        let t = tokens.len();
        self.step_slot(slot, tokens, t.saturating_sub(1)..t, &mut NoObserver)
    }
    fn decode(&mut self, batch: &[(usize, u32)]) -> Result<Vec<f32>> {
        self.decode_batch(batch, &mut NoObserver)
    }
    fn release(&mut self, slot: usize) {
        self.reset_slot(slot)
    }
}

/// A single-sequence `Engine` as a `BatchEngine` with one slot (slot 0).
pub struct OneSlot<'a>(pub Box<dyn Engine + 'a>);

impl BatchEngine for OneSlot<'_> {
    fn n_slots(&self) -> usize {
        1
    }
    fn n_ctx(&self) -> usize {
        self.0.n_ctx()
    }
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn prefill(&mut self, slot: usize, tokens: &[u32]) -> Result<Vec<f32>> {
        check_one_slot(slot)?;
        self.0.reset();
        let t = tokens.len();
        self.0.step(tokens, t.saturating_sub(1)..t, &mut NoObserver)
    }
    fn decode(&mut self, batch: &[(usize, u32)]) -> Result<Vec<f32>> {
        match batch {
            [(slot, token)] => {
                check_one_slot(*slot)?;
                self.0.step(&[*token], 0..1, &mut NoObserver)
            }
            _ => Err(Error::invalid(format!(
                "{} runs one sequence per step, got {}",
                self.0.name(),
                batch.len()
            ))),
        }
    }
    fn release(&mut self, _slot: usize) {
        self.0.reset()
    }
}

fn check_one_slot(slot: usize) -> Result<()> {
    if slot != 0 {
        return Err(Error::invalid(format!(
            "KV-cache slot {slot} does not exist (1 slot)"
        )));
    }
    Ok(())
}
