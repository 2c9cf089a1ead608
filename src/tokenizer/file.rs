//! Tokenizer data from a separate file, for model files that carry none (an APR written by
//! `apr import model.safetensors` without a tokenizer.json): a Hugging Face `tokenizer.json`
//! (byte-level BPE), or another GGUF/APR model file whose metadata holds the tokenizer.

use crate::error::{Error, Result};
use crate::model::{ModelFile, TokenType, TokenizerData};
use serde_json::Value;
use std::path::Path;

/// Ids from this on in a tokenizer.json are refused: the table is sized by the largest id
/// (real vocabularies hold up to about 256k tokens).
const MAX_ID: u64 = 1 << 20;

/// Reads tokenizer data from `path`: a GGUF or APR model file (by its magic bytes), else a
/// Hugging Face `tokenizer.json`.
pub fn data_from_file(path: &Path) -> Result<TokenizerData> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let name = path.display().to_string();
    let magic = bytes.get(..4).unwrap_or(&bytes);
    if magic == b"GGUF" || magic.starts_with(b"APR") {
        let m = ModelFile::from_bytes(bytes, &name)?;
        if m.tokenizer.tokens.is_empty() {
            return Err(Error::invalid(format!(
                "{name}: this model file carries no tokenizer either"
            )));
        }
        return Ok(m.tokenizer);
    }
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::meta(
            &name,
            "tokenizer.json",
            format!("neither a GGUF/APR model nor a Hugging Face tokenizer.json: {e}"),
        )
    })?;
    let config = path
        .parent()
        .map(|d| d.join("tokenizer_config.json"))
        .filter(|p| p.is_file())
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    from_hf_json(&v, config.as_ref(), &name)
}

/// A Hugging Face `tokenizer.json` of a byte-level BPE model (`model.type` "BPE" with a
/// `ByteLevel` pre-tokenizer or decoder), as Qwen2 and Llama 3 ship it:
/// - `model.vocab` (token → id) and `added_tokens` (id, content, special) give the
///   vocabulary; special added tokens are control tokens, other added tokens user-defined;
///   ids missing from both are filled with unused `[PADn]` tokens;
/// - `model.merges` as `"a b"` strings or `["a", "b"]` pairs;
/// - the pre-tokenizer's split regex decides `qwen2` (digits one by one) or `llama3` (up to
///   three digits);
/// - a `TemplateProcessing` post-processor that starts with a special token makes that the
///   BOS, added in front of every prompt.
///
/// A `tokenizer_config.json` beside it, when given, supplies `chat_template` and the EOS
/// token.
pub fn from_hf_json(v: &Value, config: Option<&Value>, file: &str) -> Result<TokenizerData> {
    let bad = |field: &str, msg: &str| Error::meta(file, field, msg.to_string());
    let model = &v["model"];
    match model["type"].as_str() {
        Some("BPE") => {}
        other => {
            return Err(bad(
                "model.type",
                &format!("{other:?}: graphrun tokenizes byte-level BPE tokenizers (\"BPE\") only"),
            ));
        }
    }
    let byte_level = |k: &str| v[k].to_string().contains("\"ByteLevel\"");
    if !byte_level("pre_tokenizer") && !byte_level("decoder") {
        return Err(bad(
            "pre_tokenizer",
            "no ByteLevel pre-tokenizer or decoder: not a byte-level BPE tokenizer",
        ));
    }
    let vocab = model["vocab"]
        .as_object()
        .ok_or_else(|| bad("model.vocab", "missing or not an object"))?;
    let mut entries: Vec<(u64, String, TokenType)> = Vec::with_capacity(vocab.len());
    for (t, id) in vocab {
        let id = id
            .as_u64()
            .filter(|&i| i < MAX_ID)
            .ok_or_else(|| bad("model.vocab", &format!("token {t:?}: id is not below 2^20")))?;
        entries.push((id, t.clone(), TokenType::Normal));
    }
    for a in v["added_tokens"].as_array().into_iter().flatten() {
        let (Some(id), Some(content)) = (a["id"].as_u64(), a["content"].as_str()) else {
            return Err(bad("added_tokens", "an entry lacks `id` or `content`"));
        };
        if id >= MAX_ID {
            return Err(bad("added_tokens", &format!("id {id} is not below 2^20")));
        }
        let ty = if a["special"].as_bool().unwrap_or(false) {
            TokenType::Control
        } else {
            TokenType::UserDefined
        };
        entries.push((id, content.to_string(), ty));
    }
    let n = entries.iter().map(|e| e.0 + 1).max().unwrap_or(0) as usize;
    let mut tokens: Vec<Option<String>> = vec![None; n];
    let mut token_types = vec![TokenType::Unused; n];
    for (id, t, ty) in entries {
        // An added token may repeat a vocab entry; the added one (with its type) wins.
        tokens[id as usize] = Some(t);
        token_types[id as usize] = ty;
    }
    let tokens: Vec<String> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| t.unwrap_or_else(|| format!("[PAD{i}]")))
        .collect();
    let merges = model["merges"]
        .as_array()
        .ok_or_else(|| bad("model.merges", "missing or not an array"))?
        .iter()
        .map(|m| match m {
            Value::String(s) => Some(s.clone()),
            Value::Array(p) if p.len() == 2 => {
                Some(format!("{} {}", p[0].as_str()?, p[1].as_str()?))
            }
            _ => None,
        })
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| {
            bad(
                "model.merges",
                "entries must be \"a b\" strings or [a, b] pairs",
            )
        })?;
    let pre = pre_tokenizer(&v["pre_tokenizer"])
        .ok_or_else(|| {
            bad(
                "pre_tokenizer",
                "no split regex of a supported pre-tokenizer (qwen2: \\p{N}, llama3: \\p{N}{1,3})",
            )
        })?
        .to_string();
    let id_of = |t: &str| tokens.iter().position(|x| x == t).map(|i| i as u32);
    let bos = v["post_processor"]["single"]
        .as_array()
        .and_then(|s| s.first())
        .and_then(|first| first["SpecialToken"]["id"].as_str())
        .and_then(id_of);
    let config_token = |k: &str| -> Option<u32> {
        let c = config?;
        let t = c[k].as_str().or_else(|| c[k]["content"].as_str())?;
        id_of(t)
    };
    let td = TokenizerData {
        model: "gpt2".into(),
        pre: Some(pre),
        bos: bos.or_else(|| config_token("bos_token")),
        eos: config_token("eos_token"),
        pad: config_token("pad_token"),
        eot: None,
        add_bos: bos.is_some(),
        chat_template: config.and_then(|c| c["chat_template"].as_str().map(str::to_owned)),
        tokens,
        token_types,
        merges,
        reconstructed: false,
    };
    Ok(td)
}

/// The pre-tokenizer graphrun implements that matches the split regex in `pt`.
fn pre_tokenizer(pt: &Value) -> Option<&'static str> {
    let text = pt.to_string();
    if text.contains(r"|\\p{N}{1,3}|") {
        Some("llama3")
    } else if text.contains(r"|\\p{N}|") {
        Some("qwen2")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A minimal byte-level BPE tokenizer.json with the given split regex and extras.
    fn hf(regex: &str, post: Value) -> Value {
        json!({
            "added_tokens": [{"id": 3, "content": "<|begin_of_text|>", "special": true},
                             {"id": 5, "content": "<tool>", "special": false}],
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": regex}},
                {"type": "ByteLevel", "use_regex": false}]},
            "post_processor": post,
            "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}
        })
    }

    const QWEN2: &str = r"(?i:'s|'t)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+|\s+";
    const LLAMA3: &str = r"(?i:'s|'t)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+|\s+";
    const GPT2: &str = r"'s|'t| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+";

    #[test]
    fn a_qwen2_tokenizer_json_becomes_tokenizer_data() {
        let td = from_hf_json(&hf(QWEN2, json!({"type": "ByteLevel"})), None, "t.json").unwrap();
        assert_eq!(td.pre.as_deref(), Some("qwen2"));
        assert_eq!(
            td.tokens,
            ["a", "b", "ab", "<|begin_of_text|>", "[PAD4]", "<tool>"]
        );
        assert_eq!(td.token_type(3), TokenType::Control);
        assert_eq!(td.token_type(4), TokenType::Unused);
        assert_eq!(td.token_type(5), TokenType::UserDefined);
        assert_eq!(td.merges, ["a b"]);
        assert!(!td.add_bos && td.bos.is_none());
    }

    #[test]
    fn a_llama3_post_processor_adds_its_bos_and_the_config_names_eos() {
        let post = json!({"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}]});
        let config = json!({"eos_token": {"content": "<tool>"}, "chat_template": "T"});
        let td = from_hf_json(&hf(LLAMA3, post), Some(&config), "t.json").unwrap();
        assert_eq!(td.pre.as_deref(), Some("llama3"));
        assert_eq!((td.bos, td.add_bos, td.eos), (Some(3), true, Some(5)));
        assert_eq!(td.chat_template.as_deref(), Some("T"));
    }

    #[test]
    fn unsupported_tokenizer_json_files_are_refused_naming_the_field() {
        let mut wordpiece = hf(QWEN2, Value::Null);
        wordpiece["model"]["type"] = json!("WordPiece");
        let mut no_byte_level = hf(QWEN2, Value::Null);
        no_byte_level["pre_tokenizer"] = json!({"type": "Split", "pattern": {"Regex": QWEN2}});
        let mut huge_id = hf(QWEN2, Value::Null);
        huge_id["model"]["vocab"]["c"] = json!(1u64 << 40);
        let mut bad_merge = hf(QWEN2, Value::Null);
        bad_merge["model"]["merges"] = json!([["a"]]);
        for (v, field) in [
            (wordpiece, "model.type"),
            (no_byte_level, "pre_tokenizer"),
            (hf(GPT2, Value::Null), "pre_tokenizer"),
            (huge_id, "model.vocab"),
            (bad_merge, "model.merges"),
        ] {
            let e = from_hf_json(&v, None, "t.json").unwrap_err().to_string();
            assert!(e.starts_with(&format!("t.json: field `{field}`")), "{e}");
        }
    }
}
