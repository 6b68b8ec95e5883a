//! The digits figures, as SVG: training curves, the confusion matrix, a grid of misclassified
//! test digits, the first layer's weights, and the speed of pente beside PyTorch's.
//!
//! Charts go through plotters ([`crate::plot`]); image grids are written directly as SVG with
//! each small image embedded as a PNG (`<image href="data:image/png;base64,…">`, drawn with
//! `image-rendering: pixelated`), which keeps a grid of hundreds of digits to a few tens of
//! kilobytes.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use super::data::{Digits, CLASSES, SIDE};
use super::image::png_bytes;
use super::model::DigitsModel;
use super::train::{Evaluation, History};
use crate::plot::{self, draw_legend, font, px, pxi, PALETTE};
use crate::Error;

/// A named, coloured line of a chart.
type Series = (&'static str, RGBColor, Vec<(f64, f64)>);

/// Loss and accuracy per epoch, training and validation, side by side.
///
/// # Errors
/// [`Error::Plot`] or [`Error::Io`] if the figure cannot be drawn or written.
pub fn write_curves(history: &History, title: &str, path: &Path) -> Result<(), Error> {
    let e = &history.epochs;
    let last = e.len().max(1) as f64;
    let finite = |v: f64| v.is_finite().then_some(v);
    let max_loss = e.iter().flat_map(|r| [r.train_loss, r.val_loss]).filter_map(finite).fold(0.1, f64::max);
    let min_acc = e.iter().flat_map(|r| [r.train_accuracy, r.val_accuracy]).filter_map(finite).fold(1.0, f64::min);
    let acc_lo = ((min_acc * 100.0 - 0.5).floor()).clamp(0.0, 99.0);
    plot::render_svg(path, (900, 380), |root| {
        let root = root.titled(title, font(17.0))?;
        let panels = root.split_evenly((1, 2));
        for (k, panel) in panels.iter().enumerate() {
            let (y_range, caption) =
                if k == 0 { (0.0..max_loss * 1.05, "cross-entropy loss") } else { (acc_lo..100.0, "accuracy (%)") };
            let mut chart = ChartBuilder::on(panel)
                .caption(caption, font(14.0))
                .margin(px(10))
                .x_label_area_size(px(36))
                .y_label_area_size(px(46))
                .build_cartesian_2d(0.5..last + 0.5, y_range)?;
            let mut mesh = chart.configure_mesh();
            plot::style_mesh(&mut mesh);
            mesh.x_desc("epoch").x_labels(e.len().clamp(2, 12)).draw()?;
            let series: [Series; 2] = if k == 0 {
                [
                    ("training (running mean)", PALETTE[0], e.iter().map(|r| (r.epoch as f64, r.train_loss)).collect()),
                    ("validation", PALETTE[1], e.iter().map(|r| (r.epoch as f64, r.val_loss)).collect()),
                ]
            } else {
                [
                    (
                        "training (running)",
                        PALETTE[0],
                        e.iter().map(|r| (r.epoch as f64, 100.0 * r.train_accuracy)).collect(),
                    ),
                    ("validation", PALETTE[1], e.iter().map(|r| (r.epoch as f64, 100.0 * r.val_accuracy)).collect()),
                ]
            };
            for (name, col, pts) in series {
                let pts: Vec<(f64, f64)> = pts.into_iter().filter(|p| p.1.is_finite()).collect();
                if pts.is_empty() {
                    continue;
                }
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), col.stroke_width(px(2))))?
                    .label(name)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + pxi(22), y)], col.stroke_width(px(2))));
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, px(3), col.filled())))?;
            }
            draw_legend(
                &mut chart,
                if k == 0 { SeriesLabelPosition::UpperRight } else { SeriesLabelPosition::LowerRight },
                12.0,
            )?;
        }
        Ok(())
    })
}

/// The confusion matrix: counts in each cell, shaded by the fraction of the true class's images
/// (off the diagonal on a separate, much finer scale, so that the mistakes stand out).
///
/// # Errors
/// [`Error::Plot`] or [`Error::Io`] if the figure cannot be drawn or written.
pub fn write_confusion(eval: &Evaluation, title: &str, path: &Path) -> Result<(), Error> {
    let rows: Vec<usize> = eval.confusion.iter().map(|r| r.iter().sum::<usize>().max(1)).collect();
    let max_off = (0..CLASSES)
        .flat_map(|t| (0..CLASSES).filter(move |&p| p != t).map(move |p| (t, p)))
        .map(|(t, p)| eval.confusion[t][p] as f64 / rows[t] as f64)
        .fold(1e-9, f64::max);
    plot::render_svg(path, (560, 560), |root| {
        let root = root.titled(title, font(16.0))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(px(12))
            .x_label_area_size(px(40))
            .y_label_area_size(px(40))
            .build_cartesian_2d(-0.5..9.5, 9.5..-0.5)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(10)
            .y_labels(10)
            .label_style(font(12.0))
            .axis_desc_style(font(13.0))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .x_desc("predicted digit")
            .y_desc("true digit")
            .draw()?;
        for (t, &row_total) in rows.iter().enumerate() {
            for p in 0..CLASSES {
                let n = eval.confusion[t][p];
                let frac = n as f64 / row_total as f64;
                let (fill, ink) = if t == p {
                    (plot::lighten(PALETTE[1], 0.35), BLACK)
                } else if n == 0 {
                    (WHITE, RGBColor(190, 190, 190))
                } else {
                    let s = (frac / max_off).sqrt();
                    (plot::lighten(PALETTE[0], 1.0 - 0.85 * s), BLACK)
                };
                let (x, y) = (p as f64, t as f64);
                chart.draw_series([Rectangle::new([(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)], fill.filled())])?;
                chart.draw_series([Text::new(
                    n.to_string(),
                    (x - 0.06 * n.to_string().len() as f64, y - 0.12),
                    font(if t == p { 11.0 } else { 12.0 }).into_font().color(&ink),
                )])?;
            }
        }
        Ok(())
    })
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                s.push(A[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// One tile of an image grid: an image and up to two lines of caption.
struct Tile {
    png: Vec<u8>,
    caption: [String; 2],
}

/// Writes tiles in a grid, each `cell` pixels wide, with a title, as SVG.
fn write_tiles(path: &Path, title: &str, note: &str, tiles: &[Tile], cols: usize, cell: u32) -> Result<(), Error> {
    let rows = tiles.len().div_ceil(cols.max(1)) as u32;
    let (pad, cap) = (12u32, 30u32);
    let width = cols as u32 * (cell + pad) + pad;
    let height = 56 + rows * (cell + cap + pad) + pad;
    let mut s = format!(
        r##"<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" font-family="{f}" font-size="16" text-anchor="middle">{title}</text>
<text x="{}" y="42" font-family="{f}" font-size="12" fill="#555" text-anchor="middle">{note}</text>
"##,
        width / 2,
        width / 2,
        f = plot::FONT
    );
    for (i, t) in tiles.iter().enumerate() {
        let (c, r) = ((i % cols) as u32, (i / cols) as u32);
        let (x, y) = (pad + c * (cell + pad), 56 + r * (cell + cap + pad));
        let _ = writeln!(
            s,
            r#"<image x="{x}" y="{y}" width="{cell}" height="{cell}" style="image-rendering:pixelated" href="data:image/png;base64,{}"/>"#,
            base64(&t.png)
        );
        for (k, line) in t.caption.iter().enumerate() {
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" font-family="{}" font-size="10" text-anchor="middle">{line}</text>"#,
                x + cell / 2,
                y + cell + 12 + 13 * k as u32,
                plot::FONT
            );
        }
    }
    s.push_str("</svg>\n");
    crate::create_parent_dir(path)?;
    std::fs::write(path, s).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

/// A grid of up to `max` misclassified test digits (the most confident mistakes first), each
/// captioned with the predicted and true labels.
///
/// # Errors
/// [`Error::Io`] if the figure cannot be written.
pub fn write_misclassified(
    test: &Digits,
    eval: &Evaluation,
    max: usize,
    title: &str,
    path: &Path,
) -> Result<(), Error> {
    let mut wrong: Vec<usize> = (0..test.len()).filter(|&i| eval.predicted[i] != test.labels[i]).collect();
    wrong.sort_by(|&a, &b| eval.confidence[b].total_cmp(&eval.confidence[a]));
    let tiles: Vec<Tile> = wrong
        .iter()
        .take(max)
        .map(|&i| {
            // Dark ink on white paper, as a person writes.
            let px: Vec<u8> = test.image(i).iter().map(|&v| 255 - v).collect();
            Tile {
                png: png_bytes(SIDE as u32, SIDE as u32, 1, &px),
                caption: [
                    format!("said {}, {:.0}%", eval.predicted[i], 100.0 * eval.confidence[i]),
                    format!("true {}", test.labels[i]),
                ],
            }
        })
        .collect();
    let note = format!(
        "{} of {} test digits wrong; the most confident mistakes first (\"said\": the prediction and its probability)",
        wrong.len(),
        test.len()
    );
    write_tiles(path, title, &note, &tiles, 12, 64)
}

/// A diverging colour for a weight `v` scaled to `[−1, 1]`: blue negative, white zero, red
/// positive.
fn diverging(v: f32) -> [u8; 3] {
    let v = v.clamp(-1.0, 1.0);
    let (neg, pos) = ([33.0, 102.0, 172.0], [178.0, 24.0, 43.0]);
    let (c, t) = if v < 0.0 { (neg, -v) } else { (pos, v) };
    let mix = |k: usize| (255.0 + (c[k] - 255.0) * t).round() as u8;
    [mix(0), mix(1), mix(2)]
}

/// The first layer's weights as images: for the MLP, the input weights of `max` hidden units
/// (each 28×28), for the CNN the 3×3 kernels; each scaled by its largest absolute weight,
/// red positive and blue negative.
///
/// # Errors
/// [`Error::Io`] if the figure cannot be written.
pub fn write_first_layer(model: &DigitsModel, max: usize, title: &str, path: &Path) -> Result<(), Error> {
    let (side, images) = model.first_layer_images();
    let tiles: Vec<Tile> = images
        .iter()
        .take(max)
        .enumerate()
        .map(|(u, w)| {
            let m = w.iter().fold(1e-12f32, |m, &v| m.max(v.abs()));
            let px: Vec<u8> = w.iter().flat_map(|&v| diverging(v / m)).collect();
            Tile {
                png: png_bytes(side as u32, side as u32, 3, &px),
                caption: [format!("unit {u}"), format!("±{m:.2}")],
            }
        })
        .collect();
    let note = if side == SIDE {
        "each hidden unit's 784 input weights as a 28×28 image: red positive, blue negative"
    } else {
        "each 3×3 kernel of the first convolution: red positive, blue negative"
    };
    write_tiles(path, title, note, &tiles, 16, if side == SIDE { 56 } else { 42 })
}

/// One framework's measurements for [`write_speed`].
#[derive(Clone, Debug, PartialEq)]
pub struct SpeedRow {
    /// Who: `"pente"`, `"PyTorch 2.x"`.
    pub name: String,
    /// Training images per second.
    pub samples_per_s: f64,
    /// Training seconds until the test accuracy first met the target, if it did.
    pub time_to_target: Option<f64>,
}

/// Two bar charts: training throughput and time to the target accuracy, per framework.
///
/// # Errors
/// [`Error::Plot`] or [`Error::Io`] if the figure cannot be drawn or written.
pub fn write_speed(rows: &[SpeedRow], title: &str, target: f64, path: &Path) -> Result<(), Error> {
    let n = rows.len().max(1) as f64;
    plot::render_svg(path, (820, 330), |root| {
        let root = root.titled(title, font(16.0))?;
        let panels = root.split_evenly((1, 2));
        for (k, panel) in panels.iter().enumerate() {
            let values: Vec<Option<f64>> =
                rows.iter().map(|r| if k == 0 { Some(r.samples_per_s) } else { r.time_to_target }).collect();
            let top = values.iter().flatten().fold(1e-9f64, |m, &v| m.max(v)) * 1.2;
            let caption = if k == 0 {
                "training images per second (higher is better)".to_string()
            } else {
                format!("seconds to {:.1} % test accuracy (lower is better)", 100.0 * target)
            };
            let mut chart = ChartBuilder::on(panel)
                .caption(caption, font(13.0))
                .margin(px(10))
                .x_label_area_size(px(30))
                .y_label_area_size(px(56))
                .build_cartesian_2d(-0.5..n - 0.5, 0.0..top)?;
            let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
            let fmt_name = move |v: &f64| {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            };
            let mut mesh = chart.configure_mesh();
            plot::style_mesh(&mut mesh);
            mesh.disable_x_mesh().x_labels(rows.len().max(1)).x_label_formatter(&fmt_name).draw()?;
            for (i, v) in values.iter().enumerate() {
                let x = i as f64;
                match v {
                    Some(v) => {
                        let col = PALETTE[i % PALETTE.len()];
                        chart.draw_series([Rectangle::new([(x - 0.3, 0.0), (x + 0.3, *v)], col.filled())])?;
                        let label = if k == 0 { format!("{v:.0}") } else { format!("{v:.1} s") };
                        chart.draw_series([Text::new(label, (x - 0.15, *v + top * 0.07), font(12.0))])?;
                    }
                    None => {
                        chart.draw_series([Text::new("not reached", (x - 0.2, top * 0.1), font(12.0))])?;
                    }
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn diverging_is_white_at_zero() {
        assert_eq!(diverging(0.0), [255, 255, 255]);
        assert_eq!(diverging(1.0), [178, 24, 43]);
        assert_eq!(diverging(-2.0), [33, 102, 172]);
    }
}
