//! The interpreter against llama.cpp's reference outputs (contract `llama_cpp_reference`):
//! first-position logits, greedy continuations up to near-ties, teacher-forced logits, from
//! GGUF and APR, with q8 and f32 activation semantics, and perplexity.

mod common;

use common::ids;
use graphrun::contracts::{self, Contract};
use graphrun::exec::NoObserver;
use graphrun::exec::interp::Interpreter;
use graphrun::generate::argmax;
use graphrun::graph::{ActSemantics, LowerOptions, lower};
use graphrun::model::ModelFile;
use serde_json::Value;

fn top_k(x: &[f32], k: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..x.len() as u32).collect();
    idx.sort_by(|&a, &b| x[b as usize].total_cmp(&x[a as usize]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

fn ref_logits(id: u64) -> Vec<f32> {
    let p = common::reference_dir().join(format!("logits/p{id:02}_pos0.f32le"));
    std::fs::read(&p)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Checks one prompt; returns a summary line (printed by the caller for the log).
fn check_prompt(
    m: &ModelFile,
    act: ActSemantics,
    p: &Value,
    c: &Contract,
    f32_alt: bool,
) -> String {
    let id = p["id"].as_u64().unwrap();
    let prompt = ids(&p["prompt_token_ids"]);
    let steps = p["per_step"].as_array().unwrap();
    let margin = |k: usize| steps[k]["top1_minus_top2"].as_f64().unwrap();
    let top5 = |k: usize| -> Vec<(u32, f32)> {
        steps[k]["top5"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e[0].as_u64().unwrap() as u32, e[1].as_f64().unwrap() as f32))
            .collect()
    };
    let (tie, later_max) = (
        c.band("near_tie_margin").unwrap(),
        c.band("later_logits_max_abs").unwrap() as f32,
    );
    let mut it = Interpreter::new(
        m,
        lower(
            m,
            LowerOptions {
                act,
                ..Default::default()
            },
        )
        .unwrap(),
        512,
    )
    .unwrap();

    // First position: the logits after the prompt.
    let first = it
        .step(&prompt, prompt.len() - 1..prompt.len(), &mut NoObserver)
        .unwrap();
    let (want_top10, alt_name): (Vec<u32>, &str) = if f32_alt {
        let alt = &p["alternative_llamacpp_paths"]["llamacpp_dequantized_f32_weights"];
        (
            alt["first_position_top10"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e[0].as_u64().unwrap() as u32)
                .collect(),
            "dequantized-f32",
        )
    } else {
        (
            p["first_position"]["top10"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e[0].as_u64().unwrap() as u32)
                .collect(),
            "reference",
        )
    };
    let ours10 = top_k(&first, 10);
    assert_eq!(
        ours10[0], want_top10[0],
        "p{id}: top-1 at the first position differs from llama.cpp ({alt_name})"
    );
    let shared = ours10.iter().filter(|t| want_top10.contains(t)).count();
    assert!(
        shared as f64 >= c.band("top10_shared_min").unwrap(),
        "p{id}: only {shared} of the top-10 ids shared"
    );
    let mut line = format!("p{id} {}: top10 shared {shared}", act.name());
    if !f32_alt {
        let r = ref_logits(id);
        let max_abs = first
            .iter()
            .zip(&r)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max) as f64;
        let mean_abs = first
            .iter()
            .zip(&r)
            .map(|(a, b)| (a - b).abs() as f64)
            .sum::<f64>()
            / r.len() as f64;
        assert!(
            max_abs <= c.band("first_position_logits_max_abs").unwrap(),
            "p{id}: first-position max-abs {max_abs}"
        );
        assert!(
            mean_abs <= c.band("first_position_logits_mean_abs").unwrap(),
            "p{id}: first-position mean-abs {mean_abs}"
        );
        line += &format!(", first-position logits max-abs {max_abs:.3} mean-abs {mean_abs:.4}");
    } else {
        let alt = &p["alternative_llamacpp_paths"]["llamacpp_dequantized_f32_weights"]["first_position_top10"];
        let worst = alt
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (first[e[0].as_u64().unwrap() as usize] - e[1].as_f64().unwrap() as f32).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst as f64 <= c.band("first_position_logits_max_abs").unwrap(),
            "p{id}: f32 top-10 logits differ by {worst}"
        );
        line += &format!(", top-10 logits max-abs vs dequantized-f32 path {worst:.3}");
    }

    // Greedy continuation, compared up to the first divergence.
    let want = if f32_alt {
        ids(
            &p["alternative_llamacpp_paths"]["llamacpp_dequantized_f32_weights"]["generated_token_ids"],
        )
    } else {
        ids(&p["generated_token_ids"])
    };
    let mut logits = first.clone();
    let mut agree = want.len();
    for (k, &w) in want.iter().enumerate() {
        let tok = argmax(&logits) as u32;
        if tok != w {
            let t5 = top5(k);
            let ok = margin(k) < tie && (tok == t5[1].0 || tok == t5[0].0);
            assert!(
                ok,
                "p{id}: greedy token {k} is {tok}, llama.cpp chose {w}; reference margin {} (near-tie below {tie} required) and top-2 {}",
                margin(k),
                t5[1].0
            );
            agree = k;
            break;
        }
        logits = it.step(&[tok], 0..1, &mut NoObserver).unwrap();
    }
    line += &format!(", greedy agreement {agree}/{}", want.len());

    // Teacher forcing on the reference tokens (q8 vs the reference itself).
    if !f32_alt {
        it.reset();
        let generated = ids(&p["generated_token_ids"]);
        let mut seq = prompt.clone();
        seq.extend_from_slice(&generated[..generated.len() - 1]);
        let n = seq.len();
        let rows = it.step(&seq, prompt.len() - 1..n, &mut NoObserver).unwrap();
        let vocab = rows.len() / generated.len();
        let mut worst = 0.0f32;
        for (k, row) in rows.chunks_exact(vocab).enumerate() {
            let t5 = top5(k);
            for &(tid, l) in &t5 {
                worst = worst.max((row[tid as usize] - l).abs());
            }
            if margin(k) >= tie {
                assert_eq!(
                    argmax(row) as u32,
                    t5[0].0,
                    "p{id}: teacher-forced top-1 differs at step {k} (margin {})",
                    margin(k)
                );
            }
        }
        assert!(
            worst <= later_max,
            "p{id}: teacher-forced top-5 logits differ by {worst}"
        );
        line += &format!(", teacher-forced top-5 max-abs {worst:.3}");
    }
    line
}

fn check_all(m: &ModelFile, act: ActSemantics, f32_alt: bool) {
    let c = contracts::load("reference").unwrap();
    let g = common::reference_json("generations.json");
    for p in g["prompts"].as_array().unwrap() {
        eprintln!("{}", check_prompt(m, act, p, &c, f32_alt));
    }
}

#[test]
fn q8_gguf_matches_llama_cpp_on_every_prompt() {
    let Some(p) = common::model_05b() else { return };
    check_all(&ModelFile::open(p).unwrap(), ActSemantics::Q8, false);
}

#[test]
fn q8_apr_matches_llama_cpp_on_every_prompt() {
    let Some(p) = common::model_05b() else { return };
    let g = ModelFile::open(p).unwrap();
    let apr = ModelFile::from_bytes(
        graphrun::model::apr_write::to_apr_bytes(&g).unwrap(),
        "0.5b.apr",
    )
    .unwrap();
    drop(g);
    check_all(&apr, ActSemantics::Q8, false);
}

#[test]
fn f32_matches_llama_cpp_dequantized_f32_path() {
    let Some(p) = common::model_05b() else { return };
    check_all(&ModelFile::open(p).unwrap(), ActSemantics::F32, true);
}

/// llama.cpp's perplexity of the reference corpus over its first `chunks` chunks of 512
/// (the cumulative estimate it printed after that chunk; 4.6042 after all 8).
fn reference_perplexity(chunks: usize) -> f64 {
    let r = common::reference_json("perplexity.json");
    r["result"]["per_chunk"][chunks - 1]["cumulative_ppl_as_printed"]
        .as_f64()
        .unwrap()
}

/// Perplexity of the reference corpus within the contract's relative bands of llama.cpp's
/// estimate over the same chunks. By default the first 2 of the 8 chunks (510 scored
/// tokens, about 45 s on 2 cores; llama.cpp printed 6.8569 there); `GRAPHRUN_FULL_PERPLEXITY=1`
/// scores all 8 (2,040 tokens, 4.6042, about 3 minutes alone and several in the suite). The
/// same bands hold for the shorter run: measured at 2 chunks with the default f16 KV cache,
/// q8 gives 6.8501 (rel 9.9e-4 of a 5e-3 band) and f32 6.8218 (rel 5.1e-3 of a 1e-2 band);
/// with `--kv f32`, 6.8551 (rel 2.6e-4) and 6.8225 (llama.cpp's own dequantized-f32 path
/// printed exactly 6.8225).
#[test]
fn perplexity_q8_and_f32_within_bands() {
    let Some(model) = common::model_05b() else {
        return;
    };
    let full = std::env::var("GRAPHRUN_FULL_PERPLEXITY").as_deref() == Ok("1");
    let chunks: usize = if full { 8 } else { 2 };
    let c = contracts::load("reference").unwrap();
    let reference = reference_perplexity(chunks);
    if full {
        assert_eq!(reference, c.band("perplexity_reference").unwrap());
    }
    let corpus = common::reference_dir().join("perplexity_corpus.txt");
    let corpus = if corpus.exists() {
        corpus
    } else {
        common::repo_path("tests/reference/perplexity_corpus.txt")
    };
    for (act, band) in [("q8", "perplexity_rel_q8"), ("f32", "perplexity_rel_f32")] {
        eprintln!(
            "perplexity --act {act} on {chunks} of 8 chunks (GRAPHRUN_FULL_PERPLEXITY=1 for all 8):"
        );
        // The child's per-chunk progress goes straight to the terminal.
        let out = std::process::Command::new(common::bin())
            .args(["perplexity", "--interp", "--json", "--act", act])
            .args(["--chunks", &chunks.to_string()])
            .arg(&model)
            .arg(&corpus)
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "perplexity --act {act} failed");
        let last = stdout.lines().last().unwrap();
        assert!(last.starts_with("Final estimate: PPL = "), "{last}");
        let v: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
        let ppl = v["ppl"].as_f64().unwrap();
        let rel = (ppl - reference).abs() / reference;
        eprintln!(
            "perplexity --act {act}: {ppl:.4} vs llama.cpp {reference} over {chunks} chunks (rel {rel:.5}, band {}) in {:.0} s",
            c.band(band).unwrap(),
            v["seconds"].as_f64().unwrap()
        );
        assert!(
            rel <= c.band(band).unwrap(),
            "--act {act}: PPL {ppl} vs {reference} over {chunks} chunks"
        );
        assert_eq!(v["chunks"], chunks);
        assert_eq!(v["scored"], 255 * chunks);
    }
}
