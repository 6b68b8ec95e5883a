//! Training and evaluation: mini-batch Adam (or AdamW) on the cross-entropy loss, one reused
//! tape, a progress bar per epoch with the loss and throughput, validation after each epoch, an
//! optional test-accuracy probe for the time to a target, and resumption from a checkpoint.
//!
//! Each epoch's batch order, shifts and dropout masks depend only on `(seed, epoch)`, so a run
//! resumed from a checkpoint written at the end of an epoch continues exactly as the run that
//! never stopped would have.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use autograd::{Rng, SeedableRng, Tape};
use indicatif::ProgressBar;
use nn::data::Batcher;
use nn::{loss, Adam, AdamConfig, AdamW, Checkpoint, Decay, LrSchedule, OneCycleLr, Optimizer};

use super::augment::{self, Augment};
use super::data::{batch, Digits, Mnist, Normalization, CLASSES};
use super::model::DigitsModel;
use super::parallel::StepOn;
// The history is the model's (saved in its checkpoint); its items stay reachable from here.
pub use super::model::{EpochRecord, History, TargetHit};
use crate::Error;

/// Accuracy, per-class accuracy and the confusion matrix of a model on a set of images.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Fraction classified right.
    pub accuracy: f64,
    /// Mean cross-entropy.
    pub loss: f64,
    /// `confusion[true][predicted]`: image counts.
    pub confusion: [[usize; CLASSES]; CLASSES],
    /// The predicted class of each image.
    pub predicted: Vec<usize>,
    /// The probability given to the predicted class, per image.
    pub confidence: Vec<f32>,
}

impl Evaluation {
    /// Accuracy of each true class (NaN for a class with no image).
    pub fn per_class(&self) -> [f64; CLASSES] {
        let mut out = [f64::NAN; CLASSES];
        for (c, row) in self.confusion.iter().enumerate() {
            let n: usize = row.iter().sum();
            if n > 0 {
                out[c] = row[c] as f64 / n as f64;
            }
        }
        out
    }

    /// A plain-text report: accuracy, per-class accuracy and the confusion matrix.
    pub fn report(&self) -> String {
        let total: usize = self.confusion.iter().flatten().sum();
        let wrong = self.predicted.len() - (self.accuracy * total as f64).round() as usize;
        let mut s = format!(
            "accuracy {:.2} % ({} of {total} wrong), mean loss {:.4}\n\nper class:\n",
            100.0 * self.accuracy,
            wrong,
            self.loss
        );
        for (c, a) in self.per_class().iter().enumerate() {
            let _ = writeln!(s, "  {c}: {:6.2} %  ({} images)", 100.0 * a, self.confusion[c].iter().sum::<usize>());
        }
        s.push_str("\nconfusion matrix (rows: true digit, columns: predicted):\n     ");
        for c in 0..CLASSES {
            let _ = write!(s, "{c:>6}");
        }
        s.push('\n');
        for (t, row) in self.confusion.iter().enumerate() {
            let _ = write!(s, "  {t}: ");
            for v in row {
                let _ = write!(s, "{v:>6}");
            }
            s.push('\n');
        }
        s
    }
}

/// Evaluates `model` on `digits` (evaluation mode: no dropout, no shifts).
pub fn evaluate(model: &DigitsModel, digits: &Digits) -> Evaluation {
    let idx: Vec<usize> = (0..digits.len()).collect();
    let x = batch(digits, &idx, &model.norm, 0, &mut Rng::seed_from_u64(0));
    let probs = model.probabilities(&x);
    let mut confusion = [[0usize; CLASSES]; CLASSES];
    let (mut loss, mut correct) = (0.0f64, 0usize);
    let mut predicted = Vec::with_capacity(digits.len());
    let mut confidence = Vec::with_capacity(digits.len());
    for (p, &t) in probs.iter().zip(&digits.labels) {
        let best = (0..CLASSES).fold(0, |b, c| if p[c] > p[b] { c } else { b });
        confusion[t][best] += 1;
        correct += usize::from(best == t);
        loss -= f64::from(p[t].max(1e-30)).ln();
        predicted.push(best);
        confidence.push(p[best]);
    }
    let n = digits.len().max(1) as f64;
    Evaluation { accuracy: correct as f64 / n, loss: loss / n, confusion, predicted, confidence }
}

/// Called after each epoch with its record (and the model, e.g. to save it).
pub type EpochHook<'a> = dyn FnMut(&DigitsModel, &dyn Optimizer<f32>, &EpochRecord) -> Result<(), Error> + 'a;

/// Trains `model` on `mnist` from where its history stands up to `model.config.epochs`,
/// ticking `bar` once per batch (its message shows the running loss and images per second).
/// `optimizer_state` resumes an optimizer saved in a checkpoint. `on_epoch` runs after every
/// epoch.
///
/// # Errors
/// [`Error::Checkpoint`] if `optimizer_state` does not fit the model; whatever `on_epoch`
/// returns.
pub fn train(
    model: &mut DigitsModel,
    mnist: &Mnist,
    optimizer_state: Option<&Checkpoint>,
    bar: &ProgressBar,
    on_epoch: &mut EpochHook<'_>,
) -> Result<(), Error> {
    train_on(model, mnist, optimizer_state, bar, on_epoch, &mut StepOn::OneTape)
}

/// [`train`] with each step computed as `step_on` says: on one tape, in shards on this
/// process's threads, or one shard per rank across processes (see [`super::parallel`]). In
/// shards or ranks, step `k`'s tapes are seeded from the run's seed and `k`.
///
/// # Errors
/// As [`train`].
pub fn train_on(
    model: &mut DigitsModel,
    mnist: &Mnist,
    optimizer_state: Option<&Checkpoint>,
    bar: &ProgressBar,
    on_epoch: &mut EpochHook<'_>,
    step_on: &mut StepOn,
) -> Result<(), Error> {
    let c = model.config.clone();
    let (train_part, val_part) = mnist.split(c.validation, c.seed);
    if c.normalize {
        model.norm = Normalization::fit(&train_part);
    }
    let n = train_part.len();
    let batcher = Batcher { batch_size: c.batch_size, shuffle: true, drop_last: false, seed: c.seed };
    let steps_per_epoch = batcher.num_batches(n) as u64;
    let total_steps = match c.max_steps {
        0 => steps_per_epoch * c.epochs as u64,
        m => (m as u64).min(steps_per_epoch * c.epochs as u64),
    };
    let schedule = LrSchedule {
        base_lr: c.learning_rate,
        warmup_steps: 0,
        decay: if c.cosine { Decay::Cosine { total_steps, min_lr: 0.01 * c.learning_rate } } else { Decay::Constant },
    };
    let one_cycle = if c.one_cycle {
        // OneCycleLr needs steps in both phases: 0.3 of the run must exceed one step.
        if total_steps < 4 {
            return Err(Error::Config(format!(
                "one_cycle: a one-cycle schedule needs at least 4 steps, this run has {total_steps}"
            )));
        }
        Some(OneCycleLr::new(c.learning_rate, total_steps))
    } else {
        None
    };
    let adam = AdamConfig { lr: c.learning_rate, weight_decay: c.weight_decay, ..Default::default() };
    let mut opt: Box<dyn Optimizer<f32>> =
        if c.weight_decay > 0.0 { Box::new(AdamW::new(adam)) } else { Box::new(Adam::new(adam)) };
    if let Some(ckpt) = optimizer_state {
        ckpt.restore_optimizer(opt.as_mut(), &model.store)?;
    }
    let done = model.history.epochs.len();
    for epoch in done..c.epochs {
        if model.history.steps >= total_steps {
            break;
        }
        bar.reset();
        bar.set_length(steps_per_epoch.min(total_steps - model.history.steps));
        bar.set_message(format!("epoch {}/{}", epoch + 1, c.epochs));
        let mut rng = Rng::seed_from_u64(c.seed ^ (epoch as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let mut tape = Tape::<f32>::with_seed(c.seed.wrapping_add(7919 * (epoch as u64 + 1)));
        tape.mixed_precision(c.precision);
        let (mut loss_sum, mut seen, mut correct, mut batches) = (0.0f64, 0usize, 0usize, 0usize);
        let mut train_s = 0.0f64;
        for idx in batcher.epoch(n, epoch as u64) {
            if model.history.steps >= total_steps {
                break;
            }
            let t0 = Instant::now();
            let labels: Vec<usize> = idx.iter().map(|&i| train_part.labels[i]).collect();
            let x = if c.rotate > 0.0 {
                let aug = Augment { max_degrees: c.rotate, max_shift: c.shift as f64 };
                augment::batch(&train_part, &idx, &model.norm, &aug, &mut rng) // (batch, 784)
            } else {
                batch(&train_part, &idx, &model.norm, c.shift, &mut rng) // (batch, 784)
            };
            let seed = c.seed.wrapping_add(7919 * (epoch as u64 + 1))
                ^ model.history.steps.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let (l, right, grads) = if let Some(out) = step_on.step(model, &x, &labels, seed) {
                out
            } else {
                let p = model.store.bind(&tape);
                let logits = model.net.forward(&p, tape.constant(x)); // (batch, 10)
                let right = (loss::accuracy(&logits.value(), &labels) * labels.len() as f64).round() as usize;
                let l = loss::cross_entropy(logits, &labels);
                (l.item(), right, p.backward(l))
            };
            tape.reset(); // drop the tape's references to the weights: Adam updates them in place
                          // A diverged run stops here, before its update makes the weights NaN.
            nn::check_loss(model.history.steps + 1, f64::from(l))?;
            match &one_cycle {
                Some(cycle) => cycle.apply(opt.as_mut()),
                None => schedule.apply(opt.as_mut()),
            };
            opt.step(&mut model.store, &grads);
            model.history.steps += 1;
            train_s += t0.elapsed().as_secs_f64();
            loss_sum += f64::from(l);
            batches += 1;
            seen += labels.len();
            correct += right;
            bar.inc(1);
            if batches % 20 == 0 {
                bar.set_message(format!(
                    "epoch {}/{} loss {:.4} {:.0} img/s",
                    epoch + 1,
                    c.epochs,
                    loss_sum / batches as f64,
                    seen as f64 / train_s
                ));
            }
            if c.eval_every > 0 && model.history.steps.is_multiple_of(c.eval_every as u64) {
                probe(model, &mnist.test, n, model.history.train_s + train_s);
            }
        }
        model.history.train_s += train_s;
        if c.eval_every > 0 {
            probe(model, &mnist.test, n, model.history.train_s);
        }
        let val = (!val_part.is_empty()).then(|| evaluate(model, &val_part));
        let record = EpochRecord {
            epoch: epoch + 1,
            train_loss: loss_sum / batches.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            val_loss: val.as_ref().map_or(f64::NAN, |v| v.loss),
            val_accuracy: val.as_ref().map_or(f64::NAN, |v| v.accuracy),
            seconds: train_s,
            samples_per_s: seen as f64 / train_s.max(1e-9),
        };
        model.history.epochs.push(record);
        on_epoch(model, opt.as_ref(), &record)?;
    }
    bar.finish_and_clear();
    Ok(())
}

/// The test-accuracy probe of the time-to-target measurement (its time is not counted).
fn probe(model: &mut DigitsModel, test: &Digits, train_len: usize, train_s: f64) {
    if model.history.first_hit.is_some() {
        return;
    }
    let acc = evaluate(model, test).accuracy;
    if acc >= model.config.target {
        let step = model.history.steps;
        let epochs = step as f64 * model.config.batch_size as f64 / train_len as f64;
        model.history.first_hit = Some(TargetHit { step, epochs, train_s, accuracy: acc });
    }
}

/// One line per epoch, as the progress is printed.
pub fn epoch_line(r: &EpochRecord) -> String {
    let val = if r.val_accuracy.is_nan() {
        "no validation part".to_string()
    } else {
        format!("val loss {:.4}, val acc {:.2} %", r.val_loss, 100.0 * r.val_accuracy)
    };
    format!(
        "epoch {:>2}: train loss {:.4}, train acc {:.2} %, {val}, {:.1} s, {:.0} img/s",
        r.epoch,
        r.train_loss,
        100.0 * r.train_accuracy,
        r.seconds,
        r.samples_per_s
    )
}

/// Saves `model` with `opt`'s state to `path` (what `--resume` reads).
///
/// # Errors
/// [`Error::Io`] or [`Error::Checkpoint`] if it cannot be written.
pub fn save_with_optimizer(model: &DigitsModel, opt: &dyn Optimizer<f32>, path: &Path) -> Result<(), Error> {
    crate::create_parent_dir(path)?;
    model.checkpoint().with_optimizer(opt, &model.store).save(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digits::data::PIXELS;
    use crate::digits::model::{Arch, DigitsConfig};

    /// Digits drawn as a bright bar whose row is the label, with noise: learnable in a few steps.
    fn synthetic(n: usize, seed: u64) -> Digits {
        let mut rng = Rng::seed_from_u64(seed);
        let mut pixels = vec![0u8; n * PIXELS];
        let labels: Vec<usize> = (0..n).map(|i| i % CLASSES).collect();
        for (i, &l) in labels.iter().enumerate() {
            for x in 4..24 {
                pixels[i * PIXELS + (2 + 2 * l) * 28 + x] = 200;
            }
            for _ in 0..20 {
                let at = (rand::RngCore::next_u64(&mut rng) % PIXELS as u64) as usize;
                pixels[i * PIXELS + at] = 255;
            }
        }
        Digits { pixels, labels }
    }

    fn mnist() -> Mnist {
        Mnist { train: synthetic(300, 1), test: synthetic(60, 2), sha256: vec![] }
    }

    fn config(arch: Arch, epochs: usize) -> DigitsConfig {
        DigitsConfig { epochs, batch_size: 32, validation: 40, shift: 1, ..DigitsConfig::for_arch(arch) }
    }

    #[test]
    fn mlp_learns_synthetic_digits() {
        let data = mnist();
        let mut model = DigitsModel::new(&config(Arch::Mlp, 3)).expect("valid");
        train(&mut model, &data, None, &ProgressBar::hidden(), &mut |_, _, _| Ok(())).expect("trains");
        let h = &model.history;
        assert_eq!((h.epochs.len(), h.steps), (3, 27));
        assert!(h.epochs[2].train_loss < h.epochs[0].train_loss, "{h:?}");
        assert!(evaluate(&model, &data.test).accuracy > 0.9);
    }

    #[test]
    fn one_cycle_schedule_sets_each_steps_rate_and_needs_four_steps() {
        let data = mnist();
        let config = DigitsConfig { one_cycle: true, learning_rate: 0.01, ..config(Arch::Mlp, 2) };
        let mut model = DigitsModel::new(&config).expect("valid");
        let mut rates = Vec::new();
        train(&mut model, &data, None, &ProgressBar::hidden(), &mut |_, opt, _| {
            rates.push(opt.lr());
            Ok(())
        })
        .expect("trains");
        // 260 training images in batches of 32: 9 steps an epoch, 18 in all.
        let cycle = OneCycleLr::new(0.01, 18);
        assert_eq!(rates, [cycle.lr(8), cycle.lr(17)]);
        assert!(model.history.epochs[1].train_loss < model.history.epochs[0].train_loss);

        let short = DigitsConfig { max_steps: 3, ..config };
        let err = train(
            &mut DigitsModel::new(&short).expect("valid"),
            &data,
            None,
            &ProgressBar::hidden(),
            &mut |_, _, _| Ok(()),
        )
        .expect_err("three steps leave the one-cycle schedule a phase without steps");
        assert!(err.to_string().contains("at least 4 steps, this run has 3"), "{err}");
    }

    #[test]
    fn resumed_run_matches_the_uninterrupted_one() {
        let data = mnist();
        let dir = std::env::temp_dir().join(format!("pente-digits-resume-{}", std::process::id()));
        let path = dir.join("m.ckpt");
        let hidden = ProgressBar::hidden();
        let mut straight = DigitsModel::new(&config(Arch::Mlp, 2)).expect("valid");
        train(&mut straight, &data, None, &hidden, &mut |_, _, _| Ok(())).expect("trains");

        // The same run, stopped (as by a crash) right after saving epoch 1.
        let mut first = DigitsModel::new(&config(Arch::Mlp, 2)).expect("valid");
        let stopped = train(&mut first, &data, None, &hidden, &mut |m, opt, _| {
            save_with_optimizer(m, opt, &path)?;
            Err(Error::Config("stopped".into()))
        });
        assert!(stopped.is_err());
        let ckpt = Checkpoint::load(&path).expect("just saved");
        let mut resumed = DigitsModel::from_checkpoint(&ckpt, &path).expect("a digits model");
        assert_eq!(resumed.history.epochs.len(), 1);
        train(&mut resumed, &data, Some(&ckpt), &hidden, &mut |_, _, _| Ok(())).expect("trains");
        let _ = std::fs::remove_dir_all(&dir);

        assert_eq!(resumed.history.steps, straight.history.steps);
        for ((_, name, a), (_, _, b)) in straight.store.iter().zip(resumed.store.iter()) {
            assert_eq!(a, b, "{name} differs after resuming");
        }
    }

    #[test]
    fn history_text_round_trips() {
        let h = History {
            epochs: vec![EpochRecord {
                epoch: 1,
                train_loss: 0.25,
                train_accuracy: 0.9,
                val_loss: f64::NAN,
                val_accuracy: f64::NAN,
                seconds: 1.5,
                samples_per_s: 1000.0,
            }],
            steps: 0,
            train_s: 1.5,
            first_hit: Some(TargetHit { step: 10, epochs: 0.5, train_s: 1.0, accuracy: 0.99 }),
        };
        let back = History::from_text(&h.to_text()).expect("parses");
        assert_eq!(back.first_hit, h.first_hit);
        assert_eq!(back.epochs[0].train_loss, 0.25);
        assert!(back.epochs[0].val_loss.is_nan());
        assert!(History::from_text("epoch 1 2").is_err());
    }
}
