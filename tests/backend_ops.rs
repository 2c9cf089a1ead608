//! GPU vs interpreter, op by op and fusion group by fusion group (in the spirit of ggml's
//! test-backend-ops): synthetic models with real Qwen2.5 shapes and the real type mix, the
//! same random inputs (and KV cache contents) fed to both executors, NMSE judged against
//! the bands of contracts/gpu_parity.yaml, with both KV cache types (f16, f32). The
//! attention kernels are also checked alone at every tile edge of the prefill kernel and at
//! decode depths up to 8,192 (`check_attention`). Skipped, with a message, without a GPU.
//! GRAPHRUN_PARITY_REPORT=FILE writes every measurement as JSON lines.

mod common;

use graphrun::contracts;
use graphrun::exec::cuda::{CudaEngine, CudaOptions, UBATCH};
use graphrun::exec::interp::Interpreter;
use graphrun::graph::{ActSemantics, KvKind, KvType, LowerOptions, NodeId, Op, lower};
use graphrun::metrics::nmse;
use graphrun::model::ModelFile;
use graphrun::model::synth::{SynthSpec, build};
use graphrun::sched::{GroupKind, Phase};
use std::collections::HashMap;
use std::io::Write;

/// A synthetic model with real shapes, cut to `layers` layers (layers 0,1 use the
/// "more bits" types, layer 2 the others, as in the real files).
fn model(preset: &str, layers: usize, seed: u64) -> ModelFile {
    let mut spec = SynthSpec::preset(preset).unwrap();
    spec.n_layer = layers;
    ModelFile::from_bytes(
        build(&spec, seed, None).to_bytes(),
        &format!("synthetic-{preset}.gguf"),
    )
    .unwrap()
}

struct Report {
    out: Option<std::fs::File>,
    failures: Vec<String>,
    count: usize,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        cfg: &str,
        act: ActSemantics,
        sched: &str,
        what: &str,
        value: &str,
        e: f64,
        band: f64,
    ) {
        self.count += 1;
        if let Some(f) = self.out.as_mut() {
            let line = serde_json::json!({"model": cfg, "act": act.name(), "schedule": sched, "kernel": what, "value": value, "nmse": e, "band": band, "ok": e <= band});
            writeln!(f, "{line}").unwrap();
        }
        if e.is_nan() || e > band {
            self.failures.push(format!(
                "{cfg} {} {sched} {what} [{value}]: NMSE {e:.3e} > band {band:.0e}",
                act.name()
            ));
        }
    }
}

fn randn(rng: &mut common::Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.normal()).collect()
}

#[allow(clippy::too_many_arguments)]
fn check_schedule(
    cfg: &str,
    m: &ModelFile,
    (act, kv): (ActSemantics, KvType),
    phase: Phase,
    t: usize,
    c: &contracts::Contract,
    rep: &mut Report,
    rng: &mut common::Rng,
) {
    let g = lower(m, LowerOptions { act, kv }).unwrap();
    let hp = g.hparams.clone();
    let opts = CudaOptions {
        device: 0,
        n_ctx: 64,
        fuse: true,
        max_logit_rows: UBATCH,
        quiet: true,
    };
    let mut gpu = CudaEngine::new(m, g.clone(), &opts).unwrap();
    let mut cpu = Interpreter::new(m, g.clone(), 64).unwrap();
    let pos = 5;
    let kvw = hp.n_head_kv * hp.head_dim;
    for layer in 0..hp.n_layer {
        for kind in [KvKind::K, KvKind::V] {
            let data = randn(rng, (pos + t) * kvw);
            gpu.write_cache(layer, kind, &data).unwrap();
            cpu.write_cache(layer, kind, &data);
        }
    }
    gpu.set_pos(pos).unwrap();
    let sched = gpu.schedule_of(phase).clone();
    let sname = format!(
        "{}-{} kv={}",
        phase.name(),
        if sched.fused { "fused" } else { "unfused" },
        kv.name()
    );
    let tokens: Vec<u32> = (0..t)
        .map(|i| (17 + 131 * i as u32) % hp.vocab_size as u32)
        .collect();
    gpu.write_tokens(&tokens).unwrap();
    let band = |key: &str| c.band(&format!("op_nmse.{key}")).unwrap();
    for (gi, gr) in sched.groups.iter().enumerate() {
        let mut values: HashMap<NodeId, Vec<f32>> = HashMap::new();
        for r in sched.reads(&g, gi) {
            let data = randn(rng, t * g.node(r).width);
            gpu.write_value(phase, r, &data).unwrap();
            values.insert(r, data);
        }
        gpu.run_group_alone(phase, gi, t)
            .unwrap_or_else(|e| panic!("{cfg} {sname} {}: {e}", gr.kernel_names()));
        cpu.eval_nodes(&gr.nodes, &tokens, pos, &mut values);
        let fused_norm = matches!(
            gr.kind,
            GroupKind::Qkv { .. }
                | GroupKind::NormGateUp { .. }
                | GroupKind::NormMatmul { .. }
                | GroupKind::GateUp { norm: Some(_), .. }
                | GroupKind::SharedInput { norm: Some(_), .. }
        );
        let b = match act {
            ActSemantics::F32 => band("f32"),
            ActSemantics::Q8 if fused_norm => band("q8_fused_norm"),
            ActSemantics::Q8 => band("q8"),
        };
        for w in sched.writes(gi) {
            let n = g.node(w);
            let got = gpu.read_value(phase, w, t * n.width).unwrap();
            rep.record(
                cfg,
                act,
                &sname,
                &gr.kernel_names(),
                &n.name,
                nmse(&got, &values[&w]),
                b,
            );
        }
        // Cache appends (fused QKV writes K and V straight into the cache). An f16 cache
        // written by a group with the norm prologue can round one element the other way
        // when the recomputed norm differs in the last bit (the f16 twin of q8's rounding
        // flips): its own band.
        let b = if kv == KvType::F16 && fused_norm {
            b.max(band("f16_cache_fused_norm"))
        } else {
            b
        };
        for &id in &gr.nodes {
            if let Op::KvAppend { layer, cache, .. } = g.node(id).op {
                let got = gpu
                    .read_cache(layer, cache, pos * kvw..(pos + t) * kvw)
                    .unwrap();
                let want = cpu.cache(layer, cache)[pos * kvw..(pos + t) * kvw].to_vec();
                rep.record(
                    cfg,
                    act,
                    &sname,
                    &gr.kernel_names(),
                    &format!("{} (cache)", g.node(id).name),
                    nmse(&got, &want),
                    b,
                );
                // Later groups (attention) read these rows: the interpreter takes the GPU's,
                // so every group is judged on the same inputs. An f16 rounding flip here is
                // this group's, judged just above; it must not reach attention's f32 band.
                let mut rows = cpu.cache(layer, cache)[..pos * kvw].to_vec();
                rows.extend_from_slice(&got);
                cpu.write_cache(layer, cache, &rows);
            }
        }
    }
}

/// The attention kernels alone, layer 0, f32 band: the prefill tile kernel at T = 1, 7, 64
/// (one tile of keys), 129 (a partial tile past two), 512 (a whole chunk) from position 0 and
/// after earlier rows (3, 700), and the second chunk of a 1,000-token prompt (488 rows after
/// 512); the decode kernel at depths that leave one split active (0, 5, 63, 64), several
/// (700) and all of them with several stages each (4,095, 8,191).
fn check_attention(
    cfg: &str,
    m: &ModelFile,
    kv: KvType,
    band: f64,
    rep: &mut Report,
    rng: &mut common::Rng,
) {
    let g = lower(
        m,
        LowerOptions {
            act: ActSemantics::F32,
            kv,
        },
    )
    .unwrap();
    let hp = g.hparams.clone();
    let n_ctx = 8192 + 8;
    let opts = CudaOptions {
        device: 0,
        n_ctx,
        fuse: true,
        max_logit_rows: UBATCH,
        quiet: true,
    };
    let mut gpu = CudaEngine::new(m, g.clone(), &opts).unwrap();
    let mut cpu = Interpreter::new(m, g.clone(), n_ctx).unwrap();
    let kvw = hp.n_head_kv * hp.head_dim;
    let cases: [(Phase, usize, usize); 14] = [
        (Phase::Prefill, 1, 0),
        (Phase::Prefill, 7, 0),
        (Phase::Prefill, 64, 0),
        (Phase::Prefill, 129, 3),
        (Phase::Prefill, 512, 0),
        (Phase::Prefill, 488, 512),
        (Phase::Prefill, 100, 700),
        (Phase::Decode, 1, 0),
        (Phase::Decode, 1, 5),
        (Phase::Decode, 1, 63),
        (Phase::Decode, 1, 64),
        (Phase::Decode, 1, 700),
        (Phase::Decode, 1, 4095),
        (Phase::Decode, 1, 8191),
    ];
    for (phase, t, pos) in cases {
        for kind in [KvKind::K, KvKind::V] {
            let data = randn(rng, (pos + t) * kvw);
            gpu.write_cache(0, kind, &data).unwrap();
            cpu.write_cache(0, kind, &data);
        }
        gpu.set_pos(pos).unwrap();
        let sched = gpu.schedule_of(phase).clone();
        let gi = sched
            .groups
            .iter()
            .position(|gr| {
                let n = g.node(gr.output());
                matches!(n.op, Op::Attention { .. }) && n.layer == Some(0)
            })
            .expect("an attention group for layer 0");
        let gr = &sched.groups[gi];
        let mut values: HashMap<NodeId, Vec<f32>> = HashMap::new();
        for r in sched.reads(&g, gi) {
            let data = randn(rng, t * g.node(r).width);
            gpu.write_value(phase, r, &data).unwrap();
            values.insert(r, data);
        }
        gpu.run_group_alone(phase, gi, t)
            .unwrap_or_else(|e| panic!("{cfg} {}: {e}", gr.kernel_names()));
        cpu.eval_nodes(&gr.nodes, &[], pos, &mut values);
        let out = gr.output();
        let got = gpu.read_value(phase, out, t * g.node(out).width).unwrap();
        rep.record(
            cfg,
            ActSemantics::F32,
            &format!("{} kv={}", phase.name(), kv.name()),
            &gr.kernel_names(),
            &format!("{} T={t} pos={pos}", g.node(out).name),
            nmse(&got, &values[&out]),
            band,
        );
    }
}

#[test]
#[ignore = "needs a GPU: run with --ignored on the device (scripts/gpu-check ops)"]
fn every_op_and_fusion_group_matches_the_interpreter() {
    common::require_gpu("backend_ops");
    let c = contracts::load("gpu_parity").unwrap();
    let mut rep = Report {
        out: std::env::var_os("GRAPHRUN_PARITY_REPORT").map(|p| std::fs::File::create(p).unwrap()),
        failures: Vec::new(),
        count: 0,
    };
    let mut rng = common::Rng(0xB0B);
    let presets: Vec<(&str, usize)> = match std::env::var("GRAPHRUN_PARITY_PRESETS") {
        Ok(s) => s
            .split(',')
            .map(|p| (p, if p == "7b" { 1 } else { 3 }))
            .map(|(p, l)| (&*Box::leak(p.to_string().into_boxed_str()), l))
            .collect(),
        Err(_) => vec![("0.5b", 3), ("1.5b", 3), ("tiny-llama", 2)],
    };
    for (preset, layers) in presets {
        let m = model(preset, layers, 3);
        for kv in [KvType::F16, KvType::F32] {
            for act in [ActSemantics::Q8, ActSemantics::F32] {
                for (phase, t) in [(Phase::Decode, 1), (Phase::Prefill, 7)] {
                    check_schedule(preset, &m, (act, kv), phase, t, &c, &mut rep, &mut rng);
                }
            }
            let band = c.band("op_nmse.f32").unwrap();
            check_attention(preset, &m, kv, band, &mut rep, &mut rng);
        }
        eprintln!(
            "backend_ops: {preset} done ({} checks so far, {} failures)",
            rep.count,
            rep.failures.len()
        );
    }
    assert!(
        rep.failures.is_empty(),
        "{} of {} checks out of band:\n{}",
        rep.failures.len(),
        rep.count,
        rep.failures.join("\n")
    );
}
