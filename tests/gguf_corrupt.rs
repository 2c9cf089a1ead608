//! Corrupted GGUF files give clear errors (file, field, byte offset) and never panic or
//! allocate absurd amounts of memory: a table of targeted corruptions, truncation at every
//! header offset, and a seeded property test over thousands of random mutations.

mod common;

use common::Rng;
use graphrun::model::ModelFile;
use graphrun::model::gguf::{self, GgufWriter, MetaArray, MetaValue};
use graphrun::quant::GgmlType;
use std::alloc::{GlobalAlloc, Layout, System};

/// Fails any single allocation above 64 MiB: a header field that sized an allocation
/// without being checked would trip it.
struct CappedAlloc;
const CAP: usize = 64 << 20;
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if l.size() > CAP {
            panic!("allocation of {} bytes exceeds the test cap", l.size());
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if n > CAP {
            panic!("reallocation to {n} bytes exceeds the test cap");
        }
        unsafe { System.realloc(p, l, n) }
    }
}
#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

const FILE: &str = "test.gguf";

/// A small valid GGUF holding every metadata value type (arrays of several element types
/// too) and tensors of three types. Layout is known: the first key is
/// `general.architecture`.
fn sample() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.kv("general.architecture", MetaValue::Str("qwen2".into()))
        .kv("k.u8", MetaValue::U8(7))
        .kv("k.i8", MetaValue::I8(-7))
        .kv("k.u16", MetaValue::U16(700))
        .kv("k.i16", MetaValue::I16(-700))
        .kv("k.i32", MetaValue::I32(-70000))
        .kv("k.u64", MetaValue::U64(1 << 40))
        .kv("k.i64", MetaValue::I64(-(1 << 40)))
        .kv("k.f64", MetaValue::F64(0.125))
        .kv("k.bool", MetaValue::Bool(true))
        .kv("k.i16s", MetaValue::Array(MetaArray::I16(vec![1, -2])))
        .kv(
            "k.strs",
            MetaValue::Array(MetaArray::Str(["é✓", "", "x"].into_iter().collect())),
        )
        .kv(
            "k.bools",
            MetaValue::Array(MetaArray::Bool(vec![true, false])),
        )
        .kv("qwen2.block_count", MetaValue::U32(1))
        .kv("qwen2.context_length", MetaValue::U32(128))
        .kv("qwen2.embedding_length", MetaValue::U32(64))
        .kv("qwen2.feed_forward_length", MetaValue::U32(128))
        .kv("qwen2.attention.head_count", MetaValue::U32(4))
        .kv("qwen2.attention.head_count_kv", MetaValue::U32(2))
        .kv("qwen2.rope.freq_base", MetaValue::F32(10000.0))
        .kv(
            "qwen2.attention.layer_norm_rms_epsilon",
            MetaValue::F32(1e-6),
        )
        .kv(
            "tokenizer.ggml.tokens",
            MetaValue::Array(MetaArray::Str(["a", "b"].into_iter().collect())),
        );
    w.tensor("t.f32", &[64], GgmlType::F32, vec![0; 256]);
    w.tensor("t.q8_0", &[64, 2], GgmlType::Q8_0, vec![0; 136]);
    w.tensor("t.q4_k", &[256], GgmlType::Q4_K, vec![0; 144]);
    w.to_bytes()
}

fn parse(b: &[u8]) -> Result<gguf::GgufHeader, String> {
    gguf::parse(b, FILE).map_err(|e| e.to_string())
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

#[test]
fn sample_file_is_valid_and_round_trips_every_value_type() {
    let b = sample();
    let h = gguf::parse(&b, FILE).unwrap();
    assert_eq!(h.version, 3);
    assert_eq!(h.get("k.i16"), Some(&MetaValue::I16(-700)));
    assert_eq!(h.get("k.f64").unwrap().as_f64(), Some(0.125));
    let strs = h
        .get("k.strs")
        .unwrap()
        .as_array()
        .unwrap()
        .as_strs()
        .unwrap();
    assert_eq!(strs.iter().collect::<Vec<_>>(), ["é✓", "", "x"]);
    assert_eq!(
        h.get("k.i16s").unwrap().as_array(),
        Some(&MetaArray::I16(vec![1, -2]))
    );
    assert_eq!(
        h.get("k.bools").unwrap().as_array(),
        Some(&MetaArray::Bool(vec![true, false]))
    );
    // Writing what was read gives the same bytes.
    let mut w = GgufWriter::new();
    w.metadata = h.metadata.clone();
    let again = gguf::parse(&w.to_bytes(), FILE).unwrap();
    assert_eq!(again.metadata, h.metadata);
    assert_eq!(h.tensors.len(), 3);
    let m = ModelFile::from_bytes(b, FILE).unwrap();
    assert_eq!(m.tensor("t.q8_0").unwrap().shape, vec![2, 64]);
    assert_eq!(m.hparams.head_dim, 16);
}

/// (description, mutation, substring the error must contain)
type Case = (
    &'static str,
    Box<dyn Fn(&mut Vec<u8>, &gguf::GgufHeader)>,
    &'static str,
);

#[test]
fn targeted_corruptions_name_file_field_and_offset() {
    let base = sample();
    let h = gguf::parse(&base, FILE).unwrap();
    // First kv: key length at 24, key bytes 32..52, type at 52, string length at 56.
    let info: [usize; 3] = std::array::from_fn(|i| h.tensors[i].info_offset as usize);
    let names: [usize; 3] = std::array::from_fn(|i| h.tensors[i].name.len());
    let ti = move |i: usize| info[i];
    // Offset of n_dims inside tensor info i; ne[] follows, then type, then offset.
    let ndims_at = move |i: usize| info[i] + 8 + names[i];
    let cases: Vec<Case> = vec![
        (
            "bad magic",
            Box::new(|b, _| put(b, 0, b"GGUX")),
            "field `magic` at byte offset 0",
        ),
        (
            "version 1",
            Box::new(|b, _| put(b, 4, &1u32.to_le_bytes())),
            "field `version` at byte offset 4",
        ),
        (
            "version 99",
            Box::new(|b, _| put(b, 4, &99u32.to_le_bytes())),
            "unsupported GGUF version 99",
        ),
        (
            "big endian",
            Box::new(|b, _| put(b, 4, &3u32.to_be_bytes())),
            "big-endian",
        ),
        (
            "tensor count 2^64-1",
            Box::new(|b, _| put(b, 8, &u64::MAX.to_le_bytes())),
            "field `tensor_count` at byte offset 8",
        ),
        (
            "kv count 2^62",
            Box::new(|b, _| put(b, 16, &(1u64 << 62).to_le_bytes())),
            "field `metadata_kv_count` at byte offset 16",
        ),
        (
            "key length 2^60",
            Box::new(|b, _| put(b, 24, &(1u64 << 60).to_le_bytes())),
            "field `metadata[0].key length` at byte offset 24",
        ),
        (
            "non-UTF-8 key",
            Box::new(|b, _| b[33] = 0xFF),
            "not valid UTF-8",
        ),
        (
            "unknown value type",
            Box::new(|b, _| put(b, 52, &99u32.to_le_bytes())),
            "unknown metadata value type 99",
        ),
        (
            "string length 2^60",
            Box::new(|b, _| put(b, 56, &(1u64 << 60).to_le_bytes())),
            "field `general.architecture` at byte offset 56",
        ),
        (
            "bool value 2",
            Box::new(|b, _| {
                let at = find(b, b"k.bool") + 6 + 4;
                b[at] = 2;
            }),
            "bool must be 0 or 1",
        ),
        (
            "array count 2^61",
            Box::new(|b, _| {
                let at = find(b, b"k.strs") + 6 + 4 + 4;
                put(b, at, &(1u64 << 61).to_le_bytes());
            }),
            "field `k.strs`",
        ),
        (
            "array element type 77",
            Box::new(|b, _| {
                let at = find(b, b"k.strs") + 6 + 4;
                put(b, at, &77u32.to_le_bytes());
            }),
            "unknown array element type 77",
        ),
        (
            "array of arrays",
            Box::new(|b, _| {
                let at = find(b, b"k.strs") + 6 + 4;
                put(b, at, &9u32.to_le_bytes());
            }),
            "arrays of arrays are not supported",
        ),
        (
            "bool array element 2",
            Box::new(|b, _| {
                let at = find(b, b"k.bools") + 7 + 4 + 4 + 8;
                b[at] = 2;
            }),
            "bool must be 0 or 1",
        ),
        (
            "tensor name length 2^60",
            Box::new(move |b, _| put(b, ti(0), &(1u64 << 60).to_le_bytes())),
            "tensor[0].name",
        ),
        (
            "n_dims 0",
            Box::new(move |b, _| put(b, ndims_at(0), &0u32.to_le_bytes())),
            "t.f32.n_dims",
        ),
        (
            "n_dims 5",
            Box::new(move |b, _| put(b, ndims_at(0), &5u32.to_le_bytes())),
            "5 dimensions",
        ),
        (
            "dimension 0",
            Box::new(move |b, _| put(b, ndims_at(0) + 4, &0u64.to_le_bytes())),
            "t.f32.ne[0]",
        ),
        (
            "dimension 2^63",
            Box::new(move |b, _| put(b, ndims_at(1) + 12, &(1u64 << 63).to_le_bytes())),
            "t.q8_0.ne[1]",
        ),
        (
            "unknown tensor type",
            Box::new(move |b, _| put(b, ndims_at(0) + 12, &99u32.to_le_bytes())),
            "unknown GGML tensor type id 99",
        ),
        (
            "unsupported tensor type",
            Box::new(move |b, _| put(b, ndims_at(0) + 12, &16u32.to_le_bytes())),
            "IQ2_XXS",
        ),
        (
            "row not whole blocks",
            Box::new(move |b, _| put(b, ndims_at(1) + 4, &48u64.to_le_bytes())),
            "not a multiple of the Q8_0 block size",
        ),
        (
            "offset past end",
            Box::new(move |b, _| put(b, ndims_at(0) + 16, &(1u64 << 40).to_le_bytes())),
            "field `t.f32.offset`",
        ),
        (
            "offset overflow",
            Box::new(move |b, _| put(b, ndims_at(0) + 16, &(u64::MAX - 31).to_le_bytes())),
            "outside",
        ),
        (
            "unaligned offset",
            Box::new(move |b, _| put(b, ndims_at(0) + 16, &4u64.to_le_bytes())),
            "not a multiple of the alignment",
        ),
        (
            "overlap",
            Box::new(move |b, _| put(b, ndims_at(2) + 16, &0u64.to_le_bytes())),
            "overlaps tensor",
        ),
        (
            "truncated data",
            Box::new(|b, _| b.truncate(b.len() - 10)),
            "outside the",
        ),
    ];
    for (what, mutate, expect) in cases {
        let mut b = base.clone();
        mutate(&mut b, &h);
        let err = parse(&b)
            .err()
            .unwrap_or_else(|| panic!("{what}: corrupted file was accepted"));
        assert!(
            err.starts_with(FILE),
            "{what}: error does not name the file: {err}"
        );
        assert!(
            err.contains(expect),
            "{what}: expected `{expect}` in: {err}"
        );
        assert!(
            err.contains("field `"),
            "{what}: error does not name a field: {err}"
        );
    }
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present")
}

#[test]
fn duplicate_keys_and_bad_alignment_are_rejected() {
    let mut w = GgufWriter::new();
    w.kv("a", MetaValue::U8(1)).kv("a", MetaValue::U8(2));
    assert!(
        parse(&w.to_bytes())
            .unwrap_err()
            .contains("duplicate metadata key")
    );
    let mut w = GgufWriter::new();
    w.kv("general.alignment", MetaValue::U32(3));
    assert!(parse(&w.to_bytes()).unwrap_err().contains("power of two"));
    let mut w = GgufWriter::new();
    w.tensor("x", &[32], GgmlType::F32, vec![0; 128]).tensor(
        "x",
        &[32],
        GgmlType::F32,
        vec![0; 128],
    );
    assert!(parse(&w.to_bytes()).unwrap_err().contains("appears twice"));
}

#[test]
fn truncation_at_every_header_offset_is_an_error_with_offset() {
    let base = sample();
    let h = gguf::parse(&base, FILE).unwrap();
    for cut in 0..h.data_offset as usize + 64 {
        let b = &base[..cut];
        let err = parse(b)
            .err()
            .unwrap_or_else(|| panic!("truncated at {cut}: accepted"));
        assert!(
            err.starts_with(FILE) && err.contains("byte offset"),
            "truncated at {cut}: {err}"
        );
    }
}

#[test]
fn thousands_of_random_mutations_never_panic() {
    let base = sample();
    let header_len = gguf::parse(&base, FILE).unwrap().data_offset as usize;
    let mut rng = Rng(0xC0FFEE);
    let (mut ok, mut errs) = (0, 0);
    for i in 0..5000 {
        let mut b = base.clone();
        match rng.below(4) {
            0 => {
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(header_len as u64) as usize;
                    b[at] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let at = rng.below(header_len as u64 - 8) as usize & !7;
                let v = [0, 1, u64::MAX, 1 << 60, 1 << 32, rng.next_u64()][rng.below(6) as usize];
                put(&mut b, at, &v.to_le_bytes());
            }
            2 => b.truncate(rng.below(b.len() as u64) as usize),
            _ => {
                let at = rng.below(header_len as u64) as usize;
                b.insert(at, rng.next_u64() as u8);
            }
        }
        let r = std::panic::catch_unwind(|| ModelFile::from_bytes(b.clone(), FILE).map(|_| ()));
        match r {
            Err(_) => panic!("mutation {i} panicked"),
            Ok(Ok(())) => ok += 1,
            Ok(Err(e)) => {
                let s = e.to_string();
                assert!(
                    s.starts_with(FILE),
                    "mutation {i}: error does not name the file: {s}"
                );
                assert!(
                    s.contains('`'),
                    "mutation {i}: error does not name a field or tensor: {s}"
                );
                errs += 1;
            }
        }
    }
    eprintln!("5000 mutations: {ok} still valid, {errs} rejected with errors");
    assert!(errs > 3000);
}

#[test]
fn counts_and_lengths_beyond_honest_limits_are_refused_before_allocating() {
    // Each header fits in the bytes left (the file is padded with zeros), so only the
    // limits stop it.
    let head = |tensors: u64, kvs: u64| {
        let mut b = Vec::new();
        b.extend_from_slice(b"GGUF");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&tensors.to_le_bytes());
        b.extend_from_slice(&kvs.to_le_bytes());
        b
    };
    let padded = |mut b: Vec<u8>| {
        b.resize(b.len() + (4 << 20), 0);
        b
    };
    let key = |b: &mut Vec<u8>, k: &str, ty: u32| {
        b.extend_from_slice(&(k.len() as u64).to_le_bytes());
        b.extend_from_slice(k.as_bytes());
        b.extend_from_slice(&ty.to_le_bytes());
    };
    let mut long_str = head(0, 1);
    key(&mut long_str, "general.name", 8);
    long_str.extend_from_slice(&((16u64 << 20) + 1).to_le_bytes());
    let mut big_array = head(0, 1);
    key(&mut big_array, "tokenizer.ggml.token_type", 9);
    big_array.extend_from_slice(&0u32.to_le_bytes());
    big_array.extend_from_slice(&((1u64 << 20) + 1).to_le_bytes());
    let mut long_key = head(0, 1);
    long_key.extend_from_slice(&70_000u64.to_le_bytes());
    let cases = [
        (
            padded(head(0, 70_000)),
            "field `metadata_kv_count`",
            "at most 65536",
        ),
        (
            padded(head(70_000, 0)),
            "field `tensor_count`",
            "at most 65536",
        ),
        (padded(long_key), "key length 70000", "limit of 65535"),
        (
            padded(long_str),
            "field `general.name`",
            "limit of 16777216 bytes",
        ),
        (
            padded(big_array),
            "field `tokenizer.ggml.token_type`",
            "limit of 1048576 elements",
        ),
    ];
    for (b, field, limit) in cases {
        let e = parse(&b).unwrap_err();
        assert!(e.contains(field) && e.contains(limit), "{e}");
    }
}
