//! The text report of a live comparison.

use super::LiveReport;
use crate::diff::text::sci;

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
                let _ = writeln!(w, "{}", i.line());
            }
        }
        if let Some(line) = &self.first_divergence_line {
            let _ = writeln!(w, "{line}");
        }
        s
    }
}
