//! Physics in the loss: a network learns the height `h(t)` of Galileo's cannonball from the
//! same noisy drops as [`curve_fit`], with a loss that also asks
//! `d²h/dt² = −g` at collocation times, where nothing was measured.
//!
//! **The data as a trajectory.** A ball dropped from floor `x` falls `x · floor_height` metres
//! in the measured time `tₓ`. A ball dropped from the top of the tower (height `h₀`) has fallen
//! the same distance after the same time, so each drop is a point `(tₓ, h₀ − x · floor_height)`
//! of one trajectory, the top drop's `h(t) = h₀ − g t²/2`. The noise is in `tₓ` (the stopwatch).
//!
//! **The model.** `h(t) = h₀ · n(t / t_s)` with `n` an MLP `1 → hidden → 1` with `tanh`
//! (smooth, so its second derivative exists and is not zero almost everywhere as `relu`'s is) and
//! `t_s` the longest measured time. The loss is
//!
//! ```text
//! L = mean_i ((h(t_i) − h_i) / h₀)²  +  λ · mean_j ((h''(τ_j) + g) / g)²
//! ```
//!
//! over the drops `i` and the collocation times `τ_j`, evenly spread over `[0, margin · t_s]`.
//! `h''(τ_j)` is the network's second derivative with respect to its **input**: two
//! [`Tape::grad`] calls on the tape of the step (each output row depends only on its own input
//! row, so the gradient of the sum is the per-row derivative), and `backward` of the loss then
//! differentiates that second derivative with respect to the weights: a third-order sweep
//! through the tape, every step.
//!
//! **The comparison.** The plain fit is [`curve_fit`]'s quadratic `t(x)`,
//! fitted to the same drops. Both predict the fall time from the floors that were not measured:
//! the quadratic directly, the network as the time at which its `h(t)` passes the floor's
//! height (bisection). The same network trained with `λ = 0` (data only) is reported beside
//! them, so that the gain can be told apart from the network's own shape. The errors are
//! against the noiseless `√(2h/g)`.
//!
//! ```
//! use models::curve_fit::CurveFitConfig;
//! use models::physics_fit::{fit, PhysicsFitConfig};
//!
//! let physics = PhysicsFitConfig { steps: 600, ..Default::default() };
//! let report = fit(&CurveFitConfig::default(), &physics).expect("valid configurations");
//! assert!(report.physics.residual_rms < 0.05 * report.curve.config.g);
//! ```

use std::path::Path;

use autograd::{Tape, Tensor, Var};
use nn::{Activation, Adam, AdamConfig, Bound, Decay, LrSchedule, Mlp, Optimizer, ParamStore};
use plotters::prelude::*;

use crate::config::Invalid;
use crate::curve_fit::{self, CurveFitConfig, CurveFitReport};
use crate::plot::{self, draw_legend, font, px, pxi, PALETTE};
use crate::Error;

/// Largest hidden width and number of hidden layers accepted.
const MAX_WIDTH: usize = 256;
/// Largest number of hidden layers.
const MAX_LAYERS: usize = 4;
/// Largest number of collocation points.
const MAX_COLLOCATION: usize = 4096;
/// Largest number of training steps.
const MAX_STEPS: usize = 1_000_000;
/// Bisection halvings when solving `h(t) = height` (the bracket shrinks by 2⁻⁶⁰: below `f64`'s
/// resolution of a few seconds).
const BISECTIONS: usize = 60;

/// The network and its training (a `serde` struct like every model's configuration; the
/// measurements come from a [`CurveFitConfig`], whose seed also draws the initial weights).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PhysicsFitConfig {
    /// Hidden-layer widths of the MLP `1 → … → 1` (tanh between layers).
    pub hidden: Vec<usize>,
    /// Collocation times where `d²h/dt² = −g` is asked, evenly spread over
    /// `[0, time_margin · longest measured time]`.
    pub collocation_points: usize,
    /// How far past the longest measured time the physics is asked, as a factor (≥ 1): the
    /// floors above the highest measured one fall longer than any measurement.
    pub time_margin: f64,
    /// Weight `λ` of the physics term against the data term.
    pub physics_weight: f64,
    /// Adam steps.
    pub steps: usize,
    /// Adam's learning rate at the start; it decays along half a cosine to a hundredth of it.
    pub learning_rate: f64,
}

impl Default for PhysicsFitConfig {
    fn default() -> Self {
        PhysicsFitConfig {
            hidden: vec![16, 16],
            collocation_points: 32,
            time_margin: 1.25,
            physics_weight: 1.0,
            steps: 3000,
            learning_rate: 0.01,
        }
    }
}

impl PhysicsFitConfig {
    /// Checks every field against its range before anything is built.
    ///
    /// # Errors
    /// [`Invalid`] naming the field and its bound.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !(1..=MAX_LAYERS).contains(&self.hidden.len()) {
            return Err(Invalid::new(
                "hidden",
                format!("= {:?} must list 1 to {MAX_LAYERS} hidden layers", self.hidden),
            ));
        }
        if let Some(w) = self.hidden.iter().find(|&&w| w == 0 || w > MAX_WIDTH) {
            return Err(Invalid::new("hidden", format!("= {:?}: width {w} is not in 1 to {MAX_WIDTH}", self.hidden)));
        }
        if self.collocation_points < 2 {
            return Err(Invalid::new(
                "collocation_points",
                format!("= {} must be at least 2 (the ends of the span)", self.collocation_points),
            ));
        }
        Invalid::at_most("collocation_points", self.collocation_points as u128, MAX_COLLOCATION as u128, "")?;
        Invalid::in_range("steps", self.steps as u128, MAX_STEPS as u128)?;
        if !(self.time_margin.is_finite() && self.time_margin >= 1.0) {
            return Err(Invalid::new("time_margin", format!("= {} must be finite and at least 1", self.time_margin)));
        }
        if !(self.physics_weight.is_finite() && self.physics_weight >= 0.0) {
            return Err(Invalid::new(
                "physics_weight",
                format!("= {} must be finite and non-negative", self.physics_weight),
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Invalid::new("learning_rate", format!("= {} must be positive and finite", self.learning_rate)));
        }
        Ok(())
    }
}

/// The network `h(t) = h₀ · n(t / t_s)`, with its weights.
#[derive(Clone)]
pub struct HeightNet {
    /// The weights of `n`.
    pub store: ParamStore<f64>,
    /// The MLP `n`, `1 → hidden → 1`.
    pub mlp: Mlp,
    /// The height the ball is dropped from, m (the output scale).
    pub h0: f64,
    /// The input scale `t_s`, s.
    pub t_scale: f64,
}

impl HeightNet {
    /// An untrained network with `hidden` widths, weights drawn from `seed`.
    ///
    /// # Panics
    /// If a width is 0.
    pub fn new(hidden: &[usize], h0: f64, t_scale: f64, seed: u64) -> Self {
        let mut store = ParamStore::with_seed(seed);
        let sizes: Vec<usize> = std::iter::once(1).chain(hidden.iter().copied()).chain([1]).collect();
        let mlp = Mlp::new(store.scope("height"), &sizes, Activation::Tanh);
        HeightNet { store, mlp, h0, t_scale }
    }

    /// `h(t)` in metres for times `t` of shape `[n, 1]` in seconds, on `p`'s tape.
    #[track_caller]
    pub fn height<'t>(&self, p: &Bound<'t, f64>, t: Var<'t, f64>) -> Var<'t, f64> {
        self.mlp.forward(p, t * (1.0 / self.t_scale)) * self.h0
    }

    /// `h`, `dh/dt` and `d²h/dt²` at times `t` (shape `[n, 1]`, a `Var` on `p`'s tape), all
    /// `[n, 1]` and differentiable again: each row of the MLP depends only on its own input, so
    /// the gradient of `Σ h` with respect to `t` is `dh/dt` row by row.
    #[track_caller]
    pub fn derivatives<'t>(&self, p: &Bound<'t, f64>, t: Var<'t, f64>) -> [Var<'t, f64>; 3] {
        let tape = p.tape();
        let h = self.height(p, t);
        let dh = tape.grad(h.sum(), &[t])[0];
        let d2h = tape.grad(dh.sum(), &[t])[0];
        [h, dh, d2h]
    }

    /// `h(t)` at each of `ts`, m.
    pub fn heights(&self, ts: &[f64]) -> Vec<f64> {
        let tape = Tape::new();
        let p = self.store.bind(&tape);
        self.height(&p, tape.constant(column(ts))).value().data().to_vec()
    }

    /// `d²h/dt²` at each of `ts`, m/s², by double backward through the tape.
    pub fn accelerations(&self, ts: &[f64]) -> Vec<f64> {
        let tape = Tape::new();
        let p = self.store.bind(&tape);
        let [_, _, d2h] = self.derivatives(&p, tape.var(column(ts)));
        d2h.value().data().to_vec()
    }

    /// For each height of `heights`, the time in `[0, t_max]` at which `h(t)` passes it (solved
    /// by bisection, all heights at once), or `None` where `h(0) − height` and `h(t_max) −
    /// height` do not differ in sign (no single crossing can be bracketed).
    pub fn times_at(&self, heights: &[f64], t_max: f64) -> Vec<Option<f64>> {
        let n = heights.len();
        let at = |ts: &[f64]| -> Vec<f64> { self.heights(ts).iter().zip(heights).map(|(h, y)| h - y).collect() };
        let (mut lo, mut hi) = (vec![0.0; n], vec![t_max; n]);
        let (f_lo, f_hi) = (at(&lo), at(&hi));
        let bracketed: Vec<bool> = f_lo.iter().zip(&f_hi).map(|(a, b)| a.signum() != b.signum()).collect();
        let rising: Vec<bool> = f_lo.iter().map(|a| *a < 0.0).collect();
        for _ in 0..BISECTIONS {
            let mid: Vec<f64> = lo.iter().zip(&hi).map(|(a, b)| 0.5 * (a + b)).collect();
            for (i, f) in at(&mid).into_iter().enumerate() {
                if (f < 0.0) == rising[i] {
                    lo[i] = mid[i];
                } else {
                    hi[i] = mid[i];
                }
            }
        }
        (0..n).map(|i| bracketed[i].then(|| 0.5 * (lo[i] + hi[i]))).collect()
    }
}

/// A network trained on the drops, with or without the physics term.
#[derive(Clone)]
pub struct TrainedNet {
    /// The network after training.
    pub net: HeightNet,
    /// The physics weight `λ` it was trained with (0: data only).
    pub physics_weight: f64,
    /// Root-mean-square of `h(tᵢ) − hᵢ` over the drops after training, m.
    pub data_rmse: f64,
    /// Root-mean-square of `h'' + g` over the collocation times after training, m/s².
    pub residual_rms: f64,
    /// The same before training.
    pub residual_rms_before: f64,
    /// The mean of `h''` over the collocation times after training (the `−g` it learned), m/s².
    pub mean_acceleration: f64,
    /// The loss before each step and after the last one.
    pub losses: Vec<f64>,
}

/// One unmeasured floor: the true fall time and each fit's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloorPrediction {
    /// The floor.
    pub floor: u32,
    /// `√(2h/g)` without noise, s.
    pub true_time: f64,
    /// The plain quadratic `t(x)`'s prediction, s.
    pub quadratic: f64,
    /// The physics-informed network's, s (`None`: its `h(t)` does not reach that height within
    /// the collocation span).
    pub physics: Option<f64>,
    /// The data-only network's, s.
    pub data_only: Option<f64>,
}

/// Everything [`fit`] finds.
#[derive(Clone)]
pub struct PhysicsFitReport {
    /// The plain fits of the same drops (its `measurements` are the data of both networks).
    pub curve: CurveFitReport,
    /// The configuration of the networks.
    pub config: PhysicsFitConfig,
    /// The height the ball is dropped from: the highest floor, measured or predicted, m.
    pub h0: f64,
    /// The collocation span's end, s.
    pub t_max: f64,
    /// The network trained with the physics term.
    pub physics: TrainedNet,
    /// The same network, same initial weights, trained on the data alone (`λ = 0`).
    pub data_only: TrainedNet,
}

/// Simulates the drops of `curve`, fits its plain polynomials, and trains the network twice on
/// the same drops: with the physics term and without it.
///
/// # Errors
/// [`Error::Config`] if either configuration is invalid.
pub fn fit(curve: &CurveFitConfig, config: &PhysicsFitConfig) -> Result<PhysicsFitReport, Error> {
    config.validate()?;
    let plain = curve_fit::fit(curve)?;
    let top = curve.measured_floors.iter().chain(&curve.predicted_floors).copied().max().unwrap_or(0);
    let h0 = f64::from(top) * curve.floor_height;
    let ts: Vec<f64> = plain.measurements.iter().map(|m| m.time).collect();
    let hs: Vec<f64> = plain.measurements.iter().map(|m| h0 - m.height).collect();
    let t_scale = ts.iter().copied().fold(0.0, f64::max);
    if t_scale <= 0.0 {
        return Err(Error::Config(format!(
            "the longest measured fall time is {t_scale} s; the physics fit needs a positive one"
        )));
    }
    let t_max = config.time_margin * t_scale;
    let colloc: Vec<f64> =
        (0..config.collocation_points).map(|j| t_max * j as f64 / (config.collocation_points - 1) as f64).collect();
    let init = HeightNet::new(&config.hidden, h0, t_scale, curve.seed);
    let train_with = |weight: f64| train(init.clone(), &ts, &hs, &colloc, curve.g, weight, config);
    Ok(PhysicsFitReport {
        physics: train_with(config.physics_weight)?,
        data_only: train_with(0.0)?,
        curve: plain,
        config: config.clone(),
        h0,
        t_max,
    })
}

/// Trains `net` by Adam on the data term plus `weight` times the physics term.
fn train(
    mut net: HeightNet,
    ts: &[f64],
    hs: &[f64],
    colloc: &[f64],
    g: f64,
    weight: f64,
    config: &PhysicsFitConfig,
) -> Result<TrainedNet, Error> {
    let residual_rms = |net: &HeightNet| rms(net.accelerations(colloc).iter().map(|a| a + g));
    let residual_rms_before = residual_rms(&net);
    let mut opt = Adam::new(AdamConfig { lr: config.learning_rate, ..Default::default() });
    let schedule = LrSchedule {
        base_lr: config.learning_rate,
        warmup_steps: 0,
        decay: Decay::Cosine { total_steps: config.steps as u64, min_lr: config.learning_rate / 100.0 },
    };
    let (t_data, h_data, t_colloc) = (column(ts), column(hs), column(colloc));
    let mut losses = Vec::with_capacity(config.steps + 1);
    for step in 0..=config.steps {
        let tape = Tape::new();
        let p = net.store.bind(&tape);
        let fit = ((net.height(&p, tape.constant(t_data.clone())) - tape.constant(h_data.clone())) * (1.0 / net.h0))
            .square()
            .mean();
        let loss = if weight > 0.0 {
            let [_, _, d2h] = net.derivatives(&p, tape.var(t_colloc.clone()));
            fit + ((d2h + g) * (1.0 / g)).square().mean() * weight
        } else {
            fit
        };
        let value = loss.item();
        nn::check_loss(step as u64, value)?;
        losses.push(value);
        if step == config.steps {
            break;
        }
        let grads = p.backward(loss);
        schedule.apply(&mut opt);
        opt.step(&mut net.store, &grads);
    }
    let fitted = net.heights(ts);
    Ok(TrainedNet {
        data_rmse: rms(fitted.iter().zip(hs).map(|(a, b)| a - b)),
        residual_rms: residual_rms(&net),
        residual_rms_before,
        mean_acceleration: net.accelerations(colloc).iter().sum::<f64>() / colloc.len() as f64,
        physics_weight: weight,
        net,
        losses,
    })
}

/// `values` as a column `[n, 1]`.
fn column(values: &[f64]) -> Tensor<f64> {
    Tensor::from_vec(values.to_vec(), &[values.len(), 1])
}

fn rms(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v * v, n + 1));
    (sum / n.max(1) as f64).sqrt()
}

impl PhysicsFitReport {
    /// The fall time from each floor of `floors` (possibly fractional) as each network predicts
    /// it: the time at which its `h(t)` passes `h₀ − floor · floor_height`.
    pub fn net_fall_times(&self, net: &TrainedNet, floors: &[f64]) -> Vec<Option<f64>> {
        let heights: Vec<f64> = floors.iter().map(|x| self.h0 - x * self.curve.config.floor_height).collect();
        net.net.times_at(&heights, self.t_max)
    }

    /// The root-mean-square of `h(t) − (h₀ − g t²/2)` over 201 times evenly spread over the
    /// collocation span `[0, t_max]`, measured or not, m.
    pub fn height_error_rms(&self, net: &TrainedNet) -> f64 {
        let ts: Vec<f64> = (0..=200).map(|i| self.t_max * f64::from(i) / 200.0).collect();
        let g = self.curve.config.g;
        rms(net.net.heights(&ts).iter().zip(&ts).map(|(h, t)| h - (self.h0 - 0.5 * g * t * t)))
    }

    /// The true fall time and each fit's, for each of the curve fit's unmeasured floors.
    pub fn predictions(&self) -> Vec<FloorPrediction> {
        let c = &self.curve.config;
        let floors: Vec<f64> = c.predicted_floors.iter().map(|&f| f64::from(f)).collect();
        let physics = self.net_fall_times(&self.physics, &floors);
        let data_only = self.net_fall_times(&self.data_only, &floors);
        c.predicted_floors
            .iter()
            .zip(physics.into_iter().zip(data_only))
            .map(|(&floor, (physics, data_only))| FloorPrediction {
                floor,
                true_time: c.true_time(f64::from(floor)),
                quadratic: self.curve.quadratic.predict(f64::from(floor)),
                physics,
                data_only,
            })
            .collect()
    }

    /// The largest `|predicted − true|` fall time over the unmeasured floors, s, for the
    /// quadratic, the physics network and the data-only network (`∞` for a network that does
    /// not reach a floor's height).
    pub fn worst_errors(&self) -> [f64; 3] {
        let err = |t: Option<f64>, truth: f64| t.map_or(f64::INFINITY, |t| (t - truth).abs());
        self.predictions().iter().fold([0.0; 3], |[q, p, d], f| {
            [
                q.max((f.quadratic - f.true_time).abs()),
                p.max(err(f.physics, f.true_time)),
                d.max(err(f.data_only, f.true_time)),
            ]
        })
    }

    /// A plain-text summary: both networks' fit and residual, and the three predictions at the
    /// unmeasured floors with their errors.
    pub fn summary(&self) -> String {
        let c = &self.curve.config;
        let sizes: Vec<String> =
            std::iter::once(1).chain(self.config.hidden.iter().copied()).chain([1]).map(|w| w.to_string()).collect();
        let mut s = format!(
            "physics-informed fit: h(t) = {:.2} m · MLP [{}] (tanh)(t / {:.3} s), {} Adam steps on the {} drops,\n  \
             with d²h/dt² = −{} m/s² asked at {} times in [0, {:.2}] s (weight {})\n",
            self.h0,
            sizes.join(", "),
            self.physics.net.t_scale,
            self.config.steps,
            self.curve.measurements.len(),
            c.g,
            self.config.collocation_points,
            self.t_max,
            self.config.physics_weight,
        );
        for (name, n) in [("with physics", &self.physics), ("data only", &self.data_only)] {
            s.push_str(&format!(
                "{name:>14}: height RMSE on the drops {:.3} m, against the truth over [0, {:.2}] s {:.3} m; \
                 |h'' + g| RMS {:.4} m/s² (before training {:.2}); mean h'' {:.4} m/s²\n",
                n.data_rmse,
                self.t_max,
                self.height_error_rms(n),
                n.residual_rms,
                n.residual_rms_before,
                n.mean_acceleration
            ));
        }
        let ms = |t: Option<f64>, truth: f64| match t {
            Some(t) => format!("{t:.4} s ({:+6.1} ms)", 1000.0 * (t - truth)),
            None => "not reached       ".to_string(),
        };
        s.push_str("fall time from the unmeasured floors (error against √(2h/g)):\n");
        s.push_str("  floor   true       quadratic t(x)       physics net          data-only net\n");
        for p in self.predictions() {
            s.push_str(&format!(
                "  {:>5}   {:.4} s   {}   {}   {}\n",
                p.floor,
                p.true_time,
                ms(Some(p.quadratic), p.true_time),
                ms(p.physics, p.true_time),
                ms(p.data_only, p.true_time)
            ));
        }
        let [q, p, d] = self.worst_errors();
        s.push_str(&format!(
            "largest error at the unmeasured floors: quadratic {:.1} ms, physics net {:.1} ms, data-only net {:.1} ms\n",
            1000.0 * q,
            1000.0 * p,
            1000.0 * d
        ));
        s
    }

    /// Draws `h(t)`: the drops, the truth, both networks and the quadratic; and below, each
    /// fit's fall-time error against the floor; writes the figure to `path` as SVG.
    ///
    /// # Errors
    /// [`Error::Plot`] or [`Error::Io`] if the figure cannot be drawn or written.
    pub fn write_figure(&self, path: &Path) -> Result<(), Error> {
        let c = &self.curve.config;
        let top = self.h0 / c.floor_height;
        let truth_h = |t: f64| self.h0 - 0.5 * c.g * t * t;
        let ts: Vec<f64> = (0..=200).map(|i| self.t_max * f64::from(i) / 200.0).collect();
        let (quad_col, phys_col, data_col, true_col) = (PALETTE[3], PALETTE[2], PALETTE[5], RGBColor(60, 60, 60));
        // The quadratic t(x) drawn as the curve (t(x), h₀ − x·floor_height) over the floors.
        let floors: Vec<f64> = (0..=200).map(|i| FIT_FROM + (top - FIT_FROM) * f64::from(i) / 200.0).collect();
        let quad: Vec<(f64, f64)> =
            floors.iter().map(|&x| (self.curve.quadratic.predict(x), self.h0 - x * c.floor_height)).collect();
        let nets = [
            (&self.physics, phys_col, "network with d²h/dt² = −g in the loss"),
            (&self.data_only, data_col, "the same network, data only"),
        ];
        let net_curves: Vec<Vec<(f64, f64)>> =
            nets.iter().map(|(n, _, _)| ts.iter().copied().zip(n.net.heights(&ts)).collect()).collect();
        let net_times: Vec<Vec<Option<f64>>> = nets.iter().map(|(n, _, _)| self.net_fall_times(n, &floors)).collect();
        let h_min = net_curves.iter().flatten().map(|p| p.1).fold(truth_h(self.t_max), f64::min).min(0.0);
        let h_max = net_curves.iter().flatten().map(|p| p.1).fold(self.h0, f64::max);
        let pad = 0.06 * (h_max - h_min);
        let predictions = self.predictions();

        plot::render_svg(path, (760, 700), |root| {
            let (upper, lower) = root.split_vertically(px(460));
            let mut chart = ChartBuilder::on(&upper)
                .caption("Physics in the loss: the cannonball's height h(t) from the same 18 drops", font(19.0))
                .margin(px(12))
                .x_label_area_size(px(40))
                .y_label_area_size(px(52))
                .build_cartesian_2d(0.0..self.t_max, (h_min - pad)..(h_max + pad))?;
            let mut mesh = chart.configure_mesh();
            plot::style_mesh(&mut mesh);
            mesh.x_desc("time since the drop from the top t (s)").y_desc("height h (m)").draw()?;
            chart
                .draw_series(LineSeries::new(ts.iter().map(|&t| (t, truth_h(t))), true_col.stroke_width(px(1))))?
                .label(format!("truth h₀ − g t²/2, g = {} m/s²", c.g))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + pxi(22), y)], true_col.stroke_width(px(1))));
            chart
                .draw_series(LineSeries::new(quad.iter().copied(), quad_col.stroke_width(px(2))))?
                .label("plain quadratic fit t(x) of curve-fit")
                .legend(move |(x, y)| PathElement::new([(x, y), (x + pxi(22), y)], quad_col.stroke_width(px(2))));
            for ((n, col, name), curve) in nets.iter().zip(&net_curves) {
                let col = *col;
                chart
                    .draw_series(LineSeries::new(curve.iter().copied(), col.stroke_width(px(2))))?
                    .label(format!("{name}: |h'' + g| RMS {:.2} m/s²", n.residual_rms))
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + pxi(22), y)], col.stroke_width(px(2))));
            }
            chart
                .draw_series(
                    self.curve
                        .measurements
                        .iter()
                        .map(|m| Circle::new((m.time, self.h0 - m.height), px(3), BLACK.mix(0.75).filled())),
                )?
                .label(format!("drops, timing noise σ = {} s", c.noise_std))
                .legend(|(x, y)| Circle::new((x + pxi(11), y), px(3), BLACK.mix(0.75).filled()));
            for p in &predictions {
                let h = self.h0 - f64::from(p.floor) * c.floor_height;
                chart.draw_series([Circle::new((p.quadratic, h), px(6), quad_col.stroke_width(px(2)))])?;
                if let Some(t) = p.physics {
                    chart.draw_series([Circle::new((t, h), px(6), phys_col.stroke_width(px(2)))])?;
                }
            }
            draw_legend(&mut chart, SeriesLabelPosition::LowerLeft, 13.0)?;

            // Below: each fit's fall time minus the truth, against the floor, in milliseconds.
            let err_ms = |t: f64, x: f64| 1000.0 * (t - c.true_time(x));
            let quad_err: Vec<(f64, f64)> =
                floors.iter().map(|&x| (x, err_ms(self.curve.quadratic.predict(x), x))).collect();
            let net_err: Vec<Vec<(f64, f64)>> = net_times
                .iter()
                .map(|times| floors.iter().zip(times).filter_map(|(&x, t)| t.map(|t| (x, err_ms(t, x)))).collect())
                .collect();
            let span = quad_err
                .iter()
                .chain(net_err.iter().flatten())
                .map(|p| p.1.abs())
                .chain(self.curve.measurements.iter().map(|m| err_ms(m.time, f64::from(m.floor)).abs()))
                .fold(1.0, f64::max)
                * 1.1;
            let mut err = ChartBuilder::on(&lower)
                .margin(px(12))
                .x_label_area_size(px(40))
                .y_label_area_size(px(52))
                .build_cartesian_2d(0.0..top + 0.5, -span..span)?;
            let mut mesh = err.configure_mesh();
            plot::style_mesh(&mut mesh);
            mesh.x_desc("floor x (◯ = floors not measured)")
                .y_desc("fall time minus truth (ms)")
                .x_labels(top as usize + 2)
                .y_labels(5)
                .draw()?;
            err.draw_series(LineSeries::new([(0.0, 0.0), (top + 0.5, 0.0)], true_col.stroke_width(px(1))))?;
            err.draw_series(LineSeries::new(quad_err.iter().copied(), quad_col.stroke_width(px(2))))?;
            for ((_, col, _), curve) in nets.iter().zip(&net_err) {
                err.draw_series(LineSeries::new(curve.iter().copied(), col.stroke_width(px(2))))?;
            }
            err.draw_series(self.curve.measurements.iter().map(|m| {
                let x = f64::from(m.floor);
                Circle::new((x, err_ms(m.time, x)), px(3), BLACK.mix(0.75).filled())
            }))?;
            for p in &predictions {
                let x = f64::from(p.floor);
                err.draw_series([Circle::new((x, err_ms(p.quadratic, x)), px(6), quad_col.stroke_width(px(2)))])?;
                for (t, col) in [(p.physics, phys_col), (p.data_only, data_col)] {
                    if let Some(t) = t {
                        err.draw_series([Circle::new((x, err_ms(t, x)), px(6), col.stroke_width(px(2)))])?;
                    }
                }
            }
            Ok(())
        })
    }
}

/// The quadratic is drawn from this floor up, as in [`curve_fit`]'s figure.
const FIT_FROM: f64 = 0.75;

#[cfg(test)]
mod tests {
    use super::*;

    /// Fewer steps than the default, for test time; the targets hold at the default too (see
    /// the command-line output quoted in the guide).
    fn quick() -> PhysicsFitConfig {
        PhysicsFitConfig { steps: 1500, ..Default::default() }
    }

    #[test]
    fn second_derivative_wrt_t_matches_finite_differences() {
        let net = HeightNet::new(&[8, 8], 55.86, 3.2, 7);
        let ts = [0.0, 0.4, 1.3, 2.2, 3.1, 3.9];
        let eps = 1e-3;
        let (d2h, h) = (net.accelerations(&ts), net.heights(&ts));
        let plus = net.heights(&ts.map(|t| t + eps));
        let minus = net.heights(&ts.map(|t| t - eps));
        for i in 0..ts.len() {
            // (h(t+ε) − 2h(t) + h(t−ε))/ε² has error ε²·h''''/12 plus rounding 4·ulp(h)/ε².
            let numeric = (plus[i] - 2.0 * h[i] + minus[i]) / (eps * eps);
            assert!((d2h[i] - numeric).abs() < 1e-5 * (1.0 + numeric.abs()), "t = {}: {} vs {numeric}", ts[i], d2h[i]);
        }
        // And the first derivative of the same sweep, by central differences.
        let tape = Tape::new();
        let p = net.store.bind(&tape);
        let [_, dh, _] = net.derivatives(&p, tape.var(column(&ts)));
        for (i, d) in dh.value().data().iter().enumerate() {
            let numeric = (plus[i] - minus[i]) / (2.0 * eps);
            assert!((d - numeric).abs() < 1e-5 * (1.0 + numeric.abs()), "t = {}: {d} vs {numeric}", ts[i]);
        }
    }

    #[test]
    fn training_reduces_the_physics_residual() {
        let report = fit(&CurveFitConfig::default(), &quick()).expect("valid configurations");
        let (p, g) = (&report.physics, report.curve.config.g);
        assert!(p.residual_rms < 0.01 * g, "|h'' + g| RMS {} m/s² after training", p.residual_rms);
        assert!(p.residual_rms < p.residual_rms_before / 20.0, "{} → {}", p.residual_rms_before, p.residual_rms);
        assert!((p.mean_acceleration + g).abs() < 0.01 * g, "mean h'' {}", p.mean_acceleration);
        // The data still count: the fit is as close to the drops as the timing noise allows
        // (σ_t = 0.05 s is σ_h ≈ g·t·σ_t ≈ 1.5 m at the top floors).
        assert!(p.data_rmse < 2.0, "height RMSE {} m", p.data_rmse);
        // Without the physics term, nothing pulls h'' towards −g.
        assert!(report.data_only.residual_rms > 10.0 * p.residual_rms);
        // And away from the drops, the law keeps h(t) close to the true fall.
        let (with, without) = (report.height_error_rms(p), report.height_error_rms(&report.data_only));
        assert!(
            with < 0.5 && with < without,
            "height error against the truth: {with} m with the law, {without} m without"
        );
    }

    #[test]
    fn physics_fit_beats_the_plain_quadratic_at_unmeasured_floors() {
        for seed in [0, 1] {
            let report = fit(&CurveFitConfig { seed, ..Default::default() }, &quick()).expect("valid configurations");
            let [quadratic, physics, _] = report.worst_errors();
            assert!(
                physics < quadratic,
                "seed {seed}: physics net {:.1} ms vs quadratic {:.1} ms\n{}",
                1000.0 * physics,
                1000.0 * quadratic,
                report.summary()
            );
        }
    }

    #[test]
    fn times_at_inverts_the_height() {
        let net = HeightNet::new(&[8], 10.0, 1.0, 3);
        let ts = [0.2, 0.5, 0.9];
        let hs = net.heights(&ts);
        // A random network need not be monotone: check only that h(t*) hits the height.
        for (t, h) in net.times_at(&hs, 1.0).into_iter().zip(&hs) {
            if let Some(t) = t {
                assert!((net.heights(&[t])[0] - h).abs() < 1e-9);
            }
        }
        assert_eq!(net.times_at(&[1e6], 1.0), vec![None], "a height never reached has no time");
    }

    #[test]
    fn invalid_configurations_name_the_field() {
        let bad = |c: PhysicsFitConfig| c.validate().unwrap_err().field;
        assert_eq!(bad(PhysicsFitConfig { hidden: vec![], ..Default::default() }), "hidden");
        assert_eq!(bad(PhysicsFitConfig { hidden: vec![16, 0], ..Default::default() }), "hidden");
        assert_eq!(bad(PhysicsFitConfig { collocation_points: 1, ..Default::default() }), "collocation_points");
        assert_eq!(bad(PhysicsFitConfig { time_margin: 0.5, ..Default::default() }), "time_margin");
        assert_eq!(bad(PhysicsFitConfig { physics_weight: f64::NAN, ..Default::default() }), "physics_weight");
        assert_eq!(bad(PhysicsFitConfig { learning_rate: 0.0, ..Default::default() }), "learning_rate");
        assert_eq!(bad(PhysicsFitConfig { steps: 0, ..Default::default() }), "steps");
        assert!(matches!(
            fit(&CurveFitConfig::default(), &PhysicsFitConfig { steps: 0, ..Default::default() }),
            Err(Error::Config(_))
        ));
    }
}
