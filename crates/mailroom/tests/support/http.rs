//! The HTTP API from Python's http.client: a prelude of helpers every script gets, and
//! [`python`], which runs a script with it beside a [`TestServer`] (`HTTP_PORT` in its
//! environment).

use super::TestServer;

/// Python helpers shared by the scripts: `call(method, path, body=None, headers={}, auth=None)`
/// returns (status, headers, bytes); `j(...)` parses JSON.
pub const PY_PRELUDE: &str = r#"
import base64, http.client, json, os, sys
PORT = int(os.environ["HTTP_PORT"])
def call(method, path, body=None, headers=None, auth=None):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    h = dict(headers or {})
    if auth:
        h["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode()
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body); h["Content-Type"] = "application/json"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r, data
def j(method, path, body=None, headers=None, auth=None, want=200):
    st, r, data = call(method, path, body, headers, auth)
    assert st == want, (method, path, st, data)
    return json.loads(data) if data else None
def err(method, path, want, body=None, headers=None, auth=None):
    st, r, data = call(method, path, body, headers, auth)
    assert st == want, (method, path, st, want, data)
    assert r.getheader("Content-Type", "").startswith("application/json"), r.getheader("Content-Type")
    e = json.loads(data)
    assert e["error"] and e["hint"], e
    return e
"#;

pub fn python(s: &TestServer, script: &str) -> String {
    s.python(&format!("{PY_PRELUDE}\n{script}"))
}
