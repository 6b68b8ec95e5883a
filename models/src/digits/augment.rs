//! Augmentation of training digits by a small random rotation and shift, resampled bilinearly
//! (the uncovered border is background), each image's draw taken from the caller's seeded
//! generator, so that a run is reproducible from its seed.
//!
//! Output pixel `p` reads the source at `R(−θ)·(p − c − t) + c`, with `c` the image centre
//! (13.5, 13.5), `θ` uniform in `[−max_degrees, max_degrees]` and `t` uniform in
//! `[−max_shift, max_shift]²` (fractional pixels).

use autograd::{Rng, Tensor};
use rand::RngCore;

use super::data::{Digits, Normalization, PIXELS, SIDE};

/// How much each training image may be rotated and moved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augment {
    /// The largest rotation, in degrees either way.
    pub max_degrees: f64,
    /// The largest shift, in pixels on each axis.
    pub max_shift: f64,
}

impl Augment {
    /// Whether it changes nothing.
    pub fn is_identity(&self) -> bool {
        self.max_degrees == 0.0 && self.max_shift == 0.0
    }
}

/// A uniform draw in `[−1, 1]` from 53 bits of `rng`.
fn symmetric(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// Writes `src` rotated by `degrees` (counter-clockwise as seen on screen, with y down) and
/// moved by `(dx, dy)` pixels into `out`, resampling bilinearly and rounding to bytes.
pub fn transform(src: &[u8], degrees: f64, (dx, dy): (f64, f64), out: &mut [u8; PIXELS]) {
    assert_eq!(src.len(), PIXELS, "augment::transform: an image has {PIXELS} pixels, got {}", src.len());
    let (sin, cos) = degrees.to_radians().sin_cos();
    let c = (SIDE as f64 - 1.0) / 2.0;
    let at = |x: isize, y: isize| -> f64 {
        if (0..SIDE as isize).contains(&x) && (0..SIDE as isize).contains(&y) {
            f64::from(src[y as usize * SIDE + x as usize])
        } else {
            0.0
        }
    };
    for (i, o) in out.iter_mut().enumerate() {
        let (px, py) = ((i % SIDE) as f64 - c - dx, (i / SIDE) as f64 - c - dy);
        // The inverse rotation maps the output pixel back to where it came from.
        let (sx, sy) = (cos * px + sin * py + c, -sin * px + cos * py + c);
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = (sx - x0, sy - y0);
        let (x0, y0) = (x0 as isize, y0 as isize);
        let v = (1.0 - fy) * ((1.0 - fx) * at(x0, y0) + fx * at(x0 + 1, y0))
            + fy * ((1.0 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
        *o = v.round().clamp(0.0, 255.0) as u8;
    }
}

/// The inputs of the images `idx` of `digits` as a `(idx.len(), 784)` tensor, each rotated
/// and moved by a draw of `aug` from `rng` (two draws per image even when `aug` is the
/// identity in one of them, so the stream does not depend on the settings' zeros).
pub fn batch(digits: &Digits, idx: &[usize], norm: &Normalization, aug: &Augment, rng: &mut Rng) -> Tensor<f32> {
    let mut data = Vec::with_capacity(idx.len() * PIXELS);
    let mut moved = [0u8; PIXELS];
    for &i in idx {
        let degrees = symmetric(rng) * aug.max_degrees;
        let shift = (symmetric(rng) * aug.max_shift, symmetric(rng) * aug.max_shift);
        transform(digits.image(i), degrees, shift, &mut moved);
        norm.extend(&moved, &mut data);
    }
    Tensor::from_vec(data, &[idx.len(), PIXELS])
}

#[cfg(test)]
mod tests {
    use autograd::SeedableRng;

    use super::*;

    /// A bar from (6, 13) to (21, 14): two rows, 16 columns.
    fn bar() -> [u8; PIXELS] {
        let mut im = [0u8; PIXELS];
        for y in 13..=14 {
            for x in 6..=21 {
                im[y * SIDE + x] = 200;
            }
        }
        im
    }

    #[test]
    fn no_rotation_and_no_shift_is_the_identity() {
        let mut out = [0u8; PIXELS];
        transform(&bar(), 0.0, (0.0, 0.0), &mut out);
        assert_eq!(out, bar());
    }

    #[test]
    fn whole_pixel_shifts_move_pixels_exactly() {
        let mut out = [0u8; PIXELS];
        transform(&bar(), 0.0, (2.0, -3.0), &mut out);
        assert_eq!(out[10 * SIDE + 8], 200); // (6, 13) → (8, 10)
        assert_eq!(out[10 * SIDE + 7], 0);
        assert_eq!(out.iter().filter(|&&v| v != 0).count(), 32);
    }

    #[test]
    fn a_quarter_turn_makes_a_horizontal_bar_vertical() {
        // About the centre (13.5, 13.5), rows 13–14 × columns 6–21 become columns 13–14 × rows 6–21.
        let mut out = [0u8; PIXELS];
        transform(&bar(), 90.0, (0.0, 0.0), &mut out);
        for y in 0..SIDE {
            for x in 0..SIDE {
                let inside = (13..=14).contains(&x) && (6..=21).contains(&y);
                assert_eq!(out[y * SIDE + x], if inside { 200 } else { 0 }, "pixel ({x}, {y})");
            }
        }
    }

    #[test]
    fn a_half_pixel_shift_averages_neighbours() {
        let mut src = [0u8; PIXELS];
        src[10 * SIDE + 10] = 200;
        let mut out = [0u8; PIXELS];
        transform(&src, 0.0, (0.5, 0.0), &mut out);
        assert_eq!((out[10 * SIDE + 10], out[10 * SIDE + 11]), (100, 100));
    }

    #[test]
    fn small_rotations_keep_the_ink_and_batches_are_deterministic_from_the_seed() {
        let d = Digits { pixels: bar().repeat(4), labels: vec![1; 4] };
        let aug = Augment { max_degrees: 12.0, max_shift: 2.0 };
        let norm = Normalization::default();
        let a = batch(&d, &[0, 1, 2, 3], &norm, &aug, &mut Rng::seed_from_u64(7));
        let b = batch(&d, &[0, 1, 2, 3], &norm, &aug, &mut Rng::seed_from_u64(7));
        let c = batch(&d, &[0, 1, 2, 3], &norm, &aug, &mut Rng::seed_from_u64(8));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let ink: f32 = bar().iter().map(|&v| f32::from(v) / 255.0).sum();
        for im in a.data().chunks(PIXELS) {
            let total: f32 = im.iter().sum();
            assert!((total / ink - 1.0).abs() < 0.05, "ink {total} vs {ink}");
        }
        // Not all four images drew the same transform.
        assert!(a.data().chunks(PIXELS).any(|im| im != &a.data()[..PIXELS]));
    }
}
