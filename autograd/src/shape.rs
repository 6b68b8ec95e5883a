//! Shapes, strides, NumPy broadcasting and axis normalization.
//!
//! A shape is a [`SmallVec`] of up to four dimensions stored inline, so a 0-d (scalar) tensor and
//! every tensor of rank ≤ 4 carry their shape without a heap allocation.

use smallvec::SmallVec;

/// The dimensions of a tensor, outermost first. Inline up to rank 4.
pub type Shape = SmallVec<[usize; 4]>;

/// Number of elements of a tensor of this shape (1 for a scalar).
#[inline]
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Whether two shapes are equal. Written out (rather than slice `==`, which calls `memcmp`) because
/// it runs for every op of a scalar graph, where the shapes are almost always empty.
#[inline(always)]
pub fn same(a: &[usize], b: &[usize]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// Row-major (C order) strides, in elements, of a contiguous tensor of this shape.
pub fn strides(shape: &[usize]) -> Shape {
    let mut s: Shape = SmallVec::from_elem(1, shape.len());
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// The NumPy broadcast of two shapes, or `None` when they are incompatible.
///
/// Shapes are aligned at their last dimension; a dimension of 1 (or a missing one) stretches
/// to match the other.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Shape> {
    let rank = a.len().max(b.len());
    let mut out: Shape = SmallVec::from_elem(1, rank);
    for i in 0..rank {
        let da = if i < rank - a.len() { 1 } else { a[i - (rank - a.len())] };
        let db = if i < rank - b.len() { 1 } else { b[i - (rank - b.len())] };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Strides with which a tensor of shape `from` is read as if it had the (broadcast) shape `to`:
/// stretched dimensions get stride 0. The caller has checked that `from` broadcasts to `to`.
pub fn broadcast_strides(from: &[usize], to: &[usize]) -> Shape {
    let own = strides(from);
    let lead = to.len() - from.len();
    (0..to.len()).map(|i| if i < lead || from[i - lead] == 1 { 0 } else { own[i - lead] }).collect()
}

/// Whether `from` can be broadcast to exactly `to`.
pub fn broadcasts_to(from: &[usize], to: &[usize]) -> bool {
    from.len() <= to.len() && broadcast_shapes(from, to).is_some_and(|s| s.as_slice() == to)
}

/// Turns a possibly negative axis (`-1` is the last) into an index, or `None` if out of range.
pub fn normalize_axis(axis: isize, rank: usize) -> Option<usize> {
    let r = rank as isize;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

/// Visits, for every element of `shape` in row-major order, the flat offset given by `strides`
/// (which may contain zeros for broadcast dimensions). The innermost dimension is handed to `f`
/// as a run `(offset_of_first, stride, len)`, so the caller's inner loop can vectorize.
#[inline(always)]
pub fn for_each_run(shape: &[usize], strides: &[usize], mut f: impl FnMut(usize, usize, usize)) {
    let rank = shape.len();
    if rank == 0 {
        f(0, 0, 1);
        return;
    }
    if shape.contains(&0) {
        return;
    }
    let inner = shape[rank - 1];
    let inner_stride = strides[rank - 1];
    let mut idx: Shape = SmallVec::from_elem(0, rank - 1);
    let mut offset = 0usize;
    loop {
        f(offset, inner_stride, inner);
        // Increment the multi-index over the outer dimensions, odometer style.
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            offset += strides[d];
            if idx[d] < shape[d] {
                break;
            }
            offset -= strides[d] * shape[d];
            idx[d] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_numpy_rules() {
        assert_eq!(broadcast_shapes(&[2, 1, 3], &[4, 1]).unwrap().as_slice(), &[2, 4, 3]);
        assert_eq!(broadcast_shapes(&[], &[5]).unwrap().as_slice(), &[5]);
        assert!(broadcast_shapes(&[2, 3], &[4]).is_none());
        assert!(broadcasts_to(&[3], &[2, 3]));
        assert!(!broadcasts_to(&[2, 3], &[3]));
    }

    #[test]
    fn runs_visit_every_offset_in_order() {
        let mut seen = vec![];
        for_each_run(&[2, 3], &[1, 2], |o, s, n| seen.extend((0..n).map(|i| o + i * s)));
        // A transposed 3x2 read: column-major order of the original.
        assert_eq!(seen, vec![0, 2, 4, 1, 3, 5]);
    }

    #[test]
    fn scalar_shape_is_inline() {
        let s: Shape = Shape::new();
        assert!(!s.spilled());
        assert_eq!(numel(&s), 1);
    }
}
