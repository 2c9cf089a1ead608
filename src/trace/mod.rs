//! Traces: one JSON record per executed node per step (same format from every executor),
//! optionally with full tensors as `.npy`. The format is documented in `README.md` here.

pub mod npy;
pub mod stats;

pub use stats::Stats;

use crate::error::{Error, Result};
use crate::exec::Observer;
use crate::graph::{Node, NodeId, Op};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One line of `trace.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Record {
    /// Graph node name (`blk.3.ffn_gate`); for fused GPU traces, the last node of the group.
    pub node: String,
    pub op: String,
    /// Index of the node in topological order (for ordering diffs).
    pub index: u32,
    pub layer: Option<usize>,
    /// Kernel group (fused GPU traces), else null.
    pub group: Option<String>,
    /// Matmul activation semantics (`f32` | `q8`), else null.
    pub act: Option<String>,
    pub dtype: String,
    /// `[rows, width]`.
    pub shape: [usize; 2],
    /// Position of the first row (prefill rows are pos..pos+rows).
    pub pos: usize,
    /// Executor step (0 = prefill, then one per decode token).
    pub step: usize,
    pub executor: String,
    pub stats: Stats,
    /// File name of the full tensor under `tensors/`, when written.
    pub tensor: Option<String>,
}

/// Glob patterns (`*` any run, `?` one char), comma separated: `blk.3.*,logits`.
#[derive(Clone, Debug)]
pub struct NodePattern(Vec<String>);

impl NodePattern {
    pub fn new(s: &str) -> NodePattern {
        NodePattern(
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
        )
    }
    pub fn all() -> NodePattern {
        NodePattern(vec!["*".into()])
    }
    pub fn matches(&self, name: &str) -> bool {
        self.0.iter().any(|p| glob(p.as_bytes(), name.as_bytes()))
    }
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((b'?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

/// Writes `trace.jsonl` (and `tensors/*.npy`) into a directory.
pub struct Tracer {
    dir: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    nodes: NodePattern,
    tensors: Option<NodePattern>,
    executor: String,
    step: usize,
    last_pos: Option<usize>,
    /// Optional group name per node (fused traces).
    pub groups: Option<Vec<Option<String>>>,
}

impl Tracer {
    pub fn create(
        dir: &Path,
        nodes: NodePattern,
        tensors: Option<NodePattern>,
        executor: &str,
    ) -> Result<Tracer> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        if tensors.is_some() {
            let t = dir.join("tensors");
            std::fs::create_dir_all(&t).map_err(|e| Error::io(&t, e))?;
        }
        let path = dir.join("trace.jsonl");
        let f = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        Ok(Tracer {
            dir: dir.to_path_buf(),
            out: std::io::BufWriter::new(f),
            nodes,
            tensors,
            executor: executor.to_string(),
            step: 0,
            last_pos: None,
            groups: None,
        })
    }

    pub fn finish(mut self) -> Result<PathBuf> {
        let p = self.dir.join("trace.jsonl");
        self.out.flush().map_err(|e| Error::io(&p, e))?;
        Ok(p)
    }
}

impl Observer for Tracer {
    fn node_done(
        &mut self,
        id: NodeId,
        node: &Node,
        pos: usize,
        rows: usize,
        data: &mut [f32],
    ) -> Result<()> {
        // A new step starts when the first node (embedding) runs again.
        if id.0 == 0 {
            if self.last_pos.is_some() {
                self.step += 1;
            }
            self.last_pos = Some(pos);
        }
        if !self.nodes.matches(&node.name) {
            return Ok(());
        }
        let tensor = match &self.tensors {
            Some(p) if p.matches(&node.name) => {
                let name = format!("{}@{}.npy", node.name, pos);
                let path = self.dir.join("tensors").join(&name);
                npy::write_f32(&path, &[rows, node.width], data)?;
                Some(name)
            }
            _ => None,
        };
        let rec = Record {
            node: node.name.clone(),
            op: node.op.name().to_string(),
            index: id.0,
            layer: node.layer,
            group: self.groups.as_ref().and_then(|g| g[id.index()].clone()),
            act: match &node.op {
                Op::MatMul { act } => Some(act.name().to_string()),
                _ => None,
            },
            dtype: "f32".into(),
            shape: [rows, node.width],
            pos,
            step: self.step,
            executor: self.executor.clone(),
            stats: Stats::of(data),
            tensor,
        };
        let line = serde_json::to_string(&rec).expect("record serializes");
        writeln!(self.out, "{line}").map_err(|e| Error::io(self.dir.join("trace.jsonl"), e))
    }
}

/// Reads a `trace.jsonl` (or a directory holding one).
pub fn read(path: &Path) -> Result<Vec<Record>> {
    let file = if path.is_dir() {
        path.join("trace.jsonl")
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                Error::format(
                    &file.display().to_string(),
                    &format!("line {}", i + 1),
                    0,
                    e.to_string(),
                )
            })
        })
        .collect()
}
