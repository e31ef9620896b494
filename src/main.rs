use clap::Parser;

fn main() -> std::process::ExitCode {
    // One rustls crypto provider (ring) for every HTTPS client; an error only means one is
    // installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    bot::cli::run(bot::cli::Cli::parse())
}
