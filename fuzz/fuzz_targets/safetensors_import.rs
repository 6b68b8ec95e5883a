//! safetensors bytes through nn's import (the `safetensors` crate's parser, then dtype and
//! shape checks and conversion).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nn::fuzzing::safetensors(data);
});
