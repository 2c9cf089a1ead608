//! The comparison itself: every aligned segment measured and judged against its band, per
//! layer summaries, and the first divergence with its inputs' verdicts.

use super::align::{How, align, merged_stats};
use super::contract::{band, choose_contract, load_contract, record_class};
use super::{Side, Trace, layer_key};
use crate::contracts;
use crate::error::{Error, Result};
use crate::graph::{ActSemantics, KvType};
use crate::metrics::{self, Metrics};
use crate::trace::{Record, Stats};
use serde::Serialize;
use std::collections::HashMap;

/// The metrics of one aligned pair of records (or of one segment of their rows).
#[derive(Clone, Debug, Serialize)]
pub struct NodeDiff {
    pub node: String,
    pub op: String,
    pub layer: Option<usize>,
    pub pos: usize,
    pub step: usize,
    pub index: u32,
    pub rows: usize,
    pub max_abs: Option<f64>,
    pub nmse: f64,
    pub cosine: Option<f64>,
    pub std_ratio: f64,
    /// True when no full tensors were traced: `nmse` is then the lower bound from the norms.
    pub from_stats: bool,
    pub band: f64,
    pub in_band: bool,
    /// Why the pair is out of band regardless of the metric (NaN/Inf), if so.
    pub note: Option<String>,
    /// Kernel group of the record (fused GPU traces), from either side.
    pub group: Option<String>,
    /// `split` or `merged` when the rows were realigned (chunked vs unchunked prefill).
    pub aligned: Option<&'static str>,
}

/// Per layer: the worst record relative to its band.
#[derive(Clone, Debug, Serialize)]
pub struct LayerSummary {
    /// `embd`, a block number, or `head`.
    pub layer: String,
    pub worst_nmse: f64,
    pub worst_node: String,
    pub band: f64,
    pub out_of_band: usize,
}

/// An input of the first divergent node, as found in the traces.
#[derive(Clone, Debug, Serialize)]
pub struct InputDiff {
    pub node: String,
    /// The graph input it stands for, when the input itself was not recorded (inside a
    /// fused group) and this is its nearest recorded ancestor.
    pub via: Option<String>,
    pub nmse: f64,
    pub band: f64,
    pub in_band: bool,
}

/// The runs' fed tokens differ from `pos` on (greedy decoding chose differently).
#[derive(Clone, Debug, Serialize)]
pub struct InputsDiffer {
    pub pos: usize,
    pub token_a: u32,
    pub token_b: u32,
    /// Records at or after `pos` in A, set aside.
    pub records_not_compared: usize,
}

/// Why the first divergent record left its band.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// Its inputs are within band (or it has none): the node itself computes differently.
    Culprit,
    /// An input is already out of band: the error came from upstream.
    Inherited,
    /// None of its inputs was recorded.
    Unknown,
}

#[derive(Clone, Debug, Serialize)]
pub struct FirstDivergence {
    /// Index into `Report::nodes`.
    pub at: usize,
    pub inputs: Vec<InputDiff>,
    pub cause: Cause,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub a: Side,
    pub b: Side,
    pub contract: String,
    pub contract_path: String,
    /// Why this contract was chosen (or `--contract`).
    pub contract_reason: String,
    pub nodes: Vec<NodeDiff>,
    pub only_in_a: Vec<String>,
    pub only_in_b: Vec<String>,
    /// Segments whose rows were split or merged to align chunked and unchunked prefills.
    pub realigned_split: usize,
    pub realigned_merged: usize,
    pub layers: Vec<LayerSummary>,
    pub out_of_band: usize,
    pub first_divergence: Option<FirstDivergence>,
    /// Set when the two runs were fed different tokens from some position on.
    pub inputs_differ: Option<InputsDiffer>,
    /// Node names (graph order) and their inputs, from the traces' metadata.
    #[serde(skip)]
    pub graph: Vec<(String, Vec<String>)>,
}

/// Full tensors, read once per record (a split record serves several segments).
struct Tensors<'t> {
    trace: &'t Trace,
    cache: HashMap<String, Vec<f32>>,
}

impl<'t> Tensors<'t> {
    /// Rows `pos .. pos + rows` of record `r`, or None without a full tensor.
    fn rows(&mut self, r: &Record, pos: usize, rows: usize) -> Result<Option<Vec<f32>>> {
        let Some(name) = &r.tensor else {
            return Ok(None);
        };
        if !self.cache.contains_key(name) {
            let Some(t) = self.trace.tensor(r)? else {
                return Ok(None);
            };
            self.cache.insert(name.clone(), t);
        }
        let w = r.shape[1];
        let t = &self.cache[name];
        Ok(Some(
            t[(pos - r.pos) * w..(pos - r.pos + rows) * w].to_vec(),
        ))
    }
}

/// The tokens fed at every position of a traced run (prompt, then the greedy choices).
fn fed(t: &Trace) -> Option<Vec<u32>> {
    t.meta.as_ref().map(|m| {
        let steps = t.records.iter().map(|r| r.step).max().unwrap_or(0);
        let mut v = m.prompt_tokens.clone();
        v.extend(m.generated.iter().take(steps));
        v
    })
}

fn std_ratio(a: &Stats, b: &Stats) -> f64 {
    if b.std > 0.0 {
        a.std / b.std
    } else if a.std == 0.0 {
        1.0
    } else {
        f64::INFINITY
    }
}

/// Compares two traces under a contract (None: chosen by `choose_contract`).
pub fn diff(a: &Trace, b: &Trace, contract: Option<&str>) -> Result<Report> {
    let (sa, sb) = (a.describe(), b.describe());
    let (c, reason) = match contract {
        Some(spec) => (load_contract(spec)?, "given with --contract".to_string()),
        None => {
            let (name, why) = choose_contract(&sa, &sb);
            (contracts::load(name)?, why)
        }
    };
    // Traces written before the cache type was recorded used an f32 cache.
    let sides = [
        (
            sa.act.unwrap_or(ActSemantics::Q8),
            sa.kv.unwrap_or(KvType::F32),
        ),
        (
            sb.act.unwrap_or(ActSemantics::Q8),
            sb.kv.unwrap_or(KvType::F32),
        ),
    ];
    let real = !(sa.synthetic || sb.synthetic);
    // Records are comparable only while both runs were fed the same tokens: a greedy
    // decode that picked a different token (a near-tie) makes later positions differ in
    // input, not in arithmetic. Those records are set aside and reported.
    let inputs_differ_at = match (fed(a), fed(b)) {
        (Some(x), Some(y)) => x
            .iter()
            .zip(&y)
            .position(|(p, q)| p != q)
            .map(|p| (p, x[p], y[p])),
        _ => None,
    };
    let cutoff = inputs_differ_at.map_or(usize::MAX, |d| d.0);
    if let Some((0, ta, tb)) = inputs_differ_at {
        return Err(Error::invalid(format!(
            "{} and {} were run on different prompts (first token {ta} vs {tb}): nothing to compare",
            a.dir.display(),
            b.dir.display()
        )));
    }
    let graph: Vec<(String, Vec<String>)> = a
        .meta
        .as_ref()
        .or(b.meta.as_ref())
        .map(|m| {
            m.nodes
                .iter()
                .map(|n| (n.name.clone(), n.inputs.clone()))
                .collect()
        })
        .unwrap_or_default();
    let output_node = graph.last().map(|(n, _)| n.as_str());
    let mut al = align(a, b);
    al.segments
        .sort_by_key(|s| (s.a[0].step, s.a[0].index, s.pos));
    let (mut ta, mut tb) = (
        Tensors {
            trace: a,
            cache: HashMap::new(),
        },
        Tensors {
            trace: b,
            cache: HashMap::new(),
        },
    );
    let (mut nodes, mut not_compared) = (Vec::new(), 0usize);
    let (mut realigned_split, mut realigned_merged) = (0, 0);
    for s in &al.segments {
        if s.pos + s.rows > cutoff {
            not_compared += 1;
            continue;
        }
        let (ra, rb) = (s.a[0], s.b[0]);
        let band = band(&c, sides, &record_class(ra, output_node), real)?;
        let tensors = match (s.a.as_slice(), s.b.as_slice()) {
            ([x], [y]) => match (ta.rows(x, s.pos, s.rows)?, tb.rows(y, s.pos, s.rows)?) {
                (Some(p), Some(q)) => Some((p, q)),
                _ => None,
            },
            _ => None,
        };
        let (m, from_stats, ratio) = match tensors {
            Some((p, q)) => (
                metrics::compare(&p, &q),
                false,
                std_ratio(&Stats::of(&p), &Stats::of(&q)),
            ),
            None => {
                let (x, y) = (merged_stats(&s.a), merged_stats(&s.b));
                let (bad_a, bad_b) = (x.nan + x.inf, y.nan + y.inf);
                let note = (bad_a != bad_b)
                    .then(|| format!("NaN/Inf counts differ ({bad_a} in A, {bad_b} in B)"));
                // Merged norms are roots of sums taken in another order than the other
                // side's: relative rounding ~1e-13, so a bound under (1e-12)² is no
                // evidence of a difference.
                let lb = metrics::nmse_lower_bound(x.l2, y.l2);
                let nmse = if note.is_some() {
                    f64::INFINITY
                } else if s.how == How::Merged && lb < 1e-24 {
                    0.0
                } else {
                    lb
                };
                let m = Metrics {
                    max_abs: f64::NAN,
                    nmse,
                    cosine: None,
                    note,
                };
                (m, true, std_ratio(&x, &y))
            }
        };
        let aligned = match s.how {
            How::Same => None,
            How::Split => {
                realigned_split += 1;
                Some("split")
            }
            How::Merged => {
                realigned_merged += 1;
                Some("merged")
            }
        };
        nodes.push(NodeDiff {
            node: ra.node.clone(),
            op: ra.op.clone(),
            layer: ra.layer,
            pos: s.pos,
            step: ra.step,
            index: ra.index,
            rows: s.rows,
            max_abs: (!from_stats).then_some(m.max_abs),
            in_band: m.note.is_none() && m.nmse <= band,
            nmse: m.nmse,
            cosine: m.cosine,
            std_ratio: ratio,
            from_stats,
            band,
            note: m.note,
            group: ra.group.clone().or_else(|| rb.group.clone()),
            aligned,
        });
    }
    if nodes.is_empty() {
        return Err(Error::invalid(format!(
            "{} and {} share no (node, position) record: are they traces of the same model and prompt?",
            a.dir.display(),
            b.dir.display()
        )));
    }
    let beyond = |entry: &String| {
        entry
            .rsplit_once('@')
            .and_then(|(_, p)| p.parse::<usize>().ok())
            .is_some_and(|p| p >= cutoff)
    };
    al.only_b.retain(|e| !beyond(e));
    let out_of_band = nodes.iter().filter(|n| !n.in_band).count();
    let first_divergence = nodes
        .iter()
        .position(|n| !n.in_band)
        .map(|at| first_divergence(&nodes, &graph, at));
    Ok(Report {
        inputs_differ: inputs_differ_at.map(|(pos, ta, tb)| InputsDiffer {
            pos,
            token_a: ta,
            token_b: tb,
            records_not_compared: not_compared,
        }),
        a: sa,
        b: sb,
        contract: c.name.clone(),
        contract_path: c.source.clone(),
        contract_reason: reason,
        layers: layers(&nodes),
        nodes,
        only_in_a: al.only_a,
        only_in_b: al.only_b,
        realigned_split,
        realigned_merged,
        out_of_band,
        first_divergence,
        graph,
    })
}

/// Per layer, the worst record relative to its band.
fn layers(nodes: &[NodeDiff]) -> Vec<LayerSummary> {
    let mut layers: Vec<LayerSummary> = Vec::new();
    let rel = |x: f64, b: f64| if b > 0.0 { x / b } else { x };
    for n in nodes {
        let lk = layer_key(n.layer, &n.node);
        let i = match layers.iter().position(|l| l.layer == lk) {
            Some(i) => i,
            None => {
                layers.push(LayerSummary {
                    layer: lk,
                    worst_nmse: -1.0,
                    worst_node: String::new(),
                    band: n.band,
                    out_of_band: 0,
                });
                layers.len() - 1
            }
        };
        let ls = &mut layers[i];
        if !n.in_band {
            ls.out_of_band += 1;
        }
        if ls.worst_nmse < 0.0 || rel(n.nmse, n.band) > rel(ls.worst_nmse, ls.band) {
            ls.worst_nmse = n.nmse;
            ls.worst_node = format!("{}@{}", n.node, n.pos);
            ls.band = n.band;
        }
    }
    layers
}

fn first_divergence(
    nodes: &[NodeDiff],
    graph: &[(String, Vec<String>)],
    at: usize,
) -> FirstDivergence {
    let inputs = input_diffs(nodes, graph, at);
    // A node without graph inputs (the embedding) has nothing upstream to blame.
    let source = graph
        .iter()
        .any(|(name, ins)| *name == nodes[at].node && ins.is_empty());
    let cause = if source || (!inputs.is_empty() && inputs.iter().all(|i| i.in_band)) {
        Cause::Culprit
    } else if inputs.is_empty() {
        Cause::Unknown
    } else {
        Cause::Inherited
    };
    FirstDivergence { at, inputs, cause }
}

/// The recorded inputs of `nodes[at]` in the same step (their rows covering its first
/// position); an input that was not recorded (inside a fused group) is replaced by its
/// nearest recorded ancestors.
fn input_diffs(nodes: &[NodeDiff], graph: &[(String, Vec<String>)], at: usize) -> Vec<InputDiff> {
    let n = &nodes[at];
    let inputs_of = |name: &str| -> Vec<String> {
        graph
            .iter()
            .find(|(g, _)| g == name)
            .map(|(_, i)| i.clone())
            .unwrap_or_default()
    };
    let recorded = |name: &str| {
        nodes
            .iter()
            .find(|d| {
                d.node == name && d.step == n.step && d.pos <= n.pos && n.pos < d.pos + d.rows
            })
            .or_else(|| nodes.iter().find(|d| d.node == name && d.step == n.step))
    };
    let mut out: Vec<InputDiff> = Vec::new();
    let mut stack: Vec<(String, Option<String>)> =
        inputs_of(&n.node).into_iter().map(|i| (i, None)).collect();
    let mut seen = std::collections::HashSet::new();
    while let Some((name, via)) = stack.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        match recorded(&name) {
            Some(d) => out.push(InputDiff {
                node: name,
                via,
                nmse: d.nmse,
                band: d.band,
                in_band: d.in_band,
            }),
            None => {
                let v = via.clone().or(Some(name.clone()));
                stack.extend(inputs_of(&name).into_iter().map(|i| (i, v.clone())));
            }
        }
    }
    out.reverse();
    out
}
