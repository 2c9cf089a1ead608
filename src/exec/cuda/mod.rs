//! The CUDA executor: runs the scheduled graph with the generated kernels.
//!
//! - Weights are uploaded once as raw GGML blocks (norm and bias vectors as f32).
//! - The KV cache (f16 or f32, the graph's `KvType`) lives on the device; positions and token ids are read by the kernels
//!   from device memory, so the decode step can be captured once as a CUDA graph and
//!   replayed (`step_argmax`), with greedy argmax on the device (4 bytes back per token).
//! - Decode (T = 1) runs the fused schedule (or one kernel per node with `--no-fuse`);
//!   prefill runs in chunks of `UBATCH` rows, one kernel per node with batched matmuls
//!   except the GEMMs that add the residual in their epilogue (fused; not with `--no-fuse`).
//!
//! Rooms: `device` (context, stream, memory budget), `upload` (weights), `kernels` (module
//! loading and launches by `KernelId`), `geometry` (grid sizes from the device's
//! properties), `ops` (one graph node's kernels), `groups` (fused groups), `step`
//! (a step, the captured decode graph, trace readback), `measure` (profiles, bandwidth),
//! `timeline` (a decode step's launches from a diagnostic build's kernel stamps),
//! `harness` (access for the parity tests), `persistent` (the one-launch decode kernel),
//! `chain` (the pipelined decode loop: step i + 1 queued before step i's token is read),
//! `batch` (several sequences in KV-cache slots decoded in one step: `BatchEngine`).

pub mod args;
mod batch;
mod chain;
mod device;
mod geometry;
mod groups;
mod harness;
mod kernels;
mod measure;
mod ops;
mod persistent;
mod step;
mod timeline;
mod upload;

pub use self::batch::MAX_BATCH;
pub use self::measure::PrefillProfile;
pub use self::persistent::{DecodeKernel, PersistentOptions};
pub use self::timeline::{Launch, Timeline};

use self::device::Device;
use self::geometry::SplitGeom;
use self::kernels::Kernels;
use self::upload::Weights;
use super::{Engine, Observer};
use crate::codegen::catalogue::{
    ARGMAX_CTAS, ATT_MAX_GROUP, ATT_MAX_HD, SAMPLE_MAX_CTAS, SAMPLE_MAX_K,
};
use crate::codegen::{KernelId, Kv};
use crate::error::{Error, Result};
use crate::graph::{Graph, KvKind, NodeId};
use crate::model::ModelFile;
use crate::sample::SamplerConfig;
use crate::sched::{BufferPlan, Phase, Schedule, schedule};
use cudarc::driver::{CudaGraph, CudaSlice};
use std::ops::Range;

/// Rows per prefill chunk. 2,048 rather than 512: a chunk's attention has 16 (row, head)
/// pairs per warp, so at 512 rows the 7B's chunk fills only ~7 warps per SM of an H200
/// however deep the cache (Nsight: 11% achieved occupancy at depth 7,680), and its
/// narrower GEMMs (K/V: 8 × 4 tiles) leave most SMs idle. The price is the prefill arena
/// (~0.6 GB for the 7B shapes) and 2,048 rows of activation staging.
pub const UBATCH: usize = 2048;

/// Options for building the executor.
#[derive(Clone, Debug)]
pub struct CudaOptions {
    pub device: usize,
    pub n_ctx: usize,
    /// Fused schedules (false = one kernel per graph node, `--no-fuse`).
    pub fuse: bool,
    /// Most logit rows one step may ask for (perplexity asks for many).
    pub max_logit_rows: usize,
    pub quiet: bool,
}

/// Device scratch the kernels share: prepared activations, token ids, the position, and
/// the partial results of the multi-CTA reductions.
struct Scratch {
    /// Activation quantization (prefill rows, or the decode row): Q8_0 values/scales, Q8_K
    /// values/scales/block sums.
    q0: CudaSlice<i8>,
    d0: CudaSlice<f32>,
    qk: CudaSlice<i8>,
    dk: CudaSlice<f32>,
    bs: CudaSlice<i32>,
    /// The prepared f32 input of decode matvecs (f32 semantics with a norm prologue), a row
    /// per slot.
    xf: CudaSlice<f32>,
    tokens: CudaSlice<i32>,
    /// A batched decode step's rows: per row its position and its slot's first cache row
    /// (`[MAX_BATCH][2]`, batch.rs).
    seq: CudaSlice<i32>,
    /// The position of the step's first row (read by the kernels, so a captured graph
    /// replays at the current position).
    pos: CudaSlice<i32>,
    /// The greedy token (kernels/argmax.cu; a batched step's, one per row), its partials
    /// and ticket.
    amax: CudaSlice<i32>,
    amax_part: CudaSlice<u32>,
    /// The device sampler's per-CTA candidates and ticket, and its per-step parameters
    /// (`SampleParams` in kernels/argmax.cu: the draw, temperature, top-p, top-k), each per
    /// row of a batched step.
    sample_part: CudaSlice<u64>,
    sample_params: CudaSlice<u64>,
    inv_freq: CudaSlice<f32>,
    /// Decode attention partials `[n_head, n_split, head_dim + 4]`, per-KV-head tickets of
    /// its last-CTA merge (each once per slot, for the rows of a batched step), and its
    /// launch geometry (kernels/attention.cu).
    att_part: CudaSlice<f32>,
    att_ticket: CudaSlice<u32>,
    att: SplitGeom,
}

pub struct CudaEngine<'m> {
    graph: Graph,
    /// Decode and prefill schedules, their buffer plans and arenas (index: `phase_index`).
    scheds: [Schedule; 2],
    plans: [BufferPlan; 2],
    arenas: [CudaSlice<f32>; 2],
    pub fuse: bool,
    dev: Device,
    kernels: Kernels,
    weights: Weights,
    /// Element type of the caches, and per layer the K and V caches `[n_slots·n_ctx,
    /// kv_width]` of that type (as bytes): slot s holds rows s·n_ctx..
    kv: Kv,
    k_cache: Vec<CudaSlice<u8>>,
    v_cache: Vec<CudaSlice<u8>>,
    logits: CudaSlice<f32>,
    max_logit_rows: usize,
    scratch: Scratch,
    /// The position of the sequence in `slot` (the one `Engine::step` runs).
    pos: usize,
    n_ctx: usize,
    /// KV-cache slots (sequences a batched decode step can carry; batch.rs), the slot the
    /// single-sequence path runs in, and every slot's position.
    n_slots: usize,
    slot: usize,
    slot_pos: Vec<usize>,
    /// A batched decode step is running: rows belong to the sequences in `scratch.seq`.
    batched: bool,
    /// A one-step join is running (batch.rs, `prefill_rows`): its rows are one sequence at
    /// consecutive positions, so the cache rows before each row's own are written by this
    /// very step; its kernels launch without programmatic serialization (the decode
    /// attention stages the rows older than a row's own before it waits for the Q/K/V
    /// kernel: final in a decode step, not in a join).
    joining: bool,
    /// Per batch size: its captured step and how many steps it ran (batch.rs).
    batch_graphs: Vec<Option<CudaGraph>>,
    batch_runs: Vec<usize>,
    decode_graph: Option<CudaGraph>,
    /// The same step ending in the device sampler instead of the argmax (step.rs).
    sample_graph: Option<CudaGraph>,
    /// Sampled steps may sample on the device (`samples_on_device`); false with
    /// GRAPHRUN_DEVICE_SAMPLING=0, read once when the engine is built.
    device_sampling: bool,
    /// The host-mapped ring the captured decode step writes its token to, and whether
    /// `decode_chain` pipelines (false with GRAPHRUN_CHAIN=0, read once when the engine is
    /// built: step by step, the A/B reference) (chain.rs).
    chain_ring: chain::ChainRing,
    chain_on: bool,
    /// The persistent decode kernel, when selected and it fits (`set_decode_kernel`).
    persistent: Option<persistent::Persistent>,
    /// What the prefill activation buffers (`scratch.q0`… from `quantize_q8`) hold, so the
    /// matmuls that share an input (Q/K/V, gate/up) quantize it once: (input node, its
    /// pointer, rows, K, legacy layout). Valid within one step only — cleared when a step
    /// starts and whenever another kernel writes those buffers (`prep`).
    quantized: Option<(NodeId, u64, usize, usize, bool)>,
    /// While the decode graph is captured (`decode_kernels`): the attention nodes whose
    /// merge is deferred to the next launch, the attn_out matvec's `prep` (`deferred_merges`).
    /// Empty otherwise: observed steps (traces) and `--profile` keep the merging CTA.
    defer_merge: Vec<NodeId>,
    /// A deferred attention launched and its `prep` has not run yet: the attention output's
    /// pointer (`prep` takes it when its input is that pointer).
    merge_pending: Option<u64>,
    /// The graph's output tail (`Graph::output_tail`): groups of these nodes run at the
    /// step's logit rows only.
    tail: NodeId,
    /// While such a group runs: the step row its first row is (`buf` addresses every value
    /// from there); 0 otherwise.
    row0: usize,
    pub device_name: String,
    /// The engine reads the model only while it is built; the lifetime keeps callers'
    /// `Box<dyn Engine + 'm>` uniform with the interpreter's.
    _model: std::marker::PhantomData<&'m ModelFile>,
}

/// Index of a phase's schedule, plan and arena.
fn phase_index(p: Phase) -> usize {
    match p {
        Phase::Decode => 0,
        Phase::Prefill => 1,
    }
}

impl<'m> CudaEngine<'m> {
    /// Logits per row: the width of the graph's output node.
    pub(super) fn vocab(&self) -> usize {
        self.graph.node(self.graph.output()).width
    }

    pub fn new(model: &'m ModelFile, graph: Graph, opts: &CudaOptions) -> Result<CudaEngine<'m>> {
        Self::with_slots(model, graph, opts, 1)
    }

    /// Like `new`, with `n_slots` KV caches of `opts.n_ctx` positions (1 ..= MAX_BATCH):
    /// sequences decoded together by `BatchEngine::decode` (batch.rs).
    pub fn with_slots(
        model: &'m ModelFile,
        graph: Graph,
        opts: &CudaOptions,
        n_slots: usize,
    ) -> Result<CudaEngine<'m>> {
        if !(1..=batch::MAX_BATCH).contains(&n_slots) {
            return Err(Error::invalid(format!(
                "the GPU executor decodes 1 to {} sequences together; {n_slots} asked for",
                batch::MAX_BATCH
            )));
        }
        let hp = graph.hparams.clone();
        // The attention kernels' limits (kernels/attention.cu).
        if hp.n_head / hp.n_head_kv > ATT_MAX_GROUP as usize
            || hp.head_dim > ATT_MAX_HD as usize
            || !hp.head_dim.is_multiple_of(16)
        {
            return Err(Error::invalid(format!(
                "the GPU attention kernels handle up to {ATT_MAX_GROUP} query heads per KV head and head dims up to {ATT_MAX_HD} (multiple of 16); this model has {} per KV head and head dim {}; use --interp",
                hp.n_head / hp.n_head_kv,
                hp.head_dim
            )));
        }
        let decode = schedule(&graph, Phase::Decode, opts.fuse)
            .map_err(|e| Error::invalid(format!("{}: {e}", model.path)))?;
        let prefill = schedule(&graph, Phase::Prefill, opts.fuse)
            .map_err(|e| Error::invalid(format!("{}: {e}", model.path)))?;
        // The decode arena holds a row per slot: a batched step runs the decode schedule.
        let plans = [decode.plan(&graph, n_slots), prefill.plan(&graph, UBATCH)];
        let dev = Device::open(opts.device)?;

        let vocab = graph.node(graph.output()).width;
        let kvw = hp.n_head_kv * hp.head_dim;
        let kmax = graph
            .nodes()
            .filter(|(_, n)| n.weight.is_some())
            .map(|(_, n)| n.in_width())
            .max()
            .unwrap_or(1);
        let names = upload::weight_names(&graph);
        let weight_bytes = upload::bytes_of(model, &names);
        let kv = Kv::from(graph.kv_type());
        let kv_bytes = 2 * hp.n_layer * n_slots * opts.n_ctx * kvw * kv.bytes();
        let need = weight_bytes as usize
            + kv_bytes
            + (plans[0].total + plans[1].total) * 4
            + opts.max_logit_rows.max(n_slots) * vocab * 4
            + UBATCH * kmax * 2 * 2
            + (1 << 24);
        dev.check_memory(need, weight_bytes as usize, kv_bytes, opts.n_ctx)?;

        // Decode attention: a CTA per (KV head, split), the splits sized from the SM count.
        let group = hp.n_head / hp.n_head_kv;
        let att = geometry::attention_split_geom(
            dev.n_sm,
            hp.n_head_kv,
            group,
            hp.head_dim,
            kv,
            dev.max_smem,
            dev.smem_per_sm,
        )?;
        let scratch = Scratch {
            q0: dev.zeros(UBATCH * kmax)?,
            d0: dev.zeros(UBATCH * kmax / 32)?,
            qk: dev.zeros(UBATCH * kmax)?,
            dk: dev.zeros(UBATCH * kmax / 256 + 1)?,
            bs: dev.zeros(UBATCH * kmax / 16)?,
            xf: dev.zeros(n_slots * kmax)?,
            tokens: dev.zeros(UBATCH)?,
            seq: dev.zeros(2 * batch::MAX_BATCH)?,
            pos: dev.zeros(1)?,
            amax: dev.zeros(batch::MAX_BATCH)?,
            amax_part: dev.zeros(batch::MAX_BATCH * (2 * ARGMAX_CTAS as usize + 1))?,
            sample_part: dev
                .zeros(batch::MAX_BATCH * ((SAMPLE_MAX_CTAS * SAMPLE_MAX_K) as usize + 1))?,
            sample_params: dev.zeros(batch::MAX_BATCH * 3)?,
            inv_freq: dev.upload(&crate::numerics::rope_inv_freq(hp.rope_base, hp.head_dim))?,
            att_part: dev.zeros(n_slots * hp.n_head * att.n_split as usize * (hp.head_dim + 4))?,
            att_ticket: dev.zeros(n_slots * hp.n_head_kv)?,
            att,
        };
        let weights = Weights::upload(&dev, model, &graph, &names, weight_bytes, opts.quiet)?;
        let mut kernels = Kernels::new(dev.arch);
        kernels.load_for(&dev, &[&decode, &prefill], &graph, n_slots > 1)?;
        Ok(CudaEngine {
            arenas: [dev.zeros(plans[0].total)?, dev.zeros(plans[1].total)?],
            plans,
            scheds: [decode, prefill],
            fuse: opts.fuse,
            kernels,
            weights,
            k_cache: (0..hp.n_layer)
                .map(|_| dev.zeros(n_slots * opts.n_ctx * kvw * kv.bytes()))
                .collect::<Result<_>>()?,
            v_cache: (0..hp.n_layer)
                .map(|_| dev.zeros(n_slots * opts.n_ctx * kvw * kv.bytes()))
                .collect::<Result<_>>()?,
            kv,
            logits: dev.zeros(opts.max_logit_rows.max(n_slots) * vocab)?,
            max_logit_rows: opts.max_logit_rows.max(1),
            scratch,
            pos: 0,
            n_ctx: opts.n_ctx,
            n_slots,
            slot: 0,
            slot_pos: vec![0; n_slots],
            batched: false,
            joining: false,
            batch_graphs: (0..=batch::MAX_BATCH).map(|_| None).collect(),
            batch_runs: vec![0; batch::MAX_BATCH + 1],
            decode_graph: None,
            sample_graph: None,
            device_sampling: std::env::var("GRAPHRUN_DEVICE_SAMPLING").map_or(true, |v| v != "0"),
            chain_ring: chain::ChainRing::new(&dev)?,
            chain_on: std::env::var("GRAPHRUN_CHAIN").map_or(true, |v| v != "0"),
            persistent: None,
            quantized: None,
            defer_merge: Vec::new(),
            merge_pending: None,
            tail: graph.output_tail(),
            row0: 0,
            device_name: dev.name.clone(),
            _model: std::marker::PhantomData,
            dev,
            graph,
        })
    }

    /// The decode schedule (what `graphrun dump --stage fused` shows).
    pub fn schedule(&self) -> &Schedule {
        &self.scheds[phase_index(Phase::Decode)]
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    fn sched(&self, p: Phase) -> &Schedule {
        &self.scheds[phase_index(p)]
    }

    // ---- Device addresses ------------------------------------------------------------

    fn ptr<T>(&self, s: &CudaSlice<T>) -> u64 {
        self.dev.ptr(s)
    }

    /// Device address of a node's weight.
    fn wptr(&self, id: NodeId) -> u64 {
        self.weights.ptr(&self.dev, self.graph.node(id))
    }

    /// Device address of an optional node's weight (0 when absent: a bias the model lacks).
    fn wptr_opt(&self, id: Option<NodeId>) -> u64 {
        id.map_or(0, |id| self.wptr(id))
    }

    /// Device address of a node's output buffer in the `phase` schedule's arena (the
    /// logits buffer for the graph output).
    fn buf(&self, phase: Phase, id: NodeId) -> u64 {
        if id == self.graph.output() {
            return self.ptr(&self.logits);
        }
        let off = self.plans[phase_index(phase)].offset[id.index()]
            .unwrap_or_else(|| panic!("node {} has no buffer", self.graph.node(id).name));
        let row0 = self.row0 * self.graph.node(id).width;
        self.ptr(&self.arenas[phase_index(phase)]) + ((off + row0) * 4) as u64
    }

    /// Whether group `gi` of `phase` lies in the output tail: it runs at the logit rows only.
    fn in_tail(&self, phase: Phase, gi: usize) -> bool {
        self.sched(phase).groups[gi]
            .nodes
            .iter()
            .all(|&n| n >= self.tail)
    }

    /// Layer `layer`'s K or V cache, every slot (elements of type `self.kv`).
    fn cache(&self, layer: usize, kind: KvKind) -> &CudaSlice<u8> {
        match kind {
            KvKind::K => &self.k_cache[layer],
            KvKind::V => &self.v_cache[layer],
        }
    }

    /// Bytes of one slot's K or V cache of a layer.
    fn slot_cache_bytes(&self) -> usize {
        let hp = &self.graph.hparams;
        self.n_ctx * hp.n_head_kv * hp.head_dim * self.kv.bytes()
    }

    /// Device address of layer `layer`'s K or V cache of the slot the single-sequence path
    /// runs in (`self.slot`; a batched step addresses every slot from slot 0's rows).
    fn cache_ptr(&self, layer: usize, kind: KvKind) -> u64 {
        let slot = if self.batched { 0 } else { self.slot };
        self.ptr(self.cache(layer, kind)) + (slot * self.slot_cache_bytes()) as u64
    }

    /// Elements `range` of a layer's K or V cache, widened to f32 (exact for f16).
    fn cache_values(&self, layer: usize, kind: KvKind, range: Range<usize>) -> Result<Vec<f32>> {
        let b = self.kv.bytes();
        let at = self.slot * self.slot_cache_bytes() / b;
        let range = range.start + at..range.end + at;
        let mut host = vec![0u8; range.len() * b];
        self.dev
            .stream
            .memcpy_dtoh(
                &self
                    .cache(layer, kind)
                    .slice(range.start * b..range.end * b),
                &mut host,
            )
            .map_err(device::cuda_err("reading the KV cache"))?;
        Ok(match self.kv {
            Kv::F32 => host
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Kv::F16 => host
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        })
    }

    /// Launches `k` (see `Kernels::launch`).
    fn launch<A: cudarc::driver::DeviceRepr>(
        &mut self,
        k: KernelId,
        grid: (u32, u32),
        block: u32,
        smem: u32,
        a: A,
    ) -> Result<()> {
        self.kernels.launch(&self.dev, k, grid, block, smem, a)
    }
}

impl Engine for CudaEngine<'_> {
    fn step(
        &mut self,
        tokens: &[u32],
        logit_rows: Range<usize>,
        obs: &mut dyn Observer,
    ) -> Result<Vec<f32>> {
        let t = tokens.len();
        super::check_step(
            tokens,
            &logit_rows,
            self.pos,
            self.n_ctx,
            self.graph.n_tokens(),
        )?;
        let vocab = self.vocab();
        obs.step_start();
        let mut out = Vec::with_capacity(logit_rows.len() * vocab);
        let mut c0 = 0;
        while c0 < t {
            let c1 = (c0 + UBATCH).min(t);
            let lr = logit_rows.start.max(c0)..logit_rows.end.min(c1);
            let lr = (lr.start < lr.end).then(|| lr.start - c0..lr.end - c0);
            if let Some(r) = &lr
                && r.len() > self.max_logit_rows
            {
                return Err(Error::invalid(format!(
                    "{} logit rows asked for; the engine was built for {}",
                    r.len(),
                    self.max_logit_rows
                )));
            }
            self.run_chunk(&tokens[c0..c1], lr.clone(), obs)?;
            if let Some(r) = lr {
                out.extend_from_slice(&self.read_logits(0..r.len() * vocab)?);
            }
            self.pos += c1 - c0;
            c0 = c1;
        }
        Ok(out)
    }

    fn step_argmax(&mut self, tokens: &[u32], obs: &mut dyn Observer) -> Result<u32> {
        if tokens.len() == 1 && !obs.wants_data() {
            super::check_step(tokens, &(0..1), self.pos, self.n_ctx, self.graph.n_tokens())?;
            return self.decode_graph_step(tokens[0]);
        }
        let t = tokens.len();
        let logits = self.step(tokens, t - 1..t, obs)?;
        crate::numerics::greedy_token(&logits)
    }

    fn reset(&mut self) {
        self.pos = 0;
    }
    fn pos(&self) -> usize {
        self.pos
    }
    fn n_ctx(&self) -> usize {
        self.n_ctx
    }
    fn executor(&self) -> super::Executor {
        super::Executor::Cuda
    }
    fn decode_kernel(&self) -> Option<&'static str> {
        Some(CudaEngine::decode_kernel(self).name())
    }

    fn decode_chain(
        &mut self,
        first: u32,
        n: usize,
        sampler: &mut crate::sample::Sampler,
        obs: &mut dyn Observer,
        on_token: &mut dyn FnMut(u32) -> bool,
    ) -> Option<Result<usize>> {
        self.chains(sampler, obs.wants_data())
            .then(|| self.decode_chain_run(first, n, sampler, on_token))
    }

    fn step_sample(
        &mut self,
        token: u32,
        cfg: &SamplerConfig,
        u: f64,
        obs: &mut dyn Observer,
    ) -> Option<Result<u32>> {
        if obs.wants_data() || !self.samples_on_device(cfg) {
            return None;
        }
        Some(
            super::check_step(
                &[token],
                &(0..1),
                self.pos,
                self.n_ctx,
                self.graph.n_tokens(),
            )
            .and_then(|_| self.decode_sample_step(token, cfg, u)),
        )
    }
}
