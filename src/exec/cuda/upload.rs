//! Weights on the device: every weight tensor the graph reads, uploaded once — matrices
//! as raw GGML blocks (the kernels read the file's layout), norm and bias vectors as f32.

use super::device::{Device, cuda_err};
use crate::error::Result;
use crate::graph::{Graph, Node, Op};
use crate::model::ModelFile;
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
