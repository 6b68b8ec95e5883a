//! The bincode header alone, framed with a valid checksum so that mutations reach the decoder
//! and the validation of names, dtypes, shapes and byte ranges.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nn::fuzzing::native_header(data);
});
