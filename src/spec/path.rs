//! Paths in the configuration: made absolute against the directory of `idsync.toml` and
//! normalised lexically, so the same file is always shown and compared the same way.

use std::path::{Component, Path, PathBuf};

/// Removes `.` components and resolves `..` components lexically (without
/// looking at the file system), so `/etc/idsync/../data/x.json` becomes
/// `/etc/data/x.json`.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `..` at the root stays at the root.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    out
}

/// `path` made absolute against `base_dir` (when relative) and normalised.
pub(crate) fn resolve(base_dir: &Path, path: &Path) -> PathBuf {
    normalize(&base_dir.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), Path::new("/a/c"));
        assert_eq!(normalize(Path::new("/../a")), Path::new("/a"));
        assert_eq!(normalize(Path::new("a/../../b")), Path::new("../b"));
    }
}
