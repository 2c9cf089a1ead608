//! `graphrun dump`: the lowered graph (and, with the GPU backend, the fused schedule).

use super::common::open;
use graphrun::Result;
use graphrun::exec::cuda::{CudaEngine, CudaOptions};
use graphrun::exec::{Engine, NoObserver};
use graphrun::graph::{
    ActSemantics, DumpFormat, Graph, KvType, LowerOptions, NodePattern, dump, lower,
};
use graphrun::sched::{Phase, Schedule, schedule};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    /// The op graph as lowered from the model file, one node per op.
    Lowered,
    /// The GPU schedule: kernel groups, the kernels each launches and the nodes it covers.
    Fused,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PhaseArg {
    /// One token row per step (fused groups unless --no-fuse).
    Decode,
    /// The prompt's rows in one step (one group per node; batched matmul kernels).
    Prefill,
}

#[derive(clap::Args)]
pub struct Args {
    /// GGUF or APR model (default: the cached 0.5B).
    model: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "lowered")]
    stage: Stage,
    #[arg(long, value_enum, default_value = "text")]
    format: DumpFormat,
    /// Activation semantics recorded on matmul nodes.
    #[arg(long, value_enum, default_value = "q8")]
    act: ActSemantics,
    /// Element type of the KV cache recorded on kv_append and attention nodes.
    #[arg(long, value_enum, default_value = "f16")]
    kv: KvType,
    /// With --stage fused: the schedule without fusion (one kernel per node).
    #[arg(long)]
    no_fuse: bool,
    /// With --stage fused: the decode or the prefill schedule.
    #[arg(long, value_enum, default_value = "decode")]
    phase: PhaseArg,
    /// Only nodes whose names match these globs (comma separated, `*` and `?`), e.g.
    /// `--nodes 'blk.3.*'` for one block: a DOT of one block renders as a readable picture.
    /// With --stage fused: the groups covering a matching node.
    #[arg(long, value_name = "GLOBS")]
    nodes: Option<String>,
    /// With --stage fused, on a GPU: time every kernel of one decode step and report its
    /// achieved weight bandwidth.
    #[arg(long)]
    profile: bool,
    /// CUDA device for --profile.
    #[arg(long, default_value_t = 0)]
    device: usize,
}

pub fn run(a: Args) -> Result<i32> {
    let m = open(a.model)?;
    let g = lower(
        &m,
        LowerOptions {
            act: a.act,
            kv: a.kv,
        },
    )?;
    let nodes = a
        .nodes
        .as_deref()
        .map_or_else(NodePattern::all, NodePattern::new);
    match a.stage {
        Stage::Lowered => print!("{}", dump(&g, a.format, &nodes)),
        Stage::Fused => {
            let phase = match a.phase {
                PhaseArg::Decode => Phase::Decode,
                PhaseArg::Prefill => Phase::Prefill,
            };
            let s = schedule(&g, phase, !a.no_fuse)?;
            let times = match (a.profile, phase) {
                (true, Phase::Decode) => Some(profile(&m, &g, &s, a.device, a.no_fuse)?),
                (true, Phase::Prefill) => {
                    return Err(graphrun::Error::invalid(
                        "--profile times the decode step; use it with --phase decode",
                    ));
                }
                (false, _) => None,
            };
            print!("{}", fused_dump(&g, &s, times.as_deref(), a.format, &nodes));
        }
    }
    Ok(0)
}

fn profile(
    m: &graphrun::model::ModelFile,
    g: &Graph,
    s: &Schedule,
    device: usize,
    no_fuse: bool,
) -> Result<Vec<f32>> {
    let opts = CudaOptions {
        device,
        n_ctx: 1024,
        fuse: !no_fuse,
        max_logit_rows: 1,
        quiet: true,
    };
    // Decode after a 512-token prompt, as `graphrun bench` measures it.
    let mut e = CudaEngine::new(m, g.clone(), &opts)?;
    let prompt: Vec<u32> = (0..512).map(|i| 1000 + i).collect();
    e.step(&prompt, 511..512, &mut NoObserver)?;
    e.profile_decode(5)?; // warm-up (module load, first launches)
    let mut best = e.profile_decode(6)?;
    for _ in 0..4 {
        for (b, t) in best.iter_mut().zip(e.profile_decode(7)?) {
            *b = b.min(t);
        }
    }
    assert_eq!(best.len(), s.groups.len());
    Ok(best)
}

fn fused_dump(
    g: &Graph,
    s: &Schedule,
    times: Option<&[f32]>,
    format: DumpFormat,
    pattern: &NodePattern,
) -> String {
    let shown =
        |gr: &graphrun::sched::Group| gr.nodes.iter().any(|n| pattern.matches(&g.node(*n).name));
    let names = |gr: &graphrun::sched::Group| {
        gr.nodes
            .iter()
            .map(|n| g.node(*n).name.clone())
            .collect::<Vec<_>>()
    };
    match format {
        DumpFormat::Json => {
            let kernels: Vec<_> = s
                .groups
                .iter()
                .enumerate()
                .filter(|(_, gr)| shown(gr))
                .map(|(i, gr)| {
                    let t = times.map(|t| t[i]);
                    serde_json::json!({
                        "group": gr.name, "pass": gr.pass, "kernels": gr.kernels.iter().map(|k| k.name()).collect::<Vec<_>>(), "nodes": names(gr),
                        "weight_bytes": gr.weight_bytes,
                        "time_ms": t, "gb_s": t.map(|t| gr.weight_bytes as f64 / (t as f64 * 1e-3) / 1e9),
                    })
                })
                .collect();
            serde_json::to_string_pretty(&serde_json::json!({"stage": "fused", "phase": s.phase, "fused": s.fused, "arch": g.arch, "groups": kernels})).expect("json")
        }
        DumpFormat::Dot => {
            let mut out = format!(
                "digraph \"{} fused\" {{\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n",
                g.arch
            );
            for (i, gr) in s.groups.iter().enumerate().filter(|(_, gr)| shown(gr)) {
                out += &format!(
                    "  subgraph cluster_k{i} {{\n    label=\"{}\"; style=rounded;\n",
                    gr.kernel_names()
                );
                for n in &gr.nodes {
                    out += &format!("    n{} [label=\"{}\"];\n", n.0, g.node(*n).name);
                }
                out += "  }\n";
            }
            let group_of = s.group_of(g.len());
            for (id, n) in g
                .nodes()
                .filter(|(id, _)| shown(&s.groups[group_of[id.index()]]))
            {
                for i in n
                    .inputs
                    .iter()
                    .filter(|i| shown(&s.groups[group_of[i.index()]]))
                {
                    out += &format!("  n{} -> n{};\n", i.0, id.0);
                }
            }
            out + "}\n"
        }
        DumpFormat::Text => {
            let total_w: u64 = s.groups.iter().map(|gr| gr.weight_bytes).sum();
            let mut out = format!(
                "schedule {} ({}): {} groups ({}), {} weight bytes\n",
                g.arch,
                s.phase.name(),
                s.groups.len(),
                if s.fused { "fused" } else { "unfused" },
                total_w
            );
            let mut total_t = 0.0f64;
            for (i, gr) in s.groups.iter().enumerate() {
                if let Some(t) = times {
                    total_t += t[i] as f64;
                }
                if !shown(gr) {
                    continue;
                }
                out += &format!(
                    "k{i:<4} {:<32} {:<18} {:>10}B",
                    gr.kernel_names(),
                    gr.pass,
                    gr.weight_bytes
                );
                if let Some(t) = times {
                    out += &format!(
                        "  {:>8.1} us  {:>7.1} GB/s",
                        t[i] * 1000.0,
                        gr.weight_bytes as f64 / (t[i] as f64 * 1e-3) / 1e9
                    );
                }
                out += &format!("  [{}]\n", names(gr).join(", "));
            }
            if times.is_some() {
                out += &format!(
                    "total kernel time {:.3} ms per decode step ({:.0} GB/s of weights)\n",
                    total_t,
                    total_w as f64 / (total_t * 1e-3) / 1e9
                );
            }
            out
        }
    }
}
