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
