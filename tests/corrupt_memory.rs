//! Headers that ask for far more memory than the file holds (issue #10): the real
//! `graphrun inspect` runs on each crafted file as a child process, and its peak resident
//! set size must stay under twice the file's size plus 200 MB.
//!
//! The peak comes from `wait4`'s `ru_maxrss`. Linux carries a process's high-water mark
//! across `exec`, so a child's figure can include memory its parent held when it spawned
//! the child: this suite lives in a binary of its own and writes every file by streaming,
//! keeping its own footprint small (it prints its own peak beside each figure; a refused
//! file's child measures about 6 MB).

mod common;

use graphrun::model::ModelFile;
use graphrun::model::apr_write::to_apr_bytes;
use graphrun::model::gguf::{self, GgufWriter};
use graphrun::model::synth::{SynthSpec, build};
use std::io::Write;
use std::path::Path;

/// Runs `graphrun inspect FILE`; returns its exit status, its peak RSS in bytes and its
/// stderr.
#[allow(
    clippy::zombie_processes,
    reason = "the child is reaped by wait4 below, which also returns its rusage"
)]
fn inspect_peak_rss(path: &Path) -> (i32, u64, String) {
    let err_path = path.with_extension("stderr");
    let child = std::process::Command::new(common::bin())
        .arg("inspect")
        .arg(path)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain data; wait4 on our own child with valid out-pointers.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let err = std::fs::read_to_string(&err_path).unwrap();
    std::fs::remove_file(&err_path).unwrap();
    (code, ru.ru_maxrss as u64 * 1024, err)
}

/// This process's own peak RSS in bytes.
fn own_peak_rss() -> u64 {
    // SAFETY: as above.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as u64 * 1024
}

fn put_str(out: &mut impl Write, s: &[u8]) {
    out.write_all(&(s.len() as u64).to_le_bytes()).unwrap();
    out.write_all(s).unwrap();
}

/// A GGUF header of `kvs` entries and no tensors, up to (not including) the first entry.
fn gguf_head(out: &mut impl Write, kvs: u64) {
    out.write_all(b"GGUF").unwrap();
    out.write_all(&3u32.to_le_bytes()).unwrap();
    out.write_all(&0u64.to_le_bytes()).unwrap();
    out.write_all(&kvs.to_le_bytes()).unwrap();
}

/// The start of an array entry: key, type 9, element type, count.
fn array_head(out: &mut impl Write, key: &str, elem: u32, n: u64) {
    put_str(out, key.as_bytes());
    out.write_all(&9u32.to_le_bytes()).unwrap();
    out.write_all(&elem.to_le_bytes()).unwrap();
    out.write_all(&n.to_le_bytes()).unwrap();
}

/// Extends the file with zeros to `len` bytes (sparse: cheap to make).
fn zeros_to(path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

fn tiny() -> GgufWriter {
    build(&SynthSpec::preset("tiny").unwrap(), 3, None)
}

/// The tiny model with its tokenizer replaced by `n` one-byte tokens, `n` token types,
/// `n` merges and an `n`-element f64 array, streamed: the entries are spliced between the
/// model's metadata and its tensor infos (padded to the alignment, so the tensors' data
/// offsets stay valid).
fn tiny_with_big_tokenizer(path: &Path, n: u64) {
    let mut w = tiny();
    w.metadata.retain(|(k, _)| !k.starts_with("tokenizer."));
    let t = w.to_bytes();
    let h = gguf::parse(&t, "tiny.gguf").unwrap();
    let infos = h.tensors[0].info_offset as usize;
    let kvs = h.metadata.len() as u64 + 5;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(&t[..16]).unwrap();
    f.write_all(&kvs.to_le_bytes()).unwrap();
    f.write_all(&t[24..infos]).unwrap();
    let mut added = 0u64;
    array_head(&mut f, "tokenizer.ggml.tokens", 8, n);
    added += 8 + 21 + 16;
    for _ in 0..n {
        put_str(&mut f, b"a");
    }
    added += 9 * n;
    array_head(&mut f, "tokenizer.ggml.token_type", 0, n);
    added += 8 + 25 + 16;
    for _ in 0..n {
        f.write_all(&[1]).unwrap();
    }
    added += n;
    array_head(&mut f, "tokenizer.ggml.merges", 8, n);
    added += 8 + 21 + 16;
    for _ in 0..n {
        put_str(&mut f, b"a b");
    }
    added += 11 * n;
    array_head(&mut f, "k.f64", 12, n);
    added += 8 + 5 + 16;
    for _ in 0..n {
        f.write_all(&0.5f64.to_le_bytes()).unwrap();
    }
    added += 8 * n;
    // A padding string brings the insertion to a multiple of the alignment.
    let fixed = 8 + 5 + 4 + 8;
    let pad = (32 - (added + fixed) % 32) % 32;
    put_str(&mut f, b"k.pad");
    f.write_all(&8u32.to_le_bytes()).unwrap();
    put_str(&mut f, &vec![b'x'; pad as usize]);
    f.write_all(&t[infos..]).unwrap();
    f.flush().unwrap();
}

/// An APR (W1) file of the tiny model whose metadata JSON gains `"junk": [0, 0, ...]` with
/// `n` elements, streamed to disk.
fn apr_with_junk_array(path: &Path, n: u64) {
    let g = ModelFile::from_bytes(tiny().to_bytes(), "tiny.gguf").unwrap();
    let t = to_apr_bytes(&g).unwrap();
    let u64_at = |o: usize| u64::from_le_bytes(t[o..o + 8].try_into().unwrap());
    let msize = u32::from_le_bytes(t[20..24].try_into().unwrap()) as u64;
    let (index_off, data_off) = (u64_at(24), u64_at(32));
    let json = &t[64..64 + msize as usize];
    // `{...old keys` + `,"junk":[` + `0,` × (n − 1) + `0]}`
    let json_len = msize - 1 + 9 + 2 * (n - 1) + 3;
    let new_index = (64 + json_len).div_ceil(64) * 64;
    let mut h = t[..64].to_vec();
    h[20..24].copy_from_slice(&u32::try_from(json_len).unwrap().to_le_bytes());
    h[24..32].copy_from_slice(&new_index.to_le_bytes());
    h[32..40].copy_from_slice(&(new_index + data_off - index_off).to_le_bytes());
    let crc = graphrun::model::apr::header_crc(&h);
    h[40..44].copy_from_slice(&crc.to_le_bytes());
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(&h).unwrap();
    f.write_all(&json[..json.len() - 1]).unwrap();
    f.write_all(b",\"junk\":[").unwrap();
    let chunk = "0,".repeat(1 << 16);
    let mut left = n - 1;
    while left > 0 {
        let k = left.min(1 << 16);
        f.write_all(&chunk.as_bytes()[..2 * k as usize]).unwrap();
        left -= k;
    }
    f.write_all(b"0]}").unwrap();
    f.write_all(&vec![0u8; (new_index - 64 - json_len) as usize])
        .unwrap();
    f.write_all(&t[index_off as usize..]).unwrap();
    f.flush().unwrap();
}

#[test]
fn crafted_headers_keep_inspect_within_twice_the_file_size() {
    let dir = common::scratch("rss");
    // (what, file, expected exit status, expected text in stderr)
    type Case = (&'static str, std::path::PathBuf, i32, &'static str);
    let mut cases: Vec<Case> = Vec::new();

    // 1. `tokenizer.ggml.token_type` as a u8 array of 488,810,971 elements (the count the
    //    issue made of the real 0.5B's: the bytes left), the rest of the file zeros. This
    //    asked for 15.6 GB.
    let p = dir.join("token_type_u8.gguf");
    let mut f = std::fs::File::create(&p).unwrap();
    gguf_head(&mut f, 1);
    array_head(&mut f, "tokenizer.ggml.token_type", 0, 488_810_971);
    zeros_to(&p, 24 + 8 + 25 + 16 + 488_810_971);
    cases.push(("u8 token_type", p, 2, "limit of 1048576 elements"));

    // 2. The 49-byte header declaring one `[u8; 100000000]` array, then zeros: 3.2 GB.
    let p = dir.join("u8_1e8.gguf");
    let mut f = std::fs::File::create(&p).unwrap();
    gguf_head(&mut f, 1);
    array_head(&mut f, "k", 0, 100_000_000);
    assert_eq!(f.metadata().unwrap().len(), 49);
    zeros_to(&p, 49 + 100_000_000);
    cases.push(("49-byte header", p, 2, "field `k`"));

    // 3. An APR whose JSON metadata is 150 MB (a 75-million-element array): 2.5 GB.
    let p = dir.join("json_150mb.apr");
    apr_with_junk_array(&p, 75_000_000);
    cases.push(("150 MB APR JSON", p, 2, "field `metadata_size`"));

    // 4. An APR with 60 MB of JSON (30 million numbers under a key nobody reads), under
    //    the limit: kept as raw text, never decoded.
    let p = dir.join("json_60mb.apr");
    apr_with_junk_array(&p, 30_000_000);
    cases.push(("60 MB APR JSON", p, 0, ""));

    // 5. The largest arrays accepted, under the keys a model reads in full: 2^20 one-byte
    //    tokens, token types and merges, and a 2^20-element f64 array. (The embedding has
    //    512 rows, so this model fails when lowered, not when inspected.)
    let p = dir.join("max_arrays.gguf");
    tiny_with_big_tokenizer(&p, 1 << 20);
    cases.push(("arrays at the limit", p, 0, ""));

    for (what, path, want_code, expect) in cases {
        let size = std::fs::metadata(&path).unwrap().len();
        let (code, peak, err) = inspect_peak_rss(&path);
        let limit = 2 * size + (200 << 20);
        eprintln!(
            "{what}: {size} bytes, inspect exit {code}, peak RSS {:.1} MB (limit {:.1} MB; this test's own peak {:.1} MB)",
            peak as f64 / 1e6,
            limit as f64 / 1e6,
            own_peak_rss() as f64 / 1e6,
        );
        assert_eq!(code, want_code, "{what}: {err}");
        assert!(
            err.contains(expect),
            "{what}: expected `{expect}` in: {err}"
        );
        assert!(peak < limit, "{what}: peak RSS {peak} over {limit}");
        std::fs::remove_file(&path).unwrap();
    }
}
