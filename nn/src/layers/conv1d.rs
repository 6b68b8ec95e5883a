//! [`Conv1d`]: a 1-d convolution over `(batch, channels, length)` sequences, as PyTorch's
//! `nn.Conv1d`.
//!
//! `x (batch, in_ch, len)` → `(batch, out_ch, (len + 2·padding − k) / stride + 1)`, with
//! `out[n, o, t] = bias[o] + Σ_{c,i} weight[o, c, i] · x[n, c, t·stride + i − padding]`; weight
//! `(out_ch, in_ch, k)` and bias `(out_ch)` as PyTorch's. It runs as a height-1 conv2d (the
//! sequence zero-padded along its length first), so it shares conv2d's kernels and gradients.
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use nn::{Conv1d, Conv1dConfig, ParamStore};
//! let mut store = ParamStore::<f32>::with_seed(0);
//! let conv = Conv1d::new(store.scope("conv"), 2, 4, Conv1dConfig { kernel_size: 3, stride: 2, padding: 1, ..Default::default() });
//! let tape = Tape::new();
//! let p = store.bind(&tape);
//! let x = tape.constant(Tensor::zeros(&[5, 2, 9]));
//! assert_eq!(conv.forward(&p, x).shape().as_slice(), &[5, 4, 5]); // (9 + 2 − 3) / 2 + 1 = 5
//! ```

use autograd::{Float, Var};

use crate::{Bound, Init, Module, ParamId, Scope};

/// Options of a [`Conv1d`] layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dConfig {
    /// Length of the kernel. Default 3.
    pub kernel_size: usize,
    /// Step between windows. Default 1.
    pub stride: usize,
    /// Zeros added at each end of the sequence. Default 0.
    pub padding: usize,
    /// Whether to add a bias. Default true.
    pub bias: bool,
}

impl Default for Conv1dConfig {
    fn default() -> Self {
        Conv1dConfig { kernel_size: 3, stride: 1, padding: 0, bias: true }
    }
}

/// A 1-d convolution (cross-correlation, as PyTorch); see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1d {
    /// The kernels, `(out_ch, in_ch, k)`.
    pub weight: ParamId,
    /// The bias, `(out_ch)`, if any.
    pub bias: Option<ParamId>,
    /// Input channels.
    pub in_ch: usize,
    /// Output channels.
    pub out_ch: usize,
    /// Shape options.
    pub config: Conv1dConfig,
}

impl Conv1d {
    /// A convolution initialized as PyTorch's (`U(±1/√fan_in)`, `fan_in = in_ch·k`),
    /// parameters `weight` and `bias` in `scope`.
    pub fn new<T: Float>(mut scope: Scope<'_, T>, in_ch: usize, out_ch: usize, config: Conv1dConfig) -> Self {
        let k = config.kernel_size;
        let init = Init::LecunUniform { fan_in: in_ch * k };
        let weight = scope.param("weight", &[out_ch, in_ch, k], init);
        let bias = config.bias.then(|| scope.param("bias", &[out_ch], init));
        Conv1d { weight, bias, in_ch, out_ch, config }
    }

    /// Convolves `x (batch, in_ch, len)`.
    ///
    /// # Panics
    /// If `x` is not 3-d with `in_ch` channels, the stride or kernel is zero, or the padded
    /// sequence is shorter than the kernel.
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        let Conv1dConfig { kernel_size: k, stride, padding, .. } = self.config;
        assert!(
            shape.len() == 3 && shape[1] == self.in_ch,
            "Conv1d: expected input (batch, {}, len), got {:?}",
            self.in_ch,
            shape.as_slice()
        );
        let (n, len) = (shape[0], shape[2] + 2 * padding);
        assert!(
            k <= len && k > 0 && stride > 0,
            "Conv1d: kernel {k} and stride {stride} must be positive and the kernel no longer than the padded \
             length {len} of input {:?}",
            shape.as_slice()
        );
        let x = if padding > 0 { x.pad(-1, padding, padding) } else { x };
        let x = x.reshape(&[n, self.in_ch, 1, len]);
        let w = p.get(self.weight).reshape(&[self.out_ch, self.in_ch, 1, k]);
        let y = match self.bias {
            Some(b) => x.conv2d_with_bias(w, p.get(b), stride, 0),
            None => x.conv2d(w, stride, 0),
        }; // (batch, out_ch, 1, out_len)
        let out_len = y.shape()[3];
        y.reshape(&[n, self.out_ch, out_len])
    }
}

impl Module for Conv1d {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        Conv1d::forward(self, p, x)
    }
}
