//! The pipelined decode loop (`Engine::decode_chain`, src/exec/cuda/chain.rs) against the
//! same engine stepping one token at a time (`generate::next_token`: the host uploads each
//! token and reads each back before the next step): the same tokens and positions, greedy
//! and sampled on the device; a run stopped by its caller (one step already queued past
//! it) leaves the cache, the position and the sampler as if that step never ran, so going
//! on, step by step or chained, gives the reference's tokens; a run that would pass the
//! context is refused before anything runs. Synthetic presets (the tiny one and the 0.5B's
//! shapes, 151,936-token vocabulary). GPU-only: `#[ignore]`d, run with `--ignored` on the
//! device.

mod common;

use graphrun::exec::cuda::CudaEngine;
use graphrun::exec::{Engine, NoObserver};
use graphrun::generate::{Sampler, SamplerConfig, decode_tokens, next_token};
use graphrun::graph::ActSemantics;
use graphrun::model::ModelFile;

const PROMPT: usize = 20;
const STEPS: usize = 40;
const STOP: usize = 10;

fn engine(m: &ModelFile, n_ctx: usize) -> CudaEngine<'_> {
    common::fused_f16_engine(m, ActSemantics::Q8, n_ctx)
}

fn prompt(vocab: usize) -> Vec<u32> {
    (0..PROMPT as u32)
        .map(|i| (100 + i * 7919) % vocab as u32)
        .collect()
}

/// Clears the cache and prefills the prompt; the prompt's token.
fn prefill(e: &mut CudaEngine, p: &[u32], s: &mut Sampler) -> u32 {
    e.reset();
    next_token(e, p, s, &mut NoObserver, 0).unwrap()
}

/// `n` steps after `first`, one token at a time.
fn stepwise(e: &mut CudaEngine, first: u32, n: usize, s: &mut Sampler) -> Vec<u32> {
    let mut tok = first;
    (0..n)
        .map(|i| {
            tok = next_token(e, &[tok], s, &mut NoObserver, i + 1).unwrap();
            tok
        })
        .collect()
}

/// `n` steps after `first` through `decode_tokens`, stopped by the caller after `stop`
/// tokens; the tokens passed on.
fn chained(e: &mut CudaEngine, first: u32, n: usize, stop: usize, s: &mut Sampler) -> Vec<u32> {
    let mut got = Vec::new();
    let mut take = |t: u32| {
        got.push(t);
        got.len() < stop
    };
    let ran = decode_tokens(e, first, n, s, &mut NoObserver, 1, &mut take).unwrap();
    assert_eq!(ran, got.len(), "steps reported = tokens passed on");
    got
}

#[test]
#[ignore = "needs a GPU: run with --ignored on the device"]
fn chained_decode_gives_the_stepwise_tokens() {
    common::require_gpu("gpu_chain");
    let greedy = SamplerConfig {
        temperature: 0.0,
        top_k: 40,
        top_p: 0.95,
        seed: 7,
    };
    let sampled = SamplerConfig {
        temperature: 0.9,
        top_k: 40,
        top_p: 0.95,
        seed: 7,
    };
    for preset in ["tiny", "0.5b"] {
        let m = common::tiny_model(preset, 3);
        let mut e = engine(&m, 256);
        let vocab = e.graph().node(e.graph().output()).width;
        let p = prompt(vocab);
        let mut kinds = Vec::new();
        for cfg in [&greedy, &sampled] {
            let what = format!("{preset} temp {}", cfg.temperature);
            assert!(
                cfg.temperature == 0.0 || e.samples_on_device(cfg),
                "{what}: the sampled case must sample on the device"
            );
            // The reference: step by step, STEPS tokens.
            let mut s = Sampler::new(cfg.clone()).unwrap();
            let first = prefill(&mut e, &p, &mut s);
            let want = stepwise(&mut e, first, STEPS, &mut s);
            assert_eq!(e.pos(), PROMPT + STEPS, "{what}: reference position");

            // Chained, the whole run.
            let mut s = Sampler::new(cfg.clone()).unwrap();
            assert_eq!(prefill(&mut e, &p, &mut s), first, "{what}: prefill");
            let got = chained(&mut e, first, STEPS, usize::MAX, &mut s);
            assert_eq!(got, want, "{what}: chained tokens");
            assert_eq!(e.pos(), PROMPT + STEPS, "{what}: chained position");

            // Stopped by the caller after STOP tokens (one step queued past them), then on
            // step by step: the reference's tokens, so the queued step left no trace in the
            // cache, the position or the sampler's draws.
            let mut s = Sampler::new(cfg.clone()).unwrap();
            prefill(&mut e, &p, &mut s);
            let head = chained(&mut e, first, STEPS, STOP, &mut s);
            assert_eq!(head, want[..STOP], "{what}: stopped run");
            assert_eq!(e.pos(), PROMPT + STOP, "{what}: stopped run's position");
            let tail = stepwise(&mut e, head[STOP - 1], STEPS - STOP, &mut s);
            assert_eq!(tail, want[STOP..], "{what}: step by step after a stop");

            // Stopped, then chained again.
            let mut s = Sampler::new(cfg.clone()).unwrap();
            prefill(&mut e, &p, &mut s);
            let head = chained(&mut e, first, STEPS, STOP, &mut s);
            let tail = chained(&mut e, head[STOP - 1], STEPS - STOP, usize::MAX, &mut s);
            assert_eq!(tail, want[STOP..], "{what}: chained after a stop");
            assert_eq!(e.pos(), PROMPT + STEPS, "{what}: position after both runs");
            kinds.push(want);
        }
        assert_ne!(
            kinds[0], kinds[1],
            "{preset}: the sampled run left the argmax"
        );
    }
}

#[test]
#[ignore = "needs a GPU: run with --ignored on the device"]
fn chained_decode_fills_the_context_and_refuses_past_it() {
    common::require_gpu("gpu_chain");
    let m = common::tiny_model("tiny", 3);
    let n_ctx = 64;
    let mut e = engine(&m, n_ctx);
    let vocab = e.graph().node(e.graph().output()).width;
    let p = prompt(vocab);
    let cfg = SamplerConfig {
        temperature: 0.0,
        top_k: 40,
        top_p: 0.95,
        seed: 1,
    };
    let mut s = Sampler::new(cfg.clone()).unwrap();
    let first = prefill(&mut e, &p, &mut s);
    let room = n_ctx - PROMPT;
    let err = decode_tokens(
        &mut e,
        first,
        room + 1,
        &mut s,
        &mut NoObserver,
        1,
        &mut |_| true,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("context length exceeded"), "{err}");
    assert_eq!(e.pos(), PROMPT, "a refused run runs nothing");
    let want = stepwise(&mut e, first, room, &mut s);
    prefill(&mut e, &p, &mut s);
    let got = chained(&mut e, first, room, usize::MAX, &mut s);
    assert_eq!(got, want, "a run to the context's end");
    assert_eq!(e.pos(), n_ctx);
}
