//! [`AnyTensor`]: a tensor of either element type, as files hold them, and [`DType`].

use autograd::{Float, Tensor};

/// The element types pente stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary64.
    F64,
}

impl DType {
    /// The name as PyTorch, NumPy and safetensors spell it in lower case (`"f32"`, `"f64"`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }

    /// The dtype of `T`.
    pub fn of<T: Float>() -> Self {
        if T::DTYPE == "f64" {
            DType::F64
        } else {
            DType::F32
        }
    }

    /// Parses `"f32"` / `"f64"`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "f32" => Some(DType::F32),
            "f64" => Some(DType::F64),
            _ => None,
        }
    }
}

/// A tensor of `f32` or `f64`, as read from a checkpoint, before it meets a model of a known
/// element type.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyTensor {
    /// `f32` elements.
    F32(Tensor<f32>),
    /// `f64` elements.
    F64(Tensor<f64>),
}

impl AnyTensor {
    /// Wraps a tensor of either type without converting it.
    pub fn new<T: Float>(t: &Tensor<T>) -> Self {
        match DType::of::<T>() {
            // The casts are exact (same type); they only convince the compiler.
            DType::F32 => AnyTensor::F32(t.cast()),
            DType::F64 => AnyTensor::F64(t.cast()),
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            AnyTensor::F32(_) => DType::F32,
            AnyTensor::F64(_) => DType::F64,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            AnyTensor::F32(t) => t.shape(),
            AnyTensor::F64(t) => t.shape(),
        }
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        match self {
            AnyTensor::F32(t) => t.numel(),
            AnyTensor::F64(t) => t.numel(),
        }
    }

    /// How many elements are NaN or ±∞.
    pub fn non_finite_count(&self) -> usize {
        match self {
            AnyTensor::F32(t) => t.data().iter().filter(|x| !x.is_finite()).count(),
            AnyTensor::F64(t) => t.data().iter().filter(|x| !x.is_finite()).count(),
        }
    }

    /// The tensor as `T`, converting (rounding to nearest) if its type differs.
    pub fn to<T: Float>(&self) -> Tensor<T> {
        match self {
            AnyTensor::F32(t) => t.cast(),
            AnyTensor::F64(t) => t.cast(),
        }
    }

    /// The elements as little-endian bytes.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            AnyTensor::F32(t) => t.data().iter().flat_map(|x| x.to_le_bytes()).collect(),
            AnyTensor::F64(t) => t.data().iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }

    /// Builds from little-endian bytes; `None` unless `bytes.len()` is exactly the shape's
    /// element count times the element size (checked without overflow).
    pub fn from_le_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Option<Self> {
        let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        if numel.checked_mul(dtype.size())? != bytes.len() {
            return None;
        }
        Some(match dtype {
            DType::F32 => AnyTensor::F32(Tensor::from_vec(
                bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("chunks of 4"))).collect(),
                shape,
            )),
            DType::F64 => AnyTensor::F64(Tensor::from_vec(
                bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("chunks of 8"))).collect(),
                shape,
            )),
        })
    }
}
