//! The GGUF writer (tests' corrupted-file tables, `graphrun synth`, `convert` round trips).

use super::gguf::{DEFAULT_ALIGNMENT, MAGIC};
use super::gguf_value::{MetaArray, MetaValue};
use crate::quant::GgmlType;

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
