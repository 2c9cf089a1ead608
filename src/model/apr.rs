//! APR v2 reader (`docs/apr-format.md`). Both apr-cli writers are understood:
//! W1 (`apr import --preserve-q4k`: GGML type ids, GGUF names, raw blocks, no footer) and
//! W2 (aprender's native writer: its own dtype code book, HF names, CRC-32 footer).
//! The dtype byte of every tensor is resolved with the size rule of docs/apr-format.md §5,
//! names are mapped to GGUF names, and shapes are already outermost-first (APR dims =
//! reversed `ne`).

pub use super::apr_meta::{AprMetadata, MAX_METADATA_KEYS, excerpt};
use super::crc32::crc32;
use super::cursor::Cursor;
use super::gguf::MAX_TENSOR_COUNT;
use super::{FileFormat, Hparams, Metadata, Parts, TensorInfo, TokenizerData};
use crate::error::{Error, Result};
use crate::quant::GgmlType;

pub const HEADER_LEN: usize = 64;
pub const ALIGN: u64 = 64;
/// Largest metadata JSON accepted. A real W1 file's JSON (vocabulary and merges of a
/// 152k-token tokenizer) is about 6 MB.
pub const MAX_METADATA_BYTES: u64 = 64 << 20;

pub const FLAG_LZ4: u16 = 0x0001;
pub const FLAG_ZSTD: u16 = 0x0002;
pub const FLAG_ENCRYPTED: u16 = 0x0004;
pub const FLAG_SHARDED: u16 = 0x0010;
pub const FLAG_QUANTIZED: u16 = 0x0020;
pub const FLAG_ROW_MAJOR: u16 = 0x0400;
pub const FLAG_COLUMN_MAJOR: u16 = 0x0800;

/// Which apr-cli writer produced the file (decided by the LAYOUT_ROW_MAJOR flag, the only
/// reliable hint; the dtype of each tensor is still resolved by size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AprWriter {
    /// W1: `apr import --preserve-q4k` (GGUF raw import).
    RawImport,
    /// W2: aprender's native writer (also `apr stamp`).
    Native,
}

impl AprWriter {
    pub fn describe(self) -> &'static str {
        match self {
            AprWriter::RawImport => "W1 raw GGUF import",
            AprWriter::Native => "W2 aprender native",
        }
    }
}

pub fn is_apr_magic(m: &[u8]) -> bool {
    m.len() == 4 && &m[..3] == b"APR"
}

/// The header CRC: CRC-32 over bytes 0..40 and 44..64 (the CRC field itself left out).
pub fn header_crc(h: &[u8]) -> u32 {
    let mut c = super::crc32::Crc32::new();
    c.update(&h[..40]);
    c.update(&h[44..64]);
    c.finish()
}

/// What an APR dtype byte turned out to mean for one tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AprDtype {
    Ggml(GgmlType),
    F64,
    I32,
    I64,
    I8,
    U8,
    /// aprender's 4-bit: per 32 elements an fp16 scale + 16 bytes, x = (nibble − 8)·scale,
    /// element 2i in the low nibble of byte i.
    AprQ4,
    /// aprender's 8-bit: one f32 scale for the tensor, then n × i8, x = q·scale.
    AprQ8,
}

impl AprDtype {
    fn name(self) -> String {
        match self {
            AprDtype::Ggml(t) => t.name().to_string(),
            other => format!("{other:?}"),
        }
    }

    fn size_for(self, n: u64) -> Option<u64> {
        match self {
            AprDtype::Ggml(t) => t.bytes_for(n),
            AprDtype::F64 | AprDtype::I64 => n.checked_mul(8),
            AprDtype::I32 => n.checked_mul(4),
            AprDtype::I8 | AprDtype::U8 => Some(n),
            AprDtype::AprQ4 => n.div_ceil(32).checked_mul(18),
            AprDtype::AprQ8 => n.checked_add(4),
        }
    }
}

/// Resolves a dtype code with the size rule (docs/apr-format.md §5): every reading from the
/// GGML id book (W1) and from aprender's book (W2) whose expected size equals the stored
/// size survives; exactly one must.
fn resolve_dtype(code: u8, n: u64, size: u64) -> std::result::Result<AprDtype, String> {
    let mut readings: Vec<AprDtype> = Vec::new();
    if let Some(t) = GgmlType::from_id(code as u32) {
        readings.push(AprDtype::Ggml(t));
    }
    let native = match code {
        0 => Some(AprDtype::Ggml(GgmlType::F32)),
        1 => Some(AprDtype::Ggml(GgmlType::F16)),
        30 => Some(AprDtype::Ggml(GgmlType::BF16)),
        12 => Some(AprDtype::Ggml(GgmlType::Q4_K)),
        14 => Some(AprDtype::Ggml(GgmlType::Q6_K)),
        3 => Some(AprDtype::F64),
        4 => Some(AprDtype::I32),
        5 => Some(AprDtype::I64),
        6 => Some(AprDtype::I8),
        7 => Some(AprDtype::U8),
        8 | 128 => Some(AprDtype::AprQ4),
        9 | 129 => Some(AprDtype::AprQ8),
        _ => None,
    };
    readings.extend(native);
    if code == 128 {
        // `apr stamp` re-codes GGML Q8_0 as 128 while keeping the bytes.
        readings.push(AprDtype::Ggml(GgmlType::Q8_0));
    }
    readings.dedup();
    let fits: Vec<AprDtype> = readings
        .iter()
        .copied()
        .filter(|r| r.size_for(n) == Some(size))
        .collect();
    match fits.as_slice() {
        [one] => Ok(*one),
        [] if readings.is_empty() => Err(format!("unknown dtype code {code}")),
        [] => Err(format!(
            "stored size {size} bytes matches no reading of dtype code {code} for {n} elements (expected {})",
            readings
                .iter()
                .map(|r| format!(
                    "{}: {}",
                    r.name(),
                    r.size_for(n).map_or("overflow".into(), |s| s.to_string())
                ))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        many => Err(format!(
            "dtype code {code} is ambiguous for this size: {many:?}"
        )),
    }
}

/// Maps HF-style tensor names (W2) to GGUF names; GGUF names pass through unchanged.
pub fn gguf_name(name: &str) -> String {
    let (stem, suffix) = match name.rsplit_once('.') {
        Some((s, x @ ("weight" | "bias"))) => (s, x),
        _ => return name.to_string(),
    };
    let mapped = match stem {
        "model.embed_tokens" => Some("token_embd".to_string()),
        "model.norm" => Some("output_norm".to_string()),
        "lm_head" => Some("output".to_string()),
        _ => stem.strip_prefix("model.layers.").and_then(|rest| {
            let (n, part) = rest.split_once('.')?;
            n.parse::<u32>().ok()?;
            let g = match part {
                "input_layernorm" => "attn_norm",
                "post_attention_layernorm" => "ffn_norm",
                "self_attn.q_proj" => "attn_q",
                "self_attn.k_proj" => "attn_k",
                "self_attn.v_proj" => "attn_v",
                "self_attn.o_proj" => "attn_output",
                "mlp.gate_proj" => "ffn_gate",
                "mlp.up_proj" => "ffn_up",
                "mlp.down_proj" => "ffn_down",
                _ => return None,
            };
            Some(format!("blk.{n}.{g}"))
        }),
    };
    match mapped {
        Some(m) => format!("{m}.{suffix}"),
        None => name.to_string(),
    }
}

struct IndexEntry {
    name: String,
    dtype: AprDtype,
    dims: Vec<u64>,
    offset: u64,
    size: u64,
    at: usize,
}

/// Parses an APR v2 file held in `buf`.
pub(crate) fn read(buf: &[u8], file: &str) -> Result<Parts> {
    let mut c = Cursor::new(buf, file);
    let magic = c.array::<4>("magic")?;
    match &magic {
        b"APR\0" | b"APR2" => {}
        b"APR1" | b"APRN" => {
            return Err(c.err("magic", 0, "APR v1 files are not supported (only APR v2)"));
        }
        _ => return Err(c.err("magic", 0, format!("unknown APR magic {magic:02x?}"))),
    }
    let (major, minor) = (c.u8("version major")?, c.u8("version minor")?);
    if major != 2 {
        return Err(c.err(
            "version major",
            4,
            format!("APR version {major}.{minor} is not supported (only 2.x)"),
        ));
    }
    let flags = c.u16("flags")?;
    let tensor_count = c.u32("tensor_count")? as u64;
    let metadata_offset = c.u64("metadata_offset")?;
    let metadata_size = c.u32("metadata_size")? as u64;
    if metadata_size > MAX_METADATA_BYTES {
        return Err(c.err(
            "metadata_size",
            20,
            format!(
                "{metadata_size} bytes of metadata JSON exceed the limit of {MAX_METADATA_BYTES} (real files carry about 6 MB)"
            ),
        ));
    }
    let index_offset = c.u64("tensor_index_offset")?;
    let data_offset = c.u64("data_offset")?;
    let stored_crc = c.u32("header_crc32")?;
    let _reserved = c.bytes(20, "reserved")?;
    let crc = header_crc(&buf[..HEADER_LEN]);
    if crc != stored_crc {
        return Err(c.err(
            "header_crc32",
            40,
            format!("header CRC-32 is 0x{stored_crc:08x} but the header hashes to 0x{crc:08x} (corrupted header)"),
        ));
    }
    for (bit, what) in [
        (FLAG_LZ4, "LZ4-compressed"),
        (FLAG_ZSTD, "zstd-compressed"),
        (FLAG_ENCRYPTED, "encrypted"),
        (FLAG_SHARDED, "sharded"),
        (FLAG_COLUMN_MAJOR, "column-major"),
    ] {
        if flags & bit != 0 {
            return Err(c.err(
                "flags",
                6,
                format!("{what} APR files are not supported (flags 0x{flags:04x})"),
            ));
        }
    }
    let writer = if flags & FLAG_ROW_MAJOR != 0 {
        AprWriter::Native
    } else {
        AprWriter::RawImport
    };
    // W2 appends a CRC-32 of every preceding byte; W1 has no footer.
    let data_end = match writer {
        AprWriter::RawImport => buf.len() as u64,
        AprWriter::Native => {
            if buf.len() < HEADER_LEN + 4 {
                return Err(c.err("footer", buf.len(), "file too short for the CRC-32 footer"));
            }
            let end = buf.len() - 4;
            let stored = u32::from_le_bytes(buf[end..].try_into().expect("4 bytes"));
            let actual = crc32(&buf[..end]);
            if stored != actual {
                return Err(c.err(
                    "footer crc32",
                    end,
                    format!("file CRC-32 is 0x{stored:08x} but the contents hash to 0x{actual:08x} (corrupted or truncated file)"),
                ));
            }
            end as u64
        }
    };

    // Metadata JSON.
    let meta_end = metadata_offset
        .checked_add(metadata_size)
        .filter(|&e| e <= data_end);
    let meta_end = meta_end.ok_or_else(|| {
        c.err("metadata_size", 20, format!("metadata {metadata_offset}+{metadata_size} extends past the end of the file ({data_end} bytes)"))
    })?;
    if metadata_offset < HEADER_LEN as u64 {
        return Err(c.err(
            "metadata_offset",
            12,
            format!("{metadata_offset} overlaps the 64-byte header"),
        ));
    }
    let json = &buf[metadata_offset as usize..meta_end as usize];
    let meta = AprMetadata::parse(json).map_err(|(col, msg)| {
        c.err(
            "metadata",
            metadata_offset as usize + col.saturating_sub(1),
            msg,
        )
    })?;

    // Tensor index.
    if index_offset < meta_end || index_offset > data_end {
        return Err(c.err(
            "tensor_index_offset",
            24,
            format!("{index_offset} is outside {meta_end}..{data_end}"),
        ));
    }
    if data_offset % ALIGN != 0 || data_offset > data_end {
        return Err(c.err(
            "data_offset",
            32,
            format!("{data_offset} must be 64-aligned and inside the file ({data_end} bytes)"),
        ));
    }
    let index_bytes = &buf[..data_offset.max(index_offset) as usize];
    let mut ic = Cursor::at(index_bytes, file, index_offset as usize);
    if tensor_count > (ic.remaining() / 20) as u64 || tensor_count > MAX_TENSOR_COUNT {
        return Err(c.err(
            "tensor_count",
            8,
            format!("{tensor_count} index entries cannot fit between the index ({index_offset}) and the data ({data_offset}) (and at most {MAX_TENSOR_COUNT} are accepted)"),
        ));
    }
    let mut entries = Vec::with_capacity(tensor_count as usize);
    for i in 0..tensor_count {
        entries.push(read_entry(&mut ic, i)?);
    }

    let mut tensors = Vec::with_capacity(entries.len());
    let mut converted = Vec::new();
    for e in &entries {
        let field = format!("{}.offset", e.name);
        let abs = data_offset.checked_add(e.offset);
        let end = abs.and_then(|a| a.checked_add(e.size));
        match (abs, end) {
            (Some(a), Some(end)) if end <= data_end && a % ALIGN == 0 => {}
            _ => {
                return Err(Error::format(
                    file,
                    &field,
                    e.at as u64,
                    format!(
                        "data {}+{} must be 64-aligned and lie inside the data section {data_offset}..{data_end}",
                        e.offset, e.size
                    ),
                ));
            }
        }
        let name = gguf_name(&e.name);
        let dtype = match e.dtype {
            AprDtype::Ggml(t) => t,
            other => {
                converted.push((name.clone(), other));
                GgmlType::F32
            }
        };
        tensors.push((
            TensorInfo {
                name,
                dtype,
                shape: e.dims.clone(),
                offset: data_offset + e.offset,
                nbytes: e.size,
            },
            e.at,
        ));
    }
    if let Some((name, dt)) = converted.first() {
        return Err(Error::tensor(
            file,
            name,
            format!(
                "aprender dtype {} is not supported by graphrun (only GGML block types and floats; {} such tensors)",
                dt.name(),
                converted.len()
            ),
        ));
    }
    check_overlaps(&tensors, file)?;
    let mut names: Vec<&str> = tensors.iter().map(|(t, _)| t.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::tensor(
            file,
            w[0],
            "tensor name appears twice (after mapping HF names to GGUF names)",
        ));
    }

    let hparams = Hparams::from_apr(&meta, file)?;
    let tokenizer = TokenizerData::from_apr(&meta, &hparams.arch, file)?;
    Ok(Parts {
        format: FileFormat::Apr {
            version: (major, minor),
            flags,
            writer,
        },
        hparams,
        tokenizer,
        tensors: tensors.into_iter().map(|(t, _)| t).collect(),
        metadata: Metadata::Apr(meta),
    })
}

fn read_entry(c: &mut Cursor, i: u64) -> Result<IndexEntry> {
    let at = c.pos();
    let name_len = c.u16(&format!("tensor_index[{i}].name_len"))?;
    let name = c.utf8(name_len as u64, &format!("tensor_index[{i}].name"))?;
    let code_at = c.pos();
    let code = c.u8(&format!("{name}.dtype"))?;
    let ndim_at = c.pos();
    let ndim = c.u8(&format!("{name}.ndim"))?;
    if ndim == 0 || ndim > 8 {
        return Err(c.err(
            &format!("{name}.ndim"),
            ndim_at,
            format!("{ndim} dimensions (expected 1..=8)"),
        ));
    }
    let mut dims = Vec::with_capacity(ndim as usize);
    let mut n: u64 = 1;
    for d in 0..ndim {
        let dat = c.pos();
        let field = format!("{name}.dims[{d}]");
        let v = c.u64(&field)?;
        n = n
            .checked_mul(v)
            .filter(|&n| n > 0 && n < (1 << 50))
            .ok_or_else(|| {
                c.err(
                    &field,
                    dat,
                    format!("dimension {v} gives an impossible element count"),
                )
            })?;
        dims.push(v);
    }
    let offset = c.u64(&format!("{name}.offset"))?;
    let size = c.u64(&format!("{name}.size"))?;
    let dtype =
        resolve_dtype(code, n, size).map_err(|m| c.err(&format!("{name}.dtype"), code_at, m))?;
    if let AprDtype::Ggml(t) = dtype {
        let row = *dims.last().expect("ndim >= 1");
        if row % t.block_elems() as u64 != 0 {
            return Err(c.err(
                &format!("{name}.dims"),
                ndim_at,
                format!(
                    "row length {row} is not a multiple of the {t} block size {}",
                    t.block_elems()
                ),
            ));
        }
    }
    Ok(IndexEntry {
        name,
        dtype,
        dims,
        offset,
        size,
        at,
    })
}

fn check_overlaps(tensors: &[(TensorInfo, usize)], file: &str) -> Result<()> {
    let mut by_off: Vec<&(TensorInfo, usize)> = tensors.iter().collect();
    by_off.sort_by_key(|(t, _)| t.offset);
    for w in by_off.windows(2) {
        let (a, b) = (&w[0].0, &w[1].0);
        if a.offset + a.nbytes > b.offset {
            return Err(Error::format(
                file,
                &format!("{}.offset", b.name),
                w[1].1 as u64,
                format!("data overlaps tensor `{}`", a.name),
            ));
        }
    }
    Ok(())
}
