//! Crash-safe file replacement: write a temporary file in the target's directory, `sync_all`
//! it, rename it over the target, then sync the directory.
//!
//! A rename within one directory is atomic on POSIX file systems, so a reader (or a process
//! restarted after a crash) sees either the complete old file or the complete new one. Syncing
//! the file before the rename keeps the new name from pointing at data still in the page cache;
//! syncing the directory makes the rename itself durable before `save` returns. On any error or
//! panic the temporary file is removed; only a process killed outright can leave one behind
//! (named `.{target}.{pid}.{n}.tmp`, never the target itself), and the next save to the same
//! target removes it once that process is gone. Errors name the target, not the temporary file;
//! [`check_writable`] lets a long run find out at its start that it could not save.

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

/// The target's directory (`.` for a bare file name), its file name, and a fresh temporary path
/// `.{name}.{pid}.{n}.tmp` beside it.
fn temporary_for(path: &Path) -> Result<(PathBuf, String, PathBuf)> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::io(path, io::Error::new(io::ErrorKind::InvalidInput, "not a file path")))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = name.to_string_lossy().into_owned();
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    Ok((dir, name, tmp))
}

pub(crate) fn write_atomic_with(path: &Path, bytes: &[u8], faults: Faults) -> Result<()> {
    let (dir, name, tmp) = temporary_for(path)?;
    remove_stale_temporaries(&dir, &name);
    let mut guard = TempGuard { path: tmp.clone(), armed: false };
    // Errors name the target: the temporary file is this module's business, not the user's.
    let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(|e| Error::io(path, e))?;
    guard.armed = true;
    write_all(&mut file, bytes, faults).map_err(|e| Error::io(path, e))?;
    file.sync_all().map_err(|e| Error::io(path, e))?;
    drop(file);
    if faults.fail_rename {
        return Err(Error::io(path, io::Error::other("injected rename failure")));
    }
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    guard.armed = false;
    sync_dir(&dir).map_err(|e| Error::io(&dir, e))
}

/// Checks that `path` can be written by [`write_atomic`] (its directory exists and takes a new
/// file), by creating and removing a temporary file there: for a training run to report a
/// directory it cannot save into when it starts, not at its first save an epoch later.
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn check_writable(path: &Path) -> Result<()> {
    let (_, _, probe) = temporary_for(path)?;
    OpenOptions::new().write(true).create_new(true).open(&probe).map_err(|e| Error::io(path, e))?;
    fs::remove_file(&probe).map_err(|e| Error::io(path, e))
}

/// Removes the temporary files `.{name}.{pid}.{n}.tmp` that saves to `name` in `dir` left when
/// their process was killed outright (the only way one is left behind), judged by `/proc/{pid}`:
/// a temporary file of a process that still runs, or of this one, stays. Where there is no
/// `/proc` (not Linux), nothing is removed.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)).and_then(|r| r.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some((pid, n)) = rest.split_once('.') else { continue };
        let (Ok(pid), Ok(_)) = (pid.parse::<u32>(), n.parse::<u64>()) else { continue };
        if pid != std::process::id() && !proc.join(pid.to_string()).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
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
    fn a_save_removes_the_temporaries_of_dead_processes_only() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("m.ckpt");
        // A process that has exited: a child we waited for (its pid is free until reused, and
        // a reused pid only keeps a file).
        let dead = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = dead.id();
        let mut dead = dead;
        dead.wait().unwrap();
        let stale = dir.path().join(format!(".m.ckpt.{dead_pid}.0.tmp"));
        let ours = dir.path().join(format!(".m.ckpt.{}.999.tmp", std::process::id()));
        let other = dir.path().join(".other.ckpt.1.0.tmp");
        for f in [&stale, &ours, &other] {
            fs::write(f, b"partial").unwrap();
        }
        ckpt(1, 10).save(&target).unwrap();
        if Path::new("/proc/self").exists() && !Path::new("/proc").join(dead_pid.to_string()).exists() {
            assert!(!stale.exists(), "a dead process's temporary is removed");
        }
        assert!(ours.exists(), "this process's own temporaries stay");
        assert!(other.exists(), "another target's temporaries stay");
    }

    #[test]
    fn a_save_into_a_missing_directory_names_the_target_and_check_writable_says_so_first() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("missing").join("m.ckpt");
        let err = ckpt(1, 10).save(&target).unwrap_err().to_string();
        assert!(err.contains("missing/m.ckpt") && !err.contains(".m.ckpt."), "{err}");
        let early = check_writable(&target).unwrap_err().to_string();
        assert!(early.contains("missing/m.ckpt"), "{early}");
        check_writable(&dir.path().join("m.ckpt")).unwrap();
        assert!(leftovers(dir.path()).is_empty(), "the probe is removed");
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
