//! Executors: run a lowered graph. `interp` is the CPU reference interpreter (unfused,
//! node by node); the CUDA executor runs the fused schedule.

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
