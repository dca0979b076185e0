//! GPU drawing of the views (WGSL in `shaders/slice.wgsl`, through an `egui_wgpu` paint
//! callback). Each layer's volume is uploaded once as a 3-D `R32Float` texture (fusion
//! results are written into it slab by slab as they arrive); scrolling, zoom, window/level,
//! colour map and opacity only change a small uniform block per draw. A view is drawn as
//! its base layer (opaque) and then each overlay blended with its opacity, so opacity 0 %
//! leaves the base untouched and 100 % shows only the overlay.

use std::collections::HashMap;

use egui_wgpu::{CallbackResources, CallbackTrait, RenderState, ScreenDescriptor};
use wgpu::util::DeviceExt;

use super::layers::{Layer, LayerId};
use crate::volume::colormap::{ColorMap, LUT_SIZE, all_tables};

/// What a not-yet-computed voxel (NaN) becomes on the GPU; the shader draws nothing there.
pub const NOT_COMPUTED: f32 = -3.0e38;

/// The shader's per-draw block (`Draw` in slice.wgsl); all fields are `vec4<f32>`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DrawUniform {
    pub origin: [f32; 4],
    pub du: [f32; 4],
    pub dv: [f32; 4],
    pub rect: [f32; 4],
    pub window: [f32; 4],
    pub mode: [f32; 4],
    pub output: [f32; 4],
    /// On (1) or off (0), window low, window width, colour map row of the study lending
    /// its chroma (`chroma_volume` in the shader).
    pub chroma: [f32; 4],
    /// On (1) or off (0), and the value below which the layer is not drawn.
    pub threshold: [f32; 4],
}

impl DrawUniform {
    fn bytes(&self) -> Vec<u8> {
        [
            self.origin,
            self.du,
            self.dv,
            self.rect,
            self.window,
            self.mode,
            self.output,
            self.chroma,
            self.threshold,
        ]
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect()
    }
}

/// How overlays are masked for the A/B compare modes (`mode.x` in the shader).
pub const MASK_NONE: f32 = 0.0;
pub const MASK_CHECKERBOARD: f32 = 1.0;
pub const MASK_CURTAIN: f32 = 2.0;

/// One draw of one layer in a pane.
#[derive(Clone, Debug)]
pub struct PaneDraw {
    pub layer_key: u64,
    pub uniform: DrawUniform,
    /// Blended over what is drawn (an overlay) rather than replacing it (the base).
    pub blend: bool,
    /// How the layer's values are stored on the GPU (the CPU composition rounds the same).
    pub precision: Precision,
    /// The layer lending its chroma (`uniform.chroma` says how it is mapped), if any.
    pub chroma_key: Option<u64>,
}

/// A 3-D texture holding one layer's values.
struct VolumeTexture {
    texture: wgpu::Texture,
    view: wgpu::TextureView,
    /// Which texture this is (a new one gets a new number), so a draw slot knows whether
    /// its bind group still binds the current textures.
    serial: u64,
    generation: u64,
    dims: [usize; 3],
    precision: Precision,
}

/// How a layer's values are stored on the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// Studies and the fused image: 32-bit float, exactly the host values.
    Full,
    /// Reliability and mixer maps (values 0..1, drawn through a 256-entry colour map):
    /// 16-bit float, half the GPU memory, steps of at most 0.0005.
    Half,
}

impl Precision {
    pub fn of(id: LayerId) -> Self {
        match id {
            LayerId::Reliability(..) | LayerId::Alpha(_) => Self::Half,
            LayerId::Study(_) | LayerId::Fused => Self::Full,
        }
    }

    /// `value` as the GPU holds it.
    pub fn stored(self, value: f32) -> f32 {
        match self {
            Self::Full => value,
            Self::Half => half::f16::from_f32(value).to_f32(),
        }
    }

    fn format(self) -> wgpu::TextureFormat {
        match self {
            Self::Full => wgpu::TextureFormat::R32Float,
            Self::Half => wgpu::TextureFormat::R16Float,
        }
    }

    fn texel_bytes(self) -> usize {
        match self {
            Self::Full => 4,
            Self::Half => 2,
        }
    }

    /// Little-endian texels of `values`; NaN (not computed yet) becomes [`NOT_COMPUTED`]
    /// (−∞ in half precision, which the shader treats the same).
    fn texels(self, values: &[f32]) -> Vec<u8> {
        let stored = values
            .iter()
            .map(|v| if v.is_nan() { NOT_COMPUTED } else { *v });
        match self {
            Self::Full => stored.flat_map(f32::to_le_bytes).collect(),
            Self::Half => stored
                .flat_map(|v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
        }
    }
}

/// The GPU side of the viewer, kept in egui_wgpu's callback resources.
pub struct SliceRenderer {
    opaque: wgpu::RenderPipeline,
    blend: wgpu::RenderPipeline,
    bind_layout: wgpu::BindGroupLayout,
    lut: wgpu::TextureView,
    volumes: HashMap<u64, VolumeTexture>,
    next_serial: u64,
    /// Each pane's draws, bottom first, kept from frame to frame.
    prepared: HashMap<u64, Vec<DrawSlot>>,
    srgb_target: bool,
}

/// One draw of a pane as the GPU holds it: its uniform buffer and bind group, kept from frame
/// to frame while the textures it binds stay the same, so that drawing a frame makes no GPU
/// objects and only rewrites the uniform block.
struct DrawSlot {
    buffer: wgpu::Buffer,
    group: wgpu::BindGroup,
    /// Serials of the layer's texture and of the chroma texture bound.
    textures: (u64, u64),
    blend: bool,
}

impl SliceRenderer {
    fn new(device: &wgpu::Device, queue: &wgpu::Queue, format: wgpu::TextureFormat) -> Self {
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("slice.wgsl"),
            source: wgpu::ShaderSource::Wgsl(include_str!("../../shaders/slice.wgsl").into()),
        });
        let texture_entry = |binding, view_dimension| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Texture {
                sample_type: wgpu::TextureSampleType::Float { filterable: false },
                view_dimension,
                multisampled: false,
            },
            count: None,
        };
        let bind_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("slice layer"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::VERTEX_FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                texture_entry(1, wgpu::TextureViewDimension::D3),
                texture_entry(2, wgpu::TextureViewDimension::D2),
                texture_entry(3, wgpu::TextureViewDimension::D3),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("slice"),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        });
        let pipeline = |blend: Option<wgpu::BlendState>| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some("slice"),
                layout: Some(&pipeline_layout),
                vertex: wgpu::VertexState {
                    module: &shader,
                    entry_point: Some("vs_main"),
                    compilation_options: Default::default(),
                    buffers: &[],
                },
                primitive: wgpu::PrimitiveState::default(),
                depth_stencil: None,
                multisample: wgpu::MultisampleState::default(),
                fragment: Some(wgpu::FragmentState {
                    module: &shader,
                    entry_point: Some("fs_main"),
                    compilation_options: Default::default(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format,
                        blend,
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        let over = wgpu::BlendState {
            color: wgpu::BlendComponent {
                src_factor: wgpu::BlendFactor::SrcAlpha,
                dst_factor: wgpu::BlendFactor::OneMinusSrcAlpha,
                operation: wgpu::BlendOperation::Add,
            },
            alpha: wgpu::BlendComponent {
                src_factor: wgpu::BlendFactor::Zero,
                dst_factor: wgpu::BlendFactor::One,
                operation: wgpu::BlendOperation::Add,
            },
        };
        let rows = ColorMap::ALL.len() as u32;
        let lut = device.create_texture_with_data(
            queue,
            &wgpu::TextureDescriptor {
                label: Some("colour maps"),
                size: wgpu::Extent3d {
                    width: LUT_SIZE as u32,
                    height: rows,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::Rgba8Unorm,
                usage: wgpu::TextureUsages::TEXTURE_BINDING,
                view_formats: &[],
            },
            wgpu::util::TextureDataOrder::LayerMajor,
            &all_tables(),
        );
        Self {
            opaque: pipeline(None),
            blend: pipeline(Some(over)),
            bind_layout,
            lut: lut.create_view(&Default::default()),
            volumes: HashMap::new(),
            next_serial: 0,
            prepared: HashMap::new(),
            srgb_target: format.is_srgb(),
        }
    }

    /// Makes the GPU copy of `layer` current: uploads it when new or replaced, or writes
    /// the slices fusion changed since the last call. A grid larger than the device's 3-D
    /// textures is refused with a message (wgpu would otherwise abort).
    pub fn sync_layer(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        layer: &mut Layer,
    ) -> Result<(), String> {
        let key = layer.id.key();
        let precision = Precision::of(layer.id);
        let dims = layer.volume.geometry.dims;
        let limit = device.limits().max_texture_dimension_3d as usize;
        if dims.iter().any(|d| *d > limit) {
            return Err(format!(
                "{} is {}×{}×{} voxels: more than this GPU's 3-D texture limit of {limit} per \
                 axis, so it cannot be drawn",
                layer.id.name(),
                dims[0],
                dims[1],
                dims[2]
            ));
        }
        let stale = self
            .volumes
            .get(&key)
            .is_none_or(|v| v.generation != layer.generation || v.dims != dims);
        if stale {
            let texture = device.create_texture(&wgpu::TextureDescriptor {
                label: Some("layer volume"),
                size: extent(dims, dims[2]),
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D3,
                format: precision.format(),
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            });
            let view = texture.create_view(&Default::default());
            let serial = self.next_serial;
            self.next_serial += 1;
            // Slots binding the texture replaced would keep it alive until redrawn.
            self.prepared.clear();
            self.volumes.insert(
                key,
                VolumeTexture {
                    texture,
                    view,
                    serial,
                    generation: layer.generation,
                    dims,
                    precision,
                },
            );
            layer.dirty = Some(0..dims[2]);
        }
        let (Some(range), Some(target)) = (layer.dirty.take(), self.volumes.get(&key)) else {
            return Ok(());
        };
        let slice = dims[0] * dims[1];
        let values = &layer.volume.data[range.start * slice..range.end * slice];
        let bytes = precision.texels(values);
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &target.texture,
                mip_level: 0,
                origin: wgpu::Origin3d {
                    x: 0,
                    y: 0,
                    z: range.start as u32,
                },
                aspect: wgpu::TextureAspect::All,
            },
            &bytes,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some((dims[0] * precision.texel_bytes()) as u32),
                rows_per_image: Some(dims[1] as u32),
            },
            extent(dims, range.len()),
        );
        Ok(())
    }

    /// Forgets the GPU copies of layers not in `keep`.
    pub fn retain(&mut self, keep: &[u64]) {
        let before = self.volumes.len();
        self.volumes.retain(|key, _| keep.contains(key));
        if self.volumes.len() != before {
            // Their bind groups would keep the textures forgotten alive.
            self.prepared.clear();
        }
    }

    /// A new slot drawing `volume` (with `chroma`'s texture in the chroma slot).
    fn new_slot(
        &self,
        device: &wgpu::Device,
        volume: &VolumeTexture,
        chroma: &VolumeTexture,
        uniform: &[u8],
        blend: bool,
    ) -> DrawSlot {
        let buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("slice draw"),
            contents: uniform,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("slice draw"),
            layout: &self.bind_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: buffer.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(&volume.view),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: wgpu::BindingResource::TextureView(&self.lut),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: wgpu::BindingResource::TextureView(&chroma.view),
                },
            ],
        });
        DrawSlot {
            buffer,
            group,
            textures: (volume.serial, chroma.serial),
            blend,
        }
    }

    /// Bytes of GPU memory held by layer volumes.
    pub fn held_bytes(&self) -> u64 {
        self.volumes
            .values()
            .map(|v| (v.dims.iter().product::<usize>() * v.precision.texel_bytes()) as u64)
            .sum()
    }

    /// True when the target stores sRGB-encoded colour (the shader then linearises).
    pub fn srgb_target(&self) -> bool {
        self.srgb_target
    }
}

fn extent(dims: [usize; 3], slices: usize) -> wgpu::Extent3d {
    wgpu::Extent3d {
        width: dims[0] as u32,
        height: dims[1] as u32,
        depth_or_array_layers: slices as u32,
    }
}

/// Puts a [`SliceRenderer`] into `render_state`'s callback resources (once). GPU errors
/// (an allocation the device refuses, say) are logged instead of aborting the viewer.
pub fn install(render_state: &RenderState) {
    render_state
        .device
        .on_uncaptured_error(std::sync::Arc::new(|error| {
            log::error!("GPU error (the viewer carries on): {error}");
        }));
    let mut renderer = render_state.renderer.write();
    if renderer.callback_resources.get::<SliceRenderer>().is_none() {
        let slices = SliceRenderer::new(
            &render_state.device,
            &render_state.queue,
            render_state.target_format,
        );
        renderer.callback_resources.insert(slices);
    }
}

/// Runs `f` on the installed renderer.
pub fn with_renderer<R>(
    render_state: &RenderState,
    f: impl FnOnce(&mut SliceRenderer, &wgpu::Device, &wgpu::Queue) -> R,
) -> Option<R> {
    let mut renderer = render_state.renderer.write();
    let slices = renderer.callback_resources.get_mut::<SliceRenderer>()?;
    Some(f(slices, &render_state.device, &render_state.queue))
}

/// The paint callback of one pane: its draws, bottom first.
pub struct PaneCallback {
    pub pane: u64,
    pub draws: Vec<PaneDraw>,
}

impl CallbackTrait for PaneCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(renderer) = resources.get_mut::<SliceRenderer>() else {
            return Vec::new();
        };
        let mut previous = renderer
            .prepared
            .remove(&self.pane)
            .unwrap_or_default()
            .into_iter();
        let mut slots = Vec::with_capacity(self.draws.len());
        for draw in &self.draws {
            let Some(volume) = renderer.volumes.get(&draw.layer_key) else {
                continue;
            };
            // Without a chroma source the layer's own texture fills the slot (unread).
            let chroma = draw
                .chroma_key
                .and_then(|key| renderer.volumes.get(&key))
                .filter(|c| c.dims == volume.dims && c.precision == Precision::Full);
            let mut uniform = draw.uniform;
            if chroma.is_none() {
                uniform.chroma[0] = 0.0;
            }
            let chroma = chroma.unwrap_or(volume);
            let bytes = uniform.bytes();
            // The slot at the same place last frame, if it binds the same textures.
            let slot = match previous.next() {
                Some(mut slot) if slot.textures == (volume.serial, chroma.serial) => {
                    queue.write_buffer(&slot.buffer, 0, &bytes);
                    slot.blend = draw.blend;
                    slot
                }
                _ => renderer.new_slot(device, volume, chroma, &bytes, draw.blend),
            };
            slots.push(slot);
        }
        renderer.prepared.insert(self.pane, slots);
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &CallbackResources,
    ) {
        let Some(renderer) = resources.get::<SliceRenderer>() else {
            return;
        };
        let Some(groups) = renderer.prepared.get(&self.pane) else {
            return;
        };
        for slot in groups {
            pass.set_pipeline(if slot.blend {
                &renderer.blend
            } else {
                &renderer.opaque
            });
            pass.set_bind_group(0, &slot.group, &[]);
            pass.draw(0..3, 0..1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::studies::Side;

    #[test]
    fn maps_go_to_the_gpu_in_half_precision() {
        assert_eq!(Precision::of(LayerId::Alpha(1)), Precision::Half);
        assert_eq!(
            Precision::of(LayerId::Reliability(Side::A, 0)),
            Precision::Half
        );
        assert_eq!(Precision::of(LayerId::Fused), Precision::Full);
        let half = Precision::Half.texels(&[0.5, f32::NAN, 0.1234]);
        assert_eq!(half.len(), 6);
        let value = |i: usize| half::f16::from_le_bytes([half[2 * i], half[2 * i + 1]]).to_f32();
        assert_eq!(value(0), 0.5);
        // Not computed: below the shader's −1e38 test.
        assert!(value(1) < -1.0e38);
        assert!((value(2) - 0.1234).abs() < 5e-4);
        let full = Precision::Full.texels(&[0.1234]);
        assert_eq!(full, 0.1234f32.to_le_bytes());
    }

    /// What a shader value depends on, as far as lavapipe's uniform inlining is concerned.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum Source {
        Constant,
        /// Only the draw block (and constants): lavapipe would inline it.
        Uniform,
        /// Something that varies per fragment or per texel.
        Varying,
    }

    fn source_of(
        function: &wgpu::naga::Function,
        draw: wgpu::naga::Handle<wgpu::naga::GlobalVariable>,
        expression: wgpu::naga::Handle<wgpu::naga::Expression>,
    ) -> Source {
        use wgpu::naga::Expression as E;
        let of = |e| source_of(function, draw, e);
        let all = |items: &[wgpu::naga::Handle<wgpu::naga::Expression>]| {
            items
                .iter()
                .map(|e| of(*e))
                .max()
                .unwrap_or(Source::Constant)
        };
        match &function.expressions[expression] {
            E::Literal(_) | E::Constant(_) | E::Override(_) | E::ZeroValue(_) => Source::Constant,
            E::GlobalVariable(global) if *global == draw => Source::Uniform,
            E::Compose { components, .. } => all(components),
            E::Access { base, index } => all(&[*base, *index]),
            E::AccessIndex { base, .. } => of(*base),
            E::Splat { value, .. } => of(*value),
            E::Swizzle { vector, .. } => of(*vector),
            E::Load { pointer } => of(*pointer),
            E::Unary { expr, .. } | E::As { expr, .. } => of(*expr),
            E::Binary { left, right, .. } => all(&[*left, *right]),
            E::Select {
                condition,
                accept,
                reject,
            } => all(&[*condition, *accept, *reject]),
            E::Relational { argument, .. } => of(*argument),
            E::Math {
                arg,
                arg1,
                arg2,
                arg3,
                ..
            } => all(&[Some(*arg), *arg1, *arg2, *arg3]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()),
            _ => Source::Varying,
        }
    }

    /// Branch conditions of `block` (nested blocks included).
    fn conditions(
        block: &wgpu::naga::Block,
        found: &mut Vec<wgpu::naga::Handle<wgpu::naga::Expression>>,
    ) {
        use wgpu::naga::Statement as S;
        for statement in block.iter() {
            match statement {
                S::Block(inner) => conditions(inner, found),
                S::If {
                    condition,
                    accept,
                    reject,
                } => {
                    found.push(*condition);
                    conditions(accept, found);
                    conditions(reject, found);
                }
                S::Switch { selector, cases } => {
                    found.push(*selector);
                    for case in cases {
                        conditions(&case.body, found);
                    }
                }
                S::Loop {
                    body,
                    continuing,
                    break_if,
                } => {
                    found.extend(*break_if);
                    conditions(body, found);
                    conditions(continuing, found);
                }
                _ => {}
            }
        }
    }

    /// Branches of `source` that test only the draw block (what lavapipe 22.3 would inline,
    /// recompiling the shader for every frame's block and keeping each copy), as function
    /// names.
    fn branches_on_the_draw_block(source: &str) -> Vec<String> {
        let module = wgpu::naga::front::wgsl::parse_str(source).expect("slice.wgsl parses");
        let (draw, _) = module
            .global_variables
            .iter()
            .find(|(_, g)| g.name.as_deref() == Some("draw"))
            .expect("the draw block");
        let functions = module
            .functions
            .iter()
            .map(|(_, f)| f)
            .chain(module.entry_points.iter().map(|e| &e.function));
        let mut found = Vec::new();
        for function in functions {
            let mut tested = Vec::new();
            conditions(&function.body, &mut tested);
            for condition in tested {
                if source_of(function, draw, condition) == Source::Uniform {
                    found.push(function.name.clone().unwrap_or_default());
                }
            }
        }
        found
    }

    #[test]
    fn no_branch_of_the_slice_shader_tests_only_the_draw_block() {
        let shader = include_str!("../../shaders/slice.wgsl");
        assert_eq!(branches_on_the_draw_block(shader), Vec::<String>::new());
        // The check sees such a branch when there is one.
        let tested = shader.replace("if in.switches.z > 0.5 {", "if draw.mode.w > 0.5 {");
        assert_ne!(tested, shader);
        assert_eq!(
            branches_on_the_draw_block(&tested),
            vec!["fs_main".to_string()]
        );
    }
}
