//! The persistent decode program: the fused decode schedule as an instruction list that one
//! kernel launch per token executes (kernels/persistent.cu; issue #11).
//!
//! Every fused group becomes one instruction (attention two: partials and merge), in the
//! schedule's order, and keeps the group's index and graph node name, so traces, profiles
//! and errors name graph nodes. Two instructions follow the logits: the argmax over chunks
//! and its merge. An instruction has `items` work items that the CTAs share in contiguous
//! ranges (CTA c of G: `[items·c/G, items·(c+1)/G)`, `cta_items`):
//!
//! | op | group | work item |
//! |---|---|---|
//! | `embed` | the embedding | EMB_TILE elements of the row |
//! | `qkv` | RMSNorm → Q/K/V (+bias) → RoPE → KV append | QKV_PAIRS RoPE pairs (a warp each) |
//! | `attn` | attention | (KV head, split of positions) for all query heads of the KV group |
//! | `attn_merge` | attention | one KV head: merge of its splits for the group's query heads |
//! | `matvec` | norm+gate·up, matmul+add, norm+logits | a tile of `tile_rows` rows |
//! | `argmax`, `argmax_merge` | — | ARGMAX_CHUNK logits; the final choice |
//!
//! Each instruction lists the buffers (`Region`s) it reads and writes; its dependencies
//! (at most three producer instructions, all earlier) are derived from them — the last
//! writer of every region it reads (read after write), and the last writer and the readers
//! since of every region it writes (write after write or read) — then reduced to the ones
//! not already implied through another. `Program::check` verifies the result independently.
//! Activations live in a buffer plan without reuse (every value its own memory), so no
//! value is overwritten within a launch and every instruction's output can be read after it.
//!
//! Batching (B ≤ 8 sequences per step, not implemented) keeps this shape: regions and
//! dependencies are per step, a matvec tile computes B outputs per weight row from B staged
//! input rows (weights read once), Q/K/V items store B rows at B positions, attention
//! items become (sequence, KV head, chunk) and merge items (sequence, head); only `items`
//! and the staging bytes grow.
//!
//! Rooms: `instr.rs` the instruction format, `builder.rs` the building from the schedule,
//! `deps.rs` the dependencies and the program's check, `sizing.rs` the sizing policy (pure
//! functions of shapes and device limits).

mod builder;
mod deps;
mod instr;
mod sizing;

pub use builder::build;
pub use instr::{Body, Instr, MAX_DEPS, Program, Region};
pub use sizing::{
    AttnGeom, H200_MAX_SMEM, H200_SMEM_PER_SM, PERSIST_STATIC_SMEM, ProgramOptions, Staging,
    att_smem_budget, att_splits, attn_geom, cta_items, matvec_split, persistent_ctas, staging,
};
