//! Run the `bot` binary as an operator would: arguments and environment in, exit code, stdout
//! and stderr out. Bitrix24 mapping variables of the developer's shell are not inherited.

/// (exit code, stdout, stderr) of `bot args…` run in the crate folder with `env` set.
pub async fn run_bot(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bot"))
            .args(&args)
            .env_remove("BOT_BITRIX24_SOURCE_ID")
            .envs(env)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
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
