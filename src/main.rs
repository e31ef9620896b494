use clap::Parser;

fn main() -> std::process::ExitCode {
    bot::cli::run(bot::cli::Cli::parse())
}
