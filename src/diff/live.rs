//! `graphrun diff --live`: two executors run the same prompt side by side in one process, and
//! every decode step both are fed A's greedy token (teacher forcing), so a token flip does
//! not end the comparison.
//!
//! Per step, A runs first and keeps that step's node outputs; B then runs, and each node
//! output B produces is compared at once with A's output of the same node (NMSE with B as
//! the reference, as `graphrun diff`) and judged by the contract's band for its op. Nothing
//! else is kept from earlier steps but rolling statistics: per node the worst NMSE and
//! where, per layer the worst NMSE of every step (the drift trend), and per step the logit
//! NMSE and both greedy tokens. The run stops after the first step holding an out-of-band
//! record (or after N decode steps) and writes that step as two ordinary traces, `DIR/a`
//! and `DIR/b`, so `graphrun diff DIR/a DIR/b` (and its HTML report) shows the divergence
//! with the node's inputs and the residual stream around it.

use super::{Cause, Report, Side, Trace, band, choose_contract, classes, diff, layer_key};
use crate::contracts::{self, Contract};
use crate::error::{Error, Result};
use crate::exec::{Engine, Executor, Observer};
use crate::graph::{ActSemantics, KvType};
use crate::graph::{Node, NodeId, Op};
use crate::metrics::{self, Metrics};
use crate::numerics::{argmax, check_finite_logits};
use crate::trace::{Meta, Record, Stats, npy};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One side of a live comparison.
pub struct LiveSide<'a> {
    pub engine: Box<dyn Engine + 'a>,
    /// What runs (executor, semantics, format, faults); `path` holds the side's SPEC.
    pub side: Side,
    /// Metadata for the trace written of the last step (`generated` is filled in here).
    pub meta: Meta,
}

pub struct LiveOptions {
    /// Decode steps after the prefill.
    pub steps: usize,
    /// `--contract` (None: chosen from the sides as `graphrun diff` does).
    pub contract: Option<String>,
    /// Where the traces of the last step go (`a/` and `b/` below it).
    pub out: PathBuf,
    /// Progress line on stderr after every step.
    pub progress: bool,
}

/// The first record out of its band.
#[derive(Clone, Debug, Serialize)]
pub struct Stop {
    pub node: String,
    pub op: String,
    pub layer: Option<usize>,
    pub step: usize,
    pub pos: usize,
    pub nmse: f64,
    pub max_abs: f64,
    pub band: f64,
    pub note: Option<String>,
}

/// Rolling statistics of one node over all compared steps.
#[derive(Clone, Debug, Serialize)]
pub struct NodeDrift {
    pub node: String,
    pub op: String,
    pub layer: Option<usize>,
    pub band: f64,
    pub records: usize,
    pub out_of_band: usize,
    pub worst_nmse: f64,
    pub worst_step: usize,
    pub worst_pos: usize,
    /// Largest absolute difference over all its records.
    pub max_abs: f64,
    pub last_nmse: f64,
}

/// One layer's drift over the steps: the worst record of each step, summarized.
#[derive(Clone, Debug, Serialize)]
pub struct LayerDrift {
    /// `embd`, a block number, or `head`.
    pub layer: String,
    pub worst_nmse: f64,
    /// `node@pos`, and the step, of the worst record.
    pub worst_node: String,
    pub worst_step: usize,
    /// The band of the worst record.
    pub band: f64,
    /// Worst NMSE of the prefill step.
    pub prefill: f64,
    /// Median over the first and the last quarter of the decode steps of the per-step
    /// worst NMSE (None without decode steps).
    pub early: Option<f64>,
    pub late: Option<f64>,
    /// `late / early` (None when either is missing or `early` is 0).
    pub growth: Option<f64>,
    /// The per-step worst NMSE in 20 nearly equal buckets of steps (fewer with fewer
    /// steps), the maximum of each.
    pub trend: Vec<Option<f64>>,
}

/// The first step where the two sides' greedy tokens differ.
#[derive(Clone, Debug, Serialize)]
pub struct Flip {
    pub step: usize,
    /// Position the chosen token would take.
    pub pos: usize,
    pub token_a: u32,
    pub token_b: u32,
    /// The reference's (B's) top-1 and top-2 logits there and their difference.
    pub ref_top1: f32,
    pub ref_top2: f32,
    pub ref_margin: f32,
    /// How much A preferred its token over B's (`logit_a[token_a] − logit_a[token_b]`).
    pub a_margin: f32,
    /// RMS of the logit difference between the sides at this step.
    pub logit_rms_diff: f64,
    /// The margin below which the measured difference explains a flip: 3·√2·RMS (3 σ of
    /// the difference of two logits each off by that RMS).
    pub tie_threshold: f64,
    /// `ref_margin ≤ tie_threshold`: a flip at a near-tie, expected from the drift.
    pub near_tie: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct LiveReport {
    pub a: Side,
    pub b: Side,
    pub contract: String,
    pub contract_path: String,
    pub contract_reason: String,
    pub prompt_tokens: usize,
    pub steps_requested: usize,
    /// Decode steps compared (the prefill is step 0 and not counted here).
    pub steps_done: usize,
    /// Records compared over all steps.
    pub records: usize,
    /// Records produced by one side only (outputs inside the other side's fused kernel
    /// groups), not compared.
    pub one_sided: usize,
    pub seconds: f64,
    pub stop: Option<Stop>,
    pub first_flip: Option<Flip>,
    /// Steps where the greedy tokens differ.
    pub flip_steps: Vec<usize>,
    /// Logit NMSE of every step (index = step).
    pub logit_nmse: Vec<f64>,
    /// Tokens fed after the prompt (A's greedy choices).
    pub fed: Vec<u32>,
    pub layers: Vec<LayerDrift>,
    pub nodes: Vec<NodeDrift>,
    /// The step written as traces, and where.
    pub trace_step: usize,
    pub trace_a: String,
    pub trace_b: String,
    /// `graphrun diff` of the written step: its first divergence line and cause.
    pub first_divergence_line: Option<String>,
    pub cause: Option<Cause>,
    /// The `graphrun diff` report of the written step (for text and HTML).
    #[serde(skip)]
    pub step_report: Report,
}

impl LiveReport {
    /// 0 when every record of every compared step is in band, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.stop.is_some() || self.step_report.first_divergence.is_some())
    }
}

/// Runs A and B side by side on `prompt` plus `o.steps` teacher-forced decode steps.
pub fn run(
    a: &mut LiveSide,
    b: &mut LiveSide,
    prompt: &[u32],
    o: &LiveOptions,
) -> Result<LiveReport> {
    if prompt.is_empty() {
        return Err(Error::invalid("the prompt tokenizes to nothing"));
    }
    let (c, reason) = match &o.contract {
        Some(spec) => (
            super::load_contract(spec)?,
            "given with --contract".to_string(),
        ),
        None => {
            let (name, why) = choose_contract(&a.side, &b.side);
            (contracts::load(name)?, why)
        }
    };
    let sem = |s: &Side| {
        (
            s.act.unwrap_or(ActSemantics::Q8),
            s.kv.unwrap_or(KvType::F32),
        )
    };
    let mut tally = Tally {
        contract: c,
        sides: [sem(&a.side), sem(&b.side)],
        real: !(a.side.synthetic || b.side.synthetic),
        output_node: b.meta.nodes.last().map(|n| n.name.clone()),
        nodes: Vec::new(),
        layers: Vec::new(),
        records: 0,
        one_sided: 0,
        stop: None,
        worst: None,
    };
    let (mut rec_a, mut rec_b) = (StepRecord::default(), StepRecord::default());
    let mut logit_nmse = Vec::new();
    let (mut fed, mut flip_steps, mut first_flip) = (Vec::new(), Vec::new(), None);
    let (t0, mut shown) = (Instant::now(), Instant::now());
    let mut input = prompt.to_vec();
    let mut step = 0;
    loop {
        let pos = a.engine.pos();
        let last = input.len() - 1..input.len();
        rec_a.begin();
        let la = a.engine.step(&input, last.clone(), &mut rec_a)?;
        rec_b.begin();
        let lb = b.engine.step(
            &input,
            last,
            &mut Checker {
                a: &rec_a,
                b: &mut rec_b,
                tally: &mut tally,
                step,
            },
        )?;
        tally.end_step(step);
        tally.one_sided += rec_a
            .order
            .iter()
            .filter(|&&id| rec_b.get(id).is_none())
            .count();
        // Non-finite logits on one side only are out of band (a stop, written as traces);
        // on both sides alike there is no greedy token to feed on.
        if tally.stop.is_none() {
            check_finite_logits(&la, &format!("of --a and --b at step {step}"))?;
        }
        logit_nmse.push(metrics::nmse(&la, &lb));
        let (ta, tb) = (argmax(&la) as u32, argmax(&lb) as u32);
        if ta != tb {
            flip_steps.push(step);
            if first_flip.is_none() {
                first_flip = Some(flip(step, pos + input.len(), &la, &lb));
            }
        }
        fed.push(ta);
        let done = tally.stop.is_some() || step == o.steps;
        if o.progress && (done || shown.elapsed().as_secs_f64() >= 0.5) {
            progress(step, o.steps, &tally, flip_steps.len());
            shown = Instant::now();
        }
        if done {
            break;
        }
        input = vec![ta];
        step += 1;
    }
    if o.progress {
        eprintln!();
    }
    let seconds = t0.elapsed().as_secs_f64();
    // The written step's traces: prompt plus the tokens fed before it.
    let (da, db) = (o.out.join("a"), o.out.join("b"));
    for (meta, rec, dir, ex) in [
        (&mut a.meta, &rec_a, &da, a.engine.executor()),
        (&mut b.meta, &rec_b, &db, b.engine.executor()),
    ] {
        meta.generated = fed.clone();
        write_trace(dir, rec, step, ex, meta)?;
    }
    let report = diff(
        &Trace::open(&da)?,
        &Trace::open(&db)?,
        o.contract.as_deref(),
    )?;
    Ok(LiveReport {
        a: a.side.clone(),
        b: b.side.clone(),
        contract: tally.contract.name.clone(),
        contract_path: tally.contract.source.clone(),
        contract_reason: reason,
        prompt_tokens: prompt.len(),
        steps_requested: o.steps,
        steps_done: step,
        records: tally.records,
        one_sided: tally.one_sided,
        seconds,
        first_flip,
        flip_steps,
        layers: tally.layers(step),
        nodes: tally.nodes.iter().flatten().cloned().collect(),
        stop: tally.stop,
        logit_nmse,
        fed,
        trace_step: step,
        trace_a: da.display().to_string(),
        trace_b: db.display().to_string(),
        first_divergence_line: report.first_line(),
        cause: report.first_divergence.as_ref().map(|f| f.cause),
        step_report: report,
    })
}

/// The token-level comparison at the first flip; B is the reference.
fn flip(step: usize, pos: usize, la: &[f32], lb: &[f32]) -> Flip {
    let (ta, tb) = (argmax(la), argmax(lb));
    let top2 = lb
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != tb)
        .map(|(_, &v)| v)
        .fold(f32::NEG_INFINITY, f32::max);
    let n = lb.len().max(1) as f64;
    let rms_diff = (la
        .iter()
        .zip(lb)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    let tie_threshold = 3.0 * 2f64.sqrt() * rms_diff;
    let margin = lb[tb] - top2;
    Flip {
        step,
        pos,
        token_a: ta as u32,
        token_b: tb as u32,
        ref_top1: lb[tb],
        ref_top2: top2,
        ref_margin: margin,
        a_margin: la[ta] - la[tb],
        logit_rms_diff: rms_diff,
        tie_threshold,
        near_tie: margin as f64 <= tie_threshold,
    }
}

fn progress(step: usize, steps: usize, t: &Tally, flips: usize) {
    let worst = t
        .worst
        .as_ref()
        .map(|w| {
            format!(
                ", worst {} step {} NMSE {} (band {})",
                w.1,
                w.2,
                sci(w.3),
                sci(w.4)
            )
        })
        .unwrap_or_default();
    eprint!(
        "\rgraphrun: live diff step {step}/{steps}: {} records{worst}, {flips} token flips   ",
        t.records
    );
}

pub(crate) fn sci(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x.is_infinite() {
        "inf".into()
    } else {
        format!("{x:.2e}")
    }
}

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
struct StepRecord {
    info: Vec<Option<NodeInfo>>,
    out: Vec<Output>,
    present: Vec<bool>,
    /// Node ids in the order they were produced.
    order: Vec<NodeId>,
    pending_group: Option<(String, Vec<NodeId>)>,
}

impl StepRecord {
    fn begin(&mut self) {
        for id in self.order.drain(..) {
            self.present[id.index()] = false;
        }
        self.pending_group = None;
    }

    fn keep(&mut self, id: NodeId, node: &Node, pos: usize, rows: usize, data: &[f32]) {
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
struct Checker<'x> {
    a: &'x StepRecord,
    b: &'x mut StepRecord,
    tally: &'x mut Tally,
    step: usize,
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

struct LayerTrack {
    key: String,
    /// Worst NMSE per step (NaN: no record of the layer in that step).
    series: Vec<f64>,
    /// Worst record relative to its band: (nmse, band, node@pos, step).
    worst: Option<(f64, f64, String, usize)>,
}

/// Rolling statistics of the comparison.
struct Tally {
    contract: Contract,
    /// Activation semantics and KV cache type of each side (the band lookup's keys).
    sides: [(ActSemantics, KvType); 2],
    /// Real (not synthetic) weights on both sides: the contract's `nmse_real` bands apply.
    real: bool,
    /// The graph's output node (band class `logits`).
    output_node: Option<String>,
    /// Per node id.
    nodes: Vec<Option<NodeDrift>>,
    layers: Vec<LayerTrack>,
    records: usize,
    one_sided: usize,
    stop: Option<Stop>,
    /// Worst record so far relative to its band: (relative, node@pos, step, nmse, band).
    worst: Option<(f64, String, usize, f64, f64)>,
}

/// NMSE relative to a band (a zero band: the NMSE itself, as the HTML report colors it).
fn relative(nmse: f64, band: f64) -> f64 {
    if band > 0.0 { nmse / band } else { nmse }
}

impl Tally {
    /// Compares A's and B's rows of one node's output in one step (B is the reference),
    /// judged by the band `graphrun diff` would use for the record (its class: fused group,
    /// `logits`, op).
    #[allow(clippy::too_many_arguments)]
    fn compare(
        &mut self,
        id: NodeId,
        node: &Node,
        group: Option<&str>,
        step: usize,
        pos: usize,
        a: &[f32],
        b: &[f32],
    ) -> Result<()> {
        let m: Metrics = metrics::compare(a, b);
        let class = classes(
            &node.name,
            node.op.name(),
            group,
            self.output_node.as_deref(),
        );
        let band = band(&self.contract, self.sides, &class, self.real)?;
        let in_band = m.note.is_none() && m.nmse <= band;
        self.records += 1;
        let i = id.index();
        if i >= self.nodes.len() {
            self.nodes.resize(i + 1, None);
        }
        let d = self.nodes[i].get_or_insert_with(|| NodeDrift {
            node: node.name.clone(),
            op: node.op.name().to_string(),
            layer: node.layer,
            band,
            records: 0,
            out_of_band: 0,
            worst_nmse: -1.0,
            worst_step: step,
            worst_pos: pos,
            max_abs: 0.0,
            last_nmse: 0.0,
        });
        d.records += 1;
        d.out_of_band += usize::from(!in_band);
        if m.nmse > d.worst_nmse {
            (d.worst_nmse, d.worst_step, d.worst_pos) = (m.nmse, step, pos);
        }
        d.max_abs = d.max_abs.max(m.max_abs);
        d.last_nmse = m.nmse;
        let key = layer_key(node.layer, &node.name);
        let li = match self.layers.iter().position(|l| l.key == key) {
            Some(li) => li,
            None => {
                self.layers.push(LayerTrack {
                    key,
                    series: Vec::new(),
                    worst: None,
                });
                self.layers.len() - 1
            }
        };
        let l = &mut self.layers[li];
        if l.series.len() <= step {
            l.series.resize(step + 1, f64::NAN);
        }
        let s = &mut l.series[step];
        if s.is_nan() || m.nmse > *s {
            *s = m.nmse;
        }
        let rel = relative(m.nmse, band);
        let here = format!("{}@{pos}", node.name);
        if l.worst
            .as_ref()
            .is_none_or(|w| rel > relative(w.0, w.1) || (!in_band && w.0 <= w.1))
        {
            l.worst = Some((m.nmse, band, here.clone(), step));
        }
        if self.worst.as_ref().is_none_or(|w| rel > w.0) {
            self.worst = Some((rel, here, step, m.nmse, band));
        }
        if !in_band && self.stop.is_none() {
            self.stop = Some(Stop {
                node: node.name.clone(),
                op: node.op.name().to_string(),
                layer: node.layer,
                step,
                pos,
                nmse: m.nmse,
                max_abs: m.max_abs,
                band,
                note: m.note,
            });
        }
        Ok(())
    }

    /// Pads the layer series of layers without a record in `step`.
    fn end_step(&mut self, step: usize) {
        for l in &mut self.layers {
            if l.series.len() <= step {
                l.series.resize(step + 1, f64::NAN);
            }
        }
    }

    fn layers(&self, steps: usize) -> Vec<LayerDrift> {
        self.layers
            .iter()
            .map(|l| {
                let (worst_nmse, band, worst_node, worst_step) =
                    l.worst.clone().unwrap_or((0.0, 0.0, String::new(), 0));
                let q = (steps / 4).max(1);
                let (early, late) = if steps == 0 {
                    (None, None)
                } else {
                    (
                        median(&l.series[1..=q.min(steps)]),
                        median(&l.series[steps + 1 - q.min(steps)..=steps]),
                    )
                };
                let growth = match (early, late) {
                    (Some(e), Some(x)) if e > 0.0 => Some(x / e),
                    _ => None,
                };
                LayerDrift {
                    layer: l.key.clone(),
                    worst_nmse,
                    worst_node,
                    worst_step,
                    band,
                    prefill: l.series.first().copied().unwrap_or(f64::NAN),
                    early,
                    late,
                    growth,
                    trend: buckets(&l.series, 20),
                }
            })
            .collect()
    }
}

/// Median of the values that were recorded (not NaN).
fn median(v: &[f64]) -> Option<f64> {
    let mut x: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if x.is_empty() {
        return None;
    }
    x.sort_by(f64::total_cmp);
    Some(x[x.len() / 2])
}

/// The maximum of each of min(n, len) nearly equal runs of `v` (None for a run without
/// records).
fn buckets(v: &[f64], n: usize) -> Vec<Option<f64>> {
    let k = n.min(v.len());
    (0..k)
        .map(|i| &v[i * v.len() / k..(i + 1) * v.len() / k])
        .map(|c| {
            c.iter()
                .copied()
                .filter(|x| !x.is_nan())
                .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
        })
        .collect()
}

/// Writes one step of one side as an ordinary trace directory (`trace.jsonl`, full tensors,
/// `meta.json`), records in the order they were produced, with the run's step number.
fn write_trace(
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

impl LiveReport {
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
        let _ = writeln!(
            w,
            "prompt {} tokens + {} of {} decode steps, each side fed A's greedy token; {} records compared in {:.1} s ({:.2} steps/s)",
            self.prompt_tokens,
            self.steps_done,
            self.steps_requested,
            self.records,
            self.seconds,
            (self.steps_done + 1) as f64 / self.seconds.max(1e-9)
        );
        if self.one_sided > 0 {
            let _ = writeln!(
                w,
                "{} records were produced by one side only (inside the other side's fused kernel groups) and not compared",
                self.one_sided
            );
        }
        let _ = writeln!(
            w,
            "\nper layer (worst NMSE of each step; early/late: median over the first/last quarter of decode steps):"
        );
        let _ = writeln!(
            w,
            "  {:<6} {:>10} {:>10}  {:<30} {:>10} {:>10} {:>10} {:>8}",
            "layer", "worst", "band", "worst at", "prefill", "early", "late", "growth"
        );
        let o = |x: Option<f64>| x.map_or("-".to_string(), sci);
        for l in &self.layers {
            let _ = writeln!(
                w,
                "  {:<6} {:>10} {:>10}  {:<30} {:>10} {:>10} {:>10} {:>8}",
                l.layer,
                sci(l.worst_nmse),
                sci(l.band),
                format!("{} step {}", l.worst_node, l.worst_step),
                if l.prefill.is_nan() {
                    "-".into()
                } else {
                    sci(l.prefill)
                },
                o(l.early),
                o(l.late),
                l.growth.map_or("-".into(), |g| format!("{g:.2}x"))
            );
        }
        let finite: Vec<f64> = self.logit_nmse.clone();
        let mut sorted = finite.clone();
        sorted.sort_by(f64::total_cmp);
        if let (Some(lo), Some(hi)) = (sorted.first(), sorted.last()) {
            let at = finite.iter().position(|x| x == hi).unwrap_or(0);
            let _ = writeln!(
                w,
                "\nlogit NMSE per step: min {}, median {}, max {} (step {at})",
                sci(*lo),
                sci(sorted[sorted.len() / 2]),
                sci(*hi)
            );
        }
        match &self.first_flip {
            None => {
                let _ = writeln!(
                    w,
                    "tokens: the greedy tokens agree at all {} steps",
                    self.steps_done + 1
                );
            }
            Some(f) => {
                let _ = writeln!(
                    w,
                    "tokens: first flip at step {} (pos {}): A chose {}, B {}; B's (reference) top-1/top-2 margin {:.4} ({:.4} vs {:.4}), A preferred its token by {:.4}; logit RMS difference {:.4}",
                    f.step,
                    f.pos,
                    f.token_a,
                    f.token_b,
                    f.ref_margin,
                    f.ref_top1,
                    f.ref_top2,
                    f.a_margin,
                    f.logit_rms_diff
                );
                let _ = writeln!(
                    w,
                    "  {}; {} of {} steps chose differently (A's token was fed on)",
                    if f.near_tie {
                        format!(
                            "a near-tie: the margin is within 3·√2·RMS = {:.4} of the measured logit difference, so the drift explains this flip",
                            f.tie_threshold
                        )
                    } else {
                        format!(
                            "NOT a near-tie: the margin exceeds 3·√2·RMS = {:.4} of the measured logit difference",
                            f.tie_threshold
                        )
                    },
                    self.flip_steps.len(),
                    self.steps_done + 1
                );
            }
        }
        match &self.stop {
            None => {
                let _ = writeln!(
                    w,
                    "\nverdict: within band: all {} records of {} steps inside the bands of `{}`",
                    self.records,
                    self.steps_done + 1,
                    self.contract
                );
            }
            Some(st) => {
                let _ = writeln!(
                    w,
                    "\nverdict: DIVERGES at step {}: {} @pos {} ({}): NMSE {} > band {}{}",
                    st.step,
                    st.node,
                    st.pos,
                    st.op,
                    sci(st.nmse),
                    sci(st.band),
                    st.note
                        .as_ref()
                        .map(|n| format!(" [{n}]"))
                        .unwrap_or_default()
                );
            }
        }
        let _ = writeln!(
            w,
            "trace of step {} written: A -> {}, B -> {} (graphrun diff {} {} --html report.html)",
            self.trace_step, self.trace_a, self.trace_b, self.trace_a, self.trace_b
        );
        if let Some(f) = &self.step_report.first_divergence {
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
        }
        if let Some(line) = &self.first_divergence_line {
            let _ = writeln!(w, "{line}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_buckets_skip_steps_without_records() {
        assert_eq!(median(&[3.0, f64::NAN, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[f64::NAN]), None);
        let b = buckets(&[1.0, 5.0, f64::NAN, f64::NAN, 2.0, f64::NAN], 3);
        assert_eq!(b, vec![Some(5.0), None, Some(2.0)]);
        assert_eq!(buckets(&[1.0; 45], 20).len(), 20);
        assert_eq!(buckets(&[1.0; 7], 20).len(), 7);
    }

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
