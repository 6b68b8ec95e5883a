//! Recurrent layers with PyTorch's equations, gate order and parameter layout: the cells
//! [`RnnCell`], [`GruCell`] and [`LstmCell`] (one time step), and the sequence layers [`Rnn`],
//! [`Gru`] and [`Lstm`] (the cells unrolled over a sequence, stacked `num_layers` deep).
//!
//! With `x` the input, `h` the hidden state and `c` the LSTM's cell state, `σ` the sigmoid and
//! `⊙` the element-wise product (the gates in this order along the rows of the weights):
//!
//! ```text
//! RNN:   h' = tanh(x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh)          (or relu)
//! GRU:   r = σ(x·W_irᵀ + b_ir + h·W_hrᵀ + b_hr)               rows: r, z, n
//!        z = σ(x·W_izᵀ + b_iz + h·W_hzᵀ + b_hz)
//!        n = tanh(x·W_inᵀ + b_in + r ⊙ (h·W_hnᵀ + b_hn))
//!        h' = (1 − z) ⊙ n + z ⊙ h
//! LSTM:  i, f, g, o = σ, σ, tanh, σ of x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh   rows: i, f, g, o
//!        c' = f ⊙ c + i ⊙ g
//!        h' = o ⊙ tanh(c')
//! ```
//!
//! The parameters are stored as PyTorch stores them: `weight_ih` is `(gates·hidden, input)`,
//! `weight_hh` is `(gates·hidden, hidden)`, `bias_ih` and `bias_hh` are `(gates·hidden)`, with
//! `gates` 1, 3 and 4; a sequence layer's are named `weight_ih_l0`, `weight_hh_l0`, … as in
//! `nn.GRU`'s state dict. All are drawn from `U(−1/√hidden, 1/√hidden)`, PyTorch's default.
//!
//! The layers are built from differentiable ops (matmul, sigmoid, tanh, narrow, stack), so their
//! gradients of every order come from those ops'. A sequence layer multiplies the whole input
//! sequence by `W_ih` in one product before the time loop; only `h·W_hhᵀ` runs per step.
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use nn::{Gru, ParamStore, RecurrentConfig};
//! let mut store = ParamStore::<f64>::with_seed(0);
//! let gru = Gru::new(store.scope("gru"), 3, 4, RecurrentConfig { num_layers: 2, ..Default::default() });
//! assert!(store.id("gru.weight_ih_l1").is_some());
//! let tape = Tape::new();
//! let p = store.bind(&tape);
//! let x = tape.constant(Tensor::ones(&[5, 2, 3])); // (seq_len, batch, input)
//! let (out, h_n) = gru.forward(&p, x, None);
//! assert_eq!(out.shape().as_slice(), &[5, 2, 4]); // (seq_len, batch, hidden)
//! assert_eq!(h_n.shape().as_slice(), &[2, 2, 4]); // (num_layers, batch, hidden)
//! ```

use autograd::{Float, Var};

use crate::{Bound, Init, ParamId, Scope};

/// The non-linearity of an [`RnnCell`] or [`Rnn`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Nonlinearity {
    /// `tanh` (PyTorch's default).
    #[default]
    Tanh,
    /// `relu`.
    Relu,
}

/// The kind of a recurrent cell: how many gates it has and how it combines them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// The plain RNN cell, with its non-linearity.
    Rnn(Nonlinearity),
    /// The GRU cell (gates r, z, n).
    Gru,
    /// The LSTM cell (gates i, f, g, o).
    Lstm,
}

impl CellKind {
    /// Rows of the weights per hidden unit: 1, 3 or 4.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Rnn(_) => 1,
            CellKind::Gru => 3,
            CellKind::Lstm => 4,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CellKind::Rnn(_) => "RNN",
            CellKind::Gru => "GRU",
            CellKind::Lstm => "LSTM",
        }
    }
}

/// The parameters of one recurrent cell, in PyTorch's layout (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellParams {
    /// `(gates·hidden, input)`.
    pub weight_ih: ParamId,
    /// `(gates·hidden, hidden)`.
    pub weight_hh: ParamId,
    /// `(gates·hidden)`, if the cell has biases.
    pub bias_ih: Option<ParamId>,
    /// `(gates·hidden)`, if the cell has biases.
    pub bias_hh: Option<ParamId>,
    /// Input features.
    pub input_size: usize,
    /// Hidden features.
    pub hidden_size: usize,
    /// Which cell.
    pub kind: CellKind,
}

/// The parameters of one cell, read from the tape once and reused at every time step.
struct Lifted<'t, T: Float> {
    w_ih_t: Var<'t, T>,
    w_hh_t: Var<'t, T>,
    b_ih: Option<Var<'t, T>>,
    b_hh: Option<Var<'t, T>>,
}

impl CellParams {
    /// Creates `weight_ih{suffix}`, `weight_hh{suffix}` and, with `bias`, `bias_ih{suffix}` and
    /// `bias_hh{suffix}` in `scope`.
    fn new<T: Float>(
        scope: &mut Scope<'_, T>,
        kind: CellKind,
        input_size: usize,
        hidden_size: usize,
        bias: bool,
        suffix: &str,
    ) -> Self {
        let rows = kind.gates() * hidden_size;
        let init = Init::LecunUniform { fan_in: hidden_size };
        let weight_ih = scope.param(&format!("weight_ih{suffix}"), &[rows, input_size], init);
        let weight_hh = scope.param(&format!("weight_hh{suffix}"), &[rows, hidden_size], init);
        let bias_ih = bias.then(|| scope.param(&format!("bias_ih{suffix}"), &[rows], init));
        let bias_hh = bias.then(|| scope.param(&format!("bias_hh{suffix}"), &[rows], init));
        CellParams { weight_ih, weight_hh, bias_ih, bias_hh, input_size, hidden_size, kind }
    }

    #[track_caller]
    fn lift<'t, T: Float>(&self, p: &Bound<'t, T>) -> Lifted<'t, T> {
        Lifted {
            w_ih_t: p.get(self.weight_ih).t(),
            w_hh_t: p.get(self.weight_hh).t(),
            b_ih: self.bias_ih.map(|b| p.get(b)),
            b_hh: self.bias_hh.map(|b| p.get(b)),
        }
    }

    /// Panics unless `x` is `(batch, input_size)`; returns `batch`.
    #[track_caller]
    fn check_input<T: Float>(&self, what: &str, x: &Var<'_, T>) -> usize {
        let s = x.shape();
        assert!(
            s.len() == 2 && s[1] == self.input_size,
            "{}: input {what} has shape {:?}, expected (batch, input_size = {})",
            self.kind.name(),
            s.as_slice(),
            self.input_size
        );
        s[0]
    }

    /// Panics unless the state `h` is `(batch, hidden_size)`.
    #[track_caller]
    fn check_state<T: Float>(&self, what: &str, h: &Var<'_, T>, batch: usize) {
        let s = h.shape();
        assert!(
            s.as_slice() == [batch, self.hidden_size],
            "{}: state {what} has shape {:?}, expected (batch = {batch}, hidden_size = {})",
            self.kind.name(),
            s.as_slice(),
            self.hidden_size
        );
    }
}

/// `x·Wᵀ + b` with `Wᵀ` already transposed; `x` is 2-d.
#[track_caller]
fn affine<'t, T: Float>(x: Var<'t, T>, w_t: Var<'t, T>, b: Option<Var<'t, T>>) -> Var<'t, T> {
    match b {
        Some(b) => x.matmul_bias(w_t, b),
        None => x.matmul(w_t),
    }
}

/// One step of a cell from the input's projection `gi = x·W_ihᵀ + b_ih` `(batch, gates·hidden)`,
/// the hidden state `h` and, for the LSTM, the cell state `c`. Returns `(h', c')` (`c'` only for
/// the LSTM).
#[track_caller]
fn step<'t, T: Float>(
    kind: CellKind,
    hidden: usize,
    w: &Lifted<'t, T>,
    gi: Var<'t, T>,
    h: Var<'t, T>,
    c: Option<Var<'t, T>>,
) -> (Var<'t, T>, Option<Var<'t, T>>) {
    let gh = affine(h, w.w_hh_t, w.b_hh); // (batch, gates·hidden)
    match kind {
        CellKind::Rnn(Nonlinearity::Tanh) => ((gi + gh).tanh(), None),
        CellKind::Rnn(Nonlinearity::Relu) => ((gi + gh).relu(), None),
        CellKind::Gru => {
            // r and z from one sigmoid over the first two thirds; n keeps its halves apart,
            // since r multiplies only the hidden half.
            let rz = (gi.narrow(-1, 0, 2 * hidden) + gh.narrow(-1, 0, 2 * hidden)).sigmoid();
            let (r, z) = (rz.narrow(-1, 0, hidden), rz.narrow(-1, hidden, hidden));
            let n = (gi.narrow(-1, 2 * hidden, hidden) + r * gh.narrow(-1, 2 * hidden, hidden)).tanh();
            // (1 − z)·n + z·h = n + z·(h − n)
            (n + z * (h - n), None)
        }
        CellKind::Lstm => {
            let g = gi + gh;
            let ifo = |k: usize| g.narrow(-1, k * hidden, hidden).sigmoid();
            let (i, f, o) = (ifo(0), ifo(1), ifo(3));
            let cand = g.narrow(-1, 2 * hidden, hidden).tanh();
            let c = c.expect("LSTM step without a cell state");
            let c_next = f * c + i * cand;
            (o * c_next.tanh(), Some(c_next))
        }
    }
}

/// One cell's time step on `(batch, input)` and its state(s).
#[track_caller]
fn cell_forward<'t, T: Float>(
    cell: &CellParams,
    p: &Bound<'t, T>,
    x: Var<'t, T>,
    h: Var<'t, T>,
    c: Option<Var<'t, T>>,
) -> (Var<'t, T>, Option<Var<'t, T>>) {
    let batch = cell.check_input("x", &x);
    cell.check_state("h", &h, batch);
    if let Some(c) = &c {
        cell.check_state("c", c, batch);
    }
    let w = cell.lift(p);
    let gi = affine(x, w.w_ih_t, w.b_ih);
    step(cell.kind, cell.hidden_size, &w, gi, h, c)
}

macro_rules! cell_constructors {
    ($ty:ident, $kind:expr, $torch:literal) => {
        impl $ty {
            /// A cell with biases, parameters `weight_ih`, `weight_hh`, `bias_ih` and `bias_hh` in
            #[doc = concat!("`scope`, as `", $torch, "`'s.")]
            pub fn new<T: Float>(scope: Scope<'_, T>, input_size: usize, hidden_size: usize) -> Self {
                Self::with_bias(scope, input_size, hidden_size, true)
            }

            /// A cell with or without biases.
            pub fn with_bias<T: Float>(
                mut scope: Scope<'_, T>,
                input_size: usize,
                hidden_size: usize,
                bias: bool,
            ) -> Self {
                $ty(CellParams::new(&mut scope, $kind, input_size, hidden_size, bias, ""))
            }

            /// The parameters.
            pub fn params(&self) -> &CellParams {
                &self.0
            }
        }
    };
}

/// The plain recurrent cell `h' = tanh(x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh)`; PyTorch:
/// `nn.RNNCell`. See the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RnnCell(CellParams);

impl RnnCell {
    /// A cell with biases and the given non-linearity (`nn.RNNCell(…, nonlinearity=…)`).
    pub fn with_nonlinearity<T: Float>(
        mut scope: Scope<'_, T>,
        input_size: usize,
        hidden_size: usize,
        nonlinearity: Nonlinearity,
    ) -> Self {
        RnnCell(CellParams::new(&mut scope, CellKind::Rnn(nonlinearity), input_size, hidden_size, true, ""))
    }

    /// One step: `x` `(batch, input_size)`, `h` `(batch, hidden_size)` → `h'` `(batch, hidden_size)`.
    ///
    /// # Panics
    /// If a shape differs from those.
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>, h: Var<'t, T>) -> Var<'t, T> {
        cell_forward(&self.0, p, x, h, None).0
    }
}
cell_constructors!(RnnCell, CellKind::Rnn(Nonlinearity::Tanh), "nn.RNNCell");

/// The gated recurrent unit (Cho et al., 2014) with PyTorch's equations; PyTorch: `nn.GRUCell`.
/// See the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GruCell(CellParams);

impl GruCell {
    /// One step: `x` `(batch, input_size)`, `h` `(batch, hidden_size)` → `h'` `(batch, hidden_size)`.
    ///
    /// # Panics
    /// If a shape differs from those.
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>, h: Var<'t, T>) -> Var<'t, T> {
        cell_forward(&self.0, p, x, h, None).0
    }
}
cell_constructors!(GruCell, CellKind::Gru, "nn.GRUCell");

/// The long short-term memory cell (Hochreiter & Schmidhuber, 1997) with PyTorch's equations;
/// PyTorch: `nn.LSTMCell`. See the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmCell(CellParams);

impl LstmCell {
    /// One step: `x` `(batch, input_size)`, the state `(h, c)`, each `(batch, hidden_size)` →
    /// `(h', c')`.
    ///
    /// # Panics
    /// If a shape differs from those.
    #[track_caller]
    pub fn forward<'t, T: Float>(
        &self,
        p: &Bound<'t, T>,
        x: Var<'t, T>,
        (h, c): (Var<'t, T>, Var<'t, T>),
    ) -> (Var<'t, T>, Var<'t, T>) {
        let (h, c) = cell_forward(&self.0, p, x, h, Some(c));
        (h, c.expect("the LSTM step returns a cell state"))
    }
}
cell_constructors!(LstmCell, CellKind::Lstm, "nn.LSTMCell");

/// Options of a sequence layer ([`Rnn`], [`Gru`], [`Lstm`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecurrentConfig {
    /// Cells stacked: layer `l > 0` reads the outputs of layer `l − 1`. Default 1; must be ≥ 1.
    pub num_layers: usize,
    /// Whether the cells have biases. Default true.
    pub bias: bool,
    /// Input and output are `(batch, seq_len, feature)` rather than `(seq_len, batch, feature)`.
    /// The state is `(num_layers, batch, hidden)` either way, as in PyTorch. Default false.
    pub batch_first: bool,
    /// The non-linearity of [`Rnn`] (ignored by [`Gru`] and [`Lstm`]). Default tanh.
    pub nonlinearity: Nonlinearity,
}

impl Default for RecurrentConfig {
    fn default() -> Self {
        RecurrentConfig { num_layers: 1, bias: true, batch_first: false, nonlinearity: Nonlinearity::Tanh }
    }
}

/// The stacked cells of a sequence layer and the unrolled forward pass they share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    /// One cell per layer, parameters named `weight_ih_l{layer}` and so on.
    pub layers: Vec<CellParams>,
    /// The options.
    pub config: RecurrentConfig,
}

impl Stack {
    #[track_caller]
    fn new<T: Float>(
        mut scope: Scope<'_, T>,
        kind: CellKind,
        input_size: usize,
        hidden_size: usize,
        config: RecurrentConfig,
    ) -> Self {
        assert!(config.num_layers >= 1, "{}: num_layers must be at least 1, got 0", kind.name());
        let layers = (0..config.num_layers)
            .map(|l| {
                let input = if l == 0 { input_size } else { hidden_size };
                CellParams::new(&mut scope, kind, input, hidden_size, config.bias, &format!("_l{l}"))
            })
            .collect();
        Stack { layers, config }
    }

    fn kind(&self) -> CellKind {
        self.layers[0].kind
    }

    fn hidden(&self) -> usize {
        self.layers[0].hidden_size
    }

    /// Panics unless a state is `(num_layers, batch, hidden)`; returns its per-layer slices.
    #[track_caller]
    fn split_state<'t, T: Float>(&self, what: &str, s: Var<'t, T>, batch: usize) -> Vec<Var<'t, T>> {
        let (layers, hidden) = (self.layers.len(), self.hidden());
        assert!(
            s.shape().as_slice() == [layers, batch, hidden],
            "{}: initial state {what} has shape {:?}, expected (num_layers = {layers}, batch = {batch}, hidden_size = {hidden})",
            self.kind().name(),
            s.shape().as_slice()
        );
        (0..layers).map(|l| s.narrow(0, l, 1).reshape(&[batch, hidden])).collect()
    }

    /// The unrolled pass: `x` as the config says, optional initial `h0` (and `c0` for the LSTM),
    /// each `(num_layers, batch, hidden)`, zeros when absent. Returns the last layer's outputs and
    /// the final `h` (and `c`), each stacked over layers.
    #[track_caller]
    fn forward<'t, T: Float>(
        &self,
        p: &Bound<'t, T>,
        x: Var<'t, T>,
        h0: Option<Var<'t, T>>,
        c0: Option<Var<'t, T>>,
    ) -> (Var<'t, T>, Var<'t, T>, Option<Var<'t, T>>) {
        let kind = self.kind();
        let (hidden, input_size) = (self.hidden(), self.layers[0].input_size);
        let shape = x.shape();
        let layout =
            if self.config.batch_first { "(batch, seq_len, input_size" } else { "(seq_len, batch, input_size" };
        assert!(
            shape.len() == 3 && shape[2] == input_size,
            "{}: input has shape {:?}, expected {layout} = {input_size})",
            kind.name(),
            shape.as_slice()
        );
        assert!(shape[0] > 0 && shape[1] > 0, "{}: input of shape {:?} is empty", kind.name(), shape.as_slice());
        // Time-major from here on: (seq_len, batch, feature).
        let mut seq = if self.config.batch_first { x.transpose(0, 1) } else { x };
        let (seq_len, batch) = if self.config.batch_first { (shape[1], shape[0]) } else { (shape[0], shape[1]) };
        let tape = p.tape();
        let zeros = || tape.constant(autograd::Tensor::zeros(&[batch, hidden]));
        let h0 = h0.map(|h| self.split_state("h0", h, batch));
        let c0 = c0.map(|c| self.split_state("c0", c, batch));
        let (mut h_n, mut c_n) = (Vec::new(), Vec::new());
        for (l, cell) in self.layers.iter().enumerate() {
            let w = cell.lift(p);
            let features = seq.shape()[2];
            let rows = kind.gates() * hidden;
            // Every step's input projection in one product: (seq_len·batch, in) → (seq_len, batch, rows).
            let gi =
                affine(seq.reshape(&[seq_len * batch, features]), w.w_ih_t, w.b_ih).reshape(&[seq_len, batch, rows]);
            let mut h = h0.as_ref().map_or_else(zeros, |h| h[l]);
            let mut c = (kind == CellKind::Lstm).then(|| c0.as_ref().map_or_else(zeros, |c| c[l]));
            let mut outs = Vec::with_capacity(seq_len);
            for t in 0..seq_len {
                let gi_t = gi.narrow(0, t, 1).reshape(&[batch, rows]);
                (h, c) = step(kind, hidden, &w, gi_t, h, c);
                outs.push(h);
            }
            seq = Var::stack(&outs, 0); // (seq_len, batch, hidden)
            h_n.push(h);
            c_n.extend(c);
        }
        let out = if self.config.batch_first { seq.transpose(0, 1) } else { seq };
        let c_n = (!c_n.is_empty()).then(|| Var::stack(&c_n, 0));
        (out, Var::stack(&h_n, 0), c_n)
    }
}

macro_rules! sequence_layer {
    ($ty:ident, $kind:expr, $torch:literal) => {
        impl $ty {
            /// `num_layers` cells with parameters `weight_ih_l{k}`, `weight_hh_l{k}`,
            #[doc = concat!("`bias_ih_l{k}` and `bias_hh_l{k}` in `scope`, as `", $torch, "`'s state dict.")]
            ///
            /// # Panics
            /// If `config.num_layers` is 0.
            #[track_caller]
            pub fn new<T: Float>(
                scope: Scope<'_, T>,
                input_size: usize,
                hidden_size: usize,
                config: RecurrentConfig,
            ) -> Self {
                #[allow(clippy::redundant_closure_call)]
                let kind = ($kind)(config);
                $ty(Stack::new(scope, kind, input_size, hidden_size, config))
            }

            /// The stacked cells and the options.
            pub fn stack(&self) -> &Stack {
                &self.0
            }
        }
    };
}

/// A stack of [`RnnCell`]s unrolled over a sequence; PyTorch: `nn.RNN`. See the
/// [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rnn(Stack);

impl Rnn {
    /// Runs the sequence `x` (`(seq_len, batch, input_size)`, or `(batch, seq_len, input_size)`
    /// with `batch_first`) from the initial state `h0` `(num_layers, batch, hidden_size)`, zeros
    /// if `None`. Returns the last layer's output at every step, `(seq_len, batch, hidden_size)`
    /// (batch first with `batch_first`), and the final state of every layer,
    /// `(num_layers, batch, hidden_size)`.
    ///
    /// # Panics
    /// If a shape differs from those or the input is empty.
    #[track_caller]
    pub fn forward<'t, T: Float>(
        &self,
        p: &Bound<'t, T>,
        x: Var<'t, T>,
        h0: Option<Var<'t, T>>,
    ) -> (Var<'t, T>, Var<'t, T>) {
        let (out, h_n, _) = self.0.forward(p, x, h0, None);
        (out, h_n)
    }
}
sequence_layer!(Rnn, |c: RecurrentConfig| CellKind::Rnn(c.nonlinearity), "nn.RNN");

/// A stack of [`GruCell`]s unrolled over a sequence; PyTorch: `nn.GRU`. See the
/// [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gru(Stack);

impl Gru {
    /// Runs the sequence `x` from the initial state `h0`, as [`Rnn::forward`] does.
    ///
    /// # Panics
    /// If a shape differs from [`Rnn::forward`]'s or the input is empty.
    #[track_caller]
    pub fn forward<'t, T: Float>(
        &self,
        p: &Bound<'t, T>,
        x: Var<'t, T>,
        h0: Option<Var<'t, T>>,
    ) -> (Var<'t, T>, Var<'t, T>) {
        let (out, h_n, _) = self.0.forward(p, x, h0, None);
        (out, h_n)
    }
}
sequence_layer!(Gru, |_| CellKind::Gru, "nn.GRU");

/// A stack of [`LstmCell`]s unrolled over a sequence; PyTorch: `nn.LSTM`. See the
/// [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lstm(Stack);

impl Lstm {
    /// Runs the sequence `x` from the initial state `(h0, c0)`, each
    /// `(num_layers, batch, hidden_size)`, zeros if `None`. Returns the outputs as
    /// [`Rnn::forward`] does and the final `(h_n, c_n)`, each `(num_layers, batch, hidden_size)`.
    ///
    /// # Panics
    /// If a shape differs from those or the input is empty.
    #[track_caller]
    #[allow(clippy::type_complexity)]
    pub fn forward<'t, T: Float>(
        &self,
        p: &Bound<'t, T>,
        x: Var<'t, T>,
        state: Option<(Var<'t, T>, Var<'t, T>)>,
    ) -> (Var<'t, T>, (Var<'t, T>, Var<'t, T>)) {
        let (h0, c0) = state.unzip();
        let (out, h_n, c_n) = self.0.forward(p, x, h0, c0);
        (out, (h_n, c_n.expect("the LSTM returns a cell state")))
    }
}
sequence_layer!(Lstm, |_| CellKind::Lstm, "nn.LSTM");
