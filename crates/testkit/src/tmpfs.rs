//! A small real file system for tests of a full disk: a tmpfs mounted on a fresh
//! temp dir (needs root; without it the test is skipped, or fails when `CI` is set), unmounted
//! on drop.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct SmallDisk {
    dir: Option<tempfile::TempDir>,
}

impl SmallDisk {
    /// A tmpfs of `megabytes`, or None (skip) where mounting is not allowed.
    pub fn mount(megabytes: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("temp dir");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if mounted {
            return Some(SmallDisk { dir: Some(dir) });
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs to mount a tmpfs (run the tests as root)"
        );
        eprintln!("skipping: cannot mount a tmpfs here (not root)");
        None
    }

    pub fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .map_or(Path::new("/nonexistent"), |d| d.path())
    }

    /// Fill the file system with one file until it refuses more; remove it to free the space.
    pub fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let block = vec![0u8; 4096];
        while f.write_all(&block).and_then(|()| f.sync_all()).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = Command::new("umount").arg("-l").arg(dir.path()).status();
        }
    }
}
