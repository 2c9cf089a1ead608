//! `graphrun dump --stage fused --timeline`: one decode step's launches as the captured
//! graph runs them (a diagnostic build's kernel stamps, src/exec/cuda/timeline.rs), matched
//! to the fused schedule's groups, with a summary per kernel.

use graphrun::Result;
use graphrun::codegen::KernelId;
use graphrun::exec::cuda::{Launch, Timeline};
use graphrun::graph::{DumpFormat, Graph};
use graphrun::sched::Schedule;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Microseconds between two %globaltimer readings (negative when `b` is before `a`).
fn us(a: u64, b: u64) -> f64 {
    (b as f64 - a as f64) / 1e3
}

/// The schedule group of every launch: the step launches each group's kernels in order,
/// then the argmax; a launch that does not match the next expected kernel gets None.
fn group_of(s: &Schedule, launches: &[Launch]) -> Vec<Option<usize>> {
    let expected: Vec<(usize, _)> = s
        .groups
        .iter()
        .enumerate()
        .flat_map(|(gi, gr)| gr.kernels.iter().map(move |k| (gi, *k)))
        .collect();
    let mut at = 0;
    launches
        .iter()
        .map(|l| {
            // A deferred attention merge launches prep_merge where the schedule says prep.
            let hit = expected[at..].iter().position(|(_, k)| {
                *k == l.kernel || (*k == KernelId::Prep && l.kernel == KernelId::PrepMerge)
            })?;
            at += hit + 1;
            Some(expected[at - 1].0)
        })
        .collect()
}

/// The listing (text) or a JSON document of the step.
pub fn render(
    g: &Graph,
    s: &Schedule,
    t: &Timeline,
    pos: usize,
    format: DumpFormat,
) -> Result<String> {
    let l = &t.launches;
    if l.is_empty() {
        return Err(graphrun::Error::invalid(
            "the timeline recorded no launch (were the kernels loaded from this build?)",
        ));
    }
    let groups = group_of(s, l);
    let gr_node = |n| g.node(n).name.clone();
    let t0 = l[0].entry;
    let end = l.iter().map(|x| x.exit_last).max().unwrap();
    // A launch's span: from the previous launch's last exit to its own (its share of the
    // step's critical path); its hop: from that exit until its first CTA's wait returned.
    let prev_exit: Vec<u64> = (0..l.len())
        .map(|i| {
            if i == 0 {
                l[0].entry
            } else {
                l[i - 1].exit_last
            }
        })
        .collect();
    let span = |i: usize| us(prev_exit[i], l[i].exit_last);
    let hop = |i: usize| us(prev_exit[i], l[i].wait_first);
    let mut group_span: BTreeMap<usize, f64> = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        if let Some(g) = g {
            *group_span.entry(*g).or_default() += span(i);
        }
    }
    // Per kernel name: launches, span, hop, wait spread, work after the last wait.
    let mut by_kernel: BTreeMap<String, (usize, f64, f64, f64, f64)> = BTreeMap::new();
    for (i, x) in l.iter().enumerate() {
        let e = by_kernel.entry(x.kernel.name()).or_default();
        e.0 += 1;
        e.1 += span(i);
        e.2 += hop(i);
        e.3 += us(x.wait_first, x.wait_last);
        e.4 += us(x.wait_last, x.exit_last);
    }
    if format == DumpFormat::Json {
        let launches: Vec<_> = l
            .iter()
            .enumerate()
            .map(|(i, x)| {
                serde_json::json!({
                    "kernel": x.kernel.name(), "ctas": x.ctas, "sms": x.sms,
                    "group": groups[i], "group_kernels": groups[i].map(|g| s.groups[g].kernel_names()),
                    "entry_us": us(t0, x.entry), "wait_first_us": us(t0, x.wait_first),
                    "wait_last_us": us(t0, x.wait_last), "exit_median_us": us(t0, x.exit_median),
                    "exit_last_us": us(t0, x.exit_last), "span_us": span(i), "hop_us": hop(i),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "position": pos, "step_us": us(t0, end),
            "launches": launches,
            "groups": group_span.iter().map(|(g, sp)| serde_json::json!({
                "group": g, "kernels": s.groups[*g].kernel_names(),
                "weight_bytes": s.groups[*g].weight_bytes, "span_us": sp,
            })).collect::<Vec<_>>(),
        });
        return Ok(serde_json::to_string_pretty(&doc).expect("json") + "\n");
    }
    let mut o = String::new();
    writeln!(
        o,
        "timeline of one decode step at position {pos} (the captured graph, replayed): {} launches, {:.1} us from the first CTA's entry to the last CTA's exit",
        l.len(),
        us(t0, end),
    )
    .unwrap();
    writeln!(
        o,
        "times in us; entry: first CTA in; hop: previous launch's last exit -> first wait returned; spread: first -> last wait returned; work: last wait -> last exit; span: previous last exit -> last exit"
    )
    .unwrap();
    writeln!(
        o,
        "{:>4}  {:<34} {:>5} {:>4} {:>8} {:>6} {:>6} {:>6} {:>6}  group",
        "#", "kernel", "CTAs", "SMs", "entry", "hop", "spread", "work", "span"
    )
    .unwrap();
    for (i, x) in l.iter().enumerate() {
        let gname = groups[i].map_or("-".to_string(), |g| {
            let last = s.groups[g]
                .nodes
                .last()
                .map(|n| gr_node(*n))
                .unwrap_or_default();
            format!("g{g} {last}")
        });
        writeln!(
            o,
            "{:>4}  {:<34} {:>5} {:>4} {:>8.1} {:>6.2} {:>6.2} {:>6.2} {:>6.2}  {gname}",
            i,
            x.kernel.name(),
            x.ctas,
            x.sms,
            us(t0, x.entry),
            hop(i),
            us(x.wait_first, x.wait_last),
            us(x.wait_last, x.exit_last),
            span(i),
        )
        .unwrap();
    }
    writeln!(
        o,
        "\nper kernel (sums over the step's launches; mean per launch in brackets):"
    )
    .unwrap();
    writeln!(
        o,
        "{:<34} {:>5} {:>9} {:>6} {:>15} {:>15} {:>15}",
        "kernel", "runs", "span", "share", "hop", "spread", "work"
    )
    .unwrap();
    let total = us(t0, end);
    let mut rows: Vec<_> = by_kernel.into_iter().collect();
    rows.sort_by(|a, b| b.1.1.total_cmp(&a.1.1));
    for (k, (n, sp, hp, spread, work)) in rows {
        let m = |v: f64| format!("{v:>6.1} [{:>5.2}]", v / n as f64);
        writeln!(
            o,
            "{k:<34} {n:>5} {sp:>9.1} {:>5.1}% {} {} {}",
            100.0 * sp / total,
            m(hp),
            m(spread),
            m(work)
        )
        .unwrap();
    }
    let hops: f64 = (1..l.len()).map(hop).sum();
    writeln!(
        o,
        "hops (previous last exit -> first wait returned) sum to {hops:.1} us of the {total:.1} us step ({:.1}%)",
        100.0 * hops / total
    )
    .unwrap();
    let bytes: u64 = group_span.keys().map(|g| s.groups[*g].weight_bytes).sum();
    writeln!(
        o,
        "weights {:.1} MB over the step: {:.0} GB/s",
        bytes as f64 / 1e6,
        bytes as f64 / (total * 1e-6) / 1e9
    )
    .unwrap();
    Ok(o)
}
