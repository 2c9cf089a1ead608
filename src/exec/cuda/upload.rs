//! Weights on the device: every weight tensor the graph reads, uploaded once — matrices
//! as raw GGML blocks (the kernels read the file's layout), norm and bias vectors as f32.

use super::device::{Device, cuda_err};
use crate::error::{Error, Result};
use crate::graph::{Graph, Node, Op};
use crate::model::{ModelFile, TensorInfo};
use cudarc::driver::CudaSlice;
use std::collections::HashMap;

pub(super) struct Weights {
    raw: HashMap<String, CudaSlice<u8>>,
    small: HashMap<String, CudaSlice<f32>>,
}

/// The distinct weight tensors the graph reads, sorted.
pub(super) fn weight_names(g: &Graph) -> Vec<String> {
    let mut names: Vec<String> = g
        .nodes()
        .filter_map(|(_, n)| n.weight.as_ref().map(|w| w.name.clone()))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Bytes of the named tensors in the file.
pub(super) fn bytes_of(m: &ModelFile, names: &[String]) -> u64 {
    names
        .iter()
        .map(|n| m.tensor(n).map_or(0, |t| t.nbytes))
        .sum()
}

/// The decode kernels find a unit by its block's index in the matrix, in 32 bits until the
/// last product (kernels/matvec.cuh, matvec_tile; kernels/matvec_batch.cu, batch_rows): a
/// matrix of more blocks is refused.
fn block_count_fits(path: &str, t: &TensorInfo) -> Result<()> {
    let blocks = t.n_elements() / t.dtype.block_elems() as u64;
    if blocks > u64::from(u32::MAX) {
        return Err(Error::tensor(
            path,
            &t.name,
            format!(
                "{blocks} {} blocks: the GPU kernels index at most {} blocks a matrix",
                t.dtype.name(),
                u32::MAX
            ),
        ));
    }
    Ok(())
}

impl Weights {
    /// Uploads `names` (`total` bytes), with progress on stderr for large models: a live
    /// line on a terminal, one line per quarter in logs.
    pub fn upload(
        dev: &Device,
        model: &ModelFile,
        g: &Graph,
        names: &[String],
        total: u64,
        quiet: bool,
    ) -> Result<Weights> {
        let t0 = std::time::Instant::now();
        let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let show = !quiet && total > (256 << 20);
        let small_names: Vec<&str> = g
            .nodes()
            .filter(|(_, n)| matches!(n.op, Op::RmsNorm { .. } | Op::BiasAdd))
            .map(|(_, n)| n.weight().name.as_str())
            .collect();
        let mut w = Weights {
            raw: HashMap::new(),
            small: HashMap::new(),
        };
        let mut done = 0u64;
        for name in names {
            let t = model.require(name)?;
            let bytes = model.tensor_bytes(t);
            if small_names.contains(&name.as_str()) {
                let f = crate::quant::dequantize(t.dtype, bytes, t.n_elements() as usize);
                w.small.insert(name.clone(), dev.upload(&f)?);
            } else {
                block_count_fits(&model.path, t)?;
                // 64 zero bytes of padding: kernels assemble unaligned words from aligned
                // loads that may reach 2 bytes past a tensor's last block, and the prefill
                // GEMM copies the aligned 16-byte words around 2-byte-aligned blocks (up to 15
                // bytes past the last; kernels/mmq.cu, MmqRaw). The allocation's start is
                // 256-byte aligned, so the words before a tensor's first block are its own.
                let mut d = dev.zeros::<u8>(bytes.len() + 64)?;
                dev.stream
                    .memcpy_htod(bytes, &mut d.slice_mut(0..bytes.len()))
                    .map_err(cuda_err("uploading weights"))?;
                w.raw.insert(name.clone(), d);
            }
            let before = done;
            done += t.nbytes;
            if show && (tty || before * 4 / total != done * 4 / total) {
                let line = format!(
                    "graphrun: uploading weights {:>5} / {} MiB",
                    done >> 20,
                    total >> 20
                );
                if tty {
                    eprint!("\r{line}");
                } else {
                    eprintln!("{line}");
                }
            }
        }
        dev.sync()?;
        if show {
            let secs = t0.elapsed().as_secs_f64();
            if tty {
                eprintln!(" ({secs:.1} s)");
            } else {
                eprintln!("graphrun: weights uploaded in {secs:.1} s");
            }
        }
        Ok(w)
    }

    /// Device address of a node's weight.
    pub fn ptr(&self, dev: &Device, n: &Node) -> u64 {
        let name = &n.weight().name;
        match self.raw.get(name) {
            Some(s) => dev.ptr(s),
            None => dev.ptr(&self.small[name]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::GgmlType;

    fn matrix(dtype: GgmlType, rows: u64, cols: u64) -> TensorInfo {
        TensorInfo {
            name: "blk.0.ffn_down.weight".into(),
            dtype,
            shape: vec![rows, cols],
            offset: 0,
            nbytes: 0,
        }
    }

    #[test]
    fn matrices_past_the_kernels_block_index_are_refused_by_name() {
        // 2^16 rows of 2^24 Q4_K values: 2^32 blocks, one past the last index.
        let e = block_count_fits("m.gguf", &matrix(GgmlType::Q4_K, 1 << 16, 1 << 24)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("m.gguf") && msg.contains("blk.0.ffn_down.weight"),
            "{msg}"
        );
        assert!(msg.contains("4294967296 Q4_K blocks"), "{msg}");
        // One row fewer (2^32 - 2^16 blocks) fits, and so does the 7B's Q6_K logits matrix.
        assert!(
            block_count_fits("m.gguf", &matrix(GgmlType::Q4_K, (1 << 16) - 1, 1 << 24)).is_ok()
        );
        assert!(block_count_fits("m.gguf", &matrix(GgmlType::Q6_K, 152_064, 3_584)).is_ok());
    }
}
