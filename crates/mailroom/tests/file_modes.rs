//! Owner-only files: under the usual umask 022 the data directory, the database with its WAL
//! and SHM files, the TLS directory and everything `mailroom backup` writes are still owner-only
//! (0700 directories, 0600 files); a data directory made wider (by an older version, or by
//! hand) is tightened at the next start, or warned about when it is not mailroom's alone.
#![cfg(unix)]

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::*;

/// Every test in this binary runs its servers and CLI commands under umask 022, the usual
/// default that made the data directory 0755 and the database 0644. The umask is per process
/// and inherited by the children; all tests here want the same one.
fn umask_022() {
    // SAFETY: umask(2) only sets the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o022);
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn data(s: &TestServer) -> std::path::PathBuf {
    s.dir.path().join("data")
}

/// Asserts the data directory and every database file in it are owner-only.
fn assert_owner_only(dir: &Path) {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    for name in ["mailroom.db", "mailroom.db-wal", "mailroom.db-shm"] {
        let p = dir.join(name);
        assert!(p.exists(), "{} missing", p.display());
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
}

#[test]
fn a_new_data_dir_is_owner_only_under_umask_022() {
    umask_022();
    let mut s = TestServer::start();
    // The umask really is 022 here: a file made without care is world-readable.
    let probe = s.dir.path().join("probe");
    std::fs::write(&probe, b"").expect("probe");
    assert_eq!(mode(&probe), 0o644);

    s.deliver(ALICE.0, &[BOB.0], "Subject: modes\r\n\r\nprivate\r\n");
    let dir = data(&s);
    assert_owner_only(&dir);
    assert_eq!(mode(&dir.join("tls")), 0o700);
    assert_eq!(mode(&dir.join("tls/key.pem")), 0o600);
    assert!(
        !s.log_text().contains("other local users"),
        "{}",
        s.log_text()
    );

    // SQLite makes the WAL and SHM files anew when they are missing: they get the database's
    // mode again, not the umask's. (After a clean shutdown the WAL is empty, checkpointed, so
    // removing both is safe.)
    assert!(s.terminate(), "clean shutdown");
    let wal = dir.join("mailroom.db-wal");
    assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0);
    for name in ["mailroom.db-wal", "mailroom.db-shm"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    s.restart();
    s.deliver(BOB.0, &[ALICE.0], "Subject: again\r\n\r\nprivate too\r\n");
    assert_owner_only(&dir);
    assert_eq!(s.inbox(BOB.0).len(), 1);
}

#[test]
fn every_file_of_a_backup_is_owner_only() {
    umask_022();
    let s = TestServer::start();
    s.deliver(ALICE.0, &[BOB.0], "Subject: backed up\r\n\r\nprivate\r\n");
    // The server's certificate is 0644 (it is public); its copy in a backup is 0600 anyway.
    assert_eq!(mode(&data(&s).join("tls/cert.pem")), 0o644);
    // The DKIM keys are made in the background at the first start; the backup carries them.
    let rsa = data(&s).join("dkim/example.test/mailroom-rsa.pem");
    s.wait_for(30, "the DKIM keys", || rsa.exists());

    let check = |backup: &Path| {
        let out = s.cli(&["backup", &backup.display().to_string()], "");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(mode(backup), 0o700, "{}", backup.display());
        let mut seen = Vec::new();
        let mut dirs = vec![backup.to_path_buf()];
        while let Some(d) = dirs.pop() {
            for entry in std::fs::read_dir(&d).expect("read backup") {
                let p = entry.expect("entry").path();
                if p.is_dir() {
                    assert_eq!(mode(&p), 0o700, "{}", p.display());
                    dirs.push(p.clone());
                } else {
                    assert_eq!(mode(&p), 0o600, "{}", p.display());
                }
                seen.push(p.strip_prefix(backup).expect("inside").to_path_buf());
            }
        }
        seen.sort();
        assert_eq!(
            seen,
            [
                "dkim",
                "dkim/example.test",
                "dkim/example.test/mailroom-ed25519.pem",
                "dkim/example.test/mailroom-rsa.pem",
                "mailroom.db",
                "tls",
                "tls/cert.pem",
                "tls/key.pem",
            ]
            .map(std::path::PathBuf::from)
            .to_vec()
        );
    };
    // A directory the backup creates, and an empty one it is given (0755 here).
    check(&s.dir.path().join("backup-new"));
    let given = s.dir.path().join("backup-given");
    std::fs::create_dir(&given).expect("mkdir");
    set_mode(&given, 0o755);
    check(&given);
}

#[test]
fn a_wide_data_dir_from_before_is_tightened_at_start() {
    umask_022();
    let mut s = TestServer::start();
    s.deliver(ALICE.0, &[BOB.0], "Subject: old\r\n\r\nfrom before\r\n");
    assert!(s.terminate(), "clean shutdown");
    // What an older mailroom left under umask 022.
    let dir = data(&s);
    set_mode(&dir, 0o755);
    set_mode(&dir.join("mailroom.db"), 0o644);
    set_mode(&dir.join("tls"), 0o755);

    s.restart();
    s.deliver(
        ALICE.0,
        &[BOB.0],
        "Subject: new\r\n\r\nafter the upgrade\r\n",
    );
    assert_owner_only(&dir);
    let log = s.log_text();
    assert!(log.contains("made owner-only: mode 0755 -> 0700"), "{log}");
    assert!(log.contains("made owner-only: mode 0644 -> 0600"), "{log}");
    assert!(!log.contains("other local users"), "{log}");
    assert_eq!(s.inbox(BOB.0).len(), 2);
}

#[test]
fn a_shared_data_dir_is_left_alone_and_warned_about() {
    umask_022();
    let mut s = TestServer::start();
    s.deliver(ALICE.0, &[BOB.0], "Subject: first\r\n\r\nbefore\r\n");
    assert!(s.terminate(), "clean shutdown");
    // data_dir pointed at a directory that also holds other things.
    let dir = data(&s);
    std::fs::write(dir.join("notes.txt"), b"not mailroom's").expect("write");
    set_mode(&dir, 0o755);
    set_mode(&dir.join("mailroom.db"), 0o644);

    s.restart();
    s.deliver(
        ALICE.0,
        &[BOB.0],
        "Subject: shared\r\n\r\nstill private\r\n",
    );
    // The directory is not taken away from others; the database files are ours: 0600.
    assert_eq!(mode(&dir), 0o755);
    for name in ["mailroom.db", "mailroom.db-wal", "mailroom.db-shm"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    let fix = format!("chmod 700 {}", dir.display());
    s.wait_for(10, "the start-up warning", || s.log_text().contains(&fix));
    let log = s.log_text();
    let warning = log
        .lines()
        .find(|l| l.contains(&fix))
        .expect("warning line");
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("mode 0755"), "{warning}");
    assert!(warning.contains("notes.txt"), "{warning}");

    // The command line says it too, on stderr.
    let out = s.cli(&["user", "list"], "");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: the data directory") && stderr.contains(&fix),
        "{stderr}"
    );
}
