//! MNIST in memory: the four IDX files of a directory read into [`Mnist`], the training set cut
//! into training and validation parts ([`Mnist::split`]), pixels as `f32`, and batches with
//! optional augmentation by small shifts.
//!
//! Pixels are scaled to `[0, 1]` (`byte / 255`), then optionally standardized by the *training
//! part's* mean and standard deviation ([`Normalization`]); the same two numbers are saved with a
//! model so that prediction sees inputs prepared the same way. The validation part is carved
//! from the training set by a seeded permutation, for model selection; the test set is kept for
//! the final figures.

use std::path::{Path, PathBuf};

use autograd::{Rng, SeedableRng, Tensor};
use rand::RngCore;

use super::idx::{read_images, read_labels, IdxError, IdxErrorKind};

/// Side of an MNIST image, in pixels.
pub const SIDE: usize = 28;
/// Pixels of an MNIST image.
pub const PIXELS: usize = SIDE * SIDE;
/// Number of classes.
pub const CLASSES: usize = 10;

/// The file names of the four MNIST files in a data directory: training images, training
/// labels, test images, test labels.
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// Images and their labels, pixels as bytes (0 = background, 255 = ink).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digits {
    /// `len() · 784` bytes, image after image, row-major.
    pub pixels: Vec<u8>,
    /// One label (0-9) per image.
    pub labels: Vec<usize>,
}

impl Digits {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i`'s bytes.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * PIXELS..(i + 1) * PIXELS]
    }

    /// The images `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Digits {
        let mut pixels = Vec::with_capacity(idx.len() * PIXELS);
        for &i in idx {
            pixels.extend_from_slice(self.image(i));
        }
        Digits { pixels, labels: idx.iter().map(|&i| self.labels[i]).collect() }
    }
}

/// The MNIST training and test sets, with the SHA-256 of each file's uncompressed content.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// 60,000 training images.
    pub train: Digits,
    /// 10,000 test images.
    pub test: Digits,
    /// `(file, SHA-256 hex)` of the four files read, in the order of [`FILES`].
    pub sha256: Vec<(PathBuf, String)>,
}

/// The directory of MNIST relative to the repository root.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("data/mnist")
}

fn load_split(images: &Path, labels: &Path, verify: bool) -> Result<(Digits, [String; 2]), IdxError> {
    let img = read_images(images, verify)?;
    if (img.rows, img.cols) != (SIDE, SIDE) {
        let kind = IdxErrorKind::EmptyImages { rows: img.rows as u32, cols: img.cols as u32 };
        return Err(IdxError { path: images.to_path_buf(), kind });
    }
    let lab = read_labels(labels, verify)?;
    if lab.labels.len() != img.count {
        let kind = IdxErrorKind::CountMismatch { images: img.count, labels: lab.labels.len() };
        return Err(IdxError { path: labels.to_path_buf(), kind });
    }
    let digits = Digits { pixels: img.pixels, labels: lab.labels.iter().map(|&l| usize::from(l)).collect() };
    Ok((digits, [img.sha256, lab.sha256]))
}

impl Mnist {
    /// Reads the four files of [`FILES`] from `dir` (28×28 images; the sizes must agree). With
    /// `verify`, each file's SHA-256 must be the published one ([`super::idx::MNIST_SHA256`]).
    ///
    /// # Errors
    /// The first [`IdxError`] met, naming its file (a 28×28 mismatch is reported as
    /// [`IdxErrorKind::EmptyImages`] with the sides found).
    pub fn load(dir: &Path, verify: bool) -> Result<Mnist, IdxError> {
        let path = |i: usize| dir.join(FILES[i]);
        let (train, [s0, s1]) = load_split(&path(0), &path(1), verify)?;
        let (test, [s2, s3]) = load_split(&path(2), &path(3), verify)?;
        let sha256 = vec![(path(0), s0), (path(1), s1), (path(2), s2), (path(3), s3)];
        Ok(Mnist { train, test, sha256 })
    }

    /// Cuts the training set into a training part and a validation part of `validation` images
    /// (chosen by a permutation seeded by `seed`; 0 keeps the whole training set).
    pub fn split(&self, validation: usize, seed: u64) -> (Digits, Digits) {
        let n = self.train.len();
        let validation = validation.min(n);
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = Rng::seed_from_u64(seed ^ 0x5EED_0D16_1750);
        for i in (1..n).rev() {
            let j = ((u128::from(rng.next_u64()) * (i as u128 + 1)) >> 64) as usize;
            order.swap(i, j);
        }
        let (val, train) = order.split_at(validation);
        let (mut train, mut val) = (train.to_vec(), val.to_vec());
        train.sort_unstable();
        val.sort_unstable();
        (self.train.select(&train), self.train.select(&val))
    }
}

/// How bytes become network inputs: `(byte / 255 − mean) / std`. The identity scaling
/// (`mean = 0`, `std = 1`) keeps pixels in `[0, 1]`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    /// Subtracted from the scaled pixel.
    pub mean: f32,
    /// The scaled pixel is divided by it.
    pub std: f32,
}

impl Default for Normalization {
    fn default() -> Self {
        Normalization { mean: 0.0, std: 1.0 }
    }
}

impl Normalization {
    /// The mean and standard deviation of the scaled pixels of `digits` (MNIST's training set:
    /// about 0.1307 and 0.3081).
    pub fn fit(digits: &Digits) -> Self {
        let n = digits.pixels.len().max(1) as f64;
        let (mut sum, mut sq) = (0.0f64, 0.0f64);
        for &b in &digits.pixels {
            let v = f64::from(b) / 255.0;
            sum += v;
            sq += v * v;
        }
        let mean = sum / n;
        let std = (sq / n - mean * mean).max(0.0).sqrt();
        Normalization { mean: mean as f32, std: if std > 0.0 { std as f32 } else { 1.0 } }
    }

    /// Converts bytes to inputs, appending them to `out`.
    pub fn extend(&self, bytes: &[u8], out: &mut Vec<f32>) {
        let scale = 1.0 / (255.0 * self.std);
        let shift = self.mean / self.std;
        out.extend(bytes.iter().map(|&b| f32::from(b) * scale - shift));
    }

    /// Converts one grey value in `[0, 1]` to an input.
    pub fn apply(&self, v: f32) -> f32 {
        (v - self.mean) / self.std
    }
}

/// The inputs of the images `idx` of `digits` as a `(idx.len(), 784)` tensor; with `shift > 0`,
/// each image moved by a random whole number of pixels in `[−shift, shift]` on each axis (the
/// uncovered border is background), drawn from `rng`.
pub fn batch(digits: &Digits, idx: &[usize], norm: &Normalization, shift: usize, rng: &mut Rng) -> Tensor<f32> {
    let mut data = Vec::with_capacity(idx.len() * PIXELS);
    if shift == 0 {
        for &i in idx {
            norm.extend(digits.image(i), &mut data);
        }
    } else {
        let span = 2 * shift as u64 + 1;
        let mut moved = [0u8; PIXELS];
        for &i in idx {
            let dx = (rng.next_u64() % span) as isize - shift as isize;
            let dy = (rng.next_u64() % span) as isize - shift as isize;
            shift_image(digits.image(i), dx, dy, &mut moved);
            norm.extend(&moved, &mut data);
        }
    }
    Tensor::from_vec(data, &[idx.len(), PIXELS])
}

/// Moves a 28×28 image `dx` pixels right and `dy` down into `out`, filling with background.
fn shift_image(src: &[u8], dx: isize, dy: isize, out: &mut [u8; PIXELS]) {
    out.fill(0);
    let side = SIDE as isize;
    for y in 0..side {
        let sy = y - dy;
        if !(0..side).contains(&sy) {
            continue;
        }
        let (x0, x1) = (dx.max(0), (side + dx).min(side));
        if x0 >= x1 {
            continue;
        }
        let dst = (y * side + x0) as usize..(y * side + x1) as usize;
        let s = (sy * side + x0 - dx) as usize;
        out[dst.clone()].copy_from_slice(&src[s..s + dst.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(n: usize) -> Digits {
        Digits { pixels: (0..n * PIXELS).map(|i| (i % 251) as u8).collect(), labels: (0..n).map(|i| i % 10).collect() }
    }

    #[test]
    fn split_is_a_seeded_partition() {
        let m = Mnist { train: digits(50), test: digits(5), sha256: vec![] };
        let (t, v) = m.split(10, 3);
        assert_eq!((t.len(), v.len()), (40, 10));
        assert_eq!(m.split(10, 3).1, v);
        assert_ne!(m.split(10, 4).1, v);
        let (all, none) = m.split(0, 3);
        assert_eq!((all, none.len()), (m.train.clone(), 0));
    }

    #[test]
    fn normalization_standardizes() {
        let d = digits(20);
        let n = Normalization::fit(&d);
        let mut out = Vec::new();
        n.extend(&d.pixels, &mut out);
        let mean = out.iter().map(|&v| f64::from(v)).sum::<f64>() / out.len() as f64;
        let var = out.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / out.len() as f64;
        assert!(mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3, "{mean} {var}");
        let mut scaled = Vec::new();
        Normalization::default().extend(&[0, 255], &mut scaled);
        assert_eq!(scaled, vec![0.0, 1.0]);
    }

    #[test]
    fn shift_moves_pixels_and_fills_background() {
        let mut src = [0u8; PIXELS];
        src[5 * SIDE + 7] = 200;
        let mut out = [0u8; PIXELS];
        shift_image(&src, 2, -1, &mut out);
        assert_eq!(out[4 * SIDE + 9], 200);
        assert_eq!(out.iter().filter(|&&v| v != 0).count(), 1);
        shift_image(&src, -8, 0, &mut out);
        assert!(out.iter().all(|&v| v == 0)); // moved out of the frame
        let mut rng = Rng::seed_from_u64(0);
        let d = Digits { pixels: src.to_vec(), labels: vec![1] };
        let b = batch(&d, &[0, 0, 0], &Normalization::default(), 2, &mut rng);
        assert_eq!(b.shape(), &[3, PIXELS]);
        assert!(b.data().chunks(PIXELS).all(|im| im.iter().filter(|&&v| v > 0.0).count() == 1));
    }
}
