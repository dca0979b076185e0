//! Sessions saved to a small human-readable JSON file and reopened: the studies (paths and
//! series UIDs), the registration, layout, plane, crosshair, zoom, MIP angle, every layer's
//! display (shown, opacity, colour map, window, colours), the VOIs and the distances. Written
//! atomically. Reopening loads the studies again and then restores the rest; a study that
//! moved or changed is named, and the others open.

use std::path::Path;

use super::ViewerApp;
use super::layers::LayerId;
use super::marks::VoiKind;
use super::pane::{Layout, PaneKind, ViewSettings};
use super::path_dialog::Purpose;
use super::session::Session;
use super::studies::{Side, Source};
use super::vois;
use crate::io::session_file::{
    SavedLayer, SavedSession, SavedStudy, SavedTransform, SavedVoi, VERSION,
};
use crate::volume::colormap::ColorMap;
use crate::volume::intensity::Window;
use crate::volume::plane::Orientation;
use crate::volume::transform::Transform;

/// Every layout and its name in the file (read back by the same table).
const LAYOUTS: [(Layout, &str); 6] = [
    (Layout::SideBySide, "side by side"),
    (Layout::Single(PaneKind::Study(Side::A)), "A"),
    (Layout::Single(PaneKind::Study(Side::B)), "B"),
    (Layout::Single(PaneKind::Fusion), "fusion"),
    (Layout::Planes, "3 planes"),
    (Layout::WithMip, "MIP"),
];

/// The two studies and their names in the file.
const SIDES: [(Side, &str); 2] = [(Side::A, "A"), (Side::B, "B")];

/// The name `table` gives `value`.
fn name_of<T: PartialEq>(table: &[(T, &'static str)], value: T) -> &'static str {
    table
        .iter()
        .find(|(v, _)| *v == value)
        .map_or("", |(_, n)| n)
}

/// The value `table` names `name`.
fn named<T: Copy>(table: &[(T, &str)], name: &str) -> Option<T> {
    table.iter().find(|(_, n)| *n == name).map(|(v, _)| *v)
}

impl ViewerApp {
    /// What is on screen, as a saved session (`None` with no studies open).
    pub fn saved_session(&self) -> Option<SavedSession> {
        let session = self.session.as_ref()?;
        let studies = self
            .sources
            .iter()
            .zip([Some(&session.pair.a), session.pair.b.as_ref()])
            .filter_map(|(source, volume)| {
                Some(SavedStudy {
                    path: source.path().clone(),
                    series: match source {
                        Source::Series(_, n) => Some(*n),
                        Source::Path(_) => None,
                    },
                    series_instance_uid: volume?.identity.series_instance_uid.clone(),
                })
            })
            .collect();
        let layers = session
            .layers
            .iter()
            .map(|l| SavedLayer {
                layer: l.id.name(),
                visible: l.style.visible,
                opacity: l.style.opacity,
                colormap: l.style.colormap.name().into(),
                window: [l.style.window.center, l.style.window.width],
                colours_from: l.style.chroma_from.map(|s| name_of(&SIDES, s).into()),
                threshold: l.style.threshold,
            })
            .collect();
        let grid = &session.pair.a.geometry;
        let vois = session
            .vois
            .iter()
            .map(|v| match &v.kind {
                VoiKind::Sphere { centre, radius_mm } => SavedVoi::Sphere {
                    name: v.name.clone(),
                    centre: *centre,
                    centre_mm: grid.index_to_world(centre.map(|c| f64::from(c) - 0.5)),
                    radius_mm: *radius_mm,
                },
                VoiKind::Box { low, high } => SavedVoi::Box {
                    name: v.name.clone(),
                    low: *low,
                    high: *high,
                    low_mm: grid.index_to_world(low.map(|c| f64::from(c) - 0.5)),
                    high_mm: grid.index_to_world(high.map(|c| f64::from(c) - 0.5)),
                },
                VoiKind::Grown {
                    seed,
                    layer,
                    threshold,
                } => SavedVoi::Grown {
                    name: v.name.clone(),
                    seed: *seed,
                    seed_mm: grid.index_to_world(seed.map(|c| c as f64)),
                    layer: layer.name(),
                    threshold: *threshold,
                },
            })
            .collect();
        let s = &self.settings;
        Some(SavedSession {
            version: VERSION,
            studies,
            registration: session.registration.map(|(t, metric)| SavedTransform {
                angles_deg: t.angles_deg,
                translation_mm: t.translation_mm,
                centre_mm: t.centre_mm,
                scale: t.scale,
                shear: t.shear,
                metric,
            }),
            layout: name_of(&LAYOUTS, s.layout).into(),
            orientation: s.orientation.name().into(),
            cursor: session.cursor,
            zoom: s.zoom,
            pan: [s.pan.x, s.pan.y],
            mip_angle: s.mip_angle,
            layers,
            vois,
            distances: session
                .measurements
                .iter()
                .map(|m| [m.from, m.to])
                .collect(),
            detail: session.detail,
        })
    }

    /// The File menu's "Save session…": asks where, then saves.
    pub(super) fn save_session_dialog(&mut self) {
        if let Some(paths) = self.ask_path(Purpose::SaveSession) {
            self.use_paths(Purpose::SaveSession, paths);
        }
    }

    /// The File menu's "Open session…": asks which, then opens it.
    pub(super) fn open_session_dialog(&mut self) {
        if let Some(paths) = self.ask_path(Purpose::OpenSession) {
            self.use_paths(Purpose::OpenSession, paths);
        }
    }

    /// Writes the session to `path` (atomically, replacing an older one).
    pub fn save_session(&self, path: &Path) -> Result<(), String> {
        let saved = self
            .saved_session()
            .ok_or("open a study before saving a session")?;
        let text = serde_json::to_string_pretty(&saved).map_err(|e| e.to_string())?;
        crate::io::atomic::write_atomically(path, true, |out| out.write_all(text.as_bytes()))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Reads a session file and opens its studies; the rest is restored once they have
    /// loaded. Studies that are missing are named (in the error line) and the others open.
    pub fn open_session(&mut self, path: &Path) -> Result<(), String> {
        let saved = SavedSession::read(path)?;
        let (present, missing): (Vec<_>, Vec<_>) =
            saved.studies.iter().partition(|s| s.path.exists());
        if present.is_empty() {
            return Err("none of the session's studies is where it was".into());
        }
        let sources = present
            .iter()
            .map(|s| match s.series {
                Some(n) => Source::Series(s.path.clone(), n),
                None => Source::Path(s.path.clone()),
            })
            .collect();
        self.open(sources);
        if !missing.is_empty() {
            let names: Vec<String> = missing
                .iter()
                .map(|s| s.path.display().to_string())
                .collect();
            self.error = Some(format!(
                "the session's study {} is missing: opened the rest",
                names.join(", ")
            ));
        }
        self.pending_session = Some(saved);
        Ok(())
    }

    /// Restores a session's view once its studies have loaded (called after loading).
    pub(super) fn restore_pending_session(&mut self) {
        let Some(saved) = self.pending_session.take() else {
            return;
        };
        let Some(session) = &mut self.session else {
            return;
        };
        // A study found at its path but holding another series is named.
        let changed: Vec<String> = saved
            .studies
            .iter()
            .zip([Some(&session.pair.a), session.pair.b.as_ref()])
            .filter(|(s, v)| {
                v.is_some_and(|v| v.identity.series_instance_uid != s.series_instance_uid)
            })
            .map(|(s, _)| s.path.display().to_string())
            .collect();
        if !changed.is_empty() {
            self.error = Some(format!(
                "{} changed since the session was saved (another series is there)",
                changed.join(", ")
            ));
        }
        if let Some(t) = saved.registration {
            let transform = Transform {
                angles_deg: t.angles_deg,
                translation_mm: t.translation_mm,
                centre_mm: t.centre_mm,
                scale: t.scale,
                shear: t.shear,
            };
            if let Err(e) = super::registration::apply(session, transform, t.metric) {
                self.error = Some(format!("the session's registration: {e}"));
            }
        }
        let wants_outputs = saved
            .layers
            .iter()
            .any(|l| l.layer == LayerId::Fused.name());
        let fusing = session.job.is_some();
        session.detail = saved
            .detail
            .filter(|d| d.is_finite())
            .map(|d| d.clamp(0.0, 1.0));
        // A session fusing already (opened with the studies) fuses again only when the saved
        // detail control differs from the one its job runs at.
        let detail_changed = session
            .job
            .as_ref()
            .is_some_and(|job| job.detail != session.detail_or_default());
        if wants_outputs
            && session.fusion_allowed
            && (saved.registration.is_some() || !fusing || detail_changed)
        {
            self.start_fusion();
        }
        let Some(session) = &mut self.session else {
            return;
        };
        restore_styles(session, &saved.layers);
        let dims = session.dims();
        if (0..3).all(|a| saved.cursor[a] >= 0.0 && saved.cursor[a] < dims[a] as f32) {
            session.cursor = saved.cursor;
        }
        restore_marks(session, &saved);
        restore_view(&mut self.settings, &saved);
    }
}

/// The saved styles (visibility, opacity, colour map, window, colours from, threshold) on the layers of
/// the same names; saved layers the session does not have are left out.
fn restore_styles(session: &mut Session, layers: &[SavedLayer]) {
    for saved_layer in layers {
        let Some(layer) = session
            .layers
            .iter_mut()
            .find(|l| l.id.name() == saved_layer.layer)
        else {
            continue;
        };
        let style = &mut layer.style;
        style.visible = saved_layer.visible;
        style.opacity = saved_layer.opacity.clamp(0.0, 1.0);
        if let Some(map) = ColorMap::ALL
            .iter()
            .find(|m| m.name() == saved_layer.colormap)
        {
            style.colormap = *map;
        }
        let [center, width] = saved_layer.window;
        if center.is_finite() && width.is_finite() && width > 0.0 {
            style.window = Window { center, width };
        }
        style.chroma_from = saved_layer
            .colours_from
            .as_deref()
            .and_then(|name| named(&SIDES, name));
        style.threshold = saved_layer.threshold.filter(|t| t.is_finite());
    }
}

/// The saved VOIs, remade on the session's grid with their names (a VOI that cannot be made
/// says why in the VOI message), and the ruler's distances.
fn restore_marks(session: &mut Session, saved: &SavedSession) {
    for voi in &saved.vois {
        let before = session.vois.len();
        let message = match voi {
            SavedVoi::Sphere {
                centre, radius_mm, ..
            } => vois::add_sphere(session, *centre, *radius_mm),
            SavedVoi::Box { low, high, .. } => vois::add_box(session, *low, *high),
            SavedVoi::Grown {
                seed,
                layer,
                threshold,
                ..
            } => {
                let id = session
                    .layers
                    .iter()
                    .find(|l| l.id.name() == *layer)
                    .map(|l| l.id);
                match id {
                    Some(id) => vois::add_grown(session, *seed, id, *threshold),
                    None => Some(format!("the session's VOI on \"{layer}\": no such layer")),
                }
            }
        };
        if let Some(message) = message {
            session.voi_message = Some(message);
        }
        if session.vois.len() > before
            && let Some(last) = session.vois.last_mut()
        {
            last.name = voi.name().to_string();
        }
    }
    for [from, to] in &saved.distances {
        let m = vois::measurement(session, *from, *to);
        session.measurements.push(m);
    }
}

/// The saved layout, plane, zoom, pan and MIP angle, where they are valid.
fn restore_view(s: &mut ViewSettings, saved: &SavedSession) {
    s.layout = named(&LAYOUTS, &saved.layout).unwrap_or(Layout::SideBySide);
    if let Some(o) = Orientation::ALL
        .iter()
        .find(|o| o.name() == saved.orientation)
    {
        s.orientation = *o;
    }
    if saved.zoom.is_finite() && saved.zoom > 0.0 {
        s.zoom = saved.zoom.clamp(0.2, 20.0);
    }
    if saved.pan.iter().all(|p| p.is_finite()) {
        s.pan = egui::vec2(saved.pan[0], saved.pan[1]);
    }
    s.mip_angle = super::mip_pane::normalise(saved.mip_angle);
}
