//! Batched decode over several sequences (`BatchEngine`, what `graphrun serve --parallel N`
//! runs on the GPU): each sequence owns a KV-cache slot (rows s·n_ctx.. of every layer's
//! cache); a step takes one new token for each of up to `MAX_BATCH` sequences and runs them
//! as one chunk of B rows through the decode schedule — the fused groups of `graphrun run`
//! — so every weight matrix is read once per step for all of them:
//! - a fused group's matvec-family kernel is its batched twin (kernels/matvec_batch.cu) for
//!   B > 1 and itself for B = 1; both sum a row in the same order, so every sequence's
//!   logits are the bits the single-sequence decode gives it, whatever else is in the batch;
//! - the Q/K/V group, RoPE, the KV append and attention take each row's position and cache
//!   slot from `scratch.seq` (`[B][2]`: position, first cache row); attention is the decode
//!   kernel with a grid layer per row (kernels/attention.cu); unfused nodes (`--no-fuse`, a
//!   faulted node) take the prefill kernels (`sched::batched_kernels`);
//! - the step is captured as a CUDA graph per batch size on its second use (tokens and
//!   `seq` are read from device memory, so the graph replays for any slots and positions).
//!
//! A sequence joins with `prefill` and leaves with `release`. A prompt of at most `n_slots`
//! tokens (a step's rows are the decode arena's, one per slot) joins as one batched step of
//! a row a token, at positions 0..T of its slot: each row's attention reads the slot's cache
//! up to its own position, so the rows are the causal prompt. The single-sequence prefill
//! GEMM, tiled for long prompts, made the last of 8 streams started at once wait 0.30 s for
//! its first token on the 7B (0.05 s joined in one step; evidence/h200/batched-short-prefill/).
//! Longer prompts take the single-sequence path, run in the slot. With one slot (`serve
//! --parallel 1`) a sequence is always alone, and prefills and decodes through the
//! single-sequence path (as `graphrun run` does).

use super::CudaEngine;
use super::device::cuda_err;
use crate::error::{Error, Result};
use crate::exec::{BatchEngine, Engine, NoObserver, check_picks, check_step};
use crate::sample::{SamplerConfig, sample, sample_rows};
use crate::sched::Phase;
use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};

/// Most sequences one batched step carries (the batched kernels' register arrays).
pub const MAX_BATCH: usize = crate::codegen::catalogue::MATVEC_MAX_BATCH as usize;

impl CudaEngine<'_> {
    fn check_slot(&self, slot: usize) -> Result<()> {
        if slot >= self.n_slots {
            return Err(Error::invalid(format!(
                "KV-cache slot {slot} does not exist ({} slots)",
                self.n_slots
            )));
        }
        Ok(())
    }

    /// Device address of the batched step's per-row `seq` table, 0 outside one.
    pub(super) fn seq_ptr(&self) -> u64 {
        if self.batched {
            self.ptr(&self.scratch.seq)
        } else {
            0
        }
    }

    /// The kernels of one batched step of `b` rows (tokens and `seq` already uploaded):
    /// every group of the decode schedule, logits for all rows.
    fn batch_kernels(&mut self, b: usize) -> Result<()> {
        self.quantized = None; // captured once, replayed: decide from a clean state
        for gi in 0..self.sched(Phase::Decode).groups.len() {
            self.run_group(Phase::Decode, gi, b, &(0..b))?;
        }
        Ok(())
    }

    /// Runs the step's kernels: directly on a batch size's first step (which also loads
    /// any kernel not loaded yet), through its captured CUDA graph after that.
    fn batch_launch(&mut self, b: usize) -> Result<()> {
        if self.batch_graphs[b].is_none() && self.batch_runs[b] > 0 {
            let stream = self.dev.stream.clone();
            stream
                .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
                .map_err(cuda_err("starting graph capture"))?;
            let r = self.batch_kernels(b);
            let g = stream
                .end_capture(CUgraphInstantiate_flags(0))
                .map_err(cuda_err("capturing a batched decode step"))?;
            r?;
            self.batch_graphs[b] = g;
        }
        self.batch_runs[b] += 1;
        match &self.batch_graphs[b] {
            Some(g) => g
                .launch()
                .map_err(cuda_err("replaying a batched decode step")),
            None => self.batch_kernels(b),
        }
    }
}

/// What a step's caller wants: the logits, the greedy tokens, or tokens drawn with a
/// (configuration, draw) per row.
#[derive(Clone, Copy)]
enum Want<'a> {
    Logits,
    Greedy,
    Sample(&'a [(SamplerConfig, f64)]),
}

/// What `batch_step` left: a batched step of `b` rows whose logits are on the device, or
/// the one-slot engine's logits (`Single`) or token (`Tokens`).
enum Stepped {
    Batch(usize),
    Single(Vec<f32>),
    Tokens(Vec<u32>),
}

impl CudaEngine<'_> {
    /// One decode step for `batch` (`BatchEngine::decode`'s checks). With one slot the
    /// sequence takes the single-sequence decode (the captured graph ending in the device
    /// argmax or sampler where `want` allows); otherwise the batched step runs and leaves
    /// its logits on the device.
    fn batch_step(&mut self, batch: &[(usize, u32)], want: Want) -> Result<Stepped> {
        let b = batch.len();
        if b == 0 {
            return Ok(match want {
                Want::Logits => Stepped::Single(Vec::new()),
                _ => Stepped::Tokens(Vec::new()),
            });
        }
        if b > self.n_slots {
            return Err(Error::invalid(format!(
                "{b} sequences in one step; the engine has {} slots",
                self.n_slots
            )));
        }
        if self.n_slots == 1 {
            // One slot: no other sequence can ever share the step, so the sequence takes the
            // single-sequence decode `graphrun run` takes (the fused groups, or the
            // persistent kernel), the same logits as `run`.
            let (slot, token) = batch[0];
            self.check_slot(slot)?;
            if self.slot_pos[0] == 0 {
                return Err(Error::invalid("slot 0 holds no sequence: prefill it first"));
            }
            self.pos = self.slot_pos[0];
            let r = match want {
                Want::Logits => {
                    Engine::step(self, &[token], 0..1, &mut NoObserver).map(Stepped::Single)
                }
                Want::Sample(p) if !p[0].0.is_greedy() => {
                    let (cfg, u) = &p[0];
                    match Engine::step_sample(self, token, cfg, *u, &mut NoObserver) {
                        Some(r) => r.map(|t| Stepped::Tokens(vec![t])),
                        None => Engine::step(self, &[token], 0..1, &mut NoObserver)
                            .map(|l| Stepped::Tokens(vec![sample(&l, cfg, *u)])),
                    }
                }
                Want::Greedy | Want::Sample(_) => {
                    Engine::step_argmax(self, &[token], &mut NoObserver)
                        .map(|t| Stepped::Tokens(vec![t]))
                }
            };
            self.slot_pos[0] = self.pos;
            return r;
        }
        let mut seen = vec![false; self.n_slots];
        let mut seq = Vec::with_capacity(2 * b);
        for &(slot, token) in batch {
            self.check_slot(slot)?;
            if std::mem::replace(&mut seen[slot], true) {
                return Err(Error::invalid(format!(
                    "slot {slot} appears twice in one step"
                )));
            }
            let pos = self.slot_pos[slot];
            if pos == 0 {
                return Err(Error::invalid(format!(
                    "slot {slot} holds no sequence: prefill it first"
                )));
            }
            check_step(&[token], &(0..1), pos, self.n_ctx, self.graph.n_tokens())?;
            seq.extend([pos as i32, (slot * self.n_ctx) as i32]);
        }
        let ids: Vec<i32> = batch.iter().map(|&(_, t)| t as i32).collect();
        self.upload_rows(&ids, &seq)?;
        self.batched = true;
        let r = self.batch_launch(b);
        self.batched = false;
        r?;
        for &(slot, _) in batch {
            self.slot_pos[slot] += 1;
        }
        self.pos = self.slot_pos[0];
        Ok(Stepped::Batch(b))
    }

    /// Uploads a batched step's rows: `ids` (a token each) and `seq` (a position and first
    /// cache row each).
    fn upload_rows(&mut self, ids: &[i32], seq: &[i32]) -> Result<()> {
        let b = ids.len();
        debug_assert!((1..=MAX_BATCH).contains(&b) && seq.len() == 2 * b);
        let s = &mut self.scratch;
        self.dev
            .stream
            .memcpy_htod(ids, &mut s.tokens.slice_mut(0..b))
            .map_err(cuda_err("uploading tokens"))?;
        self.dev
            .stream
            .memcpy_htod(seq, &mut s.seq.slice_mut(0..2 * b))
            .map_err(cuda_err("uploading the batch's positions"))
    }

    /// A prompt of at most `n_slots` tokens into `slot` as one batched step, row i its
    /// token i at position i: the logits of its last token. The step's kernels launch
    /// directly, without programmatic serialization (`joining`), not from the captured
    /// graphs of the decode steps.
    fn prefill_rows(&mut self, slot: usize, tokens: &[u32]) -> Result<Vec<f32>> {
        let t = tokens.len();
        check_step(tokens, &(t - 1..t), 0, self.n_ctx, self.graph.n_tokens())?;
        let ids: Vec<i32> = tokens.iter().map(|&x| x as i32).collect();
        let seq: Vec<i32> = (0..t)
            .flat_map(|i| [i as i32, (slot * self.n_ctx) as i32])
            .collect();
        self.slot_pos[slot] = 0;
        self.upload_rows(&ids, &seq)?;
        (self.batched, self.joining) = (true, true);
        let r = self.batch_kernels(t);
        (self.batched, self.joining) = (false, false);
        r?;
        self.slot_pos[slot] = t;
        self.pos = self.slot_pos[0];
        let vocab = self.vocab();
        self.read_logits((t - 1) * vocab..t * vocab)
    }

    /// The greedy token of each of the `b` logit rows on the device (kernels/argmax.cu,
    /// one launch for every row), 4 bytes a row back.
    fn device_argmax(&mut self, b: usize) -> Result<Vec<u32>> {
        self.argmax_launch(b, false)?;
        let mut out = vec![0i32; b];
        self.dev
            .stream
            .memcpy_dtoh(&self.scratch.amax.slice(0..b), &mut out)
            .map_err(cuda_err("reading the greedy tokens"))?;
        Ok(out.into_iter().map(|t| t as u32).collect())
    }

    /// Each of the `b` logit rows' token drawn on the device with its (configuration,
    /// draw) (kernels/argmax.cu `sample`, one launch for every row), 4 bytes a row back.
    fn device_sample(
        &mut self,
        batch: &[(usize, u32)],
        picks: &[(SamplerConfig, f64)],
    ) -> Result<Vec<u32>> {
        let (b, vocab) = (batch.len(), self.vocab());
        self.upload_sample_params(picks)?;
        self.sample_launch(vocab, b, false)?;
        let mut out = vec![0i32; b];
        self.dev
            .stream
            .memcpy_dtoh(&self.scratch.amax.slice(0..b), &mut out)
            .map_err(cuda_err("reading the sampled tokens"))?;
        out.into_iter()
            .zip(batch)
            .map(|(t, &(slot, _))| match t as u32 {
                t if (t as usize) < vocab => Ok(t),
                _ => Err(Error::invalid(format!(
                    "the device sampler met a non-finite logit (NaN or Inf) among the candidates of slot {slot}"
                ))),
            })
            .collect()
    }
}

impl BatchEngine for CudaEngine<'_> {
    fn n_slots(&self) -> usize {
        self.n_slots
    }
    fn n_ctx(&self) -> usize {
        self.n_ctx
    }
    fn name(&self) -> &'static str {
        Engine::name(self)
    }

    fn prefill(&mut self, slot: usize, tokens: &[u32]) -> Result<Vec<f32>> {
        self.check_slot(slot)?;
        if slot != 0 && self.persistent.is_some() {
            return Err(Error::invalid(
                "the persistent decode kernel runs one sequence (slot 0); use --decode-kernel graph for several",
            ));
        }
        let t = tokens.len();
        // A step's rows fit the decode arena's row per slot.
        if self.n_slots > 1 && (1..=self.n_slots).contains(&t) {
            return self.prefill_rows(slot, tokens);
        }
        self.slot_pos[slot] = 0;
        self.slot = slot;
        self.pos = 0;
        let r = Engine::step(self, tokens, t.saturating_sub(1)..t, &mut NoObserver);
        self.slot_pos[slot] = if r.is_ok() { self.pos } else { 0 };
        self.slot = 0;
        self.pos = self.slot_pos[0];
        r
    }

    fn decode(&mut self, batch: &[(usize, u32)]) -> Result<Vec<f32>> {
        match self.batch_step(batch, Want::Logits)? {
            Stepped::Batch(b) => {
                let vocab = self.vocab();
                self.read_logits(0..b * vocab)
            }
            Stepped::Single(out) => Ok(out),
            Stepped::Tokens(_) => unreachable!("logits were asked for"),
        }
    }

    fn decode_greedy(&mut self, batch: &[(usize, u32)]) -> Result<Vec<u32>> {
        match self.batch_step(batch, Want::Greedy)? {
            Stepped::Batch(b) => self.device_argmax(b),
            Stepped::Tokens(t) => Ok(t),
            Stepped::Single(_) => unreachable!("tokens were asked for"),
        }
    }

    fn decode_sample(
        &mut self,
        batch: &[(usize, u32)],
        picks: &[(SamplerConfig, f64)],
    ) -> Result<Vec<u32>> {
        check_picks(batch, picks)?;
        match self.batch_step(batch, Want::Sample(picks))? {
            Stepped::Batch(_)
                if picks
                    .iter()
                    .all(|(c, _)| c.is_greedy() || self.samples_on_device(c)) =>
            {
                self.device_sample(batch, picks)
            }
            Stepped::Batch(b) => {
                let vocab = self.vocab();
                Ok(sample_rows(&self.read_logits(0..b * vocab)?, picks))
            }
            Stepped::Tokens(t) => Ok(t),
            Stepped::Single(_) => unreachable!("tokens were asked for"),
        }
    }

    fn release(&mut self, slot: usize) {
        if slot < self.n_slots {
            self.slot_pos[slot] = 0;
            if slot == 0 {
                self.pos = 0;
            }
        }
    }
}
