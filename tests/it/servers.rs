//! Processes the fault tests start themselves: `fieldtrail serve`, and private NATS and
//! PostgreSQL servers on their own ports (the machine's servers are never stopped).

use crate::helpers::TestEnv;
use serde_json::Value;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether slow variants were asked for (`FIELDTRAIL_SLOW_TESTS=1`).
pub fn slow() -> bool {
    std::env::var("FIELDTRAIL_SLOW_TESTS").is_ok_and(|v| v == "1")
}

/// A `fieldtrail serve` child process.
pub struct Serve {
    /// The child.
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Serve {
    /// Starts `fieldtrail serve` for `env` (overriding the database and NATS URLs if given)
    /// with `extra` environment variables, and waits until `/healthz` answers.
    pub async fn start(
        env: &TestEnv,
        database_url: Option<&str>,
        nats_url: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Self {
        Self::start_at(env, free_port(), database_url, nats_url, extra).await
    }

    /// As [`Serve::start`], listening on `port` (e.g. the port of a server just killed).
    pub async fn start_at(
        env: &TestEnv,
        port: u16,
        database_url: Option<&str>,
        nats_url: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Self {
        let mut command = crate::helpers::fieldtrail_binary();
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env(
                "DATABASE_URL",
                database_url.unwrap_or(&env.settings.database_url),
            )
            .env("NATS_URL", nats_url.unwrap_or(&env.settings.nats_url))
            .env("FIELDTRAIL_NATS_STREAM", &env.settings.nats_stream)
            .env("FIELDTRAIL_SUBJECT_PREFIX", &env.settings.subject_prefix)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in extra {
            command.env(k, v);
        }
        let child = command.spawn().unwrap();
        let serve = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if serve.health().await.is_some() {
                return serve;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fieldtrail serve did not start");
    }

    /// `/healthz`, if it answers.
    pub async fn health(&self) -> Option<Value> {
        let response = reqwest::Client::new()
            .get(format!("{}/healthz", self.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    }

    /// SIGKILL, and wait for the process to end.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// POSTs one command line; `None` when no HTTP answer came (connection refused or dropped).
pub async fn post(client: &reqwest::Client, base: &str, line: &str) -> Option<(u16, Value)> {
    let response = client
        .post(format!("{base}/commands"))
        .header("content-type", "application/json")
        .body(line.to_owned())
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Some((status, body))
}

/// A private NATS server with JetStream on its own port and store directory.
pub struct OwnNats {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    dir: PathBuf,
    config: Option<PathBuf>,
}

impl OwnNats {
    /// Starts `nats-server -js` on a free port.
    pub async fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("ft-nats-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut nats = Self {
            child: None,
            port,
            dir,
            config: None,
        };
        nats.resume().await;
        nats
    }

    /// Starts `nats-server -c <file>` with the configuration `make(self, store_dir)` returns
    /// (it must listen on `self.port` and keep JetStream's store in `store_dir`).
    pub async fn with_config(make: impl FnOnce(&OwnNats, &std::path::Path) -> String) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("ft-nats-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut nats = Self {
            child: None,
            port,
            dir: dir.clone(),
            config: None,
        };
        let text = make(&nats, &dir.join("store"));
        let path = dir.join("nats.conf");
        std::fs::write(&path, text).unwrap();
        nats.config = Some(path);
        nats.resume().await;
        nats
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store, and waits until it accepts connections.
    pub async fn resume(&mut self) {
        let mut command = Command::new("nats-server");
        match &self.config {
            Some(config) => command.arg("-c").arg(config),
            None => command
                .args([
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-js",
                    "-sd",
                ])
                .arg(&self.dir),
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server must be installed");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("private nats-server did not start");
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A private PostgreSQL cluster (initdb in a temporary directory, run as the `postgres` user,
/// trust authentication) on its own port.
pub struct OwnPostgres {
    /// Its port.
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

fn as_postgres(bin: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--"]).arg(bin).args(args);
    command.output().unwrap()
}

impl OwnPostgres {
    /// initdb and start on a free port.
    pub async fn start() -> Self {
        let version = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries under /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .max()
            .unwrap();
        let bin = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"));
        let dir = std::env::temp_dir().join(format!("ft-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        let data = dir.join("data");
        let out = as_postgres(
            &bin.join("initdb"),
            &[
                "-A",
                "trust",
                "-U",
                "postgres",
                "-D",
                data.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = Self {
            port: free_port(),
            dir,
            bin,
        };
        pg.resume().await;
        pg
    }

    /// `pg_ctl stop -m fast`.
    pub fn stop(&self) {
        let data = self.dir.join("data");
        let out = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `pg_ctl start` on the same port and data.
    pub async fn resume(&self) {
        let data = self.dir.join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        let out = as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
