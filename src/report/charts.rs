//! SVG charts for the report, drawn with plotters' SVG backend.
//!
//! Every chart is a function from plain numbers to an SVG string, so it can be
//! tested and reused without any file or run. Colours come from palettes that
//! stay distinguishable with the common colour-vision deficiencies: Okabe & Ito
//! (2008) for categories, and a blue–white–orange diverging scale (endpoints
//! from Paul Tol's colour-blind-safe schemes) for heatmaps.

use std::fmt::Write as _;

use plotters::prelude::*;

/// Okabe–Ito, then Tol's muted scheme for categories beyond eight.
pub const PALETTE: [&str; 16] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255",
];

pub fn colour(i: usize) -> RGBColor {
    hex(PALETTE[i % PALETTE.len()])
}

fn hex(h: &str) -> RGBColor {
    let v = u32::from_str_radix(h.trim_start_matches('#'), 16).unwrap_or(0);
    RGBColor((v >> 16) as u8, (v >> 8) as u8, v as u8)
}

/// Diverging colour for `v` in [-1, 1]: blue (negative), white, orange (positive).
pub fn diverging(v: f64) -> RGBColor {
    let v = if v.is_finite() {
        v.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let (end, t) = if v < 0.0 {
        ((33.0, 102.0, 172.0), -v)
    } else {
        ((230.0, 97.0, 1.0), v)
    };
    let mix = |a: f64| (255.0 + (a - 255.0) * t).round() as u8;
    RGBColor(mix(end.0), mix(end.1), mix(end.2))
}

/// Sequential colour for a share in [0, 1]: white to dark blue.
pub fn sequential(v: f64) -> RGBColor {
    let t = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mix = |a: f64| (255.0 + (a - 255.0) * t).round() as u8;
    RGBColor(mix(8.0), mix(48.0), mix(107.0))
}

type Res<T> = Result<T, String>;

/// The font size asked of plotters for chart text. Its SVG backend writes a
/// size `s` as `s / 1.24` px, so 15 renders at 12.1 px: at least 11 px even
/// where a chart is scaled to fit an 800 px wide window.
const LABEL: f64 = 15.0;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Small multiples: one line chart per score over x (k, or the resolution γ),
/// the chosen x marked. `better`: whether higher or lower is better, if either.
pub fn small_multiples(
    xs: &[f64],
    x_desc: &str,
    series: &[(&str, Vec<f64>, Option<bool>)],
    chosen: f64,
) -> Res<String> {
    let mut out = String::new();
    let (w, h) = (280u32, 210u32);
    let integer_x = xs.iter().all(|x| x.fract() == 0.0);
    let (x_min, x_max) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, &x| {
        (a.0.min(x), a.1.max(x))
    });
    for (i, (name, ys, better)) in series.iter().enumerate() {
        let mut pts: Vec<(f64, f64)> = xs
            .iter()
            .zip(ys)
            .filter(|(_, y)| y.is_finite())
            .map(|(&x, &y)| (x, y))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        if pts.is_empty() {
            continue;
        }
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            let (lo, hi) = pts.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
                (a.0.min(p.1), a.1.max(p.1))
            });
            let pad = ((hi - lo) * 0.1).max(1e-9);
            let span = (x_max - x_min).max(1.0);
            let caption = match better {
                Some(true) => format!("{name} (higher is better)"),
                Some(false) => format!("{name} (lower is better)"),
                None => name.to_string(),
            };
            let mut chart = ChartBuilder::on(&root)
                .caption(caption, ("sans-serif", LABEL + 1.0))
                .margin(6)
                .x_label_area_size(36)
                .y_label_area_size(54)
                .build_cartesian_2d(x_min - 0.05 * span..x_max + 0.05 * span, lo - pad..hi + pad)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .x_labels(if integer_x { xs.len().min(10) } else { 6 })
                .y_labels(5)
                .x_label_formatter(&|v| {
                    if integer_x {
                        format!("{v:.0}")
                    } else {
                        format!("{v:.2}")
                    }
                })
                .y_label_formatter(&|v| tick(*v, hi - lo))
                .light_line_style(RGBColor(235, 235, 235))
                .label_style(("sans-serif", LABEL))
                .axis_desc_style(("sans-serif", LABEL))
                .draw()
                .map_err(err)?;
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(err)?;
            chart
                .draw_series(pts.iter().map(|&(x, y)| {
                    let chosen_here = (x - chosen).abs() < 1e-9;
                    Circle::new(
                        (x, y),
                        if chosen_here { 6 } else { 3 },
                        if chosen_here {
                            BLACK.filled()
                        } else {
                            c.filled()
                        },
                    )
                }))
                .map_err(err)?;
            root.present().map_err(err)?;
        }
        out.push_str(&svg);
    }
    Ok(out)
}

/// An axis label with as many decimals as the axis range needs, so that
/// five ticks over a narrow range (0.11 … 0.12) do not print the same text.
pub fn tick(v: f64, range: f64) -> String {
    if !(range.is_finite() && range > 0.0) || v.abs() >= 1e4 {
        return short(v);
    }
    let step = range / 5.0;
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    if v.abs() >= 100.0 && decimals <= 1 {
        return format!("{v:.0}");
    }
    format!("{v:.*}", decimals.min(6))
}

/// Compact number for axis labels.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Horizontal paired bars as an HTML table: each segment's name in full,
/// its share of accounts (blue) and of the value (orange) as bars with their
/// percentages. HTML so the names wrap instead of being cut and the text
/// stays the page's size at any width.
pub fn shares(labels: &[String], accounts: &[f64], value: Option<&[f64]>) -> String {
    let max = accounts
        .iter()
        .chain(value.unwrap_or(&[]))
        .fold(0.0f64, |a, &b| a.max(b))
        .max(0.01);
    let bar = |v: f64, c: &str| {
        format!(
            "<div class=\"bar\"><span style=\"width:{:.1}%;background:{c}\"></span>{:.0}%</div>",
            (v / max * 80.0).max(0.3),
            v * 100.0
        )
    };
    let mut h = String::from("<table class=\"bars\"><tbody>");
    for (i, l) in labels.iter().enumerate() {
        let mut tip = format!("{l}: {:.1}% of accounts", accounts[i] * 100.0);
        let mut bars = bar(accounts[i], PALETTE[0]);
        if let Some(v) = value {
            tip.push_str(&format!(", {:.1}% of the value", v[i] * 100.0));
            bars.push_str(&bar(v[i], PALETTE[1]));
        }
        let _ = write!(
            h,
            "<tr title=\"{}\"><th scope=\"row\">{}</th><td>{bars}</td></tr>",
            super::esc(&tip),
            super::esc(l)
        );
    }
    h.push_str("</tbody></table>");
    h
}

/// A heatmap as an HTML table: row and column labels in full (the page's
/// text size, wrapping where they must, never rotated), each cell shaded by
/// `cell`'s colour with its text and a tooltip naming its row and column.
/// An HTML table rather than an SVG so that its text is the page's 13 px at
/// any width and a wide one scrolls inside its section instead of shrinking.
pub fn heatmap(
    rows: &[String],
    cols: &[String],
    cell: &dyn Fn(usize, usize) -> (RGBColor, String),
) -> String {
    use super::esc;
    let mut h = String::from("<table class=\"heat\"><thead><tr><th></th>");
    for c in cols {
        let _ = write!(h, "<th scope=\"col\">{}</th>", esc(c));
    }
    h.push_str("</tr></thead><tbody>");
    for (i, r) in rows.iter().enumerate() {
        let _ = write!(h, "<tr><th scope=\"row\">{}</th>", esc(r));
        for (j, c) in cols.iter().enumerate() {
            let (fill, text) = cell(i, j);
            if text.is_empty() && fill == WHITE {
                h.push_str("<td></td>");
                continue;
            }
            let dark = (fill.0 as u32 + fill.1 as u32 + fill.2 as u32) < 330;
            let _ = write!(
                h,
                "<td style=\"background:#{:02x}{:02x}{:02x}{}\" title=\"{} × {}: {}\">{}</td>",
                fill.0,
                fill.1,
                fill.2,
                if dark { ";color:#fff" } else { "" },
                esc(r),
                esc(c),
                esc(&text),
                esc(&text)
            );
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
    h
}

/// A scatter plot of 2-D points coloured by group, `marked` points (the
/// flagged accounts) ringed in black on top, then its legend as HTML below
/// the chart: outside the points, each group's name in full.
pub fn scatter(
    points: &[(f64, f64, usize)],
    marked: &[(f64, f64)],
    groups: &[String],
    marked_label: &str,
    (x_desc, y_desc): (&str, &str),
) -> Res<String> {
    let (w, h) = (700u32, 500u32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (mut x0, mut x1, mut y0, mut y1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for (x, y) in points
            .iter()
            .map(|p| (p.0, p.1))
            .chain(marked.iter().copied())
        {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if !x0.is_finite() {
            (x0, x1, y0, y1) = (-1.0, 1.0, -1.0, 1.0);
        }
        let (px, py) = (((x1 - x0) * 0.05).max(1e-6), ((y1 - y0) * 0.05).max(1e-6));
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(x0 - px..x1 + px, y0 - py..y1 + py)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .light_line_style(RGBColor(240, 240, 240))
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .label_style(("sans-serif", LABEL))
            .axis_desc_style(("sans-serif", LABEL))
            .draw()
            .map_err(err)?;
        for g in 0..groups.len() {
            let c = colour(g);
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| p.2 == g)
                        .map(|&(x, y, _)| Circle::new((x, y), 2, c.mix(0.75).filled())),
                )
                .map_err(err)?;
        }
        chart
            .draw_series(
                marked
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 4, BLACK.stroke_width(1))),
            )
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    let mut legend = String::from("<ul class=\"legend\">");
    for (g, name) in groups.iter().enumerate() {
        let _ = write!(
            legend,
            "<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
            PALETTE[g % PALETTE.len()],
            super::esc(name)
        );
    }
    if !marked.is_empty() {
        let _ = write!(
            legend,
            "<li><span class=\"swatch ring\"></span>{}</li>",
            super::esc(marked_label)
        );
    }
    legend.push_str("</ul>");
    Ok(svg + &legend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_over_a_narrow_range_read_differently() {
        let ticks: Vec<String> = [0.110, 0.1125, 0.115, 0.1175, 0.120]
            .iter()
            .map(|&v| tick(v, 0.01))
            .collect();
        let mut unique = ticks.clone();
        unique.dedup();
        assert_eq!(unique.len(), 5, "{ticks:?}");
        assert_eq!(tick(1234.0, 4000.0), "1234");
        assert_eq!(tick(0.5, 1.0), "0.5");
    }

    #[test]
    fn charts_are_svg_with_their_labels() {
        let s = small_multiples(
            &[2.0, 3.0, 4.0],
            "k",
            &[("silhouette", vec![0.2, 0.5, 0.4], Some(true))],
            3.0,
        )
        .unwrap();
        assert!(s.starts_with("<svg") && s.contains("silhouette"));
        let h = heatmap(
            &["Segment 1".into()],
            &["arr".into(), "seats & <more>".into()],
            &|_, j| (diverging(j as f64 - 0.5), format!("{j}")),
        );
        assert!(h.starts_with("<table class=\"heat\">") && h.contains("Segment 1"));
        assert!(
            h.contains("seats &amp; &lt;more&gt;") && h.contains("title=\"Segment 1 × arr: 0\"")
        );
        let p = scatter(
            &[(0.0, 1.0, 0), (1.0, 0.0, 1)],
            &[(1.0, 0.0)],
            &["a".into(), "b & c".into()],
            "flagged",
            ("principal component 1", "principal component 2"),
        )
        .unwrap();
        assert!(
            p.contains("<circle") && p.contains("b &amp; c</li>") && p.contains("flagged</li>")
        );
    }

    #[test]
    fn diverging_scale_is_white_at_zero_and_saturates() {
        assert_eq!(diverging(0.0), RGBColor(255, 255, 255));
        assert_eq!(diverging(5.0), diverging(1.0));
        assert_ne!(diverging(-1.0), diverging(1.0));
    }
}
