//! What reaches a plugin and what never does, end to end with the real
//! `loader` binary and the loopback test backend: an isolated plugin's
//! process holds no token, in its environment, its command line or its
//! request, yet its `ctx.client()` and `ctx.agent_client()` calls work, made
//! by the loader (concurrent calls each get their own answer; a call too
//! large is an error); no `--env-prefix` passes a credential, only an
//! explicit `--env`; and `loader flush` delivers only to the backend it is
//! given, never to an address read from a journal.

use std::path::Path;

use crate::common::*;
use backend_server::TestBackend;
use serde_json::{json, Value};

const TOKEN: &str = "tok-91c2-NEVER-IN-A-PLUGIN";
const AGENT_TOKEN: &str = "agent-5d0e-NEVER-IN-A-PLUGIN";

fn client_probe_dir() -> tempfile::TempDir {
    plugin_dir(&[fixture_library("probe", "client-probe")])
}

/// `loader run client-probe ACTION` against `backend` (and `agent`), with
/// the tokens in the loader's environment.
fn run_probe(
    dir: &Path,
    backend: &TestBackend,
    agent: &TestBackend,
    action: &str,
    params: &str,
) -> (i32, Value, String) {
    let (backend_url, agent_url) = (backend.url(), agent.url());
    let args = [
        "run",
        "client-probe",
        action,
        "--params",
        params,
        "--backend",
        &backend_url,
        "--agent",
        &agent_url,
    ];
    let output = loader(
        dir,
        &args,
        &[("SYNAPSE_ACCESS_TOKEN", TOKEN), ("SYNAPSE_AGENT_TOKEN", AGENT_TOKEN)],
    );
    let result = serde_json::from_str(&stdout(&output)).unwrap_or(Value::Null);
    (exit_code(&output), result, stderr(&output))
}

#[test]
fn an_isolated_plugin_holds_no_token_yet_its_client_calls_work() {
    let backend = TestBackend::start(Some(TOKEN)).expect("the loopback backend");
    let agent = TestBackend::start(None).expect("the loopback agent");
    let dir = client_probe_dir();
    let (code, seen, log) = run_probe(dir.path(), &backend, &agent, "inspect", "{}");
    assert_eq!(code, 0, "{log}");
    assert_eq!(seen["backend"]["answer"]["name"], "model 3", "{seen:#}");
    assert_eq!(seen["agent"]["answer"]["count"], 0, "{seen:#}");
    let refused = seen["refused"]["error"].as_str().expect("a typed error");
    assert_eq!(seen["refused"]["status"], 404);
    assert!(
        refused.contains("Not found.") && refused.contains("/models/5000/"),
        "{refused}"
    );
    assert_eq!(seen["context_token"], Value::Null, "the default prefix passes no token");
    let inside = seen.to_string();
    for secret in [TOKEN, AGENT_TOKEN] {
        assert!(
            !inside.contains(secret),
            "{secret} reached the plugin's process: {seen:#}"
        );
    }
    let process = format!("{}{}{}", seen["process_env"], seen["environ"], seen["cmdline"]);
    for endpoint in [backend.url(), agent.url()] {
        assert!(!process.contains(&endpoint), "the child was given {endpoint}: {seen:#}");
    }
    assert!(seen["cmdline"].as_str().unwrap().contains("__child"), "{seen:#}");
    let names: Vec<&str> = seen["process_env"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(names.iter().all(|name| !name.contains("TOKEN")), "{names:?}");

    let requests = backend.requests();
    assert_eq!(requests.len(), 2, "the loader made the plugin's two backend calls");
    for request in &requests {
        assert_eq!(request.headers["synapse-access-token"], format!("Token {TOKEN}"));
    }
    assert_eq!(agent.requests()[0].headers["authorization"], AGENT_TOKEN);
}

#[test]
fn concurrent_calls_from_plugin_threads_each_get_their_own_answer() {
    let backend = TestBackend::start(Some(TOKEN)).expect("the loopback backend");
    let agent = TestBackend::start(None).expect("the loopback agent");
    let dir = client_probe_dir();
    let (code, result, log) = run_probe(dir.path(), &backend, &agent, "concurrent", r#"{"threads": 24}"#);
    assert_eq!(code, 0, "{log}");
    assert_eq!(result, json!({ "matched": 24 }));
    assert_eq!(backend.requests().len(), 24);
}

#[test]
fn a_call_too_large_for_the_channel_is_an_error_and_nothing_is_sent() {
    let backend = TestBackend::start(Some(TOKEN)).expect("the loopback backend");
    let agent = TestBackend::start(None).expect("the loopback agent");
    let dir = client_probe_dir();
    let params = json!({ "bytes": 17 * 1024 * 1024 }).to_string();
    let (code, result, log) = run_probe(dir.path(), &backend, &agent, "big_request", &params);
    assert_eq!(code, 0, "{log}");
    let error = result["error"].as_str().expect("an error");
    assert!(
        error.contains("larger than the 16777216 bytes a client call may carry"),
        "{error}"
    );
    assert!(backend.requests().is_empty());
    let (code, result, log) = run_probe(dir.path(), &backend, &agent, "big_request", r#"{"bytes": 100000}"#);
    assert_eq!(code, 0, "{log}");
    assert_eq!(result["answer"]["name"], "big", "a large call that fits goes through");
}

#[test]
fn no_prefix_passes_a_credential_and_the_hint_says_how_to_pass_one() {
    let dir = plugin_dir(&[
        fixture_library("probe", "probe-plugin"),
        fixture_library("probe", "client-probe"),
    ]);
    let env = [
        ("SYNAPSE_ACCESS_TOKEN", TOKEN),
        ("SYNAPSE_AGENT_TOKEN", AGENT_TOKEN),
        ("SYNAPSE_PLUGIN_RUN_TENANT", "tenant-77"),
        ("SYNAPSE_DB_PASSWORD", "pw-12345"),
        ("SYNAPSE_EPOCHS", "3"),
    ];
    for prefix in [
        &["--quiet"][..],
        &["--quiet", "--env-prefix", "SYN"],
        &["--quiet", "--in-process"],
    ] {
        let mut args = vec!["run", "probe", "echo_context"];
        args.extend_from_slice(prefix);
        let output = loader(dir.path(), &args, &env);
        assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
        let seen: Value = serde_json::from_str(&stdout(&output)).unwrap();
        assert_eq!(seen["env"], json!({ "SYNAPSE_EPOCHS": "3" }), "{prefix:?}");
    }
    let explicit = loader(
        dir.path(),
        &[
            "run",
            "probe",
            "echo_context",
            "--quiet",
            "--env",
            &format!("SYNAPSE_ACCESS_TOKEN={TOKEN}"),
        ],
        &env,
    );
    let seen: Value = serde_json::from_str(&stdout(&explicit)).unwrap();
    assert_eq!(
        seen["env"]["SYNAPSE_ACCESS_TOKEN"], "[REDACTED]",
        "passed, and hidden in the output"
    );

    let hinted = loader(dir.path(), &["run", "client-probe", "inspect"], &env);
    assert_eq!(exit_code(&hinted), 0, "{}", stderr(&hinted));
    let log = stderr(&hinted);
    assert!(log.contains("--env-prefix never passes credentials"), "{log}");
    assert!(
        log.contains("--env SYNAPSE_ACCESS_TOKEN=\"$SYNAPSE_ACCESS_TOKEN\""),
        "{log}"
    );
    assert!(!log.contains(TOKEN), "{log}");
}

/// Writes a journal into `state`'s spool as a run recorded for `backend`
/// would have left it: one request, `PATCH jobs/JOB/` to SUCCEEDED.
fn write_journal(state: &Path, name: &str, backend: &str, job: &str) {
    let spool = state.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let header = json!({ "journal": 1, "backend": backend, "job_id": job, "run": name });
    let request = json!({ "request": {
        "method": "PATCH", "path": format!("jobs/{job}/"), "body": { "status": "SUCCEEDED" }, "key": format!("{name}-1"),
    }});
    std::fs::write(spool.join(format!("{name}.jsonl")), format!("{header}\n{request}\n")).unwrap();
}

#[test]
fn flush_delivers_only_to_the_backend_given_never_to_an_address_in_a_journal() {
    let mine = TestBackend::start(Some(TOKEN)).expect("the loopback backend");
    let elsewhere = TestBackend::start(None).expect("a second loopback backend");
    let state = tempfile::tempdir().unwrap();
    let state_arg = state.path().to_str().unwrap();
    write_journal(state.path(), "mine", &mine.url(), "job-mine");
    write_journal(state.path(), "forged", &elsewhere.url(), "job-forged");
    let dir = client_probe_dir();

    let without = loader(
        dir.path(),
        &["flush", "--state-dir", state_arg],
        &[("SYNAPSE_ACCESS_TOKEN", TOKEN)],
    );
    assert_eq!(exit_code(&without), 2, "{}", stderr(&without));
    assert!(
        stderr(&without).contains("--backend URL or SYNAPSE_HOST"),
        "{}",
        stderr(&without)
    );
    assert_eq!(list_spool(state.path()).len(), 2, "nothing delivered without a backend");

    let flush = loader(
        dir.path(),
        &["flush", "--state-dir", state_arg],
        &[("SYNAPSE_ACCESS_TOKEN", TOKEN), ("SYNAPSE_HOST", &mine.url())],
    );
    let said = stdout(&flush);
    assert_eq!(exit_code(&flush), 0, "{said}{}", stderr(&flush));
    assert!(said.contains("job job-mine: delivered 1 requests"), "{said}");
    assert!(
        said.contains(&format!(
            "job job-forged: recorded for another backend, {}",
            elsewhere.url()
        )),
        "{said}"
    );
    assert_eq!(mine.job_patches("job-mine"), [json!({ "status": "SUCCEEDED" })]);
    assert!(mine.job_patches("job-forged").is_empty());
    let left = list_spool(state.path());
    assert_eq!(left.len(), 1, "the forged journal is left: {left:?}");
    assert!(left[0].ends_with("forged.jsonl"));

    // The start of a run delivers leftovers of its own backend only.
    write_journal(state.path(), "mine-2", &mine.url(), "job-mine-2");
    let run_args = [
        "run",
        "client-probe",
        "inspect",
        "--quiet",
        "--job-id",
        "job-run",
        "--backend",
        &mine.url(),
        "--state-dir",
        state_arg,
    ];
    let run = loader(dir.path(), &run_args, &[("SYNAPSE_ACCESS_TOKEN", TOKEN)]);
    assert_eq!(exit_code(&run), 0, "{}", stderr(&run));
    assert_eq!(mine.job_patches("job-mine-2"), [json!({ "status": "SUCCEEDED" })]);
    assert!(
        elsewhere.requests().is_empty(),
        "nothing ever went to the journal's address"
    );
    assert_eq!(list_spool(state.path()).len(), 1);
}
