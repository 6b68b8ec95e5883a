//! Misuse panics point at the caller's line and say what applies: checked in a process of its
//! own, as the test installs a panic hook to read where each panic says it happened.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

use autograd::{Tape, Tensor};

/// The file and line of the last panic, and its message.
static LAST: Mutex<Option<(String, u32, String)>> = Mutex::new(None);

fn catch(f: impl FnOnce()) -> (String, u32, String) {
    assert!(panic::catch_unwind(AssertUnwindSafe(f)).is_err(), "expected a panic");
    LAST.lock().unwrap().take().expect("the hook saw the panic")
}

#[test]
fn misuse_panics_name_the_callers_line_and_the_right_remedy() {
    panic::set_hook(Box::new(|info| {
        let loc = info.location().expect("a location");
        let msg = info.payload().downcast_ref::<String>().cloned().unwrap_or_default();
        *LAST.lock().unwrap() = Some((loc.file().to_string(), loc.line(), msg));
    }));
    let tape = Tape::<f64>::new();
    let x = tape.var(2.0);
    let c = tape.constant(3.0);
    let grads = (x * c).backward();

    let line = line!() + 1;
    let (file, at, msg) = catch(|| drop(grads[c].clone()));
    assert_eq!((file.as_str(), at), (file!(), line), "{msg}");
    assert!(msg.contains("it is a constant"), "{msg}");

    let v = tape.var(Tensor::from(vec![1.0, 2.0]));
    let (_, _, msg) = catch(|| drop(tape.grad(v * 2.0, &[v])));
    assert!(msg.starts_with("grad: the output has shape [2]") && !msg.contains("backward_with"), "{msg}");
    assert!(msg.contains(&format!("{}:", file!())), "the message names the caller's line: {msg}");
    let (_, _, msg) = catch(|| drop((v * 2.0).backward()));
    assert!(msg.starts_with("backward: the output has shape [2]") && msg.contains("backward_with"), "{msg}");
    let _ = panic::take_hook();
}
