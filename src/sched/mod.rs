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
//! Anything left is one group per node (always so for a node with an injected fault). `--no-fuse` (and every prefill) skips the passes.

mod plan;

pub use plan::BufferPlan;

use crate::graph::{ActSemantics, Graph, Node, NodeId, Op};
use crate::quant::GgmlType;
use serde::Serialize;

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
    NormMatmul {
        norm: NodeId,
        matmul: NodeId,
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
    /// The kernel(s) it runs (decode, T = 1), `+`-separated: `prep` is the input
    /// preparation (RMSNorm prologue and activation quantization, kernels/quantize.cu).
    pub kernel: String,
    /// Weight bytes it reads.
    pub weight_bytes: u64,
}

impl Group {
    pub fn output(&self) -> NodeId {
        *self.nodes.last().expect("a group covers at least one node")
    }
}

#[derive(Clone, Debug)]
pub struct Schedule {
    pub fused: bool,
    pub groups: Vec<Group>,
}

/// Kernel-name fragment of a weight type (`q4_k`), as in the catalogue.
pub fn wname(t: GgmlType) -> String {
    t.name().to_ascii_lowercase()
}

fn act_of(n: &Node) -> &'static str {
    match n.op {
        Op::MatMul { act } => act.name(),
        _ => ActSemantics::F32.name(),
    }
}

fn wtype(n: &Node) -> GgmlType {
    n.weight.as_ref().expect("matmul has a weight").dtype
}

/// The decode kernel of a single node.
pub fn single_kernel(n: &Node) -> String {
    match &n.op {
        Op::MatMul { act } => format!("prep+matvec_{}_{}_none", wname(wtype(n)), act.name()),
        Op::Attention { .. } => "attention_split".to_string(),
        Op::Embedding => format!("embedding_{}", wname(wtype(n))),
        other => other.name().to_string(),
    }
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
    fn gpu_type(t: GgmlType) -> bool {
        matches!(
            t,
            GgmlType::F32
                | GgmlType::F16
                | GgmlType::Q4_0
                | GgmlType::Q5_0
                | GgmlType::Q8_0
                | GgmlType::Q4_K
                | GgmlType::Q5_K
                | GgmlType::Q6_K
        )
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
fn fuse_qkv(c: &Ctx, norm: NodeId) -> Option<(GroupKind, Vec<NodeId>, String)> {
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
    let (tq, tk, tv) = (wtype(c.node(q)), wtype(c.node(k)), wtype(c.node(v)));
    let acts = (act_of(c.node(q)), act_of(c.node(k)), act_of(c.node(v)));
    if tq != tk
        || acts.0 != acts.1
        || acts.1 != acts.2
        || tq.is_quantized() != tv.is_quantized()
        || !Ctx::gpu_type(tq)
        || !Ctx::gpu_type(tv)
    {
        return None;
    }
    if (q_bias.is_some(), k_bias.is_some()) != (v_bias.is_some(), v_bias.is_some()) {
        return None;
    }
    let mut nodes = vec![norm, q, k, v, rope_q, rope_k, k_cache, v_cache];
    nodes.extend([q_bias, k_bias, v_bias].into_iter().flatten());
    nodes.sort();
    let kernel = format!("prep+qkv_{}_{}_{}", wname(tq), wname(tv), acts.0);
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
        kernel,
    ))
}

/// Pass 2: RMSNorm → gate, up → SiLU(gate) · up.
fn fuse_norm_gate_up(c: &Ctx, norm: NodeId) -> Option<(GroupKind, Vec<NodeId>, String)> {
    if !matches!(c.node(norm).op, Op::RmsNorm { .. }) {
        return None;
    }
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
    let (tg, tu) = (wtype(c.node(gate)), wtype(c.node(up)));
    if tg != tu || act_of(c.node(gate)) != act_of(c.node(up)) || !Ctx::gpu_type(tg) {
        return None;
    }
    let kernel = format!("prep+matvec_{}_{}_swiglu", wname(tg), act_of(c.node(gate)));
    Some((
        GroupKind::NormGateUp {
            norm,
            gate,
            up,
            silu,
            mul,
        },
        vec![norm, gate, silu, up, mul],
        kernel,
    ))
}

/// Pass 3: matmul whose only consumer is a residual add.
fn fuse_matmul_add(c: &Ctx, mm: NodeId) -> Option<(GroupKind, Vec<NodeId>, String)> {
    if !matches!(c.node(mm).op, Op::MatMul { .. }) || !Ctx::gpu_type(wtype(c.node(mm))) {
        return None;
    }
    let add = c
        .only_consumer(mm)
        .filter(|a| matches!(c.node(*a).op, Op::Add))?;
    let ins = &c.node(add).inputs;
    let residual = if ins[0] == mm { ins[1] } else { ins[0] };
    let kernel = format!(
        "prep+matvec_{}_{}_add",
        wname(wtype(c.node(mm))),
        act_of(c.node(mm))
    );
    Some((
        GroupKind::MatmulAdd {
            matmul: mm,
            add,
            residual,
        },
        vec![mm, add],
        kernel,
    ))
}

/// Pass 4: RMSNorm whose only consumer is a matmul (final norm → logits).
fn fuse_norm_matmul(c: &Ctx, norm: NodeId) -> Option<(GroupKind, Vec<NodeId>, String)> {
    if !matches!(c.node(norm).op, Op::RmsNorm { .. }) {
        return None;
    }
    let mm = c
        .only_consumer(norm)
        .filter(|m| matches!(c.node(*m).op, Op::MatMul { .. }))?;
    if !Ctx::gpu_type(wtype(c.node(mm))) {
        return None;
    }
    let kernel = format!(
        "prep+matvec_{}_{}_none",
        wname(wtype(c.node(mm))),
        act_of(c.node(mm))
    );
    Some((
        GroupKind::NormMatmul { norm, matmul: mm },
        vec![norm, mm],
        kernel,
    ))
}

type Pass = (
    &'static str,
    fn(&Ctx, NodeId) -> Option<(GroupKind, Vec<NodeId>, String)>,
);

const PASSES: [Pass; 4] = [
    ("fuse_qkv", fuse_qkv),
    ("fuse_norm_gate_up", fuse_norm_gate_up),
    ("fuse_matmul_add", fuse_matmul_add),
    ("fuse_norm_matmul", fuse_norm_matmul),
];

/// Builds the schedule of `g`: fused groups (decode) or one group per node.
pub fn schedule(g: &Graph, fuse: bool) -> Schedule {
    let mut c = Ctx {
        g,
        cons: consumers(g),
        taken: vec![false; g.len()],
    };
    let mut groups: Vec<Group> = Vec::new();
    if fuse {
        for (pass, f) in PASSES {
            for (id, _) in g.nodes() {
                if c.taken[id.index()] {
                    continue;
                }
                // A faulted node keeps a kernel of its own (src/fault.rs).
                if let Some((kind, nodes, kernel)) = f(&c, id)
                    && c.free(&nodes)
                    && nodes.iter().all(|n| g.node(*n).fault.is_none())
                {
                    for n in &nodes {
                        c.taken[n.index()] = true;
                    }
                    groups.push(make_group(g, pass, kind, nodes, kernel));
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
                single_kernel(n),
            ));
        }
    }
    groups.sort_by_key(|gr| gr.output());
    Schedule {
        fused: fuse,
        groups,
    }
}

fn make_group(
    g: &Graph,
    pass: &'static str,
    kind: GroupKind,
    nodes: Vec<NodeId>,
    kernel: String,
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
        kernel,
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
