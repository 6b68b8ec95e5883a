//! MNIST digits: an MLP and a small CNN that read 28×28 grey images and tell which of the ten
//! digits each shows.
//!
//! One concern per file: [`idx`] reads the IDX files without trusting them, [`data`] holds the
//! images in memory with the validation split and batches, [`augment`] rotates and moves
//! training images, [`model`] builds the networks and saves them with their configuration
//! ([`fast`]: the fast preset's small CNN),
//! [`train`] trains and evaluates (on one tape, in shards, or across processes: [`parallel`]),
//! [`image`] turns a user's PNG into an MNIST-like input, and [`figures`] draws the training
//! curves, the confusion matrix, misclassified digits and the first layer's weights.
//!
//! ```no_run
//! use models::digits::{data::Mnist, model::{Arch, DigitsConfig, DigitsModel}, train};
//!
//! let config = DigitsConfig::for_arch(Arch::Mlp);
//! let mnist = Mnist::load(&config.data_dir, true)?;
//! let mut model = DigitsModel::new(&config)?;
//! train::train(&mut model, &mnist, None, &indicatif::ProgressBar::hidden(), &mut |_, _, r| {
//!     println!("{}", train::epoch_line(r));
//!     Ok(())
//! })?;
//! assert!(train::evaluate(&model, &mnist.test).accuracy >= 0.98);
//! # Ok::<(), models::Error>(())
//! ```

pub mod augment;
#[cfg(feature = "cli")]
pub mod cli;
pub mod data;
pub mod fast;
pub mod figures;
pub mod idx;
pub mod image;
pub mod model;
pub mod parallel;
pub mod train;

pub use data::Mnist;
pub use idx::IdxError;
pub use image::ImageError;
pub use model::{Arch, DigitsConfig, DigitsModel};
pub use train::{evaluate, Evaluation, History};
