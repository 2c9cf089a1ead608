//! Traces: one JSON record per executed node per step (same format from every executor),
//! optionally with full tensors as `.npy`. The format is documented in `README.md` here.

pub mod npy;
pub mod stats;

pub use crate::graph::NodePattern;
pub use stats::Stats;

use crate::error::{Error, Result};
use crate::exec::{Executor, Observer};
use crate::graph::{ActSemantics, KvType, Node, NodeId, Op};
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
    /// Kernel(s) of the fused group whose output this is (fused GPU traces), else null.
    pub group: Option<String>,
    /// Graph nodes the fused group covers (its last one is `node`), else absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covers: Option<Vec<String>>,
    /// Matmul activation semantics (`f32` | `q8`), else null.
    pub act: Option<ActSemantics>,
    pub dtype: String,
    /// `[rows, width]`.
    pub shape: [usize; 2],
    /// Position of the first row (prefill rows are pos..pos+rows).
    pub pos: usize,
    /// Executor step (0 = prefill, then one per decode token).
    pub step: usize,
    pub executor: Executor,
    pub stats: Stats,
    /// File name of the full tensor under `tensors/`, when written.
    pub tensor: Option<String>,
}

/// Writes `trace.jsonl` (and `tensors/*.npy`) into a directory.
pub struct Tracer {
    dir: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    nodes: NodePattern,
    tensors: Option<NodePattern>,
    executor: Executor,
    step: usize,
    /// A step has started (the next `step_start` begins step 1, 2, ...).
    started: bool,
    /// The group announced for the next record (`Observer::group`).
    pending_group: Option<(String, Vec<String>)>,
    /// Written as `meta.json` by `finish`.
    pub meta: Option<Meta>,
    records: usize,
    tensor_bytes: u64,
}

/// `meta.json` beside `trace.jsonl`: what ran, so `graphrun diff` can pick the comparison
/// kind and walk the graph (inputs of a node) without the model file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Meta {
    /// `graphrun` version that wrote the trace.
    pub graphrun: String,
    pub model: String,
    /// `gguf` or `apr`.
    pub format: String,
    pub arch: String,
    /// `interp` or `cuda` (null before the executor is chosen).
    pub executor: Option<Executor>,
    /// Activation semantics of the graph's matmuls (`f32` | `q8`).
    pub act: Option<ActSemantics>,
    /// Element type of the KV cache (`f16` | `f32`; null in traces written before it was
    /// recorded).
    #[serde(default)]
    pub kv: Option<KvType>,
    /// The model's weights are graphrun's synthetic ones (random, well-scaled): q8 drift
    /// bands differ from real weights' (contracts/trace_same_semantics.toml).
    #[serde(default)]
    pub synthetic: bool,
    /// Fused GPU schedule (decode steps record group outputs only).
    pub fused: bool,
    /// Injected faults (`NODE:KIND`), empty for a normal run.
    pub faults: Vec<String>,
    pub prompt_tokens: Vec<u32>,
    /// Tokens chosen greedily after the prefill and after each decode step.
    pub generated: Vec<u32>,
    /// Every graph node in topological order, with its inputs.
    pub nodes: Vec<MetaNode>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MetaNode {
    pub name: String,
    pub op: String,
    pub layer: Option<usize>,
    pub inputs: Vec<String>,
}

impl Meta {
    /// The graph part of the metadata.
    pub fn nodes_of(g: &crate::graph::Graph) -> Vec<MetaNode> {
        g.nodes()
            .map(|(_, n)| MetaNode {
                name: n.name.clone(),
                op: n.op.name().to_string(),
                layer: n.layer,
                inputs: n.inputs.iter().map(|i| g.node(*i).name.clone()).collect(),
            })
            .collect()
    }
}

impl Tracer {
    /// Creates `dir` (an existing file there is an error that says so) and its
    /// `trace.jsonl`.
    pub fn create(
        dir: &Path,
        nodes: NodePattern,
        tensors: Option<NodePattern>,
        executor: Executor,
    ) -> Result<Tracer> {
        check_trace_dir(dir)?;
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
            executor,
            step: 0,
            started: false,
            pending_group: None,
            meta: None,
            records: 0,
            tensor_bytes: 0,
        })
    }

    /// Records written so far, and bytes of full tensors.
    pub fn written(&self) -> (usize, u64) {
        (self.records, self.tensor_bytes)
    }

    /// Flushes `trace.jsonl` and writes `meta.json` (when set); returns the trace path.
    pub fn finish(mut self) -> Result<PathBuf> {
        let p = self.dir.join("trace.jsonl");
        self.out.flush().map_err(|e| Error::io(&p, e))?;
        if let Some(m) = &self.meta {
            let mp = self.dir.join("meta.json");
            let text = serde_json::to_string_pretty(m).expect("meta serializes");
            std::fs::write(&mp, text + "\n").map_err(|e| Error::io(&mp, e))?;
        }
        Ok(p)
    }
}

/// A trace output directory must be a directory or not exist yet (checked before a run, so
/// `-o FILE` fails at once with a message that says what is wrong).
pub fn check_trace_dir(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(Error::invalid(format!(
            "{}: exists and is not a directory (a trace is a directory: give a new or existing directory)",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// Reads `meta.json` from a trace directory (or the directory of a `trace.jsonl`); None
/// when the trace has none (e.g. written by an older graphrun).
pub fn read_meta(path: &Path) -> Result<Option<Meta>> {
    let mp = dir_of(path).join("meta.json");
    if !mp.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&mp).map_err(|e| Error::io(&mp, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::format(&mp.display().to_string(), "meta.json", 0, e.to_string()))
}

impl Observer for Tracer {
    fn step_start(&mut self) {
        if self.started {
            self.step += 1;
        }
        self.started = true;
    }

    fn group(&mut self, kernel: Option<&str>, covers: &[NodeId]) {
        self.pending_group = kernel.map(|k| {
            let names = match &self.meta {
                Some(m) => covers
                    .iter()
                    .filter_map(|c| m.nodes.get(c.index()).map(|n| n.name.clone()))
                    .collect(),
                None => covers.iter().map(|c| format!("#{}", c.0)).collect(),
            };
            (k.to_string(), names)
        });
    }

    fn node_done(
        &mut self,
        id: NodeId,
        node: &Node,
        pos: usize,
        rows: usize,
        data: &mut [f32],
    ) -> Result<()> {
        let group = self.pending_group.take();
        if !self.nodes.matches(&node.name) {
            // Not recorded, but still checked (see below).
            if data.iter().all(|v| v.is_finite()) {
                return Ok(());
            }
            let st = Stats::of(data);
            let covers = group.as_ref().map(|g| g.1.as_slice());
            return Err(non_finite(node, pos, rows, st.nan, st.inf, covers));
        }
        let tensor = match &self.tensors {
            Some(p) if p.matches(&node.name) => {
                let name = format!("{}@{}.npy", node.name, pos);
                let path = self.dir.join("tensors").join(&name);
                npy::write_f32(&path, &[rows, node.width], data)?;
                self.tensor_bytes += (data.len() * 4) as u64;
                Some(name)
            }
            _ => None,
        };
        let rec = Record {
            node: node.name.clone(),
            op: node.op.name().to_string(),
            index: id.0,
            layer: node.layer,
            covers: group.as_ref().map(|g| g.1.clone()),
            group: group.map(|g| g.0),
            act: match &node.op {
                Op::MatMul { act } => Some(*act),
                _ => None,
            },
            dtype: "f32".into(),
            shape: [rows, node.width],
            pos,
            step: self.step,
            executor: self.executor,
            stats: Stats::of(data),
            tensor,
        };
        self.records += 1;
        let line = serde_json::to_string(&rec).expect("record serializes");
        writeln!(self.out, "{line}").map_err(|e| Error::io(self.dir.join("trace.jsonl"), e))?;
        // Every recorded node is checked: the trace stops at the first one whose output
        // holds NaN/Inf (its record is written), since everything after it is poisoned.
        if rec.stats.nan + rec.stats.inf > 0 {
            return Err(non_finite(
                node,
                pos,
                rows,
                rec.stats.nan,
                rec.stats.inf,
                rec.covers.as_deref(),
            ));
        }
        Ok(())
    }
}

/// The error for the first node whose output holds NaN or ±Inf. Nodes run in topological
/// order and every earlier one was finite, so this node's inputs were finite: the node
/// itself (its op, or its weight) produced the values.
fn non_finite(
    node: &Node,
    pos: usize,
    rows: usize,
    nan: u64,
    inf: u64,
    covers: Option<&[String]>,
) -> Error {
    let culprit = match (&node.weight, covers) {
        (_, Some(c)) if c.len() > 1 => format!(
            "the fused kernel group covering {} produced them",
            c.join(", ")
        ),
        (Some(w), _) => format!(
            "its inputs were finite, so the op or its weight `{}` produced them",
            w.name
        ),
        (None, _) => "its inputs were finite, so the op produced them".to_string(),
    };
    Error::invalid(format!(
        "node `{}` ({}) is the first to produce non-finite values: {nan} NaN and {inf} Inf \
in its output at positions {pos}..{}; {culprit}",
        node.name,
        node.op.name(),
        pos + rows
    ))
}

/// Stops a run at the first node whose output holds NaN or ±Inf, with an error naming it
/// (a NaN in a weight otherwise yields fluent-looking text: q8 activation quantization
/// turns it into a zero). Costs one pass over each node's output, which is small beside
/// the node's own work on the CPU interpreter; on the GPU it would force a copy of every
/// node, so generation there checks only the logits. `hint` is appended to the error.
pub struct FiniteCheck<'a> {
    pub inner: &'a mut dyn Observer,
    pub hint: String,
}

impl Observer for FiniteCheck<'_> {
    fn step_start(&mut self) {
        self.inner.step_start()
    }

    fn group(&mut self, kernel: Option<&str>, covers: &[NodeId]) {
        self.inner.group(kernel, covers)
    }

    fn node_done(
        &mut self,
        id: NodeId,
        node: &Node,
        pos: usize,
        rows: usize,
        data: &mut [f32],
    ) -> Result<()> {
        self.inner.node_done(id, node, pos, rows, data)?;
        if data.iter().all(|v| v.is_finite()) {
            return Ok(());
        }
        let nan = data.iter().filter(|v| v.is_nan()).count() as u64;
        let inf = data.iter().filter(|v| v.is_infinite()).count() as u64;
        Err(match non_finite(node, pos, rows, nan, inf, None) {
            Error::Invalid(m) => Error::invalid(format!("{m}\n  {}", self.hint)),
            e => e,
        })
    }
}

/// The trace directory named by `path`: the directory itself, or the one holding the
/// given `trace.jsonl`.
pub fn dir_of(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
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
