//! `graphrun diff`: aligns two traces record by record on (node name, position), measures
//! each pair (max-abs error, NMSE, cosine similarity, std ratio, NaN/Inf appearance), judges
//! it against a contract band (`contracts/trace_*.yaml`) and names the **first record, in
//! execution order (step, then topological index), that leaves its band**, with the metrics
//! of that node's inputs so the culprit (inputs in band, output not) can be told from
//! inherited drift.
//!
//! B is the reference: NMSE = Σ(a−b)² / Σb². Full tensors (`tensors/*.npy`) give exact
//! metrics; records traced without tensors are judged from their stats alone, by the lower
//! bound NMSE ≥ (‖a‖−‖b‖)²/‖b‖², and marked as such.

pub mod html;

use crate::contracts::{self, Contract};
use crate::error::{Error, Result};
use crate::trace::{self, Meta, Record, npy};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One trace directory: records plus (when present) its metadata.
pub struct Trace {
    pub dir: PathBuf,
    pub meta: Option<Meta>,
    pub records: Vec<Record>,
}

impl Trace {
    pub fn open(path: &Path) -> Result<Trace> {
        let records = trace::read(path)?;
        let dir = trace::dir_of(path);
        if records.is_empty() {
            return Err(Error::invalid(format!(
                "{}: the trace has no records",
                dir.display()
            )));
        }
        Ok(Trace {
            meta: trace::read_meta(&dir)?,
            dir,
            records,
        })
    }

    fn tensor(&self, r: &Record) -> Result<Option<Vec<f32>>> {
        let Some(name) = &r.tensor else {
            return Ok(None);
        };
        let p = self.dir.join("tensors").join(name);
        let (shape, data) = npy::read_f32(&p)?;
        if shape.iter().product::<usize>() != r.shape[0] * r.shape[1] {
            return Err(Error::invalid(format!(
                "{}: shape {shape:?} does not match the record's {:?}",
                p.display(),
                r.shape
            )));
        }
        Ok(Some(data))
    }

    fn describe(&self) -> Side {
        let m = self.meta.clone().unwrap_or_default();
        let r = &self.records[0];
        Side {
            path: self.dir.display().to_string(),
            executor: if m.executor.is_empty() {
                r.executor.clone()
            } else {
                m.executor
            },
            act: if m.act.is_empty() {
                self.records
                    .iter()
                    .find_map(|r| r.act.clone())
                    .unwrap_or_default()
            } else {
                m.act
            },
            format: m.format,
            fused: m.fused,
            faults: m.faults,
            model: m.model,
        }
    }
}

/// What one side of the comparison was.
#[derive(Clone, Debug, Serialize)]
pub struct Side {
    pub path: String,
    pub executor: String,
    pub act: String,
    pub format: String,
    pub fused: bool,
    pub faults: Vec<String>,
    pub model: String,
}

impl Side {
    fn label(&self) -> String {
        let mut s = format!(
            "{}, act {}",
            if self.executor.is_empty() {
                "?"
            } else {
                &self.executor
            },
            if self.act.is_empty() { "?" } else { &self.act }
        );
        if self.executor == "cuda" {
            s += if self.fused { ", fused" } else { ", unfused" };
        }
        if !self.format.is_empty() {
            s += &format!(", {}", self.format);
        }
        if !self.faults.is_empty() {
            s += &format!(", injected {}", self.faults.join(" "));
        }
        s
    }
}

/// The metrics of one aligned pair of records.
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
    /// Why the pair is out of band regardless of the metric (NaN/Inf, shape), if so.
    pub note: Option<String>,
    /// Kernel group of the record (fused GPU traces), from either side.
    pub group: Option<String>,
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

#[derive(Clone, Debug, Serialize)]
pub struct FirstDivergence {
    /// Index into `Report::nodes`.
    pub at: usize,
    pub inputs: Vec<InputDiff>,
    /// `culprit` (inputs in band, output not; or a node without inputs), `inherited` (an
    /// input already out of band), or `unknown` (no input recorded).
    pub cause: String,
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
    pub layers: Vec<LayerSummary>,
    pub out_of_band: usize,
    pub first_divergence: Option<FirstDivergence>,
    /// Set when the two runs were fed different tokens from some position on.
    pub inputs_differ: Option<InputsDiffer>,
    /// Node names (graph order) and their inputs, from the traces' metadata.
    #[serde(skip)]
    pub graph: Vec<(String, Vec<String>)>,
}

/// The contract for a comparison when none is given: different activation semantics →
/// `trace_cross_semantics`; two interpreter runs (any file format) → `trace_exact` (the
/// interpreter is deterministic, and GGUF vs APR must be bit-identical); anything else
/// (GPU vs interpreter, fused vs unfused) → `trace_same_semantics`.
pub fn choose_contract(a: &Side, b: &Side) -> (&'static str, String) {
    if !a.act.is_empty() && !b.act.is_empty() && a.act != b.act {
        (
            "trace_cross_semantics",
            format!("activation semantics differ ({} vs {})", a.act, b.act),
        )
    } else if a.executor == "interp" && b.executor == "interp" {
        (
            "trace_exact",
            "both traces come from the deterministic CPU interpreter with the same semantics"
                .to_string(),
        )
    } else {
        (
            "trace_same_semantics",
            format!(
                "same semantics, different executors or schedules ({} vs {})",
                a.label(),
                b.label()
            ),
        )
    }
}

/// Loads a contract by name (`trace_exact`), by file stem, or from a path.
pub fn load_contract(spec: &str) -> Result<Contract> {
    let p = Path::new(spec);
    if spec.ends_with(".yaml") || spec.contains('/') {
        return contracts::load_file(p);
    }
    contracts::load(spec)
}

/// The NMSE band of an op under a contract, for the activation semantics of both sides:
/// `nmse.<act>.<op>`, `nmse.<act>.default`, `nmse.<op>`, `nmse.default`, in that order;
/// with two different semantics the stricter band applies.
pub fn band(c: &Contract, acts: [&str; 2], op: &str) -> Result<f64> {
    let t = c.table("nmse")?;
    let num = |v: Option<&Value>| v.and_then(Value::as_f64);
    let one = |act: &str| -> Option<f64> {
        let by_act = t.get(act).and_then(Value::as_object);
        by_act
            .and_then(|m| num(m.get(op)).or_else(|| num(m.get("default"))))
            .or_else(|| num(t.get(op)))
            .or_else(|| num(t.get("default")))
    };
    let mut best: Option<f64> = None;
    for act in acts {
        if let Some(b) = one(act) {
            best = Some(best.map_or(b, |x: f64| x.min(b)));
        }
    }
    best.ok_or_else(|| {
        Error::invalid(format!(
            "contract `{}` ({}) has no band `nmse.default` (nor one for op `{op}`, act {})",
            c.name,
            c.path.display(),
            acts.join("/")
        ))
    })
}

struct Metrics {
    max_abs: Option<f64>,
    nmse: f64,
    cosine: Option<f64>,
    note: Option<String>,
}

fn metrics(a: &[f32], b: &[f32]) -> Metrics {
    let (mut d2, mut b2, mut a2, mut ab, mut max_abs) = (0f64, 0f64, 0f64, 0f64, 0f64);
    let (mut bad_a, mut bad_b) = (0usize, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        match (x.is_finite(), y.is_finite()) {
            (true, true) => {
                let (x, y) = (x as f64, y as f64);
                d2 += (x - y) * (x - y);
                b2 += y * y;
                a2 += x * x;
                ab += x * y;
                max_abs = max_abs.max((x - y).abs());
            }
            (false, true) => bad_a += 1,
            (true, false) => bad_b += 1,
            (false, false) => {
                if x.to_bits() != y.to_bits() {
                    bad_a += 1;
                }
            }
        }
    }
    let nmse = if b2 > 0.0 {
        d2 / b2
    } else if d2 == 0.0 {
        0.0
    } else {
        f64::INFINITY
    };
    let cosine = (a2 > 0.0 && b2 > 0.0).then(|| ab / (a2.sqrt() * b2.sqrt()));
    let note = match (bad_a, bad_b) {
        (0, 0) => None,
        (n, 0) => Some(format!("{n} NaN/Inf values appear in A only")),
        (0, n) => Some(format!("{n} NaN/Inf values appear in B only")),
        (n, m) => Some(format!("NaN/Inf values differ ({n} in A, {m} in B)")),
    };
    Metrics {
        max_abs: Some(max_abs),
        nmse,
        cosine,
        note,
    }
}

fn layer_key(l: Option<usize>, node: &str) -> String {
    match l {
        Some(l) => l.to_string(),
        None if node == "token_embd" => "embd".into(),
        None => "head".into(),
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
    let acts = [
        if sa.act.is_empty() { "q8" } else { &sa.act },
        if sb.act.is_empty() { "q8" } else { &sb.act },
    ];
    // Records are comparable only while both runs were fed the same tokens: a greedy
    // decode that picked a different token (a near-tie) makes later positions differ in
    // input, not in arithmetic. Those records are set aside and reported.
    let fed = |t: &Trace| {
        t.meta.as_ref().map(|m| {
            let steps = t.records.iter().map(|r| r.step).max().unwrap_or(0);
            let mut v = m.prompt_tokens.clone();
            v.extend(m.generated.iter().take(steps));
            v
        })
    };
    let inputs_differ_at = match (fed(a), fed(b)) {
        (Some(x), Some(y)) => x
            .iter()
            .zip(&y)
            .position(|(p, q)| p != q)
            .map(|p| (p, x[p], y[p])),
        _ => None,
    };
    let cutoff = inputs_differ_at.map_or(usize::MAX, |d| d.0);
    if cutoff == 0 {
        return Err(Error::invalid(format!(
            "{} and {} were run on different prompts (first token {} vs {}): nothing to compare",
            a.dir.display(),
            b.dir.display(),
            inputs_differ_at.map_or(0, |d| d.1),
            inputs_differ_at.map_or(0, |d| d.2)
        )));
    }
    let mut not_compared = 0usize;
    let key = |r: &Record| (r.node.clone(), r.pos);
    let b_map: HashMap<(String, usize), &Record> = b.records.iter().map(|r| (key(r), r)).collect();
    let a_keys: std::collections::HashSet<(String, usize)> = a.records.iter().map(key).collect();
    let mut order: Vec<&Record> = a.records.iter().collect();
    order.sort_by_key(|r| (r.step, r.index));
    let mut nodes = Vec::new();
    let mut only_in_a = Vec::new();
    for ra in order {
        let Some(rb) = b_map.get(&key(ra)) else {
            only_in_a.push(format!("{}@{}", ra.node, ra.pos));
            continue;
        };
        if ra.pos + ra.shape[0] > cutoff {
            not_compared += 1;
            continue;
        }
        let band = band(&c, acts, &ra.op)?;
        let std_ratio = if rb.stats.std > 0.0 {
            ra.stats.std / rb.stats.std
        } else if ra.stats.std == 0.0 {
            1.0
        } else {
            f64::INFINITY
        };
        let (m, from_stats) = if ra.shape != rb.shape {
            (
                Metrics {
                    max_abs: None,
                    nmse: f64::INFINITY,
                    cosine: None,
                    note: Some(format!("shapes differ: {:?} vs {:?}", ra.shape, rb.shape)),
                },
                false,
            )
        } else {
            match (a.tensor(ra)?, b.tensor(rb)?) {
                (Some(x), Some(y)) => (metrics(&x, &y), false),
                _ => {
                    let (na, nb) = (ra.stats.l2, rb.stats.l2);
                    let lb = if nb > 0.0 {
                        (na - nb) * (na - nb) / (nb * nb)
                    } else if na == 0.0 {
                        0.0
                    } else {
                        f64::INFINITY
                    };
                    let bad_a = ra.stats.nan + ra.stats.inf;
                    let bad_b = rb.stats.nan + rb.stats.inf;
                    let note = (bad_a != bad_b)
                        .then(|| format!("NaN/Inf counts differ ({bad_a} in A, {bad_b} in B)"));
                    (
                        Metrics {
                            max_abs: None,
                            nmse: lb,
                            cosine: None,
                            note,
                        },
                        true,
                    )
                }
            }
        };
        let in_band = m.note.is_none() && m.nmse <= band;
        nodes.push(NodeDiff {
            node: ra.node.clone(),
            op: ra.op.clone(),
            layer: ra.layer,
            pos: ra.pos,
            step: ra.step,
            index: ra.index,
            rows: ra.shape[0],
            max_abs: m.max_abs,
            nmse: m.nmse,
            cosine: m.cosine,
            std_ratio,
            from_stats,
            band,
            in_band,
            note: m.note,
            group: ra.group.clone().or_else(|| rb.group.clone()),
        });
    }
    let only_in_b = b
        .records
        .iter()
        .filter(|r| !a_keys.contains(&key(r)) && r.pos + r.shape[0] <= cutoff)
        .map(|r| format!("{}@{}", r.node, r.pos))
        .collect();
    if nodes.is_empty() {
        return Err(Error::invalid(format!(
            "{} and {} share no (node, position) record: are they traces of the same model and prompt?",
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
    let mut layers: Vec<LayerSummary> = Vec::new();
    for n in &nodes {
        let lk = layer_key(n.layer, &n.node);
        let ls = match layers.iter_mut().find(|l| l.layer == lk) {
            Some(l) => l,
            None => {
                layers.push(LayerSummary {
                    layer: lk,
                    worst_nmse: -1.0,
                    worst_node: String::new(),
                    band: n.band,
                    out_of_band: 0,
                });
                layers.last_mut().expect("just pushed")
            }
        };
        if !n.in_band {
            ls.out_of_band += 1;
        }
        let rel = |x: f64, b: f64| if b > 0.0 { x / b } else { x };
        if ls.worst_nmse < 0.0 || rel(n.nmse, n.band) > rel(ls.worst_nmse, ls.band) {
            ls.worst_nmse = n.nmse;
            ls.worst_node = format!("{}@{}", n.node, n.pos);
            ls.band = n.band;
        }
    }
    let out_of_band = nodes.iter().filter(|n| !n.in_band).count();
    let first_divergence = nodes.iter().position(|n| !n.in_band).map(|at| {
        let inputs = input_diffs(&nodes, &graph, at);
        // A node without graph inputs (the embedding) has nothing upstream to blame.
        let source = graph
            .iter()
            .any(|(name, ins)| *name == nodes[at].node && ins.is_empty());
        let cause = if source {
            "culprit"
        } else if inputs.is_empty() {
            "unknown"
        } else if inputs.iter().all(|i| i.in_band) {
            "culprit"
        } else {
            "inherited"
        };
        FirstDivergence {
            at,
            inputs,
            cause: cause.into(),
        }
    });
    let inputs_differ = inputs_differ_at.map(|(pos, ta, tb)| InputsDiffer {
        pos,
        token_a: ta,
        token_b: tb,
        records_not_compared: not_compared,
    });
    Ok(Report {
        inputs_differ,
        a: sa,
        b: sb,
        contract: c.name.clone(),
        contract_path: c.path.display().to_string(),
        contract_reason: reason,
        nodes,
        only_in_a,
        only_in_b,
        layers,
        out_of_band,
        first_divergence,
        graph,
    })
}

/// The recorded inputs of `nodes[at]` in the same step; an input that was not recorded
/// (inside a fused group) is replaced by its nearest recorded ancestors.
fn input_diffs(nodes: &[NodeDiff], graph: &[(String, Vec<String>)], at: usize) -> Vec<InputDiff> {
    let n = &nodes[at];
    let inputs_of = |name: &str| -> Vec<String> {
        graph
            .iter()
            .find(|(g, _)| g == name)
            .map(|(_, i)| i.clone())
            .unwrap_or_default()
    };
    let recorded = |name: &str| nodes.iter().find(|d| d.node == name && d.step == n.step);
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

fn sci(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x.is_infinite() {
        "inf".into()
    } else {
        format!("{x:.2e}")
    }
}

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or("-".into(), f)
}

impl Report {
    /// Exit status: 0 when every compared record is within band, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.first_divergence.is_some() {
            1
        } else {
            0
        }
    }

    /// One line naming the first divergence (the text report's last line), or None.
    pub fn first_line(&self) -> Option<String> {
        let f = self.first_divergence.as_ref()?;
        let n = &self.nodes[f.at];
        Some(format!(
            "first divergence: {} @pos {} step {} ({}): NMSE {} > band {}{}; {}",
            n.node,
            n.pos,
            n.step,
            n.op,
            sci(n.nmse),
            sci(n.band),
            n.note
                .as_ref()
                .map(|x| format!(" [{x}]"))
                .unwrap_or_default(),
            match f.cause.as_str() {
                "culprit" => "its inputs are within band: this node is the culprit",
                "inherited" => "an input is already out of band: inherited",
                _ => "no input recorded",
            }
        ))
    }

    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let w = &mut s;
        let _ = writeln!(w, "A: {} ({})", self.a.path, self.a.label());
        let _ = writeln!(w, "B: {} ({}) [reference]", self.b.path, self.b.label());
        let _ = writeln!(
            w,
            "contract: {} ({}): {}",
            self.contract, self.contract_path, self.contract_reason
        );
        let stats_only = self.nodes.iter().filter(|n| n.from_stats).count();
        let _ = writeln!(
            w,
            "compared {} records aligned by (node, position){}",
            self.nodes.len(),
            if stats_only > 0 {
                format!(
                    "; {stats_only} without full tensors, judged by the NMSE lower bound from their norms"
                )
            } else {
                String::new()
            }
        );
        if let Some(d) = &self.inputs_differ {
            let _ = writeln!(
                w,
                "inputs differ from position {}: A was fed token {}, B token {} (greedy decoding chose differently); {} records from there on are not compared",
                d.pos, d.token_a, d.token_b, d.records_not_compared
            );
        }
        // Records only on one side are listed, never dropped silently; a fused GPU trace
        // does not materialize the nodes inside its kernel groups.
        for (label, list, other) in [
            ("only in A", &self.only_in_a, &self.b),
            ("only in B", &self.only_in_b, &self.a),
        ] {
            if list.is_empty() {
                continue;
            }
            let shown: Vec<&str> = list.iter().take(12).map(String::as_str).collect();
            let _ = writeln!(
                w,
                "{label}: {} records{}: {}{}",
                list.len(),
                if other.fused {
                    " (inside the other side's fused kernel groups)"
                } else {
                    ""
                },
                shown.join(", "),
                if list.len() > shown.len() {
                    format!(
                        ", ... ({} more; --json lists all)",
                        list.len() - shown.len()
                    )
                } else {
                    String::new()
                }
            );
        }
        let _ = writeln!(w, "\nper layer (worst record relative to its band):");
        let _ = writeln!(
            w,
            "  {:<6} {:>10} {:>10} {:>5}  worst at",
            "layer", "NMSE", "band", "out"
        );
        for l in &self.layers {
            let _ = writeln!(
                w,
                "  {:<6} {:>10} {:>10} {:>5}  {}",
                l.layer,
                sci(l.worst_nmse),
                sci(l.band),
                l.out_of_band,
                l.worst_node
            );
        }
        if self.out_of_band > 0 {
            let _ = writeln!(
                w,
                "\nout of band: {} of {} records (first 20, execution order):",
                self.out_of_band,
                self.nodes.len()
            );
            let _ = writeln!(
                w,
                "  {:<28} {:>5} {:>4} {:<10} {:>10} {:>10} {:>10} {:>9} {:>10}",
                "node", "pos", "step", "op", "NMSE", "max-abs", "cosine", "std-ratio", "band"
            );
            for n in self.nodes.iter().filter(|n| !n.in_band).take(20) {
                let _ = writeln!(
                    w,
                    "  {:<28} {:>5} {:>4} {:<10} {:>10} {:>10} {:>10} {:>9.5} {:>10}{}",
                    n.node,
                    n.pos,
                    n.step,
                    n.op,
                    sci(n.nmse),
                    opt(n.max_abs, sci),
                    opt(n.cosine, |c| format!("{c:.7}")),
                    n.std_ratio,
                    sci(n.band),
                    n.note
                        .as_ref()
                        .map(|x| format!("  {x}"))
                        .unwrap_or_default()
                );
            }
        }
        match &self.first_divergence {
            None => {
                let _ = writeln!(
                    w,
                    "\nverdict: within band: all {} records inside the bands of `{}`",
                    self.nodes.len(),
                    self.contract
                );
            }
            Some(f) => {
                let n = &self.nodes[f.at];
                let _ = writeln!(
                    w,
                    "\nverdict: DIVERGES: {} of {} records out of band",
                    self.out_of_band,
                    self.nodes.len()
                );
                let _ = writeln!(
                    w,
                    "  first: {} @pos {} step {} ({}{}): NMSE {}, max-abs {}, cosine {}, std ratio {:.6}, band {}",
                    n.node,
                    n.pos,
                    n.step,
                    n.op,
                    n.group
                        .as_ref()
                        .map(|g| format!(", kernel group {g}"))
                        .unwrap_or_default(),
                    sci(n.nmse),
                    opt(n.max_abs, sci),
                    opt(n.cosine, |c| format!("{c:.7}")),
                    n.std_ratio,
                    sci(n.band)
                );
                for i in &f.inputs {
                    let _ = writeln!(
                        w,
                        "  input {}{}: NMSE {} (band {}) {}",
                        i.node,
                        i.via
                            .as_ref()
                            .map(|v| format!(" (recorded ancestor of {v})"))
                            .unwrap_or_default(),
                        sci(i.nmse),
                        sci(i.band),
                        if i.in_band { "in band" } else { "OUT OF BAND" }
                    );
                }
                if let Some(line) = self.first_line() {
                    let _ = writeln!(w, "{line}");
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(yaml: &str) -> Contract {
        let v = contracts::yaml::parse(yaml).unwrap();
        Contract {
            name: "t".into(),
            invariant: "i".into(),
            tests: vec![],
            bands: v["bands"].as_object().unwrap().clone(),
            path: "t.yaml".into(),
        }
    }

    #[test]
    fn band_lookup_order_and_stricter_side() {
        let c = contract(
            "bands:\n  nmse:\n    f32:\n      default: 1e-8\n      logits: 1e-9\n    q8:\n      default: 5e-3\n    default: 0.1\n    rope: 0.2\n",
        );
        assert_eq!(band(&c, ["q8", "q8"], "matmul").unwrap(), 5e-3);
        assert_eq!(band(&c, ["f32", "f32"], "logits").unwrap(), 1e-9);
        // Different semantics: the stricter side's band.
        assert_eq!(band(&c, ["f32", "q8"], "matmul").unwrap(), 1e-8);
        // No table for the act: per-op, then the default.
        assert_eq!(band(&c, ["bf16", "bf16"], "rope").unwrap(), 0.2);
        assert_eq!(band(&c, ["bf16", "bf16"], "add").unwrap(), 0.1);
        let empty = contract("bands:\n  nmse:\n    q8:\n      matmul: 1\n");
        let e = band(&empty, ["f32", "f32"], "add").unwrap_err().to_string();
        assert!(e.contains("nmse.default"), "{e}");
    }

    #[test]
    fn metrics_of_pairs() {
        let m = metrics(&[1.0, 2.0], &[1.0, 2.0]);
        assert_eq!((m.nmse, m.max_abs), (0.0, Some(0.0)));
        let m = metrics(&[1.1, 2.0], &[1.0, 2.0]);
        assert!((m.nmse - 0.01 / 5.0).abs() < 1e-9);
        assert!(m.cosine.unwrap() < 1.0);
        let m = metrics(&[f32::NAN, 2.0], &[1.0, 2.0]);
        assert!(m.note.unwrap().contains("A only"));
    }
}
