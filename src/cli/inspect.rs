//! `graphrun inspect`: what is in a model file. The `--json` schema is documented in
//! `docs/inspect-json.md` and kept stable.

use graphrun::model::{FileFormat, Metadata, ModelFile, default_model_path};
use graphrun::trace::Stats;
use graphrun::{Error, Result};
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// GGUF or APR file (default: the cached 0.5B model from scripts/fetch-model).
    model: Option<PathBuf>,
    /// Machine-readable output (schema in docs/inspect-json.md).
    #[arg(long)]
    json: bool,
    /// Also list every tensor: name, type, shape, bytes, offset.
    #[arg(long)]
    tensors: bool,
    /// Select one tensor (by GGUF name) to describe.
    #[arg(long, value_name = "NAME")]
    tensor: Option<String>,
    /// With --tensor: dequantize it and print mean, std, min, max, NaN/Inf counts.
    #[arg(long, requires = "tensor")]
    stats: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let path = match a.model {
        Some(p) => p,
        None => default_model_path()?,
    };
    let m = ModelFile::open(&path)?;
    let selected = match &a.tensor {
        None => None,
        Some(name) => Some(m.tensor(name).ok_or_else(|| {
            Error::invalid(format!(
                "--tensor {name}: no such tensor in {} (list them with --tensors)",
                m.path
            ))
        })?),
    };
    let stats = match (selected, a.stats) {
        (Some(t), true) => Some(Stats::of(&m.dequantize_tensor(t))),
        _ => None,
    };
    if a.json {
        let mut v = summary_json(&m);
        if a.tensors {
            v["tensors"] = m.tensors.iter().map(tensor_json).collect();
        }
        if let Some(t) = selected {
            let mut tj = tensor_json(t);
            if let Some(s) = stats {
                tj["stats"] = serde_json::to_value(s).expect("stats serialize");
            }
            v["tensor"] = tj;
        }
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(0);
    }
    print_text(&m);
    if a.tensors {
        println!(
            "\n{:<32} {:>6} {:>18} {:>12} {:>12}",
            "tensor", "type", "shape", "bytes", "offset"
        );
        for t in &m.tensors {
            println!(
                "{:<32} {:>6} {:>18} {:>12} {:>12}",
                t.name,
                t.dtype.name(),
                format!("{:?}", t.shape),
                t.nbytes,
                t.offset
            );
        }
    }
    if let Some(t) = selected {
        println!(
            "\ntensor {}: {} {:?}, {} bytes at offset {}",
            t.name, t.dtype, t.shape, t.nbytes, t.offset
        );
        if let Some(s) = stats {
            println!(
                "  mean {:.6e}  std {:.6e}  min {:.6e}  max {:.6e}  nan {}  inf {}  ({} values)",
                s.mean, s.std, s.min, s.max, s.nan, s.inf, s.count
            );
        }
    }
    Ok(0)
}

fn tensor_json(t: &graphrun::model::TensorInfo) -> serde_json::Value {
    json!({
        "name": t.name,
        "type": t.dtype.name(),
        "shape": t.shape,
        "bytes": t.nbytes,
        "offset": t.offset,
    })
}

/// The RoPE type: stated by the file (APR), else the architecture description's (GGUF).
fn rope(m: &ModelFile) -> (Option<graphrun::model::RopeType>, &'static str) {
    match m.hparams.rope_type {
        Some(r) => (Some(r), "file"),
        None => (
            graphrun::graph::ArchSpec::for_arch(&m.hparams.arch)
                .ok()
                .map(|s| s.rope.rope_type()),
            "architecture",
        ),
    }
}

fn summary_json(m: &ModelFile) -> serde_json::Value {
    let format = match &m.format {
        FileFormat::Gguf { version } => json!({"container": "gguf", "version": version}),
        FileFormat::Apr {
            version,
            flags,
            writer,
        } => json!({
            "container": "apr",
            "version": format!("{}.{}", version.0, version.1),
            "flags": flags,
            "writer": match writer { graphrun::model::apr::AprWriter::RawImport => "w1", _ => "w2" },
        }),
    };
    let tk = &m.tokenizer;
    let mut hparams = serde_json::to_value(&m.hparams).expect("hparams");
    let (rope_type, source) = rope(m);
    hparams["rope_type"] = serde_json::to_value(rope_type).expect("rope");
    hparams["rope_type_source"] = source.into();
    json!({
        "file": m.path,
        "file_bytes": m.file_bytes().len(),
        "format": format,
        "hparams": hparams,
        "tokenizer": {
            "model": tk.model,
            "pre": tk.pre,
            "tokens": tk.tokens.len(),
            "merges": tk.merges.len(),
            "bos": tk.bos,
            "eos": tk.eos,
            "pad": tk.pad,
            "add_bos": tk.add_bos,
            "chat_template_chars": tk.chat_template.as_ref().map(|t| t.chars().count()),
            "types_reconstructed": tk.reconstructed,
        },
        "tensor_count": m.tensors.len(),
        "tensor_bytes": m.tensors.iter().map(|t| t.nbytes).sum::<u64>(),
        "by_type": m.bytes_by_type().iter().map(|(t, n, b)| json!({"type": t.name(), "count": n, "bytes": b})).collect::<Vec<_>>(),
        "metadata_keys": match &m.metadata {
            Metadata::Gguf(kv) => kv.len(),
            Metadata::Apr(o) => o.len(),
        },
    })
}

fn print_text(m: &ModelFile) {
    let h = &m.hparams;
    let tk = &m.tokenizer;
    println!("file:        {} ({} bytes)", m.path, m.file_bytes().len());
    println!("format:      {}", m.format.describe());
    println!("arch:        {}", name(&h.arch));
    println!(
        "  layers {}, hidden {}, ffn {}, heads {} (kv {}), head dim {}",
        h.n_layer, h.n_embd, h.n_ff, h.n_head, h.n_head_kv, h.head_dim
    );
    let rope_name = match rope(m).0 {
        Some(graphrun::model::RopeType::Neox) => "neox",
        Some(graphrun::model::RopeType::Norm) => "norm",
        None => "unknown (no graph/ description for this architecture)",
    };
    println!(
        "  rope {rope_name} base {}, rms eps {:e}, vocab {}, trained context {}",
        h.rope_base, h.rms_eps, h.vocab_size, h.n_ctx_train
    );
    let id = |x: Option<u32>| x.map_or("-".to_string(), |v| v.to_string());
    println!(
        "tokenizer:   {} (pre {}), {} tokens, {} merges, bos {} eos {} pad {}, add_bos {}, chat template {}{}",
        name(&tk.model),
        tk.pre.as_deref().map_or("-".to_string(), name),
        tk.tokens.len(),
        tk.merges.len(),
        id(tk.bos),
        id(tk.eos),
        id(tk.pad),
        tk.add_bos,
        tk.chat_template
            .as_ref()
            .map_or("none".to_string(), |t| format!(
                "{} chars",
                t.chars().count()
            )),
        if tk.reconstructed {
            " (token types reconstructed)"
        } else {
            ""
        }
    );
    let total: u64 = m.tensors.iter().map(|t| t.nbytes).sum();
    println!("tensors:     {} ({} bytes)", m.tensors.len(), total);
    for (t, n, b) in m.bytes_by_type() {
        println!("  {:<6} x{:<4} {:>12} bytes", t.name(), n, b);
    }
    match &m.metadata {
        Metadata::Gguf(kv) => {
            println!("metadata:    {} keys", kv.len());
            for (k, v) in kv {
                println!("  {} = {}", name(k), v.summary());
            }
        }
        Metadata::Apr(meta) => {
            println!("metadata:    {} keys (JSON)", meta.len());
            for (k, v) in meta.entries() {
                println!("  {} = {}", name(k), graphrun::model::apr::excerpt(v));
            }
        }
    }
}

/// A name from the file as printed: `(empty)` for an empty one, quoted and escaped when
/// it holds whitespace or control characters (so every field shows something readable).
fn name(s: &str) -> String {
    if s.is_empty() {
        "(empty)".to_string()
    } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        format!("{s:?}")
    } else {
        s.to_string()
    }
}
