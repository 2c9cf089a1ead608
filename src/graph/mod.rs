//! The static op graph: one DAG (petgraph) of typed ops with stable node names, lowered
//! from a model file by instantiating an architecture description from `graph/` for N
//! layers. GGUF and APR files of the same model lower to the identical graph.

mod arch;
mod dump;
mod fault;
mod lower;
pub mod op;
mod pattern;

pub use arch::{ArchSpec, arch_names};
pub use dump::{DumpFormat, dump};
pub use fault::FaultKind;
pub use lower::{LowerOptions, lower};
pub use op::{ActSemantics, KvKind, KvType, Op};
pub use pattern::NodePattern;

use crate::model::Hparams;
use crate::quant::GgmlType;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use smallvec::SmallVec;

/// Index of a node in the graph (also its position in topological order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NodeId(pub u32);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The weight tensor a node reads, as found in the model file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WeightRef {
    pub name: String,
    pub dtype: GgmlType,
    /// Outermost first: `[rows, cols]` for matrices.
    pub shape: Vec<u64>,
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Stable name, e.g. `blk.3.ffn_gate` (see `graph/README.md`).
    pub name: String,
    pub op: Op,
    pub inputs: SmallVec<[NodeId; 3]>,
    /// Output row width; the output is `[T, width]` f32.
    pub width: usize,
    pub weight: Option<WeightRef>,
    /// Transformer block this node belongs to, if any.
    pub layer: Option<usize>,
    /// An injected fault (tests and debugging only; `src/fault.rs`).
    pub fault: Option<FaultKind>,
}

impl Node {
    /// The weight this node reads. Lowering gives every embedding, rms_norm, matmul and
    /// bias_add node one; calling this on another op is a programming error.
    pub fn weight(&self) -> &WeightRef {
        self.weight
            .as_ref()
            .unwrap_or_else(|| panic!("node `{}` ({}) has no weight", self.name, self.op.name()))
    }

    /// GGML type of the node's weight.
    pub fn weight_type(&self) -> GgmlType {
        self.weight().dtype
    }

    /// Input width K of a matmul (`[rows, K]` weight) or an embedding row.
    pub fn in_width(&self) -> usize {
        *self.weight().shape.last().expect("weights have a shape") as usize
    }

    /// Bytes of one weight row (whole GGML blocks; lowering checked the shape).
    pub fn row_bytes(&self) -> usize {
        self.weight_type()
            .bytes_for(self.in_width() as u64)
            .expect("lowering checked that rows are whole blocks") as usize
    }

    /// RMSNorm epsilon (0 for other ops).
    pub fn rms_eps(&self) -> f32 {
        match self.op {
            Op::RmsNorm { eps } => eps,
            _ => 0.0,
        }
    }

    /// Activation semantics of a matmul (f32 for every other op: they are f32 math).
    pub fn act(&self) -> ActSemantics {
        match self.op {
            Op::MatMul { act } => act,
            _ => ActSemantics::F32,
        }
    }
}

/// A lowered model: nodes in topological order (every node's inputs come before it).
#[derive(Clone, Debug)]
pub struct Graph {
    pub arch: String,
    pub hparams: Hparams,
    g: DiGraph<Node, ()>,
}

impl Graph {
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.g
            .node_indices()
            .map(move |i| (NodeId(i.index() as u32), &self.g[i]))
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[NodeIndex::new(id.index())]
    }

    /// Element type of the KV cache (lowering gives every kv_append and attention node the
    /// same; the default for a graph without them).
    pub fn kv_type(&self) -> KvType {
        self.nodes()
            .find_map(|(_, n)| match n.op {
                Op::KvAppend { kv, .. } | Op::Attention { kv, .. } => Some(kv),
                _ => None,
            })
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.g.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.g.node_count() == 0
    }

    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.nodes().find(|(_, n)| n.name == name).map(|(id, _)| id)
    }

    /// The final node (logits).
    pub fn output(&self) -> NodeId {
        NodeId(self.g.node_count() as u32 - 1)
    }

    /// The first node of the graph's output tail: the longest run of nodes at the end of the
    /// graph, the output included, whose ops compute each row from the same rows of their
    /// inputs alone and write nothing else — rms_norm, matmul, bias_add, silu, mul, add (not
    /// rope, which reads the step's positions, nor the cache appends, attention or the
    /// embedding). A step needs these values only at the rows whose logits it returns, so
    /// both executors compute them there alone: after the last attention of a transformer,
    /// the last block's output projection, its FFN and the final norm. Node order is
    /// topological, so nothing before the tail reads it.
    pub fn output_tail(&self) -> NodeId {
        let n = self.len();
        let row_wise = |i: usize| {
            matches!(
                self.node(NodeId(i as u32)).op,
                Op::RmsNorm { .. } | Op::MatMul { .. } | Op::BiasAdd | Op::Silu | Op::Mul | Op::Add
            )
        };
        let first = (0..n)
            .rev()
            .take_while(|&i| row_wise(i))
            .last()
            .unwrap_or(n);
        NodeId(first as u32)
    }

    /// Token ids a step may feed: the rows of the embedding matrix (lowering checks they
    /// cover the vocabulary), so no executor can read an embedding row out of range.
    pub fn n_tokens(&self) -> usize {
        self.nodes()
            .find(|(_, n)| matches!(n.op, Op::Embedding))
            .map_or(0, |(_, n)| n.weight().shape[0] as usize)
    }

    /// For every node, the last node (in order) that reads it; None when nothing does.
    pub fn last_use(&self) -> Vec<Option<NodeId>> {
        let mut last = vec![None; self.len()];
        for (id, n) in self.nodes() {
            for i in &n.inputs {
                last[i.index()] = Some(id);
            }
        }
        last
    }

    /// Marks a node as faulted (see `crate::fault::inject`).
    pub fn set_fault(&mut self, id: NodeId, kind: FaultKind) {
        self.g[NodeIndex::new(id.index())].fault = Some(kind);
    }

    /// The nodes carrying an injected fault.
    pub fn faults(&self) -> Vec<(NodeId, FaultKind)> {
        self.nodes()
            .filter_map(|(id, n)| n.fault.map(|f| (id, f)))
            .collect()
    }

    /// The petgraph view, for passes and DOT output.
    pub fn petgraph(&self) -> &DiGraph<Node, ()> {
        &self.g
    }
}
