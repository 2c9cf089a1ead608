//! The scheduler: rewrites the graph into kernel groups with small, named fusion passes,
//! and plans activation buffers by liveness. Every group records the graph nodes it covers;
//! its output is its last node's, so traces keep graph node names. `graphrun dump --stage
//! fused` prints the result.
//!
//! Passes (decode, T = 1), applied in this order, each matching a subgraph by op pattern:
//! 1. `fuse_qkv`: RMSNorm → Q/K/V matmul (+bias) → RoPE → KV-cache append
//! 2. `fuse_norm_gate_up`: RMSNorm → gate & up matmul → SiLU(gate)·up
//! 3. `fuse_matmul_add`: matmul + residual add (O projection, down projection)
//! 4. `fuse_norm_matmul`: final RMSNorm → logits matmul
//!
//! Prefill (T rows) fuses where the matmuls run on the tensor-core GEMM: in its epilogue,
//! `fuse_gate_up` (gate and up as one GEMM, SiLU(gate) · up in its epilogue) and
//! `fuse_matmul_add` (the epilogue adds the residual); and `fuse_shared_input` (Q, K, V of
//! one weight type as one launch). The gate/up and shared-input groups take the RMSNorm
//! before them when their matmuls are its only readers (`norm_prologue`: prep norms and
//! quantizes in one launch). `fuse_qkv_post` makes a block's biases, RoPE and cache
//! appends after the Q/K/V products one element-wise launch. (Which rows a step computes
//! is the executors' business: the output tail, `Graph::output_tail`, at the logit rows.)
//!
//! Anything left is one group per node (always so for a node with an injected fault).
//! `--no-fuse` skips the passes.
//!
//! Every group names the kernels it launches (`KernelId`s of the catalogue, in order), so
//! the executor launches what the schedule says and `graphrun dump --stage fused` shows it.

mod plan;
pub mod program;

pub use plan::BufferPlan;

use crate::codegen::{Act, Elt, Epi, KernelId, Kv, WType};
use crate::error::{Error, Result};
use crate::graph::{FaultKind, Graph, KvKind, Node, NodeId, Op};
use serde::Serialize;

/// Which step a schedule is for: prefill (T prompt rows) or decode (one row).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Prefill,
    Decode,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Prefill => "prefill",
            Phase::Decode => "decode",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GroupKind {
    Qkv {
        norm: NodeId,
        q: NodeId,
        k: NodeId,
        v: NodeId,
        q_bias: Option<NodeId>,
        k_bias: Option<NodeId>,
        v_bias: Option<NodeId>,
        rope_q: NodeId,
        rope_k: NodeId,
        k_cache: NodeId,
        v_cache: NodeId,
    },
    NormGateUp {
        norm: NodeId,
        gate: NodeId,
        up: NodeId,
        silu: NodeId,
        mul: NodeId,
    },
    MatmulAdd {
        matmul: NodeId,
        add: NodeId,
        residual: NodeId,
    },
    /// Prefill: two or three matmuls of one weight type over the same input (Q, K, V) as
    /// one GEMM launch, each to its own output. `norm`: the input is an RMSNorm that only
    /// these matmuls read, applied in the activation quantization (the prep kernel) and
    /// never stored.
    SharedInput {
        norm: Option<NodeId>,
        matmuls: Vec<NodeId>,
    },
    /// Prefill: gate and up (one weight type) as one GEMM, SiLU(gate) · up in its epilogue;
    /// the gate's product is not stored. `norm`: as `SharedInput`'s.
    GateUp {
        norm: Option<NodeId>,
        gate: NodeId,
        up: NodeId,
        silu: NodeId,
        mul: NodeId,
    },
    NormMatmul {
        norm: NodeId,
        matmul: NodeId,
    },
    /// Prefill: what follows a block's Q, K and V products up to attention — the biases,
    /// RoPE of Q and K, the K and V cache appends — as one element-wise launch
    /// (kernels/elementwise.cu, `qkv_post`). `q`, `k`, `v` are the products it reads (not
    /// its nodes); it writes Q after RoPE (`rope_q`) and the cache rows.
    QkvPost {
        q: NodeId,
        k: NodeId,
        v: NodeId,
        q_bias: Option<NodeId>,
        k_bias: Option<NodeId>,
        v_bias: Option<NodeId>,
        rope_q: NodeId,
        rope_k: NodeId,
        k_cache: NodeId,
        v_cache: NodeId,
    },
    Single {
        node: NodeId,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct Group {
    /// Name of the group's output node (its last node).
    pub name: String,
    /// The fusion pass that made it (`single` for one node).
    pub pass: &'static str,
    pub kind: GroupKind,
    /// Covered graph nodes, in topological order.
    pub nodes: Vec<NodeId>,
    /// The kernels it launches, in order (`prep` is the decode input preparation: RMSNorm
    /// prologue and activation quantization, kernels/quantize.cu).
    #[serde(serialize_with = "kernel_names")]
    pub kernels: Vec<KernelId>,
    /// Weight bytes it reads.
    pub weight_bytes: u64,
}

fn kernel_names<S: serde::Serializer>(k: &[KernelId], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&names(k))
}

/// Kernel names joined by `+` (`prep+qkv_q4_k_q6_k_q8`), as dumps and traces print them.
pub fn names(k: &[KernelId]) -> String {
    k.iter().map(KernelId::name).collect::<Vec<_>>().join("+")
}

impl Group {
    pub fn output(&self) -> NodeId {
        *self.nodes.last().expect("a group covers at least one node")
    }

    /// The node where the group runs in the schedule's order: its first node, except for
    /// the Q/K/V tail, which runs where its last node (the V cache append) stands — after
    /// the V product, which may be a launch of its own between the Q and K products and
    /// their tails.
    pub fn position(&self) -> NodeId {
        match self.kind {
            GroupKind::QkvPost { .. } => *self.nodes.iter().max().expect("non-empty"),
            _ => *self.nodes.iter().min().expect("non-empty"),
        }
    }

    /// The group's kernel names joined by `+`.
    pub fn kernel_names(&self) -> String {
        names(&self.kernels)
    }
}

#[derive(Clone, Debug)]
pub struct Schedule {
    pub phase: Phase,
    pub fused: bool,
    pub groups: Vec<Group>,
}

/// The GPU weight type of a matmul or embedding node (None: no kernels for its type).
fn wtype(n: &Node) -> Option<WType> {
    WType::of(n.weight_type())
}

/// The GPU weight type of a node that needs one, or an error naming its tensor and the
/// types that have kernels.
fn gpu_wtype(n: &Node) -> Result<WType> {
    wtype(n).ok_or_else(|| {
        Error::invalid(format!(
            "tensor {} (node {}): type {} has no GPU kernels yet (GPU types: {}); run with --interp",
            n.weight().name,
            n.name,
            n.weight_type(),
            crate::codegen::gpu_type_names()
        ))
    })
}

/// The kernels of one graph node run on its own, for `phase` and a step of `rows` rows
/// (a prefill matmul of one row, such as the logits of a generation step, is a matvec).
/// An injected `scale=S` fault adds the `scale` kernel after the node's own.
pub fn node_kernels(n: &Node, phase: Phase, rows: usize) -> Result<Vec<KernelId>> {
    let mut k = match &n.op {
        Op::MatMul { act } => {
            let w = gpu_wtype(n)?;
            let act = w.effective_act(Act::from(*act));
            if phase == Phase::Decode || rows == 1 {
                vec![
                    KernelId::Prep,
                    KernelId::Matvec {
                        w,
                        act,
                        epi: Epi::None,
                    },
                ]
            } else if act == Act::Q8
                && n.in_width()
                    .is_multiple_of(crate::codegen::catalogue::MMQ_CH as usize)
            {
                vec![KernelId::QuantizeQ8, KernelId::Mmq { w }]
            } else if act == Act::Q8 {
                vec![KernelId::QuantizeQ8, KernelId::Matmul { w, act }]
            } else {
                vec![KernelId::Matmul { w, act }]
            }
        }
        Op::Attention { kv, .. } if phase == Phase::Decode => {
            vec![KernelId::AttentionSplit { kv: Kv::from(*kv) }]
        }
        // Prefill over an f16 cache on tensor cores where the head dim fits its MMA tiles
        // (the same f32 semantics: kernels/attn_prefill_mma.cuh); CUDA cores otherwise.
        Op::Attention { kv, head_dim, .. }
            if Kv::from(*kv) == Kv::F16
                && head_dim % 16 == 0
                && *head_dim <= crate::codegen::catalogue::ATT_MAX_HD as usize =>
        {
            vec![KernelId::AttentionMma]
        }
        Op::Attention { kv, .. } => vec![KernelId::Attention { kv: Kv::from(*kv) }],
        Op::Embedding => vec![KernelId::Embedding { w: gpu_wtype(n)? }],
        Op::RmsNorm { .. } => vec![KernelId::Elt(Elt::RmsNorm)],
        Op::BiasAdd if n.fault == Some(FaultKind::BiasOff) => vec![KernelId::Elt(Elt::Scale)],
        Op::BiasAdd => vec![KernelId::Elt(Elt::BiasAdd)],
        Op::Add => vec![KernelId::Elt(Elt::Add)],
        Op::Mul => vec![KernelId::Elt(Elt::Mul)],
        Op::Silu => vec![KernelId::Elt(Elt::Silu)],
        Op::Rope { .. } => vec![KernelId::Rope],
        Op::KvAppend { kv, .. } => vec![KernelId::KvAppend { kv: Kv::from(*kv) }],
    };
    if let Some(FaultKind::Scale(_)) = n.fault {
        k.push(KernelId::Elt(Elt::Scale));
    }
    Ok(k)
}

/// The kernels of one unfused graph node in a batched decode step (`--no-fuse`, or a node a
/// fault injection splits out of its group; one row per sequence, each at its own position
/// and KV-cache slot: src/exec/cuda/batch.rs): the prefill kernels, except
/// that a matmul takes the CUDA-core matmul at every row count, 1 included — a warp reads
/// each weight row once for a tile of 8 rows, and a row's result does not depend on the
/// others, where the tensor-core GEMM's 128-row tiles would leave most SMs idle — and
/// attention the decode kernel (one grid layer per row).
pub fn batched_kernels(n: &Node) -> Result<Vec<KernelId>> {
    match &n.op {
        Op::MatMul { act } => {
            let w = gpu_wtype(n)?;
            let act = w.effective_act(Act::from(*act));
            let mut k = if act == Act::Q8 {
                vec![KernelId::QuantizeQ8]
            } else {
                Vec::new()
            };
            k.push(KernelId::Matmul { w, act });
            if let Some(FaultKind::Scale(_)) = n.fault {
                k.push(KernelId::Elt(Elt::Scale));
            }
            Ok(k)
        }
        Op::Attention { .. } => node_kernels(n, Phase::Decode, 1),
        _ => node_kernels(n, Phase::Prefill, 2),
    }
}

/// The prepared-input + matvec kernels of a fused decode group.
fn prep_matvec(n: &Node, epi: Epi) -> Option<Vec<KernelId>> {
    let w = wtype(n)?;
    let act = w.effective_act(Act::from(n.act()));
    Some(vec![KernelId::Prep, KernelId::Matvec { w, act, epi }])
}

/// Consumers of every node.
fn consumers(g: &Graph) -> Vec<Vec<NodeId>> {
    let mut c = vec![Vec::new(); g.len()];
    for (id, n) in g.nodes() {
        for i in &n.inputs {
            c[i.index()].push(id);
        }
    }
    c
}

struct Ctx<'g> {
    g: &'g Graph,
    cons: Vec<Vec<NodeId>>,
    taken: Vec<bool>,
}

impl Ctx<'_> {
    fn node(&self, id: NodeId) -> &Node {
        self.g.node(id)
    }
    fn only_consumer(&self, id: NodeId) -> Option<NodeId> {
        match self.cons[id.index()].as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
    fn consumers_with(&self, id: NodeId, op: &str) -> Vec<NodeId> {
        self.cons[id.index()]
            .iter()
            .copied()
            .filter(|c| self.node(*c).op.name() == op)
            .collect()
    }
    fn free(&self, ids: &[NodeId]) -> bool {
        ids.iter().all(|i| !self.taken[i.index()])
    }
    /// Follows an optional bias_add after `id`.
    fn skip_bias(&self, id: NodeId) -> (Option<NodeId>, NodeId) {
        match self.only_consumer(id) {
            Some(c) if matches!(self.node(c).op, Op::BiasAdd) => (Some(c), c),
            _ => (None, id),
        }
    }
}

/// Pass 1: RMSNorm → Q/K/V (+bias) → RoPE (q, k) → KV append (k, v).
fn fuse_qkv(c: &Ctx, norm: NodeId) -> Option<(GroupKind, Vec<NodeId>, Vec<KernelId>)> {
    if !matches!(c.node(norm).op, Op::RmsNorm { .. }) {
        return None;
    }
    let mms = c.consumers_with(norm, "matmul");
    if mms.len() != 3 || c.cons[norm.index()].len() != 3 {
        return None;
    }
    let (q, k, v) = (mms[0], mms[1], mms[2]);
    let (q_bias, qb) = c.skip_bias(q);
    let (k_bias, kb) = c.skip_bias(k);
    let (v_bias, vb) = c.skip_bias(v);
    let rope_q = c
        .only_consumer(qb)
        .filter(|r| matches!(c.node(*r).op, Op::Rope { .. }))?;
    let rope_k = c
        .only_consumer(kb)
        .filter(|r| matches!(c.node(*r).op, Op::Rope { .. }))?;
    let k_cache = c
        .only_consumer(rope_k)
        .filter(|r| matches!(c.node(*r).op, Op::KvAppend { .. }))?;
    let v_cache = c
        .only_consumer(vb)
        .filter(|r| matches!(c.node(*r).op, Op::KvAppend { .. }))?;
    let (tq, tk, tv) = (wtype(c.node(q))?, wtype(c.node(k))?, wtype(c.node(v))?);
    let acts = (c.node(q).act(), c.node(k).act(), c.node(v).act());
    if tq != tk || acts.0 != acts.1 || acts.1 != acts.2 || tq.quantized() != tv.quantized() {
        return None;
    }
    if (q_bias.is_some(), k_bias.is_some()) != (v_bias.is_some(), v_bias.is_some()) {
        return None;
    }
    let mut nodes = vec![norm, q, k, v, rope_q, rope_k, k_cache, v_cache];
    nodes.extend([q_bias, k_bias, v_bias].into_iter().flatten());
    nodes.sort();
    let Op::KvAppend { kv, .. } = c.node(k_cache).op else {
        return None;
    };
    let kernels = vec![
        KernelId::Prep,
        KernelId::Qkv {
            qk: tq,
            v: tv,
            act: tq.effective_act(Act::from(acts.0)),
            kv: Kv::from(kv),
        },
    ];
    Some((
        GroupKind::Qkv {
            norm,
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
        },
        nodes,
        kernels,
    ))
}

/// The SwiGLU pattern under `norm`: its only consumers are the gate and up matmuls, and
/// SiLU(gate) · up is the only use of each. Returns (gate, up, silu, mul).
fn swiglu_under(c: &Ctx, norm: NodeId) -> Option<(NodeId, NodeId, NodeId, NodeId)> {
    let mms = c.consumers_with(norm, "matmul");
    if mms.len() != 2 || c.cons[norm.index()].len() != 2 {
        return None;
    }
    let (gate, up) = (mms[0], mms[1]);
    let silu = c
        .only_consumer(gate)
        .filter(|s| matches!(c.node(*s).op, Op::Silu))?;
    let mul = c
        .only_consumer(silu)
        .filter(|m| matches!(c.node(*m).op, Op::Mul))?;
    if c.node(mul).inputs.as_slice() != [silu, up] || c.only_consumer(up) != Some(mul) {
        return None;
    }
    Some((gate, up, silu, mul))
}

/// Pass 2: RMSNorm → gate, up → SiLU(gate) · up.
fn fuse_norm_gate_up(c: &Ctx, norm: NodeId) -> Option<(GroupKind, Vec<NodeId>, Vec<KernelId>)> {
    if !matches!(c.node(norm).op, Op::RmsNorm { .. }) {
        return None;
    }
    let (gate, up, silu, mul) = swiglu_under(c, norm)?;
    let (tg, tu) = (wtype(c.node(gate))?, wtype(c.node(up))?);
    if tg != tu || c.node(gate).act() != c.node(up).act() {
        return None;
    }
    let kernels = prep_matvec(c.node(gate), Epi::Swiglu)?;
    Some((
        GroupKind::NormGateUp {
            norm,
            gate,
            up,
            silu,
            mul,
        },
        vec![norm, gate, silu, up, mul],
        kernels,
    ))
}

/// Pass 3: matmul whose only consumer is a residual add.
fn fuse_matmul_add(c: &Ctx, mm: NodeId) -> Option<(GroupKind, Vec<NodeId>, Vec<KernelId>)> {
    if !matches!(c.node(mm).op, Op::MatMul { .. }) {
        return None;
    }
    let add = c
        .only_consumer(mm)
        .filter(|a| matches!(c.node(*a).op, Op::Add))?;
    let ins = &c.node(add).inputs;
    let residual = if ins[0] == mm { ins[1] } else { ins[0] };
    let kernels = prep_matvec(c.node(mm), Epi::Add)?;
    Some((
        GroupKind::MatmulAdd {
            matmul: mm,
            add,
            residual,
        },
        vec![mm, add],
        kernels,
    ))
}

/// The weight type of matmul node `mm` when its prefill kernels are the quantization and
/// the tensor-core GEMM (the only product kernel with the prefill epilogues).
fn prefill_gemm(c: &Ctx, mm: NodeId) -> Option<WType> {
    match node_kernels(c.node(mm), Phase::Prefill, usize::MAX)
        .ok()?
        .as_slice()
    {
        [KernelId::QuantizeQ8, KernelId::Mmq { w }] => Some(*w),
        _ => None,
    }
}

/// Prefill pass: a matmul that runs on the tensor-core GEMM and whose only consumer is a
/// residual add; the GEMM adds the residual in its epilogue (kernels/mmq.cu, `resid`).
fn fuse_matmul_add_prefill(c: &Ctx, mm: NodeId) -> Option<(GroupKind, Vec<NodeId>, Vec<KernelId>)> {
    let (kind, nodes, _) = fuse_matmul_add(c, mm)?;
    let w = prefill_gemm(c, mm)?;
    Some((kind, nodes, vec![KernelId::QuantizeQ8, KernelId::Mmq { w }]))
}

/// Prefill pass: the gate and up matmuls of a SwiGLU block, both on the tensor-core GEMM
/// with one weight type (matched at their common input, the normed rows), as one GEMM
/// launch whose tiles hold rows of both: SiLU(gate) · up is applied in registers
/// (kernels/mmq.cu, `mmq_pair_*`), so the gate's product is never stored and neither the
/// silu nor the mul kernel runs; the pair fills one grid of twice either matrix's tiles. A
/// one-row prefill runs the decode matvec with its SwiGLU epilogue instead.
fn fuse_gate_up_prefill(c: &Ctx, x: NodeId) -> Option<(GroupKind, Vec<NodeId>, Vec<KernelId>)> {
    let (gate, up, silu, mul) = swiglu_under(c, x)?;
    let w = prefill_gemm(c, gate)?;
    if prefill_gemm(c, up)? != w {
        return None;
    }
    // swiglu_under: gate and up are the input's only consumers.
    let (norm, mut nodes, prep) = norm_prologue(c, x, true);
    nodes.extend([gate, silu, up, mul]);
    Some((
        GroupKind::GateUp {
            norm,
            gate,
            up,
            silu,
            mul,
        },
        nodes,
        vec![prep, KernelId::MmqPair { w }],
    ))
}

/// The RMSNorm prologue of a prefill GEMM group over input `x` (`all_readers`: the group's
/// matmuls are all of `x`'s consumers): when `x` is an RMSNorm only they read, the group
/// takes it (its first node) and the prep kernel norms and quantizes the rows before it in
/// one launch, a CTA of 256 threads per row as the rms_norm kernel's, so the quantized rows
/// are the same bits and the normed rows are never stored. Otherwise quantize_q8 quantizes
/// `x`.
fn norm_prologue(c: &Ctx, x: NodeId, all_readers: bool) -> (Option<NodeId>, Vec<NodeId>, KernelId) {
    // A faulted norm keeps its own kernel (src/fault.rs); the GEMM group forms without it.
    if all_readers
        && matches!(c.node(x).op, Op::RmsNorm { .. })
        && !c.taken[x.index()]
        && c.node(x).fault.is_none()
    {
        (Some(x), vec![x], KernelId::Prep)
    } else {
        (None, Vec::new(), KernelId::QuantizeQ8)
    }
}

/// Most matrices one GEMM launch takes (kernels/mmq.cu: w, w2, w3).
pub const GEMM_MAX_MATRICES: usize = 3;

/// Prefill pass: matmuls on the tensor-core GEMM that read the same input node and have the
/// same weight type (Q, K and V) run as one launch: the input is quantized once and the
/// column tiles of all of them fill one grid, so the small K and V products no longer take a
/// wave of their own. Where a third matmul (V) has another type of the same activation format
/// (Q4_K_M's Q6_K V beside Q4_K Q and K), it joins the launch as its third matrix
/// (`mmq_*_v_*`: each CTA runs its own type's kernel, V's tiles first in the grid). Matched
/// at the input node.
fn fuse_shared_input_prefill(
    c: &Ctx,
    x: NodeId,
) -> Option<(GroupKind, Vec<NodeId>, Vec<KernelId>)> {
    let mut by_type: Vec<(WType, Vec<NodeId>)> = Vec::new();
    for &mm in &c.cons[x.index()] {
        if c.taken[mm.index()] || !matches!(c.node(mm).op, Op::MatMul { .. }) {
            continue;
        }
        if let Some(w) = prefill_gemm(c, mm) {
            match by_type.iter_mut().find(|(t, _)| *t == w) {
                Some((_, v)) => v.push(mm),
                None => by_type.push((w, vec![mm])),
            }
        }
    }
    let i = by_type.iter().position(|(_, v)| v.len() >= 2)?;
    let (w, mut mats) = by_type.remove(i);
    mats.sort();
    mats.truncate(GEMM_MAX_MATRICES);
    let mut kernel = KernelId::Mmq { w };
    if let ([_, _], [(v, third)]) = (&mats[..], &by_type[..])
        && third.len() == 1
        && KernelId::mixable(w, *v)
    {
        mats.push(third[0]);
        kernel = KernelId::MmqMixed { w, v: *v };
    }
    // The norm prologue only when these matmuls are all that read the input.
    let (norm, mut nodes, prep) = norm_prologue(c, x, mats.len() == c.cons[x.index()].len());
    nodes.extend(&mats);
    Some((
        GroupKind::SharedInput {
            norm,
            matmuls: mats,
        },
        nodes,
        vec![prep, kernel],
    ))
}

/// Prefill pass: a block's bias_add (Q, K, V; each optional), RoPE (Q, K) and KV-cache
/// appends (K, V) — every node between the three products and attention — as one
/// element-wise launch, matched at the attention node. Each fused value must have its
/// next fused node as its only consumer, so nothing else reads what the launch does not
/// store (it stores Q after RoPE and the cache rows).
fn fuse_qkv_post(c: &Ctx, att: NodeId) -> Option<(GroupKind, Vec<NodeId>, Vec<KernelId>)> {
    let Op::Attention {
        n_head, n_head_kv, ..
    } = c.node(att).op
    else {
        return None;
    };
    let [rope_q, k_cache, v_cache] = c.node(att).inputs[..] else {
        return None;
    };
    let only_to = |id: NodeId, to: NodeId| c.only_consumer(id) == Some(to);
    // The optional bias before `id`'s consumer `next`: (bias node, the product it reads).
    let bias_then = |id: NodeId, next: NodeId| -> Option<(Option<NodeId>, NodeId)> {
        match c.node(id).op {
            Op::BiasAdd if only_to(id, next) => Some((Some(id), c.node(id).inputs[0])),
            Op::BiasAdd => None,
            _ => Some((None, id)),
        }
    };
    let rope_of = |r: NodeId, heads: usize| match c.node(r).op {
        Op::Rope {
            rope, n_head: h, ..
        } if h == heads => Some(rope),
        _ => None,
    };
    let kv_of = |a: NodeId, kind: KvKind| match c.node(a).op {
        Op::KvAppend { cache, kv, .. } if cache == kind => Some(kv),
        _ => None,
    };
    let rope_k = c.node(k_cache).inputs[0];
    let rq = rope_of(rope_q, n_head)?;
    if rope_of(rope_k, n_head_kv)? != rq {
        return None;
    }
    let kv = kv_of(k_cache, KvKind::K)?;
    if kv_of(v_cache, KvKind::V)? != kv
        || !only_to(rope_q, att)
        || !only_to(k_cache, att)
        || !only_to(v_cache, att)
        || !only_to(rope_k, k_cache)
    {
        return None;
    }
    let (q_bias, q) = bias_then(c.node(rope_q).inputs[0], rope_q)?;
    let (k_bias, k) = bias_then(c.node(rope_k).inputs[0], rope_k)?;
    let (v_bias, v) = bias_then(c.node(v_cache).inputs[0], v_cache)?;
    let mut nodes = vec![rope_q, rope_k, k_cache, v_cache];
    nodes.extend([q_bias, k_bias, v_bias].into_iter().flatten());
    nodes.sort();
    Some((
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
        },
        nodes,
        vec![KernelId::QkvPost { kv: Kv::from(kv) }],
    ))
}

/// Pass 4: RMSNorm whose only consumer is a matmul (final norm → logits).
fn fuse_norm_matmul(c: &Ctx, norm: NodeId) -> Option<(GroupKind, Vec<NodeId>, Vec<KernelId>)> {
    if !matches!(c.node(norm).op, Op::RmsNorm { .. }) {
        return None;
    }
    let mm = c
        .only_consumer(norm)
        .filter(|m| matches!(c.node(*m).op, Op::MatMul { .. }))?;
    let kernels = prep_matvec(c.node(mm), Epi::None)?;
    Some((
        GroupKind::NormMatmul { norm, matmul: mm },
        vec![norm, mm],
        kernels,
    ))
}

type Pass = (
    &'static str,
    fn(&Ctx, NodeId) -> Option<(GroupKind, Vec<NodeId>, Vec<KernelId>)>,
);

const PASSES: [Pass; 4] = [
    ("fuse_qkv", fuse_qkv),
    ("fuse_norm_gate_up", fuse_norm_gate_up),
    ("fuse_matmul_add", fuse_matmul_add),
    ("fuse_norm_matmul", fuse_norm_matmul),
];

/// The prefill passes: the GEMM's SwiGLU and residual epilogues, GEMMs over a shared input
/// in one launch, and the element-wise tail of Q/K/V in one launch.
const PREFILL_PASSES: [Pass; 4] = [
    ("fuse_gate_up", fuse_gate_up_prefill),
    ("fuse_matmul_add", fuse_matmul_add_prefill),
    ("fuse_shared_input", fuse_shared_input_prefill),
    ("fuse_qkv_post", fuse_qkv_post),
];

/// Builds the schedule of `g` for `phase`: fused groups (with `fuse`) or one group per
/// node. Prefill fuses around the GEMM (its epilogues, shared-input launches) and the Q/K/V
/// tail; its other groups are single nodes with prefill kernels. Errors when a weight's type has no GPU kernels (the
/// message names the tensor).
pub fn schedule(g: &Graph, phase: Phase, fuse: bool) -> Result<Schedule> {
    let passes: &[Pass] = match phase {
        Phase::Decode => &PASSES,
        Phase::Prefill => &PREFILL_PASSES,
    };
    let mut c = Ctx {
        g,
        cons: consumers(g),
        taken: vec![false; g.len()],
    };
    let mut groups: Vec<Group> = Vec::new();
    if fuse {
        for &(pass, f) in passes {
            for (id, _) in g.nodes() {
                if c.taken[id.index()] {
                    continue;
                }
                // A faulted node keeps a kernel of its own (src/fault.rs).
                if let Some((kind, nodes, kernels)) = f(&c, id)
                    && c.free(&nodes)
                    && nodes.iter().all(|n| g.node(*n).fault.is_none())
                {
                    for n in &nodes {
                        c.taken[n.index()] = true;
                    }
                    groups.push(make_group(g, pass, kind, nodes, kernels));
                }
            }
        }
    }
    for (id, n) in g.nodes() {
        if !c.taken[id.index()] {
            groups.push(make_group(
                g,
                "single",
                GroupKind::Single { node: id },
                vec![id],
                node_kernels(n, phase, usize::MAX)?,
            ));
        }
    }
    // A group runs at its position (`Group::position`, its first node but for the Q/K/V
    // tail's last): every fused group's nodes read only earlier groups' values (a
    // shared-input GEMM group's matmuls read one input that precedes them all; the Q/K/V
    // tail reads the three products, all before its last node, and only attention, after
    // it, reads what it writes; the other fused groups cover consecutive nodes).
    // tests/sched.rs checks the order.
    groups.sort_by_key(|gr| gr.position());
    Ok(Schedule {
        phase,
        fused: fuse,
        groups,
    })
}

fn make_group(
    g: &Graph,
    pass: &'static str,
    kind: GroupKind,
    nodes: Vec<NodeId>,
    kernels: Vec<KernelId>,
) -> Group {
    // Bytes read per token: the embedding reads one row, every other weight all of it.
    let weight_bytes = nodes
        .iter()
        .map(|n| g.node(*n))
        .filter_map(|n| {
            n.weight.as_ref().map(|w| {
                if matches!(n.op, Op::Embedding) {
                    w.bytes / w.shape[0]
                } else {
                    w.bytes
                }
            })
        })
        .sum();
    let name = g.node(*nodes.last().expect("non-empty")).name.clone();
    Group {
        name,
        pass,
        kind,
        nodes,
        kernels,
        weight_bytes,
    }
}

impl Schedule {
    /// For each graph node, the index of the group covering it.
    pub fn group_of(&self, n_nodes: usize) -> Vec<usize> {
        let mut v = vec![usize::MAX; n_nodes];
        for (i, gr) in self.groups.iter().enumerate() {
            for n in &gr.nodes {
                v[n.index()] = i;
            }
        }
        v
    }
}

/// The decode attention nodes whose merge the next launch can take over, with their head
/// dims: the `prep` of the attn_out matvec merges the split partials, spread over its CTAs,
/// before it quantizes them (kernels/quantize.cu, prep_merge; the same bits as the
/// attention's merging CTA). That holds where a single-node attention group is followed
/// directly by the matmul + add group of its only consumer, a q8 matvec over quantized
/// weights (whose `prep` quantizes the attention output with no norm), and neither node has
/// an injected fault. Nothing else may run between the two: the partials buffer is the
/// step's, shared by every layer. The executor adds the launch geometry's own condition.
pub fn deferrable_merges(g: &Graph, s: &Schedule) -> Vec<(NodeId, usize)> {
    if s.phase != Phase::Decode {
        return Vec::new();
    }
    let mut out = Vec::new();
    for w in s.groups.windows(2) {
        let (GroupKind::Single { node: a }, GroupKind::MatmulAdd { matmul, .. }) =
            (&w[0].kind, &w[1].kind)
        else {
            continue;
        };
        let (an, mm) = (g.node(*a), g.node(*matmul));
        let Op::Attention { head_dim, .. } = an.op else {
            continue;
        };
        let q8 = matches!(w[1].kernels.last(),
            Some(KernelId::Matvec { w, act: Act::Q8, .. }) if w.quantized());
        let only_reader = || g.nodes().filter(|(_, n)| n.inputs.contains(a)).count() == 1;
        if q8
            && an.fault.is_none()
            && mm.fault.is_none()
            && mm.inputs[0] == *a
            && mm.in_width().is_multiple_of(32)
            && only_reader()
        {
            out.push((*a, head_dim));
        }
    }
    out
}
