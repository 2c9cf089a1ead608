//! One graph node as its own kernels (prefill, `--no-fuse` decode, faulted nodes): the
//! kernels `sched::node_kernels` names for the node, with their arguments. Each kernel
//! mirrors the node's CPU reference in src/exec/interp/ops.rs (`kv_append` and the `scale`
//! fault: inline in src/exec/interp/mod.rs); kernels/README.md has the table.

use super::CudaEngine;
use super::args::{
    AttnArgs, AttnMmaArgs, AttnSplitArgs, EltArgs, EmbArgs, KvArgs, MatmulArgs, MmqArgs, PrepArgs,
    QuantizeArgs, RopeArgs,
};
use super::geometry::{
    attention_mma_tile, attention_tile, elt_grid, matmul_grid, mmq_grid, mmq_pair_grid,
};
use crate::codegen::catalogue::{ATT_THREADS, MMQ_SMEM_BYTES, MMQ_THREADS};
use crate::codegen::{Act, Elt, Epi, KernelId};
use crate::error::{Error, Result};
use crate::graph::Node;
use crate::graph::{FaultKind, KvKind, NodeId, Op};
use crate::model::RopeType;
use crate::sched::GEMM_MAX_MATRICES;
use crate::sched::{Phase, batched_kernels, node_kernels};
use std::ops::Range;

/// What a matmul's product goes through before it is stored (fused prefill groups): the
/// GEMM does it in its epilogue (kernels/mmq.cu), other product kernels by element-wise
/// kernels after them (`epilogue_kernels`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MmEpi {
    None,
    /// `out = product + resid` (matmul + residual add).
    Residual(u64),
    /// `out = silu(gate's product) · up's product` for the pair `[(gate, out), (up, _)]` of a
    /// gate/up group: one GEMM launch over both matrices' rows, or for one row the decode
    /// matvec with its SwiGLU epilogue.
    SwigluPair,
}

impl CudaEngine<'_> {
    /// Runs node `id` for `t` rows (the output node for the `lrows` logit rows only), then
    /// applies its injected `scale=S` fault, if any.
    pub(super) fn run_node(
        &mut self,
        phase: Phase,
        id: NodeId,
        t: usize,
        lrows: &Range<usize>,
    ) -> Result<()> {
        let n = self.graph.node(id).clone();
        let rows = if id == self.graph.output() {
            lrows.len()
        } else {
            t
        };
        let out = self.buf(phase, id);
        let inp = |e: &Self, k: usize| e.buf(phase, n.inputs[k]);
        let width = n.width;
        match &n.op {
            Op::Embedding => {
                let a = EmbArgs {
                    w: self.wptr(id),
                    tokens: self.ptr(&self.scratch.tokens),
                    out,
                    t: t as i32,
                    width: width as i32,
                    row_bytes: n.row_bytes() as i32,
                };
                let k = self.kernels_of(&n, phase, t)?[0];
                self.launch(k, (elt_grid(t * width), 1), 256, 0, a)?;
            }
            Op::RmsNorm { eps } => {
                let a = EltArgs {
                    a: inp(self, 0),
                    b: self.wptr(id),
                    out,
                    n: (t * width) as i32,
                    width: width as i32,
                    eps: *eps,
                };
                self.launch(KernelId::Elt(Elt::RmsNorm), (t as u32, 1), 256, 0, a)?;
            }
            Op::MatMul { .. } => {
                // The output node reads only the rows whose logits were asked for.
                let first = if id == self.graph.output() {
                    lrows.start
                } else {
                    0
                };
                let x = inp(self, 0) + (first * n.in_width() * 4) as u64;
                self.matmul(phase, id, x, rows, out, MmEpi::None)?;
            }
            Op::BiasAdd if n.fault == Some(FaultKind::BiasOff) => {
                self.launch_scale(inp(self, 0), out, t, width, 1.0)?;
            }
            Op::BiasAdd | Op::Add | Op::Mul | Op::Silu => {
                let (elt, b) = match n.op {
                    Op::BiasAdd => (Elt::BiasAdd, self.wptr(id)),
                    Op::Add => (Elt::Add, inp(self, 1)),
                    Op::Mul => (Elt::Mul, inp(self, 1)),
                    _ => (Elt::Silu, 0),
                };
                let a = EltArgs {
                    a: inp(self, 0),
                    b,
                    out,
                    n: (t * width) as i32,
                    width: width as i32,
                    eps: 0.0,
                };
                self.launch(KernelId::Elt(elt), (elt_grid(t * width), 1), 256, 0, a)?;
            }
            Op::Rope {
                n_head,
                head_dim,
                rope,
                ..
            } => {
                let a = RopeArgs {
                    x: inp(self, 0),
                    out,
                    inv_freq: self.ptr(&self.scratch.inv_freq),
                    pos: self.ptr(&self.scratch.pos),
                    seq: self.seq_ptr(),
                    t: t as i32,
                    n_head: *n_head as i32,
                    head_dim: *head_dim as i32,
                    neox: (*rope == RopeType::Neox) as i32,
                    offset: match n.fault {
                        Some(FaultKind::Offset(k)) => k as i32,
                        _ => 0,
                    },
                };
                self.launch(KernelId::Rope, (elt_grid(t * width / 2), 1), 256, 0, a)?;
            }
            Op::KvAppend { layer, cache, .. } => {
                let a = KvArgs {
                    x: inp(self, 0),
                    cache: self.cache_ptr(*layer, *cache),
                    out,
                    pos: self.ptr(&self.scratch.pos),
                    seq: self.seq_ptr(),
                    t: t as i32,
                    width: width as i32,
                };
                let k = self.kernels_of(&n, phase, t)?[0];
                self.launch(k, (elt_grid(t * width), 1), 256, 0, a)?;
            }
            Op::Attention {
                layer,
                n_head,
                n_head_kv,
                head_dim,
                scale,
                ..
            } => {
                let k = self.kernels_of(&n, phase, t)?[0];
                let (k_cache, v_cache) = (
                    self.cache_ptr(*layer, KvKind::K),
                    self.cache_ptr(*layer, KvKind::V),
                );
                if k == KernelId::AttentionMma {
                    let tile = attention_mma_tile(
                        t,
                        n_head / n_head_kv,
                        *n_head_kv,
                        *head_dim,
                        self.dev.n_sm,
                        self.dev.max_smem,
                        self.dev.smem_per_sm,
                    )?;
                    let a = AttnMmaArgs {
                        q: inp(self, 0),
                        k_cache,
                        v_cache,
                        out,
                        pos: self.ptr(&self.scratch.pos),
                        n_head: *n_head as i32,
                        n_head_kv: *n_head_kv as i32,
                        head_dim: *head_dim as i32,
                        t: t as i32,
                        scale: *scale,
                        stages: tile.stages as i32,
                    };
                    self.launch(k, tile.grid, tile.threads, tile.smem, a)?;
                } else if let KernelId::Attention { .. } = k {
                    let tile = attention_tile(
                        t,
                        n_head / n_head_kv,
                        *n_head_kv,
                        *head_dim,
                        self.dev.n_sm,
                        self.dev.max_smem,
                    )?;
                    let a = AttnArgs {
                        q: inp(self, 0),
                        k_cache,
                        v_cache,
                        out,
                        pos: self.ptr(&self.scratch.pos),
                        n_head: *n_head as i32,
                        n_head_kv: *n_head_kv as i32,
                        head_dim: *head_dim as i32,
                        t: t as i32,
                        scale: *scale,
                        kp_at: tile.kp_at as i32,
                        v_at: tile.v_at as i32,
                    };
                    self.launch(k, tile.grid, tile.threads, tile.smem, a)?;
                } else {
                    // Decode: a CTA per (KV head, split), the last CTA of each KV head
                    // merges (fixed grid, so the captured graph serves every position), or
                    // the next launch does (`deferred_merges`: the attn_out matvec's prep).
                    let geo = self.scratch.att;
                    // Single-row steps only: their CTAs take one split each. A batched step's
                    // CTAs loop over several, which deferring needs a barrier between
                    // (branch merge-prep-batch, evidence/h100/merge-prep-batch/: not merged).
                    let defer = !self.batched && self.defer_merge.contains(&id);
                    if defer {
                        self.merge_pending = Some(out);
                    }
                    let a = AttnSplitArgs {
                        q: inp(self, 0),
                        k_cache,
                        v_cache,
                        out,
                        pos: self.ptr(&self.scratch.pos),
                        part: self.ptr(&self.scratch.att_part),
                        ticket: self.ptr(&self.scratch.att_ticket),
                        seq: self.seq_ptr(),
                        n_head: *n_head as i32,
                        n_head_kv: *n_head_kv as i32,
                        head_dim: *head_dim as i32,
                        n_split: geo.n_split as i32,
                        scale: *scale,
                        nc: geo.nc as i32,
                        row_bytes: geo.row_bytes as i32,
                        stage_bytes: geo.stage_bytes as i32,
                        defer: defer as i32,
                        pad: 0,
                    };
                    // A batched step: a grid layer per row, each of ceil(n_split / rows)
                    // CTAs a KV head looping over the splits (the same partials), so the
                    // step launches about as many CTAs as a single row's.
                    let rows = if self.batched { t as u32 } else { 1 };
                    let grid = (*n_head_kv as u32, geo.n_split.div_ceil(rows), rows);
                    let smem = geo.launch_smem(grid.0 * grid.1 * grid.2, self.dev.n_sm);
                    self.kernels
                        .launch3(&self.dev, k, grid, ATT_THREADS, smem, a)?;
                }
            }
        }
        if let Some(FaultKind::Scale(s)) = n.fault {
            self.launch_scale(out, out, rows, width, s)?;
        }
        Ok(())
    }

    /// The kernels of node `n` for `rows` rows of `phase` (`sched::node_kernels`), or for a
    /// batched decode step while one runs (`sched::batched_kernels`).
    fn kernels_of(&self, n: &Node, phase: Phase, rows: usize) -> Result<Vec<KernelId>> {
        if self.batched {
            batched_kernels(n)
        } else {
            node_kernels(n, phase, rows)
        }
    }

    /// A matmul node over `rows` rows of input at `x`: the node's kernels (`kernels_of`): a
    /// decode matvec, the tiled integer GEMM, or the CUDA-core matmul, after activation
    /// quantization under q8. `epi` (a fused prefill group's) is applied in the GEMM's
    /// epilogue, or by the element-wise kernels after the others.
    pub(super) fn matmul(
        &mut self,
        phase: Phase,
        id: NodeId,
        x: u64,
        rows: usize,
        out: u64,
        epi: MmEpi,
    ) -> Result<()> {
        self.matmuls(phase, &[(id, out)], x, rows, epi, None)
    }

    /// Matmul nodes of one weight type over the same input at `x` (one node, or a
    /// shared-input prefill group), each to its output: on the GEMM as one launch (up to
    /// GEMM_MAX_MATRICES, the scheduler's limit), else one after the other. With `norm` (a
    /// prefill group with the RMSNorm prologue) the input is that norm's: `x` holds the
    /// rows before it, and the quantization norms them first (the prep kernel).
    pub(super) fn matmuls(
        &mut self,
        phase: Phase,
        mats: &[(NodeId, u64)],
        x: u64,
        rows: usize,
        epi: MmEpi,
        norm: Option<NodeId>,
    ) -> Result<()> {
        let (id, out) = mats[0];
        let n = self.graph.node(id);
        let (k, width, row_bytes) = (n.in_width(), n.width, n.row_bytes());
        let main = *self
            .kernels_of(n, phase, rows)?
            .iter()
            .find(|k| !matches!(k, KernelId::Prep | KernelId::QuantizeQ8))
            .expect("a matmul kernel");
        let pair = epi == MmEpi::SwigluPair;
        debug_assert!(!pair || mats.len() == 2);
        if let (true, KernelId::Matvec { w, act, .. }) = (pair, main) {
            let kernel = KernelId::Matvec {
                w,
                act,
                epi: Epi::Swiglu,
            };
            let up = self.wptr(mats[1].0);
            return self.matvec(kernel, id, x, norm, up, out, 0, 1);
        }
        // One launch for several matrices: all on the GEMM with one type, or (Q, K, V) with V
        // of another type of the same activation format (`MmqMixed`, V's rows `row_bytes3`
        // apart); else one at a time.
        let (mut launch_kernel, mut row_bytes3) = (main, 0);
        if mats.len() > 1 && !pair {
            let others = mats[1..]
                .iter()
                .map(|&(m, _)| {
                    let k = self.kernels_of(self.graph.node(m), phase, rows)?;
                    Ok(k.into_iter()
                        .find(|k| !matches!(k, KernelId::Prep | KernelId::QuantizeQ8)))
                })
                .collect::<Result<Vec<_>>>()?;
            match (main, &others[..]) {
                (KernelId::Mmq { .. }, ks) if ks.iter().all(|k| *k == Some(main)) => {}
                (KernelId::Mmq { w }, [Some(k2), Some(KernelId::Mmq { w: v })])
                    if *k2 == main && KernelId::mixable(w, *v) =>
                {
                    launch_kernel = KernelId::MmqMixed { w, v: *v };
                    row_bytes3 = self.graph.node(mats[2].0).row_bytes();
                }
                _ => {
                    for &m in mats {
                        self.matmuls(phase, &[m], x, rows, epi, norm)?;
                    }
                    return Ok(());
                }
            }
        }
        debug_assert!(mats.len() <= GEMM_MAX_MATRICES);
        if let KernelId::Matvec { .. } = main {
            self.matvec(main, id, x, norm, 0, out, 0, 1)?;
            return self.epilogue_kernels(out, epi, rows, width);
        }
        let s = &self.scratch;
        let (q0, d0, qk, dk, bs) = (
            self.ptr(&s.q0),
            self.ptr(&s.d0),
            self.ptr(&s.qk),
            self.ptr(&s.dk),
            self.ptr(&s.bs),
        );
        let (q8, legacy) = match main {
            KernelId::Mmq { w } => (true, !w.k_quant()),
            KernelId::Matmul { w, act } => (act == Act::Q8, !w.k_quant()),
            other => unreachable!("no matmul kernel {other}"),
        };
        // The matmuls that share an input node (Q/K/V, gate/up) quantize it once per step. The
        // key is the node, not the buffer: the buffer plan gives a dead node's buffer to
        // later nodes (the attention output takes the normed input's), while a node's value
        // is written once per step. `prep` clears the record when it reuses the buffers.
        let key = (n.inputs[0], x, rows, k, legacy);
        if norm.is_some() && !(q8 && matches!(main, KernelId::Mmq { .. })) {
            return Err(Error::invalid(format!(
                "{}: the RMSNorm prologue is for the q8 GEMM, not {main}",
                n.name
            )));
        }
        if let (true, Some(nid)) = (self.quantized != Some(key), norm) {
            // The norm and the quantization in one launch, a CTA of 256 threads per row as
            // the rms_norm kernel's (the same scale bits, then the same quantization).
            let pa = PrepArgs {
                x,
                norm_w: self.wptr(nid),
                xf: 0,
                q0: if legacy { q0 } else { 0 },
                d0,
                qk: if legacy { 0 } else { qk },
                dk,
                bs,
                k: k as i32,
                eps: self.graph.node(nid).rms_eps(),
                ..Default::default()
            };
            self.launch(KernelId::Prep, (1, rows as u32), 256, 0, pa)?;
            self.quantized = Some(key);
        } else if q8 && self.quantized != Some(key) {
            let qa = QuantizeArgs {
                x,
                q0: if legacy { q0 } else { 0 },
                d0,
                qk: if legacy { 0 } else { qk },
                dk,
                bs,
                k: k as i32,
                t: rows as i32,
            };
            self.launch(KernelId::QuantizeQ8, (rows as u32, 1), 256, 0, qa)?;
            self.quantized = Some(key);
        }
        let wp = self.wptr(id);
        if let KernelId::Mmq { w } = main {
            // The GEMM addresses activation rows by 32-bit offsets (kernels/mmq.cu).
            if rows * k > i32::MAX as usize {
                return Err(Error::Invalid(format!(
                    "{}: a prefill GEMM over {rows} rows of {k} inputs exceeds the 2^31 \
                     activation elements the kernel addresses; prefill in smaller chunks",
                    self.graph.node(id).name
                )));
            }
            // The other matrices of a shared-input launch: (weights, output, rows); of a pair's
            // up matrix the kernel (the pair's twin) reads only the weights.
            let more: Vec<(u64, u64, usize)> = mats[1..]
                .iter()
                .map(|&(m, o)| (self.wptr(m), o, self.graph.node(m).width))
                .collect();
            let nth = |i: usize| more.get(i).copied().unwrap_or((0, 0, 0));
            let tiles: u32 = if pair {
                mmq_pair_grid(width, rows).0
            } else {
                std::iter::once(width)
                    .chain(more.iter().map(|m| m.2))
                    .map(|r| mmq_grid(r, rows).0)
                    .sum()
            };
            let m = MmqArgs {
                w: wp,
                out,
                q0,
                d0,
                qk,
                dk,
                bs,
                rows: width as i32,
                k: k as i32,
                row_bytes: row_bytes as i32,
                t: rows as i32,
                resid: if let MmEpi::Residual(r) = epi { r } else { 0 },
                w2: nth(0).0,
                out2: nth(0).1,
                w3: nth(1).0,
                out3: nth(1).1,
                rows2: nth(0).2 as i32,
                rows3: nth(1).2 as i32,
                row_bytes3: row_bytes3 as i32,
            };
            let kernel = if pair {
                KernelId::MmqPair { w }
            } else {
                launch_kernel
            };
            let grid = (tiles, mmq_grid(width, rows).1);
            return self.launch(kernel, grid, MMQ_THREADS, MMQ_SMEM_BYTES, m);
        }
        let a = MatmulArgs {
            w: wp,
            out,
            xf: x,
            q0,
            d0,
            qk,
            dk,
            bs,
            rows: width as i32,
            k: k as i32,
            row_bytes: row_bytes as i32,
            t: rows as i32,
        };
        self.launch(main, matmul_grid(width, rows), 256, 0, a)?;
        self.epilogue_kernels(out, epi, rows, width)
    }

    /// A fused group's epilogue over `rows` rows of `width` at `out` by the element-wise
    /// kernels, when the product came from a kernel without the GEMM's epilogues (a one-row
    /// matvec, the CUDA-core matmul): `out += resid` (`add`). A gate/up pair never gets here:
    /// the scheduler pairs only GEMMs, and their one-row twin is the SwiGLU matvec.
    fn epilogue_kernels(&mut self, out: u64, epi: MmEpi, rows: usize, width: usize) -> Result<()> {
        match epi {
            MmEpi::None => Ok(()),
            MmEpi::Residual(resid) => {
                let args = EltArgs {
                    a: out,
                    b: resid,
                    out,
                    n: (rows * width) as i32,
                    width: width as i32,
                    eps: 0.0,
                };
                let grid = (elt_grid(rows * width), 1);
                self.launch(KernelId::Elt(Elt::Add), grid, 256, 0, args)
            }
            MmEpi::SwigluPair => Err(Error::Invalid(format!(
                "a gate/up pair of {rows} rows reached a product kernel without its epilogue"
            ))),
        }
    }

    /// `out = x · s` over `rows` rows of `width` (the `scale` kernel of fault injection:
    /// `scale=S` in place, `bias=off` as a copy).
    fn launch_scale(&mut self, x: u64, out: u64, rows: usize, width: usize, s: f32) -> Result<()> {
        let count = rows * width;
        let a = EltArgs {
            a: x,
            b: 0,
            out,
            n: count as i32,
            width: width as i32,
            eps: s,
        };
        self.launch(KernelId::Elt(Elt::Scale), (elt_grid(count), 1), 256, 0, a)
    }
}
