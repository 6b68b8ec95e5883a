//! Figure helpers on top of plotters' SVG backend: writing a figure to a file, a colour-blind
//! safe palette, colour maps drawn as run-length merged rectangles (so a 200×200 region map is a
//! few hundred SVG elements, not forty thousand), and contour lines by marching squares.
//!
//! Only the SVG backend is compiled in: the text of a figure is drawn by whatever shows the SVG
//! (a browser, an image viewer), so making figures needs no font file and no system library.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::Error;

/// The chart type every figure draws on: two `f64` axes on the SVG backend.
pub type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The result type of a drawing closure; plotters' errors are boxed and reported as
/// [`Error::Plot`].
pub type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Font family of every label. The viewer picks an installed sans-serif font.
pub const FONT: &str = "sans-serif";

/// Figures are drawn at `SCALE` times their displayed size: plotters' SVG backend puts every
/// point on an integer coordinate, and at twice the resolution curves no longer wobble. Sizes in
/// the drawing code go through [`px`], [`pxi`] and [`font`], which apply it.
pub const SCALE: u32 = 2;

/// Draws the legend of the series labelled so far, in the style every figure shares: a
/// translucent white box with a grey border at `position`, labels at `font_size`.
pub fn draw_legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, position: SeriesLabelPosition, font_size: f64) -> DrawResult {
    chart
        .configure_series_labels()
        .position(position)
        .margin(px(10))
        .legend_area_size(px(30))
        .label_font(font(font_size))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .draw()?;
    Ok(())
}

/// A length of `v` displayed pixels, in drawing units.
pub fn px(v: u32) -> u32 {
    v * SCALE
}

/// A signed offset of `v` displayed pixels, in drawing units (legend glyphs).
pub fn pxi(v: i32) -> i32 {
    v * SCALE as i32
}

/// The label font at `size` displayed pixels.
pub fn font(size: f64) -> (&'static str, f64) {
    (FONT, size * f64::from(SCALE))
}

/// A tick label: integers without a decimal point, other values with at most two decimals.
pub fn tick(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{:.0}", v.round() + 0.0) // + 0.0 turns −0 into 0
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').to_string()
    }
}

/// The house style of axes: light grid, axis lines and tick labels at [`SCALE`], tick labels
/// by [`tick`].
pub fn style_mesh(mesh: &mut plotters::chart::MeshStyle<'_, '_, RangedCoordf64, RangedCoordf64, SVGBackend<'_>>) {
    mesh.light_line_style(RGBColor(240, 240, 240).stroke_width(px(1) / 2))
        .bold_line_style(RGBColor(222, 222, 222).stroke_width(px(1)))
        .axis_style(RGBColor(90, 90, 90).stroke_width(px(1)))
        .set_all_tick_mark_size(px(4))
        .label_style(font(12.5))
        .axis_desc_style(font(14.0))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick);
}

/// Okabe–Ito colours, distinguishable with every common kind of colour blindness:
/// orange, sky blue, bluish green, vermillion, blue, reddish purple, yellow, black.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(0, 114, 178),
    RGBColor(204, 121, 167),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

/// Draws a figure of `size` pixels with `draw` and writes it to `path` as SVG.
///
/// # Errors
/// [`Error::Plot`] if plotters fails, [`Error::Io`] if the file cannot be written.
pub fn render_svg(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> DrawResult,
) -> Result<(), Error> {
    let mut svg = String::new();
    {
        let scaled = (px(size.0), px(size.1));
        let root = SVGBackend::with_string(&mut svg, scaled).into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Into::into));
        drawn.map_err(|e| Error::Plot { path: path.to_path_buf(), message: e.to_string() })?;
    }
    // Display at the nominal size; the viewBox keeps the scaled drawing coordinates.
    let header = format!(r#"<svg width="{}" height="{}" "#, px(size.0), px(size.1));
    if svg.starts_with(&header) {
        let nominal = format!(r#"<svg width="{}" height="{}" "#, size.0, size.1);
        svg.replace_range(..header.len(), &nominal);
    }
    crate::create_parent_dir(path)?;
    std::fs::write(path, svg).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

/// `c` mixed with white: `amount` 0 keeps it, 1 gives white.
pub fn lighten(c: RGBColor, amount: f64) -> RGBColor {
    let mix = |v: u8| (f64::from(v) + (255.0 - f64::from(v)) * amount).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// The viridis colour map (perceptually uniform, dark blue → green → yellow) at `t` in `[0, 1]`,
/// interpolated linearly between nine of its stops.
pub fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ];
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let pos = t * (STOPS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(STOPS.len() - 2);
    let f = pos - i as f64;
    let lerp = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

/// A grid of values over a rectangle of the plane: `values[row][col]` is the value at the centre
/// of a cell, row 0 at the bottom (`y.0`), column 0 at the left (`x.0`).
#[derive(Clone, Debug)]
pub struct Grid<V> {
    /// Horizontal extent `(min, max)`.
    pub x: (f64, f64),
    /// Vertical extent `(min, max)`.
    pub y: (f64, f64),
    /// `values[row][col]`, every row of the same length.
    pub values: Vec<Vec<V>>,
}

impl<V> Grid<V> {
    /// Evaluates `f(x, y)` at the centres of an `n × n` grid over `x × y`.
    pub fn sample(x: (f64, f64), y: (f64, f64), n: usize, mut f: impl FnMut(f64, f64) -> V) -> Self {
        let values = (0..n)
            .map(|r| {
                let yc = y.0 + (y.1 - y.0) * (r as f64 + 0.5) / n as f64;
                (0..n).map(|c| f(x.0 + (x.1 - x.0) * (c as f64 + 0.5) / n as f64, yc)).collect()
            })
            .collect();
        Grid { x, y, values }
    }

    /// The cell centres `(x, y)` of the grid, row by row from the bottom.
    pub fn centres(x: (f64, f64), y: (f64, f64), n: usize) -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(n * n);
        for r in 0..n {
            for c in 0..n {
                out.push((
                    x.0 + (x.1 - x.0) * (c as f64 + 0.5) / n as f64,
                    y.0 + (y.1 - y.0) * (r as f64 + 0.5) / n as f64,
                ));
            }
        }
        out
    }

    fn rows(&self) -> usize {
        self.values.len()
    }

    fn cols(&self) -> usize {
        self.values.first().map_or(0, Vec::len)
    }
}

/// Fills the grid's rectangle with one colour per cell, `colour(value)`, leaving the cells whose
/// colour is `None` as they are. Runs of equal colour in a row are merged into one rectangle.
pub fn draw_cell_map<V>(
    chart: &mut Chart<'_, '_>,
    grid: &Grid<V>,
    colour: impl Fn(&V) -> Option<RGBColor>,
) -> DrawResult {
    let (rows, cols) = (grid.rows(), grid.cols());
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let dx = (grid.x.1 - grid.x.0) / cols as f64;
    let dy = (grid.y.1 - grid.y.0) / rows as f64;
    let mut rects = Vec::new();
    for (r, row) in grid.values.iter().enumerate() {
        let y0 = grid.y.0 + dy * r as f64;
        let mut start = 0;
        while start < row.len() {
            let c = colour(&row[start]);
            let mut end = start + 1;
            while end < row.len() && colour(&row[end]) == c {
                end += 1;
            }
            let x0 = grid.x.0 + dx * start as f64;
            // Each rectangle reaches a little into its right and upper neighbours, which are
            // drawn after it and cover the overlap: rounding to integer coordinates then
            // leaves no hairline seams between cells.
            let x1 = (grid.x.0 + dx * (end as f64 + 0.4)).min(grid.x.1);
            let y1 = (y0 + dy * 1.4).min(grid.y.1);
            if let Some(c) = c {
                rects.push(Rectangle::new([(x0, y0), (x1, y1)], c.filled()));
            }
            start = end;
        }
    }
    chart.draw_series(rects)?;
    Ok(())
}

/// The contour lines where the bilinear interpolation of `grid` crosses `level` (marching
/// squares over the cell centres), joined into polylines.
pub fn contour_lines(grid: &Grid<f64>, level: f64) -> Vec<Vec<(f64, f64)>> {
    join_segments(contour_segments(grid, level))
}

/// The single segments of [`contour_lines`], one or two per grid cell that the level crosses.
pub fn contour_segments(grid: &Grid<f64>, level: f64) -> Vec<[(f64, f64); 2]> {
    let (rows, cols) = (grid.rows(), grid.cols());
    if rows < 2 || cols < 2 {
        return Vec::new();
    }
    let dx = (grid.x.1 - grid.x.0) / cols as f64;
    let dy = (grid.y.1 - grid.y.0) / rows as f64;
    // The point on the edge between grid nodes p and q where the value is `level`. The nodes are
    // put in a fixed order first, so that the two cells sharing an edge compute the same point
    // bit for bit (and the segments can be joined by exact comparison).
    let cross = |p: (usize, usize), q: (usize, usize)| {
        let (p, q) = if p <= q { (p, q) } else { (q, p) };
        let (a, b) = (grid.values[p.0][p.1], grid.values[q.0][q.1]);
        let t = if (b - a).abs() < f64::MIN_POSITIVE { 0.5 } else { (level - a) / (b - a) };
        let at = |n: (usize, usize)| (grid.x.0 + dx * (n.1 as f64 + 0.5), grid.y.0 + dy * (n.0 as f64 + 0.5));
        let (pp, qq) = (at(p), at(q));
        (pp.0 + (qq.0 - pp.0) * t, pp.1 + (qq.1 - pp.1) * t)
    };
    let mut out = Vec::new();
    for r in 0..rows - 1 {
        for c in 0..cols - 1 {
            // Corners counter-clockwise from bottom-left, as (row, col).
            let corners = [(r, c), (r, c + 1), (r + 1, c + 1), (r + 1, c)];
            let mut crossings = Vec::with_capacity(4);
            for e in 0..4 {
                let (p, q) = (corners[e], corners[(e + 1) % 4]);
                if (grid.values[p.0][p.1] < level) != (grid.values[q.0][q.1] < level) {
                    crossings.push(cross(p, q));
                }
            }
            // Two crossings: one segment. Four (a saddle): pair them up along the edges.
            for pair in crossings.chunks_exact(2) {
                out.push([pair[0], pair[1]]);
            }
        }
    }
    out
}

/// Chains segments that share end points into polylines.
fn join_segments(segments: Vec<[(f64, f64); 2]>) -> Vec<Vec<(f64, f64)>> {
    use std::collections::HashMap;
    let key = |p: (f64, f64)| (p.0.to_bits(), p.1.to_bits());
    let mut ends: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    for (i, s) in segments.iter().enumerate() {
        for &p in s {
            ends.entry(key(p)).or_default().push(i);
        }
    }
    let mut used = vec![false; segments.len()];
    let mut lines = Vec::new();
    for start in 0..segments.len() {
        if used[start] {
            continue;
        }
        used[start] = true;
        let mut line = std::collections::VecDeque::from(segments[start].to_vec());
        // Grow at the back, then at the front.
        for back in [true, false] {
            loop {
                let tip = if back { line.back() } else { line.front() };
                let tip = *tip.expect("a line has two points or more");
                let next = ends.get(&key(tip)).and_then(|ids| ids.iter().copied().find(|&i| !used[i]));
                let Some(i) = next else { break };
                used[i] = true;
                let s = segments[i];
                let far = if key(s[0]) == key(tip) { s[1] } else { s[0] };
                if back {
                    line.push_back(far);
                } else {
                    line.push_front(far);
                }
            }
        }
        lines.push(line.into_iter().collect());
    }
    lines
}

/// Draws the contour lines of `grid` at each of `levels` in `style`.
pub fn draw_contours(chart: &mut Chart<'_, '_>, grid: &Grid<f64>, levels: &[f64], style: ShapeStyle) -> DrawResult {
    for &level in levels {
        let lines = contour_lines(grid, level);
        chart.draw_series(lines.into_iter().map(|l| PathElement::new(l, style)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_drop_needless_decimals() {
        assert_eq!(tick(&2.0), "2");
        assert_eq!(tick(&-0.0), "0");
        assert_eq!(tick(&0.25), "0.25");
        assert_eq!(tick(&0.5), "0.5");
    }

    #[test]
    fn viridis_ends_are_the_map_ends() {
        assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
        assert_eq!(viridis(f64::NAN), RGBColor(68, 1, 84));
    }

    #[test]
    fn contour_of_a_plane_is_a_straight_line() {
        // value = x on [0, 1]²: the 0.5 level is the vertical line x = 0.5.
        let grid = Grid::sample((0.0, 1.0), (0.0, 1.0), 10, |x, _| x);
        let segs = contour_segments(&grid, 0.5);
        assert_eq!(segs.len(), 9); // one per row of cells
        for s in segs {
            assert!((s[0].0 - 0.5).abs() < 1e-12 && (s[1].0 - 0.5).abs() < 1e-12);
        }
        let lines = contour_lines(&grid, 0.5);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), 10);
    }

    #[test]
    fn render_svg_reports_unwritable_path() {
        let path = Path::new("/proc/definitely/not/writable/figure.svg");
        let err = render_svg(path, (10, 10), |_| Ok(())).expect_err("cannot write under /proc");
        assert!(matches!(err, Error::Io { .. }), "{err}");
    }
}
