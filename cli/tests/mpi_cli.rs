//! `pente char-lm train` and `pente digits train` under `mpirun` on localhost (the `mpi` feature): the ranks train what
//! the same number of shards trains in one process, bit for bit; rank 0 alone prints and
//! saves; a run resumes under another world size; a rank that fails ends the job, named.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use nn::Checkpoint;

/// A GPT small enough to train a few steps in a second.
const TINY: &[&str] = &[
    "char-lm",
    "train",
    "--n-embd",
    "32",
    "--block",
    "16",
    "--n-layer",
    "1",
    "--n-head",
    "2",
    "--batch-size",
    "6",
    "--eval-every",
    "100",
    "--save-every",
    "0",
    "--sample-len",
    "0",
];

/// `mpirun` with the flags a container on localhost needs, running `pente` once per `apps`
/// entry (`-np 1 pente ARGS : -np 1 pente ARGS …`): one rank each.
fn mpirun(apps: &[Vec<String>]) -> Output {
    let mut cmd = Command::new("timeout");
    cmd.args(["120", "mpirun", "--oversubscribe", "--bind-to", "none"]);
    if Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n")) {
        cmd.arg("--allow-run-as-root");
    }
    for (i, app) in apps.iter().enumerate() {
        if i > 0 {
            cmd.arg(":");
        }
        cmd.args(["-np", "1", "-x", "RAYON_NUM_THREADS=1", env!("CARGO_BIN_EXE_pente")]).args(app);
    }
    cmd.env("OMPI_MCA_btl_vader_single_copy_mechanism", "none");
    cmd.output().expect("mpirun runs (install openmpi-bin)")
}

fn args(extra: &[&str], out: &Path) -> Vec<String> {
    let out = out.to_str().expect("a UTF-8 path");
    TINY.iter().chain(extra).chain(&["--out", out]).map(|s| (*s).to_owned()).collect()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Every tensor of two checkpoints (weights and optimizer moments), bit for bit.
fn same_tensors(a: &Path, b: &Path) -> bool {
    let (a, b) = (Checkpoint::load(a).expect("a loads"), Checkpoint::load(b).expect("b loads"));
    a.step == b.step && a.tensors.len() == b.tensors.len() && a.tensors.iter().zip(&b.tensors).all(|(x, y)| x == y)
}

#[test]
fn two_ranks_train_the_bits_of_two_shards_and_rank_0_alone_reports() {
    let dir = common::temp_dir("mpi-two-ranks");
    let ranks = dir.join("ranks.ckpt");
    let app = args(&["--steps", "4", "--save", ranks.to_str().expect("UTF-8")], &dir);
    let out = mpirun(&[app.clone(), app]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("training across 2 processes").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("wrote ").count(), 3, "one checkpoint and two figures, from rank 0: {stdout}");

    let shards = dir.join("shards.ckpt");
    let one = common::pente(
        &args(&["--steps", "4", "--shards", "2", "--save", shards.to_str().expect("UTF-8")], &dir)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(one.status.success(), "{}", text(&one));
    assert!(same_tensors(&ranks, &shards), "2 ranks and 2 shards trained different weights");
}

#[test]
fn a_run_of_two_ranks_resumes_on_one_as_two_shards_then_one_do() {
    let dir = common::temp_dir("mpi-resume");
    let ranks = dir.join("ranks.ckpt");
    let r = ranks.to_str().expect("UTF-8");
    let first = args(&["--steps", "3", "--save", r], &dir);
    assert!(mpirun(&[first.clone(), first]).status.success());
    let resume = |extra: &[&str], file: &str| -> Vec<String> {
        let d = dir.to_str().expect("UTF-8");
        ["char-lm", "train", "--steps", "6", "--sample-len", "0", "--resume", file, "--out", d]
            .iter()
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect()
    };
    let out = mpirun(&[resume(&[], r)]);
    assert!(out.status.success(), "{}", text(&out));

    let shards = dir.join("shards.ckpt");
    let s = shards.to_str().expect("UTF-8");
    let pente = |extra: &[&str]| common::pente(&args(extra, &dir).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(pente(&["--steps", "3", "--shards", "2", "--save", s]).status.success());
    let out = common::pente(&resume(&["--shards", "1"], s).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", text(&out));
    assert!(same_tensors(&ranks, &shards), "the resumed run differs from 2 shards then 1");
}

#[test]
fn a_rank_that_fails_ends_every_rank_naming_it() {
    let dir = common::temp_dir("mpi-fail");
    let good = args(&["--steps", "50"], &dir);
    let bad = args(&["--steps", "50", "--corpus", "/nonexistent/text.txt"], &dir);
    let started = std::time::Instant::now();
    let out = mpirun(&[good, bad]);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert_ne!(out.status.code(), Some(124), "the job hung until the timeout: {all}");
    assert!(all.contains("rank 1 of 2: error:") && all.contains("/nonexistent/text.txt"), "{all}");
    assert!(started.elapsed().as_secs() < 60, "{all}");
}

/// `pente digits train` on 1,024 training images (8 steps of 128 per epoch), no figures.
fn digits(extra: &[&str], out: &Path) -> Vec<String> {
    let base = ["digits", "train", "--model", "mlp", "--validation", "58976", "--eval-every", "0", "--no-figures"];
    let out = out.to_str().expect("a UTF-8 path");
    let data: &[&str] = if extra.contains(&"--data") {
        &[]
    } else {
        &["--data", concat!(env!("CARGO_MANIFEST_DIR"), "/../data/mnist")]
    };
    base.iter().chain(extra).chain(data).chain(&["--out", out]).map(|s| (*s).to_owned()).collect()
}

#[test]
fn digits_on_two_ranks_train_the_bits_of_two_shards_and_resume_on_one() {
    let dir = common::temp_dir("mpi-digits");
    let (ranks, shards) = (dir.join("ranks.ckpt"), dir.join("shards.ckpt"));
    let (r, s) = (ranks.to_str().expect("UTF-8"), shards.to_str().expect("UTF-8"));
    let app = digits(&["--epochs", "1", "--save", r], &dir);
    let out = mpirun(&[app.clone(), app]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("training across 2 processes").count(), 1, "{stdout}");
    assert_eq!(stdout.matches("epoch  1:").count(), 1, "rank 0 alone reports: {stdout}");
    assert_eq!(stdout.matches("saved ").count(), 1, "rank 0 alone saves: {stdout}");

    let pente = |args: Vec<String>| common::pente(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let one = pente(digits(&["--epochs", "1", "--shards", "2", "--save", s], &dir));
    assert!(one.status.success(), "{}", text(&one));
    assert!(same_tensors(&ranks, &shards), "2 ranks and 2 shards trained different weights");

    // The second epoch on one rank, and on one shard in one process.
    let resume = |file: &str, extra: &[&str]| {
        let d = dir.to_str().expect("UTF-8");
        ["digits", "train", "--epochs", "2", "--no-figures", "--resume", file, "--out", d]
            .iter()
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
    };
    let out = mpirun(&[resume(r, &[])]);
    assert!(out.status.success(), "{}", text(&out));
    let out = pente(resume(s, &["--shards", "1"]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(same_tensors(&ranks, &shards), "the resumed run differs from 2 shards then 1");
}

#[test]
fn a_digits_rank_that_fails_ends_every_rank_naming_it() {
    let dir = common::temp_dir("mpi-digits-fail");
    let good = digits(&["--epochs", "1"], &dir);
    let bad = digits(&["--epochs", "1", "--data", "/nonexistent/mnist"], &dir);
    let out = mpirun(&[good, bad]);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert_ne!(out.status.code(), Some(124), "the job hung until the timeout: {all}");
    assert!(all.contains("rank 1 of 2: error:") && all.contains("/nonexistent/mnist"), "{all}");
}

/// The best preset's CNN has batch norm: its running statistics come back as rank 0's, so two
/// ranks save what two shards in one process save, buffers included, and the buffers moved.
#[test]
fn batch_norm_statistics_on_two_ranks_are_those_of_two_shards() {
    let dir = common::temp_dir("mpi-batch-norm");
    let d = dir.to_str().expect("UTF-8");
    let run = |save: &Path, extra: &[&str]| {
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/mnist");
        let base = ["digits", "train", "--preset", "best", "--model", "cnn", "--epochs", "1", "--max-steps", "3"];
        let rest = ["--eval-every", "0", "--no-figures", "--data", data, "--out", d, "--save"];
        let save = save.to_str().expect("UTF-8");
        base.iter().chain(&rest).chain(&[save]).chain(extra).map(|s| (*s).to_owned()).collect::<Vec<_>>()
    };
    let (ranks, shards) = (dir.join("ranks.ckpt"), dir.join("shards.ckpt"));
    let app = run(&ranks, &[]);
    let out = mpirun(&[app.clone(), app]);
    assert!(out.status.success(), "{}", text(&out));
    let one = common::pente(&run(&shards, &["--shards", "2"]).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(one.status.success(), "{}", text(&one));
    assert!(same_tensors(&ranks, &shards), "2 ranks and 2 shards saved different weights or statistics");
    let saved = Checkpoint::load(&ranks).expect("it loads");
    let moved = saved.tensors.iter().filter(|(name, _)| name.ends_with("running_mean")).all(|(_, t)| match t {
        nn::AnyTensor::F32(t) => t.data().iter().any(|&m| m != 0.0),
        nn::AnyTensor::F64(t) => t.data().iter().any(|&m| m != 0.0),
    });
    assert!(moved, "a running mean is still its initial zeros");
}

/// `--time-limit` across ranks: every rank stops after the same step (rank 0's clock), so the
/// run ends and saves instead of one rank waiting in the final save while another waits in
/// the next step's all-reduce.
#[test]
fn a_time_limit_stops_every_rank_after_the_same_step() {
    let dir = common::temp_dir("mpi-time-limit");
    let ckpt = dir.join("limited.ckpt");
    let app = args(&["--steps", "100000", "--time-limit", "3", "--save", ckpt.to_str().expect("UTF-8")], &dir);
    let out = mpirun(&[app.clone(), app]);
    assert!(out.status.success(), "{}", text(&out));
    let saved = Checkpoint::load(&ckpt).expect("rank 0 saved the run");
    assert!(saved.step > 1 && saved.step < 100_000, "stopped at step {}", saved.step);
}
