//! Convolutional layers over NCHW images: [`Conv2d`], [`MaxPool2d`], and [`Flatten`] to hand
//! their output to a [`Linear`](crate::Linear).
//!
//! `Conv2d`: `x (batch, in_ch, h, w)` → `(batch, out_ch, (h + 2·padding − k) / stride + 1, …)`,
//! weight `(out_ch, in_ch, k, k)` as PyTorch, bias `(out_ch)`.
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use nn::{Conv2d, Conv2dConfig, Flatten, MaxPool2d, ParamStore};
//! let mut store = ParamStore::<f32>::with_seed(0);
//! let conv = Conv2d::new(store.scope("conv"), 1, 4, Conv2dConfig { kernel_size: 3, padding: 1, ..Default::default() });
//! let tape = Tape::new();
//! let p = store.bind(&tape);
//! let x = tape.constant(Tensor::zeros(&[2, 1, 8, 8]));
//! let h = MaxPool2d::new(2, 2).forward(&p, conv.forward(&p, x).relu()); // (2, 4, 4, 4)
//! assert_eq!(Flatten.forward(&p, h).shape().as_slice(), &[2, 64]);
//! ```

use autograd::{Float, Var};

use crate::{Bound, Init, Module, ParamId, Scope};

/// Options of a [`Conv2d`] layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dConfig {
    /// Side of the square kernel. Default 3.
    pub kernel_size: usize,
    /// Step between windows. Default 1.
    pub stride: usize,
    /// Zeros added on each side. Default 0.
    pub padding: usize,
    /// Whether to add a bias. Default true.
    pub bias: bool,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Conv2dConfig { kernel_size: 3, stride: 1, padding: 0, bias: true }
    }
}

/// A 2-d convolution (cross-correlation, as PyTorch); see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// The kernels, `(out_ch, in_ch, k, k)`.
    pub weight: ParamId,
    /// The bias, `(out_ch)`, if any.
    pub bias: Option<ParamId>,
    /// Input channels.
    pub in_ch: usize,
    /// Output channels.
    pub out_ch: usize,
    /// Shape options.
    pub config: Conv2dConfig,
}

impl Conv2d {
    /// A convolution initialized as PyTorch's (`U(±1/√fan_in)`, `fan_in = in_ch·k²`),
    /// parameters `weight` and `bias` in `scope`.
    pub fn new<T: Float>(mut scope: Scope<'_, T>, in_ch: usize, out_ch: usize, config: Conv2dConfig) -> Self {
        let k = config.kernel_size;
        let init = Init::LecunUniform { fan_in: in_ch * k * k };
        let weight = scope.param("weight", &[out_ch, in_ch, k, k], init);
        let bias = config.bias.then(|| scope.param("bias", &[out_ch], init));
        Conv2d { weight, bias, in_ch, out_ch, config }
    }

    /// Convolves `x (batch, in_ch, h, w)`.
    ///
    /// # Panics
    /// If `x` is not 4-d with `in_ch` channels, or is smaller than the kernel.
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        assert!(
            shape.len() == 4 && shape[1] == self.in_ch,
            "Conv2d: expected input (batch, {}, h, w), got {:?}",
            self.in_ch,
            shape.as_slice()
        );
        let (w, stride, padding) = (p.get(self.weight), self.config.stride, self.config.padding);
        match self.bias {
            Some(b) => x.conv2d_with_bias(w, p.get(b), stride, padding),
            None => x.conv2d(w, stride, padding),
        }
    }
}

impl Module for Conv2d {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        Conv2d::forward(self, p, x)
    }
}

/// Max over `kernel × kernel` windows moved by `stride`, per channel: `(n, c, h, w)` →
/// `(n, c, (h − kernel) / stride + 1, …)`. The gradient goes to the first maximum of each window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    /// Window side.
    pub kernel: usize,
    /// Step between windows.
    pub stride: usize,
}

impl MaxPool2d {
    /// A pooling layer (it has no parameters).
    pub fn new(kernel: usize, stride: usize) -> Self {
        MaxPool2d { kernel, stride }
    }

    /// Pools `x (n, c, h, w)`.
    pub fn forward<'t, T: Float>(&self, _p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        x.max_pool2d(self.kernel, self.stride)
    }
}

impl Module for MaxPool2d {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        MaxPool2d::forward(self, p, x)
    }
}

/// Flattens every axis but the first: `(n, …)` → `(n, product of the rest)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flatten;

impl Flatten {
    /// Reshapes `x` (shares its data).
    ///
    /// # Panics
    /// If `x` is 0-d.
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, _p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        assert!(!shape.is_empty(), "Flatten: input is a scalar");
        x.reshape(&[shape[0], shape[1..].iter().product()])
    }
}

impl Module for Flatten {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        Flatten::forward(self, p, x)
    }
}
