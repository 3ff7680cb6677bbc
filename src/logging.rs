//! Logging: to stderr through simple_logger, or with `--log-dir` to `access.log` (records
//! with target `access`) and `sluice.log` (everything else), reopened on SIGUSR1 so logrotate
//! can move them. The level comes from the `SLUICE_LOG` environment variable. Does IO.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Log, Metadata, Record};

/// Environment variable holding the log level.
pub const LEVEL_ENV: &str = "SLUICE_LOG";

/// The log target of access lines.
pub const ACCESS: &str = "access";

/// Parse `SLUICE_LOG` (error, warn, info, debug, trace, off); unset means info.
///
/// # Errors
/// The value is not a level name; the message says which values are accepted.
pub fn level_from_env() -> Result<LevelFilter, String> {
    match std::env::var(LEVEL_ENV) {
        Err(_) => Ok(LevelFilter::Info),
        Ok(v) => v.trim().parse().map_err(|_| {
            format!("{LEVEL_ENV}={v:?} is not a log level; use one of off, error, warn, info, debug, trace")
        }),
    }
}

/// Log to stderr.
pub fn init_stderr(level: LevelFilter) {
    // Only fails when a logger is already set, which only a second call could do.
    let _ = simple_logger::SimpleLogger::new()
        .with_level(level)
        .with_utc_timestamps()
        .init();
}

struct FileLogger {
    dir: PathBuf,
    files: Mutex<Option<(File, File)>>,
}

static FILE_LOGGER: OnceLock<FileLogger> = OnceLock::new();

fn open_pair(dir: &Path) -> io::Result<(File, File)> {
    let open = |name: &str| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(name))
    };
    Ok((open("access.log")?, open("sluice.log")?))
}

/// Log to `dir/access.log` and `dir/sluice.log` (created, appended).
///
/// # Errors
/// The directory or a file cannot be opened.
pub fn init_files(dir: &Path, level: LevelFilter) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let files = open_pair(dir)?;
    let logger = FILE_LOGGER.get_or_init(|| FileLogger {
        dir: dir.to_owned(),
        files: Mutex::new(Some(files)),
    });
    log::set_logger(logger).map_err(|e| io::Error::other(e.to_string()))?;
    log::set_max_level(level);
    Ok(())
}

/// Reopen the log files (SIGUSR1); a no-op when logging to stderr.
pub fn reopen() {
    let Some(logger) = FILE_LOGGER.get() else {
        return;
    };
    match open_pair(&logger.dir) {
        Ok(pair) => {
            if let Ok(mut files) = logger.files.lock() {
                *files = Some(pair);
            }
            log::info!("log files reopened in {}", logger.dir.display());
        }
        Err(e) => log::error!(
            "cannot reopen log files in {}: {e}; keeping the old ones",
            logger.dir.display()
        ),
    }
}

impl Log for FileLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "{} {:<5} {}\n",
            utc_timestamp(SystemTime::now()),
            record.level(),
            record.args()
        );
        if let Ok(mut files) = self.files.lock()
            && let Some((access, main)) = files.as_mut()
        {
            let file = if record.target() == ACCESS {
                access
            } else {
                main
            };
            // A full disk must not take the proxy down; the line is lost.
            let _ = file.write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// `2026-11-22T03:11:00.123Z`, computed without a date crate.
pub fn utc_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_match_known_dates() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_316_645_250);
        assert_eq!(utc_timestamp(t), "2026-11-22T03:04:05.250Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc_timestamp(leap), "2000-02-29T00:00:00.000Z");
    }
}
