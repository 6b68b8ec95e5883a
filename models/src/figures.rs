//! Training pictures: what a network's activation functions look like, how gradient descent
//! walks down a loss surface, and how a small network's function approaches its target.
//!
//! Every number in these figures comes from [`autograd`]: the activations' derivatives from
//! `backward`, the loss surface from one batched forward pass over the whole grid of weights,
//! the descent paths and the network's training from gradients of the loss.
//!
//! ```no_run
//! use models::figures::{write_all, FiguresConfig};
//!
//! let written = write_all(&FiguresConfig::default(), "out".as_ref()).expect("out/ is writable");
//! assert_eq!(written.len(), 3);
//! ```

use std::path::{Path, PathBuf};

use autograd::{SeedableRng, Tape, Tensor, Var};
use plotters::prelude::*;

use crate::plot::{self, draw_legend, font, px, pxi, Grid, PALETTE};
use crate::Error;

/// The knobs of the training pictures.
#[derive(Clone, Debug, PartialEq)]
pub struct FiguresConfig {
    /// Seed of the network's initial weights (and of the other random initializations shown).
    pub seed: u64,
    /// Hidden units of the network that learns a 1-D function.
    pub hidden: usize,
    /// Training steps of that network.
    pub steps: usize,
    /// Its learning rate (gradient descent with momentum 0.9, full batch).
    pub learning_rate: f64,
    /// Cells per side of the loss-surface grid.
    pub grid: usize,
}

impl Default for FiguresConfig {
    fn default() -> Self {
        FiguresConfig { seed: 0, hidden: 24, steps: 3000, learning_rate: 0.02, grid: 150 }
    }
}

/// Draws the three training pictures into `dir` (`activations.svg`, `loss_surface.svg`,
/// `fit_snapshots.svg`) and returns their paths.
///
/// # Errors
/// [`Error::Io`] or [`Error::Plot`] if a figure cannot be drawn or written.
pub fn write_all(config: &FiguresConfig, dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let paths = [dir.join("activations.svg"), dir.join("loss_surface.svg"), dir.join("fit_snapshots.svg")];
    write_activations(&paths[0])?;
    write_loss_surface(&loss_surface(config), &paths[1])?;
    write_fit_snapshots(&fit_snapshots(config), &paths[2])?;
    Ok(paths.to_vec())
}

// ---------------------------------------------------------------------------------------------
// Activation functions

/// The activation functions drawn, by name.
pub const ACTIVATIONS: [&str; 4] = ["relu", "tanh", "sigmoid", "gelu"];

/// `(values, derivatives)` of the activation `name` (one of [`ACTIVATIONS`]) at `xs`; the
/// derivatives come from `backward`.
///
/// # Panics
/// If `name` is not one of [`ACTIVATIONS`].
pub fn activation(name: &str, xs: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::from_vec(xs.to_vec(), &[xs.len()]));
    let y = match name {
        "relu" => x.relu(),
        "tanh" => x.tanh(),
        "sigmoid" => x.sigmoid(),
        "gelu" => x.gelu(),
        other => panic!("activation: unknown activation {other:?}"),
    };
    // d(Σ y)/dx_i = y'(x_i): every element depends on its own input only.
    let grads = y.sum().backward();
    (y.value().to_vec(), grads[x].to_vec())
}

/// Draws the activation functions and their derivatives side by side to `path`.
///
/// # Errors
/// [`Error::Io`] or [`Error::Plot`] if the figure cannot be drawn or written.
pub fn write_activations(path: &Path) -> Result<(), Error> {
    let xs: Vec<f64> = (0..=400).map(|i| -4.0 + 8.0 * f64::from(i) / 400.0).collect();
    let curves: Vec<_> = ACTIVATIONS.iter().map(|&n| (n, activation(n, &xs))).collect();
    let colours = [PALETTE[3], PALETTE[4], PALETTE[2], PALETTE[5]];
    plot::render_svg(path, (900, 400), |root| {
        let root = root.titled("Activation functions and their derivatives (from backward)", font(19.0))?;
        let panels = root.split_evenly((1, 2));
        for (panel, derivative) in panels.iter().zip([false, true]) {
            let (y_range, title) = if derivative { (-0.2..1.25, "derivative f′(x)") } else { (-1.2..4.0, "f(x)") };
            let mut chart = ChartBuilder::on(panel)
                .caption(title, font(16.0))
                .margin(px(10))
                .x_label_area_size(px(40))
                .y_label_area_size(px(40))
                .build_cartesian_2d(-4.0..4.0, y_range)?;
            let mut mesh = chart.configure_mesh();
            plot::style_mesh(&mut mesh);
            mesh.x_desc("x").draw()?;
            chart
                .draw_series(LineSeries::new([(-4.0, 0.0), (4.0, 0.0)], RGBColor(150, 150, 150).stroke_width(px(1))))?;
            for ((name, (ys, dys)), &col) in curves.iter().zip(&colours) {
                let v = if derivative { dys } else { ys };
                chart
                    .draw_series(LineSeries::new(xs.iter().copied().zip(v.iter().copied()), col.stroke_width(px(2))))?
                    .label(*name)
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + pxi(22), y)], col.stroke_width(px(2))));
            }
            draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, 13.0)?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Loss surface

/// The model of the loss-surface picture: one tanh neuron `ŷ = w₂·tanh(w₁·x)`, fitted to
/// `y = tanh(2x)` at 24 points of `[−2, 2]`. Its mean squared error has two minima,
/// `(2, 1)` and `(−2, −1)`, mirror images of each other.
pub const SURFACE_TARGET: (f64, f64) = (2.0, 1.0);

/// Where the two descents of the loss-surface picture start: on either side of the ridge
/// `w₁ = 0`, and each ends in a different minimum.
pub const SURFACE_STARTS: [(f64, f64); 2] = [(-0.4, 1.8), (1.0, -1.8)];
/// Their step size.
pub const SURFACE_LR: f64 = 0.2;
/// Their number of steps.
pub const SURFACE_STEPS: usize = 300;

/// The loss over a grid of `(w₁, w₂)` and descents down it.
#[derive(Clone, Debug)]
pub struct LossSurface {
    /// The loss at the grid's cell centres.
    pub grid: Grid<f64>,
    /// For each of [`SURFACE_STARTS`], `(w₁, w₂)` after each step of plain gradient descent,
    /// the start first.
    pub paths: Vec<Vec<(f64, f64)>>,
}

fn surface_data() -> (Vec<f64>, Vec<f64>) {
    let xs: Vec<f64> = (0..24).map(|i| -2.0 + 4.0 * f64::from(i) / 23.0).collect();
    let ys = xs.iter().map(|x| (SURFACE_TARGET.0 * x).tanh() * SURFACE_TARGET.1).collect();
    (xs, ys)
}

/// The one-neuron loss `mean((w₂·tanh(w₁·x) − y)²)` for a batch of weight pairs at once:
/// `w1`, `w2` of shape `(G, 1)` against the data's `(1, N)` give `(G,)` losses.
fn neuron_loss<'t>(w1: Var<'t, f64>, w2: Var<'t, f64>, xs: &[f64], ys: &[f64]) -> Var<'t, f64> {
    let tape = w1.tape();
    let x = tape.constant(Tensor::from_vec(xs.to_vec(), &[1, xs.len()]));
    let y = tape.constant(Tensor::from_vec(ys.to_vec(), &[1, ys.len()]));
    (w2 * (w1 * x).tanh() - y).square().mean_axes(&[1], false) // (G, N) → (G,)
}

/// Computes the loss surface over `w₁ ∈ [−3, 3]`, `w₂ ∈ [−2, 2]` in one batched forward pass,
/// and the gradient-descent paths from [`SURFACE_STARTS`].
pub fn loss_surface(config: &FiguresConfig) -> LossSurface {
    let (xs, ys) = surface_data();
    let (wx, wy) = ((-3.0, 3.0), (-2.0, 2.0));
    let centres = Grid::<f64>::centres(wx, wy, config.grid);
    let tape = Tape::<f64>::new();
    let g = centres.len();
    let column = |f: fn(&(f64, f64)) -> f64| tape.constant(Tensor::from_vec(centres.iter().map(f).collect(), &[g, 1]));
    let losses = neuron_loss(column(|c| c.0), column(|c| c.1), &xs, &ys).value().to_vec();
    let grid = Grid { x: wx, y: wy, values: losses.chunks(config.grid).map(<[f64]>::to_vec).collect() };

    let descend = |mut w: (f64, f64)| {
        let mut path = vec![w];
        for _ in 0..SURFACE_STEPS {
            let tape = Tape::<f64>::new();
            let a = tape.var(Tensor::from_vec(vec![w.0], &[1, 1]));
            let b = tape.var(Tensor::from_vec(vec![w.1], &[1, 1]));
            let grads = neuron_loss(a, b, &xs, &ys).sum().backward();
            w = (w.0 - SURFACE_LR * grads[a].item(), w.1 - SURFACE_LR * grads[b].item());
            path.push(w);
        }
        path
    };
    LossSurface { grid, paths: SURFACE_STARTS.iter().map(|&w| descend(w)).collect() }
}

/// Draws the loss surface as a banded colour map of `log₁₀ loss` with contour lines and a
/// colour bar, the two minima and the descent paths.
///
/// # Errors
/// [`Error::Io`] or [`Error::Plot`] if the figure cannot be drawn or written.
pub fn write_loss_surface(surface: &LossSurface, path: &Path) -> Result<(), Error> {
    let log_grid = Grid {
        x: surface.grid.x,
        y: surface.grid.y,
        values: surface.grid.values.iter().map(|row| row.iter().map(|v| v.max(1e-12).log10()).collect()).collect(),
    };
    // Bands of a quarter decade, from 10⁻³ to the largest loss.
    let lo = -3.0;
    let hi = log_grid.values.iter().flatten().copied().fold(lo + 0.25, f64::max);
    let bands = ((hi - lo) / 0.25).ceil() as usize;
    let hi = lo + 0.25 * bands as f64;
    let band_of = |v: f64| (((v - lo) / 0.25).floor().max(0.0) as usize).min(bands - 1);
    let colour = |band: usize| plot::viridis((band as f64 + 0.5) / bands as f64);
    let levels: Vec<f64> = (1..bands).map(|k| lo + 0.25 * k as f64).collect();
    let path_colours = [WHITE, PALETTE[3]];
    plot::render_svg(path, (760, 580), |root| {
        let root = root.titled(
            "Loss of one neuron w₂·tanh(w₁·x) fitted to tanh(2x): 300 steps of GD (dot every 10)",
            font(17.0),
        )?;
        let (main, bar) = root.split_horizontally(px(670));
        let mut chart = ChartBuilder::on(&main)
            .margin(px(12))
            .x_label_area_size(px(40))
            .y_label_area_size(px(44))
            .build_cartesian_2d(surface.grid.x.0..surface.grid.x.1, surface.grid.y.0..surface.grid.y.1)?;
        plot::draw_cell_map(&mut chart, &log_grid, |&v| Some(colour(band_of(v))))?;
        plot::draw_contours(&mut chart, &log_grid, &levels, WHITE.mix(0.3).stroke_width(px(1) / 2))?;
        let mut mesh = chart.configure_mesh();
        plot::style_mesh(&mut mesh);
        mesh.disable_mesh().x_desc("w₁").y_desc("w₂").draw()?;
        for (p, &col) in surface.paths.iter().zip(&path_colours) {
            chart
                .draw_series(LineSeries::new(p.iter().copied(), col.stroke_width(px(2))))?
                .label(format!("GD from ({}, {})", plot::tick(&p[0].0), plot::tick(&p[0].1)))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + pxi(22), y)], col.stroke_width(px(3))));
            chart.draw_series(p.iter().step_by(10).map(|&w| Circle::new(w, px(2), col.filled())))?;
            chart.draw_series([Circle::new(p[0], px(6), col.stroke_width(px(2)))])?;
        }
        let (a, b) = SURFACE_TARGET;
        chart
            .draw_series([(a, b), (-a, -b)].map(|m| Cross::new(m, px(7), RED.stroke_width(px(3)))))?
            .label("minima")
            .legend(|(x, y)| Cross::new((x + pxi(11), y), px(5), RED.stroke_width(px(3))));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .margin(px(10))
            .legend_area_size(px(30))
            .label_font(font(13.0))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(120, 120, 120))
            .draw()?;

        // Colour bar: one rectangle per band.
        let mut scale = ChartBuilder::on(&bar)
            .margin_top(px(12))
            .margin_bottom(px(52))
            .margin_right(px(8))
            .y_label_area_size(px(50))
            .build_cartesian_2d(0.0..1.0, lo..hi)?;
        scale.draw_series((0..bands).map(|k| {
            let y = lo + 0.25 * k as f64;
            Rectangle::new([(0.0, y), (1.0, y + 0.25)], colour(k).filled())
        }))?;
        let mut mesh = scale.configure_mesh();
        plot::style_mesh(&mut mesh);
        mesh.disable_mesh().disable_x_axis().y_desc("log₁₀ loss").y_labels(8).draw()?;
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// A small network learning a 1-D function

/// The function the small network learns: `sin(2x) + 0.3x` on `[−3, 3]`.
pub fn target(x: f64) -> f64 {
    (2.0 * x).sin() + 0.3 * x
}

/// A one-hidden-layer tanh network `1 → hidden → 1` written with broadcasting only:
/// `ŷ = Σ_j v_j·tanh(w_j·x + b_j) + c`.
#[derive(Clone, Debug)]
struct TinyNet {
    w: Vec<f64>,
    b: Vec<f64>,
    v: Vec<f64>,
    c: f64,
}

impl TinyNet {
    fn random(hidden: usize, seed: u64) -> Self {
        let mut rng = autograd::Rng::seed_from_u64(seed);
        // Xavier-like scales: the input is in [−3, 3], so w ~ N(0, 1) spreads the kinks over
        // it; the output sums `hidden` units of size ≈ 1.
        let mut draw = |std: f64| Tensor::<f64>::rand_normal(&[hidden], 0.0, std, &mut rng).to_vec();
        TinyNet { w: draw(1.0), b: draw(1.0), v: draw(1.0 / (hidden as f64).sqrt()), c: 0.0 }
    }

    fn params<'t>(&self, tape: &'t Tape<f64>) -> [Var<'t, f64>; 4] {
        let h = self.w.len();
        [
            tape.var(Tensor::from_vec(self.w.clone(), &[1, h])),
            tape.var(Tensor::from_vec(self.b.clone(), &[1, h])),
            tape.var(Tensor::from_vec(self.v.clone(), &[1, h])),
            tape.var(self.c),
        ]
    }

    fn forward<'t>(p: &[Var<'t, f64>; 4], x: Var<'t, f64>) -> Var<'t, f64> {
        let [w, b, v, c] = *p;
        let hidden = (x * w + b).tanh(); // (N, 1) · (1, H) → (N, H)
        (hidden * v).sum_axes(&[1], false) + c // (N,)
    }

    fn eval(&self, xs: &[f64]) -> Vec<f64> {
        let tape = Tape::<f64>::new();
        let p = self.params(&tape);
        let x = tape.constant(Tensor::from_vec(xs.to_vec(), &[xs.len(), 1]));
        Self::forward(&p, x).value().to_vec()
    }
}

/// Random initial functions and training snapshots of the small network.
#[derive(Clone, Debug)]
pub struct FitSnapshots {
    /// Hidden units of the network.
    pub hidden: usize,
    /// Where the curves are evaluated.
    pub xs: Vec<f64>,
    /// The functions of networks with different random initial weights (seeds `seed..seed+6`).
    pub initial: Vec<Vec<f64>>,
    /// `(step, function)` during the training of the first of them.
    pub snapshots: Vec<(usize, Vec<f64>)>,
    /// Mean squared error on the training points after each step.
    pub losses: Vec<f64>,
}

/// Trains the small network on 64 points of [`target`] and records its function at
/// steps 0, 10, 30, 100, 300 and the last.
pub fn fit_snapshots(config: &FiguresConfig) -> FitSnapshots {
    let xs: Vec<f64> = (0..=200).map(|i| -3.0 + 6.0 * f64::from(i) / 200.0).collect();
    let train_x: Vec<f64> = (0..64).map(|i| -3.0 + 6.0 * f64::from(i) / 63.0).collect();
    let train_y: Vec<f64> = train_x.iter().map(|&x| target(x)).collect();
    let initial = (0..6).map(|k| TinyNet::random(config.hidden, config.seed + k).eval(&xs)).collect();

    let mut net = TinyNet::random(config.hidden, config.seed);
    let marks = [0, 10, 30, 100, 300, config.steps];
    let mut snapshots = Vec::new();
    let mut losses = Vec::with_capacity(config.steps.min(1 << 20));
    let mut velocity: Option<[Vec<f64>; 4]> = None;
    for step in 0..=config.steps {
        if marks.contains(&step) {
            snapshots.push((step, net.eval(&xs)));
        }
        if step == config.steps {
            break;
        }
        let tape = Tape::<f64>::new();
        let p = net.params(&tape);
        let x = tape.constant(Tensor::from_vec(train_x.clone(), &[train_x.len(), 1]));
        let y = tape.constant(Tensor::from_vec(train_y.clone(), &[train_y.len()]));
        let loss = (TinyNet::forward(&p, x) - y).square().mean();
        losses.push(loss.item());
        let grads = loss.backward();
        let g = p.map(|v| grads[v].to_vec());
        let vel = velocity.get_or_insert_with(|| g.clone().map(|v| vec![0.0; v.len()]));
        let lr = config.learning_rate;
        let slots: [&mut Vec<f64>; 3] = [&mut net.w, &mut net.b, &mut net.v];
        for (k, slot) in slots.into_iter().enumerate() {
            for ((w, v), d) in slot.iter_mut().zip(vel[k].iter_mut()).zip(&g[k]) {
                *v = 0.9 * *v + d;
                *w -= lr * *v;
            }
        }
        vel[3][0] = 0.9 * vel[3][0] + g[3][0];
        net.c -= lr * vel[3][0];
    }
    FitSnapshots { hidden: config.hidden, xs, initial, snapshots, losses }
}

/// Draws random initial functions (left) and the training snapshots approaching the target
/// (right) to `path`.
///
/// # Errors
/// [`Error::Io`] or [`Error::Plot`] if the figure cannot be drawn or written.
pub fn write_fit_snapshots(snap: &FitSnapshots, path: &Path) -> Result<(), Error> {
    let truth: Vec<(f64, f64)> = snap.xs.iter().map(|&x| (x, target(x))).collect();
    let y_range = -2.0..2.0;
    plot::render_svg(path, (960, 420), |root| {
        let title =
            format!("A 1 → {} → 1 tanh network learning sin(2x) + 0.3x from 64 points (GD, momentum 0.9)", snap.hidden);
        let root = root.titled(&title, font(18.0))?;
        let panels = root.split_evenly((1, 2));
        let titles = ["six random initializations (black: the target)", "the first of them during training"];
        for (i, panel) in panels.iter().enumerate() {
            let mut chart = ChartBuilder::on(panel)
                .caption(titles[i], font(15.0))
                .margin(px(10))
                .x_label_area_size(px(40))
                .y_label_area_size(px(36))
                .build_cartesian_2d(-3.0..3.0, y_range.clone())?;
            let mut mesh = chart.configure_mesh();
            plot::style_mesh(&mut mesh);
            mesh.x_desc("x").draw()?;
            chart
                .draw_series(LineSeries::new(truth.iter().copied(), BLACK.stroke_width(px(3))))?
                .label("target")
                .legend(|(x, y)| PathElement::new([(x, y), (x + pxi(22), y)], BLACK.stroke_width(px(3))));
            if i == 0 {
                for (k, ys) in snap.initial.iter().enumerate() {
                    let col = PALETTE[k % 7];
                    chart.draw_series(LineSeries::new(
                        snap.xs.iter().copied().zip(ys.iter().copied()),
                        col.stroke_width(px(2)),
                    ))?;
                }
            } else {
                let n = snap.snapshots.len().max(2) - 1;
                for (k, (step, ys)) in snap.snapshots.iter().enumerate() {
                    // Light to dark: later snapshots are drawn darker.
                    let col = plot::viridis(0.85 * (1.0 - k as f64 / n as f64));
                    chart
                        .draw_series(LineSeries::new(
                            snap.xs.iter().copied().zip(ys.iter().copied()),
                            col.stroke_width(px(2)),
                        ))?
                        .label(format!("step {step}"))
                        .legend(move |(x, y)| PathElement::new([(x, y), (x + pxi(22), y)], col.stroke_width(px(2))));
                }
                draw_legend(&mut chart, SeriesLabelPosition::LowerRight, 12.0)?;
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_derivatives_match_hand_values() {
        let (_, d) = activation("tanh", &[0.0]);
        assert_eq!(d, [1.0]);
        let (_, d) = activation("sigmoid", &[0.0]);
        assert_eq!(d, [0.25]);
        let (y, d) = activation("relu", &[-1.0, 2.0]);
        assert_eq!((y, d), (vec![0.0, 2.0], vec![0.0, 1.0]));
    }

    #[test]
    fn descents_from_either_side_of_the_ridge_end_in_different_minima() {
        let config = FiguresConfig { grid: 20, ..Default::default() };
        let s = loss_surface(&config);
        let (a, b) = SURFACE_TARGET;
        let ends: Vec<_> = s.paths.iter().map(|p| *p.last().expect("300 steps")).collect();
        let near = |p: (f64, f64), m: (f64, f64)| (p.0 - m.0).abs() < 0.5 && (p.1 - m.1).abs() < 0.1;
        // The two starts end in different minima.
        assert!(near(ends[0], (a, b)), "{ends:?}");
        assert!(near(ends[1], (-a, -b)), "{ends:?}");
    }

    #[test]
    fn small_network_loss_falls() {
        let config = FiguresConfig { steps: 300, ..Default::default() };
        let s = fit_snapshots(&config);
        assert!(s.losses[299] < 0.5 * s.losses[0], "{} → {}", s.losses[0], s.losses[299]);
    }
}
