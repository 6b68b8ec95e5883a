//! PyTorch state dicts, both ways: a pente model's parameters written under the names and in the
//! layouts of the equivalent PyTorch module, so that
//! `module.load_state_dict(safetensors.torch.load_file(f), strict=True)` takes them, and a state
//! dict saved by PyTorch (`safetensors.torch.save_file(module.state_dict(), f)`) loaded back.
//!
//! A [`StateDictMap`] says, for every parameter of a model, which state-dict entry it is and in
//! which [`Layout`]; it is built with one method per layer, each giving that layer's PyTorch
//! names and layouts:
//!
//! | pente layer | PyTorch module | entries (under the layer's prefix) |
//! | --- | --- | --- |
//! | [`Linear`](crate::Linear) | `nn.Linear` | `weight` `(out, in)`, transposed from pente's `(in, out)`; `bias` |
//! | [`Conv2d`](crate::Conv2d) | `nn.Conv2d` | `weight` `(out_ch, in_ch, k, k)`, `bias`: the same layout |
//! | [`Embedding`](crate::Embedding) | `nn.Embedding` | `weight` `(num, dim)` |
//! | [`LayerNorm`](crate::LayerNorm) | `nn.LayerNorm` | `weight`, `bias` |
//! | [`RmsNorm`](crate::RmsNorm) | `nn.RMSNorm` | `weight` |
//! | [`GroupNorm`](crate::GroupNorm) | `nn.GroupNorm` | `weight`, `bias` `(num_channels)` |
//! | [`Mlp`](crate::Mlp) | `nn.Sequential(Linear, act, Linear, …)` | `0.*`, `2.*`, `4.*`, … |
//! | [`CausalSelfAttention`](crate::CausalSelfAttention) | packed `qkv = nn.Linear(C, 3C)` and `out = nn.Linear(C, C)`, queries, keys, values in that order along `qkv`'s output (the reference GPT's, `bench/reference/gpt_torch.py`) | `qkv.*`, `out.*` |
//! | the same, as `nn.MultiheadAttention` | `nn.MultiheadAttention(C, n_head, batch_first=True)` | `in_proj_weight` `(3C, C)`, `in_proj_bias`, `out_proj.*` |
//! | [`TransformerBlock`](crate::TransformerBlock) | the reference GPT's `Block` | `norm1.*`, `attn.qkv.*`, `attn.out.*`, `norm2.*`, `mlp.0.*`, `mlp.2.*` |
//!
//! A model composes these ([`StateDictMap::linear`] and the others take the prefix of the
//! PyTorch submodule), then [`StateDictMap::save`] writes the state dict and
//! [`StateDictMap::load`] reads one. Loading checks everything before it changes anything, and
//! reports every problem at once in one [`Error::StateDict`](crate::Error::StateDict): each
//! missing, unexpected or mis-shaped entry, each entry of another dtype, each entry holding
//! NaN or ±∞.
//!
//! **dtypes.** A file's `F32` tensors load into `f32` and (exactly widened) `f64` models, `F64`
//! tensors into `f64` models. `F64` into an `f32` model is refused (rounding every weight would
//! change the model's outputs without a word): convert in PyTorch with `module.float()` first.
//! Other dtypes (`F16`, `BF16`, integers) are refused by name.
//!
//! ```
//! use nn::torch::StateDictMap;
//! use nn::{Linear, ParamStore};
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("fc.safetensors");
//!
//! let mut store = ParamStore::<f32>::with_seed(0);
//! let fc = Linear::new(store.scope("fc"), 3, 2); // pente weight (3, 2)
//! let mut map = StateDictMap::new();
//! map.linear("fc", &fc);
//! map.save(&store, &path, &Default::default())?; // PyTorch's `fc.weight` is (2, 3)
//! assert_eq!(map.state_dict(&store)["fc.weight"].shape(), &[2, 3]);
//!
//! let mut other = ParamStore::<f32>::with_seed(1);
//! let fc2 = Linear::new(other.scope("fc"), 3, 2);
//! let mut map2 = StateDictMap::new();
//! map2.linear("fc", &fc2);
//! map2.load(&mut other, &path)?;
//! assert_eq!(other.get(fc2.weight), store.get(fc.weight));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod io;
mod map;

pub use map::{Entry, Layout, StateDictMap};
