//! Numerics shared by every executor and by generation: formulas whose exact arithmetic
//! both the CPU interpreter and the CUDA executor must agree on, kept here once so neither
//! executor imports the other. (Each op's own arithmetic is defined by its CPU reference in
//! `src/exec/interp/ops.rs`; its device twin is in `kernels/numerics.cuh`.)

use crate::error::{Error, Result};

/// Index of the largest value (lowest index on ties; NaN is never chosen; 0 when every
/// value is NaN), as llama.cpp's greedy decoding. Device twin: `kernels/argmax.cu`, which
/// skips NaN the same way. `greedy_token` refuses non-finite logits first.
pub fn argmax(x: &[f32]) -> usize {
    let mut best: Option<usize> = None;
    for (i, &v) in x.iter().enumerate() {
        if !v.is_nan() && best.is_none_or(|b| v > x[b]) {
            best = Some(i);
        }
    }
    best.unwrap_or(0)
}

/// An error when a row of logits holds NaN or ±Inf (a broken weight or op upstream: greedy
/// decoding would silently pick token 0 forever). `at` says where, for the message.
pub fn check_finite_logits(logits: &[f32], at: &str) -> Result<()> {
    let nan = logits.iter().filter(|v| v.is_nan()).count();
    let inf = logits.iter().filter(|v| v.is_infinite()).count();
    if nan + inf == 0 {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "the logits {at} hold {nan} NaN and {inf} Inf values: a weight or an op upstream \
produced non-finite values; `graphrun trace MODEL --prompt P --interp -o DIR` stops at the \
first node that produces them and names it"
    )))
}

/// The greedy token of one row of logits, refusing non-finite logits.
pub fn greedy_token(logits: &[f32]) -> Result<u32> {
    check_finite_logits(logits, "of this step")?;
    Ok(argmax(logits) as u32)
}

/// The RoPE inverse frequencies `inv_freq[i] = base^(−2i/d)` for i < d/2, computed in f64
/// and rounded to f32. Both executors use this table (the CUDA executor uploads it), so
/// both sides see identical angles.
pub fn rope_inv_freq(base: f32, head_dim: usize) -> Vec<f32> {
    (0..head_dim / 2)
        .map(|i| (base as f64).powf(-2.0 * i as f64 / head_dim as f64) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_ties_and_skips_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[0.5, f32::NAN, 0.7]), 2);
        assert_eq!(argmax(&[f32::NAN, 1.0, 2.0]), 2);
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
        assert_eq!(argmax(&[-1.0]), 0);
    }

    #[test]
    fn rope_inv_freq_starts_at_one_and_decreases() {
        let f = rope_inv_freq(10000.0, 64);
        assert_eq!(f.len(), 32);
        assert_eq!(f[0], 1.0);
        assert!(f.windows(2).all(|w| w[1] < w[0]));
    }
}
