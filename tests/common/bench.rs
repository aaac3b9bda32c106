//! Helpers for the tests of `ringstore bench`: the output of a run that must have succeeded,
//! and its JSON report.

use serde_json::Value;
use std::process::Output;

/// stdout and stderr of a run that must have succeeded (both shown if it did not).
pub fn succeeded(out: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// The JSON report a successful run printed on stdout (`--json`).
pub fn report(out: &Output) -> Value {
    let (stdout, _) = succeeded(out);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}
