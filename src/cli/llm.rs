//! `bot llm check`: one tiny request to the model set by `BOT_LLM_*` — its latency, the model
//! that answered, and whether structured output (`json_schema`) works or the plain-JSON
//! fallback is used. Exit 1 when the model does not answer usably, 2 when it is not set up.

use crate::llm::{Llm, LlmConfig};
use anyhow::bail;
use serde_json::json;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, clap::Subcommand)]
pub enum LlmCommand {
    /// Send one tiny request and report latency, model and structured output.
    Check,
}

pub fn run(cmd: LlmCommand) -> ExitCode {
    super::db::block_on_code(async move {
        match cmd {
            LlmCommand::Check => check().await,
        }
    })
}

async fn check() -> anyhow::Result<ExitCode> {
    let Some(config) = LlmConfig::from_env()? else {
        bail!(
            "no model is set: BOT_LLM_BASE_URL (with /v1), BOT_LLM_MODEL and usually BOT_LLM_API_KEY"
        );
    };
    let (model, host) = (config.model.clone(), config.host());
    let llm = Llm::new(config);
    let schema = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["ok"],
        "properties": {"ok": {"type": "boolean"}}
    });
    let started = Instant::now();
    let answer = llm
        .json(
            "Это проверка связи. Ответь JSON-объектом {\"ok\": true}.",
            "проверка",
            "check",
            &schema,
        )
        .await;
    let ms = started.elapsed().as_millis();
    println!("model: {model} at {host}");
    match answer {
        Ok((v, usage)) => {
            println!("answered in {ms} ms: {v}");
            println!(
                "structured output: {}",
                if llm.structured_output() {
                    "json_schema works"
                } else {
                    "refused; the JSON-in-the-prompt fallback is used"
                }
            );
            println!(
                "tokens: {} in, {} out",
                usage.prompt_tokens, usage.completion_tokens
            );
            Ok(if v["ok"] == json!(true) {
                ExitCode::SUCCESS
            } else {
                eprintln!("the answer is not {{\"ok\": true}}");
                ExitCode::from(1)
            })
        }
        Err(e) => {
            println!("no usable answer after {ms} ms: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
