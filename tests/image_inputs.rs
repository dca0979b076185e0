//! 2-D benchmark images (PNG) load as one-slice volumes: gray as one channel, pseudo-colour
//! as three. A generated image needs no outside data; the AANLIB pairs are used when present.

mod common;

use dualmine::io;

#[test]
fn generated_gray_and_colour_pngs_load_with_their_values() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gray = dir.path().join("gray.png");
    image::GrayImage::from_fn(7, 5, |x, y| image::Luma([(x * 10 + y) as u8]))
        .save(&gray)
        .expect("write gray");
    let v = io::load(&gray, None).expect("gray loads");
    assert_eq!((v.geometry.dims, v.channels), ([7, 5, 1], 1));
    assert_eq!(v.value(3, 2, 0), 32.0);
    let colour = dir.path().join("colour.png");
    image::RgbImage::from_fn(4, 3, |x, y| image::Rgb([x as u8, y as u8, 200]))
        .save(&colour)
        .expect("write colour");
    let v = io::load(&colour, None).expect("colour loads");
    assert_eq!((v.geometry.dims, v.channels), ([4, 3, 1], 3));
    assert_eq!(&v.data[v.offset(3, 2, 0)..][..3], &[3.0, 2.0, 200.0]);
    std::fs::write(dir.path().join("bad.png"), b"not a png").expect("write");
    assert!(io::load(&dir.path().join("bad.png"), None).is_err());
}

#[test]
fn aanlib_pairs_load_as_256_square_images() {
    let Some(root) = common::shared_data("aanlib/PET-MRI/test") else {
        return;
    };
    let name = std::fs::read_dir(root.join("MRI"))
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .min()
        .expect("a test pair");
    let mri = io::load(&root.join("MRI").join(&name), None).expect("MRI loads");
    let pet = io::load(&root.join("PET").join(&name), None).expect("PET loads");
    assert_eq!((mri.geometry.dims, mri.channels), ([256, 256, 1], 1));
    assert_eq!((pet.geometry.dims, pet.channels), ([256, 256, 1], 3));
}
