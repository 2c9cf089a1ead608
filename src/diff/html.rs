//! `graphrun diff --html`: one self-contained page (inline CSS, JS and data; no network).
//! A heat map with one row per layer and one column per node kind shows each cell's worst
//! NMSE relative to its band (log scale: green well inside, yellow at the band, red out);
//! the first divergence is outlined and described at the top; clicking a cell lists that
//! node's records (every position and step) with all metrics.

use super::Report;
use serde_json::json;

/// Column of a node: its name without the `blk.N.` prefix.
fn kind(node: &str) -> &str {
    match node.strip_prefix("blk.") {
        Some(rest) => rest.split_once('.').map_or(rest, |(_, k)| k),
        None => node,
    }
}

pub fn render(r: &Report) -> String {
    let mut cols: Vec<String> = Vec::new();
    let mut rows: Vec<String> = Vec::new();
    for n in &r.nodes {
        let k = kind(&n.node).to_string();
        if !cols.contains(&k) {
            cols.push(k);
        }
        let l = super::layer_key(n.layer, &n.node);
        if !rows.contains(&l) {
            rows.push(l);
        }
    }
    let records: Vec<_> = r
        .nodes
        .iter()
        .map(|n| {
            json!({
                "node": n.node, "kind": kind(&n.node), "row": super::layer_key(n.layer, &n.node),
                "op": n.op, "pos": n.pos, "step": n.step, "rows": n.rows,
                "nmse": finite(n.nmse), "max_abs": n.max_abs.map(finite), "cosine": n.cosine,
                "std_ratio": finite(n.std_ratio), "band": n.band, "in_band": n.in_band,
                "note": n.note, "group": n.group, "from_stats": n.from_stats,
            })
        })
        .collect();
    let first = r.first_divergence.as_ref().map(|f| {
        json!({
            "at": f.at, "cause": f.cause, "line": r.first_line(),
            "inputs": f.inputs.iter().map(|i| json!({
                "node": i.node, "via": i.via, "nmse": finite(i.nmse), "band": i.band, "in_band": i.in_band
            })).collect::<Vec<_>>(),
        })
    });
    let data = json!({
        "a": r.a, "b": r.b, "contract": r.contract, "reason": r.contract_reason,
        "cols": cols, "rows": rows, "records": records, "first": first,
        "out_of_band": r.out_of_band, "only_in_a": r.only_in_a.len(), "only_in_b": r.only_in_b.len(),
    });
    // `</` cannot end the script early once escaped.
    let data = serde_json::to_string(&data)
        .expect("report serializes")
        .replace("</", "<\\/");
    TEMPLATE.replace("/*DATA*/null", &data)
}

/// JSON has no infinity: an infinite metric is written as a large number.
fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { 1e300 }
}

const TEMPLATE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>graphrun diff</title>
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:18px;margin:0 0 6px}
.meta{color:#555;margin-bottom:8px}
.verdict{padding:8px 10px;border-radius:4px;margin:8px 0;font-weight:600}
.ok{background:#e3f4e3;border:1px solid #7bb87b}.bad{background:#fbe4e1;border:1px solid #d26b5f}
table.hm{border-collapse:collapse;margin-top:8px}
table.hm td,table.hm th{border:1px solid #fff;padding:0;text-align:center}
table.hm th{font-weight:500;font-size:11px;padding:2px 4px;white-space:nowrap}
table.hm th.col{writing-mode:vertical-rl;transform:rotate(180deg);height:110px}
table.hm td.c{width:26px;height:18px;cursor:pointer}
table.hm td.c.none{background:#f4f4f4;cursor:default}
table.hm td.first{outline:3px solid #000;outline-offset:-2px}
table.hm td.sel{outline:2px dashed #06c;outline-offset:-2px}
table.hm td.first.sel{outline:3px solid #000}
#legend{display:flex;align-items:center;gap:6px;margin:8px 0;font-size:11px}
#legend span.sw{display:inline-block;width:22px;height:12px}
#details table{border-collapse:collapse;margin-top:6px}
#details td,#details th{border:1px solid #ddd;padding:2px 6px;text-align:right;font-variant-numeric:tabular-nums}
#details th{background:#f6f6f6}
.out{color:#b3261e;font-weight:600}
</style></head><body>
<h1>graphrun diff</h1>
<div class="meta" id="meta"></div>
<div id="verdict"></div>
<div id="legend"></div>
<table class="hm" id="hm"></table>
<div id="details"><p>Click a cell for the node's records.</p></div>
<script>
const D = /*DATA*/null;
const esc = s => String(s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
const sci = x => x === null || x === undefined ? '-' : (x === 0 ? '0' : (x >= 1e300 ? 'inf' : x.toExponential(2)));
// Color of NMSE relative to its band, on a log scale: exact = grey-green, 1e-6 of the band
// = green, the band = yellow, 1000x the band = red. A zero band (exact contract) colors
// NMSE itself against 1e-3, so small and large differences still look different.
function color(nmse, band) {
  if (nmse === 0) return '#cfe8cf';
  const rel = Math.log10(nmse / (band > 0 ? band : 1e-3));
  const t = Math.max(0, Math.min(1, (rel + 6) / 9));
  const stops = [[0,[46,139,87]],[0.667,[240,210,60]],[1,[200,30,30]]];
  let i = 0; while (i < stops.length - 2 && t > stops[i+1][0]) i++;
  const [t0,c0] = stops[i], [t1,c1] = stops[i+1], u = (t - t0) / (t1 - t0);
  return 'rgb(' + c0.map((v,k) => Math.round(v + (c1[k]-v)*u)).join(',') + ')';
}
document.getElementById('meta').innerHTML =
  'A: ' + esc(D.a.path) + ' (' + esc(D.a.executor) + ', act ' + esc(D.a.act) + (D.a.faults.length ? ', injected ' + esc(D.a.faults.join(' ')) : '') + ')<br>' +
  'B: ' + esc(D.b.path) + ' (' + esc(D.b.executor) + ', act ' + esc(D.b.act) + (D.b.faults.length ? ', injected ' + esc(D.b.faults.join(' ')) : '') + ') [reference]<br>' +
  'contract: <b>' + esc(D.contract) + '</b> (' + esc(D.reason) + '); ' + D.records.length + ' records compared; only in A: ' + D.only_in_a + ', only in B: ' + D.only_in_b;
const v = document.getElementById('verdict');
if (D.first) { v.className = 'verdict bad'; v.textContent = D.out_of_band + ' records out of band. ' + D.first.line; }
else { v.className = 'verdict ok'; v.textContent = 'Within band: all ' + D.records.length + ' records inside the contract bands.'; }
const lg = document.getElementById('legend');
lg.innerHTML = 'NMSE / band (zero band: NMSE / 1e-3): ' + [-6,-4,-2,0,1,3].map(e => '<span class="sw" style="background:' + color(Math.pow(10,e), 1) + '"></span>1e' + e).join(' ') + ' <span class="sw" style="background:#cfe8cf"></span>exact';
// cell -> records
const cells = {};
D.records.forEach((r, i) => { const k = r.row + '|' + r.kind; (cells[k] = cells[k] || []).push(i); });
const firstKey = D.first ? D.records[D.first.at].row + '|' + D.records[D.first.at].kind : null;
let html = '<tr><th>layer</th>' + D.cols.map(c => '<th class="col">' + esc(c) + '</th>').join('') + '</tr>';
for (const row of D.rows) {
  html += '<tr><th>' + esc(row) + '</th>';
  for (const col of D.cols) {
    const k = row + '|' + col, ids = cells[k];
    if (!ids) { html += '<td class="c none"></td>'; continue; }
    let worst = ids[0];
    for (const i of ids) { const r = D.records[i], w = D.records[worst];
      if (r.nmse / (r.band || 1e-300) > w.nmse / (w.band || 1e-300) || (!r.in_band && w.in_band)) worst = i; }
    const w = D.records[worst];
    html += '<td class="c' + (k === firstKey ? ' first' : '') + '" data-k="' + esc(k) + '" title="' + esc(w.node) + ': NMSE ' + sci(w.nmse) + ' / band ' + sci(w.band) + '" style="background:' + (w.note ? '#7b0000' : color(w.nmse, w.band)) + '"></td>';
  }
  html += '</tr>';
}
const hm = document.getElementById('hm');
hm.innerHTML = html;
function show(k, td) {
  hm.querySelectorAll('td.sel').forEach(e => e.classList.remove('sel'));
  if (td) td.classList.add('sel');
  const ids = cells[k] || [];
  const r0 = D.records[ids[0]];
  let h = '<h3>' + esc(r0.node) + ' (' + esc(r0.op) + ')' + (r0.group ? ' — kernel group ' + esc(r0.group) : '') + '</h3>';
  if (D.first && D.records[D.first.at].node === r0.node) {
    h += '<p class="out">First divergence (' + esc(D.first.cause) + '). Inputs: ' + D.first.inputs.map(i => esc(i.node) + (i.via ? ' (for ' + esc(i.via) + ')' : '') + ' NMSE ' + sci(i.nmse) + (i.in_band ? ' in band' : ' OUT OF BAND')).join('; ') + '</p>';
  }
  h += '<table><tr><th>pos</th><th>step</th><th>rows</th><th>NMSE</th><th>max-abs</th><th>cosine</th><th>std ratio</th><th>band</th><th>verdict</th></tr>';
  for (const i of ids) { const r = D.records[i];
    h += '<tr><td>' + r.pos + '</td><td>' + r.step + '</td><td>' + r.rows + '</td><td>' + sci(r.nmse) + (r.from_stats ? ' (lower bound)' : '') + '</td><td>' + sci(r.max_abs) + '</td><td>' + (r.cosine === null ? '-' : r.cosine.toFixed(7)) + '</td><td>' + r.std_ratio.toFixed(6) + '</td><td>' + sci(r.band) + '</td><td class="' + (r.in_band ? '' : 'out') + '">' + (r.in_band ? 'in band' : 'out' + (r.note ? ': ' + esc(r.note) : '')) + '</td></tr>'; }
  document.getElementById('details').innerHTML = h + '</table>';
}
hm.addEventListener('click', e => { const td = e.target.closest('td.c'); if (td && td.dataset.k) show(td.dataset.k, td); });
if (firstKey) show(firstKey, hm.querySelector('td.first'));
</script></body></html>
"##;

/// `graphrun diff --live --html`: the report of the step written as traces (`render`)
/// under a summary of the whole run: its verdict, the first token flip, and the logit NMSE
/// of every step as an inline SVG plot (log scale; the first flip and the stop marked).
pub fn render_live(live: &super::live::LiveReport) -> String {
    let sci = super::text::sci;
    let mut lines = vec![format!(
        "A: {} ({}) &nbsp; B: {} ({}) [reference]; contract <b>{}</b>; prompt {} tokens + {} of {} decode steps (teacher forcing with A's tokens), {} records in {:.1} s.",
        esc(&live.a.path),
        esc(&live.a.label()),
        esc(&live.b.path),
        esc(&live.b.label()),
        esc(&live.contract),
        live.prompt_tokens,
        live.steps_done,
        live.steps_requested,
        live.records,
        live.seconds
    )];
    lines.push(match &live.stop {
        Some(s) => format!(
            "<span style=\"color:#b3261e;font-weight:600\">Stopped at step {}: {} @pos {} NMSE {} &gt; band {}.</span>",
            s.step,
            esc(&s.node),
            s.pos,
            sci(s.nmse),
            sci(s.band)
        ),
        None => format!(
            "All records of all {} steps within band.",
            live.steps_done + 1
        ),
    });
    lines.push(match &live.first_flip {
        Some(f) => format!(
            "First token flip at step {} (pos {}): A {} vs B {}; reference margin {:.4} ({}, threshold {:.4}); {} flips in all.",
            f.step,
            f.pos,
            f.token_a,
            f.token_b,
            f.ref_margin,
            if f.near_tie { "a near-tie" } else { "NOT a near-tie" },
            f.tie_threshold,
            live.flip_steps.len()
        ),
        None => "The greedy tokens agree at every step.".to_string(),
    });
    let mut marks = Vec::new();
    if let Some(f) = &live.first_flip {
        marks.push((f.step, "#06c", "first flip"));
    }
    if let Some(s) = &live.stop {
        marks.push((s.step, "#b3261e", "stop"));
    }
    let section = format!(
        "<h1>graphrun diff --live</h1><div class=\"meta\">{}</div><h3>Logit NMSE per step</h3>{}<h2>Step {} (written as traces {} and {})</h2>",
        lines.join("<br>"),
        logit_plot(&live.logit_nmse, &marks),
        live.trace_step,
        esc(&live.trace_a),
        esc(&live.trace_b)
    );
    render(&live.step_report).replacen("<h1>graphrun diff</h1>", &section, 1)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG line plot of `nmse` per step on a log scale; exact zeros sit on the bottom edge.
/// `marks`: (step, color, label) vertical lines.
fn logit_plot(nmse: &[f64], marks: &[(usize, &str, &str)]) -> String {
    let (w, h, left, bottom) = (720.0, 180.0, 56.0, 22.0);
    let pos: Vec<f64> = nmse
        .iter()
        .copied()
        .filter(|x| *x > 0.0 && x.is_finite())
        .collect();
    let lo = pos.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = pos.iter().copied().fold(0.0, f64::max);
    let (d0, d1) = if pos.is_empty() {
        (-12.0, -11.0)
    } else {
        (
            lo.log10().floor(),
            hi.log10().ceil().max(lo.log10().floor() + 1.0),
        )
    };
    let n = nmse.len().max(2) - 1;
    let x = |i: usize| left + (w - left - 8.0) * i as f64 / n as f64;
    let y = |v: f64| {
        let t = if v > 0.0 && v.is_finite() {
            ((v.log10() - d0) / (d1 - d0)).clamp(0.0, 1.0)
        } else if v > 0.0 {
            1.0
        } else {
            0.0
        };
        8.0 + (h - bottom - 8.0) * (1.0 - t)
    };
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" style=\"font:11px system-ui,sans-serif\">"
    );
    for d in (d0 as i32)..=(d1 as i32) {
        let yy = y(10f64.powi(d));
        s += &format!(
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e4e4e4\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">1e{d}</text>",
            w - 8.0,
            left - 4.0,
            yy + 4.0
        );
    }
    for &(step, color, label) in marks {
        let xx = x(step);
        s += &format!(
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"8\" y2=\"{}\" stroke=\"{color}\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"18\" fill=\"{color}\">{label} (step {step})</text>",
            h - bottom,
            xx + 3.0
        );
    }
    let points: Vec<String> = nmse
        .iter()
        .enumerate()
        .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v)))
        .collect();
    s += &format!(
        "<polyline fill=\"none\" stroke=\"#333\" stroke-width=\"1.2\" points=\"{}\"/>",
        points.join(" ")
    );
    s += &format!(
        "<text x=\"{left}\" y=\"{}\">step 0</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">step {}</text></svg>",
        h - 6.0,
        w - 8.0,
        h - 6.0,
        nmse.len().saturating_sub(1)
    );
    s
}
