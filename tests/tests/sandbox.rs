//! The sandbox, tried as an attacker would: the hostile fixture's `attack`
//! action, run by `loader run` in the default mode, tries one thing a
//! hostile plugin does (reach the loader's secrets, kill or stop it, write
//! into it, outlive the run, plant files, reach the network, exhaust the
//! machine, reach the user's other processes or terminal) and reports the
//! exact outcome, which each test asserts. Then what the operator grants
//! works, an ungranted declaration stops a run before it starts, and
//! `--sandbox=off` shows what the sandbox keeps out. Every process a test
//! starts carries a tag in its environment; none may be left.

#[cfg(target_os = "linux")]
mod linux {
    use std::io::Read;
    use std::net::TcpListener;
    use std::os::unix::net::UnixListener;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use serde_json::{json, Value};

    use crate::common::*;

    const TAG_VAR: &str = "HOSTILE_TEST_TAG";

    /// A user's world for one test: a plugin folder (the hostile plugin
    /// and a sample), a home with secrets, cache and state folders.
    struct World {
        root: tempfile::TempDir,
        tag: String,
    }

    impl World {
        fn new(name: &str) -> World {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let root = tempfile::tempdir().unwrap();
            let plugins = root.path().join("plugins");
            std::fs::create_dir(&plugins).unwrap();
            for library in [
                fixture_library("hostile", "hostile-plugin"),
                sample_library("tabular-trainer"),
            ] {
                std::fs::copy(&library, plugins.join(library.file_name().unwrap())).unwrap();
            }
            let home = root.path().join("home");
            std::fs::create_dir_all(home.join(".ssh")).unwrap();
            std::fs::write(home.join(".ssh/id_rsa"), "-----BEGIN OPENSSH PRIVATE KEY-----").unwrap();
            std::fs::write(home.join(".bashrc"), "# the user's shell\n").unwrap();
            let tag = format!(
                "{name}-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst)
            );
            World { root, tag }
        }

        fn path(&self, relative: &str) -> PathBuf {
            self.root.path().join(relative)
        }

        fn plugins(&self) -> PathBuf {
            self.path("plugins")
        }

        /// A `loader` command in this world, tagged.
        fn loader(&self, args: &[&str]) -> Command {
            let mut command = Command::new(loader_bin());
            command.env_clear().arg("--plugins").arg(self.plugins()).args(args);
            command
                .env(TAG_VAR, &self.tag)
                .env("HOME", self.path("home"))
                .env("XDG_CACHE_HOME", self.path("cache"))
                .env("XDG_STATE_HOME", self.path("state"))
                .env("SYNAPSE_ACCESS_TOKEN", "secret-token-of-the-user");
            if let Some(path) = std::env::var_os("PATH") {
                command.env("PATH", path);
            }
            command
        }

        /// Runs `attack` with `params` (a `"pid": "LOADER"` is the loader's
        /// own pid: the loader is started by a shell that execs it) and
        /// `extra` flags; returns the exit code, the attack's outcome (or
        /// the run's error) and stderr. `fd7`: a file the loader inherits
        /// open as fd 7 from whoever started it.
        fn attack(&self, params: Value, extra: &[&str], fd7: Option<&Path>) -> Attack {
            let params = params.to_string().replace(r#""LOADER""#, "LOADERPID");
            let mut script = String::new();
            if let Some(file) = fd7 {
                script.push_str(&format!("exec 7<'{}'; ", file.display()));
            }
            script.push_str(r#"exec "$0" "$@" --params "$(printf '%s' "$ATTACK" | sed "s/LOADERPID/$$/")""#);
            let command = self.loader(&[]);
            let program = command.get_program().to_owned();
            let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
            let mut shell = Command::new("sh");
            shell.env_clear();
            for (key, value) in command.get_envs() {
                if let Some(value) = value {
                    shell.env(key, value);
                }
            }
            shell
                .env("ATTACK", &params)
                .arg("-c")
                .arg(script)
                .arg(program)
                .args(args)
                .args(["run", "hostile", "attack", "--events", "jsonl", "--env"])
                .arg(format!("{TAG_VAR}={}", self.tag))
                .args(extra)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = shell.spawn().unwrap();
            let mut stdout = String::new();
            let mut stderr = String::new();
            child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            let code = child.wait().unwrap().code().unwrap_or(-1);
            self.assert_no_process_left();
            let events = jsonl(&stdout);
            let outcome = events
                .iter()
                .find(|e| e["kind"] == "result")
                .map(|e| e["data"]["outcome"].as_str().unwrap_or_default().to_owned())
                .unwrap_or_default();
            Attack {
                code,
                outcome,
                events,
                stderr,
            }
        }

        fn assert_no_process_left(&self) {
            let needle = format!("{TAG_VAR}={}", self.tag);
            let until = Instant::now() + Duration::from_secs(3);
            loop {
                let left = tagged(&needle);
                if left.is_empty() {
                    return;
                }
                if Instant::now() >= until {
                    for pid in &left {
                        let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                    }
                    panic!("processes left behind: {left:?}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn tagged(needle: &str) -> Vec<u32> {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let environ = std::fs::read(entry.path().join("environ")).ok()?;
                environ
                    .split(|&b| b == 0)
                    .any(|var| var == needle.as_bytes())
                    .then_some(pid)
            })
            .collect()
    }

    struct Attack {
        code: i32,
        outcome: String,
        events: Vec<Value>,
        stderr: String,
    }

    impl Attack {
        /// Asserts the run succeeded and the attack ended with one of `expected`.
        fn blocked_with(&self, what: &str, expected: &[&str]) {
            assert_eq!(self.code, 0, "{what}: {}", self.stderr);
            assert!(
                expected.contains(&self.outcome.as_str()),
                "{what}: outcome {:?}, expected one of {expected:?}",
                self.outcome
            );
        }

        fn error(&self) -> &Value {
            &self.events.last().expect("an event")["data"]
        }
    }

    fn attack(world: &World, what: &str, fields: Value) -> Attack {
        let mut params = json!({ "what": what });
        params
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        world.attack(params, &[], None)
    }

    #[test]
    fn the_loaders_secrets_and_memory_are_out_of_reach() {
        let world = World::new("secrets");
        for entry in ["environ", "mem", "cmdline"] {
            attack(&world, "read_proc", json!({ "pid": "LOADER", "target": entry }))
                .blocked_with(&format!("/proc/LOADER/{entry}"), &["ENOENT", "EACCES", "EPERM"]);
        }
        attack(&world, "ptrace", json!({ "pid": "LOADER" })).blocked_with("ptrace", &["EPERM"]);
        attack(&world, "vm_read", json!({ "pid": "LOADER" })).blocked_with("process_vm_readv", &["EPERM"]);
        let home = world.path("home");
        let key = home.join(".ssh/id_rsa");
        attack(&world, "read_file", json!({ "target": key })).blocked_with("~/.ssh/id_rsa", &["EACCES"]);
        attack(&world, "list_dir", json!({ "target": home })).blocked_with("$HOME", &["EACCES"]);
    }

    #[test]
    fn the_loader_cannot_be_killed_stopped_or_written_into() {
        let world = World::new("loader");
        for signal in ["9", "19"] {
            attack(&world, "kill", json!({ "pid": "LOADER", "target": signal }))
                .blocked_with(&format!("signal {signal} to the loader"), &["ESRCH", "EPERM"]);
        }
        for entry in ["oom_score_adj", "fd/1"] {
            attack(&world, "write_proc", json!({ "pid": "LOADER", "target": entry }))
                .blocked_with(&format!("write /proc/LOADER/{entry}"), &["ENOENT", "EACCES", "EPERM"]);
        }
        attack(&world, "write_proc", json!({ "pid": 1, "target": "oom_score_adj" }))
            .blocked_with("write /proc/1/oom_score_adj", &["EACCES", "EPERM"]);
    }

    #[test]
    fn nothing_the_plugin_starts_or_plants_outlives_the_run() {
        let world = World::new("escape");
        let run = attack(&world, "escape", json!({}));
        assert_eq!(run.code, 0, "{}", run.stderr);
        // attack() already checked no tagged process is left.
        let shm = format!("/dev/shm/loader-attack-{}", world.tag);
        attack(&world, "append_file", json!({ "target": shm })).blocked_with("/dev/shm", &["EACCES"]);
        assert!(!Path::new(&shm).exists());
        let tmp = std::env::temp_dir().join(format!("loader-attack-{}", world.tag));
        attack(&world, "append_file", json!({ "target": tmp })).blocked_with("/tmp", &["EACCES"]);
        assert!(!tmp.exists());
    }

    #[test]
    fn the_plugin_folder_home_cache_and_spool_cannot_be_written() {
        let world = World::new("plant");
        // A first run fills the manifest cache.
        let run = attack(&world, "open_fds", json!({}));
        assert_eq!(run.code, 0, "{}", run.stderr);
        let cache_files: Vec<PathBuf> = std::fs::read_dir(world.path("cache/synapse-loader"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(!cache_files.is_empty());
        std::fs::create_dir_all(world.path("state/synapse-loader/spool")).unwrap();
        let targets = [
            (
                "a new library in the plugin folder",
                world.plugins().join("libplanted.so"),
            ),
            (
                "another plugin's library",
                world.plugins().join(library_file_name("tabular-trainer")),
            ),
            ("~/.bashrc", world.path("home/.bashrc")),
            ("the manifest cache", cache_files[0].clone()),
            (
                "a journal in the spool",
                world.path("state/synapse-loader/spool/forged.journal"),
            ),
        ];
        for (what, target) in targets {
            attack(&world, "append_file", json!({ "target": target })).blocked_with(what, &["EACCES"]);
            let planted = std::fs::read(&target).is_ok_and(|bytes| bytes.windows(9).any(|w| w == b"# planted"));
            assert!(!planted, "{what} was written to");
        }
    }

    #[test]
    fn no_network_unless_granted() {
        let world = World::new("net");
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        tcp.set_nonblocking(true).unwrap();
        let socket = world.path("socket");
        let unix = UnixListener::bind(&socket).unwrap();
        unix.set_nonblocking(true).unwrap();
        attack(&world, "tcp_connect", json!({ "port": port })).blocked_with("TCP connect", &["EPERM", "EACCES"]);
        attack(&world, "tcp_listen", json!({})).blocked_with("TCP listen", &["EPERM", "EACCES"]);
        attack(&world, "udp_send", json!({ "port": port })).blocked_with("UDP", &["EPERM"]);
        attack(&world, "unix_connect", json!({ "target": socket })).blocked_with("Unix socket", &["EPERM"]);
        assert!(tcp.accept().is_err(), "a TCP connection got through");
        assert!(unix.accept().is_err(), "a Unix connection got through");

        let granted = format!("--allow-net=127.0.0.1:{port}");
        let params = json!({ "what": "tcp_connect", "port": port });
        let run = world.attack(params, &[&granted], None);
        assert_eq!((run.code, run.outcome.as_str()), (0, "ok"), "{}", run.stderr);
        assert!(tcp.accept().is_ok(), "the granted connection did not arrive");
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let params = json!({ "what": "tcp_connect", "port": other.local_addr().unwrap().port() });
        world
            .attack(params, &[&granted], None)
            .blocked_with("an ungranted port", &["EACCES"]);
    }

    #[test]
    fn processes_memory_descriptors_and_terminal_are_bounded() {
        let world = World::new("limits");
        let run = attack(&world, "fork_many", json!({ "target": "3000" }));
        run.blocked_with("3000 forks", &["EAGAIN"]);
        let forked = run.events.iter().find(|e| e["event"] == "forked").unwrap()["data"]["children"]
            .as_u64()
            .unwrap();
        assert!(forked < 256, "{forked} processes were forked");

        let run = attack(&world, "touch_memory", json!({ "target": (3u64 << 30).to_string() }));
        assert_eq!(run.code, 1, "touching 3 GiB must fail the run: {}", run.stderr);
        let message = run.error()["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains("memory"), "{message}");

        let run = attack(&world, "open_fds", json!({}));
        assert_eq!(run.code, 0, "{}", run.stderr);
        // stdio (/dev/null and two pipes), the channel to the loader (a
        // socket, twice), and the folder being listed: nothing else.
        let unexpected: Vec<&str> = run
            .outcome
            .split(' ')
            .filter(|fd| {
                let target = fd.split_once('=').map_or("", |(_, t)| t);
                !(target == "/dev/null"
                    || target.starts_with("pipe:")
                    || target.starts_with("socket:")
                    || target.ends_with("/fd"))
            })
            .collect();
        assert!(unexpected.is_empty(), "open descriptors: {}", run.outcome);
        let secret = world.path("home/.ssh/id_rsa");
        let params = json!({ "what": "read_fd", "target": "7" });
        world
            .attack(params, &[], Some(&secret))
            .blocked_with("an inherited descriptor", &["EBADF"]);

        attack(&world, "tiocsti", json!({})).blocked_with("TIOCSTI", &["EPERM"]);
        attack(&world, "open_tty", json!({})).blocked_with("/dev/tty", &["EACCES", "ENXIO"]);
    }

    #[test]
    fn the_users_other_processes_are_out_of_reach() {
        let world = World::new("others");
        // Not tagged (the attacks' check would take it for the plugin's);
        // killed on the way out, whatever happens.
        struct Victim(std::process::Child);
        impl Drop for Victim {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let victim = Victim(Command::new("sleep").arg("300").spawn().unwrap());
        let victim_pid = victim.0.id();
        for signal in ["19", "9"] {
            attack(&world, "kill", json!({ "pid": victim_pid, "target": signal }))
                .blocked_with("a signal to another process", &["ESRCH", "EPERM"]);
        }
        attack(&world, "ptrace", json!({ "pid": victim_pid })).blocked_with("ptrace", &["EPERM"]);
        let stat = std::fs::read_to_string(format!("/proc/{victim_pid}/stat")).unwrap();
        assert!(!stat.contains(") T "), "the other process was stopped: {stat}");
        drop(victim);
    }

    #[test]
    fn programs_and_paths_run_only_when_granted() {
        let world = World::new("grants");
        attack(&world, "exec", json!({ "target": "true" })).blocked_with("an ungranted program", &["EACCES"]);
        let params = json!({ "what": "exec", "target": "true" });
        let run = world.attack(params, &["--allow-run", "true"], None);
        assert_eq!((run.code, run.outcome.as_str()), (0, "ok"), "{}", run.stderr);

        let data = world.path("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("input.csv"), "x\n").unwrap();
        let granted = data.to_str().unwrap();
        let read = json!({ "what": "read_file", "target": data.join("input.csv") });
        let run = world.attack(read.clone(), &["--allow-read", granted], None);
        assert_eq!((run.code, run.outcome.as_str()), (0, "ok"), "{}", run.stderr);
        let write = json!({ "what": "append_file", "target": data.join("out.txt") });
        world
            .attack(write.clone(), &["--allow-read", granted], None)
            .blocked_with("read-only grant", &["EACCES"]);
        let run = world.attack(write, &["--allow-write", granted], None);
        assert_eq!((run.code, run.outcome.as_str()), (0, "ok"), "{}", run.stderr);
    }

    #[test]
    fn sandbox_off_lets_the_attack_through_and_says_so() {
        let world = World::new("off");
        let key = world.path("home/.ssh/id_rsa");
        let params = json!({ "what": "read_file", "target": key });
        let run = world.attack(params.clone(), &["--sandbox", "off"], None);
        assert_eq!((run.code, run.outcome.as_str()), (0, "ok"), "{}", run.stderr);
        assert!(run.events.iter().any(|e| e["event"] == "sandbox_off"), "no warning");
        let run = world.attack(params, &["--sandbox", "require"], None);
        run.blocked_with("--sandbox=require", &["EACCES"]);
    }

    #[test]
    fn a_declared_permission_must_be_granted_before_the_run_starts() {
        let world = World::new("declared");
        std::fs::copy(
            fixture_library("probe", "asking-plugin"),
            world.plugins().join(library_file_name("asking-plugin")),
        )
        .unwrap();
        let output = world.loader(&["run", "asking", "hello"]).output().unwrap();
        let text = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(7), "{text}");
        assert!(text.contains("--allow-net api.example.com:443"), "{text}");
        assert!(text.contains("loader grant asking"), "{text}");

        let granted = world.loader(&["grant", "asking"]).output().unwrap();
        assert!(granted.status.success(), "{}", String::from_utf8_lossy(&granted.stderr));
        let output = world.loader(&["run", "asking", "hello"]).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

        // A different permission set needs granting again.
        let book = world.path("state/synapse-loader/grants.json");
        let mut grants: Value = serde_json::from_str(&std::fs::read_to_string(&book).unwrap()).unwrap();
        grants["plugins"]["asking"]["permissions"]["read"] = json!(["/somewhere/else"]);
        std::fs::write(&book, grants.to_string()).unwrap();
        let output = world.loader(&["run", "asking", "hello"]).output().unwrap();
        assert_eq!(output.status.code(), Some(7));
        let revoked = world.loader(&["grant", "asking", "--revoke"]).output().unwrap();
        assert!(revoked.status.success());
    }

    #[test]
    fn sandbox_check_passes_every_probe_here() {
        let world = World::new("check");
        let output = world.loader(&["sandbox", "check", "--json"]).output().unwrap();
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(output.status.code(), Some(0), "{report:#}");
        assert_eq!(report["passed"], true);
        let probes = report["report"]["probes"].as_array().unwrap();
        assert!(probes.len() > 30);
        assert!(probes.iter().all(|p| p["ok"] == true));
        world.assert_no_process_left();
    }

    #[test]
    fn in_process_children_are_killed_and_a_fork_does_not_hang_the_exit() {
        let world = World::new("inproc");
        let events = world.path("events.jsonl");
        for action in ["fork_and_return", "attack"] {
            let started = Instant::now();
            let mut command = world.loader(&[
                "run",
                "hostile",
                action,
                "--in-process",
                "--events",
                events.to_str().unwrap(),
            ]);
            if action == "attack" {
                command.args(["--params", r#"{"what": "escape"}"#]);
            }
            let output = command.output().unwrap();
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            assert!(started.elapsed() < Duration::from_secs(20), "{action} held the loader");
            world.assert_no_process_left();
        }
    }
}
