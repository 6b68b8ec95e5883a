//! A user's own picture of a digit, made to look like MNIST: PNG of any size and colour type →
//! grey → ink bright on a dark background (inverted when the picture is dark on light, as a pen
//! on paper is) → cropped to the ink → scaled so that its longer side is 20 pixels → placed in a
//! 28×28 frame with its centre of mass in the middle. That is how MNIST itself was made
//! (LeCun et al.: size-normalized to 20×20, centred by centre of mass in 28×28).

use std::fmt;
use std::path::{Path, PathBuf};

use super::data::{PIXELS, SIDE};

/// Reading or decoding a picture failed.
#[derive(Debug)]
pub struct ImageError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for ImageError {}

/// The largest picture accepted, in pixels (64 megapixels).
pub const MAX_PIXELS: u64 = 1 << 26;

/// A grey picture, values in `[0, 1]`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Grey {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width · height` values, 0 black, 1 white.
    pub values: Vec<f32>,
}

/// Decodes a PNG file (any bit depth or colour type; transparent pixels count as white paper)
/// to grey.
///
/// # Errors
/// [`ImageError`] naming the file if it cannot be read, is not a PNG, or is larger than
/// [`MAX_PIXELS`].
pub fn read_png(path: &Path) -> Result<Grey, ImageError> {
    let err = |message: String| ImageError { path: path.to_path_buf(), message };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| err(format!("not a readable PNG: {e}")))?;
    let (w, h) = (reader.info().width, reader.info().height);
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(err(format!("{w}×{h} pixels is more than {MAX_PIXELS}")));
    }
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).map_err(|e| err(format!("damaged PNG: {e}")))?;
    let bytes = &buf[..frame.buffer_size()];
    let channels = frame.color_type.samples();
    let values = bytes
        .chunks(channels)
        .map(|px| {
            let f = |b: u8| f32::from(b) / 255.0;
            let (grey, alpha) = match px {
                [g] => (f(*g), 1.0),
                [g, a] => (f(*g), f(*a)),
                [r, g, b] => (0.299 * f(*r) + 0.587 * f(*g) + 0.114 * f(*b), 1.0),
                [r, g, b, a, ..] => (0.299 * f(*r) + 0.587 * f(*g) + 0.114 * f(*b), f(*a)),
                [] => (1.0, 1.0),
            };
            alpha * grey + (1.0 - alpha) // over white paper
        })
        .collect();
    Ok(Grey { width: frame.width as usize, height: frame.height as usize, values })
}

/// Turns a grey picture into 28×28 MNIST-like ink values in `[0, 1]` (1 = ink), as the
/// [module docs](self) describe. A blank picture gives a blank frame.
pub fn to_mnist(img: &Grey) -> [f32; PIXELS] {
    let (w, h) = (img.width, img.height);
    let mut out = [0.0f32; PIXELS];
    if w == 0 || h == 0 {
        return out;
    }
    // The background is the colour of the border: dark on light gets inverted.
    let border: Vec<f32> = (0..w)
        .flat_map(|x| [img.values[x], img.values[(h - 1) * w + x]])
        .chain((0..h).flat_map(|y| [img.values[y * w], img.values[y * w + w - 1]]))
        .collect();
    let border_mean = border.iter().sum::<f32>() / border.len() as f32;
    let ink: Vec<f32> =
        if border_mean > 0.5 { img.values.iter().map(|&v| 1.0 - v).collect() } else { img.values.clone() };
    // Stretch so the background is 0 and the darkest ink 1; faint noise below 0.15 is dropped.
    let lo = if border_mean > 0.5 { 1.0 - border_mean } else { border_mean };
    let hi = ink.iter().copied().fold(0.0f32, f32::max);
    if hi - lo < 0.05 {
        return out;
    }
    let ink: Vec<f32> = ink.iter().map(|&v| (((v - lo) / (hi - lo)).clamp(0.0, 1.0) - 0.15).max(0.0) / 0.85).collect();
    // Bounding box of the ink.
    let (mut x0, mut x1, mut y0, mut y1) = (w, 0, h, 0);
    for y in 0..h {
        for x in 0..w {
            if ink[y * w + x] > 0.0 {
                (x0, x1, y0, y1) = (x0.min(x), x1.max(x + 1), y0.min(y), y1.max(y + 1));
            }
        }
    }
    if x0 >= x1 {
        return out;
    }
    // Box-filter resample of the box into a 20-pixel frame (longer side), keeping the aspect.
    let (bw, bh) = (x1 - x0, y1 - y0);
    let scale = 20.0 / bw.max(bh) as f64;
    let (tw, th) = (((bw as f64 * scale).round() as usize).max(1), ((bh as f64 * scale).round() as usize).max(1));
    let mut small = vec![0.0f32; tw * th];
    for (ty, row) in small.chunks_mut(tw).enumerate() {
        let (sy0, sy1) = (y0 as f64 + ty as f64 / scale, y0 as f64 + (ty + 1) as f64 / scale);
        for (tx, v) in row.iter_mut().enumerate() {
            let (sx0, sx1) = (x0 as f64 + tx as f64 / scale, x0 as f64 + (tx + 1) as f64 / scale);
            *v = area_mean(&ink, w, (sx0, sx1), (sy0, sy1));
        }
    }
    // Centre of mass of the small image → the middle of the 28×28 frame.
    let (mut m, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in small.iter().enumerate() {
        let v = f64::from(v);
        m += v;
        mx += v * ((i % tw) as f64 + 0.5);
        my += v * ((i / tw) as f64 + 0.5);
    }
    let (cx, cy) = if m > 0.0 { (mx / m, my / m) } else { (tw as f64 / 2.0, th as f64 / 2.0) };
    let ox = (SIDE as f64 / 2.0 - cx).round() as isize;
    let oy = (SIDE as f64 / 2.0 - cy).round() as isize;
    for (i, &v) in small.iter().enumerate() {
        let (x, y) = ((i % tw) as isize + ox, (i / tw) as isize + oy);
        if (0..SIDE as isize).contains(&x) && (0..SIDE as isize).contains(&y) {
            out[y as usize * SIDE + x as usize] = v;
        }
    }
    out
}

/// The mean of `img` (row width `w`) over the rectangle `[x0, x1) × [y0, y1)` in pixel units,
/// partial pixels weighted by their covered area.
fn area_mean(img: &[f32], w: usize, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> f32 {
    let h = img.len() / w;
    let (mut sum, mut area) = (0.0f64, 0.0f64);
    let mut y = y0.floor() as usize;
    while (y as f64) < y1 && y < h {
        let fy = (y1.min(y as f64 + 1.0) - y0.max(y as f64)).max(0.0);
        let mut x = x0.floor() as usize;
        while (x as f64) < x1 && x < w {
            let fx = (x1.min(x as f64 + 1.0) - x0.max(x as f64)).max(0.0);
            sum += f64::from(img[y * w + x]) * fx * fy;
            area += fx * fy;
            x += 1;
        }
        y += 1;
    }
    if area > 0.0 {
        (sum / area) as f32
    } else {
        0.0
    }
}

/// Writes 8-bit grey pixels as a PNG (tests and the demo's sample input).
///
/// # Errors
/// [`ImageError`] naming the file if it cannot be written.
pub fn write_png_grey(path: &Path, width: u32, height: u32, pixels: &[u8]) -> Result<(), ImageError> {
    let err = |message: String| ImageError { path: path.to_path_buf(), message };
    let file = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| err(e.to_string()))?;
    writer.write_image_data(pixels).map_err(|e| err(e.to_string()))?;
    writer.finish().map_err(|e| err(e.to_string()))
}

/// Encodes 8-bit pixels (`channels` 1 = grey, 3 = RGB) as PNG bytes in memory (figures embed them).
///
/// # Panics
/// If `pixels` does not hold `width · height · channels` bytes or `channels` is not 1 or 3.
pub fn png_bytes(width: u32, height: u32, channels: usize, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(if channels == 3 { png::ColorType::Rgb } else { png::ColorType::Grayscale });
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().expect("writing to memory cannot fail");
        writer.write_image_data(pixels).expect("pixels match the declared size");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("pente-digits-img-{}-{name}", std::process::id()))
    }

    #[test]
    fn dark_ink_on_white_is_inverted_cropped_and_centred() {
        // A 100×60 white picture with a black bar in its top-left corner.
        let (w, h) = (100u32, 60u32);
        let mut px = vec![255u8; (w * h) as usize];
        for y in 5..35 {
            for x in 10..16 {
                px[y * w as usize + x] = 0;
            }
        }
        let p = tmp("bar.png");
        write_png_grey(&p, w, h, &px).expect("temp file");
        let grey = read_png(&p).expect("just written");
        let _ = std::fs::remove_file(&p);
        assert_eq!((grey.width, grey.height), (100, 60));
        let m = to_mnist(&grey);
        let rows: Vec<usize> = (0..SIDE).filter(|&y| (0..SIDE).any(|x| m[y * SIDE + x] > 0.5)).collect();
        assert_eq!(rows.len(), 20, "longer side scaled to 20 pixels");
        let mass: f32 = m.iter().sum();
        let cx: f32 = m.iter().enumerate().map(|(i, v)| v * ((i % SIDE) as f32 + 0.5)).sum::<f32>() / mass;
        let cy: f32 = m.iter().enumerate().map(|(i, v)| v * ((i / SIDE) as f32 + 0.5)).sum::<f32>() / mass;
        assert!((cx - 14.0).abs() <= 1.0 && (cy - 14.0).abs() <= 1.0, "centre of mass {cx} {cy}");
        assert!(m[0] == 0.0 && m.iter().copied().fold(0.0, f32::max) > 0.99);
    }

    #[test]
    fn blank_and_garbage_inputs() {
        let blank = Grey { width: 5, height: 5, values: vec![1.0; 25] };
        assert!(to_mnist(&blank).iter().all(|&v| v == 0.0));
        let p = tmp("junk.png");
        std::fs::write(&p, b"definitely not a png").expect("temp file");
        let e = read_png(&p).expect_err("garbage");
        let _ = std::fs::remove_file(&p);
        assert!(e.to_string().contains("not a readable PNG"), "{e}");
        assert!(read_png(Path::new("/nonexistent/x.png")).is_err());
    }

    #[test]
    fn an_mnist_sized_image_keeps_its_shape() {
        // Light ink on black, already 28×28: not inverted.
        let mut values = vec![0.0f32; PIXELS];
        for y in 4..24 {
            values[y * SIDE + 14] = 1.0;
            values[y * SIDE + 15] = 1.0;
        }
        let m = to_mnist(&Grey { width: SIDE, height: SIDE, values });
        assert!(m.iter().filter(|&&v| v > 0.5).count() >= 30);
        assert_eq!(m[0], 0.0);
    }
}
