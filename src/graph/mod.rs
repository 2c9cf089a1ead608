//! The static op graph: one DAG (petgraph) of typed ops with stable node names, lowered
//! from a model file by instantiating an architecture description from `graph/` for N
//! layers. GGUF and APR files of the same model lower to the identical graph.

mod arch;
mod dump;
mod lower;
pub mod op;

pub use arch::{ArchSpec, arch_names};
pub use dump::{DumpFormat, dump};
pub use lower::{LowerOptions, lower};
pub use op::{ActSemantics, KvKind, Op};

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
    pub fault: Option<crate::fault::FaultKind>,
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
    pub fn set_fault(&mut self, id: NodeId, kind: crate::fault::FaultKind) {
        self.g[NodeIndex::new(id.index())].fault = Some(kind);
    }

    /// The nodes carrying an injected fault.
    pub fn faults(&self) -> Vec<(NodeId, crate::fault::FaultKind)> {
        self.nodes()
            .filter_map(|(id, n)| n.fault.map(|f| (id, f)))
            .collect()
    }

    /// The petgraph view, for passes and DOT output.
    pub fn petgraph(&self) -> &DiGraph<Node, ()> {
        &self.g
    }
}
