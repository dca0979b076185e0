//! One wgpu device for both burn (fusion) and eframe (drawing): burn creates the device with
//! the features its kernels need and hands the same instance, adapter, device and queue to
//! eframe (`WgpuSetup::Existing`), so fusion results can be drawn without a round trip
//! through host memory. Only a hardware GPU is shared this way; on a machine without one the
//! viewer draws with its own (software) adapter and fusion runs on the CPU backend.

use burn::tensor::{Device, DeviceKind};
use egui_wgpu::{WgpuSetup, WgpuSetupExisting};

/// A burn device and the eframe setup that draws on the same wgpu device.
pub struct SharedGpu {
    pub device: Device,
    pub setup: WgpuSetup,
    /// The adapter's name and backend, for the status bar.
    pub description: String,
}

/// Creates the shared device on an adapter of `kind`.
pub fn share(kind: DeviceKind) -> Result<SharedGpu, String> {
    let (device, setup) = crate::fusion::fuser::probe_wgpu(|| {
        Device::wgpu_options().device_kind(kind).init_with_setup()
    })?;
    let info = setup.adapter.get_info();
    let description = format!(
        "GPU {} ({:?}, shared with the viewer)",
        info.name, info.backend
    );
    Ok(SharedGpu {
        device,
        setup: WgpuSetup::Existing(WgpuSetupExisting {
            instance: setup.instance,
            adapter: setup.adapter,
            device: setup.device,
            queue: setup.queue,
        }),
        description,
    })
}

/// The shared device on a hardware (discrete, then integrated) GPU, if there is one.
pub fn share_hardware_gpu() -> Option<SharedGpu> {
    share(DeviceKind::DiscreteGpu(0))
        .or_else(|_| share(DeviceKind::IntegratedGpu(0)))
        .ok()
}
