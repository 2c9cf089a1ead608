//! One step's node outputs of one side, kept by node id (buffers reused across steps);
//! B's observer that compares each output with A's as it is produced; the step written as
//! an ordinary trace directory.

use super::tally::Tally;
use crate::error::{Error, Result};
use crate::exec::{Executor, Observer};
use crate::graph::{ActSemantics, Node, NodeId, Op};
use crate::trace::{Meta, Record, Stats, npy};
use std::io::Write;
use std::path::Path;

/// What a trace record needs to know about a node.
#[derive(Clone)]
struct NodeInfo {
    name: String,
    op: &'static str,
    layer: Option<usize>,
    width: usize,
    act: Option<ActSemantics>,
}

impl NodeInfo {
    fn of(n: &Node) -> NodeInfo {
        NodeInfo {
            name: n.name.clone(),
            op: n.op.name(),
            layer: n.layer,
            width: n.width,
            act: match &n.op {
                Op::MatMul { act } => Some(*act),
                _ => None,
            },
        }
    }
}

#[derive(Default)]
struct Output {
    pos: usize,
    rows: usize,
    data: Vec<f32>,
    /// Kernel group (fused GPU runs) and the nodes it covers.
    group: Option<(String, Vec<NodeId>)>,
}

/// The node outputs of one step of one side, by node id (buffers reused across steps).
#[derive(Default)]
pub(super) struct StepRecord {
    info: Vec<Option<NodeInfo>>,
    out: Vec<Output>,
    present: Vec<bool>,
    /// Node ids in the order they were produced.
    pub(super) order: Vec<NodeId>,
    pending_group: Option<(String, Vec<NodeId>)>,
}

impl StepRecord {
    pub(super) fn begin(&mut self) {
        for id in self.order.drain(..) {
            self.present[id.index()] = false;
        }
        self.pending_group = None;
    }

    pub(super) fn keep(&mut self, id: NodeId, node: &Node, pos: usize, rows: usize, data: &[f32]) {
        let i = id.index();
        if i >= self.out.len() {
            self.out.resize_with(i + 1, Output::default);
            self.info.resize(i + 1, None);
            self.present.resize(i + 1, false);
        }
        if self.info[i].is_none() {
            self.info[i] = Some(NodeInfo::of(node));
        }
        let group = self.pending_group.take();
        let o = &mut self.out[i];
        if self.present[i] && o.pos + o.rows == pos {
            // The next chunk of a prefill that the executor ran in several parts.
            o.rows += rows;
            o.data.extend_from_slice(data);
            return;
        }
        o.pos = pos;
        o.rows = rows;
        o.data.clear();
        o.data.extend_from_slice(data);
        o.group = group;
        if !self.present[i] {
            self.present[i] = true;
            self.order.push(id);
        }
    }

    /// Rows `pos..pos+rows` of a node's output in this step, if they were all produced.
    fn rows(&self, id: NodeId, pos: usize, rows: usize) -> Option<(&[f32], &Output)> {
        let o = self.get(id)?;
        let w = o.data.len() / o.rows.max(1);
        let start = pos.checked_sub(o.pos)?;
        (start + rows <= o.rows).then(|| (&o.data[start * w..(start + rows) * w], o))
    }

    /// Whether the node produced output in this step.
    pub(super) fn has(&self, id: NodeId) -> bool {
        self.get(id).is_some()
    }

    fn get(&self, id: NodeId) -> Option<&Output> {
        let i = id.index();
        (i < self.present.len() && self.present[i]).then(|| &self.out[i])
    }
}

impl Observer for StepRecord {
    fn node_done(
        &mut self,
        id: NodeId,
        node: &Node,
        pos: usize,
        rows: usize,
        data: &mut [f32],
    ) -> Result<()> {
        self.keep(id, node, pos, rows, data);
        Ok(())
    }
    fn group(&mut self, kernel: Option<&str>, covers: &[NodeId]) {
        self.pending_group = kernel.map(|k| (k.to_string(), covers.to_vec()));
    }
}

/// B's observer: keeps B's outputs and compares each with A's as it is produced.
pub(super) struct Checker<'x> {
    pub(super) a: &'x StepRecord,
    pub(super) b: &'x mut StepRecord,
    pub(super) tally: &'x mut Tally,
    pub(super) step: usize,
}

impl Observer for Checker<'_> {
    fn node_done(
        &mut self,
        id: NodeId,
        node: &Node,
        pos: usize,
        rows: usize,
        data: &mut [f32],
    ) -> Result<()> {
        let group = self.b.pending_group.clone();
        self.b.keep(id, node, pos, rows, data);
        // A chunk of B's prefill is compared with the same rows of A's output.
        match self.a.rows(id, pos, rows) {
            Some((a, oa)) => {
                let group = oa.group.as_ref().or(group.as_ref()).map(|g| g.0.as_str());
                self.tally
                    .compare(id, node, group, self.step, pos, a, data)?;
            }
            None => self.tally.one_sided += 1,
        }
        Ok(())
    }
    fn group(&mut self, kernel: Option<&str>, covers: &[NodeId]) {
        self.b.group(kernel, covers);
    }
}

/// Writes one step of one side as an ordinary trace directory (`trace.jsonl`, full tensors,
/// `meta.json`), records in the order they were produced, with the run's step number.
pub(super) fn write_trace(
    dir: &Path,
    rec: &StepRecord,
    step: usize,
    executor: Executor,
    meta: &Meta,
) -> Result<()> {
    for f in ["trace.jsonl", "meta.json"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let _ = std::fs::remove_dir_all(dir.join("tensors"));
    let tensors = dir.join("tensors");
    std::fs::create_dir_all(&tensors).map_err(|e| Error::io(&tensors, e))?;
    let path = dir.join("trace.jsonl");
    let file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
    let mut w = std::io::BufWriter::new(file);
    for &id in &rec.order {
        let (o, info) = (
            &rec.out[id.index()],
            rec.info[id.index()].as_ref().expect("kept with its info"),
        );
        let name = format!("{}@{}.npy", info.name, o.pos);
        npy::write_f32(&tensors.join(&name), &[o.rows, info.width], &o.data)?;
        let covers = o.group.as_ref().map(|g| {
            g.1.iter()
                .map(|c| {
                    meta.nodes
                        .get(c.index())
                        .map_or_else(|| format!("#{}", c.0), |n| n.name.clone())
                })
                .collect()
        });
        let r = Record {
            node: info.name.clone(),
            op: info.op.to_string(),
            index: id.0,
            layer: info.layer,
            group: o.group.as_ref().map(|g| g.0.clone()),
            covers,
            act: info.act,
            dtype: "f32".into(),
            shape: [o.rows, info.width],
            pos: o.pos,
            step,
            executor,
            stats: Stats::of(&o.data),
            tensor: Some(name),
        };
        let line = serde_json::to_string(&r).expect("record serializes");
        writeln!(w, "{line}").map_err(|e| Error::io(&path, e))?;
    }
    w.flush().map_err(|e| Error::io(&path, e))?;
    let mp = dir.join("meta.json");
    let text = serde_json::to_string_pretty(meta).expect("meta serializes");
    std::fs::write(&mp, text + "\n").map_err(|e| Error::io(&mp, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_records_reuse_buffers_and_forget_the_previous_step() {
        let node = Node {
            name: "blk.0.ffn_up".into(),
            op: Op::Silu,
            inputs: Default::default(),
            width: 2,
            weight: None,
            layer: Some(0),
            fault: None,
        };
        let mut r = StepRecord::default();
        r.begin();
        r.keep(NodeId(3), &node, 5, 1, &[1.0, 2.0]);
        assert_eq!(
            r.get(NodeId(3)).map(|o| o.data.clone()),
            Some(vec![1.0, 2.0])
        );
        assert!(r.get(NodeId(1)).is_none());
        r.begin();
        assert!(r.get(NodeId(3)).is_none());
        r.keep(NodeId(3), &node, 6, 1, &[4.0, 5.0]);
        let o = r.get(NodeId(3)).unwrap();
        assert_eq!((o.pos, o.data.as_slice()), (6, &[4.0, 5.0][..]));
    }

    #[test]
    fn prefill_chunks_join_and_any_row_range_can_be_compared() {
        let node = Node {
            name: "blk.0.attn_norm".into(),
            op: Op::Silu,
            inputs: Default::default(),
            width: 2,
            weight: None,
            layer: Some(0),
            fault: None,
        };
        let mut r = StepRecord::default();
        r.begin();
        // A prefill of 3 rows run as chunks of 2 and 1 rows is one output of 3 rows.
        r.keep(NodeId(0), &node, 0, 2, &[0.0, 1.0, 2.0, 3.0]);
        r.keep(NodeId(0), &node, 2, 1, &[4.0, 5.0]);
        assert_eq!(r.order, vec![NodeId(0)]);
        assert_eq!(r.get(NodeId(0)).unwrap().rows, 3);
        // The other side's chunks are compared with the same rows.
        assert_eq!(
            r.rows(NodeId(0), 1, 2).unwrap().0,
            &[2.0, 3.0, 4.0, 5.0][..]
        );
        assert!(r.rows(NodeId(0), 2, 2).is_none());
        assert!(r.rows(NodeId(1), 0, 1).is_none());
    }
}
