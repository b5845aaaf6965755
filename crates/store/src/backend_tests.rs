//! The store's behaviour tests, run on both backends: every test here is a function of a
//! [`TestStore`] and [`both_backends!`] makes a `#[test]` of it for the embedded SQLite store
//! (`on_sqlite::NAME`) and for PostgreSQL (`on_postgres::NAME`, a fresh database of the test
//! cluster, see [`crate::testing`]). Tests of one backend's own machinery (SQLite's writer
//! batches, migrations, free pages, backups) stay beside that backend.

use std::sync::Arc;

use crate::*;

/// A store under test and what it needs to be reached outside the trait.
pub(crate) struct TestStore {
    pub store: Store,
    backend: Backend,
}

enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl std::ops::Deref for TestStore {
    type Target = dyn MailStore;
    fn deref(&self) -> &Self::Target {
        self.store.as_ref()
    }
}

impl TestStore {
    fn sqlite() -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        let store: Store = Arc::new(crate::sqlite::SqliteStore::open(dir.path()).unwrap());
        TestStore {
            store,
            backend: Backend::Sqlite(dir),
        }
    }

    fn postgres() -> TestStore {
        let url = crate::testing::pg_database();
        let store: Store = Arc::new(crate::postgres::PgStore::open(&url).unwrap());
        TestStore {
            store,
            backend: Backend::Postgres(url),
        }
    }

    /// The same store opened again (after `shutdown`, as after a restart).
    fn reopen(&self) -> Store {
        match &self.backend {
            Backend::Sqlite(dir) => Arc::new(crate::sqlite::SqliteStore::open(dir.path()).unwrap()),
            Backend::Postgres(url) => Arc::new(crate::postgres::PgStore::open(url).unwrap()),
        }
    }

    /// Several processes may share this store (PostgreSQL).
    fn shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Runs a `SELECT COUNT(*) ...` (SQL both backends understand) on the store's database.
    fn count(&self, sql: &str) -> i64 {
        match &self.backend {
            Backend::Sqlite(dir) => {
                let c = rusqlite::Connection::open(dir.path().join("mailroom.db")).unwrap();
                c.query_row(sql, [], |r| r.get(0)).unwrap()
            }
            Backend::Postgres(url) => {
                let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
                c.query_one(sql, &[]).unwrap().get(0)
            }
        }
    }
}

fn deliver_to(s: &TestStore, to: AccountId, body: &str) {
    s.deliver(Delivery::to_inboxes(body.as_bytes().to_vec(), vec![to]))
        .unwrap();
}

/// Makes a `#[test]` on each backend of every named test function.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[test] fn $name() { super::$name(&super::TestStore::sqlite()) } )*
        }
        mod on_postgres {
            $( #[test] fn $name() { super::$name(&super::TestStore::postgres()) } )*
        }
    };
}

both_backends!(
    apop_secrets_are_kept_apart_from_the_hash,
    accounts_and_domains,
    accounts_and_aliases_by_local_part,
    deliver_read_expunge,
    group_commit_concurrent,
    failing_job_rolls_back_alone,
    aliases_and_domains,
    queue_lifecycle_with_atomic_bounce,
    a_recipient_is_claimed_once_and_recorded_only_by_its_claim,
    a_claim_is_renewed_only_by_its_holder_while_pending,
    imap_mailbox_operations,
    ends_with_lf_is_recorded,
    usage_sums_sizes_over_all_mailboxes,
    quota_is_stored_per_account,
    tombstones_record_expunges_and_moves,
    ids_are_never_handed_out_again,
    a_handle_reaches_only_its_own_account,
    a_reference_to_an_expunged_message_finds_nothing,
    subscriptions_are_names_apart_from_mailboxes,
    search_data_lives_and_goes_with_the_message,
    a_transcript_is_kept_with_its_message_read_by_its_owner_and_goes_with_it,
    web_sessions_are_kept_slid_bounded_per_account_and_removed,
    failed_logins_are_counted_in_the_store_only_when_it_is_shared,
    the_async_writes_commit_like_the_blocking_ones,
    a_message_claimed_as_it_is_queued_is_left_to_its_claim,
    failing_jobs_among_many_cost_the_others_nothing,
);

fn session(id: &str, account: AccountId, created_ms: i64, expires_ms: i64) -> WebSession {
    WebSession {
        id_hash: id.into(),
        account,
        password_fp: "fp".into(),
        csrf: format!("csrf-{id}"),
        created_ms,
        expires_ms,
    }
}

fn web_sessions_are_kept_slid_bounded_per_account_and_removed(s: &TestStore) {
    let a = s.add_account("alice@example.test", "h").unwrap();
    let b = s.add_account("bob@example.test", "h").unwrap();
    let now = now_unix_ms();
    let one = session("one", a, now, now + 60_000);
    s.session_create(&one, 3).unwrap();
    assert_eq!(s.session_get("one").unwrap(), Some(one.clone()));
    assert_eq!(s.session_get("two").unwrap(), None);
    // Sliding: the expiry moves forward, never back.
    assert!(s.session_touch("one", now + 120_000).unwrap());
    assert!(s.session_touch("one", now + 1_000).unwrap());
    assert_eq!(
        s.session_get("one").unwrap().unwrap().expires_ms,
        now + 120_000
    );
    assert!(!s.session_touch("nobody", now).unwrap());
    // Known after a restart, and to another process sharing the store.
    let again = s.reopen();
    assert_eq!(again.session_get("one").unwrap().unwrap().csrf, "csrf-one");
    // At most 3 per account: the oldest go; another account's are not counted.
    s.session_create(&session("b1", b, now, now + 60_000), 3)
        .unwrap();
    for (i, id) in ["two", "three", "four"].iter().enumerate() {
        s.session_create(&session(id, a, now + 1 + i as i64, now + 60_000), 3)
            .unwrap();
    }
    assert_eq!(s.session_get("one").unwrap(), None, "the oldest went");
    for id in ["two", "three", "four", "b1"] {
        assert!(s.session_get(id).unwrap().is_some(), "{id}");
    }
    // Expired sessions (anyone's) are pruned when a session is made.
    s.session_create(&session("old", b, now - 10_000, now - 1), 3)
        .unwrap();
    s.session_create(&session("b2", b, now, now + 60_000), 3)
        .unwrap();
    assert_eq!(s.session_get("old").unwrap(), None);
    // Logout.
    assert!(s.session_remove("two").unwrap());
    assert!(!s.session_remove("two").unwrap());
    assert_eq!(s.session_get("two").unwrap(), None);
    // Gone with the account.
    s.remove_account("alice@example.test").unwrap();
    assert_eq!(s.session_get("three").unwrap(), None);
    assert_eq!(s.count("SELECT COUNT(*) FROM web_sessions"), 2);
}

fn failed_logins_are_counted_in_the_store_only_when_it_is_shared(s: &TestStore) {
    let window = 60_000;
    if !s.shared() {
        // One server: it counts in memory, the store writes nothing.
        assert!(!s.is_shared());
        assert_eq!(s.auth_failure_record("127.0.0.1", window).unwrap(), None);
        assert_eq!(s.auth_failure_count("127.0.0.1", window).unwrap(), None);
        return;
    }
    assert!(s.is_shared());
    let other = s.reopen();
    assert_eq!(s.auth_failure_count("127.0.0.1", window).unwrap(), Some(0));
    // Two nodes' failures from one address make one count.
    assert_eq!(s.auth_failure_record("127.0.0.1", window).unwrap(), Some(1));
    assert_eq!(
        other.auth_failure_record("127.0.0.1", window).unwrap(),
        Some(2)
    );
    assert_eq!(s.auth_failure_record("127.0.0.1", window).unwrap(), Some(3));
    assert_eq!(
        other.auth_failure_count("127.0.0.1", window).unwrap(),
        Some(3)
    );
    assert_eq!(other.auth_failure_record("::1", window).unwrap(), Some(1));
    // Concurrent failures on both nodes are all counted.
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let st = if i % 2 == 0 {
                s.store.clone()
            } else {
                other.clone()
            };
            std::thread::spawn(move || st.auth_failure_record("127.0.0.9", window).unwrap())
        })
        .collect();
    let mut seen: Vec<u32> = threads
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, (1..=8).collect::<Vec<u32>>());
    // A count whose last failure is older than the window starts again.
    std::thread::sleep(std::time::Duration::from_millis(60));
    assert_eq!(s.auth_failure_count("127.0.0.1", 50).unwrap(), Some(0));
    assert_eq!(s.auth_failure_record("127.0.0.1", 50).unwrap(), Some(1));
    // Bounded: many addresses leave at most AUTH_FAILURE_KEYS rows after a pruning (every
    // AUTH_PRUNE_EVERY-th failure a node records), expired ones first.
    let n = crate::postgres::AUTH_PRUNE_EVERY as usize * 2;
    for i in 0..n {
        s.auth_failure_record(&format!("10.0.{}.{}", i / 256, i % 256), 1)
            .unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(5));
    for i in 0..n {
        s.auth_failure_record(&format!("10.1.{}.{}", i / 256, i % 256), 1)
            .unwrap();
    }
    let rows = s.count("SELECT COUNT(*) FROM auth_failures");
    assert!(
        rows <= crate::postgres::AUTH_PRUNE_EVERY as i64 + 8,
        "expired rows pruned: {rows}"
    );
    // Many addresses within the window: the newest AUTH_FAILURE_KEYS stay after a pruning.
    if let Backend::Postgres(url) = &s.backend {
        let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
        c.execute(
            "INSERT INTO auth_failures (key, failures, last_ms)
             SELECT 'flood-' || i, 1, (extract(epoch from clock_timestamp()) * 1000)::bigint - i
               FROM generate_series(1, $1::bigint) AS i",
            &[&(AUTH_FAILURE_KEYS as i64 + 500)],
        )
        .unwrap();
    }
    for i in 0..crate::postgres::AUTH_PRUNE_EVERY {
        s.auth_failure_record(&format!("10.2.0.{i}"), 3_600_000)
            .unwrap();
    }
    let rows = s.count("SELECT COUNT(*) FROM auth_failures");
    assert!(
        rows <= (AUTH_FAILURE_KEYS as u64 + crate::postgres::AUTH_PRUNE_EVERY) as i64,
        "bounded: {rows}"
    );
    assert!(
        rows >= AUTH_FAILURE_KEYS as i64,
        "only the oldest went: {rows}"
    );
    // The most recent addresses are the ones kept.
    assert_eq!(
        s.auth_failure_count("10.2.0.99", 3_600_000).unwrap(),
        Some(1)
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM auth_failures WHERE key = 'flood-10500'"),
        0
    );
}

fn apop_secrets_are_kept_apart_from_the_hash(s: &TestStore) {
    s.add_account("alice@example.test", "h").unwrap();
    assert_eq!(s.apop_secret("alice@example.test").unwrap(), None);
    s.set_apop_secret("Alice@example.test", Some("tanstaaf"))
        .unwrap();
    assert_eq!(
        s.apop_secret("alice@EXAMPLE.test").unwrap().as_deref(),
        Some("tanstaaf")
    );
    // Changing the password leaves the secret; the hash is untouched by the secret.
    s.set_password("alice@example.test", "h2").unwrap();
    let a = s.find_account("alice@example.test").unwrap().unwrap();
    assert_eq!(a.password_hash, "h2");
    assert!(!format!("{a:?}").contains("tanstaaf"));
    s.set_apop_secret("alice@example.test", None).unwrap();
    assert_eq!(s.apop_secret("alice@example.test").unwrap(), None);
    assert_eq!(s.apop_secret("nobody@example.test").unwrap(), None);
    assert!(matches!(
        s.set_apop_secret("nobody@example.test", Some("x")),
        Err(StoreError::NotFound(_))
    ));
}

fn accounts_and_domains(s: &TestStore) {
    let id = s.add_account("Alice@Example.test", "h").unwrap();
    assert!(s.is_local_domain("EXAMPLE.test").unwrap());
    let a = s.find_account("alice@example.TEST").unwrap().unwrap();
    assert_eq!(a.id, id);
    assert!(matches!(
        s.add_account("alice@example.test", "x"),
        Err(StoreError::Exists(_))
    ));
    assert_eq!(s.list_mailboxes(id).unwrap().len(), DEFAULT_FOLDERS.len());
    s.set_password("alice@example.test", "h2").unwrap();
    assert_eq!(
        s.find_account("alice@example.test")
            .unwrap()
            .unwrap()
            .password_hash,
        "h2"
    );
    s.remove_account("alice@example.test").unwrap();
    assert!(s.find_account("alice@example.test").unwrap().is_none());
    assert!(matches!(
        s.remove_account("alice@example.test"),
        Err(StoreError::NotFound(_))
    ));
    assert!(s.add_account("nodomain", "h").is_err());
}

fn accounts_and_aliases_by_local_part(s: &TestStore) {
    s.add_account("alice@b.test", "h").unwrap();
    s.add_account("Alice@A.test", "h").unwrap();
    s.add_account("alice2@a.test", "h").unwrap();
    s.add_account("alic@a.test", "h").unwrap();
    s.add_account("a.b@a.test", "h").unwrap();
    let names = |v: Vec<Account>| v.into_iter().map(|a| a.address).collect::<Vec<_>>();
    assert_eq!(
        names(s.accounts_with_local_part("ALICE").unwrap()),
        ["alice@a.test", "alice@b.test"]
    );
    assert_eq!(
        names(s.accounts_with_local_part("alic").unwrap()),
        ["alic@a.test"]
    );
    assert_eq!(
        names(s.accounts_with_local_part("a.b").unwrap()),
        ["a.b@a.test"]
    );
    assert!(s.accounts_with_local_part("bob").unwrap().is_empty());
    assert!(s.accounts_with_local_part("").unwrap().is_empty());
    assert!(s
        .accounts_with_local_part("alice@a.test")
        .unwrap()
        .is_empty());
    s.add_alias("staff@a.test", "alice@a.test").unwrap();
    s.add_alias("staff@a.test", "alice@b.test").unwrap();
    s.add_alias("Staff@B.test", "alice@b.test").unwrap();
    s.add_alias("@a.test", "alice@a.test").unwrap();
    s.add_alias("staffroom@a.test", "alice@a.test").unwrap();
    assert_eq!(
        s.aliases_with_local_part("staff").unwrap(),
        ["staff@a.test", "staff@b.test"]
    );
    assert!(s.aliases_with_local_part("").unwrap().is_empty());
    assert!(s.aliases_with_local_part("alice").unwrap().is_empty());
}

fn deliver_read_expunge(s: &TestStore) {
    let a = s.add_account("a@x.test", "h").unwrap();
    let b = s.add_account("b@x.test", "h").unwrap();
    let r = s
        .deliver(Delivery {
            transcript: None,
            local_message: b"Subject: hi\r\n\r\nbody\r\n".to_vec(),
            local: vec![a, b],
            outbound: Some(Outbound {
                sender: "a@x.test".into(),
                recipients: vec!["z@far.test".into()],
                message: b"x".to_vec(),
                first_attempt: 0,
                claim_until: 0,
            }),
        })
        .unwrap();
    assert_eq!(r.local, vec![(a, 1), (b, 1)]);
    assert!(r.queued.is_some());
    let inbox = s.mailbox(a, "INBOX").unwrap().unwrap();
    assert_eq!(inbox.uidnext, 2);
    let msgs = s.list_messages(inbox.id).unwrap();
    assert_eq!(msgs.len(), 1);
    let data = s
        .store
        .as_ref()
        .message_octets(MessageRef::Mailbox {
            mailbox: inbox.id,
            uid: msgs[0].uid,
        })
        .unwrap();
    assert_eq!(data, b"Subject: hi\r\n\r\nbody\r\n");
    let mut small = [0u8; 4];
    assert_eq!(
        s.read_message_at(
            MessageRef::Mailbox {
                mailbox: inbox.id,
                uid: msgs[0].uid
            },
            9,
            &mut small
        )
        .unwrap(),
        4
    );
    assert_eq!(&small, b"hi\r\n");
    assert_eq!(s.expunge(inbox.id, &[1, 7]).unwrap(), vec![1]);
    assert!(s.list_messages(inbox.id).unwrap().is_empty());
    // b's copy shares the blob and must survive a's expunge.
    let inbox_b = s.mailbox(b, "INBOX").unwrap().unwrap();
    let mb = s.list_messages(inbox_b.id).unwrap();
    assert_eq!(
        s.store
            .as_ref()
            .message_octets(MessageRef::Mailbox {
                mailbox: inbox_b.id,
                uid: mb[0].uid
            })
            .unwrap()
            .len(),
        21
    );
    let q = s.queue_list().unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].recipients[0].recipient, "z@far.test");
    // UIDs are never reused after expunge.
    let r2 = s
        .deliver(Delivery::to_inboxes(b"m\r\n".to_vec(), vec![a]))
        .unwrap();
    assert_eq!(r2.local, vec![(a, 2)]);
}

fn group_commit_concurrent(s: &TestStore) {
    let a = s.add_account("a@x.test", "h").unwrap();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let s = s.store.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    s.deliver(Delivery::to_inboxes(b"m\r\n".to_vec(), vec![a]))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let inbox = s.mailbox(a, "INBOX").unwrap().unwrap();
    let msgs = s.list_messages(inbox.id).unwrap();
    assert_eq!(msgs.len(), 400);
    let uids: Vec<u32> = msgs.iter().map(|m| m.uid).collect();
    assert_eq!(uids, (1..=400).collect::<Vec<_>>());
}

fn failing_job_rolls_back_alone(s: &TestStore) {
    s.add_account("a@x.test", "h").unwrap();
    // Delivering to a nonexistent account fails, and must not leave an orphan blob.
    let err = s.deliver(Delivery::to_inboxes(b"m".to_vec(), vec![AccountId(999)]));
    assert!(err.is_err());
    let n = s.count("SELECT COUNT(*) FROM messages");
    assert_eq!(n, 0);
}

fn aliases_and_domains(s: &TestStore) {
    s.add_alias("Team@Lab.test", "alice@lab.test").unwrap();
    s.add_alias("team@lab.test", "bob@far.test").unwrap();
    s.add_alias("@lab.test", "alice@lab.test").unwrap();
    assert!(s.is_local_domain("lab.test").unwrap());
    assert_eq!(
        s.alias_targets("TEAM@lab.test").unwrap(),
        vec!["alice@lab.test", "bob@far.test"]
    );
    assert_eq!(s.list_aliases().unwrap().len(), 3);
    assert!(s.add_alias("nodomain", "x@y").is_err());
    assert!(s.add_alias("a@lab.test", "@y").is_err());
    assert_eq!(
        s.remove_alias("team@lab.test", Some("bob@far.test"))
            .unwrap(),
        1
    );
    assert_eq!(s.remove_alias("team@lab.test", None).unwrap(), 1);
    s.add_account("x@lab.test", "h").unwrap();
    assert!(s.remove_domain("lab.test").is_err(), "accounts still there");
    s.remove_account("x@lab.test").unwrap();
    s.remove_domain("lab.test").unwrap();
    assert!(!s.is_local_domain("lab.test").unwrap());
    assert!(s.list_aliases().unwrap().is_empty());
}

fn queue_lifecycle_with_atomic_bounce(s: &TestStore) {
    let a = s.add_account("a@x.test", "h").unwrap();
    let out = |first| Delivery {
        transcript: None,
        local_message: Vec::new(),
        local: Vec::new(),
        outbound: Some(Outbound {
            sender: "a@x.test".into(),
            recipients: vec!["r1@far.test".into(), "r2@far.test".into()],
            message: b"m".to_vec(),
            first_attempt: first,
            claim_until: 0,
        }),
    };
    let q = s.deliver(out(100)).unwrap().queued.unwrap();
    assert!(s.queue_due(99, 10).unwrap().is_empty());
    assert_eq!(s.queue_next_due().unwrap(), Some(100));
    let due = s.queue_due(100, 10).unwrap();
    assert_eq!(due.len(), 1);
    let (r1, r2) = (due[0].recipients[0].id, due[0].recipients[1].id);
    assert_eq!(s.queue_claim(&[r1, r2], 100, 500).unwrap(), vec![r1, r2]);
    // r1 delivered, r2 fails permanently with a bounce to a.
    let bounce = Delivery::to_inboxes(b"bounce".to_vec(), vec![a]);
    s.queue_update(
        vec![
            RecipientUpdate {
                id: r1,
                lease: 500,
                status: "delivered".into(),
                attempts: 1,
                next_attempt: 100,
                last_error: None,
            },
            RecipientUpdate {
                id: r2,
                lease: 500,
                status: "failed".into(),
                attempts: 1,
                next_attempt: 100,
                last_error: Some("550".into()),
            },
        ],
        Some(bounce),
    )
    .unwrap();
    assert!(
        s.queue_list().unwrap().is_empty(),
        "finished entries are removed"
    );
    let inbox = s.mailbox(a, "INBOX").unwrap().unwrap();
    assert_eq!(s.list_messages(inbox.id).unwrap().len(), 1);
    let n = s.count("SELECT COUNT(*) FROM messages");
    assert_eq!(n, 1, "the relayed copy was collected, the bounce stays");
    // Flush and remove.
    let q2 = s.deliver(out(i64::MAX / 2)).unwrap().queued.unwrap();
    assert_ne!(q, q2);
    assert!(s.queue_due(1000, 10).unwrap().is_empty());
    assert_eq!(s.queue_flush().unwrap(), 2);
    assert_eq!(s.queue_due(1000, 10).unwrap().len(), 1);
    s.queue_remove(q2).unwrap();
    assert!(s.queue_list().unwrap().is_empty());
    assert!(s.queue_remove(q2).is_err());
    // Retry one entry: only its pending recipients become due; another entry stays.
    let q3 = s.deliver(out(i64::MAX / 2)).unwrap().queued.unwrap();
    let q4 = s.deliver(out(i64::MAX / 2)).unwrap().queued.unwrap();
    assert_eq!(s.queue_retry(q3).unwrap(), 2);
    let due = s.queue_due(1000, 10).unwrap();
    assert_eq!(due.iter().map(|e| e.id).collect::<Vec<_>>(), vec![q3]);
    assert!(matches!(s.queue_retry(q2), Err(StoreError::NotFound(_))));
    s.queue_remove(q4).unwrap();
}

fn a_recipient_is_claimed_once_and_recorded_only_by_its_claim(s: &TestStore) {
    let a = s.add_account("a@x.test", "h").unwrap();
    let out = |first| Delivery {
        outbound: Some(Outbound {
            sender: "a@x.test".into(),
            recipients: vec!["r@far.test".into()],
            message: b"m".to_vec(),
            first_attempt: first,
            claim_until: 0,
        }),
        ..Delivery::default()
    };
    s.deliver(out(100)).unwrap();
    let later = s.deliver(out(50)).unwrap().queued.unwrap();
    // Longest-due first, whatever the id order.
    let due = s.queue_due(100, 10).unwrap();
    assert_eq!(due[0].id, later);
    let (r_old, r_new) = (due[1].recipients[0].id, due[0].recipients[0].id);
    assert_eq!(s.queue_claim(&[r_old], 100, 400).unwrap(), vec![r_old]);
    // Claimed: neither handed out again nor claimed twice, even after a flush.
    assert_eq!(
        s.queue_claim(&[r_old], 100, 401).unwrap(),
        Vec::<i64>::new()
    );
    s.queue_flush().unwrap();
    let due: Vec<QueueId> = s.queue_due(200, 10).unwrap().iter().map(|e| e.id).collect();
    assert_eq!(due, vec![later]);
    // A stale result (another claim) is not recorded, and its bounce is not stored.
    let update = |lease, status: &str| RecipientUpdate {
        id: r_old,
        lease,
        status: status.into(),
        attempts: 1,
        next_attempt: 100,
        last_error: None,
    };
    let bounce = Delivery {
        transcript: None,
        local_message: b"bounce".to_vec(),
        local: vec![a],
        ..Delivery::default()
    };
    s.queue_update(vec![update(399, "failed")], Some(bounce))
        .unwrap();
    let inbox = s.mailbox(a, "INBOX").unwrap().unwrap();
    assert!(s.list_messages(inbox.id).unwrap().is_empty());
    assert_eq!(s.queue_list().unwrap().len(), 2);
    // The claim's own result is; then the recipient is done and cannot be claimed.
    s.queue_update(vec![update(400, "delivered")], None)
        .unwrap();
    assert_eq!(s.queue_list().unwrap().len(), 1);
    assert_eq!(
        s.queue_claim(&[r_old], 1000, 1400).unwrap(),
        Vec::<i64>::new()
    );
    // A dead attempt's claim expires with its lease, or is released at start-up.
    assert_eq!(s.queue_claim(&[r_new], 100, 400).unwrap(), vec![r_new]);
    assert!(s.queue_due(300, 10).unwrap().is_empty());
    assert_eq!(s.queue_due(400, 10).unwrap().len(), 1);
    if s.shared() {
        // Several nodes: another node's running attempt may hold a claim, so start-up
        // releases none; the lease alone ends a dead node's claim.
        assert_eq!(s.queue_release_claims().unwrap(), 0);
        assert!(s.queue_claim(&[r_new], 300, 700).unwrap().is_empty());
        assert_eq!(s.queue_claim(&[r_new], 400, 700).unwrap(), vec![r_new]);
    } else {
        assert_eq!(s.queue_release_claims().unwrap(), 1);
        assert_eq!(s.queue_claim(&[r_new], 300, 700).unwrap(), vec![r_new]);
    }
}

fn a_claim_is_renewed_only_by_its_holder_while_pending(s: &TestStore) {
    let out = |recipients: &[&str]| Delivery {
        outbound: Some(Outbound {
            sender: "a@x.test".into(),
            recipients: recipients.iter().map(|r| r.to_string()).collect(),
            message: b"m".to_vec(),
            first_attempt: 100,
            claim_until: 0,
        }),
        ..Delivery::default()
    };
    s.deliver(out(&["r1@far.test", "r2@far.test"])).unwrap();
    let due = s.queue_due(100, 10).unwrap();
    let (r1, r2) = (due[0].recipients[0].id, due[0].recipients[1].id);
    assert_eq!(s.queue_claim(&[r1, r2], 100, 400).unwrap(), vec![r1, r2]);
    // Renewed: the claim holds past its first lease, under the new value only.
    assert_eq!(
        s.queue_renew(&[(r1, 400), (r2, 400)], 900).unwrap(),
        vec![r1, r2]
    );
    assert!(s.queue_due(500, 10).unwrap().is_empty());
    assert!(s.queue_claim(&[r1, r2], 500, 1000).unwrap().is_empty());
    // A wrong lease value (the old one, another one, no claim at all) renews nothing.
    assert!(s
        .queue_renew(&[(r1, 400), (r2, 401)], 2000)
        .unwrap()
        .is_empty());
    assert!(s.queue_renew(&[(r1, 0)], 2000).unwrap().is_empty());
    // Expired and taken by another claim: the old holder renews nothing, and the new one
    // keeps it.
    assert_eq!(s.queue_claim(&[r1], 900, 1300).unwrap(), vec![r1]);
    assert!(s.queue_renew(&[(r1, 900)], 2000).unwrap().is_empty());
    assert_eq!(
        s.queue_due(1200, 10).unwrap().len(),
        1,
        "r2's claim expired"
    );
    assert_eq!(s.queue_renew(&[(r1, 1300)], 1600).unwrap(), vec![r1]);
    // Recorded as delivered (the claim is released): not renewed by its old lease.
    s.queue_update(
        vec![RecipientUpdate {
            id: r1,
            lease: 1600,
            status: "delivered".into(),
            attempts: 1,
            next_attempt: 1000,
            last_error: None,
        }],
        None,
    )
    .unwrap();
    assert!(s.queue_renew(&[(r1, 1600)], 2000).unwrap().is_empty());
    assert!(s.queue_renew(&[(r1, 0)], 2000).unwrap().is_empty());
    // The other recipient, whose claim expired untaken, is still its holder's to renew.
    assert_eq!(s.queue_renew(&[(r2, 900)], 2000).unwrap(), vec![r2]);
    assert!(s.queue_due(1500, 10).unwrap().is_empty());
}

fn imap_mailbox_operations(s: &TestStore) {
    let a = s.add_account("a@x.test", "h").unwrap();
    let work = s.create_mailbox(a, "Work").unwrap();
    assert!(matches!(
        s.create_mailbox(a, "Work"),
        Err(StoreError::Exists(_))
    ));
    s.create_mailbox(a, "Work/Sub").unwrap();
    let (uv, uid) = s
        .append_message(
            work,
            b"Subject: x\r\n\r\nhi\r\n",
            Flags::SEEN,
            &["$Label".into()],
            100,
        )
        .unwrap();
    assert_eq!(uid, 1);
    let m = s.list_messages(work).unwrap();
    assert_eq!(m[0].keywords, vec!["$Label"]);
    assert_eq!(m[0].internal_date, 100);
    let (ch, modified) = s
        .store_flags(work, &[1, 9], FlagOp::Add, Flags::FLAGGED, &[], None)
        .unwrap();
    assert!(modified.is_empty());
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].flags, Flags::SEEN.union(Flags::FLAGGED));
    assert!(ch[0].modseq > m[0].modseq);
    assert!(s
        .store_flags(work, &[1], FlagOp::Add, Flags::FLAGGED, &[], None)
        .unwrap()
        .0
        .is_empty());
    // UNCHANGEDSINCE below the message's MODSEQ: refused, reported as modified.
    let (ch2, modified) = s
        .store_flags(
            work,
            &[1],
            FlagOp::Remove,
            Flags::FLAGGED,
            &[],
            Some(ch[0].modseq - 1),
        )
        .unwrap();
    assert!(ch2.is_empty());
    assert_eq!(modified, vec![1]);
    let inbox = s.mailbox(a, "INBOX").unwrap().unwrap().id;
    let (iuv, pairs) = s.copy_messages(work, &[1], inbox, false).unwrap();
    assert_eq!(pairs, vec![(1, 1)]);
    assert_ne!(iuv, uv);
    let (_, pairs) = s.copy_messages(work, &[1], inbox, true).unwrap();
    assert_eq!(pairs, vec![(1, 2)]);
    assert!(s.list_messages(work).unwrap().is_empty());
    s.rename_mailbox(a, "Work", "Job").unwrap();
    assert!(s.mailbox(a, "Job/Sub").unwrap().is_some());
    assert!(s.mailbox(a, "Work").unwrap().is_none());
    let job = s.mailbox(a, "Job").unwrap().unwrap();
    assert!(job.uidvalidity > uv);
    s.subscribe(a, "Job", true).unwrap();
    assert!(s.mailbox_by_id(job.id).unwrap().unwrap().subscribed);
    s.subscribe(a, "Job", false).unwrap();
    assert!(!s.mailbox_by_id(job.id).unwrap().unwrap().subscribed);
    s.delete_mailbox(job.id).unwrap();
    assert!(s.mailbox_by_id(job.id).unwrap().is_none());
    assert_eq!(s.list_messages(inbox).unwrap().len(), 2);
}

fn ends_with_lf_is_recorded(s: &TestStore) {
    let a = s.add_account("a@x.test", "h").unwrap();
    for body in [&b"line\r\n"[..], b"no newline", b""] {
        s.deliver(Delivery::to_inboxes(body.to_vec(), vec![a]))
            .unwrap();
    }
    let inbox = s.mailbox(a, "INBOX").unwrap().unwrap();
    let ends: Vec<bool> = s
        .list_messages(inbox.id)
        .unwrap()
        .iter()
        .map(|m| m.ends_with_lf)
        .collect();
    assert_eq!(ends, vec![true, false, true]);
}

fn usage_sums_sizes_over_all_mailboxes(s: &TestStore) {
    let a = s.add_account("a@x.test", "h").unwrap();
    let b = s.add_account("b@x.test", "h").unwrap();
    assert_eq!(s.account_usage(a).unwrap(), 0);
    // One delivery to both: one blob, but each account counts its copy.
    s.deliver(Delivery::to_inboxes(vec![b'x'; 1000], vec![a, b]))
        .unwrap();
    assert_eq!(s.account_usage(a).unwrap(), 1000);
    assert_eq!(s.account_usage(b).unwrap(), 1000);
    let inbox = s.mailbox(a, "INBOX").unwrap().unwrap().id;
    let sent = s.mailbox(a, "Sent").unwrap().unwrap().id;
    s.append_message(sent, &[b'y'; 300], Flags::default(), &[], 0)
        .unwrap();
    assert_eq!(s.account_usage(a).unwrap(), 1300);
    // A copy in a second folder counts twice (the blob is shared, the quota is not).
    let work = s.create_mailbox(a, "Work").unwrap();
    s.copy_messages(inbox, &[1], work, false).unwrap();
    assert_eq!(s.account_usage(a).unwrap(), 2300);
    // A move changes nothing.
    s.copy_messages(work, &[1], sent, true).unwrap();
    assert_eq!(s.account_usage(a).unwrap(), 2300);
    assert_eq!(s.account_usage(b).unwrap(), 1000, "b is not touched");
    // Expunge gives the space back.
    assert_eq!(s.expunge(inbox, &[1]).unwrap(), vec![1]);
    assert_eq!(s.account_usage(a).unwrap(), 1300);
    s.delete_mailbox(sent).unwrap();
    assert_eq!(s.account_usage(a).unwrap(), 0);
    assert_eq!(s.account_usage(b).unwrap(), 1000);
    assert_eq!(s.account_usage(AccountId(999)).unwrap(), 0);
}

fn quota_is_stored_per_account(s: &TestStore) {
    s.add_account("a@x.test", "h").unwrap();
    assert_eq!(s.find_account("a@x.test").unwrap().unwrap().quota, None);
    s.set_quota("A@x.test", Some(500 * 1024 * 1024)).unwrap();
    assert_eq!(
        s.find_account("a@x.test").unwrap().unwrap().quota,
        Some(500 * 1024 * 1024)
    );
    assert_eq!(s.list_accounts().unwrap()[0].quota, Some(500 * 1024 * 1024));
    s.set_quota("a@x.test", Some(0)).unwrap();
    assert_eq!(s.find_account("a@x.test").unwrap().unwrap().quota, Some(0));
    s.set_quota("a@x.test", None).unwrap();
    assert_eq!(s.find_account("a@x.test").unwrap().unwrap().quota, None);
    assert!(matches!(
        s.set_quota("nobody@x.test", Some(1)),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.set_quota("a@x.test", Some(u64::MAX)),
        Err(StoreError::Invalid(_))
    ));
}

/// QRESYNC tombstones: EXPUNGE and MOVE leave them at the modseq the mailbox got, each
/// expunge bumps HIGHESTMODSEQ, pruning raises the floor, deleting the mailbox drops them.
fn tombstones_record_expunges_and_moves(s: &TestStore) {
    let a = s.add_account("a@x.test", "h").unwrap();
    for i in 0..6 {
        deliver_to(s, a, &format!("Subject: {i}\r\n\r\nx\r\n"));
    }
    let inbox = s.mailbox(a, "INBOX").unwrap().unwrap();
    let start = inbox.highest_modseq;
    let none = s.vanished_since(inbox.id, start).unwrap();
    assert_eq!(
        none,
        Vanished {
            uids: vec![],
            complete: true
        }
    );
    assert_eq!(s.expunge(inbox.id, &[2, 3, 99]).unwrap(), vec![2, 3]);
    let after = s.mailbox(a, "INBOX").unwrap().unwrap().highest_modseq;
    assert!(after > start, "EXPUNGE must bump HIGHESTMODSEQ");
    assert_eq!(s.vanished_since(inbox.id, start).unwrap().uids, vec![2, 3]);
    assert!(s.vanished_since(inbox.id, after).unwrap().uids.is_empty());
    // MOVE out of INBOX (copy + remove).
    let trash = s.mailbox(a, "Trash").unwrap().unwrap();
    s.copy_messages(inbox.id, &[5], trash.id, true).unwrap();
    let moved = s.mailbox(a, "INBOX").unwrap().unwrap().highest_modseq;
    assert!(moved > after);
    assert_eq!(s.vanished_since(inbox.id, after).unwrap().uids, vec![5]);
    assert_eq!(s.vanished_since(inbox.id, 0).unwrap().uids, vec![2, 3, 5]);
    assert!(s.vanished_since(trash.id, 0).unwrap().uids.is_empty());
    // Pruning: keep 1; the oldest modseq's tombstones go and the floor rises.
    s.set_tombstones_kept(1);
    s.expunge(inbox.id, &[6]).unwrap();
    let v = s.vanished_since(inbox.id, 0).unwrap();
    assert!(!v.complete, "a client older than the floor must be told so");
    assert_eq!(v.uids, vec![6]);
    let v = s.vanished_since(inbox.id, moved).unwrap();
    assert_eq!(
        v,
        Vanished {
            uids: vec![6],
            complete: true
        }
    );
    // Deleting the mailbox drops its tombstones with it.
    s.delete_mailbox(trash.id).unwrap();
    let n = s.count(&format!(
        "SELECT COUNT(*) FROM expunged WHERE mailbox_id = {}",
        trash.id.id
    ));
    assert_eq!(n, 0);
}

fn ids_are_never_handed_out_again(s: &TestStore) {
    // Accounts: the removed one had the highest id.
    let a = s.add_account("a@x.test", "h").unwrap();
    s.remove_account("a@x.test").unwrap();
    let b = s.add_account("b@x.test", "h").unwrap();
    assert!(b.0 > a.0, "account id {} reused as {}", a.0, b.0);
    // Mailboxes: the deleted one had the highest id; UIDVALIDITY too (same second).
    let tmp = s.create_mailbox(b, "Tmp").unwrap();
    let uv = s.mailbox_by_id(tmp).unwrap().unwrap().uidvalidity;
    s.delete_mailbox(tmp).unwrap();
    let again = s.create_mailbox(b, "Tmp").unwrap();
    assert!(again.id > tmp.id, "mailbox id reused");
    assert!(s.mailbox_by_id(again).unwrap().unwrap().uidvalidity > uv);
    assert_eq!(s.mailbox_by_id(tmp).unwrap(), None);
    // Messages: the expunged one had the highest id.
    deliver_to(s, b, "Subject: one\r\n\r\n1\r\n");
    let inbox = s.mailbox(b, "INBOX").unwrap().unwrap().id;
    let first = s.list_messages(inbox).unwrap()[0].clone();
    s.expunge(inbox, &[first.uid]).unwrap();
    deliver_to(s, b, "Subject: two\r\n\r\n2\r\n");
    let second = s.list_messages(inbox).unwrap()[0].clone();
    assert!(second.message > first.message, "message id reused");
    // Queue recipients (the runner holds their ids during an attempt).
    let out = |to: &str| Delivery {
        outbound: Some(Outbound {
            sender: String::new(),
            recipients: vec![to.into()],
            message: b"x".to_vec(),
            first_attempt: 0,
            claim_until: 0,
        }),
        ..Delivery::default()
    };
    let q1 = s.deliver(out("z@far.test")).unwrap().queued.unwrap();
    let r1 = s.queue_list().unwrap()[0].recipients[0].id;
    s.queue_remove(q1).unwrap();
    s.deliver(out("y@far.test")).unwrap();
    let r2 = s.queue_list().unwrap()[0].recipients[0].id;
    assert!(r2 > r1, "queue recipient id reused");
    // And across a restart.
    s.shutdown();
    let s = s.reopen();
    s.remove_account("b@x.test").unwrap();
    let c = s.add_account("c@x.test", "h").unwrap();
    assert!(c.0 > b.0);
}

fn a_handle_reaches_only_its_own_account(s: &TestStore) {
    let a = s.add_account("a@x.test", "h").unwrap();
    let b = s.add_account("b@x.test", "h").unwrap();
    deliver_to(s, b, "Subject: b's secret\r\n\r\nPIN 4711\r\n");
    let b_inbox = s.mailbox(b, "INBOX").unwrap().unwrap().id;
    let a_inbox = s.mailbox(a, "INBOX").unwrap().unwrap().id;
    // a's account with b's mailbox row: every call refuses it.
    let forged = MailboxId {
        account: a,
        id: b_inbox.id,
    };
    let not_found = |r: Result<()>| matches!(r, Err(StoreError::NotFound(_)));
    assert_eq!(s.mailbox_by_id(forged).unwrap(), None);
    // An IMAP session's checks read the same as the two calls, and never the forged mailbox.
    let (now, info) = s.session_state(a, Some(forged)).unwrap();
    assert_eq!((now, info), (s.account_by_id(a).unwrap(), None));
    assert_eq!(
        s.session_state(a, Some(a_inbox)).unwrap(),
        (
            s.account_by_id(a).unwrap(),
            s.mailbox_by_id(a_inbox).unwrap()
        )
    );
    assert!(s.session_state(a, None).unwrap().0.is_some());
    // STATUS's read is the two calls in one, for the account's own mailbox only.
    let inbox = s.mailbox(a, "INBOX").unwrap().unwrap();
    assert_eq!(
        s.mailbox_status(a, "INBOX").unwrap(),
        Some((inbox, s.mailbox_counts(a_inbox).unwrap()))
    );
    assert_eq!(s.mailbox_status(a, "No such box").unwrap(), None);
    assert!(not_found(s.list_messages(forged).map(drop)));
    assert!(not_found(s.mailbox_changes(forged, 0).map(drop)));
    assert!(not_found(s.expunge(forged, &[1]).map(drop)));
    assert!(not_found(
        s.store_flags(forged, &[1], FlagOp::Add, Flags::DELETED, &[], None)
            .map(drop)
    ));
    assert!(not_found(
        s.copy_messages(forged, &[1], a_inbox, false).map(drop)
    ));
    assert!(not_found(
        s.copy_messages(a_inbox, &[1], forged, false).map(drop)
    ));
    assert!(not_found(
        s.append_message(forged, b"x", Flags::default(), &[], 0)
            .map(drop)
    ));
    assert!(not_found(s.delete_mailbox(forged)));
    let mut buf = [0u8; 64];
    let msg = MessageRef::Mailbox {
        mailbox: forged,
        uid: 1,
    };
    assert!(not_found(s.read_message_at(msg, 0, &mut buf).map(drop)));
    assert!(not_found(s.message_size(msg).map(drop)));
    // b's mail is untouched.
    let left = s.list_messages(b_inbox).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].flags, Flags::default());
    assert!(s.mailbox_by_id(b_inbox).unwrap().unwrap().subscribed);
    assert!(s.list_messages(a_inbox).unwrap().is_empty());
    let body = s
        .store
        .as_ref()
        .message_octets(MessageRef::Mailbox {
            mailbox: b_inbox,
            uid: 1,
        })
        .unwrap();
    assert!(body.ends_with(b"PIN 4711\r\n"));
}

fn a_reference_to_an_expunged_message_finds_nothing(s: &TestStore) {
    let a = s.add_account("a@x.test", "h").unwrap();
    let b = s.add_account("b@x.test", "h").unwrap();
    deliver_to(s, a, "Subject: a\r\n\r\na's\r\n");
    let a_inbox = s.mailbox(a, "INBOX").unwrap().unwrap().id;
    let held = MessageRef::Mailbox {
        mailbox: a_inbox,
        uid: 1,
    };
    assert!(s.message_size(held).is_ok());
    s.expunge(a_inbox, &[1]).unwrap();
    deliver_to(s, b, "Subject: b\r\n\r\nb's secret\r\n");
    let mut buf = [0u8; 64];
    assert!(matches!(
        s.read_message_at(held, 0, &mut buf),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(s.message_size(held), Err(StoreError::NotFound(_))));
}

fn subscriptions_are_names_apart_from_mailboxes(s: &TestStore) {
    let a = s.add_account("a@x.test", "h").unwrap();
    let b = s.add_account("b@x.test", "h").unwrap();
    // The default folders start subscribed; CREATE does not subscribe.
    let defaults: Vec<String> = DEFAULT_FOLDERS.iter().map(|(n, _)| n.to_string()).collect();
    let mut want = defaults.clone();
    want.sort();
    assert_eq!(s.subscriptions(a).unwrap(), want);
    let work = s.create_mailbox(a, "Work").unwrap();
    assert!(!s.mailbox_by_id(work).unwrap().unwrap().subscribed);
    // A name without a mailbox can be subscribed; twice changes nothing.
    assert!(s.subscribe(a, "Later", true).unwrap());
    assert!(!s.subscribe(a, "Later", true).unwrap());
    s.create_mailbox(a, "Work/Sub").unwrap();
    assert!(s.subscribe(a, "Work", true).unwrap());
    assert!(s.subscribe(a, "Work/Sub", true).unwrap());
    assert!(s.mailbox_by_id(work).unwrap().unwrap().subscribed);
    // RENAME takes the subscriptions of the mailbox and its children along.
    s.rename_mailbox(a, "Work", "Job").unwrap();
    let subs = s.subscriptions(a).unwrap();
    assert!(subs.contains(&"Job".to_string()) && subs.contains(&"Job/Sub".to_string()));
    assert!(!subs.iter().any(|n| n.starts_with("Work")), "{subs:?}");
    // DELETE leaves the subscription (RFC 9051 §6.3.9).
    let job = s.mailbox(a, "Job/Sub").unwrap().unwrap().id;
    s.delete_mailbox(job).unwrap();
    assert!(s.subscriptions(a).unwrap().contains(&"Job/Sub".to_string()));
    // Another account's subscriptions are its own.
    assert_eq!(s.subscriptions(b).unwrap(), want);
    assert!(!s.subscribe(b, "Later", false).unwrap());
    assert!(s.subscriptions(a).unwrap().contains(&"Later".to_string()));
    // Unsubscribe; a removed account's subscriptions go with it.
    assert!(s.subscribe(a, "Later", false).unwrap());
    s.remove_account("a@x.test").unwrap();
    assert!(s.subscriptions(a).unwrap().is_empty());
    assert!(matches!(
        s.subscribe(a, "X", true),
        Err(StoreError::NotFound(_))
    ));
}

fn search_data_lives_and_goes_with_the_message(s: &TestStore) {
    let a = s.add_account("a@x.test", "h").unwrap();
    let b = s.add_account("b@x.test", "h").unwrap();
    for i in 0..3 {
        s.deliver(Delivery::to_inboxes(
            format!("Subject: {i}\r\n\r\nx\r\n").into_bytes(),
            vec![a, b],
        ))
        .unwrap();
    }
    let ia = s.mailbox(a, "INBOX").unwrap().unwrap().id;
    let ib = s.mailbox(b, "INBOX").unwrap().unwrap().id;
    assert!(s.search_data(ia, 1).unwrap().is_empty());
    s.put_search_data(
        ia,
        1,
        vec![
            (1, b"one".to_vec()),
            (3, b"three".to_vec()),
            (9, b"gone".to_vec()),
        ],
    )
    .unwrap();
    assert_eq!(
        s.search_data(ia, 1).unwrap(),
        vec![(1, b"one".to_vec()), (3, b"three".to_vec())]
    );
    // Another format is kept apart: not returned, and does not replace this one.
    assert!(s.search_data(ia, 2).unwrap().is_empty());
    s.put_search_data(ia, 2, vec![(1, b"sort".to_vec())])
        .unwrap();
    assert_eq!(s.search_data(ia, 2).unwrap(), vec![(1, b"sort".to_vec())]);
    assert_eq!(s.search_data(ia, 1).unwrap().len(), 2);
    // The same octets in b's INBOX (one delivery) have the same data: it is of the octets.
    assert_eq!(s.search_data(ib, 1).unwrap().len(), 2);
    // Expunged from both: the data goes with the message.
    s.expunge(ia, &[1]).unwrap();
    s.expunge(ib, &[1]).unwrap();
    assert_eq!(s.search_data(ia, 1).unwrap(), vec![(3, b"three".to_vec())]);
    let rows = s.count("SELECT COUNT(*) FROM message_search");
    assert_eq!(rows, 1);
    // A handle of another account reaches nothing.
    let forged = MailboxId {
        account: b,
        id: ia.id,
    };
    assert!(matches!(
        s.search_data(forged, 1),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.put_search_data(forged, 1, vec![(3, b"evil".to_vec())]),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.search_data(ia, 1).unwrap(), vec![(3, b"three".to_vec())]);
}

fn a_transcript_is_kept_with_its_message_read_by_its_owner_and_goes_with_it(s: &TestStore) {
    let a = s.add_account("a@x.test", "h").unwrap();
    let b = s.add_account("b@x.test", "h").unwrap();
    let c = s.add_account("c@x.test", "h").unwrap();
    let t = Transcript {
        lines: vec![
            (Direction::Server, "220 mx ESMTP".into()),
            (Direction::Client, "AUTH PLAIN ****".into()),
            (Direction::Client, "<message, 20 octets>".into()),
        ],
        truncated: true,
        peer: "127.0.0.1:5000".into(),
        listener: "submission".into(),
    };
    s.deliver(Delivery {
        transcript: Some(t.clone()),
        local_message: b"Subject: hi\r\n\r\nbody\r\n".to_vec(),
        local: vec![a, b],
        outbound: None,
    })
    .unwrap();
    // A message that came without one (a bounce, APPEND): none.
    s.deliver(Delivery::to_inboxes(
        b"Subject: 2\r\n\r\n".to_vec(),
        vec![a],
    ))
    .unwrap();
    let at = |acct: AccountId, uid| MessageRef::Mailbox {
        mailbox: s.mailbox(acct, "INBOX").unwrap().unwrap().id,
        uid,
    };
    assert_eq!(s.message_transcript(at(a, 1)).unwrap(), Some(t.clone()));
    assert_eq!(s.message_transcript(at(b, 1)).unwrap(), Some(t));
    assert_eq!(s.message_transcript(at(a, 2)).unwrap(), None);
    // Another account's mailbox with a's UID: not found, like a missing message.
    let foreign = MessageRef::Mailbox {
        mailbox: MailboxId {
            account: c,
            id: s.mailbox(a, "INBOX").unwrap().unwrap().id.id,
        },
        uid: 1,
    };
    assert!(matches!(
        s.message_transcript(foreign),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.message_transcript(at(c, 1)),
        Err(StoreError::NotFound(_))
    ));
    // Gone with the message: once both copies are expunged, the row is deleted.
    s.expunge(s.mailbox(a, "INBOX").unwrap().unwrap().id, &[1])
        .unwrap();
    let rows = || s.count("SELECT COUNT(*) FROM message_transcript");
    assert_eq!(rows(), 1, "b's copy still holds the message");
    s.expunge(s.mailbox(b, "INBOX").unwrap().unwrap().id, &[1])
        .unwrap();
    assert_eq!(rows(), 0);
}

fn the_async_writes_commit_like_the_blocking_ones(s: &TestStore) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let a = s.add_account("a@x.test", "h").unwrap();
    let out = |n: usize| Delivery {
        transcript: None,
        local_message: format!("local {n}").into_bytes(),
        local: vec![a],
        outbound: Some(Outbound {
            sender: "a@x.test".into(),
            recipients: vec![format!("r{n}@far.test")],
            message: format!("relayed {n}").into_bytes(),
            first_attempt: 100,
            claim_until: 0,
        }),
    };
    // Many at once from one thread: none waits for another's commit.
    let receipts = rt.block_on(async {
        let futures: Vec<_> = (0..20)
            .map(|n| s.store.clone().deliver_async(out(n)))
            .collect();
        let mut receipts = Vec::new();
        for f in futures {
            receipts.push(f.await.unwrap());
        }
        receipts
    });
    assert!(receipts
        .iter()
        .all(|r| r.queued.is_some() && r.local.len() == 1));
    let inbox = s.mailbox(a, "INBOX").unwrap().unwrap();
    let mut bodies: Vec<String> = s
        .list_messages(inbox.id)
        .unwrap()
        .iter()
        .map(|m| {
            String::from_utf8(
                s.message_octets(MessageRef::Mailbox {
                    mailbox: inbox.id,
                    uid: m.uid,
                })
                .unwrap(),
            )
            .unwrap()
        })
        .collect();
    bodies.sort();
    let mut want: Vec<String> = (0..20).map(|n| format!("local {n}")).collect();
    want.sort();
    assert_eq!(bodies, want);
    // Results recorded asynchronously: only by the claim's holder; the entry goes with its
    // last recipient.
    let due = s.queue_due(100, 100).unwrap();
    assert_eq!(due.len(), 20);
    let first = &due[0];
    let r = first.recipients[0].id;
    assert_eq!(s.queue_claim(&[r], 100, 500).unwrap(), vec![r]);
    let update = |lease| RecipientUpdate {
        id: r,
        lease,
        status: "delivered".into(),
        attempts: 1,
        next_attempt: 100,
        last_error: None,
    };
    rt.block_on(s.store.clone().queue_update_async(vec![update(499)], None))
        .unwrap();
    assert_eq!(
        s.queue_list().unwrap().len(),
        20,
        "recorded by a claim it does not hold"
    );
    rt.block_on(s.store.clone().queue_update_async(vec![update(500)], None))
        .unwrap();
    let left = s.queue_list().unwrap();
    assert_eq!(left.len(), 19);
    assert!(left.iter().all(|e| e.id != first.id));
    // A shut store answers an error; nothing waits forever.
    s.shutdown();
    let e = rt.block_on(s.store.clone().deliver_async(out(99)));
    assert!(e.is_err(), "{e:?}");
}

fn a_message_claimed_as_it_is_queued_is_left_to_its_claim(s: &TestStore) {
    let out = |claim_until| Delivery {
        transcript: None,
        local_message: Vec::new(),
        local: Vec::new(),
        outbound: Some(Outbound {
            sender: "a@x.test".into(),
            recipients: vec!["r1@far.test".into(), "r2@near.test".into()],
            message: b"relayed".to_vec(),
            first_attempt: 100,
            claim_until,
        }),
    };
    let claimed = s.deliver(out(500)).unwrap();
    let unclaimed = s.deliver(out(0)).unwrap();
    // The entry as stored comes back with its recipients' ids.
    let entry = claimed.queued_entry.clone().unwrap();
    assert_eq!(Some(entry.id), claimed.queued);
    let listed = s.queue_list().unwrap();
    let stored = listed.iter().find(|e| e.id == entry.id).unwrap();
    assert_eq!(stored.recipients, entry.recipients);
    assert_eq!(stored.sender, entry.sender);
    assert_eq!(stored.message, entry.message);
    assert!(entry
        .recipients
        .iter()
        .all(|r| r.status == "pending" && r.attempts == 0));
    // Rounds see only the unclaimed one until the claim ends; no one else can claim it.
    let due: Vec<QueueId> = s.queue_due(100, 10).unwrap().iter().map(|e| e.id).collect();
    assert_eq!(due, vec![unclaimed.queued.unwrap()]);
    let ids: Vec<i64> = entry.recipients.iter().map(|r| r.id).collect();
    assert!(s.queue_claim(&ids, 100, 900).unwrap().is_empty());
    assert_eq!(
        s.queue_due(500, 10).unwrap().len(),
        2,
        "free again when it ends"
    );
    // The claim set with the delivery records the result.
    let done = |r: &QueueRecipient| RecipientUpdate {
        id: r.id,
        lease: 500,
        status: "delivered".into(),
        attempts: 1,
        next_attempt: 100,
        last_error: None,
    };
    s.queue_update(entry.recipients.iter().map(done).collect(), None)
        .unwrap();
    let left: Vec<QueueId> = s.queue_list().unwrap().iter().map(|e| e.id).collect();
    assert_eq!(left, vec![unclaimed.queued.unwrap()]);
}

fn failing_jobs_among_many_cost_the_others_nothing(s: &TestStore) {
    // Deliveries that fail (an account that does not exist: the message row is written
    // before the INBOX is looked up) interleaved with good ones from many threads, so batches
    // mix both: a batch that fails is run again job by job, and afterwards exactly the good
    // ones are stored, with consecutive UIDs and no orphan blob.
    let a = s.add_account("a@x.test", "h").unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let s = s.store.clone();
            std::thread::spawn(move || {
                let mut good = 0;
                for i in 0..40 {
                    let bad = (t + i) % 5 == 0;
                    let to = if bad { AccountId(999_999) } else { a };
                    let r = s.deliver(Delivery::to_inboxes(
                        format!("m{t}-{i}\r\n").into_bytes(),
                        vec![to],
                    ));
                    assert_eq!(r.is_err(), bad, "{r:?}");
                    good += usize::from(!bad);
                }
                good
            })
        })
        .collect();
    let good: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(good, 256);
    let inbox = s.mailbox(a, "INBOX").unwrap().unwrap();
    let msgs = s.list_messages(inbox.id).unwrap();
    assert_eq!(msgs.len(), good);
    let uids: Vec<u32> = msgs.iter().map(|m| m.uid).collect();
    assert_eq!(uids, (1..=good as u32).collect::<Vec<_>>());
    assert_eq!(s.count("SELECT COUNT(*) FROM messages"), good as i64);
}
