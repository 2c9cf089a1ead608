//! Model hyperparameters, read from GGUF `{arch}.*` keys or APR metadata JSON, and checked
//! for plausibility before anything is sized from them: each value must lie in a range far
//! wider than any released model's (the `MAX_*` limits below) and agree with the others.
//! Errors name the key as the file spells it. Agreement with the tensors is checked when
//! the model is lowered (`graph::lower`).

use super::apr::AprMetadata;
use super::gguf::{GgufHeader, MAX_ARRAY_LEN, MetaValue};
use crate::error::{Error, Result};
use serde::Serialize;

/// Most transformer blocks.
pub const MAX_LAYERS: u64 = 4096;
/// Widest hidden size (the widest released models use 16,384–25,600).
pub const MAX_EMBD: u64 = 1 << 17;
/// Widest FFN (released dense models stay under 60,000).
pub const MAX_FF: u64 = 1 << 20;
/// Most attention heads (released models use up to 128).
pub const MAX_HEADS: u64 = 1024;
/// Largest head dimension (released models use up to 256).
pub const MAX_HEAD_DIM: u64 = 4096;
/// Longest training context (the longest claimed is about 10M positions).
pub const MAX_CTX: u64 = 1 << 26;

/// How RoPE pairs the dimensions of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RopeType {
    /// Adjacent pairs (2i, 2i+1): llama.cpp's LLAMA_ROPE_TYPE_NORM (0), Llama.
    Norm,
    /// Split halves (i, i + d/2): LLAMA_ROPE_TYPE_NEOX (2), Qwen2.
    Neox,
}

impl RopeType {
    /// The rule apr-cli's GGUF importer applies to fill APR's `rope_type`
    /// (docs/apr-format.md §3): NEOX for a fixed list of architectures, NORM otherwise. Only
    /// the APR writer uses it; the graph takes the RoPE type from the architecture
    /// description in `graph/`.
    pub fn apr_importer_rule(arch: &str) -> RopeType {
        const NEOX: &[&str] = &[
            "qwen",
            "qwen2",
            "qwen2moe",
            "qwen2vl",
            "qwen3",
            "qwen3moe",
            "phi2",
            "phi3",
            "gemma",
            "gemma2",
            "gemma3",
            "stablelm",
            "falcon",
            "starcoder2",
            "gptneox",
            "olmo2",
            "orion",
            "codeshell",
            "bitnet",
            "exaone",
            "nemotron",
            "plamo",
        ];
        if NEOX.contains(&arch) {
            RopeType::Neox
        } else {
            RopeType::Norm
        }
    }

    /// APR's `rope_type` integer (0 = NORM, 2 = NEOX).
    pub fn from_code(c: u64) -> Option<RopeType> {
        match c {
            0 => Some(RopeType::Norm),
            2 => Some(RopeType::Neox),
            _ => None,
        }
    }

    pub fn code(self) -> u64 {
        match self {
            RopeType::Norm => 0,
            RopeType::Neox => 2,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Hparams {
    pub arch: String,
    pub n_layer: usize,
    /// Hidden size (embedding length).
    pub n_embd: usize,
    /// FFN intermediate size.
    pub n_ff: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub rope_base: f32,
    /// RoPE pairing when the file states it (APR's `rope_type`); GGUF files do not, and the
    /// architecture description in `graph/` decides.
    pub rope_type: Option<RopeType>,
    pub rms_eps: f32,
    /// Vocabulary size: APR's `vocab_size`; for GGUF `{arch}.vocab_size` if present, else
    /// the number of tokenizer tokens (0 when the file has neither: the embedding decides).
    pub vocab_size: usize,
    /// Context length the model was trained with.
    pub n_ctx_train: usize,
}

/// Hyperparameters as read, in u64, before they are checked. Keys are GGUF's suffixes
/// (`embedding_length`); `Raw::check` maps them to the file's spelling for errors.
struct Raw {
    arch: String,
    n_layer: u64,
    n_embd: u64,
    n_ff: u64,
    n_head: u64,
    n_head_kv: u64,
    /// Stated head dimension (GGUF `attention.key_length`, APR `head_dim`).
    head_dim: Option<u64>,
    rope_base: f32,
    rope_type: Option<RopeType>,
    rms_eps: f32,
    vocab_size: u64,
    n_ctx_train: u64,
}

impl Hparams {
    pub fn from_gguf(h: &GgufHeader, file: &str) -> Result<Hparams> {
        const ARCH: &str = "general.architecture";
        let arch = h
            .get(ARCH)
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::meta(file, ARCH, "missing or not a string"))?
            .to_string();
        if arch.is_empty() {
            return Err(Error::meta(file, ARCH, "is empty"));
        }
        let key = |k: &str| format!("{arch}.{k}");
        let opt_uint = |k: &str| -> Result<Option<u64>> {
            let k = key(k);
            match h.get(&k) {
                None => Ok(None),
                Some(v) => v.as_u64().map(Some).ok_or_else(|| {
                    Error::meta(
                        file,
                        &k,
                        format!("must be a non-negative integer, found {}", v.summary()),
                    )
                }),
            }
        };
        let uint = |k: &str| opt_uint(k)?.ok_or_else(|| Error::meta(file, &key(k), "missing"));
        let float = |k: &str, default: Option<f32>| -> Result<f32> {
            let k = key(k);
            match (h.get(&k), default) {
                (Some(v), _) => v.as_f64().map(|f| f as f32).ok_or_else(|| {
                    Error::meta(file, &k, format!("must be a number, found {}", v.summary()))
                }),
                (None, Some(d)) => Ok(d),
                (None, None) => Err(Error::meta(file, &k, "missing")),
            }
        };
        let n_head = uint("attention.head_count")?;
        let vocab_size = match opt_uint("vocab_size")? {
            Some(v) => v,
            None => match h.get("tokenizer.ggml.tokens") {
                Some(MetaValue::Array(a)) => a.len() as u64,
                _ => 0,
            },
        };
        Raw {
            n_layer: uint("block_count")?,
            n_embd: uint("embedding_length")?,
            n_ff: uint("feed_forward_length")?,
            n_head,
            n_head_kv: opt_uint("attention.head_count_kv")?.unwrap_or(n_head),
            head_dim: opt_uint("attention.key_length")?,
            rope_base: float("rope.freq_base", Some(10000.0))?,
            rope_type: None,
            rms_eps: float("attention.layer_norm_rms_epsilon", None)?,
            vocab_size,
            n_ctx_train: uint("context_length")?,
            arch: arch.clone(),
        }
        .check(file, &key)
    }

    /// From APR metadata JSON, accepting both writers' key spellings (docs/apr-format.md §3).
    pub fn from_apr(m: &AprMetadata, file: &str) -> Result<Hparams> {
        let key = |k: &str| apr_key(m, k);
        let opt_uint = |k: &str| m.decode::<u64>(&key(k), file, "a non-negative integer");
        let uint = |k: &str| opt_uint(k)?.ok_or_else(|| Error::meta(file, &key(k), "missing"));
        let float = |k: &str| {
            m.decode::<f64>(&key(k), file, "a number")?
                .map(|f| f as f32)
                .ok_or_else(|| Error::meta(file, &key(k), "missing"))
        };
        let arch = m
            .decode::<String>("architecture", file, "a string")?
            .ok_or_else(|| Error::meta(file, "architecture", "missing"))?;
        if arch.is_empty() {
            return Err(Error::meta(file, "architecture", "is empty"));
        }
        let rope_type = match m.decode::<u64>("rope_type", file, "0 (norm) or 2 (neox)")? {
            None => None,
            Some(c) => Some(RopeType::from_code(c).ok_or_else(|| {
                Error::meta(
                    file,
                    "rope_type",
                    format!("expected 0 (norm) or 2 (neox), found {c}"),
                )
            })?),
        };
        Raw {
            arch,
            n_layer: uint("block_count")?,
            n_embd: uint("embedding_length")?,
            n_ff: uint("feed_forward_length")?,
            n_head: uint("attention.head_count")?,
            n_head_kv: uint("attention.head_count_kv")?,
            head_dim: opt_uint("attention.key_length")?,
            rope_base: float("rope.freq_base")?,
            rope_type,
            rms_eps: float("attention.layer_norm_rms_epsilon")?,
            vocab_size: uint("vocab_size")?,
            n_ctx_train: uint("context_length")?,
        }
        .check(file, &key)
    }
}

/// GGUF key suffix → the APR keys for the same hyperparameter, in the order they are
/// looked up (the first is named when none is present).
const APR_KEYS: &[(&str, &[&str])] = &[
    ("block_count", &["num_hidden_layers", "num_layers"]),
    ("embedding_length", &["hidden_size"]),
    ("feed_forward_length", &["intermediate_size"]),
    (
        "attention.head_count",
        &["num_attention_heads", "num_heads"],
    ),
    (
        "attention.head_count_kv",
        &["num_key_value_heads", "num_kv_heads"],
    ),
    ("attention.key_length", &["head_dim"]),
    ("context_length", &["max_position_embeddings"]),
    ("vocab_size", &["vocab_size"]),
    ("attention.layer_norm_rms_epsilon", &["rms_norm_eps"]),
    ("rope.freq_base", &["rope_theta"]),
];

/// The APR key holding the hyperparameter GGUF calls `{arch}.{suffix}`.
pub(crate) fn apr_key(m: &AprMetadata, suffix: &str) -> String {
    let spellings = APR_KEYS
        .iter()
        .find(|(g, _)| *g == suffix)
        .map_or(&[][..], |(_, a)| a);
    spellings
        .iter()
        .find(|s| m.get(s).is_some())
        .or(spellings.first())
        .map_or_else(|| suffix.to_string(), |s| s.to_string())
}

impl Raw {
    /// Range and consistency checks; `key` gives the file's spelling of a GGUF key suffix.
    fn check(self, file: &str, key: &dyn Fn(&str) -> String) -> Result<Hparams> {
        let bad = |k: &str, msg: String| Err(Error::meta(file, &key(k), msg));
        let ranges: [(&str, u64, u64, &str); 7] = [
            ("block_count", self.n_layer, MAX_LAYERS, "block count"),
            ("embedding_length", self.n_embd, MAX_EMBD, "hidden size"),
            ("feed_forward_length", self.n_ff, MAX_FF, "FFN width"),
            ("attention.head_count", self.n_head, MAX_HEADS, "head count"),
            (
                "attention.head_count_kv",
                self.n_head_kv,
                MAX_HEADS,
                "KV head count",
            ),
            (
                "context_length",
                self.n_ctx_train,
                MAX_CTX,
                "context length",
            ),
            (
                "vocab_size",
                self.vocab_size.max(1),
                MAX_ARRAY_LEN,
                "vocabulary size",
            ),
        ];
        for (k, v, max, what) in ranges {
            if !(1..=max).contains(&v) {
                return bad(
                    k,
                    format!("{what} {v} is not plausible (expected 1..={max})"),
                );
            }
        }
        if !self.n_head.is_multiple_of(self.n_head_kv) {
            return bad(
                "attention.head_count_kv",
                format!(
                    "{} query heads cannot be grouped over {} KV heads ({} is not a multiple of {})",
                    self.n_head, self.n_head_kv, self.n_head, self.n_head_kv
                ),
            );
        }
        let head_dim = match self.head_dim {
            Some(d) => {
                if !(2..=MAX_HEAD_DIM).contains(&d) || !d.is_multiple_of(2) {
                    return bad(
                        "attention.key_length",
                        format!(
                            "head dimension {d} must be even (RoPE rotates pairs) and in 2..={MAX_HEAD_DIM}"
                        ),
                    );
                }
                d
            }
            None if !self.n_embd.is_multiple_of(self.n_head) => {
                return bad(
                    "embedding_length",
                    format!(
                        "hidden size {} is not divisible by the {} heads ({}), and no {} states the head dimension",
                        self.n_embd,
                        self.n_head,
                        key("attention.head_count"),
                        key("attention.key_length")
                    ),
                );
            }
            None => {
                let d = self.n_embd / self.n_head;
                if !d.is_multiple_of(2) {
                    return bad(
                        "embedding_length",
                        format!(
                            "hidden size {} over {} heads gives head dimension {d}, which must be even (RoPE rotates pairs)",
                            self.n_embd, self.n_head
                        ),
                    );
                }
                d
            }
        };
        if !(self.rms_eps > 0.0 && self.rms_eps < 1.0) {
            return bad(
                "attention.layer_norm_rms_epsilon",
                format!(
                    "{} is not a plausible epsilon (expected 0 < eps < 1)",
                    self.rms_eps
                ),
            );
        }
        if !(self.rope_base > 0.0 && self.rope_base.is_finite()) {
            return bad(
                "rope.freq_base",
                format!("{} is not a valid RoPE base", self.rope_base),
            );
        }
        // Every value is now far below usize::MAX.
        Ok(Hparams {
            arch: self.arch,
            n_layer: self.n_layer as usize,
            n_embd: self.n_embd as usize,
            n_ff: self.n_ff as usize,
            n_head: self.n_head as usize,
            n_head_kv: self.n_head_kv as usize,
            head_dim: head_dim as usize,
            rope_base: self.rope_base,
            rope_type: self.rope_type,
            rms_eps: self.rms_eps,
            vocab_size: self.vocab_size as usize,
            n_ctx_train: self.n_ctx_train as usize,
        })
    }
}
