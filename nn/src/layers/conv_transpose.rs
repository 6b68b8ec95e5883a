//! [`ConvTranspose2d`]: a transposed 2-d convolution over NCHW images, as PyTorch's
//! `nn.ConvTranspose2d`: the layer that upsamples in decoders and generators.
//!
//! `x (batch, in_ch, h, w)` → `(batch, out_ch, (h − 1)·stride − 2·padding + k + output_padding,
//! …)`; weight `(in_ch, out_ch, k, k)` and bias `(out_ch)` as PyTorch's. Its map is the input
//! gradient of a [`Conv2d`](crate::Conv2d) with the same weight, stride and padding (see
//! [`Var::conv_transpose2d`](autograd::Var::conv_transpose2d)).
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use nn::{ConvTranspose2d, ConvTranspose2dConfig, ParamStore};
//! let mut store = ParamStore::<f32>::with_seed(0);
//! let config = ConvTranspose2dConfig { kernel_size: 3, stride: 2, padding: 1, output_padding: 1, ..Default::default() };
//! let up = ConvTranspose2d::new(store.scope("up"), 8, 4, config);
//! let tape = Tape::new();
//! let p = store.bind(&tape);
//! let x = tape.constant(Tensor::zeros(&[2, 8, 7, 7]));
//! assert_eq!(up.forward(&p, x).shape().as_slice(), &[2, 4, 14, 14]); // 6·2 − 2 + 3 + 1 = 14
//! ```

use autograd::{Float, Var};

use crate::{Bound, Init, Module, ParamId, Scope};

/// Options of a [`ConvTranspose2d`] layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dConfig {
    /// Side of the square kernel. Default 3.
    pub kernel_size: usize,
    /// Step between the input pixels' kernels in the output. Default 1.
    pub stride: usize,
    /// Rows and columns cut from each side of the output. Default 0.
    pub padding: usize,
    /// Rows and columns added at the bottom and right of the output (smaller than the stride).
    /// Default 0.
    pub output_padding: usize,
    /// Whether to add a bias. Default true.
    pub bias: bool,
}

impl Default for ConvTranspose2dConfig {
    fn default() -> Self {
        ConvTranspose2dConfig { kernel_size: 3, stride: 1, padding: 0, output_padding: 0, bias: true }
    }
}

/// A transposed 2-d convolution; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2d {
    /// The kernels, `(in_ch, out_ch, k, k)`.
    pub weight: ParamId,
    /// The bias, `(out_ch)`, if any.
    pub bias: Option<ParamId>,
    /// Input channels.
    pub in_ch: usize,
    /// Output channels.
    pub out_ch: usize,
    /// Shape options.
    pub config: ConvTranspose2dConfig,
}

impl ConvTranspose2d {
    /// A transposed convolution initialized as PyTorch's (`U(±1/√fan_in)` with PyTorch's
    /// `fan_in` of this weight layout, `out_ch·k²`), parameters `weight` and `bias` in `scope`.
    pub fn new<T: Float>(mut scope: Scope<'_, T>, in_ch: usize, out_ch: usize, config: ConvTranspose2dConfig) -> Self {
        let k = config.kernel_size;
        let init = Init::LecunUniform { fan_in: out_ch * k * k };
        let weight = scope.param("weight", &[in_ch, out_ch, k, k], init);
        let bias = config.bias.then(|| scope.param("bias", &[out_ch], init));
        ConvTranspose2d { weight, bias, in_ch, out_ch, config }
    }

    /// Applies the layer to `x (batch, in_ch, h, w)`.
    ///
    /// # Panics
    /// If `x` is not 4-d with `in_ch` channels, or the configuration gives no output (see
    /// [`Var::conv_transpose2d`](autograd::Var::conv_transpose2d)).
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        assert!(
            shape.len() == 4 && shape[1] == self.in_ch,
            "ConvTranspose2d: expected input (batch, {}, h, w), got {:?}",
            self.in_ch,
            shape.as_slice()
        );
        let ConvTranspose2dConfig { stride, padding, output_padding, .. } = self.config;
        let w = p.get(self.weight);
        match self.bias {
            Some(b) => x.conv_transpose2d_with_bias(w, p.get(b), stride, padding, output_padding),
            None => x.conv_transpose2d(w, stride, padding, output_padding),
        }
    }
}

impl Module for ConvTranspose2d {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        ConvTranspose2d::forward(self, p, x)
    }
}
