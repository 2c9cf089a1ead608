//! A step on the device: a chunk of rows through the prefill or decode schedule (with the
//! observer seeing every group's output), the decode step captured once as a CUDA graph
//! and replayed, and the readback of group outputs for traces. One-row steps go to the
//! persistent kernel when it is in use (persistent/).

use super::args::{ArgmaxArgs, SampleArgs};
use super::device::cuda_err;
use super::geometry::prep_merge_fits;
use super::{CudaEngine, phase_index};
use crate::codegen::KernelId;
use crate::codegen::catalogue::{
    ARGMAX_CTAS, SAMPLE_MAX_CTAS, SAMPLE_MAX_K, SAMPLE_SLICE, SAMPLE_THREADS,
};
use crate::error::{Error, Result};
use crate::exec::Observer;
use crate::graph::{KvKind, NodeId};
use crate::sample::SamplerConfig;
use crate::sched::{GroupKind, Phase, deferrable_merges};
use cudarc::driver::CudaGraph;
use cudarc::driver::sys::{CUgraphInstantiate_flags, CUstreamCaptureMode};
use std::ops::Range;

/// The device sampler's answer for a step whose top `top_k` held a non-finite logit (the id
/// past the vocabulary it gives then), at `pos`.
pub(super) fn sampler_non_finite(top_k: usize, pos: usize) -> Error {
    Error::invalid(format!(
        "the device sampler met a non-finite logit (NaN or Inf) among the top {top_k} at position {pos}"
    ))
}

/// How a captured decode step ends.
#[derive(Clone, Copy)]
pub(super) enum Tail {
    Argmax,
    Sample,
}

impl CudaEngine<'_> {
    /// Uploads the step's token ids and the position of its first row.
    pub(super) fn upload_step(&mut self, toks: &[u32]) -> Result<()> {
        let ids: Vec<i32> = toks.iter().map(|&x| x as i32).collect();
        let s = &mut self.scratch;
        self.dev
            .stream
            .memcpy_htod(&ids, &mut s.tokens.slice_mut(0..ids.len()))
            .map_err(cuda_err("uploading tokens"))?;
        self.dev
            .stream
            .memcpy_htod(&[self.pos as i32], &mut s.pos)
            .map_err(cuda_err("uploading the position"))
    }

    /// Runs one chunk (≤ UBATCH rows) at the current position; `lrows` = the logit rows
    /// asked for (None: the output node is skipped).
    pub(super) fn run_chunk(
        &mut self,
        toks: &[u32],
        lrows: Option<Range<usize>>,
        obs: &mut dyn Observer,
    ) -> Result<()> {
        let t = toks.len();
        self.quantized = None; // a new step: new activations
        if t == 1 && self.persistent.is_some() {
            return self.persistent_chunk(toks, obs);
        }
        self.upload_step(toks)?;
        let phase = if t == 1 {
            Phase::Decode
        } else {
            Phase::Prefill
        };
        let out = self.graph.output();
        let want = obs.wants_data();
        for gi in 0..self.sched(phase).groups.len() {
            let Some((rows, lr)) = self.group_rows(phase, gi, t, &lrows) else {
                continue;
            };
            let ran = self.run_group(phase, gi, rows, &lr).and_then(|()| {
                if want {
                    self.group_output(phase, gi, rows, &lr).map(Some)
                } else {
                    Ok(None)
                }
            });
            let row0 = std::mem::take(&mut self.row0);
            if let Some((id, rows, mut data)) = ran? {
                let first = self.pos + row0 + if id == out { lr.start } else { 0 };
                let s = self.sched(phase);
                let gr = &s.groups[gi];
                if s.fused && gr.nodes.len() > 1 {
                    obs.group(Some(&gr.kernel_names()), &gr.nodes);
                } else {
                    obs.group(None, &[id]);
                }
                obs.node_done(id, self.graph.node(id), first, rows, &mut data)?;
            }
        }
        Ok(())
    }

    /// The rows group `gi` runs at in a chunk of `t` rows whose logit rows are `lrows`,
    /// and the logit rows it is given; None when the chunk skips it. The output tail runs at
    /// the logit rows alone, from row `row0` (set here; the caller takes it back) of every
    /// value it reads and writes; the rest at every row.
    pub(super) fn group_rows(
        &mut self,
        phase: Phase,
        gi: usize,
        t: usize,
        lrows: &Option<Range<usize>>,
    ) -> Option<(usize, Range<usize>)> {
        let covers_out = || {
            self.sched(phase).groups[gi]
                .nodes
                .contains(&self.graph.output())
        };
        match (lrows, self.in_tail(phase, gi)) {
            (None, true) => None,
            (Some(r), true) => {
                self.row0 = r.start;
                Some((r.len(), 0..r.len()))
            }
            (None, false) if covers_out() => None,
            (r, false) => Some((t, r.clone().unwrap_or(0..0))),
        }
    }

    /// Decode step through the captured CUDA graph: token → fused kernels → argmax.
    pub(super) fn decode_graph_step(&mut self, token: u32) -> Result<u32> {
        if self.persistent.is_some() {
            return self.persistent_token(token);
        }
        self.upload_step(&[token])?;
        self.replay(Tail::Argmax)?;
        let tok = self.read_token()?;
        self.pos += 1;
        Ok(tok)
    }

    /// Whether a one-token step with `cfg` can sample on the device (`sample_launch`):
    /// sampled (not greedy), 1 < top-k ≤ SAMPLE_MAX_K, a vocabulary the sampler's merge
    /// holds, the graph decode path (the persistent kernel ends in its own argmax), and not
    /// turned off by GRAPHRUN_DEVICE_SAMPLING=0 (the host samples the step's logits then,
    /// with the same draw: the A/B and parity reference).
    pub fn samples_on_device(&self, cfg: &SamplerConfig) -> bool {
        let vocab = self.vocab();
        !cfg.is_greedy()
            && (2..=SAMPLE_MAX_K as usize).contains(&cfg.top_k)
            && cfg.top_k <= vocab
            && vocab <= (SAMPLE_MAX_CTAS * SAMPLE_SLICE) as usize
            && self.persistent.is_none()
            && self.device_sampling
    }

    /// Decode step through the captured CUDA graph that ends in the device sampler: token
    /// → fused kernels → `sample` with the draw `u`. The caller checked
    /// `samples_on_device(cfg)`.
    pub(super) fn decode_sample_step(
        &mut self,
        token: u32,
        cfg: &SamplerConfig,
        u: f64,
    ) -> Result<u32> {
        self.upload_step(&[token])?;
        self.upload_sample_params(&[(cfg.clone(), u)])?;
        self.replay(Tail::Sample)?;
        let tok = self.read_token()?;
        let vocab = self.vocab();
        if tok as usize >= vocab {
            return Err(sampler_non_finite(cfg.top_k, self.pos));
        }
        self.pos += 1;
        Ok(tok)
    }

    /// The device sampler's parameters for the next launch, a (configuration, draw) per
    /// row (`SampleParams`, kernels/argmax.cu); a greedy configuration becomes top-k 1 (the
    /// largest logit, lowest id on ties).
    pub(super) fn upload_sample_params(&mut self, picks: &[(SamplerConfig, f64)]) -> Result<()> {
        let params: Vec<u64> = picks
            .iter()
            .flat_map(|(cfg, u)| {
                let (t, p, k) = match cfg.is_greedy() {
                    true => (1.0f32, 1.0f32, 1),
                    false => (cfg.temperature, cfg.top_p, cfg.top_k),
                };
                [
                    u.to_bits(),
                    t.to_bits() as u64 | (p.to_bits() as u64) << 32,
                    k as u64,
                ]
            })
            .collect();
        self.dev
            .stream
            .memcpy_htod(
                &params,
                &mut self.scratch.sample_params.slice_mut(0..params.len()),
            )
            .map_err(cuda_err("uploading the sampler's parameters"))
    }

    /// The device sampler alone over `logits` (at most the vocabulary's length; `cfg` must
    /// satisfy `samples_on_device`, checked here): the token it picks with the draw `u`.
    /// For the sampler's own tests (tests/gpu_sample.rs): crafted rows with ties, signed
    /// zeros, lengths around the CTA slice.
    pub fn sample_row(&mut self, logits: &[f32], cfg: &SamplerConfig, u: f64) -> Result<u32> {
        let vocab = self.vocab();
        if logits.len() > vocab || logits.len() < cfg.top_k || !self.samples_on_device(cfg) {
            return Err(Error::invalid(format!(
                "sample_row: {} logits (vocabulary {vocab}) with {cfg:?} do not fit the device sampler",
                logits.len()
            )));
        }
        self.dev
            .stream
            .memcpy_htod(logits, &mut self.logits.slice_mut(0..logits.len()))
            .map_err(cuda_err("uploading logits"))?;
        self.upload_sample_params(&[(cfg.clone(), u)])?;
        self.sample_launch(logits.len(), 1, false)?;
        self.read_token()
    }

    /// Where the decode step's graph ending in `tail` is kept.
    fn graph_slot(&mut self, tail: Tail) -> &mut Option<CudaGraph> {
        match tail {
            Tail::Argmax => &mut self.decode_graph,
            Tail::Sample => &mut self.sample_graph,
        }
    }

    /// Replays the decode step's graph ending in `tail`, capturing it on first use.
    pub(super) fn replay(&mut self, tail: Tail) -> Result<()> {
        if self.graph_slot(tail).is_none() {
            let stream = self.dev.stream.clone();
            stream
                .begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
                .map_err(cuda_err("starting graph capture"))?;
            let r = self.decode_kernels(tail);
            let g = stream
                .end_capture(CUgraphInstantiate_flags(0))
                .map_err(cuda_err("capturing the decode graph"))?;
            r?;
            *self.graph_slot(tail) = g;
        }
        self.graph_slot(tail)
            .as_ref()
            .ok_or_else(|| Error::invalid("CUDA graph capture produced no graph"))?
            .launch()
            .map_err(cuda_err("replaying the decode graph"))
    }

    /// The step's token (`scratch.amax[0]`, written by the argmax or the sampler).
    fn read_token(&self) -> Result<u32> {
        let mut out = [0i32];
        self.dev
            .stream
            .memcpy_dtoh(&self.scratch.amax.slice(0..1), &mut out)
            .map_err(cuda_err("reading the token"))?;
        Ok(out[0] as u32)
    }

    /// Every group of the decode schedule, then the device argmax or sampler; the
    /// attention merges `deferred_merges` names are left to the attn_out matvecs' `prep`.
    fn decode_kernels(&mut self, tail: Tail) -> Result<()> {
        self.quantized = None; // captured once, replayed: decide from a clean state
        self.defer_merge = self.deferred_merges();
        let r = self.decode_launches(tail);
        self.defer_merge.clear();
        let left = self.merge_pending.take();
        r?;
        match left {
            Some(_) => Err(Error::invalid(
                "internal: a deferred attention merge was never run (no prep took its output)",
            )),
            None => Ok(()),
        }
    }

    fn decode_launches(&mut self, tail: Tail) -> Result<()> {
        for gi in 0..self.sched(Phase::Decode).groups.len() {
            self.run_group(Phase::Decode, gi, 1, &(0..1))?;
        }
        match tail {
            Tail::Argmax => self.argmax_launch(1, true),
            Tail::Sample => self.sample_launch(self.vocab(), 1, true),
        }
    }

    /// The decode attention nodes whose merge the next launch takes over
    /// (`sched::deferrable_merges`) where the geometry fits prep's CTAs (`prep_merge_fits`).
    /// Only the captured decode step defers: observed steps (traces read the attention
    /// group's output) and `--profile` keep the merging CTA. GRAPHRUN_DEFER_MERGE=0 turns it
    /// off (the same-binary A/B).
    fn deferred_merges(&self) -> Vec<NodeId> {
        if self.batched || std::env::var("GRAPHRUN_DEFER_MERGE").is_ok_and(|v| v == "0") {
            return Vec::new();
        }
        let n_split = self.scratch.att.n_split as usize;
        deferrable_merges(&self.graph, self.sched(Phase::Decode))
            .into_iter()
            .filter(|&(_, hd)| prep_merge_fits(hd, n_split))
            .map(|(a, _)| a)
            .collect()
    }

    /// The device sampler over `rows` logit rows of `vocab` logits into `scratch.amax[..rows]`
    /// (kernels/argmax.cu), with the parameters in `scratch.sample_params`; `chain`: the end
    /// of a one-row decode step, which also feeds its token to the next step (`chain_args`).
    pub(super) fn sample_launch(&mut self, vocab: usize, rows: usize, chain: bool) -> Result<()> {
        let (chain_pos, chain_tokens, chain_ring) = self.chain_args(chain);
        let a = SampleArgs {
            x: self.ptr(&self.logits),
            out: self.ptr(&self.scratch.amax),
            n: vocab as i32,
            pad: 0,
            part: self.ptr(&self.scratch.sample_part),
            params: self.ptr(&self.scratch.sample_params),
            chain_pos,
            chain_tokens,
            chain_ring,
        };
        let ctas = vocab.div_ceil(SAMPLE_SLICE as usize) as u32;
        self.launch(KernelId::Sample, (ctas, rows as u32), SAMPLE_THREADS, 0, a)
    }

    /// The logits of the last step's first `rows` rows, as the device left them (the device
    /// sampler's input, for checking it against the host's `sample::sample`).
    pub fn last_logits(&self, rows: usize) -> Result<Vec<f32>> {
        self.read_logits(0..rows * self.vocab())
    }

    /// The device argmax of logit rows 0..rows into `scratch.amax[0..rows]`, one launch
    /// (kernels/argmax.cu: a grid layer a row, each with its own scratch).
    pub(super) fn argmax_launch(&mut self, rows: usize, chain: bool) -> Result<()> {
        debug_assert!((1..=super::batch::MAX_BATCH).contains(&rows) && (!chain || rows == 1));
        let (chain_pos, chain_tokens, chain_ring) = self.chain_args(chain);
        let a = ArgmaxArgs {
            x: self.ptr(&self.logits),
            out: self.ptr(&self.scratch.amax),
            n: self.vocab() as i32,
            pad: 0,
            part: self.ptr(&self.scratch.amax_part),
            chain_pos,
            chain_tokens,
            chain_ring,
        };
        self.launch(KernelId::Argmax, (ARGMAX_CTAS, rows as u32), 256, 0, a)
    }

    /// The chain pointers of a token-choosing launch (`chain_advance`, kernels/argmax.cuh):
    /// the position, the token ids and the host ring for the end of the captured one-row
    /// decode step (every replay feeds its token to the next and advances the position; the
    /// step-by-step callers upload both before each replay anyway, chain.rs relies on it);
    /// zeros for every other launch.
    fn chain_args(&self, chain: bool) -> (u64, u64, u64) {
        match chain {
            true => (
                self.ptr(&self.scratch.pos),
                self.ptr(&self.scratch.tokens),
                self.chain_ring.dev,
            ),
            false => (0, 0, 0),
        }
    }

    /// The logits at `range` (row r of a step at r·vocab).
    pub(super) fn read_logits(&self, range: Range<usize>) -> Result<Vec<f32>> {
        let mut host = vec![0.0f32; range.len()];
        self.dev
            .stream
            .memcpy_dtoh(&self.logits.slice(range), &mut host)
            .map_err(cuda_err("reading logits"))?;
        Ok(host)
    }

    /// Copies the output of group `gi` (its last node) to the host: (node, rows, values).
    fn group_output(
        &mut self,
        phase: Phase,
        gi: usize,
        t: usize,
        lrows: &Range<usize>,
    ) -> Result<(NodeId, usize, Vec<f32>)> {
        let gr = &self.scheds[phase_index(phase)].groups[gi];
        let out = gr.output();
        let n = self.graph.node(out);
        let rows = if out == self.graph.output() {
            lrows.len()
        } else {
            t
        };
        let len = rows * n.width;
        let mut host = vec![0.0f32; len];
        self.dev.sync()?;
        let offset = self.plans[phase_index(phase)].offset[out.index()];
        // The fused QKV groups (decode) and Q/K/V tails (prefill) end in the V-cache
        // append: their output is the cache rows.
        if let GroupKind::Qkv { v_cache, .. } | GroupKind::QkvPost { v_cache, .. } = &gr.kind {
            let layer = self.graph.node(*v_cache).layer.expect("a block node");
            let at = self.pos * n.width;
            return Ok((
                out,
                rows,
                self.cache_values(layer, KvKind::V, at..at + len)?,
            ));
        }
        let view = match offset {
            _ if out == self.graph.output() => self.logits.slice(0..len),
            Some(off) => {
                let off = off + self.row0 * n.width;
                self.arenas[phase_index(phase)].slice(off..off + len)
            }
            None => {
                return Err(Error::invalid(format!(
                    "group {} has no readable output",
                    gr.name
                )));
            }
        };
        self.dev
            .stream
            .memcpy_dtoh(&view, &mut host)
            .map_err(cuda_err("reading a trace"))?;
        Ok((out, rows, host))
    }
}
