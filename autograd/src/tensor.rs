//! [`Tensor`]: an n-dimensional, row-major, contiguous array whose data is shared behind an
//! `Arc`, with its constructors, element-wise kernels and `Display`.

use std::fmt;
use std::sync::Arc;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::kernels::simd;
use crate::kernels::zip::zip4_into;
use crate::recycle::{self, Buffer};
use crate::shape::{self, Shape};
use crate::Float;

/// Element count above which element-wise kernels split their work across threads. Below it,
/// the cost of waking a second core exceeds the work (`cargo bench --bench elementwise` times the ops at 1e3 to 1e6 elements).
pub const PAR_THRESHOLD: usize = 1 << 15;

/// Elements per parallel task of an element-wise kernel: large enough to amortize a task, small
/// enough to balance two cores.
pub(crate) const ELEMENTWISE_CHUNK: usize = 1 << 13;

/// `[f(a₀, b₀), f(a₁, b₁), …]` as a new vector (`b` is `a` again for a one-input map), computed
/// over chunks in parallel from [`PAR_THRESHOLD`] elements: [`zip3_into`] with `b` passed as its
/// third operand too, and ignored there.
///
/// # Panics
/// If `a` and `b` differ in length.
fn zip_into<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync + Send) -> Vec<T> {
    zip3_into(a, b, b, |x, y, _| f(x, y))
}

/// `[f(a₀, b₀, c₀), f(a₁, b₁, c₁), …]` as a new vector: [`zip4_into`] with `c` passed as its
/// fourth operand too, and ignored there.
///
/// # Panics
/// If `a`, `b` and `c` differ in length.
fn zip3_into<T: Float>(a: &[T], b: &[T], c: &[T], f: impl Fn(T, T, T) -> T + Sync + Send) -> Vec<T> {
    zip4_into(a, b, c, c, |x, y, z, _| f(x, y, z))
}

simd::kernel! {
    /// `f(a, b)` over `shape`, appended to `out`, reading `a` and `b` through their broadcast
    /// strides: the outer dimensions walked by an odometer, each innermost run a plain loop.
    fn broadcast_zip[T: Float, F: Fn(T, T) -> T](out: &mut Vec<T>, ab: (&[T], &[T]), shape: &[usize], strides: (&[usize], &[usize]), f: &F) where [] {
        let ((a, b), (sa, sb)) = (ab, strides);
        let rank = shape.len();
        let (inner_a, inner_b) = (sa[rank - 1], sb[rank - 1]);
        let mut offsets_a = Vec::new();
        shape::for_each_run(shape, sa, |o, _, _| offsets_a.push(o));
        let mut k = 0;
        shape::for_each_run(shape, sb, |ob, _, n| {
            let oa = offsets_a[k];
            k += 1;
            match (inner_a, inner_b) {
                (1, 1) => out.extend(a[oa..oa + n].iter().zip(&b[ob..ob + n]).map(|(&x, &y)| f(x, y))),
                (1, 0) => {
                    let y = b[ob];
                    out.extend(a[oa..oa + n].iter().map(|&x| f(x, y)))
                }
                (0, 1) => {
                    let x = a[oa];
                    out.extend(b[ob..ob + n].iter().map(|&y| f(x, y)))
                }
                _ => out.extend((0..n).map(|i| f(a[oa + i * inner_a], b[ob + i * inner_b]))),
            }
        });
    }
}

/// Where a tensor's elements live. A single element is stored inline, so scalars (the nodes of
/// a scalar graph) cost no heap allocation at all.
#[derive(Clone)]
enum Storage<T> {
    One(T),
    /// Given back to the [`recycle`](crate::recycle) pool when the last clone drops.
    Shared(Arc<Buffer<T>>),
}

/// An n-dimensional array of `T` (`f32` or `f64`), row-major and contiguous.
///
/// Cloning is cheap: the data is shared behind an `Arc`, and [`Tensor::data_mut`] copies it only
/// when another clone still holds it. A 0-d tensor is a scalar.
///
/// ```
/// use autograd::Tensor;
/// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2]);
/// assert_eq!(t.shape(), &[2, 2]);
/// assert_eq!(t.at(&[1, 0]), 3.0);
/// assert_eq!(format!("{t}"), "[[1, 2],\n [3, 4]]");
/// ```
pub struct Tensor<T> {
    shape: Shape,
    data: Storage<T>,
}

impl<T: Clone> Clone for Tensor<T> {
    fn clone(&self) -> Self {
        // NOTE: `Shape::from_slice` copies the dims with one memcpy; SmallVec's `clone` goes
        // element by element through `extend`, which showed up in scalar-graph profiles.
        Tensor { shape: Shape::from_slice(&self.shape), data: self.data.clone() }
    }
}

impl<T: Float> Tensor<T> {
    /// A tensor of the given shape holding `data` in row-major order.
    ///
    /// # Panics
    /// If `data.len()` is not the product of `shape`.
    #[track_caller]
    pub fn from_vec(data: Vec<T>, shape: &[usize]) -> Self {
        assert_eq!(
            data.len(),
            shape::numel(shape),
            "Tensor::from_vec: {} elements do not fill shape {:?}",
            data.len(),
            shape
        );
        Self::from_parts(Shape::from_slice(shape), data)
    }

    /// Builds from a shape and matching data; the one place storage is chosen.
    pub(crate) fn from_parts(shape: Shape, data: Vec<T>) -> Self {
        debug_assert_eq!(data.len(), shape::numel(&shape));
        let data = if data.len() == 1 { Storage::One(data[0]) } else { Storage::Shared(Arc::new(Buffer::new(data))) };
        Tensor { shape, data }
    }

    /// A 0-d tensor holding one value. Allocates nothing.
    pub fn scalar(value: T) -> Self {
        Tensor { shape: Shape::new(), data: Storage::One(value) }
    }

    /// A tensor of the given shape with every element equal to `value`.
    pub fn full(shape: &[usize], value: T) -> Self {
        if shape.is_empty() {
            return Self::scalar(value);
        }
        Self::from_parts(Shape::from_slice(shape), recycle::filled(shape::numel(shape), value))
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, T::ZERO)
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize]) -> Self {
        Self::full(shape, T::ONE)
    }

    /// The 1-d tensor `[start, start + step, …]` of values below `end` (above it when `step` is
    /// negative), as `torch.arange(start, end, step)`.
    ///
    /// # Panics
    /// If `step` is zero or not finite.
    pub fn arange(start: f64, end: f64, step: f64) -> Self {
        assert!(step != 0.0 && step.is_finite(), "Tensor::arange: step must be finite and non-zero, got {step}");
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        let data: Vec<T> = (0..n).map(|i| T::from_f64(start + i as f64 * step)).collect();
        Self::from_vec(data, &[n])
    }

    /// Independent samples from the uniform distribution on `[low, high)`.
    pub fn rand_uniform(shape: &[usize], low: f64, high: f64, rng: &mut impl Rng) -> Self {
        let n = shape::numel(shape);
        let data = (0..n).map(|_| T::from_f64(low + (high - low) * rng.gen::<f64>())).collect();
        Self::from_parts(Shape::from_slice(shape), data)
    }

    /// Independent samples from the normal distribution `N(mean, std²)`.
    pub fn rand_normal(shape: &[usize], mean: f64, std: f64, rng: &mut impl Rng) -> Self {
        let n = shape::numel(shape);
        let data = (0..n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(rng);
                T::from_f64(mean + std * z)
            })
            .collect();
        Self::from_parts(Shape::from_slice(shape), data)
    }

    /// The dimensions, outermost first; empty for a scalar.
    #[inline]
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of dimensions.
    #[inline]
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// The number of elements.
    #[inline]
    pub fn numel(&self) -> usize {
        match &self.data {
            Storage::One(_) => 1,
            Storage::Shared(v) => v.len(),
        }
    }

    /// The elements in row-major order.
    #[inline]
    pub fn data(&self) -> &[T] {
        match &self.data {
            Storage::One(x) => std::slice::from_ref(x),
            Storage::Shared(v) => v,
        }
    }

    /// Mutable access to the elements; copies them first if another clone shares them.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [T] {
        match &mut self.data {
            Storage::One(x) => std::slice::from_mut(x),
            Storage::Shared(v) => Arc::make_mut(v).as_mut_slice(),
        }
    }

    /// `self + other` for tensors of the same shape, written into `self`'s buffer when it holds
    /// its data alone (else into a new one), split across threads from [`PAR_THRESHOLD`]
    /// elements. For accumulating gradients: a copy-on-write `data_mut` followed by an add would
    /// read the shared data twice and write twice.
    ///
    /// # Panics
    /// If the shapes differ.
    #[track_caller]
    pub(crate) fn sum_with(mut self, other: &Self) -> Self {
        assert!(
            shape::same(&self.shape, &other.shape),
            "sum_with: shapes {:?} and {:?} differ",
            self.shape(),
            other.shape()
        );
        if let Storage::Shared(v) = &mut self.data {
            if let Some(acc) = Arc::get_mut(v) {
                let add = |a: &mut [T], b: &[T]| simd::vectorized(|| a.iter_mut().zip(b).for_each(|(a, &b)| *a += b));
                if acc.len() >= PAR_THRESHOLD {
                    acc.par_chunks_mut(ELEMENTWISE_CHUNK)
                        .zip(other.data().par_chunks(ELEMENTWISE_CHUNK))
                        .for_each(|(a, b)| add(a, b));
                } else {
                    add(acc, other.data());
                }
                return self;
            }
        }
        self.zip_map(other, "add", |a, b| a + b)
    }

    /// The elements as an owned `Vec`.
    pub fn to_vec(&self) -> Vec<T> {
        self.data().to_vec()
    }

    /// Takes the elements out, without a copy when this is the only reference.
    pub fn into_vec(self) -> Vec<T> {
        match self.data {
            Storage::One(x) => vec![x],
            Storage::Shared(v) => Arc::try_unwrap(v).map_or_else(|v| v.to_vec(), Buffer::into_vec),
        }
    }

    /// The value of a one-element tensor.
    ///
    /// # Panics
    /// If the tensor has more or fewer than one element.
    #[track_caller]
    pub fn item(&self) -> T {
        assert_eq!(self.numel(), 1, "Tensor::item: tensor of shape {:?} is not one element", self.shape());
        self.data()[0]
    }

    /// The element at a multi-index.
    ///
    /// # Panics
    /// If the index has the wrong rank or is out of bounds.
    #[track_caller]
    pub fn at(&self, index: &[usize]) -> T {
        assert_eq!(index.len(), self.rank(), "Tensor::at: index {index:?} for shape {:?}", self.shape());
        let mut flat = 0;
        for (d, (&i, &n)) in index.iter().zip(self.shape.iter()).enumerate() {
            assert!(i < n, "Tensor::at: index {index:?} out of bounds in dim {d} for shape {:?}", self.shape());
            flat = flat * n + i;
        }
        self.data()[flat]
    }

    /// The same data under another shape with the same number of elements. Shares the data.
    ///
    /// # Panics
    /// If the element counts differ.
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Self {
        assert_eq!(
            shape::numel(shape),
            self.numel(),
            "Tensor::reshape: cannot view shape {:?} as {:?}",
            self.shape(),
            shape
        );
        Tensor { shape: Shape::from_slice(shape), data: self.data.clone() }
    }

    /// Applies `f` to every element, in parallel above [`PAR_THRESHOLD`] elements.
    #[inline]
    pub fn map(&self, f: impl Fn(T) -> T + Sync + Send) -> Self {
        if let Storage::One(x) = self.data {
            return Tensor { shape: Shape::from_slice(&self.shape), data: Storage::One(f(x)) };
        }
        self.map_many(f)
    }

    fn map_many(&self, f: impl Fn(T) -> T + Sync + Send) -> Self {
        let src = self.data();
        let out = zip_into(src, src, |x, _| f(x));
        Self::from_parts(Shape::from_slice(&self.shape), out)
    }

    /// `[f(a₀, b₀, c₀), …]` over three tensors of the same shape (`self` is `a`), for fused
    /// kernels that read two saved values and a gradient.
    ///
    /// # Panics
    /// If the shapes differ; the message names `op`.
    #[track_caller]
    pub fn zip3_map(&self, b: &Self, c: &Self, op: &str, f: impl Fn(T, T, T) -> T + Sync + Send) -> Self {
        if !shape::same(&self.shape, &b.shape) || !shape::same(&self.shape, &c.shape) {
            crate::tape::shape_panic(
                op,
                &format!("shapes {:?}, {:?} and {:?} differ", self.shape(), b.shape(), c.shape()),
            );
        }
        Self::from_parts(Shape::from_slice(&self.shape), zip3_into(self.data(), b.data(), c.data(), f))
    }

    /// `[f(a₀, b₀, c₀, d₀), …]` over four tensors of the same shape (`self` is `a`), for the
    /// tensor pass of a [derived](crate::derivative) derivative.
    ///
    /// # Panics
    /// If the shapes differ; the message names `op`.
    #[track_caller]
    pub(crate) fn zip4_map(
        &self,
        b: &Self,
        c: &Self,
        d: &Self,
        op: &str,
        f: impl Fn(T, T, T, T) -> T + Sync + Send,
    ) -> Self {
        if [b, c, d].iter().any(|t| !shape::same(&self.shape, &t.shape)) {
            crate::tape::shape_panic(
                op,
                &format!("shapes {:?}, {:?}, {:?} and {:?} differ", self.shape(), b.shape(), c.shape(), d.shape()),
            );
        }
        Self::from_parts(Shape::from_slice(&self.shape), zip4_into(self.data(), b.data(), c.data(), d.data(), f))
    }

    /// Combines two tensors element by element after broadcasting them to a common shape.
    ///
    /// # Panics
    /// If the shapes do not broadcast; the message names `op`.
    #[track_caller]
    #[inline]
    pub fn zip_map(&self, other: &Self, op: &str, f: impl Fn(T, T) -> T + Sync + Send) -> Self {
        if let (Storage::One(x), Storage::One(y)) = (&self.data, &other.data) {
            if shape::same(&self.shape, &other.shape) {
                return Tensor { shape: Shape::from_slice(&self.shape), data: Storage::One(f(*x, *y)) };
            }
        }
        self.zip_map_many(other, op, f)
    }

    #[track_caller]
    fn zip_map_many(&self, other: &Self, op: &str, f: impl Fn(T, T) -> T + Sync + Send) -> Self {
        let (a, b) = (self.data(), other.data());
        if shape::same(&self.shape, &other.shape) {
            let out = zip_into(a, b, f);
            return Self::from_parts(Shape::from_slice(&self.shape), out);
        }
        let out_shape = shape::broadcast_shapes(&self.shape, &other.shape).unwrap_or_else(|| {
            crate::tape::shape_panic(op, &format!("shapes {:?} and {:?} do not broadcast", self.shape(), other.shape()))
        });
        if b.len() == 1 {
            let y = b[0];
            return Self::from_parts(out_shape, zip_into(a, a, |x, _| f(x, y)));
        }
        if a.len() == 1 {
            let x = a[0];
            return Self::from_parts(out_shape, zip_into(b, b, |y, _| f(x, y)));
        }
        let sa = shape::broadcast_strides(&self.shape, &out_shape);
        let sb = shape::broadcast_strides(&other.shape, &out_shape);
        let mut out = recycle::take(shape::numel(&out_shape));
        broadcast_zip(&mut out, (a, b), &out_shape, (&sa, &sb), &f);
        Self::from_parts(out_shape, out)
    }

    /// This tensor's elements repeated to fill a shape it broadcasts to.
    ///
    /// # Panics
    /// If `self` does not broadcast to `shape`.
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Self {
        if shape::same(self.shape(), shape) {
            return self.clone();
        }
        if !shape::broadcasts_to(self.shape(), shape) {
            crate::tape::shape_panic(
                "broadcast_to",
                &format!("shape {:?} does not broadcast to {:?}", self.shape(), shape),
            );
        }
        let src = self.data();
        if src.len() == 1 {
            return Self::full(shape, src[0]);
        }
        let strides = shape::broadcast_strides(self.shape(), shape);
        let mut out = recycle::take(shape::numel(shape));
        shape::for_each_run(shape, &strides, |o, s, n| {
            if s == 1 {
                out.extend_from_slice(&src[o..o + n]);
            } else {
                out.extend((0..n).map(|i| src[o + i * s]));
            }
        });
        Self::from_parts(Shape::from_slice(shape), out)
    }

    /// Whether every element is finite (no NaN, no ±∞).
    pub fn all_finite(&self) -> bool {
        self.data().iter().all(|x| x.is_finite())
    }

    /// The Euclidean (Frobenius) norm of all elements, accumulated in `f64`.
    pub fn norm(&self) -> f64 {
        self.data().iter().map(|x| x.to_f64() * x.to_f64()).sum::<f64>().sqrt()
    }

    /// Converts every element to another float type.
    pub fn cast<U: Float>(&self) -> Tensor<U> {
        Tensor::from_parts(
            Shape::from_slice(&self.shape),
            self.data().iter().map(|x| U::from_f64(x.to_f64())).collect(),
        )
    }
}

impl<T: Float> From<T> for Tensor<T> {
    fn from(value: T) -> Self {
        Tensor::scalar(value)
    }
}

impl<T: Float> From<Vec<T>> for Tensor<T> {
    /// A 1-d tensor.
    fn from(data: Vec<T>) -> Self {
        let n = data.len();
        Tensor::from_vec(data, &[n])
    }
}

impl<T: Float, const N: usize> From<[T; N]> for Tensor<T> {
    /// A 1-d tensor.
    fn from(data: [T; N]) -> Self {
        Tensor::from_vec(data.to_vec(), &[N])
    }
}

impl<T: Float, const R: usize, const C: usize> From<[[T; C]; R]> for Tensor<T> {
    /// A 2-d tensor, one inner array per row.
    fn from(rows: [[T; C]; R]) -> Self {
        Tensor::from_vec(rows.iter().flatten().copied().collect(), &[R, C])
    }
}

impl<T: Float> PartialEq for Tensor<T> {
    /// Same shape and bit-for-bit equal elements (so NaN ≠ NaN, as for floats).
    fn eq(&self, other: &Self) -> bool {
        self.shape == other.shape && self.data() == other.data()
    }
}

/// Above this many elements `Display` prints the first and last few of each dimension.
const DISPLAY_FULL_LIMIT: usize = 1000;
/// How many leading and trailing entries per dimension a summarized tensor shows.
const DISPLAY_EDGE: usize = 3;

impl<T: Float> fmt::Display for Tensor<T> {
    /// NumPy-like: nested brackets, one row per line, and `...` in place of the middle of any
    /// dimension longer than 6 when the tensor has over 1000 elements. Honours `{:.N}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let summarize = self.numel() > DISPLAY_FULL_LIMIT;
        let strides = shape::strides(&self.shape);
        write_nested(f, self.data(), &self.shape, &strides, 0, 0, summarize)?;
        if summarize {
            write!(f, " shape={:?}", self.shape())?;
        }
        Ok(())
    }
}

fn write_nested<T: Float>(
    f: &mut fmt::Formatter<'_>,
    data: &[T],
    shape: &[usize],
    strides: &[usize],
    dim: usize,
    offset: usize,
    summarize: bool,
) -> fmt::Result {
    if dim == shape.len() {
        return match f.precision() {
            Some(p) => write!(f, "{:.*}", p, data[offset]),
            None => write!(f, "{}", data[offset]),
        };
    }
    let n = shape[dim];
    let skip = summarize && n > 2 * DISPLAY_EDGE;
    let last = dim + 1 == shape.len();
    write!(f, "[")?;
    let mut i = 0;
    while i < n {
        if i > 0 {
            if last {
                write!(f, ", ")?;
            } else {
                write!(f, ",\n{}", " ".repeat(dim + 1))?;
            }
        }
        if skip && i == DISPLAY_EDGE {
            write!(f, "...")?;
            i = n - DISPLAY_EDGE;
            continue;
        }
        write_nested(f, data, shape, strides, dim + 1, offset + i * strides[dim], summarize)?;
        i += 1;
    }
    write!(f, "]")
}

impl<T: Float> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor<{}>{:?} {}", T::DTYPE, self.shape(), self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn parallel_elementwise_kernels_write_every_element_in_order() {
        // Sizes around the parallel threshold and the chunk size, so that every path of
        // `zip_into` (sequential, parallel with a partial last chunk) runs.
        for n in [0, 1, 7, PAR_THRESHOLD - 1, PAR_THRESHOLD, PAR_THRESHOLD + ELEMENTWISE_CHUNK / 2 + 3, 100_003] {
            let a = Tensor::from_vec((0..n).map(|i| i as f64).collect(), &[n]);
            let b = a.map(|x| 2.0 * x + 1.0);
            assert!(b.data().iter().enumerate().all(|(i, &y)| y == 2.0 * i as f64 + 1.0), "map, n = {n}");
            let c = a.zip_map(&b, "test", |x, y| y - x);
            assert!(c.data().iter().enumerate().all(|(i, &y)| y == i as f64 + 1.0), "zip_map, n = {n}");
        }
    }

    #[test]
    fn scalar_needs_no_heap_for_shape_or_data() {
        let t = Tensor::scalar(2.5f32);
        assert!(!t.shape.spilled());
        assert!(matches!(t.data, Storage::One(_)));
        assert_eq!(t.item(), 2.5);
    }

    #[test]
    fn clones_share_data_until_written() {
        let a = Tensor::from_vec(vec![1.0f64, 2.0], &[2]);
        let mut b = a.clone();
        b.data_mut()[0] = 9.0;
        assert_eq!(a.data(), &[1.0, 2.0]);
        assert_eq!(b.data(), &[9.0, 2.0]);
    }

    #[test]
    fn zip_map_broadcasts_rows_and_columns() {
        let col = Tensor::from_vec(vec![10.0f64, 20.0], &[2, 1]);
        let row = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]);
        let sum = col.zip_map(&row, "add", |a, b| a + b);
        assert_eq!(sum.shape(), &[2, 3]);
        assert_eq!(sum.data(), &[11.0, 12.0, 13.0, 21.0, 22.0, 23.0]);
    }

    #[test]
    #[should_panic(expected = "add: shapes [2, 3] and [4] do not broadcast")]
    fn zip_map_names_op_and_shapes_on_mismatch() {
        Tensor::<f32>::zeros(&[2, 3]).zip_map(&Tensor::zeros(&[4]), "add", |a, b| a + b);
    }

    /// `sum_with` adds in place into a buffer it holds alone, and leaves a shared one intact
    /// for its other holder; below and above the parallel threshold.
    #[test]
    fn sum_with_never_changes_a_shared_buffer() {
        for n in [5, PAR_THRESHOLD + 3] {
            let a = Tensor::from_vec((0..n).map(|i| i as f32).collect(), &[n]);
            let b = Tensor::from_vec((0..n).map(|i| (2 * i) as f32).collect(), &[n]);
            let want: Vec<f32> = (0..n).map(|i| (3 * i) as f32).collect();
            let other_holder = a.clone();
            assert_eq!(a.sum_with(&b).data(), want.as_slice());
            assert_eq!(other_holder.data()[n - 1], (n - 1) as f32, "the shared buffer was changed");
            let alone = Tensor::from_vec((0..n).map(|i| i as f32).collect(), &[n]);
            let ptr = alone.data().as_ptr();
            let sum = alone.sum_with(&b);
            assert_eq!(sum.data(), want.as_slice());
            assert_eq!(sum.data().as_ptr(), ptr, "a buffer held alone was not reused");
        }
    }

    #[test]
    fn arange_matches_torch() {
        assert_eq!(Tensor::<f64>::arange(0.0, 1.0, 0.25).data(), &[0.0, 0.25, 0.5, 0.75]);
        assert_eq!(Tensor::<f64>::arange(3.0, 0.0, -1.0).data(), &[3.0, 2.0, 1.0]);
    }

    #[test]
    fn random_constructors_are_seeded() {
        let mut r1 = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut r2 = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let a = Tensor::<f32>::rand_normal(&[3, 3], 0.0, 1.0, &mut r1);
        let b = Tensor::<f32>::rand_normal(&[3, 3], 0.0, 1.0, &mut r2);
        assert_eq!(a, b);
        let u = Tensor::<f64>::rand_uniform(&[100], -1.0, 1.0, &mut r1);
        assert!(u.data().iter().all(|&x| (-1.0..1.0).contains(&x)));
    }

    #[test]
    fn display_summarizes_big_tensors() {
        let big = Tensor::<f32>::zeros(&[100, 100]);
        let s = format!("{big}");
        assert!(s.contains("..."), "{s}");
        assert!(s.lines().count() < 10, "{s}");
        assert!(s.ends_with("shape=[100, 100]"));
        assert_eq!(format!("{:.2}", Tensor::scalar(1.0f64 / 3.0)), "0.33");
    }
}
