//! Owner-only files. The data directory holds every message and every password hash, so
//! mailroom keeps it `0700` and the database files in it `0600`; a backup gets the same.
//!
//! The modes are set explicitly (chmod), never left to the umask: with the usual umask 022 a
//! new directory is 0755 and a new file 0644, readable by every local user. Changing the
//! process umask instead is no option in a multi-threaded server (it is process-wide).
//!
//! - [`prepare_data_dir`] runs on every open of the store. It creates the directory 0700,
//!   creates `mailroom.db` 0600 *before* SQLite opens it, and takes the group and other bits
//!   off what already exists, so a data directory made by an older version (0755, its database
//!   0644) is tightened too. Each change is logged at info.
//! - SQLite creates `mailroom.db-wal` and `mailroom.db-shm` with the mode of the database file
//!   (and chmods them to it if the umask took bits away), also when it recreates them after a
//!   checkpoint; so with the database 0600 they are 0600 from their first byte. The tests check
//!   this on a real server started with umask 022.
//! - A data directory that also holds files that are not mailroom's (a `data_dir` pointed at a
//!   shared directory) is not changed: taking a directory away from others is the admin's call.
//!   [`exposed`] lists what other users can still open, for the start-up warning.
//!
//! On other platforms these functions only create what is needed.

use std::io;
use std::path::{Path, PathBuf};

/// The database file in the data directory.
pub const DB_FILE: &str = "mailroom.db";

/// The database and the files SQLite keeps beside it.
const DB_FILES: [&str; 4] = [
    DB_FILE,
    "mailroom.db-wal",
    "mailroom.db-shm",
    "mailroom.db-journal",
];

/// What mailroom itself keeps in a data directory (the database files, `tls/` and `dkim/`).
const OWN_NAMES: [&str; 6] = [
    DB_FILE,
    "mailroom.db-wal",
    "mailroom.db-shm",
    "mailroom.db-journal",
    "tls",
    "dkim",
];

/// A file or directory that other local users can open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposed {
    pub path: PathBuf,
    /// The permission bits (`0o755`).
    pub mode: u32,
    pub is_dir: bool,
    /// Why mailroom did not tighten it itself, when it knows.
    pub why: Option<String>,
}

impl std::fmt::Display for Exposed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.is_dir {
            "the data directory"
        } else {
            "the database file"
        };
        write!(
            f,
            "{what} {} is open to other local users (mode {:04o}), who can read the mail and the password hashes",
            self.path.display(),
            self.mode
        )?;
        if let Some(why) = &self.why {
            write!(f, "; {why}")?;
        }
        write!(
            f,
            "; make it owner-only: chmod {} {}",
            if self.is_dir { "700" } else { "600" },
            self.path.display()
        )
    }
}

/// Creates `dir` if needed and makes it and the database files in it owner-only (see the
/// module documentation). Only a failure to create the directory or the database file is an
/// error; a mode that cannot be changed is left for [`exposed`] to report.
pub fn prepare_data_dir(dir: &Path) -> io::Result<()> {
    imp::prepare_data_dir(dir)
}

/// Creates the file `path` empty and owner-only (0600), or fails if it exists. Used for a
/// backup copy before SQLite writes into it, so the copy is never readable by others, not
/// even for a moment.
pub fn create_private_file(path: &Path) -> io::Result<()> {
    imp::create_private_file(path)
}

/// Makes a directory mailroom created (or was given empty) owner-only: 0700.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    imp::set_mode(dir, 0o700)
}

/// Makes a file mailroom wrote owner-only: 0600.
pub fn private_file(path: &Path) -> io::Result<()> {
    imp::set_mode(path, 0o600)
}

/// The data directory and database files that group or other users can open (mode bits
/// `0o077`), for a warning at start-up. Empty when everything is owner-only, and always
/// empty on platforms without Unix modes.
/// Octets an unprivileged process may still write on the file system that holds `dir`
/// (statvfs: available blocks times the fragment size).
pub fn available_space(dir: &Path) -> io::Result<u64> {
    imp::available_space(dir)
}

pub fn exposed(dir: &Path) -> Vec<Exposed> {
    imp::exposed(dir)
}

/// Names in `dir` that are not mailroom's own (at most a few, for a message).
fn foreign_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !OWN_NAMES.contains(&name.as_str()) {
            out.push(name);
            if out.len() >= 3 {
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(unix)]
mod imp {
    use super::*;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    /// Group and other permission bits.
    const OTHERS: u32 = 0o077;

    pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }

    pub fn available_space(dir: &Path) -> io::Result<u64> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the path"))?;
        let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
        // SAFETY: `c` is a NUL-terminated path and `st` points to writable memory of the
        // size statvfs expects; the struct is read only after the call succeeded.
        let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: statvfs returned 0, so it filled the struct.
        let st = unsafe { st.assume_init() };
        #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
        Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
    }

    fn mode_of(path: &Path) -> io::Result<u32> {
        Ok(std::fs::metadata(path)?.permissions().mode() & 0o7777)
    }

    /// Takes the group and other bits off `path` if it has any; logs the change.
    fn tighten(path: &Path) {
        let Ok(mode) = mode_of(path) else {
            return; // gone, or not ours to look at: `exposed` reports what remains
        };
        if mode & OTHERS == 0 {
            return;
        }
        let new = mode & !OTHERS;
        match set_mode(path, new) {
            Ok(()) => tracing::info!(
                path = %path.display(),
                "made owner-only: mode {mode:04o} -> {new:04o}"
            ),
            Err(e) => tracing::debug!(path = %path.display(), error = %e, "cannot change the mode"),
        }
    }

    pub fn prepare_data_dir(dir: &Path) -> io::Result<()> {
        let created = !dir.exists();
        if created {
            std::fs::create_dir_all(dir)?;
            set_mode(dir, 0o700)?;
        } else if foreign_names(dir).is_ok_and(|names| names.is_empty()) {
            tighten(dir);
        }
        let db = dir.join(DB_FILE);
        match create_private_file(&db) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        for name in DB_FILES {
            let path = dir.join(name);
            if path.exists() {
                tighten(&path);
            }
        }
        Ok(())
    }

    pub fn create_private_file(path: &Path) -> io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        // The mode given to open() passes through the umask; say it explicitly.
        set_mode(path, 0o600)
    }

    pub fn exposed(dir: &Path) -> Vec<Exposed> {
        let mut out = Vec::new();
        if let Ok(mode) = mode_of(dir) {
            if mode & OTHERS != 0 {
                let why = match foreign_names(dir) {
                    Ok(names) if !names.is_empty() => Some(format!(
                        "mailroom leaves it as it is because it also holds other files ({})",
                        names.join(", ")
                    )),
                    _ => None,
                };
                out.push(Exposed {
                    path: dir.to_path_buf(),
                    mode,
                    is_dir: true,
                    why,
                });
            }
        }
        for name in DB_FILES {
            let path = dir.join(name);
            if let Ok(mode) = mode_of(&path) {
                if mode & OTHERS != 0 {
                    out.push(Exposed {
                        path,
                        mode,
                        is_dir: false,
                        why: None,
                    });
                }
            }
        }
        out
    }
}

#[cfg(not(unix))]
mod imp {
    use super::*;

    pub fn available_space(_dir: &Path) -> io::Result<u64> {
        Ok(u64::MAX) // not measured here: never refuse for want of it
    }

    pub fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
        Ok(())
    }

    pub fn prepare_data_dir(dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    pub fn create_private_file(path: &Path) -> io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map(|_| ())
    }

    pub fn exposed(_dir: &Path) -> Vec<Exposed> {
        Vec::new()
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::imp::set_mode;
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn new_data_dir_is_owner_only() {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("data");
        prepare_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(DB_FILE)), 0o600);
        assert!(exposed(&dir).is_empty());
    }

    #[test]
    fn old_wide_data_dir_is_tightened() {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        for name in ["mailroom.db", "mailroom.db-wal", "mailroom.db-shm"] {
            std::fs::write(dir.join(name), b"").unwrap();
            set_mode(&dir.join(name), 0o644).unwrap();
        }
        std::fs::create_dir(dir.join("tls")).unwrap();
        set_mode(&dir, 0o755).unwrap();
        assert_eq!(exposed(&dir).len(), 4);
        prepare_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        for name in ["mailroom.db", "mailroom.db-wal", "mailroom.db-shm"] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
        assert!(exposed(&dir).is_empty());
    }

    #[test]
    fn shared_directory_is_left_alone_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"not mailroom's").unwrap();
        set_mode(dir.path(), 0o755).unwrap();
        prepare_data_dir(dir.path()).unwrap();
        assert_eq!(mode(dir.path()), 0o755);
        assert_eq!(mode(&dir.path().join(DB_FILE)), 0o600);
        let found = exposed(dir.path());
        assert_eq!(found.len(), 1, "{found:?}");
        let text = found[0].to_string();
        assert!(text.contains("mode 0755"), "{text}");
        assert!(text.contains("notes.txt"), "{text}");
        assert!(
            text.ends_with(&format!("chmod 700 {}", dir.path().display())),
            "{text}"
        );
    }

    #[test]
    fn private_file_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("copy.db");
        create_private_file(&p).unwrap();
        assert_eq!(mode(&p), 0o600);
        assert_eq!(
            create_private_file(&p).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
    }
}
