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
    let (w, h) = (230u32, 190u32);
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
                .caption(caption, ("sans-serif", 13))
                .margin(6)
                .x_label_area_size(28)
                .y_label_area_size(46)
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
                .label_style(("sans-serif", 11))
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

/// Horizontal paired bars: share of accounts (blue) and of ARR (orange) per
/// segment, with the labels and percentages written beside them.
pub fn shares(labels: &[String], accounts: &[f64], value: Option<&[f64]>) -> Res<String> {
    let n = labels.len();
    let (left, bar_w, row) = (300i32, 380f64, 36i32);
    let h = (20 + row * n as i32 + 10) as u32;
    let w = (left as f64 + bar_w + 70.0) as u32;
    let max = accounts
        .iter()
        .chain(value.unwrap_or(&[]))
        .fold(0.0f64, |a, &b| a.max(b))
        .max(0.01);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let label = TextStyle::from(("sans-serif", 12).into_font()).color(&BLACK);
        let small = TextStyle::from(("sans-serif", 11).into_font()).color(&RGBColor(60, 60, 60));
        for i in 0..n {
            let y = 14 + row * i as i32;
            root.draw(&Text::new(
                truncate(&labels[i], 46),
                (6, y + 10),
                label.clone(),
            ))
            .map_err(err)?;
            let bar = |v: f64, dy: i32, c: RGBColor| -> Res<()> {
                let len = (v / max * bar_w).round() as i32;
                root.draw(&Rectangle::new(
                    [(left, y + dy), (left + len.max(1), y + dy + 13)],
                    c.filled(),
                ))
                .map_err(err)?;
                root.draw(&Text::new(
                    format!("{:.0}%", v * 100.0),
                    (left + len + 4, y + dy + 1),
                    small.clone(),
                ))
                .map_err(err)?;
                Ok(())
            };
            bar(accounts[i], 0, colour(0))?;
            if let Some(v) = value {
                bar(v[i], 15, colour(1))?;
            }
        }
        root.draw(&PathElement::new(
            vec![(left, 8), (left, h as i32 - 6)],
            RGBColor(150, 150, 150),
        ))
        .map_err(err)?;
        root.present().map_err(err)?;
    }
    // Tooltips on each row: the full label and both shares.
    let mut tips = String::new();
    for i in 0..n {
        let y = 14 + row * i as i32;
        let mut text = format!("{}: {:.1}% of accounts", labels[i], accounts[i] * 100.0);
        if let Some(v) = value {
            text.push_str(&format!(", {:.1}% of the value", v[i] * 100.0));
        }
        tip(&mut tips, (0, y as u32), (w, row as u32), &text);
    }
    Ok(with_tips(svg, &tips))
}

/// A heatmap with row and column labels; `cell` gives colour and text.
pub fn heatmap(
    rows: &[String],
    cols: &[String],
    cell: &dyn Fn(usize, usize) -> (RGBColor, String),
    cell_w: u32,
) -> Res<String> {
    let left = 260u32;
    let longest = cols
        .iter()
        .map(|c| c.chars().count().min(18))
        .max()
        .unwrap_or(4) as u32;
    let top = 16 + longest * 7;
    let ch = 26u32;
    let w = left + cell_w * cols.len() as u32 + 10;
    let h = top + ch * rows.len() as u32 + 10;
    // Tooltips: transparent boxes over every label and cell, each with a
    // <title> holding the full text (labels are cut to fit; cells say which
    // row and column they are).
    let mut tips = String::new();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let label = TextStyle::from(("sans-serif", 12).into_font()).color(&BLACK);
        for (j, c) in cols.iter().enumerate() {
            let x = (left + cell_w * j as u32 + cell_w / 2) as i32;
            let style = label.transform(FontTransform::Rotate270);
            root.draw(&Text::new(truncate(c, 18), (x - 6, top as i32 - 6), style))
                .map_err(err)?;
            tip(&mut tips, (left + cell_w * j as u32, 0), (cell_w, top), c);
        }
        for (i, r) in rows.iter().enumerate() {
            let y = (top + ch * i as u32) as i32;
            root.draw(&Text::new(truncate(r, 40), (6, y + 7), label.clone()))
                .map_err(err)?;
            tip(&mut tips, (0, y as u32), (left, ch), r);
            for (j, c) in cols.iter().enumerate() {
                let (fill, text) = cell(i, j);
                if text.is_empty() && fill == WHITE {
                    continue; // sparse matrices stay small
                }
                let x = (left + cell_w * j as u32) as i32;
                tip(
                    &mut tips,
                    (x as u32, y as u32),
                    (cell_w, ch),
                    &format!("{r} × {c}: {text}"),
                );
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell_w as i32 - 1, y + ch as i32 - 1)],
                    fill.filled(),
                ))
                .map_err(err)?;
                if !text.is_empty() {
                    let dark = (fill.0 as u32 + fill.1 as u32 + fill.2 as u32) < 330;
                    let st = TextStyle::from(("sans-serif", 11).into_font()).color(if dark {
                        &WHITE
                    } else {
                        &BLACK
                    });
                    root.draw(&Text::new(text, (x + 4, y + 7), st))
                        .map_err(err)?;
                }
            }
        }
        root.present().map_err(err)?;
    }
    Ok(with_tips(svg, &tips))
}

/// A transparent box at `(x, y)` of size `(w, h)` whose tooltip is `title`.
fn tip(out: &mut String, (x, y): (u32, u32), (w, h): (u32, u32), title: &str) {
    let _ = write!(
        out,
        "<rect class=\"tip\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"transparent\"><title>{}</title></rect>",
        super::esc(title)
    );
}

/// `svg` with the tooltip boxes `tips` drawn last (on top, so they get the hover).
fn with_tips(mut svg: String, tips: &str) -> String {
    match svg.rfind("</svg>") {
        Some(end) => svg.insert_str(end, tips),
        None => svg.push_str(tips),
    }
    svg
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

/// A scatter plot of 2-D points coloured by group, with a legend.
pub fn scatter(
    points: &[(f64, f64, usize)],
    groups: &[String],
    x_desc: &str,
    y_desc: &str,
) -> Res<String> {
    let (w, h) = (760u32, 520u32);
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
        for &(x, y, _) in points {
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
            .x_label_area_size(32)
            .y_label_area_size(40)
            .build_cartesian_2d(x0 - px..x1 + px, y0 - py..y1 + py)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .light_line_style(RGBColor(240, 240, 240))
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(err)?;
        for (g, name) in groups.iter().enumerate() {
            let c = colour(g);
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| p.2 == g)
                        .map(|&(x, y, _)| Circle::new((x, y), 2, c.mix(0.75).filled())),
                )
                .map_err(err)?
                .label(truncate(name, 44))
                .legend(move |(x, y)| Circle::new((x + 5, y), 4, c.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 11))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
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
            &["arr".into(), "seats".into()],
            &|_, j| (diverging(j as f64 - 0.5), format!("{j}")),
            40,
        )
        .unwrap();
        assert!(h.contains("Segment 1") && h.contains("seats"));
        let p = scatter(
            &[(0.0, 1.0, 0), (1.0, 0.0, 1)],
            &["a".into(), "b".into()],
            "PC1",
            "PC2",
        )
        .unwrap();
        assert!(p.contains("<circle"));
    }

    #[test]
    fn diverging_scale_is_white_at_zero_and_saturates() {
        assert_eq!(diverging(0.0), RGBColor(255, 255, 255));
        assert_eq!(diverging(5.0), diverging(1.0));
        assert_ne!(diverging(-1.0), diverging(1.0));
    }
}
