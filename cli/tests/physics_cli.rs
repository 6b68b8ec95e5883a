//! `pente curve-fit --physics` from the outside: it prints the comparison at the unmeasured
//! floors and writes its figure beside the curve fit's.

mod common;
use common::{pente, temp_dir};

#[test]
fn curve_fit_physics_prints_the_comparison_and_writes_its_figure() {
    let out = temp_dir("physics");
    let o = pente(&["--out", out.to_str().expect("utf-8"), "curve-fit", "--physics"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("largest error at the unmeasured floors"))
        .unwrap_or_else(|| panic!("no comparison line in:\n{text}"));
    // "… quadratic 104.8 ms, physics net 14.3 ms, data-only net 17.4 ms"
    let ms: Vec<f64> = line
        .split(", ")
        .map(|part| {
            let number = part.trim_end_matches(" ms").rsplit(' ').next().expect("a number");
            number.parse().unwrap_or_else(|e| panic!("{part:?}: {e}"))
        })
        .collect();
    assert_eq!(ms.len(), 3, "{line}");
    assert!(ms[1] < ms[0], "the physics net must beat the quadratic at the unmeasured floors: {line}");
    for name in ["curve_fit.svg", "physics_fit.svg"] {
        let svg = std::fs::read_to_string(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(svg.starts_with("<svg"), "{name}");
    }
    let _ = std::fs::remove_dir_all(out);
}
