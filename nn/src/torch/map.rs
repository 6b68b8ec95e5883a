//! [`StateDictMap`]: which PyTorch state-dict entry each parameter of a model is and in which
//! [`Layout`], built with one method per layer.

use autograd::{Float, Tensor};

use crate::layers::recurrent::{CellParams, Stack};
use crate::{CausalSelfAttention, Conv2d, Embedding, LayerNorm, Linear, Mlp, ParamId, TransformerBlock};
use crate::{Conv1d, ConvTranspose2d};
use crate::{GroupNorm, RmsNorm};

/// How a parameter is laid out in PyTorch relative to pente.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The same shape and element order.
    Same,
    /// A matrix stored transposed: pente's [`Linear`] weight is `(in_dim, out_dim)`, PyTorch's
    /// `nn.Linear.weight` is `(out_features, in_features)`.
    Transposed,
}

impl Layout {
    /// The PyTorch shape of a pente tensor of shape `shape`.
    ///
    /// # Panics
    /// [`Layout::Transposed`] of a shape that is not 2-d.
    #[track_caller]
    pub fn torch_shape(self, shape: &[usize]) -> Vec<usize> {
        match self {
            Layout::Same => shape.to_vec(),
            Layout::Transposed => {
                assert!(shape.len() == 2, "Layout::Transposed: a matrix was expected, got shape {shape:?}");
                vec![shape[1], shape[0]]
            }
        }
    }

    /// A pente tensor in PyTorch's layout.
    ///
    /// # Panics
    /// [`Layout::Transposed`] of a tensor that is not 2-d.
    #[track_caller]
    pub fn to_torch<T: Float>(self, t: &Tensor<T>) -> Tensor<T> {
        match self {
            Layout::Same => t.clone(),
            Layout::Transposed => transpose(t),
        }
    }

    /// A PyTorch tensor in pente's layout (the inverse of [`Layout::to_torch`]).
    ///
    /// # Panics
    /// [`Layout::Transposed`] of a tensor that is not 2-d.
    #[track_caller]
    pub fn from_torch<T: Float>(self, t: &Tensor<T>) -> Tensor<T> {
        // Transposing is its own inverse.
        self.to_torch(t)
    }
}

/// The transpose of a matrix, element for element (no arithmetic: a round trip is exact).
#[track_caller]
fn transpose<T: Float>(t: &Tensor<T>) -> Tensor<T> {
    let shape = t.shape();
    assert!(shape.len() == 2, "Layout::Transposed: a matrix was expected, got shape {shape:?}");
    let (rows, cols) = (shape[0], shape[1]);
    let d = t.data();
    let out: Vec<T> = (0..cols).flat_map(|c| (0..rows).map(move |r| d[r * cols + c])).collect();
    Tensor::from_vec(out, &[cols, rows])
}

/// One state-dict entry: its PyTorch name, the pente parameter it holds and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key in the state dict, e.g. `"blocks.0.attn.qkv.weight"`.
    pub name: String,
    /// The parameter of the pente model.
    pub param: ParamId,
    /// How the two are laid out.
    pub layout: Layout,
}

/// The PyTorch state dict of a model: one [`Entry`] per parameter, in the order PyTorch's
/// `state_dict()` lists them when the model adds its layers in the PyTorch module's order. See
/// the [module docs](super).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateDictMap {
    entries: Vec<Entry>,
}

/// `prefix.name`, or `name` under the empty prefix (a module's own parameters).
fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

impl StateDictMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Adds one entry.
    ///
    /// # Panics
    /// If `name` or `param` is already in the map (two layers given the same prefix, or a
    /// parameter mapped twice).
    #[track_caller]
    pub fn param(&mut self, name: impl Into<String>, param: ParamId, layout: Layout) -> &mut Self {
        let name = name.into();
        for e in &self.entries {
            assert!(e.name != name, "StateDictMap: the name `{name}` is mapped twice");
            assert!(
                e.param != param,
                "StateDictMap: parameter {} is mapped as `{}` and as `{name}`",
                param.index(),
                e.name
            );
        }
        self.entries.push(Entry { name, param, layout });
        self
    }

    /// An `nn.Linear` at `prefix`: `weight` transposed to `(out_dim, in_dim)`, `bias`.
    #[track_caller]
    pub fn linear(&mut self, prefix: &str, layer: &Linear) -> &mut Self {
        self.param(join(prefix, "weight"), layer.weight, Layout::Transposed);
        if let Some(b) = layer.bias {
            self.param(join(prefix, "bias"), b, Layout::Same);
        }
        self
    }

    /// An `nn.Conv2d` at `prefix`: `weight (out_ch, in_ch, k, k)` and `bias`, as pente's.
    #[track_caller]
    pub fn conv2d(&mut self, prefix: &str, layer: &Conv2d) -> &mut Self {
        self.param(join(prefix, "weight"), layer.weight, Layout::Same);
        if let Some(b) = layer.bias {
            self.param(join(prefix, "bias"), b, Layout::Same);
        }
        self
    }

    /// An `nn.BatchNorm1d` or `nn.BatchNorm2d` at `prefix`: `weight` and `bias` (if affine),
    /// and the buffers `running_mean`, `running_var` and `num_batches_tracked` (a 0-d count,
    /// written in the store's float type where PyTorch keeps an `int64`; `load_state_dict`
    /// copies it across).
    #[track_caller]
    pub fn batch_norm(&mut self, prefix: &str, layer: &crate::BatchNorm) -> &mut Self {
        if let (Some(w), Some(b)) = (layer.weight, layer.bias) {
            self.param(join(prefix, "weight"), w, Layout::Same);
            self.param(join(prefix, "bias"), b, Layout::Same);
        }
        self.param(join(prefix, "running_mean"), layer.running_mean, Layout::Same);
        self.param(join(prefix, "running_var"), layer.running_var, Layout::Same);
        self.param(join(prefix, "num_batches_tracked"), layer.num_batches_tracked, Layout::Same)
    }

    /// An `nn.Embedding` at `prefix`: `weight (vocab_size, n_embd)`.
    #[track_caller]
    pub fn embedding(&mut self, prefix: &str, layer: &Embedding) -> &mut Self {
        self.param(join(prefix, "weight"), layer.weight, Layout::Same)
    }

    /// An `nn.LayerNorm` at `prefix`: `weight` and `bias` (an `nn.LayerNorm(bias=False)` for a
    /// pente norm without bias).
    #[track_caller]
    pub fn layer_norm(&mut self, prefix: &str, layer: &LayerNorm) -> &mut Self {
        self.param(join(prefix, "weight"), layer.weight, Layout::Same);
        if let Some(b) = layer.bias {
            self.param(join(prefix, "bias"), b, Layout::Same);
        }
        self
    }

    /// An `nn.Sequential(Linear, activation, Linear, activation, …, Linear)` at `prefix`: the
    /// `i`-th linear layer is the Sequential's item `2·i`.
    #[track_caller]
    pub fn sequential_mlp(&mut self, prefix: &str, mlp: &Mlp) -> &mut Self {
        for (i, layer) in mlp.layers.iter().enumerate() {
            self.linear(&join(prefix, &(2 * i).to_string()), layer);
        }
        self
    }

    /// Attention with a packed projection at `prefix`: `qkv = nn.Linear(C, 3C)` whose output
    /// holds queries, keys and values in that order (split with `chunk(3, dim=-1)`), and
    /// `out = nn.Linear(C, C)`: the `CausalSelfAttention` of `bench/reference/gpt_torch.py`.
    #[track_caller]
    pub fn causal_self_attention(&mut self, prefix: &str, attn: &CausalSelfAttention) -> &mut Self {
        self.linear(&join(prefix, "qkv"), &attn.qkv).linear(&join(prefix, "out"), &attn.proj)
    }

    /// `nn.MultiheadAttention(C, n_head, batch_first=True)` at `prefix`: `in_proj_weight (3C,
    /// C)` (queries, keys, values stacked in that order, as pente's `qkv`), `in_proj_bias`,
    /// `out_proj.weight`, `out_proj.bias`. (Give it `attn_mask` for the causal mask.)
    ///
    /// # Panics
    /// If the attention has no biases (PyTorch's `bias=False` has no `in_proj_bias`, and no
    /// `out_proj.bias`, which this map does not describe).
    #[track_caller]
    pub fn multihead_attention(&mut self, prefix: &str, attn: &CausalSelfAttention) -> &mut Self {
        let (Some(in_bias), Some(out_bias)) = (attn.qkv.bias, attn.proj.bias) else {
            panic!("StateDictMap::multihead_attention: `{prefix}` has no biases");
        };
        self.param(join(prefix, "in_proj_weight"), attn.qkv.weight, Layout::Transposed)
            .param(join(prefix, "in_proj_bias"), in_bias, Layout::Same)
            .param(join(prefix, "out_proj.weight"), attn.proj.weight, Layout::Transposed)
            .param(join(prefix, "out_proj.bias"), out_bias, Layout::Same)
    }

    /// A pre-LayerNorm block at `prefix`, as the `Block` of `bench/reference/gpt_torch.py`:
    /// `norm1`, `attn` (see [`StateDictMap::causal_self_attention`]), `norm2`, and
    /// `mlp = nn.Sequential(nn.Linear, nn.GELU, nn.Linear)`.
    #[track_caller]
    pub fn transformer_block(&mut self, prefix: &str, block: &TransformerBlock) -> &mut Self {
        self.layer_norm(&join(prefix, "norm1"), &block.ln_1)
            .causal_self_attention(&join(prefix, "attn"), &block.attn)
            .layer_norm(&join(prefix, "norm2"), &block.ln_2)
            .linear(&join(prefix, "mlp.0"), &block.fc)
            .linear(&join(prefix, "mlp.2"), &block.proj)
    }

    /// An `nn.Conv1d` at `prefix`: `weight (out_ch, in_ch, k)` and `bias`, as pente's.
    #[track_caller]
    pub fn conv1d(&mut self, prefix: &str, layer: &Conv1d) -> &mut Self {
        self.param(join(prefix, "weight"), layer.weight, Layout::Same);
        if let Some(b) = layer.bias {
            self.param(join(prefix, "bias"), b, Layout::Same);
        }
        self
    }

    /// An `nn.ConvTranspose2d` at `prefix`: `weight (in_ch, out_ch, k, k)` and `bias`, as
    /// pente's.
    #[track_caller]
    pub fn conv_transpose2d(&mut self, prefix: &str, layer: &ConvTranspose2d) -> &mut Self {
        self.param(join(prefix, "weight"), layer.weight, Layout::Same);
        if let Some(b) = layer.bias {
            self.param(join(prefix, "bias"), b, Layout::Same);
        }
        self
    }

    /// An `nn.RNNCell`, `nn.GRUCell` or `nn.LSTMCell` at `prefix` (pass `cell.params()`):
    /// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, in PyTorch's layout as pente's.
    #[track_caller]
    pub fn recurrent_cell(&mut self, prefix: &str, cell: &CellParams) -> &mut Self {
        self.recurrent_weights(prefix, cell, "")
    }

    /// An `nn.RNN`, `nn.GRU` or `nn.LSTM` at `prefix` (pass `layer.stack()`): `weight_ih_l0`,
    /// `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, then layer 1's, in PyTorch's layout as pente's.
    #[track_caller]
    pub fn recurrent(&mut self, prefix: &str, stack: &Stack) -> &mut Self {
        for (l, cell) in stack.layers.iter().enumerate() {
            self.recurrent_weights(prefix, cell, &format!("_l{l}"));
        }
        self
    }

    #[track_caller]
    fn recurrent_weights(&mut self, prefix: &str, cell: &CellParams, suffix: &str) -> &mut Self {
        self.param(join(prefix, &format!("weight_ih{suffix}")), cell.weight_ih, Layout::Same);
        self.param(join(prefix, &format!("weight_hh{suffix}")), cell.weight_hh, Layout::Same);
        if let (Some(b_ih), Some(b_hh)) = (cell.bias_ih, cell.bias_hh) {
            self.param(join(prefix, &format!("bias_ih{suffix}")), b_ih, Layout::Same);
            self.param(join(prefix, &format!("bias_hh{suffix}")), b_hh, Layout::Same);
        }
        self
    }

    /// An `nn.RMSNorm` at `prefix`: `weight` (none for `elementwise_affine=False`).
    #[track_caller]
    pub fn rms_norm(&mut self, prefix: &str, layer: &RmsNorm) -> &mut Self {
        if let Some(w) = layer.weight {
            self.param(join(prefix, "weight"), w, Layout::Same);
        }
        self
    }

    /// An `nn.GroupNorm` at `prefix`: `weight` and `bias` (none for `affine=False`).
    #[track_caller]
    pub fn group_norm(&mut self, prefix: &str, layer: &GroupNorm) -> &mut Self {
        for (name, id) in [("weight", layer.weight), ("bias", layer.bias)] {
            if let Some(id) = id {
                self.param(join(prefix, name), id, Layout::Same);
            }
        }
        self
    }
}
