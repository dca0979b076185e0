//! Input that is not a pane's: keyboard shortcuts, the Open dialog, and folders dropped on
//! the window (the PACS panel's retrieved studies open the same way).

use egui::{Key, Vec2};

use super::ViewerApp;
use super::layers::LayerId;
use super::mip_pane;
use super::pane::{Layout, PaneKind};
use super::path_dialog::Purpose;
use super::studies::Source;
use crate::volume::plane::Orientation;

impl ViewerApp {
    /// Keyboard shortcuts (see [`panels::SHORTCUTS`]).
    pub(super) fn keyboard(&mut self, ctx: &egui::Context) {
        if ctx.egui_wants_keyboard_input() {
            return;
        }
        let orientation = self.settings.orientation;
        let (steps, toggles) = ctx.input(|i| {
            let mut steps = 0i64;
            let pressed = |k| i.key_pressed(k);
            steps += pressed(Key::ArrowUp) as i64 - pressed(Key::ArrowDown) as i64;
            steps += 10 * (pressed(Key::PageUp) as i64 - pressed(Key::PageDown) as i64);
            if pressed(Key::Home) {
                steps = i64::MIN / 2;
            }
            if pressed(Key::End) {
                steps = i64::MAX / 2;
            }
            let toggles: Vec<Key> = [
                Key::A,
                Key::C,
                Key::S,
                Key::V,
                Key::M,
                Key::F,
                Key::R,
                Key::O,
                Key::E,
                Key::P,
                Key::F1,
                Key::Questionmark,
                Key::ArrowLeft,
                Key::ArrowRight,
            ]
            .into_iter()
            .filter(|k| pressed(*k))
            .collect();
            (steps, toggles)
        });
        if steps != 0
            && let Some(session) = &mut self.session
        {
            session.scroll(orientation, steps);
        }
        for key in toggles {
            match key {
                Key::ArrowLeft | Key::ArrowRight if self.settings.layout == Layout::WithMip => {
                    let step = if key == Key::ArrowLeft {
                        -mip_pane::KEY_STEP_DEG
                    } else {
                        mip_pane::KEY_STEP_DEG
                    };
                    self.settings.mip_angle = mip_pane::normalise(self.settings.mip_angle + step);
                }
                Key::A => self.settings.orientation = Orientation::Axial,
                Key::C => self.settings.orientation = Orientation::Coronal,
                Key::S => self.settings.orientation = Orientation::Sagittal,
                Key::V => {
                    self.settings.layout = match self.settings.layout {
                        Layout::SideBySide => Layout::Single(PaneKind::Fusion),
                        Layout::Single(_) | Layout::Planes | Layout::WithMip => Layout::SideBySide,
                    }
                }
                Key::M => {
                    self.settings.layout = match self.settings.layout {
                        Layout::Planes => Layout::SideBySide,
                        _ => Layout::Planes,
                    }
                }
                Key::F => {
                    if let Some(layer) = self
                        .session
                        .as_mut()
                        .and_then(|s| s.layer_mut(LayerId::Fused))
                    {
                        layer.style.visible = !layer.style.visible;
                    }
                }
                Key::R => {
                    self.settings.zoom = 1.0;
                    self.settings.pan = Vec2::ZERO;
                }
                Key::O => self.open_dialog(),
                Key::E => self.export_form.open = !self.export_form.open,
                Key::P => self.pacs.open = !self.pacs.open,
                _ => self.help_open = !self.help_open,
            }
        }
    }

    pub(super) fn open_dialog(&mut self) {
        if let Some(folders) = self.ask_path(Purpose::OpenStudies) {
            self.use_paths(Purpose::OpenStudies, folders);
        }
    }

    /// Folders dropped on the window: two replace what is open, one becomes the second
    /// study of the one open (or the only study).
    pub(super) fn dropped(&mut self, ctx: &egui::Context) {
        let paths: Vec<_> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        self.open_dropped(paths);
    }

    /// Opens folders as if dropped on the window (also what the PACS panel retrieved).
    pub fn open_dropped(&mut self, paths: Vec<std::path::PathBuf>) {
        if paths.is_empty() {
            return;
        }
        let mut sources: Vec<Source> = match (paths.len(), self.sources.first()) {
            (1, Some(first)) if self.session.is_some() => vec![first.clone()],
            _ => Vec::new(),
        };
        sources.extend(paths.into_iter().map(Source::Path));
        sources.truncate(2);
        self.open(sources);
    }
}
