//! The small CNN of `pente digits train --preset fast` ([`super::model::Preset::Fast`]), built
//! to reach 99 % test accuracy in about one epoch at a high throughput:
//!
//! `[conv 3×3 (padding 1) → batch norm → ReLU → max-pool 2] × 3` at `w`, `2w`, `4w` channels
//! (sides 28 → 14 → 7 → 3), flatten `(4w·3·3)`, dense `→ 10`. The convolutions have no bias
//! when batch norm follows them (its shift plays that part); without batch norm (an ablation)
//! they have one. With `w = 16`: 29,178 parameters and about 1.9 M multiply-adds per image,
//! a sixth of the default CNN's.
//!
//! ```
//! use autograd::Tape;
//! use models::digits::fast::FastCnn;
//! use nn::ParamStore;
//! let mut store = ParamStore::<f32>::with_seed(0);
//! let net = FastCnn::new(store.scope("fast_cnn"), 16, true);
//! assert_eq!(store.num_params(), 29_178);
//! let tape = Tape::new();
//! let p = store.bind(&tape);
//! let logits = net.forward(&p, tape.constant(autograd::Tensor::zeros(&[2, 784])));
//! assert_eq!(logits.value().shape(), &[2, 10]);
//! ```

use autograd::Var;
use nn::{BatchNorm2d, Bound, Conv2d, Conv2dConfig, Flatten, Linear, MaxPool2d, Scope};

use super::data::{CLASSES, SIDE};

/// Convolution stages, each halving the side: 28 → 14 → 7 → 3.
const STAGES: usize = 3;

/// The fast preset's network; see the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct FastCnn {
    /// `1 → w`, `w → 2w`, `2w → 4w` channels, 3×3, padding 1.
    pub convs: Vec<Conv2d>,
    /// One batch norm after each convolution (empty without batch norm).
    pub norms: Vec<BatchNorm2d>,
    /// `4w·3·3 → 10`.
    pub fc: Linear,
}

impl FastCnn {
    /// Builds the layers in `scope` (`conv0…2`, `bn0…2`, `fc`) with `width` channels in the
    /// first stage, with or without batch norm.
    pub fn new(mut scope: Scope<'_, f32>, width: usize, batch_norm: bool) -> FastCnn {
        let k3 = Conv2dConfig { kernel_size: 3, padding: 1, bias: !batch_norm, ..Default::default() };
        let channels: Vec<(usize, usize)> =
            (0..STAGES).map(|i| (if i == 0 { 1 } else { width << (i - 1) }, width << i)).collect();
        let convs = channels
            .iter()
            .enumerate()
            .map(|(i, &(a, b))| Conv2d::new(scope.scope(format!("conv{i}")), a, b, k3))
            .collect();
        let norms = if batch_norm {
            channels.iter().enumerate().map(|(i, &(_, b))| BatchNorm2d::new(scope.scope(format!("bn{i}")), b)).collect()
        } else {
            Vec::new()
        };
        let side = SIDE >> STAGES; // 3
        let fc = Linear::new(scope.scope("fc"), (width << (STAGES - 1)) * side * side, CLASSES);
        FastCnn { convs, norms, fc }
    }

    /// Logits `(batch, 10)` for inputs `x (batch, 784)`.
    pub fn forward<'t>(&self, p: &Bound<'t, f32>, x: Var<'t, f32>) -> Var<'t, f32> {
        let batch = x.shape()[0];
        let mut h = x.reshape(&[batch, 1, SIDE, SIDE]);
        for (i, conv) in self.convs.iter().enumerate() {
            h = conv.forward(p, h); // (batch, w·2^i, side, side)
            if let Some(norm) = self.norms.get(i) {
                h = norm.forward(p, h);
            }
            // ReLU after the pooling: ReLU is monotone, so it commutes with max pooling (value
            // and gradient), and this way it touches a quarter of the elements.
            h = MaxPool2d::new(2, 2).forward(p, h).relu(); // side 28 → 14 → 7 → 3
        }
        self.fc.forward(p, Flatten.forward(p, h)) // (batch, 10)
    }

    /// The PyTorch state dict of `build("fast")` in `bench/reference/mnist_best_torch.py`: an
    /// `nn.Sequential` of (Conv2d, BatchNorm2d, ReLU, MaxPool2d) × 3, Flatten, Linear, so the
    /// convolutions are items 0, 4, 8, the batch norms 1, 5, 9 and the dense layer 13 (without
    /// batch norm: 0, 3, 6 and 10).
    pub fn torch_state_dict(&self, map: &mut nn::torch::StateDictMap) {
        let per_stage = if self.norms.is_empty() { 3 } else { 4 };
        for (i, conv) in self.convs.iter().enumerate() {
            map.conv2d(&(per_stage * i).to_string(), conv);
            if let Some(norm) = self.norms.get(i) {
                map.batch_norm(&(per_stage * i + 1).to_string(), &norm.0);
            }
        }
        map.linear(&(per_stage * STAGES + 1).to_string(), &self.fc);
    }

    /// The first convolution's kernels, `(w, 1, 3, 3)`.
    pub fn first_conv(&self) -> &Conv2d {
        &self.convs[0]
    }
}
