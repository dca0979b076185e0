//! Issue 16 on real pairs: the locality residual reproduces an independent computation on a
//! published peer's released images, a global blend scores zero, and the shipped networks'
//! reliability maps spread and are used (replacing them by 0.5 changes the fused image).

mod common;

use dualmine::fusion::fuser::{Backend, Fuser};
use dualmine::fusion::images::fuse_image_pair;
use dualmine::io::aanlib::{Task, pairs};
use dualmine::io::image2d::{as_image8 as image8, read};
use dualmine::metrics::{
    Image8, foreground, locality_residual, mean_absolute_difference, percentile_span,
};

#[test]
fn adafuse_locality_matches_an_independent_computation_and_the_average_scores_zero() {
    let (Some(aanlib), Some(peers)) = (common::shared_data("aanlib"), common::shared_data("peers"))
    else {
        return;
    };
    // numpy, written separately from this crate (issue 16's definition; BT.601 Y rounded,
    // colour A keyed by its RGB, clipped fused RGB left out): mean over the 24 test pairs.
    for (task, expected) in [
        (Task::CtMri, 0.9506),
        (Task::PetMri, 0.4688),
        (Task::SpectMri, 0.6396),
    ] {
        let test = pairs(&aanlib, task, "test").expect("test pairs");
        let (mut sum, mut average_sum) = (0.0, 0.0);
        for pair in &test {
            let (a, b) = (read(&pair.a).expect("A"), read(&pair.b).expect("B"));
            let fused = read(
                &peers
                    .join("AdaFuse")
                    .join(task.folder())
                    .join(format!("{}.png", pair.name)),
            )
            .expect("AdaFuse result");
            sum += locality_residual(image8(&a), image8(&b), image8(&fused)).expect("cells");
            // The plain average of the gray planes is a global function: zero.
            if a.channels == 1 {
                let mean: Vec<f32> = a
                    .data
                    .iter()
                    .zip(&b.data)
                    .map(|(x, y)| ((x + y) / 2.0).round())
                    .collect();
                let mean = Image8 {
                    data: &mean,
                    channels: 1,
                };
                average_sum += locality_residual(image8(&a), image8(&b), mean).expect("cells");
            }
        }
        let got = sum / test.len() as f64;
        eprintln!("{task:?}: AdaFuse locality {got:.4} (numpy {expected})");
        assert!(
            (got - expected).abs() < 0.01,
            "{task:?}: {got} vs {expected}"
        );
        assert_eq!(average_sum, 0.0);
    }
}

#[test]
fn shipped_reliability_maps_spread_and_change_the_fusion() {
    let Some(aanlib) = common::shared_data("aanlib") else {
        return;
    };
    for task in Task::ALL {
        let fuser = Fuser::shipped(task.name(), Backend::Cpu).expect("built-in weights");
        let ablated = fuser.with_fixed_reliability(0.5);
        let pair = &pairs(&aanlib, task, "test").expect("test pairs")[0];
        let (a, b) = (read(&pair.a).expect("A"), read(&pair.b).expect("B"));
        let result = fuse_image_pair(&fuser, &a, &b).expect("fused");
        let without = fuse_image_pair(&ablated, &a, &b).expect("fused without maps");
        let mask = foreground(image8(&a), image8(&b));
        let span = percentile_span(&result.maps.reliability_a[0], &mask).expect("foreground");
        let change = mean_absolute_difference(&result.maps.fused, &without.maps.fused, &mask)
            .expect("foreground")
            * 255.0;
        let locality =
            locality_residual(image8(&a), image8(&b), image8(&result.image)).expect("cells");
        eprintln!(
            "{task:?} {}: span {span:.3}, change {change:.2}, locality {locality:.2}",
            pair.name
        );
        // Issue 16, line 3: at least 0.15 on every pair; the ablation at least 1 grey level
        // on average over a task; checked here on each task's first test pair (the task means
        // are in the README).
        assert!(span >= 0.15, "{task:?}: span {span}");
        assert!(change >= 1.0, "{task:?}: change {change}");
        assert!(locality > 0.3, "{task:?}: locality {locality}");
    }
}

/// Issue 36, line 3: at the detailed end (d = 1) of the CT–MRI model, the mixer weights and
/// the reliability maps shape the image — each set to 0.5 everywhere moves the fused image
/// by at least 2 grey levels over the foreground — and the detail control adds local detail
/// that the faithful end (d = 0) does not have. On the first test pair.
#[test]
fn at_full_detail_the_maps_and_the_mixer_shape_the_ct_mri_fusion() {
    let Some(aanlib) = common::shared_data("aanlib") else {
        return;
    };
    let mut fuser = Fuser::shipped("ct-mri", Backend::Cpu).expect("built-in weights");
    assert!(fuser.has_local_part());
    let pair = &pairs(&aanlib, Task::CtMri, "test").expect("test pairs")[0];
    let (a, b) = (read(&pair.a).expect("A"), read(&pair.b).expect("B"));
    let mask = foreground(image8(&a), image8(&b));
    let locality_at = |fuser: &Fuser| {
        let result = fuse_image_pair(fuser, &a, &b).expect("fused");
        locality_residual(image8(&a), image8(&b), image8(&result.image)).expect("cells")
    };
    fuser.set_detail(0.0);
    let faithful = locality_at(&fuser);
    fuser.set_detail(1.0);
    let detailed = locality_at(&fuser);
    let result = fuse_image_pair(&fuser, &a, &b).expect("fused");
    let change = |other: &Fuser| {
        let moved = fuse_image_pair(other, &a, &b).expect("fused");
        mean_absolute_difference(&result.maps.fused, &moved.maps.fused, &mask).expect("foreground")
            * 255.0
    };
    let (alpha, maps) = (
        change(&fuser.with_fixed_alpha(0.5)),
        change(&fuser.with_fixed_reliability(0.5)),
    );
    eprintln!(
        "CT-MRI {}: locality {faithful:.2} at d = 0, {detailed:.2} at d = 1; at d = 1 α at 0.5 \
         moves it {alpha:.2}, the maps at 0.5 {maps:.2} grey levels",
        pair.name
    );
    assert!(alpha >= 2.0, "α at 0.5: {alpha}");
    assert!(maps >= 2.0, "maps at 0.5: {maps}");
    assert!(
        detailed >= 10.0 * faithful.max(1.0),
        "{faithful} → {detailed}"
    );
}
