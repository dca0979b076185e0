//! The metrics reproduce MODEL.md's table: the published peers' released CT–MRI results and
//! the plain average, scored on the 24 test pairs, to 4 decimals (EN, MI, CC, PSNR), and
//! AdaFuse's Qabf.

mod common;

use dualmine::io::aanlib::{Task, pairs};
use dualmine::io::image2d::read_gray8;
use dualmine::metrics::{GrayImage, MetricSet, Scores, Summary, score};

fn average(a: &GrayImage, b: &GrayImage) -> GrayImage {
    // numpy's round((A + B) / 2): halves go to the even neighbour (the table was made so;
    // rounding halves up gives EN 4.2330, MI 3.7703).
    let pixels = a
        .pixels
        .iter()
        .zip(&b.pixels)
        .map(|(&p, &q)| ((f32::from(p) + f32::from(q)) / 2.0).round_ties_even() as u8)
        .collect();
    GrayImage::new(a.width, a.height, pixels).expect("same size")
}

fn check(name: &str, summary: &Summary, expected: [f64; 4]) {
    let got = [
        summary.mean[0],
        summary.mean[1],
        summary.mean[2],
        summary.mean[3],
    ];
    eprintln!(
        "{name}: EN {:.4} MI {:.4} CC {:.4} PSNR {:.4}",
        got[0], got[1], got[2], got[3]
    );
    for (g, e) in got.iter().zip(expected) {
        assert!((g - e).abs() < 5e-5, "{name}: {got:?} vs {expected:?}");
    }
}

#[test]
fn peers_and_average_reproduce_the_papers_ct_mri_table() {
    let (Some(aanlib), Some(peers)) = (common::shared_data("aanlib"), common::shared_data("peers"))
    else {
        return;
    };
    let test = pairs(&aanlib, Task::CtMri, "test").expect("test pairs");
    assert_eq!(test.len(), 24);
    let mut ada = Vec::new();
    let mut asfe = Vec::new();
    let mut avg = Vec::new();
    for pair in &test {
        let a = read_gray8(&pair.a).expect("A");
        let b = read_gray8(&pair.b).expect("B");
        let file = format!("{}.png", pair.name);
        let run = |method: &str, out: &mut Vec<Scores>| {
            let f = read_gray8(&peers.join(method).join("CT-MRI").join(&file)).expect("peer");
            out.push(score(&a, &b, &f, MetricSet::WithoutFmi).expect("scores"));
        };
        run("AdaFuse", &mut ada);
        run("ASFE-Fusion", &mut asfe);
        avg.push(score(&a, &b, &average(&a, &b), MetricSet::WithoutFmi).expect("scores"));
    }
    let ada = Summary::of(&ada);
    check("AdaFuse", &ada, [5.0592, 3.3570, 0.8306, 64.0004]);
    check(
        "ASFE-Fusion",
        &Summary::of(&asfe),
        [5.4855, 3.1463, 0.8302, 63.9884],
    );
    check(
        "average",
        &Summary::of(&avg),
        [4.1805, 3.6855, 0.8308, 64.1184],
    );
    eprintln!("AdaFuse Qabf {:.4}", ada.mean[5]);
    assert!((ada.mean[5] - 0.3533).abs() < 5e-5);
}
