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
pub type Chart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The result type of a drawing closure; plotters' errors are boxed and reported as
/// [`Error::Plot`].
pub type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Font family of every label. The viewer picks an installed sans-serif font.
pub const FONT: &str = "sans-serif";

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
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Into::into));
        drawn.map_err(|e| Error::Plot {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, svg).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
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
    pub fn sample(
        x: (f64, f64),
        y: (f64, f64),
        n: usize,
        mut f: impl FnMut(f64, f64) -> V,
    ) -> Self {
        let values = (0..n)
            .map(|r| {
                let yc = y.0 + (y.1 - y.0) * (r as f64 + 0.5) / n as f64;
                (0..n)
                    .map(|c| f(x.0 + (x.1 - x.0) * (c as f64 + 0.5) / n as f64, yc))
                    .collect()
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

/// Fills the grid's rectangle with one colour per cell, `colour(value)`. Runs of equal colour in
/// a row are merged into one rectangle.
pub fn draw_cell_map<V>(
    chart: &mut Chart<'_, '_>,
    grid: &Grid<V>,
    colour: impl Fn(&V) -> RGBColor,
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
            let x1 = grid.x.0 + dx * end as f64;
            rects.push(Rectangle::new([(x0, y0), (x1, y0 + dy)], c.filled()));
            start = end;
        }
    }
    chart.draw_series(rects)?;
    Ok(())
}

/// The line segments where the bilinear interpolation of `grid` crosses `level` (marching
/// squares over the cell centres).
pub fn contour_segments(grid: &Grid<f64>, level: f64) -> Vec<[(f64, f64); 2]> {
    let (rows, cols) = (grid.rows(), grid.cols());
    if rows < 2 || cols < 2 {
        return Vec::new();
    }
    let dx = (grid.x.1 - grid.x.0) / cols as f64;
    let dy = (grid.y.1 - grid.y.0) / rows as f64;
    let at = |r: usize, c: usize| {
        (
            grid.x.0 + dx * (c as f64 + 0.5),
            grid.y.0 + dy * (r as f64 + 0.5),
        )
    };
    // The point on the edge between corners p (value a) and q (value b) where the value is level.
    let cross = |p: (f64, f64), a: f64, q: (f64, f64), b: f64| {
        let t = if (b - a).abs() < f64::MIN_POSITIVE {
            0.5
        } else {
            (level - a) / (b - a)
        };
        (p.0 + (q.0 - p.0) * t, p.1 + (q.1 - p.1) * t)
    };
    let mut out = Vec::new();
    for r in 0..rows - 1 {
        for c in 0..cols - 1 {
            // Corners counter-clockwise from bottom-left.
            let corners = [(r, c), (r, c + 1), (r + 1, c + 1), (r + 1, c)];
            let vals = corners.map(|(r, c)| grid.values[r][c]);
            let pts = corners.map(|(r, c)| at(r, c));
            let mut crossings = Vec::with_capacity(4);
            for e in 0..4 {
                let (a, b) = (vals[e], vals[(e + 1) % 4]);
                if (a < level) != (b < level) {
                    crossings.push(cross(pts[e], a, pts[(e + 1) % 4], b));
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

/// Draws the contour lines of `grid` at each of `levels` in `style`.
pub fn draw_contours(
    chart: &mut Chart<'_, '_>,
    grid: &Grid<f64>,
    levels: &[f64],
    style: ShapeStyle,
) -> DrawResult {
    for &level in levels {
        let segments = contour_segments(grid, level);
        chart.draw_series(
            segments
                .into_iter()
                .map(|s| PathElement::new(s.to_vec(), style)),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn render_svg_reports_unwritable_path() {
        let path = Path::new("/proc/definitely/not/writable/figure.svg");
        let err = render_svg(path, (10, 10), |_| Ok(())).expect_err("cannot write under /proc");
        assert!(matches!(err, Error::Io { .. }), "{err}");
    }
}
