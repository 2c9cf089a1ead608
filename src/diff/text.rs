//! The text rendering of a diff report (what `graphrun diff` prints), its last line and
//! its exit status.

use super::{Cause, InputDiff, Report};

/// A metric for the reports: `0`, `inf`, or two significant digits in scientific notation.
pub(crate) fn sci(x: f64) -> String {
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
            match f.cause {
                Cause::Culprit => "its inputs are within band: this node is the culprit",
                Cause::Inherited => "an input is already out of band: inherited",
                Cause::Unknown => "no input recorded",
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
        if self.realigned_split + self.realigned_merged > 0 {
            let _ = writeln!(
                w,
                "realigned: the two runs recorded a prefill in different chunks (the GPU runs 2,048 rows at a time); {} segments were split at the other side's chunk boundaries and {} merged, so rows are compared position by position",
                self.realigned_split, self.realigned_merged
            );
        }
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
                    let _ = writeln!(w, "{}", i.line());
                }
                if let Some(line) = self.first_line() {
                    let _ = writeln!(w, "{line}");
                }
            }
        }
        s
    }
}

impl InputDiff {
    /// `  input NODE: NMSE x (band y) in band|OUT OF BAND`, as the reports print it.
    pub(crate) fn line(&self) -> String {
        format!(
            "  input {}{}: NMSE {} (band {}) {}",
            self.node,
            self.via
                .as_ref()
                .map(|v| format!(" (recorded ancestor of {v})"))
                .unwrap_or_default(),
            sci(self.nmse),
            sci(self.band),
            if self.in_band {
                "in band"
            } else {
                "OUT OF BAND"
            }
        )
    }
}
