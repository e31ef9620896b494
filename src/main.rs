use clap::Parser;

fn main() -> std::process::ExitCode {
    // One rustls crypto provider (ring) for every HTTPS client; an error only means one is
    // installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = bot::cli::Cli::parse();
    if !matches!(cli.command, bot::cli::Command::Serve(_)) {
        end_quietly_on_a_closed_pipe();
    }
    bot::cli::run(cli)
}

/// Rust ignores SIGPIPE, so printing to a closed pipe (`bot outbox list | head`) is an error,
/// and a panic in `println!`. A command ends instead like other command-line tools: killed
/// quietly by SIGPIPE (141 in a shell). Not `bot serve`: a server outlives closed connections.
#[cfg(unix)]
fn end_quietly_on_a_closed_pipe() {
    // SAFETY: sets the default disposition of one signal, before any other thread runs; no
    // handler of ours is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn end_quietly_on_a_closed_pipe() {}
