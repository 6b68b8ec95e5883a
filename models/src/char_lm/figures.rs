//! The char-lm figures (SVG): training and validation loss curves, and the attention weights
//! of one GPT layer over a line of text.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::kv_cache::KvCache;
use super::model::{CharLm, Net};
use super::train::History;
use crate::plot::{self, draw_legend, font, px, pxi, Grid, PALETTE};
use crate::Error;

/// Draws the training and validation losses of one or more runs against the step: each run is
/// `(label, history)`; the dashed grey line is `reference` (e.g. the count-based bigram), if any.
///
/// # Errors
/// [`Error::Plot`] or [`Error::Io`] if the figure cannot be drawn or written.
pub fn write_loss_curves(
    runs: &[(String, &History)],
    reference: Option<(&str, f64)>,
    title: &str,
    path: &Path,
) -> Result<(), Error> {
    let points = runs.iter().flat_map(|(_, h)| h.train.iter().chain(&h.val));
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(s, l) in points {
        x_max = x_max.max(s as f64);
        y_min = y_min.min(l);
        y_max = y_max.max(l);
    }
    if let Some((_, r)) = reference {
        y_min = y_min.min(r);
        y_max = y_max.max(r);
    }
    if !y_min.is_finite() {
        (y_min, y_max) = (0.0, 1.0);
    }
    let pad = 0.05 * (y_max - y_min).max(0.1);
    plot::render_svg(path, (760, 440), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, font(17.0))
            .margin(px(12))
            .x_label_area_size(px(40))
            .y_label_area_size(px(52))
            .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))?;
        let mut mesh = chart.configure_mesh();
        plot::style_mesh(&mut mesh);
        mesh.x_desc("step").y_desc("loss (nats per character)").draw()?;
        if let Some((label, r)) = reference {
            let grey = RGBColor(120, 120, 120);
            chart
                .draw_series(DashedLineSeries::new([(0.0, r), (x_max, r)], px(6), px(4), grey.stroke_width(px(1))))?
                .label(format!("{label}: {r:.3}"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + pxi(22), y)], grey.stroke_width(px(1))));
        }
        for (i, (label, h)) in runs.iter().enumerate() {
            let col = PALETTE[(2 * i) % PALETTE.len()];
            let light = plot::lighten(col, 0.45);
            let train = h.train.iter().map(|&(s, l)| (s as f64, l));
            chart
                .draw_series(LineSeries::new(train, light.stroke_width(px(2))))?
                .label(format!("{label} training"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + pxi(22), y)], light.stroke_width(px(2))));
            let val: Vec<(f64, f64)> = h.val.iter().map(|&(s, l)| (s as f64, l)).collect();
            let last = val.last().map_or(String::new(), |v| format!(", last {:.3}", v.1));
            chart
                .draw_series(LineSeries::new(val.iter().copied(), col.stroke_width(px(2))))?
                .label(format!("{label} validation{last}"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + pxi(22), y)], col.stroke_width(px(2))));
            chart.draw_series(val.iter().map(|&p| Circle::new(p, px(2), col.filled())))?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight, 13.0)?;
        Ok(())
    })
}

/// The attention weights of every head of GPT layer `layer` over `text`:
/// `weights[head][query][key]` for `key ≤ query` (one row per character, through the cache).
///
/// # Errors
/// [`Error::Config`] if the model is not a GPT, the layer does not exist, or the text is empty,
/// longer than the block, or outside the vocabulary.
pub fn attention_weights(model: &CharLm, text: &str, layer: usize) -> Result<Vec<Vec<Vec<f32>>>, Error> {
    let Net::Gpt(gpt) = &model.net else {
        return Err(Error::Config("attention weights need a GPT".into()));
    };
    let ids = model.vocab.encode(text).map_err(|e| Error::Config(e.to_string()))?;
    if ids.is_empty() || ids.len() > gpt.config.block_size || layer >= gpt.blocks.len() {
        return Err(Error::Config(format!(
            "attention over {} characters at layer {layer}: need 1 to {} characters and a layer below {}",
            ids.len(),
            gpt.config.block_size,
            gpt.blocks.len()
        )));
    }
    let mut cache = KvCache::new(gpt, &model.store);
    cache.record_attention = true;
    for &id in &ids {
        cache.step(id);
    }
    Ok(std::mem::take(&mut cache.attention[layer]))
}

/// How a character is shown on an axis: newline as `⏎`, space as `␣`.
fn show(c: char) -> String {
    match c {
        '\n' => "⏎".into(),
        ' ' => "␣".into(),
        c => c.to_string(),
    }
}

/// Draws [`attention_weights`] as one heat map per head (query characters down, key characters
/// across; darker is more weight, white is the masked future) and writes it to `path`.
///
/// # Errors
/// As [`attention_weights`], and [`Error::Plot`] or [`Error::Io`] if the figure cannot be
/// written.
pub fn write_attention(model: &CharLm, text: &str, layer: usize, path: &Path) -> Result<(), Error> {
    let weights = attention_weights(model, text, layer)?;
    let chars: Vec<char> = text.chars().collect();
    let t = chars.len();
    let heads = weights.len();
    let cols = heads.min(2);
    let rows = heads.div_ceil(cols);
    let panel = 16 * t as u32 + 70;
    let title = format!("GPT layer {layer}: where each character looks (attention weights of each head)");
    plot::render_svg(path, (panel * cols as u32, panel * rows as u32 + 40), |root| {
        let root = root.titled(&title, font(17.0))?;
        let areas = root.split_evenly((rows, cols));
        let tf = t as f64;
        for (h, area) in areas.iter().enumerate().take(heads) {
            let mut chart = ChartBuilder::on(area)
                .caption(format!("head {h}"), font(14.0))
                .margin(px(4))
                .build_cartesian_2d(-1.6..tf, -1.6..tf)?;
            // Row r of the grid is drawn at height r: query t − 1 − r, so the first character is on top.
            let grid = Grid {
                x: (0.0, tf),
                y: (0.0, tf),
                values: (0..t)
                    .map(|r| {
                        let q = t - 1 - r;
                        (0..t).map(|k| weights[h][q].get(k).copied()).collect::<Vec<Option<f32>>>()
                    })
                    .collect(),
            };
            plot::draw_cell_map(&mut chart, &grid, |w| {
                w.map(|w| plot::lighten(RGBColor(8, 48, 107), 1.0 - f64::from(w).clamp(0.0, 1.0).sqrt()))
            })?;
            let style = TextStyle::from(font(11.0)).pos(Pos::new(HPos::Center, VPos::Center));
            chart.draw_series(chars.iter().enumerate().flat_map(|(i, &c)| {
                let at = i as f64 + 0.5;
                [Text::new(show(c), (at, -0.8), style.clone()), Text::new(show(c), (-0.8, tf - at), style.clone())]
            }))?;
        }
        Ok(())
    })
}

/// One panel of [`write_next_chars`]: a model's label, the context it saw, and its most
/// probable next characters with their probabilities, most probable first.
#[derive(Clone, Debug, PartialEq)]
pub struct NextPanel {
    /// The model, e.g. `"bigram"`.
    pub label: String,
    /// The characters of the prompt the model saw.
    pub context: String,
    /// The most probable next characters.
    pub chars: Vec<super::next::NextChar>,
    /// The entropy of the whole next-character distribution, in bits.
    pub entropy_bits: f64,
}

/// Draws each panel's next-character distribution side by side, on one probability scale, to
/// show how a longer context sharpens the guess.
///
/// # Errors
/// [`Error::Plot`] or [`Error::Io`] if the figure cannot be drawn or written.
pub fn write_next_chars(panels: &[NextPanel], prompt: &str, path: &Path) -> Result<(), Error> {
    let k = panels.iter().map(|p| p.chars.len()).max().unwrap_or(1).max(1);
    let width = 300 * panels.len().max(1) as u32;
    let height = 22 * k as u32 + 150;
    let title = format!("the next character after {:?}: each model's {k} most likely", prompt);
    plot::render_svg(path, (width, height), |root| {
        let root = root.titled(&title, font(17.0))?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        let kf = k as f64;
        for (panel, area) in panels.iter().zip(&areas) {
            let seen: String = panel.context.chars().rev().take(24).collect::<Vec<_>>().into_iter().rev().collect();
            let cut = if panel.context.chars().count() > 24 { "…" } else { "" };
            let caption = format!("{} ({:.2} bits) sees {cut}{:?}", panel.label, panel.entropy_bits, seen);
            let mut chart = ChartBuilder::on(area)
                .caption(caption, font(13.0))
                .margin(px(8))
                .x_label_area_size(px(30))
                .build_cartesian_2d(-0.22..1.12, -0.6..kf - 0.4)?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .disable_y_axis()
                .x_labels(6)
                .x_label_formatter(&|x| if *x < -1e-9 { String::new() } else { format!("{x:.1}") })
                .x_desc("probability")
                .label_style(font(11.0))
                .axis_desc_style(font(12.0))
                .draw()?;
            let col = PALETTE[4];
            // Rank r is drawn at height k − 1 − r: the most likely on top.
            chart.draw_series(panel.chars.iter().enumerate().map(|(r, c)| {
                let y = kf - 1.0 - r as f64;
                Rectangle::new([(0.0, y - 0.36), (c.probability, y + 0.36)], col.filled())
            }))?;
            let left = TextStyle::from(font(12.0)).pos(Pos::new(HPos::Center, VPos::Center));
            let right = TextStyle::from(font(11.0)).pos(Pos::new(HPos::Left, VPos::Center));
            chart.draw_series(panel.chars.iter().enumerate().flat_map(|(r, c)| {
                let y = kf - 1.0 - r as f64;
                [
                    Text::new(show(c.ch), (-0.11, y), left.clone()),
                    Text::new(format!("{:.1} %", 100.0 * c.probability), (c.probability + 0.02, y), right.clone()),
                ]
            }))?;
        }
        Ok(())
    })
}
