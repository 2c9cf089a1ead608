//! CPU reference implementations, one per graph op. Each comment states the arithmetic;
//! these functions *define* what the ops mean, and every GPU kernel is judged against them.
//! Activations are row-major `[rows, width]` f32.

use crate::graph::ActSemantics;
use crate::model::RopeType;
use crate::quant::simd::{axpy_f32, dot_f32, matmul_rows_q8};
use crate::quant::simd_dequant::{dequantize_row_fast, dot_row_f32};
use crate::quant::{GgmlType, QuantAct, dequantize_row};
use rayon::prelude::*;

/// embedding: `out[t] = dequantize(W[token_t])`, exactly the file's values.
pub fn embedding(w: &[u8], dtype: GgmlType, width: usize, tokens: &[u32], out: &mut [f32]) {
    let rb = dtype.bytes_for(width as u64).expect("row of whole blocks") as usize;
    for (&tok, o) in tokens.iter().zip(out.chunks_exact_mut(width)) {
        let t = tok as usize;
        dequantize_row(dtype, &w[t * rb..(t + 1) * rb], o);
    }
}

/// rms_norm, per row (as ggml): `ss = Σ x²` accumulated in f64; `mean = (ss / n) as f32`;
/// `scale = 1 / sqrt(mean + eps)` in f32 (epsilon inside the root); `y = (x · scale) · w`.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let n = w.len();
    for (xr, yr) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        let ss: f64 = xr.iter().map(|&v| (v * v) as f64).sum();
        let mean = (ss / n as f64) as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for ((y, &v), &g) in yr.iter_mut().zip(xr).zip(w) {
            *y = (v * scale) * g;
        }
    }
}

/// Output rows per rayon task in matmul: about four tasks per thread (fewer, larger tasks
/// keep scheduling overhead out of decode), a multiple of 8 (the tile height), at least 32.
fn rows_per_task(out_w: usize) -> usize {
    let per = out_w.div_ceil(4 * rayon::current_num_threads());
    per.div_ceil(8).max(4) * 8
}

/// matmul: `y[t][r] = Σ_k W[r][k] · x[t][k]` for W `[out, in]` in raw GGML blocks.
/// - `f32` semantics: each weight row is dequantized to f32 (exact file values) and dotted
///   with the f32 activation row by `dot_f32` (f32 accumulation in 4×8 FMA lanes); the
///   fast paths (`quant::simd_dequant`) give bit-identical results.
/// - `q8` semantics: each activation row is quantized once to the weight type's
///   `vec_dot_type` (Q8_0 / Q8_1 / Q8_K, see `quant::act`) and the row dot is llama.cpp's
///   integer dot product (`quant::dot`), blocks combined in order in f32.
pub fn matmul(
    w: &[u8],
    dtype: GgmlType,
    out_w: usize,
    in_w: usize,
    x: &[f32],
    act: ActSemantics,
    out: &mut [f32],
) {
    let t_rows = x.len() / in_w;
    let rb = w.len() / out_w;
    let mut yt = vec![0.0f32; out_w * t_rows];
    let rows_per_task = rows_per_task(out_w);
    match (act, QuantAct::for_weight(dtype, &x[..in_w.min(x.len())])) {
        (ActSemantics::Q8, Some(_)) => {
            let acts: Vec<QuantAct> = x
                .chunks_exact(in_w)
                .map(|r| QuantAct::for_weight(dtype, r).expect("quantized type"))
                .collect();
            yt.par_chunks_mut(t_rows * rows_per_task)
                .enumerate()
                .for_each(|(c, chunk)| {
                    let r0 = c * rows_per_task;
                    let n = chunk.len() / t_rows;
                    matmul_rows_q8(dtype, &w[r0 * rb..(r0 + n) * rb], rb, &acts, chunk);
                });
        }
        // One activation row (decode): dequantize and dot block by block in registers.
        _ if t_rows == 1 => {
            yt.par_chunks_mut(rows_per_task)
                .enumerate()
                .for_each(|(c, chunk)| {
                    for (i, y) in chunk.iter_mut().enumerate() {
                        let r = c * rows_per_task + i;
                        *y = dot_row_f32(dtype, &w[r * rb..(r + 1) * rb], x);
                    }
                });
        }
        // Several rows (prefill): dequantize each weight row once, dot it with every row.
        _ => {
            yt.par_chunks_mut(t_rows * rows_per_task)
                .enumerate()
                .for_each_init(
                    || vec![0.0f32; in_w],
                    |buf, (c, chunk)| {
                        for (i, yrow) in chunk.chunks_exact_mut(t_rows).enumerate() {
                            let r = c * rows_per_task + i;
                            dequantize_row_fast(dtype, &w[r * rb..(r + 1) * rb], buf);
                            for (y, xr) in yrow.iter_mut().zip(x.chunks_exact(in_w)) {
                                *y = dot_f32(buf, xr);
                            }
                        }
                    },
                );
        }
    }
    for (r, yrow) in yt.chunks_exact(t_rows).enumerate() {
        for (t, &v) in yrow.iter().enumerate() {
            out[t * out_w + r] = v;
        }
    }
}

/// bias_add: `y = x + b` per row (f32).
pub fn bias_add(x: &[f32], b: &[f32], out: &mut [f32]) {
    for (xr, yr) in x.chunks_exact(b.len()).zip(out.chunks_exact_mut(b.len())) {
        for ((y, &v), &c) in yr.iter_mut().zip(xr).zip(b) {
            *y = v + c;
        }
    }
}

/// rope: for row t at position p = pos + t, every head, pair index i < d/2:
/// `θ = (p as f32) · inv_freq[i]` (f32 product), `c, s = cos θ, sin θ` (computed in f64,
/// rounded to f32), and the pair `(a, b)` becomes `(a·c − b·s, a·s + b·c)` in f32.
/// Pairs are `(i, i + d/2)` for NeoX (Qwen2) and `(2i, 2i+1)` for normal RoPE (Llama).
pub fn rope(
    x: &[f32],
    rope: RopeType,
    inv_freq: &[f32],
    n_head: usize,
    head_dim: usize,
    pos: usize,
    out: &mut [f32],
) {
    let width = n_head * head_dim;
    let half = head_dim / 2;
    for (t, (xr, yr)) in x
        .chunks_exact(width)
        .zip(out.chunks_exact_mut(width))
        .enumerate()
    {
        let p = (pos + t) as f32;
        let cs: Vec<(f32, f32)> = inv_freq
            .iter()
            .map(|&f| {
                let th = (p * f) as f64;
                (th.cos() as f32, th.sin() as f32)
            })
            .collect();
        for h in 0..n_head {
            let (xh, yh) = (
                &xr[h * head_dim..(h + 1) * head_dim],
                &mut yr[h * head_dim..(h + 1) * head_dim],
            );
            for (i, &(c, s)) in cs.iter().enumerate() {
                let (ia, ib) = match rope {
                    RopeType::Neox => (i, i + half),
                    RopeType::Norm => (2 * i, 2 * i + 1),
                };
                let (a, b) = (xh[ia], xh[ib]);
                yh[ia] = a * c - b * s;
                yh[ib] = a * s + b * c;
            }
        }
    }
}

/// attention (causal, grouped-query), for query row t at position p = pos + t and head h
/// (KV head g = h / (n_head / n_head_kv)):
/// `s_j = (q_h · k_{j,g}) · scale` for j = 0..=p (`dot_f32`), `m = max_j s_j`,
/// `e_j = exp(s_j − m)` (f32, max subtracted), `Z = Σ_j e_j` (f32, in j order),
/// `out_h = (Σ_j e_j · v_{j,g}) / Z` (f32 accumulation in j order, one division at the end).
/// The caches hold `[n_ctx, n_head_kv · head_dim]` rows; rows 0..pos+T are valid.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &[f32],
    k_cache: &[f32],
    v_cache: &[f32],
    n_head: usize,
    n_head_kv: usize,
    head_dim: usize,
    scale: f32,
    pos: usize,
    out: &mut [f32],
) {
    let qw = n_head * head_dim;
    let kvw = n_head_kv * head_dim;
    let group = n_head / n_head_kv;
    out.par_chunks_mut(head_dim)
        .enumerate()
        .for_each(|(idx, o)| {
            let (t, h) = (idx / n_head, idx % n_head);
            let g = h / group;
            let p = pos + t;
            let qh = &q[t * qw + h * head_dim..t * qw + (h + 1) * head_dim];
            let mut s: Vec<f32> = (0..=p)
                .map(|j| {
                    dot_f32(
                        qh,
                        &k_cache[j * kvw + g * head_dim..j * kvw + (g + 1) * head_dim],
                    ) * scale
                })
                .collect();
            let m = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut z = 0.0f32;
            for e in s.iter_mut() {
                *e = (*e - m).exp();
                z += *e;
            }
            o.fill(0.0);
            for (j, &e) in s.iter().enumerate() {
                axpy_f32(
                    o,
                    e,
                    &v_cache[j * kvw + g * head_dim..j * kvw + (g + 1) * head_dim],
                );
            }
            for v in o.iter_mut() {
                *v /= z;
            }
        });
}

/// silu: `y = x / (1 + exp(−x))` in f32 (ggml's `ggml_silu_f32`).
pub fn silu(x: &[f32], out: &mut [f32]) {
    for (y, &v) in out.iter_mut().zip(x) {
        *y = v / (1.0 + (-v).exp());
    }
}

/// mul: `y = a · b` elementwise (the SwiGLU product).
pub fn mul(a: &[f32], b: &[f32], out: &mut [f32]) {
    for ((y, &u), &v) in out.iter_mut().zip(a).zip(b) {
        *y = u * v;
    }
}

/// add: `y = a + b` elementwise (residual connections).
pub fn add(a: &[f32], b: &[f32], out: &mut [f32]) {
    for ((y, &u), &v) in out.iter_mut().zip(a).zip(b) {
        *y = u + v;
    }
}
