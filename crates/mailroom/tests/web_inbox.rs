//! The web inbox (`GET /`) in a real browser: headless Chromium driven through chromedriver
//! (WebDriver). Log in; a message sent by SMTP appears in the list without a reload; open it,
//! see its headers and its SMTP dialogue (or "no recorded dialogue"); keyboard navigation;
//! and a message whose HTML holds a `<script>` and remote content (images, a style sheet, an
//! @import, a preconnect hint, a frame, an object, an embed, a meta refresh; served by a listener of the test that counts
//! requests): the script does not run and nothing is fetched. Screenshots go
//! to `target/web-inbox-screenshots/`. Without chromium and chromedriver these tests fail and
//! say what to install.
//!
//! One test needs no browser: the page, its assets and the mail HTML view are served with
//! their Content-Security-Policy headers.

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use browser::Browser;
use fantoccini::key::Key;
use fantoccini::Locator;
use support::http::python;
use support::imap::msg;
use support::{ServerConfig, TestServer, ALICE, BOB};

fn start() -> TestServer {
    ServerConfig::example()
        .listen(&["smtp", "http"])
        .limits("auth_failure_delay = \"10ms\"")
        .table("http", "admins = [\"alice@example.test\"]")
        .start()
}

/// Opens the web inbox and logs in through its form.
fn log_in(b: &Browser, s: &TestServer, who: (&str, &str)) {
    let url = format!("http://{}/", s.addr("http"));
    b.run(b.client.goto(&url)).expect("open the web inbox");
    let address = b.wait_css("#address", 10);
    b.run(address.send_keys(who.0)).expect("type the address");
    let pw = b.wait_css("#password", 5);
    b.run(pw.send_keys(who.1)).expect("type the password");
    let submit = b.wait_css("#login button[type=submit]", 5);
    b.run(submit.click()).expect("log in");
    b.wait_js(
        "return !document.getElementById('app').hidden",
        10,
        "the inbox after logging in",
    );
}

/// Clicks the element; once more if the page re-rendered it between finding and clicking (a
/// live update rebuilds the folder list and the message list).
fn click(b: &Browser, css: &str) {
    for attempt in 0..5 {
        let e = b.wait_css(css, 10);
        match b.run(e.click()) {
            Ok(()) => return,
            Err(e) if attempt < 4 && e.to_string().contains("stale") => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("click {css}: {e}"),
        }
    }
}

fn subjects_js(subject: &str) -> String {
    format!(
        "return [...document.querySelectorAll('#list li .subj')].some(e => e.textContent === {})",
        serde_json::Value::String(subject.into())
    )
}

#[test]
fn the_page_its_assets_and_the_mail_html_view_carry_strict_policies() {
    let s = start();
    s.deliver(BOB.0, &[ALICE.0], &msg(BOB.0, ALICE.0, "hello", "body"));
    let out = python(
        &s,
        r#"
A = ("alice@example.test", "secret")
st, r, data = call("GET", "/")
assert st == 200 and r.getheader("Content-Type") == "text/html; charset=utf-8", st
csp = r.getheader("Content-Security-Policy")
for part in ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"]:
    assert part in csp, csp
assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
assert r.getheader("X-Frame-Options") == "DENY" and r.getheader("X-Content-Type-Options") == "nosniff"
# no inline script, no inline style in the page: all of it is in /ui/ files
assert b"<script>" not in data and b"style=" not in data and b'src="/ui/app.js"' in data, data
st, r, js = call("GET", "/ui/app.js")
assert st == 200 and r.getheader("Content-Type").startswith("text/javascript"), st
assert b"innerHTML" not in js and b"eval(" not in js, "the page builds its DOM from text only"
st, r, css = call("GET", "/ui/app.css")
assert st == 200 and r.getheader("Content-Type").startswith("text/css") and b"prefers-color-scheme" in css
st, r, _ = call("GET", "/ui/icon.svg"); assert st == 200
err("GET", "/ui/../Cargo.toml", 404)
err("GET", "/ui/nothing.js", 404)
# the mail HTML view: its own policy, no script, no remote content, sandboxed
l = j("GET", "/api/mailboxes/INBOX/messages", auth=A)["messages"]
st, r, data = call("GET", "/api/messages/INBOX/%s/html" % l[0]["id"], auth=A)
assert st == 200 and r.getheader("Content-Type") == "text/html; charset=utf-8", st
assert r.getheader("Content-Security-Policy") == "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox", r.getheader("Content-Security-Policy")
assert b"body" in data, data
err("GET", "/api/messages/INBOX/%s/html" % l[0]["id"], 401)
err("GET", "/api/messages/INBOX/%s/html" % l[0]["id"], 404, auth=("bob@example.test", "hunter2"))
print("ok")
"#,
    );
    assert!(out.contains("ok"), "{out}");
}

#[test]
fn log_in_see_new_mail_live_open_it_and_read_its_headers_and_dialogue() {
    let s = start();
    s.deliver(
        BOB.0,
        &[ALICE.0],
        &msg(BOB.0, ALICE.0, "Older one", "older body"),
    );
    let b = Browser::start();
    log_in(&b, &s, ALICE);
    b.wait_js(&subjects_js("Older one"), 10, "the message already there");
    b.wait_js(
        "return document.querySelector('#live.on') !== null",
        10,
        "the live stream (EventSource ready)",
    );
    // The page must not reload: a mark on its window survives only without one.
    b.js("window.__samePage = 42; return true");
    s.deliver(
        BOB.0,
        &[ALICE.0],
        &msg(BOB.0, ALICE.0, "Live one", "live body"),
    );
    let accepted = Instant::now();
    b.wait_js(&subjects_js("Live one"), 10, "the new message in the list");
    let latency = accepted.elapsed();
    println!(
        "live update: {} ms from SMTP 250 to the list",
        latency.as_millis()
    );
    assert!(latency < Duration::from_secs(3), "{latency:?}");
    assert_eq!(b.js("return window.__samePage"), serde_json::json!(42));
    // Newest first, unread in bold.
    assert_eq!(
        b.js("return document.querySelector('#list li .subj').textContent"),
        serde_json::json!("Live one")
    );
    assert_eq!(
        b.js("return getComputedStyle(document.querySelector('#list li.unread .subj')).fontWeight"),
        serde_json::json!("700")
    );
    b.screenshot("list");

    // Keyboard: j moves down to the older message, k back up, Enter opens.
    let list = b.wait_css("#list", 5);
    b.run(list.click()).expect("focus the list");
    b.js("document.getElementById('list').focus(); return true");
    b.run(list.send_keys("j")).expect("j");
    b.wait_js(
        "return document.querySelector('#list li.selected .subj').textContent === 'Older one'",
        5,
        "j selects the next message",
    );
    b.run(list.send_keys("k")).expect("k");
    b.wait_js(
        "return document.querySelector('#list li.selected .subj').textContent === 'Live one'",
        5,
        "k selects the previous message",
    );
    b.run(list.send_keys(&Key::Enter.to_string()))
        .expect("Enter");
    b.wait_js(
        "return document.getElementById('subject').textContent === 'Live one'",
        10,
        "Enter opens the message",
    );
    // Opening marks it read: no longer bold.
    b.wait_js(
        "return !document.querySelector('#list li.selected').classList.contains('unread')",
        10,
        "the opened message shown as read",
    );

    // Headers, as the server added them.
    click(&b, "#tab-headers");
    b.wait_js(
        "return [...document.querySelectorAll('#panel th')].some(e => e.textContent === 'Subject')",
        10,
        "the headers table",
    );
    let heads = b.js("return [...document.querySelectorAll('#panel th')].map(e => e.textContent)");
    let heads = heads.to_string();
    assert!(
        heads.contains("Received") && heads.contains("Return-Path"),
        "{heads}"
    );
    b.screenshot("headers");

    // The SMTP dialogue: the recorded one with explained reply codes, or, while this server
    // records none, the notice that says so.
    click(&b, "#tab-dialogue");
    b.wait_js(
        "return document.querySelector('#panel .dialogue') !== null || /No recorded dialogue/.test(document.getElementById('panel').textContent)",
        10,
        "the dialogue tab",
    );
    let recorded = b.js("return document.querySelector('#panel .dialogue') !== null");
    if recorded == serde_json::json!(true) {
        let text = b
            .js("return document.getElementById('panel').textContent")
            .to_string();
        assert!(
            text.contains("C: MAIL FROM") && text.contains("S: 250"),
            "{text}"
        );
        let tip = b
            .js("return document.querySelector('#panel abbr[title]').title")
            .to_string();
        assert!(!tip.is_empty(), "reply codes are explained");
    }
    b.screenshot("dialogue");

    // How the tab renders a recorded dialogue, in the shape the transcript endpoint answers
    // (`{"lines": [{"dir", "text"}], "truncated", "peer", "listener"}`), whether or not this
    // server records one: the page's fetch is given a canned answer for that URL.
    b.js(r#"
        const real = window.fetch;
        window.fetch = (url, opts) => String(url).endsWith('/transcript')
          ? Promise.resolve(new Response(JSON.stringify({
              lines: [
                {dir: 'S', text: '220 mx.example.test ESMTP mailroom'},
                {dir: 'C', text: 'EHLO pc1.example.test'},
                {dir: 'S', text: '250-mx.example.test'},
                {dir: 'S', text: '250 SIZE 26214400'},
                {dir: 'C', text: 'AUTH LOGIN'},
                {dir: 'S', text: '334 VXNlcm5hbWU6'},
                {dir: 'C', text: '<b>not markup</b>'},
                {dir: 'S', text: '535 5.7.8 Authentication failed'},
                {dir: 'S', text: '599 odd code'},
              ],
              truncated: true, peer: '127.0.0.1:40000', listener: 'submission'}),
              {status: 200, headers: {'Content-Type': 'application/json'}}))
          : real(url, opts);
        return true"#);
    click(&b, "#tab-text");
    click(&b, "#tab-dialogue");
    b.wait_js(
        "return document.querySelectorAll('#panel .dialogue div.s').length === 6",
        10,
        "the canned dialogue",
    );
    let rendered = b.js(
        "return [...document.querySelectorAll('#panel .dialogue div')].map(d => d.textContent)",
    );
    let rendered: Vec<String> = serde_json::from_value(rendered).expect("lines");
    assert_eq!(rendered[0], "client 127.0.0.1:40000 · listener submission");
    assert_eq!(rendered[1], "S: 220 mx.example.test ESMTP mailroom");
    assert_eq!(rendered[2], "C: EHLO pc1.example.test");
    assert_eq!(
        rendered[7], "C: <b>not markup</b>",
        "client text stays text"
    );
    assert!(
        rendered.last().is_some_and(|l| l.contains("cut short")),
        "{rendered:?}"
    );
    assert_eq!(
        b.js("return document.querySelectorAll('#panel .dialogue b').length"),
        serde_json::json!(0)
    );
    let tips = b.js(
        "return Object.fromEntries([...document.querySelectorAll('#panel abbr')].map(a => [a.textContent, a.title]))",
    );
    for (code, words) in [
        ("220", "Service ready"),
        ("250", "OK"),
        ("334", "Authentication continues"),
        ("535", "credentials invalid"),
        ("599", "permanent failure"),
    ] {
        let tip = tips[code].as_str().unwrap_or_default();
        assert!(tip.contains(words), "{code}: {tip:?}");
    }
    b.screenshot("dialogue-recorded");

    // Text tab, then mark unread from the view.
    click(&b, "#tab-text");
    b.wait_js(
        "return /live body/.test(document.getElementById('panel').textContent)",
        10,
        "the text tab",
    );
    click(&b, "#toggle-seen");
    b.wait_js(
        "return document.querySelector('#list li.selected').classList.contains('unread')",
        10,
        "marked unread",
    );

    // A phone-sized window, and the dark theme.
    b.run(b.client.set_window_size(390, 844)).expect("resize");
    b.screenshot("phone-message");
    b.js("location.hash = '#mailbox/INBOX'; return true");
    b.wait_js(
        "return getComputedStyle(document.getElementById('list-pane')).display !== 'none'",
        5,
        "the list on a phone",
    );
    b.screenshot("phone-list");
    b.run(b.client.set_window_size(1280, 860)).expect("resize");
    click(&b, "#theme");
    b.screenshot("dark");
}

/// A listener that answers every request with a tiny GIF, counts connections and keeps each
/// request's first line.
fn counting_server() -> (u16, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let n = Arc::new(AtomicUsize::new(0));
    let count = n.clone();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let lines = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let n = c.read(&mut buf).unwrap_or(0);
            let first = String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            if let Ok(mut v) = lines.lock() {
                v.push(first);
            }
            let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
            let _ = c.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    gif.len()
                )
                .as_bytes(),
            );
            let _ = c.write_all(gif);
        }
    });
    (port, n, seen)
}

#[test]
fn mail_html_runs_no_script_and_loads_no_remote_image() {
    let s = start();
    let (port, fetched, requests) = counting_server();
    let html = format!(
        "<html><head><title>mail title</title>\
         <meta http-equiv=\"refresh\" content=\"0; url=http://127.0.0.1:{port}/refresh\">\
         <style>@import url(http://127.0.0.1:{port}/import.css);</style>\
         <link rel=\"stylesheet\" href=\"http://127.0.0.1:{port}/style.css\">\
         <LINK rel=\"preconnect\" href=\"http://127.0.0.1:{port}/\"></head>\
         <body><p id=\"visible\">Visible HTML body</p>\
         <script>document.title='pwned'; try {{ parent.document.title='pwned' }} catch (e) {{}}\
         try {{ top.pwned = 1 }} catch (e) {{}}</script>\
         <img src=\"http://127.0.0.1:{port}/x.png\" alt=\"remote\">\
         <img src=\"nothing\" onerror=\"top.pwned2 = 1\">\
         <div style=\"background: url(http://127.0.0.1:{port}/bg.png)\">styled</div>\
         <iframe src=\"http://127.0.0.1:{port}/frame\"></iframe>\
         <object data=\"http://127.0.0.1:{port}/object\"></object>\
         <embed src=\"http://127.0.0.1:{port}/embed\">\
         </body></html>"
    );
    let message = format!(
        "From: <bob@example.test>\r\nTo: <alice@example.test>\r\nSubject: hostile html\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nplain version\r\n\
         --b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--b--\r\n"
    );
    s.deliver(BOB.0, &[ALICE.0], &message);
    let b = Browser::start();
    log_in(&b, &s, ALICE);
    b.wait_js(&subjects_js("hostile html"), 10, "the message in the list");
    click(&b, "#list li[data-id]");
    b.wait_js(
        "return document.querySelector('#panel iframe') !== null",
        10,
        "the HTML view",
    );
    assert_eq!(
        b.js("return document.querySelector('#panel iframe').getAttribute('sandbox')"),
        serde_json::json!(""),
        "sandboxed, with no allowances"
    );
    // Into the mail's document: it is shown (the text is there) but its script did not run.
    b.run(b.client.clone().enter_frame(0))
        .expect("enter the iframe");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = b.run(b.client.find(Locator::Css("#visible")));
        if let Ok(e) = found {
            assert_eq!(b.run(e.text()).expect("text"), "Visible HTML body");
            break;
        }
        assert!(Instant::now() < deadline, "the mail HTML was not shown");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        b.js("return document.title"),
        serde_json::json!("mail title")
    );
    b.run(b.client.clone().enter_parent_frame())
        .expect("back to the page");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(b.js("return document.title"), serde_json::json!("mailroom"));
    assert_eq!(
        b.js("return [typeof window.pwned, typeof window.pwned2]"),
        serde_json::json!(["undefined", "undefined"])
    );
    b.screenshot("hostile-html");
    assert_eq!(
        fetched.load(Ordering::SeqCst),
        0,
        "the mail's remote image, style sheet, import, background, frame, object or refresh was fetched: {:?}",
        requests.lock().map(|v| v.clone()).unwrap_or_default()
    );
    // The control: this browser does reach the counting listener when asked to.
    b.run(b.client.goto(&format!("http://127.0.0.1:{port}/x.png")))
        .expect("open the image directly");
    let t = Instant::now();
    while fetched.load(Ordering::SeqCst) == 0 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        fetched.load(Ordering::SeqCst) > 0,
        "the counting listener saw nothing"
    );
}

#[test]
fn search_move_delete_and_the_queue_page() {
    let s = ServerConfig::example()
        .listen(&["smtp", "http"])
        .limits("auth_failure_delay = \"10ms\"")
        .table("http", "admins = [\"alice@example.test\"]")
        .table("queue", "retry = [\"1h\"]\nconnect_timeout = \"2s\"")
        .route("far.test", support::free_port())
        .start();
    s.deliver(
        BOB.0,
        &[ALICE.0],
        &msg(BOB.0, ALICE.0, "apples", "about apples"),
    );
    s.deliver(
        BOB.0,
        &[ALICE.0],
        &msg(BOB.0, ALICE.0, "pears", "about pears"),
    );
    let b = Browser::start();
    log_in(&b, &s, ALICE);
    b.wait_js(&subjects_js("pears"), 10, "the list");

    // The search box takes IMAP SEARCH keys; a bad one says why.
    let q = b.wait_css("#q", 5);
    b.run(q.send_keys(&format!("SUBJECT apples{}", Key::Enter)))
        .expect("search");
    b.wait_js(
        "return document.querySelectorAll('#list li[data-id]').length === 1 && document.querySelector('#list li .subj').textContent === 'apples'",
        10,
        "the search result",
    );
    b.run(q.clear()).expect("clear");
    b.run(q.send_keys(&format!("FROMM x{}", Key::Enter)))
        .expect("search");
    b.wait_js(
        "return /SEARCH/.test(document.getElementById('list-error').textContent)",
        10,
        "the search error",
    );
    b.run(q.clear()).expect("clear");
    b.run(q.send_keys(&Key::Enter.to_string())).expect("search");
    b.wait_js(
        "return document.querySelectorAll('#list li[data-id]').length === 2",
        10,
        "the whole list again",
    );

    // Move "pears" to Archive, delete "apples".
    click(&b, "#list li[data-id]");
    b.wait_js(
        "return document.getElementById('subject').textContent === 'pears'",
        10,
        "pears open",
    );
    b.js("const s = document.getElementById('move-to'); s.value = 'Archive'; s.dispatchEvent(new Event('change')); return true");
    b.wait_js(
        "return document.querySelectorAll('#list li[data-id]').length === 1 && document.querySelector('#list li .subj').textContent === 'apples'",
        10,
        "pears moved out of INBOX",
    );
    click(&b, "#list li[data-id]");
    b.wait_js(
        "return document.getElementById('subject').textContent === 'apples'",
        10,
        "apples open",
    );
    click(&b, "#delete");
    b.wait_js(
        "return document.querySelectorAll('#list li[data-id]').length === 0",
        10,
        "apples deleted",
    );
    click(&b, "#folder-list a[data-mailbox='Archive']");
    b.wait_js(&subjects_js("pears"), 10, "pears in Archive");
    assert!(s.inbox(ALICE.0).is_empty());

    // The queue page: a message for far.test waits; Retry, then Remove.
    let out = python(
        &s,
        r#"
r = j("POST", "/api/send", {"to": "zed@far.test", "subject": "away", "text": "x"}, auth=("alice@example.test", "secret"), want=201)
print(r["queued"])
"#,
    );
    let id: i64 = out.trim().parse().expect("queue id");
    s.wait_for(20, "the first attempt", || {
        s.queue()
            .first()
            .is_some_and(|e| e.recipients[0].attempts >= 1)
    });
    click(&b, "#queue-link");
    b.wait_js(
        &format!("return document.querySelector('#queue-table tr[data-id=\"{id}\"]') !== null"),
        10,
        "the queue entry",
    );
    let row = b
        .js(&format!(
            "return document.querySelector('#queue-table tr[data-id=\"{id}\"]').textContent"
        ))
        .to_string();
    assert!(
        row.contains("zed@far.test") && row.contains("alice@example.test"),
        "{row}"
    );
    b.screenshot("queue");
    click(&b, &format!("#queue-table tr[data-id=\"{id}\"] button"));
    s.wait_for(20, "the retry", || {
        s.queue()
            .first()
            .is_some_and(|e| e.recipients[0].attempts >= 2)
    });
    // Remove asks first (a confirm dialog), then the entry is gone.
    b.js("window.confirm = () => true; return true");
    click(
        &b,
        &format!("#queue-table tr[data-id=\"{id}\"] button:last-child"),
    );
    b.wait_js(
        "return !document.getElementById('queue-empty').hidden",
        10,
        "the empty queue",
    );
    assert!(s.queue().is_empty());
}

#[test]
fn a_user_who_is_not_an_admin_gets_no_queue_page() {
    let s = start();
    let b = Browser::start();
    log_in(&b, &s, BOB);
    assert_eq!(
        b.js("return document.getElementById('admin-links').hidden"),
        serde_json::json!(true)
    );
    b.js("location.hash = '#queue'; return true");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        b.js("return document.getElementById('queue-pane').hidden"),
        serde_json::json!(true)
    );
}
