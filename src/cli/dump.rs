//! `graphrun dump`: the lowered graph (and, with the GPU backend, the fused schedule).

use super::common::open;
use graphrun::Result;
use graphrun::exec::cuda::{CudaEngine, CudaOptions};
use graphrun::exec::{Engine, NoObserver};
use graphrun::graph::{ActSemantics, DumpFormat, Graph, LowerOptions, dump, lower};
use graphrun::sched::{Schedule, schedule};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    /// The op graph as lowered from the model file, one node per op.
    Lowered,
    /// The decode schedule: kernel groups with the nodes they cover.
    Fused,
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
    /// With --stage fused: the schedule without fusion (one kernel per node).
    #[arg(long)]
    no_fuse: bool,
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
    let g = lower(&m, LowerOptions { act: a.act })?;
    match a.stage {
        Stage::Lowered => print!("{}", dump(&g, a.format)),
        Stage::Fused => {
            let s = schedule(&g, !a.no_fuse);
            let times = if a.profile {
                Some(profile(&m, &g, &s, a.device, a.no_fuse)?)
            } else {
                None
            };
            print!("{}", fused_dump(&g, &s, times.as_deref(), a.format));
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

fn fused_dump(g: &Graph, s: &Schedule, times: Option<&[f32]>, format: DumpFormat) -> String {
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
                .map(|(i, gr)| {
                    let t = times.map(|t| t[i]);
                    serde_json::json!({
                        "group": gr.name, "pass": gr.pass, "kernel": gr.kernel, "nodes": names(gr),
                        "weight_bytes": gr.weight_bytes,
                        "time_ms": t, "gb_s": t.map(|t| gr.weight_bytes as f64 / (t as f64 * 1e-3) / 1e9),
                    })
                })
                .collect();
            serde_json::to_string_pretty(&serde_json::json!({"stage": "fused", "fused": s.fused, "arch": g.arch, "kernels": kernels})).expect("json")
        }
        DumpFormat::Dot => {
            let mut out = format!(
                "digraph \"{} fused\" {{\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n",
                g.arch
            );
            for (i, gr) in s.groups.iter().enumerate() {
                out += &format!(
                    "  subgraph cluster_k{i} {{\n    label=\"{}\"; style=rounded;\n",
                    gr.kernel
                );
                for n in &gr.nodes {
                    out += &format!("    n{} [label=\"{}\"];\n", n.0, g.node(*n).name);
                }
                out += "  }\n";
            }
            for (id, n) in g.nodes() {
                for i in &n.inputs {
                    out += &format!("  n{} -> n{};\n", i.0, id.0);
                }
            }
            out + "}\n"
        }
        DumpFormat::Text => {
            let total_w: u64 = s.groups.iter().map(|gr| gr.weight_bytes).sum();
            let mut out = format!(
                "schedule {}: {} kernels ({}), {} weight bytes\n",
                g.arch,
                s.groups.len(),
                if s.fused { "fused" } else { "unfused" },
                total_w
            );
            let mut total_t = 0.0f64;
            for (i, gr) in s.groups.iter().enumerate() {
                out += &format!(
                    "k{i:<4} {:<28} {:<18} {:>10}B",
                    gr.kernel, gr.pass, gr.weight_bytes
                );
                if let Some(t) = times {
                    total_t += t[i] as f64;
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
