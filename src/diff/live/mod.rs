//! `graphrun diff --live`: two executors run the same prompt side by side in one process, and
//! every decode step both are fed A's greedy token (teacher forcing), so a token flip does
//! not end the comparison.
//!
//! Per step, A runs first and keeps that step's node outputs; B then runs, and each node
//! output B produces is compared at once with the same rows of A's output of that node (NMSE
//! with B as the reference, `crate::metrics`) and judged by the band `graphrun diff` would
//! use for the record. Nothing
//! else is kept from earlier steps but rolling statistics: per node the worst NMSE and
//! where, per layer the worst NMSE of every step (the drift trend), and per step the logit
//! NMSE and both greedy tokens. The run stops after the first step holding an out-of-band
//! record (or after N decode steps) and writes that step as two ordinary traces, `DIR/a`
//! and `DIR/b`, so `graphrun diff DIR/a DIR/b` (and its HTML report) shows the divergence
//! with the node's inputs and the residual stream around it.
//!
//! Rooms: `record` (one step's node outputs per side, compared as B produces them; the
//! step written as a trace), `tally` (rolling statistics per node and layer), `text` (the
//! report), this file (the run loop and the token-level comparison).

mod record;
mod tally;
mod text;

pub use tally::{LayerDrift, NodeDrift};

use super::{Cause, Report, Side, Trace, choose_contract, diff};
use crate::contracts;
use crate::diff::text::sci;
use crate::error::{Error, Result};
use crate::exec::Engine;
use crate::graph::{ActSemantics, KvType};
use crate::metrics;
use crate::numerics::{argmax, check_finite_logits};
use crate::trace::Meta;
use record::{Checker, StepRecord, write_trace};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;
use tally::Tally;

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
    let mut tally = Tally::new(
        c,
        [sem(&a.side), sem(&b.side)],
        !(a.side.synthetic || b.side.synthetic),
        b.meta.nodes.last().map(|n| n.name.clone()),
    );
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
        tally.one_sided += rec_a.order.iter().filter(|&&id| !rec_b.has(id)).count();
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
