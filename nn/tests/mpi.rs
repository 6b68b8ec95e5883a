//! Data parallelism over MPI, checked end to end: this program starts itself under `mpirun`
//! on localhost (2 and 3 ranks) and compares what the ranks compute with the in-process
//! [`DataParallel`] run of the same split, bit for bit in f64. Run with
//! `cargo test --release -p pente-nn --features mpi --test mpi` (needs Open MPI's `mpirun`).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use autograd::{Float, Tensor, Var};
use nn::comm::{Communicator, Ddp, DdpConfig, MpiCommunicator};
use nn::{loss, Activation, Adam, AdamConfig, Bound, Checkpoint, DataParallel, Mlp, Optimizer, ParamGrads, ParamStore};

const ROWS: usize = 12;

fn main() {
    if MpiCommunicator::launched() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        rank_main(&args);
    } else {
        parent();
    }
}

// ---- what each rank runs ----

fn rank_main(args: &[String]) {
    let comm = Arc::new(MpiCommunicator::init().expect("MPI initializes once"));
    match args[0].as_str() {
        "checks" => checks(&comm),
        "train" => {
            let (from, to): (u64, u64) = (args[1].parse().expect("from"), args[2].parse().expect("to"));
            train(&comm, from, to, Path::new(&args[3]));
        }
        "fail" => {
            if comm.rank() == 1 {
                comm.abort("cannot read data.txt: No such file or directory");
            }
            comm.barrier(); // the others wait for rank 1 here: they must be ended, not hang
        }
        "panic" => {
            assert!(comm.rank() != 1, "rank 1 meets a bug");
            comm.barrier();
        }
        other => panic!("unknown mode {other}"),
    }
}

/// The model and step `step`'s batch: the MLP, then `ROWS` rows of 5 features and labels.
fn problem<T: Float>(seed: u64) -> (ParamStore<T>, Mlp) {
    let mut store = ParamStore::<T>::with_seed(seed);
    let mlp = Mlp::new(store.scope("mlp"), &[5, 16, 16, 3], Activation::Tanh);
    (store, mlp)
}

fn batch<T: Float>(step: u64) -> (Vec<T>, Vec<usize>) {
    let s = step as usize;
    let x = (0..ROWS * 5).map(|i| T::from_f64(((i * 37 + s * 11) % 23) as f64 / 7.0 - 1.5)).collect();
    let y = (0..ROWS).map(|i| (i * 7 + s) % 3).collect();
    (x, y)
}

fn shard_loss<'t, T: Float>(p: &Bound<'t, T>, mlp: &Mlp, step: u64, shard: usize, shards: usize) -> Var<'t, T> {
    let (x, y) = batch::<T>(step);
    let r = ROWS * shard / shards..ROWS * (shard + 1) / shards;
    let xs = p.tape().constant(Tensor::from_vec(x[r.start * 5..r.end * 5].to_vec(), &[r.len(), 5]));
    loss::cross_entropy(mlp.forward(p, xs), &y[r.clone()]) * (r.len() as f64 / ROWS as f64)
}

/// The in-process reference: `DataParallel` with `shards` shards.
fn data_parallel<T: Float>(store: &ParamStore<T>, mlp: &Mlp, step: u64, shards: usize) -> (T, ParamGrads<T>) {
    let dp = DataParallel::new(shards);
    dp.value_and_grad(store, step, |p, shard| shard_loss(p, mlp, step, shard, shards))
}

fn ddp_step<T: Float>(ddp: &mut Ddp<T>, store: &ParamStore<T>, mlp: &Mlp, step: u64) -> (T, ParamGrads<T>) {
    let (rank, world) = (ddp.comm().rank(), ddp.comm().world_size());
    let seed = step.wrapping_add((rank as u64) << 32); // DataParallel's seed of shard `rank`
    ddp.value_and_grad(store, seed, |p| shard_loss(p, mlp, step, rank, world))
}

fn same_bits<T: Float>(a: &ParamGrads<T>, b: &ParamGrads<T>) -> bool {
    a.iter().count() == b.iter().count()
        && a.iter().all(|(id, x)| {
            b.get(id).is_some_and(|y| {
                x.data().iter().zip(y.data()).all(|(p, q)| p.to_f64().to_bits() == q.to_f64().to_bits())
            })
        })
}

/// Prints `ok NAME` or `FAILED NAME: why` (rank 0 only) for the parent to count; every rank
/// asserts at the end so that a failure also fails the job.
fn checks(comm: &Arc<MpiCommunicator>) {
    let (rank, world) = (comm.rank(), comm.world_size());
    let dyn_comm: Arc<dyn Communicator> = comm.clone();
    let mut failures = Vec::new();
    let mut report = |name: &str, ok: bool, why: String| {
        if rank == 0 {
            println!(
                "{} {name}{}",
                if ok { "ok" } else { "FAILED" },
                if ok { String::new() } else { format!(": {why}") }
            );
        }
        if !ok {
            failures.push(name.to_owned());
        }
    };

    // Parameters drawn differently on each rank are rank 0's after Ddp::new.
    let (mut store, mlp) = problem::<f64>(rank as u64);
    let ddp = Ddp::new(Arc::clone(&dyn_comm), DdpConfig { bucket_bytes: 8, check_every: 1 }, &mut store);
    let (reference, _) = problem::<f64>(0);
    let equal = store.iter().zip(reference.iter()).all(|(a, b)| a.2.data() == b.2.data());
    report("parameters_are_broadcast_from_rank_0", equal && ddp.check_parameters(&store).is_ok(), String::new());

    // f64: bit-identical to DataParallel with the same split, whatever the buckets.
    for bucket_bytes in [0, 8, 1 << 20] {
        let mut ddp = Ddp::new(Arc::clone(&dyn_comm), DdpConfig { bucket_bytes, check_every: 1 }, &mut store);
        let (want_loss, want) = data_parallel(&store, &mlp, 3, world);
        let (l, got) = ddp_step(&mut ddp, &store, &mlp, 3);
        let ok = l.to_bits() == want_loss.to_bits() && same_bits(&got, &want);
        report(
            &format!("f64_bit_identical_to_data_parallel_buckets_{bucket_bytes}"),
            ok,
            format!("loss {l} vs {want_loss}"),
        );
    }

    // f32: within 1e-6 of one tape.
    let (mut s32, m32) = problem::<f32>(0);
    let mut d32 = Ddp::new(Arc::clone(&dyn_comm), DdpConfig::default(), &mut s32);
    let (want_loss, want) = s32.value_and_grad(0, |p| shard_loss(p, &m32, 1, 0, 1));
    let (l, got) = ddp_step(&mut d32, &s32, &m32, 1);
    let worst = want
        .iter()
        .flat_map(|(id, w)| {
            w.data()
                .iter()
                .zip(got.get(id).expect("same parameters").data())
                .map(|(a, b)| (a - b).abs())
                .collect::<Vec<_>>()
        })
        .fold((l - want_loss).abs(), f32::max);
    report("f32_within_1e-6_of_one_tape", worst <= 1e-6, format!("largest difference {worst}"));

    // A rank whose parameters drift is named.
    if rank == world - 1 {
        let first = store.iter().next().expect("a parameter").0;
        store.get_mut(first).data_mut()[0] += 1e-12;
    }
    let named = ddp.check_parameters(&store).map_err(|e| e.ranks());
    report("a_drifting_rank_is_named", named == Err(vec![world - 1]), format!("{named:?}"));

    assert!(failures.is_empty(), "rank {rank}: failed: {failures:?}");
}

/// Adam steps `from..to` on `world` ranks, resuming from `path` when `from > 0`; rank 0 saves
/// to `path` at the end.
fn train(comm: &Arc<MpiCommunicator>, from: u64, to: u64, path: &Path) {
    let (mut store, mlp) = problem::<f64>(0);
    let mut opt = Adam::new(AdamConfig { lr: 0.05, ..Default::default() });
    if from > 0 {
        let ckpt = Checkpoint::load(path).expect("the checkpoint loads");
        ckpt.load_into(&mut store, true).expect("same model");
        ckpt.restore_optimizer(&mut opt, &store).expect("same optimizer");
    }
    let mut ddp = Ddp::new(comm.clone(), DdpConfig { bucket_bytes: 256, check_every: 2 }, &mut store);
    for step in from..to {
        let (_, grads) = ddp_step(&mut ddp, &store, &mlp, step);
        opt.step(&mut store, &grads);
    }
    ddp.save_on_rank_0(|| Checkpoint::from_store(&store).with_optimizer(&opt, &store).with_step(to), path)
        .expect("rank 0 saves");
}

// ---- the parent: starts the ranks and judges ----

fn mpirun(np: usize, args: &[&str]) -> Output {
    let me = std::env::current_exe().expect("the test's own path");
    let mut cmd = Command::new("timeout");
    cmd.args(["120", "mpirun", "-np", &np.to_string(), "--oversubscribe", "--bind-to", "none"]);
    if is_root() {
        cmd.arg("--allow-run-as-root");
    }
    cmd.arg(me).args(args).env("OMPI_MCA_btl_vader_single_copy_mechanism", "none").env("RAYON_NUM_THREADS", "1");
    cmd.output().expect("mpirun runs (install openmpi-bin)")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn parent() {
    let (mut passed, mut failed) = (0, 0);
    let mut judge = |name: &str, ok: bool, detail: &str| {
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if ok {
            passed += 1;
        } else {
            failed += 1;
            println!("{detail}");
        }
    };

    for np in [2, 3] {
        let out = mpirun(np, &["checks"]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        for line in stdout.lines() {
            if let Some(name) = line.strip_prefix("ok ") {
                judge(&format!("{np}_ranks::{name}"), true, "");
            } else if let Some(rest) = line.strip_prefix("FAILED ") {
                judge(&format!("{np}_ranks::{rest}"), false, "");
            }
        }
        let detail = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        judge(&format!("{np}_ranks::job_ends_cleanly"), out.status.success() && stdout.lines().count() >= 6, &detail);
    }

    // Steps 0..4 on 2 ranks, saved by rank 0; resumed on 3 ranks for steps 4..8. The in-process
    // run with 2 shards, then 3, must end on the same bits.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("run.ckpt");
    let path_str = path.to_str().expect("a UTF-8 path");
    let a = mpirun(2, &["train", "0", "4", path_str]);
    let b = mpirun(3, &["train", "4", "8", path_str]);
    let (mut store, mlp) = problem::<f64>(0);
    let mut opt = Adam::new(AdamConfig { lr: 0.05, ..Default::default() });
    for step in 0..8 {
        let (_, grads) = data_parallel(&store, &mlp, step, if step < 4 { 2 } else { 3 });
        opt.step(&mut store, &grads);
    }
    let detail = format!("{}{}", String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
    let same = a.status.success()
        && b.status.success()
        && Checkpoint::load(&path).is_ok_and(|ckpt| {
            let mut resumed = problem::<f64>(1).0;
            ckpt.load_into(&mut resumed, true).is_ok()
                && ckpt.step == 8
                && resumed.iter().zip(store.iter()).all(|(x, y)| x.2.data() == y.2.data())
        });
    judge("resumed_on_another_world_size_ends_on_the_in_process_bits", same, &detail);

    // One rank fails: the job ends, naming it, within the timeout.
    let out = mpirun(2, &["fail"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let named = stderr.contains("rank 1 of 2: cannot read data.txt: No such file or directory");
    judge(
        "a_failing_rank_ends_every_rank_naming_it",
        !out.status.success() && out.status.code() != Some(124) && named,
        &stderr,
    );
    let out = mpirun(2, &["panic"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let named = stderr.contains("rank 1 meets a bug") && stderr.contains("rank 1 of 2: panicked");
    judge(
        "a_panicking_rank_ends_every_rank_naming_it",
        !out.status.success() && out.status.code() != Some(124) && named,
        &stderr,
    );

    println!("\ntest result: {}. {passed} passed; {failed} failed", if failed == 0 { "ok" } else { "FAILED" });
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
