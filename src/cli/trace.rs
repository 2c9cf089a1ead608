//! `graphrun trace`: run the prompt (prefill, then optional greedy decode steps) on one
//! executor and write the per-node trace (`trace.jsonl`, `meta.json`, `tensors/*.npy`) that
//! `graphrun diff` compares.

use super::common::{ExecArgs, Progress, PromptArgs, engine_for, lowered};
use graphrun::exec::Executor;
use graphrun::trace::{Meta, NodePattern, Tracer, check_trace_dir};
use graphrun::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  graphrun trace MODEL --prompt 'def fib(n):' --interp -o /tmp/cpu
  graphrun trace MODEL --prompt 'def fib(n):' --gpu --decode 4 -o /tmp/gpu
  graphrun diff /tmp/gpu /tmp/cpu")]
pub struct Args {
    #[command(flatten)]
    input: PromptArgs,
    /// Run on the GPU; fail (instead of falling back to the interpreter) when there is none.
    #[arg(long, conflicts_with = "interp")]
    gpu: bool,
    /// Greedy decode steps to trace after the prefill (each adds one position).
    #[arg(long, default_value_t = 0, value_name = "N")]
    decode: usize,
    /// Record only nodes matching these globs (comma separated, `*` and `?`).
    #[arg(long, default_value = "*", value_name = "PATTERN")]
    nodes: String,
    /// Write full tensors of the recorded nodes matching these globs (default: all of them,
    /// which `graphrun diff` needs for exact metrics); `none` writes stats only.
    #[arg(long, default_value = "*", value_name = "PATTERN")]
    tensors: String,
    /// Output directory (created; an existing trace there is replaced).
    #[arg(long, short = 'o', value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    exec: ExecArgs,
}

/// The trace metadata of a run (`meta.json`), before the executor is known.
pub fn meta_for(
    m: &graphrun::model::ModelFile,
    g: &graphrun::graph::Graph,
    exec: &ExecArgs,
    prompt: &[u32],
) -> Meta {
    Meta {
        graphrun: env!("CARGO_PKG_VERSION").to_string(),
        model: m.path.clone(),
        format: match m.format {
            graphrun::model::FileFormat::Gguf { .. } => "gguf",
            graphrun::model::FileFormat::Apr { .. } => "apr",
        }
        .to_string(),
        arch: g.arch.clone(),
        act: Some(exec.act),
        kv: Some(g.kv_type()),
        synthetic: m.is_synthetic(),
        faults: exec.inject.iter().map(|f| f.to_string()).collect(),
        prompt_tokens: prompt.to_vec(),
        nodes: Meta::nodes_of(g),
        ..Default::default()
    }
}

pub fn set_executor(meta: &mut Meta, executor: Executor, exec: &ExecArgs) {
    meta.executor = Some(executor);
    meta.fused = executor == Executor::Cuda && !exec.no_fuse;
}

pub fn run(a: Args) -> Result<i32> {
    // Flags first, before the model is loaded.
    if a.decode >= a.exec.ctx {
        return Err(Error::invalid(format!(
            "--decode {} does not fit the context size --ctx {} (the prompt needs at least one position)",
            a.decode, a.exec.ctx
        )));
    }
    check_trace_dir(&a.out)?;
    let (m, _, prompt) = a.input.load()?;
    if prompt.is_empty() {
        return Err(Error::invalid(
            "--prompt tokenizes to nothing; give a non-empty prompt",
        ));
    }
    let g = lowered(&m, &a.exec)?;
    let mut meta = meta_for(&m, &g, &a.exec, &prompt);
    let mut eng = engine_for(&m, &a.exec, g, 1, a.gpu)?;
    if prompt
        .len()
        .checked_add(a.decode)
        .is_none_or(|n| n > eng.n_ctx())
    {
        return Err(Error::invalid(format!(
            "prompt ({} tokens) + --decode {} exceed the context size {} (raise --ctx)",
            prompt.len(),
            a.decode,
            eng.n_ctx()
        )));
    }
    set_executor(&mut meta, eng.executor(), &a.exec);
    for f in ["trace.jsonl", "meta.json"] {
        let _ = std::fs::remove_file(a.out.join(f));
    }
    let _ = std::fs::remove_dir_all(a.out.join("tensors"));
    let tensors = (a.tensors != "none").then(|| NodePattern::new(&a.tensors));
    let mut tracer = Tracer::create(&a.out, NodePattern::new(&a.nodes), tensors, eng.executor())?;
    tracer.meta = Some(meta);
    let t0 = std::time::Instant::now();
    let mut generated = Vec::new();
    let mut progress = Progress::new();
    let mut steps = || -> Result<()> {
        let mut next = eng.step_argmax(&prompt, &mut tracer)?;
        generated.push(next);
        for i in 0..a.decode {
            progress.update(&format!("graphrun: decode step {}/{}", i + 1, a.decode));
            next = eng.step_argmax(&[next], &mut tracer)?;
            generated.push(next);
        }
        if a.decode > 0 {
            progress.done(&format!("graphrun: decode step {0}/{0}", a.decode));
        }
        Ok(())
    };
    let result = steps();
    progress.clear();
    let (records, bytes) = tracer.written();
    if let Some(m) = tracer.meta.as_mut() {
        m.generated = generated.clone();
    }
    let path = tracer.finish()?;
    if let Err(e) = result {
        // The records up to the failing node (a NaN/Inf one included) stay readable.
        return Err(Error::invalid(format!(
            "{e}\n  the trace up to it ({records} records) is in {}",
            path.display()
        )));
    }
    eprintln!(
        "graphrun [{}]: traced {} prompt tokens + {} decode steps in {:.2} s: {} records, {:.1} MB of tensors -> {}",
        eng.name(),
        prompt.len(),
        a.decode,
        t0.elapsed().as_secs_f64(),
        records,
        bytes as f64 / 1e6,
        path.display()
    );
    println!(
        "{}",
        generated
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(0)
}
