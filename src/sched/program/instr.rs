//! The instruction format of the persistent program: the buffers an instruction reads and
//! writes (`Region`), what it computes (`Body`), the instruction (`Instr`) and the program
//! (`Program`), with their descriptions for `graphrun dump`.

use super::sizing::{AttnGeom, Staging};
use crate::codegen::catalogue::{ARGMAX_CHUNK, POp, QKV_PAIRS};
use crate::codegen::{Act, Epi, Kv, WType};
use crate::graph::NodeId;
use crate::sched::BufferPlan;

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

impl Program {
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
