//! Galileo's cannonball: how long does a ball take to fall from each floor of the tower of Pisa?
//!
//! The measurements are simulated. The tower is 55.86 m tall on its low side; we spread that over
//! its 8 storeys, so floor `x` is at height `h = 6.9825·x` m, and a ball dropped from it lands
//! after `t = √(2h/g)` with `g = 9.81 m/s²` (no air drag). Each measured floor is timed
//! [`CurveFitConfig::drops_per_floor`] times with seeded Gaussian noise (σ = 0.05 s by default, a
//! good stopwatch in a steady hand). Floors 5 and 8 are not measured: the fits predict them.
//!
//! Two models of time against floor are fitted, `a + b·x` and `a + b·x + c·x²`, by plain
//! gradient descent on **scalar parameters**: every parameter is a 0-d tensor, every measurement
//! a plain `f64`, and the loss a graph of scalar nodes, micrograd style. The floor is
//! standardized first (`z = (x − mean)/std`, and `x²` likewise from `z²`), which makes the loss
//! nearly round so that a fixed step size converges in a few hundred steps; the coefficients are
//! mapped back to `x` afterwards. The result is checked against the exact least-squares solution
//! from the normal equations, solved in `f64`.
//!
//! ```
//! use models::curve_fit::{fit, CurveFitConfig};
//!
//! let report = fit(&CurveFitConfig::default()).expect("the default configuration is valid");
//! assert!(report.linear.max_rel_gap() < 1e-4);
//! assert!(report.quadratic.max_rel_gap() < 1e-4);
//! // √x bends: the parabola follows it better than the line does.
//! assert!(report.quadratic.rmse < report.linear.rmse);
//! ```

use std::path::Path;

use autograd::{SeedableRng, Tape, Var};
use plotters::prelude::*;
use rand_distr::{Distribution, Normal};

use crate::plot::{self, draw_legend, font, px, pxi, PALETTE};
use crate::Error;

/// The tower of Pisa's height on its low side, in metres.
pub const TOWER_HEIGHT: f64 = 55.86;
/// Its number of storeys.
pub const TOWER_FLOORS: u32 = 8;

/// The experiment and the optimizer (a `serde` struct, as every model's configuration; the
/// command line reads its defaults from `Default`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CurveFitConfig {
    /// Seed of the measurement noise.
    pub seed: u64,
    /// Gravitational acceleration, m/s².
    pub g: f64,
    /// Height of one floor, m: floor `x` is at `x · floor_height`.
    pub floor_height: f64,
    /// The floors the ball is dropped from, each [`drops_per_floor`](Self::drops_per_floor) times.
    pub measured_floors: Vec<u32>,
    /// Floors whose fall time the fits predict (not measured).
    pub predicted_floors: Vec<u32>,
    /// Timed drops per measured floor.
    pub drops_per_floor: usize,
    /// Standard deviation of the timing noise, s.
    pub noise_std: f64,
    /// Gradient-descent step size (on the standardized features).
    pub learning_rate: f64,
    /// Upper bound on gradient-descent steps.
    pub max_steps: usize,
    /// Gradient descent stops once every partial derivative is below this.
    pub grad_tolerance: f64,
}

impl Default for CurveFitConfig {
    fn default() -> Self {
        CurveFitConfig {
            seed: 0,
            g: 9.81,
            floor_height: TOWER_HEIGHT / f64::from(TOWER_FLOORS),
            measured_floors: vec![1, 2, 3, 4, 6, 7],
            predicted_floors: vec![5, 8],
            drops_per_floor: 3,
            noise_std: 0.05,
            learning_rate: 0.3,
            max_steps: 20_000,
            grad_tolerance: 1e-13,
        }
    }
}

impl CurveFitConfig {
    /// The fall time without noise from `floor`: `√(2h/g)`.
    pub fn true_time(&self, floor: f64) -> f64 {
        (2.0 * floor * self.floor_height / self.g).sqrt()
    }

    fn validate(&self) -> Result<(), Error> {
        let mut floors = self.measured_floors.clone();
        floors.sort_unstable();
        floors.dedup();
        if floors.len() < 3 {
            return Err(Error::Config(format!(
                "the quadratic fit needs at least 3 distinct measured floors, got {:?}",
                self.measured_floors
            )));
        }
        if self.drops_per_floor == 0 {
            return Err(Error::Config("drops_per_floor must be at least 1".into()));
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !(positive(self.g) && positive(self.floor_height) && positive(self.learning_rate)) {
            return Err(Error::Config(format!(
                "g ({}), floor_height ({}) and learning_rate ({}) must be positive and finite",
                self.g, self.floor_height, self.learning_rate
            )));
        }
        if !(self.noise_std.is_finite() && self.noise_std >= 0.0) {
            return Err(Error::Config(format!("noise_std must be finite and non-negative, got {}", self.noise_std)));
        }
        Ok(())
    }
}

/// One timed drop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measurement {
    /// The floor it was dropped from.
    pub floor: u32,
    /// The height of that floor, m.
    pub height: f64,
    /// The measured fall time, s.
    pub time: f64,
}

/// The simulated measurements of `config`: for each measured floor, `drops_per_floor` times
/// `√(2h/g) + noise`.
///
/// # Errors
/// [`Error::Config`] if the configuration cannot be run (see [`fit`]).
pub fn simulate(config: &CurveFitConfig) -> Result<Vec<Measurement>, Error> {
    config.validate()?;
    let noise = Normal::new(0.0, config.noise_std)
        .map_err(|e| Error::Config(format!("noise_std {}: {e}", config.noise_std)))?;
    let mut rng = autograd::Rng::seed_from_u64(config.seed);
    let mut out = Vec::with_capacity(config.measured_floors.len() * config.drops_per_floor);
    for &floor in &config.measured_floors {
        for _ in 0..config.drops_per_floor {
            out.push(Measurement {
                floor,
                height: f64::from(floor) * config.floor_height,
                time: config.true_time(f64::from(floor)) + noise.sample(&mut rng),
            });
        }
    }
    Ok(out)
}

/// A polynomial fitted by gradient descent, beside the exact least-squares polynomial.
#[derive(Clone, Debug, PartialEq)]
pub struct Fit {
    /// Coefficients found by gradient descent, constant term first: `t ≈ Σ coeffs[k]·xᵏ`.
    pub coeffs: Vec<f64>,
    /// Coefficients of the exact least-squares solution (normal equations).
    pub exact: Vec<f64>,
    /// Root-mean-square error of the gradient-descent fit on the measurements, s.
    pub rmse: f64,
    /// Root-mean-square error of the exact fit on the measurements, s.
    pub exact_rmse: f64,
    /// Gradient-descent steps taken.
    pub steps: usize,
    /// Mean squared error after each step (the first entry is before any step).
    pub losses: Vec<f64>,
}

impl Fit {
    /// The polynomial's degree.
    pub fn degree(&self) -> usize {
        self.coeffs.len() - 1
    }

    /// The fitted fall time from `floor`.
    pub fn predict(&self, floor: f64) -> f64 {
        polyval(&self.coeffs, floor)
    }

    /// The largest relative difference between a gradient-descent coefficient and the exact one.
    pub fn max_rel_gap(&self) -> f64 {
        self.coeffs
            .iter()
            .zip(&self.exact)
            .map(|(c, e)| (c - e).abs() / e.abs().max(f64::MIN_POSITIVE))
            .fold(0.0, f64::max)
    }

    /// `"a + b·x + c·x²"` with the coefficients.
    pub fn formula(&self) -> String {
        let mut s = format!("{:.4}", self.coeffs[0]);
        for (k, c) in self.coeffs.iter().enumerate().skip(1) {
            let sign = if *c < 0.0 { '−' } else { '+' };
            let power = match k {
                1 => "x".to_string(),
                2 => "x²".to_string(),
                _ => format!("x^{k}"),
            };
            s.push_str(&format!(" {sign} {:.4}·{power}", c.abs()));
        }
        s
    }
}

/// The fall time of an unmeasured floor: the truth and both fits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    /// The floor.
    pub floor: u32,
    /// Its height, m.
    pub height: f64,
    /// `√(2h/g)`, s.
    pub true_time: f64,
    /// The linear fit's prediction, s.
    pub linear: f64,
    /// The quadratic fit's prediction, s.
    pub quadratic: f64,
}

/// Everything [`fit`] finds.
#[derive(Clone, Debug)]
pub struct CurveFitReport {
    /// The configuration it ran with.
    pub config: CurveFitConfig,
    /// The simulated drops.
    pub measurements: Vec<Measurement>,
    /// `a + b·x`.
    pub linear: Fit,
    /// `a + b·x + c·x²`.
    pub quadratic: Fit,
}

/// Simulates the measurements and fits both polynomials by gradient descent.
///
/// # Errors
/// [`Error::Config`] for fewer than 3 distinct measured floors, no drops, or a non-positive or
/// non-finite `g`, floor height, step size or noise level.
pub fn fit(config: &CurveFitConfig) -> Result<CurveFitReport, Error> {
    let measurements = simulate(config)?;
    let xs: Vec<f64> = measurements.iter().map(|m| f64::from(m.floor)).collect();
    let ts: Vec<f64> = measurements.iter().map(|m| m.time).collect();
    Ok(CurveFitReport {
        config: config.clone(),
        linear: fit_polynomial(&xs, &ts, 1, config),
        quadratic: fit_polynomial(&xs, &ts, 2, config),
        measurements,
    })
}

/// Fits `Σ_k c_k xᵏ` (k ≤ `degree`, 1 or 2) to `(xs, ts)` by gradient descent on 0-d parameters,
/// and solves the same problem exactly.
///
/// # Panics
/// If `degree` is not 1 or 2, the lengths differ, or the `xs` take fewer than `degree + 1`
/// distinct values.
pub fn fit_polynomial(xs: &[f64], ts: &[f64], degree: usize, config: &CurveFitConfig) -> Fit {
    assert!(degree == 1 || degree == 2, "fit_polynomial: degree {degree} is not 1 or 2");
    assert_eq!(xs.len(), ts.len(), "fit_polynomial: {} xs but {} ts", xs.len(), ts.len());
    let features = Standardized::new(xs, degree);
    let rows: Vec<Vec<f64>> = xs.iter().map(|&x| features.row(x)).collect();

    // θ: one 0-d tensor per coefficient of the standardized features; θ₀ starts at the mean.
    let mut theta = vec![0.0; degree + 1];
    theta[0] = mean(ts);
    let mut losses = Vec::new();
    let mut steps = 0;
    loop {
        let tape = Tape::<f64>::new();
        let params: Vec<Var<'_, f64>> = theta.iter().map(|&v| tape.var(v)).collect();
        let loss = mse(&params, &rows, ts);
        losses.push(loss.item());
        let grads = loss.backward();
        let slope: Vec<f64> = params.iter().map(|&p| grads[p].item()).collect();
        if steps == config.max_steps || slope.iter().all(|d| d.abs() < config.grad_tolerance) {
            break;
        }
        for (t, d) in theta.iter_mut().zip(&slope) {
            *t -= config.learning_rate * d;
        }
        steps += 1;
    }

    let coeffs = features.to_polynomial(&theta);
    let exact = least_squares(xs, ts, degree);
    Fit { rmse: rmse(&coeffs, xs, ts), exact_rmse: rmse(&exact, xs, ts), coeffs, exact, steps, losses }
}

/// The mean squared error of `θ · row` against `ts`, as a graph of scalar nodes.
fn mse<'t>(theta: &[Var<'t, f64>], rows: &[Vec<f64>], ts: &[f64]) -> Var<'t, f64> {
    let mut total: Option<Var<'t, f64>> = None;
    for (row, &t) in rows.iter().zip(ts) {
        let mut pred = theta[0];
        for (&p, &f) in theta.iter().zip(row).skip(1) {
            pred = pred + p * f;
        }
        let err = (pred - t).square();
        total = Some(match total {
            Some(s) => s + err,
            None => err,
        });
    }
    total.expect("validated: at least one measurement") / ts.len() as f64
}

/// Features `1, z, q` with `z = (x − μ)/σ` and `q = (z² − m)/s`: centred and of unit variance,
/// so the least-squares loss is nearly round in `θ`.
struct Standardized {
    degree: usize,
    mu: f64,
    sigma: f64,
    m: f64,
    s: f64,
}

impl Standardized {
    fn new(xs: &[f64], degree: usize) -> Self {
        let mu = mean(xs);
        let sigma = std_dev(xs, mu);
        let z2: Vec<f64> = xs.iter().map(|x| ((x - mu) / sigma).powi(2)).collect();
        let m = mean(&z2);
        let s = std_dev(&z2, m);
        assert!(
            sigma > 0.0 && (degree < 2 || s > 0.0),
            "fit_polynomial: the xs take too few distinct values for degree {degree}"
        );
        Standardized { degree, mu, sigma, m, s }
    }

    fn row(&self, x: f64) -> Vec<f64> {
        let z = (x - self.mu) / self.sigma;
        let mut row = vec![1.0, z];
        if self.degree == 2 {
            row.push((z * z - self.m) / self.s);
        }
        row
    }

    /// Maps `θ₀ + θ₁ z + θ₂ q` back to `a + b x + c x²`.
    fn to_polynomial(&self, theta: &[f64]) -> Vec<f64> {
        let (mu, sg) = (self.mu, self.sigma);
        let mut a = theta[0] - theta[1] * mu / sg;
        let mut b = theta[1] / sg;
        if self.degree == 1 {
            return vec![a, b];
        }
        let k = theta[2] / self.s;
        let c = k / (sg * sg);
        b -= 2.0 * k * mu / (sg * sg);
        a += k * (mu * mu / (sg * sg) - self.m);
        vec![a, b, c]
    }
}

/// The exact least-squares polynomial of `degree` through `(xs, ts)`: the normal equations
/// `XᵀX c = Xᵀt` solved in `f64` by Gaussian elimination with partial pivoting.
///
/// # Panics
/// If the system is singular (fewer than `degree + 1` distinct `xs`).
pub fn least_squares(xs: &[f64], ts: &[f64], degree: usize) -> Vec<f64> {
    let n = degree + 1;
    // Augmented matrix [XᵀX | Xᵀt], (n, n + 1).
    let mut a = vec![vec![0.0; n + 1]; n];
    for (&x, &t) in xs.iter().zip(ts) {
        let powers: Vec<f64> = (0..n).map(|k| x.powi(k as i32)).collect();
        for i in 0..n {
            for j in 0..n {
                a[i][j] += powers[i] * powers[j];
            }
            a[i][n] += powers[i] * t;
        }
    }
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .expect("the range col..n is not empty");
        assert!(a[pivot][col].abs() > 1e-12, "least_squares: singular normal equations");
        a.swap(col, pivot);
        for row in 0..n {
            if row != col {
                let f = a[row][col] / a[col][col];
                let pivot_row = a[col].clone();
                for (v, p) in a[row].iter_mut().zip(&pivot_row).skip(col) {
                    *v -= f * p;
                }
            }
        }
    }
    (0..n).map(|i| a[i][n] / a[i][i]).collect()
}

fn polyval(coeffs: &[f64], x: f64) -> f64 {
    coeffs.iter().rev().fold(0.0, |acc, c| acc * x + c)
}

fn rmse(coeffs: &[f64], xs: &[f64], ts: &[f64]) -> f64 {
    let sq: f64 = xs.iter().zip(ts).map(|(&x, &t)| (polyval(coeffs, x) - t).powi(2)).sum();
    (sq / xs.len() as f64).sqrt()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn std_dev(v: &[f64], mean: f64) -> f64 {
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
}

impl CurveFitReport {
    /// The fall time from each of [`CurveFitConfig::predicted_floors`]: truth and both fits.
    pub fn predictions(&self) -> Vec<Prediction> {
        self.config
            .predicted_floors
            .iter()
            .map(|&floor| {
                let x = f64::from(floor);
                Prediction {
                    floor,
                    height: x * self.config.floor_height,
                    true_time: self.config.true_time(x),
                    linear: self.linear.predict(x),
                    quadratic: self.quadratic.predict(x),
                }
            })
            .collect()
    }

    /// A plain-text summary: both fits against the exact solution, their RMSEs, and the
    /// predictions for the unmeasured floors.
    pub fn summary(&self) -> String {
        let c = &self.config;
        let mut s = format!(
            "{} drops from floors {:?} (floor height {:.4} m, g = {} m/s², noise σ = {} s, seed {})\n",
            self.measurements.len(),
            c.measured_floors,
            c.floor_height,
            c.g,
            c.noise_std,
            c.seed
        );
        for (name, f) in [("linear", &self.linear), ("quadratic", &self.quadratic)] {
            s.push_str(&format!(
                "{name:>9}: t = {}   RMSE {:.4} s   ({} GD steps; exact least squares RMSE {:.4} s, max relative gap {:.1e})\n",
                f.formula(),
                f.rmse,
                f.steps,
                f.exact_rmse,
                f.max_rel_gap()
            ));
        }
        s.push_str("unmeasured floors:  floor  height   true t   linear   quadratic\n");
        for p in self.predictions() {
            s.push_str(&format!(
                "                    {:>5}  {:>5.2} m  {:.3} s  {:.3} s  {:.3} s\n",
                p.floor, p.height, p.true_time, p.linear, p.quadratic
            ));
        }
        s
    }

    /// Draws the measurements, both fits, the true curve and the predictions, with the errors
    /// of both fits against the truth below, and writes the figure to `path` as SVG.
    ///
    /// # Errors
    /// [`Error::Plot`] or [`Error::Io`] if the figure cannot be drawn or written.
    pub fn write_figure(&self, path: &Path) -> Result<(), Error> {
        let floors = f64::from(
            self.config
                .measured_floors
                .iter()
                .chain(&self.config.predicted_floors)
                .copied()
                .max()
                .unwrap_or(TOWER_FLOORS),
        );
        let x_max = floors + 0.5;
        let curve = |f: &dyn Fn(f64) -> f64, from: f64| -> Vec<(f64, f64)> {
            (0..=200).map(|i| from + (x_max - from) * f64::from(i) / 200.0).map(|x| (x, f(x))).collect()
        };
        let truth = |x: f64| self.config.true_time(x);
        let t_max = self
            .measurements
            .iter()
            .map(|m| m.time)
            .chain([truth(x_max), self.linear.predict(x_max), self.quadratic.predict(x_max)])
            .fold(0.0, f64::max)
            * 1.08;
        let (lin_col, quad_col, true_col) = (PALETTE[4], PALETTE[3], RGBColor(60, 60, 60));
        let fits = [(&self.linear, lin_col, "linear"), (&self.quadratic, quad_col, "quadratic")];

        plot::render_svg(path, (760, 660), |root| {
            let (top, bottom) = root.split_vertically(px(460));
            let mut chart = ChartBuilder::on(&top)
                .caption("Galileo's cannonball: fall time from the floors of the tower of Pisa", font(19.0))
                .margin(px(12))
                .x_label_area_size(px(40))
                .y_label_area_size(px(52))
                .build_cartesian_2d(0.0..x_max, 0.0..t_max)?;
            let x_desc =
                format!("floor x (at {:.2}·x m; ◯ = floors not measured, predicted)", self.config.floor_height);
            let mut mesh = chart.configure_mesh();
            plot::style_mesh(&mut mesh);
            mesh.x_desc(x_desc).y_desc("fall time t (s)").x_labels(x_max as usize + 1).draw()?;
            chart
                .draw_series(LineSeries::new(curve(&truth, 0.0), true_col.stroke_width(px(1))))?
                .label(format!("truth √(2h/g), g = {} m/s²", self.config.g))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + pxi(22), y)], true_col.stroke_width(px(1))));
            for (f, col, name) in fits {
                chart
                    .draw_series(LineSeries::new(curve(&|x| f.predict(x), FIT_FROM), col.stroke_width(px(2))))?
                    .label(format!("{name} fit by GD, RMSE {:.3} s", f.rmse))
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + pxi(22), y)], col.stroke_width(px(2))));
            }
            chart
                .draw_series(
                    self.measurements
                        .iter()
                        .map(|m| Circle::new((f64::from(m.floor), m.time), px(3), BLACK.mix(0.75).filled())),
                )?
                .label(format!("{} drops per floor, σ = {} s", self.config.drops_per_floor, self.config.noise_std))
                .legend(|(x, y)| Circle::new((x + pxi(11), y), px(3), BLACK.mix(0.75).filled()));
            for p in self.predictions() {
                let x = f64::from(p.floor);
                chart.draw_series([
                    Circle::new((x, p.linear), px(6), lin_col.stroke_width(px(2))),
                    Circle::new((x, p.quadratic), px(6), quad_col.stroke_width(px(2))),
                ])?;
            }
            draw_legend(&mut chart, SeriesLabelPosition::LowerRight, 13.0)?;

            // Below: each fit minus the truth, in milliseconds.
            let err_ms = |f: &Fit, x: f64| 1000.0 * (f.predict(x) - truth(x));
            let xs: Vec<f64> = (0..=200).map(|i| FIT_FROM + (x_max - FIT_FROM) * f64::from(i) / 200.0).collect();
            let span = xs
                .iter()
                .flat_map(|&x| [err_ms(&self.linear, x), err_ms(&self.quadratic, x)])
                .chain(self.measurements.iter().map(|m| 1000.0 * (m.time - truth(f64::from(m.floor)))))
                .fold(1.0, |a: f64, e| a.max(e.abs()))
                * 1.1;
            let mut err = ChartBuilder::on(&bottom)
                .margin(px(12))
                .x_label_area_size(px(40))
                .y_label_area_size(px(52))
                .build_cartesian_2d(0.0..x_max, -span..span)?;
            let mut mesh = err.configure_mesh();
            plot::style_mesh(&mut mesh);
            mesh.x_desc("floor x").y_desc("minus truth (ms)").x_labels(x_max as usize + 1).y_labels(5).draw()?;
            err.draw_series(LineSeries::new([(0.0, 0.0), (x_max, 0.0)], true_col.stroke_width(px(1))))?;
            for (f, col, _) in fits {
                err.draw_series(LineSeries::new(xs.iter().map(|&x| (x, err_ms(f, x))), col.stroke_width(px(2))))?;
            }
            err.draw_series(self.measurements.iter().map(|m| {
                let x = f64::from(m.floor);
                Circle::new((x, 1000.0 * (m.time - truth(x))), px(3), BLACK.mix(0.75).filled())
            }))?;
            for p in self.predictions() {
                let x = f64::from(p.floor);
                err.draw_series([
                    Circle::new((x, err_ms(&self.linear, x)), px(6), lin_col.stroke_width(px(2))),
                    Circle::new((x, err_ms(&self.quadratic, x)), px(6), quad_col.stroke_width(px(2))),
                ])?;
            }
            Ok(())
        })
    }
}

/// The fitted curves are drawn from this floor up (below it the line and the truth part ways
/// fast and would dominate the error panel's scale).
const FIT_FROM: f64 = 0.75;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_recovers_an_exact_parabola() {
        let xs = [0.0, 1.0, 2.0, 3.0, 4.0];
        let ts: Vec<f64> = xs.iter().map(|x| 1.0 - 2.0 * x + 0.5 * x * x).collect();
        let c = least_squares(&xs, &ts, 2);
        for (got, want) in c.iter().zip([1.0, -2.0, 0.5]) {
            assert!((got - want).abs() < 1e-12, "{c:?}");
        }
    }

    #[test]
    fn gradient_descent_matches_least_squares_within_1e_4() {
        for seed in [0, 1, 2] {
            let report = fit(&CurveFitConfig { seed, ..Default::default() }).expect("valid config");
            for f in [&report.linear, &report.quadratic] {
                assert!(f.max_rel_gap() < 1e-4, "seed {seed}: GD {:?} vs exact {:?}", f.coeffs, f.exact);
                assert!(f.steps < report.config.max_steps, "seed {seed}: GD did not converge");
                assert!((f.rmse - f.exact_rmse).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn fits_are_as_good_as_the_noise_allows() {
        let report = fit(&CurveFitConfig::default()).expect("valid config");
        assert!(report.quadratic.rmse < report.linear.rmse);
        assert!(report.quadratic.rmse < 2.0 * report.config.noise_std);
        for p in report.predictions() {
            assert!((p.quadratic - p.true_time).abs() < 0.15, "{p:?}");
        }
    }

    #[test]
    fn loss_falls_monotonically() {
        let report = fit(&CurveFitConfig::default()).expect("valid config");
        for w in report.quadratic.losses.windows(2) {
            assert!(w[1] <= w[0] + 1e-15, "{w:?}");
        }
    }

    #[test]
    fn too_few_floors_is_a_config_error() {
        let config = CurveFitConfig { measured_floors: vec![1, 2, 2], ..Default::default() };
        assert!(matches!(fit(&config), Err(Error::Config(_))));
        let config = CurveFitConfig { noise_std: -1.0, ..Default::default() };
        assert!(matches!(fit(&config), Err(Error::Config(_))));
    }
}
