//! Enqueue benchmark: a generated campaign of 100,000 jobs (2,000 rows ×
//! 10 locales × 5 variants).
//!
//! Measures, in one process:
//! 1. plan + enqueue: load, validate, expand, and sync into a fresh state file;
//! 2. the no-op rerun once every job is done: load, expand, sync again;
//! 3. the floor: the same number of rows inserted with one prepared INSERT
//!    in one transaction into the same table, nothing else.
//!
//! Run: `cargo bench --bench enqueue` (set `ADLOC_BENCH_ROWS` for a smaller run).

use std::fmt::Write as _;
use std::time::Instant;

use adloc::Store;

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

fn main() {
    let rows: usize = std::env::var("ADLOC_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("campaigns/bench");
    write_campaign(&dir, rows);
    let state = tmp.path().join("state.db");

    rt.block_on(async {
        // 1. plan + enqueue
        let t = Instant::now();
        let (campaign, specs) = adloc::load_and_expand(&dir).unwrap();
        let t_expand = t.elapsed();
        let q = Store::open_path(&state).await.unwrap();
        let planned = q.preview(&campaign.name, &specs).await.unwrap();
        let (synced, _) = q.sync(&campaign.name, &specs).await.unwrap();
        let t_enqueue = t.elapsed();
        let n = specs.len();
        assert_eq!(planned.report.new, n);
        assert_eq!(synced.report.new, n);

        // Every job done (setup, not measured).
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", state.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE jobs SET state = 'done'")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;

        // 2. no-op rerun
        let t = Instant::now();
        let (campaign2, specs2) = adloc::load_and_expand(&dir).unwrap();
        let (rerun, _) = q.sync(&campaign2.name, &specs2).await.unwrap();
        let t_noop = t.elapsed();
        assert_eq!(rerun.report.already_done, n);
        assert_eq!(rerun.report.to_generate, 0);
        q.close().await;

        // 3. floor: one prepared INSERT, one transaction, same table.
        let floor_db = tmp.path().join("floor.db");
        let fq = Store::open_path(&floor_db).await.unwrap();
        fq.close().await;
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&floor_db)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let t = Instant::now();
        let mut tx = pool.begin().await.unwrap();
        for s in &specs {
            sqlx::query(
                "INSERT INTO jobs (campaign, row_id, locale, variant, resolved_locale, resolution,
                    request_hash, model, aspect_ratio, image_size, prompt, state, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, '{}', ?, ?, ?, ?, ?, 'pending', 0, 0)",
            )
            .bind(&s.key.campaign)
            .bind(s.key.row.as_str())
            .bind(s.key.target.to_string())
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
        let t_floor = t.elapsed();
        pool.close().await;

        let rate = |d: std::time::Duration| n as f64 / d.as_secs_f64();
        println!("jobs: {n} ({rows} rows × {} locales × {} variants)", LOCALES.len(), VARIANTS.len());
        println!(
            "plan + enqueue:   {:>8.3} s  {:>10.0} jobs/s  (load+expand {:.3} s)",
            t_enqueue.as_secs_f64(),
            rate(t_enqueue),
            t_expand.as_secs_f64()
        );
        println!(
            "no-op rerun:      {:>8.3} s  {:>10.0} jobs/s",
            t_noop.as_secs_f64(),
            rate(t_noop)
        );
        println!(
            "raw insert floor: {:>8.3} s  {:>10.0} jobs/s",
            t_floor.as_secs_f64(),
            rate(t_floor)
        );
        println!(
            "enqueue / floor rate ratio: {:.2} (target >= 0.5); no-op rerun {:.3} s (target < 2 s)",
            rate(t_enqueue) / rate(t_floor),
            t_noop.as_secs_f64()
        );
    });
}
