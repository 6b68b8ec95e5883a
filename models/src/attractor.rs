//! Nearest attractor: a few seeded points of the plane (the attractors) split it into regions,
//! each point belonging to the attractor nearest to it; MLPs of growing size learn the regions
//! from labelled samples.
//!
//! The regions are Voronoi cells, bounded by straight lines. The sizes compared, by default:
//!
//! - `2 → 1 → 5`, a **single hidden neuron**: everything the network knows about a point passes
//!   through one number, so it can only cut the plane into parallel bands. It cannot draw the
//!   cells and stays far below the others. (Without the hidden layer, a linear softmax
//!   `2 → 5` *could* draw them exactly: the nearest attractor `a` maximizes `2a·x − |a|²`, a
//!   linear function of `x`. The one-neuron bottleneck is what makes the smallest model small.)
//! - `2 → 8 → 5`, a small hidden layer.
//! - `2 → 32 → 32 → 5`, two wider hidden layers: at least 99 % on fresh test points (asserted
//!   by this module's tests with fixed seeds).
//!
//! Each is trained with mini-batch Adam on the cross-entropy loss, the learning rate falling
//! along a cosine to 1 % of its start, in `f32`. All models live in one [`ParamStore`] (scopes
//! `size0`, `size1`, …) and are saved as one checkpoint whose metadata holds the attractors and
//! the sizes, so that [`AttractorModel::load`] rebuilds them without any other input.
//!
//! ```
//! use models::attractor::{AttractorConfig, AttractorModel};
//!
//! let config = AttractorConfig { hidden_sizes: vec![vec![8]], steps: 300, ..Default::default() };
//! let mut model = AttractorModel::new(&config).expect("the configuration is valid");
//! let results = model.train(&indicatif::ProgressBar::hidden());
//! assert!(results[0].test_accuracy > 0.8);
//! ```

use std::path::{Path, PathBuf};

use autograd::{SeedableRng, Tape, Tensor};
use indicatif::ProgressBar;
use nn::data::{gather, gather_rows, Batcher};
use nn::{loss, Activation, Adam, AdamConfig, Checkpoint, Decay, LrSchedule, Mlp, Optimizer, ParamStore};
use plotters::prelude::*;
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::config::limits::{self, MAX_LAYERS, MAX_MODELS, MAX_POINTS, MAX_STEPS, MAX_WIDTH};
use crate::config::{self, Invalid};
use crate::plot::{self, font, px, Grid, PALETTE};
use crate::Error;

/// The colour of each class: the Okabe–Ito colours in an order that keeps the first five far
/// apart in hue (orange, sky blue, green, purple, yellow).
const CLASS_COLOURS: [RGBColor; 8] =
    [PALETTE[0], PALETTE[1], PALETTE[2], PALETTE[5], PALETTE[6], PALETTE[4], PALETTE[3], PALETTE[7]];

/// The value of the `"model"` metadata key in an attractor checkpoint.
pub const MODEL_NAME: &str = "attractor";

/// The problem, the model sizes and their training. Saved as JSON in every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttractorConfig {
    /// Seed of the attractors, the samples, the initial weights and the batch order.
    pub seed: u64,
    /// Number of attractors (classes).
    pub attractors: usize,
    /// Points are drawn uniformly from the square `[−extent, extent]²`.
    pub extent: f64,
    /// Labelled points to train on.
    pub train_points: usize,
    /// Fresh points to measure accuracy on.
    pub test_points: usize,
    /// Hidden-layer widths of each model, smallest first: `[[1], [8], [32, 32]]` by default.
    pub hidden_sizes: Vec<Vec<usize>>,
    /// The nonlinearity between layers.
    #[serde(with = "activation_serde")]
    pub activation: Activation,
    /// Optimizer steps per model.
    pub steps: usize,
    /// Points per mini-batch.
    pub batch_size: usize,
    /// Adam's initial learning rate (decays along a cosine to 1 % of it).
    pub learning_rate: f64,
}

impl Default for AttractorConfig {
    fn default() -> Self {
        AttractorConfig {
            seed: 0,
            attractors: 5,
            extent: 1.0,
            train_points: 4000,
            test_points: 10_000,
            hidden_sizes: vec![vec![1], vec![8], vec![32, 32]],
            activation: Activation::Relu,
            steps: 3000,
            batch_size: 128,
            learning_rate: 0.01,
        }
    }
}

impl AttractorConfig {
    /// Checks every field against its range, and that the models fit in memory, before
    /// anything is built (for flags and for checkpoints alike).
    ///
    /// # Errors
    /// [`Invalid`] naming the field and its bound.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !(2..=PALETTE.len()).contains(&self.attractors) {
            return Err(Invalid::new("attractors", format!("= {} must be 2 to {}", self.attractors, PALETTE.len())));
        }
        if !(self.extent.is_finite() && self.extent > 0.0) {
            return Err(Invalid::new("extent", format!("= {} must be positive", self.extent)));
        }
        Invalid::in_range("train_points", self.train_points as u128, MAX_POINTS as u128)?;
        Invalid::in_range("test_points", self.test_points as u128, MAX_POINTS as u128)?;
        Invalid::in_range("batch_size", self.batch_size as u128, MAX_POINTS as u128)?;
        Invalid::at_most("steps", self.steps as u128, u128::from(MAX_STEPS), "")?;
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Invalid::new("learning_rate", format!("= {} must be positive", self.learning_rate)));
        }
        if !(1..=MAX_MODELS).contains(&self.hidden_sizes.len()) {
            return Err(Invalid::new(
                "hidden_sizes",
                format!("lists {} models, which must be 1 to {MAX_MODELS}", self.hidden_sizes.len()),
            ));
        }
        for hidden in &self.hidden_sizes {
            // No hidden layer is a model too: the linear classifier `2 → attractors`.
            if hidden.len() > MAX_LAYERS {
                return Err(Invalid::new(
                    "hidden_sizes",
                    format!("{hidden:?}: a model has 0 to {MAX_LAYERS} hidden layers"),
                ));
            }
            for &w in hidden {
                if w == 0 || w > MAX_WIDTH {
                    return Err(Invalid::new(
                        "hidden_sizes",
                        format!("{}: width {w} is not in 1 to {MAX_WIDTH}", format_hidden_sizes(&self.hidden_sizes)),
                    ));
                }
            }
        }
        let widest = self.hidden_sizes.iter().flatten().copied().max().unwrap_or(0);
        limits::parameters_fit("hidden_sizes", widest as u128, self.param_count())
    }

    /// The parameters of every model together (`None` if they cannot be counted in a
    /// `u128`): each layer `in → out` has `in·out + out`.
    pub fn param_count(&self) -> Option<u128> {
        let mut total = 0u128;
        for hidden in &self.hidden_sizes {
            let sizes: Vec<u128> =
                std::iter::once(2).chain(hidden.iter().map(|&w| w as u128)).chain([self.attractors as u128]).collect();
            for pair in sizes.windows(2) {
                total = total.checked_add(pair[0].checked_mul(pair[1])?.checked_add(pair[1])?)?;
            }
        }
        Some(total)
    }
}

/// An [`Activation`] as its name ([`activation_name`]) in JSON.
mod activation_serde {
    use nn::Activation;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(a: &Activation, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(super::activation_name(*a))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Activation, D::Error> {
        let name = String::deserialize(d)?;
        super::parse_activation(&name).map_err(serde::de::Error::custom)
    }
}

/// What an attractor checkpoint's [`config::CONFIG_KEY`] entry holds: the configuration and
/// the attractors drawn from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    /// The configuration.
    pub config: AttractorConfig,
    /// The attractors, one per class.
    pub attractors: Vec<(f64, f64)>,
}

/// `"2 → 32 → 32 → 5"`: a model's layer sizes.
pub fn describe(hidden: &[usize], classes: usize) -> String {
    std::iter::once(2)
        .chain(hidden.iter().copied())
        .chain([classes])
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(" → ")
}

/// `"1;8;32,32"`, the form of [`AttractorConfig::hidden_sizes`] on the command line and in
/// checkpoints.
pub fn format_hidden_sizes(sizes: &[Vec<usize>]) -> String {
    sizes.iter().map(|h| h.iter().map(usize::to_string).collect::<Vec<_>>().join(",")).collect::<Vec<_>>().join(";")
}

/// Where `pente attractor --save PATH` writes its safetensors export beside the checkpoint:
/// `PATH` with the extension `safetensors`.
///
/// # Errors
/// [`Error::Config`] when that is `PATH` itself (a `--save` path ending in `.safetensors`),
/// where the export would overwrite the checkpoint just saved.
pub fn export_path(save: &Path) -> Result<PathBuf, Error> {
    let export = save.with_extension("safetensors");
    if export == save {
        return Err(Error::Config(format!(
            "--save {} would be overwritten by the safetensors export written beside it; give the \
             checkpoint another extension (e.g. {})",
            save.display(),
            save.with_extension("ckpt").display()
        )));
    }
    Ok(export)
}

/// Parses `"1;8;32,32"` (models separated by `;`, layer widths by `,`).
///
/// # Errors
/// [`Error::Config`] naming the part that is not a positive integer.
pub fn parse_hidden_sizes(s: &str) -> Result<Vec<Vec<usize>>, Error> {
    s.split(';')
        .map(|model| {
            model
                .split(',')
                .map(|w| match w.trim().parse::<usize>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(Error::Config(format!("hidden sizes {s:?}: {w:?} is not a positive integer"))),
                })
                .collect()
        })
        .collect()
}

/// The name of an activation as written in checkpoints and on the command line.
pub fn activation_name(a: Activation) -> &'static str {
    match a {
        Activation::Relu => "relu",
        Activation::Tanh => "tanh",
        Activation::Sigmoid => "sigmoid",
        Activation::Gelu => "gelu",
        Activation::GeluTanh => "gelu_tanh",
        Activation::Softplus => "softplus",
        Activation::Identity => "identity",
    }
}

/// The activation named `name` (see [`activation_name`]).
///
/// # Errors
/// [`Error::Config`] for an unknown name.
pub fn parse_activation(name: &str) -> Result<Activation, Error> {
    Ok(match name {
        "relu" => Activation::Relu,
        "tanh" => Activation::Tanh,
        "sigmoid" => Activation::Sigmoid,
        "gelu" => Activation::Gelu,
        "gelu_tanh" => Activation::GeluTanh,
        "softplus" => Activation::Softplus,
        "identity" => Activation::Identity,
        other => {
            return Err(Error::Config(format!(
                "unknown activation {other:?} (relu, tanh, sigmoid, gelu, gelu_tanh, softplus, identity)"
            )))
        }
    })
}

/// `n` attractors in `[−0.8·extent, 0.8·extent]²`, at least `0.5·extent` apart (by rejection,
/// relaxing the distance if the square is too crowded), from `seed`.
pub fn random_attractors(n: usize, extent: f64, seed: u64) -> Vec<(f64, f64)> {
    let mut rng = autograd::Rng::seed_from_u64(seed ^ 0xA77A_C702);
    let mut min_dist = 0.5 * extent;
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(n);
    let mut tries = 0;
    while out.len() < n {
        let p = (rng.gen_range(-0.8..0.8) * extent, rng.gen_range(-0.8..0.8) * extent);
        if out.iter().all(|q| (p.0 - q.0).hypot(p.1 - q.1) >= min_dist) {
            out.push(p);
        }
        tries += 1;
        if tries % 1000 == 0 {
            min_dist *= 0.8;
        }
    }
    out
}

/// The index of the attractor nearest to `p` (the first, on a tie).
pub fn nearest(attractors: &[(f64, f64)], p: (f64, f64)) -> usize {
    let d = |a: &(f64, f64)| (a.0 - p.0).powi(2) + (a.1 - p.1).powi(2);
    (0..attractors.len()).min_by(|&i, &j| d(&attractors[i]).total_cmp(&d(&attractors[j]))).unwrap_or(0)
}

/// Points `(n, 2)` and the index of each one's nearest attractor.
pub type Labelled = (Tensor<f32>, Vec<usize>);

/// `n` points uniform in `[−extent, extent]²` as an `(n, 2)` tensor, with their labels.
pub fn sample(attractors: &[(f64, f64)], n: usize, extent: f64, seed: u64) -> Labelled {
    let mut rng = autograd::Rng::seed_from_u64(seed);
    let mut xy = Vec::with_capacity(2 * n);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let p = (rng.gen_range(-extent..extent), rng.gen_range(-extent..extent));
        xy.extend([p.0 as f32, p.1 as f32]);
        labels.push(nearest(attractors, p));
    }
    (Tensor::from_vec(xy, &[n, 2]), labels)
}

/// How one model size did.
#[derive(Clone, Debug, PartialEq)]
pub struct SizeResult {
    /// Hidden-layer widths.
    pub hidden: Vec<usize>,
    /// Trainable parameters.
    pub params: usize,
    /// Accuracy on the training points.
    pub train_accuracy: f64,
    /// Accuracy on fresh test points.
    pub test_accuracy: f64,
    /// Mean cross-entropy of each mini-batch, in order (empty for a loaded model).
    pub losses: Vec<f64>,
}

/// The attractors and one MLP per size, with their parameters.
#[derive(Debug)]
pub struct AttractorModel {
    /// The configuration the models were built (and trained) with.
    pub config: AttractorConfig,
    /// The attractors, one per class.
    pub attractors: Vec<(f64, f64)>,
    /// Every model's parameters, model `i` under the scope `size{i}`.
    pub store: ParamStore<f32>,
    /// The models, in the order of [`AttractorConfig::hidden_sizes`].
    pub mlps: Vec<Mlp>,
    /// Steps each model has been trained for.
    pub steps_trained: u64,
}

impl AttractorModel {
    /// Draws the attractors and builds untrained models.
    ///
    /// # Errors
    /// [`Error::Config`] for a configuration that cannot run (no model, a zero width, fewer than
    /// 2 or more than 8 attractors, no points, a non-positive rate or extent).
    pub fn new(config: &AttractorConfig) -> Result<Self, Error> {
        config.validate()?;
        let attractors = random_attractors(config.attractors, config.extent, config.seed);
        Ok(Self::build(config.clone(), attractors))
    }

    fn build(config: AttractorConfig, attractors: Vec<(f64, f64)>) -> Self {
        let mut store = ParamStore::<f32>::with_seed(config.seed);
        let mlps = config
            .hidden_sizes
            .iter()
            .enumerate()
            .map(|(i, hidden)| {
                let sizes: Vec<usize> =
                    std::iter::once(2).chain(hidden.iter().copied()).chain([attractors.len()]).collect();
                Mlp::new(store.scope(format!("size{i}")), &sizes, config.activation)
            })
            .collect();
        AttractorModel { config, attractors, store, mlps, steps_trained: 0 }
    }

    /// The training and test sets: fixed by the seed, different points.
    pub fn datasets(&self) -> (Labelled, Labelled) {
        let c = &self.config;
        (
            sample(&self.attractors, c.train_points, c.extent, c.seed.wrapping_add(1)),
            sample(&self.attractors, c.test_points, c.extent, c.seed.wrapping_add(2)),
        )
    }

    /// Trains every model for [`AttractorConfig::steps`] steps, ticking `bar` once per step, and
    /// returns how each did.
    pub fn train(&mut self, bar: &ProgressBar) -> Vec<SizeResult> {
        let ((train_x, train_y), _) = self.datasets();
        let c = self.config.clone();
        bar.set_length((c.steps as u64).saturating_mul(self.mlps.len() as u64));
        let mut all_losses = Vec::new();
        for (i, mlp) in self.mlps.iter().enumerate() {
            bar.set_message(describe(&c.hidden_sizes[i], self.attractors.len()));
            let batcher = Batcher { batch_size: c.batch_size, shuffle: true, drop_last: false, seed: c.seed };
            let schedule = LrSchedule {
                base_lr: c.learning_rate,
                warmup_steps: 0,
                decay: Decay::Cosine { total_steps: c.steps as u64, min_lr: 0.01 * c.learning_rate },
            };
            let mut opt = Adam::<f32>::new(AdamConfig { lr: c.learning_rate, ..Default::default() });
            let mut losses = Vec::with_capacity(c.steps.min(1 << 20));
            let mut epoch = 0;
            'epochs: loop {
                for idx in batcher.epoch(c.train_points, epoch) {
                    if losses.len() == c.steps {
                        break 'epochs;
                    }
                    let (xb, yb) = (gather_rows(&train_x, &idx), gather(&train_y, &idx)); // (batch, 2)
                    schedule.apply(&mut opt);
                    let (l, grads) = self.store.value_and_grad(0, |p| {
                        let logits = mlp.forward(p, p.tape().constant(xb.clone())); // (batch, classes)
                        loss::cross_entropy(logits, &yb)
                    });
                    opt.step(&mut self.store, &grads);
                    losses.push(f64::from(l));
                    bar.inc(1);
                }
                epoch += 1;
            }
            all_losses.push(losses);
        }
        self.steps_trained = c.steps as u64;
        let mut results = self.evaluate();
        for (r, l) in results.iter_mut().zip(all_losses) {
            r.losses = l;
        }
        results
    }

    /// Each model's accuracy on the training and test sets.
    pub fn evaluate(&self) -> Vec<SizeResult> {
        let ((train_x, train_y), (test_x, test_y)) = self.datasets();
        (0..self.mlps.len())
            .map(|i| SizeResult {
                hidden: self.config.hidden_sizes[i].clone(),
                params: self.num_params(i),
                train_accuracy: loss::accuracy(&self.logits(i, &train_x), &train_y),
                test_accuracy: loss::accuracy(&self.logits(i, &test_x), &test_y),
                losses: Vec::new(),
            })
            .collect()
    }

    /// Model `i`'s logits for `points (n, 2)`: `(n, classes)`.
    ///
    /// # Panics
    /// If there is no model `i` or `points` is not `(n, 2)`.
    pub fn logits(&self, i: usize, points: &Tensor<f32>) -> Tensor<f32> {
        let tape = Tape::new();
        let p = self.store.bind(&tape).eval();
        self.mlps[i].forward(&p, tape.constant(points.clone())).value()
    }

    /// Model `i`'s predicted attractor for each of `points`.
    pub fn predict(&self, i: usize, points: &[(f64, f64)]) -> Vec<usize> {
        let xy: Vec<f32> = points.iter().flat_map(|p| [p.0 as f32, p.1 as f32]).collect();
        let logits = self.logits(i, &Tensor::from_vec(xy, &[points.len(), 2]));
        let classes = self.attractors.len();
        logits
            .data()
            .chunks(classes)
            .map(|row| (0..classes).max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a))).unwrap_or(0))
            .collect()
    }

    /// Model `i`'s number of parameters.
    pub fn num_params(&self, i: usize) -> usize {
        let prefix = format!("size{i}.");
        self.store.iter().filter(|(_, name, _)| name.starts_with(&prefix)).map(|(_, _, t)| t.numel()).sum()
    }

    /// The PyTorch state dict of every model: an `nn.ModuleDict` whose entry `size{i}` is
    /// model `i` as `nn.Sequential(nn.Linear(2, h₁), activation, …, nn.Linear(h, classes))`.
    pub fn torch_state_dict(&self) -> nn::torch::StateDictMap {
        let mut map = nn::torch::StateDictMap::new();
        for (i, mlp) in self.mlps.iter().enumerate() {
            map.sequential_mlp(&format!("size{i}"), mlp);
        }
        map
    }

    /// Saves every model in one checkpoint, with the attractors, the sizes and the training
    /// configuration in its metadata.
    ///
    /// # Errors
    /// [`Error::Io`] if its directory cannot be created, [`Error::Checkpoint`] if the file
    /// cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        crate::create_parent_dir(path)?;
        let saved = Saved { config: self.config.clone(), attractors: self.attractors.clone() };
        Checkpoint::from_store(&self.store)
            .with_step(self.steps_trained)
            .with_metadata("model", MODEL_NAME)
            .with_metadata(config::CONFIG_KEY, config::to_json(&saved))
            .save(path)?;
        Ok(())
    }

    /// Loads models saved by [`AttractorModel::save`].
    ///
    /// # Errors
    /// [`Error::Checkpoint`] for a file that cannot be read, is damaged, or whose tensors do not
    /// match the sizes it declares; [`Error::NotAModel`] for a checkpoint of something else or
    /// with unreadable metadata.
    pub fn load(path: &Path) -> Result<Self, Error> {
        Self::from_checkpoint(&Checkpoint::load(path)?, path)
    }

    /// Rebuilds the models a checkpoint read from `path` holds. Every size in its metadata is
    /// checked against its bound and against the tensors present before anything is built.
    ///
    /// # Errors
    /// [`Error::NotAModel`] naming `path` for a checkpoint of something else, with unreadable
    /// or out-of-range metadata, or whose tensors are not the ones its metadata describes;
    /// [`Error::Checkpoint`] if a tensor's shape does not fit.
    pub fn from_checkpoint(ckpt: &Checkpoint, path: &Path) -> Result<Self, Error> {
        let meta = &ckpt.metadata;
        let not_ours = |reason: String| Error::NotAModel { path: path.to_path_buf(), expected: MODEL_NAME, reason };
        if meta.get("model").map(String::as_str) != Some(MODEL_NAME) {
            return Err(not_ours(format!("its metadata says model = {:?}", meta.get("model"))));
        }
        let saved = match config::from_json::<Saved>(meta, config::CONFIG_KEY) {
            Some(saved) => saved,
            None => config::legacy::attractor(meta),
        }
        .map_err(not_ours)?;
        saved.config.validate().map_err(|e| not_ours(e.to_string()))?;
        if saved.attractors.len() != saved.config.attractors
            || saved.attractors.iter().any(|a| !(a.0.is_finite() && a.1.is_finite()))
        {
            return Err(not_ours(format!(
                "its {} attractors are not {} finite points",
                saved.attractors.len(),
                saved.config.attractors
            )));
        }
        config::check_described(saved.config.param_count(), config::present(ckpt)).map_err(not_ours)?;
        let mut model = Self::build(saved.config, saved.attractors);
        ckpt.load_into(&mut model.store, true)?;
        model.steps_trained = ckpt.step;
        Ok(model)
    }

    /// Draws the true regions beside each model's learned regions (a colour map over a grid),
    /// with the attractors marked, and writes the figure to `path` as SVG. `results` (from
    /// [`train`](Self::train) or [`evaluate`](Self::evaluate)) label each panel with its test
    /// accuracy.
    ///
    /// # Errors
    /// [`Error::Plot`] or [`Error::Io`] if the figure cannot be drawn or written.
    pub fn write_figure(&self, results: &[SizeResult], path: &Path) -> Result<(), Error> {
        let n = 160;
        let e = self.config.extent;
        let centres = Grid::<usize>::centres((-e, e), (-e, e), n);
        let to_grid = |labels: Vec<usize>| Grid {
            x: (-e, e),
            y: (-e, e),
            values: labels.chunks(n).map(<[usize]>::to_vec).collect(),
        };
        let truth = to_grid(centres.iter().map(|&p| nearest(&self.attractors, p)).collect());
        let learned: Vec<Grid<usize>> = (0..self.mlps.len()).map(|i| to_grid(self.predict(i, &centres))).collect();
        let classes = self.attractors.len();
        let panels = 1 + self.mlps.len();
        let panel = 300;
        plot::render_svg(path, (panel * panels as u32, panel + 60), |root| {
            let root = root
                .titled("Nearest attractor: the true regions and what each MLP learned (darker: wrong)", font(18.0))?;
            let areas = root.split_evenly((1, panels));
            for (k, area) in areas.iter().enumerate() {
                let (grid, title) = if k == 0 {
                    (&truth, "truth".to_string())
                } else {
                    let r = results.get(k - 1);
                    let acc = r.map_or(String::new(), |r| format!(": {:.1} %", 100.0 * r.test_accuracy));
                    (&learned[k - 1], format!("{}{acc}", describe(&self.config.hidden_sizes[k - 1], classes)))
                };
                let mut chart = ChartBuilder::on(area)
                    .caption(title, font(14.0))
                    .margin(px(6))
                    .x_label_area_size(px(22))
                    .y_label_area_size(px(28))
                    .build_cartesian_2d(-e..e, -e..e)?;
                plot::draw_cell_map(&mut chart, grid, |&c| {
                    Some(plot::lighten(CLASS_COLOURS[c % CLASS_COLOURS.len()], 0.55))
                })?;
                // Where the model is wrong, a darker shade of the class it predicted.
                if k > 0 {
                    let wrong = Grid {
                        x: grid.x,
                        y: grid.y,
                        values: grid
                            .values
                            .iter()
                            .zip(&truth.values)
                            .map(|(row, t)| row.iter().zip(t).map(|(&p, &t)| (p != t).then_some(p)).collect())
                            .collect(),
                    };
                    plot::draw_cell_map(&mut chart, &wrong, |c: &Option<usize>| {
                        c.map(|c| plot::lighten(CLASS_COLOURS[c % CLASS_COLOURS.len()], 0.15))
                    })?;
                }
                let mut mesh = chart.configure_mesh();
                plot::style_mesh(&mut mesh);
                mesh.disable_mesh().x_labels(5).y_labels(5).label_style(font(10.0)).draw()?;
                for (c, &a) in self.attractors.iter().enumerate() {
                    chart.draw_series([
                        Circle::new(a, px(6), CLASS_COLOURS[c % CLASS_COLOURS.len()].filled()),
                        Circle::new(a, px(6), BLACK.stroke_width(px(1))),
                    ])?;
                }
            }
            Ok(())
        })
    }
}

/// A plain-text table of `results`.
pub fn summary(results: &[SizeResult], classes: usize) -> String {
    let mut s = format!("{:>22}  {:>7}  {:>9}  {:>9}\n", "model", "params", "train acc", "test acc");
    for r in results {
        s.push_str(&format!(
            "{:>22}  {:>7}  {:>8.2}%  {:>8.2}%\n",
            describe(&r.hidden, classes),
            r.params,
            100.0 * r.train_accuracy,
            100.0 * r.test_accuracy
        ));
    }
    s
}

/// Where [`AttractorModel::save`] puts the models inside an output directory.
pub fn default_weights_path(out: &Path) -> PathBuf {
    out.join("attractor.ckpt")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_export_never_takes_the_checkpoints_path() {
        use std::path::Path;
        assert_eq!(super::export_path(Path::new("out/m.ckpt")).unwrap(), Path::new("out/m.safetensors"));
        assert_eq!(super::export_path(Path::new("m")).unwrap(), Path::new("m.safetensors"));
        let err = super::export_path(Path::new("m.safetensors")).unwrap_err().to_string();
        assert!(err.contains("m.safetensors would be overwritten") && err.contains("m.ckpt"), "{err}");
    }

    use super::*;

    #[test]
    fn largest_model_reaches_99_percent_and_single_neuron_cannot() {
        let mut model = AttractorModel::new(&AttractorConfig::default()).expect("default config is valid");
        let results = model.train(&ProgressBar::hidden());
        let (small, large) = (&results[0], &results[results.len() - 1]);
        assert!(large.test_accuracy >= 0.99, "{}", summary(&results, 5));
        assert!(small.test_accuracy < 0.9, "{}", summary(&results, 5));
    }

    #[test]
    fn nearest_picks_the_closest_attractor() {
        let a = [(0.0, 0.0), (1.0, 0.0)];
        assert_eq!(nearest(&a, (0.4, 3.0)), 0);
        assert_eq!(nearest(&a, (0.6, -3.0)), 1);
    }

    #[test]
    fn hidden_sizes_round_trip_and_reject_garbage() {
        let sizes = parse_hidden_sizes("1;8;32,32").expect("valid");
        assert_eq!(sizes, vec![vec![1], vec![8], vec![32, 32]]);
        assert_eq!(format_hidden_sizes(&sizes), "1;8;32,32");
        assert!(parse_hidden_sizes("8;x").is_err());
        assert!(parse_hidden_sizes("0").is_err());
        assert!(parse_hidden_sizes("").is_err());
    }

    #[test]
    fn save_load_round_trip_predicts_the_same() {
        let config = AttractorConfig { hidden_sizes: vec![vec![4], vec![6, 5]], steps: 20, ..Default::default() };
        let mut model = AttractorModel::new(&config).expect("valid");
        model.train(&ProgressBar::hidden());
        let dir = std::env::temp_dir().join(format!("pente-attractor-{}", std::process::id()));
        let path = dir.join("m.ckpt");
        model.save(&path).expect("writable temp dir");
        let loaded = AttractorModel::load(&path).expect("just saved");
        let pts = [(0.1, 0.2), (-0.7, 0.9), (0.95, -0.3)];
        for i in 0..2 {
            assert_eq!(model.predict(i, &pts), loaded.predict(i, &pts));
        }
        assert_eq!(loaded.attractors, model.attractors);
        assert_eq!(loaded.config, model.config);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn param_count_is_the_built_models() {
        let config = AttractorConfig { hidden_sizes: vec![vec![1], vec![8], vec![32, 32]], ..Default::default() };
        let model = AttractorModel::new(&config).expect("valid");
        assert_eq!(config.param_count(), Some(model.store.num_params() as u128));
    }

    #[test]
    fn bad_config_is_an_error() {
        let config = AttractorConfig { hidden_sizes: vec![], ..Default::default() };
        assert!(matches!(AttractorModel::new(&config), Err(Error::Config(_))));
        let config = AttractorConfig { attractors: 1, ..Default::default() };
        assert!(matches!(AttractorModel::new(&config), Err(Error::Config(_))));
    }
}
