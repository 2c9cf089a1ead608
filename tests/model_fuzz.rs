//! A fuzz suite that mutates *models*, not bytes (issue #10): starting from the tiny
//! synthetic Qwen2 and Llama models, each case changes tensor shapes, types and counts,
//! hyperparameters (values and value types), tokenizer arrays and the architecture, writes
//! the result as GGUF or APR, and sends it through what `inspect` reads, lowering, the
//! fusion scheduler, the tokenizer and a one-token interpreter run. Every case must end in
//! a result or an error naming the file — never a panic — within a second, and allocate no
//! more than the file's own size plus a small constant (a counting allocator measures it).
//! A sample of the files also goes through the real binary (`inspect`, `run --interp`).
//!
//! `GRAPHRUN_FUZZ_CASES` changes the number of cases (default 10,000: about 5 s in release
//! on two cores); `GRAPHRUN_FUZZ_VERBOSE=1` prints every refused case with its error.

mod common;

use common::Rng;
use graphrun::exec::NoObserver;
use graphrun::exec::interp::Interpreter;
use graphrun::graph::{ActSemantics, LowerOptions, lower};
use graphrun::model::ModelFile;
use graphrun::model::apr_write::{to_apr_bytes, to_apr_bytes_with_json, w1_metadata_json};
use graphrun::model::gguf::{GgufWriter, MetaArray, MetaValue};
use graphrun::model::synth::{self, SynthSpec, build, random_tensor};
use graphrun::quant::GgmlType;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Counts live heap bytes and their peak.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(now, Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, n) };
        if !q.is_null() {
            if n > l.size() {
                grew(n - l.size());
            } else {
                LIVE.fetch_sub(l.size() - n, Relaxed);
            }
        }
        q
    }
}
#[global_allocator]
static ALLOC: Counting = Counting;

/// The tests of this file run one at a time, so the allocation peak is one case's.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `f`; returns its result and the peak of heap bytes it held above the start.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let r = f();
    (r, PEAK.load(Relaxed).saturating_sub(base))
}

/// Heap a case may use beyond the file's size: graph, KV cache of 4 positions,
/// activations, tokenizer tables and rayon's per-thread buffers of the tiny models.
const SLACK: usize = 4 << 20;

const TYPES: [GgmlType; 15] = GgmlType::ALL;

fn pick<'a, T>(rng: &mut Rng, xs: &'a [T]) -> &'a T {
    &xs[rng.below(xs.len() as u64) as usize]
}

/// Fresh data for a tensor of `ne` (innermost first) and type `ty`: well-formed blocks when
/// the shape holds whole blocks, else bytes of the nearest size (the reader must refuse it).
fn data_for(ty: GgmlType, ne: &[u64], rng: &mut Rng) -> Vec<u8> {
    let n: u64 = ne.iter().product();
    match ty.bytes_for(n) {
        Some(b) if b <= 1 << 22 => random_tensor(ty, n, 0.1, &mut synth::Rng::new(rng.next_u64())),
        _ => vec![0; (n as usize).min(1 << 16)],
    }
}

fn arch_of(w: &GgufWriter) -> String {
    w.metadata
        .iter()
        .find(|(k, _)| k == "general.architecture")
        .and_then(|(_, v)| v.as_str())
        .unwrap_or("qwen2")
        .to_string()
}

/// A hyperparameter value near `v` or of the wrong kind.
fn odd_value(rng: &mut Rng, v: u64) -> MetaValue {
    match rng.below(12) {
        0 => MetaValue::U32(0),
        1 => MetaValue::U32(1),
        2 => MetaValue::U64(v.saturating_sub(1)),
        3 => MetaValue::U64(v + 1),
        4 => MetaValue::U64(v * 2),
        5 => MetaValue::U64(v / 2),
        6 => MetaValue::U64(1 << 31),
        7 => MetaValue::U64(1 << 63),
        8 => MetaValue::I32(-1),
        9 => MetaValue::F32([f32::NAN, f32::INFINITY, -1.0, 1e-30][rng.below(4) as usize]),
        10 => MetaValue::Str("12".into()),
        _ => MetaValue::Array(MetaArray::U32(vec![v as u32; 2])),
    }
}

/// One random change to the model.
fn mutate(w: &mut GgufWriter, rng: &mut Rng) -> String {
    let arch = arch_of(w);
    match rng.below(10) {
        // A hyperparameter, present or added.
        0..=2 => {
            let keys = [
                "block_count",
                "context_length",
                "embedding_length",
                "feed_forward_length",
                "attention.head_count",
                "attention.head_count_kv",
                "attention.key_length",
                "attention.value_length",
                "rope.dimension_count",
                "rope.freq_base",
                "attention.layer_norm_rms_epsilon",
                "vocab_size",
            ];
            let key = format!("{arch}.{}", pick(rng, &keys));
            let old = w
                .metadata
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v.as_u64())
                .unwrap_or(64);
            let v = odd_value(rng, old);
            let what = format!("{key} = {}", v.summary());
            w.metadata.retain(|(k, _)| *k != key);
            if rng.below(8) != 0 {
                w.kv(&key, v);
            }
            what
        }
        // A tensor's shape.
        3 | 4 => {
            let i = rng.below(w.tensors.len() as u64) as usize;
            let (name, ne, ty, _) = w.tensors[i].clone();
            let mut ne = ne;
            let be = ty.block_elems() as u64;
            match rng.below(6) {
                0 if ne.len() == 2 => ne.swap(0, 1),
                1 => ne[0] = (ne[0] + be).max(be),
                2 => ne[0] = ne[0].saturating_sub(be).max(be),
                3 => {
                    let d = ne.len() - 1;
                    ne[d] = [1, 2, 3, 64, ne[d] + 1, ne[d] * 2][rng.below(6) as usize];
                }
                4 if ne.len() > 1 => {
                    ne.pop();
                }
                _ => ne.push(1 + rng.below(3)),
            }
            w.tensors[i] = (name.clone(), ne.clone(), ty, data_for(ty, &ne, rng));
            format!("{name} ne {ne:?}")
        }
        // A tensor's type.
        5 => {
            let i = rng.below(w.tensors.len() as u64) as usize;
            let ty = *pick(rng, &TYPES);
            let (name, ne, _, _) = w.tensors[i].clone();
            w.tensors[i] = (name.clone(), ne.clone(), ty, data_for(ty, &ne, rng));
            format!("{name} as {ty}")
        }
        // A tensor removed, or an extra one (a copy under another block's name, a bias, a
        // stranger).
        6 => {
            let i = rng.below(w.tensors.len() as u64) as usize;
            let t = w.tensors[i].clone();
            match rng.below(3) {
                0 => {
                    w.tensors.remove(i);
                    format!("{} removed", t.0)
                }
                1 => {
                    let name =
                        t.0.replacen("blk.0.", "blk.2.", 1)
                            .replacen("blk.1.", "blk.7.", 1);
                    let name = if name == t.0 {
                        format!("extra.{name}")
                    } else {
                        name
                    };
                    w.tensor(&name, &t.1, t.2, t.3);
                    format!("{name} added")
                }
                _ => {
                    let (name, ne) = if w.tensors.iter().any(|t| t.0 == "blk.0.attn_q.bias") {
                        ("rope_freqs.weight", [32u64])
                    } else {
                        ("blk.0.attn_q.bias", [256])
                    };
                    let data = data_for(GgmlType::F32, &ne, rng);
                    w.tensor(name, &ne, GgmlType::F32, data);
                    format!("{name} added")
                }
            }
        }
        // The tokenizer.
        7 => {
            let n = [0usize, 1, 300, 511, 513, 700][rng.below(6) as usize];
            let keep: Vec<(String, MetaValue)> = synth::tokenizer_kv(n.max(1), None)
                .into_iter()
                .map(|(k, v)| match (k.as_str(), n) {
                    ("tokenizer.ggml.tokens", 0) => {
                        (k, MetaValue::Array(MetaArray::Str(Default::default())))
                    }
                    ("tokenizer.ggml.token_type", _) if rng.below(3) == 0 => {
                        (k, MetaValue::Array(MetaArray::I32(vec![9; n])))
                    }
                    ("tokenizer.ggml.bos_token_id", _) if rng.below(3) == 0 => {
                        (k, MetaValue::U32(n as u32 + rng.below(3) as u32))
                    }
                    ("tokenizer.ggml.merges", _) if rng.below(3) == 0 => (
                        k,
                        MetaValue::Array(MetaArray::Str(
                            ["Ġ", "a b c", " ", "t h"].into_iter().collect(),
                        )),
                    ),
                    _ => (k, v),
                })
                .collect();
            w.metadata.retain(|(k, _)| !k.starts_with("tokenizer."));
            for (k, v) in keep {
                w.kv(&k, v);
            }
            format!("tokenizer of {n}")
        }
        // The architecture.
        8 => {
            let to = *pick(rng, &["qwen2", "llama", "qwen2", "llama", "gpt2", ""]);
            for (k, v) in w.metadata.iter_mut() {
                if let Some(rest) = k.strip_prefix(&format!("{arch}.")) {
                    *k = format!("{to}.{rest}");
                }
                if k == "general.architecture" {
                    *v = MetaValue::Str(to.into());
                }
            }
            format!("architecture {to:?}")
        }
        // Weights full of NaN, or the alignment.
        _ => {
            if rng.below(2) == 0 {
                let i = rng.below(w.tensors.len() as u64) as usize;
                w.tensors[i].3.iter_mut().for_each(|b| *b = 0xFF);
                format!("{} all 0xFF", w.tensors[i].0)
            } else {
                let a = *pick(rng, &[1u32, 2, 8, 64, 3]);
                w.kv("general.alignment", MetaValue::U32(a));
                w.alignment = if a.is_power_of_two() { a as u64 } else { 32 };
                format!("alignment {a}")
            }
        }
    }
}

/// How far one case got.
#[derive(Debug, Default)]
struct Outcome {
    opened: bool,
    lowered: bool,
    ran: bool,
}

/// Sends one file through what `inspect` reads, lowering (both activation semantics), the
/// scheduler, the tokenizer and a one-token interpreter step, recording how far it got.
fn exercise(bytes: Vec<u8>, name: &str, out: &mut Outcome) -> Result<(), String> {
    let m = ModelFile::from_bytes(bytes, name).map_err(|e| e.to_string())?;
    out.opened = true;
    // inspect: summaries of everything it prints.
    let _ = serde_json::to_string(&m.hparams).unwrap();
    let _ = serde_json::to_string(&m.tokenizer).unwrap();
    let _ = m.bytes_by_type();
    if let graphrun::model::Metadata::Gguf(kv) = &m.metadata {
        kv.iter().for_each(|(_, v)| drop(v.summary()));
    }
    if let Some(t) = m.tensors.first() {
        let _ = m.dequantize_tensor(t);
    }
    let g = lower(
        &m,
        LowerOptions {
            act: ActSemantics::F32,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let g = match lower(&m, LowerOptions::default()) {
        Ok(g2) => {
            assert_eq!(g2.len(), g.len());
            g2
        }
        Err(e) => panic!("lowered with f32 but not q8: {e}"),
    };
    out.lowered = true;
    // Scheduling either phase succeeds or names the tensor whose type has no GPU kernels.
    for phase in [
        graphrun::sched::Phase::Decode,
        graphrun::sched::Phase::Prefill,
    ] {
        if let Err(e) = graphrun::sched::schedule(&g, phase, true) {
            assert!(e.to_string().contains("has no GPU kernels"), "{e}");
        }
    }
    let vocab = g.hparams.vocab_size;
    let tok = graphrun::tokenizer::Tokenizer::new(&m.tokenizer, name).map_err(|e| e.to_string());
    let ids = match &tok {
        Ok(t) => t.encode("hi there", false),
        Err(_) => vec![],
    };
    let first = ids.first().copied().unwrap_or(0);
    assert!(
        ids.iter().all(|&i| (i as usize) < vocab),
        "tokenizer produced an id outside the {vocab}-row embedding: {ids:?}"
    );
    let mut it = Interpreter::new(&m, g, 4).map_err(|e| e.to_string())?;
    let logits = it
        .step(&[first], 0..1, &mut NoObserver)
        .map_err(|e| e.to_string())?;
    assert_eq!(logits.len(), vocab);
    // An id past the vocabulary is an error, not an out-of-bounds read.
    assert!(it.step(&[vocab as u32], 0..1, &mut NoObserver).is_err());
    tok?;
    out.ran = true;
    Ok(())
}

/// The W1 metadata JSON of a model with one value replaced by something odd.
fn odd_json(m: &ModelFile, rng: &mut Rng) -> String {
    let mut j: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&w1_metadata_json(m).unwrap()).unwrap();
    let keys: Vec<String> = j.keys().cloned().collect();
    let k = pick(rng, &keys).clone();
    let v: serde_json::Value = match rng.below(9) {
        0 => serde_json::Value::Null,
        1 => 0.into(),
        2 => (1u64 << 63).into(),
        3 => (-1).into(),
        4 => 1.5.into(),
        5 => "x".into(),
        6 => serde_json::json!([1, 2, 3]),
        7 => serde_json::json!({"a": 1}),
        _ => {
            j.remove(&k);
            return serde_json::Value::Object(j).to_string();
        }
    };
    j.insert(k, v);
    serde_json::Value::Object(j).to_string()
}

fn cases() -> usize {
    std::env::var("GRAPHRUN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

#[test]
fn thousands_of_mutated_models_never_panic_hang_or_overallocate() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bases: Vec<GgufWriter> = ["tiny", "tiny-llama"]
        .iter()
        .map(|p| build(&SynthSpec::preset(p).unwrap(), 9, None))
        .collect();
    let mut rng = Rng(0x5EED_F00D);
    let n = cases();
    let (mut opened, mut lowered, mut ran, mut apr) = (0, 0, 0, 0);
    let mut slowest = (Duration::ZERO, String::new());
    let mut worst = (0f64, String::new());
    let t_all = Instant::now();
    for i in 0..n {
        let mut w = pick(&mut rng, &bases).clone();
        let steps: Vec<String> = (0..1 + rng.below(3))
            .map(|_| mutate(&mut w, &mut rng))
            .collect();
        let mut bytes = w.to_bytes();
        let mut name = format!("case{i}.gguf");
        // A third of the cases go through APR: the same model converted (when it opens),
        // or with one metadata value made odd.
        if rng.below(3) == 0
            && let Ok(m) = ModelFile::from_bytes(bytes.clone(), "src.gguf")
        {
            bytes = if rng.below(2) == 0 {
                to_apr_bytes(&m).unwrap()
            } else {
                to_apr_bytes_with_json(&m, &odd_json(&m, &mut rng)).unwrap()
            };
            name = format!("case{i}.apr");
            apr += 1;
        }
        let size = bytes.len();
        let what = format!("case {i} ({name}): {}", steps.join("; "));
        let t0 = Instant::now();
        let mut o = Outcome::default();
        let (r, peak) = measured(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                exercise(bytes, &name, &mut o)
            }))
        });
        let dt = t0.elapsed();
        let r = r.unwrap_or_else(|_| panic!("{what}: panicked"));
        if let Err(e) = &r
            && std::env::var_os("GRAPHRUN_FUZZ_VERBOSE").is_some()
        {
            eprintln!(
                "ERR [{}{}{}] {what} => {e}",
                o.opened as u8, o.lowered as u8, o.ran as u8
            );
        }
        if let Err(e) = r {
            assert!(
                e.starts_with(&name),
                "{what}: error does not name the file: {e}"
            );
            assert!(
                e.contains('`'),
                "{what}: error names no field or tensor: {e}"
            );
        }
        opened += o.opened as usize;
        lowered += o.lowered as usize;
        ran += o.ran as usize;
        assert!(
            peak <= size + SLACK,
            "{what}: allocated {peak} bytes for a {size}-byte file"
        );
        let ratio = peak as f64 / size as f64;
        if ratio > worst.0 {
            worst = (ratio, what.clone());
        }
        assert!(dt < Duration::from_secs(2), "{what}: took {dt:?}");
        if dt > slowest.0 {
            slowest = (dt, what);
        }
    }
    eprintln!(
        "{n} mutated models ({apr} as APR) in {:.1} s: {opened} opened, {lowered} lowered, {ran} ran a token; slowest {:?} ({}); most heap per file byte {:.2} ({})",
        t_all.elapsed().as_secs_f64(),
        slowest.0,
        slowest.1,
        worst.0,
        worst.1
    );
    // The mutations must reach every stage, not stop at the reader.
    assert!(lowered > n / 20 && ran > n / 20, "too few cases got far");
    assert!(opened > lowered, "no case failed in lowering");
}

#[test]
fn a_sample_of_mutated_models_through_the_binary_exits_0_or_2() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::scratch("model-fuzz");
    let base = build(&SynthSpec::preset("tiny").unwrap(), 4, None);
    let mut rng = Rng(77);
    let mut refused = 0;
    for i in 0..40 {
        let mut w = base.clone();
        let what = mutate(&mut w, &mut rng);
        let p = dir.join(format!("m{i}.gguf"));
        std::fs::write(&p, w.to_bytes()).unwrap();
        let path = p.to_str().unwrap();
        for args in [
            vec!["inspect", path],
            vec!["run", path, "--interp", "-n", "1", "-p", "hi", "--ctx", "8"],
        ] {
            let (code, _, err) = common::graphrun(&args);
            assert!(
                code == 0 || code == 2,
                "{what}: {args:?} exit {code}: {err}"
            );
            if code == 2 {
                assert!(err.contains(path), "{what}: {args:?}: {err}");
                refused += 1;
            }
        }
    }
    assert!(refused > 10, "only {refused} refusals");
}
