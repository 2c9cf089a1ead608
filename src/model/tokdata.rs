//! Tokenizer data carried by a model file: vocabulary, token types, merges, special ids,
//! chat template. For APR files, which drop token types, the pre-tokenizer name, the pad
//! id and add-BOS, those are reconstructed (see `from_apr`).

use super::apr::AprMetadata;
use super::gguf::{GgufHeader, MetaValue};
use crate::error::{Error, Result};
use serde::Serialize;

/// llama.cpp's `llama_token_type` values as stored in `tokenizer.ggml.token_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

impl TokenType {
    pub fn from_i64(v: i64) -> Option<TokenType> {
        use TokenType::*;
        Some(match v {
            0 => Undefined,
            1 => Normal,
            2 => Unknown,
            3 => Control,
            4 => UserDefined,
            5 => Unused,
            6 => Byte,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TokenizerData {
    /// `gpt2` (byte-level BPE) or `llama` (SentencePiece); graphrun tokenizes `gpt2`.
    pub model: String,
    /// Pre-tokenizer name (`qwen2`, `llama3`, ...).
    pub pre: Option<String>,
    #[serde(skip)]
    pub tokens: Vec<String>,
    #[serde(skip)]
    pub token_types: Vec<TokenType>,
    #[serde(skip)]
    pub merges: Vec<String>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub pad: Option<u32>,
    pub eot: Option<u32>,
    pub add_bos: bool,
    #[serde(skip)]
    pub chat_template: Option<String>,
    /// True when token types / pre-tokenizer were reconstructed rather than read.
    pub reconstructed: bool,
}

impl TokenizerData {
    pub fn from_gguf(h: &GgufHeader, file: &str) -> Result<TokenizerData> {
        let strings = |k: &str| -> Result<Vec<String>> {
            match h.get(k) {
                None => Ok(Vec::new()),
                Some(v) => v
                    .as_array()
                    .and_then(|a| a.as_strs())
                    .map(|a| a.iter().map(str::to_owned).collect())
                    .ok_or_else(|| Error::meta(file, k, "must be an array of strings")),
            }
        };
        let id = |k: &str| -> Result<Option<u32>> {
            match h.get(k) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .map(Some)
                    .ok_or_else(|| Error::meta(file, k, "must be a token id")),
            }
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges = strings("tokenizer.ggml.merges")?;
        const TYPES: &str = "tokenizer.ggml.token_type";
        let token_types = match h.get(TYPES) {
            None => Vec::new(),
            Some(MetaValue::Array(a)) => {
                if a.len() != tokens.len() {
                    return Err(Error::meta(
                        file,
                        TYPES,
                        format!("{} types for {} tokens", a.len(), tokens.len()),
                    ));
                }
                (0..a.len())
                    .map(|i| {
                        let t = a.int(i).and_then(TokenType::from_i64);
                        t.ok_or_else(|| {
                            Error::meta(
                                file,
                                TYPES,
                                format!(
                                    "element {i} ({}) is not a token type (0..=6)",
                                    a.int(i).map_or("not an integer".into(), |v| v.to_string())
                                ),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            Some(_) => return Err(Error::meta(file, TYPES, "must be an array")),
        };
        let model = h
            .get("tokenizer.ggml.model")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let td = TokenizerData {
            add_bos: h
                .get("tokenizer.ggml.add_bos_token")
                .and_then(|v| v.as_bool())
                .unwrap_or(model == "llama"),
            model,
            pre: h
                .get("tokenizer.ggml.pre")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            bos: id("tokenizer.ggml.bos_token_id")?,
            eos: id("tokenizer.ggml.eos_token_id")?,
            pad: id("tokenizer.ggml.padding_token_id")?,
            eot: id("tokenizer.ggml.eot_token_id")?,
            chat_template: h
                .get("tokenizer.chat_template")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            tokens,
            token_types,
            merges,
            reconstructed: false,
        };
        td.validate(file)?;
        Ok(td)
    }

    /// From APR metadata (docs/apr-format.md §3, §9). The importer drops token types, the
    /// pre-tokenizer name, the pad id and add-BOS; they are rebuilt as follows:
    /// - token types: a byte-level BPE vocabulary holds 256 byte symbols plus one token per
    ///   merge, so ids ≥ 256 + merges are added tokens. Among those, `[PAD…]` fillers are
    ///   unused, `<|…|>` tokens are control, anything else is user-defined
    ///   (e.g. `<tool_call>`). This reproduces the Qwen2 GGUF's types exactly.
    /// - pre-tokenizer: from `architecture` (qwen2 → `qwen2`).
    /// - pad = bos; add-BOS = false for `gpt2` vocabularies.
    pub fn from_apr(m: &AprMetadata, arch: &str, file: &str) -> Result<TokenizerData> {
        let strings = |k: &str| m.strings(k, file).map(Option::unwrap_or_default);
        let id = |k: &str| -> Result<Option<u32>> {
            Ok(
                m.decode::<Option<u32>>(k, file, "a token id (u32) or null")?
                    .flatten(),
            )
        };
        let string = |k: &str| m.decode::<String>(k, file, "a string");
        let tokens = strings("tokenizer.vocabulary")?;
        let merges = strings("tokenizer.merges")?;
        let model = match string("tokenizer.model")? {
            Some(v) => v,
            None => string("tokenizer.model_type")?.unwrap_or_else(|| "gpt2".to_string()),
        };
        let first_added = if model == "gpt2" {
            256 + merges.len()
        } else {
            tokens.len()
        };
        let token_types = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if i < first_added {
                    TokenType::Normal
                } else if t.starts_with("[PAD") && t.ends_with(']') {
                    TokenType::Unused
                } else if t.starts_with("<|") && t.ends_with("|>") {
                    TokenType::Control
                } else {
                    TokenType::UserDefined
                }
            })
            .collect();
        let bos = id("tokenizer.bos_token_id")?;
        let td = TokenizerData {
            pre: Some(arch.to_string()),
            add_bos: m
                .decode::<bool>("tokenizer.add_bos_token", file, "true or false")?
                .unwrap_or(model == "llama"),
            model,
            tokens,
            token_types,
            merges,
            bos,
            eos: id("tokenizer.eos_token_id")?,
            pad: id("tokenizer.padding_token_id")?.or(bos),
            eot: None,
            chat_template: match string("chat_template")? {
                Some(t) => Some(t),
                None => string("tokenizer.chat_template")?,
            },
            reconstructed: true,
        };
        td.validate(file)?;
        Ok(td)
    }

    fn validate(&self, file: &str) -> Result<()> {
        let n = self.tokens.len() as u64;
        for (name, id) in [
            ("bos", self.bos),
            ("eos", self.eos),
            ("pad", self.pad),
            ("eot", self.eot),
        ] {
            if let Some(id) = id
                && n > 0
                && id as u64 >= n
            {
                return Err(Error::meta(
                    file,
                    &format!("tokenizer {name} id"),
                    format!("id {id} is outside the {n}-token vocabulary"),
                ));
            }
        }
        Ok(())
    }

    pub fn token_type(&self, id: u32) -> TokenType {
        self.token_types
            .get(id as usize)
            .copied()
            .unwrap_or(TokenType::Normal)
    }

    /// Ids that end generation: eos, eot, and (for Qwen-style vocabularies) every control
    /// token whose text marks an end (`<|endoftext|>`, `<|im_end|>`, `<|eot_id|>`...).
    pub fn end_of_generation_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = self.eos.into_iter().chain(self.eot).collect();
        for (i, t) in self.tokens.iter().enumerate() {
            let ends = matches!(
                t.as_str(),
                "<|endoftext|>"
                    | "<|im_end|>"
                    | "<|eot_id|>"
                    | "<|end_of_text|>"
                    | "<|fim_pad|>"
                    | "<|repo_name|>"
                    | "<|file_sep|>"
            );
            if ends && self.token_type(i as u32) == TokenType::Control && !ids.contains(&(i as u32))
            {
                ids.push(i as u32);
            }
        }
        ids
    }
}
