//! Model hyperparameters, read from GGUF `{arch}.*` keys or APR metadata JSON.

use super::gguf::GgufHeader;
use crate::error::{Error, Result};
use serde::Serialize;

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
    /// The rule apr-cli's GGUF importer applies to fill APR's `rope_type` (APR.md §3): NEOX
    /// for a fixed list of architectures, NORM otherwise. Only the APR writer uses it; the
    /// graph takes the RoPE type from the architecture description in `graph/`.
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
    pub vocab_size: usize,
    /// Context length the model was trained with.
    pub n_ctx_train: usize,
}

impl Hparams {
    pub fn from_gguf(h: &GgufHeader, file: &str) -> Result<Hparams> {
        let arch = h
            .get("general.architecture")
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::meta(file, "general.architecture", "missing or not a string"))?
            .to_string();
        let key = |k: &str| format!("{arch}.{k}");
        let uint = |k: &str| -> Result<usize> {
            let k = key(k);
            h.get(&k)
                .ok_or_else(|| Error::meta(file, &k, "missing"))?
                .as_u64()
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| Error::meta(file, &k, "must be a non-negative integer"))
        };
        let float = |k: &str, default: Option<f32>| -> Result<f32> {
            let k = key(k);
            match (h.get(&k), default) {
                (Some(v), _) => v
                    .as_f64()
                    .map(|f| f as f32)
                    .ok_or_else(|| Error::meta(file, &k, "must be a number")),
                (None, Some(d)) => Ok(d),
                (None, None) => Err(Error::meta(file, &k, "missing")),
            }
        };
        let n_embd = uint("embedding_length")?;
        let n_head = uint("attention.head_count")?;
        let n_head_kv = uint("attention.head_count_kv").unwrap_or(n_head);
        let head_dim = match h.get(&key("attention.key_length")) {
            Some(v) => v.as_u64().map(|v| v as usize).ok_or_else(|| {
                Error::meta(file, &key("attention.key_length"), "must be an integer")
            })?,
            None => n_embd.checked_div(n_head).unwrap_or(0),
        };
        let vocab_size = match h.get(&key("vocab_size")) {
            Some(v) => v.as_u64().unwrap_or(0) as usize,
            None => h
                .get("tokenizer.ggml.tokens")
                .and_then(|v| v.as_array())
                .map(|a| a.len())
                .unwrap_or(0),
        };
        let hp = Hparams {
            n_layer: uint("block_count")?,
            n_embd,
            n_ff: uint("feed_forward_length")?,
            n_head,
            n_head_kv,
            head_dim,
            rope_base: float("rope.freq_base", Some(10000.0))?,
            rope_type: None,
            rms_eps: float("attention.layer_norm_rms_epsilon", None)?,
            vocab_size,
            n_ctx_train: uint("context_length")?,
            arch,
        };
        hp.validate(file)?;
        Ok(hp)
    }

    /// From APR metadata JSON, accepting both writers' key spellings (APR.md §3).
    pub fn from_apr(m: &serde_json::Map<String, serde_json::Value>, file: &str) -> Result<Hparams> {
        let uint = |keys: &[&str]| -> Result<usize> {
            for k in keys {
                if let Some(v) = m.get(*k) {
                    return v
                        .as_u64()
                        .map(|v| v as usize)
                        .ok_or_else(|| Error::meta(file, k, "must be a non-negative integer"));
                }
            }
            Err(Error::meta(file, keys[0], "missing"))
        };
        let float = |k: &str| -> Result<f32> {
            m.get(k)
                .ok_or_else(|| Error::meta(file, k, "missing"))?
                .as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| Error::meta(file, k, "must be a number"))
        };
        let arch = m
            .get("architecture")
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::meta(file, "architecture", "missing or not a string"))?
            .to_string();
        let n_embd = uint(&["hidden_size"])?;
        let n_head = uint(&["num_attention_heads", "num_heads"])?;
        let rope_type = match m.get("rope_type") {
            None => None,
            Some(v) => Some(v.as_u64().and_then(RopeType::from_code).ok_or_else(|| {
                Error::meta(file, "rope_type", format!("expected 0 or 2, found {v}"))
            })?),
        };
        let hp = Hparams {
            n_layer: uint(&["num_hidden_layers", "num_layers"])?,
            n_embd,
            n_ff: uint(&["intermediate_size"])?,
            n_head,
            n_head_kv: uint(&["num_key_value_heads", "num_kv_heads"])?,
            head_dim: uint(&["head_dim"]).unwrap_or(n_embd.checked_div(n_head).unwrap_or(0)),
            rope_base: float("rope_theta")?,
            rope_type,
            rms_eps: float("rms_norm_eps")?,
            vocab_size: uint(&["vocab_size"])?,
            n_ctx_train: uint(&["max_position_embeddings"])?,
            arch,
        };
        hp.validate(file)?;
        Ok(hp)
    }

    fn validate(&self, file: &str) -> Result<()> {
        let bad = |field: &str, msg: String| Err(Error::meta(file, field, msg));
        if self.n_layer == 0 || self.n_layer > 4096 {
            return bad(
                "block_count",
                format!("{} layers is not plausible", self.n_layer),
            );
        }
        if self.n_head == 0 || self.n_head_kv == 0 || !self.n_head.is_multiple_of(self.n_head_kv) {
            return bad(
                "attention.head_count_kv",
                format!(
                    "{} query heads cannot be grouped over {} KV heads",
                    self.n_head, self.n_head_kv
                ),
            );
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return bad(
                "head_dim",
                format!("head dim {} must be even and > 0", self.head_dim),
            );
        }
        if !(self.rms_eps > 0.0 && self.rms_eps < 1.0) {
            return bad(
                "layer_norm_rms_epsilon",
                format!("{} is not a plausible epsilon", self.rms_eps),
            );
        }
        if !(self.rope_base > 0.0 && self.rope_base.is_finite()) {
            return bad(
                "rope.freq_base",
                format!("{} is not a valid RoPE base", self.rope_base),
            );
        }
        Ok(())
    }
}
