//! Minimal `.npy` (NumPy format v1.0) writer and reader for little-endian f32 arrays.

use crate::error::{Error, Result};
use std::path::Path;

pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // Magic (6) + version (2) + header length (2) + header, padded with spaces to 64, then \n.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat(total.div_ceil(64) * 64 - total));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + data.len() * 4);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

/// Reads a little-endian f32 `.npy` written by `write_f32` (or NumPy); returns (shape, data).
pub fn read_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>)> {
    let b = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let name = path.display().to_string();
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(Error::format(&name, "magic", 0, "not a .npy file"));
    }
    let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(b.get(10..10 + hlen).unwrap_or_default())
        .map_err(|_| Error::format(&name, "header", 10, "not UTF-8"))?;
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        return Err(Error::format(
            &name,
            "descr",
            10,
            "only little-endian f32 C-order arrays are supported",
        ));
    }
    let shape_txt = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or("");
    let shape: Vec<usize> = shape_txt
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let data: Vec<f32> = b[10 + hlen..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if data.len() != shape.iter().product::<usize>() {
        return Err(Error::format(
            &name,
            "shape",
            10,
            format!("shape {shape:?} does not match {} values", data.len()),
        ));
    }
    Ok((shape, data))
}
