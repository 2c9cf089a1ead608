//! GGUF → APR v2 writer, laying the file out as `apr import --preserve-q4k` (W1) does
//! (docs/apr-format.md §12): tensors sorted by name bytes, dtype byte = GGML type id,
//! dims = reversed `ne`, raw GGUF blocks, metadata JSON with the W1 keys in W1 order,
//! 64-byte alignment, header CRC, no footer.
//!
//! One deliberate difference: apr-cli writes GGML types outside its list (Q2_K, Q3_K, BF16,
//! ...) with code 0 (a defect that makes the file unreadable); graphrun writes their real
//! GGML id, which the size rule resolves unambiguously.

use super::apr::{ALIGN, FLAG_QUANTIZED, HEADER_LEN, header_crc};
use super::{Metadata, ModelFile};
use crate::error::{Error, Result};
use std::io::Write;

fn align(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}

/// Builds the W1 metadata JSON text for a model (compact, keys in W1 order).
pub fn w1_metadata_json(m: &ModelFile) -> Result<String> {
    let hp = &m.hparams;
    let tk = &m.tokenizer;
    let gguf_meta = match &m.metadata {
        Metadata::Gguf(kv) => kv,
        Metadata::Apr(_) => {
            return Err(Error::invalid(format!(
                "{}: convert reads GGUF files only",
                m.path
            )));
        }
    };
    let get = |k: &str| gguf_meta.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    let vocab_size = get(&format!("{}.vocab_size", hp.arch))
        .and_then(|v| v.as_u64())
        .unwrap_or(tk.tokens.len() as u64);
    let j = |v: serde_json::Value| v.to_string();
    let mut fields: Vec<(&str, String)> = vec![
        ("model_type", j("transformer_lm_q4k".into())),
        ("architecture", j(hp.arch.clone().into())),
        ("hidden_size", hp.n_embd.to_string()),
        ("num_hidden_layers", hp.n_layer.to_string()),
        ("num_attention_heads", hp.n_head.to_string()),
        ("num_key_value_heads", hp.n_head_kv.to_string()),
        ("vocab_size", vocab_size.to_string()),
        ("intermediate_size", hp.n_ff.to_string()),
        ("max_position_embeddings", hp.n_ctx_train.to_string()),
        ("rope_theta", j((hp.rope_base as f64).into())),
        (
            "rope_type",
            hp.rope_type
                .unwrap_or_else(|| super::RopeType::apr_importer_rule(&hp.arch))
                .code()
                .to_string(),
        ),
        ("rms_norm_eps", j((hp.rms_eps as f64).into())),
        (
            "quantization",
            r#"{"quant_type":"Q4_K","bits":4,"block_size":256,"symmetric":true}"#.to_string(),
        ),
    ];
    if get("tokenizer.ggml.tokens").is_some() {
        fields.push(("tokenizer.vocab_size", tk.tokens.len().to_string()));
        fields.push(("tokenizer.vocabulary", j(tk.tokens.clone().into())));
    }
    if get("tokenizer.ggml.merges").is_some() {
        fields.push(("tokenizer.merges", j(tk.merges.clone().into())));
    }
    if let Some(b) = tk
        .bos
        .filter(|_| get("tokenizer.ggml.bos_token_id").is_some())
    {
        fields.push(("tokenizer.bos_token_id", b.to_string()));
    }
    if let Some(e) = tk.eos {
        fields.push(("tokenizer.eos_token_id", e.to_string()));
    }
    if let Some(t) = &tk.chat_template {
        fields.push(("chat_template", j(t.clone().into())));
    }
    if get("tokenizer.ggml.model").is_some() {
        fields.push(("tokenizer.model", j(tk.model.clone().into())));
    }
    let body: Vec<String> = fields
        .into_iter()
        .map(|(k, v)| format!("{}:{v}", j(k.into())))
        .collect();
    Ok(format!("{{{}}}", body.join(",")))
}

/// Writes `m` (a GGUF model) as an APR v2 W1 file to `out`. `progress` is called with
/// (bytes written, total bytes) while tensor data is written.
pub fn write_w1(m: &ModelFile, out: &mut impl Write, progress: impl FnMut(u64, u64)) -> Result<()> {
    write_w1_with_json(m, &w1_metadata_json(m)?, out, progress)
}

/// `write_w1` with the given metadata JSON text instead of the one built from `m` (tests
/// use it to write APR files whose metadata contradicts their tensors).
pub fn write_w1_with_json(
    m: &ModelFile,
    json: &str,
    out: &mut impl Write,
    mut progress: impl FnMut(u64, u64),
) -> Result<()> {
    let mut order: Vec<&super::TensorInfo> = m.tensors.iter().collect();
    order.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));

    let mut index = Vec::new();
    let mut offsets = Vec::with_capacity(order.len());
    let mut off = 0u64;
    for t in &order {
        let name = t.name.as_bytes();
        let name_len = u16::try_from(name.len())
            .map_err(|_| Error::tensor(&m.path, &t.name, "name longer than 65535 bytes"))?;
        let ndim = u8::try_from(t.shape.len())
            .map_err(|_| Error::tensor(&m.path, &t.name, "too many dimensions"))?;
        index.extend_from_slice(&name_len.to_le_bytes());
        index.extend_from_slice(name);
        index.push(t.dtype.id() as u8);
        index.push(ndim);
        for d in &t.shape {
            index.extend_from_slice(&d.to_le_bytes());
        }
        index.extend_from_slice(&off.to_le_bytes());
        index.extend_from_slice(&t.nbytes.to_le_bytes());
        offsets.push(off);
        off = align(off + t.nbytes);
    }
    let metadata_size =
        u32::try_from(json.len()).map_err(|_| Error::invalid("APR metadata JSON exceeds 4 GiB"))?;
    let index_offset = HEADER_LEN as u64 + align(json.len() as u64);
    let data_offset = align(index_offset + index.len() as u64);

    let mut header = [0u8; HEADER_LEN];
    header[0..4].copy_from_slice(b"APR\0");
    header[4] = 2;
    header[5] = 0;
    header[6..8].copy_from_slice(&FLAG_QUANTIZED.to_le_bytes());
    header[8..12].copy_from_slice(&(order.len() as u32).to_le_bytes());
    header[12..20].copy_from_slice(&(HEADER_LEN as u64).to_le_bytes());
    header[20..24].copy_from_slice(&metadata_size.to_le_bytes());
    header[24..32].copy_from_slice(&index_offset.to_le_bytes());
    header[32..40].copy_from_slice(&data_offset.to_le_bytes());
    let crc = header_crc(&header);
    header[40..44].copy_from_slice(&crc.to_le_bytes());

    let io = |e| Error::invalid(format!("writing APR output: {e}"));
    out.write_all(&header).map_err(io)?;
    out.write_all(json.as_bytes()).map_err(io)?;
    out.write_all(&vec![
        0u8;
        (index_offset - HEADER_LEN as u64 - json.len() as u64)
            as usize
    ])
    .map_err(io)?;
    out.write_all(&index).map_err(io)?;
    out.write_all(&vec![
        0u8;
        (data_offset - index_offset - index.len() as u64)
            as usize
    ])
    .map_err(io)?;
    let total = off;
    let mut written = 0u64;
    for (t, o) in order.iter().zip(offsets) {
        out.write_all(&vec![0u8; (o - written) as usize])
            .map_err(io)?;
        out.write_all(m.tensor_bytes(t)).map_err(io)?;
        written = o + t.nbytes;
        progress(written, total);
    }
    out.write_all(&vec![0u8; (align(written) - written) as usize])
        .map_err(io)?;
    Ok(())
}

/// Convenience for tests: the APR bytes of a GGUF model.
pub fn to_apr_bytes(m: &ModelFile) -> Result<Vec<u8>> {
    to_apr_bytes_with_json(m, &w1_metadata_json(m)?)
}

/// The APR bytes of a model's tensors under the given metadata JSON text.
pub fn to_apr_bytes_with_json(m: &ModelFile, json: &str) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    write_w1_with_json(m, json, &mut v, |_, _| {})?;
    Ok(v)
}
