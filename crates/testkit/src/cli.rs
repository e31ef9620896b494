//! Run the `bot` binary as an operator would: arguments and environment in, exit code, stdout
//! and stderr out. Bitrix24 mapping variables of the developer's shell are not inherited.
//!
//! Cargo tells only the integration test crate where the binary is (`CARGO_BIN_EXE_bot`, at
//! compile time), so [`run_bot!`](crate::run_bot) expands there and calls [`run`].

/// (exit code, stdout, stderr) of `bot args…` (async), run in the package folder with `env`
/// set: `testkit::run_bot!(&["db", "status"], &[("BOT_DB", url)])`.
#[macro_export]
macro_rules! run_bot {
    ($args:expr, $env:expr) => {
        $crate::cli::run(
            env!("CARGO_BIN_EXE_bot"),
            env!("CARGO_MANIFEST_DIR"),
            $args,
            $env,
        )
    };
}

/// (exit code, stdout, stderr) of the binary `exe` run with `args` in `dir` with `env` set.
pub async fn run(
    exe: &'static str,
    dir: &'static str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(exe)
            .args(&args)
            .env_remove("BOT_BITRIX24_SOURCE_ID")
            .envs(env)
            .current_dir(dir)
            .output()
            .expect("run bot");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("join")
}
