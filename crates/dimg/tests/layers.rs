//! The engine's layers, as its files import each other: bytes (io, codecs, reads by URL) → magic
//! → partition maps and wrappers → containers → file systems → devices → operations. A file may
//! import its own layer or one below it, never one above; and no files import each other in a
//! circle. A module's root file (`mod.rs`) declaring and dispatching to its own children is how
//! Rust modules are built, not an import, so edges from a root file to its descendants are left
//! out of the circle check (a child importing what its root file shares is an ordinary edge).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Layers from the ground up; a file's layer is its top-level module.
const LAYERS: &[&[&str]] = &[
    &["bytes", "error", "secret", "io", "codec", "remote"],
    &["magic"],
    &["partition", "wrapper"],
    &["container"],
    &["fs"],
    &["device"],
    &["ops"],
];

type Module = Vec<String>;

/// Every source file of the engine by its module path (`container::udif::writer`), with its text
/// as the compiler sees it outside tests and comments.
fn modules() -> BTreeMap<Module, String> {
    fn walk(dir: &Path, out: &mut BTreeMap<Module, String>, root: &Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out, root);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).unwrap().with_extension("");
                let mut module: Module = relative
                    .iter()
                    .map(|c| c.to_string_lossy().into_owned())
                    .collect();
                if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                    module.pop();
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                let code: String = code
                    .lines()
                    .map(|l| l.split("//").next().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("\n");
                out.insert(module, code);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &mut out, &root);
    out
}

/// The paths a `use` tree names, each as its segments: `a::{b, c::d}` gives a::b and a::c::d.
fn use_paths(tree: &str, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    match tree.find('{') {
        None => {
            let mut path = prefix.to_vec();
            path.extend(
                tree.split("::")
                    .filter(|s| !s.is_empty())
                    .map(|s| s.split(" as ").next().unwrap_or(s).to_string()),
            );
            out.push(path);
        }
        Some(open) => {
            let mut head = prefix.to_vec();
            head.extend(
                tree[..open]
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
            let inner = &tree[open + 1..tree.rfind('}').unwrap()];
            let (mut depth, mut item) = (0, String::new());
            for c in inner.chars().chain([',']) {
                match c {
                    ',' if depth == 0 => {
                        if !item.is_empty() {
                            use_paths(&item, &head, out);
                        }
                        item.clear();
                    }
                    _ => {
                        depth += i32::from(c == '{') - i32::from(c == '}');
                        item.push(c);
                    }
                }
            }
        }
    }
}

/// The file a path names from `module`: the longest prefix that is a file of the engine.
fn resolve(files: &BTreeMap<Module, String>, module: &Module, path: &[String]) -> Option<Module> {
    let (mut base, rest): (Module, &[String]) = match path.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &path[1..]),
        Some("super") => {
            let ups = path.iter().take_while(|s| *s == "super").count();
            (
                module[..module.len().saturating_sub(ups)].to_vec(),
                &path[ups..],
            )
        }
        Some("self") => (module.clone(), &path[1..]),
        _ => (module.clone(), path),
    };
    let mut found = files.contains_key(&base).then(|| base.clone());
    for segment in rest {
        base.push(segment.clone());
        if !files.contains_key(&base) {
            break;
        }
        found = Some(base.clone());
    }
    found
}

/// Which files each file imports.
fn imports(files: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    let word = |s: &str| s.chars().all(|c| c.is_alphanumeric() || c == '_') && !s.is_empty();
    files
        .iter()
        .map(|(module, code)| {
            let children: Vec<&str> = code
                .split(';')
                .filter_map(|s| s.trim().rsplit_once("mod ").map(|(_, name)| name.trim()))
                .filter(|name| word(name))
                .collect();
            let mut paths = Vec::new();
            for statement in code.split(';') {
                let at = statement.match_indices("use ").map(|(i, _)| i).find(|&i| {
                    statement[..i].ends_with(|c: char| c.is_whitespace() || c == ')') || i == 0
                });
                if let Some(tree) = at.map(|i| &statement[i + 4..]) {
                    if !tree.contains(['(', '=', '"', '!']) {
                        use_paths(tree, &[], &mut paths);
                    }
                }
            }
            // Paths written in the code itself: crate::x::y, super::x, a child's name::x.
            for (at, _) in code.match_indices("::") {
                let start = code[..at]
                    .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .map_or(0, |i| i + 1);
                let end = code[at..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .map_or(code.len(), |i| at + i);
                let path: Vec<String> = code[start..end]
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                paths.push(path);
            }
            let edges = paths
                .iter()
                .filter(|p| {
                    p.first().is_some_and(|s| {
                        ["crate", "super", "self"].contains(&s.as_str())
                            || children.contains(&s.as_str())
                    })
                })
                .filter_map(|p| resolve(files, module, p))
                .filter(|target| target != module)
                .collect();
            (module.clone(), edges)
        })
        .collect()
}

fn layer(module: &Module) -> Option<usize> {
    let top = module.first()?;
    LAYERS.iter().position(|l| l.contains(&top.as_str()))
}

fn name(module: &Module) -> String {
    format!("crate::{}", module.join("::"))
}

#[test]
fn no_file_imports_a_layer_above_its_own() {
    let files = modules();
    let mut upward = Vec::new();
    for (from, targets) in imports(&files) {
        for to in targets {
            if let (Some(a), Some(b)) = (layer(&from), layer(&to)) {
                if b > a {
                    upward.push(format!("{} -> {}", name(&from), name(&to)));
                }
            }
        }
    }
    for top in files
        .keys()
        .filter_map(|m| m.first())
        .collect::<BTreeSet<_>>()
    {
        assert!(
            LAYERS.iter().any(|l| l.contains(&top.as_str())),
            "crate::{top} belongs to no layer: give it one in this test"
        );
    }
    assert!(
        upward.is_empty(),
        "imports from a lower layer to a higher one:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let files = modules();
    let graph: BTreeMap<Module, Vec<Module>> = imports(&files)
        .into_iter()
        .map(|(from, targets)| {
            let kept = targets
                .into_iter()
                .filter(|to| !to.starts_with(&from))
                .collect();
            (from, kept)
        })
        .collect();
    // Depth-first search; a file met again while still on the path closes a circle.
    fn visit(
        node: &Module,
        graph: &BTreeMap<Module, Vec<Module>>,
        path: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
        circles: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|m| m == node) {
            let circle: Vec<String> = path[at..].iter().chain([node]).map(name).collect();
            circles.push(circle.join(" -> "));
            return;
        }
        if !done.insert(node.clone()) {
            return;
        }
        path.push(node.clone());
        for next in &graph[node] {
            visit(next, graph, path, done, circles);
        }
        path.pop();
    }
    let (mut done, mut circles) = (BTreeSet::new(), Vec::new());
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(
        circles.is_empty(),
        "files that import each other:\n{}",
        circles.join("\n")
    );
}
