//! Dequantization is bit-identical to gguf-py (`tests/golden/make_golden.py`), and the
//! integer dot products of the `q8` semantics agree with dequantized arithmetic.

mod common;

use common::{Rng, unhex};
use graphrun::model::ModelFile;
use graphrun::quant::{GgmlType, QuantAct, dequantize, vec_dot_q8};
use std::collections::HashMap;

fn golden() -> serde_json::Value {
    let text =
        std::fs::read_to_string(common::repo_path("tests/golden/dequant_golden.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn assert_bits_equal(what: &str, got: &[f32], expected_hex: &str) {
    let exp = unhex(expected_hex);
    assert_eq!(exp.len(), got.len() * 4, "{what}: length");
    for (i, (g, e)) in got.iter().zip(exp.chunks_exact(4)).enumerate() {
        let e = f32::from_le_bytes(e.try_into().unwrap());
        assert!(
            g.to_bits() == e.to_bits(),
            "{what}: element {i}: graphrun {g:e} ({:#010x}) vs gguf-py {e:e} ({:#010x})",
            g.to_bits(),
            e.to_bits()
        );
    }
}

#[test]
fn synthetic_blocks_dequant_match_gguf_py_bit_exactly() {
    let g = golden();
    let mut seen = Vec::new();
    for c in g["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "synthetic")
    {
        let ty = GgmlType::from_name(c["type"].as_str().unwrap()).unwrap();
        let raw = unhex(c["raw_hex"].as_str().unwrap());
        let n = c["n"].as_u64().unwrap() as usize;
        let got = dequantize(ty, &raw, n);
        assert_bits_equal(
            &format!("synthetic {ty}"),
            &got,
            c["values_hex"].as_str().unwrap(),
        );
        seen.push(ty);
    }
    for ty in [
        "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "F16",
        "BF16",
    ] {
        assert!(
            seen.contains(&GgmlType::from_name(ty).unwrap()),
            "no golden case for {ty}"
        );
    }
}

#[test]
fn real_model_rows_dequant_match_gguf_py_bit_exactly() {
    let g = golden();
    let mut models: HashMap<String, ModelFile> = HashMap::new();
    let mut checked = 0;
    for c in g["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "model")
    {
        let file = c["model"].as_str().unwrap();
        if !models.contains_key(file) {
            let Some(p) = common::real_model(file) else {
                continue;
            };
            models.insert(file.to_string(), ModelFile::open(p).unwrap());
        }
        let m = &models[file];
        let t = m.require(c["tensor"].as_str().unwrap()).unwrap();
        assert_eq!(t.dtype.name(), c["type"].as_str().unwrap());
        let row = c["row"].as_u64().unwrap() as usize;
        let rb = t.row_bytes();
        let raw = &m.tensor_bytes(t)[row * rb..(row + 1) * rb];
        assert_eq!(
            raw,
            unhex(c["raw_hex"].as_str().unwrap()).as_slice(),
            "{} row {row}: raw bytes",
            t.name
        );
        let got = dequantize(t.dtype, raw, t.row_len() as usize);
        assert_bits_equal(
            &format!("{file} {} row {row}", t.name),
            &got,
            c["values_hex"].as_str().unwrap(),
        );
        checked += 1;
    }
    eprintln!("checked {checked} real-model rows against gguf-py");
}

/// Random but valid raw blocks of type `ty` (finite fp16 scales) for `n` elements.
fn random_row(ty: GgmlType, n: usize, rng: &mut Rng) -> Vec<u8> {
    let mut raw: Vec<u8> = (0..ty.bytes_for(n as u64).unwrap())
        .map(|_| rng.next_u64() as u8)
        .collect();
    let bs = ty.block_bytes();
    let scale_at: &[usize] = match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q6_K => &[208],
        _ => &[],
    };
    for b in raw.chunks_exact_mut(bs) {
        for &o in scale_at {
            b[o..o + 2].copy_from_slice(
                &half::f16::from_f32(rng.f32() * 0.01)
                    .to_bits()
                    .to_le_bytes(),
            );
        }
    }
    if ty == GgmlType::Q8_K {
        for b in raw.chunks_exact_mut(bs) {
            b[0..4].copy_from_slice(&(rng.f32() * 0.01).to_le_bytes());
        }
    }
    raw
}

#[test]
fn q8_integer_dots_equal_dequantized_arithmetic() {
    let mut rng = Rng(0x5eed);
    let n = 512;
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::Q8_K,
    ] {
        for trial in 0..20 {
            let row = random_row(ty, n, &mut rng);
            let x: Vec<f32> = (0..n).map(|_| rng.normal()).collect();
            let act = QuantAct::for_weight(ty, &x).unwrap();
            let got = vec_dot_q8(ty, &row, &act) as f64;
            // Independent route: dequantize both sides, multiply in f64.
            let w = dequantize(ty, &row, n);
            let xa = act.dequantized();
            let expect: f64 = w.iter().zip(&xa).map(|(a, b)| *a as f64 * *b as f64).sum();
            let scale: f64 = w
                .iter()
                .zip(&xa)
                .map(|(a, b)| (*a as f64 * *b as f64).abs())
                .sum();
            // Q4_1/Q5_1 use the fp16-rounded s = d·Σq of the activation block, as llama.cpp does.
            let tol = if matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1) {
                2e-3
            } else {
                2e-6
            };
            assert!(
                (got - expect).abs() <= tol * scale.max(1e-12),
                "{ty} trial {trial}: integer dot {got} vs dequantized {expect} (scale {scale})"
            );
        }
    }
}

#[test]
fn activation_quantization_reconstructs_within_half_a_step() {
    let mut rng = Rng(42);
    let x: Vec<f32> = (0..1024).map(|_| rng.normal()).collect();
    for w in [GgmlType::Q5_0, GgmlType::Q4_1, GgmlType::Q4_K] {
        let act = QuantAct::for_weight(w, &x).unwrap();
        let back = act.dequantized();
        let block = if w == GgmlType::Q4_K { 256 } else { 32 };
        for (c, (xs, bs)) in x.chunks(block).zip(back.chunks(block)).enumerate() {
            let amax = xs.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let step = amax / 127.0;
            for (a, b) in xs.iter().zip(bs) {
                // fp16 rounding of d adds up to 2^-11 relative on top of half a step.
                assert!(
                    (a - b).abs() <= 0.5 * step + amax * 1e-3,
                    "{w} block {c}: {a} -> {b}"
                );
            }
        }
    }
}
