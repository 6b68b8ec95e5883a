//! The two digit classifiers and their configuration: [`DigitsConfig`] (architecture and
//! training hyperparameters, saved in every checkpoint) and [`DigitsModel`] (the parameters, the
//! layers, the input normalization, and what training has done so far: its [`History`]).
//!
//! - [`Arch::Mlp`]: `784 → 512 → 256 → 10`, ReLU between layers (535,818 parameters).
//! - [`Arch::Cnn`]: `conv 3×3, 32 → ReLU → conv 3×3, 64 → ReLU → max-pool 2 → dropout 0.25 →
//!   dense 128 → ReLU → dropout 0.5 → dense 10` on `(batch, 1, 28, 28)` (1,199,882 parameters).
//!
//! `pente digits train --preset best` ([`Preset::Best`]) builds larger networks trained longer
//! with rotations and shifts ([`super::augment`]):
//!
//! - the MLP `784 → 1024 → 1024 → 10`, ReLU, dropout 0.2 after each hidden layer;
//! - the CNN `[conv 3×3 (padding 1, no bias) → batch norm → ReLU] × 2` at 32 channels, max-pool
//!   2, the same twice at 64 channels, max-pool 2, dropout 0.25, dense `64·7·7 → 10`.
//!
//! `pente digits train --preset fast --model cnn` ([`Preset::Fast`], [`DigitsConfig::fast`])
//! trains the small CNN of [`super::fast`] (three conv–batch-norm–pool stages of 16, 32 and 64
//! channels) with a one-cycle schedule, to reach 99 % test accuracy in about one epoch.
//!
//! Both output logits `(batch, 10)`; training minimizes the fused softmax cross-entropy.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use autograd::precision::Precision;
use autograd::{Tape, Tensor, Var};
use nn::BatchNorm2d;
use nn::{Activation, Bound, Checkpoint, Conv2d, Conv2dConfig, Dropout, Flatten, Linear, MaxPool2d, Mlp, ParamStore};
use serde::{Deserialize, Serialize};

use super::data::{default_data_dir, Normalization, CLASSES, PIXELS, SIDE};
use super::fast::FastCnn;
use crate::config::{self, Invalid};
use crate::Error;

/// Images per forward pass in evaluation.
const EVAL_CHUNK: usize = 256;

/// The value of the `"model"` metadata key in a digits checkpoint.
pub const MODEL_NAME: &str = "digits";

/// Which network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// `784 → 512 → 256 → 10`, ReLU.
    #[default]
    Mlp,
    /// Two 3×3 convolutions, max-pool, dropout, two dense layers.
    Cnn,
}

impl Arch {
    /// `"mlp"` or `"cnn"`, as on the command line and in checkpoints.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Mlp => "mlp",
            Arch::Cnn => "cnn",
        }
    }

    /// Parses [`Arch::name`].
    ///
    /// # Errors
    /// [`Error::Config`] for another name.
    pub fn parse(s: &str) -> Result<Arch, Error> {
        match s {
            "mlp" => Ok(Arch::Mlp),
            "cnn" => Ok(Arch::Cnn),
            other => Err(Error::Config(format!("unknown digits model {other:?} (mlp, cnn)"))),
        }
    }

    /// The layer sizes in words, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Arch::Mlp => "MLP 784 → 512 → 256 → 10",
            Arch::Cnn => "CNN conv3×3(32) → conv3×3(64) → maxpool 2 → dense 128 → 10",
        }
    }
}

/// The network and how it is trained. Saved as JSON in every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DigitsConfig {
    /// Which network.
    pub arch: Arch,
    /// Seed of the initial weights, the validation split, the batch order, dropout and shifts.
    pub seed: u64,
    /// Passes over the training part.
    pub epochs: usize,
    /// Images per mini-batch.
    pub batch_size: usize,
    /// Adam's peak learning rate.
    pub learning_rate: f64,
    /// Decoupled weight decay (AdamW) when positive; plain Adam when 0.
    pub weight_decay: f64,
    /// Whether the rate falls along a cosine to 1 % of its peak at the last step (otherwise it
    /// stays constant).
    pub cosine: bool,
    /// Training images held out for validation (model selection); 0 trains on all 60,000.
    pub validation: usize,
    /// Augmentation: each training image moved by up to this many pixels on each axis (0: off).
    pub shift: usize,
    /// Standardize inputs by the training part's mean and standard deviation (otherwise pixels
    /// stay in `[0, 1]`).
    pub normalize: bool,
    /// The directory holding the four MNIST files.
    pub data_dir: PathBuf,
    /// Check each file's SHA-256 against the published one.
    pub verify_sha256: bool,
    /// Measure test accuracy every this many steps (0: never) to report when a target is
    /// first reached, as the PyTorch reference does; evaluation time is left off the clock.
    pub eval_every: usize,
    /// The test accuracy whose first crossing is reported (with `eval_every`).
    pub target: f64,
    /// Stop after this many optimizer steps in all (0: no limit), e.g. a fraction of an epoch
    /// in the demo.
    pub max_steps: usize,
    /// The training steps' matrix products ([`Precision::Bf16`]: bf16 operands, f32
    /// accumulation); the weights, the optimizer state and the evaluation stay f32. Absent from
    /// older checkpoints, which read it as f32.
    #[serde(default, with = "crate::precision::by_name")]
    pub precision: Precision,
    /// Augmentation: the largest random rotation in degrees (0: off). When positive, each
    /// training image is also moved by a fractional shift of up to `shift` pixels, both
    /// resampled bilinearly ([`super::augment`]).
    #[serde(default)]
    pub rotate: f64,
    /// Which networks: today's, the larger ones of `--preset best` or the small CNN of
    /// `--preset fast`.
    #[serde(default)]
    pub preset: Preset,
    /// The learning rate follows the one-cycle policy ([`nn::OneCycleLr`], PyTorch's defaults
    /// with `learning_rate` as its peak) over the run's steps, in place of `cosine`. Absent from
    /// older checkpoints, which read it as false.
    #[serde(default)]
    pub one_cycle: bool,
    /// The fast preset's CNN: batch norm after each convolution (otherwise the convolutions
    /// have biases). Other networks ignore it.
    #[serde(default = "yes")]
    pub batch_norm: bool,
    /// The fast preset's CNN: channels of its first stage (doubled at each of the next two).
    /// Other networks ignore it.
    #[serde(default = "fast_width")]
    pub width: usize,
}

fn yes() -> bool {
    true
}

fn fast_width() -> usize {
    16
}

/// The network family of a [`DigitsConfig`]; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The MLP `784 → 512 → 256 → 10` and the CNN without batch norm.
    #[default]
    Default,
    /// The wide MLP with dropout and the CNN with batch norm.
    Best,
    /// The small batch-normalized CNN of [`super::fast`] with a one-cycle schedule (CNN only).
    Fast,
}

impl Default for DigitsConfig {
    fn default() -> Self {
        DigitsConfig::for_arch(Arch::Mlp)
    }
}

impl DigitsConfig {
    /// The defaults for `arch`: the settings that meet the accuracy targets with seed 0.
    pub fn for_arch(arch: Arch) -> Self {
        DigitsConfig {
            arch,
            seed: 0,
            epochs: match arch {
                Arch::Mlp => 10,
                Arch::Cnn => 10,
            },
            batch_size: 128,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            cosine: true,
            validation: 5000,
            shift: 0,
            normalize: false,
            data_dir: default_data_dir(),
            verify_sha256: true,
            eval_every: 0,
            target: match arch {
                Arch::Mlp => 0.98,
                Arch::Cnn => 0.99,
            },
            max_steps: 0,
            precision: Precision::F32,
            rotate: 0.0,
            preset: Preset::Default,
            one_cycle: false,
            batch_norm: true,
            width: fast_width(),
        }
    }

    /// The network in words, for reports: [`Arch::describe`] or the best preset's.
    pub fn describe(&self) -> &'static str {
        match (self.arch, self.preset) {
            (arch, Preset::Default) => arch.describe(),
            (Arch::Mlp, Preset::Best) => "MLP 784 → 1024 → 1024 → 10, dropout 0.2",
            (Arch::Cnn, Preset::Best) => {
                "CNN [conv3×3 → batch norm] × 2 (32) → maxpool 2 → [conv3×3 → batch norm] × 2 (64) → maxpool 2 → dense 10"
            }
            (_, Preset::Fast) => {
                "CNN [conv3×3 → batch norm → maxpool 2] × 3 (16, 32, 64 channels at width 16) → dense 10"
            }
        }
    }

    /// The settings of `pente digits train --preset best` for `arch`: the larger networks,
    /// rotations of up to 10° and shifts of up to 2 pixels, AdamW with a cosine decay, all
    /// 60,000 training images (the test split is measured as training goes).
    pub fn best(arch: Arch) -> Self {
        DigitsConfig {
            epochs: match arch {
                Arch::Mlp => 40,
                Arch::Cnn => 15,
            },
            learning_rate: match arch {
                Arch::Mlp => 1e-3,
                Arch::Cnn => 3e-3,
            },
            weight_decay: 1e-4,
            validation: 0,
            shift: 2,
            rotate: 10.0,
            preset: Preset::Best,
            target: match arch {
                Arch::Mlp => 0.988,
                Arch::Cnn => 0.995,
            },
            ..DigitsConfig::for_arch(arch)
        }
    }

    /// The settings of `pente digits train --preset fast` (the CNN; `arch` must be
    /// [`Arch::Cnn`], which [`DigitsConfig::validate`] checks): the small CNN of
    /// [`super::fast`] at width 16 with batch norm, batches of 128, Adam with a one-cycle
    /// schedule peaking at 0.01 over one epoch, all 60,000 training images, no augmentation,
    /// the test accuracy probed every 50 steps against 0.99.
    pub fn fast(arch: Arch) -> Self {
        DigitsConfig {
            epochs: FAST_EPOCHS,
            batch_size: FAST_BATCH,
            learning_rate: FAST_LR,
            validation: 0,
            one_cycle: true,
            eval_every: FAST_EVAL,
            target: 0.99,
            preset: Preset::Fast,
            ..DigitsConfig::for_arch(arch)
        }
    }

    /// Most passes over the training part.
    pub const MAX_EPOCHS: usize = 1000;

    /// Checks that the configuration can run, every size within its bound (for flags and for
    /// checkpoints alike).
    ///
    /// # Errors
    /// [`Invalid`] naming the field and its bound.
    pub fn validate(&self) -> Result<(), Invalid> {
        Invalid::in_range("epochs", self.epochs as u128, Self::MAX_EPOCHS as u128)?;
        Invalid::in_range("batch_size", self.batch_size as u128, TRAIN_IMAGES as u128)?;
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Invalid::new("learning_rate", format!("= {} must be positive", self.learning_rate)));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Invalid::new("weight_decay", format!("= {} must be non-negative", self.weight_decay)));
        }
        Invalid::at_most("shift", self.shift as u128, 8, "pixels")?;
        if !(self.rotate.is_finite() && (0.0..=45.0).contains(&self.rotate)) {
            return Err(Invalid::new("rotate", format!("= {} must be in [0, 45] degrees", self.rotate)));
        }
        Invalid::at_most(
            "validation",
            self.validation as u128,
            TRAIN_IMAGES as u128 - 1,
            "it must leave training images",
        )?;
        if !(0.0..=1.0).contains(&self.target) {
            return Err(Invalid::new("target", format!("= {} must be an accuracy in [0, 1]", self.target)));
        }
        if self.preset == Preset::Fast {
            if self.arch != Arch::Cnn {
                return Err(Invalid::new("arch", "= mlp: the fast preset is a CNN (use --model cnn)".to_string()));
            }
            Invalid::in_range("width", self.width as u128, 256)?;
        }
        Ok(())
    }
}

/// The MNIST training images.
const TRAIN_IMAGES: usize = 60_000;

/// The fast preset's epochs (the one-cycle schedule's length).
const FAST_EPOCHS: usize = 1;
/// The fast preset's batch size.
const FAST_BATCH: usize = 128;
/// The fast preset's peak learning rate.
const FAST_LR: f64 = 1e-2;
/// The fast preset's test-accuracy probe interval, in steps.
const FAST_EVAL: usize = 50;

/// What a digits checkpoint's [`config::CONFIG_KEY`] entry holds: the configuration and the
/// input normalization fitted in training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    /// The configuration.
    pub config: DigitsConfig,
    /// How bytes become inputs.
    pub norm: Normalization,
}

/// The layers of one of the two networks.
#[derive(Clone, Debug, PartialEq)]
pub enum Net {
    /// `784 → 512 → 256 → 10`.
    Mlp(Mlp),
    /// The convolutional network.
    Cnn {
        /// 1 → 32 channels, 3×3.
        conv1: Conv2d,
        /// 32 → 64 channels, 3×3.
        conv2: Conv2d,
        /// 64·12·12 → 128.
        fc1: Linear,
        /// 128 → 10.
        fc2: Linear,
    },
    /// The wide MLP of [`Preset::Best`].
    WideMlp {
        /// `784 → 1024 → 1024 → 10`.
        layers: Vec<Linear>,
    },
    /// The batch-normalized CNN of [`Preset::Best`].
    BnCnn {
        /// 1 → 32, 32 → 32, 32 → 64, 64 → 64 channels, 3×3, padding 1, no bias.
        convs: Vec<Conv2d>,
        /// One batch norm after each convolution.
        norms: Vec<BatchNorm2d>,
        /// 64·7·7 → 10.
        fc: Linear,
    },
    /// The small CNN of [`Preset::Fast`].
    Fast(FastCnn),
}

impl Net {
    /// Builds the layers of `arch` in `store` (parameters under `mlp.` or `cnn.`).
    pub fn new(arch: Arch, store: &mut ParamStore<f32>) -> Net {
        Net::with_preset(arch, Preset::Default, store)
    }

    /// Builds the layers of `arch` in the family `preset` (the best networks' parameters under
    /// `wide_mlp.` or `bn_cnn.`).
    pub fn with_preset(arch: Arch, preset: Preset, store: &mut ParamStore<f32>) -> Net {
        Net::with_config(arch, preset, &DigitsConfig::fast(arch), store)
    }

    /// Builds the layers of `arch` in the family `preset`, the fast CNN (parameters under
    /// `fast_cnn.`) with `config`'s `width` and `batch_norm` (any architecture asked for with
    /// the fast preset gets the CNN: [`DigitsConfig::validate`] refuses the MLP).
    pub fn with_config(arch: Arch, preset: Preset, config: &DigitsConfig, store: &mut ParamStore<f32>) -> Net {
        match (arch, preset) {
            (_, Preset::Fast) => {
                return Net::Fast(FastCnn::new(store.scope("fast_cnn"), config.width, config.batch_norm))
            }
            (Arch::Mlp, Preset::Best) => {
                let mut s = store.scope("wide_mlp");
                let sizes = [PIXELS, 1024, 1024, CLASSES];
                let layers = sizes.windows(2).enumerate().map(|(i, w)| Linear::new(s.scope(i), w[0], w[1])).collect();
                return Net::WideMlp { layers };
            }
            (Arch::Cnn, Preset::Best) => {
                let mut s = store.scope("bn_cnn");
                let k3 = Conv2dConfig { kernel_size: 3, padding: 1, bias: false, ..Default::default() };
                let widths = [(1, 32), (32, 32), (32, 64), (64, 64)];
                let convs = widths
                    .iter()
                    .enumerate()
                    .map(|(i, &(a, b))| Conv2d::new(s.scope(format!("conv{i}")), a, b, k3))
                    .collect();
                let norms = widths
                    .iter()
                    .enumerate()
                    .map(|(i, &(_, b))| BatchNorm2d::new(s.scope(format!("bn{i}")), b))
                    .collect();
                let fc = Linear::new(s.scope("fc"), 64 * 7 * 7, CLASSES);
                return Net::BnCnn { convs, norms, fc };
            }
            _ => {}
        }
        match arch {
            Arch::Mlp => Net::Mlp(Mlp::new(store.scope("mlp"), &[PIXELS, 512, 256, CLASSES], Activation::Relu)),
            Arch::Cnn => {
                let mut s = store.scope("cnn");
                let k3 = Conv2dConfig { kernel_size: 3, ..Default::default() };
                let conv1 = Conv2d::new(s.scope("conv1"), 1, 32, k3);
                let conv2 = Conv2d::new(s.scope("conv2"), 32, 64, k3);
                let fc1 = Linear::new(s.scope("fc1"), 64 * 12 * 12, 128);
                let fc2 = Linear::new(s.scope("fc2"), 128, CLASSES);
                Net::Cnn { conv1, conv2, fc1, fc2 }
            }
        }
    }

    /// Logits `(batch, 10)` for inputs `x (batch, 784)`; dropout is active when `p` is bound in
    /// training mode.
    pub fn forward<'t>(&self, p: &Bound<'t, f32>, x: Var<'t, f32>) -> Var<'t, f32> {
        match self {
            Net::Mlp(mlp) => mlp.forward(p, x),
            Net::Cnn { conv1, conv2, fc1, fc2 } => {
                let batch = x.shape()[0];
                let x = x.reshape(&[batch, 1, SIDE, SIDE]);
                let h = conv1.forward(p, x).relu(); // (batch, 32, 26, 26)

                // ReLU after the pooling: ReLU is monotone, so it commutes with max pooling
                // (value and gradient), and this way it touches a quarter of the elements.
                let h = conv2.forward(p, h); // (batch, 64, 24, 24)
                let h = MaxPool2d::new(2, 2).forward(p, h).relu(); // (batch, 64, 12, 12)
                let h = Dropout::new(0.25).forward(p, h);
                let h = fc1.forward(p, Flatten.forward(p, h)).relu(); // (batch, 128)
                let h = Dropout::new(0.5).forward(p, h);
                fc2.forward(p, h) // (batch, 10)
            }
            Net::WideMlp { layers } => {
                let mut h = x;
                for (i, layer) in layers.iter().enumerate() {
                    h = layer.forward(p, h);
                    if i + 1 < layers.len() {
                        h = Dropout::new(0.2).forward(p, h.relu()); // (batch, 1024)
                    }
                }
                h // (batch, 10)
            }
            Net::BnCnn { convs, norms, fc } => {
                let batch = x.shape()[0];
                let mut h = x.reshape(&[batch, 1, SIDE, SIDE]);
                for (i, (conv, norm)) in convs.iter().zip(norms).enumerate() {
                    h = norm.forward(p, conv.forward(p, h)).relu(); // (batch, 32 or 64, side, side)
                    if i % 2 == 1 {
                        h = MaxPool2d::new(2, 2).forward(p, h); // side 28 → 14 → 7
                    }
                }
                let h = Dropout::new(0.25).forward(p, h);
                fc.forward(p, Flatten.forward(p, h)) // (batch, 10)
            }
            Net::Fast(net) => net.forward(p, x),
        }
    }

    /// The PyTorch state dict of the network: the `nn.Sequential` of `build` in
    /// `bench/reference/mnist_torch.py`. The MLP's linear layers are its items 0, 2 and 4; the
    /// CNN's convolutions items 0 and 2 and its dense layers items 7 and 10 (after max-pool,
    /// dropout, flatten, and ReLU, dropout). The CNN's input is `(batch, 1, 28, 28)`, the MLP's
    /// `(batch, 784)`.
    pub fn torch_state_dict(&self) -> nn::torch::StateDictMap {
        let mut map = nn::torch::StateDictMap::new();
        match self {
            Net::Mlp(mlp) => map.sequential_mlp("", mlp),
            Net::Cnn { conv1, conv2, fc1, fc2 } => {
                map.conv2d("0", conv1).conv2d("2", conv2).linear("7", fc1).linear("10", fc2)
            }
            // nn.Sequential(Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear)
            Net::WideMlp { layers } => {
                for (i, layer) in layers.iter().enumerate() {
                    map.linear(&(3 * i).to_string(), layer);
                }
                &mut map
            }
            // nn.Sequential of (Conv2d, BatchNorm2d, ReLU) × 2, MaxPool2d, the same again,
            // Dropout, Flatten, Linear: items 0/1, 3/4, 7/8, 10/11 and 16.
            Net::BnCnn { convs, norms, fc } => {
                for (i, (conv, norm)) in convs.iter().zip(norms).enumerate() {
                    let at = 3 * i + i / 2;
                    map.conv2d(&at.to_string(), conv).batch_norm(&(at + 1).to_string(), &norm.0);
                }
                map.linear("16", fc)
            }
            Net::Fast(net) => {
                net.torch_state_dict(&mut map);
                &mut map
            }
        };
        map
    }
}

/// A digit classifier: configuration, parameters, layers, input normalization and the history
/// of its training.
#[derive(Debug)]
pub struct DigitsModel {
    /// How it was built and is trained.
    pub config: DigitsConfig,
    /// The parameters.
    pub store: ParamStore<f32>,
    /// The layers.
    pub net: Net,
    /// How bytes become inputs (fitted on the training part when `config.normalize`).
    pub norm: Normalization,
    /// What training has done so far (epochs, curves, optimizer steps).
    pub history: History,
}

impl DigitsModel {
    /// An untrained model with weights drawn from `config.seed`.
    ///
    /// # Errors
    /// [`Error::Config`] if the configuration cannot run.
    pub fn new(config: &DigitsConfig) -> Result<Self, Error> {
        config.validate()?;
        let mut store = ParamStore::<f32>::with_seed(config.seed);
        let net = Net::with_config(config.arch, config.preset, config, &mut store);
        Ok(DigitsModel {
            config: config.clone(),
            store,
            net,
            norm: Normalization::default(),
            history: History::default(),
        })
    }

    /// Logits `(n, 10)` of the inputs `x (n, 784)` (already normalized), in evaluation mode,
    /// computed in chunks of 256 images (bounded memory for the CNN's activations).
    pub fn logits(&self, x: &Tensor<f32>) -> Tensor<f32> {
        let n = x.shape()[0];
        let mut out = Vec::with_capacity(n * CLASSES);
        let mut tape = Tape::new();
        for start in (0..n).step_by(EVAL_CHUNK) {
            let end = (start + EVAL_CHUNK).min(n);
            let chunk = Tensor::from_vec(x.data()[start * PIXELS..end * PIXELS].to_vec(), &[end - start, PIXELS]);
            {
                let p = self.store.bind(&tape).eval();
                let logits = tape.no_grad(|| self.net.forward(&p, tape.constant(chunk)));
                out.extend_from_slice(logits.value().data());
            }
            tape.reset();
        }
        Tensor::from_vec(out, &[n, CLASSES])
    }

    /// The ten class probabilities of each row of `x (n, 784)` (normalized inputs).
    pub fn probabilities(&self, x: &Tensor<f32>) -> Vec<[f32; CLASSES]> {
        let logits = self.logits(x);
        logits
            .data()
            .chunks(CLASSES)
            .map(|row| {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = row.iter().map(|&v| (v - max).exp()).collect();
                let s: f32 = e.iter().sum();
                let mut p = [0.0; CLASSES];
                for (p, e) in p.iter_mut().zip(&e) {
                    *p = e / s;
                }
                p
            })
            .collect()
    }

    /// The number of parameters.
    pub fn num_params(&self) -> usize {
        self.store.num_params()
    }

    /// The first layer's weights as images: for the MLP, each of the 512 hidden units' 784
    /// input weights as a 28×28 image; for the CNN, each of the 32 kernels as a 3×3 image.
    /// Returns `(side, images)`.
    pub fn first_layer_images(&self) -> (usize, Vec<Vec<f32>>) {
        match &self.net {
            Net::Mlp(mlp) => {
                let w = self.store.get(mlp.layers[0].weight); // (784, 512)
                let units = w.shape()[1];
                let d = w.data();
                (SIDE, (0..units).map(|u| (0..PIXELS).map(|i| d[i * units + u]).collect()).collect())
            }
            Net::WideMlp { layers } => {
                let w = self.store.get(layers[0].weight); // (784, 1024)
                let units = w.shape()[1];
                let d = w.data();
                (SIDE, (0..units).map(|u| (0..PIXELS).map(|i| d[i * units + u]).collect()).collect())
            }
            Net::Cnn { conv1: first, .. } => {
                let w = self.store.get(first.weight); // (32, 1, 3, 3)
                (3, w.data().chunks(9).map(<[f32]>::to_vec).collect())
            }
            Net::BnCnn { convs, .. } => {
                let w = self.store.get(convs[0].weight); // (32, 1, 3, 3)
                (3, w.data().chunks(9).map(<[f32]>::to_vec).collect())
            }
            Net::Fast(net) => {
                let w = self.store.get(net.first_conv().weight); // (width, 1, 3, 3)
                (3, w.data().chunks(9).map(<[f32]>::to_vec).collect())
            }
        }
    }

    /// A checkpoint of the model: parameters, configuration, normalization and history in the
    /// metadata (the optimizer's state is added by training, for `--resume`).
    pub fn checkpoint(&self) -> Checkpoint {
        let saved = Saved { config: self.config.clone(), norm: self.norm };
        Checkpoint::from_store(&self.store)
            .with_step(self.history.steps)
            .with_metadata("model", MODEL_NAME)
            .with_metadata(config::CONFIG_KEY, config::to_json(&saved))
            .with_metadata("history", self.history.to_text())
    }

    /// Saves the model (without optimizer state) to `path`.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be created, [`Error::Checkpoint`] if the file
    /// cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        crate::create_parent_dir(path)?;
        self.checkpoint().save(path)?;
        Ok(())
    }

    /// Rebuilds a model from a checkpoint read from `path`: the configuration comes from its
    /// metadata, so nothing else is needed.
    ///
    /// # Errors
    /// [`Error::NotAModel`] if the checkpoint is not a digits model or its metadata is
    /// unreadable; [`Error::Checkpoint`] if its tensors do not fit the declared architecture.
    pub fn from_checkpoint(ckpt: &Checkpoint, path: &Path) -> Result<Self, Error> {
        let meta = &ckpt.metadata;
        let not_ours = |reason: String| Error::NotAModel { path: path.to_path_buf(), expected: MODEL_NAME, reason };
        if meta.get("model").map(String::as_str) != Some(MODEL_NAME) {
            return Err(not_ours(format!("its metadata says model = {:?}", meta.get("model"))));
        }
        let saved = match config::from_json::<Saved>(meta, config::CONFIG_KEY) {
            Some(saved) => saved,
            None => config::legacy::digits(meta),
        }
        .map_err(not_ours)?;
        saved.config.validate().map_err(|e| not_ours(e.to_string()))?;
        let norm = saved.norm;
        if !(norm.mean.is_finite() && norm.std.is_finite() && norm.std > 0.0) {
            return Err(not_ours(format!("its normalization {norm:?} is not finite with a positive std")));
        }
        let mut model = DigitsModel::new(&saved.config).map_err(|e| not_ours(e.to_string()))?;
        // Parameters and buffers (batch norm's running statistics) alike are tensors of the file.
        let described = model.store.iter().map(|(_, _, t)| t.numel() as u128).sum();
        config::check_described(Some(described), config::present(ckpt)).map_err(not_ours)?;
        model.norm = norm;
        model.history = History::from_text(meta.get("history").map_or("", String::as_str))
            .map_err(|e| not_ours(format!("unreadable `history`: {e}")))?;
        model.history.steps = ckpt.step;
        ckpt.load_into(&mut model.store, true)?;
        Ok(model)
    }

    /// Loads a model saved by [`DigitsModel::save`] or by training.
    ///
    /// # Errors
    /// As [`DigitsModel::from_checkpoint`], plus [`Error::Checkpoint`] for a file that cannot
    /// be read or is damaged.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let ckpt = Checkpoint::load(path)?;
        Self::from_checkpoint(&ckpt, path)
    }

    /// Loads a model and checks that it is of architecture `arch`.
    ///
    /// # Errors
    /// As [`DigitsModel::load`], plus [`Error::NotAModel`] when the file holds the other
    /// architecture (e.g. a CNN loaded where an MLP is expected).
    pub fn load_arch(path: &Path, arch: Arch) -> Result<Self, Error> {
        let model = Self::load(path)?;
        if model.config.arch != arch {
            return Err(Error::NotAModel {
                path: path.to_path_buf(),
                expected: MODEL_NAME,
                reason: format!("it holds a {} but a {} was asked for", model.config.arch.name(), arch.name()),
            });
        }
        Ok(model)
    }
}

/// What one epoch measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches (dropout and shifts on).
    pub train_loss: f64,
    /// Fraction of the epoch's training images classified right as they were trained on.
    pub train_accuracy: f64,
    /// Loss on the validation part (NaN without one).
    pub val_loss: f64,
    /// Accuracy on the validation part (NaN without one).
    pub val_accuracy: f64,
    /// Training time of the epoch in seconds (evaluation excluded).
    pub seconds: f64,
    /// Training images per second over the epoch.
    pub samples_per_s: f64,
}

/// When the test accuracy probe first met the target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TargetHit {
    /// Optimizer steps taken.
    pub step: u64,
    /// Epochs (fractional) of training images seen.
    pub epochs: f64,
    /// Training seconds (evaluation excluded).
    pub train_s: f64,
    /// The test accuracy measured.
    pub accuracy: f64,
}

/// A model's training so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// One record per finished epoch.
    pub epochs: Vec<EpochRecord>,
    /// Optimizer steps taken.
    pub steps: u64,
    /// Training seconds in all.
    pub train_s: f64,
    /// When the test accuracy probe first met the target, if it did.
    pub first_hit: Option<TargetHit>,
}

impl History {
    /// Training images per second over every epoch.
    pub fn samples_per_s(&self) -> f64 {
        let n: f64 = self.epochs.iter().map(|e| e.samples_per_s * e.seconds).sum();
        if self.train_s > 0.0 {
            n / self.train_s
        } else {
            0.0
        }
    }

    /// The history as text for checkpoint metadata: one line per epoch, seven numbers each.
    pub fn to_text(&self) -> String {
        let mut s = format!("train_s {}\n", self.train_s);
        if let Some(h) = self.first_hit {
            let _ = writeln!(s, "first_hit {} {} {} {}", h.step, h.epochs, h.train_s, h.accuracy);
        }
        for e in &self.epochs {
            let _ = writeln!(
                s,
                "epoch {} {} {} {} {} {} {}",
                e.epoch, e.train_loss, e.train_accuracy, e.val_loss, e.val_accuracy, e.seconds, e.samples_per_s
            );
        }
        s
    }

    /// Parses [`History::to_text`] (the step count is not in it: it is the checkpoint's).
    ///
    /// # Errors
    /// A message naming the line that does not parse.
    pub fn from_text(text: &str) -> Result<History, String> {
        let mut h = History::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let mut words = line.split_whitespace();
            let key = words.next().unwrap_or("");
            let nums: Vec<f64> = words.map(str::parse).collect::<Result<_, _>>().map_err(|_| format!("{line:?}"))?;
            match (key, nums.as_slice()) {
                ("train_s", [t]) => h.train_s = *t,
                ("first_hit", [step, epochs, train_s, accuracy]) => {
                    h.first_hit =
                        Some(TargetHit { step: *step as u64, epochs: *epochs, train_s: *train_s, accuracy: *accuracy })
                }
                ("epoch", [epoch, tl, ta, vl, va, s, sps]) => h.epochs.push(EpochRecord {
                    epoch: *epoch as usize,
                    train_loss: *tl,
                    train_accuracy: *ta,
                    val_loss: *vl,
                    val_accuracy: *va,
                    seconds: *s,
                    samples_per_s: *sps,
                }),
                _ => return Err(format!("{line:?}")),
            }
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(n: usize) -> Tensor<f32> {
        Tensor::from_vec((0..n * PIXELS).map(|i| ((i * 37) % 101) as f32 / 100.0).collect(), &[n, PIXELS])
    }

    #[test]
    fn both_models_save_load_and_predict_the_same() {
        let dir = std::env::temp_dir().join(format!("pente-digits-model-{}", std::process::id()));
        for arch in [Arch::Mlp, Arch::Cnn] {
            let config = DigitsConfig { seed: 5, ..DigitsConfig::for_arch(arch) };
            let mut model = DigitsModel::new(&config).expect("valid");
            model.norm = Normalization { mean: 0.13, std: 0.31 };
            let path = dir.join(format!("{}.ckpt", arch.name()));
            model.save(&path).expect("writable");
            let loaded = DigitsModel::load(&path).expect("just saved");
            assert_eq!(loaded.config, model.config);
            assert_eq!(loaded.norm, model.norm);
            let x = inputs(3);
            assert_eq!(loaded.logits(&x), model.logits(&x));
            assert_eq!(model.logits(&x).shape(), &[3, CLASSES]);
            let p = loaded.probabilities(&x);
            assert!(p.iter().all(|row| (row.iter().sum::<f32>() - 1.0).abs() < 1e-5));
        }
        let err = DigitsModel::load_arch(&dir.join("cnn.ckpt"), Arch::Mlp).expect_err("a CNN is not an MLP");
        assert!(matches!(err, Error::NotAModel { .. }) && err.to_string().contains("holds a cnn"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn best_models_keep_their_running_statistics_through_save_and_load() {
        use nn::{Adam, AdamConfig, Optimizer};
        let dir = std::env::temp_dir().join(format!("pente-digits-best-{}", std::process::id()));
        for arch in [Arch::Mlp, Arch::Cnn] {
            let mut model = DigitsModel::new(&DigitsConfig { seed: 3, ..DigitsConfig::best(arch) }).expect("valid");
            let x = inputs(4);
            let (_, grads) = model.store.value_and_grad(1, |p| {
                let logits = model.net.forward(p, p.tape().constant(x.clone()));
                nn::loss::cross_entropy(logits, &[1, 2, 3, 4])
            });
            Adam::new(AdamConfig::default()).step(&mut model.store, &grads);
            if arch == Arch::Cnn {
                let id = model.store.id("bn_cnn.bn0.running_mean").expect("a batch-norm buffer");
                assert!(model.store.get(id).data().iter().any(|&v| v != 0.0), "training updated the running mean");
                let torch: Vec<String> =
                    model.net.torch_state_dict().entries().iter().map(|e| e.name.clone()).collect();
                assert!(torch.contains(&"1.running_var".to_string()) && torch.contains(&"16.weight".to_string()));
            }
            let path = dir.join(format!("best-{}.ckpt", arch.name()));
            model.save(&path).expect("writable");
            let loaded = DigitsModel::load(&path).expect("just saved");
            assert_eq!(loaded.config, model.config);
            assert_eq!(loaded.logits(&x), model.logits(&x));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn fast_models_save_load_and_predict_the_same_with_and_without_batch_norm() {
        use nn::{Adam, AdamConfig, Optimizer};
        let dir = std::env::temp_dir().join(format!("pente-digits-fast-{}", std::process::id()));
        for (batch_norm, width, params) in [(true, 16, 29_178), (false, 8, 8_778)] {
            let config = DigitsConfig { seed: 4, batch_norm, width, ..DigitsConfig::fast(Arch::Cnn) };
            let mut model = DigitsModel::new(&config).expect("valid");
            assert_eq!(model.num_params(), params);
            let x = inputs(4);
            let (_, grads) = model.store.value_and_grad(1, |p| {
                let logits = model.net.forward(p, p.tape().constant(x.clone()));
                nn::loss::cross_entropy(logits, &[1, 2, 3, 4])
            });
            Adam::new(AdamConfig::default()).step(&mut model.store, &grads);
            let names: Vec<String> = model.net.torch_state_dict().entries().iter().map(|e| e.name.clone()).collect();
            if batch_norm {
                let id = model.store.id("fast_cnn.bn2.running_mean").expect("a batch-norm buffer");
                assert!(model.store.get(id).data().iter().any(|&v| v != 0.0), "training updated the running mean");
                for n in ["0.weight", "1.running_var", "4.weight", "9.bias", "13.weight", "13.bias"] {
                    assert!(names.contains(&n.to_string()), "{n} missing from {names:?}");
                }
            } else {
                assert!(model.store.id("fast_cnn.bn0.running_mean").is_none());
                for n in ["0.bias", "3.weight", "6.bias", "10.weight"] {
                    assert!(names.contains(&n.to_string()), "{n} missing from {names:?}");
                }
            }
            let path = dir.join(format!("fast-{batch_norm}.ckpt"));
            model.save(&path).expect("writable");
            let loaded = DigitsModel::load(&path).expect("just saved");
            assert_eq!(loaded.config, model.config);
            assert!(matches!(loaded.net, Net::Fast(_)));
            assert_eq!(loaded.logits(&x), model.logits(&x));
            assert_eq!(model.logits(&x).shape(), &[4, CLASSES]);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn fast_config_is_the_small_cnn_with_one_cycle_and_refuses_the_mlp() {
        let c = DigitsConfig::fast(Arch::Cnn);
        assert_eq!((c.preset, c.one_cycle, c.batch_norm, c.width), (Preset::Fast, true, true, 16));
        assert_eq!((c.validation, c.shift, c.rotate, c.target), (0, 0, 0.0, 0.99));
        assert!(c.eval_every > 0, "the fast preset probes the test accuracy");
        assert!(c.validate().is_ok());
        assert!(c.describe().contains("batch norm"), "{}", c.describe());
        let back: DigitsConfig = serde_json::from_str(&config::to_json(&c)).expect("parses");
        assert_eq!(back, c);
        let e = DigitsConfig::fast(Arch::Mlp).validate().unwrap_err();
        assert!(e.to_string().contains("the fast preset is a CNN"), "{e}");
        let e = DigitsConfig { width: 0, ..c.clone() }.validate().unwrap_err();
        assert_eq!(e.to_string(), "width = 0 must be at least 1");
        let e = DigitsConfig { width: 1000, ..c.clone() }.validate().unwrap_err();
        assert_eq!(e.to_string(), "width = 1000 is above the limit 256");
        // A configuration saved before these fields existed reads as no one-cycle, batch norm on.
        let json = config::to_json(&DigitsConfig::best(Arch::Cnn));
        let mut old: serde_json::Value = serde_json::from_str(&json).expect("parses");
        for key in ["one_cycle", "batch_norm", "width"] {
            old.as_object_mut().expect("an object").remove(key);
        }
        let old: DigitsConfig = serde_json::from_value(old).expect("older configurations still load");
        assert_eq!(old, DigitsConfig::best(Arch::Cnn));
    }

    #[test]
    fn a_checkpoint_of_another_model_or_with_lying_metadata_is_refused() {
        let dir = std::env::temp_dir().join(format!("pente-digits-foreign-{}", std::process::id()));
        let path = dir.join("x.ckpt");
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cnn = DigitsModel::new(&DigitsConfig::for_arch(Arch::Cnn)).expect("valid");
        // A CNN's tensors under a configuration claiming an MLP: refused before building.
        let lying = |json: String| cnn.checkpoint().with_metadata(config::CONFIG_KEY, json);
        let as_mlp = config::to_json(&Saved { config: DigitsConfig::for_arch(Arch::Mlp), norm: cnn.norm });
        lying(as_mlp).save(&path).expect("writable");
        let err = DigitsModel::load(&path).expect_err("the tensors are a CNN's");
        assert!(err.to_string().contains("describes 535818 parameters, its tensors hold 1199882"), "{err}");
        cnn.checkpoint().with_metadata("model", "attractor").save(&path).expect("writable");
        assert!(matches!(DigitsModel::load(&path), Err(Error::NotAModel { .. })));
        let transformer =
            config::to_json(&Saved { config: cnn.config.clone(), norm: cnn.norm }).replace("cnn", "transformer");
        lying(transformer).save(&path).expect("writable");
        let err = DigitsModel::load(&path).expect_err("no such architecture");
        assert!(
            matches!(err, Error::NotAModel { .. }) && err.to_string().contains("unknown variant `transformer`"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn config_json_round_trips_and_sizes_are_bounded() {
        let c = DigitsConfig {
            arch: Arch::Cnn,
            seed: 9,
            shift: 2,
            normalize: true,
            weight_decay: 0.01,
            ..Default::default()
        };
        let back: DigitsConfig = serde_json::from_str(&config::to_json(&c)).expect("parses");
        assert_eq!(back, c);
        let e = DigitsConfig { batch_size: 0, ..Default::default() }.validate().unwrap_err();
        assert_eq!(e.to_string(), "batch_size = 0 must be at least 1");
        let e = DigitsConfig { epochs: 1 << 40, ..Default::default() }.validate().unwrap_err();
        assert_eq!(e.to_string(), "epochs = 1099511627776 is above the limit 1000");
    }
}
