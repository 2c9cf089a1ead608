//! Fused groups (the scheduler's passes, src/sched): each group launches the kernels its
//! schedule entry names — in decode the input preparation (`prep`: RMSNorm prologue,
//! activation quantization) and one matvec-family kernel with its epilogue; in prefill the
//! quantization and the GEMMs with their epilogues (matmul + residual add; gate and up as one
//! GEMM with SiLU(gate) · up), or one GEMM launch for matmuls over a shared input (Q, K, V). A
//! batched step of several rows (batch.rs) launches the same decode groups with the
//! `batched()` twin of the matvec-family kernel (kernels/matvec_batch.cu), which gives each
//! row the bits the single-row kernel gives it.

use super::args::{MatvecArgs, PrepArgs, QkvArgs, QkvPostArgs};
use super::geometry::{matvec_grid, prep_grid, qkv_grid};
use super::ops::MmEpi;
use super::{CudaEngine, phase_index};
use crate::codegen::catalogue::{
    MATVEC_THREADS, MATVEC_WIDE_THREADS, PREP_THREADS, batch_matvec_mma, batch_matvec_smem,
    batch_matvec_stages, batch_matvec_whole, batch_matvec_wide, batch_mma_smem, batch_staged_smem,
    matvec_batch_tile_rows, matvec_batch_warp_rows,
};
use crate::codegen::{Act, Epi, KernelId, WType};
use crate::error::{Error, Result};
use crate::graph::{KvKind, NodeId, Op};
use crate::model::RopeType;
use crate::sched::{GroupKind, Phase};
use std::ops::Range;

/// Device pointers of a prepared matvec input (0 where a format is not needed).
#[derive(Clone, Copy, Default)]
pub(super) struct ActPtrs {
    pub xf: u64,
    pub q0: u64,
    pub d0: u64,
    pub qk: u64,
    pub dk: u64,
    pub bs: u64,
}

impl CudaEngine<'_> {
    /// Runs group `gi` of the `phase` schedule for `t` rows; `lrows` = logit rows of the
    /// step (the output node computes only those).
    pub(super) fn run_group(
        &mut self,
        phase: Phase,
        gi: usize,
        t: usize,
        lrows: &Range<usize>,
    ) -> Result<()> {
        // Decode steps launch with programmatic stream serialization where the device allows
        // it (Kernels::programmatic); the argmax after the last group inherits it.
        // (Prefill with them too was measured and lost: evidence/h200/prefill-profile/.)
        // A one-step join launches without (batch.rs, `prefill_rows`).
        self.kernels.programmatic = self.dev.pdl && phase == Phase::Decode && !self.joining;
        let gr = &self.scheds[phase_index(phase)].groups[gi];
        let (kind, main) = (gr.kind.clone(), *gr.kernels.last().expect("a kernel"));
        match kind {
            GroupKind::Single { node } => self.run_node(phase, node, t, lrows),
            GroupKind::Qkv {
                norm,
                q,
                k,
                v,
                q_bias,
                k_bias,
                v_bias,
                rope_q,
                ..
            } => {
                let KernelId::Qkv { .. } = main else {
                    unreachable!("the qkv pass schedules a qkv kernel, not {main}")
                };
                self.qkv(
                    phase,
                    norm,
                    [q, k, v],
                    [q_bias, k_bias, v_bias],
                    rope_q,
                    main,
                    t,
                )
            }
            GroupKind::NormGateUp {
                norm,
                gate,
                up,
                mul,
                ..
            } => {
                let x = self.buf(phase, self.graph.node(norm).inputs[0]);
                let w2 = self.wptr(up);
                let out = self.buf(phase, mul);
                self.matvec(main, gate, x, Some(norm), w2, out, 0, t)
            }
            GroupKind::MatmulAdd {
                matmul,
                add,
                residual,
            } => {
                let x = self.buf(phase, self.graph.node(matmul).inputs[0]);
                let (out, extra) = (self.buf(phase, add), self.buf(phase, residual));
                if phase == Phase::Prefill {
                    // The GEMM adds the residual in its epilogue (`matmul` falls back to the
                    // add kernel if a row count ever picks another product kernel).
                    return self.matmul(phase, matmul, x, t, out, MmEpi::Residual(extra));
                }
                self.matvec(main, matmul, x, None, 0, out, extra, t)
            }
            GroupKind::SharedInput { norm, matmuls } => {
                // Prefill only: one GEMM launch over the shared input for all of them.
                let x = self.buf(phase, self.graph.node(norm.unwrap_or(matmuls[0])).inputs[0]);
                let outs: Vec<(NodeId, u64)> =
                    matmuls.iter().map(|&m| (m, self.buf(phase, m))).collect();
                self.matmuls(phase, &outs, x, t, MmEpi::None, norm)
            }
            GroupKind::GateUp {
                norm,
                gate,
                up,
                mul,
                ..
            } => {
                // Prefill only: one GEMM over the rows of both, SiLU(gate) · up in registers.
                let x = self.buf(phase, self.graph.node(norm.unwrap_or(gate)).inputs[0]);
                let out = self.buf(phase, mul);
                let mats = [(gate, out), (up, 0)];
                self.matmuls(phase, &mats, x, t, MmEpi::SwigluPair, norm)
            }
            GroupKind::QkvPost {
                q,
                k,
                v,
                q_bias,
                k_bias,
                v_bias,
                rope_q,
                rope_k,
                k_cache,
                v_cache,
            } => {
                let (Op::Rope { rope, n_head, .. }, Op::Rope { n_head: n_kv, .. }) =
                    (&self.graph.node(rope_q).op, &self.graph.node(rope_k).op)
                else {
                    unreachable!("the qkv_post pass groups two rope nodes")
                };
                let Op::KvAppend { layer, .. } = self.graph.node(k_cache).op else {
                    unreachable!("the qkv_post pass groups a K cache append")
                };
                debug_assert!(
                    matches!(self.graph.node(v_cache).op, Op::KvAppend { layer: l, .. } if l == layer)
                );
                let a = QkvPostArgs {
                    q: self.buf(phase, q),
                    k: self.buf(phase, k),
                    v: self.buf(phase, v),
                    bq: self.wptr_opt(q_bias),
                    bk: self.wptr_opt(k_bias),
                    bv: self.wptr_opt(v_bias),
                    q_out: self.buf(phase, rope_q),
                    k_cache: self.cache_ptr(layer, KvKind::K),
                    v_cache: self.cache_ptr(layer, KvKind::V),
                    inv_freq: self.ptr(&self.scratch.inv_freq),
                    pos: self.ptr(&self.scratch.pos),
                    t: t as i32,
                    n_head: *n_head as i32,
                    n_head_kv: *n_kv as i32,
                    head_dim: self.graph.hparams.head_dim as i32,
                    neox: (*rope == RopeType::Neox) as i32,
                };
                self.launch(main, (t as u32, 1), 256, 0, a)
            }
            GroupKind::NormMatmul { norm, matmul } => {
                let x = self.buf(phase, self.graph.node(norm).inputs[0]);
                let out = self.buf(phase, matmul);
                self.matvec(main, matmul, x, Some(norm), 0, out, 0, t)
            }
        }
    }

    /// The `prep` kernel: prepares the `rows` K-wide input rows at `x` for weights of
    /// `types` under `act` — RMSNorm with the `norm` node's weight and epsilon when given,
    /// then Q8_0 and/or Q8_K quantization (q8) or an f32 copy — into the decode activation
    /// buffers (row b at b·K). Without a norm under f32 semantics the matvec reads `x`
    /// itself and nothing is launched.
    pub(super) fn prep(
        &mut self,
        x: u64,
        norm: Option<NodeId>,
        k: usize,
        act: Act,
        types: &[WType],
        rows: usize,
    ) -> Result<ActPtrs> {
        let q8 = act == Act::Q8 && types.iter().all(|t| t.quantized());
        let legacy = q8 && types.iter().any(|t| !t.k_quant());
        let kq = q8 && types.iter().any(|t| t.k_quant());
        // The deferred attention merge (`deferred_merges`): this prep merges the partials of
        // the attention whose output `x` is, then quantizes (kernels/quantize.cu, prep_merge).
        let merge = self.merge_pending.take_if(|&mut out| out == x).is_some();
        if merge && (norm.is_some() || !q8 || rows != 1) {
            return Err(Error::invalid(
                "internal: a deferred attention merge reached a prep that is not one q8 row without a norm",
            ));
        }
        if !q8 && norm.is_none() {
            return Ok(ActPtrs {
                xf: x,
                ..Default::default()
            });
        }
        let s = &self.scratch;
        let on = |yes: bool, p: u64| if yes { p } else { 0 };
        let p = ActPtrs {
            xf: on(!q8, self.ptr(&s.xf)),
            q0: on(legacy, self.ptr(&s.q0)),
            d0: on(legacy, self.ptr(&s.d0)),
            qk: on(kq, self.ptr(&s.qk)),
            dk: on(kq, self.ptr(&s.dk)),
            bs: on(kq, self.ptr(&s.bs)),
        };
        let a = PrepArgs {
            x,
            norm_w: self.wptr_opt(norm),
            xf: p.xf,
            q0: p.q0,
            d0: p.d0,
            qk: p.qk,
            dk: p.dk,
            bs: p.bs,
            part: if merge { self.ptr(&s.att_part) } else { 0 },
            pos: self.ptr(&s.pos),
            k: k as i32,
            eps: norm.map_or(0.0, |n| self.graph.node(n).rms_eps()),
            n_split: s.att.n_split as i32,
            nc: s.att.nc as i32,
            head_dim: self.graph.hparams.head_dim as i32,
            pad: 0,
        };
        self.quantized = None; // the prepared activations overwrite quantize_q8's
        self.launch(
            if merge {
                KernelId::PrepMerge
            } else {
                KernelId::Prep
            },
            (prep_grid(k), rows as u32),
            PREP_THREADS,
            0,
            a,
        )?;
        Ok(p)
    }

    /// Decode matvec `kernel` of matmul node `mm` over `nb` input rows: input at `x`,
    /// optional RMSNorm prologue (`norm`), optional second weight (`w2`, SwiGLU) and
    /// epilogue operand (`extra`). More than one row takes the batched twin of `kernel`
    /// with the K split the single-row kernel takes (so each row's sum is the same bits).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn matvec(
        &mut self,
        kernel: KernelId,
        mm: NodeId,
        x: u64,
        norm: Option<NodeId>,
        w2: u64,
        out: u64,
        extra: u64,
        nb: usize,
    ) -> Result<()> {
        let KernelId::Matvec { w, act, epi } = kernel else {
            unreachable!("matvec called with {kernel}")
        };
        debug_assert!(epi != Epi::Swiglu || w2 != 0);
        let n = self.graph.node(mm);
        let (k, rows, row_bytes) = (n.in_width(), n.width, n.row_bytes());
        let p = self.prep(x, norm, k, act, &[w], nb)?;
        let slots = self.kernels.wave_slots(&self.dev, kernel)?;
        let (mut grid, ksplit) = matvec_grid(rows, w, k, slots);
        let (mut smem, mut stage, mut threads) = (0, false, MATVEC_THREADS);
        let kernel = if nb > 1 {
            // At most one wave of CTAs, looping over CTA tiles, or over whole rows a warp
            // where the host's rule picks them (`MatvecBatchWhole`); each CTA stages the
            // activation rows once.
            stage = batch_matvec_stages(w, act, k, nb);
            let n_sm = self.dev.n_sm as usize;
            let mut pick = None;
            if let Some(mma) = KernelId::batch_mma(w, act, epi)
                .filter(|_| batch_matvec_mma(w, act, k, nb, epi, self.dev.max_smem as usize))
            {
                // Tensor cores: 16 weight rows (SwiGLU: 8 of each matrix) a tile, the K
                // split's parts on `ksplit` warps of a CTA of MATVEC_THREADS (smaller CTAs
                // for matrices of few tiles were slower: 7B attn_out 17.4 -> 20.5 us).
                let s = batch_mma_smem(k) as u32;
                let per_sm = self
                    .kernels
                    .occupancy(&self.dev, mma, MATVEC_THREADS, s)?
                    .max(1);
                let tiles = rows.div_ceil(if epi == Epi::Swiglu { 8 } else { 16 });
                let per_cta = (MATVEC_THREADS / 32) as usize / ksplit as usize;
                pick = Some((mma, s, tiles.div_ceil(per_cta).min(per_sm * n_sm)));
                stage = true;
            } else if let Some(whole) = KernelId::batch_whole(w, act, epi).filter(|_| ksplit > 1) {
                // Rows too long for the staging rule but within the device's shared memory a
                // CTA: staged by wide CTAs (`batch_matvec_wide`), else read from global memory.
                let wide = !stage && batch_matvec_wide(w, act, k, nb, self.dev.max_smem as usize);
                let (t, st) = if wide {
                    (MATVEC_WIDE_THREADS, true)
                } else {
                    (MATVEC_THREADS, stage)
                };
                let (warps, wsmem) = ((t / 32) as usize, batch_staged_smem(w, k, nb, st) as u32);
                let per_sm = self.kernels.occupancy(&self.dev, whole, t, wsmem)?.max(1);
                if batch_matvec_whole(w, act, k, rows, epi, ksplit as usize, per_sm * n_sm * warps)
                {
                    let tasks = rows.div_ceil(matvec_batch_warp_rows(w, k, epi));
                    pick = Some((whole, wsmem, tasks.div_ceil(warps).min(per_sm * n_sm)));
                    (threads, stage) = (t, st);
                }
            }
            let (id, s, g) = match pick {
                Some(p) => p,
                None => {
                    let batched = kernel.batched();
                    let s = batch_matvec_smem(w, k, epi, nb, stage) as u32;
                    let per_sm = self
                        .kernels
                        .occupancy(&self.dev, batched, MATVEC_THREADS, s)?
                        .max(1);
                    let tiles = rows.div_ceil(matvec_batch_tile_rows(w, k, ksplit as usize, epi));
                    (batched, s, tiles.min(per_sm * n_sm))
                }
            };
            smem = s;
            grid = g as u32;
            id
        } else {
            kernel
        };
        let a = MatvecArgs {
            w: self.wptr(mm),
            w2,
            xf: p.xf,
            q0: p.q0,
            d0: p.d0,
            qk: p.qk,
            dk: p.dk,
            bs: p.bs,
            out,
            extra,
            rows: rows as i32,
            k: k as i32,
            row_bytes: row_bytes as i32,
            ksplit,
            nb: nb as i32,
            prefetch: self.matvec_prefetch(grid as usize, slots, rows * row_bytes, w2, nb) as i32,
            stage: stage as i32,
        };
        self.launch(kernel, (grid, 1), threads, smem, a)
    }

    /// Whether a decode matvec's CTAs prefetch their weights into L2 while the kernel
    /// before drains (kernels/matvec.cu): only for a programmatic launch of one wave (every
    /// CTA resident, so its first tile is all its work) whose weights take at most half the
    /// L2. On the H200 the prefetch gained the 0.5B and 1.5B 12-19% and 3-8% of decode; it
    /// cost the 7B 6% when every matvec prefetched (its gate/up runs three waves) and 2.5%
    /// when its one-wave Q6_K down (56 MB, about the L2's size) still did
    /// (evidence/h200/decode-pdl/).
    fn matvec_prefetch(&self, grid: usize, slots: usize, bytes: usize, w2: u64, nb: usize) -> bool {
        let bytes = if w2 != 0 { 2 * bytes } else { bytes };
        self.kernels.programmatic
            && nb == 1
            && grid <= slots
            && bytes <= self.dev.l2_bytes as usize / 2
    }

    /// The fused attention input: RMSNorm → Q/K/V (+bias) → RoPE → KV-cache append, for
    /// `nb` rows (more than one: the batched twin of `kernel`, each row at the position and
    /// cache slot of its sequence in `scratch.seq`).
    #[allow(clippy::too_many_arguments)]
    fn qkv(
        &mut self,
        phase: Phase,
        norm: NodeId,
        [q, k, v]: [NodeId; 3],
        [bq, bk, bv]: [Option<NodeId>; 3],
        rope_q: NodeId,
        kernel: KernelId,
        nb: usize,
    ) -> Result<()> {
        let KernelId::Qkv {
            qk: wqk,
            v: wv,
            act,
            ..
        } = kernel
        else {
            unreachable!("qkv called with {kernel}")
        };
        let hp = self.graph.hparams.clone();
        let nq = self.graph.node(q);
        let (kdim, layer) = (nq.in_width(), nq.layer.expect("a block node"));
        let rb = [q, k, v].map(|id| self.graph.node(id).row_bytes() as i32);
        let x = self.buf(phase, self.graph.node(norm).inputs[0]);
        let p = self.prep(x, Some(norm), kdim, act, &[wqk, wv], nb)?;
        // A batched step stages the nb activation rows in each CTA when they fit (in the
        // Q/K weight type's layout): at most one wave of CTAs then, looping over the items.
        let stage = nb > 1 && batch_matvec_stages(wqk, act, kdim, nb);
        let smem = batch_staged_smem(wqk, kdim, nb, stage) as u32;
        let a = QkvArgs {
            wq: self.wptr(q),
            wk: self.wptr(k),
            wv: self.wptr(v),
            bq: self.wptr_opt(bq),
            bk: self.wptr_opt(bk),
            bv: self.wptr_opt(bv),
            xf: p.xf,
            q0: p.q0,
            d0: p.d0,
            qk: p.qk,
            dk: p.dk,
            bs: p.bs,
            q_out: self.buf(phase, rope_q),
            k_cache: self.cache_ptr(layer, KvKind::K),
            v_cache: self.cache_ptr(layer, KvKind::V),
            inv_freq: self.ptr(&self.scratch.inv_freq),
            pos: self.ptr(&self.scratch.pos),
            seq: self.seq_ptr(),
            k: kdim as i32,
            n_head: hp.n_head as i32,
            n_head_kv: hp.n_head_kv as i32,
            head_dim: hp.head_dim as i32,
            rb_q: rb[0],
            rb_k: rb[1],
            rb_v: rb[2],
            neox: (hp.rope_type == Some(RopeType::Neox)) as i32,
            nb: nb as i32,
            stage: stage as i32,
        };
        let mut grid = qkv_grid(hp.n_head, hp.n_head_kv, hp.head_dim);
        let kernel = if nb > 1 { kernel.batched() } else { kernel };
        if stage {
            let per_sm = self
                .kernels
                .occupancy(&self.dev, kernel, MATVEC_THREADS, smem)?
                .max(1);
            grid = grid.min((per_sm * self.dev.n_sm as usize) as u32);
        }
        self.launch(kernel, (grid, 1), MATVEC_THREADS, smem, a)
    }
}
