//! A real PostgreSQL server for the tests: Debian's `postgresql` package
//! (`/usr/lib/postgresql/<version>/bin`), `initdb` into a temporary
//! folder, listening only on a Unix socket in that folder (no TCP port to
//! clash with anything). One server per test process, started on first
//! use; one database per test. The server stops when the test process
//! exits (a watchdog shell waits for it), even when a test panics.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The running server.
pub struct PgServer {
    bin: PathBuf,
    /// Data directory and socket directory.
    dir: PathBuf,
    /// Run the server's programs as this user (initdb refuses root).
    as_user: Option<&'static str>,
}

/// The newest installed PostgreSQL's `bin` folder.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b).unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): \
             `apt-get install -y --no-install-recommends postgresql` (.ci/run does this)"
        )
    })
}

fn is_root() -> bool {
    // `id -u` rather than libc: the crate forbids unsafe code.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PgServer {
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match self.as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start() -> PgServer {
        let bin = bin_dir();
        let as_user = is_root().then_some("postgres");
        // Not a TempDir: the watchdog below removes it once the server is
        // down, after this process has gone.
        let dir = tempfile::Builder::new()
            .prefix("adloc-pg-")
            .tempdir()
            .unwrap()
            .keep();
        if let Some(user) = as_user {
            let ok = Command::new("chown")
                .arg(format!("{user}:"))
                .arg(&dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown {user} {}", dir.display());
        }
        let server = PgServer { bin, dir, as_user };
        let data = server.data();
        server.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
        );
        let sock = server.dir.display().to_string();
        server.run(
            "pg_ctl",
            &[
                "-D",
                &data,
                "-l",
                &format!("{sock}/server.log"),
                "-w",
                "-o",
                &format!(
                    "-k {sock} -c listen_addresses='' -p 5432 -c fsync=off -c max_connections=200"
                ),
                "start",
            ],
        );
        server.watchdog();
        server
    }

    /// Stop the server and remove its folder once this process is gone.
    fn watchdog(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = match self.as_user {
            Some(u) => format!(
                "runuser -u {u} -- {} -D {} stop -m immediate",
                pg_ctl.display(),
                self.data()
            ),
            None => format!("{} -D {} stop -m immediate", pg_ctl.display(), self.data()),
        };
        // The outer shell backgrounds the loop and exits at once (so it is
        // waited for here); the loop, reparented, outlives this process.
        let script = format!(
            "(while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}) &",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        let started = Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("start the PostgreSQL watchdog");
        assert!(started.success(), "the PostgreSQL watchdog did not start");
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// The socket folder.
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// A new, empty database, as a `postgres://` URL.
    pub fn fresh_database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "adloc_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let sock = self.dir.display().to_string();
        self.run(
            "createdb",
            &["-h", &sock, "-p", "5432", "-U", "postgres", &name],
        );
        self.url(&name)
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://postgres@localhost:5432/{name}?host={}",
            self.dir.display()
        )
    }
}

/// The test process's server, started on first use.
pub fn server() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(PgServer::start)
}

/// A new database on the shared server.
pub fn fresh_database() -> String {
    server().fresh_database()
}
