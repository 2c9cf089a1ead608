//! Quantized block formats: layouts, scalar reference dequantization, activation
//! quantization and the integer dot products that define the `q8` matvec semantics.

pub mod act;
pub mod blocks;
pub mod dequant;
pub mod dot;
pub mod simd;
pub mod simd_dequant;
pub mod types;

pub use dequant::{dequantize, dequantize_row};
pub use dot::{QuantAct, vec_dot_q8};
pub use types::{GgmlType, QK, QK_K};
