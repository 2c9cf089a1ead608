//! Rolling statistics of a live comparison: per node the worst NMSE and where, per layer
//! the worst NMSE of every step, the first out-of-band record.

use super::Stop;
use crate::contracts::Contract;
use crate::diff::{band, classes, layer_key};
use crate::error::Result;
use crate::graph::{ActSemantics, KvType, Node, NodeId};
use crate::metrics::{self, Metrics};
use serde::Serialize;

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

/// One layer while the run goes on: its worst NMSE per step and its worst record.
struct LayerTrack {
    key: String,
    /// Worst NMSE per step (NaN: no record of the layer in that step).
    series: Vec<f64>,
    /// Worst record relative to its band: (nmse, band, node@pos, step).
    worst: Option<(f64, f64, String, usize)>,
}

/// Rolling statistics of the comparison.
pub(super) struct Tally {
    pub(super) contract: Contract,
    /// Activation semantics and KV cache type of each side (the band lookup's keys).
    sides: [(ActSemantics, KvType); 2],
    /// Real (not synthetic) weights on both sides: the contract's `nmse_real` bands apply.
    real: bool,
    /// The graph's output node (band class `logits`).
    output_node: Option<String>,
    /// Per node id.
    pub(super) nodes: Vec<Option<NodeDrift>>,
    layers: Vec<LayerTrack>,
    pub(super) records: usize,
    pub(super) one_sided: usize,
    pub(super) stop: Option<Stop>,
    /// Worst record so far relative to its band: (relative, node@pos, step, nmse, band).
    pub(super) worst: Option<(f64, String, usize, f64, f64)>,
}

/// NMSE relative to a band (a zero band: the NMSE itself, as the HTML report colors it).
fn relative(nmse: f64, band: f64) -> f64 {
    if band > 0.0 { nmse / band } else { nmse }
}

impl Tally {
    pub(super) fn new(
        contract: Contract,
        sides: [(ActSemantics, KvType); 2],
        real: bool,
        output_node: Option<String>,
    ) -> Tally {
        Tally {
            contract,
            sides,
            real,
            output_node,
            nodes: Vec::new(),
            layers: Vec::new(),
            records: 0,
            one_sided: 0,
            stop: None,
            worst: None,
        }
    }

    /// Compares A's and B's rows of one node's output in one step (B is the reference),
    /// judged by the band `graphrun diff` would use for the record (its class: fused group,
    /// `logits`, op).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn compare(
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
    pub(super) fn end_step(&mut self, step: usize) {
        for l in &mut self.layers {
            if l.series.len() <= step {
                l.series.resize(step + 1, f64::NAN);
            }
        }
    }

    pub(super) fn layers(&self, steps: usize) -> Vec<LayerDrift> {
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
}
