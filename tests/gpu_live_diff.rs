//! `graphrun diff --live` with the GPU on one side, on the device (`#[ignore]`d; run with
//! `--ignored`, scripts/gpu-check live):
//! - GPU vs interpreter on the synthetic 1.5B for 1,000 decode steps, every record in its
//!   band, in under 5 minutes (q8 with the default f16 cache, and f32 over an f32 cache);
//! - small faults injected into the GPU side are named at their node, the prefill step,
//!   with their inputs in band (f32 faults judged by the 1e-8 band, q8 faults through q8
//!   noise) — on the real 0.5B where it was shipped ($GRAPHRUN_REAL_05B), else the
//!   synthetic 1.5B;
//! - q8 GPU vs f32 interpreter on the real 0.5B over 500 steps reports the drift per layer
//!   without stopping (cross-semantics bands), with the first token flip and its margin.

mod common;

use common::{graphrun, scratch};
use serde_json::Value;
use std::path::{Path, PathBuf};

const PROMPT: &str = "def fibonacci(n):";

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The synthetic 1.5B (written once per machine).
fn synthetic_15b() -> PathBuf {
    let p = std::env::temp_dir().join("graphrun-live-1.5b.gguf");
    if !p.exists() {
        let (code, _, err) = graphrun(&["synth", "--preset", "1.5b", "-o", path(&p)]);
        assert_eq!(code, 0, "synth: {err}");
    }
    p
}

/// `graphrun diff --live MODEL -p PROMPT --a A --b B -n N -o DIR --json [EXTRA]`.
fn live(model: &Path, a: &str, b: &str, n: usize, dir: &Path, extra: &[&str]) -> (i32, Value) {
    let (code, r, _) = common::live_diff(model, PROMPT, (a, b), n, dir, extra);
    (code, r)
}

/// One line for the log: steps, records, time, worst node, flips.
fn summary(r: &Value) -> String {
    let worst = r["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .max_by(|x, y| {
            let r = |n: &Value| {
                n["worst_nmse"].as_f64().unwrap_or(0.0) / n["band"].as_f64().unwrap_or(1.0)
            };
            r(x).total_cmp(&r(y))
        })
        .cloned()
        .unwrap_or(Value::Null);
    format!(
        "contract {}, {} steps, {} records, {:.1} s, worst relative to band: {} {:.3e} (band {:.1e}) at step {}, token flips at {} steps, first {}",
        r["contract"],
        r["steps_done"],
        r["records"],
        r["seconds"].as_f64().unwrap_or(0.0),
        worst["node"],
        worst["worst_nmse"].as_f64().unwrap_or(0.0),
        worst["band"].as_f64().unwrap_or(0.0),
        worst["worst_step"],
        r["flip_steps"].as_array().map_or(0, |v| v.len()),
        r["first_flip"],
    )
}

#[test]
#[ignore = "needs a GPU: run with --ignored on the device (scripts/gpu-check live)"]
fn gpu_and_interpreter_agree_over_1000_steps_on_the_synthetic_15b() {
    common::require_gpu("gpu_live_diff");
    let m = synthetic_15b();
    let d = scratch("gpu-live-long");
    let steps = 1000;
    for (a, b) in [
        ("gpu", "interp"),
        ("gpu --act f32 --kv f32", "interp --act f32 --kv f32"),
    ] {
        let (code, r) = live(&m, a, b, steps, &d, &[]);
        eprintln!("live '{a}' vs '{b}': exit {code}: {}", summary(&r));
        assert_eq!(r["contract"], "trace_same_semantics");
        assert_eq!(code, 0, "stopped: {}", r["stop"]);
        assert_eq!(r["steps_done"], steps);
        let s = r["seconds"].as_f64().unwrap();
        assert!(
            s < 300.0,
            "{steps} steps took {s:.0} s (target: under 5 minutes)"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
#[ignore = "needs a GPU: run with --ignored on the device (scripts/gpu-check live)"]
fn faults_injected_into_the_gpu_side_are_found_at_their_node() {
    common::require_gpu("gpu_live_diff");
    let m = common::model_05b_for_gpu().unwrap_or_else(synthetic_15b);
    eprintln!("model: {}", m.display());
    let d = scratch("gpu-live-fault");
    // f32 over an f32 cache (GPU and interpreter agree to ~1e-12 there; band 1e-8): faults
    // 100x outside the band. q8 (default cache): faults that move their node by several
    // times the node's q8 band.
    let table = [
        ("--act f32 --kv f32", "blk.5.ffn_down:scale=1.001"),
        ("--act f32 --kv f32", "blk.12.attn_v:scale=1.01"),
        ("--act f32 --kv f32", "blk.16.ffn_swiglu:scale=1.001"),
        ("--act q8", "blk.6.ffn_up:scale=1.3"),
        ("--act q8", "blk.11.attn:scale=0.8"),
    ];
    for (sem, fault) in table {
        let node = fault.split(':').next().unwrap();
        let a = format!("gpu {sem} --inject {fault}");
        let b = format!("interp {sem}");
        let (code, r) = live(&m, &a, &b, 50, &d, &[]);
        let line = r["first_divergence_line"].as_str().unwrap_or("none");
        eprintln!("live '{a}' vs '{b}': exit {code}: {line}");
        assert_eq!(code, 1, "{fault}: not found ({})", summary(&r));
        assert_eq!(r["stop"]["node"], node, "{fault}: {line}");
        assert_eq!(r["cause"], "culprit", "{fault}: {line}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
#[ignore = "needs a GPU and the real 0.5B: run with --ignored on the device (scripts/gpu-check live)"]
fn q8_gpu_vs_f32_interpreter_reports_drift_over_500_steps_on_the_real_05b() {
    common::require_gpu("gpu_live_diff");
    let Some(m) = common::model_05b_for_gpu() else {
        return;
    };
    let d = scratch("gpu-live-q8");
    let steps = 500;
    let (code, r) = live(&m, "gpu --act q8", "interp --act f32", steps, &d, &[]);
    eprintln!(
        "live 'gpu --act q8' vs 'interp --act f32': exit {code}: {}",
        summary(&r)
    );
    assert_eq!(r["contract"], "trace_cross_semantics");
    assert_eq!(code, 0, "stopped: {}", r["stop"]);
    assert_eq!(r["steps_done"], steps);
    let layers = r["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    for l in layers {
        eprintln!("  layer {}: {}", l["layer"], l);
    }
    if let Some(f) = r["first_flip"].as_object() {
        assert!(f["ref_margin"].as_f64().is_some(), "{f:?}");
    }
    let _ = std::fs::remove_dir_all(&d);
}
