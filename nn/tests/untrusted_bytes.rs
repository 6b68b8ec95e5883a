//! Arbitrary and mutated bytes fed to the native checkpoint loader and the safetensors import:
//! every input gives `Ok` or a typed `Err`, never a panic, an abort or a huge allocation.
//! (The same entry points are fuzzed by `fuzz/`, with `cargo fuzz`.)

use std::collections::BTreeMap;

use autograd::Tensor;
use nn::{fuzzing, Adam, AdamConfig, Checkpoint, Optimizer, ParamGrads, ParamStore};
use proptest::prelude::*;

fn valid_store() -> ParamStore<f32> {
    let mut s = ParamStore::with_seed(0);
    s.add("a.weight", Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]));
    s.add("a.bias", Tensor::from(vec![0.5f32, -0.5]));
    s
}

fn valid_native() -> Vec<u8> {
    let mut store = valid_store();
    let mut opt = Adam::new(AdamConfig::default());
    let g = ParamGrads::from_vec(vec![Some(Tensor::ones(&[2, 3])), Some(Tensor::ones(&[2]))]);
    opt.step(&mut store, &g);
    Checkpoint::from_store(&store).with_optimizer(&opt, &store).with_step(3).with_metadata("k", "v").to_bytes()
}

fn valid_safetensors() -> Vec<u8> {
    nn::safetensors::to_bytes(&valid_store(), &BTreeMap::from([("k".into(), "v".into())])).expect("serialize")
}

/// Applies a list of edits: overwrite a byte, truncate, or duplicate a slice.
fn mutate(mut bytes: Vec<u8>, edits: &[(u8, usize, u8)]) -> Vec<u8> {
    for &(kind, pos, val) in edits {
        if bytes.is_empty() {
            break;
        }
        let i = pos % bytes.len();
        match kind % 4 {
            0 => bytes[i] = val,
            1 => bytes[i] ^= 1 << (val % 8),
            2 => bytes.truncate(i),
            _ => {
                let end = (i + val as usize).min(bytes.len());
                let piece = bytes[i..end].to_vec();
                bytes.splice(i..i, piece);
            }
        }
    }
    bytes
}

#[test]
fn the_valid_inputs_parse() {
    assert!(fuzzing::native(&valid_native()));
    assert!(fuzzing::safetensors(&valid_safetensors()));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        fuzzing::native(&bytes);
        fuzzing::native_header(&bytes);
        fuzzing::safetensors(&bytes);
        // The same bytes behind a valid magic number and version reach further into the loader.
        let mut framed = b"PENTECKP\x01\x00\x00\x00".to_vec();
        framed.extend_from_slice(&bytes);
        fuzzing::native(&framed);
    }

    #[test]
    fn mutated_checkpoints_never_panic(edits in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)) {
        let bytes = mutate(valid_native(), &edits);
        fuzzing::native(&bytes);
        // Mutating the header alone, re-framed with a valid checksum, reaches the decoder.
        let full = valid_native();
        let h = u64::from_le_bytes(full[16..24].try_into().expect("8 bytes")) as usize;
        fuzzing::native_header(&mutate(full[40..40 + h].to_vec(), &edits));
    }

    #[test]
    fn mutated_safetensors_never_panic(edits in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)) {
        fuzzing::safetensors(&mutate(valid_safetensors(), &edits));
    }
}
