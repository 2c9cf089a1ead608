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

/// GGUF metadata value types (`enum gguf_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    Str = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl MetaType {
    fn from_u32(v: u32) -> Option<MetaType> {
        use MetaType::*;
        Some(match v {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => Str,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// Smallest encoded size of one value of this type (strings: the u64 length; arrays:
    /// the u32 type + u64 count). Used to bound counts before allocating.
    fn min_size(self) -> usize {
        use MetaType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | Str => 8,
            Array => 12,
        }
    }

    pub fn name(self) -> &'static str {
        use MetaType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            Str => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    Array(MetaArray),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A metadata array, one typed vector per element type. Arrays of arrays are not part of
/// the format as ggml reads it (`gguf.cpp` rejects them), so they are refused too.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    Str(StrArray),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

/// Strings stored back to back in one buffer, with the end offset of each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StrArray {
    text: String,
    ends: Vec<usize>,
}

impl StrArray {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.text[start..end])
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.get(i).expect("index in range"))
    }
}

impl<S: AsRef<str>> FromIterator<S> for StrArray {
    fn from_iter<I: IntoIterator<Item = S>>(it: I) -> StrArray {
        let mut a = StrArray::default();
        for s in it {
            a.push(s.as_ref());
        }
        a
    }
}

impl MetaArray {
    pub fn elem_type(&self) -> MetaType {
        match self {
            MetaArray::U8(_) => MetaType::U8,
            MetaArray::I8(_) => MetaType::I8,
            MetaArray::U16(_) => MetaType::U16,
            MetaArray::I16(_) => MetaType::I16,
            MetaArray::U32(_) => MetaType::U32,
            MetaArray::I32(_) => MetaType::I32,
            MetaArray::F32(_) => MetaType::F32,
            MetaArray::Bool(_) => MetaType::Bool,
            MetaArray::Str(_) => MetaType::Str,
            MetaArray::U64(_) => MetaType::U64,
            MetaArray::I64(_) => MetaType::I64,
            MetaArray::F64(_) => MetaType::F64,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            MetaArray::U8(v) => v.len(),
            MetaArray::I8(v) => v.len(),
            MetaArray::U16(v) => v.len(),
            MetaArray::I16(v) => v.len(),
            MetaArray::U32(v) => v.len(),
            MetaArray::I32(v) => v.len(),
            MetaArray::F32(v) => v.len(),
            MetaArray::Bool(v) => v.len(),
            MetaArray::Str(v) => v.len(),
            MetaArray::U64(v) => v.len(),
            MetaArray::I64(v) => v.len(),
            MetaArray::F64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_strs(&self) -> Option<&StrArray> {
        match self {
            MetaArray::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Element `i` as a signed integer, for integer arrays (u64 values above i64::MAX and
    /// non-integer arrays give None).
    pub fn int(&self, i: usize) -> Option<i64> {
        match self {
            MetaArray::U8(v) => v.get(i).map(|&x| x as i64),
            MetaArray::I8(v) => v.get(i).map(|&x| x as i64),
            MetaArray::U16(v) => v.get(i).map(|&x| x as i64),
            MetaArray::I16(v) => v.get(i).map(|&x| x as i64),
            MetaArray::U32(v) => v.get(i).map(|&x| x as i64),
            MetaArray::I32(v) => v.get(i).map(|&x| x as i64),
            MetaArray::U64(v) => v.get(i).and_then(|&x| i64::try_from(x).ok()),
            MetaArray::I64(v) => v.get(i).copied(),
            _ => None,
        }
    }
}

impl MetaValue {
    pub fn ty(&self) -> MetaType {
        match self {
            MetaValue::U8(_) => MetaType::U8,
            MetaValue::I8(_) => MetaType::I8,
            MetaValue::U16(_) => MetaType::U16,
            MetaValue::I16(_) => MetaType::I16,
            MetaValue::U32(_) => MetaType::U32,
            MetaValue::I32(_) => MetaType::I32,
            MetaValue::F32(_) => MetaType::F32,
            MetaValue::Bool(_) => MetaType::Bool,
            MetaValue::Str(_) => MetaType::Str,
            MetaValue::Array(..) => MetaType::Array,
            MetaValue::U64(_) => MetaType::U64,
            MetaValue::I64(_) => MetaType::I64,
            MetaValue::F64(_) => MetaType::F64,
        }
    }

    /// The value as an unsigned integer, if it is an integer type holding a value ≥ 0.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetaValue::U8(v) => Some(v as u64),
            MetaValue::U16(v) => Some(v as u64),
            MetaValue::U32(v) => Some(v as u64),
            MetaValue::U64(v) => Some(v),
            MetaValue::I8(v) => u64::try_from(v).ok(),
            MetaValue::I16(v) => u64::try_from(v).ok(),
            MetaValue::I32(v) => u64::try_from(v).ok(),
            MetaValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v as f64),
            MetaValue::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&MetaArray> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Short human rendering for `inspect` (arrays are summarized).
    pub fn summary(&self) -> String {
        match self {
            MetaValue::Str(s) if s.len() > 80 => {
                let cut: String = s.chars().take(60).collect();
                format!("{cut:?}… ({} bytes)", s.len())
            }
            MetaValue::Str(s) => format!("{s:?}"),
            MetaValue::Array(a) => format!("[{}; {}]", a.elem_type().name(), a.len()),
            MetaValue::Bool(b) => b.to_string(),
            MetaValue::F32(f) => f.to_string(),
            MetaValue::F64(f) => f.to_string(),
            MetaValue::I8(v) => v.to_string(),
            MetaValue::I16(v) => v.to_string(),
            MetaValue::I32(v) => v.to_string(),
            MetaValue::I64(v) => v.to_string(),
            MetaValue::U8(v) => v.to_string(),
            MetaValue::U16(v) => v.to_string(),
            MetaValue::U32(v) => v.to_string(),
            MetaValue::U64(v) => v.to_string(),
        }
    }
}

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

/// A GGUF writer: metadata in the given order, tensors laid out in the given order at
/// `alignment`. Used by tests (corrupted-file tables), `graphrun synth` and round trips.
#[derive(Clone)]
pub struct GgufWriter {
    pub version: u32,
    pub alignment: u64,
    pub metadata: Vec<(String, MetaValue)>,
    /// (name, ne innermost first, type, bytes)
    pub tensors: Vec<(String, Vec<u64>, GgmlType, Vec<u8>)>,
}

impl GgufWriter {
    pub fn new() -> GgufWriter {
        GgufWriter {
            version: 3,
            alignment: DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            tensors: Vec::new(),
        }
    }

    pub fn kv(&mut self, key: &str, v: MetaValue) -> &mut Self {
        self.metadata.push((key.to_string(), v));
        self
    }

    pub fn tensor(&mut self, name: &str, ne: &[u64], ty: GgmlType, data: Vec<u8>) -> &mut Self {
        self.tensors.push((name.to_string(), ne.to_vec(), ty, data));
        self
    }

    /// Serializes the file into `out`.
    pub fn write_to(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let mut head = Vec::new();
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&self.version.to_le_bytes());
        head.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        head.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            put_str(&mut head, k);
            head.extend_from_slice(&(v.ty() as u32).to_le_bytes());
            put_value(&mut head, v);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for (name, ne, ty, data) in &self.tensors {
            put_str(&mut head, name);
            head.extend_from_slice(&(ne.len() as u32).to_le_bytes());
            for d in ne {
                head.extend_from_slice(&d.to_le_bytes());
            }
            head.extend_from_slice(&ty.id().to_le_bytes());
            head.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + data.len() as u64).div_ceil(self.alignment) * self.alignment;
        }
        let pad = (head.len() as u64).div_ceil(self.alignment) * self.alignment - head.len() as u64;
        head.resize(head.len() + pad as usize, 0);
        out.write_all(&head)?;
        let mut written = 0u64;
        for ((_, _, _, data), off) in self.tensors.iter().zip(offsets) {
            out.write_all(&vec![0u8; (off - written) as usize])?;
            out.write_all(data)?;
            written = off + data.len() as u64;
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v).expect("writing to a Vec cannot fail");
        v
    }
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &MetaValue) {
    match v {
        MetaValue::U8(x) => out.push(*x),
        MetaValue::I8(x) => out.push(*x as u8),
        MetaValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => out.push(*x as u8),
        MetaValue::Str(s) => put_str(out, s),
        MetaValue::Array(a) => put_array(out, a),
        MetaValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

fn put_array(out: &mut Vec<u8>, a: &MetaArray) {
    out.extend_from_slice(&(a.elem_type() as u32).to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    fn each<T: Copy, const N: usize>(out: &mut Vec<u8>, v: &[T], f: impl Fn(T) -> [u8; N]) {
        v.iter().for_each(|&x| out.extend_from_slice(&f(x)));
    }
    match a {
        MetaArray::U8(v) => out.extend_from_slice(v),
        MetaArray::I8(v) => each(out, v, |x| x.to_le_bytes()),
        MetaArray::U16(v) => each(out, v, |x| x.to_le_bytes()),
        MetaArray::I16(v) => each(out, v, |x| x.to_le_bytes()),
        MetaArray::U32(v) => each(out, v, |x| x.to_le_bytes()),
        MetaArray::I32(v) => each(out, v, |x| x.to_le_bytes()),
        MetaArray::F32(v) => each(out, v, |x| x.to_le_bytes()),
        MetaArray::Bool(v) => each(out, v, |x| [x as u8]),
        MetaArray::Str(v) => v.iter().for_each(|s| put_str(out, s)),
        MetaArray::U64(v) => each(out, v, |x| x.to_le_bytes()),
        MetaArray::I64(v) => each(out, v, |x| x.to_le_bytes()),
        MetaArray::F64(v) => each(out, v, |x| x.to_le_bytes()),
    }
}
