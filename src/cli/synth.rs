//! `graphrun synth`: a synthetic Qwen2.5-shaped Q4_K_M-like GGUF with real tensor names,
//! shapes and type mix and random well-scaled blocks (for benchmarks where the real
//! models are not available).

use graphrun::model::ModelFile;
use graphrun::model::synth::{SynthSpec, build};
use graphrun::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Shapes and type mix: tiny, tiny-llama, 0.5b, 1.5b, 7b.
    #[arg(long)]
    preset: String,
    /// Output GGUF file.
    #[arg(short, long)]
    output: PathBuf,
    /// Copy the tokenizer (vocabulary, merges, chat template) from this model file instead
    /// of the small built-in one.
    #[arg(long, value_name = "MODEL")]
    tokenizer_from: Option<PathBuf>,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(a: Args) -> Result<i32> {
    let spec = SynthSpec::preset(&a.preset).ok_or_else(|| {
        Error::invalid(format!(
            "--preset {}: expected one of {}",
            a.preset,
            SynthSpec::PRESETS.join(", ")
        ))
    })?;
    let tok = match &a.tokenizer_from {
        Some(p) => Some(ModelFile::open(p)?.tokenizer),
        None => None,
    };
    eprintln!(
        "synth: {} ({} layers, hidden {}, {:.2} GB of tensor data)",
        spec.name,
        spec.n_layer,
        spec.n_embd,
        spec.data_bytes() as f64 / 1e9
    );
    let t0 = std::time::Instant::now();
    let w = build(&spec, a.seed, tok.as_ref());
    let f = std::fs::File::create(&a.output).map_err(|e| Error::io(&a.output, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 22, f);
    w.write_to(&mut out).map_err(|e| Error::io(&a.output, e))?;
    drop(out);
    eprintln!(
        "synth: wrote {} in {:.1} s",
        a.output.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(0)
}
