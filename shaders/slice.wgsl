// One layer of one view: a plane through a volume texture, windowed, colour-mapped and
// (for overlays) blended over what is already drawn with the layer's opacity.
//
// The pane is covered by one triangle; `pane` runs over 0..1 across the pane (y down).
// `rect` is where the image sits in the pane (zoom and pan), in the same units. Image
// coordinates (u, v) map to continuous voxel coordinates origin + u·du + v·dv; the voxel
// whose cell holds the point is shown (nearest neighbour, as volume::plane does on the CPU).

struct Draw {
    origin: vec4<f32>,
    du: vec4<f32>,
    dv: vec4<f32>,
    // min.x, min.y, size.x, size.y of the image in the pane
    rect: vec4<f32>,
    // window low, window width, opacity, colour map row
    window: vec4<f32>,
    // mask mode (0 none, 1 checkerboard, 2 curtain), mask parameter,
    // base layer (1: opaque, draws black where there is no image), hidden (1: black only)
    mode: vec4<f32>,
    // 1 when the target stores sRGB-encoded colour (the table holds encoded values)
    output: vec4<f32>,
    // chroma from another study: on (1), its window low, window width, colour map row
    chroma: vec4<f32>,
    // lower threshold: on (1), the value below which nothing is drawn (the layers beneath show)
    threshold: vec4<f32>,
};

@group(0) @binding(0) var<uniform> draw: Draw;
@group(0) @binding(1) var volume: texture_3d<f32>;
@group(0) @binding(2) var lut: texture_2d<f32>;
// The study lending its chroma (same grid as `volume`); `volume` itself when chroma is off.
@group(0) @binding(3) var chroma_volume: texture_3d<f32>;

// The draw's switches reach the fragment stage as flat varyings, not as uniforms: Mesa's
// lavapipe (22.3) recompiles a shader with the values of the uniforms its branches test
// inlined each time a draw binds its block, and keeps every copy, which grew the viewer by
// about 1 MB a frame. With no branch on a uniform there is nothing to inline.
struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) pane: vec2<f32>,
    // mask mode, base layer, hidden, threshold on (as in `Draw`)
    @location(1) @interpolate(flat) switches: vec4<f32>,
    // chroma on, sRGB target
    @location(2) @interpolate(flat) more_switches: vec2<f32>,
};

@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    // A triangle covering the viewport: (-1,-1), (3,-1), (-1,3).
    let x = f32(i32(index & 1u) * 4 - 1);
    let y = f32(i32(index >> 1u) * 4 - 1);
    var out: VertexOut;
    out.position = vec4<f32>(x, y, 0.0, 1.0);
    out.pane = vec2<f32>((x + 1.0) * 0.5, (1.0 - y) * 0.5);
    out.switches = vec4<f32>(draw.mode.x, draw.mode.z, draw.mode.w, draw.threshold.x);
    out.more_switches = vec2<f32>(draw.chroma.x, draw.output.x);
    return out;
}

fn to_linear(c: vec3<f32>) -> vec3<f32> {
    let low = c / 12.92;
    let high = pow((c + 0.055) / 1.055, vec3<f32>(2.4));
    return select(high, low, c <= vec3<f32>(0.04045));
}

// `luma`'s colour: Y (BT.601, full range) kept, Cb/Cr taken from `source`, clamped to 0..1
// (volume::colour's formulas on 0..1 values; the CPU twin is app::compose).
fn with_chroma(luma: vec3<f32>, source: vec3<f32>) -> vec3<f32> {
    let y = dot(luma, vec3<f32>(0.299, 0.587, 0.114));
    let cb = dot(source, vec3<f32>(-0.168736, -0.331264, 0.5));
    let cr = dot(source, vec3<f32>(0.5, -0.418688, -0.081312));
    let rgb = vec3<f32>(y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb);
    return clamp(rgb, vec3<f32>(0.0), vec3<f32>(1.0));
}

// Colour where nothing is drawn: black for the base layer, nothing for an overlay.
fn empty(base: f32) -> vec4<f32> {
    if base < 0.5 {
        discard;
    }
    return vec4<f32>(0.0, 0.0, 0.0, 1.0);
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    if in.switches.z > 0.5 {
        return vec4<f32>(0.0, 0.0, 0.0, 1.0);
    }
    let uv = (in.pane - draw.rect.xy) / draw.rect.zw;
    if any(uv < vec2<f32>(0.0)) || any(uv >= vec2<f32>(1.0)) {
        return empty(in.switches.y);
    }
    let mask = in.switches.x;
    if mask > 0.5 && mask < 1.5 {
        let cell = vec2<i32>(floor(uv * draw.mode.y));
        if ((cell.x + cell.y) & 1) == 0 {
            discard;
        }
    } else if mask > 1.5 && uv.x < draw.mode.y {
        discard;
    }
    let point = floor(draw.origin.xyz + uv.x * draw.du.xyz + uv.y * draw.dv.xyz);
    let dims = vec3<f32>(textureDimensions(volume));
    if any(point < vec3<f32>(0.0)) || any(point >= dims) {
        return empty(in.switches.y);
    }
    let value = textureLoad(volume, vec3<i32>(point), 0).r;
    if value < -1.0e38 {
        // Not computed yet (NaN on the CPU side, uploaded as -3.0e38).
        return empty(in.switches.y);
    }
    if in.switches.w > 0.5 && value < draw.threshold.y {
        return empty(in.switches.y);
    }
    let t = clamp((value - draw.window.x) / draw.window.y, 0.0, 1.0);
    let entry = i32(round(t * 255.0));
    var rgb = textureLoad(lut, vec2<i32>(entry, i32(draw.window.w)), 0).rgb;
    if in.more_switches.x > 0.5 {
        let source = textureLoad(chroma_volume, vec3<i32>(point), 0).r;
        if source > -1.0e38 {
            let tc = clamp((source - draw.chroma.y) / draw.chroma.z, 0.0, 1.0);
            let row = i32(draw.chroma.w);
            rgb = with_chroma(rgb, textureLoad(lut, vec2<i32>(i32(round(tc * 255.0)), row), 0).rgb);
        }
    }
    if in.more_switches.y > 0.5 {
        rgb = to_linear(rgb);
    }
    return vec4<f32>(rgb, draw.window.z);
}
