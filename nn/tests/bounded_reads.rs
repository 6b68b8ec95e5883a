//! Loading never reads more than the file's header claims and the file holds: a huge sparse file
//! fails after its first bytes, and a device or a named pipe is refused by name instead of being
//! read forever or blocking. The allocator of this test binary counts the largest allocation, so
//! "without allocating its size" is asserted, not assumed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use autograd::Tensor;
use nn::{Checkpoint, Error, ParamStore};

/// The system allocator, recording the largest single request.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s contract;
// the only addition is an atomic maximum, which neither allocates nor touches the memory.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's guarantees for `layout` are passed on as they are.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was returned by `System.alloc` (through `alloc` or `realloc`) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: as for `dealloc`; `new_size` is the caller's, checked by the caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// No allocation made by a loader on a hostile file may reach this (the tests' own data is far
/// smaller, and the big files below are gigabytes).
const SMALL: usize = 64 << 20;

const GB3: u64 = 3 << 30;

/// A 3 GB file that takes no disk: `prefix`, then a hole.
fn sparse(dir: &Path, name: &str, prefix: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut f = File::create(&path).expect("temp file");
    f.write_all(prefix).expect("prefix");
    f.set_len(GB3).expect("sparse file");
    path
}

/// Runs `f`, asserting it returns within `limit` (checked from another thread, so that a read
/// that blocks or never ends fails the test instead of hanging it) and allocates no more than
/// [`SMALL`] at once.
fn bounded<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let start = Instant::now();
    let worker = std::thread::spawn(f);
    let limit = Duration::from_secs(20);
    while !worker.is_finished() {
        assert!(start.elapsed() < limit, "{what}: still reading after {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = worker.join().expect("the loader panicked");
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(largest < SMALL, "{what}: an allocation of {largest} bytes");
    out
}

fn message(r: nn::Result<impl std::fmt::Debug>) -> String {
    r.expect_err("must be refused").to_string()
}

#[test]
fn a_3_gb_file_that_is_not_a_checkpoint_fails_after_its_first_bytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = sparse(dir.path(), "zeros.ckpt", b"");
    let p = path.clone();
    let e = bounded("zeros.ckpt", move || Checkpoint::load(&p));
    assert!(matches!(e, Err(Error::Foreign { .. })), "{e:?}");
    assert!(message(e).contains("zeros.ckpt"));

    // A genuine prefix whose lengths claim the whole 3 GB: the header length is over the limit,
    // so nothing after the prefix is read.
    let mut prefix = Checkpoint::default().to_bytes();
    let h = GB3 - 40;
    prefix[16..24].copy_from_slice(&h.to_le_bytes());
    fix_prefix_crc(&mut prefix);
    let path = sparse(dir.path(), "header.ckpt", &prefix);
    let e = bounded("header.ckpt", move || Checkpoint::load(&path));
    let msg = message(e);
    assert!(msg.contains("header.ckpt") && msg.contains("header of 3221225432 bytes"), "{msg}");
}

#[test]
fn a_3_gb_checkpoint_whose_header_describes_a_few_bytes_is_refused_before_its_data_is_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = ParamStore::<f32>::default();
    store.add("w", Tensor::from(vec![1.0f32, 2.0]));
    let mut bytes = Checkpoint::from_store(&store).to_bytes();
    // The data section is declared to run to the end of the 3 GB file.
    let h = u64::from_le_bytes(bytes[16..24].try_into().unwrap());
    bytes[24..32].copy_from_slice(&(GB3 - 40 - h).to_le_bytes());
    fix_prefix_crc(&mut bytes);
    let path = sparse(dir.path(), "padded.ckpt", &bytes);
    let e = bounded("padded.ckpt", move || Checkpoint::load(&path));
    let msg = message(e);
    assert!(msg.contains("padded.ckpt") && msg.contains("end at byte 8 of the"), "{msg}");
}

#[test]
fn a_3_gb_file_that_is_not_safetensors_fails_after_its_first_bytes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = sparse(dir.path(), "zeros.safetensors", b"");
    let e = bounded("zeros.safetensors", move || nn::safetensors::import(&path));
    let msg = message(e);
    assert!(msg.contains("zeros.safetensors") && msg.contains("header"), "{msg}");

    // A valid safetensors file followed by a 3 GB hole: its header describes 8 bytes of data.
    let mut store = ParamStore::<f32>::default();
    store.add("w", Tensor::from(vec![1.0f32, 2.0]));
    let valid = nn::safetensors::to_bytes(&store, &Default::default()).expect("serialize");
    let path = sparse(dir.path(), "padded.safetensors", &valid);
    let e = bounded("padded.safetensors", move || nn::safetensors::import(&path));
    let msg = message(e);
    assert!(msg.contains("padded.safetensors") && msg.contains("8 bytes of data"), "{msg}");
}

#[cfg(unix)]
#[test]
fn dev_zero_is_refused_as_a_device() {
    let e = bounded("/dev/zero", || Checkpoint::load("/dev/zero"));
    let msg = message(e);
    assert!(msg.contains("/dev/zero") && msg.contains("not a regular file"), "{msg}");
    let e = bounded("/dev/zero", || nn::safetensors::import("/dev/zero"));
    let msg = message(e);
    assert!(msg.contains("/dev/zero") && msg.contains("not a regular file"), "{msg}");
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_instead_of_blocking() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("pipe.ckpt");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(status.success(), "mkfifo {fifo:?}");
    let p = fifo.clone();
    let e = bounded("pipe.ckpt", move || Checkpoint::load(&p));
    let msg = message(e);
    assert!(msg.contains("pipe.ckpt") && msg.contains("not a regular file") && msg.contains("FIFO"), "{msg}");
    let e = bounded("pipe.ckpt", move || nn::safetensors::import(&fifo));
    let msg = message(e);
    assert!(msg.contains("pipe.ckpt") && msg.contains("FIFO"), "{msg}");
}

#[test]
fn a_directory_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let msg = message(Checkpoint::load(dir.path()));
    assert!(msg.contains(&dir.path().display().to_string()) && msg.contains("directory"), "{msg}");
}

#[test]
fn files_written_by_pente_still_load_from_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = ParamStore::<f32>::with_seed(3);
    store.add("w", Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]));
    let ckpt = Checkpoint::from_store(&store).with_step(9).with_metadata("k", "v");
    let path = dir.path().join("m.ckpt");
    ckpt.save(&path).expect("save");
    assert_eq!(Checkpoint::load(&path).expect("load"), ckpt);
    let path = dir.path().join("m.safetensors");
    nn::safetensors::export(&store, &path, &Default::default()).expect("export");
    let (tensors, _) = nn::safetensors::import(&path).expect("import");
    assert_eq!(tensors["w"].to::<f32>(), store.get(store.id("w").unwrap()).clone());
    // Truncated on disk: typed errors, as from bytes.
    let bytes = ckpt.to_bytes();
    std::fs::write(dir.path().join("cut.ckpt"), &bytes[..bytes.len() - 3]).unwrap();
    assert!(matches!(Checkpoint::load(dir.path().join("cut.ckpt")), Err(Error::Truncated { .. })));
    std::fs::write(dir.path().join("tiny.ckpt"), b"PENT").unwrap();
    assert!(matches!(Checkpoint::load(dir.path().join("tiny.ckpt")), Err(Error::Truncated { .. })));
}

/// Recomputes the checksum of the 40-byte prefix after an edit of its lengths (format.rs).
fn fix_prefix_crc(bytes: &mut [u8]) {
    let crc = crc32(&bytes[..36]);
    bytes[36..40].copy_from_slice(&crc.to_le_bytes());
}

/// CRC-32 (IEEE), bit by bit: a test needs no table.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
