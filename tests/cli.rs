//! The command line as a new user meets it: each test runs the `graphrun` binary and checks
//! its exit status and message. Flags are checked before a model is loaded (a missing
//! model file proves it: the flag's error comes first), sizes that users add up are
//! checked without overflow, a run says why it stopped, NaN in a weight stops a run naming
//! the node, model files without a tokenizer take `--tokenizer`, and progress output stays
//! line by line when stderr is not a terminal. Most tests use a tiny synthetic model
//! written on the spot; the few that need the real 0.5B skip without it.

mod common;

use common::{graphrun, scratch};
use graphrun::model::gguf::{GgufWriter, MetaValue};
use graphrun::model::synth::{SynthSpec, build};
use graphrun::model::{ModelFile, TokenType, TokenizerData};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

const MISSING: &str = "/nonexistent/graphrun-test-model.gguf";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `graphrun ARGS` with `GRAPHRUN_MODELS` pointing at `models`.
fn graphrun_with_models(models: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::bin())
        .args(args)
        .env("GRAPHRUN_MODELS", models)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The tiny synthetic model (2 blocks, hidden 256, vocab 512) as a writer, to edit.
fn tiny_writer() -> GgufWriter {
    build(&SynthSpec::preset("tiny").unwrap(), 1, None)
}

fn write(w: &GgufWriter, path: &Path) -> PathBuf {
    std::fs::write(path, w.to_bytes()).unwrap();
    path.to_path_buf()
}

/// Generated token ids (`run --ids`), which must succeed.
fn run_ids(model: &Path, extra: &[&str]) -> Vec<u32> {
    let mut args = vec![
        "run",
        s(model),
        "--prompt",
        "the hello",
        "--interp",
        "--ids",
    ];
    args.extend_from_slice(extra);
    let (code, out, err) = graphrun(&args);
    assert_eq!(code, 0, "graphrun {}: {err}", args.join(" "));
    out.lines().map(|l| l.parse().unwrap()).collect()
}

/// Number in "generated N tokens" of a run's summary line.
fn generated_count(stderr: &str) -> usize {
    let at = stderr.find("generated ").expect("summary line") + "generated ".len();
    stderr[at..].split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn flags_are_checked_before_the_model_is_loaded() {
    let d = scratch("cli-flags");
    let file = d.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let dir = d.join("a-dir");
    std::fs::create_dir(&dir).unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["run", MISSING, "-p", "hi", "--top-p", "1.5"],
            &["'--top-p", "[0, 1]"],
        ),
        (
            &["run", MISSING, "-p", "hi", "--top-p", "-0.5"],
            &["'--top-p", "[0, 1]"],
        ),
        (
            &["run", MISSING, "-p", "hi", "--temp", "-1"],
            &["'--temp", "≥ 0"],
        ),
        (
            &["run", MISSING, "-p", "hi", "--temp", "nan"],
            &["'--temp", "≥ 0"],
        ),
        (
            &["run", MISSING, "-p", "hi", "--top-k", "-1"],
            &["'--top-k", "≥ 0"],
        ),
        (
            &["run", MISSING, "-p", "hi", "-n", "-2"],
            &["'--max-tokens", "-1"],
        ),
        (
            &["run", MISSING, "-p", "hi", "--ctx", "0"],
            &["'--ctx", "at least 1"],
        ),
        (
            &["run", MISSING, "-p", "hi", "--threads", "0"],
            &["'--threads", "at least 1"],
        ),
        (
            &[
                "run",
                MISSING,
                "-p",
                "hi",
                "-n",
                "18446744073709551615",
                "--ctx",
                "8",
            ],
            &["--max-tokens 18446744073709551615 does not fit the context size --ctx 8"],
        ),
        (
            &[
                "trace",
                MISSING,
                "-p",
                "hi",
                "--decode",
                "18446744073709551615",
                "--ctx",
                "8",
                "-o",
                s(&dir),
            ],
            &["--decode 18446744073709551615 does not fit the context size --ctx 8"],
        ),
        (
            &["trace", MISSING, "-p", "hi", "-o", s(&file)],
            &["a-file: exists and is not a directory"],
        ),
        (
            &["run", MISSING, "-p", "hi", "--trace", s(&file)],
            &["a-file: exists and is not a directory"],
        ),
        (
            &["perplexity", MISSING, s(&file), "-c", "0"],
            &["'--chunk", "at least 1"],
        ),
        (
            &["perplexity", MISSING, s(&file), "-c", "2"],
            &["'--chunk", "at least 4"],
        ),
        (
            &["perplexity", MISSING, s(&file), "--chunks", "0"],
            &["'--chunks", "at least 1"],
        ),
        (
            &["convert", MISSING, s(&dir)],
            &["a-dir: is a directory; give the output file name"],
        ),
        (
            &["convert", MISSING, "/nonexistent-dir/out.apr"],
            &["/nonexistent-dir does not exist"],
        ),
        (&["bench", MISSING, "-r", "0"], &["'--reps", "at least 1"]),
    ];
    for (args, want) in cases {
        let (code, out, err) = graphrun(args);
        let line = args.join(" ");
        assert_eq!(code, 2, "graphrun {line}: exit {code}\n{err}");
        assert!(out.is_empty(), "graphrun {line}: printed {out}");
        for w in *want {
            assert!(err.contains(w), "graphrun {line}: expected {w:?} in\n{err}");
        }
        assert!(
            !err.contains("-- -1"),
            "graphrun {line}: clap's '-- -1' tip\n{err}"
        );
        assert!(
            !err.contains("graphrun-test-model"),
            "graphrun {line}: the model was opened before the flags were checked\n{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn run_generates_until_the_context_is_full_by_default_and_says_why_it_stopped() {
    let d = scratch("cli-stop");
    let m = write(&tiny_writer(), &d.join("tiny.gguf"));
    // The tiny model's random weights never pick an end-of-generation token.
    let (code, out, _) = graphrun(&["tokenize", "-m", s(&m), "--json", "the hello"]);
    assert_eq!(code, 0);
    let n_prompt = serde_json::from_str::<Value>(&out).unwrap()["count"]
        .as_u64()
        .unwrap() as usize;
    for extra in [&[][..], &["-n", "-1"][..]] {
        let mut args = vec!["run", s(&m), "-p", "the hello", "--interp", "--ctx", "24"];
        args.extend_from_slice(extra);
        let (code, _, err) = graphrun(&args);
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("stopped: the context is full (24 positions"),
            "{err}"
        );
        assert_eq!(generated_count(&err), 24 - n_prompt, "{err}");
    }
    let (code, _, err) = graphrun(&["run", s(&m), "-p", "the hello", "--interp", "-n", "5"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("stopped: --max-tokens reached (5 tokens"),
        "{err}"
    );
    assert_eq!(generated_count(&err), 5);
    // Prompt + -n beyond the context: refused before generating anything.
    let (code, out, err) = graphrun(&[
        "run",
        s(&m),
        "-p",
        "the hello",
        "--interp",
        "-n",
        "20",
        "--ctx",
        "24",
    ]);
    assert_eq!(code, 2);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("+ --max-tokens 20 exceed the context size 24"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn run_on_the_real_model_stops_at_the_end_of_its_answer() {
    let Some(m) = common::model_05b() else { return };
    let (code, out, err) = graphrun(&[
        "run",
        s(&m),
        "--chat",
        "--prompt",
        "Say hello in one short sentence.",
        "--interp",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("stopped: end-of-generation token"), "{err}");
    assert!(out.to_lowercase().contains("hello"), "{out}");
}

#[test]
fn threads_above_the_core_count_are_capped_with_a_warning() {
    let d = scratch("cli-threads");
    let m = write(&tiny_writer(), &d.join("tiny.gguf"));
    let (code, _, err) = graphrun(&[
        "run",
        s(&m),
        "-p",
        "hi",
        "--interp",
        "-n",
        "2",
        "--threads",
        "100000",
    ]);
    assert_eq!(code, 0, "{err}");
    let cores = std::thread::available_parallelism().unwrap().get();
    assert!(
        err.contains(&format!(
            "--threads 100000 is more than the {cores} cores here; using {cores}"
        )),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn sampling_from_the_command_line_is_reproducible_and_greedy_at_the_limits() {
    let d = scratch("cli-sampling");
    let m = write(&tiny_writer(), &d.join("tiny.gguf"));
    let greedy = run_ids(&m, &["-n", "12"]);
    let sampled = |top_k: &str, top_p: &str| {
        let a = [
            "-n", "12", "--temp", "1.5", "--seed", "3", "--top-k", top_k, "--top-p", top_p,
        ];
        run_ids(&m, &a)
    };
    assert_eq!(sampled("0", "1"), sampled("0", "1"));
    assert_ne!(
        sampled("0", "1"),
        greedy,
        "temperature 1.5 should leave the greedy path"
    );
    assert_eq!(sampled("1", "1"), greedy);
    assert_eq!(sampled("0", "0"), greedy);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn tokenize_and_detokenize_default_to_the_cached_model() {
    let d = scratch("cli-tokenize");
    let models = d.join("models");
    std::fs::create_dir(&models).unwrap();
    let m = write(
        &tiny_writer(),
        &models.join(graphrun::model::DEFAULT_MODEL_FILE),
    );
    let (code, out, err) = graphrun_with_models(&models, &["tokenize", "--json", "the hello"]);
    assert_eq!(code, 0, "{err}");
    let (_, explicit, _) = graphrun(&["tokenize", "--json", "-m", s(&m), "the hello"]);
    assert_eq!(out, explicit);
    let v: Value = serde_json::from_str(&out).unwrap();
    let pieces: String = v["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        pieces, "theĠhello",
        "the text itself was tokenized, not taken as a model"
    );
    let ids: Vec<String> = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.to_string())
        .collect();
    let mut args = vec!["detokenize"];
    args.extend(ids.iter().map(String::as_str));
    let (code, out, err) = graphrun_with_models(&models, &args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "the hello\n");
    // Without a cached model the message says how to fetch one.
    let empty = d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, err) = graphrun_with_models(&empty, &["tokenize", "hello"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no MODEL given") && err.contains("scripts/fetch-model"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// A Hugging Face tokenizer.json holding `td`'s vocabulary (as Qwen2 ships it: byte-level
/// BPE, the qwen2 split regex, specials as added tokens, merges as pairs).
fn hf_tokenizer_json(td: &TokenizerData) -> Value {
    let mut vocab = serde_json::Map::new();
    let mut added = Vec::new();
    for (i, t) in td.tokens.iter().enumerate() {
        match td.token_type(i as u32) {
            TokenType::Control | TokenType::UserDefined => added.push(json!({
                "id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                "normalized": false, "special": td.token_type(i as u32) == TokenType::Control,
            })),
            TokenType::Unused => {}
            _ => {
                vocab.insert(t.clone(), json!(i));
            }
        }
    }
    let merges: Vec<Value> = td
        .merges
        .iter()
        .map(|m| {
            let (a, b) = m.split_once(' ').unwrap();
            json!([a, b])
        })
        .collect();
    json!({
        "version": "1.0",
        "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
             "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
        ]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false,
                  "vocab": vocab, "merges": merges}
    })
}

#[test]
fn a_model_file_without_a_tokenizer_says_so_and_takes_tokenizer_file() {
    let d = scratch("cli-notok");
    let with = tiny_writer();
    let gguf = write(&with, &d.join("tiny.gguf"));
    // The same weights as an APR file without tokenizer data, as `apr import` writes one
    // from safetensors without a tokenizer.json.
    let mut without = tiny_writer();
    without
        .metadata
        .retain(|(k, _)| !k.starts_with("tokenizer."));
    without.kv("qwen2.vocab_size", MetaValue::U32(512));
    let m = ModelFile::from_bytes(without.to_bytes(), "notok.gguf").unwrap();
    let apr = d.join("notok.apr");
    std::fs::write(&apr, graphrun::model::apr_write::to_apr_bytes(&m).unwrap()).unwrap();

    let (code, _, err) = graphrun(&["tokenize", "-m", s(&apr), "hello"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("notok.apr: the file carries no tokenizer"),
        "{err}"
    );
    assert!(err.contains("--tokenizer FILE"), "{err}");
    let (code, _, err) = graphrun(&["run", s(&apr), "-p", "hello", "--interp"]);
    assert_eq!(code, 2);
    assert!(err.contains("carries no tokenizer"), "{err}");

    let td = ModelFile::open(&gguf).unwrap().tokenizer;
    let json_path = d.join("tokenizer.json");
    std::fs::write(&json_path, hf_tokenizer_json(&td).to_string()).unwrap();
    let text = "the hello<|im_end|> world 12";
    let (_, want, _) = graphrun(&["tokenize", "--json", "-m", s(&gguf), text]);
    for tok in [&json_path, &gguf] {
        let (code, out, err) = graphrun(&[
            "tokenize",
            "--json",
            "-m",
            s(&apr),
            "--tokenizer",
            s(tok),
            text,
        ]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, want, "--tokenizer {}", tok.display());
    }
    // Generation from the APR with the tokenizer file equals the GGUF's own.
    let want = run_ids(&gguf, &["-n", "6"]);
    assert_eq!(
        run_ids(&apr, &["-n", "6", "--tokenizer", s(&json_path)]),
        want
    );
    // A tokenizer with more tokens than the model embeds is refused.
    let mut big = td.clone();
    big.tokens.extend((0..600).map(|i| format!("extra{i}")));
    big.token_types.extend((0..600).map(|_| TokenType::Normal));
    let big_path = d.join("big.json");
    std::fs::write(&big_path, hf_tokenizer_json(&big).to_string()).unwrap();
    let (code, _, err) = graphrun(&["tokenize", "-m", s(&apr), "--tokenizer", s(&big_path), "hi"]);
    assert_eq!(code, 2);
    assert!(err.contains("not this model's tokenizer"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_tokenizer_json_of_the_real_vocabulary_tokenizes_like_the_gguf() {
    let Some(m) = common::model_05b() else { return };
    let d = scratch("cli-hf-real");
    let td = ModelFile::open(&m).unwrap().tokenizer;
    let json_path = d.join("tokenizer.json");
    std::fs::write(&json_path, hf_tokenizer_json(&td).to_string()).unwrap();
    let tk_gguf = graphrun::tokenizer::Tokenizer::new(&td, "gguf").unwrap();
    let hf = graphrun::tokenizer::file::data_from_file(&json_path).unwrap();
    assert_eq!(hf.pre.as_deref(), Some("qwen2"));
    let tk_hf = graphrun::tokenizer::Tokenizer::new(&hf, "json").unwrap();
    let reference = common::reference_json("tokenizer.json");
    let strings = reference["strings"].as_array().unwrap();
    for r in strings {
        let text = r["text"].as_str().unwrap();
        assert_eq!(
            tk_hf.encode(text, true),
            tk_gguf.encode(text, true),
            "{text:?}"
        );
    }
    eprintln!("{} reference strings tokenize identically", strings.len());
    let _ = std::fs::remove_dir_all(&d);
}

/// The tiny model with one NaN in `blk.0.attn_norm.weight`.
fn tiny_with_nan(path: &Path) -> PathBuf {
    let mut w = tiny_writer();
    let t = w
        .tensors
        .iter_mut()
        .find(|t| t.0 == "blk.0.attn_norm.weight")
        .unwrap();
    t.3[12..16].copy_from_slice(&f32::NAN.to_le_bytes());
    write(&w, path)
}

#[test]
fn nan_in_a_weight_stops_run_perplexity_and_trace_naming_the_node() {
    let d = scratch("cli-nan");
    let bad = tiny_with_nan(&d.join("nan.gguf"));
    let good = write(&tiny_writer(), &d.join("tiny.gguf"));
    let text = d.join("text.txt");
    std::fs::write(&text, "the hello world, the other hello. ".repeat(8)).unwrap();
    let out_dir = d.join("trace");
    let commands: Vec<Vec<&str>> = vec![
        vec![
            "run",
            "-p",
            "the hello",
            "--interp",
            "-n",
            "4",
            "--act",
            "q8",
        ],
        vec![
            "run",
            "-p",
            "the hello",
            "--interp",
            "-n",
            "4",
            "--act",
            "f32",
        ],
        vec![
            "run",
            "-p",
            "the hello",
            "--interp",
            "-n",
            "4",
            "--temp",
            "0.8",
        ],
        vec!["perplexity", s(&text), "-c", "16", "--interp"],
        vec!["trace", "-p", "the hello", "--interp", "-o", s(&out_dir)],
    ];
    for c in &commands {
        let with = |m: &Path| {
            let mut a = vec![c[0], s(m)];
            a.extend_from_slice(&c[1..]);
            graphrun(&a)
        };
        let (code, _, err) = with(&good);
        assert_eq!(code, 0, "{c:?} on the clean model: {err}");
        let (code, _, err) = with(&bad);
        assert_eq!(code, 2, "{c:?}: exit {code}\n{err}");
        assert!(
            err.contains(
                "node `blk.0.attn_norm` (rms_norm) is the first to produce non-finite values: "
            ),
            "{c:?}: {err}"
        );
        // One NaN in the weight: one per row (position) of the node's output.
        assert!(
            err.contains(" NaN and 0 Inf in its output at positions 0.."),
            "{c:?}: {err}"
        );
        assert!(err.contains("blk.0.attn_norm.weight"), "{c:?}: {err}");
        assert!(
            err.contains("graphrun trace") || c[0] == "trace",
            "{c:?}: {err}"
        );
    }
    // The trace keeps the records up to the NaN node, that one included.
    let records = graphrun::trace::read(&out_dir).unwrap();
    let last = records.last().unwrap();
    assert_eq!(last.node, "blk.0.attn_norm");
    assert_eq!(last.stats.nan as usize, last.shape[0]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn progress_lines_stay_separate_when_stderr_is_not_a_terminal() {
    let d = scratch("cli-progress");
    let m = write(&tiny_writer(), &d.join("tiny.gguf"));
    let (code, _, err) = graphrun(&["convert", s(&m), s(&d.join("tiny.apr"))]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains('\r'), "{err:?}");
    assert!(
        err.contains("convert: 100%") && err.contains("convert: wrote"),
        "{err}"
    );
    let (code, _, err) = graphrun(&[
        "trace",
        s(&m),
        "-p",
        "hi",
        "--interp",
        "--decode",
        "3",
        "-o",
        s(&d.join("t")),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains('\r'), "{err:?}");
    assert!(err.contains("decode step 3/3"), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

/// `bench --temp` times sampled decode (the interpreter samples on the host, with the
/// `run` sampler's flags and checks) and says so in its header and its JSON.
#[test]
fn bench_samples_with_the_run_flags_and_reports_them() {
    let d = scratch("cli-bench-sample");
    let m = write(&tiny_writer(), &d.join("tiny.gguf"));
    let (code, out, err) = graphrun(&[
        "bench",
        s(&m),
        "-p",
        "8",
        "-n",
        "4",
        "-r",
        "1",
        "--no-warmup",
        "--interp",
        "--temp",
        "0.7",
        "--top-k",
        "20",
        "--top-p",
        "0.9",
        "--seed",
        "3",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("decode 4 tokens (sampled: --temp 0.7 --top-k 20 --top-p 0.9 --seed 3)"),
        "{err}"
    );
    assert!(err.contains("1 repetitions, no warm-up"), "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["warmup"], false, "{out}");
    assert_eq!(j["sampling"]["top_k"], 20, "{out}");
    assert!(
        (j["sampling"]["temp"].as_f64().unwrap() - 0.7).abs() < 1e-6,
        "{out}"
    );
    assert!(j["tg_tok_s"].as_f64().unwrap() > 0.0, "{out}");
    let (code, _, err) = graphrun(&["bench", s(&m), "--temp", "-1", "--interp"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--temp"), "{err}");
    let (code, _, err) = graphrun(&["bench", s(&m), "--top-p", "1.5", "--interp"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--top-p"), "{err}");
}

#[test]
fn bench_without_a_gpu_names_the_executor_and_shows_progress() {
    let d = scratch("cli-bench");
    let m = write(&tiny_writer(), &d.join("tiny.gguf"));
    let (code, out, err) = graphrun(&[
        "bench",
        s(&m),
        "-p",
        "8,16",
        "-n",
        "4",
        "-d",
        "0,8",
        "-r",
        "2",
        "--interp",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(
            "on interp: prefill [8, 16] tokens, decode 4 tokens (greedy) at depths [0, 8], 2 repetitions, a warm-up prefill per size"
        ),
        "{err}"
    );
    // Each test ends with a progress line of its own.
    assert!(
        err.contains("bench pp16: ") && err.contains("first token after"),
        "{err}"
    );
    assert!(err.contains("bench tg4 @ d8: "), "{err}");
    // One row per size and per depth, prefill rows with their time to first token.
    for row in [
        "| interp | pp8 |",
        "| interp | pp16 |",
        "| interp | tg4 |",
        "| interp | tg4 @ d8 |",
    ] {
        assert!(out.contains(row), "{row}: {out}");
    }
    assert!(
        out.lines()
            .any(|l| l.contains("| pp16 |") && l.ends_with(" ms |")),
        "{out}"
    );
    if graphrun::exec::gpu_probe::probe(0).is_err() {
        let (code, _, err) = graphrun(&["bench", s(&m), "--gpu"]);
        assert_eq!(code, 2);
        assert!(err.contains("--gpu: no usable GPU"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn fetch_model_help_into_a_closed_pipe_is_quiet() {
    let script = common::repo_path("scripts/fetch-model");
    let out = Command::new("sh")
        .arg("-c")
        // `true` exits at once: the script writes into a pipe already closed.
        .arg(format!("'{}' --help | true", script.display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(err.is_empty(), "{err}");
    let out = Command::new(&script).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: scripts/fetch-model"));
}
