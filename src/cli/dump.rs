//! `graphrun dump`: the lowered graph (and, with the GPU backend, the fused schedule).

use super::common::open;
use graphrun::Result;
use graphrun::exec::cuda::{CudaEngine, CudaOptions, DecodeKernel, PrefillProfile};
use graphrun::exec::{Engine, NoObserver};
use graphrun::graph::{
    ActSemantics, DumpFormat, Graph, KvType, LowerOptions, NodePattern, dump, lower,
};
use graphrun::sched::program::{self, Program, ProgramOptions};
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
    /// With --stage fused, on a GPU: time every kernel group of one decode step and report
    /// its achieved weight bandwidth against the byte floor; with --phase prefill, of a
    /// prefill of --prompt tokens (share of the step, time per kernel, and the step's wall
    /// time, GPU span and host issue time as `graphrun bench` runs it).
    #[arg(long)]
    profile: bool,
    /// With --stage fused (decode), on a GPU, in a diagnostic build (GRAPHRUN_STAMPS=1 at
    /// build time): one decode step after a --prompt-token prompt as the captured graph runs it:
    /// every launch's entry, wait, work and span on the step's critical path, from stamps
    /// its CTAs write (the groups' weights come from DRAM here, unlike --profile, which
    /// runs each group 20 times in a row and so times small groups from the L2).
    #[arg(long, conflicts_with = "profile")]
    timeline: bool,
    /// With --phase prefill --profile: the prompt's length in tokens; with --timeline: the
    /// prompt before the timed decode step (which runs at this position + 8).
    #[arg(long, default_value_t = 512, value_parser = super::common::at_least_1)]
    prompt: usize,
    /// CUDA device for --profile.
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// With --stage fused: `persistent` lists the persistent decode kernel's instruction
    /// program (with --profile: its time per instruction); `graph` (and --profile alone,
    /// as a run's default) times the group kernels.
    #[arg(long, value_enum)]
    decode_kernel: Option<DecodeKernel>,
    /// With --decode-kernel persistent and no --profile: the CTAs the program is sized for
    /// (a run sizes it from its GPU: resident CTAs per SM × SMs; 264 = an H200 at two; the
    /// attention's shared memory is sized for an H200 too).
    #[arg(long, default_value_t = 264, value_parser = super::common::at_least_1)]
    ctas: usize,
}

/// What `--profile` measured: per-group times of the multi-kernel path, or per-instruction
/// times of the persistent kernel with its program; with the device's plain read rate.
enum Profile {
    Groups(Vec<f32>, f64),
    Persistent(Program, Vec<f32>, f64),
    Prefill(PrefillProfile),
}

/// Measured group times (ms) and the device's plain read rate (bytes/s), for the listing.
#[derive(Clone, Copy)]
struct Timing<'a> {
    times: &'a [f32],
    read_bw: f64,
}

pub fn run(a: Args) -> Result<i32> {
    let m = open(a.model.clone())?;
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
            let listing = a.decode_kernel == Some(DecodeKernel::Persistent);
            if listing && (phase == Phase::Prefill || a.no_fuse) {
                return Err(graphrun::Error::invalid(
                    "--decode-kernel persistent lists the fused decode program; drop --phase prefill / --no-fuse",
                ));
            }
            if a.timeline {
                if !graphrun::codegen::STAMPS {
                    return Err(graphrun::Error::invalid(
                        "--timeline needs a diagnostic build: rebuild with GRAPHRUN_STAMPS=1 (kernels record their launches)",
                    ));
                }
                if phase != Phase::Decode || a.no_fuse || listing {
                    return Err(graphrun::Error::invalid(
                        "--timeline records the fused decode graph; drop --phase prefill / --no-fuse / --decode-kernel persistent",
                    ));
                }
                let (t, pos) = timeline(&m, &g, &a)?;
                print!("{}", super::timeline::render(&g, &s, &t, pos, a.format)?);
                return Ok(0);
            }
            let prof = match (a.profile, phase) {
                (true, Phase::Decode) => Some(profile(&m, &g, &s, &a)?),
                (true, Phase::Prefill) => Some(profile_prefill(&m, &g, &a)?),
                (false, _) => None,
            };
            match prof {
                Some(Profile::Persistent(p, t, read_bw)) if listing => {
                    let mut out = program_dump(&g, &p, Some(&t), a.format, &nodes);
                    if a.format == DumpFormat::Text {
                        let (groups, _) = per_group(&p, &t, s.groups.len());
                        out += &layer_lines(&group_layer_rows(&g, &s, &groups), read_bw);
                    }
                    print!("{out}")
                }
                Some(Profile::Persistent(p, t, read_bw)) => {
                    let (groups, argmax) = per_group(&p, &t, s.groups.len());
                    let timing = Timing {
                        times: &groups,
                        read_bw,
                    };
                    let mut out = fused_dump(&g, &s, Some(timing), a.format, &nodes);
                    if a.format == DumpFormat::Text {
                        out += &format!(
                            "timed: the persistent decode kernel ({} CTAs); argmax {:.1} us; launch span {:.3} ms\n",
                            p.ctas,
                            argmax * 1000.0,
                            t.iter().sum::<f32>()
                        );
                    }
                    print!("{out}")
                }
                Some(Profile::Groups(t, read_bw)) => {
                    let timing = Timing { times: &t, read_bw };
                    print!("{}", fused_dump(&g, &s, Some(timing), a.format, &nodes))
                }
                Some(Profile::Prefill(p)) => {
                    let timing = Timing {
                        times: &p.groups,
                        read_bw: 0.0,
                    };
                    let listing = fused_dump(&g, &s, Some(timing), a.format, &nodes);
                    print!("{}", prefill_summary(listing, &s, &p, a.prompt, a.format))
                }
                None if listing => {
                    let opts = ProgramOptions {
                        ctas: a.ctas,
                        n_ctx: 4096.min(m.hparams.n_ctx_train.max(1)),
                        max_att_splits: None,
                        smem_per_sm: program::H200_SMEM_PER_SM,
                        max_smem: program::H200_MAX_SMEM,
                    };
                    let p = program::build(&g, &s, opts)?;
                    print!("{}", program_dump(&g, &p, None, a.format, &nodes))
                }
                None => print!("{}", fused_dump(&g, &s, None, a.format, &nodes)),
            }
        }
    }
    Ok(0)
}

fn profile(m: &graphrun::model::ModelFile, g: &Graph, s: &Schedule, a: &Args) -> Result<Profile> {
    let opts = CudaOptions {
        device: a.device,
        n_ctx: 1024,
        fuse: !a.no_fuse,
        max_logit_rows: 1,
        quiet: true,
    };
    // Decode after a 512-token prompt, as `graphrun bench` measures it.
    let mut e = CudaEngine::new(m, g.clone(), &opts)?;
    if opts.fuse
        && let Some(note) = e.set_decode_kernel(a.decode_kernel.unwrap_or_default())?
    {
        eprintln!("graphrun: {note}");
    }
    let prompt: Vec<u32> = (0..512).map(|i| 1000 + i).collect();
    e.step(&prompt, 511..512, &mut NoObserver)?;
    // The floor of the per-layer summary: a plain streaming read, as `graphrun bench` takes it.
    let read_bw = e.read_bandwidth(1 << 30)?;
    if e.persistent_program().is_some() {
        // Best of 5 means of 20 launches, per instruction.
        let mut best = e.profile_persistent(5, 20)?;
        for _ in 0..4 {
            for (b, t) in best.iter_mut().zip(e.profile_persistent(6, 20)?) {
                *b = b.min(t);
            }
        }
        let p = e.persistent_program().expect("in use").clone();
        return Ok(Profile::Persistent(p, best, read_bw));
    }
    e.profile_decode(5)?; // warm-up (module load, first launches)
    let mut best = e.profile_decode(6)?;
    for _ in 0..4 {
        for (b, t) in best.iter_mut().zip(e.profile_decode(7)?) {
            *b = b.min(t);
        }
    }
    assert_eq!(best.len(), s.groups.len());
    Ok(Profile::Groups(best, read_bw))
}

/// One decode step's launch timeline after a `--prompt`-token prompt (512: as `profile`
/// decodes) and 8 more steps, and the step's position.
fn timeline(
    m: &graphrun::model::ModelFile,
    g: &Graph,
    a: &Args,
) -> Result<(graphrun::exec::cuda::Timeline, usize)> {
    const WARMUP: usize = 8;
    let n = a.prompt;
    if n + WARMUP + 1 > m.hparams.n_ctx_train {
        return Err(graphrun::Error::invalid(format!(
            "--prompt {n}: the timed step would pass the model's training context ({})",
            m.hparams.n_ctx_train
        )));
    }
    let opts = CudaOptions {
        device: a.device,
        n_ctx: (n + WARMUP + 1).max(1024),
        fuse: true,
        max_logit_rows: 1,
        quiet: true,
    };
    let mut e = CudaEngine::new(m, g.clone(), &opts)?;
    if let Some(note) = e.set_decode_kernel(DecodeKernel::Graph)? {
        eprintln!("graphrun: {note}");
    }
    let prompt: Vec<u32> = (0..n as u32).map(|i| 1000 + i).collect();
    e.step(&prompt, n - 1..n, &mut NoObserver)?;
    let t = e.timeline_decode(5, WARMUP)?;
    Ok((t, n + WARMUP))
}

fn profile_prefill(m: &graphrun::model::ModelFile, g: &Graph, a: &Args) -> Result<Profile> {
    if a.no_fuse {
        return Err(graphrun::Error::invalid(
            "--phase prefill --profile times the fused prefill schedule; drop --no-fuse",
        ));
    }
    if a.prompt > m.hparams.n_ctx_train {
        return Err(graphrun::Error::invalid(format!(
            "--prompt {}: more positions than the model's training context ({})",
            a.prompt, m.hparams.n_ctx_train
        )));
    }
    let opts = CudaOptions {
        device: a.device,
        n_ctx: a.prompt.max(16),
        fuse: true,
        max_logit_rows: 1,
        quiet: true,
    };
    let mut e = CudaEngine::new(m, g.clone(), &opts)?;
    // The synthetic prompt `graphrun bench` uses for its own runs would do as well: the
    // kernels' time does not depend on the token ids.
    let prompt: Vec<u32> = (0..a.prompt as u32).map(|i| 1000 + i).collect();
    e.profile_prefill(&prompt)?; // warm-up (module load, first launches, arena)
    let mut best = e.profile_prefill(&prompt)?;
    for _ in 0..2 {
        let p = e.profile_prefill(&prompt)?;
        if p.wall_ms < best.wall_ms {
            best = p;
        }
    }
    Ok(Profile::Prefill(best))
}

/// The prefill profile's closing lines: time per kernel (summed over its groups) and the
/// step as bench runs it.
fn prefill_summary(
    listing: String,
    s: &Schedule,
    p: &PrefillProfile,
    prompt: usize,
    format: DumpFormat,
) -> String {
    let total: f64 = p.groups.iter().map(|&t| t as f64).sum();
    let mut by_kernel: std::collections::BTreeMap<String, (usize, f64)> = Default::default();
    for (gr, &t) in s.groups.iter().zip(&p.groups) {
        let e = by_kernel.entry(gr.kernel_names()).or_default();
        e.0 += 1;
        e.1 += t as f64;
    }
    let mut kernels: Vec<_> = by_kernel.into_iter().collect();
    kernels.sort_by(|a, b| b.1.1.total_cmp(&a.1.1));
    let gaps = p.span_ms as f64 - total;
    match format {
        DumpFormat::Json => {
            let mut doc: serde_json::Value = serde_json::from_str(&listing).expect("json");
            doc["prefill"] = serde_json::json!({
                "prompt": prompt, "groups_ms": total, "wall_ms": p.wall_ms, "span_ms": p.span_ms,
                "issued_ms": p.issued_ms, "tok_s": prompt as f64 / (p.wall_ms * 1e-3),
                "kernels": kernels.iter().map(|(k, (n, t))| serde_json::json!({"kernels": k, "groups": n, "time_ms": t})).collect::<Vec<_>>(),
            });
            serde_json::to_string_pretty(&doc).expect("json")
        }
        DumpFormat::Dot => listing,
        DumpFormat::Text => {
            let mut out = listing;
            out += &format!("per kernel (prefill of {prompt} tokens):\n");
            for (k, (n, t)) in &kernels {
                out += &format!(
                    "  {k:<36} {n:>4} groups  {:>9.3} ms  {:>5.1}%\n",
                    t,
                    100.0 * t / total.max(1e-9)
                );
            }
            out += &format!(
                "as bench runs it: {:.3} ms wall ({:.0} tok/s), GPU span {:.3} ms (groups timed apart: {:.3} ms, {:+.3} ms), last launch issued after {:.3} ms\n",
                p.wall_ms,
                prompt as f64 / (p.wall_ms * 1e-3),
                p.span_ms,
                total,
                -gaps,
                p.issued_ms
            );
            out
        }
    }
}

/// Per-group sums of per-instruction times, and the argmax's (no group's).
fn per_group(p: &Program, t: &[f32], n_groups: usize) -> (Vec<f32>, f32) {
    let mut groups = vec![0.0f32; n_groups];
    let mut argmax = 0.0;
    for (ins, t) in p.instrs.iter().zip(t) {
        match ins.group {
            Some(gi) => groups[gi] += t,
            None => argmax += t,
        }
    }
    (groups, argmax)
}

/// The persistent program: one line per instruction (op, group node, work items,
/// dependencies, what it computes), with times when profiled.
fn program_dump(
    g: &Graph,
    p: &Program,
    times: Option<&[f32]>,
    format: DumpFormat,
    pattern: &NodePattern,
) -> String {
    let shown = |ins: &program::Instr| pattern.matches(&ins.name);
    let gb_s = |bytes: u64, ms: f32| bytes as f64 / (ms as f64 * 1e-3) / 1e9;
    match format {
        DumpFormat::Json => {
            let list: Vec<_> = p
                .instrs
                .iter()
                .enumerate()
                .filter(|(_, ins)| shown(ins))
                .map(|(i, ins)| {
                    let t = times.map(|t| t[i]);
                    serde_json::json!({
                        "index": i, "op": ins.op.name(), "name": ins.name, "group": ins.group,
                        "items": ins.items, "deps": ins.deps, "what": ins.describe(),
                        "weight_bytes": ins.weight_bytes, "time_ms": t,
                        "gb_s": t.map(|t| gb_s(ins.weight_bytes, t)),
                    })
                })
                .collect();
            serde_json::to_string_pretty(&serde_json::json!({
                "stage": "fused", "phase": "decode", "decode_kernel": "persistent", "arch": g.arch,
                "ctas": p.ctas, "smem_bytes": p.smem_bytes, "att_splits": p.att_splits,
                "instructions": list,
            }))
            .expect("json")
        }
        DumpFormat::Dot => {
            let mut out = format!(
                "digraph \"{} persistent\" {{\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n",
                g.arch
            );
            for (i, ins) in p.instrs.iter().enumerate().filter(|(_, ins)| shown(ins)) {
                out += &format!(
                    "  i{i} [label=\"i{i} {} {}\\n{} items\"];\n",
                    ins.op.name(),
                    ins.name,
                    ins.items
                );
                for d in ins.deps.iter().filter(|&&d| shown(&p.instrs[d])) {
                    out += &format!("  i{d} -> i{i};\n");
                }
            }
            out + "}\n"
        }
        DumpFormat::Text => {
            let mut out = format!(
                "program {} (decode, persistent kernel): {} instructions for {} CTAs, {} B of shared memory per CTA, attention in {} splits per KV head\n",
                g.arch,
                p.instrs.len(),
                p.ctas,
                p.smem_bytes,
                p.att_splits
            );
            for (i, ins) in p.instrs.iter().enumerate().filter(|(_, ins)| shown(ins)) {
                out += &format!(
                    "i{i:<4} {:<13} {:<22} {:>6} items  deps {:<12}",
                    ins.op.name(),
                    ins.name,
                    ins.items,
                    ins.deps_text()
                );
                if let Some(t) = times {
                    out += &format!("  {:>8.1} us", t[i] * 1000.0);
                    if ins.weight_bytes > 0 {
                        out += &format!("  {:>7.1} GB/s", gb_s(ins.weight_bytes, t[i]));
                    }
                }
                out += &format!("  {}\n", ins.describe());
            }
            if let Some(t) = times {
                let total: f32 = t.iter().sum();
                let bytes: u64 = p.instrs.iter().map(|i| i.weight_bytes).sum();
                out += &format!(
                    "launch span {:.3} ms per decode step ({:.0} GB/s of weights)\n",
                    total,
                    gb_s(bytes, total)
                );
            }
            out
        }
    }
}

/// One transformer block's groups summed (`layer` None: the groups outside the blocks —
/// embedding, final norm, logits).
#[derive(Debug, PartialEq)]
struct LayerRow {
    layer: Option<usize>,
    time_ms: f64,
    weight_bytes: u64,
}

/// Per-layer sums of group times and weight bytes (groups given by their layer), blocks in
/// order, then the rest.
fn layer_rows(layers: &[Option<usize>], times: &[f32], bytes: &[u64]) -> Vec<LayerRow> {
    let mut rows: Vec<LayerRow> = Vec::new();
    for ((&layer, &t), &b) in layers.iter().zip(times).zip(bytes) {
        match rows.iter_mut().find(|r| r.layer == layer) {
            Some(r) => {
                r.time_ms += t as f64;
                r.weight_bytes += b;
            }
            None => rows.push(LayerRow {
                layer,
                time_ms: t as f64,
                weight_bytes: b,
            }),
        }
    }
    rows.sort_by_key(|r| r.layer.unwrap_or(usize::MAX));
    rows
}

/// The text summary: per layer, time, weights, the time their bytes take at the plain read
/// rate `read_bw` (bytes/s), and the share of that floor reached.
fn layer_lines(rows: &[LayerRow], read_bw: f64) -> String {
    let mut out = format!(
        "per layer against its byte floor (its weights read at {:.0} GB/s, a plain streaming read on this GPU):\n",
        read_bw / 1e9
    );
    for r in rows {
        let floor_ms = r.weight_bytes as f64 / read_bw * 1e3;
        let name = r
            .layer
            .map_or("outside blocks".to_string(), |l| format!("blk.{l}"));
        out += &format!(
            "  {name:<15} {:>8.1} us  {:>8.1} MB  floor {:>7.1} us  {:>5.1}% of floor\n",
            r.time_ms * 1e3,
            r.weight_bytes as f64 / 1e6,
            floor_ms * 1e3,
            if r.time_ms > 0.0 {
                100.0 * floor_ms / r.time_ms
            } else {
                0.0
            }
        );
    }
    out
}

/// `layer_rows` of the schedule's groups with their times (ms).
fn group_layer_rows(g: &Graph, s: &Schedule, times: &[f32]) -> Vec<LayerRow> {
    let layers: Vec<Option<usize>> = s
        .groups
        .iter()
        .map(|gr| gr.nodes.iter().find_map(|n| g.node(*n).layer))
        .collect();
    let bytes: Vec<u64> = s.groups.iter().map(|gr| gr.weight_bytes).collect();
    layer_rows(&layers, times, &bytes)
}

fn fused_dump(
    g: &Graph,
    s: &Schedule,
    timing: Option<Timing>,
    format: DumpFormat,
    pattern: &NodePattern,
) -> String {
    let times = timing.map(|t| t.times);
    let prefill = s.phase == Phase::Prefill;
    let rows = || group_layer_rows(g, s, timing.expect("timed").times);
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
                        "numerics": gr.kernels.iter().map(|k| (k.name(), k.numerics())).collect::<std::collections::BTreeMap<_, _>>(),
                        "weight_bytes": gr.weight_bytes,
                        "time_ms": t, "gb_s": t.filter(|_| !prefill).map(|t| gr.weight_bytes as f64 / (t as f64 * 1e-3) / 1e9),
                    })
                })
                .collect();
            let mut doc = serde_json::json!({"stage": "fused", "phase": s.phase, "fused": s.fused, "arch": g.arch, "groups": kernels});
            if let Some(t) = timing.filter(|_| !prefill) {
                let layers: Vec<_> = rows()
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "layer": r.layer, "time_ms": r.time_ms, "weight_bytes": r.weight_bytes,
                            "floor_ms": r.weight_bytes as f64 / t.read_bw * 1e3,
                        })
                    })
                    .collect();
                doc["read_bandwidth_bytes_s"] = serde_json::json!(t.read_bw);
                doc["layers"] = serde_json::json!(layers);
            }
            serde_json::to_string_pretty(&doc).expect("json")
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
            // The whole step's time, over every group shown or not (a prefill group's line
            // gives its share of it).
            let total_t: f64 = times.map_or(0.0, |t| t.iter().map(|&x| x as f64).sum());
            for (i, gr) in s.groups.iter().enumerate() {
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
                    if prefill {
                        // Weights are read once per tile of rows: a rate per weight byte
                        // says nothing here; the share of the step does.
                        out += &format!(
                            "  {:>8.1} us  {:>5.2}%",
                            t[i] * 1000.0,
                            100.0 * t[i] as f64 / total_t.max(1e-9)
                        );
                    } else {
                        out += &format!(
                            "  {:>8.1} us  {:>7.1} GB/s",
                            t[i] * 1000.0,
                            gr.weight_bytes as f64 / (t[i] as f64 * 1e-3) / 1e9
                        );
                    }
                }
                out += &format!("  [{}]\n", names(gr).join(", "));
            }
            // What each kernel shown computes, against the interpreter (once per kernel).
            let mut seen = std::collections::BTreeSet::new();
            let mut legend = String::new();
            for k in s
                .groups
                .iter()
                .filter(|gr| shown(gr))
                .flat_map(|gr| &gr.kernels)
            {
                if seen.insert(k.name()) {
                    legend += &format!("  {:<28} {}\n", k.name(), k.numerics());
                }
            }
            if !legend.is_empty() {
                out += "numerics (against the interpreter):\n";
                out += &legend;
            }
            if timing.is_some() && prefill {
                out += &format!("total {total_t:.3} ms over the prefill's groups\n");
            } else if let Some(t) = timing {
                out += &format!(
                    "total kernel time {:.3} ms per decode step ({:.0} GB/s of weights)\n",
                    total_t,
                    total_w as f64 / (total_t * 1e-3) / 1e9
                );
                out += &layer_lines(&rows(), t.read_bw);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_sum_their_groups_and_the_rest_comes_last() {
        // Embedding, two blocks of two groups, logits: times in ms, bytes.
        let layers = [None, Some(0), Some(0), Some(1), Some(1), None];
        let times = [0.003f32, 0.010, 0.030, 0.012, 0.028, 0.170];
        let bytes = [
            0u64,
            10_000_000,
            70_000_000,
            10_000_000,
            70_000_000,
            440_000_000,
        ];
        let rows = layer_rows(&layers, &times, &bytes);
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.layer, (r.time_ms * 1e3).round() as i64, r.weight_bytes))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some(0), 40, 80_000_000),
                (Some(1), 40, 80_000_000),
                (None, 173, 440_000_000)
            ]
        );
        // 80 MB at 4 TB/s is 20 us: half of the 40 us the block took.
        let text = layer_lines(&rows, 4e12);
        assert!(text.contains("4000 GB/s"), "{text}");
        let blk0 = text
            .lines()
            .find(|l| l.trim_start().starts_with("blk.0 "))
            .expect("a blk.0 line");
        assert!(
            blk0.contains("40.0 us") && blk0.contains("80.0 MB"),
            "{blk0}"
        );
        assert!(
            blk0.contains("floor    20.0 us") && blk0.contains("50.0% of floor"),
            "{blk0}"
        );
        assert!(text.contains("outside blocks"), "{text}");
    }
}
