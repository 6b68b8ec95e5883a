//! Whole native checkpoint files: framing, checksums, header and tensor validation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nn::fuzzing::native(data);
});
