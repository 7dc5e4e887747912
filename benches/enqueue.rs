//! Enqueue benchmark: a generated campaign of 1,000,000 jobs (20,000 rows
//! × 10 locales × 5 variants), into SQLite and into PostgreSQL.
//!
//! Per backend, in one process:
//! 1. `adloc enqueue` as the command does it (`adloc::enqueue`): load,
//!    validate, expand, check the stored copy loads the same, plan, and
//!    queue every job with the campaign's files, into a fresh state;
//! 2. the no-op rerun once every job is done: load, expand, sync again;
//! 3. the backend's raw-insert floor: the same rows inserted with one
//!    prepared INSERT per job in one transaction into the same table of a
//!    fresh, migrated state, nothing else.
//!
//! PostgreSQL is a server this bench starts itself (Debian's `postgresql`,
//! `initdb` in a temp dir, a socket only, `fsync=off`, as the tests start
//! it); the same server serves the enqueue and the floor, so their ratio
//! is fair though the absolute rates are above a durable server's.
//!
//! Run: `cargo bench --bench enqueue` (`ADLOC_BENCH_ROWS` sets the rows,
//! 50 jobs each; `ADLOC_BENCH_BACKENDS=sqlite` skips PostgreSQL).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use adloc::Store;
use adloc::bench::StateLocation;

#[allow(dead_code)]
#[path = "../tests/it/common/pg.rs"]
mod pg;

const LOCALES: [&str; 10] = [
    "en-US",
    "de-DE",
    "fr-FR",
    "es-MX",
    "pt-BR",
    "ja-JP",
    "ko-KR",
    "zh-Hans-CN",
    "ar-SA",
    "it-IT",
];
const VARIANTS: [(&str, &str); 5] = [
    ("hero", "16:9"),
    ("square", "1:1"),
    ("story", "9:16"),
    ("portrait", "4:5"),
    ("wide", "21:9"),
];

fn write_campaign(dir: &std::path::Path, rows: usize) {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    let mut toml = String::from(
        "name = \"bench\"\nrows = \"rows.csv\"\nmodel = \"gemini-3.1-flash-image\"\nmode = \"batch\"\nlocales = [",
    );
    toml.push_str(
        &LOCALES
            .iter()
            .map(|l| format!("\"{l}\""))
            .collect::<Vec<_>>()
            .join(", "),
    );
    toml.push_str("]\n");
    for (v, ratio) in VARIANTS {
        let _ = write!(
            toml,
            "\n[[variants]]\nname = \"{v}\"\ntemplate = \"{v}.hbs\"\naspect_ratio = \"{ratio}\"\n"
        );
        std::fs::write(
            dir.join("templates").join(format!("{v}.hbs")),
            format!(
                "A {ratio} {v} ad. Scene: {{{{row.scene}}}}.\nHeadline in {{{{locale.english_name}}}}: \"{{{{row.headline}}}}\"\nButton: \"{{{{row.cta}}}}\"\n"
            ),
        )
        .unwrap();
    }
    std::fs::write(dir.join("campaign.toml"), toml).unwrap();
    let mut csv = String::from("id,scene,headline,cta");
    for l in &LOCALES[1..] {
        let _ = write!(csv, ",headline.{l},cta.{l}");
    }
    csv.push('\n');
    for r in 0..rows {
        let _ = write!(
            csv,
            "row-{r:05},\"A product shot number {r}, studio light\",Headline {r},Buy now"
        );
        for l in &LOCALES[1..] {
            let _ = write!(csv, ",Headline {r} in {l},CTA {l}");
        }
        csv.push('\n');
    }
    std::fs::write(dir.join("rows.csv"), csv).unwrap();
}

/// A state as the bench reaches it directly (the URL in clear: the
/// server is the bench's own).
#[derive(Clone)]
enum Raw {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Raw {
    fn location(&self) -> StateLocation {
        match self {
            Raw::Sqlite(p) => StateLocation::Sqlite(p.clone()),
            Raw::Postgres(url) => url.parse().unwrap(),
        }
    }
}

/// One backend's figures.
struct Figures {
    enqueue: Duration,
    noop: Duration,
    /// Of the no-op rerun: load and expand, then the store's sync.
    noop_split: (Duration, Duration),
    floor: Duration,
}

/// The jobs' columns the floor inserts, in the order of its placeholders.
const FLOOR_INSERT: &str =
    "INSERT INTO jobs (campaign, row_id, locale, variant, resolved_locale, resolution,
        request_hash, model, aspect_ratio, image_size, prompt, state, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, '{}', $6, $7, $8, $9, $10, 'pending', 0, 0)";

async fn measure(dir: &Path, raw_state: Raw, raw_floor: Raw) -> Figures {
    let state = raw_state.location();
    // 1. enqueue, as `adloc enqueue` does it.
    let mut opts = adloc::RunOptions::new(dir);
    opts.state = state.clone();
    let t = Instant::now();
    let queued = adloc::enqueue(&opts).await.unwrap();
    let t_enqueue = t.elapsed();

    // Every job done (setup, not measured).
    let q = Store::open(&state).await.unwrap();
    raw_execute(&raw_state, "UPDATE jobs SET state = 'done'").await;

    // 2. no-op rerun.
    let t = Instant::now();
    let (campaign, specs) = adloc::load_and_expand(dir).unwrap();
    let t_expand = t.elapsed();
    let (rerun, _) = q.sync(&campaign.name, &specs).await.unwrap();
    let t_noop = t.elapsed();
    let n = specs.len();
    assert_eq!(queued.planned.new, n);
    assert_eq!(rerun.report.already_done, n);
    assert_eq!(rerun.report.to_generate, 0);
    q.close().await;

    // 3. floor: a fresh migrated state, one prepared INSERT per job, one
    // transaction.
    Store::open(&raw_floor.location())
        .await
        .unwrap()
        .close()
        .await;
    let t = Instant::now();
    match &raw_floor {
        Raw::Sqlite(path) => {
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
            let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
            let mut tx = pool.begin().await.unwrap();
            for s in &specs {
                let target = s.key.target.to_string();
                sqlx::query(FLOOR_INSERT)
                    .bind(&s.key.campaign)
                    .bind(s.key.row.as_str())
                    .bind(&target)
                    .bind(&s.key.variant)
                    .bind(s.resolved_locale.as_deref().unwrap_or("und"))
                    .bind(&s.request_hash)
                    .bind(s.request.model.as_str())
                    .bind(s.request.aspect_ratio.as_str())
                    .bind(s.request.image_size.as_str())
                    .bind(&s.request.prompt)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
            pool.close().await;
        }
        Raw::Postgres(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            let mut tx = pool.begin().await.unwrap();
            for s in &specs {
                let target = s.key.target.to_string();
                sqlx::query(FLOOR_INSERT)
                    .bind(&s.key.campaign)
                    .bind(s.key.row.as_str())
                    .bind(&target)
                    .bind(&s.key.variant)
                    .bind(s.resolved_locale.as_deref().unwrap_or("und"))
                    .bind(&s.request_hash)
                    .bind(s.request.model.as_str())
                    .bind(s.request.aspect_ratio.as_str())
                    .bind(s.request.image_size.as_str())
                    .bind(&s.request.prompt)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
            pool.close().await;
        }
    }
    Figures {
        enqueue: t_enqueue,
        noop: t_noop,
        noop_split: (t_expand, t_noop - t_expand),
        floor: t.elapsed(),
    }
}

async fn raw_execute(state: &Raw, sql: &'static str) {
    match state {
        Raw::Sqlite(path) => {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Raw::Postgres(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

fn main() {
    let rows: usize = std::env::var("ADLOC_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let backends = std::env::var("ADLOC_BENCH_BACKENDS").unwrap_or("sqlite,postgres".into());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("campaigns/bench");
    write_campaign(&dir, rows);
    let n = rows * LOCALES.len() * VARIANTS.len();
    println!(
        "jobs: {n} ({rows} rows × {} locales × {} variants)",
        LOCALES.len(),
        VARIANTS.len()
    );
    for backend in backends.split(',') {
        let (state, floor) = match backend.trim() {
            "sqlite" => (
                Raw::Sqlite(tmp.path().join("state.db")),
                Raw::Sqlite(tmp.path().join("floor.db")),
            ),
            "postgres" => (
                Raw::Postgres(pg::fresh_database()),
                Raw::Postgres(pg::fresh_database()),
            ),
            other => panic!("ADLOC_BENCH_BACKENDS: unknown backend `{other}`"),
        };
        let f = rt.block_on(measure(&dir, state, floor));
        let rate = |d: Duration| n as f64 / d.as_secs_f64();
        println!("{backend}:");
        println!(
            "  enqueue:          {:>8.2} s  {:>10.0} jobs/s",
            f.enqueue.as_secs_f64(),
            rate(f.enqueue)
        );
        println!(
            "  raw insert floor: {:>8.2} s  {:>10.0} jobs/s",
            f.floor.as_secs_f64(),
            rate(f.floor)
        );
        println!(
            "  enqueue / floor rate: {:.2}; no-op rerun {:.2} s (load + expand {:.2} s, sync {:.2} s) = {:.2} × the floor's time",
            rate(f.enqueue) / rate(f.floor),
            f.noop.as_secs_f64(),
            f.noop_split.0.as_secs_f64(),
            f.noop_split.1.as_secs_f64(),
            f.noop.as_secs_f64() / f.floor.as_secs_f64()
        );
    }
}
