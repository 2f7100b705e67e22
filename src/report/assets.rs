//! The page's inline CSS and its one small script (the exceptions table's
//! sorting, filtering and search).

pub(super) const CSS: &str = r#"
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1a1a1a;background:#fafafa;line-height:1.45}
header{background:#0b3c5d;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;opacity:.85}
nav{background:#fff;border-bottom:1px solid #ddd;padding:8px 32px;position:sticky;top:0;z-index:2}
nav a{margin-right:14px;color:#0b3c5d;text-decoration:none;font-size:14px}
@media (max-width:900px){nav{white-space:nowrap;overflow-x:auto}}
main{padding:8px 32px 40px;max-width:1200px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:14px 20px;margin:16px 0}section:not(#exceptions){overflow-x:auto}section svg{max-width:100%;height:auto}#ex-table thead th{position:sticky;top:0;background:#eef2f6;z-index:2}#ex-table td{overflow-wrap:anywhere}
h2{font-size:18px;margin:4px 0 10px;color:#0b3c5d}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f6f9}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #e3e3e3;border-radius:6px;padding:10px 14px;min-width:150px;background:#fdfdfd}
.card b{display:block;font-size:22px;color:#0b3c5d}
.charts{display:flex;flex-wrap:wrap;gap:8px}
.note{color:#555;font-size:13px}
.error{color:#b2182b;font-weight:600}.warning{color:#8a5a00;font-weight:600}.decision{border:2px solid #2166ac}.decision .stake .card span{display:block;font-size:12px;color:#555}.verdict-line{font-size:17px}.stability-warning{border-left:4px solid #c98a00;background:#fff8e6;padding:.4em 1em;margin:.6em 0}.info{color:#555}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px -2px 10px;border:1px solid #ccc}
.filters{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:13px;margin:8px 0}
.filters input,.filters select{font:inherit;margin-left:4px}.filters input[type=number]{width:6em}
th.sortable{cursor:pointer;user-select:none}th.sortable:hover{background:#e4ebf2}
th[aria-sort=ascending]::after{content:" ▲"}th[aria-sort=descending]::after{content:" ▼"}
details summary{cursor:pointer}
table.heat td{text-align:right;font-variant-numeric:tabular-nums;min-width:3.5em;border:1px solid #fff;white-space:nowrap}table.heat thead th{vertical-align:bottom;max-width:8em;font-weight:600}table.heat tbody th{font-weight:400;max-width:28em;background:#fff}
table.bars{width:100%}table.bars th{font-weight:400;background:#fff;width:45%}table.bars td{width:55%}.bar{display:flex;align-items:center;gap:6px;font-size:12px;font-variant-numeric:tabular-nums;height:16px}.bar span{display:inline-block;height:12px}
ul.legend{list-style:none;padding:0;margin:4px 0;display:flex;flex-wrap:wrap;gap:4px 18px;font-size:13px}ul.legend .swatch{display:inline-block;width:11px;height:11px;border-radius:50%;margin-right:6px;border:0}ul.legend .ring{background:transparent;border:1.5px solid #000;width:9px;height:9px}
.outcome-groups{display:flex;flex-wrap:wrap;gap:0 24px;align-items:flex-start}
"#;

/// The exceptions table's behaviour: filter by the controls above it, sort
/// by a clicked header (again: the other way), and say how many rows show.
pub const SCRIPT: &str = r#"
(function () {
  var t = document.getElementById("ex-table");
  if (!t) { return; }
  var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  function q(id) { return document.getElementById(id); }
  // "100k", "$1.2M", "250,000": an amount as people type it.
  function amount(s) {
    var m = /^\s*\$?\s*([0-9][0-9,]*\.?[0-9]*|\.[0-9]+)\s*([kmb]?)\s*$/i.exec(s || "");
    if (!m) { return 0; }
    var v = parseFloat(m[1].replace(/,/g, "")) || 0;
    return v * ({ k: 1e3, m: 1e6, b: 1e9 }[m[2].toLowerCase()] || 1);
  }
  function apply() {
    var s = q("ex-search").value.trim().toLowerCase(), tier = q("ex-tier").value,
        dir = q("ex-dir").value, seg = q("ex-seg").value,
        conf = parseFloat(q("ex-conf").value) || 0, val = amount(q("ex-value").value),
        shown = 0;
    rows.forEach(function (r) {
      var d = r.dataset;
      var ok = (!s || d.id.toLowerCase().indexOf(s) >= 0) && (!tier || d.tier === tier) &&
        (!dir || d.dir === dir) && (!seg || d.seg === seg) && +d.conf >= conf && +d.value >= val;
      r.hidden = !ok;
      if (ok) { shown++; }
    });
    q("ex-count").textContent = "showing " + shown + " of " + rows.length;
  }
  ["ex-search", "ex-tier", "ex-dir", "ex-seg", "ex-conf", "ex-value"].forEach(function (id) {
    q(id).addEventListener("input", apply);
    q(id).addEventListener("change", apply);
  });
  var heads = Array.prototype.slice.call(t.tHead.rows[0].cells);
  heads.forEach(function (th) {
    if (!th.dataset.key) { return; }
    th.tabIndex = 0;
    th.classList.add("sortable");
    function sort() {
      var key = th.dataset.key, num = th.dataset.type === "num",
          asc = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (o) { o.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      rows.sort(function (a, b) {
        var x = a.dataset[key], y = b.dataset[key];
        var c = num ? (+x) - (+y) : x.localeCompare(y);
        if (c === 0) { c = (+a.dataset.rank) - (+b.dataset.rank); return c; }
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
  });
  apply();
})();
"#;
