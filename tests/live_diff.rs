//! `graphrun diff --live` on the real 0.5B model on the CPU: a small injected fault is
//! found at its node even though the greedy tokens never change; f32 vs q8 drift is
//! reported per layer over many steps without stopping, with the first token flip and its
//! margin; GGUF vs its APR is exact at every node and step; bad SPECs and GPU specs without
//! a GPU are clear errors. Full step counts (500 and 1,000) are in evidence/live-diff.md.

mod common;

use common::{graphrun, scratch};
use serde_json::Value;
use std::path::Path;

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn live(
    model: &Path,
    prompt: &str,
    a: &str,
    b: &str,
    n: usize,
    dir: &Path,
    extra: &[&str],
) -> (i32, Value, String) {
    common::live_diff(model, prompt, (a, b), n, dir, extra)
}

#[test]
fn small_fault_is_found_at_its_node_though_the_tokens_never_change() {
    let Some(m) = common::model_05b() else { return };
    let d = scratch("live-fault");
    let fault = "blk.5.ffn_down:scale=1.0001";
    // Small faults are localized with exact f32 math and an f32 KV cache (the f16 cache's
    // rounding flips carry a 1e-8 fault to ~1e-6 downstream, inside its band).
    let a = "interp --act f32 --kv f32";
    let b = format!("{a} --inject {fault}");
    // Under a band loose enough to let it pass, the fault changes no greedy token in 24
    // steps: a token-level comparison would not see it.
    let loose = d.join("loose.toml");
    std::fs::write(
        &loose,
        "contract = \"loose\"\ninvariant = \"test only\"\ntests = []\n[bands.nmse]\ndefault = 1e-6\n",
    )
    .unwrap();
    let (code, r, err) = live(
        &m,
        "def fib(n):",
        a,
        &b,
        24,
        &d.join("loose"),
        &["--contract", path(&loose)],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(r["steps_done"], 24);
    assert!(r["first_flip"].is_null(), "{}", r["first_flip"]);
    let worst = r["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "blk.5.ffn_down")
        .unwrap();
    assert!(worst["worst_nmse"].as_f64().unwrap() > 9e-9, "{worst}");
    // The live diff (exact contract for two interpreter runs, and the GPU-vs-interpreter
    // f32 band) stops at the faulted node in the prefill, inputs in band.
    for contract in [None, Some("trace_same_semantics")] {
        let extra: Vec<&str> = contract.iter().flat_map(|c| ["--contract", c]).collect();
        let out = d.join(contract.unwrap_or("exact"));
        let html = d.join("report.html");
        let mut extra = extra.clone();
        extra.extend(["--html", path(&html)]);
        let (code, r, err) = live(&m, "def fib(n):", a, &b, 200, &out, &extra);
        assert_eq!(code, 1, "{contract:?}: {err}");
        assert_eq!(r["exit_status"], 1);
        if contract.is_none() {
            assert_eq!(r["contract"], "trace_exact");
        }
        assert_eq!(r["stop"]["node"], "blk.5.ffn_down", "{}", r["stop"]);
        assert_eq!(
            (r["stop"]["step"].as_u64(), r["steps_done"].as_u64()),
            (Some(0), Some(0))
        );
        assert_eq!(r["cause"], "culprit");
        let line = r["first_divergence_line"].as_str().unwrap();
        assert!(
            line.starts_with("first divergence: blk.5.ffn_down @pos 0 step 0 "),
            "{line}"
        );
        // The step is written as two ordinary traces that `graphrun diff` reads alike.
        let (ta, tb) = (out.join("a"), out.join("b"));
        let mut args = vec!["diff", path(&ta), path(&tb)];
        args.extend(contract.iter().flat_map(|c| ["--contract", *c]));
        let (code, text, err) = graphrun(&args);
        assert_eq!(code, 1, "{err}");
        assert_eq!(text.lines().last(), Some(line));
        let page = std::fs::read_to_string(&html).unwrap();
        assert!(page.contains("graphrun diff --live") && page.contains("<svg"));
        assert!(page.contains("Stopped at step 0: blk.5.ffn_down"));
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn f32_vs_q8_drift_is_reported_per_layer_with_the_first_token_flip() {
    let Some(m) = common::model_05b() else { return };
    let d = scratch("live-q8");
    let steps = 40;
    let (code, r, err) = live(
        &m,
        "Write a haiku about rust.",
        "interp --act f32",
        "interp --act q8",
        steps,
        &d,
        &[],
    );
    assert_eq!(code, 0, "{err}: {}", r["stop"]);
    assert_eq!(r["contract"], "trace_cross_semantics");
    assert_eq!(r["steps_done"], steps);
    assert!(r["stop"].is_null());
    // Every layer drifts (no exact layer but the embedding), within the band.
    let layers = r["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 26, "embd, 24 blocks, head");
    for l in layers {
        let worst = l["worst_nmse"].as_f64().unwrap();
        if l["layer"] == "embd" {
            assert_eq!(worst, 0.0);
            continue;
        }
        assert!(worst > 1e-5 && worst <= l["band"].as_f64().unwrap(), "{l}");
        for k in ["prefill", "early", "late"] {
            assert!(l[k].as_f64().unwrap() > 0.0, "{k}: {l}");
        }
        assert!(l["growth"].as_f64().unwrap() > 0.0, "{l}");
        assert_eq!(l["trend"].as_array().unwrap().len(), 20, "{l}");
    }
    let nmse = r["logit_nmse"].as_array().unwrap();
    assert_eq!(nmse.len(), steps + 1);
    assert!(nmse.iter().all(|x| x.as_f64().unwrap() > 0.0));
    // The teacher-forced run goes on past the first flip, at a near-tie of the reference.
    let f = &r["first_flip"];
    let step = f["step"].as_u64().expect("a token flip within the steps") as usize;
    assert!(step < steps, "{f}");
    assert_ne!(f["token_a"], f["token_b"]);
    let margin = f["ref_margin"].as_f64().unwrap();
    assert!(
        margin >= 0.0 && margin <= f["tie_threshold"].as_f64().unwrap(),
        "{f}"
    );
    assert_eq!(f["near_tie"], true);
    assert_eq!(
        f["ref_top1"].as_f64().unwrap() - f["ref_top2"].as_f64().unwrap(),
        margin
    );
    assert_eq!(r["fed"].as_array().unwrap().len(), steps + 1);
    // The last step is written as traces that `graphrun diff` finds within band too.
    let (code, text, err) = graphrun(&["diff", path(&d.join("a")), path(&d.join("b"))]);
    assert_eq!(code, 0, "{err}{text}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn gguf_and_apr_agree_exactly_at_every_node_and_step() {
    let Some(m) = common::model_05b() else { return };
    let d = scratch("live-apr");
    let apr = d.join("model.apr");
    let (code, _, err) = graphrun(&["convert", path(&m), path(&apr)]);
    assert_eq!(code, 0, "convert: {err}");
    let steps = 64;
    let (code, r, err) = live(
        &m,
        "def fib(n):",
        "interp",
        &format!("interp '{}'", path(&apr)),
        steps,
        &d.join("out"),
        &[],
    );
    assert_eq!(code, 0, "{err}: {}", r["stop"]);
    assert_eq!(r["contract"], "trace_exact");
    assert_eq!(
        (r["a"]["format"].as_str(), r["b"]["format"].as_str()),
        (Some("gguf"), Some("apr"))
    );
    assert_eq!(r["steps_done"], steps);
    let nodes = r["nodes"].as_array().unwrap();
    assert!(nodes.len() > 500, "{} nodes", nodes.len());
    for n in nodes {
        assert_eq!(n["records"], steps + 1, "{}", n["node"]);
        assert_eq!(n["worst_nmse"].as_f64(), Some(0.0), "{}", n["node"]);
        assert_eq!(n["max_abs"].as_f64(), Some(0.0), "{}", n["node"]);
    }
    assert_eq!(
        r["records"].as_u64(),
        Some(nodes.len() as u64 * (steps as u64 + 1))
    );
    assert_eq!(r["one_sided"], 0);
    assert!(r["logit_nmse"].as_array().unwrap().iter().all(|x| x == 0.0));
    assert!(r["first_flip"].is_null());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_specs_and_gpu_specs_without_a_gpu_are_clear_errors() {
    let Some(m) = common::model_05b() else { return };
    let d = scratch("live-errors");
    let run = |a: &str, b: &str| {
        graphrun(&[
            "diff",
            "--live",
            path(&m),
            "-p",
            "x",
            "--a",
            a,
            "--b",
            b,
            "-n",
            "1",
            "-o",
            path(&d),
        ])
    };
    for (a, b, want) in [
        ("interp --act f16", "interp", "--a `interp --act f16`"),
        (
            "interp",
            "interp --no-fuse",
            "--no-fuse applies to the gpu executor",
        ),
        (
            "interp",
            "interp --inject blk.99.ffn_up:scale=2",
            "blk.99.ffn_up",
        ),
        ("interp nowhere.gguf", "interp", "neither an executor"),
    ] {
        let (code, _, err) = run(a, b);
        assert_eq!(code, 2, "{a} / {b}: {err}");
        assert!(err.contains(want), "{a} / {b}: {err}");
    }
    // Positional traces and --live do not mix; --live needs its flags.
    let (code, _, err) = graphrun(&[
        "diff", "--live", "x", "y", "-p", "p", "--a", "interp", "--b", "interp",
    ]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = graphrun(&["diff", "--live", path(&m), "--a", "interp"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--prompt") || err.contains("--b"), "{err}");
    if graphrun::exec::gpu_probe::probe(0).is_err() {
        let (code, _, err) = run("gpu --no-fuse --act f32", "interp --act f32");
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("--a `gpu --no-fuse --act f32`") && err.contains("no usable GPU"),
            "{err}"
        );
    } else {
        eprintln!("SKIP the no-GPU error: a GPU is present (the device suite runs GPU specs)");
    }
    let _ = std::fs::remove_dir_all(&d);
}
