//! Model files in: GGUF and APR readers over a memory map, exposing one `ModelFile` view
//! (hyperparameters, tokenizer data, tensors with GGUF names and outermost-first shapes).
//! Tensor bytes are never copied: `tensor_bytes` returns a slice of the mapped file.

pub mod apr;
mod apr_meta;
pub mod apr_write;
pub mod crc32;
mod cursor;
pub mod gguf;
mod gguf_value;
mod gguf_write;
mod hparams;
pub mod synth;
pub mod tokdata;

pub use hparams::{Hparams, RopeType};
pub use tokdata::{TokenType, TokenizerData};

use crate::error::{Error, Result};
use crate::quant::GgmlType;
use std::path::Path;

/// Which container a model came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Gguf {
        version: u32,
    },
    Apr {
        version: (u8, u8),
        flags: u16,
        writer: apr::AprWriter,
    },
}

impl FileFormat {
    pub fn describe(&self) -> String {
        match self {
            FileFormat::Gguf { version } => format!("GGUF v{version}"),
            FileFormat::Apr {
                version,
                flags,
                writer,
            } => format!(
                "APR v{}.{} ({}, flags 0x{flags:04x})",
                version.0,
                version.1,
                writer.describe()
            ),
        }
    }
}

/// A tensor of the model: GGUF name, GGML type, shape outermost-first (`[rows, cols]` for a
/// matrix, cols contiguous), and where its raw bytes lie in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: GgmlType,
    pub shape: Vec<u64>,
    /// Absolute byte offset in the file.
    pub offset: u64,
    pub nbytes: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }
    /// Length of the contiguous (innermost) dimension.
    pub fn row_len(&self) -> u64 {
        *self.shape.last().unwrap_or(&1)
    }
    pub fn n_rows(&self) -> u64 {
        self.n_elements() / self.row_len().max(1)
    }
    pub fn row_bytes(&self) -> usize {
        self.dtype
            .bytes_for(self.row_len())
            .expect("row length validated when the file was opened") as usize
    }
}

/// Raw metadata as the file stores it, kept for `inspect`.
#[derive(Clone, Debug)]
pub enum Metadata {
    Gguf(Vec<(String, gguf::MetaValue)>),
    Apr(apr::AprMetadata),
}

enum Storage {
    Mmap(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mmap(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

/// One model file, GGUF or APR, behind one view.
pub struct ModelFile {
    pub path: String,
    pub format: FileFormat,
    pub hparams: Hparams,
    pub tokenizer: TokenizerData,
    /// Tensors in file order.
    pub tensors: Vec<TensorInfo>,
    pub metadata: Metadata,
    storage: Storage,
}

impl ModelFile {
    /// A model written by `graphrun synth` (random, well-scaled weights of real shapes):
    /// its `general.name` starts with `graphrun synthetic`.
    pub fn is_synthetic(&self) -> bool {
        match &self.metadata {
            Metadata::Gguf(kv) => kv.iter().any(|(k, v)| {
                k == "general.name"
                    && matches!(v, gguf::MetaValue::Str(s) if s.starts_with("graphrun synthetic"))
            }),
            Metadata::Apr(_) => false,
        }
    }

    /// Opens a GGUF or APR file (decided by its magic bytes) over a memory map.
    pub fn open(path: impl AsRef<Path>) -> Result<ModelFile> {
        let path = path.as_ref();
        // Mapping a directory or a device fails with ENODEV ("No such device"), which says
        // nothing useful, and opening a FIFO blocks: name what the path is instead, before
        // opening it.
        let kind = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .file_type();
        if !kind.is_file() {
            let what = if kind.is_dir() {
                "is a directory"
            } else {
                "is not a regular file"
            };
            return Err(Error::invalid(format!(
                "{}: {what}; expected a GGUF or APR model file",
                path.display()
            )));
        }
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the map is read-only; graphrun never writes to model files while they are
        // open. (Like every mmap-based reader, a concurrent external truncation of the file
        // is outside what we can defend against.)
        let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(path, e))?;
        Self::from_storage(Storage::Mmap(map), &path.display().to_string())
    }

    /// Parses a model held in memory (tests, generated files). `name` is used in errors.
    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Result<ModelFile> {
        Self::from_storage(Storage::Owned(bytes), name)
    }

    fn from_storage(storage: Storage, name: &str) -> Result<ModelFile> {
        let buf = storage.bytes();
        let magic = buf.get(..4).unwrap_or(buf);
        let parts = if magic == gguf::MAGIC {
            Self::parts_from_gguf(buf, name)?
        } else if apr::is_apr_magic(magic) {
            apr::read(buf, name)?
        } else {
            return Err(Error::format(
                name,
                "magic",
                0,
                format!(
                    "found {magic:02x?}: neither a GGUF (\"GGUF\") nor an APR (\"APR\\0\") file"
                ),
            ));
        };
        Ok(ModelFile {
            path: name.to_string(),
            format: parts.format,
            hparams: parts.hparams,
            tokenizer: parts.tokenizer,
            tensors: parts.tensors,
            metadata: parts.metadata,
            storage,
        })
    }

    fn parts_from_gguf(buf: &[u8], name: &str) -> Result<Parts> {
        let h = gguf::parse(buf, name)?;
        let tensors = h
            .tensors
            .iter()
            .map(|t| TensorInfo {
                name: t.name.clone(),
                dtype: t.ty,
                shape: t.ne.iter().rev().copied().collect(),
                offset: h.data_offset + t.offset,
                nbytes: t.nbytes,
            })
            .collect();
        let hparams = Hparams::from_gguf(&h, name)?;
        let tokenizer = TokenizerData::from_gguf(&h, name)?;
        Ok(Parts {
            format: FileFormat::Gguf { version: h.version },
            hparams,
            tokenizer,
            tensors,
            metadata: Metadata::Gguf(h.metadata),
        })
    }

    /// How this file spells the hyperparameter whose GGUF key is `{arch}.{suffix}`
    /// (`embedding_length` → `qwen2.embedding_length`, or APR's `hidden_size`), for errors.
    pub fn hparam_key(&self, suffix: &str) -> String {
        match &self.metadata {
            Metadata::Gguf(_) => format!("{}.{suffix}", self.hparams.arch),
            Metadata::Apr(m) => hparams::apr_key(m, suffix),
        }
    }

    /// The whole file's bytes.
    pub fn file_bytes(&self) -> &[u8] {
        self.storage.bytes()
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// A tensor that must exist, with an error naming it otherwise.
    pub fn require(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor(name)
            .ok_or_else(|| Error::tensor(&self.path, name, "required tensor is missing"))
    }

    /// Zero-copy view of a tensor's raw bytes.
    pub fn tensor_bytes(&self, t: &TensorInfo) -> &[u8] {
        &self.storage.bytes()[t.offset as usize..(t.offset + t.nbytes) as usize]
    }

    /// The tensor's values dequantized to f32 (whole tensor; for stats and diffs).
    pub fn dequantize_tensor(&self, t: &TensorInfo) -> Vec<f32> {
        crate::quant::dequantize(t.dtype, self.tensor_bytes(t), t.n_elements() as usize)
    }

    /// Total bytes of tensor data by type, sorted by type.
    pub fn bytes_by_type(&self) -> Vec<(GgmlType, usize, u64)> {
        let mut m: std::collections::BTreeMap<GgmlType, (usize, u64)> = Default::default();
        for t in &self.tensors {
            let e = m.entry(t.dtype).or_default();
            e.0 += 1;
            e.1 += t.nbytes;
        }
        m.into_iter().map(|(t, (n, b))| (t, n, b)).collect()
    }
}

/// What a format reader hands to `ModelFile`.
pub(crate) struct Parts {
    pub format: FileFormat,
    pub hparams: Hparams,
    pub tokenizer: TokenizerData,
    pub tensors: Vec<TensorInfo>,
    pub metadata: Metadata,
}

/// Where `scripts/fetch-model` caches models: `$GRAPHRUN_MODELS`, else
/// `~/.cache/graphrun/models`.
pub fn models_dir() -> std::path::PathBuf {
    if let Some(d) = std::env::var_os("GRAPHRUN_MODELS") {
        return d.into();
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    std::path::Path::new(&home).join(".cache/graphrun/models")
}

/// File names of the real models `scripts/fetch-model` knows (docs/models.md).
pub const DEFAULT_MODEL_FILE: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";
pub const MODEL_1_5B_FILE: &str = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";

/// The default model (0.5B) in the cache, or an error saying how to fetch it.
pub fn default_model_path() -> Result<std::path::PathBuf> {
    let p = models_dir().join(DEFAULT_MODEL_FILE);
    if p.exists() {
        Ok(p)
    } else {
        Err(Error::invalid(format!(
            "no MODEL given and the default model is not cached at {}\n  fetch it with: scripts/fetch-model 0.5b   (or pass a GGUF/APR path)",
            p.display()
        )))
    }
}
