//! Average pooling over NCHW images: [`AvgPool2d`] (fixed windows) and [`AdaptiveAvgPool2d`]
//! (a given output size), as PyTorch's `nn.AvgPool2d` and `nn.AdaptiveAvgPool2d`. Neither has
//! parameters.
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use nn::{AdaptiveAvgPool2d, AvgPool2d, ParamStore};
//! let store = ParamStore::<f32>::with_seed(0);
//! let tape = Tape::new();
//! let p = store.bind(&tape);
//! let x = tape.constant(Tensor::ones(&[2, 3, 7, 7]));
//! let h = AvgPool2d::new(3, 2, 1).forward(&p, x); // (2, 3, 4, 4)
//! assert_eq!(h.shape().as_slice(), &[2, 3, 4, 4]);
//! // The corner window holds 4 ones and 5 padding zeros, counted in the average.
//! assert!((h.value().data()[0] - 4.0 / 9.0).abs() < 1e-6);
//! let g = AdaptiveAvgPool2d::new((1, 1)).forward(&p, h); // global average: (2, 3, 1, 1)
//! assert_eq!(g.shape().as_slice(), &[2, 3, 1, 1]);
//! ```

use autograd::{Float, Var};

use crate::{Bound, Module};

/// The mean over `kernel × kernel` windows moved by `stride`, per channel, of the image
/// zero-padded by `padding` (the zeros count in the mean, as PyTorch's default
/// `count_include_pad=True`): `(n, c, h, w)` → `(n, c, (h + 2·padding − kernel) / stride + 1, …)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d {
    /// Window side.
    pub kernel: usize,
    /// Step between windows (PyTorch's default is the kernel).
    pub stride: usize,
    /// Zeros added on each side (at most half the kernel).
    pub padding: usize,
}

impl AvgPool2d {
    /// A pooling layer (it has no parameters).
    pub fn new(kernel: usize, stride: usize, padding: usize) -> Self {
        AvgPool2d { kernel, stride, padding }
    }

    /// Pools `x (n, c, h, w)`.
    ///
    /// # Panics
    /// See [`Var::avg_pool2d`](autograd::Var::avg_pool2d).
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, _p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        x.avg_pool2d(self.kernel, self.stride, self.padding)
    }
}

impl Module for AvgPool2d {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        AvgPool2d::forward(self, p, x)
    }
}

/// The mean over windows chosen so that the output is `output = (oh, ow)` whatever the input's
/// size: output row `i` averages input rows `⌊i·h/oh⌋ .. ⌈(i+1)·h/oh⌉` (PyTorch's formula), and
/// likewise for columns. `(1, 1)` is global average pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptiveAvgPool2d {
    /// The output's (height, width).
    pub output: (usize, usize),
}

impl AdaptiveAvgPool2d {
    /// A pooling layer (it has no parameters).
    pub fn new(output: (usize, usize)) -> Self {
        AdaptiveAvgPool2d { output }
    }

    /// Pools `x (n, c, h, w)`.
    ///
    /// # Panics
    /// See [`Var::adaptive_avg_pool2d`](autograd::Var::adaptive_avg_pool2d).
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, _p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        x.adaptive_avg_pool2d(self.output)
    }
}

impl Module for AdaptiveAvgPool2d {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        AdaptiveAvgPool2d::forward(self, p, x)
    }
}
