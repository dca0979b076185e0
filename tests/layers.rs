//! Guards the layering of ARCHITECTURE.md: each layer imports only the frameworks it owns
//! (as rerun guards its dependency rules). Reads the `use` lines of every source file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Crates and layers above it that each layer must not import.
const RULES: [(&str, &[&str]); 7] = [
    (
        "src/metrics",
        &[
            "dicom_", "burn", "egui", "eframe", "rfd", "wgpu", "image", "crate::",
        ],
    ),
    (
        "src/baselines",
        &[
            "dicom_", "burn", "egui", "eframe", "rfd", "wgpu", "image", "crate::",
        ],
    ),
    (
        "src/volume",
        &[
            "dicom_",
            "burn",
            "egui",
            "eframe",
            "rfd",
            "wgpu",
            "image",
            "crate::io",
            "crate::export",
            "crate::fusion",
            "crate::app",
            "crate::phantom",
        ],
    ),
    (
        "src/io",
        &[
            "burn",
            "egui",
            "eframe",
            "rfd",
            "wgpu",
            "crate::export",
            "crate::fusion",
            "crate::app",
        ],
    ),
    (
        "src/export",
        &["burn", "egui", "eframe", "rfd", "wgpu", "crate::app"],
    ),
    (
        "src/fusion",
        &["dicom_", "egui", "eframe", "rfd", "crate::io", "crate::app"],
    ),
    (
        "src/phantom.rs",
        &["dicom_", "burn", "egui", "eframe", "crate::app"],
    ),
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
    } else if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            rust_files(&entry.path(), out);
        }
    }
}

#[test]
fn layers_import_only_what_they_own() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut violations = Vec::new();
    for (layer, forbidden) in RULES {
        let mut files = Vec::new();
        rust_files(&root.join(layer), &mut files);
        assert!(!files.is_empty(), "{layer} has no sources");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("source readable");
            for line in text.lines().map(str::trim) {
                let imported = line
                    .strip_prefix("use ")
                    .or_else(|| line.strip_prefix("pub use "));
                if let Some(path) = imported
                    && forbidden.iter().any(|f| path.starts_with(f))
                {
                    violations.push(format!("{}: {line}", file.display()));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}

/// The crate's modules, by module path (`["fusion", "ops", "conv"]`), with their files.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"))
        .map(|file| {
            let relative = file.strip_prefix(src).expect("under src");
            let mut path: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if path.last().is_some_and(|last| last == "mod") || path == ["lib"] {
                path.pop();
            }
            (path, file)
        })
        .collect()
}

/// Source text without comments, string and character literals (so that paths in them are
/// not read as imports).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let next = chars.get(i + 1).copied();
        match (chars[i], next) {
            ('/', Some('/')) => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ('/', Some('*')) => {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
            ('r', Some('#' | '"')) if i == 0 || !chars[i - 1].is_alphanumeric() => {
                let mut j = i + 1;
                let mut hashes = 0;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if chars.get(j) != Some(&'"') {
                    out.push(chars[i]);
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    if j >= chars.len() {
                        break;
                    }
                    if chars[j] == '"' && (1..=hashes).all(|h| chars.get(j + h) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                out.push_str("\"\"");
                i = j;
            }
            ('"', _) => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            ('\'', _) if chars.get(i + 2) == Some(&'\'') || next == Some('\\') => {
                // A character literal ('a', '\n', '\''); lifetimes have no closing quote.
                let mut j = i + 1;
                if chars.get(j) == Some(&'\\') {
                    j += 1;
                    while j < chars.len() && chars[j] != '\'' {
                        j += 1;
                    }
                } else {
                    j += 1;
                }
                i = j + 1;
                out.push_str("' '");
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// The paths a `use` tree names: `a::{b, c::{d as e}}` → `a::b`, `a::c::d`.
fn use_paths(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    fn walk(prefix: &str, tree: &str, out: &mut Vec<String>) {
        let tree = tree.trim();
        if let Some(inner) = tree.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            let (mut depth, mut start) = (0, 0);
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        walk(prefix, &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            walk(prefix, &inner[start..], out);
        } else if let Some(brace) = tree.find('{') {
            walk(&format!("{prefix}{}", &tree[..brace]), &tree[brace..], out);
        } else if !tree.is_empty() {
            let name = tree.split(" as ").next().unwrap_or(tree);
            out.push(format!("{prefix}{}", name.replace(' ', "")));
        }
    }
    let mut out = Vec::new();
    walk("", &tree, &mut out);
    out
}

/// The module a path in module `at` leads into: the longest module prefix of the path, for
/// paths from `crate`, `super` and `self` (other crates are not part of the drawing).
fn target(
    modules: &BTreeMap<Vec<String>, PathBuf>,
    at: &[String],
    path: &str,
) -> Option<Vec<String>> {
    let mut segments = path.split("::").filter(|s| !s.is_empty()).peekable();
    let mut full: Vec<String> = match segments.peek().copied() {
        Some("crate" | "dualmine") => {
            segments.next();
            Vec::new()
        }
        Some("super" | "self") => {
            let mut base = at.to_vec();
            while let Some(&s) = segments.peek() {
                match s {
                    "super" => {
                        base.pop();
                    }
                    "self" => {}
                    _ => break,
                }
                segments.next();
            }
            base
        }
        _ => return None,
    };
    full.extend(segments.map(str::to_string));
    (0..=full.len())
        .rev()
        .map(|n| full[..n].to_vec())
        .find(|prefix| modules.contains_key(prefix))
}

/// Edges of the import drawing: module → module it names a path into (`use` trees and
/// paths in the code, inline `mod name { … }` blocks followed).
fn import_edges(
    modules: &BTreeMap<Vec<String>, PathBuf>,
) -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, file) in modules {
        let text = code_only(&std::fs::read_to_string(file).expect("source readable"));
        let mut scopes: Vec<(usize, String)> = Vec::new();
        let mut depth = 0usize;
        let bytes = text.as_bytes();
        let mut i = 0;
        let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        while i < bytes.len() {
            let at_word = i == 0 || !is_ident(bytes[i - 1]);
            let rest = &text[i..];
            let current: Vec<String> = module
                .iter()
                .cloned()
                .chain(scopes.iter().map(|(_, name)| name.clone()))
                .collect();
            let mut add = |path: &str| {
                if let Some(to) = target(modules, &current, path)
                    && &to != module
                {
                    edges.entry(module.clone()).or_default().insert(to);
                }
            };
            if at_word && rest.starts_with("mod ") {
                let name: String = rest[4..]
                    .trim_start()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let after = rest[4..].trim_start()[name.len()..].trim_start();
                if after.starts_with('{') {
                    scopes.push((depth, name));
                    depth += 1;
                    i += rest.find('{').expect("brace") + 1;
                    continue;
                }
            }
            if at_word && rest.starts_with("use ") {
                let end = rest.find(';').unwrap_or(rest.len());
                for path in use_paths(&rest[4..end]) {
                    add(&path);
                }
                i += end;
                continue;
            }
            if at_word
                && ["crate::", "super::", "self::", "dualmine::"]
                    .iter()
                    .any(|p| rest.starts_with(p))
            {
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(rest.len());
                add(&rest[..end]);
                i += end;
                continue;
            }
            match bytes[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if scopes.last().is_some_and(|(d, _)| *d == depth) {
                        scopes.pop();
                    }
                }
                _ => {}
            }
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    edges
}

/// A circle in `edges`, if there is one (depth-first search).
fn circle<T: Ord + Clone>(edges: &BTreeMap<T, BTreeSet<T>>) -> Option<Vec<T>> {
    fn visit<T: Ord + Clone>(
        node: &T,
        edges: &BTreeMap<T, BTreeSet<T>>,
        path: &mut Vec<T>,
        done: &mut BTreeSet<T>,
    ) -> Option<Vec<T>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            return Some(path[start..].to_vec());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

/// The import drawing of ARCHITECTURE.md has no circle: not between files, and not between
/// rooms (folders; a file at the top of `src/` is a room of its own).
#[test]
fn no_import_circles_between_files_or_rooms() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    let edges = import_edges(&modules);
    assert!(
        edges.values().map(BTreeSet::len).sum::<usize>() > 100,
        "the drawing found the imports"
    );
    let name = |m: &Vec<String>| m.join("::");
    if let Some(found) = circle(&edges) {
        panic!(
            "import circle between files: {}",
            found.iter().map(name).collect::<Vec<_>>().join(" → ")
        );
    }
    let room = |m: &Vec<String>| -> String {
        let file = &modules[m];
        let folder = file.parent().expect("in a folder");
        if folder == src && file.file_name().is_some_and(|f| f != "mod.rs") {
            name(m)
        } else {
            folder
                .strip_prefix(&src)
                .expect("under src")
                .display()
                .to_string()
        }
    };
    let mut rooms: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, tos) in &edges {
        for to in tos {
            if room(from) != room(to) {
                rooms.entry(room(from)).or_default().insert(room(to));
            }
        }
    }
    if let Some(found) = circle(&rooms) {
        panic!("import circle between rooms: {}", found.join(" → "));
    }
}

/// The drawing sees what it must: a circle written into two modules is found.
#[test]
fn the_drawing_finds_a_circle() {
    let mut modules = BTreeMap::new();
    let dir = tempfile::tempdir().expect("temporary folder");
    for (name, text) in [
        ("a.rs", "use crate::b::Thing;\n// use crate::c;\n"),
        ("b.rs", "pub fn f() { super::a::g(); }\n"),
        ("c.rs", "const S: &str = \"crate::a::x\";\n"),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, text).expect("written");
        modules.insert(vec![name.trim_end_matches(".rs").to_string()], file);
    }
    let edges = import_edges(&modules);
    let found = circle(&edges).expect("a → b → a");
    assert_eq!(found.len(), 2);
    assert!(
        !edges.contains_key(&vec!["c".to_string()]),
        "strings are not imports"
    );
    assert_eq!(
        use_paths("super::{x::{A, B as C}, y}"),
        ["super::x::A", "super::x::B", "super::y"]
    );
}
