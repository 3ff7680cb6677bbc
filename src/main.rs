//! The `sluice` command: CLI, logging set-up, and handing the validated plan to the
//! supervisor. Everything else lives in the library (src/lib.rs).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use argh::FromArgs;
use sluice::{config, logging, reload, state};

/// malloc with a per-thread cache of small freed blocks (src/sys/alloc.rs): musl's
/// allocator is slow per call, and a proxied request allocates dozens of times.
#[global_allocator]
static ALLOCATOR: sluice::sys::alloc::Cached = sluice::sys::alloc::Cached;

/// The fewest open descriptors sluice runs with: start-up takes about 20, and each relayed
/// connection two to four.
const MIN_FD_LIMIT: u64 = 64;

/// sluice: L4 TCP/UDP reverse proxy with a protocol multiplexer. Set the log level with the
/// SLUICE_LOG environment variable (error, warn, info, debug, trace; default info).
#[derive(FromArgs)]
struct Args {
    /// configuration file (TOML)
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,

    /// write access.log and sluice.log in this directory instead of stderr (SIGUSR1 reopens)
    #[argh(option, short = 'l')]
    log_dir: Option<PathBuf>,

    /// validate the config, print what would listen and route, exit 0 (ok) or 1 (errors)
    #[argh(switch)]
    check: bool,

    /// print the version and exit
    #[argh(switch, short = 'V')]
    version: bool,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(code) => return code,
    };
    if args.version {
        println!("sluice {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let Some(path) = args.config else {
        eprintln!("sluice: no config file given; use -c FILE (see --help)");
        return ExitCode::FAILURE;
    };
    let file = path.display().to_string();
    if args.check {
        return match config::load(&path) {
            Ok(loaded) => {
                print!("{}", config::describe(&loaded, &file));
                for note in loaded
                    .plan
                    .unsupported()
                    .iter()
                    .chain(&loaded.plan.limitations())
                {
                    println!("note      {note}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        };
    }

    let level = match logging::level_from_env() {
        Ok(l) => l,
        Err(msg) => {
            eprintln!("sluice: {msg}");
            return ExitCode::FAILURE;
        }
    };
    match &args.log_dir {
        Some(dir) => {
            if let Err(e) = logging::init_files(dir, level) {
                eprintln!("sluice: cannot open log files in {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        }
        None => logging::init_stderr(level),
    }

    let fd_limit = match sluice::sys::raise_fd_limit() {
        Ok(n) => {
            log::debug!("open file limit: {n}");
            n
        }
        Err(e) => {
            log::warn!("cannot raise the open file limit: {e}");
            u64::MAX
        }
    };
    // Below this, start-up itself runs out (the reactors, the signal pipe, the listeners,
    // the spare descriptor kept for overload): refuse plainly rather than abort half-way or
    // run with every accept failing.
    if fd_limit < MIN_FD_LIMIT {
        log::error!(
            "the open file limit is {fd_limit}; sluice needs at least {MIN_FD_LIMIT} \
             (raise it, e.g. `ulimit -n 4096`)"
        );
        return ExitCode::FAILURE;
    }
    let loaded = match config::load(&path) {
        Ok(l) => l,
        Err(e) => {
            log::error!("config rejected:\n{e}");
            return ExitCode::FAILURE;
        }
    };
    for w in &loaded.warnings {
        log::warn!("{file}:{}:{}: {}", w.line, w.col, w.message);
    }
    let unsupported = loaded.plan.unsupported();
    if !unsupported.is_empty() {
        log::error!("config rejected: {}", unsupported.join("; "));
        return ExitCode::FAILURE;
    }
    for l in loaded.plan.limitations() {
        log::warn!("{l}");
    }
    let workers = loaded.plan.workers.threads();
    sluice::sys::share_tcp_ports(workers > 1);
    let shared = state::Shared::new(loaded.plan, file, state::Common::new(workers), 0);
    let mut supervisor = reload::Supervisor::new(shared, path);
    if let Err(e) = supervisor.start() {
        log::error!("{e}");
        return ExitCode::FAILURE;
    }
    match state::block_on(supervisor.run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// argh's parsing, plus `-h` as a synonym of `--help` (argh only knows the long form).
fn parse_args() -> Result<Args, ExitCode> {
    let all: Vec<String> = std::env::args().collect();
    let cmd = all.first().map_or("sluice", String::as_str);
    let rest: Vec<&str> = all
        .iter()
        .skip(1)
        .map(|a| if a == "-h" { "--help" } else { a.as_str() })
        .collect();
    Args::from_args(&[cmd], &rest).map_err(|exit| match exit.status {
        Ok(()) => {
            println!("{}", exit.output);
            ExitCode::SUCCESS
        }
        Err(()) => {
            eprintln!("{}", exit.output);
            ExitCode::FAILURE
        }
    })
}
