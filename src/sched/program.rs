//! The persistent decode program: the fused decode schedule as an instruction list that one
//! kernel launch per token executes (kernels/persistent.cu; DESIGN.md, next steps 1).
//!
//! Every fused group becomes one instruction (attention two: partials and merge), in the
//! schedule's order, and keeps the group's index and graph node name, so traces, profiles
//! and errors name graph nodes. Two instructions follow the logits: the argmax over chunks
//! and its merge. An instruction has `items` work items that the CTAs share in contiguous
//! ranges (CTA c of G: `[items·c/G, items·(c+1)/G)`, `cta_items`):
//!
//! | op | group | work item |
//! |---|---|---|
//! | `embed` | the embedding | EMB_TILE elements of the row |
//! | `qkv` | RMSNorm → Q/K/V (+bias) → RoPE → KV append | QKV_PAIRS RoPE pairs (a warp each) |
//! | `attn` | attention | (KV head, split of positions) for all query heads of the KV group |
//! | `attn_merge` | attention | one KV head: merge of its splits for the group's query heads |
//! | `matvec` | norm+gate·up, matmul+add, norm+logits | a tile of `tile_rows` rows |
//! | `argmax`, `argmax_merge` | — | ARGMAX_CHUNK logits; the final choice |
//!
//! Each instruction lists the buffers (`Region`s) it reads and writes; its dependencies
//! (at most three producer instructions, all earlier) are derived from them — the last
//! writer of every region it reads (read after write), and the last writer and the readers
//! since of every region it writes (write after write or read) — then reduced to the ones
//! not already implied through another. `Program::check` verifies the result independently.
//! Activations live in a buffer plan without reuse (every value its own memory), so no
//! value is overwritten within a launch and every instruction's output can be read after it.
//!
//! Batching (B ≤ 8 sequences per step, not implemented) keeps this shape: regions and
//! dependencies are per step, a matvec tile computes B outputs per weight row from B staged
//! input rows (weights read once), Q/K/V items store B rows at B positions, attention
//! items become (sequence, KV head, chunk) and merge items (sequence, head); only `items`
//! and the staging bytes grow.

use super::{BufferPlan, GroupKind, Phase, Schedule};
use crate::codegen::catalogue::{
    ARGMAX_CHUNK, ATT_SPLIT_MAX_NC, EMB_TILE, MATVEC_THREADS, PERSIST_MIN_CTAS, PERSIST_THREADS,
    POp, QKV_PAIRS, attn_split_smem, matvec_lanes, matvec_tile_rows,
};
use crate::codegen::{Act, Epi, KernelId, Kv, WType};
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};
use std::collections::HashMap;

/// What a program is sized for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramOptions {
    /// CTAs of the launch (all resident at once: `persistent_ctas`).
    pub ctas: usize,
    /// Positions of the KV cache: attention splits beyond its tiles never hold positions.
    pub n_ctx: usize,
    /// At most this many attention splits per KV head (None: enough to give every CTA an
    /// item at full context).
    pub max_att_splits: Option<usize>,
    /// The device's shared memory per SM, and the most dynamic shared memory a CTA may
    /// opt into: the attention stages 64 positions per step where that keeps
    /// PERSIST_MIN_CTAS CTAs per SM (`att_smem_budget`), else 32; where neither does, the
    /// larger that fits one CTA per SM.
    pub smem_per_sm: usize,
    pub max_smem: usize,
}

/// Static shared memory of the persistent kernel (kernels/persistent.cu, persistent_impl):
/// the matvec K-split partials (MATVEC_PART_FLOATS floats), 32 doubles and 64 words of
/// reduction scratch.
pub const PERSIST_STATIC_SMEM: usize = (MATVEC_THREADS as usize / 32 * 2 * 4 * 32) * 4 + 512;

/// Dynamic shared memory per CTA the attention may take on a GPU with `smem_per_sm` bytes
/// of shared memory per SM and `max_smem` per CTA: what keeps PERSIST_MIN_CTAS CTAs per SM
/// resident, less each CTA's static shared memory and the 1 KiB the driver reserves per
/// CTA. (An H200: 233,472 per SM, so 107,008: an f16 cache stages 64 positions, f32 32. An
/// RTX 4090: 102,400, so 41,472: head dim 128 with an f32 cache leaves one CTA per SM.)
pub fn att_smem_budget(smem_per_sm: usize, max_smem: usize) -> usize {
    (smem_per_sm / PERSIST_MIN_CTAS as usize)
        .saturating_sub(1024 + PERSIST_STATIC_SMEM)
        .min(max_smem)
}

/// Shared memory per SM of an H200 and its opt-in limit per CTA, for programs listed
/// without a GPU (`graphrun dump`).
pub const H200_SMEM_PER_SM: usize = 233_472;
pub const H200_MAX_SMEM: usize = 232_448;

/// The decode attention's split geometry (kernels/attn_decode.cuh; the same as the
/// multi-kernel attention_split's for the same `n_split` and `nc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttnGeom {
    /// Splits per KV head; positions staged per step; staged row stride and stage bytes;
    /// dynamic shared memory of an item.
    pub n_split: usize,
    pub nc: usize,
    pub row_bytes: usize,
    pub stage_bytes: usize,
    pub smem: usize,
}

/// The attention geometry: `n_split` splits per KV head; stages of 64 positions if they fit
/// `att_smem_budget`, else 32; if neither does, 64 or 32 within `max_smem` (one CTA per
/// SM); an error when nothing fits.
pub fn attn_geom(
    n_split: usize,
    group: usize,
    head_dim: usize,
    kv: Kv,
    smem_per_sm: usize,
    max_smem: usize,
) -> Result<AttnGeom> {
    for limit in [att_smem_budget(smem_per_sm, max_smem), max_smem] {
        for nc in [ATT_SPLIT_MAX_NC as usize, 32] {
            let (row_bytes, stage_bytes, smem) =
                attn_split_smem(PERSIST_THREADS as usize, nc, head_dim, kv, group, n_split);
            if smem <= limit {
                return Ok(AttnGeom {
                    n_split,
                    nc,
                    row_bytes,
                    stage_bytes,
                    smem,
                });
            }
        }
    }
    Err(Error::invalid(format!(
        "the persistent kernel's decode attention needs {} bytes of shared memory per CTA (head dim {head_dim}, {} cache); this GPU allows {max_smem}",
        attn_split_smem(PERSIST_THREADS as usize, 32, head_dim, kv, group, n_split).2,
        kv.name()
    )))
}

/// A buffer an instruction reads or writes; dependencies are derived from these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Region {
    /// The step's token id (written by the host).
    Token,
    /// A graph node's value in the activation arena.
    Value(NodeId),
    /// The graph output (the engine's logits buffer).
    Logits,
    /// Layer l's K / V cache.
    KCache(usize),
    VCache(usize),
    /// Attention partials (shared by all layers).
    AttnPart,
    /// Argmax chunk maxima.
    ArgmaxPart,
    /// The greedy token (the status word the host reads).
    Result,
}

/// Byte offsets of a matvec input staged in a CTA's dynamic shared memory (16-byte
/// aligned): f32 (f32 semantics with a norm prologue), Q8_0 values and scales (legacy
/// weights under q8), Q8_K values, scales and block sums (k-quants under q8). None: not
/// staged (f32 without a norm reads the input row itself).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Staging {
    pub xf: Option<usize>,
    pub q0: Option<usize>,
    pub d0: Option<usize>,
    pub qk: Option<usize>,
    pub dk: Option<usize>,
    pub bs: Option<usize>,
    pub bytes: usize,
}

/// The staging of a K-wide input for weights of `types` under `act` (as the multi-kernel
/// path's prep kernel prepares it, src/exec/cuda/groups.rs).
pub fn staging(k: usize, act: Act, norm: bool, types: &[WType]) -> Staging {
    let q8 = act == Act::Q8 && types.iter().all(|t| t.quantized());
    let legacy = q8 && types.iter().any(|t| !t.k_quant());
    let kq = q8 && types.iter().any(|t| t.k_quant());
    let mut at = 0;
    let mut take = |yes: bool, n: usize| {
        yes.then(|| {
            let o = at;
            at = (at + n).next_multiple_of(16);
            o
        })
    };
    let (q0, d0) = (take(legacy, k), take(legacy, k / 32 * 4));
    let (qk, dk, bs) = (take(kq, k), take(kq, k / 256 * 4), take(kq, k / 16 * 4));
    let xf = take(!q8 && norm, 4 * k);
    Staging {
        xf,
        q0,
        d0,
        qk,
        dk,
        bs,
        bytes: at,
    }
}

/// What an instruction computes, with the graph nodes whose weights and values it uses.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Embed {
        node: NodeId,
        w: WType,
        width: usize,
    },
    Matvec {
        /// The matmul node (its weight is `w`); `up` the SwiGLU's second matmul.
        matmul: NodeId,
        up: Option<NodeId>,
        /// The RMSNorm of the prologue.
        norm: Option<NodeId>,
        /// The value read (before the norm).
        input: NodeId,
        /// The EPI_ADD operand.
        residual: Option<NodeId>,
        out: Region,
        w: WType,
        act: Act,
        epi: Epi,
        rows: usize,
        k: usize,
        /// Warps sharing a row set, and the rows of one work item.
        ks: usize,
        tile_rows: usize,
        stage: Staging,
    },
    Qkv {
        norm: NodeId,
        input: NodeId,
        /// Q, K, V matmul nodes and their optional biases.
        mats: [NodeId; 3],
        biases: [Option<NodeId>; 3],
        /// The RoPE-d Q value.
        q_out: NodeId,
        layer: usize,
        wqk: WType,
        wv: WType,
        act: Act,
        k: usize,
        stage: Staging,
    },
    Attn {
        node: NodeId,
        q: NodeId,
        layer: usize,
        geom: AttnGeom,
    },
    AttnMerge {
        node: NodeId,
        geom: AttnGeom,
    },
    Argmax {
        n: usize,
    },
    ArgmaxMerge {
        parts: usize,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Instr {
    pub op: POp,
    /// Index of the schedule group it computes (None: the argmax, no graph node's).
    pub group: Option<usize>,
    /// The graph node name of its group (`argmax` for the argmax instructions).
    pub name: String,
    pub body: Body,
    pub items: usize,
    /// Producer instructions waited for (earlier, at most three).
    pub deps: Vec<usize>,
    pub reads: Vec<Region>,
    pub writes: Vec<Region>,
    /// Weight bytes it reads per step (the embedding: one row).
    pub weight_bytes: u64,
}

#[derive(Clone, Debug)]
pub struct Program {
    pub instrs: Vec<Instr>,
    pub ctas: usize,
    /// Dynamic shared memory per CTA: the largest staging or attention need.
    pub smem_bytes: usize,
    /// Attention position splits per KV head.
    pub att_splits: usize,
    /// The KV cache's element type (the kernel instance: `persistent_f16`, `persistent_f32`).
    pub kv: Kv,
    /// Activation buffers without reuse (f32 elements; the logits live elsewhere).
    pub values: BufferPlan,
}

/// Most producers an instruction may wait for (`dep0..dep2` of the device struct).
pub const MAX_DEPS: usize = 3;

/// CTAs of the persistent launch. Every CTA must be resident at once (the kernel's
/// deadlock freedom rests on it, kernels/persistent.cu): `per_sm` is the occupancy of the
/// kernel (registers, shared memory), optionally capped, on each of `n_sm` SMs.
pub fn persistent_ctas(per_sm: usize, n_sm: usize, cap_per_sm: Option<usize>) -> Result<usize> {
    let per_sm = per_sm.min(cap_per_sm.unwrap_or(usize::MAX));
    if per_sm == 0 || n_sm == 0 {
        return Err(Error::invalid(format!(
            "the persistent decode kernel does not fit on this GPU ({per_sm} resident CTAs per SM on {n_sm} SMs)"
        )));
    }
    Ok(per_sm * n_sm)
}

/// The K split and tile rows of a persistent matvec of `rows` × `k` weights of type `w`
/// over `ctas` CTAs: the split (1, 2, 4, 8 warps per row set, each warp with units to
/// work on) that minimises the busiest CTA's time — its tiles × the lane passes of a
/// tile — taking the smaller split on ties.
pub fn matvec_split(rows: usize, w: WType, k: usize, ctas: usize) -> (usize, usize) {
    let units = k / w.unit();
    let lanes = matvec_lanes(units);
    let mut best = (usize::MAX, 1, matvec_tile_rows(w, k, 1));
    for ks in [1usize, 2, 4, 8] {
        if ks > 1 && units <= lanes * (ks - 1) {
            break;
        }
        let tr = matvec_tile_rows(w, k, ks);
        let per_cta = rows.div_ceil(tr).div_ceil(ctas.max(1));
        // A warp's rows of a tile × its passes over the row's units.
        let cost = per_cta * (tr * ks / 8) * units.div_ceil(ks * lanes);
        if cost < best.0 {
            best = (cost, ks, tr);
        }
    }
    (best.1, best.2)
}

/// Attention splits per KV head: enough that every CTA gets an item when the context is
/// long, no more than the context has 32-position stages, at most `max`.
pub fn att_splits(ctas: usize, n_head_kv: usize, n_ctx: usize, max: Option<usize>) -> usize {
    let cover = n_ctx.div_ceil(32).max(1);
    (ctas / n_head_kv.max(1))
        .clamp(1, cover)
        .min(max.unwrap_or(usize::MAX))
        .max(1)
}

/// The items of `items` CTA `cta` of `ctas` takes.
pub fn cta_items(items: usize, cta: usize, ctas: usize) -> std::ops::Range<usize> {
    items * cta / ctas..items * (cta + 1) / ctas
}

struct Builder<'g> {
    g: &'g Graph,
    opts: ProgramOptions,
    instrs: Vec<Instr>,
}

impl Builder<'_> {
    fn push(
        &mut self,
        group: Option<usize>,
        name: &str,
        body: Body,
        items: usize,
        rw: (Vec<Region>, Vec<Region>),
        weight_bytes: u64,
    ) {
        let op = match body {
            Body::Embed { .. } => POp::Embed,
            Body::Matvec { .. } => POp::Matvec,
            Body::Qkv { .. } => POp::Qkv,
            Body::Attn { .. } => POp::Attn,
            Body::AttnMerge { .. } => POp::AttnMerge,
            Body::Argmax { .. } => POp::Argmax,
            Body::ArgmaxMerge { .. } => POp::ArgmaxMerge,
        };
        self.instrs.push(Instr {
            op,
            group,
            name: name.to_string(),
            body,
            items,
            deps: Vec::new(),
            reads: rw.0,
            writes: rw.1,
            weight_bytes,
        });
    }

    fn value(&self, id: NodeId) -> Region {
        if id == self.g.output() {
            Region::Logits
        } else {
            Region::Value(id)
        }
    }

    /// A matvec group: `matmul` (and `up`) over the value `input`, optional norm prologue
    /// and residual.
    #[allow(clippy::too_many_arguments)]
    fn matvec(
        &mut self,
        gi: usize,
        kernel: KernelId,
        matmul: NodeId,
        up: Option<NodeId>,
        norm: Option<NodeId>,
        residual: Option<NodeId>,
        out: NodeId,
        weight_bytes: u64,
    ) -> Result<()> {
        let KernelId::Matvec { w, act, epi } = kernel else {
            return Err(Error::invalid(format!(
                "group {}: kernel {kernel} is not a matvec",
                self.g.node(out).name
            )));
        };
        let n = self.g.node(matmul);
        let input = match norm {
            Some(nm) => self.g.node(nm).inputs[0],
            None => n.inputs[0],
        };
        let (rows, k) = (n.width, n.in_width());
        let (ks, tile_rows) = matvec_split(rows, w, k, self.opts.ctas);
        let mut reads = vec![self.value(input)];
        reads.extend(residual.map(|r| self.value(r)));
        let body = Body::Matvec {
            matmul,
            up,
            norm,
            input,
            residual,
            out: self.value(out),
            w,
            act,
            epi,
            rows,
            k,
            ks,
            tile_rows,
            stage: staging(k, act, norm.is_some(), &[w]),
        };
        let name = self.g.node(out).name.clone();
        let out_region = self.value(out);
        self.push(
            Some(gi),
            &name,
            body,
            rows.div_ceil(tile_rows),
            (reads, vec![out_region]),
            weight_bytes,
        );
        Ok(())
    }
}

/// Builds the persistent program of a fused decode schedule. Errors name the group that
/// has no instruction (a node kept out of the fused groups, e.g. by an injected fault) or
/// the shape the kernel does not handle.
pub fn build(g: &Graph, s: &Schedule, opts: ProgramOptions) -> Result<Program> {
    if s.phase != Phase::Decode || !s.fused {
        return Err(Error::invalid(
            "the persistent decode kernel runs the fused decode schedule (not --no-fuse)",
        ));
    }
    let hp = &g.hparams;
    if hp.head_dim > 128
        || !hp.head_dim.is_multiple_of(16)
        || hp.n_head_kv == 0
        || !hp.n_head.is_multiple_of(hp.n_head_kv)
        || hp.n_head / hp.n_head_kv > 8
    {
        return Err(Error::invalid(format!(
            "the persistent decode kernel handles head dims up to 128 (multiples of 16) and up to 8 query heads per KV head; this model has head dim {} and {} query / {} KV heads",
            hp.head_dim, hp.n_head, hp.n_head_kv
        )));
    }
    let ctas = opts.ctas.max(1);
    let kv = Kv::from(g.kv_type());
    let group = hp.n_head / hp.n_head_kv;
    let n_split = att_splits(ctas, hp.n_head_kv, opts.n_ctx, opts.max_att_splits);
    let geom = attn_geom(
        n_split,
        group,
        hp.head_dim,
        kv,
        opts.smem_per_sm,
        opts.max_smem,
    )?;
    let mut b = Builder {
        g,
        opts: ProgramOptions { ctas, ..opts },
        instrs: Vec::new(),
    };
    for (gi, gr) in s.groups.iter().enumerate() {
        let main = *gr.kernels.last().expect("a group launches a kernel");
        match gr.kind.clone() {
            GroupKind::Single { node } if matches!(g.node(node).op, Op::Embedding) => {
                let n = g.node(node);
                let w = WType::of(n.weight_type()).ok_or_else(|| {
                    Error::invalid(format!(
                        "{}: no GPU kernels for {}",
                        n.name,
                        n.weight_type()
                    ))
                })?;
                let body = Body::Embed {
                    node,
                    w,
                    width: n.width,
                };
                let rw = (vec![Region::Token], vec![Region::Value(node)]);
                let items = n.width.div_ceil(EMB_TILE as usize);
                b.push(Some(gi), &gr.name, body, items, rw, gr.weight_bytes);
            }
            GroupKind::Single { node } if matches!(g.node(node).op, Op::Attention { .. }) => {
                let Op::Attention { layer, .. } = g.node(node).op else {
                    unreachable!()
                };
                let q = g.node(node).inputs[0];
                let reads = vec![
                    Region::Value(q),
                    Region::KCache(layer),
                    Region::VCache(layer),
                ];
                let body = Body::Attn {
                    node,
                    q,
                    layer,
                    geom,
                };
                let items = hp.n_head_kv * n_split;
                b.push(
                    Some(gi),
                    &gr.name,
                    body,
                    items,
                    (reads, vec![Region::AttnPart]),
                    0,
                );
                let body = Body::AttnMerge { node, geom };
                let rw = (vec![Region::AttnPart], vec![Region::Value(node)]);
                b.push(Some(gi), &gr.name, body, hp.n_head_kv, rw, 0);
            }
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
                let KernelId::Qkv {
                    qk,
                    v: wv,
                    act,
                    kv: qkv_kv,
                } = main
                else {
                    return Err(Error::invalid(format!(
                        "group {}: kernel {main} is not a qkv kernel",
                        gr.name
                    )));
                };
                if qkv_kv != kv {
                    return Err(Error::invalid(format!(
                        "group {}: kernel {main} writes a {} cache, the graph's is {}",
                        gr.name,
                        qkv_kv.name(),
                        kv.name()
                    )));
                }
                let input = g.node(norm).inputs[0];
                let layer = g.node(q).layer.expect("a block node");
                let kdim = g.node(q).in_width();
                let body = Body::Qkv {
                    norm,
                    input,
                    mats: [q, k, v],
                    biases: [q_bias, k_bias, v_bias],
                    q_out: rope_q,
                    layer,
                    wqk: qk,
                    wv,
                    act,
                    k: kdim,
                    stage: staging(kdim, act, true, &[qk, wv]),
                };
                let pairs = (hp.n_head + 2 * hp.n_head_kv) * (hp.head_dim / 2);
                let rw = (
                    vec![Region::Value(input)],
                    vec![
                        Region::Value(rope_q),
                        Region::KCache(layer),
                        Region::VCache(layer),
                    ],
                );
                let items = pairs.div_ceil(QKV_PAIRS as usize);
                b.push(Some(gi), &gr.name, body, items, rw, gr.weight_bytes);
            }
            GroupKind::NormGateUp {
                norm,
                gate,
                up,
                mul,
                ..
            } => b.matvec(
                gi,
                main,
                gate,
                Some(up),
                Some(norm),
                None,
                mul,
                gr.weight_bytes,
            )?,
            GroupKind::MatmulAdd {
                matmul,
                add,
                residual,
            } => b.matvec(
                gi,
                main,
                matmul,
                None,
                None,
                Some(residual),
                add,
                gr.weight_bytes,
            )?,
            GroupKind::NormMatmul { norm, matmul } => b.matvec(
                gi,
                main,
                matmul,
                None,
                Some(norm),
                None,
                matmul,
                gr.weight_bytes,
            )?,
            GroupKind::Single { .. } => {
                let faulted: Vec<&str> = g
                    .faults()
                    .iter()
                    .map(|(id, _)| g.node(*id).name.as_str())
                    .collect();
                let why = if faulted.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; nodes with an injected fault stay out of the fused groups: {}",
                        faulted.join(", ")
                    )
                };
                return Err(Error::invalid(format!(
                    "the persistent decode kernel has no instruction for group {} ({}, pass {}): it runs the fused groups of the Qwen2/Llama block{why}",
                    gr.name,
                    gr.kernel_names(),
                    gr.pass
                )));
            }
        }
    }
    if !b.instrs.iter().any(|i| i.writes.contains(&Region::Logits)) {
        return Err(Error::invalid(
            "the decode schedule computes no logits: no persistent program",
        ));
    }
    let vocab = g.node(g.output()).width;
    let parts = vocab.div_ceil(ARGMAX_CHUNK as usize);
    let rw = (vec![Region::Logits], vec![Region::ArgmaxPart]);
    b.push(None, "argmax", Body::Argmax { n: vocab }, parts, rw, 0);
    let rw = (vec![Region::ArgmaxPart], vec![Region::Result]);
    b.push(None, "argmax", Body::ArgmaxMerge { parts }, 1, rw, 0);

    let mut instrs = b.instrs;
    derive_deps(&mut instrs)?;
    let smem_bytes = instrs
        .iter()
        .map(|i| match &i.body {
            Body::Matvec { stage, .. } | Body::Qkv { stage, .. } => stage.bytes,
            Body::Attn { geom, .. } | Body::AttnMerge { geom, .. } => geom.smem,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    let p = Program {
        instrs,
        ctas,
        smem_bytes,
        att_splits: n_split,
        kv,
        values: unshared_plan(g, s),
    };
    p.check()?;
    Ok(p)
}

/// Every value a group writes in its own memory (64-float aligned, one row): no reuse, so
/// nothing is overwritten within a launch and a trace reads every output after it.
fn unshared_plan(g: &Graph, s: &Schedule) -> BufferPlan {
    let mut offset = vec![None; g.len()];
    let mut total = 0;
    for gi in 0..s.groups.len() {
        for w in s.writes(gi) {
            if w != g.output() && offset[w.index()].is_none() {
                offset[w.index()] = Some(total);
                total += g.node(w).width.div_ceil(64) * 64;
            }
        }
    }
    BufferPlan {
        offset,
        total,
        rows: 1,
    }
}

/// Transitive predecessors (by dependencies) of each instruction, as bit sets.
fn closure(instrs: &[Instr]) -> Vec<Vec<u64>> {
    let words = instrs.len().div_ceil(64);
    let mut c: Vec<Vec<u64>> = Vec::with_capacity(instrs.len());
    for ins in instrs {
        let mut set = vec![0u64; words];
        for &d in &ins.deps {
            set[d / 64] |= 1 << (d % 64);
            for (w, x) in set.iter_mut().zip(&c[d]) {
                *w |= x;
            }
        }
        c.push(set);
    }
    c
}

fn has(set: &[u64], i: usize) -> bool {
    set[i / 64] >> (i % 64) & 1 == 1
}

/// Sets every instruction's dependencies from its regions (see the module doc).
fn derive_deps(instrs: &mut [Instr]) -> Result<()> {
    let mut last_writer: HashMap<Region, usize> = HashMap::new();
    let mut readers: HashMap<Region, Vec<usize>> = HashMap::new();
    for j in 0..instrs.len() {
        let mut need: Vec<usize> = Vec::new();
        for r in &instrs[j].reads {
            match (last_writer.get(r), r) {
                (Some(&w), _) => need.push(w),
                (None, Region::Token | Region::KCache(_) | Region::VCache(_)) => {}
                (None, _) => {
                    return Err(Error::invalid(format!(
                        "instruction {j} ({}) reads {r:?}, which no earlier instruction writes",
                        instrs[j].name
                    )));
                }
            }
        }
        for r in &instrs[j].writes {
            need.extend(last_writer.get(r));
            need.extend(readers.get(r).into_iter().flatten());
        }
        need.sort_unstable();
        need.dedup();
        let c = closure(&instrs[..j]);
        let direct: Vec<usize> = need
            .iter()
            .copied()
            .filter(|&d| !need.iter().any(|&e| e != d && has(&c[e], d)))
            .collect();
        if direct.len() > MAX_DEPS {
            return Err(Error::invalid(format!(
                "instruction {j} ({}) would wait for {} producers; the kernel takes {MAX_DEPS}",
                instrs[j].name,
                direct.len()
            )));
        }
        instrs[j].deps = direct;
        for r in instrs[j].reads.clone() {
            readers.entry(r).or_default().push(j);
        }
        for r in instrs[j].writes.clone() {
            last_writer.insert(r, j);
            readers.insert(r, Vec::new());
        }
    }
    Ok(())
}

impl Program {
    /// The program's invariants, checked independently of how dependencies were derived:
    /// dependencies point backwards (at most MAX_DEPS); every region read has its last
    /// earlier writer among the reader's transitive producers, and every region written has
    /// all earlier readers and writers among them; every instruction has work; matvec
    /// tiles cover their rows exactly once across the CTAs.
    pub fn check(&self) -> Result<()> {
        let bad = |j: usize, what: String| {
            Err(Error::invalid(format!(
                "persistent program, instruction {j} ({}): {what}",
                self.instrs[j].name
            )))
        };
        let c = closure(&self.instrs);
        for (j, ins) in self.instrs.iter().enumerate() {
            if ins.deps.len() > MAX_DEPS || ins.deps.iter().any(|&d| d >= j) {
                return bad(
                    j,
                    format!("dependencies {:?} do not point backwards", ins.deps),
                );
            }
            if ins.items == 0 {
                return bad(j, "no work items".into());
            }
            for (i, prev) in self.instrs[..j].iter().enumerate() {
                let raw = ins.reads.iter().any(|r| prev.writes.contains(r));
                let war = ins
                    .writes
                    .iter()
                    .any(|r| prev.reads.contains(r) || prev.writes.contains(r));
                if (raw || war) && !has(&c[j], i) {
                    return bad(
                        j,
                        format!(
                            "shares a buffer with instruction {i} ({}) without waiting for it",
                            prev.name
                        ),
                    );
                }
            }
            if let Body::Matvec {
                rows, tile_rows, ..
            } = ins.body
            {
                let mut next = 0;
                for cta in 0..self.ctas {
                    let r = cta_items(ins.items, cta, self.ctas);
                    if r.start != next {
                        return bad(
                            j,
                            format!("CTA {cta} starts at tile {} not {next}", r.start),
                        );
                    }
                    next = r.end;
                }
                if next != ins.items
                    || ins.items * tile_rows < rows
                    || (ins.items - 1) * tile_rows >= rows
                {
                    return bad(
                        j,
                        format!(
                            "{} tiles of {tile_rows} rows do not cover {rows} rows",
                            ins.items
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// The instructions of each schedule group, by group index.
    pub fn by_group(&self, n_groups: usize) -> Vec<Vec<usize>> {
        let mut v = vec![Vec::new(); n_groups];
        for (i, ins) in self.instrs.iter().enumerate() {
            if let Some(gi) = ins.group {
                v[gi].push(i);
            }
        }
        v
    }
}

impl Instr {
    /// What it computes, for dumps: op, types, shape, work split.
    pub fn describe(&self) -> String {
        match &self.body {
            Body::Embed { w, width, .. } => format!("{} row of {width}", w.name()),
            Body::Matvec {
                w,
                act,
                epi,
                rows,
                k,
                ks,
                tile_rows,
                norm,
                stage,
                ..
            } => format!(
                "{}{} {} {} {rows}x{k}, tiles of {tile_rows} rows (ks {ks}), stage {} B",
                if norm.is_some() { "norm+" } else { "" },
                w.name(),
                act.name(),
                epi.name(),
                stage.bytes
            ),
            Body::Qkv {
                wqk,
                wv,
                act,
                k,
                stage,
                ..
            } => format!(
                "norm+{}/{} {} K={k}, {QKV_PAIRS} RoPE pairs per item, stage {} B",
                wqk.name(),
                wv.name(),
                act.name(),
                stage.bytes
            ),
            Body::Attn { geom, layer, .. } => format!(
                "layer {layer}: (KV head, split) items, {} splits per KV head, stages of {} positions, {} B",
                geom.n_split, geom.nc, geom.smem
            ),
            Body::AttnMerge { geom, .. } => {
                format!("merge of {} splits per KV head", geom.n_split)
            }
            Body::Argmax { n } => format!("{n} logits in chunks of {ARGMAX_CHUNK}"),
            Body::ArgmaxMerge { parts } => format!("greedy token of {parts} chunk maxima"),
        }
    }

    /// `i3,i7`, or `-`.
    pub fn deps_text(&self) -> String {
        if self.deps.is_empty() {
            "-".into()
        } else {
            self.deps
                .iter()
                .map(|d| format!("i{d}"))
                .collect::<Vec<_>>()
                .join(",")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_the_resident_ctas_and_refuses_zero() {
        // H200: 132 SMs; RTX 4090: 128 SMs; both at two CTAs per SM.
        assert_eq!(persistent_ctas(2, 132, None).unwrap(), 264);
        assert_eq!(persistent_ctas(2, 128, None).unwrap(), 256);
        assert_eq!(persistent_ctas(3, 128, Some(1)).unwrap(), 128);
        let e = persistent_ctas(0, 132, None).unwrap_err().to_string();
        assert!(e.contains("does not fit"), "{e}");
    }

    #[test]
    fn matvec_split_keeps_every_warp_busy_and_covers_the_rows() {
        // 7B logits: many rows, no split. 7B attn_out (3,584 rows of 56 Q4_K units): a
        // split of 2 fills 224 of 264 CTAs instead of 112.
        assert_eq!(matvec_split(152_064, WType::Q6_K, 3584, 264), (1, 32));
        assert_eq!(matvec_split(3584, WType::Q4_K, 3584, 264), (2, 16));
        // 0.5B attn_out: 28 Q5_0 units a row fill one lane pass: no split can help.
        assert_eq!(matvec_split(896, WType::Q5_0, 896, 264), (1, 32));
        for (rows, w, k) in [
            (1, WType::Q8_0, 256),
            (128, WType::Q5_0, 896),
            (18_944, WType::Q4_K, 3584),
            (3584, WType::Q6_K, 18_944),
            (151_936, WType::Q8_0, 896),
        ] {
            for ctas in [1, 7, 128, 264, 528] {
                let (ks, tr) = matvec_split(rows, w, k, ctas);
                assert!([1, 2, 4, 8].contains(&ks));
                assert_eq!(tr, matvec_tile_rows(w, k, ks));
                let units = k / w.unit();
                assert!(ks == 1 || units > matvec_lanes(units) * (ks - 1));
            }
        }
    }

    #[test]
    fn staging_is_aligned_and_sized_like_prep() {
        let s = staging(18_944, Act::Q8, false, &[WType::Q6_K]);
        assert_eq!((s.q0, s.xf), (None, None));
        assert_eq!(s.qk, Some(0));
        assert_eq!(s.dk, Some(18_944));
        assert_eq!(s.bs, Some(18_944 + 304)); // scales rounded up to 16 bytes
        assert_eq!(s.bytes, 18_944 + 304 + 4736);
        let s = staging(896, Act::Q8, true, &[WType::Q5_0, WType::Q8_0]);
        assert_eq!((s.q0, s.d0, s.qk), (Some(0), Some(896), None));
        // f32 semantics: only a norm prologue needs the row staged.
        assert_eq!(staging(3584, Act::F32, false, &[WType::Q4_K]).bytes, 0);
        assert_eq!(staging(3584, Act::F32, true, &[WType::Q4_K]).xf, Some(0));
        let s = staging(4864, Act::Q8, true, &[WType::Q4_K, WType::Q5_0]);
        for o in [s.q0, s.d0, s.qk, s.dk, s.bs].into_iter().flatten() {
            assert_eq!(o % 16, 0);
        }
    }

    #[test]
    fn attention_splits_fill_the_ctas_within_the_context() {
        assert_eq!(att_splits(264, 4, 32_768, None), 66);
        assert_eq!(att_splits(264, 2, 256, None), 8);
        assert_eq!(att_splits(1, 4, 4096, None), 1);
        assert_eq!(att_splits(264, 4, 32_768, Some(5)), 5);
    }

    #[test]
    fn cta_items_partition_the_items() {
        for (items, ctas) in [(1, 264), (7, 3), (4752, 264), (264, 264)] {
            let mut next = 0;
            for c in 0..ctas {
                let r = cta_items(items, c, ctas);
                assert_eq!(r.start, next);
                next = r.end;
            }
            assert_eq!(next, items);
        }
    }
}
