//! The wgpu device burn creates can be handed to eframe: both sides then use the same
//! adapter, and burn computes correctly on it (lavapipe in CI). Its own process, because a
//! wgpu runtime can be set up only once per process.

use burn::tensor::{DeviceKind, Tensor, TensorData};
use dualmine::app::gpu::share;

#[test]
fn burn_and_the_viewer_share_one_wgpu_device() {
    let shared = match share(DeviceKind::DefaultDevice) {
        Ok(shared) => shared,
        Err(reason) => {
            eprintln!("skipped: no wgpu adapter ({reason})");
            return;
        }
    };
    let egui_wgpu::WgpuSetup::Existing(existing) = &shared.setup else {
        panic!("expected an existing setup for eframe");
    };
    // The device eframe gets is a working wgpu device: it can hold a texture.
    let texture = existing.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("fusion result"),
        size: wgpu::Extent3d {
            width: 16,
            height: 16,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::R32Float,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    });
    assert_eq!(texture.width(), 16);
    // burn runs on the same device and computes correctly.
    let x = Tensor::<2>::from_data(
        TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]),
        &shared.device,
    );
    let product: Vec<f32> = x.clone().matmul(x).into_data().try_to_vec().expect("f32");
    assert_eq!(product, vec![7.0, 10.0, 15.0, 22.0]);
    assert!(shared.description.contains("shared with the viewer"));
}
