//! Crash-safe file replacement: write a temporary file in the target's directory, `sync_all`
//! it, rename it over the target, then sync the directory.
//!
//! A rename within one directory is atomic on POSIX file systems, so a reader (or a process
//! restarted after a crash) sees either the complete old file or the complete new one. Syncing
//! the file before the rename keeps the new name from pointing at data still in the page cache;
//! syncing the directory makes the rename itself durable before `save` returns. On any error or
//! panic the temporary file is removed; only a process killed outright can leave one behind
//! (named `.{target}.{pid}.{n}.tmp`, never the target itself).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, Result};

/// Failures to inject, for tests of the guarantees above.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Faults {
    /// The writer fails once this many bytes have been written.
    pub fail_after: Option<usize>,
    /// The writer panics once this many bytes have been written.
    pub panic_after: Option<usize>,
    /// The rename fails.
    pub fail_rename: bool,
}

/// Replaces `path` with `bytes` crash-safely (see the [module docs](self)).
///
/// # Errors
/// [`Error::Io`] naming the file (or directory) at fault.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, bytes, Faults::default())
}

/// Removes the temporary file when dropped, unless disarmed after the rename.
struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) fn write_atomic_with(path: &Path, bytes: &[u8], faults: Faults) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::io(path, io::Error::new(io::ErrorKind::InvalidInput, "not a file path")))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut guard = TempGuard { path: tmp.clone(), armed: false };
    let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(|e| Error::io(&tmp, e))?;
    guard.armed = true;
    write_all(&mut file, bytes, faults).map_err(|e| Error::io(&tmp, e))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(file);
    if faults.fail_rename {
        return Err(Error::io(path, io::Error::other("injected rename failure")));
    }
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    guard.armed = false;
    sync_dir(&dir).map_err(|e| Error::io(&dir, e))
}

/// Writes in 1 MiB pieces, honouring injected faults: with a fault at `k ≤ bytes.len()`,
/// exactly `k` bytes are written, then the write fails (or panics).
fn write_all(file: &mut File, bytes: &[u8], faults: Faults) -> io::Result<()> {
    let fail = faults.fail_after.unwrap_or(usize::MAX);
    let panic_at = faults.panic_after.unwrap_or(usize::MAX);
    let stop = fail.min(panic_at);
    for piece in bytes[..stop.min(bytes.len())].chunks(1 << 20) {
        file.write_all(piece)?;
    }
    if stop <= bytes.len() {
        if panic_at <= fail {
            panic!("injected panic after {panic_at} bytes");
        }
        return Err(io::Error::other(format!("injected failure after {fail} bytes")));
    }
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Windows has no directory handle to sync; MoveFileEx's replace is durable on NTFS.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AnyTensor, Checkpoint};
    use autograd::Tensor;

    /// A checkpoint whose every value is `step`, big enough to take several write calls.
    fn ckpt(step: u64, n: usize) -> Checkpoint {
        let mut c = Checkpoint::default().with_step(step);
        c.tensors.insert("w".into(), AnyTensor::F32(Tensor::full(&[n], step as f32)));
        c
    }

    /// The target loads, and is entirely one of the checkpoints written (no mix).
    fn assert_whole(path: &Path, allowed: std::ops::RangeInclusive<u64>) -> u64 {
        let c = Checkpoint::load(path).expect("target must always load");
        assert!(allowed.contains(&c.step), "step {} not in {allowed:?}", c.step);
        let AnyTensor::F32(t) = &c.tensors["w"] else { panic!("dtype changed") };
        assert!(t.data().iter().all(|&v| v == c.step as f32), "mixed contents");
        c.step
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn a_writer_failing_after_k_bytes_leaves_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.ckpt");
        ckpt(1, 300_000).save(&path).expect("first save");
        let new = ckpt(2, 300_000).to_bytes();
        let len = new.len();
        let ks: Vec<usize> = (0..64).chain((64..len).step_by(len / 97)).chain([len - 1, len]).collect();
        for k in ks {
            let r = write_atomic_with(&path, &new, Faults { fail_after: Some(k), ..Default::default() });
            assert!(r.is_err(), "k = {k}");
            assert_eq!(assert_whole(&path, 1..=1), 1, "k = {k}");
            assert!(leftovers(dir.path()).is_empty(), "k = {k}");
        }
        write_atomic(&path, &new).expect("clean save");
        assert_eq!(assert_whole(&path, 2..=2), 2);
    }

    #[test]
    fn a_panic_mid_write_leaves_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.ckpt");
        ckpt(1, 1000).save(&path).expect("first save");
        let new = ckpt(2, 1000).to_bytes();
        for k in [0, 17, new.len() / 2, new.len()] {
            let p = path.clone();
            let b = new.clone();
            let r = std::panic::catch_unwind(move || {
                write_atomic_with(&p, &b, Faults { panic_after: Some(k), ..Default::default() })
            });
            assert!(r.is_err(), "expected a panic at k = {k}");
            assert_eq!(assert_whole(&path, 1..=1), 1);
            assert!(leftovers(dir.path()).is_empty());
        }
    }

    #[test]
    fn a_failing_rename_leaves_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.ckpt");
        ckpt(1, 10).save(&path).expect("first save");
        let e = write_atomic_with(&path, &ckpt(2, 10).to_bytes(), Faults { fail_rename: true, ..Default::default() })
            .expect_err("rename fails");
        assert!(e.to_string().contains("m.ckpt"), "{e}");
        assert_eq!(assert_whole(&path, 1..=1), 1);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn saving_into_a_missing_directory_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("no/such/dir/m.ckpt");
        let e = ckpt(1, 1).save(&path).expect_err("no dir");
        assert!(e.to_string().contains("no/such/dir"), "{e}");
    }

    const CHILD_ENV: &str = "PENTE_NN_CHILD_SAVE_LOOP";

    /// In a child process (see below): save checkpoints 1, 2, 3, … to the file named by the
    /// environment variable until killed (or for 30 s). In a normal test run it does nothing.
    #[test]
    fn child_save_loop() {
        let Ok(path) = std::env::var(CHILD_ENV) else {
            return;
        };
        let start = std::time::Instant::now();
        let mut step = 1;
        while start.elapsed().as_secs() < 30 {
            ckpt(step, 200_000).save(Path::new(&path)).expect("save");
            step += 1;
        }
    }

    #[test]
    fn a_process_killed_during_a_save_loop_leaves_a_whole_checkpoint() {
        let exe = std::env::current_exe().expect("test binary");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.ckpt");
        ckpt(0, 200_000).save(&path).expect("initial save");
        let mut last = 0;
        for round in 0..12u64 {
            let mut child = std::process::Command::new(&exe)
                .args(["checkpoint::atomic::tests::child_save_loop", "--exact", "--nocapture"])
                .env(CHILD_ENV, &path)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("spawn child");
            // Kill at varied moments: before, during and between saves.
            std::thread::sleep(std::time::Duration::from_millis(20 + 37 * round));
            child.kill().expect("kill");
            child.wait().expect("reap");
            // Every save restarts at step 1, so any step is allowed; the contents must be whole.
            let step = assert_whole(&path, 0..=u64::MAX);
            last = last.max(step);
        }
        assert!(last > 0, "the child never completed a save: the test proved nothing");
    }
}
