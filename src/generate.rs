//! Executor-independent generation, sampling and perplexity.

use crate::error::{Error, Result};
use crate::exec::{Engine, Observer};
use crate::model::synth::Rng;

pub use crate::numerics::argmax;

#[derive(Clone, Debug)]
pub struct SamplerConfig {
    /// 0 means greedy.
    pub temperature: f32,
    /// 0 disables top-k.
    pub top_k: usize,
    /// 1.0 disables top-p.
    pub top_p: f32,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.0,
            top_k: 40,
            top_p: 0.95,
            seed: 0x5eed,
        }
    }
}

/// Greedy when temperature is 0; otherwise top-k, then top-p (nucleus) over the softmax of
/// logits / temperature, then a draw from a seeded generator (reproducible for a seed).
pub struct Sampler {
    cfg: SamplerConfig,
    rng: Rng,
}

impl Sampler {
    pub fn new(cfg: SamplerConfig) -> Result<Sampler> {
        if !(cfg.temperature >= 0.0 && cfg.temperature.is_finite()) {
            return Err(Error::invalid(format!(
                "--temp must be ≥ 0, got {}",
                cfg.temperature
            )));
        }
        if !(cfg.top_p > 0.0 && cfg.top_p <= 1.0) {
            return Err(Error::invalid(format!(
                "--top-p must be in (0, 1], got {}",
                cfg.top_p
            )));
        }
        Ok(Sampler {
            rng: Rng::new(cfg.seed),
            cfg,
        })
    }

    pub fn is_greedy(&self) -> bool {
        self.cfg.temperature == 0.0
    }

    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.cfg.temperature == 0.0 {
            return argmax(logits) as u32;
        }
        let mut idx: Vec<usize> = (0..logits.len()).collect();
        let k = if self.cfg.top_k == 0 {
            logits.len()
        } else {
            self.cfg.top_k.min(logits.len())
        };
        idx.select_nth_unstable_by(k - 1, |&a, &b| {
            logits[b].total_cmp(&logits[a]).then(a.cmp(&b))
        });
        idx.truncate(k);
        idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        let m = logits[idx[0]];
        let mut p: Vec<f64> = idx
            .iter()
            .map(|&i| (((logits[i] - m) / self.cfg.temperature) as f64).exp())
            .collect();
        let z: f64 = p.iter().sum();
        let mut cum = 0.0;
        let mut keep = p.len();
        for (j, v) in p.iter_mut().enumerate() {
            *v /= z;
            cum += *v;
            if cum >= self.cfg.top_p as f64 {
                keep = j + 1;
                break;
            }
        }
        let total: f64 = p[..keep].iter().sum();
        let r = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let mut acc = 0.0;
        for j in 0..keep {
            acc += p[j];
            if r < acc {
                return idx[j] as u32;
            }
        }
        idx[keep - 1] as u32
    }
}

/// Timings of one generation.
#[derive(Clone, Debug, Default)]
pub struct GenStats {
    pub prompt_tokens: usize,
    pub generated: usize,
    pub prefill_secs: f64,
    pub decode_secs: f64,
    pub stopped_at_eog: bool,
}

/// Prefills `prompt` in one step, then decodes up to `max_tokens` tokens one at a time.
/// `on_token` sees each new token id (return false to stop); generation also stops at an
/// end-of-generation token (which is passed to `on_token` and counted).
pub fn generate(
    engine: &mut dyn Engine,
    prompt: &[u32],
    max_tokens: usize,
    sampler: &mut Sampler,
    is_eog: &dyn Fn(u32) -> bool,
    obs: &mut dyn Observer,
    on_token: &mut dyn FnMut(u32) -> bool,
) -> Result<GenStats> {
    if prompt.is_empty() {
        return Err(Error::invalid(
            "the prompt tokenizes to nothing; give a non-empty --prompt",
        ));
    }
    if engine.pos() + prompt.len() + max_tokens > engine.n_ctx() {
        return Err(Error::invalid(format!(
            "prompt ({} tokens) + --max-tokens {max_tokens} exceed the context size {} (raise --ctx)",
            prompt.len(),
            engine.n_ctx()
        )));
    }
    let mut st = GenStats {
        prompt_tokens: prompt.len(),
        ..Default::default()
    };
    // Greedy decoding lets the executor pick the token itself (on the GPU: on device).
    let greedy = sampler.is_greedy();
    let mut run = |engine: &mut dyn Engine, toks: &[u32], obs: &mut dyn Observer| -> Result<u32> {
        if greedy {
            engine.step_argmax(toks, obs)
        } else {
            Ok(sampler.sample(&engine.step(toks, toks.len() - 1..toks.len(), obs)?))
        }
    };
    let t0 = std::time::Instant::now();
    let mut next = run(engine, prompt, obs)?;
    st.prefill_secs = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    for i in 0..max_tokens {
        let tok = next;
        st.generated += 1;
        let go_on = on_token(tok);
        if is_eog(tok) {
            st.stopped_at_eog = true;
            break;
        }
        if !go_on || i + 1 == max_tokens {
            break;
        }
        next = run(engine, &[tok], obs)?;
    }
    st.decode_secs = t1.elapsed().as_secs_f64();
    Ok(st)
}

/// Result of a perplexity run, llama.cpp-compatible.
#[derive(Clone, Debug)]
pub struct Perplexity {
    pub ppl: f64,
    pub ppl_err: f64,
    pub chunks: usize,
    pub scored: usize,
    /// Cumulative estimate after each chunk, as llama.cpp prints.
    pub cumulative: Vec<f64>,
}

/// llama.cpp's `perplexity` method: the token stream is cut into ⌊N / ctx⌋ chunks of `ctx`
/// tokens, each evaluated independently from position 0 (no BOS added here: the caller
/// passes the model's add-BOS choice through the tokens); the logits at positions
/// ctx/2 .. ctx−2 predict tokens ctx/2+1 .. ctx−1, and NLL = logsumexp(logits) − logit[next]
/// is accumulated in f64. PPL = exp(mean NLL); the ± is the error of the mean propagated
/// through exp, as llama.cpp computes it.
pub fn perplexity(
    engine: &mut dyn Engine,
    tokens: &[u32],
    ctx: usize,
    progress: &mut dyn FnMut(usize, usize, f64),
) -> Result<Perplexity> {
    if ctx < 4 {
        return Err(Error::invalid(format!(
            "context -c {ctx} is too small (at least 4)"
        )));
    }
    let n_chunks = tokens.len() / ctx;
    if n_chunks == 0 {
        return Err(Error::invalid(format!(
            "the text has {} tokens, fewer than one chunk of {ctx}",
            tokens.len()
        )));
    }
    let first = ctx / 2;
    let (mut nll, mut nll2, mut count) = (0.0f64, 0.0f64, 0usize);
    let mut cumulative = Vec::new();
    for c in 0..n_chunks {
        let chunk = &tokens[c * ctx..(c + 1) * ctx];
        engine.reset();
        let vocab_logits = engine.step(chunk, first..ctx - 1, &mut crate::exec::NoObserver)?;
        let vocab = vocab_logits.len() / (ctx - 1 - first);
        for (i, row) in vocab_logits.chunks_exact(vocab).enumerate() {
            let next = chunk[first + i + 1] as usize;
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let lse = m + row.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
            let v = lse - row[next] as f64;
            nll += v;
            nll2 += v * v;
            count += 1;
        }
        let ppl = (nll / count as f64).exp();
        cumulative.push(ppl);
        progress(c + 1, n_chunks, ppl);
    }
    let mean = nll / count as f64;
    let var = nll2 / count as f64 - mean * mean;
    let err = if count > 1 {
        (var / (count - 1) as f64).max(0.0).sqrt()
    } else {
        0.0
    };
    let ppl = mean.exp();
    Ok(Perplexity {
        ppl,
        ppl_err: err * ppl,
        chunks: n_chunks,
        scored: count,
        cumulative,
    })
}
