//! GGUF v2/v3 reader (and a small writer used by tests, `convert` and `synth`).
//!
//! Layout: magic "GGUF", u32 version, u64 tensor_count, u64 kv_count, kv_count metadata
//! entries (string key, u32 value type, value), tensor_count tensor infos (string name,
//! u32 n_dims, u64 ne[n_dims] innermost first, u32 ggml type, u64 offset relative to the
//! data section), padding to `general.alignment` (default 32), tensor data.
//!
//! Memory is bounded by what the file holds and by what a field can honestly need: every
//! count and length is checked against the bytes actually left *and* against a limit far
//! above any real model (`MAX_*` below) before anything is allocated from it, and metadata
//! arrays are stored as typed vectors (a u8 array costs one byte per element, as in the
//! file; a string array one text buffer plus one offset per string). So a corrupted header
//! can never cause a huge allocation or a panic.

use super::cursor::Cursor;
pub use super::gguf_value::{MetaArray, MetaType, MetaValue, StrArray};
pub use super::gguf_write::GgufWriter;
use crate::error::{Error, Result};
use crate::quant::GgmlType;
use std::collections::HashSet;

pub const MAGIC: &[u8; 4] = b"GGUF";
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// GGML's GGML_MAX_DIMS.
pub const MAX_DIMS: u32 = 4;
/// Most elements a metadata array may hold. Every array in a real model is per token or
/// smaller; the largest vocabularies released have 262,144 tokens (Gemma 3).
pub const MAX_ARRAY_LEN: u64 = 1 << 20;
/// Longest metadata string value (chat templates, the longest real strings, are < 1 MiB).
pub const MAX_STRING_LEN: u64 = 16 << 20;
/// Longest metadata key (the GGUF specification's limit).
pub const MAX_KEY_LEN: u64 = 65_535;
/// Most metadata entries (real files have fewer than 100).
pub const MAX_KV_COUNT: u64 = 65_536;
/// Most tensors (real files have a few hundred to a few thousand).
pub const MAX_TENSOR_COUNT: u64 = 65_536;

/// One tensor info record as stored in the file.
#[derive(Clone, Debug)]
pub struct RawTensorInfo {
    pub name: String,
    /// GGUF `ne[]`: innermost (contiguous) dimension first.
    pub ne: Vec<u64>,
    pub ty: GgmlType,
    /// Offset relative to the start of the data section.
    pub offset: u64,
    /// Byte size, computed from type and shape (checked for overflow).
    pub nbytes: u64,
    /// Where this tensor's info record starts in the file (for error messages).
    pub info_offset: u64,
}

/// The parsed header of a GGUF file: everything before the tensor data.
#[derive(Clone, Debug)]
pub struct GgufHeader {
    pub version: u32,
    pub metadata: Vec<(String, MetaValue)>,
    pub tensors: Vec<RawTensorInfo>,
    pub alignment: u64,
    /// Absolute offset of the data section.
    pub data_offset: u64,
}

impl GgufHeader {
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Parses and validates the GGUF header in `buf` (the whole file). `file` names the file in
/// errors. Tensor ranges are checked to lie inside `buf` and not to overlap.
pub fn parse(buf: &[u8], file: &str) -> Result<GgufHeader> {
    let mut c = Cursor::new(buf, file);
    let magic = c.array::<4>("magic")?;
    if &magic != MAGIC {
        return Err(c.err(
            "magic",
            0,
            format!("expected \"GGUF\" (47 47 55 46), found {magic:02x?}: not a GGUF file"),
        ));
    }
    let version = c.u32("version")?;
    if version.swap_bytes() == 2 || version.swap_bytes() == 3 {
        return Err(c.err("version", 4, "big-endian GGUF files are not supported"));
    }
    if version != 2 && version != 3 {
        return Err(c.err(
            "version",
            4,
            format!("unsupported GGUF version {version} (graphrun reads versions 2 and 3)"),
        ));
    }
    let tensor_count = c.u64("tensor_count")?;
    let kv_count = c.u64("metadata_kv_count")?;
    // A metadata entry takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info
    // at least 8 + 4 + 8 + 4 + 8.
    if kv_count > (c.remaining() / 13) as u64 || kv_count > MAX_KV_COUNT {
        return Err(c.err(
            "metadata_kv_count",
            16,
            format!(
                "{kv_count} entries cannot fit in the {} bytes left (and at most {MAX_KV_COUNT} are accepted)",
                c.remaining()
            ),
        ));
    }
    if tensor_count > (c.remaining() / 32) as u64 || tensor_count > MAX_TENSOR_COUNT {
        return Err(c.err(
            "tensor_count",
            8,
            format!(
                "{tensor_count} tensors cannot fit in the {} bytes left (and at most {MAX_TENSOR_COUNT} are accepted)",
                c.remaining()
            ),
        ));
    }

    let mut metadata: Vec<(String, MetaValue)> = Vec::with_capacity(kv_count as usize);
    let mut seen: HashSet<String> = HashSet::with_capacity(kv_count as usize);
    for i in 0..kv_count {
        let at = c.pos();
        let klen = c.u64(&format!("metadata[{i}].key length"))?;
        if klen > MAX_KEY_LEN {
            return Err(c.err(
                &format!("metadata[{i}].key length"),
                at,
                format!("key length {klen} exceeds the GGUF limit of {MAX_KEY_LEN} bytes"),
            ));
        }
        let key = c.utf8(klen, &format!("metadata[{i}].key"))?;
        if !seen.insert(key.clone()) {
            return Err(c.err(&key, at, "duplicate metadata key"));
        }
        let tpos = c.pos();
        let t = c.u32(&format!("{key}.type"))?;
        let ty = MetaType::from_u32(t)
            .ok_or_else(|| c.err(&key, tpos, format!("unknown metadata value type {t}")))?;
        let v = read_value(&mut c, ty, &key)?;
        metadata.push((key, v));
    }

    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some((_, MetaValue::U32(a))) if *a > 0 && a.is_power_of_two() => *a as u64,
        Some((_, v)) => {
            return Err(Error::meta(
                file,
                "general.alignment",
                format!("must be a u32 power of two, found {}", v.summary()),
            ));
        }
    };

    let mut tensors: Vec<RawTensorInfo> = Vec::with_capacity(tensor_count as usize);
    for i in 0..tensor_count {
        tensors.push(read_tensor_info(&mut c, i)?);
    }
    let mut names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::tensor(file, w[0], "tensor name appears twice"));
    }

    let data_offset = (c.pos() as u64).div_ceil(alignment) * alignment;
    check_tensor_ranges(&tensors, data_offset, buf.len() as u64, alignment, file)?;
    Ok(GgufHeader {
        version,
        metadata,
        tensors,
        alignment,
        data_offset,
    })
}

fn read_value(c: &mut Cursor, ty: MetaType, key: &str) -> Result<MetaValue> {
    Ok(match ty {
        MetaType::U8 => MetaValue::U8(c.u8(key)?),
        MetaType::I8 => MetaValue::I8(c.u8(key)? as i8),
        MetaType::U16 => MetaValue::U16(c.u16(key)?),
        MetaType::I16 => MetaValue::I16(c.u16(key)? as i16),
        MetaType::U32 => MetaValue::U32(c.u32(key)?),
        MetaType::I32 => MetaValue::I32(c.u32(key)? as i32),
        MetaType::F32 => MetaValue::F32(f32::from_bits(c.u32(key)?)),
        MetaType::U64 => MetaValue::U64(c.u64(key)?),
        MetaType::I64 => MetaValue::I64(c.u64(key)? as i64),
        MetaType::F64 => MetaValue::F64(f64::from_bits(c.u64(key)?)),
        MetaType::Bool => MetaValue::Bool(read_bool(c, key)?),
        MetaType::Str => MetaValue::Str(read_str(c, key)?.to_owned()),
        MetaType::Array => MetaValue::Array(read_array(c, key)?),
    })
}

fn read_bool(c: &mut Cursor, key: &str) -> Result<bool> {
    let at = c.pos();
    match c.u8(key)? {
        0 => Ok(false),
        1 => Ok(true),
        b => Err(c.err(key, at, format!("bool must be 0 or 1, found {b}"))),
    }
}

fn read_str<'a>(c: &mut Cursor<'a>, key: &str) -> Result<&'a str> {
    let at = c.pos();
    let len = c.u64(key)?;
    if len > MAX_STRING_LEN {
        return Err(c.err(
            key,
            at,
            format!("string length {len} exceeds the limit of {MAX_STRING_LEN} bytes"),
        ));
    }
    c.str(len, key)
}

/// An array: u32 element type, u64 count, elements. The count is bounded by the bytes left
/// and by `MAX_ARRAY_LEN` before the typed vector is allocated.
fn read_array(c: &mut Cursor, key: &str) -> Result<MetaArray> {
    let at = c.pos();
    let et = c.u32(key)?;
    let et = MetaType::from_u32(et)
        .ok_or_else(|| c.err(key, at, format!("unknown array element type {et}")))?;
    if et == MetaType::Array {
        return Err(c.err(
            key,
            at,
            "arrays of arrays are not supported (ggml's GGUF reader rejects them too)",
        ));
    }
    let count_at = c.pos();
    let n = c.u64(key)?;
    if n > (c.remaining() / et.min_size()) as u64 {
        return Err(c.err(
            key,
            count_at,
            format!(
                "array of {n} {} values cannot fit in the {} bytes left",
                et.name(),
                c.remaining()
            ),
        ));
    }
    if n > MAX_ARRAY_LEN {
        return Err(c.err(
            key,
            count_at,
            format!(
                "array of {n} {} values exceeds the limit of {MAX_ARRAY_LEN} elements (4x the largest vocabulary of any released model)",
                et.name()
            ),
        ));
    }
    let n = n as usize;
    fn many<T>(n: usize, mut f: impl FnMut() -> Result<T>) -> Result<Vec<T>> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(f()?);
        }
        Ok(v)
    }
    Ok(match et {
        MetaType::U8 => MetaArray::U8(c.bytes(n, key)?.to_vec()),
        MetaType::I8 => MetaArray::I8(many(n, || Ok(c.u8(key)? as i8))?),
        MetaType::U16 => MetaArray::U16(many(n, || c.u16(key))?),
        MetaType::I16 => MetaArray::I16(many(n, || Ok(c.u16(key)? as i16))?),
        MetaType::U32 => MetaArray::U32(many(n, || c.u32(key))?),
        MetaType::I32 => MetaArray::I32(many(n, || Ok(c.u32(key)? as i32))?),
        MetaType::F32 => MetaArray::F32(many(n, || Ok(f32::from_bits(c.u32(key)?)))?),
        MetaType::U64 => MetaArray::U64(many(n, || c.u64(key))?),
        MetaType::I64 => MetaArray::I64(many(n, || Ok(c.u64(key)? as i64))?),
        MetaType::F64 => MetaArray::F64(many(n, || Ok(f64::from_bits(c.u64(key)?)))?),
        MetaType::Bool => MetaArray::Bool(many(n, || read_bool(c, key))?),
        MetaType::Str => {
            let mut s = StrArray::default();
            s.ends.reserve_exact(n);
            for _ in 0..n {
                s.push(read_str(c, key)?);
            }
            MetaArray::Str(s)
        }
        MetaType::Array => unreachable!("refused above"),
    })
}

fn read_tensor_info(c: &mut Cursor, i: u64) -> Result<RawTensorInfo> {
    let info_offset = c.pos() as u64;
    let nlen = c.u64(&format!("tensor[{i}].name length"))?;
    let name = c.utf8(nlen, &format!("tensor[{i}].name"))?;
    let at = c.pos();
    let n_dims = c.u32(&format!("{name}.n_dims"))?;
    if n_dims == 0 || n_dims > MAX_DIMS {
        return Err(c.err(
            &format!("{name}.n_dims"),
            at,
            format!("{n_dims} dimensions (expected 1..={MAX_DIMS})"),
        ));
    }
    let mut ne = Vec::with_capacity(n_dims as usize);
    let mut nel: u64 = 1;
    for d in 0..n_dims {
        let at = c.pos();
        let field = format!("{name}.ne[{d}]");
        let v = c.u64(&field)?;
        nel = nel
            .checked_mul(v)
            .filter(|&n| n > 0 && n < (1 << 50))
            .ok_or_else(|| {
                c.err(
                    &field,
                    at,
                    format!("dimension {v} gives an impossible element count"),
                )
            })?;
        ne.push(v);
    }
    let at = c.pos();
    let t = c.u32(&format!("{name}.type"))?;
    let ty = GgmlType::from_id(t).ok_or_else(|| {
        let what = match GgmlType::unsupported_name(t) {
            Some(n) => format!("GGML type {n} (id {t}) is not supported by graphrun"),
            None => format!("unknown GGML tensor type id {t}"),
        };
        c.err(&format!("{name}.type"), at, what)
    })?;
    if ne[0] % ty.block_elems() as u64 != 0 {
        return Err(c.err(
            &format!("{name}.ne[0]"),
            at,
            format!(
                "row length {} is not a multiple of the {ty} block size {}",
                ne[0],
                ty.block_elems()
            ),
        ));
    }
    let nbytes = ty.bytes_for(nel).expect("element count checked above");
    let offset = c.u64(&format!("{name}.offset"))?;
    Ok(RawTensorInfo {
        name,
        ne,
        ty,
        offset,
        nbytes,
        info_offset,
    })
}

fn check_tensor_ranges(
    tensors: &[RawTensorInfo],
    data_offset: u64,
    file_len: u64,
    alignment: u64,
    file: &str,
) -> Result<()> {
    for t in tensors {
        let field = format!("{}.offset", t.name);
        let at = t.info_offset;
        if t.offset % alignment != 0 {
            return Err(Error::format(
                file,
                &field,
                at,
                format!(
                    "offset {} is not a multiple of the alignment {alignment}",
                    t.offset
                ),
            ));
        }
        let end = data_offset
            .checked_add(t.offset)
            .and_then(|s| s.checked_add(t.nbytes));
        match end {
            Some(e) if e <= file_len => {}
            _ => {
                return Err(Error::format(
                    file,
                    &field,
                    at,
                    format!(
                        "data range {}+{} (absolute {}..) lies outside the {file_len}-byte file",
                        t.offset,
                        t.nbytes,
                        data_offset.saturating_add(t.offset)
                    ),
                ));
            }
        }
    }
    let mut by_off: Vec<&RawTensorInfo> = tensors.iter().collect();
    by_off.sort_by_key(|t| t.offset);
    for w in by_off.windows(2) {
        if w[0].offset + w[0].nbytes > w[1].offset {
            return Err(Error::format(
                file,
                &format!("{}.offset", w[1].name),
                w[1].info_offset,
                format!(
                    "data overlaps tensor `{}` ({}..{} vs {}..)",
                    w[0].name,
                    w[0].offset,
                    w[0].offset + w[0].nbytes,
                    w[1].offset
                ),
            ));
        }
    }
    Ok(())
}
