//! Activation buffer plan: every value a group writes gets an offset in one arena; values
//! whose lifetimes (writing group .. last reading group) do not overlap share memory.

use super::{GroupKind, Schedule};
use crate::graph::{Graph, NodeId, Op};

#[derive(Clone, Debug)]
pub struct BufferPlan {
    /// Offset (in f32 elements) of each materialized node's buffer; None if not materialized.
    pub offset: Vec<Option<usize>>,
    /// Arena size in f32 elements.
    pub total: usize,
    /// Rows each buffer holds.
    pub rows: usize,
}

impl Schedule {
    /// Values a group writes to buffers.
    pub fn writes(&self, gi: usize) -> Vec<NodeId> {
        match &self.groups[gi].kind {
            GroupKind::Qkv { rope_q, .. } => vec![*rope_q],
            GroupKind::NormGateUp { mul, .. } => vec![*mul],
            GroupKind::MatmulAdd { add, .. } => vec![*add],
            // The gate's product stays in the GEMM's registers.
            GroupKind::GateUp { mul, .. } => vec![*mul],
            GroupKind::SharedInput { matmuls, .. } => matmuls.clone(),
            GroupKind::NormMatmul { matmul, .. } => vec![*matmul],
            // K and V go to the cache.
            GroupKind::QkvPost { rope_q, .. } => vec![*rope_q],
            GroupKind::Single { node } => vec![*node],
        }
    }

    /// Values a group reads from buffers.
    pub fn reads(&self, g: &Graph, gi: usize) -> Vec<NodeId> {
        match &self.groups[gi].kind {
            GroupKind::Qkv { norm, .. }
            | GroupKind::NormGateUp { norm, .. }
            | GroupKind::NormMatmul { norm, .. } => {
                vec![g.node(*norm).inputs[0]]
            }
            GroupKind::MatmulAdd {
                matmul, residual, ..
            } => vec![g.node(*matmul).inputs[0], *residual],
            // With the norm prologue, the rows before the norm.
            GroupKind::GateUp { norm, gate, .. } => {
                vec![g.node(norm.unwrap_or(*gate)).inputs[0]]
            }
            GroupKind::SharedInput { norm, matmuls } => {
                vec![g.node(norm.unwrap_or(matmuls[0])).inputs[0]]
            }
            GroupKind::QkvPost { q, k, v, .. } => vec![*q, *k, *v],
            GroupKind::Single { node } => {
                let n = g.node(*node);
                match n.op {
                    // Attention reads K and V from the cache, not from the append nodes.
                    Op::Attention { .. } => vec![n.inputs[0]],
                    _ => n.inputs.to_vec(),
                }
            }
        }
    }

    /// Plans buffers for steps of up to `rows` token rows. The graph output (logits) is
    /// left out: the executor sizes it by the logit rows it is asked for.
    pub fn plan(&self, g: &Graph, rows: usize) -> BufferPlan {
        let n = g.len();
        let mut start = vec![usize::MAX; n];
        let mut end = vec![0usize; n];
        for gi in 0..self.groups.len() {
            for w in self.writes(gi) {
                start[w.index()] = gi;
                end[w.index()] = end[w.index()].max(gi);
            }
            for r in self.reads(g, gi) {
                end[r.index()] = end[r.index()].max(gi);
            }
        }
        let mut vals: Vec<usize> = (0..n)
            .filter(|&i| start[i] != usize::MAX && NodeId(i as u32) != g.output())
            .collect();
        vals.sort_by_key(|&i| (start[i], i));
        let mut offset = vec![None; n];
        let mut live: Vec<(usize, usize, usize)> = Vec::new(); // (offset, size, end)
        let mut total = 0;
        for i in vals {
            live.retain(|&(_, _, e)| e >= start[i]);
            live.sort_by_key(|&(o, _, _)| o);
            let size = (rows * g.node(NodeId(i as u32)).width).div_ceil(64) * 64;
            let mut at = 0;
            for &(o, s, _) in &live {
                if at + size <= o {
                    break;
                }
                at = at.max(o + s);
            }
            live.push((at, size, end[i]));
            offset[i] = Some(at);
            total = total.max(at + size);
        }
        BufferPlan {
            offset,
            total,
            rows,
        }
    }
}
