//! Executor-independent generation, sampling and perplexity.

use crate::error::{Error, Result};
use crate::exec::{Engine, Observer};

pub use crate::numerics::{argmax, check_finite_logits, greedy_token};
pub use crate::sample::{
    Sampler, SamplerConfig, check_temperature, check_top_p, sample, sample_rows,
};

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// An end-of-generation token (passed to `on_token` and counted).
    EndOfGeneration,
    /// The `max_tokens` limit was reached.
    MaxTokens,
    /// No limit was given and the context is full.
    ContextFull,
    /// `on_token` returned false.
    Caller,
}

/// Timings of one generation.
#[derive(Clone, Debug)]
pub struct GenStats {
    pub prompt_tokens: usize,
    pub generated: usize,
    pub prefill_secs: f64,
    pub decode_secs: f64,
    pub stop: Stop,
}

/// How many tokens a generation may produce: `max_tokens`, or (None) as many as the context
/// holds after the prompt. Errors when the prompt, or prompt + `max_tokens`, do not fit
/// `n_ctx` (sums checked, so no size overflows past the check).
pub fn token_budget(
    used: usize,
    prompt: usize,
    max_tokens: Option<usize>,
    n_ctx: usize,
) -> Result<usize> {
    let room = used
        .checked_add(prompt)
        .and_then(|u| n_ctx.checked_sub(u))
        .filter(|&r| r > 0)
        .ok_or_else(|| {
            Error::invalid(format!(
                "the prompt ({prompt} tokens) leaves no room in the context size {n_ctx} (raise --ctx)"
            ))
        })?;
    match max_tokens {
        None => Ok(room),
        Some(n) if n <= room => Ok(n),
        Some(n) => Err(Error::invalid(format!(
            "prompt ({prompt} tokens) + --max-tokens {n} exceed the context size {n_ctx} \
(raise --ctx, lower -n, or use -n -1 to generate until the context is full)"
        ))),
    }
}

/// Prefills `prompt` in one step, then decodes one token at a time until an
/// end-of-generation token, `max_tokens` tokens (None: until the context is full), or
/// `on_token` returns false. `on_token` sees each new token id; an end-of-generation token
/// is passed to it and counted. Sampled steps check their logits for NaN/Inf; greedy steps
/// leave that to the executor's `step_argmax`.
pub fn generate(
    engine: &mut dyn Engine,
    prompt: &[u32],
    max_tokens: Option<usize>,
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
    let limit = token_budget(engine.pos(), prompt.len(), max_tokens, engine.n_ctx())?;
    let mut st = GenStats {
        prompt_tokens: prompt.len(),
        generated: 0,
        prefill_secs: 0.0,
        decode_secs: 0.0,
        stop: if max_tokens.is_some() {
            Stop::MaxTokens
        } else {
            Stop::ContextFull
        },
    };
    if limit == 0 {
        return Ok(st);
    }
    let t0 = std::time::Instant::now();
    let first = next_token(engine, prompt, sampler, obs, 0)?;
    st.prefill_secs = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    // Every token, the prefill's and each decode step's: pass it on, then go on?
    let (mut generated, mut stop) = (0usize, st.stop);
    let mut accept = |tok: u32| -> bool {
        generated += 1;
        let go_on = on_token(tok);
        if is_eog(tok) {
            stop = Stop::EndOfGeneration;
            return false;
        }
        if !go_on {
            stop = Stop::Caller;
            return false;
        }
        generated < limit
    };
    if accept(first) {
        decode_tokens(engine, first, limit - 1, sampler, obs, 1, &mut accept)?;
    }
    st.generated = generated;
    st.stop = stop;
    st.decode_secs = t1.elapsed().as_secs_f64();
    Ok(st)
}

/// Up to `n` one-token decode steps after `first` (steps `step0`, `step0 + 1`, … for
/// messages), each fed the token the step before gave and choosing its own as `next_token`
/// does; `on_token` sees each token, and false stops after it. Returns the steps run. The
/// executor's own loop (`Engine::decode_chain`: on the GPU, pipelined) where it has one,
/// else `next_token` step by step; the tokens are the same either way.
pub fn decode_tokens(
    engine: &mut dyn Engine,
    first: u32,
    n: usize,
    sampler: &mut Sampler,
    obs: &mut dyn Observer,
    step0: usize,
    on_token: &mut dyn FnMut(u32) -> bool,
) -> Result<usize> {
    if let Some(r) = engine.decode_chain(first, n, sampler, obs, on_token) {
        return r;
    }
    let mut tok = first;
    for i in 0..n {
        tok = next_token(engine, &[tok], sampler, obs, step0 + i)?;
        if !on_token(tok) {
            return Ok(i + 1);
        }
    }
    Ok(n)
}

/// Runs `toks` as step `step` and picks the next token. Greedy decoding lets the executor
/// pick it itself (`step_argmax`; on the GPU: on the device); sampled decoding takes one
/// draw from `sampler` and lets the executor sample with it (`step_sample`; on the GPU: in
/// the captured decode graph), or samples the step's logits on the host with the same draw
/// (their NaN/Inf an error). The draws, and so the tokens for the same logits, are the same
/// either way.
pub fn next_token(
    engine: &mut dyn Engine,
    toks: &[u32],
    sampler: &mut Sampler,
    obs: &mut dyn Observer,
    step: usize,
) -> Result<u32> {
    if sampler.is_greedy() {
        return engine.step_argmax(toks, obs);
    }
    let u = sampler.draw();
    if let [tok] = toks
        && let Some(r) = engine.step_sample(*tok, sampler.config(), u, obs)
    {
        return r;
    }
    let logits = engine.step(toks, toks.len() - 1..toks.len(), obs)?;
    check_finite_logits(&logits, &format!("of step {step}"))?;
    Ok(sample(&logits, sampler.config(), u))
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
/// through exp, as llama.cpp computes it. A row of logits holding NaN/Inf is an error (it
/// would otherwise be skipped by the max and give a finite, wrong estimate).
pub fn perplexity(
    engine: &mut dyn Engine,
    tokens: &[u32],
    ctx: usize,
    obs: &mut dyn Observer,
    progress: &mut dyn FnMut(usize, usize, f64),
) -> Result<Perplexity> {
    if ctx < 4 {
        return Err(Error::invalid(format!(
            "-c {ctx}: chunks must hold at least 4 tokens"
        )));
    }
    let n_chunks = tokens.len() / ctx;
    if n_chunks == 0 {
        return Err(Error::invalid(format!(
            "the text has {} tokens, fewer than one chunk of {ctx} (lower -c)",
            tokens.len()
        )));
    }
    let first = ctx / 2;
    let (mut nll, mut nll2, mut count) = (0.0f64, 0.0f64, 0usize);
    let mut cumulative = Vec::new();
    for c in 0..n_chunks {
        let chunk = &tokens[c * ctx..(c + 1) * ctx];
        engine.reset();
        let vocab_logits = engine.step(chunk, first..ctx - 1, obs)?;
        let vocab = vocab_logits.len() / (ctx - 1 - first);
        for (i, row) in vocab_logits.chunks_exact(vocab).enumerate() {
            check_finite_logits(
                row,
                &format!("of chunk {} at position {}", c + 1, first + i),
            )?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_budget_checks_every_sum() {
        assert_eq!(token_budget(0, 5, None, 16).unwrap(), 11);
        assert_eq!(token_budget(2, 5, Some(9), 16).unwrap(), 9);
        assert!(token_budget(0, 5, Some(12), 16).is_err());
        assert!(token_budget(0, 16, None, 16).is_err());
        assert!(token_budget(0, 5, Some(usize::MAX), 8).is_err());
        assert!(token_budget(usize::MAX, 5, None, 8).is_err());
    }

    #[test]
    fn non_finite_logits_are_refused() {
        assert!(greedy_token(&[0.0, 1.0]).is_ok());
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let e = greedy_token(&[0.0, bad, 1.0]).unwrap_err().to_string();
            assert!(e.contains("graphrun trace"), "{e}");
        }
    }
}
