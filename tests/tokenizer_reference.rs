//! The tokenizer reproduces llama.cpp's token ids on every reference string and prompt
//! (`tests/reference/`), with and without special-token parsing, and decodes them back.

mod common;

use common::ids;
use graphrun::model::ModelFile;
use graphrun::tokenizer::{StreamDecoder, Tokenizer};

fn tokenizer() -> Option<Tokenizer> {
    let m = ModelFile::open(common::model_05b()?).unwrap();
    Some(Tokenizer::new(&m.tokenizer, &m.path).unwrap())
}

#[test]
fn token_ids_match_llama_cpp_on_every_reference_string() {
    let Some(tk) = tokenizer() else { return };
    let r = common::reference_json("tokenizer.json");
    let strings = r["strings"].as_array().unwrap();
    assert!(!strings.is_empty());
    for s in strings {
        let text = String::from_utf8(common::unhex(s["text_utf8_hex"].as_str().unwrap())).unwrap();
        assert_eq!(
            tk.encode(&text, true),
            ids(&s["token_ids"]),
            "parse_special: {text:?}"
        );
        assert_eq!(
            tk.encode(&text, false),
            ids(&s["token_ids_no_parse_special"]),
            "no parse_special: {text:?}"
        );
        assert_eq!(
            tk.decode(&ids(&s["token_ids"]), true),
            text,
            "round trip {text:?}"
        );
    }
}

#[test]
fn prompt_ids_match_llama_cpp_on_every_reference_prompt() {
    let Some(tk) = tokenizer() else { return };
    let g = common::reference_json("generations.json");
    for p in g["prompts"].as_array().unwrap() {
        let prompt =
            String::from_utf8(common::unhex(p["prompt_utf8_hex"].as_str().unwrap())).unwrap();
        assert_eq!(
            tk.encode(&prompt, true),
            ids(&p["prompt_token_ids"]),
            "prompt {}",
            p["id"]
        );
    }
}

#[test]
fn generated_pieces_decode_to_llama_cpp_bytes_and_stream_whole_characters() {
    let Some(tk) = tokenizer() else { return };
    let g = common::reference_json("generations.json");
    for p in g["prompts"].as_array().unwrap() {
        let mut dec = StreamDecoder::default();
        let mut streamed = String::new();
        for step in p["per_step"].as_array().unwrap() {
            let id = step["token_id"].as_u64().unwrap() as u32;
            let want = common::unhex(step["piece_hex"].as_str().unwrap());
            let got = tk.token_bytes(id, true);
            assert_eq!(got, want, "prompt {} token {id}", p["id"]);
            streamed += &dec.push(&got);
        }
        streamed += &dec.finish();
        assert_eq!(
            streamed,
            p["generated_text"].as_str().unwrap(),
            "prompt {}",
            p["id"]
        );
    }
}
