//! `gatehouse`: the server and its admin commands in one binary.

mod cli;
mod cmd;
mod config_file;
mod db;
mod help;
mod output;

/// mimalloc rather than glibc's malloc: a request allocates and frees on
/// several runtime threads, and glibc's per-arena free lists made allocation
/// about 40 % of an introspection's instructions (callgrind, bench/compare.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let args = match config_file::parse_cli() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cmd::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
