//! IDX bytes, raw or gzip, through the MNIST reader of `models` (as a label file and as an image
//! file): header, sizes against the content, the gzip stream bounded by the declared size.
#![no_main]
use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use models::digits::idx::{read_idx_from, IMAGES_MAGIC, LABELS_MAGIC};

fuzz_target!(|data: &[u8]| {
    for magic in [LABELS_MAGIC, IMAGES_MAGIC] {
        if let Ok(a) = read_idx_from(Cursor::new(data), Path::new("fuzz"), magic) {
            // What parsed holds exactly the bytes its dimensions declare.
            assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
        }
    }
});
