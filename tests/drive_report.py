"""Drive report.html in headless Chromium (Playwright, with the system's
Chromium: no browser download) as an analyst would: search, filter, sort the
exceptions table, and hover a chart cell; check the visible rows each time and
that the page logs no console errors.

Usage: python drive_report.py REPORT_HTML CHROMIUM
Prints what it checked; exits 1 on the first failure.
"""
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

page_path, chromium = Path(sys.argv[1]).resolve(), sys.argv[2]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def visible(page):
    """(rank, id, tier, dir, seg, conf, value) of the visible rows, in order."""
    return page.eval_on_selector_all(
        "#ex-table tbody tr",
        "rs => rs.filter(r => !r.hidden).map(r => [+r.dataset.rank, r.dataset.id, r.dataset.tier,"
        " r.dataset.dir, r.dataset.seg, +r.dataset.conf, +r.dataset.value])",
    )


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
    page = browser.new_page()
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: problems.append(f"request: {r.url}") if not r.url.startswith(("file:", "data:", "about:")) else None)
    page.goto(page_path.as_uri())
    rows = visible(page)
    n = len(rows)
    assert n > 10, f"only {n} exceptions in the table"
    assert [r[0] for r in rows] == list(range(1, n + 1)), "not in rank order at first"
    assert page.inner_text("#ex-count") == f"showing {n} of {n}"
    print(f"{n} exceptions, in rank order")

    # Search by account id: exactly that account.
    target = rows[n // 2][1]
    page.fill("#ex-search", target)
    got = visible(page)
    assert [r[1] for r in got] == [target], got
    assert page.inner_text("#ex-count") == f"showing 1 of {n}"
    page.fill("#ex-search", "")
    print(f"search {target}: 1 row")

    # Filter by direction, then tier as well.
    page.select_option("#ex-dir", "upgrade")
    got = visible(page)
    want = [r for r in rows if r[3] == "upgrade"]
    assert got == want and got, (len(got), len(want))
    tier = want[0][2]
    page.select_option("#ex-tier", tier)
    got = visible(page)
    assert got == [r for r in want if r[2] == tier], "tier filter"
    print(f"upgrade: {len(want)} rows; and tier {tier}: {len(got)}")
    page.select_option("#ex-dir", "")
    page.select_option("#ex-tier", "")

    # Minimum confidence and value.
    page.fill("#ex-conf", "0.9")
    got = visible(page)
    assert got == [r for r in rows if r[5] >= 0.9], "confidence filter"
    page.fill("#ex-conf", "0")
    cut = sorted(r[6] for r in rows)[n // 2]
    page.fill("#ex-value", str(cut))
    got = visible(page)
    assert got == [r for r in rows if r[6] >= cut], "value filter"
    page.fill("#ex-value", "0")
    print("confidence and value filters")

    # Segment filter.
    seg = rows[0][4]
    page.select_option("#ex-seg", seg)
    assert visible(page) == [r for r in rows if r[4] == seg], "segment filter"
    page.select_option("#ex-seg", "")

    # Sort by confidence: click once ascending, again descending.
    head = page.locator("#ex-table th[data-key=conf]")
    head.click()
    confs = [r[5] for r in visible(page)]
    assert confs == sorted(confs), "ascending confidence"
    assert head.get_attribute("aria-sort") == "ascending"
    head.click()
    confs = [r[5] for r in visible(page)]
    assert confs == sorted(confs, reverse=True), "descending confidence"
    page.locator("#ex-table th[data-key=id]").click()
    ids = [r[1] for r in visible(page)]
    assert ids == sorted(ids), "account ids ascending"
    print("sorted by confidence both ways and by account")

    # Segment names in the table, beside their IDs.
    seg_cell = page.locator("#ex-table tbody tr:not([hidden]) td").nth(4).inner_text()
    assert " · " in seg_cell and len(seg_cell) > 6, seg_cell

    # Amounts as people type them: "100k".
    page.fill("#ex-value", "100k")
    got = visible(page)
    assert sorted(got) == sorted(r for r in rows if r[6] >= 100000) and got, "100k filter"
    page.fill("#ex-value", "0")
    print(f"'100k' keeps {len(got)} rows")

    # The header stays visible while the table scrolls under it.
    page.set_viewport_size({"width": 1400, "height": 900})
    page.locator("#ex-table tbody tr").nth(len(rows) // 2).scroll_into_view_if_needed()
    head_box = page.locator("#ex-table thead th").first.bounding_box()
    assert 0 <= head_box["y"] < 60, f"the header is at {head_box['y']} px"
    print("header sticks while scrolling")
    tips = page.eval_on_selector_all("#tiers table.heat td[title]", "ts => ts.map(t => t.title)")
    assert any(" × " in t for t in tips), tips[:5]
    print(f"{len(tips)} heatmap tooltips, e.g. {next(t for t in tips if ' × ' in t)!r}")

    # The decision is on the first screen: the value split, the top moves and
    # the tier headcounts, within the first 900 px at 1400 × 900.
    page.set_viewport_size({"width": 1400, "height": 900})
    page.evaluate("window.scrollTo(0, 0)")
    box = page.locator("#decision")
    top = box.bounding_box()["y"]
    assert top < 900, f"the decision starts at {top} px"
    text = box.inner_text()
    for needle in ["under-served", "over-served", "Top moves", "Tiers after the moves"]:
        assert needle in text, f"{needle!r} not in the decision box"
    first_move = page.locator("#decision table.moves tr").nth(1).bounding_box()
    assert first_move["y"] < 900, f"the first move is at {first_move['y']} px"
    print(f"decision box at {top:.0f} px, first move at {first_move['y']:.0f} px")

    # No sideways scroll at 800 px: wide charts scale, wide tables scroll
    # inside their section.
    page.set_viewport_size({"width": 800, "height": 900})
    sideways = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert sideways <= 0, f"the page scrolls {sideways} px sideways at 800 px"
    page.set_viewport_size({"width": 1400, "height": 900})
    print("no sideways scroll at 800 px")

    # The staffing table sits above the fold's sections it serves, and the
    # tier rule reads as rows (condition, tier, counts) that fit the page.
    page.set_viewport_size({"width": 1400, "height": 900})
    tops = page.evaluate("""['capacity', 'rule', 'quality'].map(id => {
        const e = document.getElementById(id); return e ? e.getBoundingClientRect().top + scrollY : -1; })""")
    assert -1 not in tops and tops[0] < tops[1] < tops[2], f"staffing, rule, quality at {tops}"
    rules = page.eval_on_selector_all("#rule table.rules tr", "rs => rs.map(r => r.innerText)")
    assert len(rules) >= 3 and rules[-1].startswith("otherwise"), rules
    wide = page.evaluate("""[...document.querySelectorAll('#capacity table, #rule table.rules')]
        .filter(t => t.getBoundingClientRect().right > document.documentElement.clientWidth).length""")
    assert wide == 0, "a staffing or rule table is wider than the page"
    print(f"staffing then the rule ({len(rules) - 1} lines) above data quality")

    # Charts and heatmaps: every chart text at least 11 px on screen at 1400
    # and 800 px, none cut with an ellipsis, no label rotated but the y-axis
    # titles; the map's legend outside the plot and the flagged accounts ringed.
    for width in (1400, 800):
        page.set_viewport_size({"width": width, "height": 900})
        texts = page.evaluate("""[...document.querySelectorAll('svg text')].map(t => {
            const svg = t.ownerSVGElement, vb = svg.viewBox.baseVal;
            const scale = vb && vb.width ? svg.getBoundingClientRect().width / vb.width : 1;
            return [parseFloat(getComputedStyle(t).fontSize) * scale, t.textContent.trim(),
                    (t.getAttribute('transform') || '').includes('rotate')]; })""")
        small = [t for t in texts if t[0] < 11]
        assert not small, f"chart text under 11 px at {width} px: {small[:5]}"
        cut = [t[1] for t in texts if "…" in t[1]]
        assert not cut, f"chart labels cut at {width} px: {cut[:5]}"
        rotated = [t[1] for t in texts if t[2] and "principal component" not in t[1]]
        assert not rotated, f"rotated labels: {rotated[:5]}"
        heat = page.evaluate("""[...document.querySelectorAll('table.heat td, table.heat th, table.bars th')]
            .map(e => parseFloat(getComputedStyle(e).fontSize)).filter(s => s < 11).length""")
        assert heat == 0, f"{heat} heatmap cells under 11 px at {width} px"
    page.set_viewport_size({"width": 1400, "height": 900})
    legend = page.eval_on_selector_all("#map ul.legend li", "ls => ls.map(l => l.innerText)")
    assert any(l.startswith("Segment 1") for l in legend) and any("flagged" in l for l in legend), legend
    plot = page.locator("#map svg").bounding_box()
    first = page.locator("#map ul.legend li").first.bounding_box()
    assert first["y"] >= plot["y"] + plot["height"] - 1, "the map's legend overlaps the plot"
    rings = page.locator("#map svg circle[fill=none][stroke='#000000']").count()
    assert rings > 0, "no flagged account ringed on the map"
    medians = page.eval_on_selector_all("#profiles table.heat", "ts => ts.map(t => t.innerText)")
    assert any("$" in t and "%" in t for t in medians), "no medians in business units"
    print(f"chart text >= 11 px at 1400 and 800 px, none cut; map legend below the plot, {rings} flagged accounts ringed; medians in units")

    assert not problems, problems
    browser.close()
print("no console errors, no network requests")
